import pandas as pd
import pytest

from mujun_geo.names import normalize_names, place_names


def norm(names, region="330481", **kw):
    s = pd.Series(names)
    return normalize_names(s, pd.Series([region] * len(s)), **kw).tolist()


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("宏达（浙江）有限公司", "宏达"),  # full-width brackets around a place name: dropped
        ("宏达(浙江)有限公司", "宏达"),
        ("宏达【海宁】纺织有限公司", "宏达纺织"),
        ("宏达（国际）纺织有限公司", "宏达国际纺织"),  # not a place: only the brackets go
        ("宏达股份有限公司", "宏达"),
        ("宏达有限责任公司", "宏达"),
        ("宏达集团有限公司", "宏达"),
        ("宏达集团股份有限公司", "宏达"),
        ("宏达纺织厂", "宏达纺织"),
        ("宏达股权投资合伙企业（有限合伙）", "宏达股权投资"),  # 有限合伙 then 合伙企业
        ("海宁市宏达有限公司", "宏达"),
        ("海宁宏达有限公司", "宏达"),
        ("浙江省嘉兴市海宁市宏达有限公司", "宏达"),
        ("浙江嘉兴宏达有限公司", "宏达"),
        ("嘉兴市桐乡市宏达有限公司", "宏达"),  # any county of the same city
        ("ＡＢＣ　科技有限公司", "ABC科技"),  # full-width letters and ideographic space
        ("abc 科技 有限公司", "ABC科技"),
        ("宏达·新材料有限公司", "宏达新材料"),
    ],
)
def test_normalize_cases(raw, key):
    assert norm([raw]) == [key]


def test_prefix_of_another_city_is_kept():
    # 330102 is in Hangzhou: 海宁 (a Jiaxing county) is part of the name there
    assert norm(["海宁市宏达有限公司", "杭州市宏达有限公司"], region="330102") == [
        "海宁市宏达",
        "宏达",
    ]


def test_unknown_region_strips_every_zhejiang_name():
    s = pd.Series(["海宁市宏达有限公司", "温州宏达有限公司"])
    assert normalize_names(s).tolist() == ["宏达", "宏达"]
    assert normalize_names(s, pd.Series([None, None])).tolist() == ["宏达", "宏达"]


def test_extra_region_names():
    s = pd.Series(["昆山市宏达有限公司"])
    assert normalize_names(s, pd.Series(["320583"])).tolist() == ["昆山市宏达"]
    out = normalize_names(s, pd.Series(["320583"]), region_names={"320583": "昆山市"})
    assert out.tolist() == ["宏达"]


def test_branches_kept_and_empty_guard():
    assert norm(["宏达纺织厂分厂", "宏达有限公司海宁分公司"]) == [
        "宏达纺织厂分厂",
        "宏达有限公司海宁分公司",
    ]
    # a name that is nothing but a place or a legal form keeps its text
    assert norm(["有限公司", "海宁市", "海宁市有限公司"]) == ["有限公司", "海宁市", "有限公司"]


def test_missing_and_blank_are_na_and_index_kept():
    s = pd.Series([None, "  ", "宏达有限公司"], index=[10, 20, 30])
    out = normalize_names(s)
    assert list(out.index) == [10, 20, 30]
    assert out.isna().tolist() == [True, True, False]
    assert out[30] == "宏达"


def test_place_names():
    city, county = place_names("330481")
    assert city == ("嘉兴市", "嘉兴")
    assert {"海宁市", "海宁", "桐乡市", "桐乡"} <= set(county)
    assert "萧山" not in county
    _, county_all = place_names(None)
    assert {"萧山", "海宁", "景宁畲族自治县", "景宁"} <= set(county_all)


def test_python_string_storage_gives_the_same_keys(monkeypatch):
    """Without pyarrow the same patterns run in Python's re module."""
    import mujun_geo.names as names_mod

    raw = pd.Series(
        ["海宁市宏达（浙江）股份有限公司", "宏达纺织厂分厂", "ＡＢＣ 有限公司", None, "有限公司"]
    )
    codes = pd.Series(["330481"] * 5)
    arrow = normalize_names(raw, codes)
    monkeypatch.setattr(names_mod, "_string_dtype", lambda: pd.StringDtype("python"))
    python = normalize_names(raw, codes)
    pd.testing.assert_series_equal(arrow, python)
    assert python.tolist() == ["宏达", "宏达纺织厂分厂", "ABC", pd.NA, "有限公司"]
