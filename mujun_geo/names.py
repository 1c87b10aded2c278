"""Normalise enterprise and land-holder names for 地企对应 (enterprise–parcel matching).

Names of the same firm are written in many ways: full-width or half-width brackets, with or
without the province/city/county in front, ``有限公司`` or ``股份有限公司`` at the end. Before two
names are compared, :func:`normalize_names` reduces each to a *key*, in this order:

1. Unicode NFKC (full-width letters, digits and brackets become half-width) and upper case.
2. Whitespace and punctuation (``·、,.;:-_/"'`` and their full-width forms) removed.
3. A bracketed place name, e.g. ``(海宁)`` or ``（浙江）``, is dropped; other brackets lose only
   the bracket characters (``(有限合伙)`` becomes ``有限合伙``).
4. Place-name prefixes are stripped: optionally ``浙江省``/``浙江``, then the city of the row's
   ``region_code`` (``嘉兴市``/``嘉兴``), then any county of that city (``海宁市``/``海宁``), each
   optional and in that order. Rows without a (Zhejiang) region code use every Zhejiang name.
   Extra names (e.g. from the ``regions`` layer) can be given with `region_names`.
5. Legal-form suffixes (:data:`LEGAL_FORM_SUFFIXES`) are stripped from the end, longest first,
   repeatedly (``集团有限公司`` and ``集团`` + ``有限公司`` both go). Branch markers
   (``分公司``, ``分厂``) are kept: a branch is a different enterprise.

A step that would leave an empty key is skipped, so ``有限公司`` alone stays ``有限公司``.
Missing or blank names give ``<NA>``.

Examples
--------
>>> import pandas as pd
>>> from mujun_geo.names import normalize_names
>>> s = pd.Series(["海宁市宏达（浙江）股份有限公司", "浙江宏达有限公司", "宏达集团有限公司", None])
>>> normalize_names(s, pd.Series(["330481"] * 4)).tolist()
['宏达', '宏达', '宏达', <NA>]
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["LEGAL_FORM_SUFFIXES", "ZHEJIANG_PLACES", "normalize_names", "place_names"]

#: Legal-form suffixes stripped from the end of a name (longest tried first).
LEGAL_FORM_SUFFIXES: tuple[str, ...] = (
    "集团股份有限公司",
    "集团有限责任公司",
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "股份合作公司",
    "个人独资企业",
    "有限公司",
    "集团公司",
    "股份公司",
    "合伙企业",
    "有限合伙",
    "普通合伙",
    "独资企业",
    "总公司",
    "公司",
    "集团",
    "总厂",
    "厂",
)

#: Zhejiang cities by the first four digits of the region code: (city, its county-level units).
ZHEJIANG_PLACES: dict[str, tuple[str, tuple[str, ...]]] = {
    "3301": ("杭州市", ("上城区", "下城区", "江干区", "拱墅区", "西湖区", "滨江区", "萧山区",
                       "余杭区", "富阳区", "临安区", "临平区", "钱塘区", "桐庐县", "淳安县",
                       "建德市")),
    "3302": ("宁波市", ("海曙区", "江东区", "江北区", "北仑区", "镇海区", "鄞州区", "奉化区",
                       "象山县", "宁海县", "余姚市", "慈溪市")),
    "3303": ("温州市", ("鹿城区", "龙湾区", "瓯海区", "洞头区", "永嘉县", "平阳县", "苍南县",
                       "文成县", "泰顺县", "瑞安市", "乐清市", "龙港市")),
    "3304": ("嘉兴市", ("南湖区", "秀洲区", "嘉善县", "海盐县", "海宁市", "平湖市", "桐乡市")),
    "3305": ("湖州市", ("吴兴区", "南浔区", "德清县", "长兴县", "安吉县")),
    "3306": ("绍兴市", ("越城区", "柯桥区", "上虞区", "新昌县", "诸暨市", "嵊州市", "绍兴县")),
    "3307": ("金华市", ("婺城区", "金东区", "武义县", "浦江县", "磐安县", "兰溪市", "义乌市",
                       "东阳市", "永康市")),
    "3308": ("衢州市", ("柯城区", "衢江区", "常山县", "开化县", "龙游县", "江山市")),
    "3309": ("舟山市", ("定海区", "普陀区", "岱山县", "嵊泗县")),
    "3310": ("台州市", ("椒江区", "黄岩区", "路桥区", "三门县", "天台县", "仙居县", "温岭市",
                       "临海市", "玉环市")),
    "3311": ("丽水市", ("莲都区", "青田县", "缙云县", "遂昌县", "松阳县", "云和县", "庆元县",
                       "景宁畲族自治县", "龙泉市")),
}  # fmt: skip

_PROVINCE = ("浙江省", "浙江")
_PUNCT = r"[\s·•・.,、:;'\"“”‘’`\-—_/\\|*#]+"
# The same class with Python's ``\s`` spelled out (every character for which str.isspace()
# is true): without ``\s`` pandas runs the pattern in pyarrow (RE2) instead of row by row
# in Python's re; tests/test_names.py checks that both match the same characters.
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_PUNCT_EXPLICIT = _PUNCT.replace(r"\s", _WHITESPACE)
_OPEN = "([【〔{<《"
_CLOSE = ")]】〕}>》"
_THREAD_MIN_ROWS = 50_000  # below this, a second thread costs more than it saves
_BRACKET_CHARS = "[" + re.escape(_OPEN + _CLOSE) + "]"
# not after 分: 分公司/分厂 are branches, i.e. other enterprises. Written without look-behind so
# that pyarrow (RE2) can run it; the kept character is put back by the replacement r"\1".
_SUFFIX = (
    "(^|[^分])(?:"
    + "|".join(sorted(map(re.escape, LEGAL_FORM_SUFFIXES), key=len, reverse=True))
    + ")+$"
)
_ADMIN_END = re.compile(r"(?:畲族自治县|自治县|市|县|区)$")


def _short_forms(name: str) -> list[str]:
    """Return ``name`` and its form without the administrative ending (if 2+ characters)."""
    out = [name]
    short = _ADMIN_END.sub("", name)
    if short != name and len(short) >= 2:
        out.append(short)
    return out


def place_names(
    region_code: str | None, *, region_names: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Place names that may prefix a firm name in `region_code`.

    Parameters
    ----------
    region_code
        6-digit administrative code (GB/T 2260) of the row, or ``None``.
    region_names
        Extra names by region code (e.g. ``{"330481": "海宁市"}`` from the ``regions`` layer).

    Returns
    -------
    tuple
        ``(city_names, county_names)``, each including short forms (``海宁市`` and ``海宁``).
        An unknown or non-Zhejiang code gives every Zhejiang name.

    Examples
    --------
    >>> city, county = place_names("330481")
    >>> city
    ('嘉兴市', '嘉兴')
    >>> "海宁" in county
    True
    """
    extra = dict(region_names or {})
    code = (region_code or "").strip()
    if code[:4] in ZHEJIANG_PLACES:
        keys = [code[:4]]
    else:
        keys = sorted(ZHEJIANG_PLACES)
    cities: list[str] = []
    counties: list[str] = []
    for key in keys:
        city, cnty = ZHEJIANG_PLACES[key]
        cities += _short_forms(city)
        for c in cnty:
            counties += _short_forms(c)
        if key + "00" in extra:
            cities += _short_forms(extra[key + "00"])
    if code in extra and code[4:] != "00":
        counties += _short_forms(extra[code])
    return tuple(dict.fromkeys(cities)), tuple(dict.fromkeys(counties))


