import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
from shapely import box

from mujun_geo import aggregate
from mujun_geo.units import M2_PER_MU


@pytest.fixture
def toy():
    # P1 3000 m² (4.5 亩) shared by A and B; P2 1000 m² (1.5 亩) used by B; P3 vacant 2000 m²
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": ["P1", "P2", "P3"],
            "land_use": ["0601", "0601", "0601"],
            "area_m2": [3000.0, 1000.0, 2000.0],
            "n_enterprises": [2, 1, 0],
        },
        geometry=[box(0, 0, 60, 50), box(100, 0, 120, 50), box(200, 0, 240, 50)],
        crs=4549,
    )
    matches = pd.DataFrame(
        {
            "credit_code": ["A", "B", "B", "C"],
            "parcel_id": ["P1", "P1", "P2", "P3"],
            "land_share": [1.0, 1.0, 1.0, 1.0],
            "status": [
                "auto",
                "auto",
                "confirmed",
                "review",
            ],  # C's link awaits review: not counted
            "industrial": [True, True, True, True],
        }
    )
    firms = pd.DataFrame(
        {
            "credit_code": ["A", "B", "C"],
            "name": ["甲", "乙", "丙"],
            "tax": [30.0, 12.0, 5.0],
            "value_added": [100.0, 40.0, 10.0],
            "revenue": [300.0, 200.0, 50.0],
            "energy_tce": [10.0, 10.0, 1.0],
            "electricity": [5.0, 5.0, 1.0],
            "employees": [10.0, 10.0, 1.0],
            "grade": ["A", "D", ""],
            "scale": ["above", "above", "above"],
            "sector": ["industry"] * 3,
            "region_code": ["330481", "330481", "330481"],
            "industry_code": ["1711", "3311", "1711"],
            "match_status": ["matched", "matched", "unmatched"],
            "rejected": [False, False, False],
        }
    )
    return parcels, matches, firms


def test_allocate_land_splits_shared_parcel_and_skips_review(toy):
    parcels, matches, firms = toy
    alloc = aggregate.allocate_land(matches, parcels)
    per = alloc.groupby("credit_code")["alloc_m2"].sum()
    # A: half of P1 = 1500; B: half of P1 + all of P2 = 1500 + 1000
    assert per.to_dict() == {"A": 1500.0, "B": 2500.0}
    land = aggregate.firm_land_alloc(firms, alloc)
    assert land.tolist()[:2] == [1500.0, 2500.0] and np.isnan(land.iloc[2])
    # no land is counted twice: the allocations add up to the used parcels' area
    assert alloc["alloc_m2"].sum() == pytest.approx(4000.0)


def test_parcel_figures_by_hand(toy):
    parcels, matches, firms = toy
    alloc = aggregate.allocate_land(matches, parcels)
    pf = aggregate.parcel_figures(parcels, firms, alloc)
    # P1: A's whole tax 30 + B's tax × 1500/2500 = 7.2 -> 37.2 over 4.5 亩
    assert pf.loc[0, "tax_sum"] == pytest.approx(37.2)
    assert pf.loc[0, "tax_per_mu"] == pytest.approx(37.2 / 4.5)
    # P2: B's tax × 1000/2500 = 4.8 over 1.5 亩
    assert pf.loc[1, "tax_per_mu"] == pytest.approx(4.8 / 1.5)
    assert np.isnan(pf.loc[2, "tax_per_mu"])
    # main firm of P1: A and B hold 1500 m² each; the tie goes to the worse grade (D)
    assert pf["grade"].tolist() == ["D", "D", ""]


def test_assign_parks_by_largest_overlap():
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["a", "b", "c"]},
        geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10), box(100, 100, 101, 101)],
        crs=4549,
    )
    parks = gpd.GeoDataFrame(
        {"park_id": ["K1", "K2"]}, geometry=[box(-5, -5, 7, 15), box(7, -5, 40, 15)], crs=4549
    )
    # a: 7 x 10 in K1 vs 3 x 10 in K2 -> K1; b wholly in K2; c in none
    assert aggregate.assign_parks(parcels, parks).tolist() == ["K1", "K2", None]


