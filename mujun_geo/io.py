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
>>> parcels = read_parcels(get_path("parcels"))
>>> parcels.crs.to_epsg(), parcels["land_use"].iloc[0]
(4549, '0601')
"""

from __future__ import annotations

import logging
import struct
import unicodedata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

import geopandas as gpd
import pyogrio
import shapely
from pyproj import CRS

from . import coords as _coords
from . import creditcode
from ._errors import MujunGeoError, SchemaError
from ._validate import Problems
from .crs import as_crs, gk3_epsg, to_working_crs
from .schema import (
    ENTERPRISE_FLAGS,
    ENTERPRISE_NUMERIC,
    canonical_columns,
    check_required,
)

__all__ = [
    "detect_shapefile_encoding",
    "read_buildings",
    "read_enterprises",
    "read_overrides",
    "read_parcels",
    "read_parks",
    "read_regions",
    "read_standard_land",
    "read_table",
    "read_targets",
]

logger = logging.getLogger(__name__)

Engine = Literal["pyogrio", "fiona"]
_TABLE_SUFFIXES = {".csv", ".txt", ".xlsx", ".xlsm", ".xls"}
# DBF language-driver ids (byte 29) for Chinese code pages.
_LDID = {0x4D: "GB18030", 0x7A: "GB18030", 0x78: "BIG5", 0x57: None}
_CPG = {
    "936": "GB18030",
    "gbk": "GB18030",
    "gb2312": "GB18030",
    "gb18030": "GB18030",
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "65001": "UTF-8",
    "950": "BIG5",
    "big5": "BIG5",
}
_MISSING_MARKS = {"", "-", "--", "—", "——", "/", "无", "暂无", "nan", "none", "null", "n/a", "na"}
_TRUE = {"是", "y", "yes", "true", "1", "√", "✓", "t", "有"}
_FALSE = {"否", "n", "no", "false", "0", "f", "", "无", "nan", "none"}


# ---------------------------------------------------------------------------------------
# low level


def detect_shapefile_encoding(path: str | Path) -> tuple[str, str]:
    """Return ``(encoding, how)`` for a shapefile's DBF text.

    Examples
    --------
    >>> from mujun_geo.datasets import get_path
    >>> detect_shapefile_encoding(get_path("parcels"))
    ('GB18030', 'detected from the bytes (not UTF-8)')
    """
    path = Path(path)
    dbf = path.with_suffix(".dbf")
    if not dbf.exists():
        dbf = path.with_suffix(".DBF")
    raw = dbf.read_bytes()
    header_len = struct.unpack("<H", raw[8:10])[0] if len(raw) >= 32 else 0
    records = raw[header_len:]
    utf8_ok = _decodes(records, "utf-8")
    cpg = path.with_suffix(".cpg")
    if cpg.exists():
        declared = cpg.read_text(errors="replace").strip().lower()
        enc = _CPG.get(declared, declared.upper())
        if enc == "UTF-8" and not utf8_ok:
            return "GB18030", f".cpg says {declared!r} but the bytes are not UTF-8; read as GB18030"
        return enc, f"from {cpg.name}"
    ldid = raw[29] if len(raw) > 29 else 0
    if _LDID.get(ldid):
        return str(_LDID[ldid]), f"from the DBF language driver id 0x{ldid:02X}"
    if utf8_ok:
        return "UTF-8", "detected from the bytes (valid UTF-8)"
    return "GB18030", "detected from the bytes (not UTF-8)"


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _csv_encoding(path: Path) -> str:
    head = path.read_bytes()
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    return "utf-8" if _decodes(head, "utf-8") else "gb18030"


def read_table(
    path: str | Path,
    *,
    layer: str | int | None = None,
    encoding: str | None = None,
    engine: Engine = "pyogrio",
) -> pd.DataFrame:
    """Read any supported file as it is, text columns as strings.

    Tables (CSV/XLSX) come back as DataFrames of strings; vector files as GeoDataFrames.
    A missing file raises :class:`MujunGeoError` naming the path.
    """
    if is_db_table(path):
        return _read_db_table(str(path))
    path = Path(path)
    if not path.exists():
        msg = f"input file not found: {path}"
        raise MujunGeoError(msg)
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm", ".xls"}:
        frame = pd.read_excel(path, sheet_name=layer or 0, dtype=str)
        return frame.dropna(how="all")
    if suffix in {".csv", ".txt"}:
        return pd.read_csv(
            path, dtype=str, encoding=encoding or _csv_encoding(path), keep_default_na=False
        ).replace({"": None})
    if engine not in ("pyogrio", "fiona"):
        msg = f"`engine` must be one of 'pyogrio', 'fiona', got {engine!r}"
        raise ValueError(msg)
    if suffix == ".shp" and encoding is None:
        encoding, how = detect_shapefile_encoding(path)
        logger.info("%s: text encoding %s (%s)", path.name, encoding, how)
    kwargs: dict[str, Any] = {"engine": engine}
    if layer is not None:
        kwargs["layer"] = layer
    if encoding is not None:
        kwargs["encoding"] = encoding
    if engine == "pyogrio":
        kwargs["use_arrow"] = True
    try:
        return gpd.read_file(path, **kwargs)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise MujunGeoError(msg) from exc


def is_db_table(path: object) -> bool:
    """True for a PostGIS table reference ``postgresql://host/db#schema.table``."""
    text = str(path)
    return text.startswith(("postgresql://", "postgres://")) and "#" in text


