"""The whole run: ingest → validate → match → evaluate → land → aggregate → export.

Each stage is a library function on (Geo)DataFrames; this module only wires them and
collects problems, so a user can run any stage alone from Python or the CLI.

Examples
--------
>>> from mujun_geo.datasets import sample_settings
>>> data = ingest(sample_settings())
>>> sorted(data.frames)
['buildings', 'enterprises', 'overrides', 'parcels', 'parks', 'regions', 'standard_land']
>>> data.crs.to_epsg()
4528
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
from pyproj import CRS

from . import __version__, io
from ._errors import MujunGeoError
from ._validate import Problems
from .export import check_writable, file_sha256, write_geopackage
from .gpkg_styles import add_styles
from .report import write_report
from .scoring_config import load_config
from .settings import RunSettings

__all__ = ["Ingested", "RunResult", "ingest", "run"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class Ingested:
    """Input layers read, repaired and in one working CRS, with the problems found."""

    frames: dict[str, pd.DataFrame]
    problems: Problems
    crs: CRS
    settings: RunSettings


@dataclass
class RunResult:
    """Everything a run produced: output layers, problems, timings."""

    layers: dict[str, pd.DataFrame]
    problems: Problems
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    report: Path | None = None
    maps: dict[str, Path] = field(default_factory=dict)


def ingest(settings: RunSettings, *, progress: Progress | None = None) -> Ingested:
    """Read every input layer named in ``settings`` into the working CRS.

    The working CRS is ``settings.target_crs`` when set, else the parcels' own projected
    CRS (the cadastral survey zone), else the 3-degree zone of the parcels' centre.
    """
    say = progress or (lambda _msg: None)
    for required in ("parcels", "enterprises"):
        if required not in settings.inputs:
            msg = f"input `{required}` is required: pass --{required} FILE or set inputs.{required}"
            raise MujunGeoError(msg)
    problems = Problems()
    frames: dict[str, pd.DataFrame] = {}
    engine = settings.io_engine
    say("读取宗地 parcels")
    parcels = io.read_parcels(
        settings.inputs["parcels"],
        crs=settings.crs.get("parcels"),
        target_crs=settings.target_crs,
        encoding=settings.encoding,
        engine=engine,
        problems=problems,
    )
    crs = parcels.crs
    frames["parcels"] = parcels
    layers = [
        (name, reader)
        for name, reader in (
            ("buildings", io.read_buildings),
            ("parks", io.read_parks),
            ("regions", io.read_regions),
        )
        if name in settings.inputs
    ]
    # The other vector layers need only the working CRS. GDAL reads and shapely checks
    # release the GIL, so they are read in a thread while the firm table is parsed; each
    # keeps its own problems, added in the usual order (the same rows as one after another).
    with ThreadPoolExecutor(1, thread_name_prefix="mujun-read") as pool:
        pending = [
            (name, pool.submit(_read_vector, reader, settings, name, crs))
            for name, reader in layers
        ]
        say("读取企业 enterprises")
        frames["enterprises"] = io.read_enterprises(
            settings.inputs["enterprises"],
            coord_sys=settings.coord_sys,
            crs=settings.crs.get("enterprises"),
            target_crs=crs,
            year=settings.year,
            engine=engine,
            problems=problems,
        )
        for name, future in pending:
            say(f"读取 {name}")
            frames[name], found = future.result()
            problems.extend(found)
    for name, table_reader in (
        ("overrides", io.read_overrides),
        ("standard_land", io.read_standard_land),
        ("targets", io.read_targets),
    ):
        if name in settings.inputs:
            frames[name] = table_reader(settings.inputs[name], problems=problems)
    _cross_checks(frames, problems)
    return Ingested(frames=frames, problems=problems, crs=crs, settings=settings)


def _read_vector(
    reader: Callable[..., gpd.GeoDataFrame], settings: RunSettings, name: str, crs: CRS
) -> tuple[gpd.GeoDataFrame, Problems]:
    found = Problems()
    frame = reader(
        settings.inputs[name],
        crs=settings.crs.get(name),
        target_crs=crs,
        engine=settings.io_engine,
        problems=found,
    )
    return frame, found


def _cross_checks(frames: dict[str, pd.DataFrame], problems: Problems) -> None:
    """Checks that need two layers: firms' county from the regions layer, group parents."""
    firms = frames["enterprises"]
    regions = frames.get("regions")
    if regions is not None and len(regions):
        counties = regions[regions["level"] == "county"]
        has_pt = (firms.geometry.notna() & ~firms.geometry.is_empty).to_numpy()
        if has_pt.any() and len(counties):
            code = _county_of_points(firms.geometry, counties)
            found = code[has_pt].dropna()
            firms.loc[found.index, "region_code"] = found
            outside = has_pt & code.isna().to_numpy()
            if outside.any():
                idx = firms.index[outside]
                problems.add(
                    "enterprises",
                    firms.loc[idx, "src_row"],
                    firms.loc[idx, "credit_code"],
                    "outside_regions",
                    "the firm's point lies in no county of the regions layer",
                )
    overrides = frames.get("overrides")
    if overrides is not None and len(overrides):
        # Series, not sets: isin hashes them without a Python string per row
        known_parcels = frames["parcels"]["parcel_id"]
        known_firms = firms.loc[~firms["rejected"], "credit_code"].dropna()
        for col, known, what in (
            ("parcel_id", known_parcels, "宗地代码"),
            ("credit_code", known_firms, "统一社会信用代码"),
        ):
            stale = ~overrides[col].isin(known)
            if stale.any():
                problems.add(
                    "overrides",
                    overrides.loc[stale, "src_row"],
                    overrides.loc[stale, col],
                    "stale_override",
                    f"override names a {what} that is not in this year's data; "
                    "it is not applied — update or delete the row",
                )
    codes = firms["credit_code"].dropna()
    orphan = firms["group_code"].notna() & ~firms["group_code"].isin(codes)
    if orphan.any():
        problems.add(
            "enterprises",
            firms.loc[orphan, "src_row"],
            firms.loc[orphan, "credit_code"],
            "group_parent_missing",
            "集团母公司信用代码 names no firm in the list; the firm is evaluated on its own",
        )


