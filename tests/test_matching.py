"""Tests of mujun_geo.matching on tiny layers in EPSG:4549 whose answers are worked out by hand.

Parcels are 100 m × 100 m squares (10000 m² = 15 亩) unless stated; coordinates are offsets
from (X0, Y0) in metres.
"""

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
from shapely import Point, box

from mujun_geo._errors import ConfigError, CRSError, SchemaError
from mujun_geo.matching import apply_review, match_enterprises, review_table

CRS = "EPSG:4549"
X0, Y0 = 500_000.0, 3_350_000.0


def sq(x, y, w=100.0, h=100.0):
    return box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


def pt(x, y):
    return Point(X0 + x, Y0 + y)


def parcels(*rows, crs=CRS):
    base = {"land_use": "0601", "holder_name": None, "holder_code": None, "region_code": "330481"}
    df = pd.DataFrame([{**base, **r} for r in rows])
    return gpd.GeoDataFrame(df.drop(columns="geometry"), geometry=list(df["geometry"]), crs=crs)


def firms(*rows, crs=CRS):
    base = {"name": None, "region_code": "330481", "geometry": None}
    df = pd.DataFrame([{**base, **r} for r in rows])
    return gpd.GeoDataFrame(df.drop(columns="geometry"), geometry=list(df["geometry"]), crs=crs)


def links(res):
    """Matches indexed by (credit_code, parcel_id)."""
    return res.matches.set_index(["credit_code", "parcel_id"])


def ent(res, firms_gdf):
    """Enterprise result indexed by credit_code."""
    return res.enterprises.set_index(firms_gdf["credit_code"])


# --------------------------------------------------------------------------------------------
# the four rules


def test_credit_code_rule_and_land():
    p = parcels({"parcel_id": "P1", "geometry": sq(0, 0), "holder_code": "91330481AAA"})
    f = firms({"credit_code": " 91330481aaa "})  # cleaned: trimmed, upper case
    res = match_enterprises(f, p)
    row = res.matches.iloc[0]
    assert (row.credit_code, row.parcel_id, row.method, row.status) == (
        "91330481AAA",
        "P1",
        "credit_code",
        "auto",
    )
    assert row.confidence == 1.0
    assert np.isnan(row.distance_m)  # no coordinates
    e = res.enterprises.iloc[0]
    assert e.match_status == "matched"
    assert e.land_m2 == pytest.approx(10000.0)
    assert e.land_mu == pytest.approx(15.0)  # 10000 × 3 / 2000
    assert e.parcel_ids == "P1"
    assert list(res.enterprises.index) == list(f.index)
    assert list(res.parcels.index) == list(p.index)


def test_inputs_with_their_own_index_keep_rows_aligned():
    # the output frames carry the inputs' index; columns built by position must not align
    p = parcels(
        {"parcel_id": "P2", "geometry": sq(200, 0)},
        {"parcel_id": "P1", "geometry": sq(0, 0), "holder_code": "91330481AAA"},
    )
    f = firms(
        {"credit_code": "91330481BBB", "geometry": pt(250, 50)},
        {"credit_code": "91330481CCC"},
        {"credit_code": "91330481AAA", "geometry": pt(50, 50)},
    )
    plain = match_enterprises(f, p)
    p.index, f.index = [7, 3], [30, 10, 20]
    res = match_enterprises(f, p)
    assert res.enterprises.index.tolist() == [30, 10, 20]
    assert res.parcels.index.tolist() == [7, 3]
    assert res.enterprises["parcel_ids"].tolist() == ["P2", "", "P1"]
    assert res.enterprises["match_status"].tolist() == ["matched", "unmatched", "matched"]
    assert res.parcels["credit_codes"].tolist() == ["91330481BBB", "91330481AAA"]
    for a, b in ((plain.enterprises, res.enterprises), (plain.parcels, res.parcels)):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    pd.testing.assert_frame_equal(plain.matches, res.matches)


def test_exact_name_rule_after_normalisation():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0), "holder_name": "海宁市宏达（浙江）股份有限公司"}
    )
    f = firms({"credit_code": "A", "name": "宏达有限公司"})
    m = links(match_enterprises(f, p)).loc[("A", "P1")]
    assert (m.method, m.confidence, m.status) == ("name", 0.95, "auto")
    assert "海宁市宏达（浙江）股份有限公司" in m.evidence


def test_exact_name_never_across_known_counties():
    p = parcels(
        {
            "parcel_id": "P1",
            "geometry": sq(0, 0),
            "holder_name": "宏达有限公司",
            "region_code": "330482",
        }
    )
    f = firms({"credit_code": "A", "name": "宏达有限公司", "region_code": "330481"})
    res = match_enterprises(f, p)
    assert len(res.matches) == 0
    assert res.enterprises.iloc[0].unmatched_reason == "no coordinates and no name/code match"
    assert bool(res.parcels.iloc[0].vacant)


def test_fuzzy_name_confidence_and_counties():
    # keys differ by one character out of 13: ratio = 100 × (1 − 2/26) = 92.307…
    holder = "宏达精密纺织机械制造研究所有限公司"
    name = "宏达精密纺织机械制造研究院有限公司"
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0), "holder_name": holder},
        {"parcel_id": "P2", "geometry": sq(200, 0), "holder_name": holder, "region_code": "330482"},
    )
    f = firms({"credit_code": "A", "name": name})
    res = match_enterprises(f, p)
    assert list(res.matches["parcel_id"]) == ["P1"]  # P2 has the same holder but another county
    score = 100 * 24 / 26
    m = res.matches.iloc[0]
    assert m.method == "name"
    assert m.confidence == pytest.approx(0.6 + 0.3 * (score - 92) / (100 - 92))
    assert "92.3" in m.evidence
    # threshold above the score: no link; firm without region code: no fuzzy link either
    assert len(match_enterprises(f, p, name_threshold=93).matches) == 0
    f2 = f.assign(region_code=None)
    assert len(match_enterprises(f2, p).matches) == 0


def test_fuzzy_skips_holder_names_an_exact_link_claimed():
    # B's name is the holder's, so B takes P1 by exact name; A's name scores 92.3 against
    # it, but a holder name claimed by an exact link is not offered to fuzzy matching (an
    # exact link is the better evidence); A stays unmatched instead of sharing P1
    holder = "宏达精密纺织机械制造研究所有限公司"
    p = parcels({"parcel_id": "P1", "geometry": sq(0, 0), "holder_name": holder})
    f = firms(
        {"credit_code": "A", "name": "宏达精密纺织机械制造研究院有限公司"},
        {"credit_code": "B", "name": holder},
    )
    res = match_enterprises(f, p)
    assert links(res).index.tolist() == [("B", "P1")]
    assert links(res).loc[("B", "P1"), "method"] == "name"
    e = ent(res, f)
    assert (e.loc["A", "match_status"], e.loc["B", "match_status"]) == ("unmatched", "matched")
    # in another county the holder name is not claimed: A's fuzzy link stands there
    p2 = parcels({"parcel_id": "P2", "geometry": sq(200, 0), "holder_name": holder})
    f2 = f.assign(region_code=["330481", "330482"])
    got = links(match_enterprises(f2, p2.assign(region_code="330481")))
    assert got.index.tolist() == [("A", "P2")] and got.loc[("A", "P2"), "method"] == "name"


def test_within_confidence_by_holder():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0)},  # holder unknown
        {"parcel_id": "P2", "geometry": sq(200, 0), "holder_name": "外地某某有限公司"},
        {"parcel_id": "P3", "geometry": sq(400, 0), "holder_code": "H"},
    )
    f = firms(
        {"credit_code": "U", "name": "甲甲", "geometry": pt(50, 50)},
        {"credit_code": "V", "name": "乙乙", "geometry": pt(250, 50)},
        {"credit_code": "T", "name": "丙丙", "geometry": pt(450, 50)},
        {"credit_code": "H", "name": "丁丁"},
    )
    m = links(match_enterprises(f, p))
    assert m.loc[("U", "P1"), ["method", "confidence", "status"]].tolist() == [
        "within",
        0.9,
        "auto",
    ]
    assert m.loc[("V", "P2"), ["method", "confidence", "status"]].tolist() == [
        "within",
        0.8,
        "auto",
    ]
    assert m.loc[("T", "P3"), ["method", "confidence", "status"]].tolist() == [
        "within",
        0.8,
        "auto",
    ]
    assert "共租共用" in m.loc[("T", "P3"), "evidence"]
    assert "共租共用" not in m.loc[("V", "P2"), "evidence"]
    assert m.loc[("H", "P3"), "method"] == "credit_code"
    assert m.loc[("U", "P1"), "distance_m"] == 0.0


