import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import shapely
from shapely import Polygon, box

from mujun_geo import aggregate
from mujun_geo.units import M2_PER_MU, m2_to_mu


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


# ---------------------------------------------------------------------------------------
# parcel figures and parks against naive references on random data
# ---------------------------------------------------------------------------------------
_SUMS = ("tax", "value_added", "revenue", "energy_tce", "electricity", "employees", "rd_expense")
_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3}


def _naive_parcel_figures(parcels, enterprises, alloc):
    """The per-column ``Series.map`` formulation (one map per figure, a sort over strings)."""
    rejected = enterprises.get("rejected", pd.Series(False, index=enterprises.index))
    firm = enterprises[~rejected.astype(bool)].drop_duplicates("credit_code")
    firm = firm.set_index("credit_code")
    a = alloc.copy()
    total = a.groupby("credit_code")["alloc_m2"].transform("sum")
    a["w"] = np.where(total > 0, a["alloc_m2"] / total.where(total > 0, 1.0), 0.0)
    for col in _SUMS:
        a[col] = (a["credit_code"].map(firm[col]) if col in firm else np.nan) * a["w"]
    sums = a.groupby("parcel_id")[list(_SUMS)].sum(min_count=1)
    out = pd.DataFrame(index=parcels.index)
    pid = parcels["parcel_id"]
    for col in _SUMS:
        out[f"{col}_sum"] = pid.map(sums[col]) if len(sums) else np.nan
    mu = m2_to_mu(parcels["area_m2"])
    out["tax_per_mu"] = out["tax_sum"] / mu.where(mu > 0)
    out["va_per_mu"] = out["value_added_sum"] / mu.where(mu > 0)
    out["revenue_per_mu"] = out["revenue_sum"] / mu.where(mu > 0)
    out["va_per_tce"] = out["value_added_sum"] / out["energy_tce_sum"].where(
        out["energy_tce_sum"] > 0
    )
    out["rd_ratio"] = out["rd_expense_sum"] / out["revenue_sum"].where(out["revenue_sum"] > 0)
    a["grade"] = a["credit_code"].map(firm["grade"]).fillna("")
    a["order"] = a["grade"].map(_ORDER).fillna(-1)
    main = a.sort_values(
        ["parcel_id", "alloc_m2", "order", "credit_code"], ascending=[True, False, False, True]
    ).drop_duplicates("parcel_id")
    out["grade"] = pid.map(main.set_index("parcel_id")["grade"]).fillna("")
    out["main_credit_code"] = pid.map(main.set_index("parcel_id")["credit_code"])
    out["main_industry"] = out["main_credit_code"].map(firm["industry_code"]).str[:2]
    return out


def _random_figures(seed: int, text: str):
    rng = np.random.default_rng(seed)
    n_firms, n_parcels, n_links = 60, 80, 150
    codes = [f"91330{k:03d}X" for k in range(n_firms)]
    firms = pd.DataFrame(
        {
            # two firms share a code (the first row counts), one code is rejected
            "credit_code": pd.Series(codes[:-2] + [codes[0], codes[-1]], dtype=text),
            "grade": pd.Series(rng.choice(["A", "B", "C", "D", ""], n_firms), dtype=text),
            "industry_code": pd.Series(
                rng.choice(["1711", "3311", "2614", None], n_firms), dtype=text
            ),
            "rejected": [False] * (n_firms - 1) + [True],
        }
    )
    for col in _SUMS:
        vals = rng.uniform(0, 500, n_firms).round(2)
        vals[rng.random(n_firms) < 0.15] = np.nan
        firms[col] = vals
    firms["employees"] = pd.array(rng.integers(0, 300, n_firms), dtype="Int64")  # not float64
    firms.loc[3, "employees"] = pd.NA
    firms = firms.drop(columns="rd_expense")  # an absent figure: NaN sums
    parcel_ids = [f"P{k:03d}" for k in range(n_parcels)]
    alloc = pd.DataFrame(
        {
            # links to unknown firms and to parcels not in the layer; a link without parcel
            "credit_code": pd.Series(rng.choice(codes + ["9199X"], n_links), dtype=text),
            "parcel_id": pd.Series(rng.choice(parcel_ids + ["Q1"], n_links), dtype=text),
            # whole numbers, so several firms tie on a parcel
            "alloc_m2": rng.choice([0.0, 500.0, 1000.0, 1500.0], n_links),
        }
    )
    alloc.loc[5, "parcel_id"] = None
    parcels = pd.DataFrame(
        {
            "parcel_id": pd.array(parcel_ids[:70] + ["P999"], dtype=text),
            "area_m2": rng.uniform(500, 9000, 71),
        },
        index=np.arange(71) * 3,
    )
    return parcels, firms, alloc


