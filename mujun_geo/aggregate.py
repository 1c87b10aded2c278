"""Figures above the firm: parcels, parks, regions, industries, leaders, year over year.

Every ratio is Σ numerator / Σ denominator over the firms (never a mean of ratios), and
land is never counted twice: a firm's figures reach parcels through ``land_alloc_m2``,
its share of each parcel it uses (counted links only; on a shared parcel the shares of
the firms are normalised to sum to the parcel's area, so in 宗地评价 mode the parcel is
split equally among its firms for aggregation).

Built-in targets: the 2022 city targets for 规上工业亩均税收 of the provincial work plan
(``mujun_geo/data/targets_2022.csv``) and its growth targets (亩均税收 +8%, 亩均增加值 +6%).

Examples
--------
>>> import pandas as pd
>>> firms = pd.DataFrame({"credit_code": ["A", "B"], "tax": [30.0, 10.0]})
>>> matches = pd.DataFrame({"credit_code": ["A", "B"], "parcel_id": ["P", "P"],
...                         "land_share": [1.0, 1.0], "status": ["auto", "auto"], "industrial": [True, True]})
>>> parcels = pd.DataFrame({"parcel_id": ["P"], "area_m2": [4000.0]})
>>> alloc = allocate_land(matches, parcels)
>>> alloc.groupby("credit_code")["alloc_m2"].sum().tolist()
[2000.0, 2000.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np
import pandas as pd

import geopandas as gpd

from .units import m2_to_mu

__all__ = [
    "GROWTH_TARGETS",
    "allocate_land",
    "assign_parks",
    "builtin_targets",
    "firm_land_alloc",
    "grade_changes",
    "industry_figures",
    "leaders",
    "park_figures",
    "parcel_changes",
    "parcel_figures",
    "region_figures",
]

#: Provincial growth targets of the 2022 work plan (fractions per year).
GROWTH_TARGETS = {"tax_per_mu": 0.08, "va_per_mu": 0.06}

_SUMS = ("tax", "value_added", "revenue", "energy_tce", "electricity", "employees", "rd_expense")
_COUNTED = ("auto", "confirmed")
_GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3}


def allocate_land(matches: pd.DataFrame, parcels: pd.DataFrame) -> pd.DataFrame:
    """One row per counted link with ``alloc_m2``: the firm's part of the parcel's area.

    Shares of the firms on a parcel are normalised, so the parts add up to the parcel's area
    (a parcel whose firms all have share 0 allocates nothing).
    """
    links = matches[matches["status"].isin(_COUNTED)]
    if "industrial" in links:
        links = links[links["industrial"].astype(bool)]
    links = links[["credit_code", "parcel_id", "land_share"]].copy()
    links["land_share"] = links["land_share"].fillna(0.0).clip(lower=0.0)
    total = links.groupby("parcel_id")["land_share"].transform("sum")
    area = _map_by(links["parcel_id"], _column_by(parcels, "parcel_id", "area_m2"))
    links["alloc_m2"] = np.where(
        total > 0, area * links["land_share"] / total.where(total > 0, 1.0), 0.0
    )
    return links.reset_index(drop=True)


def firm_land_alloc(enterprises: pd.DataFrame, alloc: pd.DataFrame) -> pd.Series:
    """``land_alloc_m2`` per firm (NaN where the firm has no counted land)."""
    per_firm = alloc.groupby("credit_code")["alloc_m2"].sum()
    out = _map_by(enterprises["credit_code"], per_firm)
    rejected = (
        enterprises["match_status"].eq("rejected") if "match_status" in enterprises else False
    )
    return out.where(~rejected).rename("land_alloc_m2")


def _arrow_text(*dtypes: object) -> bool:
    """Whether every dtype is the pyarrow-backed pandas string dtype (pandas 3 ``str``)."""
    return all(isinstance(d, pd.StringDtype) and d.storage == "pyarrow" for d in dtypes)


def _positions(keys: pd.Series, values: pd.Index) -> np.ndarray:
    """``values.get_indexer(keys)``: where each key is in the unique ``values`` (-1: absent).

    Arrow-backed strings (the pandas 3 ``str`` dtype) are looked up with
    ``pyarrow.compute.index_in``, a few times faster than pandas' hash table of Python
    strings; a missing key matches a missing value, as in ``get_indexer``.
    """
    if _arrow_text(keys.dtype, values.dtype):
        import pyarrow as pa
        import pyarrow.compute as pc

        k = pa.array(keys.array)
        v = pa.array(values.array).cast(k.type)
        found = pc.index_in(k, value_set=v, skip_nulls=False).fill_null(-1)
        return found.to_numpy(zero_copy_only=False).astype(np.intp)
    return values.get_indexer(keys)


def _map_by(keys: pd.Series, mapper: pd.Series) -> pd.Series:
    """``keys.map(mapper)`` for a Series ``mapper``; arrow strings looked up by :func:`_positions`.

    Other key types go through ``Series.map`` itself (its handling of None and NaN keys and
    of object results differs in details from a plain lookup).
    """
    if not (_arrow_text(keys.dtype, mapper.index.dtype) and mapper.index.is_unique):
        return keys.map(mapper)
    values = pd.api.extensions.take(mapper.array, _positions(keys, mapper.index), allow_fill=True)
    return pd.Series(values, index=keys.index, name=keys.name)


def _column_by(frame: pd.DataFrame, key: str, col: str) -> pd.Series:
    """``frame.set_index(key)[col]`` without copying the other columns."""
    return pd.Series(frame[col].array, index=pd.Index(frame[key].array, name=key), name=col)


def _safe_ratio(num: pd.Series | float, den: pd.Series | float) -> pd.Series | float:
    """Num / den with NaN where the denominator is zero or missing."""
    if isinstance(den, pd.Series):
        return num / den.where(den > 0)
    return num / den if den and den > 0 else np.nan


def parcel_figures(
    parcels: pd.DataFrame, enterprises: pd.DataFrame, alloc: pd.DataFrame
) -> pd.DataFrame:
    """Per parcel: firm figures allocated by area share, 亩均 ratios and the main firm's grade.

    The main firm of a parcel is the one holding most of it (ties: the worse grade, then
    the smaller credit code), so a parcel's ``grade`` is never better than the grade of
    the firm that mainly uses it.

    Examples
    --------
    >>> import pandas as pd
    >>> firms = pd.DataFrame({"credit_code": ["A", "B"], "tax": [30.0, 10.0],
    ...                       "grade": ["A", "C"]})
    >>> alloc = pd.DataFrame({"credit_code": ["A", "A", "B"], "parcel_id": ["P", "Q", "P"],
    ...                       "alloc_m2": [2000.0, 1000.0, 2000.0]})
    >>> parcels = pd.DataFrame({"parcel_id": ["P", "Q", "R"], "area_m2": [4000.0, 1000.0, 500.0]})
    >>> pf = parcel_figures(parcels, firms, alloc)
    >>> pf["tax_sum"].tolist()  # P: 30 × 2/3 + 10 × 1; Q: 30 × 1/3
    [30.0, 10.0, nan]
    >>> pf["grade"].tolist()  # P: A and B hold 2000 m² each, the worse grade (C) wins
    ['C', 'A', '']
    """
    rejected = enterprises.get("rejected", pd.Series(False, index=enterprises.index))
    used = [c for c in ("credit_code", *_SUMS, "grade", "industry_code") if c in enterprises]
    valid = enterprises.loc[~rejected.astype(bool).to_numpy(), used]  # the columns read below
    firm = valid.drop_duplicates("credit_code").set_index("credit_code")
    a = alloc
    firm_total = a.groupby("credit_code")["alloc_m2"].transform("sum")
    w = np.where(firm_total > 0, a["alloc_m2"] / firm_total.where(firm_total > 0, 1.0), 0.0)
    # each link's firm (row of `firm`, -1: none) and parcel (code; NaN ids get a code too)
    fpos = _positions(a["credit_code"], firm.index)
    pcode, pids = pd.factorize(a["parcel_id"], use_na_sentinel=False)
    where = pd.Series(_positions(parcels["parcel_id"], pids), index=parcels.index)

    # STEP 1: Σ firm figure × the firm's share of its land, per parcel (float64 columns
    # as one numpy block; others as `map` and a product, which keeps their dtype)
    block_cols = [c for c in _SUMS if c in firm and firm[c].dtype == np.float64]
    frame = pd.DataFrame(index=pd.RangeIndex(len(a)))
    if block_cols:
        values = firm[block_cols].to_numpy(dtype=float)
        values = np.vstack([values, np.full(len(block_cols), np.nan)])  # row -1: no firm
        block = values[fpos] * w[:, None]
    for col in _SUMS:
        if col in block_cols:
            frame[col] = block[:, block_cols.index(col)]
        elif col in firm:
            frame[col] = a["credit_code"].map(firm[col]).reset_index(drop=True) * w
        else:
            frame[col] = np.nan
    named = a["parcel_id"].notna().to_numpy()
    sums = frame[named].groupby(pcode[named]).sum(min_count=1)
    out = pd.DataFrame(index=parcels.index)
    if len(sums):
        per_parcel = sums.reindex(where.to_numpy())
        per_parcel.index = parcels.index
    for col in _SUMS:
        out[f"{col}_sum"] = per_parcel[col] if len(sums) else np.nan
    area_mu = m2_to_mu(parcels["area_m2"])
    out["tax_per_mu"] = _safe_ratio(out["tax_sum"], area_mu)
    out["va_per_mu"] = _safe_ratio(out["value_added_sum"], area_mu)
    out["revenue_per_mu"] = _safe_ratio(out["revenue_sum"], area_mu)
    out["va_per_tce"] = _safe_ratio(out["value_added_sum"], out["energy_tce_sum"])
    out["rd_ratio"] = _safe_ratio(out["rd_expense_sum"], out["revenue_sum"])

    # STEP 2: main firm: most land, then the worse grade, then the smaller credit code
    if "grade" in firm and len(a):
        grade = pd.Series(firm["grade"].array.take(fpos, allow_fill=True)).fillna("")
        order = grade.map(_GRADE_ORDER).fillna(-1).to_numpy()
        # credit codes by rank (sort order of the codes; missing codes sort last)
        crank, codes = pd.factorize(a["credit_code"], sort=True)
        crank = np.where(crank < 0, len(codes), crank)
        key = pd.DataFrame(
            {"p": pcode, "alloc": a["alloc_m2"].to_numpy(), "order": order, "c": crank}
        )
        main = key.sort_values(
            ["p", "alloc", "order", "c"], ascending=[True, False, False, True]
        ).drop_duplicates("p")
        rows = main.index.to_numpy()  # the links of the main firms, by parcel code
        p = main["p"].to_numpy()
        out["grade"] = where.map(pd.Series(grade.array[rows], index=p)).fillna("")
        out["main_credit_code"] = where.map(pd.Series(a["credit_code"].array[rows], index=p))
        if "industry_code" in firm:
            industry = firm["industry_code"]
            if firm.index.hasnans:  # parcels without a main firm map to the code-less firm
                main_industry = out["main_credit_code"].map(industry)
            else:
                main_industry = where.map(
                    pd.Series(industry.array.take(fpos[rows], allow_fill=True), index=p)
                )
            out["main_industry"] = main_industry.str[:2]
    return out


def assign_parks(parcels: gpd.GeoDataFrame, parks: gpd.GeoDataFrame) -> pd.Series:
    """``park_id`` of the park holding most of each parcel's area (None outside every park).

    Ties go to the smaller ``park_id``. A parcel that a park covers (prepared
    ``shapely.covers``) lies in it with its whole area; only the parcels that cross a park's
    edge are intersected with it.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> parks = gpd.GeoDataFrame({"park_id": ["K1", "K2"]}, crs=4549,
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])
    >>> parcels = gpd.GeoDataFrame(crs=4549, geometry=[shapely.box(10, 10, 20, 20),
    ...     shapely.box(90, 10, 130, 20), shapely.box(300, 0, 310, 10)])
    >>> assign_parks(parcels, parks).tolist()  # the second: 10 m in K1, 30 m in K2
    ['K1', 'K2', None]
    """
    if parks is None or not len(parks):
        return pd.Series(None, index=parcels.index, dtype=object, name="park_id")
    import shapely

    pg = np.asarray(parcels.geometry.values, dtype=object)
    kg = np.asarray(parks.geometry.values, dtype=object)
    pi, ki = parks.sindex.query(pg)  # bounding boxes meet
    if not len(pi):
        return pd.Series(None, index=parcels.index, dtype=object, name="park_id")
    fresh = ~shapely.is_prepared(kg)
    shapely.prepare(kg[fresh])
    try:
        inside = shapely.covers(kg[ki], pg[pi])
        cut = np.flatnonzero(~inside)
        cut = cut[shapely.intersects(kg[ki[cut]], pg[pi[cut]])]
    finally:
        shapely.destroy_prepared(kg[fresh])
    inter = np.zeros(len(pi))
    inter[inside] = shapely.area(pg[pi[inside]])
    inter[cut] = shapely.area(shapely.intersection(pg[pi[cut]], kg[ki[cut]]))
    pairs = pd.DataFrame({"p": pi, "park": parks["park_id"].to_numpy()[ki], "a": inter})
    pairs = pairs[pairs["a"] > 0].sort_values(["p", "a", "park"], ascending=[True, False, True])
    best = pairs.drop_duplicates("p").set_index("p")["park"]
    values = np.full(len(parcels), None, dtype=object)
    values[best.index.to_numpy()] = best.to_numpy()
    return pd.Series(values, index=parcels.index, dtype=object, name="park_id")


def _grade_counts(grades: pd.Series, keys: pd.Series) -> pd.DataFrame:
    g = grades.fillna("").astype(str)
    table = pd.crosstab(keys, g).reindex(columns=list("ABCD"), fill_value=0)
    return table.rename(columns={c: f"n_{c.lower()}" for c in "ABCD"})


def park_figures(
    parks: gpd.GeoDataFrame,
    parcels: pd.DataFrame,
    enterprises: pd.DataFrame,
    alloc: pd.DataFrame,
    *,
    industrial_codes: Sequence[str] = ("0601", "0602", "0508"),
) -> gpd.GeoDataFrame:
    """Per park: land, Σ/Σ 亩均 figures, 综合容积率, grade counts, low-efficiency area, rank.

    ``parcels`` must carry ``park_id`` (see :func:`assign_parks`), ``area_m2`` and the
    ``*_sum`` columns of :func:`parcel_figures`; ``far_floor_area_m2`` and ``lowland`` are
    used when present. ``rank`` orders parks of the same ``park_type`` by 亩均税收.
    """
    out = parks[["park_id", "name", "park_type", "star", "geometry"]].copy()
    used = [
        c
        for c in ("park_id", "land_use", "n_enterprises", "area_m2", "tax_sum", "value_added_sum",
                  "energy_tce_sum", "far_floor_area_m2", "lowland")
        if c in parcels
    ]  # fmt: skip
    p = parcels.loc[parcels["park_id"].notna().to_numpy(), used]
    p["industrial"] = p["land_use"].isin(list(industrial_codes))
    p["used_m2"] = (
        np.where(p["n_enterprises"].fillna(0) > 0, p["area_m2"], 0.0)
        if "n_enterprises" in p
        else p["area_m2"]
    )
    grp = p[p["industrial"]].groupby("park_id")
    agg = pd.DataFrame(
        {
            "industrial_m2": grp["area_m2"].sum(),
            "used_m2": grp["used_m2"].sum(),
            "tax": grp["tax_sum"].sum(min_count=1),
            "value_added": grp["value_added_sum"].sum(min_count=1),
            "energy_tce": grp["energy_tce_sum"].sum(min_count=1),
        }
    )
    if "far_floor_area_m2" in p:
        agg["far_floor_area_m2"] = grp["far_floor_area_m2"].sum(min_count=1)
    if "lowland" in p:
        agg["lowland_m2"] = (
            p[p["lowland"].fillna(0).astype(int) == 1].groupby("park_id")["area_m2"].sum()
        )
    agg = agg.reindex(out["park_id"])
    out["area_mu"] = m2_to_mu(out.geometry.area).to_numpy()
    out["industrial_mu"] = m2_to_mu(agg["industrial_m2"].fillna(0.0)).to_numpy()
    used_mu = m2_to_mu(agg["used_m2"].fillna(0.0)).to_numpy()
    out["tax_per_mu"] = _safe_ratio(
        pd.Series(agg["tax"].to_numpy(), index=out.index), pd.Series(used_mu, index=out.index)
    )
    out["va_per_mu"] = _safe_ratio(
        pd.Series(agg["value_added"].to_numpy(), index=out.index),
        pd.Series(used_mu, index=out.index),
    )
    out["va_per_tce"] = _safe_ratio(
        pd.Series(agg["value_added"].to_numpy(), index=out.index),
        pd.Series(agg["energy_tce"].to_numpy(), index=out.index),
    )
    if "far_floor_area_m2" in agg:
        out["far"] = _safe_ratio(
            pd.Series(agg["far_floor_area_m2"].to_numpy(), index=out.index),
            pd.Series(agg["industrial_m2"].to_numpy(), index=out.index),
        )
    if "lowland_m2" in agg:
        out["lowland_mu"] = m2_to_mu(agg["lowland_m2"].fillna(0.0)).to_numpy()
    # grades of the firms whose land lies (mostly) in the park
    firm_park = alloc.assign(
        park_id=_map_by(alloc["parcel_id"], _column_by(parcels, "parcel_id", "park_id"))
    )
    firm_park = firm_park.sort_values(
        ["credit_code", "alloc_m2"], ascending=[True, False]
    ).drop_duplicates("credit_code")
    if "grade" in enterprises:
        firm_grades = enterprises[["credit_code", "grade"]].drop_duplicates("credit_code")
        grades = _map_by(firm_park["credit_code"], _column_by(firm_grades, "credit_code", "grade"))
        counts = _grade_counts(grades, firm_park["park_id"].fillna("—"))
        for col in ("n_a", "n_b", "n_c", "n_d"):
            out[col] = out["park_id"].map(counts[col]).fillna(0).astype(int).to_numpy()
    out["n_enterprises"] = (
        out["park_id"].map(firm_park.groupby("park_id").size()).fillna(0).astype(int)
    )
    out["rank"] = (
        out.groupby("park_type")["tax_per_mu"].rank(ascending=False, method="min").astype("Int64")
    )
    return out.reset_index(drop=True)


def builtin_targets() -> pd.DataFrame:
    """The 2022 city targets for 规上工业亩均税收 from the provincial work plan."""
    with (
        resources.files("mujun_geo.data").joinpath("targets_2022.csv").open(encoding="utf-8") as fh
    ):
        return pd.read_csv(fh, comment="#", dtype={"region_code": str})


def _region_sums(firms: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    g = firms.assign(_key=key).groupby("_key")
    sums = pd.DataFrame(
        {
            "n_firms": g.size(),
            "land_mu": g["land_alloc_mu"].sum(),
            "tax": g["tax"].sum(min_count=1),
            "value_added": g["value_added"].sum(min_count=1),
            "energy_tce": g["energy_tce"].sum(min_count=1),
        }
    )
    sums["tax_per_mu"] = _safe_ratio(sums["tax"], sums["land_mu"])
    sums["va_per_mu"] = _safe_ratio(sums["value_added"], sums["land_mu"])
    sums["va_per_tce"] = _safe_ratio(sums["value_added"], sums["energy_tce"])
    return sums


def _in_scope(enterprises: pd.DataFrame) -> pd.DataFrame:
    """规上工业 firms with counted land: the population of the provincial targets."""
    e = enterprises
    mask = (
        (e["scale"] == "above") & (e["sector"] == "industry") & (e["land_alloc_mu"].fillna(0) > 0)
    )
    if "rejected" in e:
        mask &= ~e["rejected"].astype(bool)
    return e[mask]


def region_figures(
    regions: gpd.GeoDataFrame,
    enterprises: pd.DataFrame,
    *,
    targets: pd.DataFrame | None = None,
    year: int = 2022,
    previous: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Per region (county and city): 规上工业 Σ/Σ figures, targets, gaps and growth.

    ``enterprises`` needs ``region_code`` (county), ``scale``, ``sector``, ``tax``,
    ``value_added``, ``energy_tce`` and ``land_alloc_mu``. A city's figures come from the
    firms of its counties (first four digits of the code). ``targets`` adds to the
    built-in table (a user row for the same region and year wins). ``previous`` is last
    year's ``regions`` layer: growth of 亩均税收 and 亩均增加值 is then reported against the
    provincial growth targets.
    """
    firms = _in_scope(enterprises)
    county = _region_sums(firms, firms["region_code"].astype(str))
    city = _region_sums(firms, firms["region_code"].astype(str).str[:4] + "00")
    stats = pd.concat([county, city[~city.index.isin(county.index)]])
    out = regions[["region_code", "name", "level", "geometry"]].copy()
    for col in (
        "n_firms",
        "land_mu",
        "tax",
        "value_added",
        "energy_tce",
        "tax_per_mu",
        "va_per_mu",
        "va_per_tce",
    ):
        out[col] = out["region_code"].map(stats[col])
    out["n_firms"] = out["n_firms"].fillna(0).astype(int)
    tgt = builtin_targets()
    if targets is not None and len(targets):
        user = targets.copy()
        if "region_code" not in user or user["region_code"].isna().any():
            names = regions.set_index("name")["region_code"].astype(object)
            given = (
                user["region_code"].astype(object)
                if "region_code" in user
                else pd.Series(None, index=user.index, dtype=object)
            )
            user["region_code"] = given.where(given.notna(), user["name"].map(names))
        tgt = pd.concat([user, tgt], ignore_index=True).drop_duplicates(
            ["region_code", "year"], keep="first"
        )
    tgt = tgt[tgt["year"].astype(int) == int(year)].set_index("region_code")
    for col in [c for c in tgt.columns if c.endswith("_target")]:
        out[col] = out["region_code"].map(tgt[col])
        base = col[: -len("_target")]
        if base in out:
            gap = (
                col.replace("_per_mu_target", "_gap")
                if col.endswith("_per_mu_target")
                else f"{base}_gap"
            )
            out[gap] = out[base] - out[col]
    if previous is not None and len(previous):
        prev = previous.drop_duplicates("region_code").set_index("region_code")
        for base, target in GROWTH_TARGETS.items():
            if base in prev:
                out[f"{base}_prev"] = out["region_code"].map(prev[base])
                out[f"{base}_growth"] = (
                    out[base] / out[f"{base}_prev"].where(out[f"{base}_prev"] > 0) - 1
                )
                out[f"{base}_growth_target"] = target
                out[f"{base}_growth_met"] = out[f"{base}_growth"] >= target
        if "va_per_tce" in prev:
            out["va_per_tce_prev"] = out["region_code"].map(prev["va_per_tce"])
            # energy per value added is the inverse: its change in %
            out["energy_per_va_change"] = out["va_per_tce_prev"] / out["va_per_tce"] - 1
    return out.reset_index(drop=True)


