"""Write a run's layers to one GeoPackage, atomically.

All layers go into a temporary file beside the target, which replaces the target only
when every layer is written; a failed run leaves an existing output as it was, and no
temporary file. An existing output is never replaced unless ``overwrite=True``. On Linux
a large run is written by two processes: a forked child writes the largest layer while
this process writes the others into a side file, merged into the temporary file at the
end (:func:`write_geopackage`); the file is the one a single process writes.

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

import glob
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

import geopandas as gpd
import pyogrio
import shapely
from pyogrio.raw import write_arrow

from ._errors import MujunGeoError
from ._fork import ForkedCall, can_fork
from ._gpkg_parallel import MergeUnsupported, connect_temporary, merge_layers, order_layers

__all__ = [
    "OutputExistsError",
    "SubsetView",
    "atomic_path",
    "check_writable",
    "file_sha256",
    "prepare_for_gpkg",
    "write_geopackage",
]

logger = logging.getLogger(__name__)


#: shapely.get_type_id of Polygon and MultiPolygon.
_POLYGON, _MULTIPOLYGON = 3, 6

#: Layer geometry type pyogrio gives GDAL for a layer of one shapely type id.
_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
}

# GeoPackage 1.2 is what GDAL < 3.7 (and the QGIS builds on it) read without warnings.
_GPKG_OPTIONS = {"dataset_options": {"VERSION": "1.2"}}

# SQLite settings for the temporary file only. Nothing reads it before the rename and a
# failed write deletes it, so GDAL need not fsync file and journal at each of its commits
# (~20 fsyncs per layer) nor keep the journal on disk; one fsync before the rename keeps
# the result durable. Neither setting is stored in the file (journal_mode MEMORY is per
# connection). GDAL configuration options are process-wide: they are set only while the
# layers are written.
_TEMP_FILE_SQLITE = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "MEMORY"}


class OutputExistsError(MujunGeoError, FileExistsError):
    """The output exists and ``overwrite`` was not given."""


class SubsetView(NamedTuple):
    """A layer that is the rows of another layer where one column has one value.

    :func:`write_geopackage` writes such a layer as an SQL view over the other layer's
    table (a GeoPackage spatial view: GDAL and QGIS read it as a layer and use the base
    table's spatial index) when the frame is exactly those rows and columns; it writes
    a table otherwise. The low-efficiency parcels are 65 % of a province's parcels: as a
    view they cost no second copy of their polygons (4 s and 200 MB at 1,000,000 parcels).
    """

    #: The layer whose rows it selects (written earlier in the same file).
    base: str
    #: The column tested, and the value the selected rows have (bool, int or text).
    column: str
    value: bool | int | str


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
    subsets: Mapping[str, SubsetView] | None = None,
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
    subsets
        Layer name → :class:`SubsetView`: layers that are a filter of an earlier layer are
        written as views over its table once their frame is checked to be exactly the
        base layer's rows where ``column == value``, in its order, with its values.

    Returns
    -------
    Path
        The path written.
    """
    path = check_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    _remove(tmp)
    try:
        with _gdal_config(_TEMP_FILE_SQLITE):
            views = dict(subsets or {})
            offload = _offloaded_layer(layers, views) if can_fork() else None
            if offload is None or not _write_two_processes(layers, tmp, views, offload):
                bases = {v.base for v in views.values()}
                written: dict[str, pd.DataFrame] = {}
                for name, frame in layers.items():
                    view = views.get(name)
                    _write_one(name, frame, tmp, view=view, written=written, keep=name in bases)
        if postprocess is not None:
            postprocess(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        _remove(tmp)
    logger.info("wrote %s (%d layers)", path, len(layers))
    return path


def _write_one(
    name: str,
    frame: pd.DataFrame,
    path: Path,
    *,
    view: SubsetView | None = None,
    written: dict[str, pd.DataFrame],
    keep: bool = False,
) -> None:
    """Write one layer: as a view when it is ``view`` of a base in ``written``, else a table.

    ``written`` holds the prepared frames of the view bases written so far; with ``keep``
    this layer's is added to it.
    """
    data, mask = _prepare(frame, view, written)
    _write_prepared(name, data, path, view=view, mask=mask, written=written, keep=keep)


def _prepare(
    frame: pd.DataFrame, view: SubsetView | None, written: Mapping[str, pd.DataFrame]
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The frame as GDAL gets it and, for a view of a base in ``written``, its row mask."""
    data = prepare_for_gpkg(frame, arrow=True)
    base = None if view is None else written.get(view.base)
    mask = None if base is None or view is None else _subset_mask(data, base, view)
    return data, mask


def _write_prepared(
    name: str,
    data: pd.DataFrame,
    path: Path,
    *,
    view: SubsetView | None,
    mask: np.ndarray | None,
    written: dict[str, pd.DataFrame],
    keep: bool,
) -> None:
    if view is not None:
        if mask is not None and _write_view(path, name, view, data, mask):
            return
        logger.info(
            "layer %s written as a table: not the rows of %s where %s = %r",
            name, view.base, view.column, view.value,
        )  # fmt: skip
    _write_layer(data, path, name)
    if keep:
        written[name] = data


#: A run's output is written by two processes when its largest table layer has at least
#: this many rows and the other table layers together at least ``_OFFLOAD_MIN_REST``
#: (below that, the fork and the merge cost more than they save).
_OFFLOAD_MIN_ROWS = 200_000
_OFFLOAD_MIN_REST = 100_000


def _offloaded_layer(
    layers: Mapping[str, pd.DataFrame], views: Mapping[str, SubsetView]
) -> str | None:
    """The layer a child process should write (the most cells), or None to write alone."""
    tables = {n: f for n, f in layers.items() if n not in views}
    if len(tables) < 2:
        return None
    name = max(tables, key=lambda n: len(tables[n]) * max(tables[n].shape[1], 1))
    rest = sum(len(f) for n, f in tables.items() if n != name)
    if len(tables[name]) < _OFFLOAD_MIN_ROWS or rest < _OFFLOAD_MIN_REST:
        return None
    return name


def _remove(path: Path) -> None:
    """Delete ``path`` and the temporary R-tree databases GDAL keeps beside it while writing.

    (GDAL ≥ 3.7 builds a layer's R-tree in ``<file>.tmp_rtree_<layer>.db``; a writer
    stopped midway leaves it behind.)
    """
    path.unlink(missing_ok=True)
    for leftover in path.parent.glob(glob.escape(path.name) + ".tmp_rtree_*"):
        leftover.unlink(missing_ok=True)


def _write_two_processes(
    layers: Mapping[str, pd.DataFrame], tmp: Path, views: Mapping[str, SubsetView], offload: str
) -> bool:
    """Write ``layers`` into ``tmp`` as :func:`write_geopackage` does, with a second process.

    A forked child writes layer ``offload`` into ``tmp`` while this process writes the
    other tables into a side file (GDAL holds the GIL while it writes: threads cannot
    share the work). The side file's tables are then merged into ``tmp``, the views are
    created (their bases are all in ``tmp`` by then; a view that precedes its base in
    ``layers`` is a table, as when written alone), and ``gpkg_contents`` is put in the
    order of ``layers``. At 1,000,000 parcels the export took 11.4–13.1 s against
    18.8–24.8 s in one process (docs/BENCHMARKS.md). Should the merge meet anything it
    does not copy, this process writes those layers into ``tmp`` itself; should the child
    die (killed for memory, say), it writes the child's layer. Returns False, with
    nothing written, when no child process can be started.
    """
    side = tmp.with_name(f"{tmp.stem}-side{tmp.suffix}")
    _remove(side)
    position = {name: i for i, name in enumerate(layers)}
    written: dict[str, pd.DataFrame] = {}
    bases = {v.base for v in views.values()}
    data = prepare_for_gpkg(layers[offload], arrow=True)
    if offload in bases:
        written[offload] = data
    on_side: list[str] = []
    try:
        try:
            child = ForkedCall(
                lambda: _write_layer(data, tmp, offload), label=f"writing layer {offload}"
            )
        except OSError as exc:  # no memory or process slot for a child
            logger.info("no child process (%s): writing in one process", exc)
            return False
        try:
            for name, frame in layers.items():
                if name == offload or name in views:
                    continue  # views once their base is in ``tmp``
                _write_one(name, frame, side, written=written, keep=name in bases)
                on_side.append(name)
            # while the child writes: each view's rows (a view of a view waits for its base)
            later = [n for n in layers if n in views]
            masks = [
                None
                if views[n].base in views
                else _prepare(
                    layers[n],
                    views[n],
                    {b: d for b, d in written.items() if position[b] < position[n]},
                )
                for n in later
            ]
            try:
                child.result()
            except ChildProcessError as exc:
                logger.warning("%s; writing layer %s in this process", exc, offload)
                _remove(tmp)
                _write_layer(data, tmp, offload)
        except BaseException:
            child.kill()  # (nothing left to stop once its result is in)
            raise
        if on_side:
            try:
                merge_layers(side, tmp, on_side)
            except MergeUnsupported as exc:
                logger.info("side file not merged (%s): writing its layers again", exc)
                for name in on_side:
                    _write_one(name, layers[name], tmp, written={})
        for name, planned in zip(later, masks, strict=True):
            # as when written alone: only a base written before the view makes it one
            earlier = {b: d for b, d in written.items() if position[b] < position[name]}
            data, mask = planned or _prepare(layers[name], views[name], earlier)
            _write_prepared(name, data, tmp, view=views[name], mask=mask, written=earlier,
                            keep=name in bases)  # fmt: skip
            written.update(earlier)  # a view written as a table may be a base itself
        order_layers(tmp, list(layers))
    finally:
        _remove(side)
    return True


def _write_layer(data: pd.DataFrame, path: Path, name: str) -> None:
    """Append one prepared layer to the GeoPackage at ``path`` through pyogrio's Arrow path."""
    if not isinstance(data, gpd.GeoDataFrame) and data.shape[1] == 0:
        data = pd.DataFrame({"empty": pd.Series(dtype=object)})
    layer = _arrow_layer(data)
    if layer is not None:
        write_arrow(
            layer.reader(),
            path,
            layer=name,
            driver="GPKG",
            geometry_name=layer.geometry_name,
            geometry_type=layer.geometry_type,
            crs=layer.crs,
            **_GPKG_OPTIONS,
        )
    elif isinstance(data, gpd.GeoDataFrame):
        pyogrio.write_dataframe(
            data,
            path,
            layer=name,
            driver="GPKG",
            use_arrow=True,
            promote_to_multi=_has_mixed_polygons(data),
            **_GPKG_OPTIONS,
        )
    else:
        pyogrio.write_dataframe(
            data, path, layer=name, driver="GPKG", use_arrow=True, **_GPKG_OPTIONS
        )


def _subset_mask(frame: pd.DataFrame, base: pd.DataFrame, view: SubsetView) -> np.ndarray | None:
    """The rows of ``base`` where ``view.column == view.value``, if ``frame`` is exactly them.

    Both frames as :func:`prepare_for_gpkg` gives them to GDAL. Same rows in the same order,
    every column of ``frame`` a column of ``base`` with equal values and dtype (geometries
    compared coordinate by coordinate, same CRS). The tested column must hold what SQLite
    compares as pandas does: booleans for a bool value, integers for an int, text for a
    str. None when any of this fails, or when no row is selected (GDAL does not take
    ``OGC_FID`` as the feature id of an empty view). Vectorised: about 0.3 s for 650,000
    of 1,000,000 polygons with 20 columns.
    """
    value = view.value
    if view.column not in base.columns or not set(frame.columns) <= set(base.columns):
        return None
    if isinstance(frame, gpd.GeoDataFrame):
        # a spatial view: the base's one geometry column, under its name, in its CRS
        if not isinstance(base, gpd.GeoDataFrame) or frame.geometry.name != base.geometry.name:
            return None
        if frame.crs != base.crs:
            return None
    elif (frame.dtypes == "geometry").any():
        return None  # an attribute view has no geometry
    col = base[view.column]
    if isinstance(value, bool):
        ok = col.dtype == np.bool_
    elif isinstance(value, int):
        ok = col.dtype.kind in "iu"
    elif isinstance(value, str):
        ok = isinstance(col.dtype, pd.StringDtype)
    else:
        ok = False
    if not ok:
        return None
    mask = np.asarray(col.eq(value).fillna(False), dtype=bool)
    n = int(mask.sum())
    if n == 0 or n != len(frame):
        return None
    for name in frame.columns:
        a, b = frame[name], base[name]
        if a.dtype != b.dtype:
            return None
        if isinstance(a.dtype, gpd.array.GeometryDtype):
            x = np.asarray(a.array, dtype=object)
            y = np.asarray(b.array, dtype=object)[mask]
            missing = shapely.is_missing(x)
            if not np.array_equal(missing, shapely.is_missing(y)):
                return None
            if not shapely.equals_identical(x[~missing], y[~missing]).all():
                return None
        elif not a.reset_index(drop=True).equals(b[mask].reset_index(drop=True)):
            return None
    return mask


def _write_view(
    path: Path, name: str, view: SubsetView, frame: pd.DataFrame, mask: np.ndarray
) -> bool:
    """Create layer ``name`` as a view selecting ``frame``'s rows and columns of ``view.base``.

    Registered in ``gpkg_contents`` (and ``gpkg_geometry_columns``) as GDAL's GeoPackage
    driver documents for spatial views: the base table's feature id as ``OGC_FID``, its
    geometry column under its own name. In one transaction that is rolled back, leaving
    nothing, when the base table lacks a column or when the view's feature ids are not
    those of the ``mask`` rows (the base's rows are numbered from 1 in order); the caller
    then writes a table. Returns whether the view was created.
    """

    def quote(ident: str) -> str:
        return '"' + ident.replace('"', '""') + '"'

    value = view.value
    literal = (
        str(int(value)) if isinstance(value, (bool, int)) else "'" + value.replace("'", "''") + "'"
    )
    con = connect_temporary(path)  # (the temporary file of write_geopackage)
    try:
        info = con.execute(f"PRAGMA table_info({quote(view.base)})").fetchall()
        table_cols = {row[1] for row in info}
        fid = [row[1] for row in info if row[5]]
        geom = con.execute(
            "SELECT column_name, geometry_type_name, srs_id, z, m FROM gpkg_geometry_columns "
            "WHERE table_name = ?",
            (view.base,),
        ).fetchone()
        is_geo = isinstance(frame, gpd.GeoDataFrame)
        columns = [c for c in frame.columns if not (is_geo and c == frame.geometry.name)]
        if (
            len(fid) != 1
            or fid[0] in columns
            or (is_geo and geom is None)
            or not {*columns, view.column} <= table_cols
        ):
            return False
        select = [f"{quote(fid[0])} AS OGC_FID"]
        select += [quote(geom[0])] if is_geo else []
        select += [quote(c) for c in columns]
        stamp = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        con.execute("BEGIN")
        con.execute(
            f"CREATE VIEW {quote(name)} AS SELECT {', '.join(select)} "
            f"FROM {quote(view.base)} WHERE {quote(view.column)} = {literal} "
            f"ORDER BY {quote(fid[0])}"
        )
        if is_geo:
            bounds: list[float | None] = [None] * 4
            if not frame.geometry.is_empty.all():
                bounds = [float(v) for v in frame.total_bounds]
            con.execute(
                "INSERT INTO gpkg_contents (table_name, data_type, identifier, last_change, "
                f"min_x, min_y, max_x, max_y, srs_id) VALUES (?, 'features', ?, {stamp}, "
                "?, ?, ?, ?, ?)",
                (name, name, *bounds, geom[2]),
            )
            con.execute(
                "INSERT INTO gpkg_geometry_columns (table_name, column_name, "
                "geometry_type_name, srs_id, z, m) VALUES (?, ?, ?, ?, ?, ?)",
                (name, *geom),
            )
        else:
            con.execute(
                "INSERT INTO gpkg_contents (table_name, data_type, identifier, last_change) "
                f"VALUES (?, 'attributes', ?, {stamp})",
                (name, name),
            )
        # the rows SQLite selects are the rows checked in pandas: count, sum and a
        # multiplicative hash of their feature ids
        ids = np.flatnonzero(mask) + 1
        want = (len(ids), int(ids.sum()), int((ids * 40503 % 65521).sum()))
        got = con.execute(
            f"SELECT count(*), sum(OGC_FID), sum(OGC_FID * 40503 % 65521) FROM {quote(name)}"
        ).fetchone()
        if tuple(got) != want:
            con.execute("ROLLBACK")
            return False
        con.execute("COMMIT")
    finally:
        con.close()
    return True


#: Rows per Arrow record batch handed to GDAL. A layer is converted one batch at a time,
#: as GDAL asks for it: for 1,000,000 parcels of 56 columns the whole table (WKB included)
#: added 0.97 GB to the peak, batches of this size 0.28 GB (and 20,000 rows 0.14 GB).
_BATCH_ROWS = 100_000


class _ArrowLayer(NamedTuple):
    """What :func:`pyogrio.raw.write_arrow` needs to write one layer."""

    frame: pd.DataFrame  # the columns as pandas has them, geometry as shapely objects
    schema: pa.Schema  # the schema of pyogrio's table for the layer
    geometries: np.ndarray | None  # the layer's geometries (promoted to multi where needed)
    geometry_name: str | None
    geometry_type: str | None
    crs: str | None

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The layer as Arrow record batches of :data:`_BATCH_ROWS` rows."""
        for start in range(0, max(len(self.frame), 1), _BATCH_ROWS):
            part = self.frame.iloc[start : start + _BATCH_ROWS]
            if self.geometries is not None and self.geometry_name is not None:
                wkb = shapely.to_wkb(self.geometries[start : start + _BATCH_ROWS], hex=False)
                part = part.assign(**{self.geometry_name: wkb})
            # (a Table: pandas text columns may hold chunked Arrow arrays)
            table = pa.Table.from_pandas(part, schema=self.schema, preserve_index=False)
            yield from table.combine_chunks().to_batches()

    def reader(self) -> pa.RecordBatchReader:
        """A stream of :meth:`batches`: each is built when GDAL asks for it."""
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())


def _arrow_layer(data: pd.DataFrame) -> _ArrowLayer | None:
    """The Arrow data and layer settings ``pyogrio.write_dataframe`` would build, or None.

    Streams exactly the table of pyogrio's Arrow path (``use_arrow=True``, with
    ``promote_to_multi`` as :func:`write_geopackage` passes it) for the layers a run
    writes: 2D geometries of one type, or Polygons with MultiPolygons (promoted), and text
    or empty object columns. It takes the layer geometry type from one pass over the
    shapely type ids, where pyogrio derives it from per-row type names and missing / empty
    / Z masks (about 0.3 s per million polygons). Returns None for any other layer (no
    rows, Z coordinates, other mixes of types, no or several geometry columns, object
    columns of other values, datetimes with time zones), which goes through
    ``pyogrio.write_dataframe`` as before.
    """
    for col, dtype in data.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype) or (
            dtype == "object"
            and pd.api.types.infer_dtype(data[col], skipna=True) not in ("string", "empty")
        ):
            return None  # pyogrio may convert such columns to text first
    geometry_columns = data.columns[data.dtypes == "geometry"]
    geometry_name = geometry_type = crs = None
    geoms = None
    frame = pd.DataFrame(data, copy=False)  # shares the columns (copy on write)
    if isinstance(data, gpd.GeoDataFrame) or len(geometry_columns):
        if len(geometry_columns) != 1 or data.empty:
            return None
        geometry_name = geometry_columns[0]
        series = data[geometry_name]
        geoms = np.asarray(series.array, dtype=object)
        ids = shapely.get_type_id(geoms)
        kinds = set(np.unique(ids).tolist()) - {-1}
        if shapely.has_z(geoms).any():
            return None
        if len(kinds) == 1 and next(iter(kinds)) in _TYPE_NAMES:
            geometry_type = _TYPE_NAMES[next(iter(kinds))]
        elif kinds == {_POLYGON, _MULTIPOLYGON}:
            geometry_type = "MultiPolygon"
            single = ids == _POLYGON
            geoms = geoms.copy()  # the layer's own geometries stay as they are
            geoms[single] = shapely.multipolygons(np.atleast_2d(geoms[single]), axis=0)
        else:
            return None
        if series.crs:
            epsg = series.crs.to_epsg()
            crs = f"EPSG:{epsg}" if epsg else series.crs.to_wkt("WKT1_GDAL")
        # the schema as pyarrow infers it for the WKB column (bytes → binary), without
        # encoding every geometry: the bytes are made batch by batch
        frame[geometry_name] = np.full(len(frame), b"", dtype=object)
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(schema):
        # GDAL has no Arrow null type: all-missing columns are written as text
        if pa.types.is_null(field.type):
            schema = schema.set(i, field.with_type(pa.string()))
        elif pa.types.is_dictionary(field.type) and pa.types.is_null(field.type.value_type):
            schema = schema.set(
                i, field.with_type(pa.dictionary(field.type.index_type, pa.string()))
            )
    return _ArrowLayer(frame, schema, geoms, geometry_name, geometry_type, crs)


@contextmanager
def _gdal_config(options: Mapping[str, str]) -> Iterator[None]:
    """Set GDAL configuration options for the ``with`` block, then restore the old values."""
    saved = {key: pyogrio.get_gdal_config_option(key) for key in options}
    pyogrio.set_gdal_config_options(dict(options))
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(saved)


def _fsync(path: Path) -> None:
    """Flush ``path`` to disk, so that the rename never publishes a half-written file."""
    # Windows flushes only a handle opened for writing; POSIX needs no write access
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