def source_name(path: object) -> str:
    """Short name of an input for messages: the file name, or ``schema.table`` of a DB table."""
    return str(path).rsplit("#", 1)[1] if is_db_table(path) else Path(str(path)).name


def _read_db_table(ref: str) -> pd.DataFrame:
    from .db import read_postgis_layer

    dsn, table = ref.rsplit("#", 1)
    schema, _, name = table.rpartition(".")
    return read_postgis_layer(dsn, name, schema=schema or None)


def _canonical(frame: pd.DataFrame, layer: str, source: str) -> pd.DataFrame:
    mapping = canonical_columns(frame.columns, layer)
    keep = list(mapping) + (["geometry"] if isinstance(frame, gpd.GeoDataFrame) else [])
    out = frame[keep].rename(columns=mapping)
    check_required(out.columns, layer, source=source)
    return out


def _text(series: pd.Series, *, fold: bool = False) -> pd.Series:
    """Strings stripped (NFKC-folded with ``fold``); blanks and missing markers become None.

    Names keep their own characters (full-width brackets included) so staff see their data
    as they typed it; matching folds them itself.
    """
    s = series.astype(object).where(series.notna(), None)
    norm = (
        (lambda v: unicodedata.normalize("NFKC", str(v)).strip())
        if fold
        else (lambda v: str(v).strip())
    )
    s = s.map(lambda v: None if v is None else norm(v))
    return s.where(~s.fillna("").str.lower().isin(_MISSING_MARKS), None)


def _code_text(series: pd.Series) -> pd.Series:
    """Codes read by spreadsheet tools as numbers (``1711.0``) back to text."""
    s = _text(series, fold=True)
    return s.str.replace(r"\.0+$", "", regex=True).where(s.notna(), None)


def _numbers(
    frame: pd.DataFrame, cols: list[str], *, source: str, problems: Problems, key: str
) -> pd.DataFrame:
    for col in cols:
        if col not in frame:
            frame[col] = np.nan
            continue
        raw = frame[col].astype(object)
        text = raw.map(lambda v: None if pd.isna(v) else str(v).strip().replace(",", ""))
        nums = pd.to_numeric(text, errors="coerce")
        bad = text.notna() & (text != "") & nums.isna()
        if bad.any():
            problems.add(
                source,
                frame.loc[bad, "src_row"],
                frame.loc[bad, key],
                "non_numeric",
                [f"`{col}` value {v!r} is not a number; treated as missing" for v in text[bad]],
            )
        frame[col] = nums.astype(float)
    return frame


def _flags(
    frame: pd.DataFrame,
    cols: tuple[str, ...] | list[str],
    *,
    source: str,
    problems: Problems,
    key: str,
) -> pd.DataFrame:
    for col in cols:
        if col not in frame:
            frame[col] = False
            continue
        text = frame[col].map(lambda v: "" if pd.isna(v) else str(v).strip().lower())
        text = text.str.replace(r"\.0+$", "", regex=True)
        bad = ~text.isin(_TRUE | _FALSE)
        if bad.any():
            problems.add(
                source,
                frame.loc[bad, "src_row"],
                frame.loc[bad, key],
                "bad_flag",
                [f"`{col}` value {v!r} is not 是/否; read as 否" for v in text[bad]],
            )
        frame[col] = text.isin(_TRUE)
    return frame


def _with_rows(frame: pd.DataFrame, *, spreadsheet: bool) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    # a person sees data rows of a sheet from row 2 (row 1 is the header)
    frame["src_row"] = np.arange(len(frame)) + (2 if spreadsheet else 1)
    return frame


def _is_table(path: str | Path) -> bool:
    return not is_db_table(path) and Path(path).suffix.lower() in _TABLE_SUFFIXES


