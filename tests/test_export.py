import sqlite3

import pandas as pd
import pytest

import geopandas as gpd
import pyogrio
from shapely import Point, box

from mujun_geo.export import OutputExistsError, write_geopackage
from mujun_geo.gpkg_styles import add_styles, qml_graduated, quantile_breaks


@pytest.fixture
def layers():
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": ["P1", "P2", "P3"],
            "tax_per_mu": [1.5, 20.0, 35.25],
            "grade": ["A", "", "D"],
            "lowland": [0, 1, 0],
            "mixed": [1, "x", None],
        },
        geometry=[
            box(0, 0, 10, 10),
            box(20, 0, 30, 10).union(box(40, 0, 45, 5)),
            box(50, 0, 60, 10),
        ],
        crs=4549,
    )
    firms = gpd.GeoDataFrame(
        {"credit_code": ["A1"], "grade": ["B"], "tax_per_mu": [3.0]},
        geometry=[Point(5, 5)],
        crs=4549,
    )
    rejects = pd.DataFrame({"source": ["e.xlsx"], "row": [3], "key": ["X"], "reason": ["重复代码"]})
    return {"parcels": parcels, "enterprises": firms, "rejects": rejects}


def test_round_trip_all_layers(tmp_path, layers):
    path = write_geopackage(layers, tmp_path / "out.gpkg")
    names = dict(pyogrio.list_layers(path))
    assert names == {"parcels": "MultiPolygon", "enterprises": "Point", "rejects": None}
    back = gpd.read_file(path, layer="parcels")
    assert back.crs.to_epsg() == 4549
    assert back["mixed"].tolist()[:2] == ["1", "x"] and pd.isna(
        back["mixed"].iloc[2]
    )  # mixed → text
    assert back.geometry.area.tolist() == pytest.approx([100.0, 125.0, 100.0])
    assert pyogrio.read_dataframe(path, layer="rejects")["reason"].tolist() == ["重复代码"]


def test_refuses_to_overwrite_and_failed_write_keeps_old_file(tmp_path, layers):
    path = write_geopackage(layers, tmp_path / "out.gpkg")
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_geopackage(layers, path)

    def boom(_tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_geopackage(layers, path, overwrite=True, postprocess=boom)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*partial*"))  # no temp file left behind


def test_styles_and_chinese_aliases(tmp_path, layers):
    path = write_geopackage(
        layers, tmp_path / "s.gpkg", postprocess=lambda t: add_styles(t, layers)
    )
    con = sqlite3.connect(path)
    styles = con.execute(
        "SELECT f_table_name, styleName, useAsDefault, f_geometry_column, styleQML "
        "FROM layer_styles ORDER BY id"
    ).fetchall()
    by_layer = {(r[0], r[1]): r for r in styles}
    assert by_layer[("parcels", "评价类别")][2] == 1
    assert by_layer[("parcels", "亩均税收")][2] == 0
    qml = by_layer[("parcels", "评价类别")][4]
    assert 'name="color" value="215,48,39,' in qml  # D in red #d73027
    assert '<alias field="tax_per_mu" index="1" name="亩均税收(万元/亩)"/>' in qml
    geom_col = con.execute(
        "SELECT column_name FROM gpkg_geometry_columns WHERE table_name='parcels'"
    ).fetchone()[0]
    assert by_layer[("parcels", "评价类别")][3] == geom_col
    aliases = dict(
        con.execute("SELECT column_name, name FROM gpkg_data_columns WHERE table_name='parcels'")
    )
    assert aliases["tax_per_mu"] == "亩均税收(万元/亩)" and aliases["grade"] == "评价类别"
    assert (
        con.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name='layer_styles'"
        ).fetchone()[0]
        == "attributes"
    )
    ext = con.execute(
        "SELECT table_name, column_name FROM gpkg_extensions WHERE extension_name='gpkg_schema' "
        "ORDER BY table_name"
    ).fetchall()
    assert ext == [("gpkg_data_column_constraints", None), ("gpkg_data_columns", None)]
    con.close()
    # GDAL still reads every layer after the additions
    assert {n for n, _ in pyogrio.list_layers(path)} >= {
        "parcels",
        "enterprises",
        "rejects",
        "layer_styles",
    }
    assert len(gpd.read_file(path, layer="parcels")) == 3


