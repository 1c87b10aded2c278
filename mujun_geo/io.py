"""Readers for every input layer: any GDAL vector format, CSV and XLSX.

Each reader maps Chinese headers and source field codes to the canonical names of
CONTRACT.md (see :mod:`mujun_geo.schema`), brings geometry into one projected working CRS,
and records every problem it finds in a :class:`~mujun_geo._validate.Problems` table
instead of dropping rows. Every returned frame has ``src_row``: the row number a person
sees in the source (spreadsheet row with the header as row 1; feature number, from 1,
in vector files).

Shapefile text encoding is taken from the ``.cpg`` file, else from the DBF language
driver byte, else detected from the bytes (UTF-8 if they decode as UTF-8, else GB18030, a
superset of GBK/GB2312); a ``.cpg`` that the bytes contradict is overruled with a warning.

Examples
--------
>>> from mujun_geo.datasets import get_path
>>> parcels = read_parcels(get_path("parcels"))  # GBK shapefile with no .cpg, EPSG:4528
>>> parcels.crs.to_epsg(), parcels["holder_name"].dropna().iloc[0]
(4528, '海宁博耀置业有限公司')
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely

from ._io_base import (
    Engine,
    _canonical,
    _code_text,
    _dedupe,
    _flags,
    _is_table,
    _map_text,
    _numbers,
    _reject_rows,
    _repair_polygons,
    _text,
    _vector_layer,
    _with_rows,
    detect_shapefile_encoding,
    is_db_table,
    read_table,
    source_name,
)
from ._io_enterprises import read_enterprises
from ._validate import Problems
from .crs import as_crs

__all__ = [
    "detect_shapefile_encoding",
    "is_db_table",
    "read_buildings",
    "read_enterprises",
    "read_overrides",
    "read_parcels",
    "read_parks",
    "read_regions",
    "read_standard_land",
    "read_table",
    "read_targets",
    "source_name",
]

logger = logging.getLogger(__name__)


def read_parcels(
    path: str | Path,
    *,
    layer: str | int | None = None,
    crs: object | None = None,
    target_crs: object | None = None,
    encoding: str | None = None,
    engine: Engine = "pyogrio",
    problems: Problems | None = None,
) -> gpd.GeoDataFrame:
    """Read 宗地 parcel polygons.

    Parameters
    ----------
    path
        Any vector file GDAL reads (Shapefile in GBK/GB18030 included).
    layer
        Layer name or index for multi-layer files.
    crs
        CRS to declare when the file has none (e.g. ``"EPSG:4528"``).
    target_crs
        Working CRS; default: the file's own projected CRS, else the 3-degree zone of its centre.
    encoding
        Force the text encoding of a Shapefile (default: detected).
    engine
        ``"pyogrio"`` (default, Arrow path) or ``"fiona"``.
    problems
        Collector for the problems found; rows rejected here are left out of the result.

    Returns
    -------
    GeoDataFrame
        ``parcel_id, land_use, land_use_name, holder_name, holder_code, region_code,
        standard_land, recorded_area_m2, address, area_m2, src_row, geometry``.
    """
    problems = problems if problems is not None else Problems()
    gdf, source = _vector_layer(
        path,
        "parcels",
        layer=layer,
        crs=crs,
        target_crs=as_crs(target_crs) if target_crs else None,
        encoding=encoding,
        engine=engine,
        problems=problems,
        key="parcel_id",
    )
    gdf["parcel_id"] = _code_text(gdf["parcel_id"])
    gdf = _reject_rows(
        gdf,
        gdf["parcel_id"].isna(),
        source=source,
        problems=problems,
        key="parcel_id",
        kind="missing_id",
        reason="宗地代码 is empty",
    )
    gdf = _dedupe(gdf, "parcel_id", source=source, problems=problems, label="宗地代码")
    bad_code = ~gdf["parcel_id"].str.fullmatch(r"\d{12}[GJZ][ABSXCDEFHGWY]\d{5}").astype(bool)
    if bad_code.any():
        problems.add(
            source,
            gdf.loc[bad_code, "src_row"],
            gdf.loc[bad_code, "parcel_id"],
            "bad_parcel_code",
            "宗地代码 is not the 19-character GB/T 13923 form; kept as given",
        )
    lu = _code_text(gdf["land_use"])
    gdf["land_use"] = lu.where(~lu.fillna("").str.fullmatch(r"\d{3}"), "0" + lu.fillna(""))
    for col in ("land_use_name", "holder_name", "holder_code", "region_code", "address"):
        gdf[col] = _text(gdf[col]) if col in gdf else None
    gdf["holder_code"] = gdf["holder_code"].str.upper().where(gdf["holder_code"].notna(), None)
    gdf["region_code"] = _code_text(gdf["region_code"])
    from_code = gdf["parcel_id"].str[:6].where(gdf["parcel_id"].str.match(r"^\d{6}"), None)
    gdf["region_code"] = gdf["region_code"].fillna(from_code)
    if "standard_land" in gdf:
        gdf = _flags(gdf, ["standard_land"], source=source, problems=problems, key="parcel_id")
    else:
        gdf["standard_land"] = False
    gdf = _numbers(gdf, ["recorded_area_m2"], source=source, problems=problems, key="parcel_id")
    gdf = _repair_polygons(gdf, source=source, problems=problems, key="parcel_id")
    not_poly = _not_polygon(gdf)
    gdf = _reject_rows(
        gdf,
        not_poly,
        source=source,
        problems=problems,
        key="parcel_id",
        kind="not_polygon",
        reason="geometry is not a polygon (or nothing was left after repair)",
    )
    gdf["area_m2"] = gdf.geometry.area
    off = gdf["recorded_area_m2"].notna() & (
        (gdf["area_m2"] - gdf["recorded_area_m2"]).abs() > 0.05 * gdf["recorded_area_m2"]
    )
    if off.any():
        problems.add(
            source,
            gdf.loc[off, "src_row"],
            gdf.loc[off, "parcel_id"],
            "area_mismatch",
            [
                f"registered area {r:.1f} m² differs from the polygon's {a:.1f} m² by more than 5%"
                for r, a in zip(gdf.loc[off, "recorded_area_m2"], gdf.loc[off, "area_m2"])
            ],
        )
    cols = [
        "parcel_id",
        "land_use",
        "land_use_name",
        "holder_name",
        "holder_code",
        "region_code",
        "standard_land",
        "recorded_area_m2",
        "address",
        "area_m2",
        "src_row",
        "geometry",
    ]
    return gdf[cols].reset_index(drop=True)


def _not_polygon(gdf: gpd.GeoDataFrame) -> pd.Series:
    """``~gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])`` from GEOS type ids."""
    type_id = shapely.get_type_id(np.asarray(gdf.geometry.values))  # -1 for missing
    return pd.Series(~np.isin(type_id, (3, 6)), index=gdf.index)


_USES = {
    "生产": "production",
    "厂房": "production",
    "车间": "production",
    "工业": "production",
    "仓储": "warehouse",
    "仓库": "warehouse",
    "办公": "office",
    "行政办公": "office",
    "生活": "living",
    "宿舍": "living",
    "生活服务": "living",
    "食堂": "living",
    "production": "production",
    "warehouse": "warehouse",
    "office": "office",
    "living": "living",
    "other": "other",
    "其他": "other",
}


def read_buildings(
    path: str | Path,
    *,
    layer: str | int | None = None,
    crs: object | None = None,
    target_crs: object | None = None,
    encoding: str | None = None,
    engine: Engine = "pyogrio",
    problems: Problems | None = None,
) -> gpd.GeoDataFrame:
    """Read building footprints with floors, height and use (生产/仓储/办公/生活/其他).

    Returns ``building_id, floors, height_m, storey_height_m, use, occupant_code, src_row,
    geometry``; missing numbers are NaN (floors are then derived by the land stage).
    """
    problems = problems if problems is not None else Problems()
    gdf, source = _vector_layer(
        path,
        "buildings",
        layer=layer,
        crs=crs,
        target_crs=as_crs(target_crs) if target_crs else None,
        encoding=encoding,
        engine=engine,
        problems=problems,
        key="src_row",
    )
    gdf["building_id"] = _code_text(gdf["building_id"]) if "building_id" in gdf else None
    missing = gdf["building_id"].isna().to_numpy()
    if missing.any():
        # "row<src_row>" where the id is missing, as one vectorised string op
        fill = "row" + gdf["src_row"][missing].astype(str)
        gdf["building_id"] = gdf["building_id"].fillna(fill)
    gdf = _numbers(
        gdf,
        ["floors", "height_m", "storey_height_m"],
        source=source,
        problems=problems,
        key="building_id",
    )
    for col in ("floors", "height_m", "storey_height_m"):
        bad = gdf[col] <= 0
        if bad.any():
            problems.add(
                source,
                gdf.loc[bad, "src_row"],
                gdf.loc[bad, "building_id"],
                "bad_building_value",
                f"`{col}` must be positive; treated as missing",
            )
            gdf.loc[bad, col] = np.nan
    use = _text(gdf["use"]) if "use" in gdf else pd.Series(None, index=gdf.index, dtype=object)
    gdf["use"] = _map_text(
        use, lambda v: _USES.get(str(v).lower(), "other") if v is not None else "other"
    )
    gdf["occupant_code"] = (
        _text(gdf["occupant_code"]).str.upper() if "occupant_code" in gdf else None
    )
    gdf = _repair_polygons(gdf, source=source, problems=problems, key="building_id")
    not_poly = _not_polygon(gdf)
    gdf = _reject_rows(
        gdf,
        not_poly,
        source=source,
        problems=problems,
        key="building_id",
        kind="not_polygon",
        reason="building footprint is not a polygon",
    )
    cols = [
        "building_id",
        "floors",
        "height_m",
        "storey_height_m",
        "use",
        "occupant_code",
        "src_row",
        "geometry",
    ]
    return gdf[cols].reset_index(drop=True)


def read_parks(
    path: str | Path,
    *,
    layer: str | int | None = None,
    crs: object | None = None,
    target_crs: object | None = None,
    engine: Engine = "pyogrio",
    problems: Problems | None = None,
) -> gpd.GeoDataFrame:
    """Read park (园区) polygons: ``park_id, name, park_type, star``."""
    problems = problems if problems is not None else Problems()
    gdf, source = _vector_layer(
        path,
        "parks",
        layer=layer,
        crs=crs,
        target_crs=as_crs(target_crs) if target_crs else None,
        encoding=None,
        engine=engine,
        problems=problems,
        key="park_id",
    )
    gdf["park_id"] = _code_text(gdf["park_id"])
    for col in ("name", "park_type"):
        gdf[col] = _text(gdf[col]) if col in gdf else None
    gdf["name"] = gdf["name"].fillna(gdf["park_id"])
    gdf["park_type"] = gdf["park_type"].fillna("other")
    gdf = _numbers(gdf, ["star"], source=source, problems=problems, key="park_id")
    gdf = _dedupe(gdf, "park_id", source=source, problems=problems, label="园区编号")
    gdf = _repair_polygons(gdf, source=source, problems=problems, key="park_id")
    return gdf[["park_id", "name", "park_type", "star", "src_row", "geometry"]].reset_index(
        drop=True
    )


def read_regions(
    path: str | Path,
    *,
    layer: str | int | None = None,
    crs: object | None = None,
    target_crs: object | None = None,
    engine: Engine = "pyogrio",
    problems: Problems | None = None,
) -> gpd.GeoDataFrame:
    """Read administrative regions: ``region_code`` (6 digits), ``name``, ``level`` (city/county)."""
    problems = problems if problems is not None else Problems()
    gdf, source = _vector_layer(
        path,
        "regions",
        layer=layer,
        crs=crs,
        target_crs=as_crs(target_crs) if target_crs else None,
        encoding=None,
        engine=engine,
        problems=problems,
        key="region_code",
    )
    gdf["region_code"] = _code_text(gdf["region_code"])
    gdf["name"] = _text(gdf["name"]) if "name" in gdf else gdf["region_code"]
    level = (
        _text(gdf["level"]) if "level" in gdf else pd.Series(None, index=gdf.index, dtype=object)
    )
    by_code = np.where(gdf["region_code"].str[4:6] == "00", "city", "county")
    gdf["level"] = level.map(
        {
            "市": "city",
            "地级市": "city",
            "设区市": "city",
            "city": "city",
            "县": "county",
            "区": "county",
            "县级": "county",
            "county": "county",
        }
    ).fillna(pd.Series(by_code, index=gdf.index))
    gdf = _dedupe(gdf, "region_code", source=source, problems=problems, label="行政区划代码")
    gdf = _repair_polygons(gdf, source=source, problems=problems, key="region_code")
    return gdf[["region_code", "name", "level", "src_row", "geometry"]].reset_index(drop=True)


_ACTIONS = {
    "confirm": "confirm",
    "确认": "confirm",
    "同意": "confirm",
    "reject": "reject",
    "否决": "reject",
    "拒绝": "reject",
    "驳回": "reject",
    "assign": "assign",
    "指定": "assign",
    "新增": "assign",
}


def read_overrides(path: str | Path, *, problems: Problems | None = None) -> pd.DataFrame:
    """Read staff decisions (人工确认): ``credit_code, parcel_id, action, share, note``.

    ``action`` accepts confirm/reject/assign and 确认/否决/指定; other values are rejected
    with a reason.
    """
    problems = problems if problems is not None else Problems()
    source = source_name(path)
    df = _with_rows(_canonical(read_table(path), "overrides", source), spreadsheet=_is_table(path))
    df["credit_code"] = _text(df["credit_code"], fold=True).str.upper()
    df["parcel_id"] = _code_text(df["parcel_id"])
    df["action"] = _text(df["action"]).fillna("").str.lower().map(_ACTIONS)
    df["note"] = _text(df["note"]) if "note" in df else None
    df = _numbers(df, ["share"], source=source, problems=problems, key="credit_code")
    bad = df["action"].isna() | df["credit_code"].isna() | df["parcel_id"].isna()
    df = _reject_rows(
        df,
        bad,
        source=source,
        problems=problems,
        key="credit_code",
        kind="bad_override",
        reason="override needs 统一社会信用代码, 宗地代码 and 操作 (确认/否决/指定)",
    )
    return df[["credit_code", "parcel_id", "action", "share", "note", "src_row"]].reset_index(
        drop=True
    )


def read_standard_land(path: str | Path, *, problems: Problems | None = None) -> pd.DataFrame:
    """Read 标准地 commitments: ``parcel_id`` and ``commit_*`` figures, ``start_year``, ``run_in_years``."""
    problems = problems if problems is not None else Problems()
    source = source_name(path)
    df = _with_rows(
        _canonical(read_table(path), "standard_land", source), spreadsheet=_is_table(path)
    )
    df["parcel_id"] = _code_text(df["parcel_id"])
    num = [c for c in df.columns if c not in ("parcel_id", "src_row")]
    df = _numbers(df, num, source=source, problems=problems, key="parcel_id")
    if "commit_rd_ratio" in df:
        # staff write 3.2 for 3.2 %; the toolkit works with fractions (0.032). The whole column
        # is one unit: if any value is above 1 it is a percentage column, 0.5 then means 0.5 %
        rd = df["commit_rd_ratio"]
        if (rd > 1).any():
            problems.add(
                source,
                df.loc[rd.notna(), "src_row"],
                df.loc[rd.notna(), "parcel_id"],
                "percent_as_number",
                [
                    f"承诺研发占比 {v:g} read as a percentage ({v:g} % = {v / 100:g})"
                    for v in rd.dropna()
                ],
            )
            df["commit_rd_ratio"] = rd / 100.0
    return df.reset_index(drop=True)


def read_targets(path: str | Path, *, problems: Problems | None = None) -> pd.DataFrame:
    """Read region targets: ``region_code`` or ``name``, ``year``, ``*_target`` columns."""
    problems = problems if problems is not None else Problems()
    source = source_name(path)
    df = _with_rows(_canonical(read_table(path), "targets", source), spreadsheet=_is_table(path))
    for col in ("region_code", "name"):
        df[col] = _code_text(df[col]) if col in df else None
    num = [c for c in df.columns if c.endswith("_target")]
    df = _numbers(df, num, source=source, problems=problems, key="name")
    df["year"] = pd.to_numeric(df["year"], errors="coerce").astype("Int64")
    return df.reset_index(drop=True)