def test_boundary_point_is_covered_and_picked_deterministically():
    # point on the shared edge x=100: covered by both (covers, not within)
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0)},  # 10000 m²
        {"parcel_id": "P2", "geometry": sq(100, 0, 200, 100)},  # 20000 m², larger: chosen
    )
    f = firms({"credit_code": "A", "geometry": pt(100, 50)})
    m = match_enterprises(f, p).matches
    assert m[["parcel_id", "method", "distance_m"]].values.tolist() == [["P2", "within", 0.0]]
    assert "2宗地边界" in m.iloc[0].evidence
    # equal areas: the smaller parcel_id, whatever the input order
    p2 = parcels(
        {"parcel_id": "PB", "geometry": sq(0, 0)}, {"parcel_id": "PA", "geometry": sq(100, 0)}
    )
    assert match_enterprises(f, p2).matches["parcel_id"].tolist() == ["PA"]
    # industrial before a larger non-industrial parcel
    p3 = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0)},
        {"parcel_id": "P2", "geometry": sq(100, 0, 200, 100), "land_use": "0701"},
    )
    assert match_enterprises(f, p3).matches["parcel_id"].tolist() == ["P1"]


def test_nearest_within_and_beyond_max_distance():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0)},
        {"parcel_id": "R", "geometry": sq(0, 200), "land_use": "0701"},  # y 200–300, residential
    )
    f = firms(
        {"credit_code": "N1", "geometry": pt(130, 50)},  # 30 m east of P1
        {"credit_code": "N2", "geometry": pt(130, 140)},  # (30, 40) from P1's corner: 50 m
        {"credit_code": "N3", "geometry": pt(-60, 50)},  # 60 m west of P1
        {"credit_code": "N4", "geometry": pt(50, 310)},  # 10 m from R, 210 m from P1
    )
    res = match_enterprises(f, p)
    m = links(res)
    assert m.loc[("N1", "P1"), "method"] == "nearest"
    assert m.loc[("N1", "P1"), "distance_m"] == pytest.approx(30.0)
    assert m.loc[("N1", "P1"), "confidence"] == pytest.approx(0.8 - 0.3 * 30 / 50)  # 0.62
    assert m.loc[("N2", "P1"), "distance_m"] == pytest.approx(50.0)  # 3-4-5 triangle, inclusive
    assert m.loc[("N2", "P1"), "confidence"] == pytest.approx(0.5)
    assert set(res.matches["credit_code"]) == {"N1", "N2"}  # never the residential parcel R
    e = ent(res, f)
    assert e.loc["N3", "match_status"] == "unmatched"
    assert e.loc["N3", "unmatched_reason"] == "nearest industrial parcel 60.0 m away (> 50 m)"
    assert (e.loc["N3", "nearest_parcel_id"], e.loc["N3", "nearest_distance_m"]) == (
        "P1",
        pytest.approx(60.0),
    )
    assert e.loc["N4", "nearest_parcel_id"] == "P1"
    assert e.loc["N4", "nearest_distance_m"] == pytest.approx(210.0)
    assert np.isnan(e.loc["N1", "nearest_distance_m"])  # only filled for unmatched firms
    # a larger max_distance takes N3 in: 0.8 − 0.3 × 60/100 = 0.62
    m2 = links(match_enterprises(f, p, max_distance=100))
    assert m2.loc[("N3", "P1"), "confidence"] == pytest.approx(0.62)


def test_nearest_beyond_reports_decimal_distance():
    p = parcels({"parcel_id": "P1", "geometry": sq(0, 0)})
    f = firms({"credit_code": "A", "geometry": pt(220.3, 50)})
    e = match_enterprises(f, p).enterprises.iloc[0]
    assert e.unmatched_reason == "nearest industrial parcel 120.3 m away (> 50 m)"
    assert e.nearest_distance_m == pytest.approx(120.3)


def test_nearest_tie_goes_to_smaller_parcel_id():
    p = parcels(
        {"parcel_id": "PB", "geometry": sq(0, 0)}, {"parcel_id": "PA", "geometry": sq(140, 0)}
    )
    f = firms({"credit_code": "A", "geometry": pt(120, 50)})  # 20 m from both
    m = match_enterprises(f, p).matches
    assert m[["parcel_id", "distance_m"]].values.tolist() == [["PA", 20.0]]


# --------------------------------------------------------------------------------------------
# precedence, conflicts, review


def test_one_link_per_pair_keeps_most_trusted_method():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0), "holder_code": "C1"},
        {"parcel_id": "P2", "geometry": sq(200, 0)},
        {"parcel_id": "P3", "geometry": sq(400, 0), "holder_code": "C3"},
    )
    f = firms(
        {"credit_code": "C1", "geometry": pt(50, 50)},
        {"credit_code": "C3", "geometry": pt(320, 50)},  # 20 m from P2, but its code says P3
    )
    res = match_enterprises(f, p)
    m = links(res)
    assert len(res.matches) == 2
    assert m.loc[("C1", "P1"), "method"] == "credit_code"
    assert "信用代码相同" in m.loc[("C1", "P1"), "evidence"]
    assert "点位于宗地内" in m.loc[("C1", "P1"), "evidence"]
    assert m.loc[("C3", "P3"), "method"] == "credit_code"  # no nearest link to P2
    assert m.loc[("C3", "P3"), "distance_m"] == pytest.approx(80.0)  # 400 − 320
    assert bool(res.parcels.set_index(p["parcel_id"]).loc["P2", "vacant"])


def test_disagreement_goes_to_review():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0), "holder_code": "D1"},
        {"parcel_id": "P2", "geometry": sq(200, 0)},
        {"parcel_id": "P3", "geometry": sq(400, 0), "land_use": "1004"},  # road
        {"parcel_id": "P4", "geometry": sq(600, 0), "holder_code": "D2"},
    )
    f = firms(
        {"credit_code": "D1", "geometry": pt(250, 50)},  # code says P1, point in P2
        {"credit_code": "D2", "geometry": pt(450, 50)},  # code says P4, point on the road
    )
    res = match_enterprises(f, p)
    m = links(res)
    assert m.loc[("D1", "P1"), "status"] == "review"
    assert m.loc[("D1", "P2"), "status"] == "review"
    assert "规则冲突" in m.loc[("D1", "P1"), "evidence"]
    e = ent(res, f)
    assert e.loc["D1", "match_status"] == "unmatched"
    assert e.loc["D1", "unmatched_reason"] == "links awaiting review"
    assert e.loc["D1", "n_review"] == 2
    assert np.isnan(e.loc["D1", "land_m2"])
    # a point in a non-industrial parcel does not contradict the code
    assert m.loc[("D2", "P4"), "status"] == "auto"
    assert m.loc[("D2", "P3"), ["status", "industrial", "land_share"]].tolist() == [
        "auto",
        False,
        0.0,
    ]
    assert e.loc["D2", "land_m2"] == pytest.approx(10000.0)
    assert e.loc["D2", "parcel_ids"] == "P4"
    par = res.parcels.set_index(p["parcel_id"])
    assert not par.loc["P2", "vacant"]  # has a review link
    assert par.loc["P2", "n_review"] == 1
    assert res.summary()["n_review"] == 2


def test_ambiguous_and_shared_holder_names():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0), "holder_name": "宏达股份有限公司"},
        {
            "parcel_id": "P2",
            "geometry": sq(200, 0),
            "holder_name": "甲乙纺织有限公司、丙丁化纤有限公司",
        },
        {
            "parcel_id": "P3",
            "geometry": sq(400, 0),
            "holder_name": "新星有限公司",
            "holder_code": "X9",
        },
    )
    f = firms(
        {"credit_code": "F1", "name": "宏达有限公司"},
        {"credit_code": "F2", "name": "海宁宏达厂"},  # same key 宏达
        {"credit_code": "G1", "name": "甲乙纺织有限公司"},
        {"credit_code": "G2", "name": "丙丁化纤有限公司"},
        {"credit_code": "N1", "name": "新星有限公司"},  # name fits but P3's holder code is X9
    )
    res = match_enterprises(f, p, land_mode="equal")
    m = links(res)
    assert m.loc[("F1", "P1"), "status"] == "review"
    assert m.loc[("F2", "P1"), "status"] == "review"
    assert "权利人名称对应多家企业" in m.loc[("F1", "P1"), "evidence"]
    assert m.loc[("G1", "P2"), "status"] == "auto"  # 共有: two holders, one firm each
    assert m.loc[("G2", "P2"), "status"] == "auto"
    assert ent(res, f).loc["G1", "land_m2"] == pytest.approx(5000.0)  # 10000 / 2
    assert m.loc[("N1", "P3"), "status"] == "review"
    assert "信用代码不同" in m.loc[("N1", "P3"), "evidence"]