def _alt(names: Sequence[str]) -> str:
    return "|".join(sorted(map(re.escape, names), key=len, reverse=True))


@functools.lru_cache(maxsize=512)
def _region_patterns(cities: tuple[str, ...], counties: tuple[str, ...]) -> tuple[str, str]:
    prefix = f"^(?:{_alt(_PROVINCE)})?(?:{_alt(cities)})?(?:{_alt(counties)})?"
    bracket = f"[{re.escape(_OPEN)}](?:{_alt(_PROVINCE + cities + counties)})[{re.escape(_CLOSE)}]"
    return prefix, bracket


def _string_dtype() -> pd.StringDtype:
    """pyarrow-backed strings when available: their regex replace runs in C++ (RE2)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:  # pragma: no cover - pandas without pyarrow
        return pd.StringDtype("python")
    return pd.StringDtype("pyarrow")


# Any character outside ASCII and the CJK Unified Ideographs block. Strings without one are
# their own NFKC form (every such character is, and none of them compose), so only the
# others need unicodedata (which pandas runs row by row in Python).
_NOT_NFKC_STABLE = "[^\x01-\x7f\u4e00-\u9fff]"


def _nfkc(s: pd.Series) -> pd.Series:
    """``s.str.normalize("NFKC")`` normalising only the strings that can change.

    Examples
    --------
    >>> _nfkc(pd.Series(["ＡＢＣ（甲）", "abc甲", None], dtype="string")).tolist()
    ['ABC(甲)', 'abc甲', <NA>]
    """
    need = s.str.contains(_NOT_NFKC_STABLE, regex=True).to_numpy(dtype=bool, na_value=False)
    if not need.any():
        return s
    out = s.copy()
    rows = np.flatnonzero(need)
    out.iloc[rows] = s.iloc[rows].str.normalize("NFKC").to_numpy(dtype=object)
    return out


def _keep_nonempty(new: pd.Series, old: pd.Series) -> pd.Series:
    return new.where(new.str.len() > 0, old)


def normalize_names(
    names: pd.Series,
    region_codes: pd.Series | None = None,
    *,
    region_names: Mapping[str, str] | None = None,
) -> pd.Series:
    """Reduce enterprise or holder names to comparison keys (see the module docstring).

    Vectorised: pandas string methods (pyarrow/RE2 when installed), one pass per city (12 in
    Zhejiang, plus one per county given in `region_names`), never a Python loop over rows.
    A key depends only on the name and its place-name group, so each distinct (name, group)
    pair is normalised once and the keys are mapped back to the rows.

    Parameters
    ----------
    names
        Names (企业名称 / 权利人).
    region_codes
        6-digit region code of each row (same index as `names`), used to choose which place
        names to strip. ``None`` strips every Zhejiang place name.
    region_names
        Extra place names by region code, e.g. from the ``regions`` layer.

    Returns
    -------
    pandas.Series
        String keys with the index of `names`; ``<NA>`` for missing or blank names.

    Examples
    --------
    >>> import pandas as pd
    >>> normalize_names(pd.Series(["浙江省嘉兴市海宁市 新星（有限合伙）", "ＡＢＣ纺织厂"])).tolist()
    ['新星', 'ABC纺织']
    """
    raw = names.astype(_string_dtype())
    if region_codes is None:
        codes = pd.Series("", index=range(len(raw)), dtype="string")
    else:
        codes = region_codes.astype("string").str.strip().fillna("").reset_index(drop=True)
    # the place names depend on the city only, unless extra names were given for a county
    city = codes.str[:4]
    group = codes.where(
        codes.isin(list(region_names or {})), city.where(city.isin(list(ZHEJIANG_PLACES)), "")
    )
    group = group.to_numpy(dtype=object)
    # STEP 0: distinct (name, group) pairs; missing names stay missing
    name_id, _ = pd.factorize(raw, use_na_sentinel=True)
    group_id, group_values = pd.factorize(group)
    valid = name_id >= 0
    pair = name_id.astype(np.int64) * max(len(group_values), 1) + group_id
    first, inverse = np.unique(pair[valid], return_index=True, return_inverse=True)[1:]
    rows = np.flatnonzero(valid)[first]
    keys = _normalize_rows(raw.iloc[rows].reset_index(drop=True), group[rows], region_names)
    at = np.zeros(len(raw), dtype=np.int64)
    at[valid] = inverse
    out = keys.take(pa.array(at, mask=~valid))  # missing names: missing keys
    return pd.Series(out, index=names.index, dtype="string")


def _normalize_rows(
    raw: pd.Series, group: np.ndarray, region_names: Mapping[str, str] | None
) -> pa.Array:
    """Keys of the names `raw` (string dtype, positional index) with place-name `group` keys.

    An Arrow string array in the order of `raw`, null where the name is empty.
    """
    s = _nfkc(raw).str.upper()
    s = s.str.replace(_PUNCT_EXPLICIT, "", regex=True)
    s = s.mask(s.str.len() == 0)
    valid = s.notna().to_numpy()
    # rows whose groups give the same place-name patterns are processed together (a county
    # named in `region_names` that its city already lists adds nothing to the patterns)
    key_of_row, keys = pd.factorize(group[valid])
    ids: dict[tuple[str, str], int] = {}
    key_pattern = np.array(
        [
            ids.setdefault(
                _region_patterns(
                    *place_names(k if len(k) == 6 else k + "00", region_names=region_names)
                ),
                len(ids),
            )
            for k in keys.tolist()
        ],
        dtype=np.int64,
    )
    patterns = list(ids)
    row_pattern = key_pattern[key_of_row]
    groups = pd.Series(row_pattern).groupby(row_pattern, sort=False).indices.items()
    jobs = [(np.flatnonzero(valid)[idx], patterns[pid]) for pid, idx in groups]

    def strip_places(rows: np.ndarray, pattern: tuple[str, str]) -> pa.Array:
        prefix, bracket = pattern
        part = s.iloc[rows]
        step = part.str.replace(bracket, "", regex=True).str.replace(_BRACKET_CHARS, "", regex=True)
        step = _keep_nonempty(step.str.replace(prefix, "", regex=True), step)
        step = _keep_nonempty(step.str.replace(_SUFFIX, r"\1", regex=True), step)
        return _arrow(_keep_nonempty(step, part))

    # Arrow runs the regular expressions without the GIL: big inputs use two threads
    # (each group's rows are written by position, so the keys do not depend on the threads)
    threads = 2 if len(s) >= _THREAD_MIN_ROWS and len(jobs) > 1 else 1
    with ThreadPoolExecutor(threads, thread_name_prefix="mujun-names") as pool:
        parts = list(pool.map(lambda job: strip_places(*job), jobs))
    # the groups' keys put back in row order (empty names: null), all in Arrow
    text = _arrow(s)
    rows = np.concatenate([r for r, _ in jobs] + [np.flatnonzero(~valid)])
    empty = pa.nulls(int((~valid).sum()), text.type)
    keys = pa.concat_arrays([p.cast(text.type) for p in parts] + [empty])
    back = np.empty(len(rows), dtype=np.int64)
    back[rows] = np.arange(len(rows))
    return keys.take(pa.array(back))


def _arrow(values: pd.Series) -> pa.Array:
    """Arrow-backed text as one Arrow array (no copy)."""
    text = pa.array(values.array, from_pandas=True)
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
