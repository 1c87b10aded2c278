"""One GeoPackage from two writers: the SQLite merge of a side file (private).

GDAL writes a GeoPackage row by row and pyogrio calls it with the GIL held, so a second
thread cannot write beside it. :func:`mujun_geo.export.write_geopackage` therefore hands
the largest layer of a big run to a forked child (:class:`mujun_geo._fork.ForkedCall`),
which writes it into the output file, while the parent writes the other layers into a
side file. When both are done, :func:`merge_layers` copies the side file's tables into
the output at the SQLite level (``INSERT … SELECT *`` between identical tables is
SQLite's page-copy transfer, and the R-tree's shadow tables are copied as GDAL copies its
own background R-tree), and :func:`order_layers` restores the layer order a sequential
write gives.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from ._errors import MujunGeoError

__all__ = ["MergeUnsupported", "connect_temporary", "merge_layers", "order_layers"]

logger = logging.getLogger(__name__)

#: GeoPackage tables whose rows describe one layer (copied with the layer's rows).
_PER_LAYER = ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents")
#: Tables a side file may hold besides its layers; rows of any other table stop the merge.
_KNOWN = {
    *_PER_LAYER,
    "gpkg_spatial_ref_sys",
    "gpkg_tile_matrix",
    "gpkg_tile_matrix_set",
    "sqlite_sequence",
}


class MergeUnsupported(MujunGeoError):
    """The side file holds something :func:`merge_layers` does not copy (nothing changed)."""


def connect_temporary(path: Path) -> sqlite3.Connection:
    """An SQLite connection to a file nothing reads before it is renamed, fsynced, into place.

    No fsync at each commit and the journal in memory, as GDAL writes the same file
    (:data:`mujun_geo.export._TEMP_FILE_SQLITE`): the first commit would otherwise flush
    every page GDAL left to the kernel (about 1 s per GB), and a crash leaves a temporary
    file that is deleted, never published. Transactions by hand (``isolation_level=None``).
    """
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA journal_mode = MEMORY")
    return con


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def merge_layers(side: Path, into: Path, names: Sequence[str]) -> None:
    """Copy the tables ``names`` (as GDAL wrote them into ``side``) into ``into``.

    Each layer's table, R-tree, triggers and indexes are created in ``into`` from their
    ``side`` definitions; the rows and the R-tree's shadow tables are copied as they are,
    then the layer's rows of the GeoPackage tables (contents, geometry columns,
    extensions, feature count) and any spatial reference system ``into`` lacks. One
    transaction: on :class:`MergeUnsupported` (an object of the same name in ``into``,
    a reference system defined differently, rows in a table not listed in ``_KNOWN``, a
    registered R-tree not found, any error SQLite raises) nothing is changed and the
    caller writes those layers itself.
    """
    con = connect_temporary(into)
    try:
        con.execute("ATTACH DATABASE ? AS side", (str(side),))
        con.execute("BEGIN IMMEDIATE")
        try:
            _merge(con, list(names))
        except BaseException as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):  # a layout this merge does not expect
                msg = f"SQLite refused the copy: {exc}"
                raise MergeUnsupported(msg) from exc
            raise
        con.execute("COMMIT")
        con.execute("DETACH DATABASE side")
    finally:
        con.close()


def _merge(con: sqlite3.Connection, names: list[str]) -> None:
    side = con.execute("SELECT type, name, tbl_name, sql FROM side.sqlite_master").fetchall()
    in_main = {r[0].lower() for r in con.execute("SELECT name FROM main.sqlite_master")}
    side_tables = {name.lower(): sql for kind, name, _, sql in side if kind == "table"}
    plans = []
    owned: set[str] = set()
    for layer in names:
        sql = side_tables.get(layer.lower())
        if not sql:
            msg = f"layer {layer} is not a table of the side file"
            raise MergeUnsupported(msg)
        # the R-trees GDAL made (rtree_<table>_<geometry column>) and their shadow tables
        rtrees = [
            (f"rtree_{layer}_{column}", side_tables[f"rtree_{layer}_{column}".lower()])
            for (column,) in con.execute(
                "SELECT column_name FROM side.gpkg_geometry_columns "
                "WHERE lower(table_name) = lower(?)",
                (layer,),
            )
            if f"rtree_{layer}_{column}".lower() in side_tables
        ]
        indexed = con.execute(
            "SELECT count(*) FROM side.gpkg_extensions WHERE lower(table_name) = lower(?) "
            "AND extension_name = 'gpkg_rtree_index'",
            (layer,),
        ).fetchone()[0] if "gpkg_extensions" in side_tables else 0  # fmt: skip
        if indexed != len(rtrees):
            msg = f"layer {layer}: {indexed} spatial index(es) registered, {len(rtrees)} found"
            raise MergeUnsupported(msg)
        extra = [
            sql for kind, _, table, sql in side
            if kind in ("index", "trigger") and sql and table.lower() == layer.lower()
        ]  # fmt: skip
        names_here = {layer.lower()} | {
            f"{r.lower()}{s}" for r, _ in rtrees for s in ("", "_node", "_rowid", "_parent")
        }
        clash = sorted(names_here & in_main)
        if clash:
            msg = f"{', '.join(clash)} exist in both files"
            raise MergeUnsupported(msg)
        owned |= names_here
        plans.append((layer, sql, rtrees, extra))
    # anything else with rows must be another layer of the side file (left there)
    others = [r[0].lower() for r in con.execute("SELECT table_name FROM side.gpkg_contents")]
    for name in side_tables.keys() - owned - _KNOWN:
        if any(name == o or name.startswith(f"rtree_{o}_") for o in others):
            continue
        if con.execute(f"SELECT 1 FROM side.{_quote(name)} LIMIT 1").fetchone():
            msg = f"side file table {name} is not copied by the merge"
            raise MergeUnsupported(msg)

    # GeoPackage tables the side file has and the output lacks (e.g. gpkg_ogr_contents)
    for table in _PER_LAYER:
        if table in side_tables and table not in in_main:
            con.execute(side_tables[table])
    # reference systems: add the missing ones, refuse a differing definition
    main_srs = dict(con.execute("SELECT srs_id, definition FROM main.gpkg_spatial_ref_sys"))
    side_srs = con.execute("SELECT srs_id, definition FROM side.gpkg_spatial_ref_sys")
    for srs_id, definition in side_srs.fetchall():
        if srs_id not in main_srs:
            # (the same columns in both files, or SQLite refuses and nothing is merged)
            con.execute(
                "INSERT INTO main.gpkg_spatial_ref_sys SELECT * FROM side.gpkg_spatial_ref_sys "
                "WHERE srs_id = ?",
                (srs_id,),
            )
        elif main_srs[srs_id] != definition:
            msg = f"spatial reference system {srs_id} differs between the files"
            raise MergeUnsupported(msg)

    for layer, sql, rtrees, extra in plans:
        con.execute(sql)
        # no trigger or index yet: SQLite copies the records as they are (its transfer
        # optimisation), and the AUTOINCREMENT counter with them
        con.execute(f"INSERT INTO main.{_quote(layer)} SELECT * FROM side.{_quote(layer)}")
        for rtree, rtree_sql in rtrees:
            con.execute(rtree_sql)  # creates the shadow tables, with an empty root node
            for suffix in ("_node", "_rowid", "_parent"):
                shadow = _quote(rtree + suffix)
                con.execute(f"DELETE FROM main.{shadow}")
                con.execute(f"INSERT INTO main.{shadow} SELECT * FROM side.{shadow}")
        for statement in extra:
            con.execute(statement)
        counters = "SELECT 1 FROM main.sqlite_master WHERE name = 'sqlite_sequence'"
        if "sqlite_sequence" in side_tables and con.execute(counters).fetchone():
            # the AUTOINCREMENT counter as GDAL left it (an empty table has none)
            con.execute("DELETE FROM main.sqlite_sequence WHERE name = ?", (layer,))
            con.execute(
                "INSERT INTO main.sqlite_sequence SELECT * FROM side.sqlite_sequence "
                "WHERE name = ?",
                (layer,),
            )
        for table in _PER_LAYER:
            if table in side_tables:
                con.execute(
                    f"INSERT INTO main.{table} SELECT * FROM side.{table} "
                    "WHERE lower(table_name) = lower(?)",
                    (layer,),
                )


def order_layers(path: Path, names: Sequence[str]) -> None:
    """Put ``gpkg_contents`` in the order ``names`` (GDAL lists layers in its row order).

    Rows of other tables keep their order after them.
    """
    con = connect_temporary(path)
    try:
        con.execute("BEGIN IMMEDIATE")
        cur = con.execute("SELECT * FROM gpkg_contents ORDER BY rowid")
        columns = [d[0] for d in cur.description]
        rows = cur.fetchall()
        rank = {n.lower(): i for i, n in enumerate(names)}
        ordered = sorted(rows, key=lambda r: rank.get(str(r[0]).lower(), len(rank)))
        if ordered != rows:
            con.execute("DELETE FROM gpkg_contents")
            marks = ", ".join("?" * len(columns))
            cols = ", ".join(_quote(c) for c in columns)
            con.executemany(f"INSERT INTO gpkg_contents ({cols}) VALUES ({marks})", ordered)
        con.execute("COMMIT")
    finally:
        con.close()