def test_non_industrial_flagged_and_vacancy():
    p = parcels(
        {"parcel_id": "P9", "geometry": sq(0, 0), "land_use": "0701"},
        {"parcel_id": "P1", "geometry": sq(300, 0)},  # industrial, nobody there
        {"parcel_id": "P2", "geometry": sq(600, 0), "land_use": "0508"},
        {"parcel_id": "P8", "geometry": sq(900, 0), "land_use": "05H1"},
    )
    f = firms(
        {"credit_code": "A", "geometry": pt(50, 50)}, {"credit_code": "B", "geometry": pt(650, 50)}
    )
    res = match_enterprises(f, p)
    m = links(res)
    assert not m.loc[("A", "P9"), "industrial"]
    assert m.loc[("B", "P2"), "industrial"]  # 0508 物流仓储 is in the default codes
    e = ent(res, f)
    assert e.loc["A", "match_status"] == "unmatched"
    assert e.loc["A", "unmatched_reason"] == "only non-industrial parcels linked: P9(land_use 0701)"
    assert e.loc["A", "nearest_parcel_id"] == "P1"
    assert e.loc["A", "nearest_distance_m"] == pytest.approx(250.0)  # x 50 → P1 edge at 300
    par = res.parcels.set_index(p["parcel_id"])
    assert par["vacant"].to_dict() == {"P9": False, "P1": True, "P2": False, "P8": False}
    assert par["n_enterprises"].to_dict() == {"P9": 0, "P1": 0, "P2": 1, "P8": 0}
    # widen the industrial codes: the residential link now counts
    res2 = match_enterprises(f, p, industrial_codes=("0601", "0701"))
    assert ent(res2, f).loc["A", "land_m2"] == pytest.approx(10000.0)


def test_rejected_and_codeless_rows():
    p = parcels({"parcel_id": "P1", "geometry": sq(0, 0), "holder_code": "A"})
    f = firms(
        {"credit_code": "A", "geometry": pt(50, 50)},
        {"credit_code": None, "name": "无码企业", "geometry": pt(60, 60)},
    )
    f["rejected"] = [True, False]
    res = match_enterprises(f, p)
    assert len(res.matches) == 0
    assert res.enterprises["match_status"].tolist() == ["rejected", "unmatched"]
    assert res.enterprises["unmatched_reason"].tolist() == [
        "rejected by validation",
        "missing credit_code",
    ]
    assert res.problems["kind"].tolist() == ["missing_code"]
    assert res.problems["row"].tolist() == [2]
    assert bool(res.parcels.iloc[0].vacant)


# --------------------------------------------------------------------------------------------
# land modes


@pytest.fixture
def shared_site():
    """A holds P1 and P2 (holder_code); B is a tenant inside P2; C alone in P3."""
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0), "holder_code": "A"},  # 10000 m²
        {"parcel_id": "P2", "geometry": sq(200, 0, 100, 200), "holder_code": "A"},  # 20000 m²
        {"parcel_id": "P3", "geometry": sq(400, 0)},  # 10000 m², holder unknown
    )
    f = firms(
        {"credit_code": "A", "name": "甲方"},
        {"credit_code": "B", "name": "乙方", "geometry": pt(250, 150)},
        {"credit_code": "C", "name": "丙方", "geometry": pt(450, 50)},
    )
    return f, p


def test_land_mode_parcel_components(shared_site):
    f, p = shared_site
    res = match_enterprises(f, p, land_mode="parcel")
    e = ent(res, f)
    # component {A, B, P1, P2}: 10000 + 20000; component {C, P3}: 10000
    assert e["land_m2"].tolist() == pytest.approx([30000.0, 30000.0, 10000.0])
    assert e["land_mu"].tolist() == pytest.approx([45.0, 45.0, 15.0])
    assert e["eval_unit"].tolist() == ["P1", "P1", "P3"]
    assert res.matches["land_share"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert "合并评价" in e.loc["B", "land_note"]
    assert e.loc["C", "land_note"] == ""
    assert res.parcels["n_enterprises"].tolist() == [1, 2, 1]
    assert res.parcels["credit_codes"].tolist() == ["A", "A;B", "C"]
    assert e.loc["A", "parcel_ids"] == "P1;P2"


def test_land_mode_holder(shared_site):
    f, p = shared_site
    res = match_enterprises(f, p, land_mode="holder")
    e = ent(res, f)
    # A keeps P1 and P2; B is a tenant (share 0, still matched); C is alone on P3
    assert e["land_m2"].tolist() == pytest.approx([30000.0, 0.0, 10000.0])
    assert e["match_status"].tolist() == ["matched"] * 3
    assert e["eval_unit"].tolist() == ["A", "B", "C"]
    assert "租赁企业" in e.loc["B", "land_note"]
    assert links(res).loc[("B", "P2"), "land_share"] == 0.0


def test_land_mode_equal(shared_site):
    f, p = shared_site
    e = ent(match_enterprises(f, p, land_mode="equal"), f)
    # A: 10000 + 20000/2; B: 20000/2; C: 10000
    assert e["land_m2"].tolist() == pytest.approx([20000.0, 10000.0, 10000.0])


def test_land_mode_floor_area(shared_site):
    f, p = shared_site
    b = gpd.GeoDataFrame(
        {"occupant_code": ["A", "B", "B", "ZZ"], "floors": [2, 2, 3, 5]},
        geometry=[
            sq(210, 10, 50, 40),  # A: 2000 m² × 2 = 4000
            sq(210, 100, 50, 20),  # B: 1000 m² × 2 = 2000
            sq(290, 150, 20, 20),  # B: straddles x=300, 10 × 20 inside × 3 = 600
            sq(210, 180, 10, 10),  # ZZ is not linked to P2: ignored
        ],
        crs=CRS,
    )
    res = match_enterprises(f, p, land_mode="floor_area", buildings=b)
    e = ent(res, f)
    # P2 shares: A 4000/6600, B 2600/6600; P1 (no occupant data) and P3 fall back to equal (1 firm)
    assert e.loc["A", "land_m2"] == pytest.approx(10000 + 20000 * 4000 / 6600)
    assert e.loc["B", "land_m2"] == pytest.approx(20000 * 2600 / 6600)
    assert e.loc["C", "land_m2"] == pytest.approx(10000.0)
    assert links(res).loc[("B", "P2"), "land_share"] == pytest.approx(2600 / 6600)
    assert "无占用楼层数据" in e.loc["A", "land_note"]
    # independent check of the clipped floor area with a per-row loop
    p2 = p.geometry.iloc[1]
    fa_b = sum(
        g.intersection(p2).area * fl
        for g, fl, c in zip(b.geometry, b.floors, b.occupant_code)
        if c == "B"
    )
    assert fa_b == pytest.approx(2600.0)


def test_floor_area_without_buildings_is_config_error(shared_site):
    f, p = shared_site
    with pytest.raises(ConfigError, match="buildings"):
        match_enterprises(f, p, land_mode="floor_area")


# --------------------------------------------------------------------------------------------
# overrides


def test_override_confirm_reject_resolve_review():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0), "holder_code": "D1"},
        {"parcel_id": "P2", "geometry": sq(200, 0)},
    )
    f = firms({"credit_code": "D1", "geometry": pt(250, 50)})
    ov = pd.DataFrame(
        {
            "credit_code": ["D1", "D1"],
            "parcel_id": ["P1", "P2"],
            "action": ["确认", "reject"],
            "note": ["checked", "geocode off"],
        }
    )
    res = match_enterprises(f, p, overrides=ov)
    m = links(res)
    assert m.loc[("D1", "P1"), ["method", "status"]].tolist() == ["credit_code", "confirmed"]
    assert m.loc[("D1", "P2"), "status"] == "rejected"
    assert m.loc[("D1", "P2"), "land_share"] == 0.0
    assert "geocode off" in m.loc[("D1", "P2"), "note"]
    e = res.enterprises.iloc[0]
    assert (e.match_status, e.land_m2, e.n_review) == ("matched", pytest.approx(10000.0), 0)
    assert len(res.problems) == 0


