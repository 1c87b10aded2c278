"""Coordinate reference systems: CGCS2000 Gauss-Krüger zones and the working CRS.

Areas and distances are computed in a projected CGCS2000 3-degree Gauss-Krüger CRS, never
in degrees. Zhejiang spans the 3-degree zones 39-41 (central meridians 117, 120, 123 °E):

==========  =================  ============================
zone (CM)   EPSG, no prefix    EPSG, zone-prefixed eastings
==========  =================  ============================
39 (117E)   4548               4527
40 (120E)   4549               4528
41 (123E)   4550               4529
==========  =================  ============================

Examples
--------
>>> gk3_epsg(120.6)
4549
>>> gk3_epsg(120.6, prefixed=True)
4528
>>> gk3_epsg(118.4)
4548
"""

from __future__ import annotations

import logging

import numpy as np

import geopandas as gpd
from pyproj import CRS
from pyproj.exceptions import CRSError as _ProjCRSError

from ._errors import CRSError

__all__ = ["as_crs", "gk3_epsg", "guess_from_coordinates", "require_projected", "to_working_crs"]

logger = logging.getLogger(__name__)


def gk3_epsg(lon: float, *, prefixed: bool = False) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone whose central meridian is nearest ``lon``."""
    zone = int(np.floor(lon / 3.0 + 0.5))
    if not 25 <= zone <= 45:
        msg = f"longitude {lon} lies outside the CGCS2000 3-degree zones 25-45 (75-135 °E)"
        raise CRSError(msg)
    return (4513 if prefixed else 4534) + (zone - 25)


def as_crs(value: object) -> CRS:
    """Turn a user value (``"EPSG:4528"``, ``4528``, WKT, a CRS) into a :class:`pyproj.CRS`.

    Raises :class:`CRSError` with the accepted forms when the value is not understood.
    """
    try:
        return CRS.from_user_input(value)
    except _ProjCRSError as exc:
        msg = f"cannot understand CRS {value!r}: give an EPSG code such as EPSG:4528 ({exc})"
        raise CRSError(msg) from exc


def _identify(crs: CRS) -> CRS:
    """Swap an ESRI/WKT definition for its EPSG twin when pyproj recognises it."""
    code = crs.to_epsg(min_confidence=70)
    return CRS.from_epsg(code) if code is not None else crs


def guess_from_coordinates(x: float, y: float) -> str:
    """Describe what CRS a layer's coordinates look like, for error messages only."""
    if -180 <= x <= 180 and -90 <= y <= 90:
        return "longitude/latitude degrees (EPSG:4490 CGCS2000 or EPSG:4326 WGS84)"
    if 1e7 <= x < 1e8:
        zone = int(x // 1_000_000)
        if 25 <= zone <= 45:
            return f"CGCS2000 3-degree Gauss-Krüger zone {zone} with prefixed eastings (EPSG:{4513 + zone - 25})"
    if 0 < x < 1e6 and 0 < y < 1e7:
        return "CGCS2000 Gauss-Krüger metres without zone prefix (EPSG:4548/4549/4550 in Zhejiang)"
    return "an unknown projection"


def _declared(gdf: gpd.GeoDataFrame, *, crs: object | None, source: str) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        if crs is None:
            hint = ""
            if len(gdf) and not gdf.geometry.is_empty.all():
                x0, y0, _, _ = gdf.total_bounds
                hint = f" Its coordinates look like {guess_from_coordinates(x0, y0)}."
            msg = (
                f"{source} has no coordinate reference system (no .prj or CRS metadata).{hint} "
                "Declare it with `--crs EPSG:XXXX` (or `crs=` in the API / config file); "
                "mujun-geo never guesses a CRS."
            )
            raise CRSError(msg)
        return gdf.set_crs(as_crs(crs))
    if crs is not None and not gdf.crs.equals(as_crs(crs)):
        logger.warning(
            "%s: declared CRS %s differs from the file's %s; the file's is kept",
            source,
            crs,
            gdf.crs.to_string(),
        )
    return gdf.set_crs(_identify(gdf.crs), allow_override=True)


def to_working_crs(
    gdf: gpd.GeoDataFrame,
    target: CRS | None = None,
    *,
    crs: object | None = None,
    source: str = "layer",
) -> tuple[gpd.GeoDataFrame, CRS]:
    """Declare a layer's CRS if needed and bring it into the working CRS.

    Parameters
    ----------
    gdf
        Layer as read. A layer with no CRS needs ``crs``.
    target
        Working CRS; ``None`` picks one: the layer's own CRS when it is projected, else the
        3-degree zone (no prefix) of the layer's centroid.
    crs
        CRS to declare when the file has none.
    source
        Name used in messages.

    Returns
    -------
    (GeoDataFrame, CRS)
        The layer in the working CRS, and that CRS.

    Examples
    --------
    >>> from shapely import Point
    >>> g = gpd.GeoDataFrame(geometry=[Point(120.6, 30.5)], crs=4490)
    >>> out, working = to_working_crs(g)
    >>> working.to_epsg(), round(out.geometry.x.iloc[0]) // 1000
    (4549, 557)
    """
    gdf = _declared(gdf, crs=crs, source=source)
    if target is None:
        if gdf.crs.is_projected:
            target = gdf.crs
        else:
            valid = gdf.geometry[~(gdf.geometry.is_empty | gdf.geometry.isna())]
            if valid.empty:
                msg = f"{source} has no geometry to choose a working CRS from"
                raise CRSError(msg)
            minx, miny, maxx, maxy = valid.total_bounds
            target = CRS.from_epsg(gk3_epsg((minx + maxx) / 2))
            logger.info(
                "%s is geographic; working CRS chosen from its centre: %s", source, target.name
            )
    if not gdf.crs.equals(target):
        gdf = gdf.to_crs(target)
    return gdf, target


def require_projected(gdf: gpd.GeoDataFrame, *, name: str = "layer") -> None:
    """Raise :class:`CRSError` unless ``gdf`` has a projected CRS in metres."""
    if gdf.crs is None:
        msg = f"`{name}` has no CRS: call `{name}.set_crs(...)` with the layer's EPSG code first"
        raise CRSError(msg)
    if not gdf.crs.is_projected:
        msg = (
            f"`{name}` is in a geographic CRS ({gdf.crs.to_string()}); areas and distances need "
            f"metres: call `{name}.to_crs({gk3_epsg(float(gdf.total_bounds[0]))})` (CGCS2000 Gauss-Krüger)"
        )
        raise CRSError(msg)
