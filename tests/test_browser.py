"""The HTML maps in a real browser: headless Chromium with every network request refused.

Each page writes its status as JSON into ``<pre id="mg-status" hidden>`` (ready flag,
JavaScript errors caught by ``window.onerror``, failed resource loads, every resource the
page requested per the Resource Timing API, and the features drawn per layer); Chromium's
``--dump-dom`` prints the DOM after ``--virtual-time-budget`` and the test reads it. A
screenshot (kept in ``tests/artifacts/``) must show the grade colours.

Network off: ``--proxy-server=127.0.0.1:9`` (nothing listens there) with
``--proxy-bypass-list=<-loopback>``, so any http(s) request fails, and no request may be
made at all for a map without basemap.
"""

from __future__ import annotations

import html as htmllib
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mujun_geo import webmap

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is missing: install Debian's `chromium` package "
    "(scripts/install_system_deps.sh) to run the browser tests",
)


def _county():
    # the synthetic county of tests/test_webmap.py (loaded by path: tests is not a package)
    spec = importlib.util.spec_from_file_location(
        "_webmap_tests", Path(__file__).with_name("test_webmap.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.county()


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={profile}",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--virtual-time-budget=5000",
        *args,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def page_status(path: Path, tmp_path: Path, fragment: str = "") -> tuple[dict, str]:
    profile = tmp_path / f"profile-{path.stem}-{abs(hash(fragment))}"
    res = chromium(path.as_uri() + fragment, profile, "--dump-dom")
    m = re.search(r'<pre id="mg-status" hidden="">(.*?)</pre>', res.stdout, re.S)
    assert m, f"no status in the page's DOM; chromium said:\n{res.stderr[-3000:]}"
    return json.loads(htmllib.unescape(m.group(1))), res.stdout


@pytest.fixture(scope="module")
def maps(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("browser_maps")
    layers = _county()
    paths = webmap.make_webmaps(layers, out)
    paths["amap"] = out / "amap.html"
    webmap.write_webmap(webmap.webmap(layers, theme="overview", basemap="amap"), paths["amap"])
    paths["cells"] = out / "cells.html"
    webmap.write_webmap(webmap.webmap(layers, theme="overview", max_features=20), paths["cells"])
    return paths


# features drawn per layer (see tests/test_webmap.py): 36 parcels, 7 low-efficiency,
# 29 others, 10 firms with coordinates, 2 parks, 2 regions
EXPECTED = {
    "overview": {
        "评价类别": 36,
        "亩均税收": 36,
        "低效用地": 7,
        "行政区对照目标": 2,
        "园区": 2,
        "企业": 10,
    },
    "grades": {"评价类别": 36, "园区": 2, "企业": 10},
    "tax_per_mu": {"亩均税收": 36, "园区": 2, "企业": 10},
    "lowland": {"其他宗地": 29, "低效用地": 7, "园区": 2, "企业": 10},
    "regions": {"行政区对照目标": 2, "园区": 2},
}


@pytest.mark.parametrize("theme", list(EXPECTED))
def test_each_map_loads_offline_without_errors_or_requests(maps, tmp_path, theme):
    status, _ = page_status(maps[theme], tmp_path)
    assert status["ready"] is True
    assert status["errors"] == []
    assert status["failed"] == []
    assert status["resources"] == []  # not one file or URL requested
    assert status["counts"] == EXPECTED[theme]


def test_grade_colours_are_on_screen(maps, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "grades.png"
    shot.unlink(missing_ok=True)
    chromium(
        maps["grades"].as_uri(),
        tmp_path / "profile-shot",
        "--window-size=1200,900",
        f"--screenshot={shot}",
    )
    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB"), dtype=float)
    assert px.shape == (900, 1200, 3)

    def on_screen(hex_colour: str) -> int:
        # parcel fill at opacity 0.8 over the map background #f4f4f2 (mujun.css), then the
        # park layer's fill #2b6cb0 at opacity 0.03 on top
        fill = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
        bg = np.array([0xF4, 0xF4, 0xF2], dtype=float)
        park = np.array([0x2B, 0x6C, 0xB0], dtype=float)
        c = 0.97 * (0.8 * fill + 0.2 * bg) + 0.03 * park
        return int((np.abs(px - c).max(axis=2) <= 4).sum())

    # 8 A and 7 D parcels of 80 m; at the fitted zoom each covers hundreds of pixels
    assert on_screen("#1a9850") > 2000
    assert on_screen("#d73027") > 2000
    assert on_screen("#123456") == 0  # a colour that is not on the map


def test_search_by_credit_code_opens_the_firm_popup(maps, tmp_path):
    status, dom = page_status(maps["grades"], tmp_path, "#q=91330600MA00000004")
    assert status["errors"] == []
    assert status["found"] == "绍兴测试4制造有限公司"
    popup = re.search(r'class="leaflet-popup-content"[^>]*>(.*?)</div></div>', dom, re.S)
    assert popup and "91330600MA00000004" in popup.group(1) and "已匹配" in popup.group(1)


def test_search_by_parcel_code_opens_the_parcel_popup(maps, tmp_path):
    status, dom = page_status(maps["overview"], tmp_path, "#q=P013")
    assert status["errors"] == [] and status["found"] == "P013"
    assert "宗地 P013" in dom and "19.50 万元/亩" in dom  # 1.5 × 13


def test_amap_basemap_without_network_still_draws_vectors(maps, tmp_path):
    status, _ = page_status(maps["amap"], tmp_path)
    assert status["ready"] is True and status["errors"] == []
    assert status["counts"]["评价类别"] == 36
    # the only requests are the AMap tiles, and they fail: the network is really off
    assert status["failed"]
    assert all("autonavi.com" in u for u in status["resources"] + status["failed"])


def test_aggregated_map_draws_cells_and_individual_low_parcels(maps, tmp_path):
    status, dom = page_status(maps["cells"], tmp_path)
    assert status["errors"] == [] and status["resources"] == []
    # 4 cells of 500 m (see test_webmap) for grades and tax; the 7 low parcels individually
    assert status["counts"] == {
        "评价类别": 4,
        "亩均税收": 4,
        "低效用地": 7,
        "行政区对照目标": 2,
        "园区": 2,
        "企业": 10,
    }
    assert "按 500 米网格汇总显示" in dom