def test_unmatched_point_inside_industrial_parcels_names_them_at_0_m():
    # both overlapping parcels cover the point; the reviewer rejects both links, so the
    # firm ends unmatched and its nearest candidate is the covering parcel with the
    # smaller id at 0 m (not P0, 20 m away, found by a search)
    p = parcels(
        {"parcel_id": "PZ", "geometry": sq(0, 0)},
        {"parcel_id": "PY", "geometry": sq(50, 0)},
        {"parcel_id": "P0", "geometry": sq(0, 180, 100, 20)},
    )
    f = firms({"credit_code": "A", "geometry": pt(75, 50)})
    ov = pd.DataFrame(
        {"credit_code": ["A", "A"], "parcel_id": ["PZ", "PY"], "action": ["reject", "reject"]}
    )
    res = match_enterprises(f, p, overrides=ov)
    e = res.enterprises.iloc[0]
    assert e.match_status == "unmatched"
    assert (e.nearest_parcel_id, e.nearest_distance_m) == ("PY", 0.0)
    # no override: the point itself links (within), as before
    assert match_enterprises(f, p).enterprises.iloc[0].match_status == "matched"


def test_override_reject_falls_to_next_candidate():
    p = parcels(
        {"parcel_id": "PB", "geometry": sq(0, 0)}, {"parcel_id": "PA", "geometry": sq(140, 0)}
    )
    f = firms({"credit_code": "A", "geometry": pt(120, 50)})
    ov = pd.DataFrame({"credit_code": ["A"], "parcel_id": ["PA"], "action": ["reject"]})
    res = match_enterprises(f, p, overrides=ov)
    assert res.matches[["parcel_id", "status"]].values.tolist() == [
        ["PA", "rejected"],
        ["PB", "auto"],
    ]


def test_override_reject_only_link():
    p = parcels({"parcel_id": "P1", "geometry": sq(0, 0)})
    f = firms({"credit_code": "A", "geometry": pt(50, 50)})
    ov = pd.DataFrame({"credit_code": ["A"], "parcel_id": ["P1"], "action": ["否决"]})
    res = match_enterprises(f, p, overrides=ov)
    e = res.enterprises.iloc[0]
    assert (e.match_status, e.unmatched_reason) == (
        "unmatched",
        "candidate links rejected by overrides",
    )
    assert bool(res.parcels.iloc[0].vacant)


def test_override_assign_wins_and_stale_rows_reported():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0)},
        {"parcel_id": "P3", "geometry": sq(400, 0, 100, 50)},
    )
    f = firms(
        {"credit_code": "A", "geometry": pt(50, 50)}, {"credit_code": "B", "geometry": pt(20, 20)}
    )
    ov = pd.DataFrame(
        {
            "credit_code": ["A", "GONE", "A", "B", "B"],
            "parcel_id": ["P3", "P1", "P404", "P1", "P1"],
            "action": ["指定", "confirm", "confirm", "confirm", "bogus"],
            "share": [np.nan, np.nan, np.nan, 2.0, np.nan],
        }
    )
    res = match_enterprises(f, p, overrides=ov, land_mode="equal")
    m = links(res)
    assert list(m.index) == [("A", "P3"), ("B", "P1")]  # A's automatic P1 link dropped
    assert m.loc[("A", "P3"), ["method", "confidence", "status"]].tolist() == [
        "manual",
        1.0,
        "confirmed",
    ]
    assert "舍弃自动候选: P1(within)" in m.loc[("A", "P3"), "evidence"]
    assert m.loc[("B", "P1"), "status"] == "confirmed"
    e = ent(res, f)
    assert e.loc["A", "land_m2"] == pytest.approx(5000.0)  # P3 is 100 × 50
    assert e.loc["B", "land_m2"] == pytest.approx(10000.0)  # bad share (2.0) ignored
    prob = res.problems.set_index("row")
    assert prob.loc[2, "kind"] == "stale_override" and "credit_code" in prob.loc[2, "reason"]
    assert prob.loc[3, "kind"] == "stale_override" and "parcel_id" in prob.loc[3, "reason"]
    assert prob.loc[4, "kind"] == "bad_share"
    assert prob.loc[5, "kind"] == "bad_action"
    assert prob.loc[2, "key"] == "GONE/P1"
    assert set(res.problems["source"]) == {"overrides"}


def test_override_confirm_unproposed_pair_creates_manual_link():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0)}, {"parcel_id": "P2", "geometry": sq(400, 0)}
    )
    f = firms({"credit_code": "A", "geometry": pt(50, 50)})
    ov = pd.DataFrame({"credit_code": ["A"], "parcel_id": ["P2"], "action": ["confirm"]})
    m = links(match_enterprises(f, p, overrides=ov))
    assert m.loc[("A", "P2"), ["method", "status"]].tolist() == ["manual", "confirmed"]
    assert m.loc[("A", "P1"), "status"] == "auto"  # confirm does not drop other links


def test_override_share_and_share_problems(shared_site):
    f, p = shared_site
    ov = pd.DataFrame(
        {"credit_code": ["B"], "parcel_id": ["P2"], "action": ["confirm"], "share": [0.3]}
    )
    e = ent(match_enterprises(f, p, overrides=ov, land_mode="equal"), f)
    # B: 0.3 × 20000; A keeps its computed 1/2 of P2 plus P1
    assert e["land_m2"].tolist() == pytest.approx([20000.0, 6000.0, 10000.0])
    res = match_enterprises(f, p, overrides=ov.assign(share=0.7), land_mode="equal")
    assert res.problems["kind"].tolist() == ["share_sum"]  # 0.5 + 0.7 = 1.2 > 1
    assert "1.200" in res.problems["reason"].iloc[0]
    res = match_enterprises(f, p, overrides=ov, land_mode="parcel")
    assert res.problems["kind"].tolist() == ["share_ignored"]
    assert ent(res, f).loc["B", "land_m2"] == pytest.approx(30000.0)


def test_duplicate_override_last_wins():
    p = parcels({"parcel_id": "P1", "geometry": sq(0, 0)})
    f = firms({"credit_code": "A", "geometry": pt(50, 50)})
    ov = pd.DataFrame(
        {"credit_code": ["A", "A"], "parcel_id": ["P1", "P1"], "action": ["reject", "confirm"]}
    )
    res = match_enterprises(f, p, overrides=ov)
    assert res.matches["status"].tolist() == ["confirmed"]
    assert res.problems[["row", "kind"]].values.tolist() == [[1, "duplicate_override"]]


# --------------------------------------------------------------------------------------------
# review round trip, determinism, errors


def test_review_table_and_apply_review_round_trip():
    p = parcels(
        {
            "parcel_id": "P1",
            "geometry": sq(0, 0),
            "holder_code": "D1",
            "holder_name": "宏达有限公司",
        },
        {"parcel_id": "P2", "geometry": sq(200, 0)},
    )
    f = firms({"credit_code": "D1", "name": "宏达有限公司", "geometry": pt(250, 50)})
    res = match_enterprises(f, p)
    t = review_table(res, f, p)
    assert t.columns.tolist() == [
        "credit_code",
        "name",
        "parcel_id",
        "holder_name",
        "method",
        "confidence",
        "distance_m",
        "status",
        "evidence",
        "decision",
    ]
    assert t[["parcel_id", "holder_name", "method"]].values.tolist() == [
        ["P1", "宏达有限公司", "credit_code"],
        ["P2", None, "within"],
    ]
    assert t["distance_m"].tolist() == pytest.approx([150.0, 0.0])  # x 250 → P1's edge at 100
    assert t["decision"].tolist() == ["", ""]
    t["decision"] = ["确认", "否决"]
    ov = apply_review(t)
    assert ov[["credit_code", "parcel_id", "action"]].values.tolist() == [
        ["D1", "P1", "confirm"],
        ["D1", "P2", "reject"],
    ]
    res2 = match_enterprises(f, p, overrides=ov)
    assert res2.matches["status"].tolist() == ["confirmed", "rejected"]
    assert len(review_table(res2, f, p)) == 0
    t["decision"] = ["maybe", None]
    with pytest.raises(SchemaError, match="maybe"):
        apply_review(t)


