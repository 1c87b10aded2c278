from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import pyogrio
from shapely import Polygon, box

from mujun_geo import coords, io
from mujun_geo._errors import CRSError, SchemaError
from mujun_geo._validate import Problems
from mujun_geo.creditcode import make_credit_code

NAMES = ["海宁市华丰纺织有限公司", "浙江长安机械股份有限公司", "海宁经编厂（普通合伙）"]
X0, Y0 = 40_560_000.0, 3_370_000.0  # EPSG:4528, zone-prefixed eastings near 海宁


def _write_gbk_shapefile(folder: Path, *, cpg: str | None = None) -> Path:
    gdf = gpd.GeoDataFrame(
        {
            "ZDDM": [
                "330481001002GB00001",
                "330481001002GB00002",
                "330481001002GB00003",
                "330481001002GB00003",
            ],
            "DLBM": ["0601", "601", "0508", "0601"],
            "QLR": NAMES + ["重复"],
            "ZDMJ": [10000.0, 2500.0, 1000.0, 5.0],
        },
        geometry=[
            box(X0, Y0, X0 + 100, Y0 + 100),
            box(X0 + 200, Y0, X0 + 250, Y0 + 50),
            # bow-tie: self-intersecting, two 50 m² triangles after repair
            Polygon([(X0 + 300, Y0), (X0 + 310, Y0 + 10), (X0 + 310, Y0), (X0 + 300, Y0 + 10)]),
            box(X0 + 400, Y0, X0 + 401, Y0 + 5),
        ],
        crs="EPSG:4528",
    )
    path = folder / "zd.shp"
    pyogrio.write_dataframe(gdf, path, encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    if cpg is not None:
        path.with_suffix(".cpg").write_text(cpg)
    return path


def test_gbk_shapefile_without_cpg_reads_real_chinese(tmp_path):
    path = _write_gbk_shapefile(tmp_path)
    assert not path.with_suffix(".cpg").exists()
    raw = path.with_suffix(".dbf").read_bytes()
    assert NAMES[0].encode("gbk") in raw  # really GBK bytes on disk
    enc, how = io.detect_shapefile_encoding(path)
    assert enc == "GB18030" and "bytes" in how
    problems = Problems()
    parcels = io.read_parcels(path, problems=problems)
    assert parcels["holder_name"].tolist() == NAMES
    assert parcels.crs.to_epsg() == 4528


def test_wrong_cpg_is_overruled(tmp_path):
    path = _write_gbk_shapefile(tmp_path, cpg="UTF-8")
    enc, how = io.detect_shapefile_encoding(path)
    assert enc == "GB18030" and "not UTF-8" in how
    assert io.read_parcels(path)["holder_name"].iloc[0] == NAMES[0]


def test_forced_encoding_and_fiona_engine(tmp_path):
    path = _write_gbk_shapefile(tmp_path)
    parcels = io.read_parcels(path, encoding="GBK", engine="fiona")
    assert parcels["holder_name"].tolist() == NAMES
    assert parcels["area_m2"].iloc[0] == pytest.approx(10000.0)


def test_parcel_problems_duplicate_bowtie_land_use(tmp_path):
    problems = Problems()
    parcels = io.read_parcels(_write_gbk_shapefile(tmp_path), problems=problems)
    # 4 rows in; the duplicate 宗地代码 (row 4) is rejected with a reason
    assert len(parcels) == 3
    frame = problems.frame()
    dup = frame[frame["kind"] == "duplicate_parcel_id"]
    assert dup["row"].tolist() == [4] and "first at row 3" in dup["reason"].iloc[0]
    assert dup["severity"].iloc[0] == "reject"
    # the bow-tie is repaired into two triangles of 25 m² each and reported
    assert parcels["area_m2"].iloc[2] == pytest.approx(50.0)
    assert frame.loc[frame["kind"] == "repaired_geometry", "row"].tolist() == [3]
    # DLBM 601 read as a number is padded back to the 4-digit code
    assert parcels["land_use"].tolist() == ["0601", "0601", "0508"]
    # region from the 宗地代码 prefix
    assert parcels["region_code"].unique().tolist() == ["330481"]


def test_shapefile_without_prj_needs_crs(tmp_path):
    path = _write_gbk_shapefile(tmp_path)
    path.with_suffix(".prj").unlink()
    with pytest.raises(CRSError, match=r"EPSG:4528.*--crs|--crs.*"):
        io.read_parcels(path)
    assert io.read_parcels(path, crs="EPSG:4528").crs.to_epsg() == 4528


def test_missing_required_columns_name_aliases(tmp_path):
    gdf = gpd.GeoDataFrame({"QLR": ["a"]}, geometry=[box(0, 0, 1, 1)], crs=4549)
    path = tmp_path / "p.gpkg"
    gdf.to_file(path)
    with pytest.raises(
        SchemaError, match=r"`parcel_id` \(or 宗地代码, zddm.*`land_use` \(or 地类编码"
    ):
        io.read_parcels(path)


def _firms_xlsx(tmp_path: Path) -> tuple[Path, list[str]]:
    codes = [make_credit_code("330481", i) for i in range(1, 8)]
    bad = codes[1][:-1] + ("0" if codes[1][-1] != "0" else "1")
    glon, glat = coords.wgs84_to_gcj02(120.60, 30.45)
    rows = [
        # code, name, lon, lat, 坐标系, tax, energy, 规模, 高新
        [codes[0], "甲公司", 120.60, 30.45, "WGS84", "12.5", "3", "规上", "是"],
        [bad, "乙公司", float(glon), float(glat), "GCJ02", "暂无", "0", "规下", ""],
        [codes[2], "丙公司", 30.45, 120.60, "wgs84", "-3", "-1", "规上", "否"],  # swapped lat/lon
        [codes[0], "甲公司重复", 120.60, 30.45, "WGS84", "1", "1", "规上", "否"],  # duplicate code
        [None, "无代码公司", 120.60, 30.45, "WGS84", "1", "1", "规上", "否"],
        [codes[3], "丁公司", None, None, None, "1,234.5", "2", "规下", "否"],
    ]
    df = pd.DataFrame(
        rows,
        columns=[
            "统一社会信用代码",
            "企业名称",
            "经度",
            "纬度",
            "坐标系",
            "税收（万元）",
            "综合能耗(吨标煤)",
            "企业规模",
            "高新技术企业",
        ],
    )
    path = tmp_path / "firms.xlsx"
    df.to_excel(path, index=False)
    return path, codes


def test_enterprises_xlsx_every_problem_is_reported(tmp_path):
    path, codes = _firms_xlsx(tmp_path)
    problems = Problems()
    firms = io.read_enterprises(path, target_crs="EPSG:4549", problems=problems)
    assert len(firms) == 6  # nothing vanishes: rejected rows stay, flagged
    kinds = problems.frame().groupby("kind")["row"].apply(list).to_dict()
    assert kinds["bad_checksum"] == [3]
    assert kinds["duplicate_credit_code"] == [5]
    assert kinds["missing_credit_code"] == [6]
    assert kinds["swapped_latlon"] == [4]
    assert kinds["non_numeric"] == [3]
    assert kinds["negative_tax"] == [4]
    assert kinds["negative_value"] == [4]
    assert kinds["no_coordinates"] == [7]
    assert firms["rejected"].tolist() == [False, False, False, True, True, False]
    assert np.isnan(firms["tax"].iloc[1]) and firms["tax"].iloc[5] == 1234.5
    assert np.isnan(firms["energy_tce"].iloc[2])  # negative energy → missing
    assert firms["high_tech"].tolist() == [True, False, False, False, False, False]
    assert firms["scale"].tolist()[:3] == ["above", "below", "above"]
    # GCJ-02 row converted: lands on the same spot as the WGS84 row (< 0.5 m)
    assert firms.geometry.iloc[0].distance(firms.geometry.iloc[1]) < 0.5
    # swapped row fixed to the same spot too
    assert firms.geometry.iloc[0].distance(firms.geometry.iloc[2]) < 1e-6
    assert firms.geometry.iloc[5] is None


def test_gcj02_treated_as_wgs84_lands_hundreds_of_metres_off(tmp_path):
    path, _ = _firms_xlsx(tmp_path)
    right = io.read_enterprises(path, target_crs="EPSG:4549")
    df = pd.read_excel(path, dtype=str)
    df["坐标系"] = "WGS84"
    wrong_path = tmp_path / "wrong.xlsx"
    df.to_excel(wrong_path, index=False)
    wrong = io.read_enterprises(wrong_path, target_crs="EPSG:4549")
    assert right.geometry.iloc[1].distance(wrong.geometry.iloc[1]) > 300


def test_csv_in_gb18030_and_default_coord_sys_warning(tmp_path):
    code = make_credit_code("330481", 42)
    path = tmp_path / "f.csv"
    path.write_bytes(
        f"统一社会信用代码,企业名称,经度,纬度\n{code},海宁测试厂,120.6,30.45\n".encode("gb18030")
    )
    problems = Problems()
    firms = io.read_enterprises(path, target_crs="EPSG:4549", problems=problems)
    assert firms["name"].iloc[0] == "海宁测试厂"
    assert problems.frame()["kind"].tolist() == ["coord_sys_assumed"]
    firms2 = io.read_enterprises(path, target_crs="EPSG:4549", coord_sys="gcj02")
    assert firms2["coord_sys"].iloc[0] == "gcj02"


def test_overrides_chinese_actions(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text(
        "统一社会信用代码,宗地代码,操作,备注\nA1,Z1,确认,ok\nA2,Z2,否决,\nA3,Z3,随便,\n",
        encoding="utf-8-sig",
    )
    problems = Problems()
    ov = io.read_overrides(path, problems=problems)
    assert ov["action"].tolist() == ["confirm", "reject"]
    assert problems.frame()["row"].tolist() == [4]


def test_missing_file_is_a_clear_error(tmp_path):
    from mujun_geo._errors import MujunGeoError

    with pytest.raises(MujunGeoError, match="input file not found"):
        io.read_parcels(tmp_path / "nope.shp")
