"""Tests of mujun_geo.evaluate: every expected number is worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mujun_geo._errors import DataWarning, MujunGeoError, SchemaError
from mujun_geo.evaluate import evaluate, explain

BASE = dict(
    name="", scale="above", sector="industry", region_code="331003", industry_code="34",
    tax=np.nan, value_added=np.nan, revenue=np.nan, energy_tce=np.nan, employees=np.nan,
    emissions_t=np.nan, cod_t=np.nan, nh3n_t=np.nan, so2_t=np.nan, nox_t=np.nan,
    rd_expense=np.nan, electricity=np.nan, bonus=np.nan, penalty=np.nan, n_tenants=np.nan,
    high_tech=False, newly_scaled=False, utility=False, emergency_supply=False,
    agri_supply=False, key_chain=False, disabled_employment=False, veto=None, group_code=None,
    land_m2=np.nan, land_mu=np.nan, eval_unit=None, match_status="matched",
)  # fmt: skip


def frame(*rows: dict, index: list | None = None) -> pd.DataFrame:
    return pd.DataFrame([{**BASE, **r} for r in rows], index=index)


def tax_config(benchmark: object = 10.0, *, weight: float = 100.0, **grading: object) -> dict:
    """规下 firms scored on 亩均税收 alone: with land 10 亩 and benchmark 10, score = tax."""
    ind = {"numerator": "tax", "denominator": "land_mu", "weight": weight, "benchmark": benchmark}
    return {
        "name": "t",
        "classes": {"below": {"indicators": {"tax_per_mu": ind}}},
        "grading": grading,
        "settings": {"bonus_column": None, "penalty_column": None},
    }


def scored_firms(scores: list[float], **extra: list) -> pd.DataFrame:
    """规下 firms F01, F02 … with land 10 亩 and tax = the wanted score under tax_config()."""
    rows = []
    for i, s in enumerate(scores):
        row = {"credit_code": f"F{i + 1:02d}", "scale": "below", "tax": float(s), "land_mu": 10.0}
        row.update({k: v[i] for k, v in extra.items()})
        rows.append(row)
    return frame(*rows)


def counts(grades: pd.Series) -> dict[str, int]:
    return {g: int((grades == g).sum()) for g in "ABCD"}


# --------------------------------------------------------------------------------------------
# 黄岩 2022 formula


def test_huangyan_2022_reproduced_exactly():
    firms = frame(
        # P: 亩均税收 500/20 = 25, 亩均增加值 3000/20 = 150, 单位能耗增加值 3000/1000 = 3,
        #    单位排放增加值 3000/0.5 = 6000, 全员劳动生产率 3000/150 = 20, R&D 300/10000 = 0.03
        dict(
            credit_code="P",
            tax=500.0,
            value_added=3000.0,
            energy_tce=1000.0,
            emissions_t=0.5,
            employees=150.0,
            rd_expense=300.0,
            revenue=10000.0,
            land_mu=20.0,
        ),
        # Q: no emission data at all → 单位排放增加值 score = mean of P and R (黄岩 rule)
        dict(
            credit_code="Q",
            tax=240.97,
            value_added=1361.6,
            energy_tce=505.4,
            employees=75.0,
            rd_expense=0.0,
            revenue=5000.0,
            land_mu=10.0,
        ),
        # R: emissions from components: COD 0.2 + NH3-N 0.05 + SO2 0.5 + NOx 0.25 = 1.0 t
        dict(
            credit_code="R",
            tax=120.0,
            value_added=800.0,
            energy_tce=400.0,
            cod_t=0.2,
            nh3n_t=0.05,
            so2_t=0.5,
            nox_t=0.25,
            employees=40.0,
            rd_expense=100.0,
            revenue=2000.0,
            land_mu=8.0,
        ),
        # S: 规下: 亩均税收 46.3728/4 = 11.5932, 单位用电税收 46.3728/100 = 0.463728
        dict(credit_code="S", scale="below", tax=46.3728, electricity=100.0, land_mu=4.0),
    )
    out = evaluate(firms, config="huangyan-2022")
    em_p = 6000 / 4929.81 * 10
    em_r = 800 / 1.0 / 4929.81 * 10
    p = 25 / 24.097 * 30 + 150 / 136.16 * 20 + 3 / 2.694 * 20 + em_p + 20 / 18.14 * 10
    p += 0.03 / 0.0302 * 10
    q = 24.097 / 24.097 * 30 + 136.16 / 136.16 * 20 + (1361.6 / 505.4) / 2.694 * 20
    q += (em_p + em_r) / 2 + (1361.6 / 75) / 18.14 * 10 + 0.0
    r = 15 / 24.097 * 30 + 100 / 136.16 * 20 + 2 / 2.694 * 20 + em_r + 20 / 18.14 * 10
    r += 0.05 / 0.0302 * 10
    s = 11.5932 / 11.5932 * 50 + 0.463728 / 0.2352 * 50  # = 50 + 98.5816… = 148.58163…
    assert out["score"].tolist() == pytest.approx([p, q, r, s], abs=1e-9, rel=0)
    assert out.loc[1, "score_va_per_emission"] == pytest.approx((em_p + em_r) / 2, abs=1e-12)
    assert np.isnan(out.loc[1, "va_per_emission"])
    assert out.loc[2, "va_per_emission"] == pytest.approx(800.0)
    assert out["eval_class"].tolist() == ["above", "above", "above", "below"]
    assert out.loc[0, "rd_ratio"] == pytest.approx(0.03)
    assert out.attrs["benchmarks"]["331003/规上工业"]["tax_per_mu"]["value"] == 24.097


def test_huangyan_2021_benchmarks():
    firms = frame(
        dict(credit_code="S", scale="below", tax=33.202116, electricity=70.0, land_mu=4.0)
    )
    out = evaluate(firms, config="huangyan-2021")
    # 33.202116/4 = 8.300529 → /16.601058 × 50 = 25; 33.202116/70 = 0.474316 → /0.236565 × 50
    assert out.loc[0, "score"] == pytest.approx(25 + 33.202116 / 70 / 0.236565 * 50, abs=1e-9)


def test_input_not_modified_and_index_kept():
    firms = scored_firms([30, 20, 10])
    firms.index = ["x", "y", "z"]
    before = firms.copy()
    out = evaluate(firms, config=tax_config())
    pd.testing.assert_frame_equal(firms, before)
    assert out.index.tolist() == ["x", "y", "z"]
    assert out["score"].tolist() == pytest.approx([30, 20, 10])


# --------------------------------------------------------------------------------------------
# benchmarks, caps, missing values


@pytest.mark.parametrize(
    ("bm_spec", "expected_bm"),
    [
        ("aggregate", 10.0),  # Σtax / Σland = (10 + 30 + 60) / (2 + 3 + 5) = 100 / 10
        ("mean", 9.0),  # (10/2 + 30/3 + 60/5) / 3 = (5 + 10 + 12) / 3
        ("median", 10.0),  # median of 5, 10, 12
        ({"method": "aggregate", "multiple": 2}, 20.0),  # 2 × 10
        ({"value": 4.0, "multiple": 1.5}, 6.0),  # fixed 4 × 1.5
    ],
)
def test_benchmark_methods(bm_spec, expected_bm):
    firms = frame(
        dict(credit_code="A", scale="below", tax=10.0, land_mu=2.0),
        dict(credit_code="B", scale="below", tax=30.0, land_mu=3.0),
        dict(credit_code="C", scale="below", tax=60.0, land_mu=5.0),
    )
    out = evaluate(firms, config=tax_config(bm_spec))
    info = out.attrs["benchmarks"]["331003/规下工业"]["tax_per_mu"]
    assert info["value"] == pytest.approx(expected_bm)
    assert info["n"] == 3
    # score = ratio / benchmark × 100
    expected = [5 / expected_bm * 100, 10 / expected_bm * 100, 12 / expected_bm * 100]
    assert out["score"].tolist() == pytest.approx(expected, abs=1e-9)


def test_benchmark_scope_region_and_all():
    firms = frame(
        dict(credit_code="A", scale="below", tax=10.0, land_mu=10.0, region_code="331003"),
        dict(credit_code="B", scale="below", tax=30.0, land_mu=10.0, region_code="331004"),
    )
    by_region = evaluate(firms, config=tax_config("aggregate"))
    # each region alone: its own firm is the aggregate → 1/1 × 100
    assert by_region["score"].tolist() == pytest.approx([100, 100])
    assert by_region["eval_group"].tolist() == ["331003/规下工业", "331004/规下工业"]
    cfg = tax_config("aggregate")
    cfg["settings"]["benchmark_scope"] = "all"
    pooled = evaluate(firms, config=cfg)
    # pooled benchmark (10 + 30) / 20 = 2 → 1/2 × 100 = 50, 3/2 × 100 = 150
    assert pooled["score"].tolist() == pytest.approx([50, 150])


def test_cap_and_floor():
    cfg = tax_config(10.0)
    cfg["classes"]["below"]["indicators"]["tax_per_mu"].update(cap=1.5, floor=0)
    firms = scored_firms([300, -50, 50])
    out = evaluate(firms, config=cfg)
    # 300 → capped at 1.5 × 100 = 150; −50 → floored at 0 × 100 = 0; 50 stays
    assert out["score"].tolist() == pytest.approx([150, 0, 50])
    uncapped = evaluate(firms, config=tax_config(10.0))
    assert uncapped["score"].tolist() == pytest.approx([300, -50, 50])


def _energy_config(on_zero: str) -> dict:
    cfg = tax_config(10.0, weight=50)
    cfg["classes"]["below"]["indicators"]["va_per_tce"] = {
        "numerator": "value_added",
        "denominator": "energy_tce",
        "weight": 50,
        "benchmark": 2.0,
        "on_zero": on_zero,
        "label": "单位能耗增加值",
    }
    return cfg


@pytest.mark.parametrize(
    ("rule", "expected_c"),
    [
        ("zero", 0.0),
        ("full_weight", 50.0),
        # mean of A (4/2 × 50 = 100) and B (1/2 × 50 = 25) = 62.5
        ("class_mean_score", 62.5),
    ],
)
def test_zero_energy_rule_and_review_flag(rule, expected_c):
    firms = frame(
        dict(
            credit_code="A",
            scale="below",
            tax=100.0,
            land_mu=10.0,
            value_added=40.0,
            energy_tce=10.0,
        ),
        dict(
            credit_code="B",
            scale="below",
            tax=100.0,
            land_mu=10.0,
            value_added=10.0,
            energy_tce=10.0,
        ),
        dict(
            credit_code="C",
            scale="below",
            tax=100.0,
            land_mu=10.0,
            value_added=10.0,
            energy_tce=0.0,
        ),
    )
    out = evaluate(firms, config=_energy_config(rule))
    # 亩均税收 10/10 × 50 = 50 for each
    assert out["score_va_per_tce"].tolist() == pytest.approx([100, 25, expected_c])
    assert out["score"].tolist() == pytest.approx([150, 75, 50 + expected_c])
    assert out["review"].tolist() == [False, False, True]
    assert "需人工核实：单位能耗增加值的分母综合能耗为0或负数" in out.loc[2, "grade_note"]


def test_zero_energy_exclude_firm():
    firms = frame(
        dict(
            credit_code="A",
            scale="below",
            tax=100.0,
            land_mu=10.0,
            value_added=40.0,
            energy_tce=10.0,
        ),
        dict(
            credit_code="C",
            scale="below",
            tax=100.0,
            land_mu=10.0,
            value_added=10.0,
            energy_tce=0.0,
        ),
    )
    out = evaluate(firms, config=_energy_config("exclude_firm"))
    assert out["evaluated"].tolist() == [True, False]
    assert out.loc[1, "grade"] == ""
    assert out.loc[1, "grade_note"] == "单位能耗增加值分母为0（value_added/energy_tce），不参与评价"


def test_emission_equivalent_mode():
    cfg = tax_config(10.0, weight=50)
    cfg["classes"]["below"]["indicators"]["va_per_emission"] = {
        "numerator": "value_added",
        "denominator": "emissions",
        "weight": 50,
        "benchmark": 1.0,
    }
    cfg["settings"]["emissions"] = {"mode": "equivalent"}
    firms = frame(
        dict(
            credit_code="A",
            scale="below",
            tax=100.0,
            land_mu=10.0,
            value_added=6000.0,
            cod_t=1.0,
            nh3n_t=0.8,
            so2_t=0.95,
        )
    )
    out = evaluate(firms, config=cfg)
    # 当量: COD 1000 kg / 1 + NH3-N 800 / 0.8 + SO2 950 / 0.95 = 3000 → 6000 / 3000 = 2
    assert out.loc[0, "va_per_emission"] == pytest.approx(2.0)
    tonnes = evaluate(firms, config=tax_config(10.0, weight=50) | {"classes": cfg["classes"]})
    # tonnes: 1 + 0.8 + 0.95 = 2.75 t → 6000 / 2.75
    assert tonnes.loc[0, "va_per_emission"] == pytest.approx(6000 / 2.75)


def test_benchmark_without_data_warns():
    cfg = tax_config("aggregate")
    firms = scored_firms([np.nan, np.nan])
    with pytest.warns(DataWarning, match="no evaluated firm has a usable value"):
        out = evaluate(firms, config=cfg)
    assert out["score"].tolist() == [0.0, 0.0]


# --------------------------------------------------------------------------------------------
# quotas, ties, exemptions, veto, adjustments


def test_quotas_on_20_firms():
    firms = scored_firms(list(range(200, 0, -10)))  # 200, 190, …, 10: ranks 1…20
    out = evaluate(firms, config=tax_config())
    # boundaries round_half_up(20 × 25/75/95 %) = 5, 15, 19 → A 5, B 10, C 4, D 1
    assert counts(out["grade"]) == {"A": 5, "B": 10, "C": 4, "D": 1}
    assert out["rank"].tolist() == list(range(1, 21))
    assert out["grade"].tolist() == list("AAAAABBBBBBBBBBCCCCD")
    assert out.loc[0, "grade_note"] == "规下工业，得分 200.00，组内第1/20名，A类（前25%）"
    assert out.loc[19, "grade_note"] == "规下工业，得分 10.00，组内第20/20名，D类（后5%）"
    bounds = out.attrs["quota_bounds"]["331003/规下工业"]
    assert (bounds["A"], bounds["B"], bounds["C"], bounds["D"]) == (
        [1, 5],
        [6, 15],
        [16, 19],
        [20, 20],
    )


def test_quotas_on_7_firms_round_half_up():
    out = evaluate(scored_firms([70, 60, 50, 40, 30, 20, 10]), config=tax_config())
    # 7 × 25% = 1.75 → 2; 7 × 75% = 5.25 → 5; 7 × 95% = 6.65 → 7 → A 2, B 3, C 2, D 0
    assert out["grade"].tolist() == list("AABBBCC")


def test_quotas_half_rounds_up():
    # 2 × 25% = 0.5 → 1 (half up), 2 × 75% = 1.5 → 2 → A 1, B 1
    out = evaluate(scored_firms([20, 10]), config=tax_config())
    assert out["grade"].tolist() == ["A", "B"]


def test_ties_shared_get_better_grade():
    # scores 10, 10, 5, 1 (n = 4): bounds round(1) = 1, round(3) = 3, round(3.8) = 4
    out = evaluate(scored_firms([10, 10, 5, 1]), config=tax_config())
    assert out["rank"].tolist() == [1, 1, 3, 4]
    assert out["grade"].tolist() == ["A", "A", "B", "C"]


def test_ties_by_credit_code():
    firms = scored_firms([10, 10, 5, 1])
    firms["credit_code"] = ["Z9", "B2", "C3", "D4"]
    out = evaluate(firms, config=tax_config(ties="credit_code"))
    # tie 10/10: B2 before Z9
    assert out["rank"].tolist() == [2, 1, 3, 4]
    assert out["grade"].tolist() == ["B", "A", "B", "C"]


def test_ties_ignore_float_noise():
    # 0.1 + 0.2 = 0.30000000000000004 ≠ 0.3, equal after rounding to 6 decimals
    firms = scored_firms([0.1 + 0.2, 0.3, 0.1, 0.05])
    out = evaluate(firms, config=tax_config())
    assert out["rank"].tolist() == [1, 1, 3, 4]


@pytest.mark.parametrize(
    "flag",
    [
        "newly_scaled",
        "emergency_supply",
        "agri_supply",
        "high_tech",
        "key_chain",
        "disabled_employment",
    ],
)
@pytest.mark.parametrize("backfill", [False, True])
def test_exempt_from_d(flag, backfill):
    scores = list(range(200, 0, -10))
    flags = [False] * 19 + [True]  # the worst firm (rank 20, D by quota) is exempt
    firms = scored_firms(scores, **{flag: flags})
    out = evaluate(firms, config=tax_config(backfill_d=backfill))
    assert out.loc[19, "grade"] == "C"
    assert "不评为D类，定为C类" in out.loc[19, "grade_note"]
    if backfill:
        # the freed D place goes to the worst non-exempt C firm: rank 19
        assert out.loc[18, "grade"] == "D"
        assert "递补为D类" in out.loc[18, "grade_note"]
        assert counts(out["grade"]) == {"A": 5, "B": 10, "C": 4, "D": 1}
    else:
        assert counts(out["grade"]) == {"A": 5, "B": 10, "C": 5, "D": 0}


def test_exempt_label_in_note():
    firms = scored_firms([40, 30, 20, 10, 5], high_tech=[False] * 4 + [True])
    cfg = tax_config(quotas={"A": 20, "B": 40, "C": 20, "D": 20})
    out = evaluate(firms, config=cfg)
    # 5 firms: bounds 1, 3, 4 → the 5th is D by quota, exempt → C
    assert out.loc[4, "grade_note"] == (
        "规下工业，得分 5.00，组内第5/5名，D类（后20%）；"
        "属有效期内的高新技术企业，不评为D类，定为C类"
    )


def test_veto_sets_d_and_takes_no_quota_place():
    firms = scored_firms([80, 70, 60, 50, 40], veto=["安全生产事故", None, None, "", None])
    out = evaluate(firms, config=tax_config())
    assert out.loc[0, "grade"] == "D"
    assert pd.isna(out.loc[0, "rank"])
    assert (
        out.loc[0, "grade_note"]
        == "规下工业，得分 80.00，不参与排名；一票否决：安全生产事故，列为D类"
    )
    # remaining 4 ranked: bounds 1, 3, 4 → A B B C; empty veto text is no veto
    assert out["grade"].tolist()[1:] == ["A", "B", "B", "C"]
    assert out["group_size"].tolist()[1:] == [4, 4, 4, 4]


def test_veto_beats_exemption():
    firms = scored_firms([80, 70], veto=["违法用地", None], high_tech=[True, False])
    out = evaluate(firms, config=tax_config())
    # one ranked firm: 1 × 25% = 0.25 → 0 A places, 1 × 75% → 1 → B
    assert out["grade"].tolist() == ["D", "B"]


def test_adjustments_move_grades():
    firms = scored_firms(
        [70, 60, 50, 40, 30, 20, 10], upgrade=[0, 0, 0, 0, 0, 1, 0], downgrade=[1, 0, 0, 0, 0, 0, 0]
    )
    cfg = tax_config(
        adjustments=[
            {"column": "upgrade", "steps": 1},
            {"column": "downgrade", "steps": -2, "label": "降档"},
        ]
    )
    out = evaluate(firms, config=cfg)
    # quota grades A A B B B C C (see the 7-firm test); rank 6 C → B; rank 1 A → C
    assert out["grade"].tolist() == ["C", "A", "B", "B", "B", "B", "C"]
    assert out.loc[5, "grade_note"].endswith("升档（upgrade，1档）：C类→B类")
    assert out.loc[0, "grade_note"].endswith("降档（downgrade，2档）：A类→C类")


def test_column_both_adjustment_and_bonus_rule():
    # one column read two ways: truthy → 升档, and its count → 加分 (it used to raise KeyError)
    cfg = tax_config(adjustments=[{"column": "award", "steps": 1}])
    cfg["bonus_penalty"] = [{"name": "获奖加分", "column": "award", "per_unit": 3}]
    firms = scored_firms([70, 60, 50, 40, 30, 20, 10], award=[0, 0, 0, 0, 0, 2, 0])
    out = evaluate(firms, config=cfg)
    # F06: 20 + 2 × 3 = 26, still 6th of 7 → quota C, then one step up → B
    assert out["score"].tolist() == pytest.approx([70, 60, 50, 40, 30, 26, 10])
    assert out["grade"].tolist() == ["A", "A", "B", "B", "B", "B", "C"]
    assert out.loc[5, "grade_note"].endswith("升档（award，1档）：C类→B类")
    assert "获奖加分（award = 2）：+6 分" in explain(firms, "F06", config=cfg)


def test_industry_group_quotas():
    cfg = tax_config(
        group_by=["region_code", "industry_group"],
        industry_groups=[
            {
                "name": "高耗能行业",
                "industries": [25, 26, "30", "31", "32", "44"],
                "quotas": {"A": 0, "B": 50, "C": 25, "D": 25},
            }
        ],
    )
    firms = scored_firms(
        [40, 30, 20, 10, 40, 30, 20, 10],
        industry_code=["2611", "26", "3011", "44", "34", "35", "36", "13"],
    )
    out = evaluate(firms, config=cfg)
    # 高耗能 (4 firms): bounds 0, 2, 3 → B B C D; 其他 (4 firms, 25/50/20/5): A B B C
    assert out["grade"].tolist() == ["B", "B", "C", "D", "A", "B", "B", "C"]
    assert out["eval_group"].tolist()[:1] == ["331003/高耗能行业"]
    assert out["eval_group"].tolist()[4] == "331003/其他"


def test_class_specific_quotas():
    cfg = tax_config()
    cfg["classes"]["below"]["quotas"] = {"A": 5, "B": 70, "C": 20, "D": 5}
    out = evaluate(scored_firms(list(range(200, 0, -10))), config=cfg)
    # 20 × 5% = 1, 20 × 75% = 15, 20 × 95% = 19 → A 1, B 14, C 4, D 1
    assert counts(out["grade"]) == {"A": 1, "B": 14, "C": 4, "D": 1}


# --------------------------------------------------------------------------------------------
# not evaluated, classes


def test_not_evaluated_reasons():
    firms = frame(
        dict(credit_code="OK", scale="below", tax=50.0, land_mu=10.0),
        dict(credit_code="NOLAND", scale="below", tax=50.0),
        dict(credit_code="ZERO", scale="below", tax=50.0, land_m2=0.0),
        dict(credit_code="SMALL", scale="below", tax=50.0, land_m2=1800.0),  # 2.7 亩
        dict(credit_code="REJ", scale="below", tax=50.0, land_mu=10.0, match_status="rejected"),
        dict(credit_code="UTIL", scale="below", tax=50.0, land_mu=10.0, utility=True),
        dict(credit_code="BANK", scale="below", tax=50.0, land_mu=10.0, industry_code="6620"),
        dict(credit_code="SVC", sector="service", scale="above", tax=50.0, land_mu=10.0),
        dict(credit_code="UNK", scale=None, tax=50.0, land_mu=10.0),
    )
    cfg = tax_config()
    cfg["classes"]["below"]["min_land_mu"] = 3
    cfg["settings"]["excluded_industries"] = ["66", "70"]
    out = evaluate(firms, config=cfg)
    assert out["evaluated"].tolist() == [True] + [False] * 8
    assert out["grade"].tolist() == ["B"] + [""] * 8  # 1 firm: 0.25 → 0 A places
    assert out["grade_note"].tolist()[1:] == [
        "未匹配到用地，不参与亩均评价",
        "未匹配到用地，不参与亩均评价",
        "规下工业占地不足3亩（2.70亩），不参与评价",
        "地企对应已驳回（match_status=rejected），不参与评价",
        "公益性企业，不参与评价分类",
        "行业代码6620不在评价范围，不参与评价",
        "本评价方案未设服务业（占地类）评价，不参与评价",
        "企业规模（scale）未知，无法确定评价类别",
    ]
    # indicator values are still shown where they can be computed: 50 / 2.7 亩
    assert out.loc[3, "tax_per_mu"] == pytest.approx(50 / 2.7)
    assert out["rank"].isna().tolist() == [False] + [True] * 8


def test_newly_scaled_evaluated_as_below():
    firms = frame(
        dict(
            credit_code="N",
            scale="above",
            newly_scaled=True,
            tax=46.3728,
            electricity=100.0,
            land_mu=4.0,
        ),
    )
    out = evaluate(firms, config="huangyan-2022")
    assert out.loc[0, "eval_class"] == "below"
    # 规下 formula: 11.5932/11.5932 × 50 + 0.463728/0.2352 × 50
    assert out.loc[0, "score"] == pytest.approx(50 + 0.463728 / 0.2352 * 50, abs=1e-9)
    assert out.loc[0, "grade_note"].startswith("新升规未满1年，按规下企业评价；规下工业")
    cfg = {"extends": "huangyan-2022", "settings": {"newly_scaled_as_below": False}}
    out = evaluate(firms, config=cfg)
    assert out.loc[0, "eval_class"] == "above"
    # 规上 formula with only tax: 11.5932/24.097 × 30; missing values score 0 (emission: class
    # mean of no valid value = 0)
    assert out.loc[0, "score"] == pytest.approx(11.5932 / 24.097 * 30, abs=1e-9)


def test_service_class_land_occupying():
    firms = frame(
        dict(
            credit_code="S1",
            sector="service",
            scale="above",
            industry_code="72",
            tax=20.0,
            revenue=400.0,
            land_mu=10.0,
        ),
        dict(
            credit_code="S2",
            sector="service",
            scale="above",
            industry_code="72",
            tax=60.0,
            revenue=400.0,
            land_mu=10.0,
        ),
    )
    out = evaluate(firms, config="zhejiang-2022")
    # aggregate 亩均税收 80/20 = 4, 亩均营业收入 800/20 = 40; S1: 2/4×50 + 40/40×50 = 75
    assert out["score"].tolist() == pytest.approx([75.0, 125.0])
    assert out["eval_class"].tolist() == ["service", "service"]
    assert out["revenue_per_mu"].tolist() == pytest.approx([40.0, 40.0])


def test_missing_config_columns_raise():
    firms = frame(dict(credit_code="P", tax=100.0, land_mu=10.0))
    with pytest.raises(SchemaError, match="needs column.*value_added"):
        evaluate(firms.drop(columns=["value_added"]), config="huangyan-2022")
    with pytest.raises(SchemaError, match="land_m2"):
        evaluate(firms.drop(columns=["land_mu", "land_m2"]), config="huangyan-2022")
    with pytest.raises(SchemaError, match="index must be unique"):
        evaluate(scored_firms([1, 2]).set_axis([0, 0]), config=tax_config())
    with pytest.raises(TypeError, match="unexpected keyword"):
        evaluate(firms, config=tax_config(), weights=1)


def test_non_numeric_values_warn():
    firms = scored_firms([10, 20]).astype({"tax": object})
    firms.loc[1, "tax"] = "n/a"
    with pytest.warns(
        DataWarning, match=r"column `tax` has 1 non-numeric value\(s\) \(index \[1\]\)"
    ):
        out = evaluate(firms, config=tax_config())
    assert out.loc[1, "score"] == 0.0  # missing tax scores 0 (on_missing: zero)


# --------------------------------------------------------------------------------------------
# 宗地评价 and 集团评价


def test_parcel_unit_shares_score_and_grade():
    firms = frame(
        # parcel P1, 30 亩: two industrial tenants and a service firm; land is the parcel's
        dict(credit_code="T1", scale="below", tax=100.0, land_mu=30.0, eval_unit="P1"),
        dict(credit_code="T2", scale="below", tax=200.0, land_mu=30.0, eval_unit="P1"),
        dict(
            credit_code="SV",
            sector="service",
            scale="below",
            tax=1000.0,
            land_mu=30.0,
            eval_unit="P1",
        ),
        dict(credit_code="X", scale="below", tax=60.0, land_mu=10.0, eval_unit="P2"),
    )
    out = evaluate(firms, config=tax_config("aggregate"))
    # unit P1: (100 + 200) / 30 = 10 万元/亩 (service tax not counted, land once)
    # aggregate benchmark over units: (300 + 60) / (30 + 10) = 9 → P1 10/9×100, X 6/9×100
    assert out["tax_per_mu"].tolist() == pytest.approx([10, 10, 10, 6])
    assert out["score"].tolist() == pytest.approx([1000 / 9] * 3 + [600 / 9])
    assert out["grade"].tolist() == ["A", "A", "A", "B"]  # 2 units: bounds 1 (0.5 up), 2
    assert out["eval_unit_size"].tolist() == [3, 3, 3, 1]
    assert out["group_size"].tolist() == [2, 2, 2, 2]
    assert out["eval_land_mu"].tolist() == [30, 30, 30, 10]
    assert out.loc[0, "grade_note"].startswith(
        "宗地评价（3家企业合并计算、共享评价结果）；规下工业"
    )
    assert out.loc[2, "grade_note"].startswith(
        "非工业企业，数据不计入合并评价，共享评价结果；宗地评价"
    )
    info = out.attrs["benchmarks"]["331003/规下工业"]["tax_per_mu"]
    assert (info["numerator_sum"], info["denominator_sum"], info["n"]) == (360.0, 40.0, 2)
    off = evaluate(firms, config=tax_config("aggregate") | {"settings": {"parcel_mode": False}})
    assert off["eval_unit_size"].tolist() == [1, 1, 1, 1]


def test_parcel_unit_takes_highest_class():
    firms = frame(
        dict(
            credit_code="U",
            scale="above",
            tax=100.0,
            value_added=500.0,
            land_mu=10.0,
            eval_unit="P1",
        ),
        dict(credit_code="D", scale="below", tax=50.0, land_mu=10.0, eval_unit="P1"),
    )
    cfg = tax_config(10.0)
    cfg["classes"]["above"] = {
        "indicators": {
            "tax_per_mu": {
                "numerator": "tax",
                "denominator": "land_mu",
                "weight": 100,
                "benchmark": 10.0,
            }
        }
    }
    out = evaluate(firms, config=cfg)
    # one 规上 unit: (100 + 50) / 10 = 15 → 150
    assert out["eval_class"].tolist() == ["above", "above"]
    assert out["score"].tolist() == pytest.approx([150, 150])


def test_group_mode_merges_parent_and_subsidiaries_in_region():
    firms = frame(
        dict(credit_code="P", scale="below", tax=100.0, land_mu=10.0),
        dict(credit_code="S", scale="below", tax=50.0, land_mu=5.0, group_code="P"),
        dict(
            credit_code="O",
            scale="below",
            tax=50.0,
            land_mu=5.0,
            group_code="P",
            region_code="330100",
        ),  # other region: not merged
        dict(credit_code="Q", scale="below", tax=30.0, land_mu=10.0),
    )
    cfg = tax_config(10.0)
    cfg["settings"]["group_mode"] = True
    out = evaluate(firms, config=cfg)
    # P + S: (100 + 50) / (10 + 5) = 10 → 100; O: 10 → 100; Q: 3 → 30
    assert out["score"].tolist() == pytest.approx([100, 100, 100, 30])
    assert out["eval_unit_size"].tolist() == [2, 2, 1, 1]
    assert out["eval_unit_lead"].tolist()[:2] == ["P", "P"]
    assert out.loc[1, "grade_note"].startswith("集团评价（2家企业合并计算、共享评价结果）")
    off = evaluate(firms, config=tax_config(10.0))
    assert off["score"].tolist() == pytest.approx([100, 100, 100, 30])  # same ratios
    assert off["eval_unit_size"].tolist() == [1, 1, 1, 1]


def test_group_mode_lands_of_shared_parcels_counted_once():
    firms = frame(
        dict(credit_code="P", scale="below", tax=100.0, land_mu=10.0, eval_unit="A"),
        dict(credit_code="S", scale="below", tax=20.0, land_mu=10.0, eval_unit="A", group_code="P"),
        dict(credit_code="T", scale="below", tax=30.0, land_mu=5.0, eval_unit="B", group_code="P"),
    )
    cfg = tax_config(10.0)
    cfg["settings"]["group_mode"] = True
    out = evaluate(firms, config=cfg)
    # parcel A (10 亩, once) + parcel B (5 亩) = 15 亩; tax 150 → 10 万元/亩 → 100
    assert out["eval_land_mu"].tolist() == [15, 15, 15]
    assert out["score"].tolist() == pytest.approx([100, 100, 100])


def test_group_unit_over_three_parcels_sums_each_parcel_once():
    # P on parcel A; S1, S2 (A and B) and S3 (C, twice) in P's group: four parcel keys, of
    # which A and C are shared; the lands add once per parcel in parcel-key order
    firms = frame(
        dict(credit_code="P", scale="below", tax=90.0, land_mu=1.1, eval_unit="A"),
        dict(credit_code="S1", scale="below", tax=10.0, land_mu=1.1, eval_unit="A", group_code="P"),
        dict(credit_code="S2", scale="below", tax=20.0, land_mu=2.2, eval_unit="B", group_code="P"),
        dict(credit_code="S3", scale="below", tax=30.0, land_mu=3.3, eval_unit="C", group_code="P"),
        dict(credit_code="S4", scale="below", tax=40.0, land_mu=3.3, eval_unit="C", group_code="P"),
        dict(credit_code="S5", scale="below", tax=50.0, land_mu=0.7, group_code="P"),
    )
    cfg = tax_config(10.0)
    cfg["settings"]["group_mode"] = True
    out = evaluate(firms, config=cfg)
    assert out["eval_unit_size"].tolist() == [6] * 6
    assert out["eval_land_mu"].tolist() == [1.1 + 2.2 + 3.3 + 0.7] * 6


def test_text_columns_as_objects_or_arrow_strings_evaluate_alike():
    firms = frame(
        dict(credit_code="A", scale=" below", tax=40.0, land_mu=10.0, region_code="331003 "),
        dict(credit_code="B", scale="规上", tax=30.0, land_mu=10.0, veto=" 无 "),
        dict(credit_code="C", scale="BELOW", tax=20.0, land_mu=10.0, sector=" Service"),
        dict(credit_code="D", scale=None, tax=10.0, land_mu=10.0, region_code=None),
        dict(credit_code="E", scale="below", tax=5.0, land_mu=10.0, veto="环境违法"),
    )
    text = ["credit_code", "scale", "sector", "region_code", "veto", "group_code", "eval_unit"]
    as_objects = firms.astype({c: object for c in text})
    as_strings = firms.astype({c: "str" for c in text})
    out = evaluate(as_objects, config=tax_config())
    pd.testing.assert_frame_equal(out, evaluate(as_strings, config=tax_config()), check_exact=True)
    # stripped and case-folded like any text: " below" and "BELOW" are 规下, " Service" a
    # service firm, "331003 " the region of A and E, " 无 " no veto
    assert out["eval_class"].tolist() == ["below", "above", "service", "", "below"]
    assert out["eval_group"].tolist() == ["331003/规下工业", "", "", "", "331003/规下工业"]
    assert out["grade"].tolist() == ["B", "", "", "", "D"]


# --------------------------------------------------------------------------------------------
# 加减分


def test_wenling_rental_rule_and_bonus_columns():
    cfg = tax_config(10.0)
    cfg["classes"]["above"] = {
        "indicators": {
            "tax_per_mu": {
                "numerator": "tax",
                "denominator": "land_mu",
                "weight": 100,
                "benchmark": 10.0,
            }
        }
    }
    cfg["bonus_penalty"] = [
        # 规上企业厂区出租给1家规下企业不扣分, 每增加一家扣5分
        {
            "name": "规上出租扣分",
            "column": "n_tenants",
            "classes": ["above"],
            "free_units": 1,
            "per_unit": -5,
        },
        # 规下企业出租: 第一家扣10分, 每增加一家扣5分, 不设上限
        {
            "name": "规下出租扣分",
            "column": "n_tenants",
            "classes": ["below"],
            "first_unit": -10,
            "per_unit": -5,
        },
    ]
    cfg["settings"] = {"bonus_column": "bonus", "penalty_column": "penalty"}
    firms = frame(
        dict(credit_code="A1", scale="above", tax=500.0, land_mu=10.0, n_tenants=1.0),
        dict(credit_code="A3", scale="above", tax=500.0, land_mu=10.0, n_tenants=3.0),
        dict(credit_code="B1", scale="below", tax=500.0, land_mu=10.0, n_tenants=1.0),
        dict(credit_code="B3", scale="below", tax=500.0, land_mu=10.0, n_tenants=3.0),
        dict(credit_code="B0", scale="below", tax=500.0, land_mu=10.0, bonus=2.0, penalty=1.5),
    )
    out = evaluate(firms, config=cfg)
    # base score 50/10 × 100 = 500; A1: 0; A3: −5 −5 = −10; B1: −10; B3: −10 −5 −5 = −20;
    # B0: +2 − 1.5 = +0.5
    assert out["bonus_penalty_points"].tolist() == pytest.approx([0, -10, -10, -20, 0.5])
    assert out["score"].tolist() == pytest.approx([500, 490, 490, 480, 500.5])
    text = explain(firms, "B3", config=cfg)
    assert "规下出租扣分（n_tenants = 3）：-20 分" in text
    assert "加减分合计：-20.0000 分" in text


# --------------------------------------------------------------------------------------------
# county YAML without code changes


def test_county_yaml_with_extra_indicator(tmp_path):
    path = tmp_path / "county-2023.yml"
    path.write_text(
        """
