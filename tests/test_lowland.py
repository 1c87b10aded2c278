"""低效用地 rules, FAR table, summary, 高耗低效 list and 标准地 review (mujun_geo.land)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
from shapely.geometry import box

from mujun_geo import land
from mujun_geo._errors import ConfigError, CRSError, SchemaError
from mujun_geo.units import M2_PER_MU


# ---------------------------------------------------------------------------------------
# FAR table and main industry
# ---------------------------------------------------------------------------------------
def test_packaged_far_table():
    t = land.far_minimums()
    assert list(t.columns) == ["industry_code_2017", "name", "far_min", "source_code_2002"]
    assert len(t) == 30  # 2017 大类 13-42; 43 (repair) has no national value
    by = t.set_index("industry_code_2017")
    # mapping of DOMAIN.md §4.1: 2017 29 <- 2002 29 (0.8) + 30 (1.0): looser 0.8;
    # 2017 30 <- 2002 31 (0.7); 31 <- 32 (0.6); 39 <- 40 (1.0); 42 <- 43 (0.7); 25 = 0.5
    assert by.loc["29", "far_min"] == 0.8
    assert by.loc["30", "far_min"] == 0.7
    assert by.loc["31", "far_min"] == 0.6
    assert by.loc["39", "far_min"] == 1.0
    assert by.loc["42", "far_min"] == 0.7
    assert by.loc["25", "far_min"] == 0.5
    assert by.loc["29", "source_code_2002"] == "29;30"
    assert "43" not in by.index


def test_custom_far_table_and_errors(tmp_path):
    path = tmp_path / "county.csv"
    path.write_text("industry_code_2017,far_min\n33,1.2\n3311,1.5\n", encoding="utf-8")
    t = land.far_minimums(path)
    assert t["far_min"].tolist() == [1.2, 1.5]
    assert t["name"].isna().all()
    with pytest.raises(SchemaError, match="lacks columns"):
        land.far_minimums(pd.DataFrame({"code": ["33"], "far_min": [1.0]}))
    with pytest.raises(SchemaError, match="more than once"):
        land.far_minimums(pd.DataFrame({"industry_code_2017": ["33", "33"], "far_min": [1, 2]}))
    with pytest.raises(SchemaError, match="not positive"):
        land.far_minimums(pd.DataFrame({"industry_code_2017": ["33"], "far_min": ["x"]}))


def test_main_industry_majority_and_tie_break():
    ent = pd.DataFrame(
        {
            "credit_code": ["a", "b", "c", "d", "e"],
            "industry_code": ["3311", "3399", "1711", 2611, None],
            "value_added": [10.0, 20.0, 500.0, 80.0, 900.0],
        }
    )
    links = pd.DataFrame(
        {
            "credit_code": ["a", "b", "c", "c", "d", "e", "a"],
            "parcel_id": ["P1", "P1", "P1", "P2", "P2", "P2", "P3"],
            "status": ["auto", "confirmed", "auto", "auto", "auto", "auto", "rejected"],
        }
    )
    got = land.main_industry(ent, links)
    # P1: 33 held by 2 firms, 17 by 1 -> 33. P2: 17 (VA 500) vs 26 (VA 80), e has no code
    # -> tie, largest value added wins -> 17. P3: only a rejected link -> absent
    assert got.to_dict() == {"P1": "33", "P2": "17"}
    assert land.main_industry(ent, links, statuses=None).to_dict()["P3"] == "33"


# ---------------------------------------------------------------------------------------
# lowland rules
# ---------------------------------------------------------------------------------------
@pytest.fixture
def parcels() -> pd.DataFrame:
    rows = [
        # id,  land, mu, n_ent, footprint, far, cov, ind, tax_pm, tax_sum, elec, grade
        ("P01", "0601", 20, 0, 0, 0.0, 0.0, None, np.nan, np.nan, np.nan, None),  # vacant
        ("P02", "0601", 20, 2, 0, 0.0, 0.0, "33", 30.0, 600.0, 50.0, "B"),  # idle
        ("P03", "0601", 20, 1, 5000, 0.5, 0.40, "33", 30.0, 600.0, 50.0, "B"),  # far < 0.7
        ("P04", "0601", 20, 1, 6000, 0.9, 0.50, "17", 30.0, 600.0, 50.0, "A"),  # ok (0.8)
        ("P05", "0601", 20, 1, 6000, 0.1, 0.50, "4310", 30.0, 600.0, 50.0, "A"),  # 43 unknown
        ("P06", "0601", 20, 1, 2000, 1.2, 0.25, "13", 30.0, 600.0, 50.0, "B"),  # coverage
        ("P07", "0601", 12, 1, 4000, 1.0, 0.50, "13", 8.0, 96.0, 50.0, "C"),  # low tax
        ("P08", "0601", 9, 1, 3000, 1.0, 0.50, "13", 5.0, 45.0, 50.0, "C"),  # < 10 亩
        ("P09", "0601", 10, 1, 3300, 1.0, 0.50, "13", 9.99, 99.9, 50.0, "C"),  # 10 亩 edge
        ("P10", "0601", 5, 1, 2000, 1.0, 0.60, "13", 0.0, 0.0, 0.0, "C"),  # stopped
        ("P11", "0601", 20, 1, 6000, 1.0, 0.50, "13", 30.0, 600.0, 50.0, "D"),  # D
        ("P12", "0508", 20, 0, 0, 0.0, 0.0, None, np.nan, np.nan, np.nan, None),  # not ind.
        ("P13", "0601", 30, 1, 4000, 0.4, 0.20, "33", 2.0, 60.0, 10.0, "D"),  # several
        ("P14", "0601", 20, 1, 6000, np.nan, 0.50, "13", np.nan, np.nan, np.nan, None),
    ]
    cols = [
        "parcel_id",
        "land_use",
        "area_mu",
        "n_enterprises",
        "footprint_m2",
        "far",
        "coverage",
        "industry_code",
        "tax_per_mu",
        "tax_sum",
        "electricity_sum",
        "grade",
    ]
    df = pd.DataFrame(rows, columns=cols)
    df["region_code"] = ["330624"] * 7 + ["330683"] * 7
    df["park_id"] = [
        None,
        "K1",
        "K1",
        "K1",
        None,
        None,
        "K2",
        None,
        None,
        "K2",
        None,
        None,
        "K1",
        None,
    ]
    df["energy_tce_sum"] = [0, 120, 300, 50, 50, 50, 400, 20, 30, 0, 700, 0, 900, np.nan]
    return df


EXPECTED_DEFAULT = {
    "P01": "vacant",
    "P02": "idle",
    "P03": "far_below_min",
    "P06": "coverage_below_min",
    "P07": "low_tax_per_mu",
    "P09": "low_tax_per_mu",
    "P10": "stopped",
    "P11": "d_grade",
    "P13": "far_below_min;coverage_below_min;low_tax_per_mu;d_grade",
}


def test_default_rules_by_hand(parcels):
    res = land.flag_lowland(parcels)
    out = res.parcels.set_index("parcel_id")
    flagged = out.loc[out["lowland"] == 1, "lowland_reasons"].to_dict()
    # P03 far 0.5 < 0.7 (33 金属制品); P04 0.9 >= 0.8 (17 纺织); P05 industry 43 has no
    # minimum -> note, not flagged; P06 0 < 0.25 < 0.30; P07 12 亩 and 8 < 10 万元/亩;
    # P08 only 9 亩; P09 exactly 10 亩 and 9.99 < 10; P10 tax 0 and power 0 (5 亩, so not
    # 双十); P11 grade D; P12 is 0508 物流仓储 (not assessed); P14 far unknown -> no flag
    assert flagged == EXPECTED_DEFAULT
    assert out["lowland"].dtype == "int64"
    assert set(out.loc[out["lowland"] == 0, "lowland_reasons"]) == {""}
    assert out.loc["P05", "lowland_notes"] == "far_below_min: industry 4310 not in FAR table"
    assert out.loc["P03", "far_min"] == 0.7
    assert out.loc["P05", "far_min"] != out.loc["P05", "far_min"]  # NaN
    assert out["lowland_assessed"].tolist() == [True] * 11 + [False] + [True] * 2
    assert out["coverage_min"].eq(0.30).all()
    assert out["low_tax_per_mu_threshold"].eq(10.0).all()
    assert [r["name"] for r in res.rules] == [
        "vacant",
        "idle",
        "far_below_min",
        "coverage_below_min",
        "low_tax_per_mu",
        "stopped",
        "d_grade",
    ]
    # the lowland layer: flagged rows with the figures behind the reasons
    lay = res.lowland
    assert lay["parcel_id"].tolist() == list(EXPECTED_DEFAULT)
    for col in ["area_mu", "lowland_reasons", "far", "far_min", "coverage", "coverage_min"]:
        assert col in lay.columns
    for col in ["tax_per_mu", "low_tax_per_mu_threshold", "tax_sum", "electricity_sum", "grade"]:
        assert col in lay.columns
    assert lay.set_index("parcel_id").loc["P13", "far_min"] == 0.7
    # the input frame is not modified
    assert "lowland" not in parcels.columns


def test_disable_and_select_rules(parcels):
    res = land.flag_lowland(parcels, exclude=["d_grade"])
    out = res.parcels.set_index("parcel_id")
    assert out.loc["P11", "lowland"] == 0
    assert out.loc["P13", "lowland_reasons"] == "far_below_min;coverage_below_min;low_tax_per_mu"
    res = land.flag_lowland(parcels, rules="shuangshi")
    got = res.parcels.loc[res.parcels["lowland"] == 1, "parcel_id"].tolist()
    assert got == ["P07", "P09", "P13"]  # ≥ 10 亩 and < 10 万元/亩


def test_relative_tax_rule(parcels):
    rule = {
        "name": "low_tax_rel",
        "kind": "threshold",
        "column": "tax_per_mu",
        "below_mean_factor": 0.5,
    }
    res = land.flag_lowland(parcels, rules=rule)  # a single rule dict is accepted
    out = res.parcels.set_index("parcel_id")
    # mean per region over industrial parcels with firms and a value, weighted by 亩:
    # 330624: P02-P07 = (5 x 20 x 30 + 12 x 8) / (5 x 20 + 12) = 3096 / 112 = 27.642857
    # 330683: P08 P09 P10 P11 P13 = (9x5 + 10x9.99 + 5x0 + 20x30 + 30x2) / 74 = 804.9 / 74
    m1 = 3096 / 112
    m2 = (45 + 99.9 + 0 + 600 + 60) / 74
    assert out.loc["P02", "low_tax_rel_threshold"] == pytest.approx(0.5 * m1)
    assert out.loc["P10", "low_tax_rel_threshold"] == pytest.approx(0.5 * m2)
    # 0.5 x m1 = 13.82: P07 (8) flagged; 0.5 x m2 = 5.44: P08 (5), P10 (0), P13 (2)
    assert out.index[out["lowland"] == 1].tolist() == ["P07", "P08", "P10", "P13"]


def test_shaoxing_preset_and_above_rule(parcels):
    p = parcels.assign(
        revenue_per_mu=[np.nan, 3.0, 100, 100, 100, 4.99, 5.0, 100, 100, 0, 100, 1, 100, 100]
    )
    res = land.flag_lowland(p, rules="shaoxing")
    got = res.parcels.loc[res.parcels["lowland"] == 1, "parcel_id"].tolist()
    # revenue per 亩 < 5 万元 on industrial parcels with firms: P02 3, P06 4.99, P10 0
    # (P07 5.0 is not below; P12 is not industrial)
    assert got == ["P02", "P06", "P10"]
    rule = {"name": "energy_hog", "kind": "threshold", "column": "energy_tce_sum", "above": 500}
    res = land.flag_lowland(parcels, rules=[rule])
    got = res.parcels.loc[res.parcels["lowland"] == 1, "parcel_id"].tolist()
    assert got == ["P11", "P13"]  # 700 and 900 tce


def test_all_parcels_industrial_when_codes_none(parcels):
    res = land.flag_lowland(parcels, rules=["vacant"], industrial_codes=None)
    got = res.parcels.loc[res.parcels["lowland"] == 1, "parcel_id"].tolist()
    assert got == ["P01", "P12"]


def test_geodataframe_input_keeps_crs_and_measures_area():
    g = gpd.GeoDataFrame(
        {"parcel_id": ["A", "B"], "land_use": ["0601", "0601"], "n_enterprises": [0, 1]},
        geometry=[box(0, 0, 200, 100), box(300, 0, 400, 100)],
        crs="EPSG:4549",
        index=[7, 8],
    )
    res = land.flag_lowland(g, rules=["vacant"])
    assert res.parcels.crs == g.crs
    assert res.parcels.index.tolist() == [7, 8]
    # 20 000 m² = 30 亩; 10 000 m² = 15 亩
    assert res.parcels["area_mu"].tolist() == pytest.approx([20000 / M2_PER_MU, 15.0])
    assert isinstance(res.lowland, gpd.GeoDataFrame)
    assert res.lowland.crs == g.crs
    assert res.lowland.index.tolist() == [7]
    assert res.lowland.geometry.iloc[0].equals(box(0, 0, 200, 100))
    with pytest.raises(CRSError, match="area_mu"):
        land.flag_lowland(g.to_crs(4490), rules=["vacant"])


@pytest.mark.parametrize(
    ("rules", "exclude", "match"),
    [
        ("nope", (), "Unknown lowland preset 'nope'"),
        (["nope"], (), "Unknown lowland rule 'nope'"),
        ([{"name": "x", "kind": "magic"}], (), "unknown kind 'magic'"),
        ([{"name": "coverage_below_min", "max": 0.3}], (), r"unknown keys \['max'\]"),
        (["vacant", {"name": "vacant"}], (), r"repeated: \['vacant'\]"),
        (
            [{"name": "t", "kind": "threshold", "column": "x", "below": 1, "above": 2}],
            (),
            "exactly one",
        ),
        ([{"name": "t", "kind": "threshold", "below": 1}], (), "needs `column`"),
        ([{"name": "coverage_below_min", "min": 30}], (), r"share in \(0, 1\]"),
        ("default", ("d_grde",), r"`exclude` names \['d_grde'\]"),
    ],
)
def test_rule_config_errors(parcels, rules, exclude, match):
    with pytest.raises(ConfigError, match=match):
        land.flag_lowland(parcels, rules=rules, exclude=exclude)


def test_missing_columns_named(parcels):
    with pytest.raises(SchemaError, match=r"`industry_code` \(for far_below_min\).*exclude"):
        land.flag_lowland(parcels.drop(columns="industry_code"))
    with pytest.raises(SchemaError, match="land_use"):
        land.flag_lowland(parcels.drop(columns="land_use"), rules=["idle"])


def test_lowland_rules_returns_editable_copies():
    rules = land.lowland_rules()
    rules[4]["below"] = 20.0
    assert land.lowland_rules()[4]["below"] == 10.0
    assert rules[4] == {
        "name": "low_tax_per_mu",
        "kind": "threshold",
        "column": "tax_per_mu",
        "below": 20.0,
        "above": None,
        "below_mean_factor": None,
        "min_area_mu": 10.0,
        "require_firms": True,
    }


# ---------------------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------------------
def test_lowland_summary_by_hand(parcels):
    res = land.flag_lowland(parcels)
    s = land.lowland_summary(res.parcels)
    # assessed (industrial) parcels: all but P12.
    # 330624 (P01-P07): 7 parcels, 132 亩; flagged P01 P02 P03 P06 P07 = 20+20+20+20+12 = 92 亩,
    #   energy 0+120+300+50+400 = 870 tce
    # 330683 (P08-P11, P13, P14; P12 left out): 6 parcels, 9+10+5+20+30+20 = 94 亩;
    #   flagged P09 P10 P11 P13 = 10+5+20+30 = 65 亩, energy 30+0+700+900 = 1630 tce
    # parks: K1 = P02 P03 P04 P13 (90 亩; flagged P02 P03 P13 = 70 亩, 1320 tce);
    #        K2 = P07 P10 (17 亩, both flagged, 400 tce)
    rows = s.set_index(["level", "key"])
    exp = {
        ("region_code", "330624"): (7, 132.0, 5, 92.0, 870.0),
        ("region_code", "330683"): (6, 94.0, 4, 65.0, 1630.0),
        ("park_id", "K1"): (4, 90.0, 3, 70.0, 1320.0),
        ("park_id", "K2"): (2, 17.0, 2, 17.0, 400.0),
        ("total", ""): (13, 226.0, 9, 157.0, 2500.0),
    }
    cols = ["n_parcels", "area_mu", "n_lowland", "lowland_area_mu", "lowland_energy_tce"]
    for key, values in exp.items():
        assert tuple(rows.loc[key, cols]) == pytest.approx(values)
    assert rows.loc[("total", ""), "lowland_area_share"] == pytest.approx(157 / 226)
    # reason counts, in rule order: P13 counts under each of its four reasons
    reason_cols = [
        c for c in s.columns if c.startswith("n_") and c not in ("n_parcels", "n_lowland")
    ]
    assert reason_cols == [
        "n_vacant",
        "n_idle",
        "n_far_below_min",
        "n_coverage_below_min",
        "n_low_tax_per_mu",
        "n_stopped",
        "n_d_grade",
    ]
    assert rows.loc[("total", ""), reason_cols].tolist() == [1, 1, 2, 2, 3, 1, 2]


def test_lowland_summary_needs_flags(parcels):
    with pytest.raises(SchemaError, match="run flag_lowland first"):
        land.lowland_summary(parcels)


# ---------------------------------------------------------------------------------------
# 高耗低效
# ---------------------------------------------------------------------------------------
@pytest.fixture
def firms() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "credit_code": list("abcdefgh"),
            "name": ["甲", "乙", "丙", "丁", "戊", "己", "庚", "辛"],
            "industry_code": ["3011", "1711", "3311", "2611", "5211", "2611", "3011", None],
            "scale": ["above", "above", "above", "below", "above", "below", "above", "above"],
            "region_code": ["330624"] * 4 + ["330683"] * 4,
            "energy_tce": [900.0, 50.0, 400.0, 300.0, 900.0, 80.0, 100.0, 900.0],
            "value_added": [1000.0, 1000.0, 500.0, 200.0, 100.0, 100.0, -5.0, 100.0],
            "land_mu": [40.0, 20.0, 10.0, 5.0, 10.0, 2.0, 10.0, 10.0],
            "tax_per_mu": [5.0, 4.0, 30.0, 8.0, 1.0, 1.0, 2.0, 1.0],
        }
    )


def test_high_energy_low_efficiency_default(firms):
    h = land.high_energy_low_efficiency(firms)
    # energy/VA: a 0.9, b 0.05, c 0.8, d 1.5, e 9 (service 52, out of scope),
    # f 0.8 (规下 with 2 亩 < 3: out), g VA < 0 with energy (high), h no industry code (out)
    # low tax (< 10): a 5, d 8, g 2 (c has 30) -> listed: g (no VA) first, then d 1.5, a 0.9
    assert h["credit_code"].tolist() == ["g", "d", "a"]
    assert h.index.tolist() == [6, 3, 0]
    assert h["energy_per_va"].tolist()[1:] == pytest.approx([1.5, 0.9])
    assert np.isnan(h["energy_per_va"].iloc[0])
    assert h["note"].tolist() == ["value_added <= 0 with energy use", "", ""]
    assert set(h["reasons"]) == {"high_energy;low_tax_per_mu"}
    for col in ["name", "tax_per_mu", "land_mu", "energy_tce", "energy_per_va_max"]:
        assert col in h.columns


def test_high_energy_low_efficiency_options(firms):
    # per-industry limits: 30xx may use up to 1.0 tce/万元 -> a (0.9) drops out
    limits = pd.DataFrame({"industry_code": ["30"], "energy_per_va_max": [1.0]})
    h = land.high_energy_low_efficiency(firms, energy_limits=limits)
    assert h["credit_code"].tolist() == ["g", "d"]
    # relative tax threshold: 0.5 x area-weighted mean per region (firms in scope):
    # 330624: a b c d = (40x5 + 20x4 + 10x30 + 5x8) / 75 = 620/75 = 8.267 -> 4.133
    # 330683: g = 2 -> 1.0 (g's own 2 is not below)
    h = land.high_energy_low_efficiency(firms, tax_per_mu_mean_factor=0.5)
    assert h["credit_code"].tolist() == []
    h = land.high_energy_low_efficiency(firms, tax_per_mu_mean_factor=1.0)
    # thresholds 8.267 and 2: a (5) listed, d (8) listed, g (2) not
    assert h["credit_code"].tolist() == ["d", "a"]
    assert h["tax_per_mu_threshold"].tolist() == pytest.approx([620 / 75, 620 / 75])
    # either condition, all industries, no land floor for 规下
    h = land.high_energy_low_efficiency(
        firms, combine="or", manufacturing_only=False, min_land_mu_below_scale=None
    )
    # high energy: all but b (0.05); low tax: all but c (30) -> the union is all eight
    assert sorted(h["credit_code"]) == list("abcdefgh")
    assert h.set_index("credit_code").loc["c", "reasons"] == "high_energy"
    assert h.set_index("credit_code").loc["b", "reasons"] == "low_tax_per_mu"


def test_high_energy_low_efficiency_errors(firms):
    with pytest.raises(ConfigError, match=r"\['and', 'or'\]"):
        land.high_energy_low_efficiency(firms, combine="xor")
    with pytest.raises(SchemaError, match="energy_tce"):
        land.high_energy_low_efficiency(firms.drop(columns="energy_tce"))
    with pytest.raises(SchemaError, match="industry_code"):
        land.high_energy_low_efficiency(firms.drop(columns="industry_code"))


# ---------------------------------------------------------------------------------------
# 标准地 达产复核
# ---------------------------------------------------------------------------------------
def test_standard_land_review_by_hand():
    parcels = pd.DataFrame(
        {
            "parcel_id": ["S1", "S2", "S3"],
            "far": [1.05, 1.6, 1.3],
            "tax_per_mu": [32.0, 20.0, np.nan],
            "va_per_tce": [2.0, 3.5, 1.0],
            "rd_ratio": [0.025, 0.04, 0.01],
        }
    )
    commitments = pd.DataFrame(
        {
            "parcel_id": ["S1", "S2", "S3", "S9"],
            "start_year": [2019, 2021, 2018, 2015],
            "run_in_years": [3, 2, np.nan, 3],
            "commit_far": [1.2, 1.6, 1.2, 1.0],
            "commit_tax_per_mu": [30.0, 30.0, 25.0, np.nan],
            "commit_va_per_tce": [2.5, np.nan, np.nan, np.nan],
            "commit_rd_ratio": [0.032, 0.03, np.nan, np.nan],
            "commit_invest_per_mu": [400.0, np.nan, np.nan, np.nan],
        }
    )
    r = land.standard_land_review(parcels, commitments, year=2023)
    # S1: due 2022 <= 2023: far 1.05 vs 1.2 -> short 0.15; tax 32 >= 30 met; va/tce 2.0 vs
    #     2.5 -> 0.5; R&D 0.025 vs 0.032 -> 0.007; invest not measured -> 缺少实际数据
    # S2: due 2023: far 1.6 = 1.6 met; tax 20 vs 30 -> 10; R&D 0.04 met
    # S3: due 2018 + 3 (default) = 2021: far 1.3 met; tax missing
    # S9: not a parcel
    got = r.set_index(["parcel_id", "indicator"])
    assert len(r) == 11
    assert got.loc[("S1", "far"), "shortfall"] == pytest.approx(0.15)
    assert got.loc[("S1", "va_per_tce"), "shortfall"] == pytest.approx(0.5)
    assert got.loc[("S1", "rd_ratio"), "shortfall"] == pytest.approx(0.007)
    assert got.loc[("S1", "tax_per_mu"), "shortfall"] == 0.0
    assert got.loc[("S2", "tax_per_mu"), "shortfall"] == pytest.approx(10.0)
    assert got.loc[("S2", "far"), "shortfall"] == 0.0
    met = {k: (None if pd.isna(v) else bool(v)) for k, v in got["met"].items()}
    assert met == {
        ("S1", "far"): False,
        ("S1", "tax_per_mu"): True,
        ("S1", "va_per_tce"): False,
        ("S1", "rd_ratio"): False,
        ("S1", "invest_per_mu"): None,
        ("S2", "far"): True,
        ("S2", "tax_per_mu"): False,
        ("S2", "rd_ratio"): True,
        ("S3", "far"): True,
        ("S3", "tax_per_mu"): None,
        ("S9", "far"): None,
    }
    assert got.loc[("S1", "invest_per_mu"), "status"] == "缺少实际数据"
    assert got.loc[("S3", "tax_per_mu"), "status"] == "缺少实际数据"
    assert got.loc[("S9", "far"), "status"] == "宗地不存在"
    assert got.loc[("S3", "far"), "due_year"] == 2021
    assert got.loc[("S2", "far"), "due_year"] == 2023

    # a year earlier S2 (due 2023) is not yet due
    early = land.standard_land_review(parcels, commitments, year=2022).set_index(
        ["parcel_id", "indicator"]
    )
    assert early.loc[("S2", "tax_per_mu"), "status"] == "未到复核期"
    assert pd.isna(early.loc[("S2", "tax_per_mu"), "met"])
    assert np.isnan(early.loc[("S2", "tax_per_mu"), "shortfall"])
    assert early.loc[("S1", "far"), "status"] == "已复核"


def test_standard_land_review_errors():
    p = pd.DataFrame({"parcel_id": ["S1"], "rd_ratio": [0.03]})
    c = pd.DataFrame({"parcel_id": ["S1"], "start_year": [2019], "commit_rd_ratio": [3.2]})
    with pytest.raises(SchemaError, match="fraction"):
        land.standard_land_review(p, c, year=2023)
    with pytest.raises(SchemaError, match="start_year"):
        land.standard_land_review(p, c.drop(columns="start_year"), year=2023)
    with pytest.raises(SchemaError, match="commit_"):
        land.standard_land_review(p, c[["parcel_id", "start_year"]], year=2023)
    with pytest.raises(SchemaError, match="repeats"):
        land.standard_land_review(pd.concat([p, p]), c.assign(commit_rd_ratio=0.03), year=2023)


# ---------------------------------------------------------------------------------------
# per-distinct-value work at scale: same results as row-by-row formulations
# ---------------------------------------------------------------------------------------
def _naive_main_industry(ent, links, digits=2):
    """Merge, groupby on (parcel, code), sort on strings: the plain pandas formulation."""
    links = links[links["status"].isin(["auto", "confirmed"])]
    e = ent.drop_duplicates("credit_code")
    e = pd.DataFrame(
        {
            "credit_code": e["credit_code"],
            "code": land._codes(e["industry_code"]).str.slice(0, digits),
            "va": pd.to_numeric(e["value_added"], errors="coerce"),
        }
    )
    df = links[["credit_code", "parcel_id"]].drop_duplicates().merge(e, on="credit_code")
    agg = (
        df[df["code"].notna()]
        .groupby(["parcel_id", "code"], as_index=False)
        .agg(n=("credit_code", "size"), va=("va", "max"))
    )
    agg["va"] = agg["va"].fillna(-np.inf)
    agg = agg.sort_values(["parcel_id", "n", "va", "code"], ascending=[True, False, False, True])
    best = agg.drop_duplicates("parcel_id")
    return dict(zip(best["parcel_id"], best["code"]))


def test_main_industry_equals_naive_reference_on_random_links():
    for seed in range(8):
        rng = np.random.default_rng(seed)
        codes = [f"C{k:02d}" for k in range(40)]
        ent = pd.DataFrame(
            {
                "credit_code": codes + ["C00"],  # a repeated code: its first row counts
                "industry_code": rng.choice(["1711", "1712", "3311", "33", None, "2614"], 41),
                "value_added": np.where(rng.random(41) < 0.3, np.nan, rng.choice([1.0, 5.0], 41)),
            }
        )
        links = pd.DataFrame(
            {
                "credit_code": rng.choice(codes + ["ZZ"], 120),
                "parcel_id": rng.choice([f"P{k:02d}" for k in range(15)], 120),
                "status": rng.choice(["auto", "confirmed", "review"], 120),
            }
        )
        got = land.main_industry(ent, links)
        assert got.index.tolist() == sorted(got.index)  # by parcel_id, as before
        assert got.to_dict() == _naive_main_industry(ent, links)
        assert len(got) >= 10


def test_codes_per_distinct_value_match_row_by_row():
    from mujun_geo import lowland

    # 3000 rows of 5 distinct values (the per-distinct path), numbers that lost a zero
    raw = pd.Series([601, "0602", None, " 508 ", "1201.0"] * 600, index=np.arange(3000) * 2)
    got = lowland._codes(raw)
    row_by_row = [lowland._codes_of(raw.iloc[[i]]).fillna("<NA>").iloc[0] for i in range(5)]
    assert got.iloc[:5].fillna("<NA>").tolist() == row_by_row
    assert row_by_row == ["0601", "0602", "<NA>", "0508", "1201"]
    assert got.index.equals(raw.index) and str(got.dtype) == str(lowland._codes_of(raw).dtype)
    pd.testing.assert_series_equal(got, lowland._codes_of(raw))


def test_joined_reasons_keep_rule_order():
    from mujun_geo import lowland

    hits = [
        ("vacant", np.array([True, False, False, True])),
        ("far_below_min", np.array([False, True, False, True])),
        ("d_grade", np.array([False, True, False, False])),
    ]
    got = lowland._joined_reasons(hits, pd.Index([7, 8, 9, 10]))
    assert got.tolist() == ["vacant", "far_below_min;d_grade", "", "vacant;far_below_min"]
    assert str(got.dtype) == "str" and got.index.tolist() == [7, 8, 9, 10]


def test_lowland_summary_counts_repeated_reason_names():
    p = pd.DataFrame(
        {
            "region_code": ["330624"] * 4,
            "area_mu": [10.0, 20.0, 30.0, 40.0],
            "lowland": [1, 1, 0, 1],
            # a reason named twice counts twice, as splitting and counting each part does
            "lowland_reasons": ["idle;idle", "vacant", None, "idle;vacant"],
        }
    )
    s = land.lowland_summary(p).set_index("level")
    # n_vacant: rows 2 and 4 -> 2; n_idle: 2 (row 1) + 1 (row 4) = 3
    assert s.loc["total", "n_vacant"] == 2 and s.loc["total", "n_idle"] == 3
    assert s.loc["total", "lowland_area_mu"] == 70.0  # 10 + 20 + 40


# ---------------------------------------------------------------------------------------
# text built once per distinct value, and only the rows needed, against row-by-row text
# ---------------------------------------------------------------------------------------
def test_joined_reasons_many_rules_equal_row_by_row():
    from mujun_geo import lowland

    rng = np.random.default_rng(4)
    for n_rules in (3, 20, 21, 25):  # one integer per parcel up to 20 rules; rows beyond
        hits = [(f"r{i}", rng.random(500) < 0.2) for i in range(n_rules)]
        got = lowland._joined_reasons(hits, pd.RangeIndex(500) * 3)
        want = [";".join(name for name, mask in hits if mask[i]) for i in range(500)]
        assert got.tolist() == want and str(got.dtype) == "str"
        assert got.index.equals(pd.RangeIndex(500) * 3)


def test_far_notes_on_unknown_industries_joined_over_rules(parcels):
    # two FAR rules (the second with a table that lacks 33): notes of both, "; "-joined
    table = land.far_minimums().query("industry_code_2017 != '33'")
    rules = [
        {"name": "far_below_min"},
        {"name": "far_strict", "kind": "far_below_min", "far_table": table},
    ]
    p = parcels.copy()
    p.loc[[2, 5], "industry_code"] = ["99", None]
    res = land.flag_lowland(p, rules=rules)
    notes = pd.Series("", index=p.index, dtype="str")
    codes = land._codes(p["industry_code"])
    for rule, tab in ((rules[0], land.far_minimums()), (rules[1], table)):
        lookup = dict(zip(tab["industry_code_2017"], tab["far_min"]))
        far_min = land._prefix_lookup(codes, lookup)
        num = p[["n_enterprises", "footprint_m2"]].astype(float)
        unknown = (num["n_enterprises"] > 0) & (num["footprint_m2"] > 0) & far_min.isna()
        unknown &= p["land_use"].eq("0601")
        text = (
            (f"{rule['name']}: industry " + codes.fillna("") + " not in FAR table")
            .where(codes.notna(), f"{rule['name']}: no industry code")
            .astype("str")
        )
        notes = notes.mask(unknown, notes.where(notes == "", notes + "; ") + text)
    pd.testing.assert_series_equal(res.parcels["lowland_notes"], notes, check_names=False)
    assert (notes.str.contains("; ")).any()


@pytest.mark.parametrize("geo", [False, True])
def test_lowland_layer_equals_flagged_rows(parcels, geo):
    p = parcels.copy()
    if geo:
        p = gpd.GeoDataFrame(p, geometry=[box(i, 0, i + 1, 1) for i in range(len(p))], crs=4549)
    res = land.flag_lowland(p)
    out = res.parcels
    flagged = out[out["lowland"] == 1]
    keep = [c for c in res.lowland.columns if c != "geometry"]
    if geo:
        want = gpd.GeoDataFrame(flagged[keep], geometry=flagged.geometry, crs=out.crs)
    else:
        want = flagged[keep].copy()
    pd.testing.assert_frame_equal(res.lowland, want, check_exact=True)
    assert type(res.lowland) is type(want) and len(want) >= 5


def _naive_lowland_summary(df, by=("region_code", "park_id")):
    df = df[df["lowland_assessed"].fillna(False).astype(bool)]
    flagged = df["lowland"].fillna(0).astype(int).eq(1)
    energy = df["energy_tce_sum"].astype(float)
    work = pd.DataFrame(
        {
            "area_mu": df["area_mu"],
            "n_lowland": flagged.astype(int),
            "lowland_area_mu": df["area_mu"].where(flagged, 0.0),
            "lowland_energy_tce": energy.where(flagged, 0.0),
            "_known": (energy.notna() & flagged).astype(int),
        }
    )
    parts = []
    for c in [*by, None]:
        keys = df[c].astype("string") if c else pd.Series("", index=df.index)
        g = work.groupby(keys, sort=True)
        res = g.sum()
        res.insert(0, "n_parcels", g.size())
        res["lowland_energy_tce"] = res["lowland_energy_tce"].where(res.pop("_known") > 0)
        res.insert(0, "key", res.index.astype("str"))
        res.insert(0, "level", c or "total")
        parts.append(res.reset_index(drop=True))
    return pd.concat(parts, ignore_index=True)


def test_lowland_summary_equals_text_groupby_reference(parcels):
    rng = np.random.default_rng(2)
    p = pd.concat([parcels] * 30, ignore_index=True)
    p["region_code"] = rng.choice(["330624", "330683", None], len(p))
    p["park_id"] = rng.choice(["K1", "K2", "K10", None], len(p))
    p["area_mu"] = rng.uniform(1, 50, len(p)).round(2)
    res = land.flag_lowland(p)
    got = land.lowland_summary(res.parcels)
    want = _naive_lowland_summary(res.parcels)
    pd.testing.assert_frame_equal(got[want.columns], want, check_exact=True)


def _naive_reasons(high, low, no_va):
    reasons = pd.Series("", index=high.index, dtype="str").mask(high, "high_energy")
    reasons = reasons.mask(low, reasons.where(reasons == "", reasons + ";") + "low_tax_per_mu")
    note = pd.Series("", index=high.index, dtype="str").mask(
        no_va, "value_added <= 0 with energy use"
    )
    return reasons, note


def test_high_energy_reasons_and_notes_equal_text_masks(firms):
    many = pd.concat([firms] * 20, ignore_index=True)
    rng = np.random.default_rng(5)
    many["tax_per_mu"] = rng.choice([1.0, 8.0, 30.0], len(many))
    many["value_added"] = rng.choice([-5.0, 0.0, 100.0, 1000.0], len(many))
    many.index = many.index * 2 + 7
    h = land.high_energy_low_efficiency(
        many, combine="or", manufacturing_only=False, min_land_mu_below_scale=None
    )
    epv = (many["energy_tce"] / many["value_added"]).where(many["value_added"] > 0)
    no_va = (many["value_added"] <= 0) & (many["energy_tce"] > 0)
    reasons, note = _naive_reasons((epv > 0.52) | no_va, many["tax_per_mu"] < 10, no_va)
    pd.testing.assert_series_equal(h["reasons"], reasons.loc[h.index], check_names=False)
    pd.testing.assert_series_equal(h["note"], note.loc[h.index], check_names=False)
    assert set(h["reasons"]) == set(land._REASONS) - {""}
