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
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray

from ._evaluate_units import codes_of, dense_codes
from .scoring_config import CLASS_LABELS, DEFAULT_EXEMPT, EvalConfig, IndicatorSpec

if TYPE_CHECKING:
    from .evaluate import _Run

__all__ = [
    "band",
    "column_label",
    "explain_text",
    "fmt",
    "large_strings",
    "note_parts",
    "unit_note",
    "unit_notes",
]

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


def _truth(s: pd.Series) -> np.ndarray:
    """``bool(v)`` of every value of a column, as :func:`unit_note` reads it."""
    dtype = s.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return s.to_numpy()
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return s.to_numpy() != 0  # NaN is true, as bool(nan)
    if isinstance(dtype, pd.StringDtype) and dtype.na_value is not pd.NA:
        return (s != "").to_numpy(dtype=bool)  # missing (NaN) is true, as bool(nan)
    return np.array([bool(v) for v in s.to_numpy(dtype=object)], dtype=bool)


def _flag(units: pd.DataFrame, col: str, idx: np.ndarray, default: Any) -> np.ndarray:
    """``bool(u.get(col, default))`` for the unit rows ``idx``, as :func:`unit_note` reads it."""
    if col not in units:
        return np.full(idx.size, bool(default))
    return _truth(units[col])[idx]


def _append(out: np.ndarray, at: np.ndarray, part: Any, sep: str = "；") -> None:
    """Append ``sep`` + ``part`` (one string or one per position) to ``out[at]``."""
    if at.size:
        out[at] = (
            out[at] + sep + (part if isinstance(part, str) else np.asarray(part, dtype=object))
        )


