"""Chinese wording of evaluation results: ``grade_note`` and :func:`mujun_geo.evaluate.explain`.

Private helper of :mod:`mujun_geo.evaluate` (kept apart so that module stays about scoring).

Examples
--------
>>> band("B", {"A": 25, "B": 50, "C": 20, "D": 5})
'25%–75%'
>>> fmt(26.66666667), fmt(30000.0), fmt(float("nan"))
('26.6667', '30000', '缺失')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .scoring_config import CLASS_LABELS, DEFAULT_EXEMPT, EvalConfig, IndicatorSpec

if TYPE_CHECKING:
    from .evaluate import _Run

__all__ = ["band", "column_label", "explain_text", "fmt", "unit_note", "unit_notes"]

GRADES = ("A", "B", "C", "D")
#: Canonical input column → (Chinese name, unit).
COLUMNS = {
    "tax": ("税收", "万元"),
    "value_added": ("工业增加值", "万元"),
    "revenue": ("营业收入", "万元"),
    "energy_tce": ("综合能耗", "吨标准煤"),
    "employees": ("年平均职工人数", "人"),
    "emissions": ("主要污染物排放量", "吨"),
    "emissions_t": ("主要污染物排放量", "吨"),
    "rd_expense": ("研发经费支出", "万元"),
    "electricity": ("用电量", "万千瓦时"),
    "land_mu": ("用地面积", "亩"),
    "co2_t": ("二氧化碳排放量", "吨"),
    "n_tenants": ("出租户数", "家"),
}
FLAG_LABELS = dict(
    zip(
        DEFAULT_EXEMPT,
        (
            "新升规未满1年企业",
            "应急医疗物资重点生产企业",
            "农产品保供稳价类企业",
            "有效期内的高新技术企业",
            "新兴产业培育类/产业链关键环节企业",
            "残疾人集中就业企业",
        ),
    )
)
RULES = {
    "zero": "按规则记0分",
    "class_mean_score": "按规则取评价总体该项平均得分",
    "full_weight": "按规则记满权重分",
    "exclude_firm": "按规则不参与评价",
}


def fmt(x: Any) -> str:
    """Format a number for text: 6 significant digits, ``缺失`` for missing."""
    if x is None or (isinstance(x, float | np.floating) and not math.isfinite(x)) or pd.isna(x):
        return "缺失"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1e5:
        return f"{x:.2f}".rstrip("0").rstrip(".")
    return f"{x:.6g}" if abs(x) >= 1e-4 else f"{x:.3e}"


def column_label(col: str) -> str:
    """Chinese name of an input column (the column name itself when unknown)."""
    return COLUMNS.get(col, (col, ""))[0]


def _quantity(col: str, value: Any) -> str:
    name, unit = COLUMNS.get(col, (col, ""))
    shown = fmt(value)
    return f"{name} {shown}{' ' + unit if unit and shown != '缺失' else ''}"


def band(grade: str, quotas: dict[str, float]) -> str:
    """Percentile band of a grade, e.g. ``前25%`` for A, ``25%–75%`` for B, ``后5%`` for D."""
    cum = np.cumsum([quotas[g] for g in GRADES])
    i = GRADES.index(grade)
    if i == 0:
        return f"前{cum[0]:g}%"
    if i == 3:
        return f"后{quotas['D']:g}%"
    return f"{cum[i - 1]:g}%–{cum[i]:g}%"


def _exempt_label(u: Mapping[str, Any], cfg: EvalConfig) -> str:
    names = [FLAG_LABELS.get(c, c) for c in cfg.grading.exempt_from_d if bool(u.get(c, False))]
    return "、".join(names) or "豁免企业"


def _adjusted(u: Mapping[str, Any], cfg: EvalConfig) -> list[str]:
    return [
        f"{a.label}（{a.column}，{abs(a.steps)}档）"
        for a in cfg.grading.adjustments
        if bool(u.get(a.column))
    ]


def unit_note(u: Mapping[str, Any], cfg: EvalConfig, bounds: dict[str, dict[str, Any]]) -> str:
    """``grade_note`` of one evaluation unit (a row of the unit table)."""
    if not u["evaluable"]:
        return str(u["reason"])
    parts = []
    if u["size"] > 1:
        kind = "集团评价" if u["grouped"] else "宗地评价"
        parts.append(f"{kind}（{int(u['size'])}家企业合并计算、共享评价结果）")
    head = f"{u['clabel']}，得分 {u['score']:.2f}"
    if u["veto"]:
        parts += [f"{head}，不参与排名", f"一票否决：{u['veto']}，列为D类"]
    else:
        q = bounds[u["group"]]["quotas"]
        qg = u["quota_grade"]
        parts.append(f"{head}，组内第{int(u['rank'])}/{int(u['n'])}名，{qg}类（{band(qg, q)}）")
        if u["exempt_freed"]:
            parts.append(f"属{_exempt_label(u, cfg)}，不评为D类，定为C类")
        if u["backfilled"]:
            parts.append("豁免企业让出D类名额，递补为D类")
        adj = _adjusted(u, cfg)
        if adj:
            parts.append(f"{'、'.join(adj)}：{u['pre_adjust']}类→{u['grade']}类")
    if u["review_notes"]:
        parts.append("需人工核实：" + str(u["review_notes"]).rstrip("；"))
    return "；".join(parts)


def _join(parts: list[np.ndarray], sep: str) -> np.ndarray:
    """Join object arrays of text element-wise with ``sep``, skipping ``""`` (absent) parts."""
    out = parts[0]
    for p in parts[1:]:
        present = p != ""
        if not present.any():
            continue
        out = np.where(present, np.where(out == "", p, out + sep + p), out)
    return out


def _flag(units: pd.DataFrame, col: str, idx: np.ndarray, default: Any) -> np.ndarray:
    """``bool(u.get(col, default))`` for the unit rows ``idx``, as :func:`unit_note` reads it."""
    if col not in units:
        return np.full(idx.size, bool(default))
    return np.array([bool(v) for v in units[col].to_numpy(dtype=object)[idx]], dtype=bool)


def _labels(flags: list[tuple[np.ndarray, str]], n: int, sep: str) -> np.ndarray:
    """Per row, ``sep``-joined labels of the true flags (``""`` when none)."""
    parts = [np.where(f, label, "").astype(object) for f, label in flags]
    return _join(parts, sep) if parts else np.full(n, "", dtype=object)


def unit_notes(
    units: pd.DataFrame, cfg: EvalConfig, bounds: dict[str, dict[str, Any]]
) -> np.ndarray:
    """``grade_note`` of every unit, vectorised: equal to :func:`unit_note` row by row.

    Reads only the columns the note needs (no per-unit dicts); Python runs once per
    distinct (group, grade) pair for the percentile band and per value only to format
    numbers.

    Examples
    --------
    >>> from mujun_geo.scoring_config import load_config
    >>> units = pd.DataFrame({"evaluable": [True, False], "reason": ["", "无用地"],
    ...     "size": [2, 1], "grouped": [False, False], "clabel": ["规下工业", ""],
    ...     "score": [81.234, np.nan], "veto": ["", ""], "group": ["g", ""],
    ...     "quota_grade": ["A", ""], "rank": [1.0, np.nan], "n": [4.0, np.nan],
    ...     "exempt_freed": False, "backfilled": False, "pre_adjust": ["A", ""],
    ...     "grade": ["A", ""], "review_notes": ""})
    >>> bounds = {"g": {"quotas": {"A": 25, "B": 50, "C": 20, "D": 5}}}
    >>> for note in unit_notes(units, load_config("zhejiang-2022"), bounds):
    ...     print(note)
    宗地评价（2家企业合并计算、共享评价结果）；规下工业，得分 81.23，组内第1/4名，A类（前25%）
    无用地
    """
    col = {c: units[c].to_numpy(dtype=object) for c in ("evaluable", "reason")}
    notes = np.array([str(v) for v in col["reason"]], dtype=object)
    idx = np.flatnonzero([bool(v) for v in col["evaluable"]])
    if not idx.size:
        return notes
    m = idx.size

    cache: dict[str, np.ndarray] = {}

    def get(c: str) -> np.ndarray:
        if c not in cache:
            cache[c] = units[c].to_numpy(dtype=object)[idx]
        return cache[c]

    # STEP 1: 集团/宗地评价 and the class + score head
    size = get("size")
    big = np.array([v > 1 for v in size], dtype=bool)
    unit_part = np.full(m, "", dtype=object)
    if big.any():
        kind = np.where(_flag(units, "grouped", idx[big], False), "集团评价", "宗地评价")
        unit_part[big] = [
            f"{k}（{int(s)}家企业合并计算、共享评价结果）" for k, s in zip(kind, size[big])
        ]
    head = np.array(
        [f"{c}，得分 {s:.2f}" for c, s in zip(get("clabel"), get("score"))], dtype=object
    )
    veto = get("veto")
    vetoed = np.array([bool(v) for v in veto], dtype=bool)
    ranked = ~vetoed
    # STEP 2: vetoed units: not ranked, D
    place = np.full(m, "", dtype=object)
    veto_part = np.full(m, "", dtype=object)
    if vetoed.any():
        place[vetoed] = head[vetoed] + "，不参与排名"
        veto_part[vetoed] = [f"一票否决：{v}，列为D类" for v in veto[vetoed]]
    # STEP 3: ranked units: rank, quota grade and its band, exemption, backfill, 升降档
    exempt_part = np.full(m, "", dtype=object)
    backfill_part = np.full(m, "", dtype=object)
    adjust_part = np.full(m, "", dtype=object)
    if ranked.any():
        r = np.flatnonzero(ranked)
        group, qg = get("group")[r], get("quota_grade")[r]
        bands = {(g, q): band(q, bounds[g]["quotas"]) for g, q in dict.fromkeys(zip(group, qg))}
        place[r] = [
            f"{h}，组内第{int(k)}/{int(t)}名，{q}类（{bands[g, q]}）"
            for h, k, t, g, q in zip(head[r], get("rank")[r], get("n")[r], group, qg)
        ]
        rows = idx[r]
        freed = _flag(units, "exempt_freed", rows, False)
        if freed.any():
            flags = [
                (_flag(units, c, rows[freed], False), FLAG_LABELS.get(c, c))
                for c in cfg.grading.exempt_from_d
            ]
            label = _labels(flags, int(freed.sum()), "、")
            label = np.where(label == "", "豁免企业", label)
            exempt_part[r[freed]] = "属" + label + "，不评为D类，定为C类"
        backfill_part[r[_flag(units, "backfilled", rows, False)]] = "豁免企业让出D类名额，递补为D类"
        flags = [
            (_flag(units, a.column, rows, None), f"{a.label}（{a.column}，{abs(a.steps)}档）")
            for a in cfg.grading.adjustments
        ]
        adj = _labels(flags, r.size, "、")
        has = adj != ""
        if has.any():
            adjust_part[r[has]] = [
                f"{a}：{p}类→{g}类"
                for a, p, g in zip(adj[has], get("pre_adjust")[r[has]], get("grade")[r[has]])
            ]
    # STEP 4: review notes
    review = get("review_notes")
    review_part = np.full(m, "", dtype=object)
    flagged = np.array([bool(v) for v in review], dtype=bool)
    if flagged.any():
        review_part[flagged] = ["需人工核实：" + str(v).rstrip("；") for v in review[flagged]]
    parts = [unit_part, place, veto_part, exempt_part, backfill_part, adjust_part, review_part]
    notes[idx] = _join(parts, "；")
    return notes


def _benchmark_text(info: dict[str, Any], pop: str) -> str:
    mult = "" if info["multiple"] == 1 else f" × {info['multiple']:g}"
    method = info["method"]
    if method == "fixed":
        base = fmt(info["value"] / info["multiple"])
        return f"基准值 {fmt(info['value'])}（固定值{'' if not mult else ' ' + base + mult}）"
    if method == "aggregate":
        how = (
            f"Σ{column_label(info['numerator'])} {fmt(info['numerator_sum'])} ÷ "
            f"Σ{column_label(info['denominator'])} {fmt(info['denominator_sum'])}"
        )
    else:
        how = "各单位比值的" + ("算术平均" if method == "mean" else "中位数")
    return f"基准值 {fmt(info['value'])}（评价总体 {pop} 共{info['n']}个有效单位：{how}{mult}）"


def _indicator_line(i: int, ind: IndicatorSpec, u: pd.Series, run: _Run) -> str:
    num, den = u[f"sum:{ind.numerator}"], u[f"sum:{ind.denominator}"]
    st = u.get(f"st:{ind.key}")
    unit = f" {ind.unit}" if ind.unit else ""
    qn, qd = _quantity(ind.numerator, num), _quantity(ind.denominator, den)
    if st == "ok":
        text = f"{i}. {ind.label} = {qn} / {qd} = {fmt(u[f'v:{ind.key}'])}{unit}"
    else:
        what = "数据缺失" if st == "missing" else "分母为0或负数（已标记人工核实）"
        text = f"{i}. {ind.label}：{qn}，{qd}，{what}"
    if not u["evaluable"]:
        return text
    info = run.benchmarks.get(str(u["pop"]), {}).get(ind.key)
    if info is not None:
        text += "；" + _benchmark_text(info, str(u["pop"]))
    text += f"；权重 {ind.weight:g}"
    s = float(u[f"s:{ind.key}"])
    if st == "ok" and info is not None and info["value"] > 0:
        raw = float(u[f"v:{ind.key}"]) / info["value"] * ind.weight
        text += (
            f"；得分 = {fmt(u[f'v:{ind.key}'])} ÷ {fmt(info['value'])} × {ind.weight:g} = {raw:.4f}"
        )
        if not math.isclose(raw, s, rel_tol=1e-12, abs_tol=1e-12):
            lim = "封顶" if s < raw else "保底"
            mult = ind.cap if s < raw else ind.floor
            text += f"，{lim}为 {s:.4f}（{mult:g} × 权重）"
    elif st == "ok":
        text += f"；基准值无法计算，得分 {s:.4f}"
    else:
        rule = ind.on_missing if st == "missing" else ind.on_zero
        text += f"；{RULES[rule]}，得分 {s:.4f}"
    return text


def _bounds_text(b: dict[str, Any], ties: str) -> str:
    q = b["quotas"]
    parts = []
    for g in GRADES:
        lo, hi = b[g]
        parts.append(f"{g}类 第{lo}–{hi}名" if hi >= lo else f"{g}类 无")
    quota = "、".join(f"{g} {q[g]:g}%" for g in GRADES)
    tie = "同分者并列、取较优名次" if ties == "shared" else "同分者按信用代码排序"
    return f"分档界线（{b['n']}家；{quota}，按累计比例四舍五入；{tie}）：{'；'.join(parts)}"


def explain_text(
    run: _Run, pos: int, *, stored_score: float | None = None, n_matches: int = 1
) -> str:
    """Full explanation of row ``pos`` of an evaluation run."""
    cfg, df, out = run.cfg, run.df, run.out
    uid = run.unit[pos]
    u = run.units.loc[uid]
    lines = [
        f"亩均效益综合评价说明：{df.at[pos, 'name'] or '（无名称）'}（{df.at[pos, 'credit_code']}）"
    ]
    lines.append(f"评价方案：{cfg.name}" + (f"（{cfg.description}）" if cfg.description else ""))
    if n_matches > 1:
        lines.append(f"注意：该信用代码在表中出现{n_matches}次，以下说明第1条记录。")
    cls = u["cls"] if isinstance(u["cls"], str) else ""
    spec = cfg.classes.get(cls)
    label = spec.label if spec else CLASS_LABELS.get(cls, "未确定")
    group = f"；评价组：{u['group']}" if u["evaluable"] else ""
    lines.append(f"评价类别：{label}{group}")
    members = np.flatnonzero(run.unit == uid)
    if members.size > 1:
        kind = "集团评价" if u["grouped"] else "宗地评价"
        service = df["sector"].str.lower().to_numpy()[members] == "service"
        counted = ~service if (~service).any() else np.ones(members.size, bool)
        names = [
            f"{df.at[m, 'name'] or df.at[m, 'credit_code']}（{df.at[m, 'credit_code']}）"
            + ("" if c else "［非工业企业，数据不计入］")
            for m, c in zip(members, counted)
        ]
        lines.append(
            f"评价单元：{kind}，{members.size}家企业合并计算、共享评价结果：{'、'.join(names)}"
        )
    land = u["sum:land_mu"]
    lines.append(f"用地面积：{fmt(land)} 亩（{fmt(land * 2000.0 / 3.0)} 平方米）")
    if spec is not None:
        lines.append("指标（得分 = 指标值 ÷ 基准值 × 权重）：")
        lines += [
            "  " + _indicator_line(i, ind, u, run) for i, ind in enumerate(spec.indicators, 1)
        ]
    if not u["evaluable"]:
        lines.append(f"评价结果：不参与评价（{out.iloc[pos]['grade_note']}）")
        return "\n".join(lines)
    lines.append("加减分：")
    for k, rule in enumerate(cfg.bonus_rules):
        if rule.classes is None or cls in rule.classes:
            n = fmt(0.0 if pd.isna(u[f"sum:{rule.column}"]) else u[f"sum:{rule.column}"])
            lines.append(f"  {rule.name}（{rule.column} = {n}）：{u[f'b:{k}'] + 0.0:+g} 分")
    st = cfg.settings
    for col, sign, word in ((st.bonus_column, 1, "加分"), (st.penalty_column, -1, "减分")):
        if col:
            v = u[f"sum:{col}"]
            pts = sign * (0.0 if pd.isna(v) else float(v)) + 0.0  # no "-0"
            lines.append(f"  {word}（{col}）：{pts:+g} 分")
    lines.append(f"  加减分合计：{u['bonus_total']:+.4f} 分")
    terms = " + ".join(f"{float(u[f's:{i.key}']):.4f}" for i in spec.indicators)  # type: ignore[union-attr]
    lines.append(f"总分 = {terms} {u['bonus_total']:+.4f}（加减分） = {u['score']:.4f}")
    if u["veto"]:
        lines.append(f"一票否决：{u['veto']} —— 直接列为D类，不参与排名、不占分档名额")
    else:
        b = run.bounds[str(u["group"])]
        lines.append(f"排名：评价组 {u['group']} 内第{int(u['rank'])}/{int(u['n'])}名")
        lines.append(_bounds_text(b, cfg.grading.ties))
        lines.append(f"按名次：{u['quota_grade']}类（{band(u['quota_grade'], b['quotas'])}）")
        if u["exempt_freed"]:
            lines.append(f"豁免：属{_exempt_label(u, cfg)}，不评为D类，定为C类")
        if u["backfilled"]:
            lines.append("递补：豁免企业让出D类名额，本企业递补为D类")
        for a in _adjusted(u, cfg):
            lines.append(f"升降档：{a}")
    lines.append(f"最终等级：{out.iloc[pos]['grade']}类")
    lines.append(f"说明：{out.iloc[pos]['grade_note']}")
    if stored_score is not None and not (
        (pd.isna(stored_score) and pd.isna(u["score"]))
        or math.isclose(stored_score, u["score"], abs_tol=1e-6)
    ):
        lines.append(
            f"注意：表中得分 {fmt(stored_score)} 与按本方案重算的得分 {u['score']:.4f} 不一致，"
            "可能使用了其他评价方案或数据已修改。"
        )
    return "\n".join(lines)
