"""PostGIS input/output against a real PostgreSQL + PostGIS server.

The server comes from ``MUJUN_TEST_DSN``, else from a cluster already running on
127.0.0.1:55432 (``scripts/start_postgis.sh``), else the fixture runs that script (and
stops the cluster afterwards). Without any of these the tests skip, except under CI,
where they fail: CI must really run them.
"""

from __future__ import annotations

import fcntl
import glob
import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import geopandas as gpd
import pyogrio
import shapely
from geopandas.testing import assert_geodataframe_equal
from shapely import MultiPolygon, Point, box

from mujun_geo import db
from mujun_geo._errors import ConfigError, CRSError, SchemaError
from mujun_geo.export import OutputExistsError, write_geopackage

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "start_postgis.sh"
PORT = os.environ.get("MUJUN_PG_PORT", "55432")  # as scripts/start_postgis.sh reads it
DEFAULT_DSN = f"postgresql://mujun@127.0.0.1:{PORT}/mujun_test"
# the script's cluster folder + ".users" (MUJUN_PG_DIR as the script reads it)
_ROOT = os.environ.get("MUJUN_PG_DIR") or f"{os.environ.get('TMPDIR', '/tmp')}/mujun-postgis-{PORT}"
USERS_LOCK = Path(_ROOT + ".users")
PW_ROLE, PW = "mujun_pw", "mujun-test-only"  # the password role that start_postgis.sh makes
CRS = "EPSG:4549"  # CGCS2000 / 3-degree Gauss-Kruger CM 120E
X0, Y0 = 500_000.0, 3_380_000.0


# --------------------------------------------------------------------------- server


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the PostGIS tests must run in CI but cannot: {reason}")
    pytest.skip(reason)


def _has_postgis(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
            return row is not None
    except psycopg.Error:
        return False


@pytest.fixture(scope="module")
def pg_dsn():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable('psycopg is not installed: pip install "psycopg[binary]"')
    given = os.environ.get("MUJUN_TEST_DSN")
    if given:
        if not _has_postgis(given):
            pytest.fail(f"MUJUN_TEST_DSN={db.mask_dsn(given)} does not answer or lacks PostGIS")
        yield given
        return
    # every test run that uses the default cluster holds a shared lock on this file, so
    # the run that started the cluster stops it only when no other run still uses it
    users = open(USERS_LOCK, "a")  # noqa: SIM115 - held for the whole module
    fcntl.flock(users, fcntl.LOCK_SH)
    try:
        if _has_postgis(DEFAULT_DSN):
            yield DEFAULT_DSN
            return
        yield from _start_cluster(users)
    finally:
        users.close()


def _start_cluster(users):
    has_server = glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb")
    if not has_server:
        _unavailable(
            "no PostgreSQL server: set MUJUN_TEST_DSN, or install the Debian packages "
            "postgresql and postgresql-15-postgis-3 and run scripts/start_postgis.sh"
        )
    proc = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        _unavailable(f"scripts/start_postgis.sh failed (exit {proc.returncode}): {tail}")
    dsn = proc.stdout.strip().splitlines()[-1]
    try:
        yield dsn
    finally:
        # the script stops the cluster only when no other test run holds the lock
        fcntl.flock(users, fcntl.LOCK_UN)
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120, check=False)


def _sql(dsn: str, query, params=()):
    """Run one statement outside mujun_geo (the independent check) and return its rows."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def schema(pg_dsn):
    from psycopg import sql

    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    for s in (name, name + db.NEW_SUFFIX):
        _sql(pg_dsn, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s)))


def _schemas(dsn: str, like: str) -> list[str]:
    return [r[0] for r in _sql(dsn, "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s "
                                    "ORDER BY 1", [like + "%"])]  # fmt: skip


def _geometry_types(dsn: str, schema: str) -> list[tuple[str, str]]:
    """Declared type of every geometry column of the schema's tables, from the catalog."""
    # not the geometry_columns view: it scans every table and fails while another test
    # run drops one
    return _sql(dsn, "SELECT c.relname, format_type(a.atttypid, a.atttypmod) "
                     "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                     "JOIN pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE n.nspname = %s AND c.relkind = 'r' "
                     "AND a.atttypid = 'geometry'::regtype ORDER BY 1", [schema])  # fmt: skip


# --------------------------------------------------------------------------- layers