def industry_figures(enterprises: pd.DataFrame) -> pd.DataFrame:
    """Per GB/T 4754 two-digit industry (规上工业 with land): Σ/Σ figures and grade counts."""
    firms = _in_scope(enterprises)
    key = firms["industry_code"].astype(str).str[:2]
    out = _region_sums(firms, key)
    if "grade" in firms:
        out = out.join(_grade_counts(firms["grade"], key))
    out.index.name = "industry_code"
    return out.reset_index()


def leaders(
    enterprises: pd.DataFrame,
    *,
    by: str = "industry",
    measure: str = "tax_per_mu",
    top: int = 10,
    park_types: pd.Series | None = None,
) -> pd.DataFrame:
    """亩均效益领跑者: the top ``top`` graded firms by ``measure`` per industry or park type.

    ``by`` is ``"industry"`` (two-digit code) or ``"park_type"`` (needs ``park_types``: a
    Series of park type per firm index). Ties keep the smaller credit code first.
    """
    if by not in ("industry", "park_type"):
        msg = f"`by` must be one of 'industry', 'park_type', got {by!r}"
        raise ValueError(msg)
    graded = (
        enterprises.get("grade", pd.Series("", index=enterprises.index))
        .fillna("")
        .isin(list("ABCD"))
        .to_numpy()
    )
    # only the columns used: sorting a narrow frame moves a few columns, not all of them
    used = ["credit_code", "name", measure, "grade", "industry_code"]
    e = enterprises.loc[graded, [c for c in dict.fromkeys(used) if c in enterprises]]
    e = e[e[measure].notna()].copy()
    if by == "industry":
        e["group"] = e["industry_code"].astype(str).str[:2]
    else:
        if park_types is None:
            msg = "`park_types` is needed when by='park_type'"
            raise ValueError(msg)
        e["group"] = park_types.reindex(e.index)
        e = e[e["group"].notna()]
    e = e.sort_values(["group", measure, "credit_code"], ascending=[True, False, True])
    e["leader_rank"] = e.groupby("group").cumcount() + 1
    cols = ["group", "leader_rank", "credit_code", "name", measure, "grade"]
    out = e[e["leader_rank"] <= top][[c for c in cols if c in e]]
    return out.assign(by=by, measure=measure).reset_index(drop=True)