def test_quantile_breaks_merge_duplicate_edges():
    # 8 values, six equal: the 0, 20, 40 and 60% quantiles are all 0.38 and merge into one edge;
    # 80% = 0.38 + 0.6 × (1.0 − 0.38) = 0.752 (linear interpolation between the 6th and 7th value)
    edges = quantile_breaks(pd.Series([0.38] * 6 + [1.0, 2.0]), k=5)
    assert edges == pytest.approx([0.38, 0.752, 2.0])
    qml = qml_graduated("tax_per_mu", edges, "fill")
    assert "0.38 – 0.38" not in qml


# ---------------------------------------------------------------------------------------
# Arrow writes of attribute tables, the vacant table, layer kinds
# ---------------------------------------------------------------------------------------
def test_attribute_tables_by_arrow_keep_field_types(tmp_path):
    table = pd.DataFrame(
        {
            "flag": pd.array([True, None, False], dtype="boolean"),
            "n": pd.array([1, None, 3], dtype="Int64"),
            "name": pd.Series(["甲", None, "丙"], dtype="str"),
            "mixed": [1, "x", None],
            "share": [0.5, None, 1.0],
            "ok": [True, False, True],
        }
    )
    geo = gpd.GeoDataFrame(
        {"flag": pd.array([True, None, False], dtype="boolean")},
        geometry=[Point(0, 0), Point(1, 1), Point(2, 2)],
        crs=4549,
    )
    path = write_geopackage({"t": table, "g": geo, "none": pd.DataFrame()}, tmp_path / "t.gpkg")
    info = pyogrio.read_info(path, layer="t")
    types = dict(zip(info["fields"], zip(info["ogr_types"], info["ogr_subtypes"])))
    # the field types GDAL's row-by-row writer gave these columns: a nullable boolean in an
    # attribute table is text there, a boolean in a layer with geometry
    assert types == {
        "flag": ("OFTString", "OFSTNone"),
        "n": ("OFTInteger64", "OFSTNone"),
        "name": ("OFTString", "OFSTNone"),
        "mixed": ("OFTString", "OFSTNone"),
        "share": ("OFTReal", "OFSTNone"),
        "ok": ("OFTInteger", "OFSTBoolean"),
    }
    g = pyogrio.read_info(path, layer="g")
    assert (g["ogr_types"][0], g["ogr_subtypes"][0]) == ("OFTInteger", "OFSTBoolean")
    back = pyogrio.read_dataframe(path, layer="t")
    assert back["flag"].tolist()[::2] == ["True", "False"] and pd.isna(back["flag"][1])
    assert back["name"].tolist()[::2] == ["甲", "丙"] and pd.isna(back["name"][1])
    assert back["mixed"].tolist()[:2] == ["1", "x"] and back["n"].tolist()[::2] == [1, 3]
    assert pyogrio.read_dataframe(path, layer="none").columns.tolist() == ["empty"]
    con = sqlite3.connect(path)
    kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
    con.close()
    assert kinds == {"t": "attributes", "g": "features", "none": "attributes"}


def test_prepare_for_gpkg_keeps_text_columns_for_arrow():
    from mujun_geo.export import prepare_for_gpkg

    df = pd.DataFrame(
        {
            "s": pd.array(["a", None], dtype="str"),
            "b": pd.array([True, None], dtype="boolean"),
        },
        index=[4, 9],
    )
    df["o"] = pd.Series(["a", None], index=df.index, dtype=object)  # text in an object column
    assert df["o"].dtype == object
    fiona_ready = prepare_for_gpkg(df)
    assert fiona_ready["s"].dtype == object and fiona_ready["s"].tolist() == ["a", None]
    assert fiona_ready["b"].tolist() == [True, None] and fiona_ready.index.tolist() == [0, 1]
    arrow_ready = prepare_for_gpkg(df, arrow=True)
    assert str(arrow_ready["s"].dtype) == "str"
    assert arrow_ready["o"].tolist() == ["a", None]
    assert arrow_ready["b"].tolist() == ["True", None]  # text in an attribute table
    assert df.index.tolist() == [4, 9] and str(df["b"].dtype) == "boolean"  # input unchanged


