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
        "SELECT count(*) FROM gpkg_extensions WHERE extension_name='gpkg_schema'"
    ).fetchone()[0]
    assert ext >= 4
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
