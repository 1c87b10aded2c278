"""Read input layers from, and write a run's layers to, PostgreSQL/PostGIS.

A run is written as one schema per evaluation year (:func:`schema_for_year`, e.g.
``mujun_2022``), one table per layer, in a single transaction: the tables go into a
fresh schema ``<schema>__new`` which replaces the old schema only when every table is
written, so a failed run leaves the previous tables as they were, and readers see
either the old or the new run, never half of one. An existing schema is replaced only
with ``overwrite=True``.

Each table gets an identity primary key ``fid`` (1, 2, … in row order, as in a
GeoPackage), every geometry column a typed ``geometry(<type>, <srid>)`` column (SRID
from the layer's EPSG code) and a GiST spatial index. Rows are loaded with ``COPY``.

Credentials come from libpq: ``PGPASSWORD``, ``PGHOST``, ``PGUSER``, ``~/.pgpass`` or
a service file; a DSN may leave the password out (or be ``""`` to use the environment
only). A DSN is never logged with its password (:func:`mask_dsn`), and table, schema
and column names only reach SQL as quoted identifiers.

Types written and read back
---------------------------
==============================  =========================  ===============================
pandas column                   PostgreSQL column          read back as
==============================  =========================  ===============================
bool, ``boolean``, object bool  ``boolean``                bool; ``boolean`` with NULLs
int8, int16                     ``smallint``               int16; ``Int16`` with NULLs
int32, uint8, uint16            ``integer``                int32; ``Int32`` with NULLs
int64, other ints, ``Int64``    ``bigint``                 int64; ``Int64`` with NULLs
float32, float64 (NaN)          ``real``, ``double``       float32, float64 (NULL → NaN)
str, object of str, category    ``text``                   pandas' default string dtype
datetime64 (naive, tz-aware)    ``timestamp(tz)``          datetime64[us] (tz-aware → UTC)
object of other/mixed values    ``text`` (``str(v)``)      string
GeoSeries                       ``geometry(<type>, srid)`` GeoSeries, CRS from the SRID
==============================  =========================  ===============================

The frame's index is not stored (as in a GeoPackage); read-back frames have a
RangeIndex in ``fid`` order. Like the GeoPackage writer, a layer mixing Polygon and
MultiPolygon is written as MultiPolygon. Unlike a GeoPackage read with pyogrio,
integer and boolean columns with NULLs come back as nullable ``Int64``/``boolean``
rather than float64.

Examples
--------
>>> schema_for_year(2022)
'mujun_2022'
>>> mask_dsn("postgresql://gis:s3cret@db.example:5432/mujun")
'postgresql://gis:***@db.example:5432/mujun'
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
from pyproj import CRS

from ._errors import ConfigError, CRSError, MujunGeoError, SchemaError
from .export import OutputExistsError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DatabaseError",
    "mask_dsn",
    "read_postgis_layer",
    "read_postgis_layers",
    "schema_for_year",
    "write_postgis",
]

logger = logging.getLogger(__name__)

MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1; longer names are cut silently
FID = "fid"
COPY_CHUNK_ROWS = 50_000  # rows turned into Python values at a time while copying
NEW_SUFFIX = "__new"
_SCHEMA_LIMIT = MAX_IDENTIFIER_BYTES - len(NEW_SUFFIX)  # room for the "__new" working copy
_HIDDEN_KEYS = (FID, "ogc_fid")  # integer primary keys that GDAL/pyogrio also hide
_TEXT_DTYPE = pd.Series(["a", None]).dtype  # "str" on pandas 3, object before
_INT_TYPES = {"int2": ("int16", "Int16"), "int4": ("int32", "Int32"), "int8": ("int64", "Int64")}


class DatabaseError(MujunGeoError, RuntimeError):
    """The database refused a connection or a statement, or lacks what a run needs."""


# --------------------------------------------------------------------------- names, DSNs


def schema_for_year(year: int, *, prefix: str = "mujun") -> str:
    """Name of the schema that holds the run of evaluation ``year``.

    Parameters
    ----------
    year
        Evaluation year, four digits.
    prefix
        Text before ``_<year>``. Kept as given (quoted identifier), so a prefix with
        capitals must be quoted in hand-written SQL; lower case is easier to share.

    Returns
    -------
    str
        ``f"{prefix}_{year}"``.

    Raises
    ------
    ConfigError
        When ``year`` is not a four-digit integer or the name would be too long.

    Examples
    --------
    >>> schema_for_year(2023, prefix="haining")
    'haining_2023'
    >>> schema_for_year(22)
    Traceback (most recent call last):
    ...
    mujun_geo._errors.ConfigError: `year` must be a four-digit year such as 2022, got 22
    """
    is_int = isinstance(year, (int, np.integer)) and not isinstance(year, bool)
    if not is_int or not 1000 <= year <= 9999:
        msg = f"`year` must be a four-digit year such as 2022, got {year!r}"
        raise ConfigError(msg)
    if not isinstance(prefix, str) or not prefix:
        msg = f"`prefix` must be non-empty text, got {prefix!r}"
        raise ConfigError(msg)
    name = f"{prefix}_{int(year)}"
    return _check_name(name, what="schema", limit=_SCHEMA_LIMIT, error=ConfigError)


_URI_SCHEME = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']\S*)", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """Return the DSN with any password replaced by ``***``, for logs and messages.

    Parameters
    ----------
    dsn
        libpq connection string: a URI (``postgresql://user:pw@host/db``) or
        ``key=value`` pairs (``host=db password=pw``).

    Returns
    -------
    str
        The same string with the password (in the user part, a ``password=`` query
        parameter or a ``password=`` pair) replaced by ``***``.

    Examples
    --------
    >>> mask_dsn("host=db user=gis password='a b' dbname=mujun")
    'host=db user=gis password=*** dbname=mujun'
    >>> mask_dsn("postgresql://gis@db/mujun?password=x&sslmode=require")
    'postgresql://gis@db/mujun?password=***&sslmode=require'
    >>> mask_dsn("postgresql://gis@db/mujun")
    'postgresql://gis@db/mujun'
    """
    m = _URI_SCHEME.match(dsn)
    if not m:
        return _KV_PASSWORD.sub(r"\1***", dsn)
    scheme, body = dsn[: m.end()], dsn[m.end() :]
    userinfo, rest = _split_userinfo(body)
    if userinfo is not None and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    head = "" if userinfo is None else userinfo + "@"
    return scheme + head + _QUERY_PASSWORD.sub(r"\1***", rest)


def _split_userinfo(body: str) -> tuple[str | None, str]:
    """Split ``user:pw@hosts/db?...`` at the ``@`` that ends the user part.

    The last ``@`` before the query is taken, so an unencoded ``@``, ``/`` or ``#``
    inside a password still ends up in the masked part.
    """
    q = body.find("?")
    at = body.rfind("@", 0, q) if q >= 0 and "@" in body[:q] else body.rfind("@")
    if at < 0:
        return None, body
    return body[:at], body[at + 1 :]


def _passwords(dsn: str) -> set[str]:
    """Every spelling of the DSN's password, to scrub from error messages."""
    found: set[str] = set()
    try:
        from psycopg.conninfo import conninfo_to_dict

        pw = conninfo_to_dict(dsn).get("password")
        if pw:
            found.add(str(pw))
    except Exception:  # noqa: BLE001 - a malformed DSN must still be scrubbed below
        pass
    m = _URI_SCHEME.match(dsn)
    if m:
        userinfo, rest = _split_userinfo(dsn[m.end() :])
        if userinfo and ":" in userinfo:
            found.add(userinfo.split(":", 1)[1])
        found.update(v for _, v in _QUERY_PASSWORD.findall(rest))
    else:
        found.update(v.strip("'") for _, v in _KV_PASSWORD.findall(dsn))
    found |= {unquote(p) for p in found}
    return {p for p in found if p}


def _error_text(err: BaseException, dsn: str) -> str:
    """One-line driver message with any password of ``dsn`` scrubbed out."""
    return _scrub(" ".join(str(err).split()), dsn)


def _scrub(text: str, dsn: str) -> str:
    for pw in sorted(_passwords(dsn), key=len, reverse=True):
        text = text.replace(pw, "***")
    return text


def _check_name(
    name: object,
    *,
    what: str,
    limit: int = MAX_IDENTIFIER_BYTES,
    error: type[MujunGeoError] = SchemaError,
) -> str:
    if not isinstance(name, str) or not name or "\x00" in name:
        msg = f"{what} name must be non-empty text without NUL characters, got {name!r}"
        raise error(msg)
    size = len(name.encode("utf-8"))
    if size > limit:
        msg = (
            f"{what} name {name!r} is {size} bytes in UTF-8; PostgreSQL keeps at most {limit} "
            f"here (a Chinese character takes 3 bytes): shorten it"
        )
        raise error(msg)
    return name


# --------------------------------------------------------------------------- connections


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as err:  # pragma: no cover - depends on the environment
        msg = 'PostGIS input/output needs psycopg: pip install "psycopg[binary]"'
        raise ImportError(msg) from err
    return psycopg


def _connect(dsn: str) -> psycopg.Connection[Any]:
    """Open a connection (not in autocommit: the caller's work is one transaction)."""
    pg = _psycopg()
    if not isinstance(dsn, str):
        msg = f"`dsn` must be a libpq connection string, got {type(dsn).__name__}"
        raise ConfigError(msg)
    if _passwords(dsn):
        logger.warning(
            "the DSN %s holds a password; prefer PGPASSWORD or ~/.pgpass, which stay "
            "out of command lines and shell history",
            mask_dsn(dsn),
        )
    extra: dict[str, Any] = {}
    try:
        given = pg.conninfo.conninfo_to_dict(dsn)
    except pg.Error:
        given = {}
    if "connect_timeout" not in given and "PGCONNECT_TIMEOUT" not in os.environ:
        extra["connect_timeout"] = 10
    if "application_name" not in given and "PGAPPNAME" not in os.environ:
        extra["application_name"] = "mujun-geo"
    try:
        return pg.connect(dsn, **extra)
    except pg.Error as err:
        msg = (
            f"cannot connect to PostgreSQL at {_shown(dsn)}: {_error_text(err, dsn)}. "
            "Check host, port, database and user; give the password with PGPASSWORD or "
            "~/.pgpass rather than in the DSN"
        )
        raise DatabaseError(msg) from None


def _shown(dsn: str) -> str:
    return mask_dsn(dsn) if dsn.strip() else "(libpq defaults from the environment)"


def _postgis_schema(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'postgis'"
    ).fetchone()
    return None if row is None else row[0]


def _schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
    return row is not None


# --------------------------------------------------------------------------- writing


@dataclass
class _Column:
    name: str
    pgtype: str  # one of _COPY_TYPES' keys
    source: Any  # the column (Series), or an array of shapely geometries
    gtype: str = ""  # geometry only: PostGIS type modifier, e.g. "MultiPolygon"
    srid: int = 0

    @property
    def geometry(self) -> bool:
        return self.pgtype == "geometry"

    def values(self, start: int, stop: int) -> list[Any]:
        """Python values of rows ``start:stop`` for COPY, ``None`` where missing.

        Converted a chunk at a time, so a province's parcels never exist twice over
        as Python objects.
        """
        part = self.source[start:stop]
        if self.geometry:
            return shapely.to_wkb(shapely.set_srid(part, self.srid), include_srid=True).tolist()
        missing = part.isna().to_numpy()
        values = part.astype(object).tolist()
        if self.pgtype == "text":
            # strings as they are, anything else as str(v), as the GeoPackage writer does
            return [
                None if m else v if isinstance(v, str) else str(v) for v, m in zip(values, missing)
            ]
        if missing.any():
            for i in np.flatnonzero(missing).tolist():
                values[i] = None
        return values


@dataclass
class _Layer:
    name: str
    columns: list[_Column] = field(default_factory=list)
    n_rows: int = 0


def _prepare_layer(name: str, frame: pd.DataFrame) -> _Layer:
    """Check names and CRSs and turn every column into PostgreSQL values (no connection)."""
    _check_name(name, what="layer")
    if not isinstance(frame, pd.DataFrame):
        msg = f"layer {name!r} must be a DataFrame or GeoDataFrame, got {type(frame).__name__}"
        raise SchemaError(msg)
    names = [str(c) for c in frame.columns]
    for col in names:
        _check_name(col, what=f"column of layer {name!r}")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        msg = f"layer {name!r} has duplicate columns {dup}; rename them before writing"
        raise SchemaError(msg)
    if FID in names:
        msg = (
            f"layer {name!r} has a column `{FID}`, which the database table uses for its "
            f"primary key (row number, as in a GeoPackage); rename that column"
        )
        raise SchemaError(msg)
    layer = _Layer(name, n_rows=len(frame))
    for col, (_, s) in zip(names, frame.items()):
        if isinstance(s.dtype, gpd.array.GeometryDtype):
            layer.columns.append(_geometry_column(name, col, gpd.GeoSeries(s)))
        else:
            layer.columns.append(_Column(col, _attribute_type(s), s.reset_index(drop=True)))
    return layer


def _geometry_column(layer: str, col: str, s: gpd.GeoSeries) -> _Column:
    if s.crs is None:
        msg = (
            f"geometry column {col!r} of layer {layer!r} has no CRS; declare it with "
            f"`gdf.set_crs('EPSG:4549')` (the CRS the coordinates are in)"
        )
        raise CRSError(msg)
    srid = s.crs.to_epsg()
    if srid is None:
        msg = (
            f"the CRS of layer {layer!r} ({s.crs.name}) has no EPSG code for a PostGIS SRID; "
            f"reproject with `gdf.to_crs('EPSG:4549')` (or the zone of your county)"
        )
        raise CRSError(msg)
    geoms = np.asarray(s.array, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    names = {_GEOMETRY_TYPES[t] for t in shapely.get_type_id(geoms[present]).tolist()}
    if names == {"Polygon", "MultiPolygon"}:
        # the GeoPackage writer promotes these to MultiPolygon; do the same
        polys = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
        geoms = geoms.copy()
        geoms[polys] = shapely.multipolygons(geoms[polys], indices=np.arange(int(polys.sum())))
        names = {"MultiPolygon"}
    has_z = shapely.has_z(geoms[present])
    if has_z.any() and not has_z.all():
        msg = (
            f"layer {layer!r} mixes 2D and 3D geometries in {col!r}; make them alike with "
            f"`shapely.force_2d` or `shapely.force_3d` before writing"
        )
        raise SchemaError(msg)
    gtype = names.pop() if len(names) == 1 else "Geometry"
    if has_z.any():
        gtype += "Z"
    return _Column(col, "geometry", geoms, gtype=gtype, srid=int(srid))


# shapely type id -> PostGIS type modifier (a LinearRing is stored as a LineString)
_GEOMETRY_TYPES = {
    0: "Point",
    1: "LineString",
    2: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
# type names that psycopg knows, for binary COPY
_COPY_TYPES = {
    "double precision": "float8",
    "real": "float4",
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "boolean": "bool",
    "text": "text",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    # EWKB goes through the bytea dumper: geometry_recv reads it as is
    "geometry": "bytea",
}


def _attribute_type(s: pd.Series) -> str:
    """PostgreSQL type of one attribute column."""
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        kind = np.dtype(getattr(dtype, "numpy_dtype", dtype))
        if kind.kind == "i" and kind.itemsize <= 2:
            return "smallint"
        if kind.itemsize < 4 or (kind.kind == "i" and kind.itemsize == 4):
            return "integer"
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        size = np.dtype(getattr(dtype, "numpy_dtype", dtype)).itemsize
        return "real" if size == 4 else "double precision"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "timestamptz"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_object_dtype(dtype):
        kinds = {type(v) for v in s.dropna()}
        if kinds and all(issubclass(k, (bool, np.bool_)) for k in kinds):
            return "boolean"
    return "text"


def write_postgis(
    layers: Mapping[str, pd.DataFrame],
    dsn: str,
    *,
    schema: str,
    overwrite: bool = False,
) -> None:
    """Write every layer as a table of ``schema``, replacing the schema in one transaction.

    Parameters
    ----------
    layers
        Layer name → DataFrame (plain table) or GeoDataFrame (table with a geometry
        column, SRID from its CRS's EPSG code, and a GiST index).
    dsn
        libpq connection string without a password (``postgresql://user@host/db``);
        the password comes from ``PGPASSWORD`` or ``~/.pgpass``. ``""`` uses the
        ``PG*`` environment variables only.
    schema
        Target schema, e.g. ``schema_for_year(2022)``.
    overwrite
        Replace an existing schema (with every table in it). Without it an existing
        schema raises :class:`~mujun_geo.export.OutputExistsError` and nothing is written.

    Raises
    ------
    OutputExistsError
        ``schema`` exists and ``overwrite`` is false.
    SchemaError
        A layer or column name is too long (63 bytes) or a layer has a ``fid`` column.
    CRSError
        A geometry column has no CRS, or one without an EPSG code.
    DatabaseError
        The connection or a statement failed, PostGIS is missing, or a view outside
        the schema depends on its tables; the database is left as it was.

    Examples
    --------
    >>> from shapely import box
    >>> parcels = gpd.GeoDataFrame({"parcel_id": ["P1"]}, geometry=[box(0, 0, 10, 10)],
    ...                            crs="EPSG:4549")
    >>> write_postgis({"parcels": parcels}, "postgresql://gis@localhost/mujun",
    ...               schema=schema_for_year(2022), overwrite=True)  # doctest: +SKIP
    """
    _check_name(schema, what="schema", limit=_SCHEMA_LIMIT, error=ConfigError)
    prepared = [_prepare_layer(name, frame) for name, frame in layers.items()]
    pg = _psycopg()
    sql = pg.sql
    new = schema + NEW_SUFFIX
    start = time.perf_counter()
    logger.info("writing %d layers to schema %s in %s", len(prepared), schema, _shown(dsn))
    current = "(before the first layer)"
    with _connect(dsn) as conn:
        try:
            # writers of the same schema wait for each other instead of colliding on __new
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"mujun_geo.write_postgis:{schema}"]
            )
            exists = _schema_exists(conn, schema)
            if exists and not overwrite:
                msg = (
                    f"schema {schema} exists in {_shown(dsn)}; pass --overwrite "
                    f"(overwrite=True) to replace it"
                )
                raise OutputExistsError(msg)
            if _schema_exists(conn, new):
                msg = (
                    f"schema {new} exists in {_shown(dsn)}; it is not one of ours in progress "
                    f"(those never outlive their transaction): drop or rename it"
                )
                raise DatabaseError(msg)
            postgis = _postgis_schema(conn)
            srids = {c.srid for layer in prepared for c in layer.columns if c.geometry}
            if srids:
                _check_postgis(conn, postgis, srids, dsn)
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(new)))
            for layer in prepared:
                current = f"layer {layer.name!r}"
                _write_table(conn, new, layer, postgis)
            current = f"replacing schema {schema}"
            if exists:
                _check_no_outside_dependents(conn, schema)
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(new), sql.Identifier(schema)
                )
            )
        except pg.Error as err:
            msg = (
                f"writing to schema {schema} in {_shown(dsn)} failed at {current}: "
                f"{_error_text(err, dsn)}; nothing was changed"
            )
            raise DatabaseError(msg) from err
    logger.info(
        "wrote %d layers (%d rows) to schema %s in %.1f s",
        len(prepared),
        sum(layer.n_rows for layer in prepared),
        schema,
        time.perf_counter() - start,
    )