def _texts(units: pd.DataFrame, col: str, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes of ``units[col]`` at ``rows`` and the ``f"{value}"`` text of each code."""
    codes, names = codes_of(units[col])
    codes = codes[rows]
    if (codes < 0).any():  # missing values: code their text as f-strings show it
        codes, names = pd.factorize(
            np.array([f"{v}" for v in units[col].to_numpy(dtype=object)[rows]], dtype=object)
        )
    return codes, [f"{v}" for v in names]


def large_strings(values: Any) -> pa.Array:
    """Arrow ``large_string`` array (the storage of pandas ``str`` columns) of Python strings."""
    return pa.array(values, type=pa.large_string())


_large = large_strings


def _evaluated_notes(
    units: pd.DataFrame,
    cfg: EvalConfig,
    bounds: dict[str, dict[str, Any]],
    idx: np.ndarray,
    notes: np.ndarray,
) -> tuple[np.ndarray, pa.Array]:
    """Notes of the evaluable units ``idx``: parts joined by ``；``, absent parts skipped.

    The 集团/宗地 part, when present, and the class + score + place part always lead;
    the parts that concern few units (veto, exemption, backfill, 升降档, review) follow.
    Vetoed units' notes are written to ``notes``. Returns the ranked units and their
    notes as Arrow strings: Python formats each distinct fixed piece once and each score,
    and Arrow joins the pieces.
    """
    n = len(units)
    size = units["size"].to_numpy()[idx]
    big = np.asarray(size > 1, dtype=bool)
    grouped = _flag(units, "grouped", idx, False)
    # head = 集团/宗地 part + class label + "，得分 ": few distinct texts, formatted once each
    ccode, cnames = _texts(units, "clabel", idx)
    lead = np.where(big, 2 * size.astype(np.int64) + grouped, 0)
    hinv, hfirst = dense_codes(lead * len(cnames) + ccode)
    heads = [
        (
            f"{'集团评价' if grouped[i] else '宗地评价'}（{int(size[i])}家企业合并计算、共享评价结果）；"
            if big[i]
            else ""
        )
        + f"{cnames[ccode[i]]}，得分 "
        for i in hfirst
    ]
    score = units["score"].to_numpy(dtype=float)[idx]
    vetoed = _flag(units, "veto", idx, "")
    r = np.flatnonzero(~vetoed)
    rows = idx[r]
    # STEP 1: the parts few units have, in their order: exemption, backfill, 升降档, review
    tail = np.full(n, "", dtype=object)
    freed = _flag(units, "exempt_freed", rows, False)
    if freed.any():
        at = rows[freed]
        flags = [
            (_flag(units, c, at, False), FLAG_LABELS.get(c, c)) for c in cfg.grading.exempt_from_d
        ]
        labels = [
            "、".join(label for f, label in flags if f[i]) or "豁免企业" for i in range(at.size)
        ]
        _append(tail, at, ["属" + x + "，不评为D类，定为C类" for x in labels])
    _append(tail, rows[_flag(units, "backfilled", rows, False)], "豁免企业让出D类名额，递补为D类")
    flags = [
        (_flag(units, a.column, rows, None), f"{a.label}（{a.column}，{abs(a.steps)}档）")
        for a in cfg.grading.adjustments
    ]
    if flags:
        moved = np.flatnonzero(np.logical_or.reduce([f for f, _ in flags]))
        pre = units["pre_adjust"].to_numpy(dtype=object)[rows[moved]]
        post = units["grade"].to_numpy(dtype=object)[rows[moved]]
        _append(
            tail,
            rows[moved],
            [
                "、".join(label for f, label in flags if f[i]) + f"：{p}类→{g}类"
                for i, p, g in zip(moved.tolist(), pre, post)
            ],
        )
    flagged = idx[_flag(units, "review_notes", idx, "")]  # vetoed units too
    review = units["review_notes"].to_numpy(dtype=object)[flagged]
    _append(tail, flagged, ["需人工核实：" + str(x).rstrip("；") for x in review])
    # STEP 2: vetoed units: not ranked, D
    v = np.flatnonzero(vetoed)
    if v.size:
        veto = units["veto"].to_numpy(dtype=object)[idx[v]]
        notes[idx[v]] = [
            f"{heads[h]}{s:.2f}，不参与排名；一票否决：{w}，列为D类{t}"
            for h, s, w, t in zip(hinv[v], score[v].tolist(), veto, tail[idx[v]])
        ]
    # STEP 3: ranked units: rank, quota grade and its band, then the tail
    gcode, gnames = _texts(units, "group", rows)
    qcode, qnames = _texts(units, "quota_grade", rows)
    qinv, qfirst = dense_codes(gcode.astype(np.int64) * max(len(qnames), 1) + qcode)
    places = [
        f"名，{q}类（{band(q, bounds[g]['quotas'])}）"
        for g, q in ((gnames[gcode[i]], qnames[qcode[i]]) for i in qfirst)
    ]
    rank = units["rank"].to_numpy(dtype=float)[rows].astype(np.int64)
    size_ = units["n"].to_numpy(dtype=float)[rows].astype(np.int64)
    parts = [
        _large(heads).take(hinv[r]),
        _large(list(map("{:.2f}".format, score[r].tolist()))),
        pa.scalar("，组内第", type=pa.large_string()),
        pc.cast(pa.array(rank), pa.large_string()),  # int → decimal text, as f"{int}"
        pa.scalar("/", type=pa.large_string()),
        pc.cast(pa.array(size_), pa.large_string()),
        _large(places).take(qinv),
    ]
    if (tail[rows] != "").any():
        parts.append(_large(tail[rows]))
    return rows, pc.binary_join_element_wise(*parts, pa.scalar("", type=pa.large_string()))


def note_parts(
    units: pd.DataFrame, cfg: EvalConfig, bounds: dict[str, dict[str, Any]]
) -> tuple[pa.Array, np.ndarray]:
    """``grade_note`` of every unit as Arrow strings ``texts`` and each unit's position in it.

    ``texts.take(pos)`` are the notes in unit order (:func:`unit_notes`); a caller that
    broadcasts them to firms takes once, from ``texts`` straight to the firm rows.
    """
    n = len(units)
    ev = _truth(units["evaluable"])
    notes = np.full(n, "", dtype=object)
    rest = np.flatnonzero(~ev)
    notes[rest] = [str(v) for v in units["reason"].to_numpy(dtype=object)[rest]]
    idx = np.flatnonzero(ev)
    rows, text = _evaluated_notes(units, cfg, bounds, idx, notes) if idx.size else (idx, None)
    # Python-built notes first, then the ranked units' Arrow-built ones
    ranked = np.zeros(n, dtype=bool)
    ranked[rows] = True
    others = np.flatnonzero(~ranked)
    pos = np.empty(n, dtype=np.intp)
    pos[others] = np.arange(others.size)
    pos[rows] = others.size + np.arange(rows.size)
    texts = _large(notes[others])
    if text is not None:
        texts = pa.concat_arrays([texts, text])
    return texts, pos


def unit_notes(
    units: pd.DataFrame, cfg: EvalConfig, bounds: dict[str, dict[str, Any]]
) -> ExtensionArray:
    """``grade_note`` of every unit, vectorised: equal to :func:`unit_note` row by row.

    Reads only the columns the note needs (no per-unit dicts); Python formats each
    distinct fixed piece once and each unit's score, and Arrow joins the pieces. Returns a
    ``str`` array.

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
    texts, pos = note_parts(units, cfg, bounds)
    return pd.array(texts.take(pa.array(pos)), dtype="str")


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
