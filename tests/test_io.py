import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import pyogrio
import shapely
import shapely.affinity
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


# --------------------------------------------------------------------------------------------
# fast paths equal the pandas / GEOS definitions they replace

CSV_CASES = {
    "blanks": b"a,b\n1,2\n,3\n",
    "all_blank_column": b"a,b\n1,\n2,\n",
    "quoted_empty": b'a,b\n"",1\nx,2\n',
    "whitespace_line": b"a,b\n  \n1,2\n",
    "blank_lines": b"\na,b\n\n1,2\n\n",
    "quote_inside": b'a,b\nab"c,1\n"x"y,2\n',
    "newline_in_quotes": b'a,b\n"l1\nl2",1\n"q""q",2\n"x\r\ny",3\n',
    "crlf_and_cr": b"a,b\r\n1,2\r\n3,\r\n5,6\r7,8\n",
    "bom": b"\xef\xbb\xbfa,b\n1,2\n",
    "two_boms": b"\xef\xbb\xbf\xef\xbb\xbfa,b\n1,2\n",
    "spaces": b"a , b\n 1 , 2 \n ,x\n",
    "short_row": b"a,b,c\n1,2\n3,4,5\n",
    "long_row": b"a,b\n1,2,3\n",
    "duplicate_header": b"a,a\n1,2\n",
    "empty_header": b"a,\n1,2\n",
    "header_only": b"a,b\n",
    "one_column": b"a\n1\n \n2\n",
    "nul": b"a,b\n1\x00x,2\n",
    "gb18030": "名称,值\n甲公司,１\n乙,\n".encode("gb18030"),
    "gb18030_bom": "\ufeff名称,值\n甲,1\n".encode("gb18030"),
    "utf8": "名称,值\n甲公司,１\n乙,\n".encode(),
}


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_csv_reading_equals_pandas(tmp_path, name):
    path = tmp_path / "t.csv"
    path.write_bytes(CSV_CASES[name])
    try:
        old = pd.read_csv(
            path, dtype=str, encoding=io_base._csv_encoding(path), keep_default_na=False
        ).replace({"": None})
    except Exception as exc:  # noqa: BLE001 - the same error must come back
        with pytest.raises(type(exc)):
            io_base._read_csv(path, None)
        return
    pd.testing.assert_frame_equal(io_base._read_csv(path, None), old, check_exact=True)
    # the readers' variant keeps blanks as missing values of the str dtype
    kept = io_base._read_csv(path, None, blanks_as_none=False)
    assert list(kept.columns) == list(old.columns)
    for col in old.columns:
        expected = old[col].astype(object).where(old[col].notna(), None).tolist()
        assert kept[col].astype(object).where(kept[col].notna(), None).tolist() == expected


def test_enterprise_csv_read_by_arrow_equals_pandas(tmp_path, monkeypatch):
    codes = [make_credit_code("330481", i) for i in range(1, 6)]
    rows = [
        f'{codes[0]},"甲公司, 分厂",120.6,30.45,WGS84,12.5,1711.0,是,2022',
        f"{codes[1]},乙公司,,,,暂无,,否,",
        f"{codes[2].lower()} ,丙公司,30.45,120.6,gcj02,-0,C13,,2022",
        f'{codes[0]},重复,120.61,30.46,BD09,"1,234",2624,1,2021',
        ",无代码,120.6,30.45,,abc,,,",
    ]
    header = "统一社会信用代码,企业名称,经度,纬度,坐标系,税收(万元),行业代码,高新技术企业,年份"
    path = tmp_path / "f.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    p_fast, p_slow = Problems(), Problems()
    fast = io.read_enterprises(path, target_crs="EPSG:4549", problems=p_fast)
    monkeypatch.setattr(io_base, "_read_csv_text", lambda data, encoding: None)
    slow = io.read_enterprises(path, target_crs="EPSG:4549", problems=p_slow)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    pd.testing.assert_frame_equal(p_fast.frame(), p_slow.frame(), check_exact=True)


