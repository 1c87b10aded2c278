from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import pyogrio
from shapely import Polygon, box

import mujun_geo._io_base as io_base
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


# --------------------------------------------------------------------------------------------
# vectorised cleaning equals the row-by-row definitions

_WS = "".join(c for c in map(chr, range(0x3001)) if c.isspace())  # what str.strip removes
TEXTS = [
    " 甲公司 ", "\u3000乙\u3000", "\xa0丙\x1c", "\u2028丁\u2029", "ＡＢＣ（海宁）", "ﬁ①Å", "NaN",
    "N/A", "—", "无", "暂无", "  ", "", "None", "null", "-", "1711.0", "  12,345.50 ", "abc",
    _WS + "戊" + _WS, "e\u0301", None,
]  # fmt: skip


def _old_text(series, *, fold=False):
    import unicodedata

    s = series.astype(object).where(series.notna(), None)
    norm = (
        (lambda v: unicodedata.normalize("NFKC", str(v)).strip())
        if fold
        else (lambda v: str(v).strip())
    )
    s = s.map(lambda v: None if v is None else norm(v))
    return s.where(~s.fillna("").str.lower().isin(io_base._MISSING_MARKS), None)


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize(
    "series",
    [
        pd.Series(TEXTS, dtype="str"),
        pd.Series(TEXTS, dtype=object),  # CSV columns with blanks come back as object
        pd.Series([None, None], dtype="str"),
        pd.Series([], dtype="str"),
        pd.Series([1711, 26]),
        pd.Series([1.5, np.nan]),
        pd.Series(["甲", 3, None], dtype=object),
    ],
)
def test_text_equals_the_row_by_row_definition(series, fold):
    pd.testing.assert_series_equal(io_base._text(series, fold=fold), _old_text(series, fold=fold))


def test_text_by_hand():
    out = io_base._text(pd.Series(TEXTS, dtype="str"), fold=True).tolist()
    assert out[:5] == ["甲公司", "乙", "丙", "丁", "ABC(海宁)"]
    assert out[5] == "fi1Å" and out[19] == "戊" and out[20] == "é"
    assert all(pd.isna(v) for v in out[6:16])  # missing markers, blanks
    assert out[16:19] == ["1711.0", "12,345.50", "abc"]


def _old_numbers(frame, cols, problems):
    for col in cols:
        raw = frame[col].astype(object)
        text = raw.map(lambda v: None if pd.isna(v) else str(v).strip().replace(",", ""))
        nums = pd.to_numeric(text, errors="coerce")
        bad = text.notna() & (text != "") & nums.isna()
        if bad.any():
            problems.add(
                "f",
                frame.loc[bad, "src_row"],
                frame.loc[bad, "k"],
                "non_numeric",
                [f"`{col}` value {v!r} is not a number; treated as missing" for v in text[bad]],
            )
        frame[col] = nums.astype(float)
    return frame


def test_numbers_equal_the_row_by_row_definition():
    rng = np.random.default_rng(1)
    floats = rng.standard_normal(40) * 10.0 ** rng.integers(-8, 12, 40)
    text = [" 1,234.5 ", "12", "-0.0", "1e5", "abc", "", None, " ", "\u30007\u3000", "1,2,3"]
    frame = pd.DataFrame(
        {
            "src_row": np.arange(50),
            "k": [f"K{i}" for i in range(50)],
            "s": pd.Series(text * 5, dtype="str"),
            "o": pd.Series(text * 5, dtype=object),
            "f": np.append(floats, [np.nan, 0.1, 1 / 3, -0.0, 1e300, 5e-324, 2.0, 3, 4, 5]),
            "i": np.arange(50) * 7,
            "b": [True, False] * 25,
        }
    )
    cols = ["s", "o", "f", "i", "b"]
    p_new, p_old = Problems(), Problems()
    new = io_base._numbers(frame.copy(), cols, source="f", problems=p_new, key="k")
    old = _old_numbers(frame.copy(), cols, p_old)
    pd.testing.assert_frame_equal(new, old)
    pd.testing.assert_frame_equal(p_new.frame(), p_old.frame())
    # by hand: " 1,234.5 " → 1234.5; "-0.0" keeps its sign; blanks and None are missing;
    # "\u30007\u3000" → 7 (ideographic spaces stripped); "1,2,3" → "123" → 123
    expected = [1234.5, 12.0, -0.0, 1e5, np.nan, np.nan, np.nan, np.nan, 7.0, 123.0]
    np.testing.assert_array_equal(new["s"].to_numpy()[:10], expected)
    assert np.signbit(new["s"].iloc[2])
    # "abc" (5 times in `s` and in `o`) and the booleans (str(True) is not a number) reported
    kinds = p_new.frame()
    assert len(kinds) == 5 + 5 + 50 and set(kinds["kind"]) == {"non_numeric"}
    np.testing.assert_array_equal(new["f"].to_numpy(), frame["f"].to_numpy())


