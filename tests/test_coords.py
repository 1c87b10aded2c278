import numpy as np
import pytest

from mujun_geo import coords

# Published test vector of the reference implementation (wandergis/coordTransform_py README):
# input (128.543, 37.065)
LON, LAT = 128.543, 37.065


def test_wgs84_to_gcj02_matches_published_vector():
    lon, lat = coords.wgs84_to_gcj02(LON, LAT)
    assert lon == pytest.approx(128.54820547949757, abs=1e-12)
    assert lat == pytest.approx(37.065651049489816, abs=1e-12)


def test_gcj02_to_bd09_and_wgs84_to_bd09_match_published_vectors():
    lon, lat = coords.gcj02_to_bd09(LON, LAT)
    assert (lon, lat) == pytest.approx((128.54944656269413, 37.07113427883019), abs=1e-12)
    lon, lat = coords.wgs84_to_bd09(LON, LAT)
    assert (lon, lat) == pytest.approx((128.55468192918485, 37.07168344938498), abs=1e-12)


def test_one_step_inverse_of_reference_is_within_metres_ours_is_exact():
    # the reference's one-step gcj02_to_wgs84 gives (128.53779452050244, 37.06434895051018);
    # ours iterates: the forward transform of our answer must reproduce the input to < 0.5 m
    lon, lat = coords.gcj02_to_wgs84(LON, LAT)
    assert abs(lon - 128.53779452050244) < 2e-5  # the one-step answer is ~1 m off
    flon, flat = coords.wgs84_to_gcj02(lon, lat)
    metres = np.hypot((flon - LON) * 111320 * np.cos(np.radians(LAT)), (flat - LAT) * 110540)
    assert metres < 0.5e-3


def test_inverse_round_trip_over_zhejiang_grid_under_half_metre():
    lon, lat = np.meshgrid(np.linspace(118.0, 123.2, 40), np.linspace(27.0, 31.2, 40))
    glon, glat = coords.wgs84_to_gcj02(lon.ravel(), lat.ravel())
    blon, blat = coords.gcj02_to_wgs84(glon, glat)
    err_m = np.hypot((blon - lon.ravel()) * 96000, (blat - lat.ravel()) * 111000)
    assert err_m.max() < 0.5
    # the shift itself is hundreds of metres: the reason conversion matters
    shift_m = np.hypot((glon - lon.ravel()) * 96000, (glat - lat.ravel()) * 111000)
    assert shift_m.min() > 100


def test_bd09_round_trip():
    blon, blat = coords.wgs84_to_bd09(120.6, 30.45)
    lon, lat = coords.bd09_to_wgs84(blon, blat)
    assert (lon, lat) == pytest.approx((120.6, 30.45), abs=5e-9)


def test_out_of_china_points_unchanged():
    lon, lat = coords.wgs84_to_gcj02([2.35, 120.0], [48.85, 30.0])
    assert lon[0] == 2.35 and lat[0] == 48.85
    assert lon[1] != 120.0


def test_to_wgs84_mixed_systems():
    g = coords.wgs84_to_gcj02(120.5, 30.5)
    b = coords.wgs84_to_bd09(120.5, 30.5)
    lon, lat = coords.to_wgs84(
        [120.5, g[0], b[0], 120.5], [30.5, g[1], b[1], 30.5], ["wgs84", "gcj02", "bd09", "cgcs2000"]
    )
    assert lon == pytest.approx([120.5] * 4, abs=1e-8)
    assert lat == pytest.approx([30.5] * 4, abs=1e-8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WGS84", "wgs84"),
        ("gcj-02", "gcj02"),
        ("高德", "gcj02"),
        ("BD09", "bd09"),
        ("国家2000", "cgcs2000"),
        ("", None),
        ("mercator", None),
    ],
)
def test_normalise_coord_sys(text, expected):
    assert coords.normalise_coord_sys(text) == expected
