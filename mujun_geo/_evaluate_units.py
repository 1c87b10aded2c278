"""Classes, eligibility and evaluation units (宗地/集团评价) of :mod:`mujun_geo.evaluate`.

Private helper: see :mod:`mujun_geo.evaluate` for the rules.

Text columns stay Arrow-backed ``str`` arrays and every grouping runs on integer codes
(``pd.factorize`` without sorting, ``np.bincount``, ``ufunc.at``): at province scale the
object-array round trips and sorted string groupbys were most of the run time. Sums
still go through pandas groupby on integer keys, so they add in the same (Kahan) way and
order as before and the results stay bit-identical.

Examples
--------
>>> import pandas as pd
>>> prefix_match(np.array(["2611", "34", ""], dtype=object), ["26", "3"]).tolist()
[True, True, False]
>>> truthy(pd.Series(["是", "否", None, "TRUE"])).tolist()
[True, False, False, True]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .scoring_config import EvalConfig

__all__ = [
    "CLASS_BY_CODE",
    "PRIORITY",
    "build_units",
    "categorical",
    "class_codes",
    "classify",
    "codes_of",
    "dense_codes",
    "prefix_match",
    "strings",
    "text",
    "truthy",
]

#: Class precedence when firms of several classes form one unit.
PRIORITY = {"above": 3, "below": 2, "service": 1, "service_building": 0, "": -1}
#: Class key of each class code (code = priority, ``""`` last): categories of ``units["cls"]``.
CLASS_BY_CODE = ("service_building", "service", "below", "above", "")
_TRUE = {"true", "1", "1.0", "yes", "y", "t", "是", "√", "有"}
_NO_VETO = {"", "nan", "none", "false", "0", "否", "无", "<na>"}


def text(s: pd.Series) -> np.ndarray:
    """Return stripped text with ``""`` for missing values."""
    return s.astype("string").str.strip().fillna("").to_numpy(dtype=object)


def strings(s: pd.Series) -> ExtensionArray:
    """:func:`text` as an Arrow-backed ``str`` array (no object round trip).

    A column of Python strings (``object`` dtype) is converted once per distinct value:
    such columns (region, sector, scale, veto …) repeat few values.

    Examples
    --------
    >>> strings(pd.Series([" a ", None, 3])).tolist()
    ['a', '', '3']
    >>> strings(pd.Series([" b", None, "b ", "c"], dtype=object)).tolist()
    ['b', '', 'b', 'c']
    """
    if s.dtype == object:
        values = s.to_numpy()
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
            # factorize compares strings exactly; missing values get code -1
            codes, uniques = pd.factorize(values)
            table = _strip(pd.Series(np.append(uniques.astype(object), ""), dtype=object))
            return table.take(np.where(codes < 0, len(uniques), codes))
    return _strip(s)


def _strip(s: pd.Series) -> ExtensionArray:
    return s.astype("string").str.strip().fillna("").astype("str").array


def truthy(s: pd.Series) -> np.ndarray:
    """Read flags given as bool, 0/1 or 是/否-style text (missing = False)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return (s.fillna(0) != 0).to_numpy(dtype=bool)
    # the test is per value: run it once per distinct text
    codes, uniques = pd.factorize(strings(s))
    words = np.asarray(uniques, dtype=object).astype(str)
    return np.isin(np.char.lower(words), list(_TRUE))[codes]


def prefix_match(codes: np.ndarray | ExtensionArray, prefixes: Sequence[str]) -> np.ndarray:
    """Flag the industry codes that start with any of ``prefixes``."""
    s = pd.Series(codes, dtype="string")
    m = np.zeros(len(codes), dtype=bool)
    for p in prefixes:
        m |= s.str.startswith(p).fillna(False).to_numpy(dtype=bool)
    return m


def categorical(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    """Categorical of text from integer codes (categories must be distinct).

    The categories are kept as ``object``: reading the column back as Python strings is
    then a NumPy take rather than an Arrow take plus conversion.
    """
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(categories), dtype=object))


