"""Make a GeoPackage open styled and labelled in QGIS with no set-up.

Two GeoPackage additions, written with plain SQLite into the file before it is renamed
into place:

* ``layer_styles`` — the table QGIS reads default styles from (one QML per layer, grade
  colours A green … D red, a graduated 亩均税收 ramp, hatched low-efficiency land). It is
  registered in ``gpkg_contents`` as an attributes table, as QGIS itself does.
* ``gpkg_data_columns`` (the GeoPackage *schema* extension) — the Chinese name and a
  description of every known column, so GDAL ≥ 3.7 reports them as field alternative
  names and QGIS shows 亩均税收 rather than ``tax_per_mu``. The QML also carries the same
  aliases, for QGIS versions that read aliases only from styles.

Examples
--------
>>> qml = qml_categorized("grade", GRADE_CLASSES, "fill")
>>> "A 优先发展类" in qml and 'attr="grade"' in qml
True
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely

from .labels import COLUMNS, GRADE_NAMES, LAYERS, describe, label

__all__ = [
    "GRADE_CLASSES",
    "GRADE_COLOURS",
    "add_styles",
    "qml_categorized",
    "qml_graduated",
    "qml_single",
]

GRADE_COLOURS = {"A": "#1a9850", "B": "#91cf60", "C": "#fc8d59", "D": "#d73027", "": "#bdbdbd"}
GRADE_CLASSES: list[tuple[str, str, str]] = [
    (g, GRADE_NAMES[g], GRADE_COLOURS[g]) for g in "ABCD"
] + [("", GRADE_NAMES[""], GRADE_COLOURS[""])]
# YlOrRd-like ramp for 亩均税收 (low = pale, high = dark would read as "more is worse"; use greens)
RAMP = ["#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c"]


def _rgba(hex_colour: str, alpha: int = 255) -> str:
    h = hex_colour.lstrip("#")
    return f"{int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha}"


def _symbol(name: str, kind: str, colour: str, *, style: str = "solid") -> str:
    if kind == "fill":
        cls = "SimpleFill"
        opts = {
            "color": _rgba(colour, 200 if style == "solid" else 255),
            "outline_color": "90,90,90,255",
            "outline_width": "0.15",
            "outline_width_unit": "MM",
            "style": style,
        }
        if style != "solid":
            opts["outline_color"] = _rgba(colour)
            opts["outline_width"] = "0.4"
    elif kind == "marker":
        cls = "SimpleMarker"
        opts = {
            "color": _rgba(colour),
            "name": "circle",
            "size": "2.2",
            "size_unit": "MM",
            "outline_color": "60,60,60,255",
            "outline_width": "0.2",
        }
    else:
        cls = "SimpleLine"
        opts = {"line_color": _rgba(colour), "line_width": "0.5"}
    options = "".join(f'<Option name="{k}" value="{v}" type="QString"/>' for k, v in opts.items())
    props = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in opts.items())
    return (
        f'<symbol type="{kind}" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="{cls}" enabled="1" pass="0" locked="0"><Option type="Map">{options}</Option>'
        f"{props}</layer></symbol>"
    )


def _aliases(columns: Sequence[str]) -> str:
    items = "".join(
        f'<alias field={quoteattr(c)} index="{i}" name={quoteattr(label(c))}/>'
        for i, c in enumerate(columns)
        if c in COLUMNS or c.startswith("score_")
    )
    return f"<aliases>{items}</aliases>"


def _wrap(renderer: str, columns: Sequence[str]) -> str:
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
        '<qgis version="3.28.0" styleCategories="Symbology|Fields">'
        f"{renderer}{_aliases(columns)}</qgis>"
    )


def qml_categorized(
    column: str, classes: Sequence[tuple[str, str, str]], kind: str, columns: Sequence[str] = ()
) -> str:
    """QML of a categorised renderer: ``classes`` = (value, label, colour)."""
    cats = "".join(
        f'<category symbol="{i}" value={quoteattr(v)} label={quoteattr(lab)} render="true"/>'
        for i, (v, lab, _) in enumerate(classes)
    )
    syms = "".join(_symbol(str(i), kind, colour) for i, (_, _, colour) in enumerate(classes))
    renderer = (
        f'<renderer-v2 type="categorizedSymbol" attr="{column}" symbollevels="0" forceraster="0" '
        f'enableorderby="0"><categories>{cats}</categories><symbols>{syms}</symbols></renderer-v2>'
    )
    return _wrap(renderer, columns)


def qml_graduated(
    column: str, breaks: Sequence[float], kind: str, *, unit: str = "", columns: Sequence[str] = ()
) -> str:
    """QML of a graduated renderer over the class ``breaks`` (k+1 edges), green ramp."""
    edges = list(breaks)
    n = len(edges) - 1
    colours = [RAMP[round(i * (len(RAMP) - 1) / max(n - 1, 1))] for i in range(n)]
    ranges = "".join(
        f'<range lower="{edges[i]:.6f}" upper="{edges[i + 1]:.6f}" symbol="{i}" '
        f'label="{edges[i]:.2f} – {edges[i + 1]:.2f}{unit}" render="true"/>'
        for i in range(n)
    )
    syms = "".join(_symbol(str(i), kind, colours[i]) for i in range(n))
    renderer = (
        f'<renderer-v2 type="graduatedSymbol" attr="{column}" graduatedMethod="GraduatedColor" '
        f'symbollevels="0" forceraster="0" enableorderby="0"><ranges>{ranges}</ranges>'
        f"<symbols>{syms}</symbols></renderer-v2>"
    )
    return _wrap(renderer, columns)


def qml_single(kind: str, colour: str, *, hatch: bool = False, columns: Sequence[str] = ()) -> str:
    """QML of a single-symbol renderer (``hatch`` draws diagonal hatching)."""
    sym = _symbol("0", kind, colour, style="b_diagonal" if hatch and kind == "fill" else "solid")
    renderer = (
        '<renderer-v2 type="singleSymbol" symbollevels="0" forceraster="0">'
        f"<symbols>{sym}</symbols></renderer-v2>"
    )
    return _wrap(renderer, columns)


def quantile_breaks(values: pd.Series, k: int = 5) -> list[float]:
    """Distinct quantile class edges (duplicate edges merged, so no "0.38–0.38" classes)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return [0.0, 1.0]
    edges = np.unique(np.quantile(v, np.linspace(0, 1, k + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0] + 1.0])
    return [float(e) for e in edges]


