"""Low-level reading shared by the layer readers of :mod:`mujun_geo.io`.

File and table access (GDAL vector formats, CSV/XLSX, PostGIS tables), Shapefile encoding
detection, header mapping, text/number/flag cleaning and the problem-recording helpers.
"""

from __future__ import annotations

import logging
import os
import struct
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

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


def _utf8_ok(data: bytes) -> bool:
    """``data.decode("utf-8")`` succeeds; Arrow checks at memory speed, Python decides a "no".

    Arrow's validator rejects what Python's strict decoder rejects (surrogates, overlong
    forms, code points above U+10FFFF; tests/test_io.py checks), so a "yes" is final.
    """
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    blob = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        blob.cast(pa.large_string())
    except pa.ArrowInvalid:
        return _decodes(data, "utf-8")
    return True


def _csv_encoding_of(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    return "utf-8" if _utf8_ok(data) else "gb18030"


def _csv_encoding(path: Path) -> str:
    return _csv_encoding_of(path.read_bytes())


def _read_csv_text(data: bytes, encoding: str) -> pd.DataFrame | None:
    """CSV bytes as text columns of the ``str`` dtype, blanks missing; None when unsure.

    Equals ``pd.read_csv(dtype=str, keep_default_na=False)`` with ``""`` as missing, read
    by Arrow's multi-threaded parser. Whatever Arrow would read differently from pandas
    is left to pandas (None is returned): a header pandas would rename (duplicate or empty
    names), rows of another length, a single column (pandas skips whitespace-only lines),
    a file without rows, a second byte-order mark, any parse or decoding error.
    """
    if encoding == "utf-8-sig":
        data, encoding = data[3:], "utf-8"  # the one BOM pandas' codec removes
    if data.startswith(b"\xef\xbb\xbf") or data.startswith(b"\x84\x31\x95\x33"):
        return None  # a (further) BOM: Arrow would drop it, pandas keeps it in the header
    if encoding not in ("utf-8", "gb18030"):
        return None
    read = pacsv.ReadOptions(encoding="utf8" if encoding == "utf-8" else encoding)
    parse = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True)
    try:
        names = pacsv.open_csv(
            pa.BufferReader(data), read_options=read, parse_options=parse
        ).schema.names
        if len(names) < 2 or len(set(names)) < len(names) or "" in names:
            return None
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=read,
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(
                # large_string is what pandas' str dtype holds: no cast per column
                column_types=dict.fromkeys(names, pa.large_string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, UnicodeError, LookupError):
        return None
    if table.num_rows == 0 or table.column_names != names:
        return None
    frame = table.to_pandas()
    if not all(_is_str(frame[c]) for c in frame.columns):
        return None  # older pandas: no Arrow-backed default str dtype
    return frame


def _read_csv(path: Path, encoding: str | None, *, blanks_as_none: bool = True) -> pd.DataFrame:
    """Read a CSV as ``read_table`` does (Arrow when it reads it as pandas would).

    With ``blanks_as_none=False`` a column with blanks stays ``str`` dtype (missing NaN):
    the readers' cleaning treats both alike and this skips two object conversions.
    """
    if encoding is None:
        data = path.read_bytes()
        encoding = _csv_encoding_of(data)
        frame = _read_csv_text(data, encoding)
        if frame is not None:
            if blanks_as_none:
                for col in frame.columns[frame.isna().any().to_numpy()]:
                    frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
            return frame
    return pd.read_csv(path, dtype=str, encoding=encoding, keep_default_na=False).replace(
        {"": None}
    )


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
        return _read_csv(path, encoding)
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
        # pyarrow's default de-duplication hashes every WKB blob (seconds for millions of
        # features) only to share equal bytes objects; the values are the same without it
        kwargs["arrow_to_pandas_kwargs"] = {"deduplicate_objects": False}
    try:
        return gpd.read_file(path, **kwargs)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise MujunGeoError(msg) from exc


def _read_rows(
    path: str | Path, *, layer: str | int | None = None, engine: Engine = "pyogrio"
) -> pd.DataFrame:
    """:func:`read_table`, but a CSV's columns with blanks stay ``str`` dtype (blanks NaN).

    The readers' cleaning (:func:`_text`, :func:`_numbers` …) treats such a column exactly
    as the object column of ``str`` and None that :func:`read_table` returns, so the round
    trip to Python objects and back is skipped.
    """
    if not is_db_table(path) and Path(path).suffix.lower() in {".csv", ".txt"}:
        if Path(path).exists():
            return _read_csv(Path(path), None, blanks_as_none=False)
    return read_table(path, layer=layer, engine=engine)


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
    if text is None and not series.notna().any():
        # nothing but missing values (a column the file lacks): None throughout, as below
        none = np.full(len(series), None, dtype=object)
        return pd.Series(none, index=series.index, name=series.name)
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
        mark = _missing_mark(s)  # missing values are missing already: no rewrite without marks
        return s.where(~mark, None) if mark.any() else s
    s = series.astype(object).where(series.notna(), None)
    norm = (
        (lambda v: unicodedata.normalize("NFKC", str(v)).strip())
        if fold
        else (lambda v: str(v).strip())
    )
    s = s.map(lambda v: None if v is None else norm(v))
    return s.where(~s.fillna("").str.lower().isin(_MISSING_MARKS), None)


_MARK_CHARS = max(len(m) for m in _MISSING_MARKS)
_MARKS = pa.array(sorted(_MISSING_MARKS))


def _large_text(s: pd.Series) -> pa.Array:
    """A text column as one Arrow ``large_string`` array (no copy for the ``str`` dtype)."""
    arr = pa.array(s, type=pa.large_string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _missing_mark(s: pd.Series) -> np.ndarray:
    """Where ``s.str.lower().isin(_MISSING_MARKS)`` for the ``str`` dtype (False if missing).

    Arrow's lower-casing maps each code point to one code point (tests/test_io.py checks
    every code point), so only values as short as the longest marker can match: names and
    addresses are not lower-cased at all.
    """
    arr = _large_text(s)
    mark = np.zeros(len(arr), dtype=bool)
    short = pc.less_equal(pc.utf8_length(arr), _MARK_CHARS).fill_null(False)
    short = np.flatnonzero(short.to_numpy(zero_copy_only=False))
    if 2 * short.size > len(arr):  # mostly short values (uses, flags): no subset copy
        hit = pc.is_in(pc.utf8_lower(arr), value_set=_MARKS).fill_null(False)
        mark[short] = hit.to_numpy(zero_copy_only=False)[short]
    elif short.size:
        hit = pc.is_in(pc.utf8_lower(arr.take(pa.array(short))), value_set=_MARKS)
        mark[short[hit.to_numpy(zero_copy_only=False)]] = True
    return mark


def _code_text(series: pd.Series) -> pd.Series:
    """Codes read by spreadsheet tools as numbers (``1711.0``) back to text.

    Examples
    --------
    >>> _code_text(pd.Series(["1711.0", " 0601 ", "3.00", "10", None], dtype="str")).tolist()
    ['1711', '0601', '3', '10', nan]
    """
    s = _text(series, fold=True)
    if _is_str(s):
        # the regex `\.0+$` without a regex: trailing zeros trimmed, then a value that lost
        # at least one zero and ends in "." loses the "." too (2,000,000 codes: 0.5-0.8 s of
        # regex on the values ending in 0 and writing them back → 0.2-0.35 s)
        arr = _large_text(s)
        trimmed = pc.utf8_rtrim(arr, characters="0")
        cut = pc.and_(
            pc.ends_with(trimmed, "."), pc.less(pc.utf8_length(trimmed), pc.utf8_length(arr))
        )
        out = pc.if_else(cut, pc.utf8_slice_codeunits(trimmed, 0, -1), arr)
        return pd.Series(pd.array(out, dtype="str"), index=s.index, name=s.name)
    return s.str.replace(r"\.0+$", "", regex=True).where(s.notna(), None)


# a plain decimal of at most 15 characters (so at most 15 digits): Arrow's parser and
# pandas' give the same, correctly rounded, double for it (the digits fit a double
# exactly and the scaling is one correctly rounded division by an exact power of ten)
_PLAIN_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"
_PLAIN_MAX_CHARS = 15


def _to_numeric(values: pd.Series) -> pd.Series:
    """``pd.to_numeric(values, errors="coerce")``, vectorised for ``str`` text.

    Plain decimals are parsed by Arrow; the rest goes to pandas, which turns it into
    missing values (typos, units, blanks) and those rows are done. When pandas reads one of
    them as a number, or a plain value is a negative zero (whose sign pandas keeps or drops
    depending on the rest of the column), the whole column goes to pandas. The values are
    pandas' own in every case; the dtype is float64 where pandas may give int64 for a
    column of whole numbers (of at most 15 digits, so exactly the same numbers).

    Examples
    --------
    >>> _to_numeric(pd.Series(["1.5", "12", "abc", None], dtype="str")).tolist()
    [1.5, 12.0, nan, nan]
    """
    if not _is_str(values):
        return pd.to_numeric(values, errors="coerce")
    text = pa.array(values, type=pa.large_string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    plain = pc.and_kleene(
        pc.match_substring_regex(text, _PLAIN_NUMBER),
        pc.less_equal(pc.binary_length(text), _PLAIN_MAX_CHARS),
    ).fill_null(False)
    nums = pc.cast(pc.if_else(plain, text, None), pa.float64())
    nums = nums.to_numpy(zero_copy_only=False, writable=True)
    rest = ~plain.to_numpy(zero_copy_only=False) & values.notna().to_numpy()
    exact = not (np.signbit(nums) & (nums == 0)).any()
    if exact and rest.any():
        exact = bool(pd.to_numeric(values[rest], errors="coerce").isna().all())
    if not exact:
        return pd.to_numeric(values, errors="coerce")
    return pd.Series(nums, index=values.index, name=values.name)


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
        nums = _to_numeric(text)
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


# |det| above this fraction of |a·b| + |c·d| fixes the sign of an orientation determinant
# a·b - c·d computed in doubles: Shewchuk's proven bound is (3 + 16ε)ε ≈ 3.3e-16, so this
# is a margin of over a million; 1e-250 keeps clear of subnormal products
_ORIENT_REL = 1e-9
_ORIENT_ABS = 1e-250
_CORNERS_PER_BLOCK = 131_072  # corners per block: the temporaries stay in the CPU cache
_MAX_RING = 1024  # longer rings are left to GEOS
_PARALLEL_MIN = 20_000  # polygons worth splitting the GEOS validity check over threads


def _surely_valid(geom: np.ndarray) -> np.ndarray:
    """True for polygons that are valid by construction; False means "ask GEOS".

    A polygon without holes (2D, finite) whose ring is star-shaped around the mean of its
    corners is valid: seen from that point every edge turns the same way and the edges go
    round exactly once, so each edge keeps to its own sector of directions and no two edges
    can cross (:func:`_star_ring`). Every convex polygon is such a polygon, and so are
    near-rectangles with moved vertices, as surveyed parcels are. An edge counts only when
    the sign of its turn is certain despite rounding, so collinear, repeated,
    near-degenerate and non-finite corners all leave the polygon to GEOS; so does a ring
    going round twice (a pentagram). Buildings are mostly rectangles and parcels mostly
    near-rectangles: for them this costs a few array operations instead of a GEOS validity
    check each.

    Examples
    --------
    >>> from shapely import Polygon, box
    >>> bowtie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    >>> _surely_valid(np.array([box(0, 0, 2, 1), bowtie, None])).tolist()
    [True, False, False]
    """
    out = np.zeros(len(geom), dtype=bool)
    simple = (
        (shapely.get_type_id(geom) == 3)  # Polygon
        & (shapely.get_num_interior_rings(geom) == 0)
        & ~shapely.has_z(geom)
    )
    cand = np.flatnonzero(simple)
    n_coords = shapely.get_num_coordinates(geom[cand])
    keep = (n_coords >= 4) & (n_coords <= _MAX_RING)
    cand, n_coords = cand[keep], n_coords[keep]
    for k in np.unique(n_coords):  # rings of k points (k - 1 corners) together
        rows = cand[n_coords == k]
        step = max(1, _CORNERS_PER_BLOCK // int(k))
        for start in range(0, len(rows), step):
            idx = rows[start : start + step]
            ring = shapely.get_coordinates(geom[idx]).reshape(len(idx), int(k), 2)
            out[idx] = _star_ring(ring)
    return out


def _star_ring(ring: np.ndarray) -> np.ndarray:
    """For closed rings ``(n, k, 2)``: surely star-shaped around the mean of the corners.

    Seen from that point, every edge turns the same way (the sign of each cross product
    certain: larger than a bound on its rounding error) and the ring goes round it once:
    each edge then keeps to its own sector of directions, so the ring is simple. With every
    turn one way, an edge crossing the horizontal through the point upwards crosses it on
    one side, downwards on the other, so the ring goes round once exactly when its corners
    change from below to above that line and back once. An edge through the point, a
    repeated corner or a ring going round twice is not sure. The differences from the
    point are correctly rounded (relative error below 2⁻⁵³ however large the coordinates),
    so the margin of ``_ORIENT_REL`` holds.
    """
    x, y = ring[..., 0], ring[..., 1]
    m = ring.shape[1] - 1  # corners; the last point closes the ring
    ok = (x[:, 0] == x[:, -1]) & (y[:, 0] == y[:, -1])
    ccw = np.ones(len(ring), dtype=bool)
    cw = np.ones(len(ring), dtype=bool)
    changes = np.zeros(len(ring), dtype=np.int64)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):  # then: not sure
        # differences from the centre, so that large coordinates keep their precision
        dx = x - x[:, :m].mean(axis=1, keepdims=True)
        dy = y - y[:, :m].mean(axis=1, keepdims=True)
        for a in range(m):  # one edge at a time: fastest for the short rings that dominate
            b = a + 1
            left = dx[:, a] * dy[:, b]
            right = dy[:, a] * dx[:, b]
            det = left - right
            size = np.abs(left) + np.abs(right)
            ok &= (np.abs(det) > _ORIENT_REL * size) & (size > _ORIENT_ABS)
            ccw &= det > 0
            cw &= det < 0
            changes += (dy[:, a] < 0) != (dy[:, b] < 0)
    return ok & (ccw | cw) & (changes == 2)


def _is_valid(geom: np.ndarray) -> np.ndarray:
    """``shapely.is_valid``, split over threads: GEOS releases the GIL while it checks."""
    workers = min(_cpus(), 4)
    if workers < 2 or len(geom) < _PARALLEL_MIN:
        return shapely.is_valid(geom)
    with ThreadPoolExecutor(workers) as pool:
        parts = pool.map(shapely.is_valid, np.array_split(geom, 4 * workers))
        return np.concatenate(list(parts))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may run on
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _repair_polygons(
    gdf: gpd.GeoDataFrame, *, source: str, problems: Problems, key: str
) -> gpd.GeoDataFrame:
    """make_valid invalid polygons, keep their polygonal parts, report each repair."""
    geom = gdf.geometry.values
    data = np.asarray(geom)
    valid = _surely_valid(data)
    rest = np.flatnonzero(~valid)  # GEOS checks only what the cheap proof leaves open
    valid[rest] = _is_valid(data[rest])
    invalid = ~valid & ~shapely.is_missing(data)
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
    if not mask.any():
        return frame  # nothing to leave out: no copy of every column
    problems.add(source, frame.loc[mask, "src_row"], frame.loc[mask, key], kind, reason, "reject")
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
    return frame


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
