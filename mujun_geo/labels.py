"""Chinese names of output layers and columns, with units — for QGIS aliases, Excel and maps.

Column names stay ASCII for scripts; people see these labels.

Examples
--------
>>> label("tax_per_mu")
'亩均税收(万元/亩)'
>>> label("no_such_column")
'no_such_column'
"""

from __future__ import annotations

__all__ = ["COLUMNS", "GRADE_NAMES", "LAYERS", "LOWLAND_REASONS", "column_for", "describe", "label"]

#: layer name -> Chinese title
LAYERS: dict[str, str] = {
    "enterprises": "企业评价结果",
    "matches": "地企对应关系",
    "parcels": "宗地",
    "lowland": "低效工业用地",
    "parks": "园区",
    "regions": "行政区",
    "industries": "行业",
    "leaders": "亩均效益领跑者",
    "review": "待人工复核",
    "vacant": "空置工业宗地",
    "unmatched": "未匹配企业",
    "high_energy_low_efficiency": "高耗低效企业",
    "standard_land_review": "标准地达产复核",
    "rejects": "拒收记录",
    "problems": "数据问题清单",
    "run_info": "运行信息",
    "changes": "企业年度变化",
    "parcel_changes": "宗地年度变化",
    "lowland_summary": "低效用地汇总",
}

GRADE_NAMES: dict[str, str] = {
    "A": "A 优先发展类",
    "B": "B 鼓励提升类",
    "C": "C 规范转型类",
    "D": "D 整治提升类",
    "": "未评价",
}

LOWLAND_REASONS: dict[str, str] = {
    "vacant": "空置(无企业)",
    "idle": "未建设(无建筑)",
    "far_below_min": "容积率低于行业下限",
    "coverage_below_min": "建筑系数低于下限",
    "low_tax_per_mu": "亩均税收偏低",
    "stopped": "停产(零税收零用电)",
    "d_grade": "D类企业用地",
}

