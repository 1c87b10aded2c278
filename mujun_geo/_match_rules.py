"""The link rules of :mod:`mujun_geo.matching` (private; see that module for the rules table).

Each rule works on positional arrays: ``fi`` indexes the enterprises, ``pj`` the parcels, and
returns a *link frame* with columns :data:`LINK_COLS`. Everything is vectorised: pandas merges
for codes and names, rapidfuzz ``cdist`` per county block for fuzzy names, a grid scan of the
parcel envelopes (:mod:`mujun_geo._envelope`) and GEOS tests of its pairs for the points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process

import geopandas as gpd
import shapely
from shapely import STRtree

from mujun_geo._background import NICE
from mujun_geo._envelope import box_points
from mujun_geo._errors import SchemaError
from mujun_geo._validate import Problems
from mujun_geo.buildings import _THREAD_MIN, _THREADS, _threaded, _threaded_by_owner
from mujun_geo.names import _WHITESPACE, _nfkc, normalize_names
from mujun_geo.names import _arrow as _arrow_text

__all__ = [
    "LINK_COLS",
    "ParcelIndex",
    "SpatialCandidates",
    "clean_codes",
    "code_rule",
    "combine",
    "join_groups",
    "exact_name_rule",
    "fuzzy_rule",
    "lex_order",
    "marks",
    "nearest_rule",
    "one_per_point",
    "pairs",
    "prepare_firms",
    "repeated_text",
    "prepare_parcels",
    "region_keys",
    "sort_rows",
    "spatial_candidates",
    "split_rejected",
    "text_rank",
    "within_rule",
]

LINK_COLS = ["fi", "pj", "method", "confidence", "evidence", "review"]
RANK = {"manual": 0, "credit_code": 1, "name": 2, "within": 3, "nearest": 4}
_SEP = r"[、;；,，]"  # several holders in one 权利人 field (共有)
# r"\s+" with Python's whitespace spelled out, so that pandas runs it in pyarrow (RE2)
_SPACES = f"[{_WHITESPACE}]+"
_FUZZY_BLOCK = 4_000_000  # score cells per rapidfuzz call (float32: 16 MB)


def clean_codes(codes: pd.Series) -> pd.Series:
    """Credit codes as compared: NFKC, upper case, no spaces; blank becomes ``<NA>``.

    Examples
    --------
    >>> import pandas as pd
    >>> clean_codes(pd.Series([" ９１３３ab ", ""])).tolist()
    ['9133AB', <NA>]
    """
    s = _nfkc(codes.astype("string")).str.upper()
    s = s.str.replace(_SPACES, "", regex=True)
    return s.mask(s.str.len() == 0)


def text_col(df: pd.DataFrame, name: str) -> pd.Series:
    """Column `name` as stripped strings (``<NA>`` if blank or absent), positional index."""
    if name in df.columns:
        s = df[name].astype("string").str.strip()
        s = s.mask(s.str.len() == 0)
    else:
        s = pd.Series(pd.NA, index=df.index, dtype="string")
    return s.reset_index(drop=True)


def pairs(fi: object, pj: object, n_p: int) -> np.ndarray:
    """Encode (firm, parcel) positions as one int64 for fast membership tests."""
    return np.asarray(fi, dtype=np.int64) * max(n_p, 1) + np.asarray(pj, dtype=np.int64)


def join_groups(values: pd.Series, by: np.ndarray, sep: str = ";") -> pd.Series:
    """`sep`-join `values` per group `by`, in the given order; index = sorted group labels.

    Examples
    --------
    >>> import pandas as pd
    >>> join_groups(pd.Series(["b", "a", "c"]), [2, 1, 2]).to_dict()
    {1: 'a', 2: 'b;c'}
    """
    by = np.asarray(by)
    order = np.argsort(by, kind="stable")
    vals, keys = values.to_numpy(dtype=object)[order], by[order]
    labels, start = np.unique(keys, return_index=True)
    end = np.append(start[1:], len(keys))
    out = vals[start].copy()  # groups of one (most firms, most parcels) need no join
    size = end - start
    multi = np.flatnonzero(size > 1)
    # a + sep + b (+ sep + c …) over all groups at once, one member position at a time
    for m in range(1, int(size.max(initial=1))):
        multi = multi[size[multi] > m]
        out[multi] = out[multi] + sep + vals[start[multi] + m]
    return pd.Series(out, index=labels, dtype=object)


def take_text(values: pd.Series, positions: np.ndarray) -> pd.Series:
    """``values`` (text) at ``positions`` as a ``str`` Series, taken in Arrow (no Python strings)."""
    return pd.Series(values.array.take(positions)).astype("str").reset_index(drop=True)


def lex_order(major: np.ndarray, minor: np.ndarray, n_minor: int) -> np.ndarray:
    """The order of ``np.lexsort((minor, major))`` for integers ``0 <= minor < n_minor``.

    One stable sort of the combined key ``major * n_minor + minor``: half the time of
    ``np.lexsort`` on 500,000 rows, and a small fraction of it on keys already in order
    (timsort finds the runs). Falls back to ``np.lexsort`` where the key could overflow.

    Examples
    --------
    >>> lex_order(np.array([2, 0, 2, 0]), np.array([1, 3, 0, 3]), 4).tolist()
    [1, 3, 2, 0]
    >>> lex_order(np.array([1, -1, 1]), np.array([5, 0, 2]), 4).tolist()  # np.lexsort's
    [1, 2, 0]
    """
    major, minor = np.asarray(major), np.asarray(minor)
    if not len(major):
        return np.zeros(0, dtype=np.intp)
    lo, hi = int(major.min()), int(major.max())
    if lo < 0 or minor.min() < 0 or minor.max() >= n_minor or (hi + 1) * n_minor >= 2**62:
        return np.lexsort((minor, major))
    return np.argsort(major.astype(np.int64) * n_minor + minor, kind="stable")


def repeated_text(values: np.ndarray) -> pd.arrays.ArrowStringArray:
    """``pd.array(values, dtype="str")`` for an object array of a few distinct strings.

    Each distinct string is encoded once and the column is an Arrow take of them (a note
    column of 500,000 rows and a handful of texts: 0.13 s → 0.03 s). Missing values stay
    missing.

    Examples
    --------
    >>> repeated_text(np.array(["甲", "", "甲", None], dtype=object)).tolist()
    ['甲', '', '甲', nan]
    """
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    text = pa.array(np.asarray(uniques, dtype=object), type=pa.large_string())
    return pd.array(text.take(pa.array(codes, mask=codes < 0)), dtype="str")


def marks(positions: object, n: int) -> np.ndarray:
    """``np.isin(np.arange(n), positions)`` for positions in ``0 … n-1``, without a sort.

    Examples
    --------
    >>> marks([3, 0, 3], 5).tolist()
    [True, False, False, True, False]
    """
    out = np.zeros(n, dtype=bool)
    out[np.asarray(positions, dtype=np.int64)] = True
    return out


def sorted_isin(keys: np.ndarray, among: np.ndarray) -> np.ndarray:
    """``np.isin(keys, among)`` by binary search: `among` sorted once if it is not sorted.

    Faster than ``np.isin`` (which sorts keys and values together) when `among` is
    sorted already or `keys` are few.

    Examples
    --------
    >>> sorted_isin(np.array([3, 1, 7]), np.array([7, 3, 5])).tolist()
    [True, False, True]
    """
    if len(among) > 1 and (among[1:] < among[:-1]).any():
        among = np.sort(among)
    if not len(among):
        return np.zeros(len(keys), dtype=bool)
    at = np.searchsorted(among, keys).clip(max=len(among) - 1)
    return among[at] == keys


def join_sorted(values: pd.Series, by: np.ndarray, n: int, sep: str = ";") -> pd.Series:
    """`sep`-join text `values` per group ``by`` (sorted integers 0 … n-1); "" for no member.

    :func:`join_groups` for the common case of groups already in order, done in Arrow
    (no Python strings): the result has one row per group label 0 … n-1.

    Examples
    --------
    >>> join_sorted(pd.Series(["a", "b", "c"]), np.array([0, 0, 2]), 4).tolist()
    ['a;b', '', 'c', '']
    """
    text = _arrow_text(values)
    offsets = np.r_[0, np.cumsum(np.bincount(np.asarray(by, dtype=np.int64), minlength=n))]
    lists = pa.ListArray.from_arrays(pa.array(offsets[: n + 1], pa.int32()), text)
    return pd.Series(pc.binary_join(lists, pa.scalar(sep, text.type)), dtype="str")


def sort_rows(df: pd.DataFrame, by: list[str], ascending: bool | list[bool] = True) -> pd.DataFrame:
    """``df.sort_values(by, ascending=ascending)`` for two or more keys, text keys ranked by Arrow.

    pandas orders a text key through a ``Categorical`` (slow on a million strings); here
    Arrow ranks it (UTF-8 byte order is code-point order, missing last, ties dense) and one
    stable ``np.lexsort`` orders the rows, as pandas does for several keys: the same order.

    Examples
    --------
    >>> df = pd.DataFrame({"a": [2, 1, 2, 1], "b": ["x", "y", None, "x"]})
    >>> sort_rows(df, ["a", "b"]).index.tolist()
    [3, 1, 0, 2]
    >>> sort_rows(df, ["a", "b"], [False, False]).index.tolist()
    [0, 2, 1, 3]
    """
    orders = [ascending] * len(by) if isinstance(ascending, bool) else list(ascending)
    if len(by) < 2 or len(orders) != len(by):
        return df.sort_values(by, ascending=ascending)
    labels = []
    for col, asc in zip(reversed(by), reversed(orders)):
        values = df[col]
        arr = values.to_numpy() if isinstance(values.dtype, np.dtype) else None
        if arr is not None and arr.dtype.kind in "fiub":  # pandas' own numeric path
            labels.append(arr if asc else (-arr if arr.dtype.kind == "f" else ~arr))
            continue
        codes = text_rank(values, ascending=asc)
        if codes is None:
            return df.sort_values(by, ascending=ascending)
        labels.append(codes)
    return df.iloc[np.lexsort(labels)]


def text_rank(values: pd.Series, *, ascending: bool = True) -> np.ndarray | None:
    """Dense ranks 0 … n-1 of text values in code-point order, missing values last (n).

    Ranks order rows as ``sort_values`` orders the text, so a sort by several keys can be one
    ``np.lexsort`` of integers. None when the values are not text.

    Examples
    --------
    >>> text_rank(pd.Series(["b", None, "a", "b"])).tolist()
    [1, 2, 0, 1]
    """
    try:
        text = pa.array(values, from_pandas=True)  # Arrow-backed strings: no copy
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if pa.types.is_null(text.type):  # nothing but missing values: all tied
        return np.zeros(len(values), dtype=np.int64)
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        return None
    null = np.asarray(text.is_null())
    codes = pc.rank(text, tiebreaker="dense").to_numpy(zero_copy_only=False)
    codes = codes.astype(np.int64) - 1  # 0 … n-1 for the n distinct values
    n = int(codes[~null].max()) + 1 if (~null).any() else 0
    codes[null] = n  # missing values last, as pandas' na_position="last"
    if not ascending:
        codes = np.where(null, codes, n - codes - 1)
    return codes


def link_frame(fi, pj, method: str, confidence, evidence, review="") -> pd.DataFrame:
    """Build a link frame; scalars are broadcast, text Series taken by position."""
    fi = np.asarray(fi, dtype=np.int64)
    df = pd.DataFrame({"fi": fi, "pj": np.asarray(pj, dtype=np.int64)})
    df["method"] = method
    df["confidence"] = np.broadcast_to(np.asarray(confidence, dtype=float), len(fi)).copy()
    for col, val in (("evidence", evidence), ("review", review)):
        if isinstance(val, pd.Series):  # text already in Arrow: no Python strings
            df[col] = val.array
            continue
        arr = np.asarray(val, dtype=object)
        df[col] = np.broadcast_to(arr, len(fi)).copy() if arr.ndim == 0 else arr
    return df[LINK_COLS]


def split_rejected(links: pd.DataFrame, rejected: np.ndarray, n_p: int) -> tuple:
    """Split a link frame into (kept, rejected-by-override) parts."""
    hit = np.isin(pairs(links["fi"], links["pj"], n_p), rejected)
    return links[~hit].reset_index(drop=True), links[hit].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# inputs


def prepare_firms(
    enterprises: pd.DataFrame, problems: Problems, region_names: Mapping[str, str] | None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Positional firm table (code, key, region, eligible, rejected, has_point) and points."""
    firms, pts = firm_table(enterprises, problems)
    add_firm_keys(firms, enterprises, region_names)
    return firms, pts


