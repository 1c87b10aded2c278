"""The command line as a user runs it: exit codes, messages, files written and read back."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

import pyogrio

from mujun_geo.cli.main import cli
from mujun_geo.datasets import get_path


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    res = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_demo_writes_every_contract_layer(demo_out):
    out, output = demo_out
    layers = dict(pyogrio.list_layers(out / "mujun.gpkg"))
    for name in (
        "enterprises",
        "matches",
        "parcels",
        "lowland",
        "parks",
        "regions",
        "rejects",
        "run_info",
    ):
        assert name in layers, name
    assert layers["parcels"] in ("Polygon", "MultiPolygon") and layers["enterprises"] == "Point"
    assert (out / "report.xlsx").exists()
    assert "grades 评价结果" in output


def test_existing_output_is_never_overwritten_without_flag(demo_out):
    out, _ = demo_out
    before = (out / "mujun.gpkg").stat().st_mtime_ns
    res = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert res.exit_code == 1
    assert "--overwrite" in res.output and "Traceback" not in res.output
    assert (out / "mujun.gpkg").stat().st_mtime_ns == before


def test_run_with_files_and_missing_required_input(tmp_path):
    res = CliRunner().invoke(
        cli, ["run", "--enterprises", str(get_path("enterprises")), "--out", str(tmp_path)]
    )
    assert res.exit_code == 1
    assert "input `parcels` is required" in res.output


def test_bad_usage_exit_code_2():
    res = CliRunner().invoke(cli, ["run", "--coord-sys", "mercator"])
    assert res.exit_code == 2


def test_missing_crs_is_a_user_error_not_a_traceback(tmp_path):
    import shutil

    for ext in (".shp", ".shx", ".dbf"):
        shutil.copy(get_path("parcels").with_suffix(ext), tmp_path / f"zd{ext}")
    res = CliRunner().invoke(
        cli,
        [
            "validate",
            "--parcels",
            str(tmp_path / "zd.shp"),
            "--enterprises",
            str(get_path("enterprises")),
        ],
    )
    assert res.exit_code == 1
    assert "EPSG:4528" in res.output and "--crs" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(
        cli,
        [
            "validate",
            "--parcels",
            str(tmp_path / "zd.shp"),
            "--crs",
            "EPSG:4528",
            "--enterprises",
            str(get_path("enterprises")),
        ],
    )
    assert res.exit_code == 0, res.output


def test_config_show_prints_editable_presets():
    res = CliRunner().invoke(cli, ["config", "show", "huangyan-2022"])
    assert res.exit_code == 0 and "24.097" in res.output
    res = CliRunner().invoke(cli, ["config", "show", "run"])
    assert res.exit_code == 0 and "max_distance: 50.0" in res.output
    res = CliRunner().invoke(cli, ["config", "show", "nope"])
    assert res.exit_code == 2 and "zhejiang-2022" in res.output


def test_run_from_config_file_with_relative_paths(tmp_path):
    import yaml

    sample = get_path("parcels").parent
    cfg = {
        "year": 2022,
        "inputs": {
            "parcels": str(sample / "parcels.shp"),
            "enterprises": str(sample / "enterprises.xlsx"),
        },
        "matching": {"max_distance": 30},
        "output": {"dir": "result", "report": False},
    }
    path = tmp_path / "county.yml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    res = CliRunner().invoke(cli, ["run", "--config", str(path)])
    assert res.exit_code == 0, res.output
    gpkg = tmp_path / "result" / "mujun.gpkg"
    info = pyogrio.read_dataframe(gpkg, layer="run_info").set_index("key")["value"]
    assert "max_distance: 30" in info["config_yaml"]
    # the full scoring rules, not just the preset's name: the 30 % weight of 亩均税收 is in it
    assert "weight: 30" in info["scoring_yaml"] and "zhejiang-2022" in info["scoring_yaml"]
    assert "sha256=" in info["input:parcels"]
    firms = pyogrio.read_dataframe(gpkg, layer="enterprises", read_geometry=False)
    near = pyogrio.read_dataframe(gpkg, layer="matches")
    assert (near.loc[near["method"] == "nearest", "distance_m"] <= 30).all()
    assert len(firms) == len(pd.read_excel(get_path("enterprises")))


def test_review_apply_turns_decisions_into_overrides(tmp_path):
    review = pd.DataFrame(
        {
            "统一社会信用代码": ["A1", "A1", "B2"],
            "宗地代码": ["P1", "P2", "P3"],
            "决定": ["确认", "否决", None],
        }
    )
    path = tmp_path / "review.csv"
    review.to_csv(path, index=False, encoding="utf-8-sig")
    ov = tmp_path / "overrides.csv"
    ov.write_text(
        "统一社会信用代码,宗地代码,操作,备注\nA1,P1,否决,old\nC3,P9,指定,keep\n",
        encoding="utf-8-sig",
    )
    res = CliRunner().invoke(cli, ["review", "apply", str(path), "--overrides", str(ov)])
    assert res.exit_code == 0, res.output
    back = pd.read_csv(ov, encoding="utf-8-sig")
    rows = back[["统一社会信用代码", "宗地代码", "操作"]].values.tolist()
    # the later decision on A1–P1 (确认) wins over the old 否决; C3 is kept; B2 undecided
    assert sorted(rows) == [["A1", "P1", "确认"], ["A1", "P2", "否决"], ["C3", "P9", "指定"]]


def test_dask_engine_gives_the_same_run(tmp_path):
    pytest.importorskip("distributed")
    from mujun_geo.datasets import sample_settings
    from mujun_geo.pipeline import run

    plain = run(sample_settings(), write=False)
    settings = sample_settings()
    settings.engine = "dask"
    dask = run(settings, write=False)
    for name in ("matches", "enterprises", "parcels", "lowland"):
        a = pd.DataFrame(plain.layers[name]).drop(columns="geometry", errors="ignore")
        b = pd.DataFrame(dask.layers[name]).drop(columns="geometry", errors="ignore")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
