"""Province-scale benchmark: every stage from input files to the GeoPackage, beside DuckDB.

Usage::

    python scripts/bench.py --parcels 100000            # 100k parcels, 50k firms, 200k buildings
    python scripts/bench.py                             # 1,000,000 / 500,000 / 2,000,000
    python scripts/bench.py --shape rectangle           # rectangular parcels (sessions 1-6)
    python scripts/bench.py --table A.json B.json       # markdown table of two runs (docs)

Three phases, each in its own Python process so that one's memory does not count in
another's: ``generate`` (``make_province.py``, skipped when the inputs exist), ``pipeline``
(:func:`mujun_geo.pipeline.run` on the files, as ``mujun-geo run`` does, with wall time and
peak RSS of every step) and ``compare`` (the core operations by mujun-geo, by plain
geopandas/shapely and by DuckDB spatial on the same frames, and the GeoPackage write by
pyogrio's Arrow path and by fiona). Results go to ``<workdir>/bench_p<N>.json``.

DuckDB spatial must load offline: run this script with a Python that has ``duckdb`` and
``duckdb-extension-spatial`` of the same version (1.5.5 + 1.5.5 works; duckdb 2.0 has no
extension wheel), e.g. ``python -m venv /tmp/benchvenv --system-site-packages`` and
``/tmp/benchvenv/bin/pip install duckdb==1.5.5 duckdb-extension-spatial==1.5.5``. Without it
the DuckDB columns say why they are empty.

Peak memory is the kernel's high-water mark (``VmHWM``), reset between steps by writing ``5``
to ``/proc/self/clear_refs``: exact, and free while a step runs (a 10 ms ``VmRSS`` sampling
thread is the fallback where the reset is refused).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["Meter", "duckdb_spatial", "main", "province_settings", "rss_mb"]

HERE = Path(__file__).resolve().parent
# benchmark the checkout this script lives in, whatever copy is installed
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from make_province import add_shape_option, data_dir_name  # noqa: E402

INPUT_FILES = {
    "parcels": "parcels.gpkg",
    "enterprises": "enterprises.csv",
    "buildings": "buildings.gpkg",
    "parks": "parks.gpkg",
    "regions": "regions.gpkg",
}
#: progress messages of mujun_geo.pipeline / stages -> step names
STEP_NAMES = {
    "读取宗地 parcels": "read parcels",
    "读取企业 enterprises": "read enterprises",
    "读取 buildings": "read buildings",
    "读取 parks": "read parks",
    "读取 regions": "read regions",
    "地企对应 matching": "match",
    "亩均评价 evaluation": "evaluate",
    "用地分摊与宗地指标 parcel figures": "allocate land, parcel figures",
    "容积率与建筑系数 floor area, FAR, coverage": "buildings: floor area, FAR",
    "低效用地与高耗低效 low-efficiency land": "lowland",
    "园区、行政区、行业汇总 parks, regions, industries": "aggregate",
    "写出 GeoPackage": "export GeoPackage",
    "写出 Excel 报表": "report.xlsx",
}


# ---------------------------------------------------------------------------------------------
# measuring


def _status(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else float("nan")


def _cpu() -> float:
    """User + system CPU seconds of this process (all threads)."""
    t = os.times()
    return t.user + t.system


def rss_mb() -> float:
    """Resident memory of this process now, MB."""
    return _status("VmRSS")


class Meter:
    """Wall time and peak RSS of consecutive steps; ``mark(label)`` starts the next step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self._label: str | None = None
        self._t0 = time.perf_counter()
        self._c0 = _cpu()
        self._sampled = 0.0
        self._stop = threading.Event()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.exact = True
        except OSError:
            self.exact = False
            threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self._sampled = max(self._sampled, rss_mb())

    def _peak_and_reset(self) -> float:
        if self.exact:
            peak = _status("VmHWM")
            Path("/proc/self/clear_refs").write_text("5")
            return peak
        now = rss_mb()
        peak, self._sampled = max(self._sampled, now), now
        return peak

    def mark(self, label: str | None) -> None:
        """End the current step (if any) and start ``label`` (None: none)."""
        now, cpu = time.perf_counter(), _cpu()
        peak = self._peak_and_reset()
        if self._label is not None:
            self.steps.append(
                {
                    "step": self._label,
                    "start": self._t0,  # perf_counter(), to place child processes
                    "seconds": round(now - self._t0, 3),
                    "cpu_s": round(cpu - self._c0, 3),
                    "load1": round(os.getloadavg()[0], 2),
                    "peak_rss_mb": round(peak, 1),
                    "rss_after_mb": round(rss_mb(), 1),
                }
            )
        self._label, self._t0, self._c0 = label, time.perf_counter(), _cpu()

    @contextmanager
    def step(self, label: str):
        """Measure the block alone as step ``label``."""
        self.mark(label)
        try:
            yield
        finally:
            self.mark(None)

    def close(self) -> None:
        self.mark(None)
        self._stop.set()