@pytest.fixture
def mixed_site(shared_site):
    f, p = shared_site
    p = pd.concat(
        [
            p,
            parcels(
                {"parcel_id": "P5", "geometry": sq(600, 0), "holder_name": "宏达股份有限公司"},
                {"parcel_id": "P6", "geometry": sq(800, 0)},
            ),
        ],
        ignore_index=True,
    )
    f = pd.concat(
        [
            f,
            firms(
                {"credit_code": "D", "name": "宏达有限公司", "geometry": pt(850, 50)},
                {"credit_code": "E", "geometry": pt(730, 50)},
                {"credit_code": "G"},
            ),
        ],
        ignore_index=True,
    )
    return f, p


def test_deterministic_and_order_independent(mixed_site):
    f, p = mixed_site
    ov = pd.DataFrame({"credit_code": ["E"], "parcel_id": ["P6"], "action": ["confirm"]})
    a = match_enterprises(f, p, overrides=ov)
    b = match_enterprises(f, p, overrides=ov)
    for name in ("matches", "enterprises", "parcels", "problems"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    shuffled = match_enterprises(f.iloc[::-1], p.iloc[::-1], overrides=ov)
    pd.testing.assert_frame_equal(a.matches, shuffled.matches)
    pd.testing.assert_frame_equal(a.enterprises, shuffled.enterprises.sort_index())
    pd.testing.assert_frame_equal(a.parcels, shuffled.parcels.sort_index())
    s = a.summary()
    assert s["n_matched"] + s["n_unmatched"] + s["n_rejected"] == len(f)
    # A→P1,P2 code; B→P2, C→P3, D→P6 within; D→P5 name; E→P5 nearest (30 m), E→P6 confirmed
    assert s["links_by_method"] == {
        "credit_code": 2,
        "manual": 1,
        "name": 1,
        "nearest": 1,
        "within": 3,
    }
    assert s["n_review"] == 2  # D: name → P5, point in P6


def test_inputs_not_modified(mixed_site):
    f, p = mixed_site
    f0, p0 = f.copy(), p.copy()
    match_enterprises(f, p, land_mode="holder")
    pd.testing.assert_frame_equal(f, f0)
    pd.testing.assert_frame_equal(p, p0)


def test_crs_errors():
    p = parcels({"parcel_id": "P1", "geometry": sq(0, 0)})
    f = firms({"credit_code": "A", "geometry": pt(50, 50)})
    with pytest.raises(CRSError, match=r"EPSG:4550.*EPSG:4549.*to_crs\(parcels.crs\)"):
        match_enterprises(f.set_crs(4550, allow_override=True), p)
    with pytest.raises(CRSError, match="projected CRS"):
        match_enterprises(
            f.set_crs(4490, allow_override=True), p.set_crs(4490, allow_override=True)
        )
    with pytest.raises(CRSError, match="set_crs"):
        match_enterprises(f, p.set_crs(None, allow_override=True))
    # enterprises without any coordinates need no CRS
    nocoord = gpd.GeoDataFrame({"credit_code": ["A"]}, geometry=[None])
    assert match_enterprises(nocoord, p).enterprises["match_status"].tolist() == ["unmatched"]


def test_schema_and_option_errors():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0)}, {"parcel_id": "P1", "geometry": sq(200, 0)}
    )
    f = firms({"credit_code": "A"}, {"credit_code": "A"})
    with pytest.raises(SchemaError, match="parcel_id"):
        match_enterprises(f.iloc[:1], p)
    with pytest.raises(SchemaError, match="duplicate credit_code"):
        match_enterprises(f, p.iloc[:1])
    with pytest.raises(SchemaError, match="must be points"):
        match_enterprises(firms({"credit_code": "A", "geometry": sq(0, 0)}), p.iloc[:1])
    with pytest.raises(ConfigError, match=r"\['parcel', 'holder', 'equal', 'floor_area'\]"):
        match_enterprises(f.iloc[:1], p.iloc[:1], land_mode="share")
    with pytest.raises(ConfigError, match="sequence"):
        match_enterprises(f.iloc[:1], p.iloc[:1], industrial_codes="0601")
    with pytest.raises(TypeError):
        match_enterprises(f.iloc[:1], p.iloc[:1], 50.0)


def test_point_rules_against_brute_force_loop():
    """within and nearest agree with a plain per-row shapely loop on a random layout."""
    rng = np.random.default_rng(7)
    cells = [(i, j) for i in range(12) for j in range(12)]
    geoms = [sq(110 * i, 110 * j) for i, j in cells]  # 10 m gaps between parcels
    land = rng.choice(["0601", "0701"], size=len(cells), p=[0.7, 0.3])
    p = parcels(
        *(
            {"parcel_id": f"P{k:03d}", "geometry": g, "land_use": lu}
            for k, (g, lu) in enumerate(zip(geoms, land))
        )
    )
    xy = rng.uniform(-60, 1380, size=(400, 2))
    f = firms(*({"credit_code": f"F{k:03d}", "geometry": pt(x, y)} for k, (x, y) in enumerate(xy)))
    res = match_enterprises(f, p)
    got = res.matches.set_index("credit_code")
    ind = [(pid, g) for pid, g, lu in zip(p.parcel_id, p.geometry, p.land_use) if lu == "0601"]
    n_checked = {"within": 0, "nearest": 0, "none": 0}
    for code, point in zip(f.credit_code, f.geometry):
        cover = [pid for pid, g in zip(p.parcel_id, p.geometry) if g.covers(point)]
        if cover:
            assert got.loc[code, "parcel_id"] == cover[0] and got.loc[code, "method"] == "within"
            n_checked["within"] += 1
            continue
        d, pid = min((g.distance(point), pid) for pid, g in ind)
        if d <= 50:
            assert got.loc[code, ["parcel_id", "method"]].tolist() == [pid, "nearest"]
            assert got.loc[code, "distance_m"] == pytest.approx(d)
            n_checked["nearest"] += 1
        else:
            assert code not in got.index
            e = res.enterprises.set_index(f.credit_code).loc[code]
            assert (e.nearest_parcel_id, e.nearest_distance_m) == (pid, pytest.approx(d))
            n_checked["none"] += 1
    assert min(n_checked.values()) > 0  # every branch was exercised


def test_assign_keeps_confirmed_links_of_the_same_firm():
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0), "holder_code": "A"},
        {"parcel_id": "P2", "geometry": sq(200, 0)},
        {"parcel_id": "P3", "geometry": sq(400, 0)},
    )
    f = firms({"credit_code": "A", "geometry": pt(250, 50)})  # code P1, point P2: review
    ov = pd.DataFrame(
        {"credit_code": ["A", "A"], "parcel_id": ["P1", "P3"], "action": ["confirm", "assign"]}
    )
    res = match_enterprises(f, p, overrides=ov, land_mode="equal")
    m = links(res)
    assert list(m.index) == [("A", "P1"), ("A", "P3")]  # the review link to P2 is dropped
    assert m.loc[("A", "P1"), ["method", "status"]].tolist() == ["credit_code", "confirmed"]
    assert m.loc[("A", "P3"), ["method", "status"]].tolist() == ["manual", "confirmed"]
    assert res.enterprises.iloc[0].land_m2 == pytest.approx(20000.0)  # P1 + P3


def test_empty_layers_and_parcel_without_geometry():
    p = parcels({"parcel_id": "P1", "geometry": sq(0, 0)})
    f = firms({"credit_code": "A", "geometry": pt(150, 50)})  # 50 m east: nearest, inclusive
    res = match_enterprises(f.iloc[:0], p)
    assert len(res.enterprises) == 0 and res.parcels["vacant"].tolist() == [True]
    res = match_enterprises(f, p.iloc[:0])
    assert res.enterprises["unmatched_reason"].tolist() == ["no industrial parcel in the layer"]
    p2 = parcels(
        {"parcel_id": "P0", "geometry": None, "holder_code": "B"},
        {"parcel_id": "P1", "geometry": sq(0, 0)},
    )
    f2 = firms({"credit_code": "B"})
    res = match_enterprises(f2, p2)
    assert res.matches[["parcel_id", "method"]].values.tolist() == [["P0", "credit_code"]]
    assert res.enterprises["land_m2"].tolist() == [0.0]  # no geometry, no area
    assert res.problems[["source", "key", "kind"]].values.tolist() == [
        ["parcels", "P0", "missing_geometry"]
    ]


def test_industrial_codes_may_be_numbers_as_text():
    p = parcels({"parcel_id": "P1", "geometry": sq(0, 0), "land_use": "0701"})
    f = firms({"credit_code": "A", "geometry": pt(50, 50)})
    res = match_enterprises(f, p, industrial_codes=["0701 "])
    assert res.matches["industrial"].tolist() == [True]