def _layers() -> dict[str, pd.DataFrame]:
    """A small run: polygons, points and plain tables with every kind of value."""
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": ["330481001001GB00001", "330481001001GB00002", "330481001001GB00003"],
            "holder_name": ["海宁市华丰纺织有限公司", None, "浙江长安机械股份有限公司"],
            "area_mu": [0.3, np.nan, 0.15],
            "n_enterprises": [2, 0, 1],
            "lowland": [False, True, False],
            "floors": pd.array([3, pd.NA, 1], dtype="Int64"),
            "standard_land": pd.array([True, pd.NA, False], dtype="boolean"),
        },
        # 10 m x 20 m = 200 m2, nothing, 10 m x 10 m = 100 m2
        geometry=[box(X0, Y0, X0 + 10, Y0 + 20), None, box(X0 + 50, Y0, X0 + 60, Y0 + 10)],
        crs=CRS,
        index=[10, 11, 12],  # not stored: read back with a RangeIndex
    )
    enterprises = gpd.GeoDataFrame(
        {
            "credit_code": ["91330481MA2B000001", "91330481MA2B000002"],
            "name": ["海宁经编厂（普通合伙）", 'O\'Brien "Tab"\tCo\nLtd \\ 有限公司'],
            "tax": [12.5, 0.0],
            "employees": np.array([40, 7], dtype="int32"),
        },
        geometry=[Point(X0 + 5, Y0 + 5), Point(X0 + 55, Y0 + 5)],
        crs=CRS,
    )
    matches = pd.DataFrame(
        {
            "credit_code": ["91330481MA2B000001", "91330481MA2B000002"],
            "parcel_id": ["330481001001GB00001", "330481001001GB00003"],
            "confidence": [1.0, 0.75],
            "distance_m": [0.0, np.nan],
            "manual": [False, True],
            "checked_at": pd.to_datetime(["2022-06-01 09:30:00", None]),
        }
    )
    rejects = pd.DataFrame(
        {
            "source": ["enterprises", "parcels"],
            "row": [7, 9],
            "key": pd.Series([1234, None], dtype=object),
            "reason": ["统一社会信用代码校验位错误", "缺少宗地代码"],
        }  # fmt: skip
    )
    return {"parcels": parcels, "enterprises": enterprises, "matches": matches, "rejects": rejects}