@pytest.mark.parametrize("text", ["str", object])
def test_parcel_figures_equal_naive_reference(text):
    for seed in range(5):
        parcels, firms, alloc = _random_figures(seed, text)
        got = aggregate.parcel_figures(parcels, firms, alloc)
        ref = _naive_parcel_figures(parcels, firms, alloc)
        pd.testing.assert_frame_equal(got, ref, check_exact=True)
        assert got["tax_sum"].notna().sum() >= 20 and (got["grade"] != "").sum() >= 20


def _naive_parks(parcels, parks):
    out = []
    for g in parcels.geometry:
        areas = [(g.intersection(k).area, pid) for k, pid in zip(parks.geometry, parks["park_id"])]
        areas = [(a, pid) for a, pid in areas if a > 0]
        out.append(min(areas, key=lambda t: (-t[0], t[1]))[1] if areas else None)
    return out


def test_assign_parks_equals_naive_reference():
    rng = np.random.default_rng(5)
    # parks overlap each other; K3 is a triangle; parcels inside, across edges and outside
    parks = gpd.GeoDataFrame(
        {"park_id": ["K2", "K1", "K3"]},
        geometry=[
            box(0, 0, 100, 100),
            box(60, 20, 200, 80),
            Polygon([(0, 100), (150, 250), (0, 250)]),
        ],
        crs=4549,
    )
    xy = rng.uniform(-20, 230, (200, 2))
    wh = rng.uniform(2, 40, (200, 2))
    parcels = gpd.GeoDataFrame(
        geometry=[box(x, y, x + w, y + h) for (x, y), (w, h) in zip(xy, wh)], crs=4549
    )
    got = aggregate.assign_parks(parcels, parks)
    assert got.tolist() == _naive_parks(parcels, parks)
    assert got.notna().sum() >= 50 and got.isna().sum() >= 10
    assert not shapely.is_prepared(np.asarray(parks.geometry.values)).any()


