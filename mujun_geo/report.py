"""The Excel report (``report.xlsx``): Chinese headers, a summary sheet, one sheet per table.

Every sheet has a frozen, bold header row in Chinese (the ASCII column name is kept as a
cell comment for scripts), number formats by kind of figure (万元/亩 with two decimals,
shares as percentages), widths that fit, and grade cells coloured A green … D red.

Examples
--------
>>> import tempfile, pandas as pd
>>> from pathlib import Path
>>> firms = pd.DataFrame({"credit_code": ["X1", "X2"], "tax_per_mu": [31.234, 8.5], "grade": ["A", "D"]})
>>> path = write_report({"enterprises": firms}, Path(tempfile.mkdtemp()) / "report.xlsx")
>>> import openpyxl
>>> ws = openpyxl.load_workbook(path)["企业评价结果"]
>>> [c.value for c in ws[1]], ws["B2"].number_format, ws.freeze_panes
(['统一社会信用代码', '亩均税收(万元/亩)', '评价类别'], '#,##0.00', 'A2')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from .export import atomic_path, check_writable
from .gpkg_styles import GRADE_COLOURS
from .labels import GRADE_NAMES, LAYERS, label

__all__ = ["summary_tables", "write_report"]

_SKIP = {"geometry", "config_yaml"}
_PERCENT = (
    "rd_ratio",
    "coverage",
    "ancillary_land_share",
    "ancillary_floor_share",
    "land_share",
    "confidence",
)
_SHEET_ORDER = [
    "enterprises",
    "matches",
    "review",
    "parcels",
    "lowland",
    "high_energy_low_efficiency",
    "standard_land_review",
    "parks",
    "regions",
    "industries",
    "leaders",
    "changes",
    "unmatched",
    "vacant",
    "rejects",
    "problems",
    "run_info",
]


def _number_format(column: str, series: pd.Series) -> str | None:
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    if column in _PERCENT or column.endswith("_share") or column.endswith("_ratio"):
        return "0.00%"
    if column in (
        "row",
        "src_row",
        "rank",
        "year",
        "n_enterprises",
        "employees",
    ) or column.startswith("n_"):
        return "0"
    return "#,##0.00"


def summary_tables(layers: Mapping[str, pd.DataFrame]) -> list[tuple[str, pd.DataFrame]]:
    """The blocks of the 汇总 sheet: (title, table) pairs built from the run's layers."""
    blocks: list[tuple[str, pd.DataFrame]] = []
    firms = layers.get("enterprises")
    if firms is not None and len(firms):
        status = firms.get("match_status", pd.Series("—", index=firms.index)).fillna("—")
        overview = pd.DataFrame(
            {
                "项目": ["企业总数", "已匹配用地", "未匹配", "拒收"],
                "数量": [
                    len(firms),
                    int((status == "matched").sum()),
                    int((status == "unmatched").sum()),
                    int((status == "rejected").sum()),
                ],
            }
        )
        blocks.append(("企业与地企对应", overview))
        if "grade" in firms:
            scale = firms.get("eval_class", firms.get("scale", pd.Series("all", index=firms.index)))
            grade = firms["grade"].fillna("").astype(str)
            table = pd.crosstab(scale.fillna("—"), grade.map(lambda g: GRADE_NAMES.get(g, g)))
            table["合计"] = table.sum(axis=1)
            blocks.append(
                (
                    "评价结果(按评价类别)",
                    table.reset_index().rename(columns={table.index.name or "row_0": "类别"}),
                )
            )
    for name, title, cols in (
        (
            "parks",
            "园区",
            [
                "park_id",
                "name",
                "park_type",
                "area_mu",
                "tax_per_mu",
                "va_per_mu",
                "far",
                "n_a",
                "n_b",
                "n_c",
                "n_d",
                "lowland_mu",
                "rank",
            ],
        ),
        (
            "regions",
            "行政区与目标",
            [
                "region_code",
                "name",
                "level",
                "tax_per_mu",
                "tax_per_mu_target",
                "tax_gap",
                "va_per_mu",
                "tax_per_mu_growth",
            ],
        ),
    ):
        frame = layers.get(name)
        if frame is not None and len(frame):
            keep = [c for c in cols if c in frame]
            blocks.append((title, pd.DataFrame(frame[keep]).rename(columns=label)))
    low = layers.get("lowland")
    if low is not None and len(low):
        reasons = low["lowland_reasons"].fillna("").str.split(";").explode()
        area = (
            low.set_index(low.index)["area_mu"]
            if "area_mu" in low
            else pd.Series(0.0, index=low.index)
        )
        table = pd.DataFrame({"reason": reasons, "area_mu": area.reindex(reasons.index).to_numpy()})
        table = (
            table[table["reason"] != ""]
            .groupby("reason")
            .agg(宗地数=("area_mu", "size"), 面积亩=("area_mu", "sum"))
        )
        table.loc["合计(去重)"] = [len(low), float(area.sum())]
        blocks.append(("低效工业用地", table.reset_index().rename(columns={"reason": "原因"})))
    return blocks