def _check_postgis(
    conn: psycopg.Connection[Any], postgis: str | None, srids: set[int], dsn: str
) -> None:
    if postgis is None:
        msg = (
            f"the database {_shown(dsn)} has no PostGIS; run `CREATE EXTENSION postgis` in it "
            f"(needs the postgresql-NN-postgis-3 package on the server)"
        )
        raise DatabaseError(msg)
    pg = _psycopg()
    rows = conn.execute(
        pg.sql.SQL("SELECT srid FROM {}.spatial_ref_sys WHERE srid = ANY(%s)").format(
            pg.sql.Identifier(postgis)
        ),
        [sorted(srids)],
    ).fetchall()
    unknown = sorted(srids - {r[0] for r in rows})
    if unknown:
        msg = (
            f"SRID(s) {unknown} are not in spatial_ref_sys of {_shown(dsn)}; reproject the "
            f"layers to a CRS PostGIS knows, such as EPSG:4549"
        )
        raise CRSError(msg)


def _write_table(
    conn: psycopg.Connection[Any], schema: str, layer: _Layer, postgis: str | None
) -> None:
    sql = _psycopg().sql
    t0 = time.perf_counter()
    table = sql.Identifier(schema, layer.name)
    key = sql.SQL("{} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    defs = [key.format(sql.Identifier(FID))]
    for c in layer.columns:
        if c.geometry:
            pgtype = sql.SQL("{}.geometry({}, {})").format(
                sql.Identifier(postgis or "public"), sql.SQL(c.gtype), sql.Literal(c.srid)
            )
        else:
            pgtype = sql.SQL(c.pgtype)
        defs.append(sql.SQL("{} {}").format(sql.Identifier(c.name), pgtype))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(defs)))
    if not layer.columns and layer.n_rows:  # rows without columns: keep their count
        conn.execute(
            sql.SQL(
                "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT generate_series(1, %s)"
            ).format(table, sql.Identifier(FID)),
            [layer.n_rows],
        )
    elif layer.n_rows:
        names = sql.SQL(", ").join(sql.Identifier(c.name) for c in layer.columns)
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, names)
        types = [_COPY_TYPES[c.pgtype] for c in layer.columns]
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            copy.set_types(types)
            for start in range(0, layer.n_rows, COPY_CHUNK_ROWS):
                stop = start + COPY_CHUNK_ROWS
                for row in zip(*(c.values(start, stop) for c in layer.columns)):
                    copy.write_row(row)
    for c in layer.columns:
        if c.geometry:
            conn.execute(
                sql.SQL("CREATE INDEX ON {} USING GIST ({})").format(table, sql.Identifier(c.name))
            )
    conn.execute(sql.SQL("ANALYZE {}").format(table))
    logger.debug(
        "table %s.%s: %d rows in %.2f s", schema, layer.name, layer.n_rows, time.perf_counter() - t0
    )


