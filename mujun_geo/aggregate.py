"""Figures above the firm: parcels, parks, regions, industries, leaders, year over year.

Every ratio is Σ numerator / Σ denominator over the firms (never a mean of ratios), and
land is never counted twice: a firm's figures reach parcels through ``land_alloc_m2``,
its share of each parcel it uses (counted links only; on a shared parcel the shares of
the firms are normalised to sum to the parcel's area, so in 宗地评价 mode the parcel is
split equally among its firms for aggregation).

Built-in targets: the 2022 city targets for 规上工业亩均税收 of the provincial work plan
(``mujun_geo/data/targets_2022.csv``) and its growth targets (亩均税收 +8%, 亩均增加值 +6%).

Examples
--------
>>> import pandas as pd
>>> firms = pd.DataFrame({"credit_code": ["A", "B"], "tax": [30.0, 10.0]})
>>> matches = pd.DataFrame({"credit_code": ["A", "B"], "parcel_id": ["P", "P"],
...                         "land_share": [1.0, 1.0], "status": ["auto", "auto"], "industrial": [True, True]})
>>> parcels = pd.DataFrame({"parcel_id": ["P"], "area_m2": [4000.0]})
>>> alloc = allocate_land(matches, parcels)
>>> alloc.groupby("credit_code")["alloc_m2"].sum().tolist()
[2000.0, 2000.0]
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

import numpy as np
import pandas as pd

import geopandas as gpd

from .units import m2_to_mu

__all__ = [
    "GROWTH_TARGETS",
    "allocate_land",
    "assign_parks",
    "builtin_targets",
    "firm_land_alloc",
    "grade_changes",
    "industry_figures",
    "leaders",
    "park_figures",
    "parcel_changes",
    "parcel_figures",
    "region_figures",
]

#: Provincial growth targets of the 2022 work plan (fractions per year).
GROWTH_TARGETS = {"tax_per_mu": 0.08, "va_per_mu": 0.06}

_SUMS = ("tax", "value_added", "revenue", "energy_tce", "electricity", "employees", "rd_expense")
_COUNTED = ("auto", "confirmed")
_GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3}


def allocate_land(matches: pd.DataFrame, parcels: pd.DataFrame) -> pd.DataFrame:
    """One row per counted link with ``alloc_m2``: the firm's part of the parcel's area.

    Shares of the firms on a parcel are normalised, so the parts add up to the parcel's area
    (a parcel whose firms all have share 0 allocates nothing).
    """
    counted = matches["status"].isin(_COUNTED).to_numpy()
    if "industrial" in matches:
        counted = counted & matches["industrial"].astype(bool).to_numpy()
    links = matches.loc[counted, ["credit_code", "parcel_id", "land_share"]]
    links["land_share"] = links["land_share"].fillna(0.0).clip(lower=0.0)
    # Σ share per parcel, grouped on integer codes (a groupby on the text sorts it first);
    # the same row order per group, so the same sums; links without a parcel get none
    pcode = _factorized(links["parcel_id"])
    total = links["land_share"].groupby(pcode, sort=False).transform("sum")
    total = total.where(pcode >= 0)
    area = _map_by(links["parcel_id"], _column_by(parcels, "parcel_id", "area_m2"))
    links["alloc_m2"] = np.where(
        total > 0, area * links["land_share"] / total.where(total > 0, 1.0), 0.0
    )
    return links.reset_index(drop=True)


def firm_land_alloc(enterprises: pd.DataFrame, alloc: pd.DataFrame) -> pd.Series:
    """``land_alloc_m2`` per firm (NaN where the firm has no counted land)."""
    codes = enterprises["credit_code"]
    arrow = _arrow_text(codes.dtype, alloc["credit_code"].dtype)
    # each link's firm row (the lookup parcel_figures and park_figures reuse; it also finds
    # whether the codes are unique)
    firm = _firm_positions(enterprises, alloc) if arrow else None
    if (
        firm is not None
        and alloc["alloc_m2"].dtype == np.float64
        and _is_unique(pd.Index(codes.array))
    ):
        # Σ per firm row on integer codes in link order (as the groupby on the codes sums)
        firm = np.where(alloc["credit_code"].isna().to_numpy(), -1, firm)  # groupby drops NaN
        has = firm >= 0
        sums = pd.Series(alloc["alloc_m2"].to_numpy()[has]).groupby(firm[has], sort=False).sum()
        values = np.full(len(enterprises), np.nan)
        values[sums.index.to_numpy()] = sums.to_numpy()
        out = pd.Series(values, index=enterprises.index, name=codes.name)
    else:
        per_firm = alloc.groupby("credit_code")["alloc_m2"].sum()
        out = _map_by(codes, per_firm)
    rejected = (
        enterprises["match_status"].eq("rejected") if "match_status" in enterprises else False
    )
    return out.where(~rejected).rename("land_alloc_m2")


def _arrow_text(*dtypes: object) -> bool:
    """Whether every dtype is the pyarrow-backed pandas string dtype (pandas 3 ``str``)."""
    return all(isinstance(d, pd.StringDtype) and d.storage == "pyarrow" for d in dtypes)


# ---------------------------------------------------------------------------------------------
# lookups on Arrow text, remembered by the memory the text lives in
#
# The stages look the same keys up in the same values several times (each link's parcel in
# `allocate_land`, `parcel_figures`, `park_figures` and the firm → park step; each link's
# firm in `firm_land_alloc`, `parcel_figures` and `park_figures`), each time on a new pandas
# wrapper of the same Arrow buffers (joins and `copy(deep=False)` share them). Arrow buffers
# are immutable, so the same buffers (address, offset, length, type) hold the same text: a
# result is reused while the arrays it was computed from are alive (weak references; an entry
# goes when they do, so nothing is kept beyond the frames).

_T = TypeVar("_T")
_MEMO: OrderedDict[tuple[Any, ...], tuple[tuple[weakref.ref, ...], Any]] = OrderedDict()
_MEMO_SIZE = 16
# Pipelines may run in threads of one process. Re-entrant: an entry's weakref callback can
# run inside a locked section (a collection triggered by an allocation there).
_MEMO_LOCK = threading.RLock()


def _fingerprint(arr: Any) -> tuple[Any, ...]:
    """Type, length and the buffers (address, offset, length) of an Arrow (chunked) array."""
    parts: list[Any] = [str(arr.type), len(arr)]
    for chunk in getattr(arr, "chunks", [arr]):
        parts += [chunk.offset, len(chunk)]
        parts += [b.address if b is not None else 0 for b in chunk.buffers()]
    return tuple(parts)


def _recall(kind: str, arrays: tuple[Any, ...]) -> Any:
    """The result remembered for ``kind`` and these Arrow ``arrays`` (None: none)."""
    key = (kind, *(_fingerprint(a) for a in arrays))
    with _MEMO_LOCK:
        hit = _MEMO.pop(key, None)  # popped and put back last: the most recently used
        if hit is None or any(ref() is None for ref in hit[0]):
            return None
        _MEMO[key] = hit
        return hit[1]


def _remember(kind: str, arrays: tuple[Any, ...], value: Any) -> None:
    """Remember ``value`` for ``kind`` and ``arrays`` while the arrays are alive."""
    key = (kind, *(_fingerprint(a) for a in arrays))

    def forget(_ref: weakref.ref, key: tuple[Any, ...] = key) -> None:
        with _MEMO_LOCK:
            _MEMO.pop(key, None)

    refs = tuple(weakref.ref(a, forget) for a in arrays)
    with _MEMO_LOCK:
        _MEMO[key] = (refs, value)
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)


def _memoised(kind: str, arrays: tuple[Any, ...], compute: Callable[[], _T]) -> _T:
    """``compute()``, or its remembered result for the same ``kind`` and Arrow ``arrays``."""
    value = _recall(kind, arrays)
    if value is None:
        value = compute()
        _remember(kind, arrays, value)
    return value


def _chunks(values: pd.Series | pd.Index) -> Any:
    """The Arrow chunked array behind arrow-backed text (no copy)."""
    return values.array.__arrow_array__()


def _is_unique(values: pd.Index) -> bool:
    """``values.is_unique`` (one missing value at most), remembered for arrow-backed text."""
    if not _arrow_text(values.dtype):
        return values.is_unique
    chunks = _chunks(values)
    return _memoised("unique", (chunks,), lambda: _arrow_unique(chunks))


def _increasing(text: Any) -> bool:
    """Whether Arrow text is strictly increasing, so unique (ids often come sorted)."""
    import pyarrow.compute as pc

    if len(text) < 2:
        return True
    return text.null_count == 0 and bool(pc.all(pc.greater(text[1:], text[:-1])).as_py())


def _arrow_unique(text: Any) -> bool:
    import pyarrow.compute as pc

    if _increasing(text):
        return True
    return len(pc.unique(text)) == len(text)  # missing values count as one value


def _factorized(values: pd.Series) -> np.ndarray:
    """``pd.factorize(values)[0]`` (-1: missing), read-only; remembered for arrow-backed text."""

    def compute() -> np.ndarray:
        codes = pd.factorize(values)[0]
        codes.setflags(write=False)
        return codes

    if not _arrow_text(values.dtype):
        return compute()
    return _memoised("factorize", (_chunks(values),), compute)


def _positions(keys: pd.Series, values: pd.Index) -> np.ndarray:
    """Where each key first occurs in ``values`` (-1: absent); read-only.

    ``values.get_indexer(keys)`` for unique ``values``. Arrow-backed strings (the pandas 3
    ``str`` dtype) are looked up in Arrow, a few times faster than pandas' hash table of
    Python strings, and remembered (see :func:`_memoised`); a missing key matches a missing
    value, as in ``get_indexer``.
    """
    if _arrow_text(keys.dtype, values.dtype):
        k, v = _chunks(keys), _chunks(values)
        return _memoised("positions", (k, v), lambda: _arrow_positions(keys, values))
    if values.is_unique:
        found = values.get_indexer(keys)
    else:  # the first of equal values, as for Arrow text
        first = ~values.duplicated(keep="first")
        found = values[first].get_indexer(keys)
        found = np.where(found >= 0, np.flatnonzero(first)[found], -1)
    found.setflags(write=False)
    return found


def _arrow_positions(keys: pd.Series, values: pd.Index) -> np.ndarray:
    """:func:`_positions` for Arrow text.

    Values known to be unique (remembered, or sorted) are looked up with
    ``pyarrow.compute.index_in``. Else values and keys are numbered together in one pass
    (``pd.factorize`` in order of appearance), which also tells whether the values are unique
    (remembered for :func:`_is_unique`): about the cost of ``index_in`` alone.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    v = _chunks(values)
    unique = _recall("unique", (v,))
    if unique is None and _increasing(v):
        unique = True
    if unique or keys.dtype != values.dtype or not len(values):
        k = pa.array(keys.array)
        found = pc.index_in(k, value_set=pa.array(values.array).cast(k.type), skip_nulls=False)
        out = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    else:
        n = len(values)
        both = pd.concat([pd.Series(values.array), pd.Series(keys.array)], ignore_index=True)
        codes = pd.factorize(both, use_na_sentinel=False)[0]  # a missing value: a code too
        # the values take codes 0 .. m-1 in order of appearance: code i first at row first[i]
        m = int(codes[:n].max()) + 1
        first = np.arange(n) if m == n else np.unique(codes[:n], return_index=True)[1]
        found = codes[n:]
        out = np.where(found < m, first[np.minimum(found, m - 1)], -1).astype(np.intp)
        if unique is None:
            _remember("unique", (v,), m == n)
    out.setflags(write=False)  # shared by every caller with the same keys and values
    return out


