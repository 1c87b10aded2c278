"""The whole pipeline on the sample county, checked against the generator's truth tables.

``data/sample/truth/`` holds what ``scripts/make_sample.py`` planted: the true firm–parcel
links, one row per planted case with its expected outcome, and the low-efficiency reasons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mujun_geo.datasets import get_path, sample_settings
from mujun_geo.pipeline import run
from mujun_geo.units import M2_PER_MU

TRUTH = get_path("parcels").parent / "truth"


@pytest.fixture(scope="module")
def result():
    return run(sample_settings(), write=False)


@pytest.fixture(scope="module")
def cases():
    return pd.read_csv(TRUTH / "cases.csv", dtype=str)


def _counted(matches: pd.DataFrame) -> pd.DataFrame:
    return matches[
        matches["status"].isin(["auto", "confirmed"]) & matches["industrial"].astype(bool)
    ]


def _accuracy(matches: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    truth = pd.read_csv(TRUTH / "enterprise_parcels.csv", dtype=str)
    true_sets = truth.groupby("credit_code")["parcel_id"].apply(frozenset)
    # every automatic or confirmed link, industrial or not (a utility on 公用设施用地 is a right link
    # that simply does not count as evaluation land)
    auto = matches[matches["status"].isin(["auto", "confirmed"])]
    got = auto.groupby("credit_code")["parcel_id"].apply(frozenset)
    agree = sum(got.get(code) == parcels for code, parcels in true_sets.items())
    return agree / len(true_sets), truth


def test_automatic_links_agree_with_truth(result):
    matches = result.layers["matches"]
    share, truth = _accuracy(matches)
    assert share >= 0.99, share
    # no wrong link above confidence 0.9
    pairs = set(zip(truth["credit_code"], truth["parcel_id"]))
    counted = matches[matches["status"].isin(["auto", "confirmed"])]
    wrong = counted[
        [(c, p) not in pairs for c, p in zip(counted["credit_code"], counted["parcel_id"])]
    ]
    assert (wrong["confidence"] <= 0.9).all(), wrong


def test_treating_gcj02_as_wgs84_measurably_hurts(result, tmp_path):
    firms = pd.read_excel(get_path("enterprises"), dtype=str)
    firms["坐标系"] = firms["坐标系"].where(~firms["坐标系"].isin(["GCJ02", "BD09"]), "WGS84")
    wrong_path = tmp_path / "enterprises_as_wgs84.xlsx"
    firms.to_excel(wrong_path, index=False)
    settings = sample_settings()
    settings.inputs["enterprises"] = wrong_path
    bad = run(settings, write=False, until="match")
    right_share, _ = _accuracy(result.layers["matches"])
    wrong_share, _ = _accuracy(bad.layers["matches"])
    # 65 firms can only be placed by their GCJ-02/BD-09 point: at least 4 points of accuracy lost
    assert right_share - wrong_share > 0.04, (right_share, wrong_share)


def test_every_planted_case_ends_as_the_truth_says(result, cases):
    firms = pd.DataFrame(result.layers["enterprises"]).set_index("credit_code", drop=False)
    firms = firms[~firms["rejected"].astype(bool)]
    matches = result.layers["matches"]
    problems = result.layers["problems"]
    parcels = pd.DataFrame(result.layers["parcels"]).set_index("parcel_id")
    review = result.layers["review"]
    sl = result.layers["standard_land_review"]
    failures = []
    for row in cases.itertuples():
        exp, code, pid = row.expected, row.credit_code, row.parcel_id
        link = matches[(matches["credit_code"] == code) & (matches["parcel_id"] == pid)]
        firm = firms.loc[code] if isinstance(code, str) and code in firms.index else None
        kinds = set(problems.loc[problems["key"].isin([code, pid]), "kind"])
        if exp.startswith("matched:"):
            # a firm linked only to non-industrial land is "unmatched" for evaluation, with that reason
            ok = (
                firm is not None
                and (link["method"] == exp[8:]).any()
                and link["status"].isin(["auto", "confirmed"]).any()
                and (
                    firm["match_status"] == "matched"
                    or str(firm["unmatched_reason"]).startswith(
                        "only non-industrial parcels linked"
                    )
                )
            )
        elif exp == "unmatched":
            ok = firm is not None and firm["match_status"] == "unmatched"
        elif exp == "review":
            ok = code in set(review["credit_code"]) and (link["status"] == "review").any()
        elif exp == "confirmed":
            ok = (link["status"] == "confirmed").any()
        elif exp == "rejected:override":
            ok = (link["status"] == "rejected").any() or link.empty
        elif exp.startswith("rejected:"):
            kind = {"unknown_parcel_id": "stale_override"}.get(exp[9:], exp[9:])
            ok = kind in kinds
        elif exp.startswith(("flag:", "warning:")):
            ok = exp.split(":")[1] in kinds
        elif exp == "repaired_geometry":
            ok = "repaired_geometry" in kinds and pid in parcels.index
        elif exp == "swapped_latlon_fixed":
            ok = "swapped_latlon" in kinds and firm["match_status"] == "matched"
        elif exp == "grade:none(utility)":
            ok = firm["grade"] in ("", None) and "公益" in firm["grade_note"]
        elif exp == "grade:not_D":
            ok = firm["grade"] in ("A", "B", "C")
        elif exp == "grade:D(veto)":
            ok = firm["grade"] == "D" and "否决" in firm["grade_note"]
        elif exp == "eval_as:below":
            ok = firm["eval_class"] == "below"
        elif exp == "emissions:missing(mean_score)":
            ok = firm["grade"] in tuple("ABCD") and np.isfinite(firm["score_va_per_emission"])
        elif exp.startswith("lowland:"):
            ok = exp[8:] in str(parcels.loc[pid, "lowland_reasons"]).split(";")
        elif exp.startswith("standard_land:"):
            rows = sl[sl["parcel_id"] == pid]
            if exp.endswith("not_due"):
                ok = (rows["status"] == "未到复核期").all() and len(rows) > 0
            elif exp.endswith("met"):
                ok = bool(rows.loc[rows["status"] == "已复核", "met"].fillna(True).all())
            else:
                short = set(exp[exp.index("(") + 1 : -1].split(","))
                ok = set(rows.loc[rows["met"].eq(False).fillna(False), "indicator"]) == short
        elif exp == "grouped_with_parent":
            continue  # group mode is off by default; see test_group_mode
        else:
            raise AssertionError(f"unhandled expected value {exp!r}")
        if not ok:
            failures.append((row.case, code, pid, exp))
    assert not failures, failures[:10]


def test_group_mode_gives_members_the_parents_grade(cases):
    settings = sample_settings()
    settings.evaluation["preset"] = {"extends": "zhejiang-2022", "settings": {"group_mode": True}}
    res = run(settings, write=False, until="evaluate")
    firms = pd.DataFrame(res.layers["enterprises"]).set_index("credit_code")
    firms = firms[~firms["rejected"].astype(bool)]
    members = cases.loc[cases["case"] == "group_company", "credit_code"]
    for code in members:
        parent = firms.loc[code, "group_code"]
        assert firms.loc[code, "grade"] == firms.loc[parent, "grade"], code


def test_lowland_flags_exactly_the_planted_parcels(result):
    truth = pd.read_csv(TRUTH / "lowland.csv", dtype=str).set_index("parcel_id")["reasons"]
    parcels = pd.DataFrame(result.layers["parcels"]).set_index("parcel_id")
    reasons = (
        parcels["lowland_reasons"]
        .fillna("")
        .str.split(";")
        .map(lambda r: {x for x in r if x and x != "d_grade"})
    )
    flagged = reasons[reasons.map(len) > 0]
    assert set(flagged.index) == set(truth.index)
    for pid, expected in truth.items():
        assert flagged[pid] == set(expected.split(";")), pid


def test_quotas_hold_within_rounding(result):
    firms = pd.DataFrame(result.layers["enterprises"])
    graded = firms[firms["grade"].isin(list("ABCD")) & firms["rank"].notna()]
    for _, grp in graded.groupby("eval_group"):
        n = len(grp)
        if n < 20:
            continue
        share = grp["grade"].value_counts(normalize=True)
        # exemptions move a few firms from D to C and vetoes into D: allow 3 firms of slack
        slack = 3 / n + 1 / n
        assert abs(share.get("A", 0) - 0.25) <= slack
        assert abs(share.get("B", 0) - 0.50) <= slack


def test_region_figures_equal_sum_over_sum_from_the_firm_table(result):
    firms = pd.DataFrame(result.layers["enterprises"])
    scope = firms[
        (firms["scale"] == "above")
        & (firms["sector"] == "industry")
        & ~firms["rejected"].astype(bool)
        & (firms["land_alloc_m2"].fillna(0) > 0)
    ]
    tax = scope.groupby("region_code")["tax"].sum()
    land_mu = scope.groupby("region_code")["land_alloc_m2"].sum() / M2_PER_MU
    regions = pd.DataFrame(result.layers["regions"]).set_index("region_code")
    haining = "330481"
    assert regions.loc[haining, "tax_per_mu"] == pytest.approx(
        tax[haining] / land_mu[haining], rel=1e-12
    )
    # 嘉兴市 = its counties' firms; the work plan's 2022 target is 31 万元/亩
    city = scope[scope["region_code"].str[:4] == "3304"]
    assert regions.loc["330400", "tax_per_mu"] == pytest.approx(
        city["tax"].sum() / (city["land_alloc_m2"].sum() / M2_PER_MU), rel=1e-12
    )
    assert regions.loc["330400", "tax_per_mu_target"] == 31
    # land is never double counted: firms' allocated land adds up to the used parcels' area
    parcels = pd.DataFrame(result.layers["parcels"])
    used = result.layers["matches"]
    used = _counted(used)["parcel_id"].unique()
    assert firms["land_alloc_m2"].sum() == pytest.approx(
        parcels.loc[parcels["parcel_id"].isin(used), "area_m2"].sum()
    )


def test_nothing_is_lost(result):
    firms = result.layers["enterprises"]
    source = pd.read_excel(get_path("enterprises"))
    assert len(firms) == len(source)
    assert set(firms["match_status"]) <= {"matched", "unmatched", "rejected"}
    evaluated = firms["grade"].isin(list("ABCD"))
    assert (firms.loc[~evaluated, "grade_note"].fillna("") != "").all()
    import pyogrio

    n_parcels = len(
        pyogrio.read_dataframe(get_path("parcels"), read_geometry=False, encoding="GBK")
    )
    rejected_parcels = result.layers["rejects"]["source"].eq("parcels.shp").sum()
    assert len(result.layers["parcels"]) + rejected_parcels == n_parcels


def test_floor_area_beside_matching_equals_floor_area_after_grading(result, monkeypatch):
    """The pipeline clips buildings in a thread beside matching, before the grades exist, and
    redoes the ancillary caps after grading: the same parcels as clipping after grading."""
    from mujun_geo import stages

    assert stages._InMemory.background_buildings  # `result` took the thread path
    assert "buildings_background" in result.info["timings"]
    monkeypatch.setattr(stages._InMemory, "background_buildings", False)
    after = run(sample_settings(), write=False)
    assert "buildings_background" not in after.info["timings"]
    parcels = result.layers["parcels"]
    pd.testing.assert_frame_equal(parcels, after.layers["parcels"], check_exact=True)
    # the raised caps of A/B parcels of 50 亩 or more outside parks need the grades: present
    assert (parcels["ancillary_cap_land"] == 0.15).sum() > 0
    assert (parcels["ancillary_cap_land"] == 0.07).sum() > 0


def test_floor_area_thread_clips_a_copy_with_the_same_coordinates():
    # the thread clips its own geometries (prepared geometries are not thread-safe): new
    # objects, 2D and 3D parcels alike, with the same figures as the parcels themselves
    import geopandas as gpd
    import shapely

    from mujun_geo import land, stages

    parcels = gpd.GeoDataFrame(
        geometry=[
            shapely.box(0, 0, 100, 100),
            shapely.Polygon([(200, 0, 5), (300, 0, 5), (300, 80, 6), (200, 80, 6)]),
            None,
        ],
        crs=4549,
    )
    buildings = gpd.GeoDataFrame(
        {"floors": [2, 3]},
        geometry=[shapely.box(-10, 10, 40, 60), shapely.box(250, 20, 270, 40)],
        crs=4549,
    )
    seen = []

    def spy(frame, bld, **kwargs):
        seen.append(np.asarray(frame.geometry.values, dtype=object))
        return land.building_metrics(frame, bld, **kwargs)

    got, seconds = stages._floor_area_beside(spy, parcels, buildings, {})
    own, orig = seen[0], np.asarray(parcels.geometry.values, dtype=object)
    assert own[0] is not orig[0] and own[1] is not orig[1] and own[2] is None
    assert shapely.equals_identical(own[:2], orig[:2]).all() and shapely.has_z(own[1])
    pd.testing.assert_frame_equal(got, land.building_metrics(parcels, buildings))
    # 40 m × 50 m of the first building on parcel 0, two floors: 4,000 m² on 10,000 m²
    assert got["floor_area_m2"].tolist()[:2] == [4000.0, 1200.0] and seconds >= 0