def _check_no_outside_dependents(conn: psycopg.Connection[Any], schema: str) -> None:
    """Refuse to drop tables that views in other schemas use (CASCADE would drop those)."""
    rows = conn.execute(
        """
        SELECT DISTINCT vn.nspname || '.' || v.relname
        FROM pg_depend d
        JOIN pg_rewrite r ON r.oid = d.objid
        JOIN pg_class v ON v.oid = r.ev_class
        JOIN pg_namespace vn ON vn.oid = v.relnamespace
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
          AND tn.nspname = %s AND vn.nspname <> %s
        ORDER BY 1
        """,
        [schema, schema],
    ).fetchall()
    if rows:
        views = [r[0] for r in rows]
        msg = (
            f"views outside schema {schema} use its tables: {views}; replacing the schema "
            f"would drop them. Drop them first (and re-create them after the run)"
        )
        raise DatabaseError(msg)


# --------------------------------------------------------------------------- reading


def read_postgis_layer(
    dsn: str,
    table: str,
    *,
    schema: str | None = None,
    geometry_column: str = "geometry",
) -> pd.DataFrame | gpd.GeoDataFrame:
    """Read one table (or view) as a GeoDataFrame, or a DataFrame if it has no geometry.

    Parameters
    ----------
    dsn
        libpq connection string (see :func:`write_postgis`).
    table
        Table name, exactly as stored (no quoting needed, case matters).
    schema
        Schema of the table; ``None`` looks it up through the ``search_path``.
    geometry_column
        Column that becomes the active geometry. When the table has no such column
        but exactly one geometry column (``geom``, ``wkb_geometry``…), that one is used.

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        Rows in primary-key order, with a RangeIndex. A ``fid``/``ogc_fid`` integer
        primary key is dropped, as a GeoPackage reader hides its fid. The CRS comes
        from the column's SRID.

    Raises
    ------
    DatabaseError
        The connection failed or the table does not exist (the message lists the
        tables of the schema).
    SchemaError
        ``geometry_column`` is absent and the table has several geometry columns.
    CRSError
        An untyped geometry column holds several SRIDs.

    Examples
    --------
    >>> parcels = read_postgis_layer("postgresql://gis@localhost/mujun", "parcels",
    ...                              schema="mujun_2022")  # doctest: +SKIP
    """
    with _connect(dsn) as conn:
        return _read_table(conn, dsn, table, schema, geometry_column)


