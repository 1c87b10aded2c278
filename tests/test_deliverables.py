"""What analysts open: the GeoPackage in GDAL/QGIS terms, the review loop, year over year, sharing."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import numpy as np
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

import pyogrio

from mujun_geo.cli.main import cli
from mujun_geo.datasets import sample_settings
from mujun_geo.export import write_geopackage
from mujun_geo.labels import COLUMNS, label
from mujun_geo.pipeline import run


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    settings = sample_settings()
    settings.output.update({"dir": out, "maps": False})
    result = run(settings)
    return out, result


def test_every_layer_readable_by_gdal_with_aliases_and_styles(demo):
    out, result = demo
    path = out / "mujun.gpkg"
    layers = dict(pyogrio.list_layers(path))
    for name, frame in result.layers.items():
        assert name in layers, name
        back = pyogrio.read_dataframe(path, layer=name, read_geometry=False)
        assert len(back) == len(frame), name
        assert back.columns.tolist() == [c for c in frame.columns if c != "geometry"], name
    # the filtered layers are views over their base tables, with the frames' rows
    con = sqlite3.connect(path)
    views = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    con.close()
    assert views == {"lowland", "vacant", "unmatched"}
    for name, key in [
        ("lowland", "parcel_id"),
        ("vacant", "parcel_id"),
        ("unmatched", "credit_code"),
    ]:
        back = pyogrio.read_dataframe(path, layer=name, columns=[key], read_geometry=False)
        assert back[key].tolist() == result.layers[name][key].tolist(), name
    if shutil.which("ogrinfo"):
        res = subprocess.run(
            ["ogrinfo", "-ro", "-so", "-al", str(path)], capture_output=True, text=True
        )
        assert res.returncode == 0 and "ERROR" not in res.stderr, res.stderr
        assert res.stdout.count("Layer name:") == len(layers)
    con = sqlite3.connect(path)
    aliases = con.execute("SELECT table_name, column_name, name FROM gpkg_data_columns").fetchall()
    styles = con.execute(
        "SELECT f_table_name, styleName, useAsDefault FROM layer_styles"
    ).fetchall()
    con.close()
    alias = {(t, c): n for t, c, n in aliases}
    for name, frame in result.layers.items():
        for col in frame.columns:
            if col in COLUMNS:
                assert alias[(name, col)] == label(col), (name, col)
    geo_layers = {n for n, g in layers.items() if g is not None}
    defaults = {t for t, _, d in styles if d == 1}
    assert defaults == geo_layers
    assert ("parcels", "亩均税收", 0) in styles


def _gdal_python() -> str | None:
    """A Python with GDAL's own bindings and sample scripts (Debian's python3-gdal)."""
    for exe in ("/usr/bin/python3", shutil.which("python3")):
        if (
            exe
            and subprocess.run(
                [exe, "-c", "import osgeo_utils.samples.validate_gpkg"],
                capture_output=True,
                cwd="/",
            ).returncode
            == 0
        ):
            return exe
    return None


def test_geopackage_passes_gdals_validator(demo):
    # GDAL's validate_gpkg.py checks the GeoPackage 1.2 requirements (tables, extensions,
    # spatial views, R-trees, DATETIME text) and, with --extra, every value
    exe = _gdal_python()
    if exe is None:
        pytest.skip("no python3-gdal (osgeo_utils) on this machine")
    out, _ = demo
    res = subprocess.run(
        [exe, "-m", "osgeo_utils.samples.validate_gpkg", "--extra", str(out / "mujun.gpkg")],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert res.returncode == 0 and not res.stdout.strip() and not res.stderr.strip(), (
        res.stdout + res.stderr
    )


def test_report_has_chinese_sheets_and_review_sheet(demo):
    out, result = demo
    wb = openpyxl.load_workbook(out / "report.xlsx", read_only=True)
    assert wb.sheetnames[0] == "汇总"
    assert {"企业评价结果", "地企对应关系", "待人工复核", "宗地", "行政区", "拒收记录"} <= set(
        wb.sheetnames
    )
    header = [c.value for c in next(wb["待人工复核"].iter_rows(max_row=1))]
    assert header[0] == "统一社会信用代码" and header[-1] == "决定"


def test_review_loop_from_the_excel_sheet(demo, tmp_path):
    out, result = demo
    review = result.layers["review"]
    assert len(review) > 0
    # staff confirm the candidate found by name and reject the others, in Excel
    wb = openpyxl.load_workbook(out / "report.xlsx")
    ws = wb["待人工复核"]
    head = [c.value for c in ws[1]]
    col_method, col_dec = head.index("匹配方式") + 1, head.index("决定") + 1
    for r in range(2, ws.max_row + 1):
        ws.cell(r, col_dec, "确认" if ws.cell(r, col_method).value == "name" else "否决")
    filled = tmp_path / "filled.xlsx"
    wb.save(filled)
    overrides = tmp_path / "overrides.csv"
    shutil.copy(sample_settings().inputs["overrides"], overrides)
    res = CliRunner().invoke(cli, ["review", "apply", str(filled), "--overrides", str(overrides)])
    assert res.exit_code == 0, res.output
    settings = sample_settings()
    settings.inputs["overrides"] = overrides
    again = run(settings, write=False, until="match")
    m = again.layers["matches"]
    decided = m[m["credit_code"].isin(review["credit_code"])]
    assert not (decided["status"] == "review").any()
    by_name = decided[decided["method"] == "name"]
    assert (by_name["status"] == "confirmed").all() and len(by_name) == (
        review["method"] == "name"
    ).sum()
    firms = again.layers["enterprises"].set_index("credit_code")
    assert (firms.loc[review["credit_code"].unique(), "match_status"] == "matched").all()


def test_match_tables_are_identical_on_rerun(tmp_path):
    a = run(sample_settings(), write=False, until="match").layers["matches"]
    b = run(sample_settings(), write=False, until="match").layers["matches"]
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_year_over_year_with_previous_output(demo, tmp_path):
    out, result = demo
    prev = {k: result.layers[k].copy() for k in ("enterprises", "parcels", "regions")}
    firms = prev["enterprises"]
    a_firm = firms.index[firms["grade"] == "A"][0]
    firms.loc[a_firm, "grade"] = "C"  # last year C, this year A: up two grades
    regions = prev["regions"]
    regions["tax_per_mu"] = regions["tax_per_mu"] * 0.9  # this year is 1/0.9 − 1 = 11.1 % higher
    low_pid = result.layers["lowland"]["parcel_id"].iloc[0]
    parcels = prev["parcels"]
    parcels.loc[parcels["parcel_id"] == low_pid, "lowland"] = 0
    prev_path = write_geopackage(prev, tmp_path / "2021.gpkg")
    settings = sample_settings()
    settings.inputs["previous"] = prev_path
    res = run(settings, write=False)
    changes = res.layers["changes"].set_index("credit_code")
    code = firms.loc[a_firm, "credit_code"]
    assert changes.loc[code, "change"] == 2 and changes.loc[code, "note"] == "升档"
    assert (changes.drop(index=code)["change"].fillna(0) == 0).all()
    reg = res.layers["regions"].set_index("region_code")
    assert reg.loc["330481", "tax_per_mu_growth"] == pytest.approx(1 / 0.9 - 1)
    assert bool(reg.loc["330481", "tax_per_mu_growth_met"])
    pc = res.layers["parcel_changes"].set_index("parcel_id")
    assert pc.loc[low_pid, "note"] == "新认定低效"
    assert (pc["note"] != "").sum() == 1


def test_pseudonymised_run_hides_codes_and_names_consistently(tmp_path, monkeypatch):
    monkeypatch.setenv("MUJUN_SALT", "a-county-secret")
    res = CliRunner().invoke(
        cli,
        [
            "run",
            "--parcels",
            str(sample_settings().inputs["parcels"]),
            "--enterprises",
            str(sample_settings().inputs["enterprises"]),
            "--out",
            str(tmp_path),
            "--pseudonymise",
            "--no-maps",
        ],
    )
    assert res.exit_code == 0, res.output
    gpkg = tmp_path / "mujun.gpkg"
    firms = pyogrio.read_dataframe(gpkg, layer="enterprises", read_geometry=False)
    matches = pyogrio.read_dataframe(gpkg, layer="matches")
    raw = pd.read_excel(sample_settings().inputs["enterprises"], dtype=str)
    assert firms["credit_code"].str.startswith("P-").all()
    assert not set(firms["name"]) & set(raw["企业名称"])
    # the same salt gives the same pseudonym in every layer: tables still join
    assert set(matches["credit_code"]) <= set(firms["credit_code"])
    # ... and the filtered layers are still views of their (pseudonymised) base layers
    con = sqlite3.connect(gpkg)
    views = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    con.close()
    assert {"lowland", "vacant", "unmatched"} <= views
    # figures are untouched (every input row is in the layer, rejected ones included)
    assert np.isclose(firms["tax"].sum(), pd.to_numeric(raw["税收(万元)"], errors="coerce").sum())
    xlsx = openpyxl.load_workbook(tmp_path / "report.xlsx", read_only=True)
    text = " ".join(str(c.value) for row in xlsx["企业评价结果"].iter_rows() for c in row)
    assert raw["企业名称"].iloc[0] not in text


def test_pseudonymise_without_salt_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("MUJUN_SALT", raising=False)
    res = CliRunner().invoke(
        cli,
        [
            "run",
            "--parcels",
            str(sample_settings().inputs["parcels"]),
            "--enterprises",
            str(sample_settings().inputs["enterprises"]),
            "--out",
            str(tmp_path),
            "--pseudonymise",
        ],
    )
    assert res.exit_code == 1 and "salt" in res.output
    assert not (tmp_path / "mujun.gpkg").exists()


def test_explain_command_prints_the_computation():
    settings = sample_settings()
    firms = run(settings, write=False, until="evaluate").layers["enterprises"]
    code = firms.loc[firms["grade"] == "B", "credit_code"].iloc[0]
    res = CliRunner().invoke(cli, ["explain", code, "--demo"])
    assert res.exit_code == 0, res.output
    assert code in res.output and "亩均税收" in res.output and "B" in res.output
    score = firms.loc[firms["credit_code"] == code, "score"].iloc[0]
    assert f"{score:.2f}" in res.output


@pytest.mark.skipif(
    shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed"
)
def test_libreoffice_reads_the_demo_report(demo, tmp_path):
    out, result = demo
    # every sheet to CSV: LibreOffice must load the whole workbook without a repair prompt
    res = subprocess.run(
        [
            "soffice",
            "--headless",
            "--norestore",
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
            "--outdir",
            str(tmp_path),
            str(out / "report.xlsx"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    sheets = openpyxl.load_workbook(out / "report.xlsx", read_only=True).sheetnames
    assert len(list(tmp_path.glob("report-*.csv"))) == len(sheets)
    summary = (tmp_path / "report-汇总.csv").read_text(encoding="utf-8")
    n_firms = len(result.layers["enterprises"])
    assert f"企业总数,{n_firms}" in summary


def test_demo_written_by_two_processes_is_the_same_file(
    demo, tmp_path, monkeypatch, same_geopackage
):
    from mujun_geo import export
    from mujun_geo._fork import can_fork
    from mujun_geo.gpkg_styles import add_styles
    from mujun_geo.stages import SUBSET_LAYERS

    if not can_fork():
        pytest.skip("two-process export runs on Linux only")
    _, result = demo
    layers = result.layers
    monkeypatch.setattr(export, "_OFFLOAD_MIN_ROWS", 1)  # the sample county is small
    monkeypatch.setattr(export, "_OFFLOAD_MIN_REST", 1)
    # (in the sample county the enterprises have the most cells: 78 columns)
    assert export._offloaded_layer(layers, SUBSET_LAYERS) == "enterprises"

    def write(path):
        return write_geopackage(
            layers, path, postprocess=lambda tmp: add_styles(tmp, layers), subsets=SUBSET_LAYERS
        )

    two = write(tmp_path / "two.gpkg")
    monkeypatch.setattr(export, "can_fork", lambda: False)
    one = write(tmp_path / "one.gpkg")
    same_geopackage(two, one)  # styles and aliases included
    if shutil.which("ogrinfo"):
        res = subprocess.run(
            ["ogrinfo", "-ro", "-so", "-al", str(two)], capture_output=True, text=True
        )
        assert res.returncode == 0 and "ERROR" not in res.stderr, res.stderr