def _map_by(keys: pd.Series, mapper: pd.Series) -> pd.Series:
    """``keys.map(mapper)`` for a Series ``mapper``; arrow strings looked up by :func:`_positions`.

    Other key types go through ``Series.map`` itself (its handling of None and NaN keys and
    of object results differs in details from a plain lookup).
    """
    if not (_arrow_text(keys.dtype, mapper.index.dtype) and _is_unique(mapper.index)):
        return keys.map(mapper)
    values = pd.api.extensions.take(mapper.array, _positions(keys, mapper.index), allow_fill=True)
    return pd.Series(values, index=keys.index, name=keys.name)


def _absent(values: pd.Index, other: pd.Index) -> np.ndarray:
    """``~values.isin(other)`` for a unique ``other`` (``isin`` on Arrow text is slow)."""
    return _positions(pd.Series(values.array), other) < 0


def _map_few(keys: pd.Series, mapper: pd.Series | dict[Any, Any]) -> pd.Series:
    """``keys.map(mapper)`` worked out once per distinct key (keys repeating a few values).

    Missing keys count as one more distinct key, so ``map`` sees them too.
    """
    which, uniques = pd.factorize(keys, use_na_sentinel=False)
    if len(uniques) > len(keys) // 4:
        return keys.map(mapper)
    done = pd.Series(uniques, name=keys.name, dtype=keys.dtype).map(mapper)
    # dtype given: an object result is not inferred to be text again
    return pd.Series(done.array.take(which), index=keys.index, name=keys.name, dtype=done.dtype)