#: column -> (label with unit, description)
COLUMNS: dict[str, tuple[str, str]] = {
    "credit_code": ("统一社会信用代码", "GB 32100-2015 18位代码"),
    "name": ("名称", ""),
    "address": ("地址", ""),
    "parcel_id": ("宗地代码", "19位宗地代码"),
    "parcel_ids": ("关联宗地", "分号分隔的宗地代码"),
    "land_use": ("地类编码", "三调地类编码"),
    "land_use_name": ("地类名称", ""),
    "holder_name": ("权利人", ""),
    "holder_code": ("权利人信用代码", ""),
    "region_code": ("行政区划代码", ""),
    "standard_land": ("标准地", ""),
    "area_m2": ("面积(平方米)", "投影坐标系下计算"),
    "area_mu": ("面积(亩)", "1亩=2000/3平方米"),
    "land_m2": ("用地面积(平方米)", "地企对应所得评价用地"),
    "land_mu": ("用地面积(亩)", "地企对应所得评价用地"),
    "match_status": ("匹配状态", "matched 已匹配 / unmatched 未匹配 / rejected 拒收"),
    "unmatched_reason": ("未匹配原因", ""),
    "nearest_parcel_id": ("最近宗地", ""),
    "nearest_distance_m": ("最近距离(米)", ""),
    "method": (
        "匹配方式",
        "credit_code 信用代码 / name 名称 / within 落点 / nearest 邻近 / manual 人工",
    ),
    "confidence": ("置信度", "0–1"),
    "distance_m": ("距离(米)", ""),
    "land_share": ("用地份额", "0–1"),
    "status": ("状态", "auto 自动 / confirmed 已确认 / rejected 已否决 / review 待复核"),
    "evidence": ("依据", ""),
    "industry_code": ("行业代码", "GB/T 4754-2017"),
    "scale": ("规模", "above 规上 / below 规下"),
    "sector": ("门类", "industry 工业 / service 服务业"),
    "tax": ("税收(万元)", ""),
    "value_added": ("工业增加值(万元)", ""),
    "revenue": ("营业收入(万元)", ""),
    "energy_tce": ("综合能耗(吨标煤)", ""),
    "employees": ("年平均职工人数", ""),
    "emissions_t": ("主要污染物排放量(吨)", ""),
    "rd_expense": ("研发经费支出(万元)", ""),
    "electricity": ("用电量(万千瓦时)", ""),
    "tax_per_mu": ("亩均税收(万元/亩)", "税收÷用地亩数"),
    "va_per_mu": ("亩均增加值(万元/亩)", "工业增加值÷用地亩数"),
    "va_per_tce": ("单位能耗增加值(万元/吨标煤)", "工业增加值÷综合能耗"),
    "va_per_emission": ("单位排放增加值(万元/吨)", "工业增加值÷主要污染物排放量"),
    "labour_productivity": ("全员劳动生产率(万元/人)", "工业增加值÷年平均职工人数"),
    "rd_ratio": ("研发经费占营业收入比", "研发经费支出÷营业收入"),
    "revenue_per_mu": ("亩均营业收入(万元/亩)", ""),
    "tax_per_kwh": ("单位电耗税收(万元/万千瓦时)", ""),
    "score": ("综合得分", ""),
    "rank": ("排名", "组内名次, 1为最好"),
    "grade": ("评价类别", "A 优先发展类 / B 鼓励提升类 / C 规范转型类 / D 整治提升类"),
    "grade_note": ("评价说明", ""),
    "eval_class": ("评价类别组", ""),
    "eval_group": ("排名分组", ""),
    "n_enterprises": ("企业数", ""),
    "floor_area_m2": ("建筑面积(平方米)", ""),
    "far": ("容积率", "计容建筑面积÷宗地面积(层高>8米按两层计)"),
    "coverage": ("建筑系数", "建筑占地÷宗地面积"),
    "ancillary_land_share": ("配套设施用地占比", "行政办公及生活服务设施用地÷宗地面积"),
    "lowland": ("低效用地", "1 是 / 0 否"),
    "lowland_reasons": ("低效原因", ""),
    "vacant": ("空置", ""),
    "park_id": ("园区编号", ""),
    "park_type": ("园区类型", ""),
    "star": ("星级", ""),
    "n_a": ("A类企业数", ""),
    "n_b": ("B类企业数", ""),
    "n_c": ("C类企业数", ""),
    "n_d": ("D类企业数", ""),
    "level": ("级别", "city 设区市 / county 县(市、区)"),
    "tax_per_mu_target": ("亩均税收目标(万元/亩)", ""),
    "tax_gap": ("与目标差距(万元/亩)", "实际−目标"),
    "decision": ("决定", "填写 确认 / 否决 / 指定 (confirm / reject / assign), 留空表示暂不决定"),
    "note": ("备注", ""),
    "share": ("面积份额", "0–1, 可选"),
    "land_note": ("用地说明", ""),
    "source": ("来源文件", ""),
    "row": ("行号", "源文件中的行号"),
    "key": ("关键字", ""),
    "kind": ("问题类型", ""),
    "reason": ("原因", ""),
    "severity": ("严重程度", "reject 拒收 / warning 提示 / error 阻断"),
}


def label(column: str) -> str:
    """Chinese label (with unit) of a column; the column name itself when unknown."""
    entry = COLUMNS.get(column)
    if entry:
        return entry[0]
    if column.startswith("score_"):
        base = COLUMNS.get(column[6:])
        return f"{base[0].split('(')[0]}得分" if base else column
    return column


def column_for(label_text: str) -> str:
    """The column name behind a Chinese label (the label itself when unknown).

    Examples
    --------
    >>> column_for("决定"), column_for("统一社会信用代码")
    ('decision', 'credit_code')
    """
    for col, (text, _) in COLUMNS.items():
        if text == label_text:
            return col
    return label_text


def describe(column: str) -> str:
    """Longer description of a column (may be empty)."""
    entry = COLUMNS.get(column)
    return entry[1] if entry else ""