name: county-2023
extends: zhejiang-2022
settings:
  excluded_industries: []
classes:
  above:
    indicators:
      rd_ratio: null            # dropped
      va_per_co2:               # added: 单位碳排放增加值, fixed benchmark
        label: 单位碳排放增加值
        numerator: value_added
        denominator: co2_t
        weight: 10
        benchmark: 5
      tax_per_mu:
        benchmark: 20           # fixed instead of aggregate
      va_per_mu: {benchmark: 100}
      va_per_tce: {benchmark: 2}
      labour_productivity: {benchmark: 20}
      va_per_emission: {benchmark: 1000}
""",
        encoding="utf-8",
    )
    firms = frame(
        dict(
            credit_code="P",
            tax=300.0,
            value_added=1500.0,
            energy_tce=500.0,
            employees=50.0,
            emissions_t=1.0,
            co2_t=100.0,
            land_mu=10.0,
        )
    )
    out = evaluate(firms, config=str(path))
    # 30/20×30 + 150/100×20 + 3/2×20 + 30/20×10 + 1500/1000×10 + 15/5×10
    expected = 45 + 30 + 30 + 15 + 15 + 30
    assert out.loc[0, "score"] == pytest.approx(expected)
    assert out.loc[0, "score_va_per_co2"] == pytest.approx(30)
    assert "score_rd_ratio" not in out.columns
    assert np.isnan(out.loc[0, "rd_ratio"])  # standard column kept, not configured


# --------------------------------------------------------------------------------------------
# explain


def test_explain_huangyan_firm():
    firms = frame(
        dict(
            credit_code="P",
            name="甲公司",
            tax=500.0,
            value_added=3000.0,
            energy_tce=1000.0,
            employees=150.0,
            rd_expense=300.0,
            revenue=10000.0,
            land_mu=20.0,
        ),
        dict(
            credit_code="R",
            tax=120.0,
            value_added=800.0,
            energy_tce=400.0,
            emissions_t=1.0,
            employees=40.0,
            rd_expense=100.0,
            revenue=2000.0,
            land_mu=8.0,
        ),
    )
    out = evaluate(firms, config="huangyan-2022")
    joined = firms.join(out)
    text = explain(joined, " p ", config="huangyan-2022")
    lines = text.splitlines()
    assert lines[0] == "亩均效益综合评价说明：甲公司（P）"
    assert "用地面积：20 亩（13333.3 平方米）" in lines
    # 500 / 20 = 25 → 25 / 24.097 × 30 = 31.1242…
    assert (
        "  1. 亩均税收 = 税收 500 万元 / 用地面积 20 亩 = 25 万元/亩；基准值 24.097（固定值）；"
        f"权重 30；得分 = 25 ÷ 24.097 × 30 = {25 / 24.097 * 30:.4f}"
    ) in lines
    # no emission data → class mean score = R's 800/1/4929.81×10 (the only valid one)
    assert f"按规则取评价总体该项平均得分，得分 {800 / 4929.81 * 10:.4f}" in text
    assert f"= {out.loc[0, 'score']:.4f}" in text
    assert "分档界线（2家；A 25%、B 50%、C 20%、D 5%" in text
    assert "A类 第1–1名；B类 第2–2名；C类 无；D类 无" in text
    assert "注意" not in text
    tampered = joined.assign(score=joined["score"] + 1)
    assert "不一致" in explain(tampered, "P", config="huangyan-2022")


def test_explain_aggregate_benchmark_and_not_evaluated():
    firms = frame(
        dict(credit_code="A", scale="below", tax=10.0, land_mu=2.0),
        dict(credit_code="B", scale="below", tax=30.0, land_mu=3.0),
        dict(credit_code="C", scale="below", tax=60.0, land_mu=5.0),
        dict(credit_code="N", scale="below", tax=60.0),
    )
    text = explain(firms, "B", config=tax_config("aggregate"))
    assert "基准值 10（评价总体 331003/规下工业 共3个有效单位：Σ税收 100 ÷ Σ用地面积 10）" in text
    assert "得分 = 10 ÷ 10 × 100 = 100.0000" in text
    text = explain(firms, "N", config=tax_config("aggregate"))
    assert text.splitlines()[-1] == "评价结果：不参与评价（未匹配到用地，不参与亩均评价）"
    with pytest.raises(MujunGeoError, match="not found"):
        explain(firms, "NOPE", config=tax_config())


def test_explain_parcel_unit_and_veto():
    firms = frame(
        dict(
            credit_code="T1",
            name="甲",
            scale="below",
            tax=100.0,
            land_mu=30.0,
            eval_unit="P1",
            veto="环境违法",
        ),
        dict(
            credit_code="SV",
            name="乙",
            sector="service",
            scale="below",
            tax=1.0,
            land_mu=30.0,
            eval_unit="P1",
        ),
    )
    text = explain(firms, "SV", config=tax_config())
    assert (
        "评价单元：宗地评价，2家企业合并计算、共享评价结果："
        "甲（T1）、乙（SV）［非工业企业，数据不计入］"
    ) in text
    assert "一票否决：环境违法 —— 直接列为D类，不参与排名、不占分档名额" in text
    assert "最终等级：D类" in text


def test_service_building_class_without_land_and_custom_column():
    cfg = {
        "name": "楼宇",
        "classes": {
            "service_building": {
                "indicators": {
                    "tax_per_floor": {
                        "label": "单位面积税收",
                        "numerator": "tax",
                        "denominator": "floor_area_m2",
                        "weight": 100,
                        "benchmark": 0.05,
                    },
                },
            },
        },
    }
    firms = frame(
        dict(credit_code="B1", sector="service", scale="above", tax=100.0, floor_area_m2=1000.0),
        dict(
            credit_code="B2",
            sector="service",
            scale="above",
            tax=30.0,
            floor_area_m2=1000.0,
            land_mu=5.0,
        ),
    )
    out = evaluate(firms, config=cfg)
    # B1 (no land): 100 / 1000 = 0.1 万元/m² → 0.1 / 0.05 × 100 = 200
    assert out.loc[0, "eval_class"] == "service_building"
    assert out.loc[0, "score"] == pytest.approx(200.0)
    assert out.loc[0, "grade"] == "B"
    # B2 occupies land → 服务业（占地类）, which this config does not evaluate
    assert out.loc[1, "grade_note"] == "本评价方案未设服务业（占地类）评价，不参与评价"


# --------------------------------------------------------------------------------------------
# grade notes built column-wise equal the per-unit wording


def _notes_by_unit(firms: pd.DataFrame, cfg: object) -> tuple[list[str], list[str]]:
    """(vectorised notes, unit_note per unit record) for every unit of an evaluation run."""
    from mujun_geo._evaluate_text import unit_note, unit_notes
    from mujun_geo.evaluate import _run, load_config

    run = _run(firms, load_config(cfg))
    records = run.units.to_dict("records")
    return unit_notes(run.units, run.cfg, run.bounds).tolist(), [
        unit_note(r, run.cfg, run.bounds) for r in records
    ]


def test_unit_notes_equal_unit_note_on_every_kind_of_unit():
    # 20 规下 firms, scores 200 … 10: veto, exemptions with backfill, 升降档, a 宗地 unit of
    # two, a group unit of two, a zero-land firm, a rejected match and a review flag
    scores = list(range(200, 0, -10))
    extra = {
        "veto": [None] * 20,
        "high_tech": [False] * 18 + [True, True],
        "upgrade": [0] * 20,
        "downgrade": [0] * 20,
        "eval_unit": [None] * 20,
        "group_code": [None] * 20,
        "match_status": ["matched"] * 20,
    }
    extra["veto"][2] = "安全生产事故"
    extra["upgrade"][14] = 1
    extra["downgrade"][0] = 1
    extra["eval_unit"][5] = extra["eval_unit"][6] = "U1"
    extra["group_code"][8] = "F08"
    extra["match_status"][11] = "rejected"
    firms = scored_firms(scores, **extra)
    firms.loc[9, "land_mu"] = 0.0
    firms.loc[10, "electricity"] = 0.0  # zero denominator of the second indicator: review
    cfg = tax_config(
        backfill_d=True,
        adjustments=[
            {"column": "upgrade", "steps": 1},
            {"column": "downgrade", "steps": -2, "label": "降档"},
        ],
    )
    cfg["classes"]["below"]["indicators"]["tax_per_kwh"] = {
        "numerator": "tax", "denominator": "electricity", "weight": 1.0, "benchmark": 1.0,
        "on_missing": "zero",
    }  # fmt: skip
    cfg["settings"]["group_mode"] = True
    new, ref = _notes_by_unit(firms, cfg)
    assert new == ref
    out = evaluate(firms, config=cfg)
    notes = out["grade_note"].tolist()
    assert notes[2] == "规下工业，得分 180.00，不参与排名；一票否决：安全生产事故，列为D类"
    assert notes[5] == notes[6] and notes[5].startswith("宗地评价（2家企业合并计算")
    assert notes[8].startswith("集团评价（2家企业合并计算")
    assert notes[9] == "未匹配到用地，不参与亩均评价"
    assert notes[11].startswith("地企对应已驳回")
    assert notes[10].endswith("需人工核实：tax_per_kwh的分母用电量为0或负数")
    assert "属有效期内的高新技术企业，不评为D类，定为C类" in notes[19]
    assert notes[0].endswith("降档（downgrade，2档）：A类→C类")


def test_unit_notes_on_the_sample_county():
    from mujun_geo import datasets, io
    from mujun_geo.matching import match_enterprises

    parcels = io.read_parcels(datasets.get_path("parcels"))
    firms = io.read_enterprises(datasets.get_path("enterprises"), target_crs=parcels.crs)
    firms = firms[~firms["rejected"]]
    res = match_enterprises(firms, parcels)
    new, ref = _notes_by_unit(firms.join(res.enterprises), "zhejiang-2022")
    assert len(new) > 100 and new == ref


def test_veto_reasons_joined_once_per_unit_in_row_order():
    firms = frame(
        dict(credit_code="A", scale="below", tax=10.0, land_mu=10.0, eval_unit="P", veto="乙"),
        dict(credit_code="B", scale="below", tax=10.0, land_mu=10.0, eval_unit="P", veto="甲"),
        dict(credit_code="C", scale="below", tax=10.0, land_mu=10.0, eval_unit="P", veto="乙"),
        dict(credit_code="D", scale="below", tax=10.0, land_mu=10.0, veto="否"),
        dict(credit_code="E", scale="below", tax=10.0, land_mu=10.0),
    )
    out = evaluate(firms, config=tax_config())
    # unit P: 乙, 甲, 乙 → distinct reasons in row order; "否" is no veto
    assert out.loc[0, "grade_note"].endswith("一票否决：乙；甲，列为D类")
    # D and E tie (score 100) and are the only ranked units: 2 × 25 % = 0.5 → 1 A place,
    # shared ties → both A
    assert out["grade"].tolist() == ["D", "D", "D", "A", "A"]
    assert "一票否决" not in out.loc[3, "grade_note"]