def _expected(layers: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """What the read-back must equal: the input, index reset, with the documented dtypes."""
    out = {name: frame.reset_index(drop=True) for name, frame in layers.items()}
    # an object column of int and None is written as text (str(v)), as the GPKG writer does
    out["rejects"]["key"] = pd.Series(["1234", None], dtype=pd.Series(["a", None]).dtype)
    out["matches"]["checked_at"] = out["matches"]["checked_at"].astype("datetime64[us]")
    return out


# --------------------------------------------------------------------------- round trip


def test_round_trip_equals_input(pg_dsn, schema):
    layers = _layers()
    db.write_postgis(layers, pg_dsn, schema=schema)
    back = db.read_postgis_layers(pg_dsn, schema=schema)
    expected = _expected(layers)
    assert list(back) == ["parcels", "enterprises", "matches", "rejects"]  # creation order
    for name in ("parcels", "enterprises"):
        assert isinstance(back[name], gpd.GeoDataFrame)
        assert back[name].crs == CRS
        assert_geodataframe_equal(back[name], expected[name], check_dtype=True)
    for name in ("matches", "rejects"):
        assert type(back[name]) is pd.DataFrame
        assert_frame_equal(back[name], expected[name], check_dtype=True)
    assert back["parcels"].index.equals(pd.RangeIndex(3))
    # PostGIS itself: areas 10*20 = 200 and 10*10 = 100 m2, SRID 4549, fid 1..3 in row order
    rows = _sql(pg_dsn, f'SELECT fid, parcel_id, ST_Area(geometry), ST_SRID(geometry) '
                        f'FROM "{schema}".parcels ORDER BY fid')  # fmt: skip
    assert rows == [
        (1, "330481001001GB00001", 200.0, 4549),
        (2, "330481001001GB00002", None, None),
        (3, "330481001001GB00003", 100.0, 4549),
    ]
    # text with quotes, tab, newline and backslash arrives byte for byte
    (name,) = _sql(pg_dsn, f'SELECT name FROM "{schema}".enterprises WHERE fid = 2')[0]
    assert name == 'O\'Brien "Tab"\tCo\nLtd \\ 有限公司'


def test_read_back_equals_geopackage_run(pg_dsn, schema, tmp_path):
    layers = _layers()
    db.write_postgis(layers, pg_dsn, schema=schema)
    back = db.read_postgis_layers(pg_dsn, schema=schema)
    gpkg = write_geopackage(layers, tmp_path / "mujun.gpkg")
    for name in layers:
        ref = pyogrio.read_dataframe(gpkg, layer=name)
        pg = back[name].copy()
        # documented differences of a GeoPackage read (pyogrio) from the PostGIS read:
        for col in pg.columns:
            if str(pg[col].dtype) in ("Int64", "boolean") and pg[col].isna().any():
                if isinstance(pg, gpd.GeoDataFrame):  # GPKG: NULL-able int/bool -> float64
                    pg[col] = pg[col].astype("float64")
                else:  # GPKG attribute table: nullable booleans become the text 'True'/'False'
                    pg[col] = pg[col].astype(object).map({True: "True", False: "False"})
                    pg[col] = pg[col].astype(ref[col].dtype)
            elif str(pg[col].dtype).startswith("datetime64"):  # GPKG keeps milliseconds
                pg[col] = pg[col].astype("datetime64[ms]")
        if isinstance(pg, gpd.GeoDataFrame):
            assert_geodataframe_equal(pg, ref, check_dtype=True)
        else:
            assert_frame_equal(pg, ref, check_dtype=True)


def test_many_rows_keep_their_order(pg_dsn, schema, monkeypatch):
    monkeypatch.setattr(db, "COPY_CHUNK_ROWS", 1500)  # 5000 rows = chunks of 1500+1500+1500+500
    n = 5000
    pts = gpd.GeoDataFrame({"v": np.arange(n) * 2}, geometry=gpd.points_from_xy(
        X0 + np.arange(n), np.full(n, Y0)), crs=CRS)  # fmt: skip
    db.write_postgis({"pts": pts}, pg_dsn, schema=schema)
    back = db.read_postgis_layer(pg_dsn, "pts", schema=schema)
    assert_geodataframe_equal(back, pts)
    # sum of 2i for i < 5000 = 2 * 4999 * 5000 / 2 = 24_995_000; sum of x offsets likewise /2
    query = f'SELECT count(*), sum(v), sum(ST_X(geometry) - {X0}) FROM "{schema}".pts'
    assert _sql(pg_dsn, query) == [(5000, 24_995_000, 12_497_500.0)]


def test_empty_layers(pg_dsn, schema):
    empty = gpd.GeoDataFrame(
        {"a": pd.Series([], dtype="int64")}, geometry=gpd.GeoSeries([], crs=CRS)
    )
    no_columns = pd.DataFrame(index=range(3))
    db.write_postgis({"empty": empty, "no_columns": no_columns}, pg_dsn, schema=schema)
    back = db.read_postgis_layers(pg_dsn, schema=schema)
    assert_geodataframe_equal(back["empty"], empty)
    assert back["empty"].crs == CRS
    assert back["no_columns"].shape == (3, 0)
    assert _geometry_types(pg_dsn, schema) == [("empty", "geometry(Geometry,4549)")]


def test_mixed_polygons_are_written_as_multipolygons(pg_dsn, schema):
    square = box(X0, Y0, X0 + 10, Y0 + 10)
    two = MultiPolygon([box(X0 + 20, Y0, X0 + 25, Y0 + 4), box(X0 + 30, Y0, X0 + 33, Y0 + 2)])
    gdf = gpd.GeoDataFrame({"parcel_id": ["a", "b"]}, geometry=[square, two], crs=CRS)
    db.write_postgis({"parcels": gdf}, pg_dsn, schema=schema)
    assert _geometry_types(pg_dsn, schema) == [("parcels", "geometry(MultiPolygon,4549)")]
    back = db.read_postgis_layer(pg_dsn, "parcels", schema=schema)
    assert list(back.geom_type) == ["MultiPolygon", "MultiPolygon"]
    # 10*10 = 100; 5*4 + 3*2 = 26
    assert back.area.tolist() == [100.0, 26.0]
    assert back.geometry.iloc[0].equals(MultiPolygon([square]))


def test_every_geometry_table_has_a_gist_index(pg_dsn, schema):
    db.write_postgis(_layers(), pg_dsn, schema=schema)
    rows = _sql(pg_dsn, "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = %s",
                [schema])  # fmt: skip
    gist = sorted(t for t, d in rows if "USING gist (geometry)" in d)
    assert gist == ["enterprises", "parcels"]
    pkeys = sorted(t for t, d in rows if "_pkey" in d and "(fid)" in d)
    assert pkeys == ["enterprises", "matches", "parcels", "rejects"]
    assert _geometry_types(pg_dsn, schema) == [
        ("enterprises", "geometry(Point,4549)"),
        ("parcels", "geometry(Polygon,4549)"),
    ]


# --------------------------------------------------------------------------- transactions


def test_existing_schema_needs_overwrite(pg_dsn, schema):
    first = _layers()
    db.write_postgis(first, pg_dsn, schema=schema)
    second = {"parcels": first["parcels"].iloc[:1], "summary": pd.DataFrame({"n": [1]})}
    with pytest.raises(OutputExistsError, match=f"schema {schema} exists.*overwrite"):
        db.write_postgis(second, pg_dsn, schema=schema)
    back = db.read_postgis_layers(pg_dsn, schema=schema)
    assert list(back) == list(first)
    assert_geodataframe_equal(back["parcels"], _expected(first)["parcels"])
    db.write_postgis(second, pg_dsn, schema=schema, overwrite=True)
    back = db.read_postgis_layers(pg_dsn, schema=schema)
    assert list(back) == ["parcels", "summary"]  # the old run's other tables are gone
    assert back["parcels"]["parcel_id"].tolist() == ["330481001001GB00001"]
    assert back["summary"]["n"].tolist() == [1]
    assert _schemas(pg_dsn, schema) == [schema]


def _failing_layers() -> dict[str, pd.DataFrame]:
    return {"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"x": [2]}),
            "c": pd.DataFrame({"x": [3]}), "d": pd.DataFrame({"x": [4]})}  # fmt: skip


@pytest.mark.parametrize("how", ["psycopg_error", "other_exception", "nul_in_text"])
def test_failure_on_third_layer_leaves_previous_run(pg_dsn, schema, monkeypatch, how):
    import psycopg

    first = _layers()
    db.write_postgis(first, pg_dsn, schema=schema)
    layers = _failing_layers()
    if how == "nul_in_text":  # PostgreSQL text cannot hold NUL: fails inside COPY
        layers["c"] = pd.DataFrame({"x": ["ok", "bad\x00byte"]})
        expect, match = db.DatabaseError, "failed at layer 'c'.*nothing was changed"
    else:
        real = db._write_table
        calls = []

        def third_fails(conn, schema_, layer, postgis):
            calls.append(layer.name)
            if len(calls) == 3:
                if how == "psycopg_error":
                    raise psycopg.OperationalError("injected failure")
                raise RuntimeError("injected failure")
            real(conn, schema_, layer, postgis)

        monkeypatch.setattr(db, "_write_table", third_fails)
        expect, match = (RuntimeError, "injected failure")
        if how == "psycopg_error":
            expect, match = db.DatabaseError, "failed at layer 'c': injected failure"
    with pytest.raises(expect, match=match):
        db.write_postgis(layers, pg_dsn, schema=schema, overwrite=True)
    back = db.read_postgis_layers(pg_dsn, schema=schema)
    expected = _expected(first)
    assert list(back) == list(first)
    assert_geodataframe_equal(back["parcels"], expected["parcels"])
    assert_frame_equal(back["matches"], expected["matches"])
    assert _schemas(pg_dsn, schema) == [schema]  # no half-written "__new" schema left


def test_failed_first_write_leaves_no_schema(pg_dsn, schema):
    layers = _failing_layers()
    layers["c"] = pd.DataFrame({"x": ["bad\x00byte"]})
    with pytest.raises(db.DatabaseError):
        db.write_postgis(layers, pg_dsn, schema=schema)
    assert _schemas(pg_dsn, schema) == []


def test_outside_view_blocks_replacement(pg_dsn, schema):
    db.write_postgis(_layers(), pg_dsn, schema=schema)
    view = f"v_{schema}"
    _sql(pg_dsn, f'CREATE VIEW public."{view}" AS SELECT parcel_id FROM "{schema}".parcels')
    try:
        with pytest.raises(db.DatabaseError, match=f"views outside.*public.{view}"):
            db.write_postgis({"x": pd.DataFrame({"a": [1]})}, pg_dsn, schema=schema, overwrite=True)
        assert list(db.read_postgis_layers(pg_dsn, schema=schema)) == list(_layers())
        assert _sql(pg_dsn, f'SELECT count(*) FROM public."{view}"') == [(3,)]
    finally:
        _sql(pg_dsn, f'DROP VIEW IF EXISTS public."{view}"')


# --------------------------------------------------------------------------- names, credentials


def test_hostile_names_are_quoted_identifiers(pg_dsn, schema):
    from psycopg import sql

    sentinel = f"keep_{schema}"
    _sql(pg_dsn, f'CREATE TABLE public."{sentinel}" (a int)')
    hostile = f'x"; DROP TABLE public.{sentinel}; --'
    column = "a\"b'); DROP TABLE public." + sentinel + "; --"
    bad_schema = f'{schema}"; DROP TABLE public.{sentinel}; --'
    try:
        db.write_postgis({hostile: pd.DataFrame({column: ["值"]})}, pg_dsn, schema=bad_schema)
        tables = _sql(pg_dsn, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
                              "ON n.oid = c.relnamespace WHERE n.nspname LIKE %s "
                              "AND c.relkind = 'r'", [schema + "%"])  # fmt: skip
        assert tables == [(bad_schema, hostile)]
        assert _sql(pg_dsn, "SELECT to_regclass(%s) IS NOT NULL", [f'public."{sentinel}"']) == [
            (True,)
        ]
        back = db.read_postgis_layers(pg_dsn, schema=bad_schema)
        assert list(back) == [hostile]
        assert_frame_equal(back[hostile], pd.DataFrame({column: ["值"]}))
    finally:
        _sql(pg_dsn, f'DROP TABLE IF EXISTS public."{sentinel}"')
        _sql(pg_dsn, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(bad_schema)))


