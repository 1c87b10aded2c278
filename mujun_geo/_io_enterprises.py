"""Reading the enterprise table: keys, figures, flags and coordinates (see :mod:`mujun_geo.io`)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
from pyproj import CRS, Transformer

from . import coords as _coords
from . import creditcode
from ._errors import SchemaError
from ._io_base import (
    Engine,
    _canonical,
    _code_text,
    _flags,
    _is_table,
    _map_text,
    _numbers,
    _read_rows,
    _text,
    _to_numeric,
    _with_rows,
    source_name,
)
from ._validate import Problems
from .crs import as_crs, gk3_epsg, to_working_crs
from .schema import (
    ENTERPRISE_FLAGS,
    ENTERPRISE_NUMERIC,
)


def read_enterprises(
    path: str | Path,
    *,
    sheet: str | int | None = None,
    coord_sys: str | None = None,
    crs: object | None = None,
    target_crs: object | None = None,
    year: int | None = None,
    engine: Engine = "pyogrio",
    problems: Problems | None = None,
) -> gpd.GeoDataFrame:
    """Read enterprise registrations and indicators (XLSX, CSV, or a point layer).

    Coordinates come from ``lon``/``lat`` (degrees in the row's ``coord_sys``: WGS84,
    CGCS2000, GCJ-02 or BD-09, converted to WGS84 then projected) or ``x``/``y`` (metres in
    ``crs``), or from point geometry. Rows keep their place even when rejected (duplicate
    credit code, no code): ``rejected`` is True and ``reject_reason`` says why.

    Parameters
    ----------
    path
        XLSX/CSV table or a vector point layer.
    sheet
        Sheet name or index of an XLSX file (default: the first).
    coord_sys
        Coordinate system of ``lon``/``lat`` for rows whose ``coord_sys`` is blank.
        If neither is given WGS84 is assumed and a warning is recorded.
    crs
        CRS of ``x``/``y`` columns.
    target_crs
        Working CRS (usually the parcels' CRS); default: the 3-degree zone of the points.
    year
        Evaluation year for rows without ``year``.

    Examples
    --------
    >>> from mujun_geo.datasets import get_path
    >>> firms = read_enterprises(get_path("enterprises"), target_crs="EPSG:4549")
    >>> bool(firms["credit_code"].is_unique), firms.crs.to_epsg()
    (False, 4549)
    """
    problems = problems if problems is not None else Problems()
    source = source_name(path)
    raw = _read_rows(path, layer=sheet, engine=engine)
    spreadsheet = _is_table(path)
    df = _with_rows(_canonical(raw, "enterprises", source), spreadsheet=spreadsheet)
    df["rejected"] = False
    df["reject_reason"] = None
    for col in ("name", "address", "industry_code", "group_code", "veto", "region_code"):
        df[col] = _text(df[col]) if col in df else None
    df["industry_code"] = _code_text(df["industry_code"])
    df["credit_code"] = _text(df["credit_code"], fold=True).str.upper()
    df["group_code"] = df["group_code"].str.upper().where(df["group_code"].notna(), None)

    # STEP 1: keys — missing, malformed, check character, duplicates
    missing = df["credit_code"].isna()
    if missing.any():
        _mark_rejected(df, missing, "统一社会信用代码 is empty")
        problems.add(
            source,
            df.loc[missing, "src_row"],
            df.loc[missing, "name"],
            "missing_credit_code",
            "统一社会信用代码 is empty: fill it in; the row is not evaluated",
            "reject",
        )
    checked = creditcode.validate_series(df["credit_code"])
    df["credit_code_valid"] = checked["status"].eq("ok")
    for status, text in (
        ("bad_format", "is not 18 characters of the GB 32100 alphabet"),
        ("bad_checksum", "fails the GB 32100-2015 check character (kept: some early codes do)"),
    ):
        sel = checked["status"].eq(status)
        if sel.any():
            problems.add(
                source,
                df.loc[sel, "src_row"],
                df.loc[sel, "credit_code"],
                status,
                f"统一社会信用代码 {text}",
            )
    dup = ~missing & df.duplicated("credit_code", keep="first")
    if dup.any():
        first = df[~missing].drop_duplicates("credit_code").set_index("credit_code")["src_row"]
        reasons = [
            f"duplicate 统一社会信用代码 {k} (first at row {first[k]}); this row is not used"
            for k in df.loc[dup, "credit_code"]
        ]
        _mark_rejected(df, dup, reasons)
        problems.add(
            source,
            df.loc[dup, "src_row"],
            df.loc[dup, "credit_code"],
            "duplicate_credit_code",
            reasons,
            "reject",
        )
    noname = df["name"].isna() & ~df["rejected"]
    if noname.any():
        problems.add(
            source,
            df.loc[noname, "src_row"],
            df.loc[noname, "credit_code"],
            "missing_name",
            "企业名称 is empty: the firm can only be matched by code or location",
        )

    # STEP 2: numbers, flags, categories
    df = _numbers(df, list(ENTERPRISE_NUMERIC), source=source, problems=problems, key="credit_code")
    df = _flags(df, ENTERPRISE_FLAGS, source=source, problems=problems, key="credit_code")
    _check_signs(df, source=source, problems=problems)
    df["scale"] = _category(
        df,
        "scale",
        {
            "规上": "above",
            "规模以上": "above",
            "above": "above",
            "是": "above",
            "规下": "below",
            "规模以下": "below",
            "below": "below",
            "否": "below",
        },
        default="below",
        source=source,
        problems=problems,
    )
    df["sector"] = _sector(df, source=source, problems=problems)
    years = _to_numeric(df["year"]) if "year" in df else pd.Series(np.nan, index=df.index)
    df["year"] = years.fillna(year if year is not None else np.nan).astype("Int64")
    _check_gaps(df, source=source, problems=problems)
    from_code = (
        df["credit_code"].str[2:8].where(checked["status"].ne("bad_format") & ~missing, None)
    )
    df["region_code"] = _code_text(df["region_code"]).fillna(from_code)
    if "veto" in df:
        df["veto"] = df["veto"].where(~df["veto"].fillna("").isin(["否", "无"]), None)

    # STEP 3: geometry
    geometry, crs_out = _enterprise_points(
        raw,
        df,
        coord_sys=coord_sys,
        crs=crs,
        target_crs=target_crs,
        source=source,
        problems=problems,
    )
    keep = [
        "credit_code",
        "name",
        "address",
        "coord_sys",
        "industry_code",
        "scale",
        "sector",
        "year",
        "region_code",
        *ENTERPRISE_NUMERIC,
        *ENTERPRISE_FLAGS,
        "veto",
        "group_code",
        "credit_code_valid",
        "rejected",
        "reject_reason",
        "src_row",
    ]
    return gpd.GeoDataFrame(df[keep], geometry=geometry, crs=crs_out)


def _mark_rejected(df: pd.DataFrame, mask: pd.Series, reason: str | list[str]) -> None:
    df.loc[mask, "rejected"] = True
    df.loc[mask, "reject_reason"] = (
        reason if isinstance(reason, str) else pd.Series(reason, index=df.index[mask])
    )


def _check_signs(df: pd.DataFrame, *, source: str, problems: Problems) -> None:
    for col in ("tax", "value_added"):
        neg = df[col] < 0
        if neg.any():
            problems.add(
                source,
                df.loc[neg, "src_row"],
                df.loc[neg, "credit_code"],
                f"negative_{col}",
                [
                    f"`{col}` is negative ({v}); kept (e.g. a tax refund) — check it"
                    for v in df.loc[neg, col]
                ],
            )
    for col in (
        "revenue",
        "energy_tce",
        "employees",
        "emissions_t",
        "cod_t",
        "nh3n_t",
        "so2_t",
        "nox_t",
        "rd_expense",
        "electricity",
        "n_tenants",
    ):
        neg = df[col] < 0
        if neg.any():
            problems.add(
                source,
                df.loc[neg, "src_row"],
                df.loc[neg, "credit_code"],
                "negative_value",
                [f"`{col}` cannot be negative ({v}); treated as missing" for v in df.loc[neg, col]],
            )
            df.loc[neg, col] = np.nan


def _check_gaps(df: pd.DataFrame, *, source: str, problems: Problems) -> None:
    """Flag figures that make an indicator impossible to compute (the scoring rules decide what then)."""
    live = ~df["rejected"]
    zero = live & (df["energy_tce"] == 0) & (df["value_added"] > 0)
    if zero.any():
        problems.add(
            source,
            df.loc[zero, "src_row"],
            df.loc[zero, "credit_code"],
            "zero_energy",
            "综合能耗 is 0 with value added > 0: 单位能耗增加值 cannot be computed (check the figure)",
        )
    pollutants = df[["emissions_t", "cod_t", "nh3n_t", "so2_t", "nox_t"]].notna().any(axis=1)
    above = live & (df["scale"] == "above") & (df["sector"] == "industry") & ~df["utility"]
    missing = above & ~pollutants
    if missing.any():
        problems.add(
            source,
            df.loc[missing, "src_row"],
            df.loc[missing, "credit_code"],
            "missing_emissions",
            "规上工业 firm without 主要污染物排放量: 单位排放增加值 follows the preset's missing-value rule",
        )


def _category(
    df: pd.DataFrame,
    col: str,
    mapping: dict[str, str],
    *,
    default: str,
    source: str,
    problems: Problems,
) -> pd.Series:
    if col not in df:
        return pd.Series(default, index=df.index, dtype=object)
    text = _text(df[col]).fillna("").str.lower()
    out = _map_text(text, {k.lower(): v for k, v in mapping.items()}.get)
    bad = out.isna() & (text != "")
    if bad.any():
        problems.add(
            source,
            df.loc[bad, "src_row"],
            df.loc[bad, "credit_code"],
            f"bad_{col}",
            [f"`{col}` value {v!r} not understood; read as {default!r}" for v in text[bad]],
        )
    return out.fillna(default).astype(object)


def _sector(df: pd.DataFrame, *, source: str, problems: Problems) -> pd.Series:
    mapping = {
        "工业": "industry",
        "制造业": "industry",
        "industry": "industry",
        "服务业": "service",
        "service": "service",
    }
    # GB/T 4754 divisions 06-46 are mining, manufacturing and utilities: 工业
    div = _to_numeric(df["industry_code"].str[:2])
    from_code = pd.Series(np.where(div.between(6, 46), "industry", "service"), index=df.index)
    from_code = from_code.where(div.notna(), "industry")
    if "sector" not in df:
        return from_code.astype(object)
    text = _text(df["sector"]).fillna("").str.lower()
    out = _map_text(text, {k.lower(): v for k, v in mapping.items()}.get)
    bad = out.isna() & (text != "")
    if bad.any():
        problems.add(
            source,
            df.loc[bad, "src_row"],
            df.loc[bad, "credit_code"],
            "bad_sector",
            [
                f"`sector` value {v!r} not understood; taken from the industry code"
                for v in text[bad]
            ],
        )
    return out.fillna(from_code).astype(object)


def _enterprise_points(
    raw: pd.DataFrame,
    df: pd.DataFrame,
    *,
    coord_sys: str | None,
    crs: object,
    target_crs: object,
    source: str,
    problems: Problems,
) -> tuple[np.ndarray, CRS]:
    n = len(df)
    geometry = np.full(n, None, dtype=object)
    target = as_crs(target_crs) if target_crs is not None else None
    if isinstance(raw, gpd.GeoDataFrame):
        pts, target = to_working_crs(
            gpd.GeoDataFrame(geometry=raw.geometry.values, crs=raw.crs),
            target,
            crs=crs,
            source=source,
        )
        df["coord_sys"] = "projected"
        return pts.geometry.values, target
    if "x" in df and "y" in df and df["x"].notna().any():
        if crs is None:
            msg = (
                f"{source}: coordinates are given as x/y metres; declare their CRS with "
                "`--crs EPSG:XXXX` (e.g. EPSG:4528 for prefixed zone-40 eastings)"
            )
            raise SchemaError(msg)
        x = pd.to_numeric(df["x"], errors="coerce").to_numpy()
        y = pd.to_numeric(df["y"], errors="coerce").to_numpy()
        ok = np.isfinite(x) & np.isfinite(y)
        pts = gpd.GeoSeries(shapely.points(np.where(ok, x, 0), np.where(ok, y, 0)), crs=as_crs(crs))
        if target is None:
            given = as_crs(crs)
            mid = float(np.median(x[ok])) if ok.any() else 120.0
            target = given if given.is_projected else CRS.from_epsg(gk3_epsg(mid))
        pts = pts.to_crs(target)
        geometry[ok] = pts.values[ok]
        df["coord_sys"] = "projected"
        _report_no_coords(df, ~ok, source, problems)
        return geometry, target
    if "lon" not in df or "lat" not in df:
        problems.add(
            source,
            df["src_row"],
            df["credit_code"],
            "no_coordinates",
            "the file has no 经度/纬度 (lon/lat) or x/y columns; firms can match by code or name only",
        )
        df["coord_sys"] = None
        if target is None:
            msg = (
                f"{source}: no coordinates and no working CRS; pass `target_crs` (the parcels' CRS)"
            )
            raise SchemaError(msg)
        return geometry, target
    lon = _to_numeric(_text(df["lon"])).to_numpy(dtype=float, copy=True)
    lat = _to_numeric(_text(df["lat"])).to_numpy(dtype=float, copy=True)
    # lat/lon swapped: latitude values in the longitude column and the reverse (China: lon 73-136, lat 3-54)
    swapped = (lon >= 3) & (lon <= 54) & (lat >= 73) & (lat <= 136)
    if swapped.any():
        lon[swapped], lat[swapped] = lat[swapped].copy(), lon[swapped].copy()
        problems.add(
            source,
            df.loc[swapped, "src_row"],
            df.loc[swapped, "credit_code"],
            "swapped_latlon",
            "经度 and 纬度 were swapped; swapped back",
        )
    in_range = (lon >= 73) & (lon <= 136) & (lat >= 3) & (lat <= 54)
    present = np.isfinite(lon) & np.isfinite(lat)
    outside = present & ~in_range
    if outside.any():
        problems.add(
            source,
            df.loc[outside, "src_row"],
            df.loc[outside, "credit_code"],
            "coordinates_outside_china",
            [
                f"coordinates ({a}, {b}) are not in China; ignored"
                for a, b in zip(lon[outside], lat[outside])
            ],
        )
    systems = (
        _text(df["coord_sys"])
        if "coord_sys" in df
        else pd.Series(None, index=df.index, dtype=object)
    )
    canon = _map_text(systems, _coords.normalise_coord_sys)
    unknown = systems.notna() & canon.isna()
    if unknown.any():
        problems.add(
            source,
            df.loc[unknown, "src_row"],
            df.loc[unknown, "credit_code"],
            "bad_coord_sys",
            [
                f"坐标系 {v!r} not recognised (use WGS84, CGCS2000, GCJ02 or BD09); coordinates ignored"
                for v in systems[unknown]
            ],
        )
    default = _coords.normalise_coord_sys(coord_sys) if coord_sys else None
    if coord_sys and default is None:
        msg = f"`coord_sys` must be one of {', '.join(_coords.COORD_SYSTEMS)}, got {coord_sys!r}"
        raise SchemaError(msg)
    blank = systems.isna() & present & in_range
    if default is None and blank.any():
        default = "wgs84"
        problems.add(
            source,
            df.loc[blank, "src_row"],
            df.loc[blank, "credit_code"],
            "coord_sys_assumed",
            "坐标系 not stated; WGS84 assumed (state it per row or with --coord-sys)",
        )
    canon = canon.where(~(systems.isna()), default)
    usable = present & in_range & canon.notna().to_numpy()
    df["coord_sys"] = canon.where(present & in_range, None)
    _report_no_coords(df, ~present, source, problems)
    wlon, wlat = _coords.to_wgs84(
        np.where(usable, lon, 120.0), np.where(usable, lat, 30.0), canon.fillna("wgs84").to_numpy()
    )
    if target is None:
        mid = float(np.median(wlon[usable])) if usable.any() else 120.0
        target = CRS.from_epsg(gk3_epsg(mid))
    # project only the usable points, as arrays, and build each point once: the same
    # transformer geopandas' to_crs uses, applied point by point, so the same coordinates
    x, y = wlon[usable], wlat[usable]
    if not _CGCS2000.is_exact_same(target):
        x, y = _transformer(_CGCS2000, target).transform(x, y)
    geometry[usable] = shapely.points(x, y)
    return geometry, target


_CGCS2000 = CRS.from_epsg(4490)
_transformer = functools.lru_cache(maxsize=16)(
    functools.partial(Transformer.from_crs, always_xy=True)
)


def _report_no_coords(df: pd.DataFrame, mask: np.ndarray, source: str, problems: Problems) -> None:
    mask = np.asarray(mask) & ~df["rejected"].to_numpy()
    if mask.any():
        problems.add(
            source,
            df.loc[mask, "src_row"],
            df.loc[mask, "credit_code"],
            "no_coordinates",
            "no coordinates; the firm can match by credit code or name only",
        )