@pytest.mark.parametrize(
    "data",
    [b"\xed\xa0\x80", b"\xed\x9f\xbf", b"\xc0\x80", b"\xe0\x80\x80", b"\xf4\x90\x80\x80",
     b"\xf4\x8f\xbf\xbf", b"\xf8\x88\x80\x80\x80", b"abc\xe4\xb8", b"\xef\xbb\xbf", b"",
     "甲公司".encode(), "甲公司".encode("gb18030")],
)  # fmt: skip
def test_utf8_check_agrees_with_python(data):
    assert io_base._utf8_ok(data) == io_base._decodes(data, "utf-8")


NUMBER_TEXTS = [
    "1", "12.5", "-3", "0.1", "007", "999999999999999", "99999999999999.9", "1234567890123456",
    "12345678901234567890", "1e5", "+5", ".5", "5.", "inf", "-inf", "nan", "NaN", "abc", "",
    " 7 ", "1,234", "-0.0", "0", "2022", None,
]  # fmt: skip


@pytest.mark.parametrize(
    "values",
    [
        NUMBER_TEXTS,
        [t for t in NUMBER_TEXTS if t not in ("-0.0",)],
        ["1", "2", "3"],  # whole numbers: pandas gives int64, equal as floats
        ["-0", "1.5"],  # a negative zero keeps its sign here ...
        ["-0", "2"],  # ... and loses it here: pandas decides, per column
        ["12345678901234567", "1"],  # beyond 15 digits: pandas' own int64
        ["abc", None, ""],
        [],
    ],
)
def test_to_numeric_equals_pandas(values):
    s = pd.Series(values, dtype="str")
    ref = pd.to_numeric(s, errors="coerce")
    new = io_base._to_numeric(s)
    pd.testing.assert_index_equal(new.index, ref.index)
    got, want = new.to_numpy(dtype=float), ref.to_numpy(dtype=float)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    if ref.dtype == np.int64 and new.dtype != np.int64:  # float only where exact
        assert (np.abs(want) < 2**53).all()


def test_to_numeric_plain_decimals_bitwise():
    rng = np.random.default_rng(7)
    digits = rng.integers(1, 16, 20_000)
    mant = (rng.random(20_000) * 10.0**digits).astype(np.int64).astype(str)
    point = rng.integers(0, 15, 20_000)
    texts = [m if p == 0 or p >= len(m) else f"{m[:-p]}.{m[-p:]}" for m, p in zip(mant, point)]
    texts += ["-" + t for t in texts[:5000]]
    s = pd.Series(texts, dtype="str")
    ref = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    np.testing.assert_array_equal(
        io_base._to_numeric(s).to_numpy().view(np.int64), ref.view(np.int64)
    )


def test_arrow_lower_keeps_one_code_point_each():
    # _missing_mark lower-cases only values as short as the longest marker
    import pyarrow as pa
    import pyarrow.compute as pc

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    lengths = pc.utf8_length(pc.utf8_lower(pa.array(chars))).to_numpy()
    assert (lengths == 1).all()


def test_code_text_equals_the_whole_column_regex():
    values = ["1711.0", "3.00", "10", "0", ".0", "0.0", "a.000", "x.0y0", "1.0.0", " 0601 ", "20",
              "１７.０", "无", None, "", "1.0\n", "١.٠", "0601"]  # fmt: skip
    for s in (pd.Series(values, dtype="str"), pd.Series(values, dtype=object)):
        text = io_base._text(s, fold=True)
        old = text.str.replace(r"\.0+$", "", regex=True).where(text.notna(), None)
        pd.testing.assert_series_equal(io_base._code_text(s), old, check_exact=True)


def _random_quads(rng, n, scale=1.0, offset=0.0):
    pts = rng.normal(size=(n, 4, 2)) * scale + offset
    quads = shapely.polygons(np.concatenate([pts, pts[:, :1]], axis=1))
    tris = shapely.polygons(np.concatenate([pts[:, :3], pts[:, :1]], axis=1))
    return np.concatenate([quads, tris])