def _county_of_points(points: gpd.GeoSeries, counties: gpd.GeoDataFrame) -> pd.Series:
    """``region_code`` of the county each point lies within (NaN: none), index of ``points``.

    A point within several counties takes the first of them, as a left
    ``geopandas.sjoin(predicate="within")`` keeping the first match does. The counties
    are prepared and queried by the points' bounding boxes, then tested with
    ``contains`` (the point in the county's interior, i.e. ``within``).
    """
    pts = np.asarray(points, dtype=object)
    cg = np.asarray(counties.geometry.values, dtype=object)
    pi, ki = shapely.STRtree(cg).query(pts)
    fresh = ~shapely.is_prepared(cg)
    shapely.prepare(cg[fresh])
    try:
        inside = shapely.contains(cg[ki], pts[pi])
    finally:
        shapely.destroy_prepared(cg[fresh])
    pi, ki = pi[inside], ki[inside]
    order = np.lexsort((ki, pi))  # by point, then county: the first county of each point
    pi, ki = pi[order], ki[order]
    first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, dtype=bool)
    which = np.full(len(pts), -1, dtype=np.intp)
    which[pi[first]] = ki[first]
    codes = counties["region_code"].array.take(which, allow_fill=True)
    return pd.Series(codes, index=points.index, name="region_code")


def input_digests(settings: RunSettings) -> dict[str, str]:
    """SHA-256 of every input file of ``settings`` (database tables have none), by path."""
    files = [path for _, path in sorted(settings.inputs.items()) if not io.is_db_table(path)]
    # hashlib and file reads release the GIL: hash the input files two at a time
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(map(str, files), pool.map(file_sha256, files)))