def read_postgis_layers(dsn: str, *, schema: str) -> dict[str, pd.DataFrame]:
    """Read every table of ``schema`` (in creation order) from one consistent snapshot.

    Parameters
    ----------
    dsn
        libpq connection string (see :func:`write_postgis`).
    schema
        Schema to read, e.g. ``schema_for_year(2022)``.

    Returns
    -------
    dict
        Table name → DataFrame or GeoDataFrame, as :func:`read_postgis_layer` reads them.

    Raises
    ------
    DatabaseError
        The connection failed or the schema does not exist.

    Examples
    --------
    >>> run = read_postgis_layers("postgresql://gis@localhost/mujun",
    ...                           schema="mujun_2022")  # doctest: +SKIP
    """
    pg = _psycopg()
    with _connect(dsn) as conn:
        # one snapshot for all tables, so a run being replaced meanwhile is read whole
        conn.isolation_level = pg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        if not _schema_exists(conn, schema):
            msg = f"schema {schema} does not exist in {_shown(dsn)}; schemas: {_schemas(conn)}"
            raise DatabaseError(msg)
        names = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.oid",
                [schema],
            ).fetchall()
        ]
        return {name: _read_table(conn, dsn, name, schema, "geometry") for name in names}


def _schemas(conn: psycopg.Connection[Any]) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
            "AND nspname <> 'information_schema' ORDER BY 1"
        ).fetchall()
    ]


