"""Stage wiring for :func:`mujun_geo.pipeline.run`: from ingested inputs to output layers.

Order: 地企对应 (matching) → 亩均评价 (evaluation) → land allocation and parcel figures →
parks → 容积率/建筑系数 (buildings) → 低效用地 / 高耗低效 / 标准地 → parks, regions,
industries, leaders, year-over-year → layers. Each step is a library function; this
module only passes frames between them and records timings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely

from . import aggregate, land, matching
from ._background import NICE, lower_priority
from ._fork import ForkedCall, can_fork
from .evaluate import evaluate
from .export import SubsetView
from .units import m2_to_mu

if TYPE_CHECKING:
    from .pipeline import Ingested

__all__ = ["ENTERPRISE_COLUMNS", "PARCEL_COLUMNS", "STAGES", "VACANT_COLUMNS", "run_stages"]

logger = logging.getLogger(__name__)

#: Leading columns of the ``enterprises`` layer (CONTRACT.md), then the rest.
ENTERPRISE_COLUMNS = [
    "credit_code", "name", "match_status", "parcel_ids", "land_m2", "land_mu", "land_alloc_m2",
    "land_alloc_mu", "tax_per_mu", "va_per_mu", "va_per_tce", "va_per_emission", "labour_productivity",
    "rd_ratio", "score", "rank", "grade", "grade_note",
]  # fmt: skip
#: Leading columns of the ``parcels`` layer (CONTRACT.md), then the rest.
PARCEL_COLUMNS = [
    "parcel_id", "land_use", "area_m2", "area_mu", "n_enterprises", "tax_per_mu", "va_per_mu",
    "floor_area_m2", "far", "coverage", "ancillary_land_share", "grade", "lowland", "lowland_reasons",
]  # fmt: skip
#: Columns of the ``vacant`` table (those present): industrial parcels with no auto,
#: confirmed or review link. It has no geometry, as the polygons are in ``parcels`` (filter
#: that layer on ``vacant`` in QGIS, or join this table to it on ``parcel_id``).
VACANT_COLUMNS = [
    "parcel_id", "land_use", "land_use_name", "area_m2", "area_mu", "holder_name", "holder_code",
    "region_code", "park_id", "address", "n_review", "floor_area_m2", "far", "coverage",
    "n_buildings", "lowland", "lowland_reasons",
]  # fmt: skip
#: Layers that are a filter of another layer. The GeoPackage writer stores them as views
#: over that layer's table (after checking the frame is exactly those rows and columns),
#: so their rows always agree with it and cost no second copy.
SUBSET_LAYERS = {
    "lowland": SubsetView("parcels", "lowland", 1),
    "vacant": SubsetView("parcels", "vacant", True),
    "unmatched": SubsetView("enterprises", "match_status", "unmatched"),
}


@contextmanager
def _timed(name: str, timings: dict[str, float], say: Callable[[str], None], label: str) -> Any:
    say(label)
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0


#: The columns of the firms that :func:`mujun_geo.land.high_energy_low_efficiency` reads.
_HEL_COLUMNS = [
    "credit_code", "name", "energy_tce", "value_added", "land_mu", "tax_per_mu", "tax",
    "industry_code", "scale", "region_code",
]  # fmt: skip


def _live(firms: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Firms not rejected, only the ``columns`` a stage reads (those present)."""
    return firms.loc[~firms["rejected"], [c for c in columns if c in firms.columns]]


def _vacant(parcel_layer: pd.DataFrame) -> pd.DataFrame:
    """The ``vacant`` attribute table: parcels flagged ``vacant``, :data:`VACANT_COLUMNS`."""
    rows = parcel_layer["vacant"].fillna(False).astype(bool).to_numpy()
    cols = [c for c in VACANT_COLUMNS if c in parcel_layer.columns]
    return pd.DataFrame(parcel_layer.loc[rows, cols])


