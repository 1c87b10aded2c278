"""Shared test helpers: matplotlib off-screen, GeoPackage comparisons."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

import pyogrio

matplotlib.use("Agg")


def rows(path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def gpkg_rows():
    """``gpkg_rows(path, sql)``: the rows of one SQLite query on a GeoPackage."""
    return rows


@pytest.fixture
def same_geopackage():
    """Check that two GeoPackages hold the same layers, rows, objects and metadata."""
    return assert_same_geopackage


def _quoted(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


#: Columns that record when a file was written.
_TIMESTAMPS = {"last_change", "update_time"}


def assert_same_geopackage(a: Path, b: Path) -> None:
    """Same layers in the same order, same rows, same SQLite objects and GeoPackage tables."""
    layers = pyogrio.list_layers(a).tolist()
    assert layers == pyogrio.list_layers(b).tolist()
    for name, _ in layers:
        x = pyogrio.read_dataframe(a, layer=name, fid_as_index=True)
        y = pyogrio.read_dataframe(b, layer=name, fid_as_index=True)
        x, y = (f.drop(columns=[c for c in f.columns if c in _TIMESTAMPS]) for f in (x, y))
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_master"
    assert sorted(rows(a, schema), key=str) == sorted(rows(b, schema), key=str)
    tables = {r[0] for r in rows(a, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in sorted(tables):  # R-trees and their shadow tables too
        columns = [r[1] for r in rows(a, f"PRAGMA table_info({_quoted(table)})")]
        kept = ", ".join(_quoted(c) for c in columns if c not in _TIMESTAMPS)
        sql = f"SELECT {kept} FROM {_quoted(table)}"
        if table == "gpkg_contents":  # in the same order: GDAL lists the layers in it
            assert rows(a, sql + " ORDER BY rowid") == rows(b, sql + " ORDER BY rowid")
        else:
            assert sorted(rows(a, sql), key=str) == sorted(rows(b, sql), key=str), table
    assert rows(a, "PRAGMA integrity_check") == [("ok",)]