def _with_password(dsn: str, password: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    return f"postgresql://{p['user']}:{password}@{p['host']}:{p['port']}/{p['dbname']}"


def test_password_never_logged(pg_dsn, schema, caplog):
    secret = "TopSecret-7f3a"
    caplog.set_level(logging.DEBUG)
    dsn = _with_password(pg_dsn, secret)  # trust auth on the test cluster: password unused
    db.write_postgis(_layers(), dsn, schema=schema)
    db.read_postgis_layers(dsn, schema=schema)
    assert "wrote 4 layers" in caplog.text
    assert ":***@" in caplog.text  # the warning about a password in the DSN, masked
    bad = [
        f"postgresql://mujun:{secret}@127.0.0.1:1/x",  # nothing listens on port 1
        f"postgresql://mujun:{secret}%ZZ@127.0.0.1:1/x",  # libpq quotes this bad token
        f"host=127.0.0.1 port=1 user=u password={secret}",
    ]
    for b in bad:
        with pytest.raises(db.DatabaseError, match="cannot connect") as err:
            db.read_postgis_layers(b, schema=schema)
        assert secret not in str(err.value)
        assert err.value.__suppress_context__  # the raw driver error is not chained in
    assert secret not in caplog.text


def _pw_role_dsn(pg_dsn: str) -> str:
    if not _sql(pg_dsn, "SELECT 1 FROM pg_roles WHERE rolname = %s", [PW_ROLE]):
        pytest.skip(f"role {PW_ROLE} exists only on the cluster of scripts/start_postgis.sh")
    return pg_dsn.replace("://mujun@", f"://{PW_ROLE}@", 1)


def test_password_from_pgpassword(pg_dsn, schema, monkeypatch):
    dsn = _pw_role_dsn(pg_dsn)
    monkeypatch.delenv("PGPASSFILE", raising=False)
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    with pytest.raises(db.DatabaseError, match="password authentication failed") as err:
        db.write_postgis({"t": pd.DataFrame({"a": [1]})}, dsn, schema=schema)
    assert "not-the-password" not in str(err.value)
    monkeypatch.setenv("PGPASSWORD", PW)
    db.write_postgis({"t": pd.DataFrame({"a": [1]})}, dsn, schema=schema)
    assert _sql(pg_dsn, f'SELECT a FROM "{schema}".t') == [(1,)]
    assert _sql(pg_dsn, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s",
                [schema]) == [(PW_ROLE,)]  # fmt: skip


def test_password_from_pgpass_file(pg_dsn, schema, monkeypatch, tmp_path):
    dsn = _pw_role_dsn(pg_dsn)
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{p['host']}:{p['port']}:{p['dbname']}:{PW_ROLE}:{PW}\n")
    pgpass.chmod(0o600)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    db.write_postgis({"t": pd.DataFrame({"a": [2]})}, dsn, schema=schema)
    assert db.read_postgis_layer(dsn, "t", schema=schema)["a"].tolist() == [2]


# --------------------------------------------------------------------------- reading other tables


def test_read_table_loaded_by_other_tools(pg_dsn, schema, monkeypatch):
    # as ogr2ogr loads a layer: ogc_fid serial key, wkb_geometry typed column; plus an
    # untyped geometry column whose SRID is only in the data
    _sql(pg_dsn, f'CREATE SCHEMA "{schema}"')
    _sql(pg_dsn, f'CREATE TABLE "{schema}".zd (ogc_fid serial PRIMARY KEY, zddm text, '
                 f"zdmj numeric, wkb_geometry geometry(Polygon, 4549))")  # fmt: skip
    _sql(
        pg_dsn,
        f'INSERT INTO "{schema}".zd (ogc_fid, zddm, zdmj, wkb_geometry) VALUES '
        f"(2, 'B', 50.5, ST_GeomFromText('POLYGON((0 0, 5 0, 5 10, 0 10, 0 0))', 4549)), "
        f"(1, 'A', 100, ST_GeomFromText('POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))', 4549))",
    )
    back = db.read_postgis_layer(pg_dsn, "zd", schema=schema)
    assert back.geometry.name == "wkb_geometry"
    assert back.crs == CRS
    assert back.columns.tolist() == ["zddm", "zdmj", "wkb_geometry"]  # ogc_fid hidden
    assert back["zddm"].tolist() == ["A", "B"]  # ogc_fid order
    assert back["zdmj"].tolist() == [100.0, 50.5]
    assert back.area.tolist() == [100.0, 50.0]  # 10*10, 5*10

    _sql(pg_dsn, f'CREATE TABLE "{schema}".pts (id int, geom geometry)')
    _sql(pg_dsn, f'INSERT INTO "{schema}".pts VALUES (1, ST_SetSRID(ST_MakePoint(1, 2), 4549))')
    # schema=None: found through the search_path, here set with PGOPTIONS as a user would
    monkeypatch.setenv("PGOPTIONS", f"-c search_path={schema},public")
    pts = db.read_postgis_layer(pg_dsn, "pts")
    assert pts.crs == CRS
    assert pts.geometry.iloc[0].equals(Point(1, 2))
    assert pts["id"].dtype == np.int32


def test_missing_table_and_schema(pg_dsn, schema):
    db.write_postgis({"parcels": pd.DataFrame({"a": [1]})}, pg_dsn, schema=schema)
    with pytest.raises(db.DatabaseError, match=r"table 'lowland' not found.*\['parcels'\]"):
        db.read_postgis_layer(pg_dsn, "lowland", schema=schema)
    with pytest.raises(db.DatabaseError, match=f"schema {schema}x does not exist"):
        db.read_postgis_layers(pg_dsn, schema=schema + "x")


# --------------------------------------------------------------------------- no server needed

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://gis:s3cret@db:5432/mujun", "postgresql://gis:***@db:5432/mujun"),
        ("postgres://gis:p@ss/w#rd@db/mujun", "postgres://gis:***@db/mujun"),
        ("postgresql://gis@db/mujun?sslmode=require&password=x", "postgresql://gis@db/mujun?sslmode=require&password=***"),
        ("postgresql://db/mujun", "postgresql://db/mujun"),
        ("host=db password='a b\\'c' user=gis", "host=db password=*** user=gis"),
        ("host=db PASSWORD = s3cret", "host=db PASSWORD = ***"),
        ("host=db user=gis", "host=db user=gis"),
    ],
)  # fmt: skip
def test_mask_dsn(dsn, masked):
    assert db.mask_dsn(dsn) == masked


