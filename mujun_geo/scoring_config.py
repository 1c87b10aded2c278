"""Scoring configuration of the 亩均效益综合评价 (load, validate, presets).

A county's evaluation method is data, not code: a YAML file lists, per class of firm
(``above`` 规上工业, ``below`` 规下工业, ``service`` 服务业占地类,
``service_building`` 服务业楼宇类), the indicators as ``numerator / denominator`` ratios
with a weight and a benchmark, plus the bonus/penalty rules (加减分) and the grading rules
(分档比例, 豁免, 升降档). Presets ship in ``mujun_geo/presets/NAME.yml``;
``config_yaml(NAME)`` gives their text to copy and edit.

Layout of a configuration (every key but ``classes`` is optional)::

    name: my-county-2023
    extends: zhejiang-2022        # start from a preset (or a file); mappings merge, null deletes
    settings:
      newly_scaled_as_below: true # 新升规未满1年 → evaluated as 规下
      parcel_mode: true           # firms sharing `eval_unit` form one 宗地评价 unit
      group_mode: false           # parent + subsidiaries (group_code) in one region form one unit
      benchmark_scope: region     # population of computed benchmarks: all | region | group
      excluded_industries: []     # industry-code prefixes never evaluated (批发零售, 金融 …)
      emissions: {mode: tonnes}   # tonnes | equivalent (污染当量, kg per 当量: COD 1,
                                  # NH3-N 0.8, SO2 0.95, NOx 0.95)
      bonus_column: bonus         # raw 加分 column added to the score (null = ignore)
      penalty_column: penalty     # raw 减分 column subtracted from the score (null = ignore)
    classes:
      above:
        label: 规上工业
        min_land_mu: null         # 亩; smaller units are not evaluated
        requires_land: true       # false only for 楼宇类 service firms
        quotas: null              # class-specific {A, B, C, D} percentages
        indicators:
          tax_per_mu:
            label: 亩均税收
            numerator: tax
            denominator: land_mu
            unit: 万元/亩
            weight: 30
            benchmark: aggregate  # number | aggregate | mean | median | {method, value, multiple}
            cap: null             # score ≤ cap × weight
            floor: null           # score ≥ floor × weight
            on_missing: zero      # numerator or denominator missing
            on_zero: zero         # denominator 0 (or negative): the firm is also flagged for review
    bonus_penalty:                # 加减分 rules on input columns
      - {name: 厂区出租扣分, column: n_tenants, classes: [above], free_units: 1, per_unit: -5}
    grading:
      group_by: [region_code, eval_class]   # + industry_group (needs industry_groups)
      quotas: {A: 25, B: 50, C: 20, D: 5}
      industry_groups: []         # [{name, industries: ['25', '26'], quotas: {...}}]
      ties: shared                # shared: equal scores share the better grade | credit_code
      rank_decimals: 6            # scores are compared after rounding to this many decimals
      exempt_from_d: [newly_scaled, emergency_supply, agri_supply, high_tech, key_chain,
                      disabled_employment]
      backfill_d: false           # freed D places go to the next-worst non-exempt firms
      adjustments: []             # 升降档: [{column: upgrade, steps: 1, label: 升档}]

Missing-value rules (``on_missing`` / ``on_zero``): ``zero`` (score 0), ``class_mean_score``
(the mean score of that indicator over the firms of the benchmark population that have
a value, the 黄岩 rule for missing emissions), ``full_weight`` (score = weight) and
``exclude_firm`` (the firm is not evaluated, its note says why).

Examples
--------
>>> cfg = load_config("huangyan-2022")
>>> [i.key for i in cfg.classes["below"].indicators]
['tax_per_mu', 'tax_per_electricity']
>>> cfg.classes["above"].indicators[0].benchmark.value
24.097
>>> "huangyan-2022" in preset_names()
True
"""

from __future__ import annotations