def test_floor_area_mode_survives_an_invalid_footprint():
    from shapely import Polygon

    from mujun_geo._match_land import floor_area_by_occupant

    parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs=4549)
    # a bow-tie footprint: two triangles of 10 × 5 / 2 = 25 m² once repaired; 50 m² × 2 floors = 100 m²
    bowtie = Polygon([(10, 10), (20, 20), (20, 10), (10, 20)])
    b = gpd.GeoDataFrame({"occupant_code": ["A"], "floors": [2]}, geometry=[bowtie], crs=4549)
    assert floor_area_by_occupant(parcels, b)["fa"].tolist() == [100.0]


# --------------------------------------------------------------------------------------------
# fast paths of the rules equal their plain definitions


def test_point_on_one_edge_inside_another_parcel_takes_the_interior_one():
    # P1 (larger, 20000 m²) has the point (100, 50) on its right edge; P2 (x 50–150) overlaps
    # P1 and holds the point in its interior: interior beats area
    p = parcels(
        {"parcel_id": "P1", "geometry": sq(0, 0, 100, 200)},
        {"parcel_id": "P2", "geometry": sq(50, 0, 100, 100)},
        {"parcel_id": "P3", "geometry": sq(400, 0)},
    )
    f = firms(
        {"credit_code": "A", "geometry": pt(100, 50)},
        {"credit_code": "B", "geometry": pt(450, 50)},  # one candidate only
    )
    m = match_enterprises(f, p).matches
    assert m[["credit_code", "parcel_id"]].values.tolist() == [["A", "P2"], ["B", "P3"]]
    assert "2宗地边界" in m.iloc[0].evidence and "宗地边界" not in m.iloc[1].evidence


def test_covering_equals_the_parcel_tree_query():
    from shapely import points

    from mujun_geo._match_rules import ParcelIndex

    rng = np.random.default_rng(7)
    geoms = [sq(x, y, 100, 100) for x in range(0, 500, 100) for y in range(0, 300, 100)]
    geoms += [sq(50, 50, 120, 80), None]  # an overlapping parcel and one without geometry
    p = gpd.GeoDataFrame(geometry=geoms, crs=CRS)
    info = pd.DataFrame({"industrial": True, "has_geom": [g is not None for g in geoms]})
    xy = np.vstack(
        [
            rng.uniform(-50, 550, (300, 2)),
            [[100, 50], [100, 100], [0, 0], [170, 130], [600, 600]],  # edges, corners, outside
        ]
    )
    pts = points(xy + [X0, Y0])
    i, pj = ParcelIndex(p, info).covering(pts)
    # reference: the parcels' own tree queried with the points, pairs sorted the same way
    q = p.sindex.query(pts, predicate="covered_by")
    order = np.lexsort((q[1], q[0]))
    assert i.tolist() == q[0][order].tolist() and pj.tolist() == q[1][order].tolist()
    # by hand: (100, 50) lies on the edge of the two first columns and inside the overlap
    assert pj[i == 300].tolist() == [0, 3, 15]
    assert pj[i == 304].tolist() == []  # (600, 600) is outside every parcel
    assert [a.tolist() for a in ParcelIndex(p, info).covering(points(np.empty((0, 2))))] == [[], []]


def test_covering_on_holes_multipolygons_and_slanted_edges():
    # covering tests envelope pairs with intersects_xy: on shapes whose envelopes hold
    # points they do not cover, with holes, parts and points exactly on slanted edges, the
    # pairs must equal GEOS's covered_by through the parcels' own tree
    import shapely
    from shapely import MultiPolygon, Polygon, points

    from mujun_geo._match_rules import ParcelIndex

    ring = [(0, 0), (200, 0), (200, 200), (0, 200)]
    hole = [(50, 50), (150, 50), (150, 150), (50, 150)]
    shapes = [
        Polygon(ring, [hole]),  # a courtyard parcel
        Polygon([(300, 0), (400, 0), (400, 40), (340, 40), (340, 200), (300, 200)]),  # L
        Polygon([(500, 0), (560, 60), (500, 120)]),  # triangle, slanted edges
        MultiPolygon([Polygon([(600, 0), (640, 0), (640, 40)]), Polygon([(700, 0), (760, 0), (760, 60), (700, 60)])]),
        Polygon([(0, 300, 5), (100, 300, 5), (100, 400, 5), (0, 400, 5)]),  # 3D
    ]  # fmt: skip
    offset = [X0, Y0]
    geoms = shapely.transform(np.asarray(shapes, dtype=object), lambda c: c + offset)
    p = gpd.GeoDataFrame(geometry=geoms, crs=CRS)
    info = pd.DataFrame({"industrial": True, "has_geom": True}, index=p.index)
    hand = [
        (100, 100),  # in the courtyard (the hole): no parcel
        (150, 100),  # on the hole's edge: covered
        (20, 20),  # in the courtyard parcel
        (380, 150),  # inside the L's envelope, outside the L
        (320, 150),  # in the L
        (530, 30),  # on the triangle's slanted edge (x - 500 = y)
        (531, 30),  # just outside it
        (620, 10),  # in the small triangle part, (620, 30) outside it
        (620, 30),
        (730, 60),  # on the square part's top edge
        (50, 350),  # in the 3D parcel
    ]
    rng = np.random.default_rng(3)
    xy = np.vstack([hand, rng.uniform(-20, 780, (2000, 2)) * [1, 0.55]])
    # a missing and an empty point first: positions must not shift
    pts = np.concatenate([[None, shapely.Point()], points(xy + offset)])
    i, pj = ParcelIndex(p, info).covering(pts)
    q = p.sindex.query(pts, predicate="covered_by")
    order = np.lexsort((q[1], q[0]))
    assert i.tolist() == q[0][order].tolist() and pj.tolist() == q[1][order].tolist()
    got = {int(k) - 2: int(v) for k, v in zip(i, pj) if k < len(hand) + 2}
    assert got == {1: 0, 2: 0, 4: 1, 5: 2, 7: 3, 9: 3, 10: 4}
    assert len(i) > 250  # random points hit the parcels too (17 % of the area: ~330)


@pytest.mark.parametrize("threads", [1, 2])
def test_parcel_index_threads_give_the_same_pairs(monkeypatch, threads):
    # the STRtree queries run in blocks on threads above a size; force that on a small layer
    # and compare with the parcels' own tree queried in one go
    import shapely
    from shapely import points

    from mujun_geo import _match_rules as R
    from mujun_geo import buildings as bmod

    monkeypatch.setattr(R.ParcelIndex, "threads", threads)
    monkeypatch.setattr(R, "_THREAD_MIN", 1)
    monkeypatch.setattr(bmod, "_THREAD_MIN", 1)  # the pair tests split by parcel
    rng = np.random.default_rng(11)
    geoms = [sq(x, y, 90, 90) for x in range(0, 1000, 100) for y in range(0, 1000, 100)]
    if threads == 2:  # parcels the caller prepared: each is tested in one thread only
        shapely.prepare(np.asarray(geoms[::2], dtype=object))
    p = gpd.GeoDataFrame(geometry=geoms, crs=CRS)
    info = pd.DataFrame({"industrial": [k % 3 > 0 for k in range(len(geoms))], "has_geom": True})
    pts = points(rng.uniform(-100, 1100, (2000, 2)) + [X0, Y0])
    index = R.ParcelIndex(p, info)
    i, pj = index.covering(pts)
    q = p.sindex.query(pts, predicate="covered_by")
    order = np.lexsort((q[1], q[0]))
    assert i.tolist() == q[0][order].tolist() and pj.tolist() == q[1][order].tolist()
    assert len(i) > 1000  # most points lie in a parcel (81 % of the area)
    fi, pj, d = index.nearest(pts, 30.0)
    ind = np.flatnonzero(info["industrial"])
    ref = shapely.STRtree(np.asarray(geoms, dtype=object)[ind]).query_nearest(
        pts, max_distance=30.0, return_distance=True, all_matches=True
    )
    assert fi.tolist() == ref[0][0].tolist() and pj.tolist() == ind[ref[0][1]].tolist()
    assert np.array_equal(d, ref[1]) and (d <= 30.0).all() and len(d) > 100


