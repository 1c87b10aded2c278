"""Floor area, FAR, coverage and ancillary share (mujun_geo.buildings via mujun_geo.land)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import geopandas as gpd
import shapely
import shapely.affinity
from shapely.geometry import box

from mujun_geo import land
from mujun_geo._errors import CRSError, DataWarning
from mujun_geo.units import M2_PER_MU

CRS = "EPSG:4549"  # CGCS2000 / 3-degree Gauss-Kruger CM 120E
X0, Y0 = 500_000.0, 3_300_000.0  # a spot in Zhejiang, so coordinates are realistic


def sq(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """Box in local metres shifted into the projected CRS."""
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def gdf(rows: list[dict], index: list | None = None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS, index=index)


@pytest.fixture
def parcels() -> gpd.GeoDataFrame:
    # four 100 m x 100 m parcels (10 000 m² each), with a non-default index
    return gdf(
        [
            {"parcel_id": "P1", "geometry": sq(0, 0, 100, 100)},
            {"parcel_id": "P2", "geometry": sq(100, 0, 200, 100)},
            {"parcel_id": "P3", "geometry": sq(0, 100, 100, 200)},
            {"parcel_id": "P4", "geometry": sq(100, 100, 200, 200)},
        ],
        index=[10, 20, 30, 40],
    )


@pytest.fixture
def buildings() -> gpd.GeoDataFrame:
    return gdf(
        [
            # straddles P1/P2: 40 x 50 = 2000 m², 1000 m² on each side, 2 floors
            {"building_id": "B1", "floors": 2, "height_m": 8.0, "geometry": sq(80, 10, 120, 60)},
            # P3: overlapping footprints. B2 3 floors 40x40; B3 1 floor 40x40 overlapping
            # B2 by 20x20; B4 5 floors 10x10 inside B2
            {"building_id": "B2", "floors": 3, "height_m": 12.0, "geometry": sq(10, 110, 50, 150)},
            {"building_id": "B3", "floors": 1, "height_m": 5.0, "geometry": sq(30, 130, 70, 170)},
            {"building_id": "B4", "floors": 5, "height_m": 18.0, "geometry": sq(15, 115, 25, 125)},
            # P4: the 8 m rule. B5 one 12 m storey; B6 3 floors of 10 m; B7 own storey 9 m
            {
                "building_id": "B5",
                "floors": 1,
                "height_m": 12.0,
                "geometry": sq(110, 110, 150, 150),
            },
            {
                "building_id": "B6",
                "floors": 3,
                "height_m": 30.0,
                "geometry": sq(160, 110, 190, 140),
            },
            {
                "building_id": "B7",
                "floors": 2,
                "height_m": 7.0,
                "storey_height_m": 9.0,
                "geometry": sq(160, 150, 190, 190),
            },
        ]
    )


# ---------------------------------------------------------------------------------------
# floors
# ---------------------------------------------------------------------------------------
def test_floors_from_height_rounds_to_nearest_storey_at_least_one():
    h = pd.Series([2.9, 10.4, 5.25, 1.0, np.nan, -3.0, 0.0], index=list("abcdefg"))
    got = land.floors_from_height(h, storey_height_m=3.5)
    # 2.9/3.5=0.83 -> 1 (momepy's 2.9//3 would give 0); 10.4/3.5=2.97 -> 3;
    # 5.25/3.5=1.5 -> 2 (halves up); 1.0 -> at least 1; missing/negative/zero -> NaN
    expected = pd.Series([1.0, 3.0, 2.0, 1.0, np.nan, np.nan, np.nan], index=h.index, name="floors")
    pd.testing.assert_series_equal(got, expected)


def test_floors_from_height_rejects_bad_storey_height():
    with pytest.raises(ValueError, match="storey_height_m"):
        land.floors_from_height([3.0], storey_height_m=0)


def test_building_floors_sources_and_tall_storeys():
    b = pd.DataFrame(
        {
            "floors": [1, np.nan, 3, 0, 2],
            "height_m": [12.0, 10.4, np.nan, 2.9, 16.2],
            "storey_height_m": [np.nan, np.nan, np.nan, np.nan, np.nan],
        },
        index=[5, 6, 7, 8, 9],
    )
    got = land.building_floors(b, storey_height_m=3.5)
    # row 5: floors 1, storey 12 m > 8 -> counted 2
    # row 6: 10.4/3.5 -> 3 floors, storey 3.47 m -> counted 3
    # row 7: floors 3, height unknown -> never doubled
    # row 8: floors 0 is invalid -> from height 2.9 -> 1 floor
    # row 9: 2 floors of 8.1 m -> counted 4
    assert got.index.tolist() == [5, 6, 7, 8, 9]
    assert got["floors"].tolist() == [1.0, 3.0, 3.0, 1.0, 2.0]
    assert got["floors_source"].tolist() == ["floors", "height_m", "floors", "height_m", "floors"]
    assert got["counted_floors"].tolist() == [2.0, 3.0, 3.0, 1.0, 4.0]
    assert got["storey_height_m"].iloc[1] == pytest.approx(10.4 / 3)
    assert np.isnan(got["storey_height_m"].iloc[2])


def test_building_floors_default_warns():
    b = pd.DataFrame({"floors": [np.nan, 2.0]}, index=["x", "y"])
    with pytest.warns(DataWarning, match=r"1 buildings have no floors.*\['x'\]"):
        got = land.building_floors(b, default_floors=1.0)
    assert got["floors"].tolist() == [1.0, 2.0]
    assert got["floors_source"].tolist() == ["default", "floors"]


# ---------------------------------------------------------------------------------------
# building metrics: hand-worked figures
# ---------------------------------------------------------------------------------------
def test_building_metrics_by_hand(parcels, buildings):
    before = parcels.copy()
    m = land.building_metrics(parcels, buildings, storey_height_m=3.5)
    pd.testing.assert_frame_equal(parcels, before)  # input untouched
    assert m.index.tolist() == [10, 20, 30, 40]
    # P1, P2: half of B1 each: 1000 m² x 2 floors = 2000 m²; coverage 1000/10000
    # P3: union = 1600 + 1600 - 400 = 2800 m²; floor area counts each point once at the
    #     highest floor count: 100x5 + (1600-100)x3 + (1600-400)x1 = 500 + 4500 + 1200 = 6200
    # P4: floor area 1600x1 + 900x3 + 1200x2 = 6700; counted 1600x2 + 900x6 + 1200x4 = 13400
    expected = pd.DataFrame(
        {
            "floor_area_m2": [2000.0, 2000.0, 6200.0, 6700.0],
            "far_floor_area_m2": [2000.0, 2000.0, 6200.0, 13400.0],
            "far": [0.2, 0.2, 0.62, 1.34],
            "coverage": [0.1, 0.1, 0.28, 0.37],
            "footprint_m2": [1000.0, 1000.0, 2800.0, 3700.0],
        },
        index=parcels.index,
    )
    pd.testing.assert_frame_equal(m[expected.columns], expected, rtol=1e-9)
    assert m["n_buildings"].tolist() == [1, 1, 3, 3]
    assert m["n_buildings"].dtype == "int64"


def test_tall_storey_threshold_and_factor_are_settings(parcels, buildings):
    m = land.building_metrics(parcels, buildings, tall_storey_m=12.0)
    # no storey is higher than 12 m (12, 10, 9) -> counted = actual = 6700
    assert m.loc[40, "far_floor_area_m2"] == pytest.approx(6700.0)
    m = land.building_metrics(parcels, buildings, tall_storey_factor=3.0)
    # 1600x3 + 900x9 + 1200x6 = 4800 + 8100 + 7200 = 20100
    assert m.loc[40, "far_floor_area_m2"] == pytest.approx(20100.0)


def test_floors_from_height_in_metrics(parcels):
    b = gdf(
        [
            {"floors": np.nan, "height_m": 2.9, "geometry": sq(10, 10, 30, 30)},  # 400 m², 1 fl
            {"floors": np.nan, "height_m": 10.4, "geometry": sq(40, 10, 60, 30)},  # 400 m², 3 fl
        ]
    )
    m = land.building_metrics(parcels, b, storey_height_m=3.5)
    # 400 x 1 + 400 x 3 = 1600 m² on P1
    assert m.loc[10, "floor_area_m2"] == pytest.approx(1600.0)
    assert m.loc[10, "far"] == pytest.approx(0.16)


def test_sliver_counts_in_area_not_in_n_buildings(parcels):
    # 0.5 m x 1 m = 0.5 m² of the building pokes into P2
    b = gdf([{"floors": 1, "geometry": sq(50, 10, 100.5, 11)}])
    m = land.building_metrics(parcels, b)
    assert m.loc[20, "footprint_m2"] == pytest.approx(0.5)
    assert m.loc[20, "n_buildings"] == 0
    assert m.loc[10, "n_buildings"] == 1


def test_parcels_without_buildings_are_zero(parcels):
    b = gdf([{"floors": 2, "use": "office", "geometry": sq(500, 500, 510, 510)}])
    m = land.building_metrics(parcels, b)
    assert m["floor_area_m2"].tolist() == [0.0] * 4
    assert m["coverage"].tolist() == [0.0] * 4
    assert m["ancillary_land_share"].tolist() == [0.0] * 4
    assert m["ancillary_floor_share"].isna().all()  # 0 / 0 floor area
    assert not m["ancillary_over_cap"].any()


def test_invalid_geometry_is_repaired_with_warning(parcels):
    bowtie = shapely.Polygon(
        [(X0 + 10, Y0 + 10), (X0 + 30, Y0 + 30), (X0 + 30, Y0 + 10), (X0 + 10, Y0 + 30)]
    )
    b = gdf([{"floors": 1, "geometry": bowtie}])
    with pytest.warns(DataWarning, match="1 building geometries are invalid"):
        m = land.building_metrics(parcels, b)
    # make_valid splits the bow-tie into two triangles of 20 x 10 / 2 = 100 m² each
    assert m.loc[10, "footprint_m2"] == pytest.approx(200.0)


# ---------------------------------------------------------------------------------------
# CRS
# ---------------------------------------------------------------------------------------
def test_crs_mismatch(parcels, buildings):
    with pytest.raises(CRSError, match=r"EPSG:4549.*EPSG:4550.*to_crs"):
        land.building_metrics(parcels, buildings.set_crs("EPSG:4550", allow_override=True))


def test_crs_missing(parcels, buildings):
    with pytest.raises(CRSError, match=r"`buildings` has no CRS.*set_crs"):
        land.building_metrics(parcels, buildings.set_crs(None, allow_override=True))


def test_crs_geographic(parcels, buildings):
    with pytest.raises(CRSError, match="projected CRS"):
        land.building_metrics(parcels.to_crs(4490), buildings.to_crs(4490))


# ---------------------------------------------------------------------------------------
# ancillary caps
# ---------------------------------------------------------------------------------------
def test_ancillary_caps():
    side = float(np.sqrt(60 * M2_PER_MU))  # a 60 亩 square: 40 000 m²
    rows = []
    blds = []
    for i, (grade, in_park) in enumerate([("A", False), ("A", True), ("C", False), ("B", None)]):
        x = i * 1000.0
        rows.append(
            {
                "parcel_id": f"Q{i}",
                "grade": grade,
                "in_park": in_park,
                "geometry": sq(x, 0, x + side, side),
            }
        )
        # office 4000 m² x 1 floor (10 % of land); production 16000 m² x 1 floor
        blds.append({"use": "office", "floors": 1, "geometry": sq(x, 0, x + 40, 100)})
        blds.append({"use": "production", "floors": 1, "geometry": sq(x + 40, 0, x + 200, 100)})
    p = gdf(rows)
    p["in_park"] = p["in_park"].astype("object")
    m = land.building_metrics(p, gdf(blds))
    # land share 4000/40000 = 0.10, floor share 4000/20000 = 0.20 everywhere
    assert m["ancillary_land_share"].tolist() == pytest.approx([0.1] * 4)
    assert m["ancillary_floor_share"].tolist() == pytest.approx([0.2] * 4)
    # Q0: A firm, 60 亩, outside parks -> 15 % land / 30 % floor: under both caps
    # Q1: inside a park; Q2: grade C; Q3: park membership unknown -> 7 % land, no floor cap
    assert m["ancillary_cap_land"].tolist() == [0.15, 0.07, 0.07, 0.07]
    assert m["ancillary_cap_floor"].iloc[0] == 0.30
    assert m["ancillary_cap_floor"].iloc[1:].isna().all()
    assert m["ancillary_over_cap"].tolist() == [False, True, True, True]
    assert m["ancillary_land_m2"].tolist() == pytest.approx([4000.0] * 4)

    # a 45 亩 parcel of an A firm keeps the 7 % cap; a floor cap of 15 % flags 20 %
    p2 = p.iloc[[0]].copy()
    p2["area_mu"] = 45.0
    m2 = land.building_metrics(p2, gdf(blds[:2]), ancillary_cap_floor=0.15)
    assert m2["ancillary_cap_land"].tolist() == [0.07]
    assert m2["ancillary_cap_floor"].tolist() == [0.15]
    assert m2["ancillary_over_cap"].tolist() == [True]


def test_ancillary_overlap_counted_once():
    p = gdf([{"geometry": sq(0, 0, 100, 100)}])
    # office 20x20 x2 floors and living 20x20 x3 floors overlapping by 10x20
    b = gdf(
        [
            {"use": "office", "floors": 2, "geometry": sq(0, 0, 20, 20)},
            {"use": "living", "floors": 3, "geometry": sq(10, 0, 30, 20)},
        ]
    )
    m = land.building_metrics(p, b)
    # union 600 m²; floor area 400x3 (living) + 200x2 (office only) = 1600
    assert m["ancillary_land_m2"].iloc[0] == pytest.approx(600.0)
    assert m["ancillary_floor_m2"].iloc[0] == pytest.approx(1600.0)
    assert m["ancillary_floor_share"].iloc[0] == pytest.approx(1.0)


def test_ancillary_empty_without_use_column(parcels, buildings):
    m = land.building_metrics(parcels, buildings)
    assert m["ancillary_land_share"].isna().all()
    assert not m["ancillary_over_cap"].any()


# ---------------------------------------------------------------------------------------
# independent reference: per-row shapely loop with a planar partition
# ---------------------------------------------------------------------------------------
def _reference(parcels: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> pd.DataFrame:
    """Floor area and coverage computed one parcel and one face at a time."""
    out = []
    for pg in parcels.geometry:
        pieces = []
        for bg, fl in zip(buildings.geometry, buildings["floors"]):
            inter = pg.intersection(bg)
            if inter.area > 0:
                pieces.append((inter, fl))
        if not pieces:
            out.append((0.0, 0.0))
            continue
        union = shapely.unary_union([g for g, _ in pieces])
        edges = shapely.unary_union([g.boundary for g, _ in pieces])
        floor_area = 0.0
        for face in shapely.get_parts(shapely.polygonize(shapely.get_parts(edges))):
            pt = face.representative_point()
            cover = [fl for g, fl in pieces if g.contains(pt)]
            if cover:
                floor_area += face.area * max(cover)
        out.append((floor_area / pg.area, union.area / pg.area))
    return pd.DataFrame(out, columns=["far", "coverage"], index=parcels.index)


def test_far_matches_independent_reference():
    rng = np.random.default_rng(42)
    p = gdf(
        [
            {"geometry": sq(i * 80.0, j * 60.0, (i + 1) * 80.0, (j + 1) * 60.0)}
            for i in range(4)
            for j in range(3)
        ]
    )
    rows = []
    for _ in range(60):
        x, y = rng.uniform(-10, 320), rng.uniform(-10, 180)
        w, h = rng.uniform(3, 45), rng.uniform(3, 35)
        rows.append({"floors": float(rng.integers(1, 7)), "geometry": sq(x, y, x + w, y + h)})
    b = gdf(rows)
    got = land.building_metrics(p, b)
    ref = _reference(p, b)
    assert (ref["coverage"] > 0).sum() >= 10  # the layout really exercises most parcels
    np.testing.assert_allclose(got["far"], ref["far"], rtol=1e-6)
    np.testing.assert_allclose(got["coverage"], ref["coverage"], rtol=1e-6)


# ---------------------------------------------------------------------------------------
# height raster
# ---------------------------------------------------------------------------------------
def _write_raster(path, data: np.ndarray, *, crs: str = CRS, nodata: float | None = None) -> None:
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    # 1 m cells, top-left corner at (X0, Y0 + rows)
    transform = Affine(1.0, 0.0, X0, 0.0, -1.0, Y0 + data.shape[0])
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(data.astype("float32"), 1)


@pytest.fixture
def raster(tmp_path):
    # rows from the top: the 3 x 3 block in the top-left corner is 9 m high, column 3 of
    # the top row is 3 m, the rest 0 m; cell (row 5, col 5) is nodata
    data = np.zeros((6, 6))
    data[0:3, 0:3] = 9.0
    data[0, 3] = 3.0
    data[5, 5] = -9999.0
    path = tmp_path / "ndsm.tif"
    _write_raster(path, data, nodata=-9999.0)
    return path


def test_raster_heights_coverage_weighted(raster):
    top = 6.0  # local y of the raster's top edge
    b = gdf(
        [
            # covers 2.5 cells, all in the 9 m block -> 9
            {"geometry": sq(0.5, top - 1, 3.0, top)},
            # 2 cells of 9 m and half a cell of 3 m -> (2x9 + 0.5x3) / 2.5 = 7.8
            {"geometry": sq(1.0, top - 1, 3.5, top)},
            # one cell of 0 m and one nodata cell -> 0 over the valid half
            {"geometry": sq(4.0, 0.0, 6.0, 1.0)},
            # outside the raster
            {"geometry": sq(100, 100, 101, 101)},
        ],
        index=[3, 2, 1, 0],
    )
    got = land.raster_heights(b, raster)
    assert got.index.tolist() == [3, 2, 1, 0]
    assert got.name == "height_m"
    np.testing.assert_allclose(got.to_numpy(), [9.0, 7.8, 0.0, np.nan], rtol=1e-9)
    # with more than half of the footprint required valid, the nodata building is empty
    strict = land.raster_heights(b, raster, min_valid_fraction=0.6)
    assert np.isnan(strict.loc[1])
    # small chunks give the same answer
    chunked = land.raster_heights(b, raster, max_cells_per_chunk=2)
    pd.testing.assert_series_equal(chunked, got)


def test_raster_floors_in_metrics(raster):
    p = gdf([{"geometry": sq(0, 0, 6, 6)}])  # 36 m²
    b = gdf(
        [
            {"floors": np.nan, "height_m": np.nan, "geometry": sq(0.5, 5, 3.0, 6)},  # 9 m
            {"floors": np.nan, "height_m": np.nan, "geometry": sq(1.0, 3, 3.5, 4)},
        ]
    )
    fl = land.building_floors(b, height_raster=raster, storey_height_m=3.5)
    # building 0: 9 m -> 9/3.5 = 2.57 -> 3 floors
    # building 1: row 2 (local y 3..4), cols 1..3.5: cells 9, 9 and half of 0 -> 18/2.5 = 7.2 m
    #             -> 7.2/3.5 = 2.06 -> 2 floors
    assert fl["floors_source"].tolist() == ["raster", "raster"]
    np.testing.assert_allclose(fl["height_m"], [9.0, 7.2])
    assert fl["floors"].tolist() == [3.0, 2.0]
    m = land.building_metrics(p, b, height_raster=raster)
    # 2.5 m² x 3 + 2.5 m² x 2 = 12.5 m² over 36 m²
    assert m["floor_area_m2"].iloc[0] == pytest.approx(12.5)
    assert m["far"].iloc[0] == pytest.approx(12.5 / 36)


def test_raster_crs_mismatch(tmp_path):
    path = tmp_path / "other.tif"
    _write_raster(path, np.zeros((2, 2)), crs="EPSG:4550")
    b = gdf([{"geometry": sq(0, 0, 1, 1)}])
    with pytest.raises(CRSError, match=r"EPSG:4550.*EPSG:4549.*gdalwarp"):
        land.raster_heights(b, path)


@pytest.mark.parametrize("south_up", [False, True])
def test_raster_heights_match_cell_by_cell_reference(tmp_path, south_up):
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    rng = np.random.default_rng(7)
    rows, cols, cell = 24, 20, 0.5
    data = rng.uniform(0, 30, (rows, cols))
    if south_up:  # first row at the bottom, rows go north
        transform = Affine(cell, 0.0, X0, 0.0, cell, Y0)
    else:
        transform = Affine(cell, 0.0, X0, 0.0, -cell, Y0 + rows * cell)
    path = tmp_path / "r.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=cols,
        height=rows,
        count=1,
        dtype="float64",
        crs=CRS,
        transform=transform,
    ) as dst:
        dst.write(data, 1)
    shapes = [
        shapely.Polygon([(1.1, 1.3), (6.2, 1.3), (6.2, 3.05), (3.3, 3.05), (3.3, 7.7), (1.1, 7.7)]),
        sq(2.2, 8.1, 9.4, 11.3).difference(sq(4.05, 9.0, 6.6, 10.2)),  # with a hole
        shapely.MultiPolygon([sq(6.9, 1.0, 7.3, 1.4), sq(8.0, 3.0, 9.7, 6.2)]).buffer(0),
        shapely.Polygon([(0.2, 10.0), (3.9, 11.8), (1.0, 11.9)]),  # thin triangle
        shapely.affinity.rotate(sq(4.0, 4.0, 8.0, 6.0), 33, origin="center"),
        sq(8.5, 9.0, 12.0, 11.0),  # runs off the raster's east edge at x = 10
    ]
    shapes = [shapely.affinity.translate(g, X0, Y0) if g.bounds[0] < X0 else g for g in shapes]
    b = gdf([{"geometry": g} for g in shapes])
    got = land.raster_heights(b, path, min_valid_fraction=0.0, max_cells_per_chunk=50)

    # reference: intersect every footprint with every cell, one at a time
    ref = []
    for g in shapes:
        num = den = 0.0
        for r in range(rows):
            for c in range(cols):
                x_a, y_a = transform.c + c * cell, transform.f + r * transform.e
                x_b, y_b = x_a + cell, y_a + transform.e
                a = g.intersection(
                    box(min(x_a, x_b), min(y_a, y_b), max(x_a, x_b), max(y_a, y_b))
                ).area
                num += a * data[r, c]
                den += a
        ref.append(num / den)
    np.testing.assert_allclose(got.to_numpy(), ref, rtol=1e-9)


# ---------------------------------------------------------------------------------------
# clipping fast paths (covered buildings, threads, all-pairs overlap search)
# ---------------------------------------------------------------------------------------
def _plain_clip_metrics(p: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> pd.DataFrame:
    """Reference: every building–parcel pair through shapely.intersection, one at a time,
    then floor area = ∫ max floors over the union of the pieces (faces of the overlay)."""
    out = []
    for pg in p.geometry:
        pieces = []
        for g, fl in zip(b.geometry, b["floors"]):
            inter = g.intersection(pg)
            if inter.area > 0:
                pieces.append((inter, fl))
        edges = shapely.unary_union([g.boundary for g, _ in pieces]) if pieces else None
        floor_area = 0.0
        if pieces:
            for face in shapely.get_parts(shapely.polygonize(shapely.get_parts(edges))):
                pt = face.representative_point()
                cover = [fl for g, fl in pieces if g.contains(pt)]
                floor_area += face.area * max(cover) if cover else 0.0
        union = shapely.unary_union([g for g, _ in pieces]).area if pieces else 0.0
        out.append((floor_area, union, sum(1 for g, _ in pieces if g.area >= 1.0)))
    return pd.DataFrame(out, columns=["floor_area_m2", "footprint_m2", "n"], index=p.index)


def test_covered_and_crossing_buildings_equal_plain_intersection(parcels):
    # an L-shaped 8-vertex building inside P1: 40 x 20 + 20 x 20 = 1200 m², 2 floors;
    # a building on P1's east edge (x = 100) but inside it (covers includes the boundary):
    # 10 x 10, 1 floor; a building crossing into P2: 30 x 10 with 20 m in P1, 3 floors
    ell = shapely.Polygon(
        [(10, 10), (50, 10), (50, 30), (30, 30), (30, 50), (10, 50), (10, 30), (10, 20)]
    )
    b = gdf(
        [
            {"floors": 2, "geometry": shapely.affinity.translate(ell, X0, Y0)},
            {"floors": 1, "geometry": sq(90, 60, 100, 70)},
            {"floors": 3, "geometry": sq(80, 80, 110, 90)},
        ]
    )
    pg = np.asarray(parcels.geometry.values)
    m = land.building_metrics(parcels, b)
    # P1: 1200 x 2 + 100 x 1 + 200 x 3 = 3100 m²; P2: 100 x 3 = 300 m²
    assert m.loc[10, "floor_area_m2"] == pytest.approx(3100.0, rel=1e-12)
    assert m.loc[20, "floor_area_m2"] == pytest.approx(300.0, rel=1e-12)
    assert m.loc[10, "footprint_m2"] == pytest.approx(1500.0, rel=1e-12)
    ref = _plain_clip_metrics(parcels, b)
    np.testing.assert_allclose(m["floor_area_m2"], ref["floor_area_m2"], rtol=1e-12)
    np.testing.assert_allclose(m["footprint_m2"], ref["footprint_m2"], rtol=1e-12)
    # the parcels' geometries are not left prepared
    assert not shapely.is_prepared(pg).any()


def _random_layout(seed: int, n_buildings: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    rng = np.random.default_rng(seed)
    p = gdf(
        [
            {"geometry": sq(i * 80.0, j * 60.0, (i + 1) * 80.0, (j + 1) * 60.0)}
            for i in range(4)
            for j in range(3)
        ]
    )
    rows = []
    for k in range(n_buildings):
        x, y = rng.uniform(-10, 320), rng.uniform(-10, 180)
        w, h = rng.uniform(3, 30), rng.uniform(3, 25)
        g = sq(x, y, x + w, y + h)
        if k % 3 == 0:  # some rotated footprints, whose vertices are not on a grid
            g = shapely.affinity.rotate(g, float(rng.uniform(0, 90)), origin="centroid")
        rows.append(
            {
                "floors": float(rng.integers(1, 7)),
                "use": ["production", "office", "living"][k % 3],
                "geometry": g,
            }
        )
    return p, gdf(rows)


def test_random_layout_equals_plain_intersection():
    p, b = _random_layout(7, 90)
    m = land.building_metrics(p, b)
    ref = _plain_clip_metrics(p, b)
    assert (ref["footprint_m2"] > 0).sum() >= 10
    np.testing.assert_allclose(m["floor_area_m2"], ref["floor_area_m2"], rtol=1e-9)
    np.testing.assert_allclose(m["footprint_m2"], ref["footprint_m2"], rtol=1e-9)
    assert m["n_buildings"].tolist() == ref["n"].tolist()


def test_threads_and_overlap_search_paths_give_identical_results(monkeypatch):
    from mujun_geo import buildings as bmod

    p, b = _random_layout(11, 400)
    monkeypatch.setattr(bmod, "_THREADS", 1)
    serial = land.building_metrics(p, b)
    # two threads on arrays of any size, and the tree search for every parcel's pieces
    monkeypatch.setattr(bmod, "_THREADS", 2)
    monkeypatch.setattr(bmod, "_THREAD_MIN", 1)
    monkeypatch.setattr(bmod, "_ALL_PAIRS_MAX", 1)
    threaded = land.building_metrics(p, b)
    pd.testing.assert_frame_equal(serial, threaded, check_exact=True)
    # parcels prepared a few at a time (blocks with and without buildings) change nothing
    monkeypatch.setattr(bmod, "_PREPARE_BLOCK", 3)
    blocks = land.building_metrics(p, b)
    pd.testing.assert_frame_equal(serial, blocks, check_exact=True)
    assert not shapely.is_prepared(np.asarray(p.geometry.values)).any()  # all released
    assert serial["ancillary_floor_m2"].sum() > 0  # the ancillary subset is exercised too


def test_surveyed_shapes_unprepared_and_rectangles_prepared_equal_plain_intersection(
    monkeypatch,
):
    # parcels that are not axis-aligned rectangles (rotated, jittered, with a courtyard)
    # are tested unprepared, rectangles prepared: both equal the plain intersection, with
    # threads, whether or not the caller prepared the parcels
    from mujun_geo import buildings as bmod

    p, b = _random_layout(13, 300)
    geoms = np.asarray(p.geometry.values).copy()
    rng = np.random.default_rng(5)
    for k in range(0, len(geoms), 2):  # every other parcel: a surveyed-looking outline
        ring = shapely.segmentize(geoms[k].exterior, 20.0)
        xy = shapely.get_coordinates(ring)[:-1] + rng.normal(0, 0.7, (len(ring.coords) - 1, 2))
        geoms[k] = shapely.Polygon(xy)
    geoms[1] = geoms[1].difference(geoms[1].centroid.buffer(8.0))  # a courtyard
    p = p.set_geometry(geoms)
    assert bmod._is_rectangle(geoms).tolist() == [k % 2 == 1 and k != 1 for k in range(12)]
    ref = _plain_clip_metrics(p, b)
    assert (ref["footprint_m2"] > 0).sum() >= 10
    monkeypatch.setattr(bmod, "_THREAD_MIN", 1)
    for prepared in (False, True):
        if prepared:
            shapely.prepare(np.asarray(p.geometry.values))
        m = land.building_metrics(p, b)
        np.testing.assert_allclose(m["floor_area_m2"], ref["floor_area_m2"], rtol=1e-9)
        np.testing.assert_allclose(m["footprint_m2"], ref["footprint_m2"], rtol=1e-9)
        assert m["n_buildings"].tolist() == ref["n"].tolist()
        # the caller's preparation is left as it was; none is added
        assert shapely.is_prepared(np.asarray(p.geometry.values)).tolist() == [prepared] * 12


def test_overlap_edges_equal_brute_force(monkeypatch):
    from mujun_geo import buildings as bmod

    _, b = _random_layout(3, 150)
    geoms = np.asarray(b.geometry.values)
    group = np.arange(len(geoms)) % 4  # four "parcels", pieces of different groups never pair
    expected = {
        (i, j)
        for i in range(len(geoms))
        for j in range(i + 1, len(geoms))
        if group[i] == group[j] and geoms[i].intersection(geoms[j]).area > 1e-6
    }
    assert len(expected) >= 5
    for limit in (64, 1):  # all pairs of a group, or an STRtree over large groups
        monkeypatch.setattr(bmod, "_ALL_PAIRS_MAX", limit)
        edges = bmod._overlap_edges(geoms, group)
        assert set(map(tuple, edges.T.tolist())) == expected


def test_check_valid_false_skips_the_check_and_changes_nothing_on_valid_layers(monkeypatch):
    # the pipeline passes check_valid=False: its readers have repaired both layers already
    from mujun_geo import buildings as bmod

    p, b = _random_layout(5, 120)
    checked = land.building_metrics(p, b)

    def refuse(*args, **kwargs):
        raise AssertionError("validity checked again")

    monkeypatch.setattr(bmod, "_valid_geoms", refuse)
    trusted = land.building_metrics(p, b, check_valid=False)
    pd.testing.assert_frame_equal(checked, trusted, check_exact=True)
    assert checked["floor_area_m2"].sum() > 0
