"""What a scoring configuration is: constants and frozen dataclasses.

Private module; import these names from :mod:`mujun_geo.scoring_config`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

__all__ = [
    "BENCHMARK_METHODS",
    "BENCHMARK_SCOPES",
    "CLASS_KEYS",
    "CLASS_LABELS",
    "DEFAULT_EQUIVALENTS_KG",
    "DEFAULT_EXEMPT",
    "EMISSION_MODES",
    "GRADES",
    "GROUP_BY_KEYS",
    "MISSING_RULES",
    "RESERVED_KEYS",
    "TIE_RULES",
    "Adjustment",
    "Benchmark",
    "BonusRule",
    "ClassSpec",
    "EvalConfig",
    "GradingSpec",
    "IndicatorSpec",
    "IndustryGroup",
    "Settings",
]

CLASS_KEYS = ("above", "below", "service", "service_building")
CLASS_LABELS = {
    "above": "规上工业",
    "below": "规下工业",
    "service": "服务业（占地类）",
    "service_building": "服务业（楼宇类）",
}
MISSING_RULES = ("zero", "class_mean_score", "full_weight", "exclude_firm")
BENCHMARK_METHODS = ("fixed", "aggregate", "mean", "median")
GROUP_BY_KEYS = ("region_code", "eval_class", "industry_group")
TIE_RULES = ("shared", "credit_code")
BENCHMARK_SCOPES = ("all", "region", "group")
EMISSION_MODES = ("tonnes", "equivalent")
GRADES = ("A", "B", "C", "D")
DEFAULT_EXEMPT = (
    "newly_scaled", "emergency_supply", "agri_supply", "high_tech", "key_chain",
    "disabled_employment",
)  # fmt: skip
#: 环境保护税法 附表二 当量值 (kg per 污染当量), DOMAIN.md §1.6.
DEFAULT_EQUIVALENTS_KG = {"cod_t": 1.0, "nh3n_t": 0.8, "so2_t": 0.95, "nox_t": 0.95}
#: Output columns of :func:`mujun_geo.evaluate.evaluate` that an indicator may not shadow.
RESERVED_KEYS = frozenset(
    "score grade grade_note rank group_size review evaluated eval_class eval_group benchmark_pop "
    "eval_unit_lead eval_unit_size eval_land_mu bonus_penalty_points land_mu land_m2 emissions "
    "tax value_added revenue energy_tce employees emissions_t rd_expense electricity".split()
)


@dataclass(frozen=True)
class Benchmark:
    """Benchmark (基准值) rule: ``multiple`` × (fixed ``value`` or a population statistic)."""

    method: str
    value: float | None = None
    multiple: float = 1.0


@dataclass(frozen=True)
class IndicatorSpec:
    """One scored indicator: ``score = numerator / denominator / benchmark × weight``."""

    key: str
    label: str
    numerator: str
    denominator: str
    weight: float
    benchmark: Benchmark
    unit: str = ""
    cap: float | None = None
    floor: float | None = None
    on_missing: str = "zero"
    on_zero: str = "zero"


@dataclass(frozen=True)
class ClassSpec:
    """The indicator set and land rules of one class of firms."""

    key: str
    label: str
    indicators: tuple[IndicatorSpec, ...]
    min_land_mu: float | None = None
    requires_land: bool = True
    quotas: dict[str, float] | None = None


@dataclass(frozen=True)
class BonusRule:
    """加减分 on a count column.

    0 points up to ``free_units``; then ``first_unit`` (default ``per_unit``) for the
    first unit beyond, plus ``per_unit`` for each further unit; ``|points| ≤ max``.
    """

    name: str
    column: str
    per_unit: float
    free_units: float = 0.0
    first_unit: float | None = None
    classes: tuple[str, ...] | None = None
    max: float | None = None

    def points(self, n: float) -> float:
        """Return the points for a count ``n`` (negative = deduction).

        Examples
        --------
        >>> rule = BonusRule("规下出租", "n_tenants", per_unit=-5, first_unit=-10)
        >>> [rule.points(n) for n in (0, 1, 2, 3)]
        [0.0, -10.0, -15.0, -20.0]
        """
        if not n > self.free_units:
            return 0.0
        first = self.per_unit if self.first_unit is None else self.first_unit
        pts = first + self.per_unit * (n - self.free_units - 1)
        if self.max is not None:
            pts = math.copysign(min(abs(pts), self.max), pts)
        return float(pts)

    def points_array(self, n: np.ndarray) -> np.ndarray:
        """:meth:`points` of every count in ``n`` at once (same float arithmetic).

        Examples
        --------
        >>> rule = BonusRule("规下出租", "n_tenants", per_unit=-5, first_unit=-10, max=12)
        >>> rule.points_array(np.array([0.0, 1.0, 2.0, 3.0])).tolist()
        [0.0, -10.0, -12.0, -12.0]
        """
        n = np.asarray(n, dtype=float)
        first = self.per_unit if self.first_unit is None else self.first_unit
        pts = first + self.per_unit * (n - self.free_units - 1)
        if self.max is not None:
            # np.minimum, like min(), keeps a NaN first argument
            pts = np.copysign(np.minimum(np.abs(pts), self.max), pts)
        return np.where(n > self.free_units, pts, 0.0)


@dataclass(frozen=True)
class IndustryGroup:
    """A named set of industry-code prefixes, optionally with its own quotas."""

    name: str
    industries: tuple[str, ...]
    quotas: dict[str, float] | None = None


@dataclass(frozen=True)
class Adjustment:
    """升降档: firms with a truthy ``column`` move ``steps`` grades (positive = up, towards A)."""

    column: str
    steps: int
    label: str = ""


@dataclass(frozen=True)
class GradingSpec:
    """Ranking groups, quotas (percent), tie rule, exemptions and grade adjustments."""

    group_by: tuple[str, ...] = ("region_code", "eval_class")
    quotas: dict[str, float] = field(default_factory=lambda: {"A": 25, "B": 50, "C": 20, "D": 5})
    industry_groups: tuple[IndustryGroup, ...] = ()
    other_group: str = "其他"
    ties: str = "shared"
    rank_decimals: int = 6
    exempt_from_d: tuple[str, ...] = DEFAULT_EXEMPT
    backfill_d: bool = False
    adjustments: tuple[Adjustment, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Population and data-handling switches."""

    newly_scaled_as_below: bool = True
    parcel_mode: bool = True
    group_mode: bool = False
    benchmark_scope: str = "region"
    excluded_industries: tuple[str, ...] = ()
    emission_mode: str = "tonnes"
    emission_columns: tuple[str, ...] = ("cod_t", "nh3n_t", "so2_t", "nox_t")
    equivalents_kg: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EQUIVALENTS_KG))
    bonus_column: str | None = "bonus"
    penalty_column: str | None = "penalty"


@dataclass(frozen=True)
class EvalConfig:
    """A validated evaluation configuration; build it with :func:`load_config`."""

    name: str
    description: str
    year: int | None
    settings: Settings
    classes: dict[str, ClassSpec]
    bonus_rules: tuple[BonusRule, ...]
    grading: GradingSpec
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def indicators(self) -> dict[str, IndicatorSpec]:
        """All indicators by key (first definition wins when classes share a key)."""
        out: dict[str, IndicatorSpec] = {}
        for spec in self.classes.values():
            for ind in spec.indicators:
                out.setdefault(ind.key, ind)
        return out

    def to_yaml(self) -> str:
        """Return the resolved configuration (``extends`` merged) as YAML, e.g. for ``run_info``."""
        return yaml.safe_dump(self.raw, allow_unicode=True, sort_keys=False)
