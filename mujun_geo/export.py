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

import numpy as np
import pandas as pd

import geopandas as gpd
import pyogrio
import shapely

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


#: shapely.get_type_id of Polygon and MultiPolygon.
_POLYGON, _MULTIPOLYGON = 3, 6

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


def prepare_for_gpkg(frame: pd.DataFrame, *, arrow: bool = False) -> pd.DataFrame:
    """Make a frame writable: mixed object columns as text, nullable ints kept, index dropped.

    Parameters
    ----------
    frame
        A layer (DataFrame or GeoDataFrame).
    arrow
        The frame goes to pyogrio's Arrow writer, which takes pandas ``str`` columns as
        they are (missing values as nulls) and, in layers with geometry, nullable
        ``boolean`` columns too. In attribute tables nullable booleans become the text
        ``"True"`` / ``"False"``, the field type GDAL's row-by-row writer gave them. Without
        ``arrow`` (default) both become object columns with None for missing values, as
        other writers (fiona) need.

    Returns
    -------
    pandas.DataFrame
        A new frame (the input is not changed) with a default index.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"code": [1, "x", None], "name": ["甲", None, "丙"]}, index=[5, 6, 7])
    >>> out = prepare_for_gpkg(df)
    >>> out["code"].tolist(), out["name"].tolist(), out.index.tolist()
    (['1', 'x', nan], ['甲', None, '丙'], [0, 1, 2])
    >>> str(prepare_for_gpkg(df, arrow=True)["name"].dtype)
    'str'
    """
    out = frame.reset_index(drop=True)  # a new frame: columns set below leave `frame` alone
    geometry = getattr(out, "_geometry_column_name", None)
    for col in out.columns:
        if col == geometry:
            continue
        s = out[col]
        if s.dtype == object:
            if not _all_text(s):
                out[col] = s.map(
                    lambda v: None if _isna(v) else (v if isinstance(v, str) else str(v))
                )
        elif arrow:
            if str(s.dtype) == "boolean" and geometry is None:
                text = np.where(s.fillna(False).to_numpy(dtype=bool), "True", "False")
                out[col] = pd.Series(text, dtype=object).where(s.notna().to_numpy(), None)
        elif pd.api.types.is_string_dtype(s.dtype):
            out[col] = s.astype(object).where(s.notna(), None)
        elif str(s.dtype) == "boolean":
            out[col] = s.astype(object).where(s.notna(), None)
    return out


def _all_text(s: pd.Series) -> bool:
    """True when every value of an object column is missing or a string.

    One ``infer_dtype`` pass (C) settles text and empty columns; only other columns are
    looked at value by value (they are converted value by value anyway).
    """
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return True
    return {type(v) for v in s.dropna()} <= {str}


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
            data = prepare_for_gpkg(frame, arrow=True)
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
                pyogrio.write_dataframe(
                    data, tmp, layer=name, driver="GPKG", use_arrow=True, **_GPKG_OPTIONS
                )
        if postprocess is not None:
            postprocess(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("wrote %s (%d layers)", path, len(layers))
    return path


def _has_mixed_polygons(gdf: gpd.GeoDataFrame) -> bool:
    """Whether the layer has both Polygons and MultiPolygons (and no other type)."""
    ids = set(np.unique(shapely.get_type_id(gdf.geometry.values)).tolist()) - {-1}
    return ids == {_POLYGON, _MULTIPOLYGON}


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