def _read_table(
    conn: psycopg.Connection[Any], dsn: str, table: str, schema: str | None, geometry_column: str
) -> pd.DataFrame | gpd.GeoDataFrame:
    sql = _psycopg().sql
    _check_name(table, what="table")
    if schema is None:
        row = conn.execute(
            "SELECT to_regclass(%s)::oid", [sql.Identifier(table).as_string(conn)]
        ).fetchone()
        oid = None if row is None else row[0]
    else:
        row = conn.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r','p','v','m','f')",
            [schema, table],
        ).fetchone()
        oid = None if row is None else row[0]
    if oid is None:
        where = f"schema {schema}" if schema else "the search_path"
        listed = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r','p','v','m','f') AND "
            + ("n.nspname = %s" if schema else "n.nspname = ANY(current_schemas(false))")
            + " ORDER BY 1",
            [schema] if schema else [],
        ).fetchall()
        msg = (
            f"table {table!r} not found in {where} of {_shown(dsn)}; tables there: "
            f"{[r[0] for r in listed]}"
        )
        raise DatabaseError(msg)
    nsp, rel = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = %s",
        [oid],
    ).fetchone()  # type: ignore[misc]
    cols = conn.execute(
        "SELECT a.attname, t.typname, a.atttypmod FROM pg_attribute a "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [oid],
    ).fetchall()
    pkey = [
        r[0]
        for r in conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = %s AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
            [oid],
        ).fetchall()
    ]
    types = {name: typ for name, typ, _ in cols}
    typmods = {name: typmod for name, _, typmod in cols}
    hidden = (
        pkey[0]
        if len(pkey) == 1 and pkey[0] in _HIDDEN_KEYS and types[pkey[0]] in _INT_TYPES
        else None
    )
    geom_cols = [name for name, typ, _ in cols if typ in ("geometry", "geography")]
    postgis = _postgis_schema(conn) if geom_cols else None
    table_id = sql.Identifier(nsp, rel)

    shown = [(name, typ) for name, typ, _ in cols if name != hidden]
    exprs = []
    for name, typ in shown:
        col = sql.Identifier(name)
        if typ in ("geometry", "geography"):
            exprs.append(sql.SQL("{}.st_asbinary({})").format(sql.Identifier(postgis), col))
        elif typ == "numeric":
            exprs.append(sql.SQL("{}::double precision").format(col))
        else:
            exprs.append(col)
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(exprs) if exprs else sql.SQL("NULL"), table_id
    )
    if pkey:
        query += sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(map(sql.Identifier, pkey)))
    rows = conn.execute(query).fetchall()
    columns = list(zip(*rows)) if rows and exprs else [()] * len(shown)
    data = {name: _to_series(list(vals), typ) for (name, typ), vals in zip(shown, columns)}
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    if not geom_cols:
        return frame
    if geometry_column in geom_cols:
        active = geometry_column
    elif len(geom_cols) == 1:
        active = geom_cols[0]
    else:
        msg = (
            f"table {nsp}.{rel} has no column {geometry_column!r} but several geometry "
            f"columns {geom_cols}; pass `geometry_column=` one of them"
        )
        raise SchemaError(msg)
    assert postgis is not None  # geometry columns exist, so the extension was found above
    for name in geom_cols:
        frame[name] = gpd.GeoSeries(
            frame[name].to_numpy(),
            index=frame.index,
            crs=_column_crs(conn, postgis, table_id, name, typmods[name], f"{nsp}.{rel}"),
        )
    return gpd.GeoDataFrame(frame, geometry=active)


