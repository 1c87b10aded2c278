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


# --------------------------------------------------------------------------------------------
# the vectorised paths equal the plain definitions


def _old_normalize_names(names, region_codes=None, *, region_names=None):
    """normalize_names as first written: every row, NFKC row by row, Python's \\s, one pass
    per region group (the reference for the deduplicated, pattern-grouped version)."""
    import numpy as np

    from mujun_geo import names as N

    s = names.astype(N._string_dtype()).str.normalize("NFKC").str.upper()
    s = s.str.replace(N._PUNCT, "", regex=True)
    s = s.mask(s.str.len() == 0)
    if region_codes is None:
        codes = pd.Series("", index=range(len(s)), dtype="string")
    else:
        codes = region_codes.astype("string").str.strip().fillna("").reset_index(drop=True)
    city = codes.str[:4]
    group = codes.where(
        codes.isin(list(region_names or {})),
        city.where(city.isin(list(N.ZHEJIANG_PLACES)), ""),
    ).to_numpy(dtype=object)
    out = s.to_numpy(dtype=object, na_value=None).copy()
    valid = s.notna().to_numpy()
    for key, idx in pd.Series(group[valid]).groupby(group[valid], sort=False).indices.items():
        rows = np.flatnonzero(valid)[idx]
        code = key if len(key) == 6 else key + "00"
        prefix, bracket = N._region_patterns(*place_names(code, region_names=region_names))
        part = s.iloc[rows]
        step = part.str.replace(bracket, "", regex=True).str.replace(
            N._BRACKET_CHARS, "", regex=True
        )
        step = N._keep_nonempty(step.str.replace(prefix, "", regex=True), step)
        step = N._keep_nonempty(step.str.replace(N._SUFFIX, r"\1", regex=True), step)
        out[rows] = N._keep_nonempty(step, part).to_numpy(dtype=object)
    return pd.Series(out, index=names.index, dtype="string")


TRICKY = [
    "海宁市宏达（浙江）股份有限公司", "海宁市宏达（浙江）股份有限公司", "宏达\u3000有限公司",
    "宏达\xa0有限公司", "宏达\x1c有限公司", "宏达\u2028科技", " 宏达 ", "ＡＢＣ纺织厂",
    "abc纺织厂", "Ａｂｃ\u00a0(海宁)有限公司", "浙江省嘉兴市海宁市 新星（有限合伙）", "有限公司",
    "海宁市", "", "  ", None, "宏达纺织厂分厂", "宏达有限公司海宁分公司", "e\u0301lan有限公司",
    "ﬁne纺织", "①号厂", "杭州宏达集团有限公司", "杭州市萧山区宏达有限公司", "萧山宏达",
    "宏达-科技_有限/公司", "宏达·科技“有限”公司", "昆山市宏达有限公司", "１２３",
]  # fmt: skip


@pytest.mark.parametrize(
    "region_names", [None, {"330481": "海宁市", "330599": "新县", "320583": "昆山市"}]
)
def test_deduplicated_normalize_names_equals_the_row_by_row_definition(region_names):
    # every name in several regions: the same name gives different keys in different cities
    regions = ["330481", "330109", "330599", "320583", "", None, "3304"]
    raw = pd.Series([n for n in TRICKY for _ in regions], index=range(100, 100 + 7 * len(TRICKY)))
    codes = pd.Series([r for _ in TRICKY for r in regions], index=raw.index)
    new = normalize_names(raw, codes, region_names=region_names)
    old = _old_normalize_names(raw, codes, region_names=region_names)
    pd.testing.assert_series_equal(new, old)
    pd.testing.assert_series_equal(
        normalize_names(raw, region_names=region_names),
        _old_normalize_names(raw, region_names=region_names),
    )
    # spot checks by hand: place, bracketed place and legal form removed, branch kept
    assert new[100] == "宏达" and new[100 + 7 * 16] == "宏达纺织厂分厂"


def test_punctuation_class_without_backslash_s_matches_the_same_characters():
    import re

    import pyarrow as pa
    import pyarrow.compute as pc

    from mujun_geo import names as N

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    # Python's \s is str.isspace(); the spelled-out class lists every such character
    assert N._WHITESPACE == "".join(c for c in chars if c.isspace())
    old, new = re.compile(N._PUNCT), re.compile(N._PUNCT_EXPLICIT)
    assert [c for c in chars if bool(old.fullmatch(c)) != bool(new.fullmatch(c))] == []
    # … and pyarrow (RE2) removes exactly the characters Python's re removes
    arrow = pc.replace_substring_regex(pa.array(chars), pattern=N._PUNCT_EXPLICIT, replacement="")
    assert arrow.to_pylist() == [old.sub("", c) for c in chars]


def test_nfkc_skips_only_strings_that_cannot_change():
    import unicodedata

    from mujun_geo.names import _nfkc

    # every character of the skipped set is its own NFKC form
    stable = [chr(c) for c in [*range(1, 0x80), *range(0x4E00, 0xA000)]]
    assert all(unicodedata.normalize("NFKC", c) == c for c in stable)
    # and no two of them compose (ASCII letters compose only with combining marks)
    ascii_pairs = [a + b for a in map(chr, range(1, 0x80)) for b in map(chr, range(1, 0x80))]
    assert all(unicodedata.normalize("NFKC", p) == p for p in ascii_pairs)
    s = pd.Series(TRICKY + ["e\u0301", "ｅ\u0301", "Å", "丽", "㈱"], dtype="string")
    expected = pd.Series(
        [v if pd.isna(v) else unicodedata.normalize("NFKC", v) for v in s.tolist()],
        dtype="string",
    )
    pd.testing.assert_series_equal(_nfkc(s), expected)
    assert _nfkc(s)[7] == "ABC纺织厂" and _nfkc(s)[len(TRICKY)] == "é"
