"""地企对应: link enterprises to the land parcels (宗地) they use.

:func:`match_enterprises` proposes links by four rules, applies the user's overrides, sends
conflicting links to review and works out each firm's land area. Every link records its
``method``, ``confidence`` (0–1) and ``evidence``.

============  =====================================================  ===========================
method        rule                                                   confidence
============  =====================================================  ===========================
credit_code   parcel ``holder_code`` = firm ``credit_code``          1.0
name          normalised ``holder_name`` = normalised ``name``       0.95
name (fuzzy)  rapidfuzz ratio s ≥ t = `name_threshold`, same county  0.6 + 0.3·(s − t)/(100 − t)
within        parcel covers the point, holder unknown                0.9
within        parcel covers the point, holder is another firm        0.8 (共租共用 tenant, auto)
nearest       point in no parcel; nearest industrial parcel, d m     0.8 − 0.3·d/`max_distance`
manual        ``assign`` override                                    1.0
============  =====================================================  ===========================

Rules and decisions (documented choices where the brief left them open):

* Names are normalised by :func:`mujun_geo.names.normalize_names`; a ``holder_name`` listing
  several holders (``A公司、B公司``, 共有) is split. An exact name link is never made across two
  known, different ``region_code`` values (a side without a code does not block it); a fuzzy link
  needs both codes known and equal. Fuzzy matching is tried only for firms without a code or
  exact-name link, against holder names not claimed by an exact link, on parcels without a
  ``holder_code``; each firm links to its best-scoring holder name (all parcels of that holder).
* Code and name rules run for every firm, and so does the location rule (to detect conflicts).
  The nearest rule runs only for a firm whose point lies in no parcel and that has no code or
  name link; it considers industrial parcels only, ``distance <= max_distance``.
* A point covered by several parcels (shared boundary, overlap) gets one ``within`` link:
  the parcel whose interior holds the point, then industrial, then the larger area, then the
  smaller ``parcel_id``. Nearest ties: smallest distance, then smallest ``parcel_id``.
* One link per (firm, parcel): when several rules give the same pair, the most trusted method
  is kept and the evidence of all is joined.
* Status ``review`` (counts for nothing until decided), with the reason in ``evidence``:
  (a) the point lies in an industrial parcel X not linked to the firm by code/name while
  code/name links point elsewhere: all automatic links of that firm; (b) one holder name fits
  several firms; (c) fuzzy scores tie between holder names; (d) a name fits but the parcel's
  ``holder_code`` is another code. A point in a *non-industrial* parcel (often a road or the
  neighbouring plot) does not conflict with a code/name link.
* Non-industrial parcels (``land_use`` not in `industrial_codes`) are linked but flagged
  ``industrial=False`` and never count as land, even when confirmed or assigned.
* Overrides, applied on every run: ``reject`` removes the pair before the rules compete (other
  rules may then propose other parcels; a rejected pair the rules still propose is listed with
  status ``rejected``). ``confirm`` sets status ``confirmed`` on that link only (other links of
  the firm keep their status; if the rules no longer propose the pair it is created with method
  ``manual``). ``assign`` creates a ``manual`` link (confidence 1, ``confirmed``) and *drops*
  every ``auto``/``review`` link of that firm (its confirmed links stay); the dropped parcels are
  named in the evidence. ``share`` (0–1) sets ``land_share`` (ignored with a problem row in
  ``parcel`` mode). For several rows on the same pair the last wins (problem row). Rows naming
  a firm that is absent or rejected, or a parcel that is absent, are not applied and are listed
  in ``problems``.
* Land. Counted links = status ``auto``/``confirmed`` on industrial parcels; other links have
  ``land_share`` 0. ``parcel`` — every firm gets the area of its connected component of the
  firm–parcel graph, ``eval_unit`` = smallest ``parcel_id`` of the component, ``land_share`` 1.
  ``holder`` — firms linked by code, name or ``assign`` keep the parcel (split equally if
  several); other firms on it are tenants with share 0 (still ``matched``, ``land_m2`` may be
  0); a parcel without a holder firm is split equally. ``equal`` — 1/n of the parcel each.
  ``floor_area`` — by floor area occupied (building footprint clipped to the parcel ×
  ``floors``; missing floors count as 1; only firms linked to the parcel count), equal split
  with a note on parcels without occupant data. Outside ``parcel`` mode ``eval_unit`` =
  ``credit_code``; unmatched firms also get their ``credit_code``. Shares on a parcel summing
  to more than 1 are reported in ``problems``.
* Firm outcome: ``rejected`` (``rejected`` column true: never linked), ``matched`` (at least one
  counted link; ``parcel_ids`` lists them) or ``unmatched`` with the first fitting reason:
  ``missing credit_code``, ``links awaiting review``, ``only non-industrial parcels linked:
  …``, ``candidate links rejected by overrides``, ``no coordinates and no name/code match``,
  ``nearest industrial parcel 120.3 m away (> 50 m)``. ``land_m2`` is NaN unless matched.
* A parcel is ``vacant`` when it is industrial and has no auto, confirmed or review link.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import box, Point
>>> parcels = gpd.GeoDataFrame({"parcel_id": ["P1", "P2"], "land_use": ["0601", "0601"],
...     "holder_name": ["宏达有限公司", None]},
...     geometry=[box(0, 0, 100, 100), box(200, 0, 300, 100)], crs=4549)
>>> firms = gpd.GeoDataFrame({"credit_code": ["A", "B"], "name": ["宏达", "新星"]},
...     geometry=[None, Point(250, 50)], crs=4549)
>>> res = match_enterprises(firms, parcels)
>>> res.matches[["credit_code", "parcel_id", "method", "confidence", "status"]].values.tolist()
[['A', 'P1', 'name', 0.95, 'auto'], ['B', 'P2', 'within', 0.9, 'auto']]
>>> res.enterprises["land_mu"].tolist()
[15.0, 15.0]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import geopandas as gpd
import shapely

from mujun_geo import _match_rules as R
from mujun_geo._background import lower_priority
from mujun_geo._errors import ConfigError, CRSError, SchemaError
from mujun_geo._match_land import allocate_land
from mujun_geo._match_overrides import DECISIONS, apply_overrides, parse_overrides, require
from mujun_geo._match_rules import clean_codes
from mujun_geo._validate import Problems
from mujun_geo.buildings import _threaded
from mujun_geo.names import _arrow as _arrow_text
from mujun_geo.units import m2_to_mu

__all__ = [
    "DECISIONS",
    "LAND_MODES",
    "MatchResult",
    "apply_review",
    "clean_codes",
    "match_enterprises",
    "review_table",
]

logger = logging.getLogger(__name__)

LAND_MODES = ("parcel", "holder", "equal", "floor_area")
_COUNTED = ("auto", "confirmed")
_MATCH_COLS = [
    "credit_code",
    "parcel_id",
    "method",
    "confidence",
    "distance_m",
    "land_share",
    "status",
    "industrial",
    "evidence",
    "note",
]


@dataclass
class MatchResult:
    """Result of :func:`match_enterprises`.

    Attributes
    ----------
    matches
        One row per enterprise–parcel link: ``credit_code, parcel_id, method, confidence,
        distance_m`` (point to parcel, metres; NaN without coordinates), ``land_share, status,
        industrial, evidence, note``; sorted by ``credit_code, parcel_id``.
    enterprises
        Input index; ``match_status, parcel_ids, land_m2, land_mu, eval_unit,
        unmatched_reason, nearest_parcel_id, nearest_distance_m, n_review, land_note``.
    parcels
        Input index; ``n_enterprises, vacant, credit_codes, industrial, n_review``.
    problems
        ``source, row, key, kind, reason, severity`` (stale overrides, missing codes, …).
    """

    matches: pd.DataFrame
    enterprises: pd.DataFrame
    parcels: pd.DataFrame
    problems: pd.DataFrame

    def summary(self) -> dict:
        """Count links by method and status, firms by match status, and vacant parcels.

        Examples
        --------
        >>> import pandas as pd
        >>> r = MatchResult(pd.DataFrame({"method": ["name"], "status": ["auto"]}),
        ...     pd.DataFrame({"match_status": ["matched"], "n_review": [0]}),
        ...     pd.DataFrame({"vacant": [False, True]}), pd.DataFrame())
        >>> r.summary()["n_vacant"], r.summary()["links_by_method"]
        (1, {'name': 1})
        """
        m, e, status = self.matches, self.enterprises, self.enterprises["match_status"]
        return {
            "n_links": len(m),
            "links_by_method": {
                str(k): int(v) for k, v in m["method"].value_counts().sort_index().items()
            },
            "links_by_status": {
                str(k): int(v) for k, v in m["status"].value_counts().sort_index().items()
            },
            "n_review": int((m["status"] == "review").sum()),
            "n_firms_review": int((e["n_review"] > 0).sum()),
            "n_matched": int((status == "matched").sum()),
            "n_unmatched": int((status == "unmatched").sum()),
            "n_rejected": int((status == "rejected").sum()),
            "n_vacant": int(self.parcels["vacant"].sum()),
            "n_problems": len(self.problems),
        }


# ---------------------------------------------------------------------------------------------
# checks


def _check_options(land_mode, industrial_codes, max_distance, name_threshold, buildings) -> None:
    if land_mode not in LAND_MODES:
        msg = f"`land_mode` must be one of {list(LAND_MODES)}, got {land_mode!r}"
        raise ConfigError(msg)
    if isinstance(industrial_codes, str):
        msg = f"`industrial_codes` must be a sequence of codes, e.g. ({industrial_codes!r},)"
        raise ConfigError(msg)
    if not (np.isfinite(max_distance) and max_distance >= 0):
        msg = f"`max_distance` must be a distance in metres >= 0, got {max_distance!r}"
        raise ConfigError(msg)
    if not 0 < name_threshold <= 100:
        msg = f"`name_threshold` must be in (0, 100], got {name_threshold!r}"
        raise ConfigError(msg)
    if land_mode == "floor_area" and (buildings is None or "occupant_code" not in buildings):
        msg = "land_mode='floor_area' needs `buildings` with an `occupant_code` column"
        raise ConfigError(msg)


def _check_crs(enterprises: pd.DataFrame, parcels: gpd.GeoDataFrame, buildings) -> None:
    if parcels.crs is None:
        msg = "`parcels` has no CRS: declare it with `parcels.set_crs(...)` (e.g. EPSG:4549)"
        raise CRSError(msg)
    e_crs = getattr(enterprises, "crs", None)
    if e_crs is None and isinstance(enterprises, gpd.GeoDataFrame):
        g = enterprises.geometry
        if bool((g.notna() & ~g.is_empty).any()):
            msg = "`enterprises` has no CRS: declare it with `enterprises.set_crs(...)`"
            raise CRSError(msg)
    for name, crs in (("enterprises", e_crs), ("buildings", getattr(buildings, "crs", None))):
        if crs is not None and not crs.equals(parcels.crs):
            msg = (
                f"CRS mismatch between `{name}` ({crs.to_string()}) and `parcels` "
                f"({parcels.crs.to_string()}). Reproject first, e.g. "
                f"`{name} = {name}.to_crs(parcels.crs)`."
            )
            raise CRSError(msg)
    if not parcels.crs.is_projected:
        msg = (
            f"matching needs a projected CRS in metres, got {parcels.crs.to_string()} "
            "(geographic); project both layers first, e.g. `parcels.to_crs(4549)` and "
            "`enterprises.to_crs(4549)` (CGCS2000 3-degree Gauss-Krüger CM 120E)"
        )
        raise CRSError(msg)


# ---------------------------------------------------------------------------------------------
# main entry


def match_enterprises(
    enterprises: gpd.GeoDataFrame,
    parcels: gpd.GeoDataFrame,
    *,
    overrides: pd.DataFrame | None = None,
    max_distance: float = 50.0,
    industrial_codes: Sequence[str] = ("0601", "0602", "0508"),
    land_mode: Literal["parcel", "holder", "equal", "floor_area"] = "parcel",
    name_threshold: float = 92.0,
    buildings: gpd.GeoDataFrame | None = None,
    region_names: Mapping[str, str] | None = None,
) -> MatchResult:
    """Link enterprises to parcels and work out each firm's land (地企对应).

    The rules, their confidence and every documented choice are in the module docstring.

    Parameters
    ----------
    enterprises
        Canonical enterprises (``credit_code``; optional ``name``, ``region_code``, boolean
        ``rejected``); point geometry, None or empty when there are no coordinates.
    parcels
        Canonical parcels (``parcel_id``, ``land_use``; optional ``holder_name``,
        ``holder_code``, ``region_code``), polygons in a projected CRS.
    overrides
        ``credit_code, parcel_id, action`` (confirm/reject/assign or 确认/否决/指定), optional
        ``share`` (0–1) and ``note``; applied on every run.
    max_distance
        Largest distance in metres for the nearest rule (inclusive). Default 50 m.
    industrial_codes
        ``land_use`` codes counted as evaluation land. Default 0601 工业, 0602 采矿, 0508 物流仓储.
    land_mode
        How a parcel with several firms is counted: ``parcel`` (share the parcel, merged
        ``eval_unit``), ``holder``, ``equal`` or ``floor_area``.
    name_threshold
        Minimum rapidfuzz ``ratio`` (0–100) for a fuzzy name link; 100 turns fuzzy off.
    buildings
        Buildings with ``occupant_code`` and ``floors``; needed for ``land_mode="floor_area"``.
    region_names
        Extra place names by region code (``{"330481": "海宁市"}``) stripped from names.

    Returns
    -------
    MatchResult

    Raises
    ------
    CRSError
        A layer lacks a CRS, the CRSs differ, or the CRS is geographic.
    SchemaError
        Required columns missing, duplicate ``parcel_id`` or ``credit_code``, wrong geometry type.
    ConfigError
        An option is out of range.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box, Point
    >>> parcels = gpd.GeoDataFrame({"parcel_id": ["P1"], "land_use": ["0601"]},
    ...                            geometry=[box(0, 0, 100, 100)], crs=4549)
    >>> firms = gpd.GeoDataFrame({"credit_code": ["A", "B"]},
    ...                          geometry=[Point(50, 50), Point(130, 50)], crs=4549)
    >>> res = match_enterprises(firms, parcels, land_mode="equal")
    >>> res.matches[["credit_code", "method", "distance_m", "land_share"]].values.tolist()
    [['A', 'within', 0.0, 0.5], ['B', 'nearest', 30.0, 0.5]]
    >>> res.enterprises["land_m2"].tolist()
    [5000.0, 5000.0]
    """
    return _match(
        enterprises,
        parcels,
        R.ParcelIndex,
        overrides=overrides,
        max_distance=max_distance,
        industrial_codes=industrial_codes,
        land_mode=land_mode,
        name_threshold=name_threshold,
        buildings=buildings,
        region_names=region_names,
    )


def _match(
    enterprises: gpd.GeoDataFrame,
    parcels: gpd.GeoDataFrame,
    index_factory: Callable[[gpd.GeoDataFrame, pd.DataFrame], R.ParcelIndex],
    *,
    overrides: pd.DataFrame | None,
    max_distance: float,
    industrial_codes: Sequence[str],
    land_mode: str,
    name_threshold: float,
    buildings: gpd.GeoDataFrame | None,
    region_names: Mapping[str, str] | None,
) -> MatchResult:
    """:func:`match_enterprises` with its spatial queries run by ``index_factory(parcels, pinfo)``.

    The in-memory engine passes :class:`mujun_geo._match_rules.ParcelIndex`;
    :mod:`mujun_geo.distributed` passes an index over parcel partitions on a dask cluster.
    """
    _check_options(land_mode, industrial_codes, max_distance, name_threshold, buildings)
    _check_crs(enterprises, parcels, buildings)
    require(enterprises, ["credit_code"], "enterprises")
    require(parcels, ["parcel_id", "land_use"], "parcels")
    problems = Problems()
    firms, pts = R.firm_table(enterprises, problems)
    pinfo = R.parcel_table(parcels, industrial_codes, problems)
    # The spatial queries need no names: they run in a thread while the names are normalised
    # and compared (shapely and Arrow release the GIL, so both cores work).
    # At a lower CPU priority in memory, the thread takes the core the name rules leave idle;
    # the dask engine's factory (a partial) asks for none: its thread only waits for the cluster.
    nice = getattr(index_factory, "background_nice", 0)
    with ThreadPoolExecutor(1, "mujun-match", initializer=lower_priority, initargs=(nice,)) as pool:
        # the sort keys of the output tables, also ranked in Arrow without the GIL (first:
        # they are ready long before the rules need them)
        pid_rank = pool.submit(R.text_rank, pinfo["pid"].copy())
        code_rank = pool.submit(R.text_rank, firms["code"].copy())
        spatial = pool.submit(
            R.spatial_candidates,
            index_factory,
            parcels,
            pinfo[["pid", "industrial", "has_geom", "area", "holder"]].copy(),
            firms[["eligible", "has_point"]].copy(),
            pts,
            max_distance,
        )
        R.add_firm_keys(firms, enterprises, region_names)
        holders, hcodes = R.holder_tables(parcels, pinfo, region_names)
        ranks = (pid_rank.result(), code_rank.result())
        # the name rules go on while the spatial queries finish (_rules waits for them
        # only before the location rules)
        return _rules(
            enterprises, parcels, firms, pts, pinfo, holders, hcodes, spatial, ranks,
            overrides=overrides, max_distance=max_distance, land_mode=land_mode,
            name_threshold=name_threshold, buildings=buildings, problems=problems,
        )  # fmt: skip


def _rules(
    enterprises, parcels, firms, pts, pinfo, holders, hcodes, spatial, ranks, *, overrides,
    max_distance, land_mode, name_threshold, buildings, problems,
) -> MatchResult:  # fmt: skip
    """The rules, overrides, review and land of :func:`_match` once the inputs are prepared.

    ``spatial`` is the future of :func:`mujun_geo._match_rules.spatial_candidates`.
    """
    n_p = len(pinfo)
    ov = parse_overrides(overrides, firms, pinfo, problems)
    rej = ov[ov["action"] == "reject"]
    rej = R.pairs(rej["fi"], rej["pj"], n_p)

    # STEP 1: credit code, exact name, fuzzy name (rejected pairs never compete)
    code, code_rej = R.split_rejected(R.code_rule(firms, hcodes), rej, n_p)
    name, name_rej = R.exact_name_rule(
        firms, holders, R.pairs(code["fi"], code["pj"], n_p), n_p, rej
    )
    # the (county, name key) pairs an exact link took, in Arrow (a Python set of 300,000
    # strings and its sort cost 0.35 s at province scale)
    claimed = R.region_keys(
        pinfo["region"].iloc[name["pj"]].fillna(""), firms["key"].iloc[name["fi"]]
    ).drop_null()
    linked_fi = np.union1d(code["fi"], name["fi"])
    fuzzy, fuzzy_rej = R.fuzzy_rule(firms, holders, name_threshold, linked_fi, claimed, rej, n_p)
    cn = pd.concat([code, name, fuzzy], ignore_index=True)
    # STEP 2: location; nearest only for points in no parcel and firms without code/name links
    cand: R.SpatialCandidates = spatial.result()
    linked = (R.pairs(cn["fi"], cn["pj"], n_p), cn["pj"].to_numpy())
    within, within_rej, covered = R.within_rule(firms, pts, cand, pinfo, rej, linked)
    todo = firms["eligible"].to_numpy() & firms["has_point"].to_numpy() & ~covered
    todo &= ~R.marks(cn["fi"], len(firms))
    near, near_rej = R.nearest_rule(cand, np.flatnonzero(todo), n_p, max_distance, rej)
    links = R.combine([code, name, fuzzy, within, near], n_p)
    links["industrial"] = pinfo["industrial"].to_numpy()[links["pj"]]
    # STEP 3: a point in industrial parcel X while code/name point elsewhere -> review
    l_fi, l_pj = links["fi"].to_numpy(), links["pj"].to_numpy()
    w = links["method"].eq("within").to_numpy(dtype=bool) & links["industrial"].to_numpy()
    # one within link per point: the firms sorted, with the parcel each point lies in
    w_fi, w_pj = l_fi[w], l_pj[w]
    by_fi = np.argsort(w_fi, kind="stable")
    w_fi, w_pj = w_fi[by_fi], w_pj[by_fi]
    # firms with a code/name link and a within link, by position marks (no sort; np.isin on
    # the object column and np.unique took 0.14 + 0.15 s at province scale)
    cn = links["method"].isin(["credit_code", "name"]).to_numpy(dtype=bool)
    n_f = len(firms)
    clash = np.flatnonzero(R.marks(l_fi[cn], n_f)[l_fi] & R.marks(w_fi, n_f)[l_fi])
    at = w_pj[np.searchsorted(w_fi, l_fi[clash])]
    # the texts of the few rows concerned are built for those rows alone, in Arrow, and put
    # in place with replace_with_mask (the column is still copied once: 0.13 s for the
    # evidence of 476,000 links)
    if len(clash):
        review = _arrow_text(links["review"])
        old = review.take(pa.array(clash))
        t = old.type
        gap = pc.if_else(pc.equal(old, ""), pa.scalar("", t), pa.scalar("; ", t))
        pid = _arrow_text(R.take_text(pinfo["pid"], at)).cast(t)
        head, tail = pa.scalar("规则冲突: 点位于宗地", t), pa.scalar(", 代码/名称指向其他宗地", t)
        text = pc.binary_join_element_wise(old, gap, head, pid, tail, pa.scalar("", t))
        review = _replace_rows(review, clash, text)
        links["review"] = pd.Series(review, index=links.index, dtype=links["review"].dtype)
    rv = (links["review"] != "").to_numpy(dtype=bool)
    links["status"] = np.where(rv, "review", "auto")
    rv = np.flatnonzero(rv)
    if len(rv):
        evidence = _arrow_text(links["evidence"])
        et = evidence.type
        joined = pc.binary_join_element_wise(
            evidence.take(pa.array(rv)),
            _arrow_text(links["review"]).take(pa.array(rv)).cast(et),
            pa.scalar("; 待审核: ", et),
        )
        evidence = _replace_rows(evidence, rv, joined)
        links["evidence"] = pd.Series(evidence, index=links.index, dtype=links["evidence"].dtype)
    links = apply_overrides(links, ov, pinfo)
    gone = R.combine([code_rej, name_rej, fuzzy_rej, within_rej, near_rej], n_p)
    gone = gone.assign(status="rejected", industrial=pinfo["industrial"].to_numpy()[gone["pj"]])
    gone["evidence"] = "人工否决; " + gone["evidence"]
    if len(gone):  # (an empty frame would turn the text columns to object)
        links = pd.concat([links, gone], ignore_index=True)
    links = _attach_overrides(links, ov, n_p)

    n_given = 0 if overrides is None else len(overrides)
    if len(ov) < n_given:
        logger.warning("%d override rows not applied: see `problems`", n_given - len(ov))

    # STEP 4: land
    links, per_firm = allocate_land(
        links,
        pinfo,
        firms["code"],
        land_mode=land_mode,
        parcels=parcels,
        buildings=buildings,
        problems=problems,
        floor_area=cand.index.floor_area,
        pid_rank=ranks[0],
    )
    return _assemble(
        enterprises, parcels, firms, pts, pinfo, links, per_firm, cand, ranks, max_distance,
        problems,
    )  # fmt: skip


def _replace_rows(values: pa.Array, rows: np.ndarray, new: pa.Array) -> pa.Array:
    """`values` with the rows at positions `rows` (ascending) replaced by `new`, in order."""
    if not len(rows):
        return values
    mask = np.zeros(len(values), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(values, pa.array(mask), new.cast(values.type))


def _attach_overrides(links: pd.DataFrame, ov: pd.DataFrame, n_p: int) -> pd.DataFrame:
    """Add ``share_ov, ov_note, ov_row`` of each link's override (NaN without one).

    A left merge on (fi, pj) by the pair codes: an override table has one row per pair.
    """
    pos = np.full(len(links), -1)
    if len(ov):
        keys = pd.Index(R.pairs(ov["fi"], ov["pj"], n_p))
        pos = keys.get_indexer(R.pairs(links["fi"], links["pj"], n_p))
    hit = np.flatnonzero(pos >= 0)
    share = ov["share"].where(ov["action"] != "reject").to_numpy(dtype=float)
    cols = {"share_ov": share, "ov_note": ov["note"].to_numpy(dtype=object)}
    cols["ov_row"] = ov["row"].to_numpy(dtype=float)
    out = {}
    for name, values in cols.items():
        col = np.full(len(links), np.nan, dtype=values.dtype)
        col[hit] = values[pos[hit]]
        out[name] = col
    return links.assign(**out)


def _assemble(
    enterprises, parcels, firms, pts, pinfo, links, per_firm, cand, ranks, max_distance, problems
) -> MatchResult:
    n_f, n_p = len(firms), len(pinfo)
    fi, pj = links["fi"].to_numpy(), links["pj"].to_numpy()
    status = links["status"].to_numpy(dtype=object)
    ind_link = links["industrial"].to_numpy(dtype=bool)
    counted = np.isin(status, _COUNTED) & ind_link
    # text keys ranked once (:func:`_match`): every sort is an integer sort in the same order
    pid_rank, code_rank = ranks

    # STEP 1: the matches table, its columns taken in the output order
    order = R.lex_order(code_rank[fi], pid_rank[pj], n_p)
    note = links["land_note"].astype(str)
    ov_note = links["ov_note"]
    if ov_note.notna().any():
        ov_note = ov_note.fillna("").astype(str)
        note = note + np.where((note != "") & (ov_note != ""), "; ", "") + ov_note
    # a point is 0 m from a parcel that covers it (known from the location rule), the
    # nearest search measured its pairs already; GEOS measures the others (GIL released)
    key = R.pairs(fi, pj, n_p)
    far = links["method"].to_numpy(dtype=object) != "within"
    far &= ~R.sorted_isin(key, R.pairs(cand.cover_fi, cand.cover_pj, n_p))
    dist = np.zeros(len(links))
    near_key = R.pairs(cand.near["fi"], cand.near["pj"], n_p)
    by_key = np.argsort(near_key, kind="stable")
    near_key, near_d = near_key[by_key], cand.near["d"].to_numpy(dtype=float)[by_key]
    measured = far & R.sorted_isin(key, near_key)
    dist[measured] = near_d[np.searchsorted(near_key, key[measured])]
    far = np.flatnonzero(far & ~measured)
    dist[far] = _threaded(
        shapely.distance, pts[fi[far]], np.asarray(parcels.geometry.values)[pj[far]]
    )
    matches = pd.DataFrame(
        {
            "credit_code": R.take_text(firms["code"], fi[order]),
            "parcel_id": R.take_text(pinfo["pid"], pj[order]),
            "method": R.take_text(links["method"], order),
            "confidence": links["confidence"].to_numpy(dtype=float)[order],
            "distance_m": dist[order],
            "land_share": links["land_share"].to_numpy(dtype=float)[order],
            "status": R.take_text(links["status"], order),
            "industrial": ind_link[order],
            "evidence": R.take_text(links["evidence"], order),
            "note": R.take_text(note, order),
        }
    )

    # STEP 2: enterprises
    c_fi, c_pj = fi[counted], pj[counted]
    order = R.lex_order(c_fi, pid_rank[c_pj], n_p)
    c_fi, c_pid = c_fi[order], R.take_text(pinfo["pid"], c_pj[order])
    matched = R.marks(c_fi, n_f)
    n_review = np.bincount(fi[status == "review"], minlength=n_f)
    eligible, has_point = firms["eligible"].to_numpy(), firms["has_point"].to_numpy()
    nonind = np.isin(status, _COUNTED) & ~ind_link
    nonind_txt = R.join_groups(
        pd.Series(
            R.take_text(pinfo["pid"], pj[nonind]).to_numpy(dtype=object)
            + "(land_use "
            + R.take_text(pinfo["land_use"], pj[nonind]).fillna("?").to_numpy(dtype=object)
            + ")"
        ),
        fi[nonind],
    )
    has_rej = R.marks(fi[status == "rejected"], n_f)
    todo = np.flatnonzero(eligible & ~matched & has_point)
    # nearest industrial parcel at any distance: found beforehand for uncovered points
    known = pd.concat([cand.near, cand.far], ignore_index=True)
    known = known[np.isin(known["fi"].to_numpy(), todo)]
    rest = np.setdiff1d(todo, known["fi"].to_numpy())
    rest = rest[cand.covered[rest]]  # covered points (review, non-industrial links)
    # a point in industrial parcels is 0 m from them and from no other: no search for it
    ind = pinfo["industrial"].to_numpy() & pinfo["has_geom"].to_numpy()
    inside = R.sorted_isin(cand.cover_fi, rest) & ind[cand.cover_pj]
    zero = R.near_frame(cand.cover_fi[inside], cand.cover_pj[inside], 0.0, pinfo)
    rest = rest[~R.sorted_isin(rest, zero["fi"].to_numpy())]
    near = pd.concat(
        [known, zero, R.nearest(cand.index, pts, rest, pinfo, None)], ignore_index=True
    )
    near = R.sort_rows(near, ["fi", "d", "pid"])
    near = near.drop_duplicates("fi").set_index("fi").reindex(np.arange(n_f))
    d = near["d"].to_numpy(dtype=float)
    far = np.array(
        [
            f"nearest industrial parcel {x:.1f} m away"
            + (f" (> {max_distance:g} m)" if x > max_distance else "")
            for x in d[todo]
        ],
        dtype=object,
    )
    near_txt = np.full(n_f, "no industrial parcel in the layer", dtype=object)
    near_txt[todo] = np.where(np.isnan(d[todo]), near_txt[todo], far)
    nonind_s = pd.Series(nonind_txt).reindex(np.arange(n_f)).to_numpy(dtype=object)
    nonind_msg = np.full(n_f, None, dtype=object)
    has_ni = pd.notna(nonind_s)
    nonind_msg[has_ni] = "only non-industrial parcels linked: " + nonind_s[has_ni]
    reason = np.select(
        [
            firms["rejected"].to_numpy(),
            ~eligible,
            matched,
            n_review > 0,
            pd.notna(nonind_s),
            has_rej,
            ~has_point,
        ],
        [  # (np.select broadcasts the scalars; the list mixes them with one array)
            np.asarray("rejected by validation", dtype=object),
            np.asarray("missing credit_code", dtype=object),
            np.asarray(None, dtype=object),
            np.asarray("links awaiting review", dtype=object),
            nonind_msg,
            np.asarray("candidate links rejected by overrides", dtype=object),
            np.asarray("no coordinates and no name/code match", dtype=object),
        ],
        near_txt,
    )
    status_code = np.where(firms["rejected"], 0, np.where(matched, 1, 2))
    match_status = pd.array(
        pa.array(["rejected", "matched", "unmatched"]).take(status_code), dtype="str"
    )
    # the per-firm land by position (per_firm is indexed by the counted firms' positions)
    at = per_firm.index.to_numpy()
    land = np.full(n_f, np.nan)
    land[at] = per_firm["land_m2"].to_numpy(dtype=float)
    land[~matched] = np.nan
    # eval_unit in Arrow: the unit of a matched firm, the code of an eligible unmatched one
    own_unit = matched[at]
    has_unit = R.marks(at[own_unit], n_f)
    pick = np.arange(n_f)
    pick[at[own_unit]] = n_f + np.flatnonzero(own_unit)
    code_txt = R._arrow_text(firms["code"].astype("str"))
    unit_txt = R._arrow_text(per_firm["eval_unit"].astype("str")).cast(code_txt.type)
    unit = pa.concat_arrays([code_txt, unit_txt]).take(
        pa.array(pick, mask=~((eligible & ~matched) | has_unit))
    )
    land_note = np.full(n_f, "", dtype=object)
    land_note[at] = per_firm["land_note"].to_numpy(dtype=object)
    land_note[pd.isna(land_note)] = ""
    show_near = ~matched & eligible & has_point
    ent = pd.DataFrame(
        {
            "match_status": match_status,
            "parcel_ids": R.join_sorted(c_pid, c_fi, n_f).array,
            "land_m2": land,
            "land_mu": m2_to_mu(land),
            "eval_unit": pd.array(unit, dtype="str"),
            "unmatched_reason": reason,
            "nearest_parcel_id": np.where(show_near, near["pid"].to_numpy(dtype=object), None),
            "nearest_distance_m": np.where(show_near, d, np.nan),
            "n_review": n_review,
            "land_note": R.repeated_text(land_note),
        },
        index=enterprises.index,
    )

    # STEP 3: parcels
    live = np.isin(status, ["auto", "confirmed", "review"])
    c_fi, c_pj = fi[counted], pj[counted]
    order = R.lex_order(c_pj, code_rank[c_fi], n_f)
    c_pj, c_code = c_pj[order], R.take_text(firms["code"], c_fi[order])
    par = pd.DataFrame(
        {
            "n_enterprises": np.bincount(pj[counted], minlength=n_p),
            "vacant": pinfo["industrial"].to_numpy() & ~R.marks(pj[live], n_p),
            "credit_codes": R.join_sorted(c_code, c_pj, n_p).array,
            "industrial": pinfo["industrial"].to_numpy(),
            "n_review": np.bincount(pj[status == "review"], minlength=n_p),
        },
        index=parcels.index,
    )
    result = MatchResult(matches, ent, par, problems.frame())
    if logger.isEnabledFor(logging.INFO):
        logger.info("matching: %s", result.summary())
    return result


# ---------------------------------------------------------------------------------------------
# review round trip


def review_table(
    result: MatchResult, enterprises: pd.DataFrame, parcels: pd.DataFrame
) -> pd.DataFrame:
    """Candidates of every firm with a ``review`` link, side by side, for a human decision.

    Parameters
    ----------
    result
        Output of :func:`match_enterprises`.
    enterprises, parcels
        The inputs of that run (for ``name`` and ``holder_name``).

    Returns
    -------
    pandas.DataFrame
        ``credit_code, name, parcel_id, holder_name, method, confidence, distance_m, status,
        evidence, decision`` (``decision`` empty: fill with confirm/reject/assign or
        确认/否决/指定, then pass the table to :func:`apply_review`). All non-rejected links of
        those firms, sorted by ``credit_code, parcel_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"credit_code": ["A", "A"], "parcel_id": ["P1", "P2"],
    ...     "method": ["name", "within"], "confidence": [0.95, 0.8], "distance_m": [40.0, 0.0],
    ...     "status": ["review", "review"], "evidence": ["", ""]})
    >>> r = MatchResult(m, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    >>> t = review_table(r, pd.DataFrame({"credit_code": ["A"], "name": ["宏达"]}),
    ...                  pd.DataFrame({"parcel_id": ["P1", "P2"], "holder_name": ["宏达", None]}))
    >>> t[["credit_code", "name", "parcel_id", "holder_name", "decision"]].values.tolist()
    [['A', '宏达', 'P1', '宏达', ''], ['A', '宏达', 'P2', None, '']]
    """
    m = result.matches
    firms = m.loc[m["status"] == "review", "credit_code"].unique()
    t = m[m["credit_code"].isin(firms) & (m["status"] != "rejected")]
    # only the rows of the firms and parcels in the table (a few thousand of a province)
    codes = clean_codes(enterprises["credit_code"])
    rows = np.flatnonzero(codes.isin(t["credit_code"].unique()).to_numpy(dtype=bool))
    names = pd.Series(
        R.text_col(enterprises.iloc[rows], "name").to_numpy(dtype=object, na_value=None),
        index=codes.iloc[rows].to_numpy(dtype=object),
    )
    pids = R.text_col(parcels, "parcel_id")
    rows = np.flatnonzero(pids.isin(t["parcel_id"].unique()).to_numpy(dtype=bool))
    holders = pd.Series(
        R.text_col(parcels.iloc[rows], "holder_name").to_numpy(dtype=object, na_value=None),
        index=pids.iloc[rows].to_numpy(dtype=object),
    )
    names = names[~names.index.duplicated()]
    out = pd.DataFrame(
        {
            "credit_code": t["credit_code"].to_numpy(dtype=object),
            "name": t["credit_code"].map(names).to_numpy(dtype=object),
            "parcel_id": t["parcel_id"].to_numpy(dtype=object),
            "holder_name": t["parcel_id"].map(holders).to_numpy(dtype=object),
        }
    )
    for col in ("name", "holder_name"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    for col in ("method", "confidence", "distance_m", "status", "evidence"):
        out[col] = t[col].to_numpy()
    out["decision"] = ""
    return out.sort_values(["credit_code", "parcel_id"]).reset_index(drop=True)


def apply_review(review_df: pd.DataFrame) -> pd.DataFrame:
    """Turn the decisions of a filled :func:`review_table` into override rows.

    Parameters
    ----------
    review_df
        The review table with ``decision`` filled: confirm/reject/assign or 确认/否决/指定
        (case and surrounding spaces ignored; blank = no decision). Optional ``share`` and
        ``note`` columns are carried over.

    Returns
    -------
    pandas.DataFrame
        ``credit_code, parcel_id, action, share, note`` for the decided rows; append it to the
        overrides table for the next run.

    Raises
    ------
    SchemaError
        ``decision`` missing or holding a value that is not accepted.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"credit_code": ["A", "A", "B"], "parcel_id": ["P1", "P2", "P3"],
    ...                   "decision": ["确认", " Reject ", ""]})
    >>> apply_review(t)[["credit_code", "parcel_id", "action"]].values.tolist()
    [['A', 'P1', 'confirm'], ['A', 'P2', 'reject']]
    """
    require(review_df, ["credit_code", "parcel_id", "decision"], "review_df")
    dec = R.text_col(review_df, "decision")
    action = dec.str.lower().map(DECISIONS)
    bad = (dec.notna() & action.isna()).to_numpy()
    if bad.any():
        msg = (
            f"unknown `decision` values {sorted(set(dec[bad]))} in rows "
            f"{list(np.flatnonzero(bad)[:10] + 1)}; accepted: {list(DECISIONS)} or blank"
        )
        raise SchemaError(msg)
    keep = action.notna().to_numpy()
    note = R.text_col(review_df, "note").fillna("review: " + dec.fillna(""))
    share = (
        pd.to_numeric(review_df["share"], errors="coerce").to_numpy(dtype=float)
        if "share" in review_df
        else np.full(len(review_df), np.nan)
    )
    return pd.DataFrame(
        {
            "credit_code": review_df["credit_code"].to_numpy(dtype=object)[keep],
            "parcel_id": review_df["parcel_id"].to_numpy(dtype=object)[keep],
            "action": action.to_numpy(dtype=object)[keep],
            "share": share[keep],
            "note": note.to_numpy(dtype=object)[keep],
        }
    )