def add_firm_keys(
    firms: pd.DataFrame, enterprises: pd.DataFrame, region_names: Mapping[str, str] | None
) -> None:
    """Add the normalised name ``key`` to the table of :func:`firm_table` (in place)."""
    names = text_col(enterprises, "name")
    firms.insert(1, "key", normalize_names(names, firms["region"], region_names=region_names))


def firm_table(enterprises: pd.DataFrame, problems: Problems) -> tuple[pd.DataFrame, np.ndarray]:
    """Positional firm table without name keys (code, region, eligible, …) and points."""
    n = len(enterprises)
    code = clean_codes(enterprises["credit_code"]).reset_index(drop=True)
    region = text_col(enterprises, "region_code")
    names = text_col(enterprises, "name")
    rejected = (
        enterprises["rejected"].eq(True).to_numpy(dtype=bool)
        if "rejected" in enterprises.columns
        else np.zeros(n, dtype=bool)
    )
    if isinstance(enterprises, gpd.GeoDataFrame):
        pts = np.asarray(enterprises.geometry.values, dtype=object)
    else:
        pts = np.full(n, None, dtype=object)
    has_point = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    bad = has_point & (shapely.get_type_id(pts) != 0) & ~rejected
    if bad.any():
        msg = (
            f"`enterprises` geometries must be points; {int(bad.sum())} are not, index "
            f"{list(enterprises.index[bad][:10])}. Use `.representative_point()` or the address."
        )
        raise SchemaError(msg)
    eligible = ~rejected & code.notna().to_numpy()
    missing = ~rejected & ~eligible
    src = enterprises["src_row"].to_numpy() if "src_row" in enterprises else np.arange(1, n + 1)
    problems.add(
        "enterprises",
        src[missing],
        names[missing],
        "missing_code",
        "no credit_code: cannot be linked (links are keyed by credit_code)",
    )
    dup = code[eligible].duplicated(keep=False)
    if dup.any():
        codes = sorted(set(code[eligible][dup]))
        msg = (
            f"`enterprises` has duplicate credit_code values {codes[:10]}: match one year at a "
            "time (filter `year`) or mark the duplicate rows `rejected`"
        )
        raise SchemaError(msg)
    firms = pd.DataFrame(
        {
            "code": code,
            "region": region,
            "eligible": eligible,
            "rejected": rejected,
            "has_point": has_point,
        }
    )
    return firms, pts