def _column_by(frame: pd.DataFrame, key: str, col: str) -> pd.Series:
    """``frame.set_index(key)[col]`` without copying the other columns."""
    return pd.Series(frame[col].array, index=pd.Index(frame[key].array, name=key), name=col)


def _take_or_nan(values: Any, rows: np.ndarray) -> Any:
    """``values`` (an array) at ``rows``, missing where the row is -1."""
    return pd.api.extensions.take(values, rows, allow_fill=True)


def _main_links(alloc: pd.DataFrame) -> np.ndarray:
    """Rows of ``alloc`` with each firm's largest part (all of one firm's parts: the first).

    The links that ``alloc.sort_values(["credit_code", "alloc_m2"], ascending=[True,
    False]).drop_duplicates("credit_code")`` keeps (missing codes are one firm; missing parts
    last), in row order, found with integer codes instead of a sort of text.
    """
    firm = np.array(_factorized(alloc["credit_code"]))
    firm[firm < 0] = firm.max(initial=-1) + 1  # the missing codes: one more firm
    part = alloc["alloc_m2"].to_numpy(dtype=float, na_value=np.nan)
    return _first_max(np.arange(len(alloc)), firm, part)


def _first_max(rows: np.ndarray, group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Of ``rows`` (in order), those with the largest ``value`` of their ``group``, the first.

    Missing values lose to any other, so a group of missing values keeps its first row.
    """
    top = _group_max(value, group)
    keep = (value == top) | np.isnan(top)
    return rows[keep][~pd.Series(group[keep]).duplicated().to_numpy()]


def _group_max(value: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Each row's group maximum of ``value`` (missing values skipped; none: NaN)."""
    return pd.Series(value).groupby(group, sort=False).transform("max").to_numpy()


def _firm_positions(enterprises: pd.DataFrame, alloc: pd.DataFrame) -> np.ndarray:
    """Each link's firm: the first row of ``enterprises`` with its credit code (-1: none)."""
    return _positions(alloc["credit_code"], pd.Index(enterprises["credit_code"].array))


def _firm_parks(enterprises: pd.DataFrame, alloc: pd.DataFrame, parcels: pd.DataFrame) -> pd.Series:
    """The park holding each firm's largest part of land (by firm row; missing: none).

    As mapping the credit codes onto the ``park_id`` of each firm's first link in
    ``alloc.sort_values(["credit_code", "alloc_m2"], ascending=[True, False])`` (a missing
    code matches the missing code), in the dtype of the parcels' ``park_id``.
    """
    park = _link_parks(alloc, parcels)
    main = _main_links(alloc)
    codes = enterprises["credit_code"]
    if not (
        _arrow_text(codes.dtype, alloc["credit_code"].dtype) and _is_unique(pd.Index(codes.array))
    ):
        first = alloc.assign(park=park).take(main).set_index("credit_code")["park"]
        return _map_by(codes, first)
    firm = _firm_positions(enterprises, alloc)[main]  # each firm's main link -> firm row
    rows = np.full(len(enterprises), -1, dtype=np.intp)
    found = firm >= 0
    rows[firm[found]] = main[found]
    values = _take_or_nan(park.array, rows)
    return pd.Series(values, index=codes.index, name=codes.name, dtype=park.dtype)


def _link_parks(alloc: pd.DataFrame, parcels: pd.DataFrame) -> pd.Series:
    """``park_id`` of each link's parcel (missing: none), in the dtype of the column.

    As ``_map_by(alloc["parcel_id"], _column_by(parcels, "parcel_id", "park_id"))`` but
    without building a Series of the object column (which pandas scans to infer text).
    """
    pid = pd.Index(parcels["parcel_id"].array)
    if not (_arrow_text(alloc["parcel_id"].dtype, pid.dtype) and _is_unique(pid)):
        return _map_by(alloc["parcel_id"], _column_by(parcels, "parcel_id", "park_id"))
    park = parcels["park_id"]
    values = _take_or_nan(park.array, _positions(alloc["parcel_id"], pid))
    return pd.Series(values, index=alloc.index, name=alloc["parcel_id"].name, dtype=park.dtype)


def _safe_ratio(num: pd.Series | float, den: pd.Series | float) -> pd.Series | float:
    """Num / den with NaN where the denominator is zero or missing."""
    if isinstance(den, pd.Series):
        return num / den.where(den > 0)
    return num / den if den and den > 0 else np.nan


def parcel_figures(
    parcels: pd.DataFrame, enterprises: pd.DataFrame, alloc: pd.DataFrame
) -> pd.DataFrame:
    """Per parcel: firm figures allocated by area share, 亩均 ratios and the main firm's grade.

    The main firm of a parcel is the one holding most of it (ties: the worse grade, then
    the smaller credit code), so a parcel's ``grade`` is never better than the grade of
    the firm that mainly uses it.

    Examples
    --------
    >>> import pandas as pd
    >>> firms = pd.DataFrame({"credit_code": ["A", "B"], "tax": [30.0, 10.0],
    ...                       "grade": ["A", "C"]})
    >>> alloc = pd.DataFrame({"credit_code": ["A", "A", "B"], "parcel_id": ["P", "Q", "P"],
    ...                       "alloc_m2": [2000.0, 1000.0, 2000.0]})
    >>> parcels = pd.DataFrame({"parcel_id": ["P", "Q", "R"], "area_m2": [4000.0, 1000.0, 500.0]})
    >>> pf = parcel_figures(parcels, firms, alloc)
    >>> pf["tax_sum"].tolist()  # P: 30 × 2/3 + 10 × 1; Q: 30 × 1/3
    [30.0, 10.0, nan]
    >>> pf["grade"].tolist()  # P: A and B hold 2000 m² each, the worse grade (C) wins
    ['C', 'A', '']
    """
    rejected = enterprises.get("rejected", pd.Series(False, index=enterprises.index))
    rejected = rejected.astype(bool).to_numpy()
    a = alloc
    # each firm's share of its land, Σ per firm on integer codes (missing codes: no share)
    ccode = _factorized(a["credit_code"])
    firm_total = a["alloc_m2"].groupby(ccode, sort=False).transform("sum").where(ccode >= 0)
    w = np.where(firm_total > 0, a["alloc_m2"] / firm_total.where(firm_total > 0, 1.0), 0.0)
    fpos = _valid_firm_rows(enterprises, a, rejected)
    link_group, parcel_group, n_groups = _parcel_groups(parcels, a)

    # STEP 1: Σ firm figure × the firm's share of its land, per parcel (float64 columns
    # as one numpy block; others as `map` and a product, which keeps their dtype)
    block_cols = [c for c in _SUMS if c in enterprises and enterprises[c].dtype == np.float64]
    frame = pd.DataFrame(index=pd.RangeIndex(len(a)))
    if block_cols:
        values = enterprises[block_cols].to_numpy(dtype=float)
        values = np.vstack([values, np.full(len(block_cols), np.nan)])  # row -1: no firm
        block = values[fpos] * w[:, None]
    other = [c for c in _SUMS if c in enterprises and c not in block_cols]
    if other:  # the first valid row per credit code, as a lookup table
        firm = enterprises.loc[~rejected, ["credit_code", *other]]
        firm = firm.drop_duplicates("credit_code").set_index("credit_code")
    for col in _SUMS:
        if col in block_cols:
            frame[col] = block[:, block_cols.index(col)]
        elif col in other:
            frame[col] = a["credit_code"].map(firm[col]).reset_index(drop=True) * w
        else:
            frame[col] = np.nan
    named = a["parcel_id"].notna().to_numpy() & (link_group >= 0)
    sums = frame[named].groupby(link_group[named], sort=False).sum(min_count=1)
    out = pd.DataFrame(index=parcels.index)
    for col in _SUMS:
        if not len(sums):
            out[f"{col}_sum"] = np.nan
        elif sums[col].dtype == np.float64:  # scattered by group (a lookup of 1M labels is slow)
            per_group = np.full(n_groups + 1, np.nan)  # the last: parcels without links (-1)
            per_group[sums.index.to_numpy()] = sums[col].to_numpy()
            out[f"{col}_sum"] = per_group[parcel_group]
        else:  # other dtypes (Int64 → Float64 sums) as they are
            out[f"{col}_sum"] = sums[col].reindex(parcel_group).array
    area_mu = m2_to_mu(parcels["area_m2"])
    out["tax_per_mu"] = _safe_ratio(out["tax_sum"], area_mu)
    out["va_per_mu"] = _safe_ratio(out["value_added_sum"], area_mu)
    out["revenue_per_mu"] = _safe_ratio(out["revenue_sum"], area_mu)
    out["va_per_tce"] = _safe_ratio(out["value_added_sum"], out["energy_tce_sum"])
    out["rd_ratio"] = _safe_ratio(out["rd_expense_sum"], out["revenue_sum"])

    # STEP 2: main firm: most land, then the worse grade, then the smaller credit code
    if "grade" in enterprises and len(a):
        grade = pd.Series(enterprises["grade"].array.take(fpos, allow_fill=True)).fillna("")
        gcode, grades = pd.factorize(grade)  # the few grades looked up once each
        order = pd.Series(grades).map(_GRADE_ORDER).fillna(-1).to_numpy()[gcode]
        part = a["alloc_m2"].to_numpy(dtype=float)
        main = _main_per_group(link_group, n_groups, part, order, a["credit_code"])
        # each parcel's main link (-1: none)
        lr = np.full(len(parcels), -1, dtype=np.intp)
        has = parcel_group >= 0
        lr[has] = main[parcel_group[has]]
        grades = grade.array.take(lr, allow_fill=True)
        out["grade"] = pd.Series(grades, index=parcels.index).fillna("")
        out["main_credit_code"] = pd.Series(
            a["credit_code"].array.take(lr, allow_fill=True), index=parcels.index
        )
        if "industry_code" in enterprises:
            frow = np.where(lr >= 0, fpos[lr], -1)
            # a parcel without a main firm gets the industry of the valid firm without a
            # credit code, if any (the missing main code maps to the missing code)
            uncoded = enterprises["credit_code"].isna().to_numpy() & ~rejected
            if uncoded.any():
                frow[lr < 0] = np.flatnonzero(uncoded)[0]
            industry = enterprises["industry_code"].array.take(frow, allow_fill=True)
            out["main_industry"] = pd.Series(industry, index=parcels.index).str[:2]
    return out


def _valid_firm_rows(
    enterprises: pd.DataFrame, alloc: pd.DataFrame, rejected: np.ndarray
) -> np.ndarray:
    """Each link's firm: the first row not ``rejected`` with its credit code (-1: none)."""
    fpos = np.array(_firm_positions(enterprises, alloc))
    # a code first seen on a rejected row may come again on a valid one: look those up again
    again = fpos >= 0
    again[again] = rejected[fpos[again]]
    if again.any():
        valid = np.flatnonzero(~rejected)
        codes = pd.Index(enterprises["credit_code"].array.take(valid))
        found = _positions(alloc["credit_code"][again], codes)
        fpos[again] = np.where(found >= 0, valid[found], -1)
    return fpos


def _parcel_groups(
    parcels: pd.DataFrame, alloc: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, int]:
    """Parcel of each link and of each parcel row as codes (-1: none), and how many codes.

    Equal ids get equal codes; a missing id matches a missing id. With unique parcel ids
    the code is the parcel's row (the lookup :func:`allocate_land` made); else the ids of
    the links are numbered and each parcel row gets its id's number.
    """
    pid = pd.Index(parcels["parcel_id"].array)
    if _is_unique(pid):
        return _positions(alloc["parcel_id"], pid), np.arange(len(parcels)), len(parcels)
    pcode, pids = pd.factorize(alloc["parcel_id"], use_na_sentinel=False)
    return pcode, np.asarray(_positions(parcels["parcel_id"], pids)), len(pids)


def _main_per_group(
    group: np.ndarray, size: int, part: np.ndarray, order: np.ndarray, codes: pd.Series
) -> np.ndarray:
    """Per group code ``0 .. size-1`` the main link (-1: none).

    The link with the largest ``part`` (missing last), then the largest ``order``, then the
    smallest code (missing last), then the first: the head of each group after a stable
    sort by these keys. Each key only ranks the links still tied on the ones before (group
    maxima on integer codes), so text is compared for a few links, not sorted for all.
    """
    main = np.full(size, -1, dtype=np.intp)
    rows = np.flatnonzero(group >= 0)
    top = _group_max(part[rows], group[rows])
    rows = rows[(part[rows] == top) | np.isnan(top)]
    rows = rows[order[rows] == _group_max(order[rows], group[rows])]
    tied = pd.Series(group[rows]).duplicated(keep=False).to_numpy()
    if tied.any():
        links = rows[tied]
        rank, _ = pd.factorize(codes.take(links), sort=True)
        rank = np.where(rank < 0, len(rank) + 1, rank).astype(float)  # missing last
        best = links[rank == -_group_max(-rank, group[links])]  # the smallest code
        rows = np.sort(np.r_[rows[~tied], best])
    first = ~pd.Series(group[rows]).duplicated().to_numpy()
    main[group[rows[first]]] = rows[first]
    return main


def assign_parks(parcels: gpd.GeoDataFrame, parks: gpd.GeoDataFrame) -> pd.Series:
    """``park_id`` of the park holding most of each parcel's area (None outside every park).

    Ties go to the smaller ``park_id``. A parcel that a park covers (prepared
    ``shapely.covers``) lies in it with its whole area; only the parcels that cross a park's
    edge are intersected with it.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> parks = gpd.GeoDataFrame({"park_id": ["K1", "K2"]}, crs=4549,
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])
    >>> parcels = gpd.GeoDataFrame(crs=4549, geometry=[shapely.box(10, 10, 20, 20),
    ...     shapely.box(90, 10, 130, 20), shapely.box(300, 0, 310, 10)])
    >>> assign_parks(parcels, parks).tolist()  # the second: 10 m in K1, 30 m in K2
    ['K1', 'K2', None]
    """
    if parks is None or not len(parks):
        return pd.Series(None, index=parcels.index, dtype=object, name="park_id")
    import shapely

    pg = np.asarray(parcels.geometry.values, dtype=object)
    kg = np.asarray(parks.geometry.values, dtype=object)
    pi, ki = parks.sindex.query(pg)  # bounding boxes meet
    if not len(pi):
        return pd.Series(None, index=parcels.index, dtype=object, name="park_id")
    fresh = ~shapely.is_prepared(kg)
    shapely.prepare(kg[fresh])
    try:
        inside = shapely.covers(kg[ki], pg[pi])
        cut = np.flatnonzero(~inside)
        cut = cut[shapely.intersects(kg[ki[cut]], pg[pi[cut]])]
    finally:
        shapely.destroy_prepared(kg[fresh])
    inter = np.zeros(len(pi))
    inter[inside] = shapely.area(pg[pi[inside]])
    inter[cut] = shapely.area(shapely.intersection(pg[pi[cut]], kg[ki[cut]]))
    # per parcel the largest area, then the smallest park id (missing last), then the first
    # pair: group maxima on integer codes instead of a sort with the ids as text
    some = inter > 0
    pi, ki, inter = pi[some], ki[some], inter[some]
    keep = inter == _group_max(inter, pi)
    pi, ki = pi[keep], ki[keep]
    rank, _ = pd.factorize(parks["park_id"], sort=True)
    rank = np.where(rank < 0, len(rank) + 1, rank).astype(float)[ki]
    keep = rank == -_group_max(-rank, pi)
    pi, ki = pi[keep], ki[keep]
    first = ~pd.Series(pi).duplicated().to_numpy()
    values = np.full(len(parcels), None, dtype=object)
    values[pi[first]] = parks["park_id"].to_numpy()[ki[first]]
    return pd.Series(values, index=parcels.index, dtype=object, name="park_id")


def _grade_counts(grades: pd.Series, keys: pd.Series) -> pd.DataFrame:
    g = grades.fillna("").astype(str)
    table = pd.crosstab(keys, g).reindex(columns=list("ABCD"), fill_value=0)
    return table.rename(columns={c: f"n_{c.lower()}" for c in "ABCD"})


def park_figures(
    parks: gpd.GeoDataFrame,
    parcels: pd.DataFrame,
    enterprises: pd.DataFrame,
    alloc: pd.DataFrame,
    *,
    industrial_codes: Sequence[str] = ("0601", "0602", "0508"),
) -> gpd.GeoDataFrame:
    """Per park: land, Σ/Σ 亩均 figures, 综合容积率, grade counts, low-efficiency area, rank.

    ``parcels`` must carry ``park_id`` (see :func:`assign_parks`), ``area_m2`` and the
    ``*_sum`` columns of :func:`parcel_figures`; ``far_floor_area_m2`` and ``lowland`` are
    used when present. ``rank`` orders parks of the same ``park_type`` by 亩均税收.
    """
    out = parks[["park_id", "name", "park_type", "star", "geometry"]].copy()
    used = [
        c
        for c in ("park_id", "land_use", "n_enterprises", "area_m2", "tax_sum", "value_added_sum",
                  "energy_tce_sum", "far_floor_area_m2", "lowland")
        if c in parcels
    ]  # fmt: skip
    p = parcels.loc[parcels["park_id"].notna().to_numpy(), used]
    p["industrial"] = p["land_use"].isin(list(industrial_codes))
    p["used_m2"] = (
        np.where(p["n_enterprises"].fillna(0) > 0, p["area_m2"], 0.0)
        if "n_enterprises" in p
        else p["area_m2"]
    )
    grp = p[p["industrial"]].groupby("park_id")
    agg = pd.DataFrame(
        {
            "industrial_m2": grp["area_m2"].sum(),
            "used_m2": grp["used_m2"].sum(),
            "tax": grp["tax_sum"].sum(min_count=1),
            "value_added": grp["value_added_sum"].sum(min_count=1),
            "energy_tce": grp["energy_tce_sum"].sum(min_count=1),
        }
    )
    if "far_floor_area_m2" in p:
        agg["far_floor_area_m2"] = grp["far_floor_area_m2"].sum(min_count=1)
    if "lowland" in p:
        agg["lowland_m2"] = (
            p[p["lowland"].fillna(0).astype(int) == 1].groupby("park_id")["area_m2"].sum()
        )
    agg = agg.reindex(out["park_id"])
    out["area_mu"] = m2_to_mu(out.geometry.area).to_numpy()
    out["industrial_mu"] = m2_to_mu(agg["industrial_m2"].fillna(0.0)).to_numpy()
    used_mu = m2_to_mu(agg["used_m2"].fillna(0.0)).to_numpy()
    out["tax_per_mu"] = _safe_ratio(
        pd.Series(agg["tax"].to_numpy(), index=out.index), pd.Series(used_mu, index=out.index)
    )
    out["va_per_mu"] = _safe_ratio(
        pd.Series(agg["value_added"].to_numpy(), index=out.index),
        pd.Series(used_mu, index=out.index),
    )
    out["va_per_tce"] = _safe_ratio(
        pd.Series(agg["value_added"].to_numpy(), index=out.index),
        pd.Series(agg["energy_tce"].to_numpy(), index=out.index),
    )
    if "far_floor_area_m2" in agg:
        out["far"] = _safe_ratio(
            pd.Series(agg["far_floor_area_m2"].to_numpy(), index=out.index),
            pd.Series(agg["industrial_m2"].to_numpy(), index=out.index),
        )
    if "lowland_m2" in agg:
        out["lowland_mu"] = m2_to_mu(agg["lowland_m2"].fillna(0.0)).to_numpy()
    # grades of the firms whose land lies (mostly) in the park: each firm's largest part
    # of land (integer sorts and counts; the parks' ids looked up once per distinct id)
    main = _main_links(alloc)
    park = _link_parks(alloc, parcels)
    park = pd.Series(park.array.take(main), dtype=park.dtype)
    in_park = park.notna().to_numpy()
    key, ids = pd.factorize(park.fillna("—"))  # firms outside every park count under "—"
    # each park's id among them; -1 (none) picks the zero row appended to the counts
    at = pd.Index(ids).get_indexer(out["park_id"])
    if "grade" in enterprises:
        codes = enterprises["credit_code"]
        if _arrow_text(codes.dtype, alloc["credit_code"].dtype):  # the lookup made before
            firm = _firm_positions(enterprises, alloc)[main]
            grades = pd.Series(enterprises["grade"].array.take(firm, allow_fill=True))
        else:  # as before (Series.map, with its matching of missing codes)
            firm_grades = enterprises[["credit_code", "grade"]].drop_duplicates("credit_code")
            mapper = _column_by(firm_grades, "credit_code", "grade")
            grades = _map_by(alloc["credit_code"].take(main), mapper)
        grades = grades.fillna("").astype(str)
        letter = pd.Index(list("ABCD")).get_indexer(grades)  # -1: not counted
        counts = np.bincount(key * 5 + letter + 1, minlength=5 * len(ids)).reshape(-1, 5)
        counts = np.vstack([counts, np.zeros(5, dtype=counts.dtype)])
        for i, col in enumerate(("n_a", "n_b", "n_c", "n_d")):
            out[col] = counts[at, i + 1]
    firms = np.append(np.bincount(key[in_park], minlength=len(ids)), 0)
    out["n_enterprises"] = firms[at]
    out["rank"] = (
        out.groupby("park_type")["tax_per_mu"].rank(ascending=False, method="min").astype("Int64")
    )
    return out.reset_index(drop=True)


def builtin_targets() -> pd.DataFrame:
    """The 2022 city targets for 规上工业亩均税收 from the provincial work plan."""
    with (
        resources.files("mujun_geo.data").joinpath("targets_2022.csv").open(encoding="utf-8") as fh
    ):
        return pd.read_csv(fh, comment="#", dtype={"region_code": str})


#: The firm columns that :func:`_region_sums` reads.
_REGION_SUMS = ("land_alloc_mu", "tax", "value_added", "energy_tce")


def _region_sums(firms: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    g = firms.assign(_key=key).groupby("_key")
    sums = pd.DataFrame(
        {
            "n_firms": g.size(),
            "land_mu": g["land_alloc_mu"].sum(),
            "tax": g["tax"].sum(min_count=1),
            "value_added": g["value_added"].sum(min_count=1),
            "energy_tce": g["energy_tce"].sum(min_count=1),
        }
    )
    sums["tax_per_mu"] = _safe_ratio(sums["tax"], sums["land_mu"])
    sums["va_per_mu"] = _safe_ratio(sums["value_added"], sums["land_mu"])
    sums["va_per_tce"] = _safe_ratio(sums["value_added"], sums["energy_tce"])
    return sums


def _in_scope(enterprises: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """规上工业 firms with counted land: the population of the provincial targets.

    ``columns``: only these (those present), not a copy of every column of the firms.
    """
    e = enterprises
    mask = (
        (e["scale"] == "above") & (e["sector"] == "industry") & (e["land_alloc_mu"].fillna(0) > 0)
    )
    if "rejected" in e:
        mask &= ~e["rejected"].astype(bool)
    if columns is None:
        return e[mask]
    return e.loc[mask.to_numpy(), [c for c in dict.fromkeys(columns) if c in e]]


def region_figures(
    regions: gpd.GeoDataFrame,
    enterprises: pd.DataFrame,
    *,
    targets: pd.DataFrame | None = None,
    year: int = 2022,
    previous: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Per region (county and city): 规上工业 Σ/Σ figures, targets, gaps and growth.

    ``enterprises`` needs ``region_code`` (county), ``scale``, ``sector``, ``tax``,
    ``value_added``, ``energy_tce`` and ``land_alloc_mu``. A city's figures come from the
    firms of its counties (first four digits of the code). ``targets`` adds to the
    built-in table (a user row for the same region and year wins). ``previous`` is last
    year's ``regions`` layer: growth of 亩均税收 and 亩均增加值 is then reported against the
    provincial growth targets.
    """
    firms = _in_scope(enterprises, ["region_code", *_REGION_SUMS])
    county = _region_sums(firms, firms["region_code"].astype(str))
    city = _region_sums(firms, firms["region_code"].astype(str).str[:4] + "00")
    stats = pd.concat([county, city[~city.index.isin(county.index)]])
    out = regions[["region_code", "name", "level", "geometry"]].copy()
    for col in (
        "n_firms",
        "land_mu",
        "tax",
        "value_added",
        "energy_tce",
        "tax_per_mu",
        "va_per_mu",
        "va_per_tce",
    ):
        out[col] = out["region_code"].map(stats[col])
    out["n_firms"] = out["n_firms"].fillna(0).astype(int)
    tgt = builtin_targets()
    if targets is not None and len(targets):
        user = targets.copy()
        if "region_code" not in user or user["region_code"].isna().any():
            names = regions.set_index("name")["region_code"].astype(object)
            given = (
                user["region_code"].astype(object)
                if "region_code" in user
                else pd.Series(None, index=user.index, dtype=object)
            )
            user["region_code"] = given.where(given.notna(), user["name"].map(names))
        tgt = pd.concat([user, tgt], ignore_index=True).drop_duplicates(
            ["region_code", "year"], keep="first"
        )
    tgt = tgt[tgt["year"].astype(int) == int(year)].set_index("region_code")
    for col in [c for c in tgt.columns if c.endswith("_target")]:
        out[col] = out["region_code"].map(tgt[col])
        base = col[: -len("_target")]
        if base in out:
            gap = (
                col.replace("_per_mu_target", "_gap")
                if col.endswith("_per_mu_target")
                else f"{base}_gap"
            )
            out[gap] = out[base] - out[col]
    if previous is not None and len(previous):
        prev = previous.drop_duplicates("region_code").set_index("region_code")
        for base, target in GROWTH_TARGETS.items():
            if base in prev:
                out[f"{base}_prev"] = out["region_code"].map(prev[base])
                out[f"{base}_growth"] = (
                    out[base] / out[f"{base}_prev"].where(out[f"{base}_prev"] > 0) - 1
                )
                out[f"{base}_growth_target"] = target
                out[f"{base}_growth_met"] = out[f"{base}_growth"] >= target
        if "va_per_tce" in prev:
            out["va_per_tce_prev"] = out["region_code"].map(prev["va_per_tce"])
            # energy per value added is the inverse: its change in %
            out["energy_per_va_change"] = out["va_per_tce_prev"] / out["va_per_tce"] - 1
    return out.reset_index(drop=True)


def industry_figures(enterprises: pd.DataFrame) -> pd.DataFrame:
    """Per GB/T 4754 two-digit industry (规上工业 with land): Σ/Σ figures and grade counts."""
    firms = _in_scope(enterprises, ["industry_code", "grade", *_REGION_SUMS])
    key = firms["industry_code"].astype(str).str[:2]
    out = _region_sums(firms, key)
    if "grade" in firms:
        out = out.join(_grade_counts(firms["grade"], key))
    out.index.name = "industry_code"
    return out.reset_index()


def leaders(
    enterprises: pd.DataFrame,
    *,
    by: str = "industry",
    measure: str = "tax_per_mu",
    top: int = 10,
    park_types: pd.Series | None = None,
) -> pd.DataFrame:
    """亩均效益领跑者: the top ``top`` graded firms by ``measure`` per industry or park type.

    ``by`` is ``"industry"`` (two-digit code) or ``"park_type"`` (needs ``park_types``: a
    Series of park type per firm index). Ties keep the smaller credit code first.
    """
    if by not in ("industry", "park_type"):
        msg = f"`by` must be one of 'industry', 'park_type', got {by!r}"
        raise ValueError(msg)
    graded = (
        enterprises.get("grade", pd.Series("", index=enterprises.index))
        .fillna("")
        .isin(list("ABCD"))
        .to_numpy()
    )
    rows = np.flatnonzero(graded & enterprises[measure].notna().to_numpy())
    if by == "industry":
        group = enterprises["industry_code"].take(rows).astype(str).str[:2]
    else:
        if park_types is None:
            msg = "`park_types` is needed when by='park_type'"
            raise ValueError(msg)
        group = park_types.reindex(enterprises.index[rows])
        named = group.notna().to_numpy()
        rows, group = rows[named], group[named]
    # order by group, measure (descending), credit code: integer codes, the codes compared
    # only where group and measure tie; then only the top rows are taken (not a sort of
    # every graded firm's columns)
    code, _ = pd.factorize(group, sort=True)
    no_group = code < 0  # last, without a rank (as `cumcount` leaves them)
    code = np.where(no_group, code.max(initial=-1) + 1, code)
    value = enterprises[measure].take(rows)
    if value.dtype == np.float64:  # no NaN here; equal values tie, as in a sort
        value = value.to_numpy()
    else:
        value = pd.factorize(value, sort=True)[0]
    order = _order_then_text([-value, code], enterprises["credit_code"].take(rows))
    code = code[order]
    start = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(order) else order
    rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)])) + 1
    if no_group.any():
        rank = np.where(no_group[order], np.nan, rank)
    top_rows = order[rank <= top]
    used = ["credit_code", "name", measure, "grade", "industry_code"]
    e = enterprises[[c for c in dict.fromkeys(used) if c in enterprises]].take(rows[top_rows])
    e["group"] = pd.Series(group.array.take(top_rows), index=e.index, dtype=group.dtype)
    e["leader_rank"] = rank[rank <= top]
    cols = ["group", "leader_rank", "credit_code", "name", measure, "grade"]
    out = e[[c for c in cols if c in e]]
    return out.assign(by=by, measure=measure).reset_index(drop=True)


def _order_then_text(keys: Sequence[np.ndarray], text: pd.Series) -> np.ndarray:
    """Stable order by integer ``keys``, then by ``text`` (missing last), then by position.

    As :func:`numpy.lexsort`, the last key is the first one compared. The same order as a
    stable sort on all of them, with the text compared (sorted) only within runs of rows
    tied on ``keys``.
    """
    order = np.lexsort(keys)
    if len(order) < 2:
        return order
    tied = np.ones(len(order) - 1, dtype=bool)
    for key in keys:
        k = key[order]
        tied &= k[1:] == k[:-1]
    if not tied.any():
        return order
    rows = np.flatnonzero(np.r_[tied, False] | np.r_[False, tied])  # rows in a run of ties
    run = np.cumsum(np.r_[True, ~tied])[rows]
    rank, _ = pd.factorize(text.take(order[rows]), sort=True)
    rank = np.where(rank < 0, len(rank) + 1, rank)  # missing last
    order[rows] = order[rows][np.lexsort((rank, run))]
    return order


def parcel_changes(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Each parcel's change since last year: grade, 亩均税收, 容积率 and low-efficiency flag.

    Parcels only in one year are listed with ``note`` 新增宗地 / 本年无此宗地 (split, merged
    or re-surveyed parcels get new codes, so staff see them rather than a silent gap).
    """
    cols = [c for c in ("grade", "tax_per_mu", "far", "lowland") if c in current and c in previous]
    # the columns compared only (deduplicating copies the kept rows of every column)
    cur = current[["parcel_id", *cols]].drop_duplicates("parcel_id").set_index("parcel_id")
    prev = previous[["parcel_id", *cols]].drop_duplicates("parcel_id").set_index("parcel_id")
    ids = cur.index.union(prev.index)
    out = pd.DataFrame(index=ids)
    for col in cols:
        out[f"{col}_prev"] = prev[col].reindex(ids)
        out[col] = cur[col].reindex(ids)
    if "grade" in cols:
        a = _map_few(out["grade_prev"], _GRADE_ORDER)
        b = _map_few(out["grade"], _GRADE_ORDER)
        out["grade_change"] = (a - b).astype("Int64")
    for col in ("tax_per_mu", "far"):
        if col in cols:
            out[f"{col}_change"] = out[col] - out[f"{col}_prev"]
    conds = [_absent(ids, prev.index), _absent(ids, cur.index)]
    notes = ["新增宗地", "本年无此宗地"]
    if "lowland" in cols:
        now = out["lowland"].fillna(0).astype(int).to_numpy()
        before = out["lowland_prev"].fillna(0).astype(int).to_numpy()
        conds += [(now == 1) & (before == 0), (now == 0) & (before == 1)]
        notes += ["新认定低效", "退出低效"]
    out["note"] = np.select(conds, notes, default="")
    out.index.name = "parcel_id"
    return out.reset_index()


def grade_changes(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Each firm's grade change since last year (``change`` +2 = up two grades, e.g. C→A)."""
    # the columns read below only (deduplicating copies the kept rows of every column)
    used = ["credit_code", "name", "grade", "tax_per_mu", "score"]
    cur = current[[c for c in used if c in current]]
    prev = previous[[c for c in used if c in previous]]
    cur = cur.drop_duplicates("credit_code").set_index("credit_code")
    prev = prev.drop_duplicates("credit_code").set_index("credit_code")
    codes = cur.index.union(prev.index)
    out = pd.DataFrame(index=codes)
    out["name"] = (
        cur["name"].reindex(codes).fillna(prev.get("name", pd.Series(dtype=object)).reindex(codes))
    )
    out["grade_prev"] = prev["grade"].reindex(codes).fillna("")
    out["grade"] = cur["grade"].reindex(codes).fillna("")
    a = _map_few(out["grade_prev"], _GRADE_ORDER)
    b = _map_few(out["grade"], _GRADE_ORDER)
    out["change"] = (a - b).astype("Int64")
    change = out["change"].astype(float).to_numpy()
    out["note"] = np.select(
        [_absent(codes, prev.index), _absent(codes, cur.index), change > 0, change < 0],
        ["新增企业", "本年无数据", "升档", "降档"],
        default="",
    )
    for col in ("tax_per_mu", "score"):
        if col in cur and col in prev:
            out[f"{col}_prev"] = prev[col].reindex(codes)
            out[f"{col}_change"] = cur[col].reindex(codes) - out[f"{col}_prev"]
    out.index.name = "credit_code"
    return out.reset_index()
