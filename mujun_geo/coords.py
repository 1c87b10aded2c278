"""Chinese web-map coordinate systems: GCJ-02 (AMap, Tencent) and BD-09 (Baidu).

Geocoders in China return GCJ-02 ("Mars") or BD-09 coordinates, which sit hundreds of
metres away from WGS84/CGCS2000. Matching such points to parcels without converting them
puts firms on their neighbours' land. All functions here are vectorised over numpy arrays
and leave points outside China unchanged (the published algorithm's ``out_of_china`` box).

The forward transform is the published one (constants in ``DOMAIN.md`` §6.5). The inverse
has no closed form; it is solved by fixed-point iteration until the forward transform of
the estimate lands within ``tol`` degrees of the input (default 1e-9 degree, about 0.1 mm).

Examples
--------
>>> lon, lat = wgs84_to_gcj02(120.0, 30.0)
>>> round(float(lon), 6), round(float(lat), 6)
(120.00466, 29.997534)
>>> back = gcj02_to_wgs84(lon, lat)
>>> round(float(back[0]), 9), round(float(back[1]), 9)
(120.0, 30.0)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "COORD_SYSTEMS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "normalise_coord_sys",
    "out_of_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

_A = 6378245.0
_EE = 0.00669342162296594323
_PI = 3.1415926535897932384626
_X_PI = _PI * 3000.0 / 180.0

#: Canonical coordinate-system names accepted in the ``coord_sys`` column.
COORD_SYSTEMS = ("wgs84", "cgcs2000", "gcj02", "bd09")

_ALIASES = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "wgs_84": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "gps": "wgs84",
    "cgcs2000": "cgcs2000",
    "cgcs-2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "4490": "cgcs2000",
    "国家2000": "cgcs2000",
    "2000": "cgcs2000",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "gcj": "gcj02",
    "高德": "gcj02",
    "amap": "gcj02",
    "腾讯": "gcj02",
    "火星坐标": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "bd09ll": "bd09",
    "百度": "bd09",
    "baidu": "bd09",
}

Pair = tuple[NDArray[np.float64], NDArray[np.float64]]


def normalise_coord_sys(value: object) -> str | None:
    """Map a user's spelling of a coordinate system to one of :data:`COORD_SYSTEMS`.

    Returns ``None`` for blanks and for spellings that are not recognised.

    Examples
    --------
    >>> normalise_coord_sys(" GCJ-02 "), normalise_coord_sys("百度"), normalise_coord_sys("x")
    ('gcj02', 'bd09', None)
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    key = str(value).strip().lower().replace(" ", "")
    return _ALIASES.get(key)


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Return True where the published GCJ-02 algorithm leaves a point unchanged."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _transform_lat(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * _PI) + 20.0 * np.sin(2.0 * x * _PI)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * _PI) + 40.0 * np.sin(y / 3.0 * _PI)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * _PI) + 320.0 * np.sin(y * _PI / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * _PI) + 20.0 * np.sin(2.0 * x * _PI)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * _PI) + 40.0 * np.sin(x / 3.0 * _PI)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * _PI) + 300.0 * np.sin(x / 30.0 * _PI)) * 2.0 / 3.0
    return ret


def _offsets(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> Pair:
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * _PI
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * _PI)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * _PI)
    outside = out_of_china(lon, lat)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def _arrays(lon: ArrayLike, lat: ArrayLike) -> Pair:
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """Shift WGS84 longitude/latitude (degrees) to GCJ-02."""
    lon, lat = _arrays(lon, lat)
    dlon, dlat = _offsets(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol: float = 1e-9, max_iter: int = 30
) -> Pair:
    """Invert :func:`wgs84_to_gcj02` by fixed-point iteration.

    Each step moves the estimate by the residual of the forward transform; the offset
    field is smooth, so the error shrinks by ~1e-5 per step and 3-4 steps reach ``tol``
    (degrees). The one-step formula common in the wild leaves errors of up to ~1 m.
    """
    glon, glat = _arrays(lon, lat)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        rlon, rlat = glon - flon, glat - flat
        wlon = wlon + rlon
        wlat = wlat + rlat
        if np.all(np.nan_to_num(np.maximum(np.abs(rlon), np.abs(rlat))) < tol):
            break
    return wlon, wlat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """Shift GCJ-02 to Baidu's BD-09."""
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(
    lon: ArrayLike, lat: ArrayLike, *, tol: float = 1e-10, max_iter: int = 30
) -> Pair:
    """Invert :func:`gcj02_to_bd09`, refining the published closed form iteratively."""
    blon, blat = _arrays(lon, lat)
    x, y = blon - 0.0065, blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(max_iter):
        flon, flat = gcj02_to_bd09(glon, glat)
        rlon, rlat = blon - flon, blat - flat
        glon, glat = glon + rlon, glat + rlat
        if np.all(np.nan_to_num(np.maximum(np.abs(rlon), np.abs(rlat))) < tol):
            break
    return glon, glat


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """Shift WGS84 to BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """Shift BD-09 back to WGS84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(
    lon: ArrayLike,
    lat: ArrayLike,
    coord_sys: ArrayLike | Literal["wgs84", "cgcs2000", "gcj02", "bd09"],
) -> Pair:
    """Convert mixed-system coordinates to WGS84 (≈ CGCS2000 at metre level).

    Parameters
    ----------
    lon, lat
        Longitude and latitude in degrees.
    coord_sys
        One canonical name for all points, or an array of canonical names per point
        (see :func:`normalise_coord_sys`).

    Examples
    --------
    >>> lon, lat = to_wgs84([120.0, 120.0046604], [30.0, 29.9975343], ["wgs84", "gcj02"])
    >>> [round(float(v), 5) for v in lon]
    [120.0, 120.0]
    """
    lon, lat = _arrays(lon, lat)
    systems = np.broadcast_to(np.asarray(coord_sys, dtype=object), lon.shape)
    out_lon, out_lat = lon.copy(), lat.copy()
    for name, func in (("gcj02", gcj02_to_wgs84), ("bd09", bd09_to_wgs84)):
        sel = systems == name
        if sel.any():
            out_lon[sel], out_lat[sel] = func(lon[sel], lat[sel])
    return out_lon, out_lat