def duckdb_spatial(threads: int = 2):
    """A DuckDB connection with spatial loaded from the PyPI wheel, without any download.

    Raises RuntimeError naming the pins needed when the extension is absent or its version
    differs from duckdb's.
    """
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET autoinstall_known_extensions = false")
    try:
        con.load_extension("spatial")  # already in ~/.duckdb/extensions
        return con
    except duckdb.Error:
        pass
    try:
        import duckdb_extension_spatial
    except ImportError as exc:
        msg = (
            f"duckdb {duckdb.__version__} cannot load spatial offline: install the pair "
            "duckdb==1.5.5 duckdb-extension-spatial==1.5.5"
        )
        raise RuntimeError(msg) from exc
    base = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    path = base / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if not path.exists():
        have = sorted(p.name for p in base.iterdir())
        msg = (
            f"duckdb-extension-spatial ships {have} but duckdb is v{duckdb.__version__}: pin "
            "both to one version (duckdb==1.5.5, duckdb-extension-spatial==1.5.5)"
        )
        raise RuntimeError(msg)
    con.execute(f"LOAD '{path}'")
    return con


def province_settings(workdir: Path, out_dir: Path, *, report: bool = False, maps: bool = False):
    """Run settings for the province in ``workdir`` (what ``mujun-geo run`` builds)."""
    from mujun_geo.settings import RunSettings

    inputs = {k: str(workdir / v) for k, v in INPUT_FILES.items() if (workdir / v).exists()}
    return RunSettings.from_dict(
        {
            "year": 2022,
            "inputs": inputs,
            "output": {"dir": str(out_dir), "report": report, "maps": maps},
        }
    )


def _machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import geopandas
    import pyogrio
    import shapely

    import mujun_geo

    info = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "mujun_geo": mujun_geo.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "geopandas": geopandas.__version__,
        "pyogrio": pyogrio.__version__,
        "gdal": pyogrio.__gdal_version_string__,
    }
    import hashlib

    digest = hashlib.sha256()
    for f in sorted(Path(mujun_geo.__file__).parent.rglob("*.py")):
        digest.update(f.read_bytes())
    info["mujun_geo_path"] = str(Path(mujun_geo.__file__).parent)
    info["mujun_geo_sources_sha256"] = digest.hexdigest()[:16]
    try:
        import duckdb

        info["duckdb"] = duckdb.__version__
    except ImportError:
        info["duckdb"] = None
    return info


# ---------------------------------------------------------------------------------------------
# phase: pipeline


