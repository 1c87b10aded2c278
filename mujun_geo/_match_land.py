"""Land per enterprise from the links of :mod:`mujun_geo.matching` (private).

:func:`allocate_land` implements the four ``land_mode`` values documented in
:mod:`mujun_geo.matching`. Areas are square metres of the layer CRS.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

import geopandas as gpd
import shapely

from mujun_geo._match_rules import (
    clean_codes,
    join_groups,
    lex_order,
    repeated_text,
    take_text,
    text_rank,
)
from mujun_geo._validate import Problems

__all__ = ["allocate_land", "floor_area_by_occupant"]

_HOLDER_METHODS = ("credit_code", "name", "manual")
#: Note of the links and firms of a parcel group with several firms (land_mode "parcel").
_SHARED = "宗地评价: 与同组企业合并评价, 共享用地"


def floor_area_by_occupant(parcels: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> pd.DataFrame:
    """Floor area (m²) each occupant uses on each parcel.

    Footprint clipped to the parcel × ``floors`` (missing or non-positive floors count as 1).

    Returns
    -------
    pandas.DataFrame
        ``code, pj, fa`` with ``pj`` the parcel position.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> p = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs=4549)
    >>> b = gpd.GeoDataFrame({"occupant_code": ["A"], "floors": [3]},
    ...                      geometry=[box(90, 0, 110, 10)], crs=4549)
    >>> floor_area_by_occupant(p, b)["fa"].tolist()  # 10 m × 10 m inside × 3 floors
    [300.0]
    """
    code = clean_codes(buildings["occupant_code"]).to_numpy(dtype=object, na_value=None)
    bgeom = np.asarray(buildings.geometry.values, dtype=object)
    # an invalid footprint (self-intersecting ring) makes GEOS intersection fail: repair it,
    # as building_metrics does, rather than let one bad building stop the run
    bad = ~shapely.is_valid(bgeom) & ~shapely.is_missing(bgeom)
    if bad.any():
        bgeom = bgeom.copy()
        bgeom[bad] = shapely.make_valid(bgeom[bad])
    ok = pd.notna(code) & ~(shapely.is_missing(bgeom) | shapely.is_empty(bgeom))
    idx = np.flatnonzero(ok)
    q = parcels.sindex.query(bgeom[idx], predicate="intersects")
    b, pj = idx[q[0]], q[1]
    floors = (
        pd.to_numeric(buildings["floors"], errors="coerce").to_numpy(dtype=float)
        if "floors" in buildings
        else np.ones(len(buildings))
    )
    floors = np.where(np.isfinite(floors) & (floors > 0), floors, 1.0)
    pgeom = np.asarray(parcels.geometry.values, dtype=object)
    fa = shapely.area(shapely.intersection(bgeom[b], pgeom[pj])) * floors[b]
    out = pd.DataFrame({"code": code[b], "pj": pj, "fa": fa})
    return out.groupby(["code", "pj"], as_index=False, sort=True)["fa"].sum()


def allocate_land(
    links: pd.DataFrame,
    pinfo: pd.DataFrame,
    codes: pd.Series,
    *,
    land_mode: str,
    parcels: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None,
    problems: Problems,
    floor_area: Callable[[gpd.GeoDataFrame, gpd.GeoDataFrame], pd.DataFrame] | None = None,
    pid_rank: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shares per link and land per firm.

    Parameters
    ----------
    links
        Final links (``fi, pj, method, status, industrial, share_ov, ov_row``).
    pinfo
        Positional parcel table (``pid, area``).
    codes
        Cleaned credit codes by firm position.
    floor_area
        Replacement for :func:`floor_area_by_occupant` (same arguments and result), e.g. the
        partitioned one of :mod:`mujun_geo.distributed`; None computes it in memory.
    pid_rank
        Rank of each parcel's ``pid`` in code-point order (:func:`~mujun_geo._match_rules.
        text_rank`), to find the smallest ``pid`` per group; None ranks them here.

    Returns
    -------
    tuple
        ``links`` with ``land_share`` and ``land_note`` added; per-firm frame indexed by firm
        position with ``land_m2, eval_unit, land_note`` (counted firms only).
    """
    links = links.copy()
    counted = (links["status"].isin(["auto", "confirmed"]) & links["industrial"]).to_numpy()
    c = links.loc[counted, ["fi", "pj", "share_ov", "ov_row"]]  # no text copied
    area = pinfo["area"].to_numpy()
    c_fi, c_pj = c["fi"].to_numpy(), c["pj"].to_numpy()
    a = area[c_pj]
    n_all = np.bincount(c_pj, minlength=len(pinfo))[c_pj]  # links on the same parcel
    note = pd.Series("", index=c.index, dtype=object)

    if land_mode == "parcel":
        share = np.ones(len(c))
        n_f, n_p = len(codes), len(pinfo)
        graph = coo_matrix((np.ones(len(c)), (c_fi, n_f + c_pj)), shape=(n_f + n_p,) * 2)
        _, label = connected_components(graph, directed=False)
        n_comp = int(label.max(initial=-1)) + 1
        comp_area = np.bincount(label[n_f:], weights=area, minlength=n_comp)
        comp = label[n_f + c_pj]
        # eval_unit: the smallest pid of the component (rows sorted by component, then pid)
        rank = text_rank(pinfo["pid"]) if pid_rank is None else pid_rank
        if rank is None:  # pid is always text (prepare_parcels); sorted codes do as well
            rank = pd.factorize(pinfo["pid"], sort=True)[0]
        order = lex_order(comp, rank[c_pj], len(pinfo))
        first = np.r_[True, comp[order][1:] != comp[order][:-1]] if len(order) else order > 0
        unit_pj = np.full(n_comp, -1)
        unit_pj[comp[order][first]] = c_pj[order][first]
        firms, at = np.unique(c_fi, return_index=True)
        firm_comp = comp[at]  # every firm lies in one component
        per_firm = pd.DataFrame(
            {
                "land_m2": comp_area[firm_comp],
                "eval_unit": pinfo["pid"].array.take(unit_pj[firm_comp]).astype("str"),
            },
            index=pd.Index(firms),
        )
        firms_in = np.bincount(firm_comp, minlength=n_comp)  # distinct firms per component
        shared = firms_in[comp] > 1
        note[shared] = _SHARED
        # a firm's links all lie in its component: its note is the component's
        firm_note = np.where(firms_in[firm_comp] > 1, _SHARED, "").astype(object)
        ov = c["share_ov"].notna().to_numpy()
        problems.add(
            "overrides",
            c["ov_row"][ov],
            (codes.iloc[c["fi"][ov]].to_numpy() + "/" + _pid(pinfo, c["pj"][ov])),
            "share_ignored",
            "share ignored in land_mode='parcel' (firms share the whole parcel)",
        )
    else:
        p_txt = "宗地" + pd.Series(_pid(pinfo, c_pj), index=c.index, dtype=object)
        if land_mode == "holder":
            holder = links["method"][counted].isin(_HOLDER_METHODS).to_numpy()
            n_h = pd.Series(holder, index=c.index).groupby(c["pj"]).transform("sum").to_numpy()
            share = np.where(n_h > 0, np.where(holder, 1.0 / np.maximum(n_h, 1), 0.0), 1.0 / n_all)
            note[(n_h > 0) & ~holder] = "租赁企业: " + p_txt + "权利人为其他企业, 不计用地"
            split = (n_h == 0) & (n_all > 1)
            note[split] = (
                p_txt + "无权利人企业, " + pd.Series(n_all, index=c.index).astype(str) + "家均分"
            )
        elif land_mode == "equal":
            share = 1.0 / n_all
            note[n_all > 1] = (
                p_txt + "由" + pd.Series(n_all, index=c.index).astype(str) + "家企业均分"
            )
        else:  # floor_area
            fa = (floor_area or floor_area_by_occupant)(parcels, buildings)
            key = pd.DataFrame(
                {"code": codes.iloc[c["fi"]].to_numpy(dtype=object), "pj": c["pj"].to_numpy()}
            )
            mine = key.merge(fa, on=["code", "pj"], how="left")["fa"].fillna(0.0).to_numpy()
            tot = pd.Series(mine).groupby(c["pj"].to_numpy()).transform("sum").to_numpy()
            share = np.where(tot > 0, mine / np.where(tot > 0, tot, 1.0), 1.0 / n_all)
            note[tot == 0] = p_txt + "无占用楼层数据, 均分"
            note[(tot > 0) & (mine == 0)] = p_txt + "无本企业占用楼层, 份额0"
        ov = c["share_ov"].notna().to_numpy()
        share = np.where(ov, c["share_ov"].to_numpy(dtype=float, na_value=np.nan), share)
        note[ov] = "人工指定份额"
        total = pd.Series(share).groupby(c["pj"].to_numpy()).sum()
        over = total[total > 1 + 1e-9]
        problems.add(
            "matching",
            [None] * len(over),
            _pid(pinfo, over.index.to_numpy()),
            "share_sum",
            [f"land shares on the parcel sum to {v:.3f} > 1" for v in over],
        )
        land = pd.Series(share * a).groupby(c["fi"].to_numpy()).sum()
        per_firm = pd.DataFrame(
            {
                "land_m2": land.to_numpy(),
                "eval_unit": codes.iloc[land.index].to_numpy(dtype=object),
            },
            index=land.index,
        )

    land_share = np.zeros(len(links))
    land_share[counted] = share
    land_note = np.full(len(links), "", dtype=object)
    land_note[counted] = note.to_numpy()
    nonind = (links["status"].isin(["auto", "confirmed"]) & ~links["industrial"]).to_numpy()
    land_note[nonind] = "非工业用地, 不计入评价用地"
    links["land_share"] = land_share
    links["land_note"] = repeated_text(land_note)
    if land_mode != "parcel":  # each firm's distinct notes, joined
        fi_note = pd.DataFrame({"fi": c["fi"].to_numpy(), "note": note.to_numpy()})
        fi_note = fi_note[fi_note["note"] != ""].drop_duplicates()
        joined = join_groups(fi_note["note"], fi_note["fi"].to_numpy(), "; ")
        firm_note = np.full(len(per_firm), "", dtype=object)  # (a reindex of 500k is slower)
        firm_note[per_firm.index.get_indexer(joined.index)] = joined.to_numpy(dtype=object)
    # object, as the assembly reads it (a str column would be converted twice)
    per_firm["land_note"] = pd.Series(firm_note, index=per_firm.index, dtype=object)
    return links, per_firm


def _pid(pinfo: pd.DataFrame, positions: object) -> np.ndarray:
    """``parcel_id`` text at parcel positions, as an object array."""
    return take_text(pinfo["pid"], np.asarray(positions, dtype=np.int64)).to_numpy(dtype=object)