def test_schema_for_year():
    assert db.schema_for_year(2022) == "mujun_2022"
    assert db.schema_for_year(np.int64(2023), prefix="嘉兴") == "嘉兴_2023"
    for bad in (22, True, "2022", 2022.0):
        with pytest.raises(ConfigError, match="four-digit year"):
            db.schema_for_year(bad)
    # 18 Chinese characters = 54 bytes, + "_2022" = 59 > 63 - len("__new") = 58
    with pytest.raises(ConfigError, match="59 bytes.*at most 58"):
        db.schema_for_year(2022, prefix="浙" * 18)
    assert db.schema_for_year(2022, prefix="浙" * 17) == "浙" * 17 + "_2022"  # 56 bytes


@pytest.mark.parametrize(
    ("layers", "error", "match"),
    [
        ({"x" * 64: pd.DataFrame({"a": [1]})}, SchemaError, "64 bytes.*at most 63"),
        ({"t": pd.DataFrame({"亩" * 22: [1]})}, SchemaError, "66 bytes"),
        ({"t": pd.DataFrame({"fid": [1]})}, SchemaError, "column `fid`"),
        ({"t": pd.DataFrame([[1, 2]], columns=["a", "a"])}, SchemaError, r"duplicate.*\['a'\]"),
        ({"t": gpd.GeoDataFrame(geometry=[Point(0, 0)])}, CRSError, "no CRS.*set_crs"),
        ({"t": gpd.GeoDataFrame(geometry=[Point(0, 0)], crs="+proj=tmerc +lon_0=120.5")},
         CRSError, "no EPSG code.*to_crs"),
        ({"t": gpd.GeoDataFrame(geometry=[Point(0, 0), Point(0, 0, 1)], crs=CRS)},
         SchemaError, "mixes 2D and 3D"),
        ({"t": [1, 2]}, SchemaError, "must be a DataFrame"),
    ],
)  # fmt: skip
def test_bad_layers_fail_before_connecting(layers, error, match):
    # the DSN points nowhere: these errors come before any connection attempt
    with pytest.raises(error, match=match):
        db.write_postgis(layers, UNREACHABLE, schema="s")


