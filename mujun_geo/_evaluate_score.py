"""Indicator values, benchmarks, scores and grades of :mod:`mujun_geo.evaluate`.

Private helper: see :mod:`mujun_geo.evaluate` for the rules.

Examples
--------
>>> round_half_up(np.array([0.5, 1.75, 5.25, 6.65, 15.0 - 1e-12])).tolist()
[1, 2, 5, 7, 15]
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ._errors import DataWarning
from ._evaluate_text import column_label
from .scoring_config import EvalConfig, IndicatorSpec

__all__ = ["GRADES", "grade", "round_half_up", "score", "values"]

GRADES = ("A", "B", "C", "D")


def round_half_up(x: np.ndarray) -> np.ndarray:
    # 1e-9 absorbs float noise such as 20 × 0.75 = 14.999999…
    return np.floor(np.asarray(x, dtype=float) + 0.5 + 1e-9).astype(int)


# ---------------------------------------------------------------------------------------------
# STEP 3: indicator values, benchmarks, scores


def _status(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.select([np.isnan(num) | np.isnan(den), den <= 0], ["missing", "zero"], "ok")


def values(units: pd.DataFrame, cfg: EvalConfig) -> None:
    """Compute indicator values and status per unit, and unit-level reasons (land, exclusions)."""
    units["review_notes"] = ""
    for c, spec in cfg.classes.items():
        m = (units["cls"] == c).to_numpy()
        if not m.any():
            continue
        land = units.loc[m, "sum:land_mu"].to_numpy(dtype=float)
        r = units.loc[m, "reason"].to_numpy().copy()
        if spec.requires_land:
            r[(r == "") & ~(land > 0)] = "未匹配到用地，不参与亩均评价"
        if spec.min_land_mu is not None:
            small = (r == "") & (land < spec.min_land_mu)
            r[small] = [
                f"{spec.label}占地不足{spec.min_land_mu:g}亩（{x:.2f}亩），不参与评价"
                for x in land[small]
            ]
        review = units.loc[m, "review_notes"].to_numpy().copy()
        for ind in spec.indicators:
            num = units.loc[m, f"sum:{ind.numerator}"].to_numpy(dtype=float)
            den = units.loc[m, f"sum:{ind.denominator}"].to_numpy(dtype=float)
            st = _status(num, den)
            with np.errstate(divide="ignore", invalid="ignore"):
                units.loc[m, f"v:{ind.key}"] = np.where(st == "ok", num / den, np.nan)
            units.loc[m, f"st:{ind.key}"] = st
            zero = st == "zero"
            review[zero] = (
                review[zero] + f"{ind.label}的分母{column_label(ind.denominator)}为0或负数；"
            )
            for status, rule, what in (
                ("missing", ind.on_missing, "数据缺失"),
                ("zero", ind.on_zero, "分母为0"),
            ):
                sel = (r == "") & (st == status) & (rule == "exclude_firm")
                r[sel] = f"{ind.label}{what}（{ind.numerator}/{ind.denominator}），不参与评价"
        units.loc[m, "reason"] = r
        units.loc[m, "review_notes"] = review


def _benchmark_stats(sub: pd.DataFrame, ind: IndicatorSpec) -> pd.DataFrame:
    ok = sub[sub[f"st:{ind.key}"] == "ok"]
    g = ok.groupby("pop")
    stats = pd.DataFrame(
        {
            "numerator_sum": g[f"sum:{ind.numerator}"].sum(),
            "denominator_sum": g[f"sum:{ind.denominator}"].sum(),
            "mean": g[f"v:{ind.key}"].mean(),
            "median": g[f"v:{ind.key}"].median(),
            "n": g.size(),
        }
    ).reindex(sub["pop"].unique())
    b = ind.benchmark
    if b.method == "fixed":
        base = pd.Series(b.value, index=stats.index, dtype=float)
    elif b.method == "aggregate":
        base = stats["numerator_sum"] / stats["denominator_sum"]
    else:
        base = stats[b.method]
    stats["value"] = base * b.multiple
    stats["n"] = stats["n"].fillna(0).astype(int)
    return stats


def score(units: pd.DataFrame, cfg: EvalConfig) -> dict[str, dict[str, dict[str, Any]]]:
    """Score evaluable units (indicators, missing-value rules, 加减分); return the benchmarks."""
    bench: dict[str, dict[str, dict[str, Any]]] = {}
    units["score"] = np.nan
    ev = units["evaluable"].to_numpy()
    units["bonus_total"] = 0.0
    for c, spec in cfg.classes.items():
        m = ev & (units["cls"] == c).to_numpy()
        if not m.any():
            continue
        sub = units.loc[m]
        total = np.zeros(m.sum())
        for ind in spec.indicators:
            stats = _benchmark_stats(sub, ind)
            for pop, row in stats.iterrows():
                info = {
                    "class": c,
                    "label": ind.label,
                    "method": ind.benchmark.method,
                    "multiple": ind.benchmark.multiple,
                    "value": float(row["value"]),
                    "n": int(row["n"]),
                    "numerator": ind.numerator,
                    "denominator": ind.denominator,
                    "numerator_sum": float(row["numerator_sum"]),
                    "denominator_sum": float(row["denominator_sum"]),
                }
                bench.setdefault(str(pop), {})[ind.key] = info
                if not row["value"] > 0:
                    msg = (
                        f"benchmark of `{ind.key}` ({ind.label}) for population {pop} is "
                        f"{row['value']}: no evaluated firm has a usable value; scores set to 0"
                    )
                    warnings.warn(msg, DataWarning, stacklevel=4)
            bm = sub["pop"].map(stats["value"]).to_numpy(dtype=float)
            bm = np.where(bm > 0, bm, np.nan)
            st = sub[f"st:{ind.key}"].to_numpy()
            s = sub[f"v:{ind.key}"].to_numpy(dtype=float) / bm * ind.weight
            hi = np.inf if ind.cap is None else ind.cap * ind.weight
            lo = -np.inf if ind.floor is None else ind.floor * ind.weight
            s = np.clip(s, lo, hi)
            valid = pd.Series(np.where(st == "ok", s, np.nan))
            mean = valid.groupby(sub["pop"].to_numpy()).transform("mean").fillna(0.0).to_numpy()
            for status, rule in (("missing", ind.on_missing), ("zero", ind.on_zero)):
                fill = {"class_mean_score": None, "full_weight": ind.weight}.get(rule, 0.0)
                s = np.where(st == status, mean if fill is None else fill, s)
            s = np.nan_to_num(s, nan=0.0)  # only where the benchmark itself is unusable
            units.loc[m, f"bm:{ind.key}"] = bm
            units.loc[m, f"s:{ind.key}"] = s
            total += s
        units.loc[m, "score"] = total
    # 加减分 rules and raw bonus/penalty columns
    for j, brule in enumerate(cfg.bonus_rules):
        cnt = units[f"sum:{brule.column}"].fillna(0.0).to_numpy()
        pts = np.array([brule.points(x) for x in cnt])
        if brule.classes is not None:
            pts = np.where(units["cls"].isin(brule.classes).to_numpy(), pts, 0.0)
        units[f"b:{j}"] = np.where(ev, pts, 0.0)
        units["bonus_total"] += units[f"b:{j}"]
    st = cfg.settings
    for col, sign in ((st.bonus_column, 1.0), (st.penalty_column, -1.0)):
        if col:
            units["bonus_total"] += np.where(ev, sign * units[f"sum:{col}"].fillna(0.0), 0.0)
    units["score"] = np.where(ev, units["score"] + units["bonus_total"], np.nan)
    return bench


# ---------------------------------------------------------------------------------------------
# STEP 4: ranking, quotas, exemptions, adjustments, veto


def _quota_table(units: pd.DataFrame, cfg: EvalConfig) -> pd.DataFrame:
    """Per evaluation group: quotas (percent) of its lead class / industry group."""
    g = cfg.grading
    first = units.drop_duplicates("group")[["group", "cls", "igroup"]].set_index("group")
    iq = {ig.name: ig.quotas for ig in g.industry_groups}
    rows = {}
    for grp, r in first.iterrows():
        q = iq.get(r["igroup"]) if "industry_group" in g.group_by else None
        if q is None and "eval_class" in g.group_by:
            q = cfg.classes[r["cls"]].quotas
        rows[grp] = q or g.quotas
    return pd.DataFrame.from_dict(rows, orient="index")[list(GRADES)]


def grade(units: pd.DataFrame, cfg: EvalConfig) -> dict[str, dict[str, Any]]:
    """Rank, cut by quotas, apply exemptions/backfill/升降档/veto; return the quota bounds."""
    g = cfg.grading
    ranked = units["evaluable"].to_numpy() & (units["veto"] == "").to_numpy()
    r = units[ranked].copy()
    key = r["score"].round(g.rank_decimals)
    if g.ties == "shared":
        r["rank"] = key.groupby(r["group"]).rank(method="min", ascending=False).astype(int)
    else:
        r["_k"] = -key
        r = r.sort_values(["group", "_k", "credit_code"], kind="stable")
        r["rank"] = r.groupby("group").cumcount() + 1
    r["n"] = r.groupby("group")["rank"].transform("size")
    quotas = _quota_table(r, cfg) if len(r) else pd.DataFrame(columns=list(GRADES))
    cum = quotas.cumsum(axis=1)
    bounds_tab = pd.DataFrame(index=quotas.index)
    n_grp = r.groupby("group").size()
    for gr in GRADES[:3]:
        bounds_tab[gr] = round_half_up(
            n_grp.reindex(quotas.index).to_numpy() * cum[gr].to_numpy() / 100
        )
    b = bounds_tab.loc[r["group"]].to_numpy()
    rank = r["rank"].to_numpy()[:, None]
    qidx = (rank > b).sum(axis=1)
    idx = qidx.copy()
    exempt = np.zeros(len(r), dtype=bool)
    for c in g.exempt_from_d:
        exempt |= r[c].to_numpy()
    freed = exempt & (idx == 3)
    idx[freed] = 2
    backfilled = np.zeros(len(r), dtype=bool)
    if g.backfill_d and freed.any():
        k = pd.Series(freed).groupby(r["group"].to_numpy()).transform("sum").to_numpy()
        cand = ~exempt & (idx == 2)
        order = pd.DataFrame(
            {
                "grp": r["group"].to_numpy(),
                "rank": rank[:, 0],
                "cc": r["credit_code"].to_numpy(),
                "pos": np.arange(len(r)),
            }
        )[cand]
        order = order.sort_values(
            ["grp", "rank", "cc"], ascending=[True, False, False], kind="stable"
        )
        take = order["pos"].to_numpy()[
            order.groupby("grp").cumcount().to_numpy() < k[order["pos"].to_numpy()]
        ]
        backfilled[take] = True
        idx[take] = 3
    adj_from = idx.copy()
    for a in g.adjustments:
        idx = np.clip(idx - a.steps * r[a.column].to_numpy(), 0, 3)
    idx = np.where(exempt & (idx == 3), 2, idx)
    r["quota_grade"] = np.array(GRADES)[qidx]
    r["pre_adjust"] = np.array(GRADES)[adj_from]
    r["grade"] = np.array(GRADES)[idx]
    r["exempt_freed"] = freed
    r["backfilled"] = backfilled
    for c in ("rank", "n", "quota_grade", "pre_adjust", "grade", "exempt_freed", "backfilled"):
        units.loc[r.index, c] = r[c]
    vetoed = units["evaluable"] & (units["veto"] != "")
    units.loc[vetoed, "grade"] = "D"
    bounds: dict[str, dict[str, Any]] = {}
    for grp in quotas.index:
        n, bb = int(n_grp[grp]), [int(x) for x in bounds_tab.loc[grp]]
        edges = [0, *bb, n]
        bounds[str(grp)] = {
            "n": n,
            "quotas": {k: float(v) for k, v in quotas.loc[grp].items()},
            **{gr: [edges[i] + 1, edges[i + 1]] for i, gr in enumerate(GRADES)},
        }
    return bounds