def test_vacant_is_an_attribute_table_of_parcels():
    from mujun_geo.stages import VACANT_COLUMNS, _vacant

    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": ["P1", "P2", "P3"],
            "land_use": ["0601"] * 3,
            "area_m2": [100.0, 200.0, 300.0],
            "tax_per_mu": [None, 3.0, None],
            "vacant": [True, False, None],
        },
        geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)],
        crs=4549,
    )
    vacant = _vacant(parcels)
    assert type(vacant) is pd.DataFrame
    assert vacant.columns.tolist() == ["parcel_id", "land_use", "area_m2"]
    assert set(vacant.columns) <= set(VACANT_COLUMNS)
    assert vacant["parcel_id"].tolist() == ["P1"] and vacant["area_m2"].tolist() == [100.0]


def test_layer_kinds_from_geometry_types():
    from mujun_geo.export import _has_mixed_polygons
    from mujun_geo.gpkg_styles import _kind

    def layer(geoms):
        return gpd.GeoDataFrame(geometry=geoms, crs=4549)

    poly, multi = box(0, 0, 1, 1), box(0, 0, 1, 1).union(box(2, 2, 3, 3))
    line = box(0, 0, 1, 1).exterior
    assert _kind(layer([poly, None, Point(0, 0)])) == "fill"  # any polygon
    assert _kind(layer([Point(0, 0), line])) == "marker"
    assert _kind(layer([line])) == "line"
    assert _kind(layer([None])) is None and _kind(pd.DataFrame({"a": [1]})) is None
    assert _has_mixed_polygons(layer([poly, multi, None]))
    assert not _has_mixed_polygons(layer([poly, poly])) and not _has_mixed_polygons(
        layer([poly, multi, Point(0, 0)])
    )


# ---------------------------------------------------------------------------------------
# The Arrow tables handed to GDAL, the temporary file's SQLite settings
# ---------------------------------------------------------------------------------------
def _pyogrio_arrow_call(monkeypatch, data, **kwargs):
    """The table and layer settings pyogrio.write_dataframe(use_arrow=True) hands to GDAL."""
    import pyogrio.raw

    from mujun_geo.export import _GPKG_OPTIONS

    seen = {}

    def capture(table, path, **kw):
        seen.update(kw, table=table)

    with monkeypatch.context() as patched:
        patched.setattr(pyogrio.raw, "write_arrow", capture)
        pyogrio.write_dataframe(
            data, "unused.gpkg", layer="x", driver="GPKG", use_arrow=True, **kwargs, **_GPKG_OPTIONS
        )
    return seen


