"""The GeoPackage written by two processes is the one a single process writes."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import pyogrio
import shapely

import mujun_geo.export as export
from mujun_geo._fork import can_fork
from mujun_geo._gpkg_parallel import MergeUnsupported, merge_layers
from mujun_geo.export import SubsetView, write_geopackage

pytestmark = pytest.mark.skipif(not can_fork(), reason="two-process export runs on Linux only")


def _write(layers, path, *, processes, subsets=None, monkeypatch, **kw):
    with monkeypatch.context() as m:
        m.setattr(export, "_OFFLOAD_MIN_ROWS", 1)
        m.setattr(export, "_OFFLOAD_MIN_REST", 1)
        if processes == 1:
            m.setattr(export, "can_fork", lambda: False)
        return write_geopackage(layers, path, subsets=subsets, **kw)


@pytest.fixture
def run_layers():
    rng = np.random.default_rng(8)
    n = 2_000
    x, y = rng.uniform(400_000, 410_000, n), rng.uniform(3_300_000, 3_310_000, n)
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": [f"P{i:05d}" for i in range(n)],
            "lowland": (np.arange(n) % 3 == 0).astype(int),
            "grade": np.array(["A", "B", "", "D"])[np.arange(n) % 4],
            "tax_per_mu": rng.normal(30, 10, n).round(2),
            "holder": np.where(np.arange(n) % 5 == 0, None, "浙江某某制造有限公司"),
        },
        geometry=shapely.box(x, y, x + 40, y + 25),
        crs=4549,
    )
    # one multipolygon: the layer is MultiPolygon, as a run's parcels may be
    parcels.loc[7, "geometry"] = shapely.box(0, 0, 1, 1).union(shapely.box(3, 3, 4, 4))
    firms = gpd.GeoDataFrame(
        {"credit_code": [f"91330000{i:010d}" for i in range(600)], "grade": ["B", "C"] * 300},
        geometry=shapely.points(x[:600] + 5, y[:600] + 5),
        crs=4549,
    )
    lowland = parcels.loc[parcels["lowland"] == 1, ["parcel_id", "grade", "geometry"]]
    vacant = pd.DataFrame(parcels.loc[parcels["grade"] == "", ["parcel_id", "tax_per_mu"]])
    layers = {
        "enterprises": firms,
        "matches": pd.DataFrame({"credit_code": firms["credit_code"], "n": np.arange(600)}),
        "parcels": parcels,
        "lowland": lowland.reset_index(drop=True),
        "vacant": vacant.reset_index(drop=True),
        "b_firms": firms[firms["grade"] == "B"].reset_index(drop=True),
        "rejects": pd.DataFrame({"row": [3], "reason": ["重复代码"]}),
        "empty": pd.DataFrame(),
    }
    subsets = {
        "lowland": SubsetView("parcels", "lowland", 1),
        "vacant": SubsetView("parcels", "grade", ""),
        "b_firms": SubsetView("enterprises", "grade", "B"),
    }
    return layers, subsets


def test_two_processes_write_the_file_one_process_writes(
    tmp_path, run_layers, monkeypatch, caplog, same_geopackage, gpkg_rows
):
    layers, subsets = run_layers
    one = _write(layers, tmp_path / "one.gpkg", processes=1, subsets=subsets,
                 monkeypatch=monkeypatch)  # fmt: skip
    with caplog.at_level(logging.INFO):
        two = _write(layers, tmp_path / "two.gpkg", processes=2, subsets=subsets,
                     monkeypatch=monkeypatch)  # fmt: skip
    assert "not merged" not in caplog.text  # the side file was merged, not written again
    # the child wrote the layer with the most cells, and said what memory it took
    done = [r for r in caplog.records if hasattr(r, "child_extra_mb")]
    assert [r.getMessage().split(" done")[0] for r in done] == ["writing layer parcels"]
    assert done[0].child_extra_mb >= 0
    same_geopackage(two, one)
    views = {r[0] for r in gpkg_rows(two, "SELECT name FROM sqlite_master WHERE type = 'view'")}
    assert views == {"lowland", "vacant", "b_firms"}
    # the merged layers and the child's keep their R-trees
    for name, bbox, want in [
        ("enterprises", (400_000, 3_300_000, 402_000, 3_302_000), None),
        ("parcels", (405_000, 3_305_000, 406_000, 3_306_000), None),
        ("lowland", (405_000, 3_305_000, 406_000, 3_306_000), None),
    ]:
        assert pyogrio.read_info(two, layer=name)["capabilities"]["fast_spatial_filter"]
        got = pyogrio.read_dataframe(two, layer=name, bbox=bbox)
        frame = layers[name]
        want = frame[frame.intersects(shapely.box(*bbox))]
        assert sorted(got.iloc[:, 0]) == sorted(want.iloc[:, 0]) and len(got) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.gpkg", "two.gpkg"]


def test_layer_to_offload_is_the_largest_table_above_the_limits(run_layers, monkeypatch):
    layers, subsets = run_layers
    assert export._offloaded_layer(layers, subsets) is None  # 2,000 rows: one process
    monkeypatch.setattr(export, "_OFFLOAD_MIN_ROWS", 2_000)
    monkeypatch.setattr(export, "_OFFLOAD_MIN_REST", 1_203)  # 600 + 600 + 1 + 0 + 1 + 1
    assert export._offloaded_layer(layers, subsets) is None
    monkeypatch.setattr(export, "_OFFLOAD_MIN_REST", 1_201)
    assert export._offloaded_layer(layers, subsets) == "parcels"
    # a view is never offloaded, even when it is the largest frame
    big_view = {"lowland": pd.concat([layers["parcels"]] * 3), **layers}
    assert export._offloaded_layer(big_view, subsets) == "parcels"
    monkeypatch.setattr(export, "_OFFLOAD_MIN_ROWS", 2_001)
    assert export._offloaded_layer(layers, subsets) is None


def test_a_failed_child_leaves_its_layer_to_this_process(
    tmp_path, run_layers, monkeypatch, caplog, same_geopackage
):
    layers, subsets = run_layers
    parent = os.getpid()
    write_layer = export._write_layer

    def failing_in_child(data, path, name):
        if name == "parcels" and os.getpid() != parent:
            os.kill(os.getpid(), 9)  # as the kernel does when memory runs out
        return write_layer(data, path, name)

    one = _write(layers, tmp_path / "one.gpkg", processes=1, subsets=subsets,
                 monkeypatch=monkeypatch)  # fmt: skip
    monkeypatch.setattr(export, "_write_layer", failing_in_child)
    with caplog.at_level(logging.WARNING, logger="mujun_geo.export"):
        two = _write(layers, tmp_path / "two.gpkg", processes=2, subsets=subsets,
                     monkeypatch=monkeypatch)  # fmt: skip
    assert "signal 9" in caplog.text and "writing layer parcels in this process" in caplog.text
    same_geopackage(two, one)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.gpkg", "two.gpkg"]


def test_a_write_failing_everywhere_is_an_error_and_leaves_no_file(
    tmp_path, run_layers, monkeypatch
):
    layers, subsets = run_layers
    write_layer = export._write_layer

    def disk_full(data, path, name):
        if name == "parcels":
            # as GDAL leaves it when stopped midway: the R-tree's temporary database
            Path(f"{path}.tmp_rtree_parcels.db").write_bytes(b"partial")
            raise OSError("No space left on device")
        return write_layer(data, path, name)

    monkeypatch.setattr(export, "_write_layer", disk_full)
    old = _write({"rejects": layers["rejects"]}, tmp_path / "out.gpkg", processes=1,
                 monkeypatch=monkeypatch)  # fmt: skip
    before = old.read_bytes()
    with pytest.raises(OSError, match="No space left on device"):
        _write(layers, old, processes=2, subsets=subsets, overwrite=True, monkeypatch=monkeypatch)
    assert old.read_bytes() == before  # the previous output stays
    assert [p.name for p in tmp_path.iterdir()] == ["out.gpkg"]  # no partial, side or R-tree file


def test_parent_failure_stops_the_child(tmp_path, run_layers, monkeypatch):
    layers, subsets = run_layers
    children = []

    class Recorded(export.ForkedCall):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            children.append((self, self.pid))

    write_layer = export._write_layer

    def failing_here(data, path, name):
        if name == "matches":
            raise RuntimeError("matches broke")
        return write_layer(data, path, name)

    monkeypatch.setattr(export, "ForkedCall", Recorded)
    monkeypatch.setattr(export, "_write_layer", failing_here)
    with pytest.raises(RuntimeError, match="matches broke"):
        _write(layers, tmp_path / "out.gpkg", processes=2, subsets=subsets, monkeypatch=monkeypatch)
    ((child, pid),) = children
    assert child.pid is None and not Path(f"/proc/{pid}").exists()  # killed and reaped
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("broken", ["fork", "merge"])
def test_no_child_or_no_merge_means_one_writer(
    broken, tmp_path, run_layers, monkeypatch, same_geopackage
):
    layers, subsets = run_layers
    one = _write(layers, tmp_path / "one.gpkg", processes=1, subsets=subsets,
                 monkeypatch=monkeypatch)  # fmt: skip

    def fail(*args):
        if broken == "fork":  # no memory or process slot for a child
            raise BlockingIOError(11, "Resource temporarily unavailable")
        raise MergeUnsupported("test")  # the side file holds something unexpected

    monkeypatch.setattr(*((os, "fork") if broken == "fork" else (export, "merge_layers")), fail)
    two = _write(layers, tmp_path / "two.gpkg", processes=2, subsets=subsets,
                 monkeypatch=monkeypatch)  # fmt: skip
    same_geopackage(two, one)


def test_merge_refuses_a_layer_in_both_files_and_changes_nothing(tmp_path, run_layers, gpkg_rows):
    layers, _ = run_layers
    side, into = tmp_path / "side.gpkg", tmp_path / "into.gpkg"
    write_geopackage({"enterprises": layers["enterprises"], "rejects": layers["rejects"]}, side)
    write_geopackage({"enterprises": layers["enterprises"].iloc[:5]}, into)
    before = gpkg_rows(into, "SELECT type, name FROM sqlite_master ORDER BY name")
    with pytest.raises(MergeUnsupported, match="enterprises"):
        merge_layers(side, into, ["rejects", "enterprises"])
    assert gpkg_rows(into, "SELECT type, name FROM sqlite_master ORDER BY name") == before
    assert gpkg_rows(into, 'SELECT count(*) FROM "enterprises"') == [(5,)]
    assert "rejects" not in dict(pyogrio.list_layers(into))
    merge_layers(side, into, ["rejects"])  # a layer of its own name is copied
    assert pyogrio.read_dataframe(into, layer="rejects")["reason"].tolist() == ["重复代码"]
    # rows the merge would not carry over (here a table of no layer) stop it before it starts
    con = sqlite3.connect(side)
    con.execute("CREATE TABLE notes (t TEXT)")
    con.execute("INSERT INTO notes VALUES ('kept by hand')")
    con.commit()
    con.close()
    fresh = write_geopackage({"matches": layers["matches"]}, tmp_path / "fresh.gpkg")
    with pytest.raises(MergeUnsupported, match="side file table notes"):
        merge_layers(side, fresh, ["enterprises"])
    assert [n for n, _ in pyogrio.list_layers(fresh)] == ["matches"]


def test_awkward_names_and_a_view_before_its_base(
    tmp_path, run_layers, monkeypatch, same_geopackage, gpkg_rows
):
    layers, _ = run_layers
    parcels = layers["parcels"]
    odd = {
        "早 view": parcels[parcels["lowland"] == 1].reset_index(drop=True),  # before its base
        'Parcels "2022"': parcels,
        "firms'": layers["enterprises"],
        "Matches": layers["matches"],
        "later view": parcels[parcels["lowland"] == 1].reset_index(drop=True),
    }
    views = {
        "早 view": SubsetView('Parcels "2022"', "lowland", 1),
        "later view": SubsetView('Parcels "2022"', "lowland", 1),
    }
    one = _write(odd, tmp_path / "one.gpkg", processes=1, subsets=views, monkeypatch=monkeypatch)
    two = _write(odd, tmp_path / "two.gpkg", processes=2, subsets=views, monkeypatch=monkeypatch)
    same_geopackage(two, one)
    kinds = dict(
        gpkg_rows(two, "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')")
    )
    kinds = {k: v for k, v in kinds.items() if k.endswith("view")}
    assert kinds == {"早 view": "table", "later view": "view"}  # as one process writes them