def test_bad_schema_name_fails_before_connecting():
    with pytest.raises(ConfigError, match="at most 58"):
        db.write_postgis({}, UNREACHABLE, schema="s" * 59)


def test_srid_unknown_to_postgis(pg_dsn, schema):
    srid = 9793  # RGF93 v2 / Lambert-93: newer than the EPSG list of PostGIS 3.3
    if _sql(pg_dsn, "SELECT 1 FROM spatial_ref_sys WHERE srid = %s", [srid]):
        pytest.skip(f"this PostGIS knows EPSG:{srid}")
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[Point(700_000, 6_600_000)], crs=f"EPSG:{srid}")
    with pytest.raises(CRSError, match=rf"SRID\(s\) \[{srid}\] are not in spatial_ref_sys"):
        db.write_postgis({"t": gdf}, pg_dsn, schema=schema)
    assert _schemas(pg_dsn, schema) == []


def test_database_without_postgis(pg_dsn, schema):
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"{schema}_plain"
    try:
        _sql(pg_dsn, f'CREATE DATABASE "{name}"')
    except psycopg.Error as err:
        pytest.skip(f"cannot create a database here: {err}")
    try:
        dsn = make_conninfo(**{**conninfo_to_dict(pg_dsn), "dbname": name})
        gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[Point(X0, Y0)], crs=CRS)
        with pytest.raises(
            db.DatabaseError, match="has no PostGIS; run `CREATE EXTENSION postgis`"
        ):
            db.write_postgis({"t": pd.DataFrame({"a": [1]}), "g": gdf}, dsn, schema=schema)
        assert _schemas(dsn, schema) == []
        # plain tables need no PostGIS
        db.write_postgis({"t": pd.DataFrame({"a": [1]})}, dsn, schema=schema)
        assert_frame_equal(db.read_postgis_layer(dsn, "t", schema=schema), pd.DataFrame({"a": [1]}))
    finally:
        _sql(pg_dsn, f'DROP DATABASE IF EXISTS "{name}"')