def phase_pipeline(
    data: Path, out_json: Path, *, report: bool, maps: bool, profile: bool = False
) -> None:
    """Run :func:`mujun_geo.pipeline.run` on the files with a step meter."""
    import mujun_geo.pipeline as pl
    from mujun_geo import matching
    from mujun_geo._errors import DataWarning

    meter = Meter()
    baseline = rss_mb()

    def say(message: str) -> None:
        meter.mark(STEP_NAMES.get(message, message))

    def before(module: Any, name: str, label: str) -> None:
        fn = getattr(module, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            meter.mark(label)
            return fn(*args, **kwargs)

        setattr(module, name, wrapped)

    # finer steps without touching the package: mark before these calls
    before(pl, "_cross_checks", "ingest: firm → county join, group checks")
    before(matching, "review_table", "review table, layer assembly")
    before(pl, "run_info", "run_info (SHA-256 of input files)")
    before(pl, "add_styles", "export: QGIS styles")
    settings = province_settings(data, data / "out", report=report, maps=maps)
    # child processes (mujun_geo._fork) report the memory they added: counted on top of
    # the parent's peak of the step they end in (an upper bound)
    children: list[tuple[float, float, float]] = []

    class _ChildMemory(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if hasattr(record, "child_extra_mb"):
                end = time.perf_counter()
                children.append((end - record.child_seconds, end, float(record.child_extra_mb)))

    child_log = logging.getLogger("mujun_geo._fork")
    child_log.addHandler(_ChildMemory())
    child_log.setLevel(logging.INFO)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        if profile:
            import cProfile
            import io
            import pstats

            prof = cProfile.Profile()
            res = prof.runcall(pl.run, settings, overwrite=True, progress=say)
            prof.dump_stats(str(out_json.with_suffix(".prof")))
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf)
            stats.sort_stats("tottime").print_stats(40)
            stats.sort_stats("cumulative").print_stats("mujun_geo", 80)
            out_json.with_suffix(".profile.txt").write_text(buf.getvalue(), encoding="utf-8")
        else:
            res = pl.run(settings, overwrite=True, progress=say)
    total = time.perf_counter() - t0
    meter.close()
    firms = res.layers["enterprises"]
    last = max(i for i, s in enumerate(meter.steps) if s["step"].startswith("export"))
    for s in meter.steps:  # each child's memory on every step it overlapped
        extra = sum(mb for a, b, mb in children if a < s["start"] + s["seconds"] and b > s["start"])
        if extra:
            s["child_extra_mb"] = round(extra, 1)
            s["peak_rss_mb"] = round(s["peak_rss_mb"] + extra, 1)
    result = {
        "baseline_rss_mb": round(baseline, 1),
        "total_s": round(sum(s["seconds"] for s in meter.steps[: last + 1]), 2),
        "peak_rss_mb": max(s["peak_rss_mb"] for s in meter.steps[: last + 1]),
        "wall_s": round(total, 2),
        "steps": meter.steps,
        "pipeline_timings": {k: round(v, 3) for k, v in res.info["timings"].items()},
        "match_status": {str(k): int(v) for k, v in firms["match_status"].value_counts().items()},
        "links_by_method": {
            str(k): int(v) for k, v in res.layers["matches"]["method"].value_counts().items()
        },
        "gpkg_mb": round(res.path.stat().st_size / 2**20, 1),
        "exact_peaks": meter.exact,
    }
    out_json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# phase: compare


def _clip_floor_area(pg, bg, floors, *, threads: int = 1, skip_covered: bool = False):
    """Σ clipped footprint × floors per parcel: STRtree pairs, vectorised intersection.

    ``skip_covered``: a building that its parcel covers is its own piece, so only the pairs
    that cross a parcel edge go through ``shapely.intersection`` (the fix suggested for
    ``mujun_geo.buildings.building_metrics``).
    """
    import numpy as np

    import shapely

    tree = shapely.STRtree(pg)
    if skip_covered:
        shapely.prepare(pg)

    def pairs(sl: slice) -> tuple[np.ndarray, np.ndarray]:
        bi, pi = tree.query(bg[sl], predicate="intersects")  # prepares the buildings only
        return bi + sl.start, pi

    def areas(bi: np.ndarray, pi: np.ndarray) -> np.ndarray:
        if skip_covered:
            area = np.empty(len(bi))
            inside = shapely.covers(pg[pi], bg[bi])
            area[inside] = shapely.area(bg[bi[inside]])
            cut = ~inside
            area[cut] = shapely.area(shapely.intersection(bg[bi[cut]], pg[pi[cut]]))
        else:
            area = shapely.area(shapely.intersection(bg[bi], pg[pi]))
        return np.bincount(pi, weights=area * floors[bi], minlength=len(pg))

    n = len(bg)
    try:
        if threads <= 1:
            return areas(*pairs(slice(0, n)))
        step = -(-n // (4 * threads))
        with ThreadPoolExecutor(threads) as ex:
            parts = list(ex.map(pairs, [slice(i, min(i + step, n)) for i in range(0, n, step)]))
            bi = np.concatenate([b for b, _ in parts])
            pi = np.concatenate([p for _, p in parts])
            # each parcel in one thread: a prepared parcel builds its edge index on first use,
            # and two threads doing that at once corrupt the heap (seen on 40-vertex parcels)
            cuts = np.linspace(0, len(pg), 4 * threads + 1).astype(int)[1:-1]
            owner = np.searchsorted(cuts, pi, side="right")
            groups = [np.flatnonzero(owner == k) for k in range(4 * threads)]
            return sum(ex.map(lambda g: areas(bi[g], pi[g]), groups))
    finally:
        if skip_covered:
            shapely.destroy_prepared(pg)


def _arrow(columns: dict[str, Any], geoms) -> Any:
    import pyarrow as pa

    import shapely

    cols = {k: pa.array(v) for k, v in columns.items()}
    cols["wkb"] = pa.array(shapely.to_wkb(geoms), type=pa.binary())
    return pa.table(cols)


def pairs_key(a: Any, b: Any) -> Any:
    """(i, j) position pairs as one int64 each, for comparing pair sets."""
    import numpy as np

    return np.asarray(a, dtype=np.int64) * (1 << 32) + np.asarray(b, dtype=np.int64)


def phase_compare(
    data: Path, out_json: Path, *, threads: int, fiona: bool, overlay: bool, repeat: int
) -> None:
    """Core operations by mujun-geo, plain geopandas/shapely and DuckDB on the same frames."""
    import numpy as np
    import pandas as pd

    import geopandas as gpd
    import shapely

    import mujun_geo.pipeline as pl
    from mujun_geo import land
    from mujun_geo._errors import DataWarning
    from mujun_geo.export import prepare_for_gpkg, write_geopackage

    warnings.simplefilter("ignore", DataWarning)
    settings = province_settings(data, data / "out")
    ingested = pl.ingest(settings)
    parcels = ingested.frames["parcels"]
    firms = ingested.frames["enterprises"]
    buildings = ingested.frames["buildings"]
    meter = Meter()
    res: dict[str, Any] = {"ops": {}, "checks": {}}
    ops = res["ops"]

    def run(op: str, engine: str, fn: Callable[[], Any]) -> Any:
        # best of `repeat` for steps under 10 s (other processes share the 2 cores)
        best = None
        runs = 0
        for _ in range(repeat):
            runs += 1
            with meter.step(f"{op} | {engine}"):
                out = fn()
            s = meter.steps[-1]
            if best is None or s["seconds"] < best["seconds"]:
                best = {**s, "peak_rss_mb": max(s["peak_rss_mb"], (best or s)["peak_rss_mb"])}
            if s["seconds"] > 10:
                break
        best["runs"] = runs
        kept = ops.setdefault(op, {}).get(engine)  # a later round keeps the best of all
        if kept is not None:
            runs += kept["runs"]
            if kept["seconds"] <= best["seconds"]:
                best = {**kept, "peak_rss_mb": max(kept["peak_rss_mb"], best["peak_rss_mb"])}
            best["runs"] = runs
        ops[op][engine] = {
            key: best[key] for key in ("seconds", "cpu_s", "peak_rss_mb", "load1", "runs")
        }
        print(f"  {op:30s} {engine:50s} {best['seconds']:8.2f} s (cpu {best['cpu_s']:.2f}, "
              f"load {best['load1']:.1f})", flush=True)  # fmt: skip
        return out

    def fresh(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        return gdf.copy(deep=True)  # no spatial index carried over between engines

    # the spatial core of matching (mujun_geo._match_rules.ParcelIndex): a grid scan pairs the
    # points with the parcel envelopes they lie in, GEOS tests each pair (``covers``); for the
    # 50 m nearest, the scan pairs the leftover points with the industrial parcel envelopes
    # grown by 50 m, and GEOS measures the pairs that the envelope bound leaves
    pg = np.asarray(parcels.geometry.values, dtype=object)
    industrial = parcels["land_use"].isin(["0601", "0602", "0508"]).to_numpy()
    fg = np.asarray(firms.geometry.values, dtype=object)
    has_pt = ~(shapely.is_missing(fg) | shapely.is_empty(fg)) & ~firms["rejected"].to_numpy(
        dtype=bool
    )
    pts = fg[has_pt]
    points = gpd.GeoDataFrame({"fi": np.arange(len(pts))}, geometry=pts, crs=parcels.crs)

    # STEP 1: point in parcel
    op = "point-in-parcel join"
    from mujun_geo._match_rules import ParcelIndex

    pinfo = pd.DataFrame({"industrial": industrial, "has_geom": ~shapely.is_missing(pg)})
    q = run(op, "shapely STRtree covered_by, 1 thread",
            lambda: shapely.STRtree(pg).query(pts, predicate="covered_by"))  # fmt: skip
    ours_cover = "mujun ParcelIndex.covering (as matching, 2 threads)"

    def cover() -> Any:
        return ParcelIndex(parcels, pinfo).covering(pts)

    q2 = run(op, ours_cover, cover)
    res["checks"]["covering_pairs_equal"] = bool(
        np.array_equal(np.sort(pairs_key(q[0], q[1])), np.sort(pairs_key(q2[0], q2[1])))
    )
    p = fresh(parcels)
    sj = run(
        op, "geopandas.sjoin within", lambda: gpd.sjoin(points, p[["geometry"]], predicate="within")
    )
    covered = np.isin(np.arange(len(pts)), q[0])
    res["checks"]["points"] = len(pts)
    res["checks"]["points_in_parcels_strtree"] = int(covered.sum())
    res["checks"]["points_in_parcels_sjoin"] = int(sj["fi"].nunique())

    # STEP 2: 50 m nearest for the points in no parcel
    op = "50 m nearest (leftover points)"
    left = np.flatnonzero(~covered)
    res["checks"]["leftover_points"] = len(left)
    ind_pos = np.flatnonzero(industrial)

    def strtree_nearest():
        tree = shapely.STRtree(pg[ind_pos])
        return tree.query_nearest(
            pts[left], max_distance=50.0, return_distance=True, all_matches=True
        )

    near = run(op, "shapely STRtree query_nearest, 1 thread", strtree_nearest)
    ours_near = "mujun ParcelIndex.nearest (as matching, 2 threads)"

    def nearest() -> Any:
        # a new index each time: nothing built by one run is reused by the next
        return ParcelIndex(parcels, pinfo).nearest(pts[left], 50.0)

    near2 = run(op, ours_near, nearest)
    ref = np.lexsort((near[0][1], near[0][0]))  # ties: both sorted by point, then parcel
    res["checks"]["nearest_equal"] = bool(
        np.array_equal(near2[0], near[0][0][ref])
        and np.array_equal(near2[1], ind_pos[near[0][1][ref]])
        and np.array_equal(near2[2], near[1][ref])
    )
    ind_gdf = fresh(parcels[industrial])[["parcel_id", "geometry"]]
    left_gdf = gpd.GeoDataFrame({"fi": left}, geometry=pts[left], crs=parcels.crs)
    sn = run(op, "geopandas.sjoin_nearest", lambda: gpd.sjoin_nearest(
        left_gdf, ind_gdf, max_distance=50.0, distance_col="d"))  # fmt: skip
    res["checks"]["nearest_found_strtree"] = len(np.unique(near[0][0]))

    # both, as matching runs them: one index, so the parcels' envelopes are worked out once
    core_op = "spatial core: point-in-parcel join, then 50 m nearest"
    ours_core = "mujun ParcelIndex.covering, then .nearest (one index, 2 threads)"

    def core() -> Any:
        index = ParcelIndex(parcels, pinfo)
        inside = np.zeros(len(pts), dtype=bool)
        inside[index.covering(pts)[0]] = True
        return index.nearest(pts[~inside], 50.0)

    near3 = run(core_op, ours_core, core)
    res["checks"]["core_nearest_equal"] = all(np.array_equal(a, b) for a, b in zip(near2, near3))
    res["checks"]["nearest_found_sjoin_nearest"] = int(sn["fi"].nunique())

    # STEP 3: clip buildings to parcels for floor area
    op = "clip buildings, floor area"
    bg = np.asarray(buildings.geometry.values, dtype=object)
    floors = np.nan_to_num(buildings["floors"].to_numpy(dtype=float, na_value=np.nan), nan=1.0)
    fa1 = run(op, "shapely vectorised, 1 thread", lambda: _clip_floor_area(pg, bg, floors))
    fa2 = run(op, f"shapely vectorised, {threads} threads",
              lambda: _clip_floor_area(pg, bg, floors, threads=threads))  # fmt: skip
    fa3 = run(op, "shapely, intersect edge-crossing only, 1 thread",
              lambda: _clip_floor_area(pg, bg, floors, skip_covered=True))  # fmt: skip
    fa4 = run(op, f"shapely, intersect edge-crossing only, {threads} threads",
              lambda: _clip_floor_area(pg, bg, floors, threads=threads, skip_covered=True))  # fmt: skip
    res["checks"]["floor_area_skip_covered_equal"] = bool(
        np.allclose(fa1, fa3) and np.allclose(fa1, fa4)
    )
    # as the pipeline runs it: both layers come from the readers, which have checked and
    # repaired every geometry, so the stage does not check them again (nor does DuckDB)
    bm = run(
        op,
        "mujun land.building_metrics (stage)",
        lambda: land.building_metrics(fresh(parcels), buildings, check_valid=False),
    )
    res["checks"]["floor_area_sum_shapely"] = float(fa1.sum())
    res["checks"]["floor_area_threads_equal"] = bool(np.allclose(fa1, fa2))
    res["checks"]["floor_area_sum_building_metrics"] = float(bm["floor_area_m2"].sum())
    if overlay:
        bsub = gpd.GeoDataFrame({"floors": floors}, geometry=bg, crs=parcels.crs)
        ov = run(op, "geopandas.overlay", lambda: gpd.overlay(bsub, fresh(parcels)[["geometry"]]))
        res["checks"]["overlay_pieces"] = len(ov)

    # STEP 4: GeoPackage write of the parcels layer
    op = "GeoPackage write (parcels)"
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        a, b = Path(tmp) / "a.gpkg", Path(tmp) / "b.gpkg"
        run(op, "mujun write_geopackage (Arrow)",
            lambda: write_geopackage({"parcels": parcels}, a, overwrite=True))  # fmt: skip
        if fiona:
            prepared = prepare_for_gpkg(parcels)

            def with_fiona():
                b.unlink(missing_ok=True)
                prepared.to_file(b, driver="GPKG", engine="fiona")

            run(op, "fiona (GeoDataFrame.to_file)", with_fiona)

    # STEP 5: DuckDB spatial on the same frames
    try:
        con = duckdb_spatial(threads)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        res["duckdb_error"] = str(exc)
        print(f"  DuckDB skipped: {exc}", flush=True)
    else:
        with meter.step("duckdb load"):
            tables = {
                "parcels_t": _arrow({"pj": np.arange(len(pg)), "ind": industrial}, pg),
                "firms_t": _arrow({"fi": np.arange(len(pts))}, pts),
                "leftover_t": _arrow({"fi": left}, pts[left]),
                "buildings_t": _arrow({"bi": np.arange(len(bg)), "floors": floors}, bg),
            }  # fmt: skip
            for name, tab in tables.items():
                con.register(name, tab)
                cols = ", ".join(c for c in tab.column_names if c != "wkb")
                con.execute(
                    f"CREATE TABLE {name[:-2]} AS SELECT {cols}, ST_GeomFromWKB(wkb) AS geom FROM {name}"
                )
                con.unregister(name)
            con.execute("CREATE TABLE ind AS SELECT pj, geom FROM parcels WHERE ind")
        res["duckdb_load_s"] = meter.steps[-1]["seconds"]
        q_within = (
            "CREATE OR REPLACE TABLE r_within AS SELECT f.fi, p.pj FROM firms f "
            "JOIN parcels p ON ST_Within(f.geom, p.geom)"
        )
        q_near = (
            "CREATE OR REPLACE TABLE r_near AS SELECT l.fi, "
            "arg_min(p.pj, ST_Distance(l.geom, p.geom)) AS pj, "
            "min(ST_Distance(l.geom, p.geom)) AS d FROM leftover l "
            "JOIN ind p ON ST_DWithin(l.geom, p.geom, 50) GROUP BY l.fi"
        )
        q_clip = ("CREATE OR REPLACE TABLE r_clip AS SELECT p.pj, "
                  "sum(ST_Area(ST_Intersection(b.geom, p.geom)) * b.floors) AS fa "
                  "FROM buildings b JOIN parcels p ON ST_Intersects(b.geom, p.geom) GROUP BY p.pj")  # fmt: skip
        label = f"DuckDB spatial ({threads} threads)"
        run("point-in-parcel join", label, lambda: con.execute(q_within))
        run("50 m nearest (leftover points)", label, lambda: con.execute(q_near))
        run(core_op, label, lambda: (con.execute(q_within), con.execute(q_near)))
        run("clip buildings, floor area", label, lambda: con.execute(q_clip))
        # two more rounds of the matching operations, ours and DuckDB's taking turns, each
        # keeping its best: a slow spell of the machine cannot fall on one engine only
        join, near_op = "point-in-parcel join", "50 m nearest (leftover points)"
        for _ in range(2):
            run(join, ours_cover, cover)
            run(join, label, lambda: con.execute(q_within))
            run(near_op, ours_near, nearest)
            run(near_op, label, lambda: con.execute(q_near))
            run(core_op, ours_core, core)
            run(core_op, label, lambda: (con.execute(q_within), con.execute(q_near)))
        res["checks"]["points_in_parcels_duckdb"] = con.sql(
            "SELECT count(DISTINCT fi) FROM r_within").fetchone()[0]  # fmt: skip
        res["checks"]["nearest_found_duckdb"] = con.sql("SELECT count(*) FROM r_near").fetchone()[0]
        res["checks"]["floor_area_sum_duckdb"] = con.sql("SELECT sum(fa) FROM r_clip").fetchone()[0]
    meter.close()
    out_json.write_text(json.dumps(res, indent=1, ensure_ascii=False), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# report


def _fmt(x: float | None, nd: int = 2) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def print_run(res: dict[str, Any]) -> None:
    """Tables of one run: steps of the pipeline, then the engine comparison."""
    p = res["pipeline"]
    print(f"\n## pipeline: {res['n_parcels']:,} parcels, {res['n_firms']:,} firms, "
          f"{res['n_buildings']:,} buildings")  # fmt: skip
    print(f"{'step':44s} {'time s':>8s} {'cpu s':>8s} {'peak RSS MB':>12s} {'load':>5s}")
    for s in p["steps"]:
        print(
            f"{s['step']:44s} {s['seconds']:8.2f} {s['cpu_s']:8.2f} {s['peak_rss_mb']:12.0f} "
            f"{s['load1']:5.1f}"
        )
    print(f"{'TOTAL (files → GeoPackage)':44s} {p['total_s']:8.2f} {p['peak_rss_mb']:12.0f}")
    for s in p["steps"]:
        if "child_extra_mb" in s:
            print(f"({s['step']}: peak includes {s['child_extra_mb']:.0f} MB of child processes)")
    beside = p.get("pipeline_timings", {}).get("buildings_background")
    if beside is not None:
        print(
            "(floor area clipped beside matching, evaluation and land, in a child process or "
            f"a thread: {beside:.2f} s)"
        )
    c = res.get("compare")
    if not c:
        return
    print(f"\n{'operation':32s} {'engine':50s} {'time s':>8s} {'cpu s':>8s} {'peak MB':>8s}")
    for op, engines in c["ops"].items():
        for eng, v in engines.items():
            print(
                f"{op:32s} {eng:50s} {v['seconds']:8.2f} {v['cpu_s']:8.2f} {v['peak_rss_mb']:8.0f}"
            )
    for row in comparison_rows(res):
        print(f"ratio {row[0]}: ours {_fmt(row[1])} s / {row[3]} {_fmt(row[2])} s = {_fmt(row[4])}")
    if "duckdb_error" in c:
        print("DuckDB:", c["duckdb_error"])
    print("checks:", json.dumps(c["checks"], ensure_ascii=False))


def _step_seconds(p: dict[str, Any], prefix: str) -> float:
    return sum(s["seconds"] for s in p["steps"] if s["step"].startswith(prefix))


def comparison_rows(
    res: dict[str, Any],
) -> list[tuple[str, float | None, float | None, str, float | None]]:
    """(operation, our time, other engine's time, other engine, ratio ours/other)."""
    c = res.get("compare") or {}
    ops = c.get("ops", {})
    p = res["pipeline"]

    def t(op: str, prefix: str) -> float | None:
        for eng, v in ops.get(op, {}).items():
            if eng.startswith(prefix):
                return v["seconds"]
        return None

    duck_match = None
    if t("point-in-parcel join", "DuckDB") is not None:
        duck_match = t("point-in-parcel join", "DuckDB") + t(
            "50 m nearest (leftover points)", "DuckDB"
        )
    join, near = "point-in-parcel join", "50 m nearest (leftover points)"
    clip, gpkg = "clip buildings, floor area", "GeoPackage write (parcels)"
    edge = "shapely, intersect edge-crossing only, 2"
    # both operations on one index, as matching runs them, against DuckDB's two queries
    # (older result files: the sum of the two operations, each on its own index)
    core = "spatial core: point-in-parcel join, then 50 m nearest"
    ours_spatial, duck_core = t(core, "mujun"), t(core, "DuckDB")
    if ours_spatial is None and t(join, "mujun") is not None and t(near, "mujun") is not None:
        ours_spatial = t(join, "mujun") + t(near, "mujun")
    if duck_core is None:
        duck_core = duck_match
    # the pipeline clips in a thread beside matching, sharing the cores with it: the stage
    # timed alone, as DuckDB is, is the comparison (the pipeline's own figure otherwise)
    floor_stage = t(clip, "mujun land.building_metrics")
    if floor_stage is None:
        floor_stage = p.get("pipeline_timings", {}).get("buildings_background")
    if floor_stage is None:
        floor_stage = _step_seconds(p, "buildings")
    rows = [
        ("matching stage (with name rules) vs DuckDB join + nearest", _step_seconds(p, "match"), duck_match, "DuckDB"),
        ("matching spatial queries vs DuckDB join + nearest", ours_spatial, duck_core, "DuckDB"),
        ("point-in-parcel join", t(join, "mujun"), t(join, "DuckDB"), "DuckDB"),
        ("50 m nearest", t(near, "mujun"), t(near, "DuckDB"), "DuckDB"),
        ("floor-area stage vs DuckDB clip", floor_stage, t(clip, "DuckDB"), "DuckDB"),
        ("clip, shapely 1 thread", t(clip, "shapely vectorised, 1"), t(clip, "DuckDB"), "DuckDB"),
        ("clip, edge-crossing only, threads", t(clip, edge), t(clip, "DuckDB"), "DuckDB"),
        ("GeoPackage write", t(gpkg, "mujun"), t(gpkg, "fiona"), "fiona"),
    ]  # fmt: skip
    return [(a, b, d, e, (b / d if b is not None and d else None)) for a, b, d, e in rows]


def markdown_table(small: dict[str, Any], large: dict[str, Any]) -> str:
    """Docs table: steps at both sizes, growth ratio, peak RSS, DuckDB time and ratio."""
    n0, n1 = small["n_parcels"], large["n_parcels"]
    nlogn = (n1 * math.log(n1)) / (n0 * math.log(n0))
    duck = {}
    for row in comparison_rows(large):
        if row[0].startswith("matching stage"):
            duck["match"] = row
        if row[0].startswith("floor-area stage"):
            duck["buildings: floor area, FAR"] = row
    lines = [
        f"| step | {n0 // 1000}k time (s) | {n1 // 1000}k time (s) | {n1 // 1000}k CPU (s) | ratio "
        f"| peak RSS at {n1 // 1000}k (MB) | other engine at {n1 // 1000}k (s) | ours / other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    s_small = {s["step"]: s for s in small["pipeline"]["steps"]}
    for s in large["pipeline"]["steps"]:
        a = s_small.get(s["step"], {}).get("seconds")
        ratio = s["seconds"] / a if a else None
        flag = " ⚠" if ratio is not None and ratio > nlogn * 1.15 and s["seconds"] > 1 else ""
        d = duck.get(s["step"])
        other = f"{_fmt(d[2])} ({d[3]})" if d and d[2] is not None else ""
        rel = _fmt(d[4]) if d and d[4] is not None else ""
        lines.append(f"| {s['step']} | {_fmt(a)} | {_fmt(s['seconds'])} | {_fmt(s.get('cpu_s'))} "
                     f"| {_fmt(ratio, 1)}{flag} | {s['peak_rss_mb']:.0f} | {other} | {rel} |")  # fmt: skip
    a, b = small["pipeline"], large["pipeline"]
    last = max(i for i, s in enumerate(b["steps"]) if s["step"].startswith("export"))
    cpu = sum(s.get("cpu_s") or 0.0 for s in b["steps"][: last + 1])  # as total_s
    lines.append(f"| **total, files → GeoPackage** | {_fmt(a['total_s'])} | {_fmt(b['total_s'])} "
                 f"| {_fmt(cpu)} | {_fmt(b['total_s'] / a['total_s'], 1)} | {b['peak_rss_mb']:.0f} "
                 "| | |")  # fmt: skip
    lines.append(f"\nn log n growth for {n0:,} → {n1:,} is ×{nlogn:.1f}; ⚠ marks a step growing "
                 "more than 15 % faster (and taking over 1 s).")  # fmt: skip
    lines += ["", engine_table(small, large)]
    return "\n".join(lines)


def engine_table(small: dict[str, Any], large: dict[str, Any]) -> str:
    """Docs table: every engine of every core operation at both sizes (best of the repeats)."""
    n0, n1 = small["n_parcels"] // 1000, large["n_parcels"] // 1000
    lines = [
        f"| operation | engine | {n0}k (s) | {n1}k (s) | {n1}k CPU (s) | {n1}k peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    ops0 = (small.get("compare") or {}).get("ops", {})
    for op, engines in (large.get("compare") or {}).get("ops", {}).items():
        for eng, v in engines.items():
            a = ops0.get(op, {}).get(eng, {}).get("seconds")
            lines.append(f"| {op} | {eng} | {_fmt(a)} | {_fmt(v['seconds'])} | {_fmt(v['cpu_s'])} "
                         f"| {v['peak_rss_mb']:.0f} |")  # fmt: skip
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# driver


def _phase(args: argparse.Namespace, phase: str, data: Path, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase,
           "--data", str(data), "--out", str(out), "--threads", str(args.threads),
           "--repeat", str(args.repeat)]  # fmt: skip
    cmd += ["--report"] if args.report else []
    cmd += ["--maps"] if args.maps else []
    cmd += ["--profile"] if args.profile else []
    cmd += ["--no-fiona"] if args.no_fiona else []
    cmd += ["--overlay"] if args.overlay else []
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"[{phase} phase: {time.perf_counter() - t0:.1f} s]", flush=True)
    return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--firms", type=int, default=None, help="default: parcels / 2")
    ap.add_argument("--buildings", type=int, default=None, help="default: 2 × parcels")
    ap.add_argument("--seed", type=int, default=0)
    add_shape_option(ap, default="irregular")  # rectangle: the data of sessions 1-6
    ap.add_argument(
        "--workdir", default="/tmp/mujun-bench", help="inputs and outputs (outside the repo)"
    )
    ap.add_argument("--regenerate", action="store_true", help="make the inputs even if present")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for engine steps under 10 s")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads and threaded shapely")
    ap.add_argument("--no-compare", action="store_true", help="pipeline only")
    ap.add_argument("--no-fiona", action="store_true", help="skip the (slow) fiona write")
    ap.add_argument("--overlay", action="store_true", help="also time geopandas.overlay (slow)")
    ap.add_argument("--report", action="store_true", help="also write report.xlsx (slow at 1M)")
    ap.add_argument("--maps", action="store_true", help="also draw the HTML/PNG maps")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the pipeline (timings then inflated; not for the table)",
    )
    ap.add_argument(
        "--reuse-pipeline", action="store_true", help="keep the last pipeline.json (compare only)"
    )
    ap.add_argument(
        "--reuse-compare", action="store_true", help="keep the last compare.json (pipeline only)"
    )
    ap.add_argument("--table", nargs=2, metavar="JSON", help="markdown table of two runs")
    ap.add_argument("--phase", choices=["pipeline", "compare"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.table:
        a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.table)
        print(markdown_table(*sorted([a, b], key=lambda r: r["n_parcels"])))
        return 0
    if args.phase == "pipeline":
        phase_pipeline(
            Path(args.data),
            Path(args.out),
            report=args.report,
            maps=args.maps,
            profile=args.profile,
        )
        return 0
    if args.phase == "compare":
        phase_compare(Path(args.data), Path(args.out), threads=args.threads,
                      fiona=not args.no_fiona, overlay=args.overlay, repeat=args.repeat)  # fmt: skip
        return 0

    n_firms = args.firms if args.firms is not None else args.parcels // 2
    n_buildings = args.buildings if args.buildings is not None else 2 * args.parcels
    name = data_dir_name(args.parcels, args.shape)
    data = Path(args.workdir) / name
    manifest_path = data / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    wanted = {
        "n_parcels": args.parcels,
        "n_firms": n_firms,
        "n_buildings": n_buildings,
        "seed": args.seed,
        "shape": args.shape,
    }
    manifest.setdefault("shape", "rectangle")  # (written before shapes were a choice)
    if args.regenerate or any(manifest.get(k) != v for k, v in wanted.items()):
        print(f"generating {data} …", flush=True)
        subprocess.run([sys.executable, str(HERE / "make_province.py"), "--parcels", str(args.parcels),
                        "--firms", str(n_firms), "--buildings", str(n_buildings),
                        "--seed", str(args.seed), "--workdir", str(args.workdir),
                        "--shape", args.shape],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        manifest = json.loads(manifest_path.read_text())
    res: dict[str, Any] = {**wanted, "machine": _machine(), "generate": manifest}
    print(f"generator: make {manifest['make_s']} s, write {manifest['write_s']} s", flush=True)
    if args.profile:  # profiled timings are inflated: keep them apart from the results
        prof = _phase(args, "pipeline", data, data / "pipeline_profiled.json")
        print(
            f"profile: {data / 'pipeline_profiled.profile.txt'} (total {prof['total_s']} s under cProfile)"
        )
        return 0
    if args.reuse_pipeline and (data / "pipeline.json").exists():
        res["pipeline"] = json.loads((data / "pipeline.json").read_text(encoding="utf-8"))
        print("pipeline: reusing", data / "pipeline.json")
    else:
        res["pipeline"] = _phase(args, "pipeline", data, data / "pipeline.json")
    if args.reuse_compare and (data / "compare.json").exists():
        res["compare"] = json.loads((data / "compare.json").read_text(encoding="utf-8"))
        print("compare: reusing", data / "compare.json")
    elif not args.no_compare:
        res["compare"] = _phase(args, "compare", data, data / "compare.json")
    out = Path(args.workdir) / f"bench_{name}.json"
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False), encoding="utf-8")
    print_run(res)
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
