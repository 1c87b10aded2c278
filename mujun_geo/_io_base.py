"""Low-level reading shared by the layer readers of :mod:`mujun_geo.io`.

File and table access (GDAL vector formats, CSV/XLSX, PostGIS tables), Shapefile encoding
detection, header mapping, text/number/flag cleaning and the problem-recording helpers.
"""

from __future__ import annotations

import logging
import struct
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

import geopandas as gpd
import pyogrio
import shapely
from pyproj import CRS

from ._errors import MujunGeoError, SchemaError
from ._validate import Problems
from .crs import to_working_crs
from .schema import (
    canonical_columns,
    check_required,
)

logger = logging.getLogger("mujun_geo.io")

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


def _is_str(series: pd.Series) -> bool:
    """True for pandas' default ``str`` dtype (Arrow-backed, NaN as missing value)."""
    dtype = series.dtype
    return (
        isinstance(dtype, pd.StringDtype)
        and dtype.storage == "pyarrow"
        and dtype.na_value is np.nan
    )


def _as_str(series: pd.Series) -> pd.Series | None:
    """``series`` as the default ``str`` dtype when it holds only text (and some), else None.

    CSV columns with blanks come back from :func:`read_table` as object columns of ``str``
    and ``None``; as ``str`` dtype they take the vectorised paths.
    """
    if _is_str(series):
        return series if series.notna().any() else None
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "string":
        return series.astype("str")
    return None


def _map_text(series: pd.Series, fn: Callable[[Any], str | None]) -> pd.Series:
    """``series.map(fn)`` for a function returning text, calling it once per distinct value.

    Text columns repeat (flags, uses, coordinate systems): on the default ``str`` dtype the
    values are factorised first and ``fn`` runs on the distinct values (and once on the
    missing value); other dtypes go through :meth:`pandas.Series.map`. The result equals
    ``series.map(fn)``, dtype included, for a `fn` that treats every missing value alike.

    Examples
    --------
    >>> s = pd.Series(["是", " 否", None, "是"], dtype="str")
    >>> _map_text(s, lambda v: str(v).strip()).tolist()
    ['是', '否', 'nan', '是']
    """
    text = _as_str(series)
    if text is None:
        return series.map(fn)
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    values = [fn(u) for u in uniques.tolist()]
    na = np.flatnonzero(codes < 0)
    if na.size:  # last entry: code -1 takes it; fn sees the column's own missing value
        values.append(fn(series.iloc[na[0]]))
    table = np.empty(len(values), dtype=object)
    table[:] = values
    return pd.Series(table[codes], index=series.index, name=series.name)


def _text(series: pd.Series, *, fold: bool = False) -> pd.Series:
    """Strings stripped (NFKC-folded with ``fold``); blanks and missing markers become None.

    Names keep their own characters (full-width brackets included) so staff see their data
    as they typed it; matching folds them itself.

    Examples
    --------
    >>> _text(pd.Series([" 甲公司 ", "无", None, "（乙）"], dtype="str"), fold=True).tolist()
    ['甲公司', nan, nan, '(乙)']
    """
    text = _as_str(series)
    if text is not None:
        # vectorised: Arrow's whitespace trim strips exactly the characters str.strip does,
        # and pandas' NFKC is unicodedata.normalize (tests/test_io.py checks both)
        s = text
        if fold:  # ASCII is its own NFKC form: normalise only the other values
            other = np.flatnonzero(~text.str.isascii().to_numpy(dtype=bool, na_value=False))
            if other.size:
                s = text.copy()
                s.iloc[other] = text.iloc[other].str.normalize("NFKC").to_numpy(dtype=object)
        s = s.str.strip()
    else:
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
        src = frame[col]
        if src.dtype in (np.float64, np.int64):
            # numbers already (GeoPackage fields): str(v) → to_numeric gives v back exactly
            frame[col] = src.astype(float)
            continue
        as_text = _as_str(src)
        if as_text is not None:
            text = as_text.str.strip().str.replace(",", "", regex=False)
        else:
            raw = src.astype(object)
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
        text = _map_text(frame[col], lambda v: "" if pd.isna(v) else str(v).strip().lower())
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