@pytest.mark.parametrize(
    ("max_distance", "max_pairs", "pass_min"),
    # unlimited: one pass then the tree; passes down to one point (then the tree for the
    # farthest); passes stopped by the pair cap; the tree for all
    [
        (0.0, None, None),
        (7.5, None, None),
        (50.0, None, None),
        (None, None, None),
        (None, None, 1),
        (None, 40_000, 1),
        (None, 100, 1),
    ],
)
def test_parcel_index_nearest_equals_query_nearest_on_odd_shapes(
    monkeypatch, max_distance, max_pairs, pass_min
):
    # the finite-distance path pairs the points' squares with parcel envelopes and then
    # measures, skipping pairs whose envelope bound exceeds a point's best distance;
    # triangles have envelopes far larger than themselves, and points on the mid-line of
    # two parcels are exact ties
    import shapely

    from mujun_geo import _match_rules as R

    monkeypatch.setattr(R.ParcelIndex, "threads", 2)  # blocks on threads, as on large layers
    monkeypatch.setattr(R, "_THREAD_MIN", 1)
    rng = np.random.default_rng(5)
    c = rng.uniform(0, 2000, (400, 2)) + [X0, Y0]
    tri = shapely.polygons(np.stack([c, c + [60, 5], c + [5, 60]], axis=1))
    sqs = [sq(3000 + 100 * k, 0, 90, 90) for k in range(5)]
    # parcels with a hole (points in the hole are measured to its ring) and in two parts
    ctr = rng.uniform(0, 2000, (60, 2)) + [X0, Y0]
    donuts = shapely.difference(
        shapely.box(*(ctr - 40).T, *(ctr + 40).T), shapely.box(*(ctr - 20).T, *(ctr + 20).T)
    )
    pairs_ = shapely.multipolygons(
        np.stack(
            [shapely.box(*ctr.T, *(ctr + 25).T), shapely.box(*(ctr + 55).T, *(ctr + 80).T)], axis=1
        )
    )
    geoms = np.concatenate([tri, np.asarray(sqs, dtype=object), donuts[:30], pairs_[30:]])
    assert shapely.get_num_interior_rings(donuts).min() == 1
    p = gpd.GeoDataFrame(geometry=geoms, crs=CRS)
    info = pd.DataFrame({"industrial": np.arange(len(geoms)) % 4 > 0, "has_geom": True})
    info.loc[len(tri) :, "industrial"] = True
    ties = [[X0 + 3000 + 95, Y0 + 45], [X0 + 3000 + 195, Y0 + 20]]  # 5 m from two squares
    # far points: the unlimited search needs its larger squares (and the tree) for them
    far = [[X0 + 2000 + 700, Y0 + 3000], [X0 - 9000, Y0 + 9000], [X0 + 60_000, Y0 - 1000]]
    near = rng.uniform(-100, 2100, (3000, 2)) + [X0, Y0]
    pts = shapely.points(np.vstack([near, far, ties]))
    if max_pairs:
        monkeypatch.setattr(R, "_MAX_PAIRS", max_pairs)
    if pass_min:
        monkeypatch.setattr(R, "_PASS_MIN", pass_min)
        monkeypatch.setattr(R, "_MAX_RADIUS", 1e6)
    fi, pj, d = R.ParcelIndex(p, info).nearest(pts, max_distance)
    ind = np.flatnonzero(info["industrial"])
    tree = shapely.STRtree(geoms[ind])
    if max_distance == 0.0:  # query_nearest refuses 0: only parcels covering the point
        q0, q1 = tree.query(pts, predicate="intersects")
        qd = np.zeros(len(q0))
    else:
        (q0, q1), qd = tree.query_nearest(
            pts, max_distance=max_distance, return_distance=True, all_matches=True
        )
    order = np.lexsort((q1, q0))
    assert fi.tolist() == q0[order].tolist() and pj.tolist() == ind[q1[order]].tolist()
    assert np.array_equal(d, qd[order])
    n = len(pts)
    if max_distance in (7.5, 50.0):
        assert set(pj[fi == n - 2].tolist()) == {len(tri), len(tri) + 1}  # the tie keeps both
        assert len(np.unique(fi)) > 200
    if max_distance != 0.0:  # some points lie in a hole, some answers are two-part parcels
        first = len(tri) + len(sqs)
        holes = shapely.box(*(ctr[:30] - 20).T, *(ctr[:30] + 20).T)
        at = (pj >= first) & (pj < first + 30)
        assert shapely.within(pts[fi[at]], holes[pj[at] - first]).any()
        assert (pj >= first + 30).any()


def test_spatial_candidates_query_in_one_thread_and_give_the_index_its_threads_back(
    monkeypatch,
):
    # beside the name rules the spatial queries take one core; the queries after the rules
    # (the unmatched firms' nearest parcel) use the index's own threads again
    from shapely import points

    from mujun_geo import _match_rules as R

    seen = []

    def spy(real):
        def spied(*args, threads, **kwargs):
            seen.append((real.__name__, threads))
            return real(*args, threads=threads, **kwargs)

        return spied

    for name in ("_blockwise", "box_points", "_threaded", "_threaded_by_owner"):
        monkeypatch.setattr(R, name, spy(getattr(R, name)))
    monkeypatch.setattr(R.ParcelIndex, "threads", 2)
    p = gpd.GeoDataFrame(geometry=[sq(0, 0, 10, 10), sq(100, 0, 10, 10)], crs=CRS)
    info = pd.DataFrame({"pid": ["P1", "P2"], "industrial": True, "has_geom": True})
    info = info.assign(area=100.0, holder=pd.array(["甲厂", None], dtype="string"))
    firms = pd.DataFrame({"eligible": True, "has_point": True}, index=range(3))
    pts = points([[X0 + 5, Y0 + 5], [X0 + 30, Y0 + 5], [X0 + 500, Y0]])
    cand = R.spatial_candidates(R.ParcelIndex, p, info, firms, pts, 50.0)
    # covering, the 50 m and the far search, each in one thread
    assert {name for name, _ in seen} == {
        "_blockwise",
        "box_points",
        "_threaded",
        "_threaded_by_owner",
    }
    assert {threads for _, threads in seen} == {1}
    assert cand.index.threads == 2
    # point 0 lies in P1; point 1 is 20 m from P1; point 2 is 390 m from P2 (beyond 50 m)
    assert (cand.cover_fi.tolist(), cand.cover_pj.tolist()) == ([0], [0])
    assert cand.near[["fi", "pj", "d"]].values.tolist() == [[1, 0, 20.0]]
    assert cand.far[["fi", "pj", "d"]].values.tolist() == [[2, 1, 390.0]]
    fi, pj, n, holder = cand.within  # the location link of point 0, for the rules
    assert (fi.tolist(), pj.tolist(), n.tolist(), holder.to_pylist()) == ([0], [0], [1], ["甲厂"])


def test_parcel_index_nearest_skips_missing_points_and_caps_pairs(monkeypatch):
    import shapely

    from mujun_geo import _match_rules as R

    p = gpd.GeoDataFrame(geometry=[sq(k * 10, 0, 5, 5) for k in range(50)], crs=CRS)
    info = pd.DataFrame({"industrial": True, "has_geom": True}, index=range(50))
    ix = R.ParcelIndex(p, info)
    pts = np.array([None, pt(2, 300), shapely.Point(), pt(251, 2)], dtype=object)
    for limit in (None, 500.0):
        fi, pj, d = ix.nearest(pts, limit)
        # no answer for the missing and the empty point; (2, 300) is 295 m above parcel 0,
        # (251, 2) lies in parcel 25
        assert (fi.tolist(), pj.tolist(), d.tolist()) == ([1, 3], [0, 25], [295.0, 0.0])
    # a pass that meets more candidate pairs than allowed gives up (the caller uses the tree)
    many = shapely.points(np.c_[np.full(40, X0 + 250.0), np.full(40, Y0 + 2.0)])
    assert ix._within(many, 300.0, max_pairs=100) is None
    assert ix._within(many, 300.0, max_pairs=10_000)[0].tolist() == list(range(40))


