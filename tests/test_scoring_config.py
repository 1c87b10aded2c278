"""Tests of mujun_geo.scoring_config: presets, YAML loading, extends, validation messages."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from mujun_geo._errors import ConfigError
from mujun_geo.scoring_config import (
    BonusRule,
    EvalConfig,
    config_yaml,
    load_config,
    preset_names,
)


def minimal(**over: object) -> dict:
    ind = {"numerator": "tax", "denominator": "land_mu", "weight": 100, "benchmark": 10}
    cfg: dict = {"classes": {"below": {"indicators": {"tax_per_mu": ind}}}}
    cfg.update(over)
    return cfg


def test_preset_names_and_text():
    assert preset_names() == ["huangyan-2021", "huangyan-2022", "zhejiang-2022"]
    text = config_yaml("huangyan-2022")
    assert text.startswith("# 黄岩区")
    assert "benchmark: 4929.81" in text
    assert yaml.safe_load(text)["name"] == "huangyan-2022"


@pytest.mark.parametrize("name", ["huangyan-2021", "huangyan-2022", "zhejiang-2022"])
def test_presets_load_and_roundtrip(name, tmp_path):
    cfg = load_config(name)
    assert isinstance(cfg, EvalConfig)
    assert cfg.name == name
    # every class's weights sum to 100
    for spec in cfg.classes.values():
        assert sum(i.weight for i in spec.indicators) == pytest.approx(100)
    # the resolved YAML loads back to the same configuration
    path = tmp_path / "copy.yml"
    path.write_text(cfg.to_yaml(), encoding="utf-8")
    again = load_config(path)
    assert again.classes == cfg.classes
    assert again.grading == cfg.grading
    assert again.settings == cfg.settings


def test_zhejiang_2022_weights():
    cfg = load_config("zhejiang-2022")
    above = {i.key: (i.weight, i.benchmark.method) for i in cfg.classes["above"].indicators}
    assert above == {
        "tax_per_mu": (30, "aggregate"),
        "va_per_mu": (20, "aggregate"),
        "va_per_tce": (20, "aggregate"),
        "labour_productivity": (10, "aggregate"),
        "va_per_emission": (10, "aggregate"),
        "rd_ratio": (10, "aggregate"),
    }
    assert cfg.classes["below"].min_land_mu == 3
    assert cfg.grading.quotas == {"A": 25, "B": 50, "C": 20, "D": 5}
    assert cfg.grading.backfill_d is False


def test_huangyan_2022_benchmarks():
    cfg = load_config("huangyan-2022")
    above = {i.key: (i.weight, i.benchmark.value) for i in cfg.classes["above"].indicators}
    assert above == {
        "tax_per_mu": (30, 24.097),
        "va_per_mu": (20, 136.16),
        "va_per_tce": (20, 2.694),
        "va_per_emission": (10, 4929.81),
        "labour_productivity": (10, 18.14),
        "rd_ratio": (10, 0.0302),
    }
    below = {i.key: (i.weight, i.benchmark.value) for i in cfg.classes["below"].indicators}
    assert below == {"tax_per_mu": (50, 11.5932), "tax_per_electricity": (50, 0.2352)}
    emission = cfg.classes["above"].indicators[3]
    assert emission.on_missing == "class_mean_score"
    assert all(i.cap is None and i.floor is None for i in cfg.classes["above"].indicators)


def test_extends_merges_and_null_deletes(tmp_path):
    (tmp_path / "base.yml").write_text(yaml.safe_dump(minimal(name="base")), encoding="utf-8")
    child = tmp_path / "child.yml"
    child.write_text(
        "extends: base.yml\n"
        "classes:\n"
        "  below:\n"
        "    indicators:\n"
        "      tax_per_mu: {weight: 60}\n"
        "      tax_per_electricity: {numerator: tax, denominator: electricity, weight: 40,\n"
        "                            benchmark: mean}\n"
        "settings: {bonus_column: null}\n",
        encoding="utf-8",
    )
    cfg = load_config(child)
    assert cfg.name == "base"  # inherited
    inds = {i.key: (i.weight, i.benchmark.method) for i in cfg.classes["below"].indicators}
    assert inds == {"tax_per_mu": (60, "fixed"), "tax_per_electricity": (40, "mean")}
    assert cfg.settings.bonus_column is None  # null keeps its meaning "none" here
    dropped = load_config({"extends": "zhejiang-2022", "classes": {"service": None}})
    assert list(dropped.classes) == ["above", "below"]


def test_load_config_accepts_config_and_dict():
    cfg = load_config(minimal())
    assert load_config(cfg) is cfg
    assert cfg.name == "custom"
    assert cfg.classes["below"].label == "规下工业"


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (minimal(colour="red"), r"config key `colour`: unknown key; allowed keys here: name, "),
        ({"classes": {}}, r"`classes`: must map at least one class \(above, below, service"),
        (
            minimal(classes={"tiny": {"indicators": {}}}),
            r"`classes`: 'tiny' is not allowed; use one of: above, below, service, "
            r"service_building",
        ),
        (
            minimal(grading={"quotas": {"A": 30, "B": 50, "C": 20, "D": 5}}),
            r"`grading.quotas`: percentages must sum to 100, they sum to 105",
        ),
        (
            minimal(grading={"quotas": {"A": 25, "B": 75}}),
            r"`grading.quotas`: needs all of A, B, C, D \(missing C, D\)",
        ),
        (
            minimal(grading={"ties": "random"}),
            r"`grading.ties`: 'random' is not allowed; use one of: shared, credit_code",
        ),
        (
            minimal(grading={"group_by": ["region_code", "park"]}),
            r"`grading.group_by`: 'park' is not allowed; use one of: region_code, eval_class, "
            r"industry_group",
        ),
        (
            minimal(grading={"industry_groups": [{"name": "高耗能", "industries": ["26"]}]}),
            r"`grading.industry_groups`: is set but `industry_group` is not in grading.group_by",
        ),
        (
            minimal(grading={"group_by": ["industry_group"], "industry_groups": [
                {"name": "x", "industries": ["2a"]}]}),
            r"`grading.industry_groups\[0\].industries\[0\]`: '2a' is not a 2–4 digit",
        ),
        (
            minimal(grading={"adjustments": [{"column": "upgrade", "steps": 0}]}),
            r"`grading.adjustments\[0\].steps`: must be a whole number of grades",
        ),
        (
            minimal(settings={"benchmark_scope": "county"}),
            r"`settings.benchmark_scope`: 'county' is not allowed; use one of: all, region, group",
        ),
        (
            minimal(settings={"emissions": {"mode": "kg"}}),
            r"`settings.emissions.mode`: 'kg' is not allowed; use one of: tonnes, equivalent",
        ),
        (
            minimal(settings={"group_mode": "yes"}),
            r"`settings.group_mode`: must be true or false, got 'yes'",
        ),
        (
            minimal(bonus_penalty=[{"column": "n_tenants"}]),
            r"`bonus_penalty\[0\].per_unit`: is required",
        ),
        (
            minimal(bonus_penalty=[{"column": "n_tenants", "per_unit": -5, "classes": ["big"]}]),
            r"`bonus_penalty\[0\].classes`: 'big' is not allowed",
        ),
        (minimal(year="2022"), r"`year`: must be a whole year such as 2022"),
        (minimal(grading={"quotas": None}), r"`grading.quotas`: must be set"),
    ],
)  # fmt: skip
def test_config_errors_name_key_and_allowed_values(raw, match):
    with pytest.raises(ConfigError, match=match):
        load_config(raw)


def _ind(**over: object) -> dict:
    ind = {"numerator": "tax", "denominator": "land_mu", "weight": 100, "benchmark": 10}
    ind.update(over)
    return minimal(classes={"below": {"indicators": {"tax_per_mu": ind}}})


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"benchmark": "average"}, r"benchmark`: 'average' is not allowed; use one of: fixed, "
                                   r"aggregate, mean, median"),
        ({"benchmark": "fixed"}, r"`fixed` needs a number"),
        ({"benchmark": -3}, r"benchmark`: must be > 0, got -3"),
        ({"benchmark": {"method": "mean", "value": 3}}, r"benchmark.value`: only allowed with "
                                                        r"method fixed"),
        ({"benchmark": {"method": "aggregate", "multiple": 0}}, r"multiple`: must be > 0"),
        ({"weight": "30%"}, r"tax_per_mu.weight`: must be a number, got '30%'"),
        ({"weight": 0}, r"weight`: must be > 0"),
        ({"on_missing": "mean"}, r"on_missing`: 'mean' is not allowed; use one of: zero, "
                                 r"class_mean_score, full_weight, exclude_firm"),
        ({"cap": 1, "floor": 2}, r"floor`: 2 is above cap 1"),
        ({"colour": 1}, r"tax_per_mu.colour`: unknown key; allowed keys here: label, numerator"),
    ],
)  # fmt: skip
def test_indicator_errors(over, match):
    with pytest.raises(ConfigError, match=match):
        load_config(_ind(**over))


def test_indicator_required_keys_and_names():
    raw = minimal(classes={"below": {"indicators": {"tax_per_mu": {"numerator": "tax"}}}})
    with pytest.raises(ConfigError, match=r"tax_per_mu.denominator`: is required"):
        load_config(raw)
    raw = minimal(classes={"below": {"indicators": {"Tax Per Mu": {}}}})
    with pytest.raises(ConfigError, match=r"lower-case ASCII identifiers"):
        load_config(raw)
    raw = minimal(classes={"below": {"indicators": {"score": {}}}})
    with pytest.raises(ConfigError, match=r"`score` is an input or output column name"):
        load_config(raw)


def test_class_quotas_need_eval_class_in_group_by():
    raw = minimal(grading={"group_by": ["region_code"]})
    raw["classes"]["below"]["quotas"] = {"A": 10, "B": 60, "C": 25, "D": 5}
    with pytest.raises(ConfigError, match=r"classes.below.quotas`: needs `eval_class`"):
        load_config(raw)


def test_unknown_name_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match=r"not a preset \(huangyan-2021, huangyan-2022, "):
        load_config("lishui-2030")
    with pytest.raises(ConfigError, match="nor a file"):
        config_yaml("lishui-2030")
    bad = tmp_path / "bad.yml"
    bad.write_text("classes: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    bad.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(bad)
    loop = tmp_path / "loop.yml"
    loop.write_text("extends: loop.yml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="longer than 8 levels"):
        load_config(loop)


def test_bonus_rule_points():
    # 温岭 规上: 1 tenant free, −5 per further tenant
    above = BonusRule("规上出租", "n_tenants", per_unit=-5, free_units=1)
    assert [above.points(n) for n in (0, 1, 2, 3)] == [0, 0, -5, -10]
    # 温岭 规下: first tenant −10, each further −5
    below = BonusRule("规下出租", "n_tenants", per_unit=-5, first_unit=-10)
    assert [below.points(n) for n in (0, 1, 2, 4)] == [0, -10, -15, -25]
    # a capped bonus: +2 per patent, at most 5
    capped = BonusRule("专利", "patents", per_unit=2, max=5)
    assert [capped.points(n) for n in (1, 2, 3, 10)] == [2, 4, 5, 5]


@pytest.mark.parametrize(
    "rule",
    [
        BonusRule("规上出租", "n_tenants", per_unit=-5, free_units=1),
        BonusRule("规下出租", "n_tenants", per_unit=-5, first_unit=-10),
        BonusRule("专利", "patents", per_unit=2, max=5),
        BonusRule("零", "x", per_unit=0.0, first_unit=-0.5, free_units=0.5, max=0.25),
    ],
)
def test_bonus_rule_points_array_equals_points(rule):
    # the vectorised form used for whole unit tables gives the same floats as points()
    counts = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 10.0, 1e9, np.inf, -1.0, np.nan])
    with np.errstate(invalid="ignore"):  # 0 × inf
        got = rule.points_array(counts)
        want = np.array([rule.points(n) for n in counts])
    assert got.dtype == float
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))