def _to_series(values: list[Any], typ: str) -> pd.Series:
    has_null = any(v is None for v in values)
    if typ in _INT_TYPES:
        plain, nullable = _INT_TYPES[typ]
        return pd.Series(values, dtype=nullable if has_null else plain)
    if typ == "bool":
        return pd.Series(values, dtype="boolean" if has_null else bool)
    if typ in ("float4", "float8", "numeric"):
        return pd.Series(
            [np.nan if v is None else v for v in values],
            dtype="float32" if typ == "float4" else "float64",
        )
    if typ in ("text", "varchar", "bpchar", "name", "citext"):
        return pd.Series(values, dtype=_TEXT_DTYPE)
    if typ == "timestamp":
        return pd.Series(pd.to_datetime(values), dtype="datetime64[us]")
    if typ == "timestamptz":
        return pd.Series(pd.to_datetime(values, utc=True), dtype="datetime64[us, UTC]")
    if typ in ("geometry", "geography"):
        return pd.Series(shapely.from_wkb(np.array(values, dtype=object)), dtype=object)
    return pd.Series(values, dtype=object)


def _column_crs(
    conn: psycopg.Connection[Any],
    postgis: str,
    table_id: Any,
    column: str,
    typmod: int,
    where: str,
) -> CRS | None:
    sql = _psycopg().sql
    ext = sql.Identifier(postgis)
    # the SRID of the column's type modifier: geometry_columns would scan every table
    # of the database and fails while another session drops one ("cache lookup failed")
    srid = 0
    if typmod >= 0:
        row = conn.execute(
            sql.SQL("SELECT {}.postgis_typmod_srid(%s)").format(ext), [typmod]
        ).fetchone()
        srid = 0 if row is None or row[0] is None else int(row[0])
    if srid == 0:  # untyped column: the SRID of the data, if there is one
        found = conn.execute(
            sql.SQL("SELECT DISTINCT {}.st_srid({}) FROM {} WHERE {} IS NOT NULL LIMIT 2").format(
                ext, sql.Identifier(column), table_id, sql.Identifier(column)
            )
        ).fetchall()
        if len(found) > 1:
            msg = (
                f"column {column!r} of {where} holds several SRIDs; give it one with "
                f"ST_Transform or ST_SetSRID in a view"
            )
            raise CRSError(msg)
        srid = int(found[0][0]) if found else 0
    if srid == 0:
        return None
    ref = conn.execute(
        sql.SQL(
            "SELECT auth_name, auth_srid, srtext FROM {}.spatial_ref_sys WHERE srid = %s"
        ).format(ext),
        [srid],
    ).fetchone()
    if ref is None:
        return CRS.from_epsg(srid)
    auth, code, wkt = ref
    if auth and auth.upper() == "EPSG" and code:
        return CRS.from_epsg(int(code))
    return CRS.from_wkt(wkt)
