"""Canonical column names of every input layer, and the headers staff actually use.

Readers rename columns with :func:`canonical_columns`: a header matches an alias after
trimming, dropping a trailing unit in brackets (``税收(万元)`` → ``税收``), folding full-width
characters and lower-casing ASCII. The canonical names are those of CONTRACT.md.

Examples
--------
>>> canonical_columns(["统一社会信用代码", "企业名称", "税收（万元）", "Lon"], "enterprises")
{'统一社会信用代码': 'credit_code', '企业名称': 'name', '税收（万元）': 'tax', 'Lon': 'lon'}
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from ._errors import SchemaError

__all__ = [
    "ALIASES",
    "ENTERPRISE_FLAGS",
    "ENTERPRISE_NUMERIC",
    "REQUIRED",
    "canonical_columns",
    "check_required",
    "normalise_header",
]

#: canonical name -> accepted aliases (Chinese headers, source field codes), per layer.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "parcels": {
        "parcel_id": ("宗地代码", "zddm", "宗地编号", "不动产单元号", "bdcdyh", "parcel_code"),
        "land_use": ("地类编码", "dlbm", "用途代码", "土地用途代码"),
        "land_use_name": ("地类名称", "dlmc", "土地用途"),
        "holder_name": ("权利人", "qlr", "权利人名称", "土地使用权人", "qlrmc"),
        "holder_code": ("权利人统一社会信用代码", "qlrdm", "权利人代码", "qlrzjh", "权利人证件号"),
        "region_code": ("行政区划代码", "xzqdm", "行政区代码", "zldwdm"),
        "standard_land": ("标准地", "bzd", "是否标准地"),
        "recorded_area_m2": ("登记面积", "zdmj", "宗地面积", "tbmj"),
        "address": ("坐落", "zl"),
    },
    "enterprises": {
        "credit_code": ("统一社会信用代码", "信用代码", "tyshxydm", "shxydm", "uscc"),
        "name": ("企业名称", "单位名称", "名称", "qymc"),
        "address": ("地址", "企业地址", "注册地址", "生产经营地址"),
        "lon": ("经度", "longitude", "lng"),
        "lat": ("纬度", "latitude"),
        "x": ("x坐标", "横坐标"),
        "y": ("y坐标", "纵坐标"),
        "coord_sys": ("坐标系", "坐标系统", "coordinate_system", "crs"),
        "industry_code": ("行业代码", "国民经济行业代码", "行业分类代码"),
        "scale": ("企业规模", "规模", "是否规上", "规上规下"),
        "sector": ("行业门类", "企业类型", "产业类型"),
        "year": ("年份", "评价年度", "年度"),
        "region_code": ("行政区划代码", "所属区划代码", "区县代码"),
        "tax": ("税收", "实缴税金", "实际入库税收", "评价税收", "税收实际贡献"),
        "value_added": ("工业增加值", "增加值"),
        "revenue": ("营业收入", "主营业务收入", "销售收入"),
        "energy_tce": ("综合能耗", "能耗", "总能耗"),
        "employees": ("年平均职工人数", "职工人数", "从业人员", "年平均从业人员"),
        "emissions_t": ("主要污染物排放量", "排放量", "污染物排放量"),
        "cod_t": ("化学需氧量", "cod", "cod排放量"),
        "nh3n_t": ("氨氮", "氨氮排放量", "nh3n", "nh3-n"),
        "so2_t": ("二氧化硫", "so2", "二氧化硫排放量"),
        "nox_t": ("氮氧化物", "nox", "氮氧化物排放量"),
        "rd_expense": ("研发经费支出", "研发费用", "r&d经费支出", "研发经费"),
        "electricity": ("用电量", "总用电量"),
        "group_code": ("集团母公司信用代码", "母公司信用代码", "集团代码"),
        "high_tech": ("高新技术企业", "是否高新技术企业"),
        "newly_scaled": ("新升规未满1年", "新升规", "新升规企业"),
        "utility": ("公益性企业", "水电气等公益性", "公用事业"),
        "emergency_supply": ("应急医疗物资", "应急医疗物资重点生产企业"),
        "agri_supply": ("农产品保供", "农产品保供稳价"),
        "key_chain": ("产业链关键环节", "新兴产业培育", "产业链关键环节企业"),
        "disabled_employment": ("残疾人集中就业", "残疾人集中就业企业"),
        "veto": ("一票否决", "否决原因", "一票否决事项"),
        "bonus": ("加分",),
        "penalty": ("减分",),
        "n_tenants": ("出租户数", "出租企业数", "承租企业数"),
    },
    "buildings": {
        "building_id": ("建筑编号", "建筑物编号", "bsm", "jzwbh", "id"),
        "floors": ("层数", "地上层数", "cs", "zcs", "总层数"),
        "height_m": ("高度", "建筑高度", "jzgd", "height"),
        "storey_height_m": ("层高",),
        "use": ("用途", "建筑用途", "房屋用途", "ghyt"),
        "occupant_code": ("使用企业", "使用企业信用代码", "使用单位代码"),
    },
    "parks": {
        "park_id": ("园区编号", "园区代码", "id"),
        "name": ("园区名称", "名称"),
        "park_type": ("园区类型", "类型"),
        "star": ("星级",),
    },
    "regions": {
        "region_code": ("行政区划代码", "xzqdm", "代码", "adcode"),
        "name": ("名称", "行政区名称", "xzqmc"),
        "level": ("级别", "层级"),
    },
    "overrides": {
        "credit_code": ("统一社会信用代码", "信用代码"),
        "parcel_id": ("宗地代码", "zddm"),
        "action": ("操作", "决定", "处理"),
        "share": ("面积份额", "份额", "land_share"),
        "note": ("备注", "说明"),
    },
    "standard_land": {
        "parcel_id": ("宗地代码", "zddm"),
        "commit_far": ("承诺容积率",),
        "commit_tax_per_mu": ("承诺亩均税收",),
        "commit_va_per_tce": ("承诺单位能耗增加值",),
        "commit_invest_per_mu": ("承诺投资强度",),
        "commit_rd_ratio": ("承诺研发占比", "承诺研发经费占比"),
        "start_year": ("出让年份", "投产年份"),
        "run_in_years": ("初始运行期", "初始运行期(年)"),
        "invest_per_mu": ("实际投资强度",),
    },
    "targets": {
        "region_code": ("行政区划代码",),
        "name": ("名称", "设区市", "地区"),
        "year": ("年份",),
        "tax_per_mu_target": ("亩均税收目标", "规上工业亩均税收"),
        "va_per_mu_target": ("亩均增加值目标",),
    },
}

#: Columns a layer cannot do without.
REQUIRED: dict[str, tuple[str, ...]] = {
    "parcels": ("parcel_id", "land_use"),
    "enterprises": ("credit_code", "name"),
    "buildings": (),
    "parks": ("park_id",),
    "regions": ("region_code",),
    "overrides": ("credit_code", "parcel_id", "action"),
    "standard_land": ("parcel_id",),
    "targets": ("year",),
}

#: Enterprise columns read as numbers (NaN = missing).
ENTERPRISE_NUMERIC = (
    "tax", "value_added", "revenue", "energy_tce", "employees", "emissions_t", "cod_t",
    "nh3n_t", "so2_t", "nox_t", "rd_expense", "electricity", "bonus", "penalty", "n_tenants",
)  # fmt: skip

#: Enterprise yes/no flags (read as bool, blank = False).
ENTERPRISE_FLAGS = (
    "high_tech", "newly_scaled", "utility", "emergency_supply", "agri_supply", "key_chain",
    "disabled_employment",
)  # fmt: skip

_UNIT = re.compile(r"\s*[\(（\[【][^\)）\]】]*[\)）\]】]\s*$")


def normalise_header(header: object) -> str:
    """Fold a header for alias lookup: NFKC, no trailing unit in brackets, lower case.

    Examples
    --------
    >>> normalise_header(" 综合能耗（吨标准煤） ")
    '综合能耗'
    """
    text = unicodedata.normalize("NFKC", str(header)).strip()
    text = _UNIT.sub("", text)
    return text.replace(" ", "").lower()


def canonical_columns(columns: Iterable[object], layer: str) -> dict[object, str]:
    """Map the given headers of ``layer`` to canonical names (unknown headers are left out).

    A canonical name is taken by the first header that matches it; a header equal to a
    canonical name wins over an alias.
    """
    table = ALIASES[layer]
    lookup: dict[str, str] = {}
    for canon, aliases in table.items():
        for alias in aliases:
            lookup.setdefault(normalise_header(alias), canon)
    for canon in table:
        lookup[canon] = canon
    mapping: dict[object, str] = {}
    taken: set[str] = set()
    cols = list(columns)
    # exact canonical names first, so an ASCII file keeps its own columns
    for col in cols:
        key = normalise_header(col)
        if key in table and key not in taken:
            mapping[col] = key
            taken.add(key)
    for col in cols:
        if col in mapping or col == "geometry":
            continue
        found = lookup.get(normalise_header(col))
        if found is not None and found not in taken:
            mapping[col] = found
            taken.add(found)
    return {col: mapping[col] for col in cols if col in mapping}


def check_required(columns: Iterable[str], layer: str, *, source: str) -> None:
    """Raise :class:`SchemaError` naming every missing required column and its aliases."""
    present = set(columns)
    missing = [c for c in REQUIRED[layer] if c not in present]
    if missing:
        accepted = "; ".join(f"`{c}` (or {', '.join(ALIASES[layer].get(c, ()))})" for c in missing)
        msg = (
            f"{source}: required column(s) missing: {accepted}. "
            f"Columns found: {', '.join(map(str, sorted(present))) or 'none'}. "
            "Rename the column in the file or add one of the accepted headers."
        )
        raise SchemaError(msg)