def _split_explode(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """``values.str.split(_SEP)`` exploded: (row position, part) in row then part order.

    Split in Arrow (RE2, no Python strings); missing values stay one missing part. The parts
    are ``string`` dtype.

    Examples
    --------
    >>> pj, parts = _split_explode(pd.Series(["甲、乙", None, "丙"], dtype="string"))
    >>> pj.tolist(), parts.tolist()
    ([0, 0, 1, 2], ['甲', '乙', <NA>, '丙'])
    """
    text = _arrow_text(values.astype("string"))
    if not len(text):
        return np.zeros(0, dtype=np.int64), pd.Series([], dtype="string")
    lists = pc.split_pattern_regex(pc.fill_null(text, ""), _SEP)
    pj = np.asarray(pc.list_parent_indices(lists)).astype(np.int64)
    parts = pc.list_flatten(lists)
    # a missing value became "" (one part): missing again
    parts = pc.if_else(text.is_null().take(pa.array(pj)), pa.scalar(None, parts.type), parts)
    return pj, pd.Series(parts, dtype="string")


def prepare_parcels(
    parcels: gpd.GeoDataFrame,
    industrial_codes: Sequence[str],
    problems: Problems,
    region_names: Mapping[str, str] | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Positional parcel table, exploded holder names (with keys) and holder codes."""
    pinfo = parcel_table(parcels, industrial_codes, problems)
    holders, hcodes = holder_tables(parcels, pinfo, region_names)
    return pinfo, holders, hcodes


def parcel_table(
    parcels: gpd.GeoDataFrame, industrial_codes: Sequence[str], problems: Problems
) -> pd.DataFrame:
    """Positional parcel table (pid, land_use, region, industrial, has_geom, area, holder)."""
    pid = text_col(parcels, "parcel_id")
    bad = pid.isna() | pid.duplicated(keep=False)
    if bad.any():
        msg = (
            "`parcels.parcel_id` must be present and unique; offending values "
            f"{sorted(set(pid[bad].fillna('<missing>')))[:10]}"
        )
        raise SchemaError(msg)
    geom = np.asarray(parcels.geometry.values, dtype=object)
    has_geom = ~(shapely.is_missing(geom) | shapely.is_empty(geom))
    not_poly = has_geom & ~np.isin(shapely.get_type_id(geom), [3, 6])
    if not_poly.any():
        bad = list(parcels.index[not_poly][:10])
        msg = f"`parcels` geometries must be polygons; not so at index {bad}"
        raise SchemaError(msg)
    src = parcels["src_row"].to_numpy() if "src_row" in parcels else np.arange(1, len(pid) + 1)
    problems.add(
        "parcels",
        src[~has_geom],
        pid[~has_geom],
        "missing_geometry",
        "parcel without geometry: area 0, only code/name links",
    )
    land_use = text_col(parcels, "land_use")
    region = text_col(parcels, "region_code")
    hname, hcode = text_col(parcels, "holder_name"), text_col(parcels, "holder_code")
    pinfo = pd.DataFrame(
        {
            "pid": pid,
            "land_use": land_use,
            "region": region,
            "industrial": land_use.isin([str(c).strip() for c in industrial_codes]).to_numpy(
                dtype=bool, na_value=False
            ),
            "has_geom": has_geom,
            "area": np.where(has_geom, np.nan_to_num(shapely.area(geom)), 0.0),
            "holder": hname.fillna(hcode),
        }
    )
    return pinfo


def holder_tables(
    parcels: gpd.GeoDataFrame, pinfo: pd.DataFrame, region_names: Mapping[str, str] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exploded holder names with keys, and holder codes; adds ``has_code`` to `pinfo`."""
    region = pinfo["region"]
    hname, hcode = text_col(parcels, "holder_name"), text_col(parcels, "holder_code")
    pj, parts = _split_explode(hname)
    h = pd.DataFrame({"pj": pj, "hname": parts, "hregion": region.iloc[pj].reset_index(drop=True)})
    h["hname"] = h["hname"].astype("string").str.strip()
    h["hkey"] = normalize_names(h["hname"], h["hregion"], region_names=region_names)
    pj, parts = _split_explode(hcode)
    c = pd.DataFrame({"pj": pj, "hcode": parts})
    c["hcode"] = clean_codes(c["hcode"])
    c = c.dropna(subset=["hcode"]).drop_duplicates()
    pinfo["has_code"] = marks(c["pj"], len(pinfo))
    h = h.dropna(subset=["hkey"])
    # drop repeated (parcel, key) pairs, first kept: integer pairs instead of a text hash
    key = pc.dictionary_encode(_arrow_text(h["hkey"])).indices
    pair = h["pj"].to_numpy() * (int(pc.max(key).as_py() or 0) + 1) + np.asarray(key)
    h = h[~pd.Index(pair).duplicated()]
    h["has_code"] = pinfo["has_code"].to_numpy()[h["pj"]]
    return h.reset_index(drop=True), c.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# spatial queries


class ParcelIndex:
    """The spatial queries of the rules, over all parcels in memory.

    :mod:`mujun_geo.distributed` has the same attributes and methods over parcel partitions
    on a dask cluster; the rules and their tie-breaks stay here, so both engines agree.

    Parameters
    ----------
    parcels
        Parcel polygons (positions = ``pj``).
    pinfo
        Positional parcel table of :func:`prepare_parcels` (``industrial``, ``has_geom``).

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import box, points
    >>> p = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10)], crs=4549)
    >>> ix = ParcelIndex(p, pd.DataFrame({"industrial": [True, True], "has_geom": [True, True]}))
    >>> [a.tolist() for a in ix.covering(points([[10, 5]]))]  # on the shared edge: both
    [[0, 0], [0, 1]]
    >>> [a.tolist() for a in ix.nearest(points([[25, 5]]), 50.0)]  # (point, parcel, metres)
    [[0], [1], [5.0]]
    """

    #: ``floor_area(parcels, buildings)`` override for ``land_mode="floor_area"`` (None:
    #: :func:`mujun_geo._match_land.floor_area_by_occupant` in memory).
    floor_area = None
    #: Threads of the tree queries and distances (one while the name rules use a core).
    threads = _THREADS
    #: CPU priority steps below the main thread for the thread of :func:`spatial_candidates`
    #: (see :mod:`mujun_geo._background`).
    background_nice = NICE

    def __init__(self, parcels: gpd.GeoDataFrame, pinfo: pd.DataFrame) -> None:
        self.geoms = np.asarray(parcels.geometry.values, dtype=object)
        self._ind = np.flatnonzero(pinfo["industrial"].to_numpy() & pinfo["has_geom"].to_numpy())
        self._ind_geoms = self.geoms[self._ind]
        self._tree: STRtree | None = None  # industrial parcels; built when first needed
        self._bounds: np.ndarray | None = None  # of every parcel; worked out when first needed
        self.n_industrial = len(self._ind)

    def bounds(self) -> np.ndarray:
        """``shapely.bounds`` of every parcel (NaN for a missing one), kept for later calls."""
        if self._bounds is None:
            self._bounds = _threaded(shapely.bounds, self.geoms, threads=self.threads)
        return self._bounds

    def covering(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (point position, parcel position) pair where the parcel covers the point.

        Sorted by point, then parcel. The points inside each parcel's envelope come from a
        grid scan (:func:`mujun_geo._envelope.box_points`; at 1,000,000 parcels 0.14 s with
        the envelopes, against 0.33 s for a tree of the points queried with the parcels);
        then ``intersects_xy`` tests each pair, which for a point is ``covers`` (boundary
        included). Testing the pairs unprepared is as fast as the tree's ``covers``
        predicate on rectangles and 10–40 % faster on parcels of some 40 vertices, where
        preparing a polygon for its one or two points costs more than the test. Every step
        runs on :attr:`threads` threads.
        """
        pts = np.asarray(pts, dtype=object)
        if not len(pts):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        real = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        xy = shapely.get_coordinates(pts if real.all() else pts[real])
        if len(xy) != real.sum():  # a multipoint would shift every later position
            raise ValueError("ParcelIndex.covering takes single points")
        if not real.all():
            full = np.full((len(pts), 2), np.nan)  # NaN for a missing or empty point: no pairs
            full[real] = xy
            xy = full
        found = box_points(self.bounds(), xy[:, 0], xy[:, 1], threads=self.threads)
        assert found is not None  # no pair cap, always an answer
        pj, i = found
        # each parcel in one thread: a parcel the caller prepared builds its edge index on
        # first use, which two threads must not do at once
        hit = _threaded_by_owner(
            shapely.intersects_xy, pj, self.geoms[pj], xy[i], threads=self.threads
        )
        pj, i = pj[hit], i[hit]
        order = lex_order(i, pj, len(self.geoms))
        return i[order], pj[order]

    def nearest(self, pts: np.ndarray, max_distance: float | None) -> tuple:
        """Nearest industrial parcels, ties included: (point position, parcel position, m).

        Sorted by point, then parcel. Within a finite `max_distance` no parcel tree is
        built: a grid scan finds the points within `max_distance` of each industrial
        parcel's envelope, and the distances of those pairs decide (the same pairs and
        distances as ``query_nearest`` on a tree of the parcels, 0.3 s instead of 2.4 s at
        1,000,000 parcels). Without a limit the same search runs with growing reach
        (250 m, 500 m, 1 km, ...) on the points still without a parcel, while
        the pairs it would measure stay few; the rest go to ``query_nearest`` on a tree of
        the industrial parcels.
        """
        pts = np.asarray(pts, dtype=object)
        none = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, float)
        if not len(pts) or not self.n_industrial:
            return none
        # missing and empty points have no nearest parcel (as in query_nearest)
        valid = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        if not valid.all():
            at = np.flatnonzero(valid)
            i, pj, dist = self.nearest(pts[at], max_distance) if len(at) else none
            return at[i], pj, dist
        if max_distance is not None and np.isfinite(max_distance) and max_distance >= 0:
            found = self._within(pts, float(max_distance))
            assert found is not None  # no pair cap, always an answer
            i, k, dist = found
            return i, self._ind[k], dist
        parts = []
        todo = np.arange(len(pts))
        r, density = _FIRST_RADIUS, self._density()
        # passes while they pay: enough points left, a bounded reach, few pairs expected
        # (the estimate assumes evenly spread parcels; `_within` stops at the real count)
        while (
            len(todo) >= _PASS_MIN
            and r <= _MAX_RADIUS
            and len(todo) * density * (2 * r) ** 2 <= _MAX_PAIRS
        ):
            found = self._within(pts[todo], r, max_pairs=_MAX_PAIRS)
            if found is None:
                break
            i, k, dist = found
            parts.append((todo[i], k, dist))
            left = np.ones(len(todo), dtype=bool)
            left[i] = False
            todo, r = todo[left], 2 * r
        if len(todo):
            if self._tree is None:
                self._tree = STRtree(self._ind_geoms)
            ptree = self._tree
            q0, q1, dist = _blockwise(
                lambda g: ptree.query_nearest(g, return_distance=True, all_matches=True),
                ptree,
                pts[todo],
                with_distance=True,
                threads=self.threads,
            )
            parts.append((todo[q0], q1, dist))
        if not parts:
            return none
        i = np.concatenate([p[0] for p in parts])
        k = np.concatenate([p[1] for p in parts])
        dist = np.concatenate([p[2] for p in parts])
        order = lex_order(i, k, self.n_industrial)
        return i[order], self._ind[k[order]], dist[order]

    def _density(self) -> float:
        """Industrial parcels per square metre of their bounding box (at least one box)."""
        x0, y0, x1, y1 = shapely.total_bounds(self._ind_geoms)
        return self.n_industrial / max((x1 - x0) * (y1 - y0), 1.0)

    def _within(self, pts: np.ndarray, r: float, *, max_pairs: int | None = None) -> tuple | None:
        """(point, industrial position, m) of each point's nearest industrial parcels ≤ `r`.

        Ties included (they share one distance); sorted by point, then industrial position
        (the parcel order of the industrial subset follows the parcel order). With `max_pairs`,
        the candidate pairs are counted before any is written, and None is returned when
        there are more than that (clustered parcels), so memory stays bounded.
        """
        x, y = shapely.get_x(pts), shapely.get_y(pts)
        g = self._ind_geoms
        boxes = self.bounds()[self._ind]
        found = box_points(
            boxes, x, y, pad=r * _BOUND_SLACK, max_pairs=max_pairs, threads=self.threads
        )
        if found is None:
            return None
        k, i = found
        # A pair's distance is at least the point's distance to the parcel's envelope. GEOS
        # measures first, for each point, the pairs with the smallest such bound; then only
        # the pairs whose bound does not exceed that distance, since only they can be nearer
        # or tie (the slack keeps a pair whose bound and distance are 1 ulp apart). At 1M
        # parcels: 104,000 distances instead of 238,000 in the 50 m search, 16,000 instead
        # of 180,000 in the 250 m pass of the unlimited one.
        b = boxes[k]
        px, py = x[i], y[i]
        low = np.hypot(
            np.maximum(np.maximum(b[:, 0] - px, px - b[:, 2]), 0.0),
            np.maximum(np.maximum(b[:, 1] - py, py - b[:, 3]), 0.0),
        )
        near = np.flatnonzero(low <= r * _BOUND_SLACK)
        i, k, low = i[near], k[near], low[near]
        lowest = np.full(len(pts), np.inf)
        np.minimum.at(lowest, i, low)
        first = np.flatnonzero(low == lowest[i])
        dist = np.full(len(i), np.inf)
        dist[first] = _threaded(shapely.distance, pts[i[first]], g[k[first]], threads=self.threads)
        reach = np.full(len(pts), r)
        np.minimum.at(reach, i[first], dist[first])
        more = low <= reach[i] * _BOUND_SLACK
        more[first] = False
        rest = np.flatnonzero(more)
        if len(rest):
            dist[rest] = _threaded(shapely.distance, pts[i[rest]], g[k[rest]], threads=self.threads)
        ok = dist <= r
        i, k, dist = i[ok], k[ok], dist[ok]
        if not len(i):
            return i, k, dist
        # the pairs come parcel by parcel: a stable sort by point keeps each point's
        # parcels in order, and the kept ties share one distance (no sort on it needed)
        by_k = bool((np.diff(k) >= 0).all())
        order = np.argsort(i, kind="stable") if by_k else np.lexsort((k, i))
        i, k, dist = i[order], k[order], dist[order]
        starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
        best = np.minimum.reduceat(dist, starts)  # each point's smallest distance
        keep = dist == np.repeat(best, np.diff(np.r_[starts, len(i)]))
        return i[keep], k[keep], dist[keep]


#: First reach of the unlimited nearest search (m: envelopes grown by it); each pass × 2.
_FIRST_RADIUS = 250.0
#: A pass of the unlimited nearest search runs while it measures at most this many pairs,
#: has at least `_PASS_MIN` points and a reach of at most `_MAX_RADIUS` m (a pass scans
#: every industrial parcel's envelope: for few or far points the parcel tree is cheaper).
_MAX_PAIRS = 1_000_000
_PASS_MIN = 100
_MAX_RADIUS = 4_000.0
#: Relative slack of the envelope lower bound in :meth:`ParcelIndex._within`.
_BOUND_SLACK = 1.0 + 1e-9


def _blockwise(
    query, tree: STRtree, geoms: np.ndarray, *, with_distance: bool = False, threads: int = _THREADS
) -> tuple:
    """``query(geoms)`` of an STRtree in contiguous blocks on threads; same pairs, same order.

    ``query`` returns ``(query positions, tree positions)`` or, `with_distance`,
    ``((query positions, tree positions), distances)``; block offsets are added back.
    """
    n = len(geoms)
    if threads < 2 or n < _THREAD_MIN:
        parts, bounds = [query(geoms)], np.zeros(1, dtype=int)
    else:
        tree.query(geoms[:1])  # GEOS builds the tree on first use: before the threads share it
        bounds = np.linspace(0, n, threads + 1).astype(int)
        with ThreadPoolExecutor(threads, thread_name_prefix="mujun-strtree") as pool:
            parts = list(pool.map(lambda ij: query(geoms[ij[0] : ij[1]]), zip(bounds, bounds[1:])))
    if with_distance:
        q0 = np.concatenate([p[0][0] + b for p, b in zip(parts, bounds)])
        return q0, np.concatenate([p[0][1] for p in parts]), np.concatenate([p[1] for p in parts])
    q0 = np.concatenate([p[0] + b for p, b in zip(parts, bounds)])
    return q0, np.concatenate([p[1] for p in parts])


# ---------------------------------------------------------------------------------------------
# rules


def code_rule(firms: pd.DataFrame, hcodes: pd.DataFrame) -> pd.DataFrame:
    """Parcel holder_code equals firm credit_code."""
    f = firms.loc[firms["eligible"], ["code"]].rename_axis("fi").reset_index()
    m = hcodes.merge(f, left_on="hcode", right_on="code").drop_duplicates(["fi", "pj"])
    return link_frame(
        m["fi"], m["pj"], "credit_code", 1.0, ("信用代码相同: " + m["code"]).to_numpy()
    )


def _join_on_text(
    left: pd.DataFrame, left_on: str, right: pd.DataFrame, right_on: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """``left.merge(right, left_on=…, right_on=…)`` (inner), text keys of one dtype, none missing.

    The same rows, columns and order as pandas (left rows in order, each with its right
    matches in right order), joined on integer codes of the keys. Also returns each row's
    key code (the position of its key among the right's distinct keys).
    """
    assert not set(left.columns) & set(right.columns), "no shared column names"
    enc = pc.dictionary_encode(_arrow_text(right[right_on]))
    rcode = np.asarray(enc.indices).astype(np.int64)
    lcode = pc.index_in(_arrow_text(left[left_on]), value_set=enc.dictionary)
    lcode = np.asarray(lcode.fill_null(-1)).astype(np.int64)
    # right rows grouped by key code, in right order within a code
    order = np.argsort(rcode, kind="stable")
    start = np.r_[0, np.cumsum(np.bincount(rcode, minlength=len(enc.dictionary)))]
    li = np.flatnonzero(lcode >= 0)
    n = (start[lcode[li] + 1] - start[lcode[li]]) if len(li) else np.zeros(0, dtype=np.int64)
    li = np.repeat(li, n)
    # position within each left row's run of matches
    run = np.arange(len(li)) - np.repeat(np.cumsum(n) - n, n)
    ri = order[start[lcode[li]] + run]
    out = pd.concat(
        [left.iloc[li].reset_index(drop=True), right.iloc[ri].reset_index(drop=True)], axis=1
    )
    return out, lcode[li]


def exact_name_rule(firms, holders, code_pairs: np.ndarray, n_p: int, rejected) -> tuple:
    """Normalised holder name equals normalised firm name (not across two known counties)."""
    f = firms.loc[firms["eligible"] & firms["key"].notna(), ["key", "region"]]
    m, code = _join_on_text(holders, "hkey", f.rename_axis("fi").reset_index(), "key")
    both = m["hregion"].notna() & m["region"].notna()
    cross = both.to_numpy() & (m["hregion"].fillna("") != m["region"].fillna("")).to_numpy()
    keep = ~cross & ~pd.Index(pairs(m["fi"], m["pj"], n_p)).duplicated()
    m, code = m[keep].reset_index(drop=True), code[keep]
    hit = np.isin(pairs(m["fi"], m["pj"], n_p), rejected)
    rej = link_frame(
        m["fi"][hit], m["pj"][hit], "name", 0.95, ("权利人名称相同: " + m["hname"][hit]).to_numpy()
    )
    m, code = m[~hit].reset_index(drop=True), code[~hit]
    conflict = m["has_code"].to_numpy() & ~np.isin(pairs(m["fi"], m["pj"], n_p), code_pairs)
    # firms per (parcel, key): the (firm, parcel) pairs are distinct, so a count
    group = pd.factorize(pairs(m["pj"], code, int(code.max(initial=0)) + 1))[0]
    n_firms = np.bincount(group)[group] if len(group) else np.zeros(0, dtype=np.int64)
    review = np.where(conflict, "名称相同但宗地权利人信用代码不同", "")
    review = np.where((n_firms > 1) & ~conflict, "权利人名称对应多家企业", review)
    ev = ("权利人名称相同: " + m["hname"]).to_numpy()
    return link_frame(m["fi"], m["pj"], "name", 0.95, ev, review), rej


def _fuzzy_block(fkeys, hkeys, threshold: float, region: str) -> pd.DataFrame:
    """Best holder keys (ties kept) per firm key in one county, with their scores.

    ``ratio = 200·LCS/(l1 + l2)`` can reach `threshold` only when the lengths are close, so each
    firm-key length is compared with the holder keys of compatible length only.
    """
    fkeys, hkeys = np.asarray(fkeys, dtype=object), np.asarray(hkeys, dtype=object)
    flen = np.fromiter(map(len, fkeys), dtype=np.int64, count=len(fkeys))
    hlen = np.fromiter(map(len, hkeys), dtype=np.int64, count=len(hkeys))
    keys, hits, scores, ties = [], [], [], []
    for n in np.unique(flen):
        lo, hi = n * threshold / (200 - threshold) - 1e-9, n * (200 - threshold) / threshold + 1e-9
        hsel = hkeys[(hlen >= lo) & (hlen <= hi)]
        fsel = fkeys[flen == n]
        if not len(hsel):
            continue
        step = max(1, _FUZZY_BLOCK // len(hsel))
        for start in range(0, len(fsel), step):
            chunk = fsel[start : start + step]
            score = process.cdist(
                chunk, hsel, scorer=fuzz.ratio, score_cutoff=threshold, dtype=np.float32, workers=-1
            )
            # the cutoff zeroes everything below the threshold; each firm key (one row: keys
            # are distinct) keeps its best holder keys. Flat positions of a boolean mask are
            # ~10x faster than a 2-D np.nonzero (same pairs, same row-major order)
            best = score.max(axis=1, initial=0)[:, None]
            rows, cols = np.divmod(np.flatnonzero((score == best) & (best != 0)), score.shape[1])
            keys.append(chunk[rows])
            hits.append(hsel[cols])
            scores.append(score[rows, cols].astype(float))
            ties.append(np.bincount(rows, minlength=len(chunk))[rows])
    # one frame for the block (not one per cdist call)
    z = (
        pd.DataFrame(
            {
                "key": np.concatenate(keys),
                "hkey": np.concatenate(hits),
                "score": np.concatenate(scores),
                "region": region,
                "ties": np.concatenate(ties),
            }
        )
        if keys
        else pd.DataFrame({"key": [], "hkey": [], "score": [], "region": region, "ties": 0})
    )
    return z


def region_keys(region: pd.Series, key: pd.Series) -> pa.Array:
    r"""``region``, NUL, ``key`` joined row by row as Arrow text (null where a part is missing).

    Examples
    --------
    >>> region_keys(pd.Series(["330481", None]), pd.Series(["宏达", "宏达"])).to_pylist()
    ['330481\x00宏达', None]
    """
    r, k = _arrow_text(region), _arrow_text(key)
    return pc.binary_join_element_wise(r, k.cast(r.type), pa.scalar("\x00", r.type))


def _isin_claimed(region: pd.Series, key: pd.Series, claimed: pa.Array) -> np.ndarray:
    """Whether region, NUL, key (:func:`region_keys`) is among `claimed` (a missing part: False)."""
    if not len(claimed) or not len(region):
        return np.zeros(len(region), dtype=bool)
    both = region_keys(region, key)
    hit = pc.is_in(both, value_set=claimed.cast(both.type))
    return np.asarray(hit.fill_null(False))


def fuzzy_rule(firms, holders, threshold: float, linked_fi, claimed, rejected, n_p: int) -> tuple:
    """Best rapidfuzz ``ratio`` >= threshold, per county block, for firms still without links."""
    empty = link_frame([], [], "name", [], [])
    if threshold >= 100:
        return empty, empty
    ok = firms["eligible"] & firms["key"].notna() & firms["region"].notna()
    f = firms[ok.to_numpy() & ~marks(linked_fi, len(firms))]
    h = holders[holders["hregion"].notna().to_numpy() & ~holders["has_code"].to_numpy()]
    h = h[~_isin_claimed(h["hregion"], h["hkey"], claimed)]
    h_by_region = {r: g for r, g in h.groupby("hregion", sort=True)}
    parts = []
    for region, fg in f.groupby("region", sort=True):
        hg = h_by_region.get(region)
        if hg is not None:
            parts.append(
                _fuzzy_block(pd.unique(fg["key"]), pd.unique(hg["hkey"]), threshold, region)
            )
    if not parts:
        return empty, empty
    z = pd.concat(parts, ignore_index=True).astype(
        {"key": "string", "hkey": "string", "region": "string"}
    )
    z = z.merge(f[["key", "region"]].rename_axis("fi").reset_index(), on=["key", "region"])
    z = z.merge(
        h[["pj", "hkey", "hname", "hregion"]],
        left_on=["hkey", "region"],
        right_on=["hkey", "hregion"],
    )
    z = z.sort_values(["fi", "pj", "score"], ascending=[True, True, False])
    z = z.drop_duplicates(["fi", "pj"]).reset_index(drop=True)
    hit = np.isin(pairs(z["fi"], z["pj"], n_p), rejected)
    rej = link_frame(
        z["fi"][hit], z["pj"][hit], "name", 0.6, ("权利人名称相似: " + z["hname"][hit]).to_numpy()
    )
    z = z[~hit].reset_index(drop=True)
    conf = 0.6 + 0.3 * (z["score"] - threshold) / (100.0 - threshold)
    n_firms = z.groupby(["pj", "hkey"])["fi"].transform("nunique").to_numpy()
    review = np.where(z["ties"].to_numpy() > 1, "多个权利人名称同等相似", "")
    review = np.where((n_firms > 1) & (review == ""), "权利人名称对应多家企业", review)
    ev = ("权利人名称相似(" + z["score"].round(1).astype(str) + "): " + z["hname"]).to_numpy()
    return link_frame(z["fi"], z["pj"], "name", conf.to_numpy(), ev, review), rej


@dataclass
class SpatialCandidates:
    """What the location rules need from the spatial index, found before the name rules.

    ``cover_fi, cover_pj``: every (firm, parcel) pair where the parcel covers the firm's point
    (eligible firms with a point), sorted by firm then parcel; ``covered``: a boolean per firm;
    ``near``: the nearest industrial parcels within `max_distance` (ties included) of every
    uncovered point; ``far``: the nearest industrial parcels at any distance of the uncovered
    points with none within `max_distance` (for the unmatched reason); ``within``: the
    :func:`one_per_point` choice over all cover pairs (used when no override rejects one).
    """

    index: ParcelIndex
    cover_fi: np.ndarray
    cover_pj: np.ndarray
    covered: np.ndarray
    near: pd.DataFrame
    far: pd.DataFrame
    within: tuple | None = None


def spatial_candidates(
    index_factory, parcels, pinfo: pd.DataFrame, firms: pd.DataFrame, pts, max_distance: float
) -> SpatialCandidates:
    """Run every spatial query of the location rules; see :class:`SpatialCandidates`.

    Nothing here depends on names, so :func:`mujun_geo.matching.match_enterprises` runs it in a
    thread beside the name rules (the grid scan and the GEOS tests release the GIL). `pinfo` must not be
    changed meanwhile: the caller passes a copy of the columns used (industrial, has_geom, pid).
    """
    index = index_factory(parcels, pinfo)
    # the name rules keep the other core busy meanwhile: a second thread here would only
    # slow them down; the index gets its threads back for the queries after the rules
    threads, index.threads = index.threads, 1
    try:
        idx = np.flatnonzero(firms["eligible"].to_numpy() & firms["has_point"].to_numpy())
        qi, qj = index.covering(pts[idx])
        fi = idx[qi]
        covered = np.zeros(len(firms), dtype=bool)
        covered[fi] = True
        rest = idx[~covered[idx]]
        near = nearest(index, pts, rest, pinfo, max_distance)
        far = nearest(index, pts, rest[~np.isin(rest, near["fi"])], pinfo, None)
        # the location links as they are without overrides (the usual case)
        within = one_per_point(fi, qj, len(firms), pinfo, index.geoms, pts)
    finally:
        index.threads = threads
    return SpatialCandidates(index, fi, qj, covered, near, far, within)


def within_rule(firms, pts, cand: SpatialCandidates, pinfo, rejected, linked) -> tuple:
    """Parcel covers the point; one parcel per point. Returns (links, rejected, covered)."""
    n_p = len(pinfo)
    hit = np.isin(pairs(cand.cover_fi, cand.cover_pj, n_p), rejected)
    rej = link_frame(cand.cover_fi[hit], cand.cover_pj[hit], "within", 0.9, "点位于宗地内")
    if cand.within is not None and not hit.any():
        fi, pj, n, holder = cand.within  # worked out beside the name rules
    else:
        fi, pj, n, holder = one_per_point(
            cand.cover_fi[~hit], cand.cover_pj[~hit], len(firms), pinfo, cand.index.geoms, pts
        )
    known = np.asarray(holder.is_valid())
    # the holder is another firm of the list: its code/name link points at this parcel
    on_linked = np.zeros(n_p, dtype=bool)
    on_linked[linked[1]] = True
    other = on_linked[pj]
    other[other] = ~sorted_isin(pairs(fi[other], pj[other], n_p), linked[0])
    t = holder.type
    # head + holder + mark, joined in one pass (an unknown holder adds nothing)
    head = pc.if_else(
        pa.array(known),
        pa.scalar("点位于宗地内; 权利人: ", t),
        pa.scalar("点位于宗地内; 权利人未知", t),
    )
    mark = pc.if_else(
        pa.array(other), pa.scalar(" (名单内其他企业, 共租共用)", t), pa.scalar("", t)
    )
    text = pc.binary_join_element_wise(head, pc.fill_null(holder, ""), mark, pa.scalar("", t))
    ev = pd.Series(text, dtype="str")
    tie = n > 1
    if tie.any():
        ev[tie] = (
            ev[tie]
            + "; 点在"
            + n[tie].astype(str).astype(object)
            + "宗地边界/重叠处, 按内部>工业>面积大>代码小取此宗"
        )
    links = link_frame(fi, pj, "within", np.where(known, 0.8, 0.9), ev)
    return links, rej, cand.covered


def one_per_point(cover_fi, cover_pj, n_firms: int, pinfo, geoms, pts) -> tuple:
    """The one parcel of each covered point: ``(fi, pj, n, holder)`` sorted by firm.

    ``cover_fi, cover_pj`` are the (firm, parcel) pairs where the parcel covers the point,
    sorted by firm; ``n`` counts each point's covering parcels and ``holder`` (Arrow text)
    is the chosen parcel's holder. A point on several parcels takes the one whose interior
    holds it, then an industrial one, then the largest, then the smallest parcel_id.
    """
    fi, pj = np.asarray(cover_fi), np.asarray(cover_pj)
    n = np.bincount(fi, minlength=n_firms)[fi]
    # most points lie in one parcel; only points with several candidates need the tie rule
    multi = n > 1
    if multi.any():
        m = pd.DataFrame({"fi": fi[multi], "pj": pj[multi]}).assign(
            # interior only breaks ties, so it is tested for these points alone
            interior=shapely.contains_properly(geoms[pj[multi]], pts[fi[multi]]),
            industrial=pinfo["industrial"].to_numpy()[pj[multi]],
            area=pinfo["area"].to_numpy()[pj[multi]],
            pid=pinfo["pid"].to_numpy()[pj[multi]],
        )
        m = sort_rows(
            m, ["fi", "interior", "industrial", "area", "pid"], [True, False, False, False, True]
        )
        m = m.drop_duplicates("fi")
        keep = np.flatnonzero(~multi)
        fi = np.concatenate([fi[keep], m["fi"].to_numpy()])
        pj = np.concatenate([pj[keep], m["pj"].to_numpy()])
        order = np.argsort(fi, kind="stable")
        fi, pj = fi[order], pj[order]
        n = np.bincount(np.asarray(cover_fi), minlength=n_firms)[fi]
    holder = _arrow_text(pinfo["holder"]).take(pa.array(pj))
    return fi, pj, n, holder


def nearest(index: ParcelIndex, pts, idx, pinfo, max_distance: float | None) -> pd.DataFrame:
    """All nearest industrial parcels (ties included) of points ``pts[idx]``: fi, pj, d, pid."""
    if index.n_industrial == 0 or len(idx) == 0:
        return pd.DataFrame({"fi": [], "pj": [], "d": [], "pid": []}).astype({"fi": int, "pj": int})
    i, pj, dist = index.nearest(pts[idx], max_distance)
    return near_frame(idx[i], pj, dist, pinfo)


def near_frame(fi: np.ndarray, pj: np.ndarray, d: np.ndarray | float, pinfo) -> pd.DataFrame:
    """The frame of :func:`nearest`: firm and parcel positions, metres, parcel id."""
    n = pd.DataFrame({"fi": fi, "pj": pj, "d": d})
    n["pid"] = pinfo["pid"].array.take(pj).to_numpy(dtype=object)  # (not all 1M ids)
    return n


def nearest_rule(cand: SpatialCandidates, idx, n_p: int, max_distance: float, rejected) -> tuple:
    """Nearest industrial parcel within `max_distance` of the uncovered points ``idx``.

    Ties: distance, then parcel_id. The candidates come from :func:`spatial_candidates`.
    """
    n = cand.near[np.isin(cand.near["fi"].to_numpy(), idx)]
    hit = np.isin(pairs(n["fi"], n["pj"], n_p), rejected)
    rej = link_frame(n["fi"][hit], n["pj"][hit], "nearest", 0.5, "最近工业宗地")
    n = sort_rows(n[~hit], ["fi", "d", "pid"]).drop_duplicates("fi").reset_index(drop=True)
    conf = 0.8 - 0.3 * (n["d"] / max_distance if max_distance > 0 else 0.0)
    ev = ("点距最近工业宗地 " + n["d"].round(1).astype(str) + " m").to_numpy()
    return link_frame(n["fi"], n["pj"], "nearest", np.asarray(conf, dtype=float), ev), rej


def combine(frames: list[pd.DataFrame], n_p: int) -> pd.DataFrame:
    """One row per (firm, parcel): the most trusted method; evidence and review joined.

    Examples
    --------
    >>> a = link_frame([0, 1], [5, 6], "within", 0.9, "点位于宗地内")
    >>> b = link_frame([0], [5], "credit_code", 1.0, "信用代码相同", "核对")
    >>> combine([a, b], 10)[["fi", "method", "evidence", "review"]].values.tolist()
    [[0, 'credit_code', '信用代码相同; 点位于宗地内', '核对'], [1, 'within', '点位于宗地内', '']]
    """
    links = pd.concat(frames, ignore_index=True)
    key = pairs(links["fi"], links["pj"], n_p)
    # by pair, then trust; stable, so equal methods keep the order of `frames`
    rank = pc.index_in(_arrow_text(links["method"]), value_set=pa.array(list(RANK)))
    rank = np.asarray(rank.fill_null(len(RANK)))
    order = lex_order(key, rank, len(RANK) + 1)
    key = key[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    if first.all():
        return links.iloc[order].reset_index(drop=True)
    texts = ["evidence", "review"]
    out = links.drop(columns=texts).iloc[order[first]].reset_index(drop=True)
    # every pair's texts as one list, in the sorted order, joined in one Arrow pass (a pair
    # given by one rule is a list of one)
    at = pa.array(order)
    offsets = np.r_[np.flatnonzero(first), len(order)]
    for col in texts:
        text = _arrow_text(links[col]).take(at)
        ends = offsets
        if col == "review":  # only the non-empty reviews are joined
            keep = np.asarray(pc.not_equal(text, "")).astype(bool)
            text = text.filter(pa.array(keep))
            ends = np.r_[0, np.cumsum(keep)][offsets]
        lists = pa.ListArray.from_arrays(pa.array(ends, pa.int32()), text)
        joined = pc.binary_join(lists, pa.scalar("; ", text.type))
        out.insert(links.columns.get_loc(col), col, pd.Series(joined, dtype=links[col].dtype))
    return out
