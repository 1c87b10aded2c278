"""Data preparation for :mod:`mujun_geo.webmap`: display geometry and compact data blocks.

Layers are simplified in their projected CRS, reprojected to WGS84 (or shifted to GCJ-02 for
AMap tiles), rounded to 1e-6 degree and written as ``{"k": keys, "v": rows, "g": GeoJSON
geometries}`` blocks, built with vectorised pandas/shapely calls. Above ``max_features``
parcels are aggregated to square grid cells (:func:`grid_cells`). :func:`layer_specs` says
what each theme draws: data block, colours, legend, tooltip, popup and search keys, as the
JSON configuration that ``_leaflet/mujun.js`` reads.

Examples
--------
>>> import geopandas as gpd, shapely
>>> p = gpd.GeoDataFrame({"parcel_id": ["P1"], "grade": ["B"]}, crs=4549,
...     geometry=[shapely.box(500000, 3370000, 500100, 3370100)])
>>> prep = prepare({"parcels": p}, basemap=None, max_features=10, simplify_m=0.5,
...                scheme="quantiles", k=5)
>>> prep.mode, sorted(prep.blocks), sorted(prep.has)
('parcels', ['mg-parcels'], ['grade'])
>>> prep.blocks["mg-parcels"][:37]
'{"k":["i","a","g"],"v":[["P1",15.0,"B'
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely

from ._errors import CRSError
from ._mapstyle import (
    GRADE_COLORS,
    NO_DATA_COLOR,
    REASON_COLORS,
    TARGET_STATUS,
    Classes,
    actual_and_target,
    classify,
    first_reason,
    grade_codes,
    target_status,
)
from .coords import wgs84_to_gcj02
from .labels import GRADE_NAMES, LOWLAND_REASONS
from .units import M2_PER_MU

__all__ = [
    "FILL_OPACITY",
    "GRADE_COLS",
    "GRADE_LABELS",
    "MATCH_LABELS",
    "SHARE_BINS",
    "SHARE_COLORS",
    "SHARE_LABELS",
    "Prepared",
    "dumps",
    "grid_cells",
    "layer_specs",
    "prepare",
    "theme_ok",
]

FILL_OPACITY = 0.8
SHARE_BINS = (0.1, 0.25, 0.5)
SHARE_COLORS = ("#f0f0f0", "#fcbba1", "#fb6a4a", "#de2d26", "#a50f15")
SHARE_LABELS = ("无低效用地", "0–10%", "10–25%", "25–50%", "50% 以上")
GRADE_LABELS = {**{c: GRADE_NAMES.get(c, c) for c in "ABCD"}, "N": "未评价"}
GRADE_COLS = {**{c: GRADE_COLORS[c] for c in "ABCD"}, "N": GRADE_COLORS[""]}
MATCH_LABELS = {"matched": "已匹配", "unmatched": "未匹配", "rejected": "拒收", "review": "待复核"}


def dumps(obj: Any) -> str:
    """Compact JSON that is safe inside a ``<script>`` element."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


