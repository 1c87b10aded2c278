"""亩均效益综合评价: score, rank and grade enterprises (A/B/C/D) from a scoring configuration.

The method is configuration (see :mod:`mujun_geo.scoring_config` and the presets
``zhejiang-2022``, ``huangyan-2022``, ``huangyan-2021``). The steps, and the choices made
where the policy text is silent:

1. **Class** (``eval_class``): ``sector == "service"`` → ``service`` (``service_building``
   when the firm has no land and that class is configured); ``scale == "above"`` → ``above``
   unless ``newly_scaled`` and ``settings.newly_scaled_as_below`` (then ``below``).
2. **Not evaluated** (grade ``""``, ``grade_note`` says why), in this order: matching
   ``rejected``; industry code in ``settings.excluded_industries``; unknown scale;
   ``utility`` (公益性企业，不参与评价分类); then per unit: class not configured (a service
   firm sharing a parcel with industrial firms is graded with them); no land (unless the
   class has ``requires_land: false``); land below the class's ``min_land_mu``; a value
   missing for an indicator whose rule is ``exclude_firm``. Indicator values are still
   computed for these firms where their data allow.
3. **Units**: firms sharing ``eval_unit`` (宗地评价, ``settings.parcel_mode``) and, with
   ``settings.group_mode``, a parent and the subsidiaries whose ``group_code`` is its
   ``credit_code`` in the same ``region_code`` (集团评价) form one unit that shares score and
   grade. Numerators and denominators are summed over the unit's industrial members
   (service members' data is not counted but they share the grade); land is counted once
   per ``eval_unit`` (maximum, since every member carries the parcel's land) and summed
   across distinct parcels. The unit's class is its highest member class (规上 > 规下 >
   服务业); its region and industry are those of its lead firm (the group parent, else the
   highest class, then the largest revenue). Flags (exemptions, veto, 升降档 columns) hold
   for the unit when any counted member has them; bonus columns are summed.
4. **Indicators**: value = Σnumerator / Σdenominator; ``land_mu`` is the unit's land and
   ``emissions`` is derived from ``emissions_t`` (else COD + NH3-N + SO2 + NOx tonnes, or
   污染当量 in ``equivalent`` mode). A missing numerator/denominator follows ``on_missing``,
   a zero or negative denominator ``on_zero`` (and flags the firm for review).
5. **Benchmarks** per population (``settings.benchmark_scope``: ``all`` = class,
   ``region`` = region × class, ``group`` = evaluation group) over the evaluated units
   with a usable value: ``aggregate`` = Σnumerator/Σdenominator, ``mean``/``median`` of
   the ratios, times ``multiple``. Score = value / benchmark × weight, then clipped to
   [floor × weight, cap × weight]. Total = Σ scores + 加减分 rules + ``bonus`` − ``penalty``.
6. **Ranking** within evaluation groups (``grading.group_by``), best score first, scores
   compared after rounding to ``grading.rank_decimals``. Ties ``shared`` (default): equal
   scores get the same (best) rank and therefore the same grade, so a grade may hold more
   firms than its quota; ``credit_code``: ties are ordered by the lead firm's credit code.
   Vetoed units are not ranked (rank empty) and do not take a quota place.
7. **Quotas** (percent, per industry group > class > default): with n ranked units, the
   cumulative boundaries are ``round_half_up(n × cum% / 100)``: A = ranks 1…b_A, B = b_A+1…b_B,
   C = b_B+1…b_C, D = the rest, so the counts always sum to n. 20 firms at 25/50/20/5 →
   5/10/4/1; 7 firms → 2/3/2/0 (1.75 → 2, 5.25 → 5, 6.65 → 7).
8. **Exemptions and adjustments**: a unit with any flag of ``grading.exempt_from_d``
   that falls in D gets C; with ``grading.backfill_d`` the freed D places go to the
   worst-ranked non-exempt C units of the group. Then 升降档 rules move grades (an exempt
   unit still never ends in D). Finally a veto (non-empty ``veto``) sets D.

Examples
--------
>>> import pandas as pd
>>> firms = pd.DataFrame({
...     "credit_code": ["A1", "A2"], "scale": ["below", "below"], "sector": "industry",
...     "region_code": "331003", "tax": [23.1864, 11.5932], "electricity": [100.0, 49.29],
...     "land_mu": [4.0, 2.0]})
>>> out = evaluate(firms, config="huangyan-2022")
>>> out[["score", "grade"]].round(2).values.tolist()
[[74.29, 'B'], [nan, '']]
>>> out.loc[1, "grade_note"]
'规下工业占地不足3亩（2.00亩），不参与评价'
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ._errors import DataWarning, MujunGeoError, SchemaError
from ._evaluate_score import grade, score, values
from ._evaluate_text import explain_text, large_strings, note_parts
from ._evaluate_units import (
    CLASS_BY_CODE,
    build_units,
    categorical,
    class_codes,
    classify,
    codes_of,
    dense_codes,
    prefix_match,
    strings,
    text,
    truthy,
)
from .scoring_config import (
    CLASS_LABELS,
    EvalConfig,
    config_yaml,
    load_config,
    preset_names,
)

__all__ = [
    "OUTPUT_COLUMNS",
    "STANDARD_INDICATORS",
    "EvalConfig",
    "config_yaml",
    "evaluate",
    "explain",
    "load_config",
    "preset_names",
]

logger = logging.getLogger(__name__)

#: Indicator columns always present in the output (CONTRACT.md), NaN when not configured.
STANDARD_INDICATORS = (
    "tax_per_mu", "va_per_mu", "va_per_tce", "va_per_emission", "labour_productivity", "rd_ratio",
)  # fmt: skip
#: Fixed output columns (indicator and ``score_<indicator>`` columns come in addition).
OUTPUT_COLUMNS = (
    "evaluated", "eval_class", "eval_group", "benchmark_pop", "eval_unit_lead", "eval_unit_size",
    "eval_land_mu", "bonus_penalty_points", "score", "rank", "group_size", "grade", "grade_note",
    "review",
)  # fmt: skip
_SCALE = {"above": "above", "规上": "above", "below": "below", "规下": "below"}


@dataclass
class _Run:
    """Everything one evaluation computed (rows = input rows by position, units = eval units)."""

    cfg: EvalConfig
    df: pd.DataFrame
    unit: np.ndarray
    units: pd.DataFrame
    out: pd.DataFrame
    benchmarks: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    bounds: dict[str, dict[str, Any]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# small vectorised helpers


def _numeric(s: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    out = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero(np.isnan(out) & (text(s) != ""))
    if bad.size:
        msg = (
            f"column `{name}` has {bad.size} non-numeric value(s) (index "
            f"{s.index[bad[:10]].tolist()}); they are treated as missing — fix them in the input"
        )
        warnings.warn(msg, DataWarning, stacklevel=4)
    return out


# ---------------------------------------------------------------------------------------------
# STEP 1: a positional working frame with every column the configuration needs


def _needed_columns(cfg: EvalConfig) -> set[str]:
    cols = {
        c
        for spec in cfg.classes.values()
        for i in spec.indicators
        for c in (i.numerator, i.denominator)
    }
    return cols - {"land_mu"}


def _missing_msg(cfg: EvalConfig, missing: Sequence[str]) -> str:
    return (
        f"evaluation with config `{cfg.name}` needs column(s) {', '.join(missing)}; "
        "add them (NaN where unknown) or drop the indicators that use them from the config"
    )


def _check_columns(enterprises: pd.DataFrame, cfg: EvalConfig, classes: Sequence[str]) -> None:
    """Raise if an indicator of a class that some firm belongs to uses an absent column."""
    cols = set(enterprises.columns)
    em = cfg.settings.emission_columns
    has_emissions = bool({"emissions", "emissions_t", *em} & cols)
    missing: dict[str, None] = {}
    for c in dict.fromkeys(classes):
        for ind in cfg.classes[c].indicators if c in cfg.classes else ():
            for col in (ind.numerator, ind.denominator):
                if col == "emissions" and not has_emissions:
                    missing[f"emissions_t (or {', '.join(em)})"] = None
                elif col not in cols and col not in ("emissions", "land_mu"):
                    missing[col] = None
    if missing:
        raise SchemaError(_missing_msg(cfg, list(missing)))


def _prepare(enterprises: pd.DataFrame, cfg: EvalConfig) -> pd.DataFrame:
    if not isinstance(enterprises, pd.DataFrame):
        msg = f"`enterprises` must be a pandas DataFrame, got {type(enterprises).__name__}"
        raise TypeError(msg)
    if not enterprises.index.is_unique:
        dup = enterprises.index[enterprises.index.duplicated()].unique()[:10].tolist()
        msg = f"`enterprises` index must be unique (duplicated labels: {dup}); call reset_index()"
        raise SchemaError(msg)
    cols = set(enterprises.columns)
    missing = [c for c in ("credit_code", "scale") if c not in cols]
    if "land_mu" not in cols and "land_m2" not in cols:
        missing.append("land_m2 (or land_mu; run matching first)")
    if missing:
        raise SchemaError(_missing_msg(cfg, missing))
    settings = cfg.settings
    needed = _needed_columns(cfg)
    src = enterprises  # every column is read with .to_numpy(): positions, not labels
    n = len(src)
    df = pd.DataFrame(index=pd.RangeIndex(n))
    blank = None
    for c in (
        "credit_code",
        "name",
        "region_code",
        "industry_code",
        "sector",
        "match_status",
        "eval_unit",
        "group_code",
        "veto",
    ):
        if c in src:
            df[c] = strings(src[c])
        else:
            if blank is None:
                blank = pd.array(np.full(n, "", dtype=object), dtype="str")
            df[c] = blank.copy()
    # scale words are few: map each distinct one
    codes, words = pd.factorize(strings(src["scale"]))
    scale = np.array([_SCALE.get(v.lower(), "") for v in words], dtype=object)
    df["scale"] = pd.array(scale, dtype="str").take(codes)
    flag_cols = {"newly_scaled", "utility", *cfg.grading.exempt_from_d}
    flag_cols |= {a.column for a in cfg.grading.adjustments}
    for c in flag_cols:
        df[c] = truthy(src[c]) if c in src else np.zeros(n, dtype=bool)
    num_cols = needed | {"revenue", "emissions_t", *settings.emission_columns}
    num_cols |= {r.column for r in cfg.bonus_rules}
    num_cols |= {c for c in (settings.bonus_column, settings.penalty_column) if c}
    for c in num_cols:
        # a column that is also a flag (an adjustment counted by a bonus rule, say) keeps both
        # readings: the flag under its name, the number as ``num:<name>``
        key = f"num:{c}" if c in flag_cols else c
        df[key] = _numeric(src[c], c) if c in src else np.full(n, np.nan)
    land = _numeric(src["land_mu"], "land_mu") if "land_mu" in src else np.full(n, np.nan)
    if "land_m2" in src:
        land = np.where(np.isnan(land), _numeric(src["land_m2"], "land_m2") * 3.0 / 2000.0, land)
    df["land_mu"] = land
    if "emissions" not in src:
        comp = df[list(settings.emission_columns)]
        if settings.emission_mode == "equivalent":
            eq = pd.Series(settings.equivalents_kg)[list(settings.emission_columns)]
            # 当量数 = tonnes × 1000 kg / (kg per 当量)
            df["emissions"] = (comp * 1000.0 / eq.to_numpy()).sum(axis=1, min_count=1)
        else:
            df["emissions"] = df["emissions_t"].fillna(comp.sum(axis=1, min_count=1))
    return df


# ---------------------------------------------------------------------------------------------
# STEP 5: run every step and broadcast unit results to the input rows


def _group_labels(
    parts: Sequence[tuple[np.ndarray, Sequence[str]]], sep: str, n: int
) -> pd.Categorical:
    """Per unit, the ``sep``-joined names of its part codes, as a categorical.

    Strings are built once per distinct combination; equal strings from different
    combinations share one category.
    """
    if not parts:
        return categorical(np.zeros(n, dtype=np.intp), ["全部"])
    key = np.zeros(n, dtype=np.int64)
    for codes, names in parts:
        key = key * max(len(names), 1) + codes
    inv, first = dense_codes(key)
    joined = [sep.join(str(names[codes[i]]) for codes, names in parts) for i in first]
    canon, cats = pd.factorize(np.array(joined, dtype=object))
    return categorical(canon[inv], list(cats))


def _run(enterprises: pd.DataFrame, cfg: EvalConfig) -> _Run:
    df = _prepare(enterprises, cfg)
    service = (df["sector"].str.lower() == "service").to_numpy(dtype=bool)
    prio, reason, eligible = classify(df, cfg, service)
    _check_columns(
        enterprises, cfg, [CLASS_BY_CODE[c] for c in pd.unique(class_codes(prio[eligible]))]
    )
    labels, units = build_units(df, cfg, prio, reason, eligible, service)
    cls_code = units["cls"].cat.codes.to_numpy()
    configured = np.isin(cls_code, [CLASS_BY_CODE.index(c) for c in cfg.classes])
    absent = (units["reason"] == "").to_numpy(dtype=bool) & ~configured
    if absent.any():
        why = units["reason"].to_numpy(dtype=object).copy()
        for code in np.unique(cls_code[absent]):
            c = CLASS_BY_CODE[code]
            why[absent & (cls_code == code)] = (
                f"本评价方案未设{CLASS_LABELS.get(c, c)}评价，不参与评价"
            )
        units["reason"] = pd.Series(why, index=units.index, dtype=object)
    values(units, cfg)
    units["evaluable"] = (units["reason"] == "").to_numpy(dtype=bool)
    gb = cfg.grading
    nunits = len(units)
    region_code, regions = codes_of(units["region_code"])
    region = (region_code, ["未知区划" if r == "" else r for r in regions])
    clabels = [
        cfg.classes[c].label if c in cfg.classes else CLASS_LABELS.get(c, "") for c in CLASS_BY_CODE
    ]
    clabel = (cls_code, clabels)
    # industry groups of the distinct industry codes, then per unit
    industry_code, industries = codes_of(units["industry_code"])
    igroup_of = np.zeros(len(industries), dtype=np.intp)
    for k, ig in reversed(list(enumerate(gb.industry_groups, 1))):  # first listed group wins
        igroup_of[prefix_match(industries, ig.industries)] = k
    igroup_code = igroup_of[industry_code]
    igroup = (igroup_code, [gb.other_group, *(ig.name for ig in gb.industry_groups)])
    units["igroup"] = _group_labels([igroup], "", nunits)
    parts = {"region_code": region, "eval_class": clabel, "industry_group": igroup}
    units["group"] = _group_labels([parts[k] for k in gb.group_by], "/", nunits)
    scope = cfg.settings.benchmark_scope
    if scope == "group":
        units["pop"] = units["group"]
    else:
        units["pop"] = _group_labels(
            [region, clabel] if scope == "region" else [clabel], "/", nunits
        )
    units["clabel"] = _group_labels([clabel], "", nunits)
    benchmarks = score(units, cfg)
    bounds = grade(units, cfg)
    out = _assemble(enterprises.index, df, cfg, labels, units, bounds, service)
    out.attrs = {"benchmarks": benchmarks, "quota_bounds": bounds, "config": cfg.name}
    return _Run(cfg, df, labels, units, out, benchmarks, bounds)


def _text_column(values: Any, n: int) -> Any:
    """``str`` column as pandas infers it from Python strings (``object`` when empty)."""
    return np.empty(0, dtype=object) if n == 0 else values


def _take(cat: pd.Series, rows: np.ndarray, blank: np.ndarray | None = None) -> Any:
    """Values of a categorical column at ``rows`` as a ``str`` array; ``""`` where ``blank``."""
    codes, names = codes_of(cat)
    table = pd.array(np.append(names, ""), dtype="str")
    codes = codes[rows]
    if blank is not None:
        codes = np.where(blank, len(names), codes)
    return _text_column(table.take(codes), rows.size)


def _assemble(
    index: pd.Index,
    df: pd.DataFrame,
    cfg: EvalConfig,
    labels: np.ndarray,
    units: pd.DataFrame,
    bounds: dict[str, dict[str, Any]],
    service: np.ndarray,
) -> pd.DataFrame:
    """Broadcast unit results to the input rows (same index as the input).

    Units are numbered 0, 1, … (``units.index``), so a row's unit is also its position
    in the unit table: every column is one take by ``labels``.
    """
    n = len(index)
    keys = dict.fromkeys([*STANDARD_INDICATORS, *cfg.indicators()])
    ev = units["evaluable"].to_numpy(dtype=bool)[labels]

    def num(col: str) -> np.ndarray:
        if col not in units:
            return np.full(n, np.nan)
        return units[col].to_numpy(dtype=float)[labels]

    size = units["size"].to_numpy()[labels]
    cls = units["cls"].cat.codes.to_numpy()[labels]
    cols: dict[str, Any] = {
        "evaluated": ev,
        "eval_class": _take(units["cls"], labels),
        "eval_group": _take(units["group"], labels, ~ev),
        "benchmark_pop": _take(units["pop"], labels, ~ev),
        "eval_unit_lead": _text_column(units["credit_code"].array.take(labels), n),
        "eval_unit_size": size.astype(int),
        "eval_land_mu": num("sum:land_mu"),
    }
    for k in keys:
        cols[k] = num(f"v:{k}")
    for k in cfg.indicators():
        cols[f"score_{k}"] = num(f"s:{k}")
    cols["bonus_penalty_points"] = np.where(ev, num("bonus_total"), np.nan)
    cols["score"] = num("score")
    cols["rank"] = pd.array(num("rank"), dtype="Int64")
    cols["group_size"] = pd.array(num("n"), dtype="Int64")
    cols["grade"] = _take(units["grade"], labels, ~ev)
    # notes once per unit; per firm, the two prefixes (4 combinations) that few firms have
    # are added to their (unit, prefix) pairs only; then one take from texts to rows
    texts, pos = note_parts(units, cfg, bounds)
    at = pos[labels]
    shared = ev & service & (cls != CLASS_BY_CODE.index("service")) & (size > 1)
    newly = (
        df["newly_scaled"].to_numpy()
        & (df["scale"] == "above").to_numpy(dtype=bool)
        & (cls == CLASS_BY_CODE.index("below"))
    )
    code = 2 * shared + newly
    sel = np.flatnonzero(code)
    if sel.size:
        newly_note = "新升规未满1年，按规下企业评价；"
        shared_note = "非工业企业，数据不计入合并评价，共享评价结果；"
        pre = ("", newly_note, shared_note, shared_note + newly_note)
        inv, first = dense_codes(at[sel].astype(np.int64) * len(pre) + code[sel])
        body = texts.take(pa.array(at[sel][first])).to_pylist()
        extra = [pre[c] + b for c, b in zip(code[sel][first].tolist(), body)]
        at[sel] = len(texts) + inv
        texts = pa.concat_arrays([texts, large_strings(extra)])
    note = pd.array(texts.take(pa.array(at)), dtype="str")
    cols["grade_note"] = _text_column(note, n)
    review = (units["review_notes"].fillna("") != "").to_numpy(dtype=bool)
    cols["review"] = ev & review[labels]
    return pd.DataFrame(cols, index=index, copy=False)  # every column is a fresh array


# ---------------------------------------------------------------------------------------------
# public API


def _output_names(cfg: EvalConfig) -> list[str]:
    keys = list(dict.fromkeys([*STANDARD_INDICATORS, *cfg.indicators()]))
    return [*OUTPUT_COLUMNS, *keys, *(f"score_{k}" for k in cfg.indicators())]


def evaluate(
    enterprises: pd.DataFrame,
    *,
    config: EvalConfig | str | Path | dict = "zhejiang-2022",
    **kwargs: Any,
) -> pd.DataFrame:
    """Score, rank and grade enterprises (亩均效益综合评价).

    Parameters
    ----------
    enterprises
        Canonical enterprises frame (docs/INTERFACES.md) with ``land_m2`` or ``land_mu``
        (亩), and optionally ``eval_unit`` (宗地评价 unit from matching) and
        ``match_status`` (``"rejected"`` rows are not evaluated). Not modified.
    config
        Preset name, YAML path, mapping or :class:`EvalConfig`; default ``"zhejiang-2022"``.

    Returns
    -------
    pandas.DataFrame
        Same index as ``enterprises``; columns :data:`OUTPUT_COLUMNS`, one column per
        indicator value (``tax_per_mu`` …, always the six of :data:`STANDARD_INDICATORS`)
        and per indicator score (``score_<indicator>``). ``grade`` is ``A``–``D`` or
        ``""``; ``grade_note`` says why in Chinese. ``attrs["benchmarks"]`` maps each
        benchmark population to ``{indicator: {value, method, multiple, n, numerator_sum,
        denominator_sum, …}}`` and ``attrs["quota_bounds"]`` maps each evaluation group to
        ``{n, quotas, A: [first_rank, last_rank], …}``.

    Raises
    ------
    SchemaError
        If a column the configuration needs is absent, or the index is not unique.
    ConfigError
        If the configuration is invalid.

    Examples
    --------
    >>> import pandas as pd
    >>> firms = pd.DataFrame({"credit_code": ["A", "B", "C", "D"], "scale": "below",
    ...                       "sector": "industry", "region_code": "331003",
    ...                       "tax": [40.0, 30.0, 20.0, 10.0], "land_mu": 10.0})
    >>> out = evaluate(firms)   # zhejiang-2022: 规下 亩均税收 / aggregate (10 万元/亩) × 100
    >>> out[["tax_per_mu", "score", "rank", "grade"]].values.tolist()
    [[4.0, 160.0, 1, 'A'], [3.0, 120.0, 2, 'B'], [2.0, 80.0, 3, 'B'], [1.0, 40.0, 4, 'C']]
    >>> out.attrs["benchmarks"]["331003/规下工业"]["tax_per_mu"]["value"]
    2.5
    """
    if kwargs:
        msg = f"evaluate() got unexpected keyword argument(s): {', '.join(map(repr, kwargs))}"
        raise TypeError(msg)
    cfg = load_config(config)
    run = _run(enterprises, cfg)
    # counted on the unit table: a column of `out` would deep-copy its large attrs
    evaluated = run.units["evaluable"].to_numpy(dtype=bool)[run.unit]
    logger.info(
        "evaluated %d of %d enterprises with config %s",
        int(evaluated.sum()),
        len(run.out),
        cfg.name,
    )
    return run.out


def explain(
    evaluated: pd.DataFrame,
    credit_code: str,
    *,
    config: EvalConfig | str | Path | dict = "zhejiang-2022",
) -> str:
    """Explain the whole computation for one firm, in Chinese (for ``mujun-geo explain``).

    The evaluation is recomputed from the input columns of ``evaluated`` (the enterprises
    frame, alone or joined with :func:`evaluate` output), so the text always matches
    ``config``; a stored ``score`` that differs is pointed out.

    Parameters
    ----------
    evaluated
        Enterprises frame as given to :func:`evaluate`, optionally with its output columns.
    credit_code
        统一社会信用代码 of the firm (case and surrounding spaces ignored).
    config
        The configuration used for the evaluation.

    Returns
    -------
    str
        Lines: class and unit, land, each indicator (value = numerator / denominator,
        benchmark and how it was computed, weight, score), 加减分, total, rank, quota
        boundaries, exemptions/veto and the final grade.

    Raises
    ------
    MujunGeoError
        If no row has ``credit_code``.

    Examples
    --------
    >>> import pandas as pd
    >>> firms = pd.DataFrame({"credit_code": ["A", "B"], "scale": "below", "sector": "industry",
    ...                       "tax": [23.1864, 11.5932], "electricity": [100.0, 49.29],
    ...                       "land_mu": [4.0, 4.0]})
    >>> text = explain(firms, "A", config="huangyan-2022")
    >>> for part in text.splitlines()[5].split("；"):
    ...     print(part)
      1. 亩均税收 = 税收 23.1864 万元 / 用地面积 4 亩 = 5.7966 万元/亩
    基准值 11.5932（固定值）
    权重 50
    得分 = 5.7966 ÷ 11.5932 × 50 = 25.0000
    """
    cfg = load_config(config)
    if "credit_code" not in evaluated.columns:
        raise SchemaError("`evaluated` has no `credit_code` column; pass the enterprises frame")
    base = evaluated.drop(columns=[c for c in _output_names(cfg) if c in evaluated.columns])
    run = _run(base, cfg)
    code = str(credit_code).strip().upper()
    pos = np.flatnonzero(np.char.upper(run.df["credit_code"].to_numpy().astype(str)) == code)
    if not pos.size:
        msg = (
            f"credit code {credit_code!r} not found among the {len(run.df)} enterprises; "
            "check the 18-character 统一社会信用代码"
        )
        raise MujunGeoError(msg)
    stored = None
    if "score" in evaluated.columns:
        stored = pd.to_numeric(evaluated["score"], errors="coerce").to_numpy(dtype=float)[pos[0]]
    return explain_text(run, int(pos[0]), stored_score=stored, n_matches=int(pos.size))