def test_parcel_index_nearest_measures_only_pairs_its_envelope_bound_allows(monkeypatch):
    # the point (50, 50) lies in the triangle's envelope (bound 0) but 40 / sqrt(2) m from
    # it; the square east of it is 5 m away (bound 5); the far square's bound, 40 m, exceeds
    # the triangle's 28.3 m, so GEOS never measures it
    import shapely

    from mujun_geo import _match_rules as R

    measured = []
    real = R._threaded

    def spy(fn, *arrays, **kwargs):
        if fn is shapely.distance:
            measured.append(len(arrays[0]))
        return real(fn, *arrays, **kwargs)

    monkeypatch.setattr(R, "_threaded", spy)
    tri = shapely.Polygon([(X0, Y0), (X0 + 60, Y0), (X0, Y0 + 60)])
    p = gpd.GeoDataFrame(geometry=[tri, sq(55, 48, 10, 10), sq(90, 45, 10, 10)], crs=CRS)
    info = pd.DataFrame({"industrial": True, "has_geom": True}, index=range(3))
    fi, pj, d = R.ParcelIndex(p, info).nearest(np.array([pt(50, 50)]), 50.0)
    assert (fi.tolist(), pj.tolist(), d.tolist()) == ([0], [1], [5.0])
    assert measured == [1, 1]  # the triangle first (smallest bound), then the near square
    assert shapely.distance(pt(50, 50), tri) == pytest.approx(40 / np.sqrt(2))


def test_join_on_text_equals_pandas_merge():
    from mujun_geo._match_rules import _join_on_text

    rng = np.random.default_rng(8)
    words = np.array(["甲", "乙", "丙", "丁", "戊", "甲乙"], dtype=object)
    left = pd.DataFrame({"pj": np.arange(300), "hkey": pd.array(rng.choice(words, 300), "string")})
    right = pd.DataFrame(
        {"fi": np.arange(120), "key": pd.array(rng.choice(words[:5], 120), dtype="string")}
    )
    got, code = _join_on_text(left, "hkey", right, "key")
    want = left.merge(right, left_on="hkey", right_on="key")
    pd.testing.assert_frame_equal(got, want)
    assert len(got) > 300  # keys repeat on both sides
    assert (got["hkey"] != "甲乙").all()  # a key only on the left joins nothing
    # the code names the key: equal codes, equal keys
    assert got.groupby(code)["key"].nunique().eq(1).all()


def test_join_groups_equals_str_join():
    from mujun_geo._match_rules import join_groups

    values = pd.Series(["a", "b", "c", "d", "e", "f", "g", "h"])
    by = np.array([3, 1, 3, 2, 3, 1, 5, 3])
    out = join_groups(values, by, "; ")
    # groups in order of appearance: 1 → b, f; 2 → d; 3 → a, c, e, h; 5 → g
    assert out.to_dict() == {1: "b; f", 2: "d", 3: "a; c; e; h", 5: "g"}
    rng = np.random.default_rng(3)
    by = rng.integers(0, 40, 500)
    values = pd.Series([f"v{k}" for k in range(500)])
    expected = {int(g): ";".join(values[by == g]) for g in np.unique(by)}
    assert join_groups(values, by).to_dict() == expected
    assert join_groups(pd.Series([], dtype=object), np.array([], dtype=int)).empty


def test_split_explode_equals_split_and_explode():
    from mujun_geo._match_rules import _SEP, _split_explode

    s = pd.Series(["甲、乙", None, "丙", "丁；戊,己", "庚，", "辛"], dtype="string")
    pj, parts = _split_explode(s)
    ref = pd.DataFrame({"pj": np.arange(len(s)), "v": s.str.split(_SEP)}).explode("v")
    assert pj.tolist() == ref["pj"].tolist() == [0, 0, 1, 2, 3, 3, 3, 4, 4, 5]
    assert pd.Series(parts, dtype="string").tolist() == ref["v"].astype("string").tolist()
    assert parts[7:9].tolist() == ["庚", ""]  # a trailing separator leaves an empty part
    pj, parts = _split_explode(pd.Series(["甲", None], dtype="string"))
    assert pj.tolist() == [0, 1] and parts[0] == "甲" and pd.isna(parts[1])


def test_isin_claimed_equals_pandas_isin():
    import pyarrow as pa

    from mujun_geo._match_rules import _isin_claimed

    region = pd.Series(["330481", "330481", "330482", None], dtype="string")
    key = pd.Series(["宏达", "新星", "宏达", "宏达"], dtype="string")
    claimed = {"330481\x00宏达", "330482\x00别的"}
    joined = region + "\x00" + key
    got = _isin_claimed(region, key, pa.array(sorted(claimed)))
    assert got.tolist() == [True, False, False, False]
    assert joined.isin(claimed).fillna(False).tolist() == [True, False, False, False]
    assert not _isin_claimed(region, key, pa.array([], pa.string())).any()


def test_fuzzy_block_keeps_the_best_holders_per_firm_like_a_pairwise_loop():
    from rapidfuzz import fuzz

    from mujun_geo._match_rules import _fuzzy_block

    base = "宏达精密纺织机械制造研究所"
    fkeys = [base, base[:-1] + "院", "新星化工原料贸易", "短名"]
    hkeys = [base[:-1] + "院", base[:-1] + "室", base[1:] + "所", "新星化工原料贸易行", "短名"]
    z = _fuzzy_block(fkeys, hkeys, 92.0, "330481")
    got = {(k, h): s for k, h, s in z[["key", "hkey", "score"]].itertuples(index=False)}
    # reference: every pair scored, those >= 92 kept, then only each firm key's best ones
    pairs = {(f, h): fuzz.ratio(f, h) for f in fkeys for h in hkeys}
    kept = {fh: s for fh, s in pairs.items() if s >= 92}
    best = {f: max(s for (g, _), s in kept.items() if g == f) for f, _ in kept}
    expected = {fh: s for fh, s in kept.items() if s == best[fh[0]]}
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 1e-4 for k in got)  # float32 scores
    # by hand: base (13 characters) shares 12 in order with each of the three first holders
    # (last character changed, or first dropped and one added): 200 × 12/26 = 92.31, a tie
    assert sorted(h for f, h in got if f == base) == sorted(hkeys[:3])
    assert got[base, hkeys[0]] == pytest.approx(200 * 12 / 26, abs=1e-4)
    assert z.loc[z["key"] == base, "ties"].tolist() == [3, 3, 3]
    # "新星化工原料贸易" (8) in "…贸易行" (9): 200 × 8/17 = 94.12; "短名" equals "短名": 100
    assert got["新星化工原料贸易", hkeys[3]] == pytest.approx(200 * 8 / 17, abs=1e-4)
    assert got["短名", "短名"] == 100.0
    assert set(z["region"]) == {"330481"}


def test_sort_rows_orders_like_sort_values():
    from mujun_geo._match_rules import sort_rows

    rng = np.random.default_rng(0)
    # code-point order: "B" < "a" < "é" < "ａ" (U+FF41) < "𠀀" (U+20000); missing last
    words = np.array(
        ["甲", "乙", "a", "B", "é", "e\u0301", "", "Z9", "𠀀", "ａ", None], dtype=object
    )
    for _ in range(300):
        n = int(rng.integers(0, 40))
        df = pd.DataFrame(
            {
                "i": rng.integers(0, 4, n),
                "f": np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 3, n).astype(float)),
                "b": rng.random(n) < 0.5,
                "s": pd.Series(words[rng.integers(0, len(words), n)], dtype="str"),
                "o": pd.Series(words[rng.integers(0, len(words), n)], dtype=object),
                "t": pd.Series(words[rng.integers(0, len(words), n)], dtype="string"),
            },
            index=rng.permutation(n) + 100,
        )
        cols = list(rng.choice(list(df.columns), size=int(rng.integers(2, 5)), replace=False))
        asc = [bool(x) for x in rng.random(len(cols)) < 0.5]
        expected = df.sort_values(cols, ascending=asc).index
        assert sort_rows(df, cols, asc).index.equals(expected), (cols, asc)
    df = pd.DataFrame({"k": [1, 1, 1, 1, 1], "s": ["ａ", "B", None, "a", "𠀀"]})
    assert sort_rows(df, ["k", "s"]).index.tolist() == [1, 3, 0, 4, 2]
    assert sort_rows(df, ["k", "s"], [True, False]).index.tolist() == [4, 0, 3, 1, 2]


def test_covering_refuses_multipoints():
    import shapely

    from mujun_geo._match_rules import ParcelIndex

    p = gpd.GeoDataFrame(geometry=[sq(0, 0, 10, 10)], crs=CRS)
    info = pd.DataFrame({"industrial": [True], "has_geom": [True]})
    pts = np.array([shapely.MultiPoint([pt(1, 1), pt(2, 2)]), pt(5, 5)], dtype=object)
    with pytest.raises(ValueError, match="single points"):
        ParcelIndex(p, info).covering(pts)
