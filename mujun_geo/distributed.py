"""Dask engine: 地企对应 matching and the land stage on parcel partitions of a dask cluster.

``--engine dask`` (``engine: dask`` in the run YAML) gives the same results as the default
in-memory engine — the tests compare every column of every output, bit for bit — but runs
the parts that grow with geometry on a `dask.distributed <https://distributed.dask.org>`_
cluster: point-in-parcel (``within``), nearest industrial parcel (``nearest``, and the
distance reported for unmatched firms) and the clipping of buildings to parcels (floor area,
容积率, 建筑系数, 配套用地, and ``land_mode="floor_area"``). The code, name and override rules,
the review round and the land modes are hash joins on attribute tables; they stay on the
driver.

When to use it
--------------
Not for a county or a city. The in-memory engine handles a few hundred thousand parcels in
under a minute and a few GB of memory on a laptop; the dask engine adds start-up and
routing overhead and gains only where several cores (or machines) work on the geometry at
once. Measured on a shared 2-core machine with 200 000 parcels, 100 000 firms and 400 000
buildings (``scripts/make_province.py``), results identical:

=================================  ==========  ==============================
step                               in memory   dask (local cluster, 2 threads)
=================================  ==========  ==============================
matching                           4.8 s       5.8 s
building metrics (land stage)      5.6 s       7.9 s
peak memory (RSS, incl. layers)    1.25 GB     1.12 GB
=================================  ==========  ==============================

About 90 % of matching time is driver work (name normalisation, fuzzy names, codes), which
no cluster shortens; the building clipping is split across workers. Use the dask engine for
province-wide runs (millions of parcels and buildings) on a machine with many cores or on
an existing dask cluster, or when one machine's memory is the limit for the land stage's
clipping (the workers hold the parcel partitions and the buildings routed to them).

Install it with ``pip install "mujun_geo[dask]"`` (dask.distributed).

How to start it
---------------
On one machine, ``mujun-geo run --config run.yml --engine dask`` starts a local cluster for
the run: one worker with a thread per core, in the same process (shapely releases the GIL,
so threads share the layers without copying them). On a cluster, start a scheduler and
workers, each with the same ``mujun_geo`` version installed, and pass the scheduler's
address::

    dask scheduler                                # head node, listens on port 8786
    dask worker tcp://HEAD:8786 --nthreads 8      # on every worker node
    mujun-geo run --config run.yml --engine dask --scheduler tcp://HEAD:8786

From Python::

    from mujun_geo import distributed as mgd
    with mgd.get_client("tcp://HEAD:8786") as client:   # get_client() = local cluster
        res = mgd.match_enterprises_dask(firms, parcels, client=client, max_distance=50)
        bm = mgd.building_metrics_dask(parcels, buildings, client=client)

Memory: the driver holds the input layers and the results as the in-memory engine does
(about 1 GB per 200 000 parcels with their firms and buildings); the workers hold the parcel
partitions (default one per 25 000 parcels, at least one per worker thread; ``npartitions``
changes it) and the points and buildings routed to them.

How it works
------------
Parcels with geometry are sorted along a Hilbert curve (the midpoints of their bounding
boxes, :meth:`geopandas.GeoSeries.hilbert_distance`, the curve of dask-geopandas'
``spatial_shuffle(by="hilbert")``) and cut into ``npartitions`` runs of equal size, which
are scattered to the workers; the driver keeps each partition's bounding box. (The layers
are already in the driver's memory, so a distributed shuffle would only add work, and
dask-geopandas' shuffle makes different partitions from run to run.) Every point goes to
each partition whose box covers it (``within``) or lies within ``max_distance`` of it
(``nearest`` — there is no distributed ``sjoin_nearest``, so the box is widened by the
distance and a nearest parcel across a partition border is still found). For the unbounded
distance reported for unmatched firms a first round asks the partition with the nearest box
and a second every partition whose box is nearer than that answer. Each partition runs the
STRtree queries of the in-memory engine and returns every candidate, ties included; the
driver keeps, per point, the candidates at the smallest distance and applies the in-memory
rules and tie-breaks unchanged (covering parcel: interior, then industrial, then larger
area, then smaller ``parcel_id``; nearest: distance, then ``parcel_id``). Buildings go to
every partition whose box meets theirs and are clipped there by
:func:`mujun_geo.buildings.building_metrics` itself: a parcel lies in exactly one partition
and receives every building that touches it, in input order, so its overlap handling and
its sums are those of the in-memory engine. Repaired geometries and floors (with their
warnings) are worked out once on the driver.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
from shapely import STRtree

from mujun_geo import _match_rules as R
from mujun_geo import matching
from mujun_geo._errors import ConfigError, DataWarning, MujunGeoError
from mujun_geo._match_land import floor_area_by_occupant
from mujun_geo.buildings import _check_pair_crs, _valid_geoms, building_floors, building_metrics

__all__ = ["building_metrics_dask", "get_client", "match_enterprises_dask"]

logger = logging.getLogger(__name__)

#: Default parcels per partition (more partitions when the cluster has more threads).
PARCELS_PER_PARTITION = 25_000
#: Extra routing distance in metres, so that rounding never drops a candidate at the limit.
_PAD_M = 1e-3
_INSTALL = 'the dask engine needs dask.distributed: pip install "mujun_geo[dask]"'


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(_INSTALL) from err
    return distributed


# ---------------------------------------------------------------------------------------------
# client


def get_client(
    scheduler: str | None = None,
    *,
    n_workers: int = 1,
    threads_per_worker: int | None = None,
    processes: bool = False,
    timeout: float = 30.0,
) -> Any:
    """Connect a ``distributed.Client`` to `scheduler`, or start one on a local cluster.

    Parameters
    ----------
    scheduler
        Address of a running dask scheduler (``tcp://10.0.0.5:8786``); None starts a local
        cluster that closes with the client.
    n_workers
        Local cluster only: worker count (default 1).
    threads_per_worker
        Local cluster only: threads per worker (default: the machine's cores / `n_workers`).
    processes
        Local cluster only: workers in separate processes (default False: threads in this
        process, which share the layers without copying; shapely releases the GIL). Scripts
        using True need an ``if __name__ == "__main__":`` guard.
    timeout
        Seconds to wait for the scheduler (default 30).

    Returns
    -------
    distributed.Client
        Use it as a context manager, or call ``client.close()`` when done.

    Raises
    ------
    MujunGeoError
        The scheduler cannot be reached.
    ImportError
        distributed is not installed.

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("distributed")
    >>> with get_client(threads_per_worker=2) as client:
    ...     sum(client.nthreads().values())
    2
    """
    distributed = _import_distributed()
    if scheduler is not None:
        try:
            return distributed.Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as err:
            msg = (
                f"cannot reach the dask scheduler at {scheduler!r} ({err}); start it with "
                "`dask scheduler` and workers with `dask worker ADDRESS`, or leave out "
                "`--scheduler` for a local cluster"
            )
            raise MujunGeoError(msg) from err
    if threads_per_worker is None:
        threads_per_worker = max(1, (os.cpu_count() or 1) // max(n_workers, 1))
    logger.info("starting a local dask cluster: %d × %d threads", n_workers, threads_per_worker)
    return distributed.Client(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=processes,
        dashboard_address="127.0.0.1:0",  # any free port: never clashes with another run
    )


@contextlib.contextmanager
def _use_client(client: Any) -> Iterator[Any]:
    """`client`, else the current default client, else a local cluster for the call."""
    distributed = _import_distributed()
    if client is None:
        with contextlib.suppress(ValueError):
            client = distributed.default_client()
    if client is not None:
        yield client
        return
    with get_client() as local:
        yield local


# ---------------------------------------------------------------------------------------------
# partitions


def _part_bounds(part: gpd.GeoDataFrame) -> np.ndarray:
    """Bounding boxes of all parcels and of the industrial ones: [8] (NaN if none)."""
    geoms = np.asarray(part.geometry.values, dtype=object)
    out = np.full(8, np.nan)
    if len(geoms):
        out[:4] = shapely.total_bounds(geoms)
    if "_ind" in part and part["_ind"].any():
        out[4:] = shapely.total_bounds(geoms[part["_ind"].to_numpy()])
    return out


def _box_tree(bounds: np.ndarray) -> tuple[STRtree, np.ndarray]:
    """STRtree over the boxes that exist (no NaN), and their partition numbers."""
    ok = np.flatnonzero(~np.isnan(bounds).any(axis=1))
    return STRtree(shapely.box(*bounds[ok].T)), ok


def _groups(item: np.ndarray, part: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``[(partition, sorted item positions), ...]`` from routing pairs."""
    order = np.lexsort((item, part))
    item, part = item[order], part[order]
    keys, start = np.unique(part, return_index=True)
    return list(zip(keys.tolist(), np.split(item, start[1:])))


class _Partitions:
    """Parcels cut into equal runs along a Hilbert curve, held by the workers.

    Parameters
    ----------
    client
        ``distributed.Client``.
    parcels
        GeoDataFrame of the parcels to partition with column ``_pj`` (position in the caller's
        layer) and optionally ``_ind`` (industrial); every geometry present and non-empty.
    npartitions
        Partition count; None: one per :data:`PARCELS_PER_PARTITION` parcels, at least one
        per worker thread.
    """

    def __init__(self, client: Any, parcels: gpd.GeoDataFrame, npartitions: int | None) -> None:
        self.client = client
        n = len(parcels)
        threads = sum(client.nthreads().values()) or 1
        if npartitions is None:
            npartitions = max(threads, math.ceil(n / PARCELS_PER_PARTITION))
        elif not (isinstance(npartitions, int | np.integer) and npartitions >= 1):
            msg = f"`npartitions` must be a positive integer, got {npartitions!r}"
            raise ConfigError(msg)
        k = int(max(1, min(npartitions, n)))
        # STEP 1: equal runs along the Hilbert curve of the bounding-box midpoints
        code = parcels.geometry.hilbert_distance(level=16).to_numpy()
        order = np.lexsort((parcels["_pj"].to_numpy(), code))
        chunks = [np.sort(c) for c in np.array_split(order, k)] if n else []
        parts = [parcels.iloc[c].reset_index(drop=True) for c in chunks]
        bounds = np.vstack([_part_bounds(p) for p in parts]) if parts else np.empty((0, 8))
        # STEP 2: the partitions live on the workers; the driver keeps their boxes
        self.futures = client.scatter(parts, hash=False)
        self.all_tree, self.all_k = _box_tree(bounds[:, :4])
        self.ind_tree, self.ind_k = _box_tree(bounds[:, 4:])
        logger.info("%d parcels in %d Hilbert partitions on dask", n, len(parts))

    def run(self, fn: Callable, groups: list[tuple[int, np.ndarray]], *data: Any, **kw) -> list:
        """``fn(partition, *(d[items] for d in data), **kw)`` for each routed partition."""
        if not groups:
            return []
        m = len(data)
        flat = [_take(d, items) for _, items in groups for d in data]
        flat = self.client.scatter(flat, hash=False)
        futs = [
            self.client.submit(fn, self.futures[k], *flat[g * m : (g + 1) * m], pure=False, **kw)
            for g, (k, _) in enumerate(groups)
        ]
        return self.client.gather(futs)

    def route_points(self, xy: np.ndarray, distance: Any = None, *, industrial: bool = False):
        """Partitions whose box covers each point, or lies within `distance` metres of it."""
        tree, ks = (self.ind_tree, self.ind_k) if industrial else (self.all_tree, self.all_k)
        pts = shapely.points(xy)
        if distance is None:
            i, t = tree.query(pts)
        else:
            i, t = tree.query(pts, predicate="dwithin", distance=np.asarray(distance) + _PAD_M)
        return i, ks[t]


def _take(data: Any, items: np.ndarray) -> Any:
    return data.iloc[items] if isinstance(data, pd.DataFrame) else data[items]


# ---------------------------------------------------------------------------------------------
# matching


def _covering_task(part: gpd.GeoDataFrame, xy: np.ndarray, item: np.ndarray) -> tuple:
    """(item, parcel position) for every parcel of the partition covering a point."""
    q = STRtree(np.asarray(part.geometry.values, dtype=object)).query(
        shapely.points(xy), predicate="covered_by"
    )
    return item[q[0]], part["_pj"].to_numpy()[q[1]]


def _nearest_task(
    part: gpd.GeoDataFrame, xy: np.ndarray, item: np.ndarray, max_distance: float | None
) -> tuple:
    """Nearest industrial parcels of the partition (ties included): (item, position, m)."""
    ind = part["_ind"].to_numpy()
    geoms = np.asarray(part.geometry.values, dtype=object)[ind]
    q, d = STRtree(geoms).query_nearest(
        shapely.points(xy), max_distance=max_distance, return_distance=True, all_matches=True
    )
    return item[q[0]], part["_pj"].to_numpy()[ind][q[1]], d


def _closest(results: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item, every candidate at the smallest distance, sorted by item then position."""
    if not results:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    i, pj, d = (np.concatenate(a) for a in zip(*results))
    df = pd.DataFrame({"i": i.astype(np.int64), "pj": pj.astype(np.int64), "d": d})
    df = df[df["d"] == df.groupby("i")["d"].transform("min")].sort_values(["i", "pj"])
    return df["i"].to_numpy(), df["pj"].to_numpy(), df["d"].to_numpy(dtype=float)


class _PartitionedIndex(R.ParcelIndex):
    """:class:`mujun_geo._match_rules.ParcelIndex` answered by parcel partitions on dask."""

    def __init__(
        self,
        parcels: gpd.GeoDataFrame,
        pinfo: pd.DataFrame,
        *,
        client: Any,
        npartitions: int | None,
    ) -> None:
        self.geoms = np.asarray(parcels.geometry.values, dtype=object)
        has = pinfo["has_geom"].to_numpy()
        ind = pinfo["industrial"].to_numpy() & has
        self.n_industrial = int(ind.sum())
        keys = gpd.GeoDataFrame(
            {"_pj": np.flatnonzero(has), "_ind": ind[has]},
            geometry=self.geoms[has],
            crs=parcels.crs,
        )
        self.parts = _Partitions(client, keys, npartitions)

    def covering(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (point position, parcel position) pair where the parcel covers the point."""
        xy = shapely.get_coordinates(pts)
        i, k = self.parts.route_points(xy)
        res = self.parts.run(_covering_task, _groups(i, k), xy, np.arange(len(xy)))
        if not res:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        i, pj = (np.concatenate(a) for a in zip(*res))
        order = np.lexsort((pj, i))
        return i[order].astype(np.int64), pj[order].astype(np.int64)

    def nearest(self, pts: np.ndarray, max_distance: float | None) -> tuple:
        """Nearest industrial parcels, ties included: (point position, parcel position, m)."""
        xy = shapely.get_coordinates(pts)
        items = np.arange(len(xy))
        if max_distance is not None:
            i, k = self.parts.route_points(xy, max_distance, industrial=True)
            return _closest(
                self.parts.run(_nearest_task, _groups(i, k), xy, items, max_distance=max_distance)
            )
        # unbounded: the partition with the nearest box, then every box nearer than its answer
        home_i, home_t = self.parts.ind_tree.query_nearest(shapely.points(xy), all_matches=False)
        home = np.full(len(xy), -1)
        home[home_i] = self.parts.ind_k[home_t]
        first = self.parts.run(_nearest_task, _groups(home_i, home[home_i]), xy, items,
                               max_distance=None)  # fmt: skip
        i1, _, d1 = _closest(first)
        best = np.full(len(xy), np.inf)
        best[i1] = d1
        i, k = self.parts.route_points(xy[i1], best[i1], industrial=True)
        i = i1[i]
        more = k != home[i]
        second = self.parts.run(
            _nearest_task, _groups(i[more], k[more]), xy, items, max_distance=None
        )
        return _closest(first + second)

    def floor_area(self, parcels: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> pd.DataFrame:  # type: ignore[override]
        """:func:`mujun_geo._match_land.floor_area_by_occupant` over the partitions."""
        cols = [c for c in ("occupant_code", "floors") if c in buildings.columns]
        b = gpd.GeoDataFrame(
            buildings[cols].reset_index(drop=True),
            geometry=np.asarray(buildings.geometry.values, dtype=object),
            crs=buildings.crs,
        )
        routes = _route_envelopes(self.parts, b)
        res = self.parts.run(_floor_area_task, routes, b)
        if not res:
            return floor_area_by_occupant(parcels.iloc[:0], buildings.iloc[:0])
        out = pd.concat(res, ignore_index=True)
        return out.sort_values(["code", "pj"]).reset_index(drop=True)


def _floor_area_task(part: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> pd.DataFrame:
    out = floor_area_by_occupant(part, buildings)
    out["pj"] = part["_pj"].to_numpy()[out["pj"].to_numpy()]
    return out


def _route_envelopes(parts: _Partitions, gdf: gpd.GeoDataFrame) -> list:
    """Partitions whose box meets each geometry's box (missing geometries go nowhere)."""
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    ok = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    i, t = parts.all_tree.query(geoms[ok])
    return _groups(ok[i], parts.all_k[t])


def match_enterprises_dask(
    enterprises: gpd.GeoDataFrame,
    parcels: gpd.GeoDataFrame,
    *,
    client: Any = None,
    npartitions: int | None = None,
    **match_kwargs: Any,
) -> matching.MatchResult:
    """:func:`mujun_geo.matching.match_enterprises` with its spatial rules on dask.

    Same inputs, options, rules and result as the in-memory engine; see the module docstring
    for how the work is split.

    Parameters
    ----------
    enterprises, parcels
        As for :func:`~mujun_geo.matching.match_enterprises`.
    client
        ``distributed.Client`` (see :func:`get_client`); None uses the current default
        client, else a local cluster started and closed for this call.
    npartitions
        Parcel partitions; None: one per 25 000 parcels, at least one per worker thread.
    **match_kwargs
        Options of :func:`~mujun_geo.matching.match_enterprises` (``overrides``,
        ``max_distance``, ``land_mode``, ``buildings``, …); others raise ``TypeError``.

    Returns
    -------
    MatchResult

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("distributed")
    >>> import geopandas as gpd
    >>> from shapely import box, Point
    >>> parcels = gpd.GeoDataFrame({"parcel_id": ["P1", "P2"], "land_use": ["0601", "0601"]},
    ...     geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)], crs=4549)
    >>> firms = gpd.GeoDataFrame({"credit_code": ["A", "B"]},
    ...     geometry=[Point(50, 50), Point(230, 50)], crs=4549)
    >>> with get_client(threads_per_worker=2) as client:
    ...     res = match_enterprises_dask(firms, parcels, client=client, npartitions=2)
    >>> res.matches[["credit_code", "parcel_id", "method", "distance_m"]].values.tolist()
    [['A', 'P1', 'within', 0.0], ['B', 'P2', 'nearest', 30.0]]
    """
    opts = inspect.signature(matching.match_enterprises).bind(enterprises, parcels, **match_kwargs)
    opts.apply_defaults()
    kw = {k: v for k, v in opts.arguments.items() if k not in ("enterprises", "parcels")}
    with _use_client(client) as c:
        factory = functools.partial(_PartitionedIndex, client=c, npartitions=npartitions)
        return matching._match(enterprises, parcels, factory, **kw)


# ---------------------------------------------------------------------------------------------
# building metrics

_FLOOR_OPTS = ("storey_height_m", "height_raster", "raster_band", "default_floors")
_PARCEL_COLS = ("grade", "in_park", "area_mu")  # the columns building_metrics reads


def _metrics_task(
    part: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, *, attrs: pd.DataFrame, **kw: Any
) -> pd.DataFrame:
    """:func:`mujun_geo.buildings.building_metrics` of one partition, indexed by position."""
    pj = part["_pj"].to_numpy()
    p = gpd.GeoDataFrame(
        attrs.iloc[pj].set_axis(pj), geometry=part.geometry.to_numpy(), crs=part.crs
    )
    with warnings.catch_warnings():
        # geometries were repaired and floors filled on the driver, which warned once
        warnings.simplefilter("ignore", DataWarning)
        return building_metrics(p, buildings, **kw)


def building_metrics_dask(
    parcels: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    client: Any = None,
    npartitions: int | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`mujun_geo.buildings.building_metrics` with the clipping on dask partitions.

    Parameters
    ----------
    parcels, buildings
        As for :func:`~mujun_geo.buildings.building_metrics`.
    client
        ``distributed.Client`` (see :func:`get_client`); None uses the current default
        client, else a local cluster started and closed for this call.
    npartitions
        Parcel partitions; None: one per 25 000 parcels, at least one per worker thread.
    **kwargs
        Options of :func:`~mujun_geo.buildings.building_metrics`; others raise ``TypeError``.

    Returns
    -------
    pandas.DataFrame
        Index of ``parcels``; the columns of :func:`~mujun_geo.buildings.building_metrics`,
        with identical values.

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("distributed")
    >>> import geopandas as gpd, shapely
    >>> parcels = gpd.GeoDataFrame({"parcel_id": ["P1", "P2"]}, crs=4549,
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])
    >>> buildings = gpd.GeoDataFrame({"floors": [2]}, crs=4549,
    ...     geometry=[shapely.box(50, 0, 150, 10)])  # 500 m² on each parcel
    >>> with get_client(threads_per_worker=2) as client:
    ...     m = building_metrics_dask(parcels, buildings, client=client, npartitions=2)
    >>> m["floor_area_m2"].tolist(), m["far"].tolist()
    ([1000.0, 1000.0], [0.1, 0.1])
    """
    opts = inspect.signature(building_metrics).bind(parcels, buildings, **kwargs)
    opts.apply_defaults()
    kw = {k: v for k, v in opts.arguments.items() if k not in ("parcels", "buildings")}
    _check_pair_crs(parcels, buildings)
    if not (kw["storey_height_m"] > 0 and kw["tall_storey_m"] > 0):
        msg = "`storey_height_m` and `tall_storey_m` must be positive numbers of metres."
        raise ValueError(msg)

    # STEP 1 (driver): repair geometries and work out floors once, warning once
    pgeoms = _valid_geoms(parcels, "parcel")
    bgeoms = _valid_geoms(buildings, "building")
    fixed = buildings.copy()
    fixed[buildings.geometry.name] = gpd.GeoSeries(bgeoms, index=buildings.index, crs=buildings.crs)
    fl = building_floors(fixed, tall_storey_m=kw["tall_storey_m"],
                         tall_storey_factor=kw["tall_storey_factor"],
                         **{k: kw[k] for k in _FLOOR_OPTS})  # fmt: skip
    # known floors, heights and storey heights give the same floors and counted floors again
    cols = {"floors": fl["floors"], "height_m": fl["height_m"]}
    cols["storey_height_m"] = fl["storey_height_m"]
    if "use" in buildings.columns:
        cols["use"] = buildings["use"]
    b = gpd.GeoDataFrame(
        pd.DataFrame(cols).reset_index(drop=True), geometry=bgeoms, crs=buildings.crs
    )
    part_kw = {k: v for k, v in kw.items() if k not in _FLOOR_OPTS}
    attrs = pd.DataFrame(
        {c: parcels[c].to_numpy() for c in _PARCEL_COLS if c in parcels.columns},
        index=np.arange(len(parcels)),
    )

    # STEP 2 (workers): clip per partition; parcels without geometry on the driver
    has = ~(shapely.is_missing(pgeoms) | shapely.is_empty(pgeoms))
    out = []
    if (~has).any():
        none = np.flatnonzero(~has)
        p0 = gpd.GeoDataFrame(attrs.iloc[none], geometry=pgeoms[none], crs=parcels.crs)
        out.append(building_metrics(p0, b.iloc[:0], **part_kw))
    keys = gpd.GeoDataFrame({"_pj": np.flatnonzero(has)}, geometry=pgeoms[has], crs=parcels.crs)
    with _use_client(client) as c:
        parts = _Partitions(c, keys, npartitions)
        routes = _route_envelopes(parts, b)
        routed = {k for k, _ in routes}
        # partitions that no building reaches still need their rows
        routes += [(k, np.empty(0, np.int64)) for k in range(len(parts.futures)) if k not in routed]
        attrs_f = c.scatter(attrs, broadcast=True, hash=False)
        out += parts.run(
            _metrics_task, sorted(routes, key=lambda r: r[0]), b, attrs=attrs_f, **part_kw
        )
    res = pd.concat(out).sort_index()
    res.index = parcels.index
    return res
