"""Write a run's layers to one GeoPackage, atomically.

All layers go into a temporary file beside the target, which replaces the target only
when every layer is written; a failed run leaves an existing output as it was. An
existing output is never replaced unless ``overwrite=True``.

Examples
--------
>>> import tempfile, pandas as pd
>>> from pathlib import Path
>>> out = Path(tempfile.mkdtemp()) / "run.gpkg"
>>> write_geopackage({"rejects": pd.DataFrame({"row": [1], "reason": ["缺少代码"]})}, out)
PosixPath('...run.gpkg')
>>> write_geopackage({"rejects": pd.DataFrame()}, out)
Traceback (most recent call last):
...
mujun_geo.export.OutputExistsError: ...run.gpkg exists; pass --overwrite (overwrite=True) to replace it
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

import geopandas as gpd
import pyogrio

from ._errors import MujunGeoError

__all__ = [
    "OutputExistsError",
    "atomic_path",
    "check_writable",
    "file_sha256",
    "prepare_for_gpkg",
    "write_geopackage",
]

logger = logging.getLogger(__name__)


# GeoPackage 1.2 is what GDAL < 3.7 (and the QGIS builds on it) read without warnings.
_GPKG_OPTIONS = {"dataset_options": {"VERSION": "1.2"}}


class OutputExistsError(MujunGeoError, FileExistsError):
    """The output exists and ``overwrite`` was not given."""


def check_writable(path: str | Path, *, overwrite: bool) -> Path:
    """Raise :class:`OutputExistsError` when ``path`` exists and may not be replaced."""
    path = Path(path)
    if path.exists() and not overwrite:
        msg = f"{path} exists; pass --overwrite (overwrite=True) to replace it"
        raise OutputExistsError(msg)
    return path


def atomic_path(path: Path) -> Path:
    """Temporary sibling of ``path`` to write to before the final rename."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def prepare_for_gpkg(frame: pd.DataFrame) -> pd.DataFrame:
    """Make a frame writable: mixed object columns as text, nullable ints kept, index dropped."""
    out = frame.reset_index(drop=True).copy()
    for col in out.columns:
        if col == getattr(out, "_geometry_column_name", None):
            continue
        s = out[col]
        if s.dtype == object:
            kinds = {type(v) for v in s.dropna()}
            if kinds and not kinds <= {str}:
                out[col] = s.map(
                    lambda v: None if _isna(v) else (v if isinstance(v, str) else str(v))
                )
        elif pd.api.types.is_string_dtype(s.dtype):
            out[col] = s.astype(object).where(s.notna(), None)
        elif str(s.dtype) == "boolean":
            out[col] = s.astype(object).where(s.notna(), None)
    return out


def _isna(v: object) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def write_geopackage(
    layers: Mapping[str, pd.DataFrame],
    path: str | Path,
    *,
    overwrite: bool = False,
    postprocess: Callable[[Path], None] | None = None,
) -> Path:
    """Write every layer into one GeoPackage at ``path``.

    Parameters
    ----------
    layers
        Layer name → DataFrame (written as an attribute table) or GeoDataFrame.
    path
        Target ``.gpkg``; parent folders are created.
    overwrite
        Replace an existing file. Without it an existing file raises
        :class:`OutputExistsError` before anything is written.
    postprocess
        Called with the temporary file once every layer is in it, before the rename
        (styles, aliases); an error there leaves the target untouched.

    Returns
    -------
    Path
        The path written.
    """
    path = check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    tmp.unlink(missing_ok=True)
    try:
        for name, frame in layers.items():
            data = prepare_for_gpkg(frame)
            if isinstance(data, gpd.GeoDataFrame):
                pyogrio.write_dataframe(
                    data,
                    tmp,
                    layer=name,
                    driver="GPKG",
                    use_arrow=True,
                    promote_to_multi=_has_mixed_polygons(data),
                    **_GPKG_OPTIONS,
                )
            else:
                if data.shape[1] == 0:
                    data = pd.DataFrame({"empty": pd.Series(dtype=object)})
                pyogrio.write_dataframe(data, tmp, layer=name, driver="GPKG", **_GPKG_OPTIONS)
        if postprocess is not None:
            postprocess(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("wrote %s (%d layers)", path, len(layers))
    return path


def _has_mixed_polygons(gdf: gpd.GeoDataFrame) -> bool:
    types = set(gdf.geometry.geom_type.dropna().unique())
    return types == {"Polygon", "MultiPolygon"}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (and of its shapefile sidecars, for ``.shp``)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path]
    if path.suffix.lower() == ".shp":
        files = sorted(
            p
            for p in path.parent.glob(path.stem + ".*")
            if p.suffix.lower() in {".shp", ".shx", ".dbf", ".prj", ".cpg"}
        )
    for f in files:
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
