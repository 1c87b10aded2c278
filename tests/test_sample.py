"""The committed sample county (data/sample/) agrees with its own truth tables.

Nothing is regenerated here: the tests read the files the way a user would and check the
claims that data/sample/README.md makes, with plain shapely/pandas as the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import pyogrio
import shapely

from mujun_geo.coords import to_wgs84
from mujun_geo.units import M2_PER_MU

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
FILES = ["parcels.shp", "parcels.shx", "parcels.dbf", "parcels.prj", "enterprises.xlsx",
         "buildings.gpkg", "parks.geojson", "regions.geojson", "standard_land.csv",
         "overrides.csv", "README.md", "truth/enterprise_parcels.csv", "truth/cases.csv",
         "truth/lowland.csv"]  # fmt: skip
REASONS = {"vacant", "idle", "far_below_min", "coverage_below_min", "low_tax_per_mu", "stopped"}

# GB 32100-2015 check character, written out again so the test does not trust the generator
_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _check_char(code17: str) -> str:
    weights = [3**i % 31 for i in range(17)]  # 1, 3, 9, 27, 19, 26, ...
    total = sum(_CHARS.index(c) * w for c, w in zip(code17, weights))
    return _CHARS[(31 - total % 31) % 31]


def test_check_char_reference_vectors():
    # hutool's test vectors (DOMAIN §6.3): valid codes end in their own check character
    assert _check_char("91310110666007217") == "T"
    assert _check_char("91310115591693856") == "A"


@pytest.fixture(scope="module")
def parcels() -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(SAMPLE / "parcels.shp", encoding="GBK")


@pytest.fixture(scope="module")
def ent() -> pd.DataFrame:
    return pd.read_excel(SAMPLE / "enterprises.xlsx", sheet_name="企业名单", dtype=str)


@pytest.fixture(scope="module")
def links() -> pd.DataFrame:
    return pd.read_csv(SAMPLE / "truth" / "enterprise_parcels.csv", dtype=str)


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return pd.read_csv(SAMPLE / "truth" / "cases.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def buildings() -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(SAMPLE / "buildings.gpkg", layer="buildings")


def _points(ent: pd.DataFrame, codes, *, convert: bool = True) -> gpd.GeoDataFrame:
    """Firm points in EPSG:4528; swapped columns are put back (经度 is always > 纬度 here)."""
    rows = ent.drop_duplicates("统一社会信用代码").set_index("统一社会信用代码").loc[list(codes)]
    lon, lat = pd.to_numeric(rows["经度"]).values, pd.to_numeric(rows["纬度"]).values
    lon, lat = np.where(lon < lat, lat, lon), np.where(lon < lat, lon, lat)
    if convert:
        sys_ = rows["坐标系"].str.lower().str.replace("cgcs2000", "wgs84").values
        lon, lat = to_wgs84(lon, lat, sys_)
    return gpd.GeoDataFrame(index=rows.index, geometry=gpd.points_from_xy(lon, lat),
                            crs=4490).to_crs(4528)  # fmt: skip


def test_files_present_and_small():
    sizes = {f: (SAMPLE / f).stat().st_size for f in FILES}
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert all(v > 0 for v in sizes.values())
    assert total < 5_000_000


def test_shapefile_is_gbk_without_cpg(parcels):
    assert not (SAMPLE / "parcels.cpg").exists()
    raw = pyogrio.read_dataframe(SAMPLE / "parcels.shp", columns=["QLR"], read_geometry=False)
    # without the .cpg GDAL decodes the GBK bytes as Latin-1: no Chinese survives
    assert not raw["QLR"].str.contains("[\u4e00-\u9fff]", regex=True).any()
    assert parcels["QLR"].str.contains("海宁").sum() > 100
    assert parcels["DLMC"].isin(["工业用地", "物流仓储用地", "采矿用地", "商业服务业设施用地",
                                 "城镇住宅用地", "公用设施用地", "空闲地"]).all()  # fmt: skip
    assert parcels.crs.to_epsg() == 4528
    # zone-prefixed eastings: 40 500 000 ± ~100 km
    assert parcels.geometry.bounds["minx"].min() > 40_400_000
    assert parcels["ZDDM"].str.fullmatch(r"330481\d{6}GB\d{5}").all()
    assert (parcels["XZQDM"] == "330481").all()


def test_registered_area_within_half_percent(parcels):
    valid = parcels[parcels.geometry.notna()]
    area = shapely.area(shapely.make_valid(valid.geometry.values))
    rel = np.abs(valid["ZDMJ"].to_numpy() / area - 1)
    assert rel.max() <= 0.005
    mu = area / M2_PER_MU  # 亩 = m² × 3/2000
    assert 2 <= mu.min() and mu.max() <= 100


def test_truth_keys_exist(parcels, ent, links, cases):
    codes = set(ent["统一社会信用代码"])
    ids = set(parcels["ZDDM"])
    assert set(links["parcel_id"]) <= ids
    assert set(links["credit_code"]) <= codes
    assert set(cases.loc[cases["credit_code"] != "", "credit_code"]) <= codes
    stale = cases.loc[cases["case"] == "override_stale", "parcel_id"]
    assert len(stale) == 1 and stale.iloc[0] not in ids
    others = cases.loc[(cases["parcel_id"] != "") & (cases["case"] != "override_stale")]
    assert set(others["parcel_id"]) <= ids
    low = pd.read_csv(SAMPLE / "truth" / "lowland.csv", dtype=str)
    assert set(low["parcel_id"]) <= ids
    assert set(";".join(low["reasons"]).split(";")) == REASONS


def test_enterprise_headers_exact(ent):
    assert list(ent.columns) == [
        "统一社会信用代码", "企业名称", "地址", "经度", "纬度", "坐标系", "行业代码", "企业规模",
        "行业门类", "年份", "税收(万元)", "工业增加值(万元)", "营业收入(万元)", "综合能耗(吨标煤)",
        "年平均职工人数", "主要污染物排放量(吨)", "研发经费支出(万元)", "用电量(万kWh)",
        "集团母公司信用代码", "高新技术企业", "新升规未满1年", "公益性企业", "应急医疗物资",
        "农产品保供", "产业链关键环节", "残疾人集中就业", "一票否决", "加分", "减分", "出租户数",
    ]  # fmt: skip
    assert set(ent["坐标系"].dropna()) == {"WGS84", "GCJ02", "BD09", "CGCS2000"}
    # 30 % of the firms come with GCJ-02 (AMap) coordinates: 0.25 < share < 0.35
    assert 0.25 < (ent["坐标系"] == "GCJ02").mean() < 0.35


def test_overrides_and_standard_land_keys(parcels, ent):
    ov = pd.read_csv(SAMPLE / "overrides.csv", dtype=str, encoding="utf-8-sig")
    assert list(ov.columns) == ["统一社会信用代码", "宗地代码", "操作", "面积份额", "备注"]
    assert set(ov["操作"]) == {"确认", "否决", "指定"}
    assert set(ov["统一社会信用代码"]) <= set(ent["统一社会信用代码"])
    assert (~ov["宗地代码"].isin(parcels["ZDDM"])).sum() == 1  # the stale one
    std = pd.read_csv(SAMPLE / "standard_land.csv", dtype={"宗地代码": str}, encoding="utf-8-sig")
    assert set(std["宗地代码"]) == set(parcels.loc[parcels["BZD"] == "是", "ZDDM"])
    assert len(std) == 30


def test_planted_table_quirks(parcels, ent, cases):
    def keys(case):
        return cases.loc[cases["case"] == case, "credit_code"]

    counts = ent["统一社会信用代码"].value_counts()
    assert (counts[keys("duplicate_credit_code")] == 2).all()
    assert counts.drop(keys("duplicate_credit_code").tolist()).max() == 1
    bad = set(keys("bad_checksum"))
    for code in ent["统一社会信用代码"]:
        assert (_check_char(code[:17]) == code[17]) is (code not in bad), code
    dup = cases.loc[cases["case"] == "duplicate_parcel_id", "parcel_id"].iloc[0]
    assert (parcels["ZDDM"] == dup).sum() == 2
    empty = cases.loc[cases["case"] == "empty_geometry", "parcel_id"].iloc[0]
    assert parcels.loc[parcels["ZDDM"] == empty, "geometry"].isna().all()
    bow = set(cases.loc[cases["case"] == "bowtie_parcel", "parcel_id"])
    has_geom = parcels[parcels.geometry.notna()]
    assert set(has_geom.loc[~has_geom.geometry.is_valid, "ZDDM"]) == bow  # nothing else broken
    assert len(bow) == 3
    first = ent.drop_duplicates("统一社会信用代码").set_index("统一社会信用代码")
    swapped = first.loc[keys("swapped_latlon")]
    assert (pd.to_numeric(swapped["经度"]) < 40).all()  # a latitude in the longitude column
    no_xy = first.loc[keys("name_variant").tolist() + keys("holder_code_only").tolist()]
    assert no_xy["经度"].isna().all()
    assert (first.loc[keys("utility"), "公益性企业"] == "是").all()
    assert first.loc[keys("utility"), "行业代码"].str[:2].isin(["44", "45", "46"]).all()
    assert first.loc[keys("veto"), "一票否决"].notna().all()
    assert (pd.to_numeric(first.loc[keys("negative_tax"), "税收(万元)"]) < 0).all()
    assert (pd.to_numeric(first.loc[keys("zero_energy"), "综合能耗(吨标煤)"]) == 0).all()
    assert first.loc[keys("missing_emissions"), "主要污染物排放量(吨)"].isna().all()
    nb = keys("neighbour_county")
    assert nb.str[2:8].isin(["330483", "330424"]).all()


def test_converted_points_fall_in_their_true_parcel(parcels, ent, links, cases):
    truth = links.groupby("credit_code")["parcel_id"].agg(set)
    within = cases[cases["case"].isin(["bd09", "gcj02_trap", "swapped_latlon"])]
    pts = _points(ent, within["credit_code"])
    geom = parcels.drop_duplicates("ZDDM").set_index("ZDDM").geometry
    for code, pt in zip(pts.index, pts.geometry):
        # reference: one plain shapely containment test per point
        assert any(geom[z].contains(pt) for z in truth[code]), code


def test_gcj_points_read_as_wgs84_land_elsewhere(parcels, ent, cases):
    trap = cases[cases["case"] == "gcj02_trap"]
    assert len(trap) >= 30
    raw = _points(ent, trap["credit_code"], convert=False)
    geom = parcels.drop_duplicates("ZDDM").set_index("ZDDM").geometry
    for (code, pt), note in zip(zip(raw.index, raw.geometry), trap["note"]):
        wrong = note.rsplit(" ", 1)[-1]  # "... it falls in <ZDDM>"
        assert geom[wrong].contains(pt), code


def test_points_outside_are_nearest_to_their_parcel(parcels, ent, links, cases):
    out = cases[cases["case"] == "point_outside"]
    pts = _points(ent, out["credit_code"])
    usable = parcels[parcels.geometry.notna()].drop_duplicates("ZDDM")
    for (code, pt), zddm in zip(zip(pts.index, pts.geometry), out["parcel_id"]):
        d = usable.geometry.distance(pt)
        assert usable["ZDDM"].iloc[int(np.argmin(d.values))] == zddm, code
        assert 5 <= d.min() <= 30  # on the road, 5-30 m from the edge


def test_lowland_truth_against_the_data(parcels, buildings, ent, links):
    low = pd.read_csv(SAMPLE / "truth" / "lowland.csv", dtype=str).set_index("parcel_id")
    geom = parcels.drop_duplicates("ZDDM").set_index("ZDDM")
    bld = buildings.to_crs(parcels.crs)
    tax = pd.to_numeric(
        ent.drop_duplicates("统一社会信用代码").set_index("统一社会信用代码")["税收(万元)"]
    )
    for zddm, reasons in low["reasons"].items():
        reasons = set(reasons.split(";"))
        poly = geom.loc[zddm, "geometry"]
        firms = links.loc[links["parcel_id"] == zddm, "credit_code"]
        near = bld.geometry.iloc[bld.sindex.query(poly)]
        cover = shapely.union_all([poly.intersection(b) for b in near]).area if len(near) else 0.0
        cov = cover / poly.area
        if "vacant" in reasons:
            assert firms.empty and geom.loc[zddm, "DLBM"] == "0601"
        if "idle" in reasons:
            assert not firms.empty and cov == 0
        if "coverage_below_min" in reasons:
            assert 0 < cov < 0.30
        if "low_tax_per_mu" in reasons:
            mu = poly.area / M2_PER_MU
            assert mu >= 10 and tax[firms].sum() / mu < 10
