import shutil
import subprocess

import openpyxl
import pandas as pd
import pytest

from mujun_geo.report import summary_tables, write_report


@pytest.fixture
def layers():
    firms = pd.DataFrame(
        {
            "credit_code": ["X1", "X2", "X3"],
            "name": ["甲", "乙", "丙"],
            "tax_per_mu": [31.234, 8.5, None],
            "rd_ratio": [0.031, 0.0, None],
            "grade": ["A", "D", ""],
            "eval_class": ["above", "below", "above"],
            "match_status": ["matched", "matched", "unmatched"],
        }
    )
    lowland = pd.DataFrame(
        {
            "parcel_id": ["P1", "P2"],
            "area_mu": [12.0, 3.0],
            "lowland_reasons": ["vacant", "far_below_min;low_tax_per_mu"],
        }
    )
    rejects = pd.DataFrame(
        {"source": ["e.xlsx"], "row": [5], "key": ["X9"], "reason": ["重复代码"]}
    )
    return {"enterprises": firms, "lowland": lowland, "rejects": rejects}


def test_sheets_headers_formats_and_grade_colours(tmp_path, layers):
    path = write_report(layers, tmp_path / "report.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "企业评价结果", "低效工业用地", "拒收记录"]
    ws = wb["企业评价结果"]
    headers = [c.value for c in ws[1]]
    assert headers[:3] == ["统一社会信用代码", "名称", "亩均税收(万元/亩)"]
    assert ws["A1"].comment.text == "credit_code"
    assert ws["C2"].value == pytest.approx(31.234) and ws["C2"].number_format == "#,##0.00"
    assert ws["D2"].number_format == "0.00%"
    assert ws.freeze_panes == "A2"
    rules = ws.conditional_formatting
    formulas = sorted(r.formula[0] for rng in rules for r in rng.rules)
    assert formulas == ['"A"', '"B"', '"C"', '"D"']


def test_summary_counts(layers):
    blocks = dict(summary_tables(layers))
    overview = blocks["企业与地企对应"].set_index("项目")["数量"].to_dict()
    assert overview == {"企业总数": 3, "已匹配用地": 2, "未匹配": 1, "拒收": 0}
    grades = blocks["评价结果(按评价类别)"].set_index("类别")
    assert grades.loc["above", "A 优先发展类"] == 1 and grades.loc["below", "D 整治提升类"] == 1
    low = blocks["低效工业用地"].set_index("原因")
    # P2 has two reasons; the deduplicated total counts it once: 2 parcels, 15 亩
    assert low.loc["far_below_min", "面积亩"] == 3.0 and low.loc["合计(去重)", "面积亩"] == 15.0
    assert low.loc["合计(去重)", "宗地数"] == 2


@pytest.mark.skipif(
    shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed"
)
def test_libreoffice_opens_the_report(tmp_path, layers):
    path = write_report(layers, tmp_path / "report.xlsx")
    res = subprocess.run(
        [
            "soffice",
            "--headless",
            "--norestore",
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
            "--outdir",
            str(tmp_path / "csv"),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr
    out = sorted((tmp_path / "csv").glob("*.csv"))
    assert len(out) == 4  # one CSV per sheet: LibreOffice read every sheet
    text = (tmp_path / "csv" / "report-企业评价结果.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("统一社会信用代码,名称,亩均税收(万元/亩)")
    assert "31.23" in text
