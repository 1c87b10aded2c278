"""Interactive HTML maps: offline assets, data blocks, GCJ-02 shift, aggregation, files.

Synthetic county (same as tests/test_plot.py): 6 × 6 parcels of 80 m × 80 m (9.6 亩) with
20 m gaps in EPSG:4549 near 120.6E 30.45N; parcel ``i`` has grade ``"ABCD-"[i % 5]``,
亩均税收 ``1.5 i`` (missing when ``i % 7 == 0``), lowland when ``i % 5 == 3``. Twelve firms,
the first ten at the centroids of parcels 0, 3, …, 27, the last two without coordinates;
two parks and two regions split the grid between columns 2 and 3.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import geopandas as gpd
import shapely
from pyproj import Transformer

from mujun_geo import coords, webmap
from mujun_geo._errors import ConfigError, CRSError, MujunGeoError
from mujun_geo._webmap_data import grid_cells

MU = 6400 / (2000 / 3)


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
            "land_use": "0601",
            "area_mu": MU,
            "n_enterprises": i % 3,
            "tax_per_mu": np.where(i % 7 == 0, np.nan, 1.5 * i),
            "far": 0.5 + i / 40,
            "coverage": 0.2 + i / 100,
            "grade": [["A", "B", "C", "D", None][k % 5] for k in i],
            "lowland": low.astype(int),
            "lowland_reasons": np.where(low, reasons, ""),
            "holder_name": [f"测试企业{k}有限公司" for k in i],
            "park_id": np.where(i % 6 < 3, "K1", "K2"),
        },
        geometry=shapely.box(x, y, x + 80, y + 80),
        crs=4549,
    )
    f = np.arange(12)
    firms = gpd.GeoDataFrame(
        {
            "credit_code": [f"91330600MA{k:08d}" for k in f],
            "name": [f"绍兴测试{k}制造有限公司" for k in f],
            "grade": [["A", "B", "C", "D", None][k % 5] for k in f],
            "score": f * 7.5,
            "tax_per_mu": f * 2.0,
            "match_status": ["matched"] * 10 + ["unmatched"] * 2,
            "parcel_ids": [f"P{k * 3:03d}" for k in f],
            "grade_note": "",
        },
        geometry=[parcels.geometry.iloc[k * 3].centroid if k < 10 else None for k in f],
        crs=4549,
    )
    b = parcels.total_bounds
    mid = x0 + 290.0
    halves = [(b[0], mid), (mid, b[2])]
    parks = gpd.GeoDataFrame(
        {
            "park_id": ["K1", "K2"],
            "name": ["高新园区", "小微企业园"],
            "park_type": ["高新区", "小微企业园"],
            "tax_per_mu": [20.0, 12.5],
            "n_a": [3, 1],
        },
        geometry=[shapely.box(lo - 10, b[1] - 10, hi + 10, b[3] + 10) for lo, hi in halves],
        crs=4549,
    )
    regions = gpd.GeoDataFrame(
        {
            "region_code": ["330602", "330603"],
            "name": ["越城区", "柯桥区"],
            "tax_per_mu": [32.0, 20.0],
            "tax_per_mu_target": [30.0, 30.0],
        },
        geometry=[shapely.box(lo - 200, b[1] - 200, hi + 200, b[3] + 200) for lo, hi in halves],
        crs=4549,
    )
    return {"parcels": parcels, "enterprises": firms, "parks": parks, "regions": regions}


def block(html: str, data_id: str) -> dict:
    m = re.search(rf'<script type="application/json" id="{data_id}">(.*?)</script>', html, re.S)
    assert m, f"no data block {data_id}"
    return json.loads(m.group(1))


def rows(html: str, data_id: str) -> list[dict]:
    d = block(html, data_id)
    return [dict(zip(d["k"], v)) for v in d["v"]]


def geometry_of(html: str, data_id: str, key: str, value: str) -> dict:
    d = block(html, data_id)
    k = d["k"].index(key)
    (pos,) = [n for n, v in enumerate(d["v"]) if v[k] == value]
    return d["g"][pos]


def layer_configs(html: str) -> list[dict]:
    found = re.findall(r"MG\.(?:polygons|firms)\(map_\w+, (\{.*?\})\);", html)
    return [json.loads(s) for s in found]


def external_refs(html: str) -> list[str]:
    return re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]+)", html)


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    out = tmp_path_factory.mktemp("maps")
    paths = webmap.make_webmaps(county(), out)
    return {k: p.read_text(encoding="utf-8") for k, p in paths.items()}


def test_all_themes_written_with_no_external_script_or_stylesheet(maps):
    assert sorted(maps) == sorted(webmap.THEMES)
    for theme, html in maps.items():
        assert external_refs(html) == [], theme
        # the only absolute URL in an attribute is Leaflet's attribution link (an <a>)
        urls = re.findall(r"(?:src|href)=[\"']?(https?://[^\"'\s>]+)", html)
        assert set(urls) <= {"https://leafletjs.com"}, urls
        assert "Leaflet 1.9.4" in html  # the vendored library is inlined
        assert "cdn.jsdelivr" not in html and "bootstrap" not in html.lower()
    assert "L.MarkerClusterGroup" in maps["grades"]  # markercluster inlined where firms are drawn
    assert "L.MarkerClusterGroup" not in maps["regions"]


def test_parcel_block_holds_every_parcel_with_its_figures(maps):
    html = maps["grades"]
    r = {row["i"]: row for row in rows(html, "mg-parcels")}
    assert len(r) == 36
    # P013: grade "ABCD-"[13 % 5 = 3] = D, tax 1.5 × 13 = 19.5, lowland (13 % 5 == 3),
    # 9.6 亩, coverage 0.2 + 13/100 = 0.33
    p = r["P013"]
    assert (p["g"], p["t"], p["l"], p["r"], p["q"], p["a"]) == (
        "D",
        19.5,
        1,
        "idle;d_grade",
        "idle",
        9.6,
    )
    assert p["c"] == pytest.approx(0.33)
    assert r["P004"]["g"] == "N" and r["P007"]["t"] is None  # 未评价; 1.5 × 7 missing (7 % 7 == 0)


def test_vertices_are_wgs84_rounded_to_six_decimals(maps):
    # the 80 m square keeps its corners after 0.5 m simplification; each corner reprojected
    # with pyproj and rounded to 1e-6 degree must appear in the ring
    p = county()["parcels"].set_index("parcel_id").loc["P000"]
    to4326 = Transformer.from_crs(4549, 4326, always_xy=True)
    ring = geometry_of(maps["grades"], "mg-parcels", "i", "P000")["coordinates"][0]
    got = {tuple(v) for v in ring}
    for x, y in list(p.geometry.exterior.coords)[:4]:
        lon, lat = to4326.transform(x, y)
        assert (round(lon, 6), round(lat, 6)) in got
    assert all(len(str(c).split(".")[1]) <= 6 for v in ring for c in v)


def test_amap_basemap_shifts_vectors_to_gcj02(tmp_path):
    layers = county()
    html = webmap.render_html(webmap.webmap(layers, theme="grades", basemap="amap"))
    p = layers["parcels"].set_index("parcel_id").loc["P000"]
    x, y = p.geometry.exterior.coords[0]
    lon, lat = Transformer.from_crs(4549, 4326, always_xy=True).transform(x, y)
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    ring = geometry_of(html, "mg-parcels", "i", "P000")["coordinates"][0]
    assert [round(float(glon), 6), round(float(glat), 6)] in ring
    # the shift near 120.6E 30.45N is hundreds of metres (Δlon·96 km/° and Δlat·111 km/°)
    assert np.hypot((glon - lon) * 96_000, (glat - lat) * 111_000) > 300
    firm = rows(html, "mg-firms")[0]
    c = layers["enterprises"].geometry.iloc[0]
    flon, flat = Transformer.from_crs(4549, 4326, always_xy=True).transform(c.x, c.y)
    gx, gy = coords.wgs84_to_gcj02(flon, flat)
    assert (firm["x"], firm["y"]) == (
        pytest.approx(float(gx), abs=1e-6),
        pytest.approx(float(gy), abs=1e-6),
    )
    assert "webrd0{s}.is.autonavi.com" in html and "GCJ-02" in html


def test_tianditu_needs_a_key_and_uses_vec_and_cva_tiles():
    with pytest.raises(ConfigError, match="`tk`"):
        webmap.webmap(county(), basemap="tianditu")
    html = webmap.render_html(webmap.webmap(county(), basemap="tianditu", tk="KEY123"))
    assert "vec_w/wmts" in html and "cva_w/wmts" in html and "tk=KEY123" in html
    assert external_refs(html) == []  # tile URL templates are not <script>/<link> loads


def test_bad_options_are_rejected_with_the_allowed_list():
    with pytest.raises(ValueError, match=r"\['tianditu', 'amap', 'osm'\]"):
        webmap.webmap(county(), basemap="google")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'overview', 'grades'"):
        webmap.webmap(county(), theme="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_features"):
        webmap.webmap(county(), max_features=0)
    layers = county()
    layers["parcels"] = layers["parcels"].set_crs(None, allow_override=True)
    with pytest.raises(CRSError, match=r"`parcels` has no CRS: call `parcels.set_crs"):
        webmap.webmap(layers)
    with pytest.raises(CRSError, match="`parcels` has no CRS"):
        webmap.webmap(layers, max_features=10)  # the grid-cell path too
    with pytest.raises(TypeError, match="`regions` must be a GeoDataFrame"):
        webmap.webmap({"regions": county()["regions"].drop(columns="geometry")})


def test_legends_popups_and_tax_classes(maps):
    cfgs = {c["name"]: c for c in layer_configs(maps["overview"])}
    assert list(cfgs) == ["评价类别", "亩均税收", "低效用地", "行政区对照目标", "园区", "企业"]
    grades = cfgs["评价类别"]["legend"]["items"]
    assert grades == [
        ["#1a9850", "A 优先发展类"],
        ["#91cf60", "B 鼓励提升类"],
        ["#fc8d59", "C 规范转型类"],
        ["#d73027", "D 整治提升类"],
        ["#bdbdbd", "未评价"],
    ]
    tax = cfgs["亩均税收"]["legend"]
    assert tax["title"] == "亩均税收（万元/亩）"
    # 30 values 1.5·i in quantile classes of 6: i = 1..6 | 8..13 | 15..20 | 22..27 | 29..34
    assert [lab for _, lab in tax["items"]] == [
        "1.50–9.00",
        "12.00–19.50",
        "22.50–30.00",
        "33.00–40.50",
        "43.50–51.00",
        "无数据",
    ]
    low = cfgs["低效用地"]
    assert low["filter"] == {"key": "l", "values": [1]}
    assert [lab for _, lab in low["legend"]["items"]][:2] == ["空置(无企业)", "未建设(无建筑)"]
    fields = {f[0] for f in cfgs["评价类别"]["popup"]["fields"]}
    assert {"权利人", "亩均税收", "容积率", "建筑系数", "评价类别", "低效原因"} <= fields
    assert cfgs["评价类别"]["search"] == ["i", "h"] and "search" not in cfgs["亩均税收"]


def test_firms_without_coordinates_are_reported_on_the_map(maps):
    firms = rows(maps["overview"], "mg-firms")
    assert len(firms) == 10  # firms 10 and 11 have no geometry
    assert firms[4]["n"] == "绍兴测试4制造有限公司" and firms[4]["g"] == "N"
    assert "2 家企业无坐标，未在图上显示。" in maps["overview"]


def test_regions_map_status_against_target(maps):
    r = {row["n"]: row for row in rows(maps["regions"], "mg-regions")}
    # 越城区 32 vs 30: met, gap +2; 柯桥区 20 vs 30: 0.67 < 0.8 below, gap -10
    assert (r["越城区"]["s"], r["越城区"]["gp"]) == ("met", 2.0)
    assert (r["柯桥区"]["s"], r["柯桥区"]["gp"]) == ("below", -10.0)


def test_parcels_above_max_features_are_drawn_as_grid_cells(tmp_path):
    # max_features=20 -> at most 4 cells. Centroids at 40 + 100·c m from the grid origin:
    # 100, 200 and 250 m cells give more than 4; with 500 m columns 0–4 | 5 and rows 0–4 | 5
    # -> cells of 25, 5, 5 and 1 parcels.
    layers = county()
    paths = webmap.make_webmaps(layers, tmp_path, max_features=20, themes=["overview"])
    html = paths["overview"].read_text(encoding="utf-8")
    assert "mg-parcels" not in html
    cells = rows(html, "mg-cells")
    assert sorted(c["n"] for c in cells) == [1, 5, 5, 25]
    assert sum(c["a"] for c in cells) == pytest.approx(36 * MU)
    five = [c for c in cells if c["n"] == 5]
    # column 5 (i = 5, 11, 17, 23, 29): tax 7.5 16.5 25.5 34.5 43.5 -> mean 25.5 (equal areas);
    # low only i = 23 -> 1 parcel, 9.6 亩, share 0.2 -> class 2 (10–25%)
    col5 = [c for c in five if c["t"] == pytest.approx(25.5)]
    assert len(col5) == 1 and (col5[0]["ln"], col5[0]["la"], col5[0]["s"]) == (1, 9.6, 2)
    # the big cell (rows and columns 0–4, i = 6r + c): A where i % 5 == 0 -> i = 0, 10, 15,
    # 20, 25 -> 5 parcels; B (1, 6, 16, 21, 26), C, D and 未评价 have 5 each too, and a tie
    # of areas goes to the better grade -> dominant grade A
    big = next(c for c in cells if c["n"] == 25)
    assert (big["nA"], big["g"]) == (5, "A")
    assert "按 500 米网格汇总显示" in html
    assert len(rows(html, "mg-lowland")) == 7  # low parcels stay individual (7 <= 20)


def test_grid_cells_keeps_crs_and_totals():
    parcels = county()["parcels"]
    cells, size = grid_cells(parcels, 4)
    assert size == 500 and cells.crs == parcels.crs
    assert cells["n"].sum() == 36 and cells["nN"].sum() == 7
    assert cells.geometry.area.tolist() == [250_000.0] * 4


def test_write_webmap_is_atomic_refuses_overwrite_and_returns_size(tmp_path):
    m = webmap.webmap(county(), theme="regions")
    path = tmp_path / "sub" / "r.html"
    size = webmap.write_webmap(m, path)
    assert size == path.stat().st_size > 100_000  # Leaflet alone is ~148 kB
    with pytest.raises(FileExistsError, match="overwrite=True"):
        webmap.write_webmap(m, path)
    (tmp_path / "sub" / "regions.html").write_text("old")
    with pytest.raises(FileExistsError, match="regions.html"):
        webmap.make_webmaps(county(), tmp_path / "sub")
    assert not (tmp_path / "sub" / "overview.html").exists()  # nothing written on refusal
    assert (tmp_path / "sub" / "regions.html").read_text() == "old"
    assert not list((tmp_path / "sub").glob("*.partial-*"))


def test_hand_added_cdn_plugin_is_refused():
    import folium.plugins

    m = webmap.webmap(county(), theme="grades")
    folium.plugins.Fullscreen().add_to(m)
    with pytest.raises(MujunGeoError, match="allow_external=True"):
        webmap.render_html(m)
    assert "fullscreen" in webmap.render_html(m, allow_external=True).lower()


def test_requested_theme_without_its_layer_is_an_error(tmp_path):
    layers = {"regions": county()["regions"]}
    with pytest.raises(ConfigError, match="grades"):
        webmap.make_webmaps(layers, tmp_path, themes=["grades"])
    paths = webmap.make_webmaps(layers, tmp_path)
    assert sorted(paths) == ["overview", "regions"]


def test_vendored_assets_are_small_licensed_and_reported_when_missing():
    from importlib import resources

    root = resources.files("mujun_geo") / "_leaflet"
    files = [f for d in (root, root / "images") for f in d.iterdir() if f.is_file()]
    assert sum(len(f.read_bytes()) for f in files) < 400_000
    assert "BSD 2-Clause" in (root / "LICENSE-leaflet.txt").read_text()
    assert "Permission is hereby granted" in (root / "LICENSE-markercluster.txt").read_text()
    with pytest.raises(MujunGeoError, match="reinstall mujun-geo"):
        webmap._asset_bytes("no-such-file.js")


def test_missing_optional_dependency_names_the_extra():
    from mujun_geo._mapstyle import require

    with pytest.raises(ImportError, match=r'pip install "mujun_geo\[web\]"'):
        require("no_such_module_xyz", "web")


def _fitted(html: str) -> list[float]:
    import re

    m = re.findall(r"\.fitBounds\(\s*\[\[([-\d.]+), ([-\d.]+)\], \[([-\d.]+), ([-\d.]+)\]\]", html)
    return [float(v) for v in m[-1]]  # south, west, north, east


def test_parcel_maps_open_on_the_parcels_not_the_province():
    """Regions (whole cities) and a firm geocoded far away must not zoom the parcel maps out."""
    from shapely import Point, box

    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["P1", "P2"], "grade": ["A", "D"], "tax_per_mu": [30.0, 2.0]},
        geometry=[box(557000, 3370000, 557100, 3370100), box(557200, 3370000, 557300, 3370100)],
        crs=4549,
    )
    firms = gpd.GeoDataFrame(
        {"credit_code": ["X"], "name": ["远处"], "grade": ["A"]},
        geometry=[Point(600000, 3400000)],
        crs=4549,
    )
    regions = gpd.GeoDataFrame(
        {"region_code": ["330400"], "name": ["嘉兴市"], "level": ["city"]},
        geometry=[box(450000, 3300000, 650000, 3450000)],
        crs=4549,
    )
    layers = {"parcels": parcels, "enterprises": firms, "regions": regions}
    east = float(
        gpd.GeoSeries([box(557000, 3370000, 557300, 3370100)], crs=4549)
        .to_crs(4326)
        .total_bounds[2]
    )
    south, west, north, fitted_east = _fitted(
        webmap.render_html(webmap.webmap(layers, theme="grades"))
    )
    # the fitted east edge is the parcels' east edge (rounded to 6 decimals), not the far firm's or the city's
    assert abs(fitted_east - east) < 2e-6
    assert _fitted(webmap.render_html(webmap.webmap(layers, theme="regions")))[3] > east + 0.5