#: shapely.get_type_id: Point 0, Polygon 3, MultiPoint 4, MultiPolygon 6 (-1: missing).
_FILL_IDS, _MARKER_IDS = {3, 6}, {0, 4}


def _kind(gdf: pd.DataFrame) -> str | None:
    """Symbol kind of a layer: fill (any polygon), marker (any point), line, or None."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        return None
    types = set(np.unique(shapely.get_type_id(gdf.geometry.values)).tolist()) - {-1}
    if types & _FILL_IDS:
        return "fill"
    if types & _MARKER_IDS:
        return "marker"
    return "line" if types else None


def default_styles(layers: Mapping[str, pd.DataFrame]) -> list[tuple[str, str, str, bool]]:
    """(layer, style name, QML, use as default) for every styled layer of a run."""
    out: list[tuple[str, str, str, bool]] = []
    for name, frame in layers.items():
        kind = _kind(frame)
        if kind is None:
            continue
        cols = [c for c in frame.columns if c != "geometry"]
        if "grade" in frame and name in ("parcels", "enterprises"):
            out.append(
                (name, "评价类别", qml_categorized("grade", GRADE_CLASSES, kind, cols), True)
            )
            if "tax_per_mu" in frame:
                out.append(
                    (
                        name,
                        "亩均税收",
                        qml_graduated(
                            "tax_per_mu",
                            quantile_breaks(frame["tax_per_mu"]),
                            kind,
                            unit=" 万元/亩",
                            columns=cols,
                        ),
                        False,
                    )
                )
        elif name == "lowland":
            out.append(
                (name, "低效用地", qml_single(kind, "#d73027", hatch=True, columns=cols), True)
            )
        elif "tax_per_mu" in frame:
            out.append(
                (
                    name,
                    "亩均税收",
                    qml_graduated(
                        "tax_per_mu",
                        quantile_breaks(frame["tax_per_mu"]),
                        kind,
                        unit=" 万元/亩",
                        columns=cols,
                    ),
                    True,
                )
            )
        else:
            out.append((name, "默认", qml_single(kind, "#6baed6", columns=cols), True))
    return out


def add_styles(path: str | Path, layers: Mapping[str, pd.DataFrame]) -> None:
    """Write ``layer_styles`` and ``gpkg_data_columns`` into the GeoPackage at ``path``."""
    styles = default_styles(layers)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    con = sqlite3.connect(path)
    try:
        cur = con.cursor()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), "
            "f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, "
            "useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), "
            "update_time DATETIME DEFAULT CURRENT_TIMESTAMP)"
        )
        cur.execute(
            "INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, description, "
            "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS styles', ?)",
            (now,),
        )
        geom_cols = dict(
            cur.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall()
        )
        for layer, style_name, qml, default in styles:
            cur.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner, ui, "
                "update_time) VALUES ('', '', ?, ?, ?, ?, '', ?, ?, 'mujun-geo', '', ?)",
                (
                    layer,
                    geom_cols.get(layer, "geom"),
                    style_name,
                    qml,
                    int(default),
                    f"{LAYERS.get(layer, layer)} — {style_name}",
                    now,  # GeoPackage DATETIME form (CURRENT_TIMESTAMP has no T/Z)
                ),
            )
        cur.execute(
            "CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, "
            "name TEXT, title TEXT, description TEXT, mime_type TEXT, constraint_name TEXT, "
            "CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), "
            "CONSTRAINT gdc_tn UNIQUE (table_name, name))"
        )
        cur.execute(
            "CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, "
            "extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, "
            "CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))"
        )
        # the schema extension: both of its tables, one gpkg_extensions row each (GeoPackage
        # 1.2 requirement 141; no per-column rows)
        cur.execute(
            "CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (constraint_name TEXT NOT NULL, "
            "constraint_type TEXT NOT NULL, value TEXT, min NUMERIC, min_is_inclusive BOOLEAN, "
            "max NUMERIC, max_is_inclusive BOOLEAN, description TEXT, "
            "CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value))"
        )
        for table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
            if not cur.execute(
                "SELECT 1 FROM gpkg_extensions WHERE table_name = ? AND column_name IS NULL "
                "AND extension_name = 'gpkg_schema'",
                (table,),
            ).fetchone():
                cur.execute(
                    "INSERT INTO gpkg_extensions VALUES (?, NULL, 'gpkg_schema', "
                    "'http://www.geopackage.org/spec/#extension_schema', 'read-write')",
                    (table,),
                )
        for layer, frame in layers.items():
            used: set[str] = set()
            for col in frame.columns:
                if col == "geometry" or not (col in COLUMNS or col.startswith("score_")):
                    continue
                alias = label(col)
                if alias in used:  # the (table, name) pair must be unique
                    alias = f"{alias} [{col}]"
                used.add(alias)
                cur.execute(
                    "INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title, "
                    "description) VALUES (?, ?, ?, ?, ?)",
                    (layer, col, alias, alias, describe(col)),
                )
        con.commit()
    finally:
        con.close()