# ----------------------------------------------------------------------------- data
def _display_geoms(gdf: gpd.GeoDataFrame, *, simplify_m: float, gcj: bool) -> np.ndarray:
    """Geometry simplified in the projected CRS, in WGS84 (or GCJ-02), rounded to 1e-6°."""
    if gdf.crs is None:
        msg = "a map layer has no CRS: call `.set_crs(...)` with its EPSG code (e.g. 4549) first"
        raise CRSError(msg)
    geo = gdf.geometry
    if simplify_m > 0:
        tol = simplify_m if gdf.crs.is_projected else simplify_m / 111_000.0
        geo = geo.simplify(tol, preserve_topology=True)
    arr = geo.to_crs(4326).to_numpy()
    if gcj:
        arr = shapely.transform(arr, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    return shapely.transform(arr, lambda c: np.round(c, 6))


def _payload(frame: pd.DataFrame, geoms: np.ndarray | None) -> str:
    """Encode a data block: keys, rows of values and GeoJSON geometries (vectorised)."""
    values = frame.to_json(orient="values", force_ascii=False, double_precision=6)
    body = f'{{"k":{dumps(list(frame.columns))},"v":{values}'
    if geoms is not None:
        body += ',"g":[' + ",".join(shapely.to_geojson(geoms)) + "]"
    return (body + "}").replace("<", "\\u003c")


def _num(gdf: pd.DataFrame, col: str, decimals: int) -> pd.Series | None:
    if col not in gdf:
        return None
    return pd.to_numeric(gdf[col], errors="coerce").astype(float).round(decimals)


def _text(gdf: pd.DataFrame, col: str) -> pd.Series | None:
    if col not in gdf:
        return None
    s = gdf[col].astype(object)
    return s.where(s.notna(), None).map(lambda v: None if v is None else str(v))


def _area_mu(gdf: gpd.GeoDataFrame) -> pd.Series:
    a = _num(gdf, "area_mu", 6)
    if a is None or a.isna().all():
        return (
            gdf.geometry.area / M2_PER_MU if gdf.crs.is_projected else pd.Series(np.nan, gdf.index)
        )
    return a


def _parcel_frame(p: gpd.GeoDataFrame, tax: Classes | None) -> pd.DataFrame:
    cols: dict[str, pd.Series | None] = {
        "i": _text(p, "parcel_id"),
        "u": _text(p, "land_use"),
        "h": _text(p, "holder_name"),
        "a": _area_mu(p).round(2),
        "n": _num(p, "n_enterprises", 0),
        "t": _num(p, "tax_per_mu", 2),
        "v": _num(p, "va_per_mu", 2),
        "f": _num(p, "far", 2),
        "c": _num(p, "coverage", 3),
        "p": _text(p, "park_id"),
    }
    if "grade" in p:
        cols["g"] = grade_codes(p["grade"]).replace("", "N")
    if "lowland" in p:
        cols["l"] = _num(p, "lowland", 0).fillna(0).astype(int)  # type: ignore[union-attr]
        cols["r"] = _text(p, "lowland_reasons")
        cols["q"] = first_reason(p["lowland_reasons"]) if "lowland_reasons" in p else None
    if tax is not None:
        cols["k"] = tax.index
    return pd.DataFrame({k: v for k, v in cols.items() if v is not None}, index=p.index)


def grid_cells(p: gpd.GeoDataFrame, max_cells: int) -> tuple[gpd.GeoDataFrame, int]:
    """Aggregate parcels into square cells by centroid, in metres of a projected CRS.

    The cell size is the first of 100, 200, 250, 500 m, 1, 2, 2.5, 5, 10, 20, 50, 100 km
    with at most ``max_cells`` occupied cells. Per cell: ``n`` parcels, ``a`` 亩, ``t``
    亩均税收 weighted by area over parcels that have it, ``nA``–``nD``/``nN`` counts, ``g``
    the grade with the most area (ties go to the better grade; ``N`` when none), ``ln``/``la``
    low-efficiency count and 亩, ``ls`` their area share and ``s`` its class (0 none,
    1 ≤ 10 %, 2 ≤ 25 %, 3 ≤ 50 %, 4 above).
    """
    proj = p if p.crs.is_projected else p.to_crs(p.estimate_utm_crs())
    cen = proj.geometry.centroid
    x, y = cen.x.to_numpy(), cen.y.to_numpy()
    x0, y0 = np.floor(x.min()), np.floor(y.min())
    for size in (100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 50_000, 100_000):
        ix, iy = (
            np.floor((x - x0) / size).astype(np.int64),
            np.floor((y - y0) / size).astype(np.int64),
        )
        key = ix * 10_000_000 + iy
        if len(np.unique(key)) <= max(max_cells, 1):
            break
    a = _area_mu(proj).fillna(0.0).to_numpy()
    t = _num(proj, "tax_per_mu", 6)
    t = t.to_numpy() if t is not None else np.full(len(a), np.nan)
    g = grade_codes(proj["grade"]).to_numpy() if "grade" in proj else np.full(len(a), "")
    low = (
        (_num(proj, "lowland", 0).fillna(0).to_numpy() == 1)  # type: ignore[union-attr]
        if "lowland" in proj
        else np.zeros(len(a), bool)
    )
    d = pd.DataFrame(
        {
            "cell": key,
            "a": a,
            "tw": np.where(np.isnan(t), 0.0, t * a),
            "aw": np.where(np.isnan(t), 0.0, a),
            "la": np.where(low, a, 0.0),
            "ln": low.astype(int),
            "g": np.where(g == "", "N", g),
        }
    )
    grp = d.groupby("cell", sort=True)
    out = pd.DataFrame(
        {
            "n": grp.size(),
            "a": grp["a"].sum().round(2),
            "ln": grp["ln"].sum(),
            "la": grp["la"].sum().round(2),
        }
    )
    aw = grp["aw"].sum()
    out["t"] = (grp["tw"].sum() / aw.where(aw > 0)).round(2)
    counts = pd.crosstab(d["cell"], d["g"]).reindex(columns=list("ABCDN"), fill_value=0)
    for c in "ABCDN":
        out["n" + c] = counts[c]
    area = d.pivot_table(index="cell", columns="g", values="a", aggfunc="sum", fill_value=0.0)
    area = area.reindex(columns=list("ABCD"), fill_value=0.0)
    out["g"] = np.where(area.sum(axis=1) > 0, area.idxmax(axis=1), "N")
    share = (out["la"] / out["a"].where(out["a"] > 0)).fillna(0.0)
    out["ls"] = share.round(4)
    out["s"] = np.where(share <= 0, 0, np.searchsorted(SHARE_BINS, share, side="left") + 1)
    cx, cy = (out.index // 10_000_000).to_numpy(), (out.index % 10_000_000).to_numpy()
    geom = shapely.box(x0 + cx * size, y0 + cy * size, x0 + (cx + 1) * size, y0 + (cy + 1) * size)
    cells = gpd.GeoDataFrame(out.reset_index(drop=True), geometry=geom, crs=proj.crs)
    return cells, size


# ----------------------------------------------------------------------------- preparation
@dataclass
class Prepared:
    """Display-ready data blocks and what the themes need to know about them."""

    blocks: dict[str, str] = field(default_factory=dict)
    mode: str | None = None  # "parcels" | "cells" | None
    n_parcels: int = 0
    cell_size: int = 0
    has: set[str] = field(default_factory=set)  # grade, tax, lowland, firms, parks, regions
    tax: Classes | None = None
    low_block: str | None = None
    reasons: list[str] = field(default_factory=list)
    region_tax: Classes | None = None
    firms_missing: int = 0
    bounds: list[float] | None = None
    region_bounds: list[float] | None = None
    parcel_bounds: list[float] | None = None
    notes: list[str] = field(default_factory=list)
    gcj: bool = False


def _merge_bounds(prep: Prepared, geoms: np.ndarray) -> None:
    b = shapely.total_bounds(geoms)
    if not np.all(np.isfinite(b)):
        return
    if prep.bounds is None:
        prep.bounds = [float(v) for v in b]
    else:
        prep.bounds = [
            min(prep.bounds[0], b[0]),
            min(prep.bounds[1], b[1]),
            max(prep.bounds[2], b[2]),
            max(prep.bounds[3], b[3]),
        ]


def _valid(gdf: gpd.GeoDataFrame | None, name: str) -> gpd.GeoDataFrame | None:
    if gdf is None:
        return None
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"map layer `{name}` must be a GeoDataFrame, got {type(gdf).__name__}"
        raise TypeError(msg)
    if gdf.crs is None and len(gdf):
        msg = f"map layer `{name}` has no CRS: call `{name}.set_crs(...)` with its EPSG code first"
        raise CRSError(msg)
    return gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]


def prepare(
    layers: Mapping[str, gpd.GeoDataFrame | None],
    *,
    basemap: str | None,
    max_features: int,
    simplify_m: float,
    scheme: str,
    k: int,
) -> Prepared:
    """Turn the layers into the data blocks of every theme (done once for all maps).

    Parameters are those of :func:`mujun_geo.webmap.webmap`. Rows with no or empty
    geometry are left out (firms without coordinates are counted in a note).
    """
    prep = Prepared(gcj=basemap == "amap")
    disp = functools.partial(_display_geoms, gcj=prep.gcj)
    p = _valid(layers.get("parcels"), "parcels")
    if p is not None and len(p):
        prep.n_parcels = len(p)
        prep.has |= {
            n
            for c, n in (("grade", "grade"), ("tax_per_mu", "tax"), ("lowland", "lowland"))
            if c in p
        }
        if len(p) <= max_features:
            prep.mode = "parcels"
            prep.tax = classify(p["tax_per_mu"], scheme=scheme, k=k) if "tax" in prep.has else None  # type: ignore[arg-type]
            geoms = disp(p, simplify_m=simplify_m)
            prep.blocks["mg-parcels"] = _payload(_parcel_frame(p, prep.tax), geoms)
            prep.low_block = "mg-parcels"
        else:
            prep.mode = "cells"
            cells, prep.cell_size = grid_cells(p, max(max_features // 5, 1))
            if "tax" in prep.has:
                prep.tax = classify(cells["t"], scheme=scheme, k=k)  # type: ignore[arg-type]
                cells["k"] = prep.tax.index
            geoms = disp(cells, simplify_m=0.0)
            prep.blocks["mg-cells"] = _payload(pd.DataFrame(cells.drop(columns="geometry")), geoms)
            prep.notes.append(
                f"宗地 {len(p):,} 宗，超过单宗显示上限 {max_features:,} 宗：评价类别与亩均税收按 "
                f"{prep.cell_size:,} 米网格汇总显示（网格内面积最大的类别、面积加权亩均税收）。"
            )
        if "lowland" in prep.has:
            low = p[_num(p, "lowland", 0).fillna(0).to_numpy() == 1]  # type: ignore[union-attr]
            present = (
                set(first_reason(low["lowland_reasons"])) if "lowland_reasons" in low else set()
            )
            prep.reasons = [r for r in REASON_COLORS if r in present] + sorted(
                present - set(REASON_COLORS)
            )
            if prep.mode == "cells" and len(low) <= max_features:
                prep.low_block = "mg-lowland"
                prep.blocks["mg-lowland"] = _payload(
                    _parcel_frame(low, None), disp(low, simplify_m=simplify_m)
                )
            elif prep.mode == "cells":
                prep.notes.append(
                    f"低效用地 {len(low):,} 宗也超过上限，按网格内低效用地面积占比显示。"
                )
        _merge_bounds(prep, geoms)
        # open on the parcels: a few firms geocoded far away must not zoom the map out
        prep.parcel_bounds = list(prep.bounds) if prep.bounds else None
    e = layers.get("enterprises")
    ev = _valid(e, "enterprises")
    if ev is not None and len(ev):
        prep.has.add("firms")
        prep.firms_missing = len(e) - len(ev)  # type: ignore[arg-type]
        pts = ev.geometry.where(ev.geom_type == "Point", ev.geometry.representative_point())
        xy = disp(gpd.GeoDataFrame(geometry=pts, crs=ev.crs), simplify_m=0.0)
        frame = pd.DataFrame(
            {
                "n": _text(ev, "name"),
                "c": _text(ev, "credit_code"),
                "g": grade_codes(ev["grade"]).replace("", "N") if "grade" in ev else "N",
                "s": _num(ev, "score", 1),
                "t": _num(ev, "tax_per_mu", 2),
                "m": _text(ev, "match_status"),
                "p": _text(ev, "parcel_ids"),
                "e": _text(ev, "grade_note"),
                "x": shapely.get_x(xy),
                "y": shapely.get_y(xy),
            },
            index=ev.index,
        )
        prep.blocks["mg-firms"] = _payload(frame.dropna(axis=1, how="all"), None)
        _merge_bounds(prep, xy)
    elif e is not None and len(e):
        prep.firms_missing = len(e)
    parks = _valid(layers.get("parks"), "parks")
    if parks is not None and len(parks):
        prep.has.add("parks")
        cols = {
            "i": _text(parks, "park_id"),
            "n": _text(parks, "name"),
            "y": _text(parks, "park_type"),
            "a": _num(parks, "area_mu", 1),
            "t": _num(parks, "tax_per_mu", 2),
            "v": _num(parks, "va_per_mu", 2),
            **{c.upper(): _num(parks, f"n_{c}", 0) for c in "abcd"},
            "r": _num(parks, "rank", 0),
        }
        geoms = disp(parks, simplify_m=simplify_m)
        frame = pd.DataFrame({k: v for k, v in cols.items() if v is not None}, index=parks.index)
        prep.blocks["mg-parks"] = _payload(frame, geoms)
        _merge_bounds(prep, geoms)
    regions = _valid(layers.get("regions"), "regions")
    if regions is not None and len(regions):
        prep.has.add("regions")
        status = target_status(regions)
        t = _num(regions, "tax_per_mu", 2)
        t = t if t is not None else pd.Series(np.nan, index=regions.index)
        cols = {
            "i": _text(regions, "region_code"),
            "n": _text(regions, "name"),
            "t": t,
            "s": status,
        }
        if (status == "none").all():
            prep.region_tax = classify(t, scheme=scheme, k=k)  # type: ignore[arg-type]
            cols["k"] = prep.region_tax.index
        else:
            target = actual_and_target(regions)[1].round(2)
            cols |= {"tt": target, "gp": (t - target).round(2)}
        geoms = disp(regions, simplify_m=simplify_m * 10)
        frame = pd.DataFrame({k: v for k, v in cols.items() if v is not None}, index=regions.index)
        prep.blocks["mg-regions"] = _payload(frame, geoms)
        # regions (whole cities) would zoom the parcel maps out to the province: keep apart
        b = shapely.total_bounds(geoms)
        if np.all(np.isfinite(b)):
            prep.region_bounds = [float(v) for v in b]
    if prep.firms_missing:
        prep.notes.append(f"{prep.firms_missing:,} 家企业无坐标，未在图上显示。")
    return prep


# ----------------------------------------------------------------------------- layer specs
_CONTEXT = "#d9d9d9"
_PARK = "#2b6cb0"
_REASON_NAMES = {**LOWLAND_REASONS, "low_revenue_per_mu": "亩均营业收入偏低"}
_U = "万元/亩"
_PARCEL_FIELDS = [
    ["权利人", "h"],
    ["地类编码", "u"],
    ["面积", "a", {"d": 2, "u": "亩"}],
    ["企业数", "n", {"d": 0}],
    ["亩均税收", "t", {"d": 2, "u": _U}],
    ["亩均增加值", "v", {"d": 2, "u": _U}],
    ["容积率", "f", {"d": 2}],
    ["建筑系数", "c", {"pct": 1, "d": 1}],
    ["评价类别", "g", {"map": GRADE_LABELS}],
    ["低效原因", "r", {"split": ";", "map": _REASON_NAMES}],
    ["所在园区", "p"],
]
_PARCEL_TIP = {
    "title": ["宗地 ", "i"],
    "fields": [
        ["权利人", "h"],
        ["评价类别", "g", {"map": GRADE_LABELS}],
        ["亩均税收", "t", {"d": 2, "u": _U}],
        ["低效原因", "r", {"split": ";", "map": _REASON_NAMES}],
    ],
}
_PARCEL_POPUP = {"title": ["宗地 ", "i"], "fields": _PARCEL_FIELDS}


def _cell_popup(size: int) -> dict[str, Any]:
    return {
        "title": [f"{size:,} 米网格汇总", None],
        "fields": [
            ["宗地数", "n", {"d": 0, "u": "宗"}],
            ["面积", "a", {"d": 2, "u": "亩"}],
            ["亩均税收（面积加权）", "t", {"d": 2, "u": _U}],
            ["主导评价类别", "g", {"map": GRADE_LABELS}],
            *[[f"{c}类宗地", "n" + c, {"d": 0, "u": "宗"}] for c in "ABCD"],
            ["未评价宗地", "nN", {"d": 0, "u": "宗"}],
            ["低效用地", "ln", {"d": 0, "u": "宗"}],
            ["低效用地面积", "la", {"d": 2, "u": "亩"}],
            ["低效面积占比", "ls", {"pct": 1, "d": 1}],
        ],
    }


def _grade_legend(cells: bool) -> dict[str, Any]:
    title = "评价类别（网格内面积最大者）" if cells else "评价类别"
    return {"title": title, "items": [[GRADE_COLS[c], GRADE_LABELS[c]] for c in "ABCDN"]}


def _tax_legend(cls: Classes, cells: bool) -> dict[str, Any]:
    items = [[c, lab] for c, lab in zip(cls.colors, cls.labels)] + [[NO_DATA_COLOR, "无数据"]]
    title = "亩均税收（万元/亩" + ("，网格面积加权）" if cells else "）")
    return {"title": title, "items": items}


def layer_specs(prep: Prepared, theme: str) -> list[dict[str, Any]]:
    """Layers of a theme: name, kind (polygons/firms), data block, show flag, config."""
    cells = prep.mode == "cells"
    pdata = "mg-cells" if cells else "mg-parcels"
    ptip = (
        {
            "title": [f"{prep.cell_size:,} 米网格汇总", None],
            "fields": _cell_popup(prep.cell_size)["fields"][:4],
        }
        if cells
        else _PARCEL_TIP
    )
    ppop = _cell_popup(prep.cell_size) if cells else _PARCEL_POPUP
    base = {
        "weight": 0.4 if cells else (0.6 if prep.n_parcels <= 5000 else 0.25),
        "fillOpacity": FILL_OPACITY,
        "tooltip": ptip,
        "popup": ppop,
        "search": None if cells else ["i", "h"],
    }
    specs: dict[str, dict[str, Any]] = {}
    if "grade" in prep.has:
        specs["grades"] = {
            **base,
            "name": "评价类别",
            "data": pdata,
            "color": {"key": "g", "map": GRADE_COLS, "other": NO_DATA_COLOR},
            "legend": _grade_legend(cells),
        }
    if "tax" in prep.has and prep.tax is not None:
        specs["tax"] = {
            **base,
            "name": "亩均税收",
            "data": pdata,
            "color": {"key": "k", "list": prep.tax.colors, "other": NO_DATA_COLOR},
            "legend": _tax_legend(prep.tax, cells),
        }
    if "lowland" in prep.has:
        items = [
            [REASON_COLORS.get(r, NO_DATA_COLOR), _REASON_NAMES.get(r, r or "未注明")]
            for r in prep.reasons
        ]
        if prep.low_block:
            specs["lowland"] = {
                **base,
                "name": "低效用地",
                "data": prep.low_block,
                "weight": 0.6,
                "tooltip": _PARCEL_TIP,
                "popup": _PARCEL_POPUP,
                "search": ["i", "h"],
                "filter": {"key": "l", "values": [1]},
                "color": {"key": "q", "map": REASON_COLORS, "other": NO_DATA_COLOR},
                "legend": {"title": "低效原因（按首要原因着色）", "items": items},
            }
        else:
            specs["lowland"] = {
                **base,
                "name": "低效用地占比",
                "data": "mg-cells",
                "color": {"key": "s", "list": list(SHARE_COLORS), "other": NO_DATA_COLOR},
                "legend": {
                    "title": "低效用地面积占比",
                    "items": [list(x) for x in zip(SHARE_COLORS, SHARE_LABELS)],
                },
            }
    if "lowland" in prep.has and prep.low_block:
        specs["context"] = {
            **base,
            "name": "其他宗地",
            "data": pdata,
            "search": None,
            "filter": None if cells else {"key": "l", "values": [0]},
            "color": {"key": "l", "map": {}, "other": _CONTEXT},
            "legend": {"title": "其他宗地", "items": [[_CONTEXT, "非低效用地"]]},
        }
    if "regions" in prep.has:
        if prep.region_tax is not None:
            color = {"key": "k", "list": prep.region_tax.colors, "other": NO_DATA_COLOR}
            legend = _tax_legend(prep.region_tax, False) | {"note": "未提供目标值，按亩均税收分级"}
        else:
            color = {
                "key": "s",
                "map": {s: c for s, (_, c) in TARGET_STATUS.items()},  # type: ignore[dict-item]
                "other": NO_DATA_COLOR,
            }
            legend = {
                "title": "亩均税收对照目标",
                "items": [[c, lab] for lab, c in TARGET_STATUS.values()],
            }
        fields = [
            ["亩均税收", "t", {"d": 2, "u": _U}],
            ["目标", "tt", {"d": 2, "u": _U}],
            ["与目标差距", "gp", {"d": 2, "u": _U}],
            ["状态", "s", {"map": {s: lab for s, (lab, _) in TARGET_STATUS.items()}}],
            ["行政区划代码", "i"],
        ]
        specs["regions"] = {
            "name": "行政区对照目标",
            "data": "mg-regions",
            "color": color,
            "stroke": "#555555",
            "weight": 1.2,
            "fillOpacity": 0.55,
            "legend": legend,
            "search": ["n"],
            "tooltip": {"title": ["", "n"], "fields": fields[:4]},
            "popup": {"title": ["", "n"], "fields": fields},
        }
    if "parks" in prep.has:
        fields = [
            ["园区编号", "i"],
            ["类型", "y"],
            ["面积", "a", {"d": 1, "u": "亩"}],
            ["亩均税收", "t", {"d": 2, "u": _U}],
            ["亩均增加值", "v", {"d": 2, "u": _U}],
            *[[f"{c}类企业", c, {"d": 0, "u": "家"}] for c in "ABCD"],
            ["排名", "r"],
        ]
        specs["parks"] = {
            "name": "园区",
            "data": "mg-parks",
            "stroke": _PARK,
            "weight": 2,
            "dash": "6 4",
            "fillOpacity": 0.03,
            "search": ["n", "i"],
            "tooltip": {"title": ["园区 ", "n"], "fields": fields[1:4]},
            "popup": {"title": ["园区 ", "n"], "fields": fields},
            "legend": {"title": "园区", "items": [[_PARK, "园区边界", "dashed"]]},
        }
    if "firms" in prep.has:
        fields = [
            ["统一社会信用代码", "c"],
            ["评价类别", "g", {"map": GRADE_LABELS}],
            ["综合得分", "s", {"d": 1}],
            ["亩均税收", "t", {"d": 2, "u": _U}],
            ["匹配状态", "m", {"map": MATCH_LABELS}],
            ["关联宗地", "p"],
            ["评价说明", "e"],
        ]
        specs["firms"] = {
            "kind": "firms",
            "name": "企业",
            "data": "mg-firms",
            "color": {"key": "g", "map": GRADE_COLS, "other": NO_DATA_COLOR},
            "popup": {"title": ["", "n"], "fields": fields},
            "legend": {
                "title": "企业（按评价类别）",
                "items": [[GRADE_COLS[c], GRADE_LABELS[c]] for c in "ABCDN"],
                "note": "圆圈中的数字为聚合的企业数，放大后分开显示",
            },
        }
    order = {
        "overview": [
            ("grades", True),
            ("tax", False),
            ("lowland", False),
            ("regions", False),
            ("parks", True),
            ("firms", True),
        ],
        "grades": [("grades", True), ("parks", True), ("firms", True)],
        "tax_per_mu": [("tax", True), ("parks", True), ("firms", False)],
        "lowland": [("context", True), ("lowland", True), ("parks", True), ("firms", False)],
        "regions": [("regions", True), ("parks", True)],
    }[theme]
    out, indexed = [], set()
    for key, show in order:
        if key not in specs:
            continue
        spec = {**specs[key], "show": show}
        if spec.get("search") and spec["data"] in indexed:
            spec["search"] = None
        indexed.add(spec["data"])
        out.append(spec)
    return out


def theme_ok(prep: Prepared, theme: str) -> bool:
    """Tell whether the prepared layers hold what ``theme`` draws."""
    need = {
        "overview": prep.has,
        "grades": {"grade"},
        "tax_per_mu": {"tax"},
        "lowland": {"lowland"},
        "regions": {"regions"},
    }[theme]
    return bool(need) and (theme == "overview" or need <= prep.has)