def _repair_polygons(
    gdf: gpd.GeoDataFrame, *, source: str, problems: Problems, key: str
) -> gpd.GeoDataFrame:
    """make_valid invalid polygons, keep their polygonal parts, report each repair."""
    geom = gdf.geometry.values
    invalid = ~shapely.is_valid(geom) & ~shapely.is_missing(geom)
    if invalid.any():
        reasons = shapely.is_valid_reason(geom[invalid])
        fixed = shapely.make_valid(geom[invalid])
        parts, idx = shapely.get_parts(fixed, return_index=True)
        poly = shapely.get_type_id(parts) == 3
        polys = np.full(len(fixed), None, dtype=object)
        if poly.any():
            merged = shapely.multipolygons(parts[poly], indices=idx[poly])
            polys[np.unique(idx[poly])] = merged
        rows = np.flatnonzero(invalid)
        problems.add(
            source,
            gdf["src_row"].iloc[rows],
            gdf[key].iloc[rows],
            "repaired_geometry",
            [f"invalid polygon ({r}) repaired with make_valid" for r in reasons],
        )
        geom = geom.copy()
        geom[invalid] = polys
        gdf = gdf.set_geometry(gpd.array.GeometryArray(np.asarray(geom, dtype=object), crs=gdf.crs))
    return gdf


def _reject_rows(
    frame: pd.DataFrame,
    mask: pd.Series,
    *,
    source: str,
    problems: Problems,
    key: str,
    kind: str,
    reason: str | list[str],
) -> pd.DataFrame:
    if mask.any():
        problems.add(
            source, frame.loc[mask, "src_row"], frame.loc[mask, key], kind, reason, "reject"
        )
    return frame.loc[~mask]


def _dedupe(
    frame: pd.DataFrame, key: str, *, source: str, problems: Problems, label: str
) -> pd.DataFrame:
    dup = frame[key].notna() & frame.duplicated(key, keep="first")
    if dup.any():
        first = frame.drop_duplicates(key).set_index(key)["src_row"]
        reasons = [
            f"duplicate {label} {k} (first at row {first[k]}); this row is not used"
            for k in frame.loc[dup, key]
        ]
        problems.add(
            source,
            frame.loc[dup, "src_row"],
            frame.loc[dup, key],
            f"duplicate_{key}",
            reasons,
            "reject",
        )
    return frame.loc[~dup]


def _vector_layer(
    path: str | Path,
    layer_name: str,
    *,
    layer: str | int | None,
    crs: object,
    target_crs: CRS | None,
    encoding: str | None,
    engine: Engine,
    problems: Problems,
    key: str,
) -> tuple[gpd.GeoDataFrame, str]:
    source = source_name(path)
    raw = read_table(path, layer=layer, encoding=encoding, engine=engine)
    if not isinstance(raw, gpd.GeoDataFrame):
        msg = f"{source}: {layer_name} must be a vector layer with geometry (GeoPackage, Shapefile, GeoJSON …)"
        raise SchemaError(msg)
    gdf = _with_rows(_canonical(raw, layer_name, source), spreadsheet=False)
    empty = gdf.geometry.isna() | gdf.geometry.is_empty
    gdf = _reject_rows(
        gdf,
        empty,
        source=source,
        problems=problems,
        key=key,
        kind="empty_geometry",
        reason="no geometry",
    )
    gdf, _ = to_working_crs(gdf, target_crs, crs=crs, source=source)
    return gdf, source


# ---------------------------------------------------------------------------------------
# layers


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
    not_poly = ~gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
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
    raw = read_table(path, layer=sheet, engine=engine)
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
    years = (
        pd.to_numeric(df["year"], errors="coerce")
        if "year" in df
        else pd.Series(np.nan, index=df.index)
    )
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
    out = text.map({k.lower(): v for k, v in mapping.items()})
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
    div = pd.to_numeric(df["industry_code"].str[:2], errors="coerce")
    from_code = pd.Series(np.where(div.between(6, 46), "industry", "service"), index=df.index)
    from_code = from_code.where(div.notna(), "industry")
    if "sector" not in df:
        return from_code.astype(object)
    text = _text(df["sector"]).fillna("").str.lower()
    out = text.map({k.lower(): v for k, v in mapping.items()})
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
    lon = pd.to_numeric(_text(df["lon"]), errors="coerce").to_numpy(dtype=float, copy=True)
    lat = pd.to_numeric(_text(df["lat"]), errors="coerce").to_numpy(dtype=float, copy=True)
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
    canon = systems.map(_coords.normalise_coord_sys)
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
    pts = gpd.GeoSeries(shapely.points(wlon, wlat), crs=4490).to_crs(target)
    geometry[usable] = pts.values[usable]
    return geometry, target


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
    gdf["building_id"] = gdf["building_id"].fillna(gdf["src_row"].map(lambda r: f"row{r}"))
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
    gdf["use"] = use.map(lambda v: _USES.get(str(v).lower(), "other") if v is not None else "other")
    gdf["occupant_code"] = (
        _text(gdf["occupant_code"]).str.upper() if "occupant_code" in gdf else None
    )
    gdf = _repair_polygons(gdf, source=source, problems=problems, key="building_id")
    not_poly = ~gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
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