def dense_codes(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct (non-negative) ``key`` values and the first position of each.

    Codes number the distinct values in increasing order, as
    ``np.unique(key, return_index=True, return_inverse=True)`` does, but without its sort
    when the keys are small integers (a bincount-sized table).
    """
    n = key.size
    if not n:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    size = int(key.max()) + 1
    if size > 4 * n + 1024:
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
        return inv.reshape(-1), first
    first = np.full(size, n, dtype=np.intp)
    np.minimum.at(first, key, np.arange(n))
    present = first < n
    return (np.cumsum(present) - 1)[key], first[present]


def codes_of(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and distinct values (object array) of a column; a categorical's own."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy(), s.cat.categories.to_numpy(dtype=object)
    codes, uniques = pd.factorize(s)
    return codes, np.asarray(uniques, dtype=object)


def class_codes(prio: np.ndarray) -> np.ndarray:
    """Codes into :data:`CLASS_BY_CODE` of class priorities (−1, unknown scale, is last)."""
    return np.where(prio < 0, len(CLASS_BY_CODE) - 1, prio)


# ---------------------------------------------------------------------------------------------
# STEP 2: class, eligibility and evaluation units


def classify(
    df: pd.DataFrame, cfg: EvalConfig, service: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return each row's class priority (:data:`PRIORITY`), exclusion reason and eligibility.

    The reason says why a row is not evaluated (``""`` when it is eligible); ``service``
    flags the rows whose ``sector`` is ``service``.
    """
    n = len(df)
    scale = df["scale"]
    above = (scale == "above").to_numpy(dtype=bool)
    as_below = df["newly_scaled"].to_numpy() & cfg.settings.newly_scaled_as_below
    no_land = ~(df["land_mu"].to_numpy() > 0)
    service_prio = np.where(
        no_land & ("service_building" in cfg.classes),
        PRIORITY["service_building"],
        PRIORITY["service"],
    )
    prio = np.select(
        [service, above & ~as_below, (scale != "").to_numpy(dtype=bool)],
        [service_prio, PRIORITY["above"], PRIORITY["below"]],
        PRIORITY[""],
    ).astype(np.int8)
    reason = np.full(n, "", dtype=object)
    free = np.ones(n, dtype=bool)

    def mark(mask: np.ndarray, why: Any) -> None:
        sel = mask & free
        reason[sel] = why(np.flatnonzero(sel)) if callable(why) else why
        free[sel] = False

    mark(
        (df["match_status"] == "rejected").to_numpy(dtype=bool),
        "地企对应已驳回（match_status=rejected），不参与评价",
    )
    # prefixes are matched once per distinct industry code
    codes, industries = codes_of(df["industry_code"])
    excl = prefix_match(industries, cfg.settings.excluded_industries)[codes]

    def excluded(rows: np.ndarray) -> list[str]:
        return [f"行业代码{c}不在评价范围，不参与评价" for c in industries[codes[rows]]]

    mark(excl, excluded)
    mark(prio == PRIORITY[""], "企业规模（scale）未知，无法确定评价类别")
    mark(df["utility"].to_numpy(), "公益性企业，不参与评价分类")
    # a class missing from the config is checked per unit: a service firm on an industrial
    # parcel shares the parcel's grade even when the config does not evaluate services
    return prio, reason, free


def _first_rows(keys: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``keys`` (sorted) and, for each, the first of ``rows`` (ascending) holding it."""
    first = dense_codes(keys)[1]
    return keys[first], rows[first]


def _components(
    df: pd.DataFrame, eligible: np.ndarray, cfg: EvalConfig, parcel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label rows by unit; also return group-parent rows and rows joined by group links.

    ``parcel`` holds the ``eval_unit`` code of each row (``pd.factorize``). Labels number
    the units in the order of their first row, as ``connected_components`` does.
    """
    n = len(df)
    rows = np.arange(n)
    rep = rows.copy()  # a row of the same unit: the first row of its parcel
    parent = np.zeros(n, dtype=bool)
    grouped = np.zeros(n, dtype=bool)
    if cfg.settings.parcel_mode:
        idx = np.flatnonzero(eligible & (df["eval_unit"] != "").to_numpy(dtype=bool))
        if idx.size:
            inv, first = dense_codes(parcel[idx])
            rep[idx] = idx[first][inv]
    kid = row = np.zeros(0, dtype=np.intp)
    if cfg.settings.group_mode:
        # one code space for credit_code and group_code, so "group_code == credit_code"
        # is an integer comparison; keys combine it with the region code
        both = pd.factorize(pd.concat([df["credit_code"], df["group_code"]], ignore_index=True))
        cc, gc = both[0][:n].astype(np.int64), both[0][n:].astype(np.int64)
        reg, reg_uniques = pd.factorize(df["region_code"])
        nreg = max(len(reg_uniques), 1)
        has_cc = (df["credit_code"] != "").to_numpy(dtype=bool)
        has_gc = (df["group_code"] != "").to_numpy(dtype=bool)
        par = np.flatnonzero(eligible & has_cc)
        pkeys, prow = _first_rows(cc[par] * nreg + reg[par], par)
        kids = np.flatnonzero(eligible & has_gc & (gc != cc))
        kkey = gc[kids] * nreg + reg[kids]
        pos = np.minimum(np.searchsorted(pkeys, kkey), max(pkeys.size - 1, 0))
        hit = pkeys[pos] == kkey if pkeys.size else np.zeros(kids.size, dtype=bool)
        kid, row = kids[hit], prow[pos[hit]]
        parent[row] = True
        grouped[kid] = True
        grouped[row] = True
    if kid.size:
        i, j = np.concatenate([rows, kid]), np.concatenate([rep, row])
        graph = coo_matrix((np.ones(i.size), (i, j)), shape=(n, n))
        labels = connected_components(graph, directed=False)[1].astype(np.intp)
    else:
        # parcels only: the unit of a row is its parcel's first row, numbered in row order
        labels = (np.cumsum(rep == rows) - 1)[rep]
    return labels, parent, grouped


def _land(
    df: pd.DataFrame,
    cfg: EvalConfig,
    labels: np.ndarray,
    counted: np.ndarray,
    parcel: tuple[np.ndarray, Any],
    nunits: int,
    spans: bool,
) -> np.ndarray:
    """Land per unit: maximum per parcel (``eval_unit``, else per row), summed over parcels.

    The sum runs (Kahan, pandas) over the counted parcels of a unit in the order of their
    keys ``"u" + eval_unit`` / ``"r" + row``, as the string groupby it replaces did; the
    order only matters for units with three parcels or more, so only those build the
    strings. Unless group links join units across parcels (``spans``), every unit is one
    parcel or one row, and its land is just the maximum over its rows (a one-term sum is
    the term).
    """
    land = df["land_mu"].to_numpy(dtype=float)
    if not spans:
        out = np.full(nunits, np.nan)
        np.fmax.at(out, labels, land)
        return out
    n = len(df)
    codes, uniques = parcel
    nkeys = len(uniques) + n
    by_parcel = cfg.settings.parcel_mode & (df["eval_unit"] != "").to_numpy(dtype=bool)
    pkey = np.where(by_parcel, codes, len(uniques) + np.arange(n))
    gkey, ginv = np.unique(labels.astype(np.int64) * nkeys + pkey, return_inverse=True)
    gland = np.full(gkey.size, np.nan)
    np.fmax.at(gland, ginv, land)
    gcounted = np.bincount(ginv, weights=counted, minlength=gkey.size) > 0
    gunit, gpkey = np.divmod(gkey, nkeys)
    sel = np.flatnonzero(gcounted)
    many = np.bincount(gunit[sel], minlength=nunits) >= 3
    if many[gunit[sel]].any():
        head = sel[~many[gunit[sel]]]
        tail = sel[many[gunit[sel]]]
        names = np.array(
            [
                f"u{uniques[k]}" if k < len(uniques) else f"r{k - len(uniques)}"
                for k in gpkey[tail].tolist()
            ],
            dtype=object,
        )
        order = sorted(range(tail.size), key=lambda i: (gunit[tail[i]], names[i]))
        sel = np.concatenate([head, tail[np.asarray(order, dtype=np.intp)]])
    total = pd.Series(gland[sel]).groupby(gunit[sel]).sum(min_count=1)
    return total.reindex(pd.RangeIndex(nunits)).to_numpy(dtype=float)


def build_units(
    df: pd.DataFrame,
    cfg: EvalConfig,
    prio: np.ndarray,
    reason: np.ndarray,
    eligible: np.ndarray,
    service: np.ndarray,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Return the unit label per row and the unit table (lead firm, class, sums, flags).

    Units are numbered from 0 in the order of their first row; the table's index is that
    number. ``units["cls"]`` is a categorical over :data:`CLASS_BY_CODE`; the lead firm's
    ``region_code`` and ``industry_code`` are categoricals too.
    """
    parcel = pd.factorize(df["eval_unit"])
    labels, parent, grouped = _components(df, eligible, cfg, parcel[0])
    n = len(df)
    nunits = int(labels.max()) + 1 if n else 0
    size = np.bincount(labels, minlength=nunits)
    has_industrial = np.bincount(labels, weights=~service, minlength=nunits) > 0
    counted = ~service | ~has_industrial[labels]
    # lead row: counted, group parent, highest class, largest revenue, then first row;
    # single-row units need no sort
    lead_row = np.full(nunits, -1, dtype=np.intp)
    multi = size[labels] > 1
    lead_row[labels[~multi]] = np.flatnonzero(~multi)
    rows = np.flatnonzero(multi)
    if rows.size:
        revenue = df["revenue"].to_numpy(dtype=float)[rows]
        revenue = np.where(np.isnan(revenue), -np.inf, revenue)
        order = rows[
            np.lexsort((-revenue, -prio[rows], ~parent[rows], ~counted[rows], labels[rows]))
        ]
        first = np.r_[True, labels[order[1:]] != labels[order[:-1]]]
        lead_row[labels[order[first]]] = order[first]
    units = pd.DataFrame(index=pd.RangeIndex(nunits, name="unit"))
    units["lead_row"] = lead_row
    cls = np.full(nunits, -2, dtype=np.int8)
    np.maximum.at(cls, labels[counted], prio[counted])
    units["cls"] = categorical(class_codes(cls), CLASS_BY_CODE)
    units["size"] = size
    units["grouped"] = np.bincount(labels, weights=grouped, minlength=nunits) > 0
    for c in ("credit_code", "name"):
        units[c] = df[c].array.take(lead_row)
    for c in ("region_code", "industry_code"):  # few distinct codes: categoricals
        codes, uniques = pd.factorize(df[c])
        units[c] = categorical(codes[lead_row], list(uniques))
    units["reason"] = pd.Series(reason[lead_row], index=units.index, dtype=object)
    # STEP 2b: sums over counted members (the columns indicators and 加减分 read); land
    # once per parcel (eval_unit) key. Group order is irrelevant: each group adds its rows
    # in row order, so no sort.
    read = {
        c
        for spec in cfg.classes.values()
        for i in spec.indicators
        for c in (i.numerator, i.denominator)
    }
    read |= {r.column for r in cfg.bonus_rules}
    read |= {c for c in (cfg.settings.bonus_column, cfg.settings.penalty_column) if c}
    num_cols = [  # (``num:<name>``: the number of a column that is also a flag)
        c
        for c in df.columns
        if c.removeprefix("num:") in read and c != "land_mu" and pd.api.types.is_float_dtype(df[c])
    ]
    sums = df.loc[counted, num_cols].groupby(labels[counted], sort=False).sum(min_count=1)
    sums.columns = [c.removeprefix("num:") for c in num_cols]
    sums = sums.reindex(pd.RangeIndex(nunits)).add_prefix("sum:")
    sums.index = units.index
    units = pd.concat([units, sums], axis=1)
    units["sum:land_mu"] = _land(df, cfg, labels, counted, parcel, nunits, bool(grouped.any()))
    for c in [c for c in df.columns if df[c].dtype == bool]:
        hit = df[c].to_numpy() & counted
        units[c] = np.bincount(labels, weights=hit, minlength=nunits) > 0
    units["veto"] = _vetoes(df["veto"].array, labels, counted, nunits)
    return labels, units


def _vetoes(veto: ExtensionArray, labels: np.ndarray, counted: np.ndarray, nunits: int) -> Any:
    """Per unit: the distinct veto reasons of its counted rows, in row order, ``；``-joined."""
    codes, uniques = pd.factorize(veto)
    words = np.asarray(uniques, dtype=object)
    none = np.isin(np.char.lower(words.astype(str)), list(_NO_VETO))
    # only the (few) rows with a veto go through Python
    has = np.flatnonzero(counted & ~none[codes])
    reasons: dict[Any, dict[str, None]] = {}
    for lab, v in zip(labels[has].tolist(), words[codes[has]].tolist()):
        reasons.setdefault(lab, {})[v] = None
    out = np.full(nunits, "", dtype=object)
    for lab, v in reasons.items():
        out[lab] = "；".join(v)
    return pd.array(out, dtype="str")