@pytest.mark.parametrize(("scale", "offset"), [(1.0, 0.0), (1e-6, 3e6), (100.0, 4e7), (1e150, 0)])
def test_surely_valid_only_for_valid_polygons(scale, offset):
    rng = np.random.default_rng(3)
    geoms = _random_quads(rng, 20_000, scale, offset)
    # nearly collinear corners: the rounding-error margin must send them to GEOS
    base = rng.uniform(0, 1, size=(5000, 4, 2))
    base[:, 2] = base[:, 1] + (base[:, 1] - base[:, 0]) * rng.uniform(0, 2, (5000, 1))
    for eps in (0.0, 1e-16, 1e-12):
        pts = base + rng.normal(size=base.shape) * eps + 5e5
        geoms = np.concatenate([geoms, shapely.polygons(np.concatenate([pts, pts[:, :1]], 1))])
    sure = io_base._surely_valid(geoms)
    valid = shapely.is_valid(geoms)
    assert not (sure & ~valid).any()
    assert sure.sum() > 20_000  # every triangle and the convex quadrilaterals


def test_surely_valid_convex_polygons_but_not_stars():
    rng = np.random.default_rng(4)
    hulls = shapely.convex_hull(shapely.multipoints(rng.normal(size=(3000, 30, 2)) * 50 + 4e5))
    ang = 2 * np.pi * np.arange(1000) / 1000
    regular = shapely.Polygon(np.c_[np.cos(ang), np.sin(ang)] * 1e-3 + 3e6)
    stars = []
    for p, q in ((5, 2), (7, 3), (8, 3)):  # {p/q}: every corner turns alike, winding q times
        a = 2 * np.pi * q * np.arange(p) / p
        pts = np.c_[np.cos(a), np.sin(a)][None] * rng.uniform(1, 99, (500, 1, 1)) + 5e5
        stars.append(shapely.polygons(np.concatenate([pts, pts[:, :1]], axis=1)))
    wobbly = []
    for n in (6, 10, 30):  # star-shaped, mostly not convex
        a = np.sort(rng.uniform(0, 2 * np.pi, (2000, n)), axis=1)
        r = rng.uniform(0.9, 1.1, (2000, n)) * 30
        pts = np.stack([r * np.cos(a), r * np.sin(a)], axis=-1) + 5e5
        wobbly.append(shapely.polygons(np.concatenate([pts, pts[:, :1]], axis=1)))
    geoms = np.concatenate([hulls, [regular], *stars, *wobbly])
    sure = io_base._surely_valid(geoms)
    assert not (sure & ~shapely.is_valid(geoms)).any()
    assert sure[: len(hulls) + 1].all()
    assert not sure[len(hulls) + 1 : len(hulls) + 1 + 1500].any()
    # star-shaped around their centre: most of them around the mean of their corners too
    assert sure[len(hulls) + 1 + 1500 :].mean() > 0.6


def test_surely_valid_surveyed_near_rectangles():
    # rectangles with a vertex every 25 m, each moved by up to 2 m (make_province.py
    # --shape irregular): not convex, but star-shaped around the mean of their corners
    rng = np.random.default_rng(6)
    geoms = []
    for w, h in rng.uniform(40, 200, (2000, 2)):
        ring = shapely.segmentize(box(0, 0, w, h).exterior, 25.0)
        xy = shapely.get_coordinates(ring)[:-1]
        geoms.append(Polygon(xy + np.clip(rng.normal(0, 0.7, xy.shape), -2, 2) + [4e5, 3.3e6]))
    geoms = np.array(geoms, dtype=object)
    assert shapely.is_valid(geoms).all()
    assert not shapely.equals(shapely.convex_hull(geoms), geoms).any()  # none is convex
    assert io_base._surely_valid(geoms).all()


def test_is_valid_in_threads_equals_shapely(monkeypatch):
    rng = np.random.default_rng(8)
    geoms = _random_quads(rng, 3000)
    monkeypatch.setattr(io_base, "_PARALLEL_MIN", 100)
    monkeypatch.setattr(io_base, "_cpus", lambda: 2)
    np.testing.assert_array_equal(io_base._is_valid(geoms), shapely.is_valid(geoms))


