"""Static PNG maps: classes, legends, scale bar, fonts, files.

The synthetic county is a 6 × 6 grid of 80 m × 80 m parcels (6400 m² = 9.6 亩 each) with
20 m gaps in EPSG:4549 near 120.6E 30.45N. Parcel ``i`` has grade ``"ABCD-"[i % 5]``
(A: i = 0, 5, …, 35 → 8 parcels; B, C, D, none: 7 each), 亩均税收 ``1.5 i`` (missing
when ``i % 7 == 0``: 0, 7, 14, 21, 28, 35 → 6 parcels) and is low-efficiency when
``i % 5 == 3`` (3, 8, 13, 18, 23, 28, 33 → 7 parcels).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import geopandas as gpd
import shapely
from pyproj import Transformer

from mujun_geo import plot
from mujun_geo._errors import CRSError, MujunGeoError, SchemaError
from mujun_geo._mapstyle import nice_length

MU = 6400 / (2000 / 3)  # 9.6 亩 per parcel


def county() -> dict[str, gpd.GeoDataFrame]:
    x0, y0 = Transformer.from_crs(4326, 4549, always_xy=True).transform(120.6, 30.45)
    i = np.arange(36)
    x, y = x0 + (i % 6) * 100.0, y0 + (i // 6) * 100.0
    low = i % 5 == 3
    reasons = np.array(
        [
            "vacant",
            "idle;d_grade",
            "far_below_min",
            "coverage_below_min",
            "low_tax_per_mu",
            "stopped",
        ]
    )[i % 6]
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": [f"P{k:03d}" for k in i],
            "area_mu": MU,
            "tax_per_mu": np.where(i % 7 == 0, np.nan, 1.5 * i),
            "grade": [["A", "B", "C", "D", None][k % 5] for k in i],
            "lowland": low.astype(int),
            "lowland_reasons": np.where(low, reasons, ""),
        },
        geometry=shapely.box(x, y, x + 80, y + 80),
        crs=4549,
    )
    b = parcels.total_bounds
    mid = x0 + 290.0
    regions = gpd.GeoDataFrame(
        {
            "region_code": ["330602", "330603"],
            "name": ["越城区", "柯桥区"],
            "tax_per_mu": [32.0, 20.0],
            "tax_per_mu_target": [30.0, 30.0],
        },
        geometry=[
            shapely.box(b[0] - 200, b[1] - 200, mid, b[3] + 200),
            shapely.box(mid, b[1] - 200, b[2] + 200, b[3] + 200),
        ],
        crs=4549,
    )
    return {"parcels": parcels, "regions": regions}


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_classify_merges_tied_bins_into_readable_classes():
    # six ties at 0.38 then 1..6 (12 values): Quantiles(k=5) breaks are the 20/40/60/80/100th
    # percentiles (linear): positions 2.2, 4.4 -> 0.38, 0.38; 6.6 -> 1 + 0.6 = 1.6;
    # 8.8 -> 3 + 0.8 = 3.8; 6. The tied 0.38 bins merge: no "0.38–0.38" class.
    values = pd.Series([0.38] * 6 + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, np.nan], index=range(10, 23))
    c = plot.classify(values, scheme="quantiles", k=5)
    assert c.bins == [0.38, 1.6, 3.8, 6.0]
    assert c.labels == ["0.38", "1.00", "2.00–3.00", "4.00–6.00"]
    assert c.index.tolist() == [0] * 6 + [1, 2, 2, 3, 3, 3, -1]
    assert c.index.index.equals(values.index)
    # 4 of the 5 YlGnBu colours, spread: positions round(0, 1.33, 2.67, 4) = 0, 1, 3, 4
    assert c.colors == ["#ffffcc", "#a1dab4", "#2c7fb8", "#253494"]


def test_classify_with_few_distinct_values_gives_one_class_each():
    c = plot.classify(pd.Series([0.384, 0.381, 2.0, None]), k=5)  # 0.38, 0.38, 2.00
    assert c.labels == ["0.38", "2.00"]
    assert c.index.tolist() == [0, 0, 1, -1]


def test_classify_fisherjenks_finds_the_natural_groups():
    values = pd.Series([1.0, 1.1, 1.2, 10.0, 10.5, 11.0, 50.0, 52.0])
    c = plot.classify(values, scheme="fisherjenks", k=3)
    assert c.labels == ["1.00–1.20", "10.00–11.00", "50.00–52.00"]
    assert c.index.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_classify_rejects_unknown_scheme():
    with pytest.raises(ValueError, match=r"\['quantiles', 'fisherjenks'\]"):
        plot.classify(pd.Series([1.0, 2.0]), scheme="jenks")  # type: ignore[arg-type]


def test_target_status_uses_target_or_gap():
    # 30/30 = 1.0 met; 25/28 = 0.89 near; 20/30 = 0.67 below; no target -> none
    r = pd.DataFrame(
        {"tax_per_mu": [30.0, 25.0, 20.0, 9.0], "tax_per_mu_target": [30.0, 28.0, 30.0, np.nan]}
    )
    assert plot.target_status(r).tolist() == ["met", "near", "below", "none"]
    # gap = actual - target: target = 30 - (-6) = 36 -> 30/36 = 0.83 near
    g = pd.DataFrame({"tax_per_mu": [30.0], "tax_gap": [-6.0]})
    assert plot.target_status(g).tolist() == ["near"]


@pytest.mark.parametrize(("span", "length"), [(2300, 500), (10_000, 2000), (90, 20), (400, 100)])
def test_scale_bar_length_is_a_round_number_below_a_quarter_of_the_span(span, length):
    # 2300/4 = 575 -> 500; 10000/4 = 2500 -> 2000; 90/4 = 22.5 -> 20; 400/4 = 100 -> 100
    assert nice_length(span) == length


def test_plot_grades_legend_counts_scale_bar_and_pixel_size(tmp_path):
    parcels = county()["parcels"]
    out = tmp_path / "g.png"
    fig, ax = plot.plot_grades(
        parcels,
        figsize=(8, 6),
        dpi=100,
        save=True,
        filepath=out,
        date="2024-05-01",
        source="测试数据",
    )
    try:
        assert legend_texts(ax) == [
            "A 优先发展类（8 宗，76.8 亩）",  # 8 × 9.6
            "B 鼓励提升类（7 宗，67.2 亩）",  # 7 × 9.6
            "C 规范转型类（7 宗，67.2 亩）",
            "D 整治提升类（7 宗，67.2 亩）",
            "未评价（7 宗，67.2 亩）",
        ]
        texts = [t.get_text() for t in ax.texts]
        assert "数据来源：测试数据    制图日期：2024-05-01" in texts
        assert "N" in texts
        # the map spans 580 m of parcels plus margins and is widened to the axes' aspect:
        # whatever the x-span, the bar is nice_length(x-span) and labelled 0, L/2, L with "m"
        span = ax.get_xlim()[1] - ax.get_xlim()[0]
        length = nice_length(span)
        assert {"0", f"{length / 2:g}", f"{length:g}", "m"} <= set(texts)
        assert ax.get_aspect() == 1.0
    finally:
        plt.close(fig)
    with Image.open(out) as im:
        assert im.size == (800, 600)


def test_plot_tax_per_mu_legend_reads_in_wan_yuan_per_mu():
    parcels = county()["parcels"]
    fig, ax = plot.plot_tax_per_mu(parcels, figsize=(6, 4), dpi=50, k=5)
    try:
        labels = legend_texts(ax)
        # 30 values 1.5·i (i = 1..34, not multiples of 7) in 5 quantile classes of 6
        assert labels[0] == "1.50–9.00（6 宗）"  # i = 1..6
        assert labels[-1] == "无数据（6 宗）"  # i = 0, 7, 14, 21, 28, 35
        assert ax.get_legend().get_title().get_text() == "亩均税收（万元/亩）"
        for lab in labels[:-1]:
            lo, hi = lab.split("（")[0].split("–")
            assert float(lo) < float(hi)
    finally:
        plt.close(fig)


def test_plot_lowland_colours_by_first_reason():
    parcels = county()["parcels"]
    fig, ax = plot.plot_lowland(parcels, figsize=(6, 4), dpi=50)
    try:
        # low i = 3, 8, 13, 18, 23, 28, 33; reason index i % 6 = 3, 2, 1, 0, 5, 4, 3
        assert legend_texts(ax)[:7] == [
            "空置(无企业)（1 宗，9.6 亩）",  # i = 18
            "未建设(无建筑)（1 宗，9.6 亩）",  # i = 13: "idle;d_grade" -> first = idle
            "容积率低于行业下限（1 宗，9.6 亩）",  # i = 8
            "建筑系数低于下限（2 宗，19.2 亩）",  # i = 3, 33
            "亩均税收偏低（1 宗，9.6 亩）",  # i = 28
            "停产(零税收零用电)（1 宗，9.6 亩）",  # i = 23
            "非低效用地（29 宗）",  # 36 - 7
        ]
    finally:
        plt.close(fig)


def test_plot_regions_against_target_and_without_targets():
    regions = county()["regions"]
    fig, ax = plot.plot_regions(regions, figsize=(6, 4), dpi=50)
    try:
        # 32/30 met; 20/30 = 0.67 below
        assert legend_texts(ax)[:4] == [
            "达到目标（1）",
            "低于目标 20% 以内（0）",
            "低于目标 20% 以上（1）",
            "无目标或无数据（0）",
        ]
        assert {"越城区\n32.0/30.0", "柯桥区\n20.0/30.0"} <= {t.get_text() for t in ax.texts}
    finally:
        plt.close(fig)
    fig, ax = plot.plot_regions(regions.drop(columns="tax_per_mu_target"), figsize=(6, 4), dpi=50)
    try:
        assert ax.get_legend().get_title().get_text() == "亩均税收（万元/亩；未提供目标值）"
        assert legend_texts(ax)[:2] == ["20.00", "32.00"]
    finally:
        plt.close(fig)


def test_make_static_maps_writes_every_png_at_print_size_and_refuses_overwrite(tmp_path):
    layers = county()
    paths = plot.make_static_maps(layers, tmp_path, dpi=40, figsize=(10, 7), date="2024-05-01")
    assert sorted(paths) == ["grades", "lowland", "regions", "tax_per_mu"]
    for p in paths.values():
        with Image.open(p) as im:
            assert im.size == (400, 280)  # 10 in × 40 dpi, 7 in × 40 dpi
    before = paths["grades"].stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="overwrite=True"):
        plot.make_static_maps(layers, tmp_path, dpi=40)
    assert paths["grades"].stat().st_mtime_ns == before
    assert not list(tmp_path.glob("*.partial-*"))


def test_default_print_resolution_is_300_dpi(tmp_path):
    out = tmp_path / "g.png"
    fig, _ = plot.plot_grades(county()["parcels"], figsize=(2, 1.5), save=True, filepath=out)
    plt.close(fig)
    with Image.open(out) as im:
        assert im.size == (600, 450)  # 2 in × 300 dpi, 1.5 in × 300 dpi


def test_missing_cjk_font_says_what_to_install():
    with pytest.raises(MujunGeoError, match="apt-get install fonts-noto-cjk"):
        plot.find_cjk_font(families=("No Such Font SC",), search_files=False)


def test_a_cjk_font_is_found_here():
    assert plot.find_cjk_font() in (
        "Noto Sans CJK SC",
        "Source Han Sans SC",
        "Source Han Sans CN",
        "Noto Sans SC",
        "WenQuanYi Zen Hei",
        "WenQuanYi Micro Hei",
        "Microsoft YaHei",
        "SimHei",
        "PingFang SC",
        "Noto Sans CJK JP",
        "Droid Sans Fallback",
    )


def test_geographic_or_missing_columns_are_errors():
    parcels = county()["parcels"]
    with pytest.raises(CRSError, match="to_crs"):
        plot.plot_grades(parcels.to_crs(4490))
    with pytest.raises(SchemaError, match=r"\['grade'\]"):
        plot.plot_grades(parcels.drop(columns="grade"))
    with pytest.raises(ValueError, match="filepath"):
        plot.plot_grades(parcels, save=True)


def test_plot_regions_keeps_cities_and_only_counties_with_figures():
    from shapely import box

    regions = gpd.GeoDataFrame(
        {
            "region_code": ["330400", "330481", "330482", "330100"],
            "name": ["嘉兴市", "海宁市", "平湖市", "杭州市"],
            "level": ["city", "county", "county", "city"],
            "tax_per_mu": [29.9, 29.9, np.nan, np.nan],
            "tax_per_mu_target": [31.0, np.nan, np.nan, 57.0],
        },
        geometry=[
            box(0, 0, 100, 100),
            box(0, 0, 50, 50),
            box(50, 50, 100, 100),
            box(200, 0, 300, 100),
        ],
        crs=4549,
    )
    fig, ax = plot.plot_regions(regions, dpi=50)
    texts = sorted(t.get_text() for t in ax.texts if "市" in t.get_text())
    # 平湖市 (a county without figures) is not drawn; a missing actual reads "—", not "nan"
    assert texts == ["嘉兴市\n29.9/31.0", "杭州市\n—/57.0", "海宁市\n29.9"]
    plt.close(fig)