def _old_flags(frame, cols, problems):
    for col in cols:
        text = frame[col].map(lambda v: "" if pd.isna(v) else str(v).strip().lower())
        text = text.str.replace(r"\.0+$", "", regex=True)
        bad = ~text.isin(io_base._TRUE | io_base._FALSE)
        if bad.any():
            problems.add(
                "f",
                frame.loc[bad, "src_row"],
                frame.loc[bad, "k"],
                "bad_flag",
                [f"`{col}` value {v!r} is not 是/否; read as 否" for v in text[bad]],
            )
        frame[col] = text.isin(io_base._TRUE)
    return frame


def test_flags_equal_the_row_by_row_definition():
    values = ["是", " 否 ", "Y", "TRUE", "1.0", "0", None, "", "İ", "ΣΑΣ", "ß", "maybe", "有", "√"]
    frame = pd.DataFrame(
        {
            "src_row": np.arange(len(values)),
            "k": [f"K{i}" for i in range(len(values))],
            "s": pd.Series(values, dtype="str"),
            "o": pd.Series(values, dtype=object),
            "n": [1, 0] * (len(values) // 2),
        }
    )
    p_new, p_old = Problems(), Problems()
    new = io_base._flags(frame.copy(), ["s", "o", "n"], source="f", problems=p_new, key="k")
    old = _old_flags(frame.copy(), ["s", "o", "n"], p_old)
    pd.testing.assert_frame_equal(new, old)
    pd.testing.assert_frame_equal(p_new.frame(), p_old.frame())
    # by hand: 是, Y, TRUE, 1.0 → "1", 有, √ are true; "İ", "ΣΑΣ", "ß", "maybe" are bad
    assert new["s"].tolist() == [True, False, True, True, True, False, False, False,
                                 False, False, False, False, True, True]  # fmt: skip
    assert p_new.frame()["reason"].str.contains("'σας'").sum() == 2  # Python's final sigma


def test_map_text_equals_series_map():
    f = lambda v: None if pd.isna(v) else str(v).strip().upper() or None  # noqa: E731
    for s in (
        pd.Series(["a", " b", None, "a", ""], dtype="str"),
        pd.Series(["a", " b", None, "a", ""], dtype=object),
        pd.Series([None, None], dtype="str"),
        pd.Series([1, 2, 1]),
    ):
        pd.testing.assert_series_equal(io_base._map_text(s, f), s.map(f))


def test_building_ids_and_uses(tmp_path):
    gdf = gpd.GeoDataFrame(
        {
            "建筑编号": ["B1", None, " ", "B4"],
            "用途": [" 厂房", "仓库", None, "XX"],
            "层数": [1, 2, 3, 4],
        },
        geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10), box(60, 0, 70, 10)],
        crs="EPSG:4549",
    )
    path = tmp_path / "b.gpkg"
    gdf.to_file(path, engine="pyogrio")
    out = io.read_buildings(path)
    # rows 2 and 3 (1-based src_row) have no id: "row<src_row>"; uses mapped, unknown → other
    assert out["building_id"].tolist() == ["B1", "row2", "row3", "B4"]
    assert out["use"].tolist() == ["production", "warehouse", "other", "other"]
    assert out["floors"].tolist() == [1.0, 2.0, 3.0, 4.0]  # GeoPackage integers as floats
