"""Indicator values, benchmarks, scores and grades of :mod:`mujun_geo.evaluate`.

Private helper: see :mod:`mujun_geo.evaluate` for the rules.

Whole unit-table columns are computed as NumPy arrays and assigned once; populations and
evaluation groups are integer codes of categorical columns. Sums, means and medians per
population still use pandas groupby (on those codes), so they are computed in the same
row order and way as with string keys and stay bit-identical.

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
from ._evaluate_units import categorical, codes_of
from .scoring_config import EvalConfig, IndicatorSpec

__all__ = ["GRADES", "STATUS", "grade", "round_half_up", "score", "values"]

GRADES = ("A", "B", "C", "D")
#: Categories of the ``st:<indicator>`` columns (NaN for units of other classes).
STATUS = ("ok", "missing", "zero")


def round_half_up(x: np.ndarray) -> np.ndarray:
    # 1e-9 absorbs float noise such as 20 × 0.75 = 14.999999…
    return np.floor(np.asarray(x, dtype=float) + 0.5 + 1e-9).astype(int)


def _members(units: pd.DataFrame, cls: str, among: np.ndarray | None = None) -> np.ndarray:
    """Positions of the units of class ``cls`` (and ``among``)."""
    m = (units["cls"] == cls).to_numpy(dtype=bool)
    return np.flatnonzero(m if among is None else m & among)


def _column(units: pd.DataFrame, col: str) -> np.ndarray:
    return units[col].to_numpy(dtype=float)


# ---------------------------------------------------------------------------------------------
# STEP 3: indicator values, benchmarks, scores


def _status(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Codes into :data:`STATUS`."""
    return np.select([np.isnan(num) | np.isnan(den), den <= 0], [1, 2], 0).astype(np.int8)


def values(units: pd.DataFrame, cfg: EvalConfig) -> None:
    """Compute indicator values and status per unit, and unit-level reasons (land, exclusions)."""
    n = len(units)
    reason = units["reason"].to_numpy(dtype=object).copy()
    review = np.full(n, "", dtype=object)
    value: dict[str, np.ndarray] = {}
    status: dict[str, np.ndarray] = {}
    for c, spec in cfg.classes.items():
        m = _members(units, c)
        if not m.size:
            continue
        land = _column(units, "sum:land_mu")[m]
        r = reason[m]
        if spec.requires_land:
            r[(r == "") & ~(land > 0)] = "未匹配到用地，不参与亩均评价"
        if spec.min_land_mu is not None:
            small = (r == "") & (land < spec.min_land_mu)
            r[small] = [
                f"{spec.label}占地不足{spec.min_land_mu:g}亩（{x:.2f}亩），不参与评价"
                for x in land[small]
            ]
        rv = review[m]
        for ind in spec.indicators:
            num = _column(units, f"sum:{ind.numerator}")[m]
            den = _column(units, f"sum:{ind.denominator}")[m]
            st = _status(num, den)
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(st == 0, num / den, np.nan)
            value.setdefault(ind.key, np.full(n, np.nan))[m] = v
            status.setdefault(ind.key, np.full(n, -1, dtype=np.int8))[m] = st
            zero = st == 2
            rv[zero] = rv[zero] + f"{ind.label}的分母{column_label(ind.denominator)}为0或负数；"
            open_ = r == ""
            for code, rule, what in ((1, ind.on_missing, "数据缺失"), (2, ind.on_zero, "分母为0")):
                if rule == "exclude_firm":
                    r[open_ & (st == code)] = (
                        f"{ind.label}{what}（{ind.numerator}/{ind.denominator}），不参与评价"
                    )
                    open_ = r == ""
        reason[m] = r
        review[m] = rv
    units["reason"] = pd.Series(reason, index=units.index, dtype=object)
    units["review_notes"] = pd.Series(review, index=units.index, dtype=object)
    for key, v in value.items():
        units[f"v:{key}"] = v
        units[f"st:{key}"] = categorical(status[key], STATUS)


