"""Validation of scoring configurations: every error names the key and the allowed values.

Private module; :func:`mujun_geo.scoring_config.load_config` is the entry point.
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

from ._errors import ConfigError
from ._scoring_spec import (
    BENCHMARK_METHODS,
    BENCHMARK_SCOPES,
    CLASS_KEYS,
    CLASS_LABELS,
    DEFAULT_EQUIVALENTS_KG,
    DEFAULT_EXEMPT,
    EMISSION_MODES,
    GRADES,
    GROUP_BY_KEYS,
    MISSING_RULES,
    RESERVED_KEYS,
    TIE_RULES,
    Adjustment,
    Benchmark,
    BonusRule,
    ClassSpec,
    EvalConfig,
    GradingSpec,
    IndicatorSpec,
    IndustryGroup,
    Settings,
)

__all__ = ["build"]

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_INDUSTRY_RE = re.compile(r"^\d{2,4}$")


def _fail(path: str, problem: str) -> NoReturn:
    raise ConfigError(f"config key `{path}`: {problem}")


def _mapping(value: Any, path: str, allowed: tuple[str, ...]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(path, f"must be a mapping with keys {', '.join(allowed)}; got {value!r}")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        _fail(
            f"{path}.{unknown[0]}" if path else str(unknown[0]),
            f"unknown key; allowed keys here: {', '.join(allowed)}",
        )
    return value


def _number(
    value: Any,
    path: str,
    *,
    minimum: float | None = None,
    allow_none: bool = False,
    strict_min: bool = False,
) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _fail(path, f"must be a number{' or null' if allow_none else ''}, got {value!r}")
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        _fail(path, f"must be {'>' if strict_min else '≥'} {minimum:g}, got {value!r}")
    return float(value)


def _choice(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        _fail(path, f"{value!r} is not allowed; use one of: {', '.join(allowed)}")
    return str(value)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"must be true or false, got {value!r}")
    return value


def _str(value: Any, path: str, *, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        _fail(path, f"must be a non-empty text, got {value!r}")
    return value.strip()


def _str_list(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        _fail(path, f"must be a list, got {value!r}")
    return tuple(_str(v, f"{path}[{i}]") for i, v in enumerate(value))  # type: ignore[misc]


def _industries(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        _fail(path, f"must be a non-empty list of 2–4 digit industry codes, got {value!r}")
    out = []
    for i, v in enumerate(value):
        code = f"{v:02d}" if isinstance(v, int) and not isinstance(v, bool) else str(v).strip()
        if not _INDUSTRY_RE.match(code):
            _fail(f"{path}[{i}]", f"{v!r} is not a 2–4 digit GB/T 4754 industry code (e.g. '26')")
        out.append(code)
    return tuple(out)


def _quotas(value: Any, path: str) -> dict[str, float] | None:
    if value is None:
        return None
    q = _mapping(value, path, GRADES)
    missing = [g for g in GRADES if g not in q]
    if missing:
        _fail(
            path,
            f"needs all of A, B, C, D (missing {', '.join(missing)}), "
            "e.g. {A: 25, B: 50, C: 20, D: 5}",
        )
    out = {g: _number(q[g], f"{path}.{g}", minimum=0) for g in GRADES}
    if abs(sum(out.values()) - 100) > 1e-9:  # type: ignore[arg-type]
        _fail(path, f"percentages must sum to 100, they sum to {sum(out.values()):g}")  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


def _benchmark(value: Any, path: str) -> Benchmark:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Benchmark("fixed", _number(value, path, minimum=0, strict_min=True))
    if isinstance(value, str):
        if value == "fixed":
            _fail(path, "`fixed` needs a number: write the value itself, e.g. `benchmark: 24.097`")
        return Benchmark(_choice(value, path, BENCHMARK_METHODS))
    if isinstance(value, dict):
        m = _mapping(value, path, ("method", "value", "multiple"))
        method = m.get("method", "fixed" if "value" in m else None)
        method = _choice(method, f"{path}.method", BENCHMARK_METHODS)
        val = None
        if method == "fixed":
            val = _number(m.get("value"), f"{path}.value", minimum=0, strict_min=True)
        elif "value" in m:
            _fail(f"{path}.value", f"only allowed with method fixed, not {method}")
        mult = _number(m.get("multiple", 1.0), f"{path}.multiple", minimum=0, strict_min=True)
        return Benchmark(method, val, mult)  # type: ignore[arg-type]
    _fail(
        path,
        "must be a positive number or one of aggregate, mean, median, "
        "or a mapping {method, value, multiple}; got " + repr(value),
    )


_IND_KEYS = (
    "label",
    "numerator",
    "denominator",
    "unit",
    "weight",
    "benchmark",
    "cap",
    "floor",
    "on_missing",
    "on_zero",
)


def _indicator(key: Any, value: Any, path: str) -> IndicatorSpec:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        _fail(path, "indicator names are lower-case ASCII identifiers such as `tax_per_mu`")
    if key in RESERVED_KEYS:
        _fail(path, f"`{key}` is an input or output column name; choose another indicator name")
    m = _mapping(value, path, _IND_KEYS)
    for req in ("numerator", "denominator", "weight", "benchmark"):
        if req not in m:
            _fail(
                f"{path}.{req}",
                "is required (an indicator is numerator / denominator with a "
                "weight and a benchmark)",
            )
    cap = _number(m.get("cap"), f"{path}.cap", minimum=0, allow_none=True)
    floor = _number(m.get("floor"), f"{path}.floor", allow_none=True)
    if cap is not None and floor is not None and floor > cap:
        _fail(f"{path}.floor", f"{floor:g} is above cap {cap:g}")
    return IndicatorSpec(
        key=key,
        label=str(m.get("label", key)),
        numerator=_str(m["numerator"], f"{path}.numerator"),  # type: ignore[arg-type]
        denominator=_str(m["denominator"], f"{path}.denominator"),  # type: ignore[arg-type]
        weight=_number(m["weight"], f"{path}.weight", minimum=0, strict_min=True),  # type: ignore[arg-type]
        benchmark=_benchmark(m["benchmark"], f"{path}.benchmark"),
        unit=str(m.get("unit", "") or ""),
        cap=cap,
        floor=floor,
        on_missing=_choice(m.get("on_missing", "zero"), f"{path}.on_missing", MISSING_RULES),
        on_zero=_choice(m.get("on_zero", "zero"), f"{path}.on_zero", MISSING_RULES),
    )


def _class(key: str, value: Any, path: str) -> ClassSpec:
    m = _mapping(value, path, ("label", "indicators", "min_land_mu", "requires_land", "quotas"))
    inds = m.get("indicators")
    if not isinstance(inds, dict) or not inds:
        _fail(f"{path}.indicators", "must map indicator names to their definitions (at least one)")
    return ClassSpec(
        key=key,
        label=str(m.get("label", CLASS_LABELS[key])),
        indicators=tuple(_indicator(k, v, f"{path}.indicators.{k}") for k, v in inds.items()),
        min_land_mu=_number(
            m.get("min_land_mu"), f"{path}.min_land_mu", minimum=0, allow_none=True
        ),
        requires_land=_bool(
            m.get("requires_land", key != "service_building"), f"{path}.requires_land"
        ),
        quotas=_quotas(m.get("quotas"), f"{path}.quotas"),
    )


def _settings(value: Any) -> Settings:
    path = "settings"
    m = _mapping(
        value,
        path,
        (
            "newly_scaled_as_below",
            "parcel_mode",
            "group_mode",
            "benchmark_scope",
            "excluded_industries",
            "emissions",
            "bonus_column",
            "penalty_column",
        ),
    )
    em = _mapping(m.get("emissions"), f"{path}.emissions", ("mode", "columns", "equivalents_kg"))
    cols = _str_list(em.get("columns", list(DEFAULT_EQUIVALENTS_KG)), f"{path}.emissions.columns")
    eq_raw = em.get("equivalents_kg", DEFAULT_EQUIVALENTS_KG)
    if not isinstance(eq_raw, dict):
        _fail(f"{path}.emissions.equivalents_kg", "must map pollutant columns to kg per 当量")
    eq = {
        str(k): _number(v, f"{path}.emissions.equivalents_kg.{k}", minimum=0, strict_min=True)
        for k, v in eq_raw.items()
    }
    mode = _choice(em.get("mode", "tonnes"), f"{path}.emissions.mode", EMISSION_MODES)
    if mode == "equivalent":
        for c in cols:
            if c not in eq:
                _fail(f"{path}.emissions.equivalents_kg", f"has no 当量值 for column `{c}`")
    excl = m.get("excluded_industries")
    return Settings(
        newly_scaled_as_below=_bool(
            m.get("newly_scaled_as_below", True), f"{path}.newly_scaled_as_below"
        ),
        parcel_mode=_bool(m.get("parcel_mode", True), f"{path}.parcel_mode"),
        group_mode=_bool(m.get("group_mode", False), f"{path}.group_mode"),
        benchmark_scope=_choice(
            m.get("benchmark_scope", "region"), f"{path}.benchmark_scope", BENCHMARK_SCOPES
        ),
        excluded_industries=_industries(excl, f"{path}.excluded_industries") if excl else (),
        emission_mode=mode,
        emission_columns=cols,
        equivalents_kg=eq,  # type: ignore[arg-type]
        bonus_column=_str(m.get("bonus_column", "bonus"), f"{path}.bonus_column", allow_none=True),
        penalty_column=_str(
            m.get("penalty_column", "penalty"), f"{path}.penalty_column", allow_none=True
        ),
    )


def _bonus_rules(value: Any, classes: dict[str, ClassSpec]) -> tuple[BonusRule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        _fail("bonus_penalty", f"must be a list of rules, got {value!r}")
    out = []
    for i, r in enumerate(value):
        p = f"bonus_penalty[{i}]"
        m = _mapping(
            r, p, ("name", "column", "per_unit", "free_units", "first_unit", "classes", "max")
        )
        for req in ("column", "per_unit"):
            if req not in m:
                _fail(f"{p}.{req}", "is required, e.g. {column: n_tenants, per_unit: -5}")
        cls = m.get("classes")
        if cls is not None:
            cls = _str_list(cls, f"{p}.classes")
            for c in cls:
                _choice(c, f"{p}.classes", CLASS_KEYS)
        column = _str(m["column"], f"{p}.column")
        out.append(
            BonusRule(
                name=str(m.get("name", column)),
                column=column,  # type: ignore[arg-type]
                per_unit=_number(m["per_unit"], f"{p}.per_unit"),  # type: ignore[arg-type]
                free_units=_number(m.get("free_units", 0), f"{p}.free_units", minimum=0),  # type: ignore[arg-type]
                first_unit=_number(m.get("first_unit"), f"{p}.first_unit", allow_none=True),
                classes=cls,
                max=_number(m.get("max"), f"{p}.max", minimum=0, allow_none=True),
            )
        )
    return tuple(out)


def _grading(value: Any, classes: dict[str, ClassSpec]) -> GradingSpec:
    path = "grading"
    m = _mapping(
        value,
        path,
        (
            "group_by",
            "quotas",
            "industry_groups",
            "other_group",
            "ties",
            "rank_decimals",
            "exempt_from_d",
            "backfill_d",
            "adjustments",
        ),
    )
    group_by = _str_list(m.get("group_by", ["region_code", "eval_class"]), f"{path}.group_by")
    for g in group_by:
        _choice(g, f"{path}.group_by", GROUP_BY_KEYS)
    groups = []
    raw_groups = m.get("industry_groups") or []
    if not isinstance(raw_groups, list):
        _fail(f"{path}.industry_groups", "must be a list of {name, industries, quotas}")
    for i, g in enumerate(raw_groups):
        p = f"{path}.industry_groups[{i}]"
        gm = _mapping(g, p, ("name", "industries", "quotas"))
        groups.append(
            IndustryGroup(
                _str(gm.get("name"), f"{p}.name"),  # type: ignore[arg-type]
                _industries(gm.get("industries"), f"{p}.industries"),
                _quotas(gm.get("quotas"), f"{p}.quotas"),
            )
        )
    if groups and "industry_group" not in group_by:
        _fail(f"{path}.industry_groups", "is set but `industry_group` is not in grading.group_by")
    if "industry_group" in group_by and not groups:
        _fail(f"{path}.group_by", "contains `industry_group` but grading.industry_groups is empty")
    for c in classes.values():
        if c.quotas is not None and "eval_class" not in group_by:
            _fail(f"classes.{c.key}.quotas", "needs `eval_class` in grading.group_by")
    adjustments = []
    raw_adj = m.get("adjustments") or []
    if not isinstance(raw_adj, list):
        _fail(f"{path}.adjustments", "must be a list of {column, steps, label}")
    for i, a in enumerate(raw_adj):
        p = f"{path}.adjustments[{i}]"
        am = _mapping(a, p, ("column", "steps", "label"))
        steps = am.get("steps")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps == 0 or abs(steps) > 3:
            _fail(
                f"{p}.steps",
                f"must be a whole number of grades, ±1 to ±3 (positive = up), got {steps!r}",
            )
        col = _str(am.get("column"), f"{p}.column")
        adjustments.append(
            Adjustment(str(col), steps, str(am.get("label") or ("升档" if steps > 0 else "降档")))
        )
    quotas = _quotas(m.get("quotas", {"A": 25, "B": 50, "C": 20, "D": 5}), f"{path}.quotas")
    if quotas is None:
        _fail(f"{path}.quotas", "must be set, e.g. {A: 25, B: 50, C: 20, D: 5}")
    decimals = m.get("rank_decimals", 6)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 12:
        _fail(f"{path}.rank_decimals", f"must be a whole number 0–12, got {decimals!r}")
    return GradingSpec(
        group_by=group_by,
        quotas=quotas,
        industry_groups=tuple(groups),
        other_group=str(m.get("other_group", "其他")),
        ties=_choice(m.get("ties", "shared"), f"{path}.ties", TIE_RULES),
        rank_decimals=decimals,
        exempt_from_d=_str_list(
            m.get("exempt_from_d", list(DEFAULT_EXEMPT)), f"{path}.exempt_from_d"
        ),
        backfill_d=_bool(m.get("backfill_d", False), f"{path}.backfill_d"),
        adjustments=tuple(adjustments),
    )


def build(raw: dict) -> EvalConfig:
    """Validate a resolved configuration mapping and build the :class:`EvalConfig`."""
    top = ("name", "description", "year", "settings", "classes", "bonus_penalty", "grading")
    _mapping(raw, "", top)
    classes_raw = raw.get("classes")
    if not isinstance(classes_raw, dict) or not classes_raw:
        _fail("classes", f"must map at least one class ({', '.join(CLASS_KEYS)}) to its indicators")
    classes = {}
    for k, v in classes_raw.items():
        _choice(k, "classes", CLASS_KEYS)
        classes[k] = _class(k, v, f"classes.{k}")
    year = raw.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        _fail("year", f"must be a whole year such as 2022, got {year!r}")
    return EvalConfig(
        name=str(raw.get("name", "custom")),
        description=str(raw.get("description", "")),
        year=year,
        settings=_settings(raw.get("settings")),
        classes=classes,
        bonus_rules=_bonus_rules(raw.get("bonus_penalty"), classes),
        grading=_grading(raw.get("grading"), classes),
        raw=raw,
    )