def _ordered(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    head = [c for c in first if c in frame.columns]
    rest = [c for c in frame.columns if c not in head and c != "geometry"]
    geom = ["geometry"] if "geometry" in frame.columns else []
    return frame[head + rest + geom]


STAGES = ("match", "evaluate", "land")


def run_stages(
    data: Ingested,
    *,
    progress: Callable[[str], None],
    timings: dict[str, float],
    until: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Run the stages after ingest and return the output layers by name.

    ``until`` stops after ``"match"`` or ``"evaluate"`` (for the stage subcommands); the
    land stage needs the grades, so ``"land"`` runs everything.
    """
    if until is not None and until not in STAGES:
        msg = f"`until` must be one of {STAGES}, got {until!r}"
        raise ValueError(msg)
    with (
        _engine(data.settings) as engine,
        ThreadPoolExecutor(1, "mujun-stage", initializer=lower_priority) as pool,
    ):
        return _run(data, engine, pool, progress=progress, timings=timings, until=until)


class _InMemory:
    """The default engine: the library functions themselves."""

    #: Clip buildings in a thread while matching, evaluation and land allocation run: the
    #: floor area needs only the geometry, and its GEOS work (GIL released) fills the core
    #: that the pandas work of matching leaves idle. At 1,000,000 parcels on 2 cores, match
    #: and floor area side by side took 17.0–17.8 s against 21.3 s one after the other.
    background_buildings = True
    #: ... in a forked child process where one can be had (Linux): its glue code then
    #: holds its own GIL, not the main thread's, and it runs ``NICE`` steps lower.
    fork_buildings = True
    match_enterprises = staticmethod(matching.match_enterprises)
    building_metrics = staticmethod(land.building_metrics)


class _Dask:
    """Matching and building metrics on a dask.distributed client (same results)."""

    background_buildings = False  # the cluster does the work; one stage at a time
    fork_buildings = False

    def __init__(self, client: Any, npartitions: int | None) -> None:
        self.client, self.npartitions = client, npartitions

    def match_enterprises(self, *args: Any, **kwargs: Any) -> Any:
        from .distributed import match_enterprises_dask

        return match_enterprises_dask(
            *args, client=self.client, npartitions=self.npartitions, **kwargs
        )

    def building_metrics(self, *args: Any, **kwargs: Any) -> Any:
        from .distributed import building_metrics_dask

        return building_metrics_dask(
            *args, client=self.client, npartitions=self.npartitions, **kwargs
        )


@contextmanager
def _engine(settings: Any) -> Any:
    if settings.engine != "dask":
        yield _InMemory()
        return
    from .distributed import get_client

    with get_client(settings.scheduler) as client:
        logger.info("dask engine: %s", client)
        yield _Dask(client, settings.npartitions)


def _building_options(lopts: dict[str, Any]) -> dict[str, Any]:
    return {
        "storey_height_m": lopts.get("storey_height_m", 3.5),
        "tall_storey_m": lopts.get("tall_storey_m", 8.0),
        "tall_storey_factor": lopts.get("tall_storey_factor", 2.0),
        "height_raster": lopts.get("height_raster"),
    }


def _run(
    data: Ingested,
    engine: Any,
    pool: ThreadPoolExecutor,
    *,
    progress: Callable[[str], None],
    timings: dict[str, float],
    until: str | None,
) -> dict[str, pd.DataFrame]:
    parcels: gpd.GeoDataFrame = data.frames["parcels"]
    buildings = data.frames.get("buildings")
    lopts = dict(data.settings.land)
    background: Future | ForkedCall | None = None
    if buildings is not None and until is None and engine.background_buildings:
        # the ancillary caps need the grades: redone with land.ancillary_caps afterwards
        if can_fork() and engine.fork_buildings:
            try:
                background = ForkedCall(
                    lambda: _floor_area_beside(
                        engine.building_metrics, parcels, buildings, lopts, own_geometries=False
                    ),
                    label="floor area of the buildings",
                    nice=NICE,
                )
            except OSError as exc:  # no memory or process slot for a child: a thread
                logger.info("no child process for the floor area (%s)", exc)
        if background is None:
            background = pool.submit(
                _floor_area_beside, engine.building_metrics, parcels, buildings, lopts
            )
    try:
        return _stages(data, engine, background, progress=progress, timings=timings, until=until)
    finally:
        if isinstance(background, ForkedCall):
            background.kill()  # (nothing to stop once its result is in)


def _stages(
    data: Ingested,
    engine: Any,
    background: Future | ForkedCall | None,
    *,
    progress: Callable[[str], None],
    timings: dict[str, float],
    until: str | None,
) -> dict[str, pd.DataFrame]:
    s = data.settings
    mopts = dict(s.matching)
    layers: dict[str, pd.DataFrame] = {}
    frames = data.frames
    problems = data.problems
    parcels: gpd.GeoDataFrame = frames["parcels"]
    firms: gpd.GeoDataFrame = frames["enterprises"]
    buildings = frames.get("buildings")
    parks = frames.get("parks")
    regions = frames.get("regions")
    lopts = dict(s.land)

    with _timed("match", timings, progress, "地企对应 matching"):
        region_names = None
        if regions is not None:
            region_names = dict(zip(regions["region_code"], regions["name"]))
        res = engine.match_enterprises(
            firms,
            parcels,
            overrides=frames.get("overrides"),
            buildings=buildings,
            region_names=region_names,
            **mopts,
        )
        problems.extend(res.problems)
        firm_out = firms.join(res.enterprises)
        summary = res.summary()
        logger.info("matching: %s", summary)
    if until == "match":
        firm_layer = gpd.GeoDataFrame(
            _ordered(firm_out, ENTERPRISE_COLUMNS), geometry="geometry", crs=firms.crs
        )
        parcel_layer = _ordered(parcels.join(res.parcels), PARCEL_COLUMNS)
        return {
            "enterprises": firm_layer,
            "matches": res.matches,
            "parcels": parcel_layer,
            "review": matching.review_table(res, firms, parcels),
            "vacant": _vacant(parcel_layer),
            "unmatched": firm_layer[firm_layer["match_status"] == "unmatched"],
        }

    with _timed("evaluate", timings, progress, "亩均评价 evaluation"):
        preset = s.evaluation.get("preset", "zhejiang-2022")
        extra = {k: v for k, v in s.evaluation.items() if k != "preset"}
        ev = evaluate(firm_out, config=preset, **extra)
        firm_out = firm_out.join(ev[[c for c in ev.columns if c not in firm_out.columns]])
    if until == "evaluate":
        firm_layer = gpd.GeoDataFrame(
            _ordered(firm_out, ENTERPRISE_COLUMNS), geometry="geometry", crs=firms.crs
        )
        return {"enterprises": firm_layer, "matches": res.matches}

    with _timed("allocate", timings, progress, "用地分摊与宗地指标 parcel figures"):
        alloc = aggregate.allocate_land(res.matches, parcels)
        firm_out["land_alloc_m2"] = aggregate.firm_land_alloc(firm_out, alloc)
        firm_out["land_alloc_mu"] = m2_to_mu(firm_out["land_alloc_m2"])
        pf = aggregate.parcel_figures(parcels, firm_out, alloc)
        parcel_out = parcels.join(res.parcels).join(pf)
        parcel_out["area_mu"] = m2_to_mu(parcel_out["area_m2"])
        parcel_out["park_id"] = aggregate.assign_parks(parcels, parks)
        parcel_out["in_park"] = parcel_out["park_id"].notna() if parks is not None else pd.NA
        industry = land.main_industry(
            _live(firm_out, ["credit_code", "industry_code", "value_added"]), res.matches
        )
        parcel_out["industry_code"] = aggregate._map_by(parcel_out["parcel_id"], industry)

    if buildings is not None:
        with _timed("buildings", timings, progress, "容积率与建筑系数 floor area, FAR, coverage"):
            if background is not None:
                try:
                    bm, timings["buildings_background"] = background.result()
                except ChildProcessError as exc:  # (killed for memory, say): here, then
                    logger.warning("%s; the floor area is worked out in this process", exc)
                    bm, timings["buildings_background"] = _floor_area_beside(
                        engine.building_metrics, parcels, buildings, lopts
                    )
                bm = land.ancillary_caps(parcel_out, bm)
            else:
                bm = engine.building_metrics(parcel_out, buildings, **_building_options(lopts))
            parcel_out = parcel_out.join(bm[[c for c in bm.columns if c not in parcel_out.columns]])

    with _timed("lowland", timings, progress, "低效用地与高耗低效 low-efficiency land"):
        exclude = [] if buildings is not None else ["idle", "far_below_min", "coverage_below_min"]
        lr = land.flag_lowland(
            parcel_out,
            rules=lopts.get("lowland_rules", "default"),
            exclude=exclude,
            industrial_codes=lopts.get("lowland_codes", ("0601",)),
        )
        parcel_out = gpd.GeoDataFrame(lr.parcels, geometry="geometry", crs=parcels.crs)
        layers["lowland"] = lr.lowland
        layers["lowland_summary"] = land.lowland_summary(parcel_out)
        layers["high_energy_low_efficiency"] = land.high_energy_low_efficiency(
            _live(firm_out, _HEL_COLUMNS)
        )
        if frames.get("standard_land") is not None:
            layers["standard_land_review"] = land.standard_land_review(
                parcel_out, frames["standard_land"], year=s.year
            )

    with _timed(
        "aggregate", timings, progress, "园区、行政区、行业汇总 parks, regions, industries"
    ):
        if parks is not None:
            layers["parks"] = aggregate.park_figures(parks, parcel_out, firm_out, alloc)
        previous = _previous(s)
        if regions is not None:
            layers["regions"] = aggregate.region_figures(
                regions,
                firm_out,
                targets=frames.get("targets"),
                year=s.year,
                previous=previous.get("regions"),
            )
        layers["industries"] = aggregate.industry_figures(firm_out)
        lead = [aggregate.leaders(firm_out, by="industry")]
        if parks is not None and len(layers.get("parks", [])):
            # the park of each firm's largest part of land (integer sorts, shared lookups)
            firm_park = aggregate._firm_parks(firm_out, alloc, parcel_out)
            types = parks.set_index("park_id")["park_type"]
            park_type = aggregate._map_few(firm_park, types)
            lead.append(aggregate.leaders(firm_out, by="park_type", park_types=park_type))
        layers["leaders"] = pd.concat(lead, ignore_index=True)
        if previous.get("enterprises") is not None:
            layers["changes"] = aggregate.grade_changes(firm_out, previous["enterprises"])
        if previous.get("parcels") is not None:
            layers["parcel_changes"] = aggregate.parcel_changes(parcel_out, previous["parcels"])

    review = matching.review_table(res, firms, parcels)
    firm_layer = gpd.GeoDataFrame(
        _ordered(firm_out, ENTERPRISE_COLUMNS), geometry="geometry", crs=firms.crs
    )
    parcel_layer = _ordered(parcel_out, PARCEL_COLUMNS)
    vacant = _vacant(parcel_layer)
    unmatched = firm_layer[firm_layer["match_status"] == "unmatched"]
    out = {
        "enterprises": firm_layer,
        "matches": res.matches,
        "parcels": parcel_layer,
        **{k: v for k, v in layers.items() if k == "lowland"},
        "review": review,
        "vacant": vacant,
        "unmatched": unmatched,
        **{k: v for k, v in layers.items() if k != "lowland"},
    }
    return {k: _geometry_last(v) for k, v in out.items() if v is not None}


def _floor_area_beside(
    building_metrics: Callable[..., pd.DataFrame],
    parcels: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    lopts: dict[str, Any],
    *,
    own_geometries: bool = True,
) -> tuple[pd.DataFrame, float]:
    """``building_metrics`` on the parcel geometries, and its seconds.

    Runs beside matching, in a forked child process or in a thread. ``building_metrics``
    prepares the parcels it clips against, and matching queries the same polygons with
    predicates that use a prepared geometry when there is one; GEOS's prepared geometries
    are not thread-safe, so a thread gets geometries of its own (`own_geometries`:
    ``force_2d`` builds new ones with the same coordinates, 0.6 s for 1,000,000 parcels;
    3D ones are copied through WKB). A child process has its own copy of memory anyway.
    """
    t0 = time.perf_counter()
    geoms = np.asarray(parcels.geometry.values, dtype=object)
    if own_geometries:
        own = shapely.force_2d(geoms)
        z = shapely.has_z(geoms)
        if z.any():
            own[z] = shapely.from_wkb(shapely.to_wkb(geoms[z], output_dimension=3))
        geoms = own
    frame = gpd.GeoDataFrame(geometry=gpd.GeoSeries(geoms, index=parcels.index, crs=parcels.crs))
    # the readers repaired both layers (mujun_geo.io): no second validity check
    out = building_metrics(frame, buildings, check_valid=False, **_building_options(lopts))
    return out, time.perf_counter() - t0


def _geometry_last(frame: pd.DataFrame) -> pd.DataFrame:
    """Geometry as the last column, as GDAL readers return it (same layout in every store)."""
    if isinstance(frame, gpd.GeoDataFrame) and frame.columns[-1] != frame.geometry.name:
        cols = [c for c in frame.columns if c != frame.geometry.name] + [frame.geometry.name]
        return frame[cols]
    return frame


def _previous(settings: Any) -> dict[str, pd.DataFrame]:
    """Last year's output GeoPackage (``inputs.previous``), by layer."""
    path = settings.inputs.get("previous")
    if path is None:
        return {}
    import pyogrio

    names = {name for name, _ in pyogrio.list_layers(path)}
    return {
        name: pyogrio.read_dataframe(path, layer=name)
        for name in ("enterprises", "regions", "parcels")
        if name in names
    }