def _benchmark_stats(
    pop: np.ndarray,
    ok: np.ndarray,
    num: np.ndarray,
    den: np.ndarray,
    v: np.ndarray,
    ind: IndicatorSpec,
) -> pd.DataFrame:
    """Benchmark per population code (rows in order of first appearance in ``pop``)."""
    g = pd.DataFrame({"num": num[ok], "den": den[ok], "v": v[ok]}).groupby(pop[ok])
    stats = pd.DataFrame(
        {
            "numerator_sum": g["num"].sum(),
            "denominator_sum": g["den"].sum(),
            "mean": g["v"].mean(),
            "median": g["v"].median(),
            "n": g.size(),
        }
    ).reindex(pd.unique(pop))
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
    n = len(units)
    ev = units["evaluable"].to_numpy(dtype=bool)
    pop_code, pop_names = codes_of(units["pop"])
    total_score = np.full(n, np.nan)
    cols: dict[str, np.ndarray] = {}
    for c, spec in cfg.classes.items():
        m = _members(units, c, ev)
        if not m.size:
            continue
        pop = pop_code[m]
        total = np.zeros(m.size)
        for ind in spec.indicators:
            st = units[f"st:{ind.key}"].cat.codes.to_numpy()[m]
            v = _column(units, f"v:{ind.key}")[m]
            num = _column(units, f"sum:{ind.numerator}")[m]
            den = _column(units, f"sum:{ind.denominator}")[m]
            stats = _benchmark_stats(pop, st == 0, num, den, v, ind)
            # columns as Python lists (no per-population Series): same floats and ints
            for code, value, count, num_sum, den_sum in zip(
                stats.index.tolist(),
                stats["value"].to_numpy(dtype=float).tolist(),
                stats["n"].tolist(),
                stats["numerator_sum"].to_numpy(dtype=float).tolist(),
                stats["denominator_sum"].to_numpy(dtype=float).tolist(),
            ):
                name = str(pop_names[code])
                info = {
                    "class": c,
                    "label": ind.label,
                    "method": ind.benchmark.method,
                    "multiple": ind.benchmark.multiple,
                    "value": value,
                    "n": int(count),
                    "numerator": ind.numerator,
                    "denominator": ind.denominator,
                    "numerator_sum": num_sum,
                    "denominator_sum": den_sum,
                }
                bench.setdefault(name, {})[ind.key] = info
                if not value > 0:
                    msg = (
                        f"benchmark of `{ind.key}` ({ind.label}) for population {name} is "
                        f"{value}: no evaluated firm has a usable value; scores set to 0"
                    )
                    warnings.warn(msg, DataWarning, stacklevel=4)
            lut = np.full(len(pop_names), np.nan)
            lut[stats.index.to_numpy(dtype=np.intp)] = stats["value"].to_numpy(dtype=float)
            bm = lut[pop]
            bm = np.where(bm > 0, bm, np.nan)
            s = v / bm * ind.weight
            hi = np.inf if ind.cap is None else ind.cap * ind.weight
            lo = -np.inf if ind.floor is None else ind.floor * ind.weight
            s = np.clip(s, lo, hi)
            valid = pd.Series(np.where(st == 0, s, np.nan))
            mean = valid.groupby(pop).transform("mean").fillna(0.0).to_numpy()
            for code, rule in ((1, ind.on_missing), (2, ind.on_zero)):
                fill = {"class_mean_score": None, "full_weight": ind.weight}.get(rule, 0.0)
                s = np.where(st == code, mean if fill is None else fill, s)
            s = np.nan_to_num(s, nan=0.0)  # only where the benchmark itself is unusable
            cols.setdefault(f"bm:{ind.key}", np.full(n, np.nan))[m] = bm
            cols.setdefault(f"s:{ind.key}", np.full(n, np.nan))[m] = s
            total += s
        total_score[m] = total
    for name, arr in cols.items():
        units[name] = arr
    # 加减分 rules and raw bonus/penalty columns
    bonus_total = np.zeros(n)
    for j, brule in enumerate(cfg.bonus_rules):
        pts = brule.points_array(units[f"sum:{brule.column}"].fillna(0.0).to_numpy())
        if brule.classes is not None:
            pts = np.where(units["cls"].isin(brule.classes).to_numpy(), pts, 0.0)
        units[f"b:{j}"] = b = np.where(ev, pts, 0.0)
        bonus_total = bonus_total + b
    settings = cfg.settings
    for raw, sign in ((settings.bonus_column, 1.0), (settings.penalty_column, -1.0)):
        if raw:
            bonus_total = bonus_total + np.where(
                ev, sign * units[f"sum:{raw}"].fillna(0.0).to_numpy(), 0.0
            )
    units["bonus_total"] = bonus_total
    units["score"] = np.where(ev, total_score + bonus_total, np.nan)
    return bench