import copy
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from ._errors import ConfigError
from ._scoring_spec import (
    BENCHMARK_METHODS,
    CLASS_KEYS,
    CLASS_LABELS,
    DEFAULT_EXEMPT,
    MISSING_RULES,
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
from ._scoring_validate import build

__all__ = [
    "BENCHMARK_METHODS",
    "CLASS_KEYS",
    "CLASS_LABELS",
    "DEFAULT_EXEMPT",
    "MISSING_RULES",
    "Adjustment",
    "Benchmark",
    "BonusRule",
    "ClassSpec",
    "EvalConfig",
    "GradingSpec",
    "IndicatorSpec",
    "IndustryGroup",
    "Settings",
    "config_yaml",
    "load_config",
    "preset_names",
]

# ---------------------------------------------------------------------------------------------
# presets and loading


def _preset_dir() -> Any:
    return files("mujun_geo") / "presets"


def preset_names() -> list[str]:
    """Names of the built-in presets (``mujun_geo/presets/NAME.yml``).

    Examples
    --------
    >>> preset_names()[:2]
    ['huangyan-2021', 'huangyan-2022']
    """
    return sorted(p.name[:-4] for p in _preset_dir().iterdir() if p.name.endswith(".yml"))


def config_yaml(name: str | Path) -> str:
    """Editable YAML text of a preset (with its comments), or of a YAML file.

    Raises
    ------
    ConfigError
        If ``name`` is neither a preset nor an existing file.

    Examples
    --------
    >>> config_yaml("huangyan-2022").count("weight:")
    8
    """
    if str(name) in preset_names():
        return (_preset_dir() / f"{name}.yml").read_text(encoding="utf-8")
    path = Path(name)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    presets = ", ".join(preset_names())
    msg = f"unknown configuration {str(name)!r}: not a preset ({presets}) nor a file"
    raise ConfigError(msg)


def load_config(name_or_path: str | Path | dict | EvalConfig) -> EvalConfig:
    """Load and validate an evaluation configuration.

    Parameters
    ----------
    name_or_path
        A preset name (see :func:`preset_names`), the path of a YAML file, a mapping with
        the same structure, or an :class:`EvalConfig` (returned unchanged).

    Returns
    -------
    EvalConfig

    Raises
    ------
    ConfigError
        Naming the offending key and the allowed values.

    Examples
    --------
    >>> cfg = load_config({"extends": "zhejiang-2022", "grading": {"backfill_d": True}})
    >>> cfg.grading.backfill_d, cfg.grading.quotas
    (True, {'A': 25.0, 'B': 50.0, 'C': 20.0, 'D': 5.0})
    """
    if isinstance(name_or_path, EvalConfig):
        return name_or_path
    raw = _resolve(name_or_path, depth=0)
    return build(raw)


def _read_yaml(text: str, where: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"{where} is not valid YAML: {exc}"
        raise ConfigError(msg) from exc
    if not isinstance(data, dict):
        msg = (
            f"{where} must hold a mapping (keys such as `classes:`, `grading:`), "
            f"got {type(data).__name__}"
        )
        raise ConfigError(msg)
    return data


def _resolve(src: str | Path | dict, *, depth: int, base_dir: Path | None = None) -> dict:
    """Read ``src`` and merge it over what it ``extends``."""
    if depth > 8:
        raise ConfigError("`extends` chain is longer than 8 levels (is there a cycle?)")
    if isinstance(src, dict):
        data, here = copy.deepcopy(src), base_dir
        default_name = None
    elif str(src) in preset_names():
        data = _read_yaml(config_yaml(str(src)), f"preset {src!r}")
        here, default_name = None, str(src)
    else:
        path = Path(src)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            msg = (
                f"unknown configuration {str(src)!r}: not a preset "
                f"({', '.join(preset_names())}) and no such file"
            )
            raise ConfigError(msg)
        data = _read_yaml(path.read_text(encoding="utf-8"), f"config file {str(path)!r}")
        here, default_name = path.parent, path.stem
    parent = data.pop("extends", None)
    if parent is not None:
        base = _resolve(parent, depth=depth + 1, base_dir=here)
        data = _merge(base, data)
    if default_name is not None and depth == 0:
        data.setdefault("name", default_name)
    return data


#: Keys whose ``null`` means "none" rather than "delete the inherited value".
_NULLABLE = ("bonus_column", "penalty_column", "cap", "floor", "min_land_mu")


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge mappings; ``None`` in ``over`` deletes the key; other values replace."""
    out = dict(base)
    for k, v in over.items():
        if v is None and k not in _NULLABLE:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