@pytest.mark.parametrize("batch_rows", [100_000, 1])
def test_arrow_layer_is_the_table_pyogrio_builds(monkeypatch, layers, batch_rows):
    from mujun_geo import export
    from mujun_geo.export import _arrow_layer, _has_mixed_polygons, prepare_for_gpkg

    monkeypatch.setattr(export, "_BATCH_ROWS", batch_rows)  # 1: a batch per row

    regions = gpd.GeoDataFrame(
        {"name": pd.Series(["甲", None], dtype="str"), "n": pd.array([1, None], dtype="Int64")},
        geometry=[box(0, 0, 1, 1).union(box(2, 2, 3, 3)), None],
        crs=4549,
    )
    table = pd.DataFrame(
        {
            "flag": pd.array([True, None], dtype="boolean"),
            "empty": pd.Series([None, None], dtype=object),
            "ok": [True, False],
            "when": pd.to_datetime(["2024-01-01", None]),
        }
    )
    frames = {**layers, "regions": regions, "table": table, "no_rows": layers["rejects"].iloc[:0]}
    for name, frame in frames.items():
        data = prepare_for_gpkg(frame, arrow=True)
        kwargs = {}
        if isinstance(data, gpd.GeoDataFrame):
            kwargs["promote_to_multi"] = _has_mixed_polygons(data)
        expected = _pyogrio_arrow_call(monkeypatch, data, **kwargs)
        ours = _arrow_layer(data)
        assert ours is not None, name
        table = ours.reader().read_all()
        assert len(list(ours.batches())) == -(-len(frame) // batch_rows), name
        assert table.equals(expected["table"], check_metadata=True), name
        assert table.schema.equals(expected["table"].schema, check_metadata=True), name
        assert (ours.geometry_name, ours.geometry_type, ours.crs) == (
            expected["geometry_name"],
            expected["geometry_type"],
            expected["crs"],
        ), name
    # the mixed layer was promoted on a copy: the caller's polygons are still polygons
    assert layers["parcels"].geometry.geom_type.tolist() == ["Polygon", "MultiPolygon", "Polygon"]


def test_unusual_layers_are_left_to_pyogrio(tmp_path):
    from shapely import LineString

    from mujun_geo.export import _arrow_layer

    point_z = gpd.GeoDataFrame({"a": [1]}, geometry=[Point(0, 0, 5)], crs=4549)
    mixed = gpd.GeoDataFrame({"a": [1, 2]}, geometry=[Point(0, 0), box(0, 0, 1, 1)], crs=4549)
    lines = gpd.GeoDataFrame({"a": [1]}, geometry=[LineString([(0, 0), (1, 1)])], crs=4549)
    no_rows = gpd.GeoDataFrame({"a": pd.Series(dtype="int64")}, geometry=[], crs=4549)
    for frame in (point_z, mixed, no_rows):
        assert _arrow_layer(frame) is None
    assert _arrow_layer(lines).geometry_type == "LineString"
    path = write_geopackage(
        {"z": point_z, "mixed": mixed, "lines": lines, "no_rows": no_rows}, tmp_path / "u.gpkg"
    )
    assert dict(pyogrio.list_layers(path)) == {
        "z": "Point Z",
        "mixed": "Unknown",
        "lines": "LineString",
        "no_rows": "Unknown",
    }
    assert gpd.read_file(path, layer="z").geometry.z.tolist() == [5.0]


def test_sqlite_settings_only_while_writing_and_file_flushed_before_rename(
    tmp_path, monkeypatch, layers
):
    from mujun_geo import export

    seen = []
    real_write_arrow = export.write_arrow

    def write_arrow(*args, **kwargs):
        seen.append(
            (
                pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS"),
                pyogrio.get_gdal_config_option("OGR_SQLITE_JOURNAL"),
            )
        )
        return real_write_arrow(*args, **kwargs)

    flushed = []
    monkeypatch.setattr(export, "write_arrow", write_arrow)
    monkeypatch.setattr(export, "_fsync", lambda p: flushed.append((p, p.exists())))
    pyogrio.set_gdal_config_options({"OGR_SQLITE_JOURNAL": "DELETE"})
    try:
        path = write_geopackage(layers, tmp_path / "c.gpkg")
        assert seen and set(seen) == {(False, "MEMORY")}  # OFF reads back as False
        assert flushed == [(export.atomic_path(path), True)]  # the temp file, before the rename
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS") is None
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_JOURNAL") == "DELETE"

        def boom(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(export, "write_arrow", boom)
        with pytest.raises(RuntimeError, match="disk full"):
            write_geopackage(layers, path, overwrite=True)
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS") is None
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_JOURNAL") == "DELETE"
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_JOURNAL": None})
    # a file written with these settings is a normal GeoPackage for SQLite and GDAL
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    con.close()
    assert len(gpd.read_file(path, layer="parcels")) == 3


def test_subset_layers_are_views_that_read_back_as_tables(tmp_path, layers):
    from mujun_geo.export import SubsetView

    parcels = layers["parcels"].drop(columns="mixed")
    firms = layers["enterprises"]
    lowland = parcels.loc[parcels["lowland"] == 1, ["parcel_id", "grade", "geometry"]]
    vacant = pd.DataFrame(parcels.loc[parcels["grade"] == "", ["parcel_id", "tax_per_mu"]])
    # not the rows the filter selects (a value changed): written as a table
    graded = parcels.loc[parcels["grade"] == "A", ["parcel_id", "tax_per_mu"]].copy()
    graded.loc[:, "tax_per_mu"] = 99.0
    # base written later than the subset: a table too
    b_firms = firms.loc[firms["grade"] == "B"]
    out = {
        "b_firms": b_firms,
        "parcels": parcels,
        "enterprises": firms,
        "lowland": lowland,
        "vacant": vacant,
        "graded": graded,
    }
    subsets = {
        "lowland": SubsetView("parcels", "lowland", 1),
        "vacant": SubsetView("parcels", "grade", ""),
        "graded": SubsetView("parcels", "grade", "A"),
        "b_firms": SubsetView("enterprises", "grade", "B"),
    }
    path = write_geopackage(out, tmp_path / "v.gpkg", subsets=subsets)
    con = sqlite3.connect(path)
    views = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    kinds = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
    extent = con.execute(
        "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 'lowland'"
    ).fetchone()
    con.close()
    assert views == {"lowland", "vacant"}
    assert kinds["lowland"] == "features" and kinds["vacant"] == "attributes"
    assert extent == (20.0, 0.0, 45.0, 10.0)  # P2's two boxes
    # in layer order, as GDAL lists them
    assert [n for n, _ in pyogrio.list_layers(path)] == list(out)
    back = pyogrio.read_dataframe(path, layer="lowland")
    assert back["parcel_id"].tolist() == ["P2"] and back["grade"].tolist() == [""]
    assert back.geometry.area.tolist() == [125.0]
    info = pyogrio.read_info(path, layer="lowland")
    assert info["capabilities"]["fast_spatial_filter"]  # the parcels' R-tree
    assert len(pyogrio.read_dataframe(path, layer="lowland", bbox=(0, 0, 15, 10))) == 0
    assert len(pyogrio.read_dataframe(path, layer="lowland", bbox=(41, 1, 44, 4))) == 1
    v = pyogrio.read_dataframe(path, layer="vacant")
    assert v["parcel_id"].tolist() == ["P2"] and v["tax_per_mu"].tolist() == [20.0]
    assert pyogrio.read_dataframe(path, layer="graded")["tax_per_mu"].tolist() == [99.0]
    assert pyogrio.read_dataframe(path, layer="b_firms")["credit_code"].tolist() == ["A1"]
    # the same frames written as tables read back the same (parcels are MultiPolygons here)
    plain = write_geopackage(out, tmp_path / "t.gpkg")
    for name in ("lowland", "vacant"):
        pd.testing.assert_frame_equal(
            pyogrio.read_dataframe(path, layer=name),
            pyogrio.read_dataframe(plain, layer=name),
            check_exact=True,
        )


def test_subsets_that_sql_would_select_differently_are_tables(tmp_path, layers):
    from mujun_geo.export import SubsetView

    parcels = layers["parcels"].drop(columns="mixed")
    parcels["code"] = ["1", "x", None]  # text: SQLite would compare '1' = 1 as true
    parcels["flag"] = pd.array([True, None, True], dtype="boolean")
    out = {
        "parcels": parcels,
        # no row selected: GDAL would not take OGC_FID as the id of an empty view
        "none": parcels.loc[parcels["lowland"] == 5, ["parcel_id", "geometry"]],
        # same rows and coordinates in another CRS
        "other_crs": parcels.loc[parcels["lowland"] == 1, ["parcel_id", "geometry"]].set_crs(
            4326, allow_override=True
        ),
        # an int value on a text column
        "by_code": parcels.loc[[], ["parcel_id"]],
        # nullable booleans (written as text in attribute tables, not compared as 1)
        "flagged": pd.DataFrame(parcels.loc[parcels["flag"].fillna(False), ["parcel_id"]]),
        "ok": parcels.loc[parcels["lowland"] == 1, ["parcel_id", "geometry"]],
    }
    subsets = {
        "none": SubsetView("parcels", "lowland", 5),
        "other_crs": SubsetView("parcels", "lowland", 1),
        "by_code": SubsetView("parcels", "code", 1),
        "flagged": SubsetView("parcels", "flag", True),
        "ok": SubsetView("parcels", "lowland", 1),
    }
    path = write_geopackage(out, tmp_path / "v.gpkg", subsets=subsets)
    con = sqlite3.connect(path)
    views = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    con.close()
    assert views == {"ok"}
    none = pyogrio.read_dataframe(path, layer="none")
    assert len(none) == 0 and "OGC_FID" not in none.columns
    assert pyogrio.read_dataframe(path, layer="other_crs").crs.to_epsg() == 4326
    assert len(pyogrio.read_dataframe(path, layer="by_code")) == 0
    assert pyogrio.read_dataframe(path, layer="flagged")["parcel_id"].tolist() == ["P1", "P3"]
    assert pyogrio.read_info(path, layer="ok")["fid_column"] == "OGC_FID"