def test_surely_valid_special_cases():
    with warnings.catch_warnings():  # shapely warns building rings from NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        odd = [Polygon([(0, 0), (np.inf, 0), (1, 1)]), Polygon([(0, 0), (np.nan, 0), (1, 1)])]
    geoms = np.array(
        [
            *odd,
            box(0, 0, 2, 1),
            shapely.affinity.rotate(box(4e5, 3e6, 4e5 + 12.5, 3e6 + 7.25), 33),
            Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]),  # bow-tie
            Polygon([(0, 0), (1, 0), (1, 0), (0, 1)]),  # repeated corner
            Polygon([(0, 0), (2, 0), (1, 0), (1, 1)]),  # spike back along an edge
            Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2)]]),  # hole
            Polygon([(0, 0, 1), (1, 0, 1), (1, 1, 1)]),  # 3D
            Polygon([(0, 0), (1e-170, 0), (0, 1e-170)]),  # products underflow
            Polygon([(0, 0), (1, 0), (2, 0), (2, 2), (0, 2)]),  # a straight corner: star
            Polygon([(0, 0), (1, 0), (1, 1), (0, 1)] * 2),  # a square traced twice
            Polygon(),
            None,
        ],
        dtype=object,
    )
    with np.errstate(all="raise"):
        sure = io_base._surely_valid(geoms)
    assert sure.tolist() == [False, False, True, True] + [False] * 6 + [True] + [False] * 3


def test_enterprise_points_equal_geopandas_to_crs(tmp_path):
    codes = [make_credit_code("330481", i) for i in range(1, 5)]
    lines = [f"{c},企业{i},{120 + i / 7},{30 + i / 9},WGS84" for i, c in enumerate(codes)]
    path = tmp_path / "f.csv"
    path.write_text("统一社会信用代码,企业名称,经度,纬度,坐标系\n" + "\n".join(lines) + "\n")
    for target in ("EPSG:4549", "EPSG:4528", "EPSG:4490"):
        firms = io.read_enterprises(path, target_crs=target)
        lon = [120 + i / 7 for i in range(4)]
        lat = [30 + i / 9 for i in range(4)]
        expected = gpd.GeoSeries(shapely.points(lon, lat), crs=4490).to_crs(target)
        assert shapely.equals_exact(firms.geometry.values, expected.values, tolerance=0).all()


def _old_problem_rows(rows, keys):
    from mujun_geo._validate import _isna, _listlike

    rows_l = list(rows) if _listlike(rows) else [rows]
    keys_l = list(keys) if _listlike(keys) else [keys] * len(rows_l)
    return pd.DataFrame(
        {
            "row": pd.array(rows_l, dtype="Int64"),
            "key": [None if _isna(k) else str(k) for k in keys_l],
        }
    )


@pytest.mark.parametrize(
    ("rows", "keys"),
    [
        (pd.Series([3, 4, 5]), pd.Series(["A", None, "C"], dtype="str")),
        (pd.Series([3, 4, 5], index=[9, 8, 7]), pd.Series(["A", None, "C"], dtype="string")),
        (pd.Series([3, None, 5], dtype="Int64"), pd.Series(["A", None, 1.5], dtype=object)),
        (pd.Series([3, 4], dtype="int32"), pd.Series([1.0, np.nan])),
        (np.array([3, 4]), ["x", None]),
        ([3, 4], "same key"),
        (7, "one"),
        (pd.Series([], dtype="int64"), pd.Series([], dtype="str")),
    ],
)
def test_problem_rows_and_keys_as_before(rows, keys):
    p = Problems()
    p.add("f", rows, keys, "k", "why")
    old = _old_problem_rows(rows, keys)
    new = p.frame()[["row", "key"]]
    if len(old):
        pd.testing.assert_frame_equal(new, old, check_exact=True)
    else:
        assert len(p) == 0
