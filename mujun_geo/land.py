"""Land-use stage: 容积率, 建筑系数, 配套用地, 低效用地, 高耗低效 firms and 标准地 review.

This module is the stage's public face (``mujun_geo.land``). The work is split by concept:

* :mod:`mujun_geo.buildings` — floors, floor area, FAR, coverage, ancillary share per parcel
  (:func:`building_metrics`, :func:`building_floors`, :func:`floors_from_height`,
  :func:`raster_heights`);
* :mod:`mujun_geo.lowland` — minimum-FAR table and 低效工业用地 rules
  (:func:`far_minimums`, :func:`main_industry`, :func:`lowland_rules`, :func:`flag_lowland`);
* here — :func:`lowland_summary` (land and energy renovation would free),
  :func:`high_energy_low_efficiency` (高耗低效 firm list) and :func:`standard_land_review`
  (标准地 达产复核).

Typical use::

    metrics = land.building_metrics(parcels, buildings)
    parcels = parcels.join(metrics)            # plus n_enterprises, tax_per_mu, ... from matching
    result = land.flag_lowland(parcels)
    summary = land.lowland_summary(result.parcels)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from ._errors import ConfigError, SchemaError
from .buildings import (
    ancillary_caps,
    building_floors,
    building_metrics,
    floors_from_height,
    raster_heights,
)
from .lowland import (
    PRESETS as LOWLAND_PRESETS,
)
from .lowland import (
    LowlandResult,
    _area_mu,
    _codes,
    _per_unique,
    _prefix_lookup,
    _rule_order,
    _text_by_code,
    far_minimums,
    flag_lowland,
    lowland_rules,
    main_industry,
)

__all__ = [
    "LOWLAND_PRESETS",
    "LowlandResult",
    "ancillary_caps",
    "building_floors",
    "building_metrics",
    "far_minimums",
    "flag_lowland",
    "floors_from_height",
    "high_energy_low_efficiency",
    "lowland_rules",
    "lowland_summary",
    "main_industry",
    "raster_heights",
    "standard_land_review",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------
def lowland_summary(
    parcels: pd.DataFrame,
    *,
    by: Sequence[str] = ("region_code", "park_id"),
    energy_col: str = "energy_tce_sum",
) -> pd.DataFrame:
    """Sum flagged land and the energy its firms use, per region, per park and in total.

    Parameters
    ----------
    parcels
        ``LowlandResult.parcels`` (all parcels, flagged or not). Only parcels with
        ``lowland_assessed`` true (industrial) count in the totals.
    by
        Grouping columns, each giving rows with ``level`` = the column name; columns
        absent from ``parcels`` are skipped, parcels with no value there are left out of
        that level (default ``region_code`` and ``park_id``).
    energy_col
        Parcel column of the energy (tce) used by its firms, allocated by land share
        (default ``energy_tce_sum``); NaN in the summary when absent.

    Returns
    -------
    pandas.DataFrame
        ``level`` (``region_code`` / ``park_id`` / ``total``), ``key``, ``n_parcels``,
        ``area_mu``, ``n_lowland``, ``lowland_area_mu``, ``lowland_area_share``,
        ``lowland_energy_tce`` and one ``n_<rule>`` count per rule name found.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"region_code": ["330624"] * 3, "area_mu": [10.0, 20.0, 30.0],
    ...     "lowland": [1, 1, 0], "lowland_reasons": ["vacant", "idle;stopped", ""],
    ...     "energy_tce_sum": [0.0, 150.0, 900.0]})
    >>> s = lowland_summary(p)
    >>> s[["level", "key", "n_lowland", "lowland_area_mu", "lowland_energy_tce", "n_idle"]]
        level     key  n_lowland  lowland_area_mu  lowland_energy_tce  n_idle
    0  region_code  330624          2             30.0               150.0       1
    1       total                   2             30.0               150.0       1
    """
    missing = [c for c in ("lowland", "lowland_reasons") if c not in parcels.columns]
    if missing:
        msg = f"`parcels` lacks {missing}; run flag_lowland first and pass its `.parcels`."
        raise SchemaError(msg)
    df = parcels
    if "area_mu" in df.columns:  # else _area_mu measures the geometry: keep every column
        used = ["area_mu", "lowland", "lowland_reasons", energy_col, *by, "lowland_assessed"]
        df = df[[c for c in dict.fromkeys(used) if c in df.columns]]
    if "lowland_assessed" in df.columns:
        df = df[df["lowland_assessed"].fillna(False).astype(bool).to_numpy()]
    area = _area_mu(df)
    flagged = df["lowland"].fillna(0).astype(int).eq(1)
    if energy_col in df.columns:
        energy = pd.to_numeric(df[energy_col], errors="coerce").astype(float)
    else:
        logger.info("no `%s` column: lowland energy left empty", energy_col)
        energy = pd.Series(np.nan, index=df.index)
    # the reasons repeat a few combinations: split each distinct one once
    combo, combos = pd.factorize(df["lowland_reasons"].fillna("").astype("str"))
    parts = [[n for n in str(c).split(";") if n != ""] for c in combos]
    order = _rule_order()
    found = sorted(
        {n for names in parts for n in names},
        key=lambda n: (order.index(n) if n in order else len(order), n),
    )
    work = pd.DataFrame(
        {
            "area_mu": area,
            "n_lowland": flagged.astype(int),
            "lowland_area_mu": area.where(flagged, 0.0),
            "lowland_energy_tce": energy.where(flagged, 0.0),
            "_energy_known": (energy.notna() & flagged).astype(int),
        },
        index=df.index,
    )
    for n in found:
        per_combo = np.array([names.count(n) for names in parts], dtype=int)
        work[f"n_{n}"] = per_combo[combo]

    def aggregate(keys: pd.Series, level: str) -> pd.DataFrame:
        # grouped on integer codes in key order (as a groupby on the text, sorted, without
        # parcels that have no key); the same rows in the same order, so the same sums
        codes, uniques = pd.factorize(keys, sort=True)
        keyed = codes >= 0
        g = (work[keyed] if not keyed.all() else work).groupby(codes[keyed], sort=True)
        res = g.sum(numeric_only=True)
        res.insert(0, "n_parcels", g.size())
        # energy stays NaN when no flagged parcel in the group has a known figure
        res["lowland_energy_tce"] = res["lowland_energy_tce"].where(
            res.pop("_energy_known") > 0, np.nan
        )
        res.insert(0, "key", uniques.take(res.index.to_numpy()).astype("str"))
        res.insert(0, "level", level)
        return res.reset_index(drop=True)

    parts = [aggregate(df[c].astype("string"), c) for c in by if c in df.columns]
    parts.append(aggregate(pd.Series("", index=df.index), "total"))
    out = pd.concat(parts, ignore_index=True)
    out["lowland_area_share"] = out["lowland_area_mu"] / out["area_mu"]
    cols = ["level", "key", "n_parcels", "area_mu", "n_lowland", "lowland_area_mu"]
    cols += ["lowland_area_share", "lowland_energy_tce"] + [f"n_{n}" for n in found]
    return out[cols]


# --------------------------------------------------------------------------------------
# 高耗低效 firms
# --------------------------------------------------------------------------------------
#: ``reasons`` of the 高耗低效 list by code (1: high energy, 2: low tax, 3: both).
_REASONS = ("", "high_energy", "low_tax_per_mu", "high_energy;low_tax_per_mu")
#: ``note`` of the 高耗低效 list by code (1: energy use without value added).
_NOTES = ("", "value_added <= 0 with energy use")


def _region_mean(value: pd.Series, weight: pd.Series, key: pd.Series | str) -> pd.Series:
    """Weighted mean Σ value×weight / Σ weight per key, mapped back to each row."""
    keys = pd.Series(key, index=value.index)
    ok = value.notna() & (weight > 0)
    frame = pd.DataFrame({"k": keys, "vw": value * weight, "w": weight})[ok]
    sums = frame.groupby("k")[["vw", "w"]].sum()
    return keys.map(sums["vw"] / sums["w"]).astype(float)


def high_energy_low_efficiency(
    enterprises: pd.DataFrame,
    *,
    energy_per_va_max: float = 0.52,
    energy_limits: str | os.PathLike[str] | pd.DataFrame | None = None,
    tax_per_mu_max: float | None = 10.0,
    tax_per_mu_mean_factor: float | None = None,
    combine: Literal["and", "or"] = "and",
    manufacturing_only: bool = True,
    min_land_mu_below_scale: float | None = 3.0,
) -> pd.DataFrame:
    """List 高耗低效 firms: high energy per value added together with low 亩均税收.

    Parameters
    ----------
    enterprises
        One row per firm with ``credit_code``, ``name``, ``energy_tce`` (综合能耗, tce),
        ``value_added`` (万元), ``land_mu`` and ``tax_per_mu`` (万元/亩; computed as
        ``tax / land_mu`` when absent). Optional ``industry_code``, ``scale``,
        ``region_code``.
    energy_per_va_max
        Energy per value added (tce/万元) above which a firm is high-energy (default 0.52,
        the provincial admission level for new projects).
    energy_limits
        Optional per-industry limits (CSV path or DataFrame with ``industry_code`` and
        ``energy_per_va_max``; longest code prefix wins, others use ``energy_per_va_max``).
    tax_per_mu_max
        亩均税收 (万元/亩) below which a firm is low-efficiency (default 10, 新昌 "双十").
    tax_per_mu_mean_factor
        If given, the low-tax threshold is this multiple of the area-weighted mean 亩均税收
        of the firms in scope in the same ``region_code`` instead of ``tax_per_mu_max``.
    combine
        ``"and"`` (default): both conditions; ``"or"``: either.
    manufacturing_only
        Keep manufacturing (GB/T 4754-2017 大类 13–43) firms only (default True); firms
        without an industry code are then left out (logged).
    min_land_mu_below_scale
        With a ``scale`` column, firms below scale (规下) need at least this much land in 亩
        (default 3, the provincial scope "规上制造业 + 实际用地 ≥ 3 亩 规下制造业"); None keeps all.

    Returns
    -------
    pandas.DataFrame
        Listed firms (index of ``enterprises``), highest energy intensity first:
        ``credit_code``, ``name``, ``energy_per_va``, ``energy_per_va_max``, ``tax_per_mu``,
        ``tax_per_mu_threshold``, ``reasons`` (``high_energy``; ``low_tax_per_mu``),
        ``land_mu``, ``energy_tce``, ``value_added``, ``note`` and, when present,
        ``industry_code`` and ``region_code``. Value added ≤ 0 with energy use counts as high
        energy, with ``energy_per_va`` left empty and a note.

    Examples
    --------
    >>> import pandas as pd
    >>> e = pd.DataFrame({"credit_code": ["a", "b", "c"], "name": ["甲", "乙", "丙"],
    ...     "industry_code": ["3011", "1711", "3311"], "energy_tce": [900.0, 50.0, 400.0],
    ...     "value_added": [1000.0, 1000.0, 500.0], "land_mu": [40.0, 20.0, 10.0],
    ...     "tax_per_mu": [5.0, 4.0, 30.0]})
    >>> high_energy_low_efficiency(e)[["credit_code", "energy_per_va", "reasons"]]
      credit_code  energy_per_va                  reasons
    0           a            0.9  high_energy;low_tax_per_mu
    """
    if combine not in ("and", "or"):
        msg = f"`combine` must be one of ['and', 'or'], got {combine!r}."
        raise ConfigError(msg)
    need = ["credit_code", "name", "energy_tce", "value_added", "land_mu"]
    if "tax_per_mu" not in enterprises.columns:
        need.append("tax")
    missing = [c for c in need if c not in enterprises.columns]
    if missing:
        msg = f"`enterprises` lacks columns {missing} needed for the 高耗低效 list."
        raise SchemaError(msg)
    if tax_per_mu_max is None and tax_per_mu_mean_factor is None:
        msg = "Give `tax_per_mu_max` or `tax_per_mu_mean_factor` for the low-tax condition."
        raise ConfigError(msg)
    df = enterprises

    def num(col: str) -> pd.Series:
        return pd.to_numeric(df[col], errors="coerce").astype(float)

    # STEP 1: scope (manufacturing; below-scale firms need enough land)
    scope = pd.Series(True, index=df.index)
    code = _codes(df["industry_code"]) if "industry_code" in df.columns else None
    if manufacturing_only:
        if code is None:
            msg = "`manufacturing_only` needs an `industry_code` column (or pass False)."
            raise SchemaError(msg)
        div = _per_unique(lambda c: pd.to_numeric(c.str.slice(0, 2), errors="coerce"), code)
        scope &= div.between(13, 43).fillna(False).astype(bool)
        if code.isna().any():
            logger.info(
                "%d firms without industry_code left out of 高耗低效", int(code.isna().sum())
            )
    land_mu = num("land_mu")
    if min_land_mu_below_scale is not None and "scale" in df.columns:
        above = df["scale"].astype("string").str.strip().str.lower().eq("above").fillna(False)
        scope &= above | (land_mu >= float(min_land_mu_below_scale))
    df = df[scope]
    land_mu = land_mu[scope]
    code = code[scope] if code is not None else None

    # STEP 2: energy intensity against its limit
    energy, va = num("energy_tce"), num("value_added")
    epv = (energy / va).where(va > 0)
    no_va = (va <= 0) & (energy > 0)
    limit = pd.Series(float(energy_per_va_max), index=df.index)
    if energy_limits is not None:
        lim = (
            energy_limits.copy()
            if isinstance(energy_limits, pd.DataFrame)
            else pd.read_csv(energy_limits, dtype=str)
        )
        if not {"industry_code", "energy_per_va_max"} <= set(lim.columns):
            msg = "`energy_limits` needs columns `industry_code` and `energy_per_va_max`."
            raise SchemaError(msg)
        table = dict(
            zip(_codes(lim["industry_code"]), pd.to_numeric(lim["energy_per_va_max"]).astype(float))
        )
        if code is not None:
            limit = _prefix_lookup(code, table).fillna(limit)
    high = (epv > limit) | no_va

    # STEP 3: 亩均税收 against a fixed or region-relative threshold
    tpm = num("tax_per_mu") if "tax_per_mu" in df.columns else (num("tax") / land_mu)
    tpm = tpm.where(land_mu > 0)
    if tax_per_mu_mean_factor is not None:
        key = df["region_code"].astype("string") if "region_code" in df.columns else "all"
        thr = float(tax_per_mu_mean_factor) * _region_mean(tpm, land_mu, key)
    else:
        thr = pd.Series(float(tax_per_mu_max), index=df.index)  # type: ignore[arg-type]
    low = tpm < thr

    listed = ((high & low) if combine == "and" else (high | low)).to_numpy(dtype=bool)
    # the listed firms only; the two text columns from a few distinct strings by code
    idx = df.index[listed]
    reasons = (high.to_numpy(dtype=bool) * 1 + low.to_numpy(dtype=bool) * 2)[listed]
    note = no_va.to_numpy(dtype=bool)[listed].astype(np.int64)
    out = pd.DataFrame(
        {
            "credit_code": df["credit_code"][listed],
            "name": df["name"][listed],
            "energy_per_va": epv[listed],
            "energy_per_va_max": limit[listed],
            "tax_per_mu": tpm[listed],
            "tax_per_mu_threshold": thr[listed],
            "reasons": _text_by_code(list(_REASONS), reasons, idx),
            "land_mu": land_mu[listed],
            "energy_tce": energy[listed],
            "value_added": va[listed],
            "note": _text_by_code(list(_NOTES), note, idx),
        }
    )
    for col in ("industry_code", "region_code"):
        if col in df.columns:
            out[col] = df[col][listed]
    # firms with energy use but no value added first, unknown intensity last
    intensity = out["energy_per_va"].mask(out["note"] != "", np.inf).fillna(-np.inf).to_numpy()
    order = np.lexsort((out["credit_code"].astype("str").to_numpy(), -intensity))
    return out.iloc[order]


# --------------------------------------------------------------------------------------
# 标准地 达产复核
# --------------------------------------------------------------------------------------
def standard_land_review(
    parcels: pd.DataFrame,
    commitments: pd.DataFrame,
    *,
    year: int,
    run_in_years: int = 3,
) -> pd.DataFrame:
    """Compare 标准地 commitments with actual figures after the 初始运行期.

    Every ``commit_<indicator>`` column of ``commitments`` is compared with the parcel
    column ``<indicator>`` (e.g. ``commit_far`` ↔ ``far``, ``commit_tax_per_mu`` ↔
    ``tax_per_mu``, ``commit_va_per_tce``, ``commit_invest_per_mu``, ``commit_rd_ratio``).
    All commitments are minimums (higher is better); express a ceiling as its inverse.

    Parameters
    ----------
    parcels
        Parcels with a unique ``parcel_id`` and the actual figures.
    commitments
        ``parcel_id``, ``start_year`` (投产 year), optional ``run_in_years`` and the
        ``commit_*`` columns. ``commit_rd_ratio`` is a fraction (0.032, not 3.2 %).
    year
        Evaluation year. A commitment is reviewed when ``year >= start_year + run_in_years``.
    run_in_years
        初始运行期 in years where the table gives none (default 3; not fixed by the
        provincial texts, so check the county's agreements).

    Returns
    -------
    pandas.DataFrame
        One row per commitment and indicator with a committed value: ``parcel_id``,
        ``indicator``, ``committed``, ``actual``, ``shortfall`` (committed − actual, 0 when
        met), ``met`` (nullable bool), ``status`` (``已复核`` / ``未到复核期`` /
        ``缺少实际数据`` / ``缺少投产年份`` / ``宗地不存在``) and ``due_year``.

    Raises
    ------
    SchemaError
        If columns are missing, ``parcel_id`` repeats in ``parcels`` or an R&D ratio looks
        like a percentage.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"parcel_id": ["P1", "P2"], "far": [1.0, 1.5],
    ...                   "tax_per_mu": [32.0, 10.0]})
    >>> c = pd.DataFrame({"parcel_id": ["P1", "P2"], "start_year": [2018, 2021],
    ...                   "commit_far": [1.2, 1.2], "commit_tax_per_mu": [30.0, 30.0]})
    >>> standard_land_review(p, c, year=2023)[["parcel_id", "indicator", "shortfall",
    ...                                         "met", "status"]]
      parcel_id   indicator  shortfall    met status
    0        P1         far        0.2  False    已复核
    1        P1  tax_per_mu        0.0   True    已复核
    2        P2         far        NaN   <NA>  未到复核期
    3        P2  tax_per_mu        NaN   <NA>  未到复核期
    """
    for name, df, cols in (
        ("parcels", parcels, ["parcel_id"]),
        ("commitments", commitments, ["parcel_id", "start_year"]),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            msg = f"`{name}` lacks columns {missing} needed for the 标准地 review."
            raise SchemaError(msg)
    indicators = [c for c in commitments.columns if str(c).startswith("commit_")]
    if not indicators:
        msg = "`commitments` has no `commit_*` columns (e.g. commit_far, commit_tax_per_mu)."
        raise SchemaError(msg)
    dup = parcels["parcel_id"][parcels["parcel_id"].duplicated()].unique().tolist()
    if dup:
        msg = f"`parcels.parcel_id` repeats: {dup[:10]}."
        raise SchemaError(msg)
    if "commit_rd_ratio" in commitments.columns:
        rd = pd.to_numeric(commitments["commit_rd_ratio"], errors="coerce")
        if (rd > 1).any():
            msg = (
                "`commit_rd_ratio` has values above 1 (rows "
                f"{commitments.index[rd > 1].tolist()[:10]}): give it as a fraction, "
                "e.g. 0.032 for 3.2 %."
            )
            raise SchemaError(msg)

    # STEP 1: long table, one row per (commitment, indicator)
    c = commitments.reset_index(drop=True)
    runin = (
        pd.to_numeric(c["run_in_years"], errors="coerce")
        if "run_in_years" in c.columns
        else pd.Series(np.nan, index=c.index)
    ).fillna(run_in_years)
    due = pd.to_numeric(c["start_year"], errors="coerce") + runin
    long = pd.DataFrame(
        {
            "row": np.repeat(c.index.to_numpy(), len(indicators)),
            "parcel_id": np.repeat(c["parcel_id"].to_numpy(), len(indicators)),
            "indicator": np.tile([i.removeprefix("commit_") for i in indicators], len(c)),
            "committed": pd.to_numeric(
                pd.Series(c[indicators].to_numpy().ravel()), errors="coerce"
            ).to_numpy(dtype=float),
        }
    )
    long = long[long["committed"].notna()].reset_index(drop=True)
    long["due_year"] = due.to_numpy()[long["row"]]

    # STEP 2: actual figures from the parcels
    known = long["parcel_id"].isin(parcels["parcel_id"])
    actual = np.full(len(long), np.nan)
    by_id = parcels.set_index("parcel_id")
    for ind in long["indicator"].unique():
        if ind in by_id.columns:
            sel = (long["indicator"] == ind).to_numpy()
            values = pd.to_numeric(by_id[ind], errors="coerce").astype(float)
            actual[sel] = long.loc[sel, "parcel_id"].map(values).to_numpy(dtype=float)
    long["actual"] = actual

    # STEP 3: status, shortfall, met
    status = np.select(
        [~known, long["due_year"].isna(), long["due_year"] > year, long["actual"].isna()],
        ["宗地不存在", "缺少投产年份", "未到复核期", "缺少实际数据"],
        default="已复核",
    )
    reviewed = status == "已复核"
    gap = long["committed"] - long["actual"]
    close = np.isclose(long["actual"], long["committed"], rtol=1e-9, atol=1e-12)
    met_values = (gap <= 0) | close
    long["shortfall"] = gap.clip(lower=0).where(~close, 0.0).where(reviewed)
    long["met"] = pd.array(np.where(reviewed, met_values, False), dtype="boolean")
    long.loc[~reviewed, "met"] = pd.NA
    long["status"] = pd.Series(status, dtype="str")
    cols = ["parcel_id", "indicator", "committed", "actual", "shortfall", "met", "status"]
    return long[cols + ["due_year"]]