def parcel_changes(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Each parcel's change since last year: grade, 亩均税收, 容积率 and low-efficiency flag.

    Parcels only in one year are listed with ``note`` 新增宗地 / 本年无此宗地 (split, merged
    or re-surveyed parcels get new codes, so staff see them rather than a silent gap).
    """
    cols = [c for c in ("grade", "tax_per_mu", "far", "lowland") if c in current and c in previous]
    cur = current.drop_duplicates("parcel_id").set_index("parcel_id")
    prev = previous.drop_duplicates("parcel_id").set_index("parcel_id")
    ids = cur.index.union(prev.index)
    out = pd.DataFrame(index=ids)
    for col in cols:
        out[f"{col}_prev"] = prev[col].reindex(ids)
        out[col] = cur[col].reindex(ids)
    if "grade" in cols:
        a = out["grade_prev"].map(_GRADE_ORDER)
        b = out["grade"].map(_GRADE_ORDER)
        out["grade_change"] = (a - b).astype("Int64")
    for col in ("tax_per_mu", "far"):
        if col in cols:
            out[f"{col}_change"] = out[col] - out[f"{col}_prev"]
    conds = [~ids.isin(prev.index), ~ids.isin(cur.index)]
    notes = ["新增宗地", "本年无此宗地"]
    if "lowland" in cols:
        now = out["lowland"].fillna(0).astype(int).to_numpy()
        before = out["lowland_prev"].fillna(0).astype(int).to_numpy()
        conds += [(now == 1) & (before == 0), (now == 0) & (before == 1)]
        notes += ["新认定低效", "退出低效"]
    out["note"] = np.select(conds, notes, default="")
    out.index.name = "parcel_id"
    return out.reset_index()


def grade_changes(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Each firm's grade change since last year (``change`` +2 = up two grades, e.g. C→A)."""
    cur = current.drop_duplicates("credit_code").set_index("credit_code")
    prev = previous.drop_duplicates("credit_code").set_index("credit_code")
    codes = cur.index.union(prev.index)
    out = pd.DataFrame(index=codes)
    out["name"] = (
        cur["name"].reindex(codes).fillna(prev.get("name", pd.Series(dtype=object)).reindex(codes))
    )
    out["grade_prev"] = prev["grade"].reindex(codes).fillna("")
    out["grade"] = cur["grade"].reindex(codes).fillna("")
    a = out["grade_prev"].map(_GRADE_ORDER)
    b = out["grade"].map(_GRADE_ORDER)
    out["change"] = (a - b).astype("Int64")
    change = out["change"].astype(float).to_numpy()
    out["note"] = np.select(
        [~codes.isin(prev.index), ~codes.isin(cur.index), change > 0, change < 0],
        ["新增企业", "本年无数据", "升档", "降档"],
        default="",
    )
    for col in ("tax_per_mu", "score"):
        if col in cur and col in prev:
            out[f"{col}_prev"] = prev[col].reindex(codes)
            out[f"{col}_change"] = cur[col].reindex(codes) - out[f"{col}_prev"]
    out.index.name = "credit_code"
    return out.reset_index()
