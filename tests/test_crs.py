import pytest

import geopandas as gpd
from shapely import Point, box

from mujun_geo._errors import CRSError
from mujun_geo.crs import gk3_epsg, require_projected, to_working_crs


@pytest.mark.parametrize(
    ("lon", "plain", "prefixed"), [(118.2, 4548, 4527), (120.6, 4549, 4528), (122.4, 4550, 4529)]
)
def test_zhejiang_zones(lon, plain, prefixed):
    assert gk3_epsg(lon) == plain
    assert gk3_epsg(lon, prefixed=prefixed) == prefixed


def test_geographic_layer_projected_to_zone_of_centre():
    g = gpd.GeoDataFrame(geometry=[box(120.60, 30.40, 120.61, 30.41)], crs=4490)
    out, crs = to_working_crs(g)
    assert crs.to_epsg() == 4549
    # ~0.01° x 0.01° at 30.4°N is about 960 m x 1109 m
    assert out.geometry.area.iloc[0] == pytest.approx(961 * 1109, rel=0.01)


def test_prefixed_zone_kept_and_same_area_as_plain():
    g = gpd.GeoDataFrame(geometry=[box(120.60, 30.40, 120.61, 30.41)], crs=4490)
    a, _ = to_working_crs(g, gpd.GeoSeries(crs=4528).crs)
    b, _ = to_working_crs(g, gpd.GeoSeries(crs=4549).crs)
    assert a.geometry.bounds.minx.iloc[0] == pytest.approx(
        b.geometry.bounds.minx.iloc[0] + 40_000_000
    )
    assert a.geometry.area.iloc[0] == pytest.approx(b.geometry.area.iloc[0], rel=1e-9)


def test_missing_crs_is_an_error_that_says_how_to_declare():
    g = gpd.GeoDataFrame(geometry=[Point(40_560_000, 3_370_000)])
    with pytest.raises(
        CRSError, match=r"--crs EPSG:XXXX.*|zone 40 with prefixed eastings \(EPSG:4528\)"
    ):
        to_working_crs(g, source="parcels.shp")
    out, crs = to_working_crs(g, crs="EPSG:4528")
    assert crs.to_epsg() == 4528


def test_require_projected():
    g = gpd.GeoDataFrame(geometry=[Point(120, 30)], crs=4326)
    with pytest.raises(CRSError, match="to_crs"):
        require_projected(g, name="parcels")
    with pytest.raises(CRSError, match="set_crs"):
        require_projected(gpd.GeoDataFrame(geometry=[Point(1, 1)]), name="parcels")