# ---------------------------------------------------------------------------------------------
# STEP 4: ranking, quotas, exemptions, adjustments, veto


def _quota_table(first: pd.DataFrame, cfg: EvalConfig) -> pd.DataFrame:
    """Per evaluation group: quotas (percent) of its lead class / industry group.

    ``first`` holds the ``cls`` and ``igroup`` of the first ranked unit of each group,
    indexed by group.
    """
    g = cfg.grading
    iq = {ig.name: ig.quotas for ig in g.industry_groups}
    rows = {}
    for grp, cls, igroup in zip(first.index, first["cls"], first["igroup"]):
        q = iq.get(igroup) if "industry_group" in g.group_by else None
        if q is None and "eval_class" in g.group_by:
            q = cfg.classes[cls].quotas
        rows[grp] = q or g.quotas
    return pd.DataFrame.from_dict(rows, orient="index")[list(GRADES)]


def _run_start(new: np.ndarray) -> np.ndarray:
    """Position of the start of the run each element belongs to (``new`` starts a run)."""
    pos = np.arange(new.size)
    return np.maximum.accumulate(np.where(new, pos, 0)) if new.size else pos


def _within(groups: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal ``groups`` (sorted input)."""
    new = np.ones(groups.size, dtype=bool)
    new[1:] = groups[1:] != groups[:-1]
    return np.arange(groups.size) - _run_start(new)


def _ranks(
    units: pd.DataFrame, cfg: EvalConfig, idx: np.ndarray, gcode: np.ndarray, gorder: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ranked units in ranking order, and their rank within their evaluation group.

    ``ties == "shared"`` keeps unit order and gives equal (rounded) scores the best rank
    of the tie (``rank(method="min")``); ``credit_code`` orders by group name, score and
    lead credit code (stable) and numbers 1, 2, …
    """
    g = cfg.grading
    key = np.round(_column(units, "score")[idx], g.rank_decimals)
    grp = gcode[idx]
    if g.ties == "shared":
        # best score first within each group; a tie run starts where group or score change
        o = np.lexsort((-key, grp))
        sk, sg = key[o], grp[o]
        new = np.ones(o.size, dtype=bool)
        new[1:] = (sg[1:] != sg[:-1]) | (sk[1:] != sk[:-1])
        group_start = np.arange(o.size) - _within(sg)
        rank = np.empty(o.size, dtype=np.int64)
        rank[o] = _run_start(new) - group_start + 1
        return idx, rank
    cc = pd.factorize(units["credit_code"].array.take(idx), sort=True)[0]
    o = np.lexsort((cc, -key, gorder[grp]))
    return idx[o], _within(grp[o]) + 1


def grade(units: pd.DataFrame, cfg: EvalConfig) -> dict[str, dict[str, Any]]:
    """Rank, cut by quotas, apply exemptions/backfill/升降档/veto; return the quota bounds."""
    g = cfg.grading
    n = len(units)
    ev = units["evaluable"].to_numpy(dtype=bool)
    vetoed = ev & (units["veto"] != "").to_numpy(dtype=bool)
    gcode, gnames = codes_of(units["group"])
    # rank of each group name in sorted order (string sorts of the replaced code)
    gorder = np.empty(len(gnames), dtype=np.intp)
    gorder[np.argsort(np.asarray(gnames, dtype=object), kind="stable")] = np.arange(len(gnames))
    ridx, rank = _ranks(units, cfg, np.flatnonzero(ev & ~vetoed), gcode, gorder)
    grp = gcode[ridx]
    count = np.bincount(grp, minlength=len(gnames))
    # groups in order of their first ranked unit
    seen = np.sort(np.unique(grp, return_index=True)[1])
    groups = grp[seen]
    first = pd.DataFrame(
        {
            "cls": units["cls"].iloc[ridx[seen]].to_numpy(dtype=object),
            "igroup": units["igroup"].iloc[ridx[seen]].to_numpy(dtype=object),
        },
        index=pd.Index(np.asarray(gnames, dtype=object)[groups], dtype=object),
    )
    quotas = _quota_table(first, cfg) if ridx.size else pd.DataFrame(columns=list(GRADES))
    cum = quotas.cumsum(axis=1)
    n_grp = count[groups]
    bounds_tab = np.zeros((groups.size, 3), dtype=int)
    for i, gr in enumerate(GRADES[:3]):
        bounds_tab[:, i] = round_half_up(n_grp * cum[gr].to_numpy() / 100)
    row_of = np.zeros(len(gnames), dtype=np.intp)
    row_of[groups] = np.arange(groups.size)
    b = bounds_tab[row_of[grp]]
    qidx = (rank[:, None] > b).sum(axis=1)
    idx = qidx.copy()
    exempt = np.zeros(ridx.size, dtype=bool)
    for c in g.exempt_from_d:
        exempt |= units[c].to_numpy()[ridx]
    freed = exempt & (idx == 3)
    idx[freed] = 2
    backfilled = np.zeros(ridx.size, dtype=bool)
    if g.backfill_d and freed.any():
        k = np.bincount(grp, weights=freed, minlength=len(gnames))[grp]
        cand = np.flatnonzero(~exempt & (idx == 2))
        cc = pd.factorize(units["credit_code"].array.take(ridx[cand]), sort=True)[0]
        # group name ascending, rank and credit code descending, stable
        o = cand[np.lexsort((-cc, -rank[cand], gorder[grp[cand]]))]
        take = o[_within(grp[o]) < k[o]]
        backfilled[take] = True
        idx[take] = 3
    adj_from = idx.copy()
    for a in g.adjustments:
        idx = np.clip(idx - a.steps * units[a.column].to_numpy()[ridx], 0, 3)
    idx = np.where(exempt & (idx == 3), 2, idx)
    blank = len(GRADES)  # code of "" in the grade categoricals
    for col, codes in (("quota_grade", qidx), ("pre_adjust", adj_from), ("grade", idx)):
        full = np.full(n, blank)
        full[ridx] = codes
        if col == "grade":
            full[vetoed] = GRADES.index("D")
        units[col] = categorical(full, (*GRADES, ""))
    for col, vals in (("rank", rank), ("n", count[grp])):
        full = np.full(n, np.nan)
        full[ridx] = vals
        units[col] = full
    for col, vals in (("exempt_freed", freed), ("backfilled", backfilled)):
        full = np.zeros(n, dtype=bool)
        full[ridx] = vals
        units[col] = full
    bounds: dict[str, dict[str, Any]] = {}
    columns = list(quotas.columns)
    for i, (grp_name, q) in enumerate(zip(quotas.index, quotas.to_numpy(dtype=float).tolist())):
        nn, bb = int(n_grp[i]), [int(x) for x in bounds_tab[i]]
        edges = [0, *bb, nn]
        bounds[str(grp_name)] = {
            "n": nn,
            "quotas": dict(zip(columns, q)),
            **{gr: [edges[j] + 1, edges[j + 1]] for j, gr in enumerate(GRADES)},
        }
    return bounds