def test_foreign_working_schema_is_not_dropped(pg_dsn, schema):
    _sql(pg_dsn, f'CREATE SCHEMA "{schema}{db.NEW_SUFFIX}"')
    _sql(pg_dsn, f'CREATE TABLE "{schema}{db.NEW_SUFFIX}".mine (a int)')
    with pytest.raises(db.DatabaseError, match=rf"schema {schema}__new exists.*drop or rename it"):
        db.write_postgis({"t": pd.DataFrame({"a": [1]})}, pg_dsn, schema=schema)
    assert _sql(pg_dsn, f'SELECT count(*) FROM "{schema}{db.NEW_SUFFIX}".mine') == [(0,)]
    assert _schemas(pg_dsn, schema) == [schema + db.NEW_SUFFIX]


# --------------------------------------------------------------------------------------
# the whole pipeline against the database (sample county)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    from mujun_geo.datasets import sample_settings
    from mujun_geo.pipeline import run

    settings = sample_settings()
    settings.output.update(
        {"dir": tmp_path_factory.mktemp("gpkg_run"), "maps": False, "report": False}
    )
    return run(settings)


def _as_multi(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    """Polygons as one-part MultiPolygons (other geometries unchanged)."""
    g = np.asarray(geoms.array, dtype=object).copy()
    single = shapely.get_type_id(g) == 3
    g[single] = shapely.multipolygons(g[single][:, None])
    return gpd.GeoSeries(g, index=geoms.index, crs=geoms.crs)


def test_pipeline_run_to_postgis_equals_the_geopackage_run(pg_dsn, schema, sample_run, tmp_path):
    from mujun_geo.datasets import sample_settings
    from mujun_geo.pipeline import run

    settings = sample_settings()
    settings.output.update({"dir": tmp_path, "maps": False, "report": False})
    settings.db = pg_dsn
    settings.db_schema = schema
    run(settings)
    from_db = db.read_postgis_layers(pg_dsn, schema=schema)
    gpkg = sample_run.path
    for name in ("enterprises", "matches", "parcels", "lowland", "regions", "rejects"):
        a = pyogrio.read_dataframe(gpkg, layer=name)
        b = from_db[name]
        assert len(a) == len(b), name
        assert list(b.columns) == list(a.columns), name
        for col in a.columns:
            if col == "geometry":
                both_null = a.geometry.isna().to_numpy() & b.geometry.isna().to_numpy()
                # the GeoPackage's lowland is a view over parcels: their geometry type
                # (MultiPolygon when parcels mix both), where PostGIS has its own table
                x, y = _as_multi(a.geometry), _as_multi(b.geometry)
                same = x.geom_equals_exact(y, tolerance=1e-6).to_numpy()
                assert (both_null | same).all(), name
                continue
            x, y = a[col], b[col]
            if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
                assert np.allclose(x.astype(float), y.astype(float), equal_nan=True, rtol=1e-12), (
                    name,
                    col,
                )
            else:
                assert _plain(x) == _plain(y), (name, col)
    # one schema per evaluation year, with a spatial index on every geometry table
    idx = _sql(
        pg_dsn,
        "SELECT tablename FROM pg_indexes WHERE schemaname = %s AND indexdef ILIKE '%%gist%%'",
        [schema],
    )
    assert {"enterprises", "parcels", "lowland", "regions"} <= {r[0] for r in idx}


def test_far_on_the_sample_agrees_with_postgis_intersections(pg_dsn, schema):
    """容积率 from ST_Intersection areas in PostGIS, independent of the shapely code path.

    Overlapping footprints count once at the highest counted floor count: in SQL that is
    the union, per storey level k, of the footprints with at least k counted storeys,
    clipped to the parcel — summed over k.
    """
    from psycopg import sql

    from mujun_geo.datasets import get_path
    from mujun_geo.io import read_buildings, read_parcels
    from mujun_geo.land import building_floors, building_metrics

    parcels = read_parcels(get_path("parcels"))
    buildings = read_buildings(get_path("buildings"), target_crs=parcels.crs)
    ours = building_metrics(parcels, buildings)
    floors = building_floors(buildings)
    counted = floors["counted_floors"]
    assert np.allclose(counted, counted.round())  # whole storeys: the level trick below is exact
    b = gpd.GeoDataFrame(
        {"bid": np.arange(len(buildings)), "cf": counted.round().astype(int)},
        geometry=buildings.geometry.values,
        crs=buildings.crs,
    )
    p = gpd.GeoDataFrame(
        {"pid": np.arange(len(parcels))}, geometry=parcels.geometry.values, crs=parcels.crs
    )
    db.write_postgis({"b": b, "p": p}, pg_dsn, schema=schema)
    q = sql.SQL("""
        WITH lv AS (SELECT b.geometry, g.k FROM {s}.b b, generate_series(1, b.cf) AS g(k)),
        per AS (
          SELECT p.pid, lv.k, ST_Area(ST_Intersection(ST_Union(lv.geometry), p.geometry)) AS a
          FROM {s}.p p JOIN lv ON ST_Intersects(p.geometry, lv.geometry)
          GROUP BY p.pid, lv.k, p.geometry)
        SELECT per.pid, sum(per.a) / ST_Area(p.geometry) FROM per JOIN {s}.p p USING (pid)
        GROUP BY per.pid, p.geometry""").format(s=sql.Identifier(schema))
    rows = _sql(pg_dsn, q)
    far_pg = (
        pd.Series({pid: v for pid, v in rows}, dtype=float).reindex(range(len(parcels))).fillna(0.0)
    )
    mine = ours["far"].fillna(0.0).to_numpy()
    assert (mine > 0).sum() > 1000
    np.testing.assert_allclose(mine, far_pg.to_numpy(), rtol=1e-6, atol=1e-9)


def _plain(s: pd.Series) -> list:
    """Values as Python objects for comparison: missing → None, booleans → "0"/"1"."""
    return (
        s.astype(object)
        .where(s.notna(), None)
        .map(lambda v: str(int(v)) if isinstance(v, (bool, np.bool_)) else v)
        .tolist()
    )