def test_region_figures_sum_over_sum_with_builtin_target(toy):
    parcels, matches, firms = toy
    alloc = aggregate.allocate_land(matches, parcels)
    firms["land_alloc_mu"] = aggregate.firm_land_alloc(firms, alloc) / M2_PER_MU
    regions = gpd.GeoDataFrame(
        {
            "region_code": ["330481", "330400"],
            "name": ["海宁市", "嘉兴市"],
            "level": ["county", "city"],
        },
        geometry=[box(0, 0, 1, 1)] * 2,
        crs=4549,
    )
    out = aggregate.region_figures(regions, firms, year=2022)
    # firms with land: A (1500 m² = 2.25 亩) and B (2500 m² = 3.75 亩): (30 + 12) / 6 亩 = 7.0
    assert out["tax_per_mu"].tolist() == pytest.approx([7.0, 7.0])
    assert out["va_per_mu"].iloc[0] == pytest.approx(140.0 / 6.0)
    # 嘉兴 2022 target 31 万元/亩 from the work plan; county has none
    assert np.isnan(out["tax_per_mu_target"].iloc[0])
    assert out["tax_per_mu_target"].iloc[1] == 31
    assert out["tax_gap"].iloc[1] == pytest.approx(7.0 - 31)


def test_region_growth_against_previous_year(toy):
    parcels, matches, firms = toy
    alloc = aggregate.allocate_land(matches, parcels)
    firms["land_alloc_mu"] = aggregate.firm_land_alloc(firms, alloc) / M2_PER_MU
    regions = gpd.GeoDataFrame(
        {"region_code": ["330481"], "name": ["海宁市"], "level": ["county"]},
        geometry=[box(0, 0, 1, 1)],
        crs=4549,
    )
    prev = pd.DataFrame(
        {"region_code": ["330481"], "tax_per_mu": [6.25], "va_per_mu": [23.0], "va_per_tce": [7.0]}
    )
    out = aggregate.region_figures(regions, firms, year=2022, previous=prev)
    assert out["tax_per_mu_growth"].iloc[0] == pytest.approx(7.0 / 6.25 - 1)  # +12% ≥ 8% target
    assert bool(out["tax_per_mu_growth_met"].iloc[0])
    assert not bool(out["va_per_mu_growth_met"].iloc[0])  # 23.33 / 23 - 1 = 1.4% < 6%


def test_user_targets_override_builtin():
    regions = gpd.GeoDataFrame(
        {"region_code": ["330400"], "name": ["嘉兴市"], "level": ["city"]},
        geometry=[box(0, 0, 1, 1)],
        crs=4549,
    )
    firms = pd.DataFrame(
        {
            "credit_code": ["A"],
            "scale": ["above"],
            "sector": ["industry"],
            "tax": [10.0],
            "value_added": [20.0],
            "energy_tce": [1.0],
            "land_alloc_mu": [2.0],
            "region_code": ["330481"],
        }
    )
    user = pd.DataFrame({"name": ["嘉兴市"], "year": [2022], "tax_per_mu_target": [40.0]})
    out = aggregate.region_figures(regions, firms, targets=user, year=2022)
    assert out["tax_per_mu_target"].iloc[0] == 40.0


def test_leaders_and_grade_changes():
    firms = pd.DataFrame(
        {
            "credit_code": list("ABCD"),
            "name": list("甲乙丙丁"),
            "industry_code": ["1711", "1712", "3311", "1713"],
            "tax_per_mu": [50.0, 80.0, 10.0, 80.0],
            "grade": ["A", "A", "C", ""],
        }
    )
    top = aggregate.leaders(firms, top=1)
    # industry 17: B (80) beats A (50); D is not graded; 33: C
    assert top[["group", "credit_code"]].values.tolist() == [["17", "B"], ["33", "C"]]
    prev = pd.DataFrame(
        {"credit_code": ["A", "B", "E"], "name": ["甲", "乙", "戊"], "grade": ["C", "A", "B"]}
    )
    ch = aggregate.grade_changes(firms, prev).set_index("credit_code")
    assert ch.loc["A", "change"] == 2 and ch.loc["A", "note"] == "升档"
    assert ch.loc["B", "change"] == 0
    assert ch.loc["C", "note"] == "新增企业" and ch.loc["E", "note"] == "本年无数据"
