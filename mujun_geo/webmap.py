"""Interactive web maps (folium/Leaflet) that open with no internet connection.

Government networks are often closed, so every script and style sheet (Leaflet 1.9.4,
Leaflet.markercluster 1.5.3 and the toolkit's own ``mujun.js``, vendored in
``mujun_geo/_leaflet/``) is inlined into the HTML; nothing comes from a CDN. Only the tiles
of a basemap the user asks for are fetched, and without them the vector layers still draw.

:func:`make_webmaps` writes one overview map with every layer and one map per theme:

=================  ============================================================
file               layers (shown at start in **bold**, others in the layer control)
=================  ============================================================
overview.html      **评价类别**, 亩均税收, 低效用地, 行政区对照目标, **园区**, **企业**
grades.html        **评价类别**, **园区**, **企业**
tax_per_mu.html    **亩均税收**, **园区**, 企业
lowland.html       **其他宗地** (grey), **低效用地** by first reason, **园区**, 企业
regions.html       **行政区对照目标**, **园区**
=================  ============================================================

A theme is written when its layer is given: ``parcels`` with ``grade`` / ``tax_per_mu`` /
``lowland`` (+ ``lowland_reasons``), ``regions`` (target from ``tax_per_mu_target`` or
``tax_gap``), ``parks``, ``enterprises`` (points; rows without geometry are counted in a note).

Tooltips and popups are in Chinese; a search box finds a firm by name or 统一社会信用代码,
a parcel by 宗地代码 or 权利人 (``page.html#q=<text>`` opens a map on the first hit).
Geometry is simplified (``simplify_m``, metres, in the projected CRS) and rounded to
6 decimals of a degree (~0.1 m). Above ``max_features`` parcels the parcel themes are drawn
as grid cells (100 m … 100 km, the finest with at most ``max_features // 5`` occupied cells;
colour = grade with the most area, area-weighted 亩均税收), with a note on the map;
low-efficiency parcels stay individual while they number at most ``max_features``.
A 50,000-parcel county gives about 3.5 MB for the overview (``scripts/bench_webmap.py``).

Basemaps: ``None`` (plain background), ``"tianditu"`` (天地图 vec_w + cva_w, needs the
user's ``tk`` key; CGCS2000 ≈ WGS84), ``"amap"`` (高德, GCJ-02: all vectors are shifted
to GCJ-02 with :func:`mujun_geo.coords.wgs84_to_gcj02`) and ``"osm"``.

Examples
--------
>>> import geopandas as gpd, shapely
>>> p = gpd.GeoDataFrame({"parcel_id": ["P1"], "grade": ["A"], "tax_per_mu": [31.5]},
...     geometry=[shapely.box(500000, 3370000, 500100, 3370100)], crs=4549)
>>> html = render_html(webmap({"parcels": p}, theme="grades"))
>>> "L.geoJSON" in html, "cdn.jsdelivr" in html, "#1a9850" in html
(True, False, True)
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import geopandas as gpd

from ._errors import ConfigError, MujunGeoError
from ._mapstyle import require
from ._webmap_data import FILL_OPACITY, Prepared, dumps, layer_specs, prepare, theme_ok

if TYPE_CHECKING:
    import folium

__all__ = [
    "BASEMAPS",
    "FILL_OPACITY",
    "THEMES",
    "make_webmaps",
    "render_html",
    "webmap",
    "write_webmap",
]

logger = logging.getLogger(__name__)

THEMES = ("overview", "grades", "tax_per_mu", "lowland", "regions")
BASEMAPS = ("tianditu", "amap", "osm")
_TITLES = {
    "overview": "亩均效益综合地图",
    "grades": "工业用地亩均效益评价类别",
    "tax_per_mu": "工业用地亩均税收",
    "lowland": "低效工业用地",
    "regions": "各地亩均税收与目标对比",
}
_TDT = (
    "https://t{s}.tianditu.gov.cn/%s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=%s&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
    "&TILECOL={x}&tk=%s"
)
_AMAP = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)
_OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


# ----------------------------------------------------------------------------- assets
def _asset_bytes(name: str) -> bytes:
    try:
        return (resources.files("mujun_geo") / "_leaflet" / name).read_bytes()
    except (FileNotFoundError, NotADirectoryError) as err:
        msg = (
            f"the vendored web-map asset mujun_geo/_leaflet/{name} is missing from this "
            "installation; reinstall mujun-geo (the package data `_leaflet/*` must be installed)"
        )
        raise MujunGeoError(msg) from err


def _asset(name: str) -> str:
    return _asset_bytes(name).decode("utf-8")


def _data_uri(name: str) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(_asset_bytes(f"images/{name}")).decode()


@functools.lru_cache(maxsize=2)
def _inline_assets(cluster: bool) -> str:
    """``<style>``/``<script>`` blocks with every asset inlined (no URL is fetched)."""
    css = _asset("leaflet.css")
    for img in ("layers.png", "layers-2x.png"):
        css = css.replace(f"url(images/{img})", f"url({_data_uri(img)})")
    css = css.replace("url(images/marker-icon.png)", "none")
    js = [_asset("leaflet.js")]
    if cluster:
        css += _asset("MarkerCluster.css")
        js.append(_asset("leaflet.markercluster.js"))
    css += _asset("mujun.css")
    js = [re.sub(r"//# sourceMappingURL=\S+", "", s) for s in js]
    # default markers (if a user adds folium.Marker) use data URIs instead of image files
    icons = (
        "L.Icon.Default.imagePath='';L.Icon.Default.mergeOptions({"
        f"iconUrl:'{_data_uri('marker-icon.png')}',iconRetinaUrl:'{_data_uri('marker-icon-2x.png')}',"
        f"shadowUrl:'{_data_uri('marker-shadow.png')}'}});"
    )
    onerror = (
        "window.MG_ERRORS=[];window.MG_FAILED=[];window.addEventListener('error',function(e){"
        "if(e instanceof ErrorEvent){MG_ERRORS.push(String(e.message)+' @'+e.filename+':'"
        "+e.lineno)}else if(e.target&&(e.target.src||e.target.href)){"
        "MG_FAILED.push(e.target.src||e.target.href)}"
        "},true);window.addEventListener('unhandledrejection',function(e){"
        "MG_ERRORS.push('unhandled rejection: '+String(e.reason))});"
    )
    parts = [f"<script>{onerror}</script>", f"<style>{css}</style>"]
    parts += [f"<script>{s}</script>" for s in js]
    parts += [f"<script>{_asset('mujun.js')}{icons}</script>"]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- folium
def _element(kind: str, **attrs: Any) -> Any:
    """Make a folium element with one of our templates (folium is imported lazily)."""
    import folium
    from branca.element import MacroElement
    from folium.template import Template

    templates = {
        "assets": "{% macro header(this, kwargs) %}{{ this.mg_html }}{% endmacro %}",
        "data": "{% macro html(this, kwargs) %}"
        '<script type="application/json" id="{{ this.mg_id }}">'
        "{{ this.mg_json }}</script>{% endmacro %}",
        "polygons": "{% macro script(this, kwargs) %}var {{ this.get_name() }} = MG.polygons("
        "{{ this._parent.get_name() }}, {{ this.mg_cfg }});{% endmacro %}",
        "firms": "{% macro script(this, kwargs) %}var {{ this.get_name() }} = MG.firms("
        "{{ this._parent.get_name() }}, {{ this.mg_cfg }});{% endmacro %}",
        "final": "{% macro script(this, kwargs) %}(function (m) {MG.header(m, {{ this.mg_title }}, "
        "{{ this.mg_notes }}); MG.search(m, {{ this.mg_placeholder }});"
        "L.control.scale({imperial: false}).addTo(m); MG.ready(m);})"
        "({{ this._parent.get_name() }});{% endmacro %}",
    }
    if kind in ("polygons", "firms"):
        el = folium.map.Layer(name=attrs.pop("name"), overlay=True, show=attrs.pop("show"))
    else:
        el = MacroElement()  # type: ignore[assignment]
    el._template = Template(templates[kind])
    for k, v in attrs.items():
        setattr(el, k, v)
    return el


def _tiles(m: folium.Map, basemap: str | None, tk: str | None) -> None:
    import folium

    if basemap == "tianditu":
        folium.TileLayer(
            _TDT % ("vec", "vec", quote(str(tk), safe="")),
            attr="天地图",
            name="天地图矢量",
            subdomains="01234567",
            max_zoom=18,
        ).add_to(m)
        folium.TileLayer(
            _TDT % ("cva", "cva", quote(str(tk), safe="")),
            attr="天地图",
            name="天地图注记",
            subdomains="01234567",
            max_zoom=18,
            overlay=True,
        ).add_to(m)
    elif basemap == "amap":
        folium.TileLayer(
            _AMAP, attr="© 高德地图", name="高德地图", subdomains="1234", max_zoom=18
        ).add_to(m)
    elif basemap == "osm":
        folium.TileLayer(
            _OSM, attr="© OpenStreetMap contributors", name="OpenStreetMap", max_zoom=19
        ).add_to(m)


def _build(
    prep: Prepared, theme: str, *, basemap: str | None, tk: str | None, title: str | None
) -> folium.Map:
    import folium

    specs = layer_specs(prep, theme)
    # parcel themes fit the parcels and firms; the regions theme (and a map with nothing
    # else) fits the regions
    fit = prep.parcel_bounds or prep.bounds
    if theme == "regions" or fit is None:
        fit = prep.region_bounds or fit
    b = fit or [120.0, 30.0, 121.0, 31.0]
    m = folium.Map(
        location=[(b[1] + b[3]) / 2, (b[0] + b[2]) / 2],
        zoom_start=12,
        tiles=None,
        prefer_canvas=True,
        zoomSnap=0.5,
        maxZoom=19,  # the map-level option (folium uses `max_zoom` for tiles only)
    )
    m.default_js, m.default_css = [], []  # Leaflet is inlined, see _inline_assets
    cluster = any(s.get("kind") == "firms" for s in specs)
    _element("assets", mg_html=_inline_assets(cluster)).add_to(m)
    _tiles(m, basemap, tk)
    for data_id in dict.fromkeys(s["data"] for s in specs):
        _element("data", mg_id=data_id, mg_json=prep.blocks[data_id]).add_to(m)
    for spec in specs:
        cfg = {k: v for k, v in spec.items() if k not in ("kind", "show") and v is not None}
        _element(
            spec.get("kind", "polygons"), name=spec["name"], show=spec["show"], mg_cfg=dumps(cfg)
        ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    if fit:
        m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    notes = list(prep.notes)
    if basemap == "amap":
        notes.append("底图为高德地图（GCJ-02 坐标），图上矢量已转换为 GCJ-02 显示。")
    placeholder = (
        "搜索企业名称、信用代码、宗地代码、权利人"
        if "firms" in prep.has
        else "搜索宗地代码/权利人/园区"
    )
    _element(
        "final",
        mg_title=dumps(title or _TITLES[theme]),
        mg_notes=dumps(notes),
        mg_placeholder=dumps(placeholder),
    ).add_to(m)
    return m


def _check(theme: str | None, basemap: str | None, tk: str | None, max_features: int) -> None:
    if theme is not None and theme not in THEMES:
        msg = f"`theme` must be one of {list(THEMES)}, got {theme!r}"
        raise ValueError(msg)
    if basemap is not None and basemap not in BASEMAPS:
        msg = f"`basemap` must be None or one of {list(BASEMAPS)}, got {basemap!r}"
        raise ValueError(msg)
    if basemap == "tianditu" and not tk:
        msg = "`basemap='tianditu'` needs `tk`, your 天地图 key (apply at console.tianditu.gov.cn)"
        raise ConfigError(msg)
    if max_features < 1:
        msg = f"`max_features` must be a positive count, got {max_features}"
        raise ValueError(msg)


# ----------------------------------------------------------------------------- public API
def webmap(
    layers: Mapping[str, gpd.GeoDataFrame | None],
    *,
    theme: Literal["overview", "grades", "tax_per_mu", "lowland", "regions"] = "overview",
    basemap: Literal["tianditu", "amap", "osm"] | None = None,
    tk: str | None = None,
    max_features: int = 20000,
    simplify_m: float = 0.5,
    scheme: Literal["quantiles", "fisherjenks"] = "quantiles",
    k: int = 5,
    title: str | None = None,
) -> folium.Map:
    """Build one interactive map (a :class:`folium.Map` with every asset inlined).

    Parameters
    ----------
    layers
        Pipeline outputs by name: ``parcels``, ``enterprises``, ``parks``, ``regions``
        (others are ignored; any may be missing). Any CRS; projected CGCS2000 GK expected.
    theme
        One of :data:`THEMES` (see the module docstring for the layers of each).
    basemap, tk
        Tile basemap (None = plain background) and the 天地图 key for ``"tianditu"``.
    max_features
        Parcel count above which parcel themes are drawn as grid cells.
    simplify_m
        Simplification tolerance in metres of the projected CRS (0 = none).
    scheme, k
        Classification of 亩均税收 (:func:`mujun_geo.plot.classify`).
    title
        Map title (a Chinese default per theme).

    Returns
    -------
    folium.Map
        Save it with :func:`write_webmap` (or ``m.save``; :func:`render_html` gives the text).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> r = gpd.GeoDataFrame({"name": ["越城区"], "tax_per_mu": [32.0],
    ...     "tax_per_mu_target": [30.0]}, geometry=[shapely.box(0, 0, 9e3, 9e3)], crs=4549)
    >>> m = webmap({"regions": r}, theme="regions", title="目标对比")
    >>> html = render_html(m)
    >>> "目标对比" in html, "达到目标" in html
    (True, True)
    """
    _check(theme, basemap, tk, max_features)
    require("folium", "web")
    prep = prepare(
        layers,
        basemap=basemap,
        max_features=max_features,
        simplify_m=simplify_m,
        scheme=scheme,
        k=k,
    )
    return _build(prep, theme, basemap=basemap, tk=tk, title=title)


_EXTERNAL = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]+)", re.I)


def render_html(m: folium.Map, *, allow_external: bool = False) -> str:
    """HTML text of ``m``; raise if it would load any script or style sheet from a file or URL.

    Raises
    ------
    MujunGeoError
        When a ``<script src>`` or ``<link href>`` is found (e.g. a folium plugin added
        by hand) and ``allow_external`` is False: such a map breaks on a closed network.
    """
    html = m.get_root().render()
    found = _EXTERNAL.findall(html)
    if found and not allow_external:
        msg = (
            f"the map would load {found[:5]} at run time and fail on a network without "
            "internet; remove the plugin or pass `allow_external=True`"
        )
        raise MujunGeoError(msg)
    return html


def write_webmap(
    m: folium.Map, filepath: str | os.PathLike[str], *, overwrite: bool = False
) -> int:
    """Write ``m`` as one self-contained HTML file, atomically; return its size in bytes.

    Raises
    ------
    FileExistsError
        When ``filepath`` exists and ``overwrite`` is False.
    MujunGeoError
        When the map would load a script or style sheet (see :func:`render_html`).
    """
    path = Path(filepath)
    if path.exists() and not overwrite:
        msg = f"{path} exists; pass `overwrite=True` to replace it"
        raise FileExistsError(msg)
    data = render_html(m).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("wrote %s (%.1f KB)", path, len(data) / 1024)
    return len(data)


def make_webmaps(
    layers: Mapping[str, gpd.GeoDataFrame | None],
    out_dir: str | os.PathLike[str],
    *,
    themes: list[str] | tuple[str, ...] | None = None,
    basemap: Literal["tianditu", "amap", "osm"] | None = None,
    tk: str | None = None,
    max_features: int = 20000,
    simplify_m: float = 0.5,
    scheme: Literal["quantiles", "fisherjenks"] = "quantiles",
    k: int = 5,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write ``overview.html`` and one HTML map per theme the layers allow, in ``out_dir``.

    ``themes`` limits the maps (default: every theme whose layers are there). Other
    parameters are those of :func:`webmap`. The data are prepared once for all maps.

    Returns
    -------
    dict
        Theme name -> path written. Sizes are logged at INFO level.

    Raises
    ------
    FileExistsError
        When a target exists and ``overwrite`` is False; nothing is written then.
    ConfigError
        When a requested theme lacks its layer (e.g. ``regions`` without regions).

    Examples
    --------
    >>> import tempfile, geopandas as gpd, shapely
    >>> p = gpd.GeoDataFrame({"parcel_id": ["P1"], "grade": ["A"]}, crs=4549,
    ...     geometry=[shapely.box(500000, 3370000, 500100, 3370100)])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = make_webmaps({"parcels": p}, d)
    ...     sorted(paths), paths["grades"].name, paths["grades"].stat().st_size > 150_000
    (['grades', 'overview'], 'grades.html', True)
    """
    _check(None, basemap, tk, max_features)
    require("folium", "web")
    for t in themes or ():
        _check(t, None, None, max_features)
    prep = prepare(
        layers,
        basemap=basemap,
        max_features=max_features,
        simplify_m=simplify_m,
        scheme=scheme,
        k=k,
    )
    wanted = list(themes) if themes else [t for t in THEMES if theme_ok(prep, t)]
    missing = [t for t in wanted if not theme_ok(prep, t)]
    if missing:
        msg = f"theme(s) {missing} need layers or columns that are absent; given: {sorted(layers)}"
        raise ConfigError(msg)
    out = Path(out_dir)
    paths = {t: out / f"{t}.html" for t in wanted}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        msg = f"map file(s) exist: {existing}; pass `overwrite=True` to replace them"
        raise FileExistsError(msg)
    for t, path in paths.items():
        write_webmap(_build(prep, t, basemap=basemap, tk=tk, title=None), path, overwrite=True)
    return paths