# ---------------------------------------------------------------------------------------
# firms' county from the regions layer (ingest cross-check)
# ---------------------------------------------------------------------------------------
def test_county_of_points_equals_sjoin_within_first_match():
    from shapely import Point

    from mujun_geo.pipeline import _county_of_points

    counties = gpd.GeoDataFrame(
        {"region_code": ["330102", "330103", None], "level": "county"},
        # the first two overlap on 5 <= x <= 10; the third has no code
        geometry=[box(0, 0, 10, 10), box(5, 0, 20, 10), box(30, 0, 40, 10)],
        crs=4549,
    )
    pts = gpd.GeoSeries(
        [Point(2, 2), Point(7, 5), Point(10, 5), Point(0, 5), Point(35, 5), Point(50, 50), None],
        index=[10, 11, 12, 13, 14, 15, 16],
        crs=4549,
    )
    got = _county_of_points(pts, counties)
    # (7, 5) lies in both: the first county; (10, 5) is on the first one's edge, so only
    # within the second; (0, 5) is on an outer edge: within none; (35, 5) in a county
    # without a code
    assert got.index.tolist() == pts.index.tolist()
    assert got.tolist()[:3] == ["330102", "330102", "330103"]
    assert got.iloc[3:].isna().all()
    # independent engine: geopandas.sjoin(within) on random points, first match per point
    rng = np.random.default_rng(1)
    many = gpd.GeoSeries(gpd.points_from_xy(*rng.uniform(-5, 45, (2, 300))), crs=4549)
    joined = gpd.sjoin(many.to_frame("geometry"), counties, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    pd.testing.assert_series_equal(
        _county_of_points(many, counties),
        joined["region_code"].rename("region_code"),
    )


# ---------------------------------------------------------------------------------------
# lookups on integer codes against the text formulations (sorts, groupbys, maps on text)
# ---------------------------------------------------------------------------------------
def _naive_positions(keys, values):
    first = {}
    for i, v in enumerate(values):
        first.setdefault("<NA>" if pd.isna(v) else v, i)
    return [first.get("<NA>" if pd.isna(k) else k, -1) for k in keys]


@pytest.mark.parametrize("text", ["str", object])
def test_positions_find_first_rows_and_missing_values(text):
    keys = pd.Series(["b", None, "zz", "a", "c", "b"], dtype=text)
    cases = [
        ["a", "b", "c", "d"],  # sorted: index_in
        ["c", None, "a", "b"],  # unique, unsorted: numbered with the keys
        ["c", "a", "c", None, "b", None],  # repeated values and missing ones: the first
        [],
    ]
    for values in cases:
        got = aggregate._positions(keys, pd.Index(pd.array(values, dtype=text)))
        want = _naive_positions(keys, values)
        if text is object:  # get_indexer's matching of None: only present keys compared
            want = [w if k is not None else g for k, g, w in zip(keys, got, want)]
        assert got.tolist() == want
        assert not got.flags.writeable
    # Arrow text of another storage is looked up too
    other = pd.Index(pd.array(["c", "a"], dtype="string[pyarrow]"))
    assert aggregate._positions(keys, other).tolist() == [-1, -1, -1, 1, 0, -1]


def test_lookups_are_remembered_while_their_arrays_live():
    import gc

    frame = pd.DataFrame({"k": pd.Series([f"P{i}" for i in range(50)], dtype="str")})
    keys = pd.Series(["P3", "P7", "Q"], dtype="str")
    first = aggregate._positions(keys, pd.Index(frame["k"].array))
    # a join shares the Arrow buffers: the result is found again, not computed
    joined = frame.join(pd.DataFrame({"x": np.arange(50)}))
    assert aggregate._positions(keys, pd.Index(joined["k"].array)) is first
    assert aggregate._is_unique(pd.Index(joined["k"].array))
    # the same text in other buffers is looked up anew
    copy = pd.Series(list(frame["k"]), dtype="str")
    again = aggregate._positions(keys, pd.Index(copy.array))
    assert again is not first and again.tolist() == first.tolist() == [3, 7, -1]
    n = len(aggregate._MEMO)
    del frame, joined, first, keys
    gc.collect()
    assert len(aggregate._MEMO) < n  # gone with the arrays


def _naive_allocate_land(matches, parcels):
    links = matches[matches["status"].isin(["auto", "confirmed"])]
    links = links[links["industrial"].astype(bool)]
    links = links[["credit_code", "parcel_id", "land_share"]].copy()
    links["land_share"] = links["land_share"].fillna(0.0).clip(lower=0.0)
    total = links.groupby("parcel_id")["land_share"].transform("sum")
    area = links["parcel_id"].map(parcels.set_index("parcel_id")["area_m2"])
    links["alloc_m2"] = np.where(
        total > 0, area * links["land_share"] / total.where(total > 0, 1.0), 0.0
    )
    return links.reset_index(drop=True)


def _random_links(seed: int, text):
    rng = np.random.default_rng(seed)
    codes = [f"91330{k:03d}X" for k in range(40)]
    pids = [f"P{k:03d}" for k in range(60)]
    n = 200
    matches = pd.DataFrame(
        {
            "credit_code": pd.Series(rng.choice(codes + ["9199X"], n), dtype=text),
            "parcel_id": pd.Series(rng.choice(pids + ["Q1"], n), dtype=text),
            # thirds: several firms tie on a parcel; sums of three or more in float
            "land_share": rng.choice([np.nan, -1.0, 0.0, 1 / 3, 0.1, 0.7, 1.0], n),
            "status": rng.choice(["auto", "confirmed", "review"], n),
            "industrial": rng.random(n) < 0.9,
            "alloc_m2": rng.choice([np.nan, 0.0, 500.0, 1000.0, 1000.0 / 3], n),
        }
    )
    matches.loc[[3, 17], "parcel_id"] = None
    matches.loc[[5, 9], "credit_code"] = None
    parcels = pd.DataFrame(
        {
            "parcel_id": pd.array(pids[::-1][:55] + ["P999"], dtype=text),
            "area_m2": rng.uniform(500, 9000, 56).round(1),
            "park_id": pd.array(rng.choice(["K2", "K1", "K3", None], 56), dtype=object),
        },
        index=np.arange(56) * 2,
    )
    firms = pd.DataFrame(
        {
            "credit_code": pd.array(codes[::-1] + [None], dtype=text),
            "grade": pd.array(rng.choice(["A", "B", "C", "D", "", None], 41), dtype=text),
            "match_status": rng.choice(["matched", "rejected"], 41, p=[0.9, 0.1]),
        },
        index=np.arange(41) + 100,
    )
    return matches, parcels, firms


@pytest.mark.parametrize("text", ["str", object])
def test_allocation_and_firm_land_equal_naive_reference(text):
    for seed in range(6):
        matches, parcels, firms = _random_links(seed, text)
        alloc = aggregate.allocate_land(matches.drop(columns="alloc_m2"), parcels)
        ref = _naive_allocate_land(matches.drop(columns="alloc_m2"), parcels)
        pd.testing.assert_frame_equal(alloc, ref, check_exact=True)
        for frame in (firms, pd.concat([firms, firms.iloc[[3, 7]]])):  # unique, repeated
            got = aggregate.firm_land_alloc(frame, alloc)
            per_firm = alloc.groupby("credit_code")["alloc_m2"].sum()
            want = frame["credit_code"].map(per_firm).where(frame["match_status"] != "rejected")
            pd.testing.assert_series_equal(got, want.rename("land_alloc_m2"), check_exact=True)
        assert alloc["alloc_m2"].gt(0).sum() >= 20


def _naive_firm_park(alloc, parcels):
    """The park of each firm's first link after sorting by credit code and part (text sort)."""
    firm_park = alloc.assign(
        park_id=alloc["parcel_id"].map(parcels.set_index("parcel_id")["park_id"])
    )
    return firm_park.sort_values(
        ["credit_code", "alloc_m2"], ascending=[True, False]
    ).drop_duplicates("credit_code")


@pytest.mark.parametrize("text", ["str", object])
def test_park_counts_and_firm_parks_equal_naive_reference(text):
    parks = gpd.GeoDataFrame(
        {
            "park_id": ["K3", "K1", "K2", "K9"],
            "name": list("abcd"),
            "park_type": ["dev", "hitech", "dev", "dev"],
            "star": [1, 2, 3, 4],
        },
        geometry=[box(0, 0, 10, 10)] * 4,
        crs=4549,
    )
    for seed in range(6):
        matches, parcels, firms = _random_links(seed, text)
        alloc = matches.loc[matches["status"] != "review", ["credit_code", "parcel_id", "alloc_m2"]]
        alloc = alloc.reset_index(drop=True)
        parcels = parcels.assign(land_use="0601", n_enterprises=1, tax_sum=1.0)
        parcels["value_added_sum"] = parcels["energy_tce_sum"] = 1.0
        got = aggregate.park_figures(parks, parcels, firms, alloc)
        main = _naive_firm_park(alloc, parcels)
        firm_grades = firms.drop_duplicates("credit_code").set_index("credit_code")["grade"]
        grades = main["credit_code"].map(firm_grades).fillna("").astype(str)
        counts = pd.crosstab(main["park_id"].fillna("—"), grades)
        for g in "ABCD":
            want = parks["park_id"].map(counts[g] if g in counts else {}).fillna(0).astype(int)
            assert got[f"n_{g.lower()}"].tolist() == want.tolist()
        n = parks["park_id"].map(main.groupby("park_id").size()).fillna(0).astype(int)
        assert got["n_enterprises"].tolist() == n.tolist() and n.sum() >= 5
        # the stage's firm -> park of the largest part (unique codes; repeated codes)
        for frame in (firms, pd.concat([firms, firms.iloc[[2, 5]]])):
            first = main.set_index("credit_code")["park_id"]
            want = frame["credit_code"].map(first)
            got_parks = aggregate._firm_parks(frame, alloc, parcels)
            assert got_parks.index.equals(frame.index)
            assert got_parks.fillna("-").tolist() == want.fillna("-").tolist()


def _naive_leaders(enterprises, *, by="industry", measure="tax_per_mu", top=10, park_types=None):
    graded = enterprises["grade"].fillna("").isin(list("ABCD")).to_numpy()
    used = ["credit_code", "name", measure, "grade", "industry_code"]
    e = enterprises.loc[graded, [c for c in dict.fromkeys(used) if c in enterprises]]
    e = e[e[measure].notna()].copy()
    if by == "industry":
        e["group"] = e["industry_code"].astype(str).str[:2]
    else:
        e["group"] = park_types.reindex(e.index)
        e = e[e["group"].notna()]
    e = e.sort_values(["group", measure, "credit_code"], ascending=[True, False, True])
    e["leader_rank"] = e.groupby("group").cumcount() + 1
    cols = ["group", "leader_rank", "credit_code", "name", measure, "grade"]
    out = e[e["leader_rank"] <= top][[c for c in cols if c in e]]
    return out.assign(by=by, measure=measure).reset_index(drop=True)


@pytest.mark.parametrize("text", ["str", object])
def test_leaders_equal_naive_sort(text):
    for seed in range(6):
        rng = np.random.default_rng(seed)
        n = 300
        firms = pd.DataFrame(
            {
                # repeated and missing codes; measures that tie (0 and -0 too)
                "credit_code": pd.array(
                    rng.choice([f"C{k:03d}" for k in range(250)], n), dtype=text
                ),
                "name": pd.array([f"n{k}" for k in range(n)], dtype=text),
                "tax_per_mu": rng.choice([np.nan, 0.0, -0.0, 1.5, 2.0, 7.25, 30.0], n),
                "grade": pd.array(rng.choice(["A", "B", "C", "D", "", None], n), dtype=text),
                "industry_code": pd.array(
                    rng.choice(["1711", "3311", "2614", "13"], n), dtype=text
                ),
            },
            index=rng.permutation(n) + 1000,
        )
        firms.loc[firms.index[:5], "credit_code"] = None
        if seed % 2:  # firms without an industry: no group, so no rank (float ranks)
            firms.loc[firms.index[10:20], "industry_code"] = None
        for top in (3, 10):
            got = aggregate.leaders(firms, top=top)
            pd.testing.assert_frame_equal(got, _naive_leaders(firms, top=top), check_exact=True)
        types = pd.Series(rng.choice(["dev", "hitech", None], n), index=firms.index, dtype=object)
        got = aggregate.leaders(firms, by="park_type", park_types=types)
        want = _naive_leaders(firms, by="park_type", park_types=types)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert len(want) >= 10


def test_assign_parks_tie_goes_to_the_smaller_park_id():
    # the parcel lies half in each park; the parks come in reverse order of their ids
    parks = gpd.GeoDataFrame(
        {"park_id": ["K2", "K1"]}, geometry=[box(100, 0, 200, 100), box(0, 0, 100, 100)], crs=4549
    )
    parcels = gpd.GeoDataFrame(geometry=[box(90, 10, 110, 20), box(150, 10, 160, 20)], crs=4549)
    assert aggregate.assign_parks(parcels, parks).tolist() == ["K1", "K2"]


def _naive_grade_changes(current, previous):
    cur = current.drop_duplicates("credit_code").set_index("credit_code")
    prev = previous.drop_duplicates("credit_code").set_index("credit_code")
    codes = cur.index.union(prev.index)
    out = pd.DataFrame(index=codes)
    out["name"] = cur["name"].reindex(codes).fillna(prev["name"].reindex(codes))
    out["grade_prev"] = prev["grade"].reindex(codes).fillna("")
    out["grade"] = cur["grade"].reindex(codes).fillna("")
    out["change"] = (out["grade_prev"].map(_ORDER) - out["grade"].map(_ORDER)).astype("Int64")
    change = out["change"].astype(float).to_numpy()
    out["note"] = np.select(
        [~codes.isin(prev.index), ~codes.isin(cur.index), change > 0, change < 0],
        ["新增企业", "本年无数据", "升档", "降档"],
        default="",
    )
    for col in ("tax_per_mu", "score"):
        out[f"{col}_prev"] = prev[col].reindex(codes)
        out[f"{col}_change"] = cur[col].reindex(codes) - out[f"{col}_prev"]
    out.index.name = "credit_code"
    return out.reset_index()


def test_year_over_year_changes_equal_naive_isin():
    rng = np.random.default_rng(3)

    def year(n, seed):
        r = np.random.default_rng(seed)
        return gpd.GeoDataFrame(
            {
                "credit_code": pd.Series(
                    r.choice([f"C{k:03d}" for k in range(90)], n), dtype="str"
                ),
                "parcel_id": pd.Series(r.choice([f"P{k:03d}" for k in range(90)], n), dtype="str"),
                "name": pd.Series([f"n{k}" for k in range(n)], dtype="str"),
                "grade": pd.Series(r.choice(["A", "B", "C", "D", ""], n), dtype="str"),
                "tax_per_mu": r.choice([np.nan, 1.0, 2.5], n),
                "score": r.uniform(0, 100, n),
                "far": r.choice([np.nan, 0.5, 1.2], n),
                "lowland": r.choice([0, 1], n),
                "extra": r.random(n),
            },
            geometry=[box(0, 0, 1, 1)] * n,
            crs=4549,
        )

    cur, prev = year(80, 1), year(70, 2)
    got = aggregate.grade_changes(cur, prev)
    pd.testing.assert_frame_equal(got, _naive_grade_changes(cur, prev), check_exact=True)
    got = aggregate.parcel_changes(cur, prev)
    c = cur.drop_duplicates("parcel_id").set_index("parcel_id")
    p = prev.drop_duplicates("parcel_id").set_index("parcel_id")
    ids = c.index.union(p.index)
    assert got["parcel_id"].tolist() == ids.tolist()
    new, gone = ~ids.isin(p.index), ~ids.isin(c.index)
    assert (got["note"].to_numpy()[new] == "新增宗地").all() and new.any()
    assert (got["note"].to_numpy()[gone] == "本年无此宗地").all() and gone.any()
    want = (p["grade"].reindex(ids).map(_ORDER) - c["grade"].reindex(ids).map(_ORDER)).astype(
        "Int64"
    )
    pd.testing.assert_series_equal(
        got["grade_change"], want.reset_index(drop=True), check_names=False
    )
    assert rng is not None


def test_lookups_in_threads_get_their_own_answers():
    # many threads filling and evicting the shared memo (16 entries) at once: each lookup
    # still answers for its own arrays
    from concurrent.futures import ThreadPoolExecutor

    def work(seed: int) -> bool:
        rng = np.random.default_rng(seed)
        ok = True
        for _ in range(30):
            values = [f"V{seed}-{i}" for i in rng.permutation(40)]
            keys = pd.Series([values[3], values[17], "none"], dtype="str")
            got = aggregate._positions(keys, pd.Index(pd.array(values, dtype="str")))
            ok &= got.tolist() == [3, 17, -1]
        return ok

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(32)))
    assert len(aggregate._MEMO) <= aggregate._MEMO_SIZE