def run_info(
    settings: RunSettings,
    *,
    started: datetime,
    finished: datetime,
    timings: dict[str, float],
    digests: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The ``run_info`` table: version, settings as YAML, input files with SHA-256, times.

    ``digests`` are the files' SHA-256 by path (:func:`input_digests`); None hashes them now.
    """
    rows = [
        ("version", __version__),
        ("config_yaml", settings.to_yaml()),
        # the preset is only named in the run file: record the scoring rules in full, so a
        # grade can be recomputed after the preset file changes in a later release
        ("scoring_yaml", load_config(settings.evaluation.get("preset", "zhejiang-2022")).to_yaml()),
        ("started", started.isoformat(timespec="seconds")),
        ("finished", finished.isoformat(timespec="seconds")),
    ]
    inputs = sorted(settings.inputs.items())
    digest = input_digests(settings) if digests is None else digests
    for name, path in inputs:
        if io.is_db_table(path):
            from .db import mask_dsn

            rows.append((f"input:{name}", f"database table {mask_dsn(str(path))}"))
        else:
            rows.append((f"input:{name}", f"{Path(path).name} sha256={digest[str(path)]}"))
    for stage, seconds in timings.items():
        rows.append((f"seconds:{stage}", f"{seconds:.3f}"))
    return pd.DataFrame(rows, columns=["key", "value"])


def write_maps(
    layers: dict[str, pd.DataFrame],
    out_dir: Path,
    *,
    settings: RunSettings,
    overwrite: bool,
    say: Progress,
) -> dict[str, Path]:
    """Offline HTML maps and print-ready PNG maps of a run (``output.maps``)."""
    from .plot import make_static_maps
    from .webmap import make_webmaps

    geo = {k: v for k, v in layers.items() if isinstance(v, gpd.GeoDataFrame)}
    opts = settings.output
    say("绘制交互地图 interactive maps")
    written = {
        f"{k}.html": v
        for k, v in make_webmaps(
            geo,
            out_dir,
            basemap=opts.get("basemap"),
            tk=opts.get("tianditu_key"),
            max_features=int(opts.get("max_features", 20000)),
            overwrite=overwrite,
        ).items()
    }
    say("绘制静态地图 static maps")
    written.update(
        {
            f"{k}.png": v
            for k, v in make_static_maps(
                geo, out_dir, dpi=int(opts.get("dpi", 300)), overwrite=overwrite
            ).items()
        }
    )
    return written


def run(
    settings: RunSettings,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    write: bool = True,
    until: str | None = None,
) -> RunResult:
    """Run every stage on the inputs of ``settings`` and write the GeoPackage.

    Raises :class:`~mujun_geo.export.OutputExistsError` before any work when the output
    exists and ``overwrite`` is False.
    """
    say = progress or (lambda _msg: None)
    out_dir = Path(settings.output["dir"])
    report_path = out_dir / "report.xlsx"
    if write:
        check_writable(settings.output_path, overwrite=overwrite)
        if settings.output.get("report", True):
            check_writable(report_path, overwrite=overwrite)
    if settings.output.get("pseudonymise"):
        from .privacy import check_salt

        check_salt(settings.output.get("salt") or os.environ.get("MUJUN_SALT", ""))
    started = datetime.now(timezone.utc)
    timings: dict[str, float] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="mujun-hash") as pool:
        # the inputs are hashed (for run_info) while they are read: the files as used
        digests = pool.submit(input_digests, settings)
        t0 = time.perf_counter()
        data = ingest(settings, progress=say)
        timings["ingest"] = time.perf_counter() - t0
        problems = data.problems
        if problems.has_errors:
            msg = "the inputs have blocking problems; run `mujun-geo validate` to list them"
            raise MujunGeoError(msg)
        from .stages import SUBSET_LAYERS, run_stages

        layers = run_stages(data, progress=say, timings=timings, until=until)
        rejects = problems.rejects()
        layers["rejects"] = rejects
        layers["problems"] = problems.frame()
        layers["run_info"] = run_info(
            settings,
            started=started,
            finished=datetime.now(timezone.utc),
            timings=timings,
            digests=digests.result(),
        )
    if settings.output.get("pseudonymise"):
        from .privacy import pseudonymise

        salt = settings.output.get("salt") or os.environ.get("MUJUN_SALT", "")
        layers = pseudonymise(layers, salt=salt)
    result = RunResult(layers=layers, problems=problems, info={"timings": timings, "crs": data.crs})
    if write:
        say("写出 GeoPackage")
        t0 = time.perf_counter()
        result.path = write_geopackage(
            layers,
            settings.output_path,
            overwrite=overwrite,
            postprocess=lambda tmp: add_styles(tmp, layers),
            subsets=SUBSET_LAYERS,
        )
        timings["export"] = time.perf_counter() - t0
        if settings.output.get("report", True):
            say("写出 Excel 报表")
            result.report = write_report(layers, report_path, overwrite=overwrite)
        if settings.output.get("maps", True) and until is None:
            t0 = time.perf_counter()
            result.maps = write_maps(
                layers, out_dir / "maps", settings=settings, overwrite=overwrite, say=say
            )
            timings["maps"] = time.perf_counter() - t0
        if settings.db:
            from .db import schema_for_year, write_postgis

            schema = settings.db_schema or schema_for_year(settings.year)
            say(f"写入 PostGIS schema {schema}")
            write_postgis(layers, settings.db, schema=schema, overwrite=overwrite)
            result.info["db_schema"] = schema
    return result