def _write_frame(ws, frame: pd.DataFrame, *, start_row: int = 1) -> int:  # noqa: ANN001
    cols = [c for c in frame.columns if c not in _SKIP]
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDEBF7")
    for j, col in enumerate(cols, start=1):
        cell = ws.cell(row=start_row, column=j, value=label(str(col)))
        cell.font = bold
        cell.fill = head_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        if label(str(col)) != str(col):
            cell.comment = Comment(str(col), "mujun-geo")
    for j, col in enumerate(cols, start=1):
        series = frame[col]
        fmt = _number_format(str(col), series)
        values = series.astype(object).where(series.notna(), None).tolist()
        for i, value in enumerate(values, start=start_row + 1):
            if isinstance(value, (np.generic,)):
                value = value.item()
            if isinstance(value, float) and not np.isfinite(value):
                value = None
            if value is not None and not isinstance(value, (int, float, str, bool)):
                value = str(value)
            cell = ws.cell(row=i, column=j, value=value)
            if fmt:
                cell.number_format = fmt
        width = max(
            [len(label(str(col))) * 2] + [len(str(v)) for v in values[:200] if v is not None]
        )
        letter = get_column_letter(j)
        ws.column_dimensions[letter].width = max(
            ws.column_dimensions[letter].width or 0, min(max(width, 8), 60)
        )
        if col == "grade" and len(values):
            rng = f"{letter}{start_row + 1}:{letter}{start_row + len(values)}"
            for g in "ABCD":
                fill = PatternFill("solid", fgColor=GRADE_COLOURS[g].lstrip("#"))
                ws.conditional_formatting.add(
                    rng, CellIsRule(operator="equal", formula=[f'"{g}"'], fill=fill)
                )
    return start_row + len(frame) + 1


def write_report(
    layers: Mapping[str, pd.DataFrame], path: str | Path, *, overwrite: bool = False
) -> Path:
    """Write ``report.xlsx`` atomically: a 汇总 sheet, then one sheet per table layer."""
    path = check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "汇总"
    row = 1
    ws.cell(row=1, column=1, value="亩均效益综合评价结果汇总").font = Font(bold=True, size=14)
    row = 3
    for title, table in summary_tables(layers):
        ws.cell(row=row, column=1, value=title).font = Font(bold=True, size=12)
        row = _write_frame(ws, table, start_row=row + 1) + 1
    names = [n for n in _SHEET_ORDER if n in layers] + [n for n in layers if n not in _SHEET_ORDER]
    for name in names:
        frame = layers[name]
        sheet = wb.create_sheet(LAYERS.get(name, name)[:31])
        _write_frame(sheet, pd.DataFrame(frame).drop(columns=[c for c in _SKIP if c in frame]))
        sheet.freeze_panes = "A2"
        if len(frame):
            sheet.auto_filter.ref = sheet.dimensions
    tmp = atomic_path(path)
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
