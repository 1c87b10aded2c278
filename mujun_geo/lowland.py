"""低效工业用地 (low-efficiency industrial land): configurable rules, results and summary.

No province-wide numeric definition exists (DOMAIN.md §3); counties set their own. Rules are
therefore configuration: a preset name or a list of rule dicts, each recorded by its ``name``
on every parcel it flags, together with the figures behind it.

Rule kinds and their parameters (defaults in brackets):

``vacant``
    Industrial parcel with no matched enterprise (``n_enterprises == 0``).
``idle``
    Enterprises but no building footprint (``footprint_m2 == 0``).
``far_below_min``
    ``far`` below the minimum 容积率 of the parcel's main industry (``industry_code``, see
    :func:`main_industry`; table :func:`far_minimums`), only where buildings exist.
    ``far_table`` [the packaged national table]. An industry missing from the table leaves
    the rule unapplied and writes a note.
``coverage_below_min``
    ``0 < coverage < min`` [0.30, national 建筑系数 ≥ 30 %].
``threshold``
    ``column`` below a fixed value (``below``), above one (``above``) or below a multiple of
    the area-weighted mean of the same region (``below_mean_factor``; mean = Σ value×亩 / Σ亩
    over industrial parcels with enterprises, per ``region_code`` when present). Options
    ``min_area_mu`` [None] and ``require_firms`` [True].
``stopped``
    Enterprises on it, ``tax_sum <= 0`` and ``electricity_sum == 0`` (停产).
``grade``
    Parcel ``grade`` in ``grades`` [("D",)].

Every rule looks at industrial parcels only (``land_use`` in ``industrial_codes``).

Presets: ``default`` (vacant, idle, far_below_min, coverage_below_min, low_tax_per_mu =
亩均税收 < 10 万元/亩 on ≥ 10 亩 (新昌 "双十"), stopped, d_grade), ``shuangshi`` (新昌 "双十"
only) and ``shaoxing`` (亩均产值 < 5 万元/亩, from parcel ``revenue_per_mu``).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

import geopandas as gpd

from ._errors import ConfigError, CRSError, SchemaError
from .aggregate import _positions
from .units import M2_PER_MU

__all__ = [
    "LowlandResult",
    "PRESETS",
    "far_minimums",
    "flag_lowland",
    "lowland_rules",
    "main_industry",
]

logger = logging.getLogger(__name__)

_KINDS: dict[str, dict[str, Any]] = {
    "vacant": {},
    "idle": {},
    "far_below_min": {"far_table": None},
    "coverage_below_min": {"min": 0.30},
    "threshold": {
        "column": None,
        "below": None,
        "above": None,
        "below_mean_factor": None,
        "min_area_mu": None,
        "require_firms": True,
    },
    "stopped": {},
    "grade": {"grades": ("D",)},
}

_LOW_TAX = {
    "name": "low_tax_per_mu",
    "kind": "threshold",
    "column": "tax_per_mu",
    "below": 10.0,
    "min_area_mu": 10.0,
}

#: Built-in rule sets; :func:`lowland_rules` returns editable copies.
PRESETS: dict[str, list[dict[str, Any]]] = {
    "default": [
        {"name": "vacant"},
        {"name": "idle"},
        {"name": "far_below_min"},
        {"name": "coverage_below_min", "min": 0.30},
        _LOW_TAX,
        {"name": "stopped"},
        {"name": "d_grade", "kind": "grade", "grades": ("D",)},
    ],
    "shuangshi": [_LOW_TAX],
    "shaoxing": [
        {
            "name": "low_revenue_per_mu",
            "kind": "threshold",
            "column": "revenue_per_mu",
            "below": 5.0,
        }
    ],
}


@dataclass(frozen=True)
class LowlandResult:
    """Result of :func:`flag_lowland`.

    Attributes
    ----------
    parcels
        All input parcels with ``area_mu`` (added if absent), ``lowland_assessed`` (bool:
        industrial, so the rules looked at it), ``lowland`` (0/1), ``lowland_reasons``
        (";"-joined rule names in rule order), ``lowland_notes`` and the figure columns
        the rules add (``far_min``, ``coverage_min``, ``<rule>_threshold``).
    lowland
        Flagged parcels only: ``parcel_id``, ``area_mu``, ``lowland_reasons``,
        ``lowland_notes`` and the figures behind each reason (geometry kept if present).
    rules
        The rules applied, with every parameter filled in.
    """

    parcels: pd.DataFrame
    lowland: pd.DataFrame
    rules: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# tables and codes
# --------------------------------------------------------------------------------------
def _per_unique(fn: Callable[[pd.Series], pd.Series], values: pd.Series) -> pd.Series:
    """``fn(values)`` for an element-wise ``fn``, worked out once per distinct value.

    Code columns repeat a few values over many rows (land use, industry); missing values
    count as one more distinct value, so ``fn`` sees them too.
    """
    if len(values) < 1000:
        return fn(values)
    which, uniques = pd.factorize(values, use_na_sentinel=False)
    if len(uniques) > len(values) // 4:
        return fn(values)
    done = fn(pd.Series(uniques, name=values.name))
    return pd.Series(done.array.take(which), index=values.index, name=done.name)


def _codes(values: pd.Series) -> pd.Series:
    """Industry/land-use codes as strings; numbers that lost a leading zero are padded."""
    return _per_unique(_codes_of, values)


def _codes_of(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        values = values.astype("Float64").round().astype("Int64")
    s = values.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    s = s.mask(s == "")
    odd = (s.str.fullmatch(r"\d+") & (s.str.len() % 2 == 1)).fillna(False).astype(bool)
    return s.where(~odd, "0" + s)


def far_minimums(table: str | os.PathLike[str] | pd.DataFrame | None = None) -> pd.DataFrame:
    """Minimum 容积率 by industry.

    Parameters
    ----------
    table
        None for the packaged national table (``mujun_geo/data/far_min.csv``, GB/T 4754-2017
        codes mapped from the 2002-coded national table, see its README), or a CSV path or
        DataFrame with columns ``industry_code_2017`` and ``far_min`` (``name`` and
        ``source_code_2002`` optional). Codes may have 2–4 digits; lookups use the longest
        matching prefix.

    Returns
    -------
    pandas.DataFrame
        ``industry_code_2017`` (str), ``name``, ``far_min`` (float), ``source_code_2002``.

    Raises
    ------
    SchemaError
        If columns are missing, codes repeat or ``far_min`` is not a positive number.

    Examples
    --------
    >>> t = far_minimums()
    >>> t.set_index("industry_code_2017").loc[["17", "29", "39"], "far_min"].tolist()
    [0.8, 0.8, 1.0]
    """
    if table is None:
        ref = resources.files("mujun_geo") / "data" / "far_min.csv"
        with resources.as_file(ref) as path:
            df = pd.read_csv(path, dtype=str)
        where = "packaged far_min.csv"
    elif isinstance(table, pd.DataFrame):
        df, where = table.copy(), "`far_table`"
    else:
        df, where = pd.read_csv(table, dtype=str), str(table)
    missing = [c for c in ("industry_code_2017", "far_min") if c not in df.columns]
    if missing:
        msg = (
            f"FAR table {where} lacks columns {missing}; it needs `industry_code_2017` "
            "(GB/T 4754-2017 code) and `far_min`."
        )
        raise SchemaError(msg)
    for col in ("name", "source_code_2002"):
        if col not in df.columns:
            df[col] = pd.NA
    df["industry_code_2017"] = _codes(df["industry_code_2017"])
    df["far_min"] = pd.to_numeric(df["far_min"], errors="coerce").astype(float)
    bad = df.index[df["industry_code_2017"].isna() | ~(df["far_min"] > 0)].tolist()
    if bad:
        msg = f"FAR table {where}: rows {bad} have no code or a far_min that is not positive."
        raise SchemaError(msg)
    dup = df["industry_code_2017"][df["industry_code_2017"].duplicated()].tolist()
    if dup:
        msg = f"FAR table {where}: industry codes {dup} appear more than once."
        raise SchemaError(msg)
    cols = ["industry_code_2017", "name", "far_min", "source_code_2002"]
    return df[cols].reset_index(drop=True)


def _prefix_lookup(codes: pd.Series, table: dict[str, float]) -> pd.Series:
    """Value of the longest table code that prefixes each code (NaN when none)."""
    out = pd.Series(np.nan, index=codes.index)
    for n in sorted({len(k) for k in table}, reverse=True):
        hit = codes.str.slice(0, n).map(table).astype(float)
        hit = hit.where(codes.str.len() >= n)
        out = out.fillna(hit)
    return out


def main_industry(
    enterprises: pd.DataFrame,
    matches: pd.DataFrame,
    *,
    digits: int = 2,
    statuses: Sequence[str] | None = ("auto", "confirmed"),
) -> pd.Series:
    """Find the main industry of each parcel: the code held by most of its enterprises.

    Ties go to the code of the enterprise with the largest ``value_added``, then to the
    smallest code.

    Parameters
    ----------
    enterprises
        ``credit_code``, ``industry_code`` (GB/T 4754-2017) and optional ``value_added``.
    matches
        Enterprise–parcel links with ``credit_code``, ``parcel_id`` and optional ``status``.
    digits
        Code length compared (default 2 = 大类).
    statuses
        Link statuses used (default auto and confirmed); None uses every link.

    Returns
    -------
    pandas.Series
        ``industry_code`` indexed by ``parcel_id`` (parcels without coded enterprises absent).

    Examples
    --------
    >>> import pandas as pd
    >>> ent = pd.DataFrame({"credit_code": ["a", "b", "c"],
    ...                     "industry_code": ["3311", "1711", "1752"],
    ...                     "value_added": [900.0, 100.0, 50.0]})
    >>> m = pd.DataFrame({"credit_code": ["a", "b", "c", "a", "b"],
    ...                   "parcel_id": ["P1", "P1", "P1", "P2", "P2"]})
    >>> main_industry(ent, m).to_dict()
    {'P1': '17', 'P2': '33'}
    """
    for name, df, cols in (
        ("enterprises", enterprises, ("credit_code", "industry_code")),
        ("matches", matches, ("credit_code", "parcel_id")),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            msg = f"`{name}` lacks columns {missing} needed for the main industry of parcels."
            raise SchemaError(msg)
    links = matches[["credit_code", "parcel_id"]]  # the links' other columns are not copied
    if statuses is not None and "status" in matches.columns:
        links = links[matches["status"].isin(list(statuses)).to_numpy()]
    # the first row of each credit code counts (as after drop_duplicates): the lookup below
    # finds first rows, so the firms need no deduplicated copy
    va = enterprises["value_added"] if "value_added" in enterprises.columns else np.nan
    code = _per_unique(lambda c: _codes(c).str.slice(0, digits), enterprises["industry_code"])
    value = pd.to_numeric(va, errors="coerce")
    value = pd.Series(value, index=enterprises.index) if np.ndim(value) == 0 else value

    # STEP 1: distinct (firm, parcel) links of firms with a code (as an inner merge on the
    # credit code would keep them: missing codes matching each other), as integer codes
    firm = np.array(_positions(links["credit_code"], pd.Index(enterprises["credit_code"].array)))
    keep = firm >= 0
    keep[keep] = code.notna().to_numpy()[firm[keep]]
    keep &= links["parcel_id"].notna().to_numpy()  # groupby leaves missing parcels out
    firm = firm[keep]
    # parcels and codes numbered in sort order, so integer order is string order
    parcel_ids = links["parcel_id"][keep]
    pcode, pids = pd.factorize(parcel_ids, sort=True)
    distinct = ~pd.Series(pcode.astype(np.int64) * len(enterprises) + firm).duplicated()
    pcode, firm = pcode[distinct.to_numpy()], firm[distinct.to_numpy()]
    ecode, cids = pd.factorize(code, sort=True)  # per firm row: few codes, so fast
    ccode = ecode[firm]
    if not len(pcode):
        empty = pd.Index(parcel_ids, name="parcel_id")
        return pd.Series([], index=empty, name="industry_code", dtype="str")

    # STEP 2: per (parcel, code): number of firms and their largest value added
    key = pcode.astype(np.int64) * len(cids) + ccode
    va = value.to_numpy(dtype=float, na_value=np.nan)[firm]
    groups = pd.DataFrame({"va": va}).groupby(key, sort=False)  # STEP 3 sorts
    agg = pd.DataFrame({"n": groups.size(), "va": groups["va"].max()})
    gkey = agg.index.to_numpy()
    gp, gc = gkey // len(cids), gkey % len(cids)
    n, gva = agg["n"].to_numpy(), agg["va"].fillna(-np.inf).to_numpy()

    # STEP 3: per parcel the code held by most firms, then the largest value added, then
    # the smallest code
    order = np.lexsort((gc, -gva, -n, gp))
    first = order[np.r_[True, gp[order][1:] != gp[order][:-1]]]
    return pd.Series(
        np.asarray(cids, dtype=object)[gc[first]],
        index=pids.take(gp[first]).rename("parcel_id"),
        name="industry_code",
        dtype="str",
    )


# --------------------------------------------------------------------------------------
# rule configuration
# --------------------------------------------------------------------------------------
def _complete(rule: dict[str, Any] | str) -> dict[str, Any]:
    """Validate one rule and fill in its defaults."""
    if isinstance(rule, str):
        known = {r["name"]: r for r in PRESETS["default"]}
        if rule not in known:
            msg = f"Unknown lowland rule {rule!r}; rules by name: {sorted(known)} (or a dict)."
            raise ConfigError(msg)
        rule = known[rule]
    if not isinstance(rule, dict) or "name" not in rule:
        msg = f"A lowland rule must be a dict with a `name`, got {rule!r}."
        raise ConfigError(msg)
    kind = rule.get("kind", rule["name"])
    if kind not in _KINDS:
        msg = f"Lowland rule {rule['name']!r}: unknown kind {kind!r}; allowed {sorted(_KINDS)}."
        raise ConfigError(msg)
    unknown = set(rule) - set(_KINDS[kind]) - {"name", "kind"}
    if unknown:
        msg = (
            f"Lowland rule {rule['name']!r} ({kind}): unknown keys {sorted(unknown)}; "
            f"allowed {sorted(_KINDS[kind])}."
        )
        raise ConfigError(msg)
    full = {"name": str(rule["name"]), "kind": kind, **copy.deepcopy(_KINDS[kind])}
    full.update(copy.deepcopy({k: v for k, v in rule.items() if k not in ("name", "kind")}))
    if kind == "threshold":
        if not full["column"]:
            msg = f"Lowland rule {full['name']!r}: a threshold rule needs `column`."
            raise ConfigError(msg)
        given = [k for k in ("below", "above", "below_mean_factor") if full[k] is not None]
        if len(given) != 1:
            msg = (
                f"Lowland rule {full['name']!r}: give exactly one of `below`, `above`, "
                f"`below_mean_factor` (got {given or 'none'})."
            )
            raise ConfigError(msg)
    if kind == "grade":
        full["grades"] = tuple(str(g).strip().upper() for g in full["grades"])
    if kind == "coverage_below_min" and not 0 < float(full["min"]) <= 1:
        msg = f"Lowland rule {full['name']!r}: `min` is a share in (0, 1], got {full['min']!r}."
        raise ConfigError(msg)
    return full


def lowland_rules(
    rules: str | dict[str, Any] | Iterable[dict[str, Any] | str] = "default",
    *,
    exclude: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Resolve a preset name or a list of rules into complete rule dicts.

    Parameters
    ----------
    rules
        A preset name (``default``, ``shuangshi``, ``shaoxing``), one rule dict, or a list
        whose items are rule dicts or names of rules of the default preset.
    exclude
        Rule names to leave out (e.g. ``("d_grade",)``).

    Returns
    -------
    list of dict
        Copies that can be edited and passed back as ``rules=``.

    Raises
    ------
    ConfigError
        For an unknown preset, kind or key, a repeated name, or an unknown ``exclude`` name.

    Examples
    --------
    >>> [r["name"] for r in lowland_rules(exclude=["d_grade"])]
    ['vacant', 'idle', 'far_below_min', 'coverage_below_min', 'low_tax_per_mu', 'stopped']
    >>> lowland_rules("shuangshi")[0]["below"]
    10.0
    """
    if isinstance(rules, dict):
        rules = [rules]
    if isinstance(rules, str):
        if rules not in PRESETS:
            msg = f"Unknown lowland preset {rules!r}; available: {sorted(PRESETS)}."
            raise ConfigError(msg)
        rules = PRESETS[rules]
    full = [_complete(r) for r in rules]
    names = [r["name"] for r in full]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        msg = f"Lowland rule names must be unique; repeated: {dup}."
        raise ConfigError(msg)
    exclude = list(exclude)
    unknown = [n for n in exclude if n not in names]
    if unknown:
        msg = f"`exclude` names {unknown} are not among the rules {names}."
        raise ConfigError(msg)
    return [r for r in full if r["name"] not in exclude]


# --------------------------------------------------------------------------------------
# flagging
# --------------------------------------------------------------------------------------
_NEEDS = {
    "vacant": ["n_enterprises"],
    "idle": ["n_enterprises", "footprint_m2"],
    "far_below_min": ["far", "footprint_m2", "industry_code"],
    "coverage_below_min": ["coverage"],
    "stopped": ["n_enterprises", "tax_sum", "electricity_sum"],
    "grade": ["grade"],
}


def _required(rule: dict[str, Any]) -> list[str]:
    if rule["kind"] == "threshold":
        need = [rule["column"]]
        if rule["require_firms"]:
            need.append("n_enterprises")
        return need
    return list(_NEEDS[rule["kind"]])


def _area_mu(parcels: pd.DataFrame) -> pd.Series:
    if "area_mu" in parcels.columns:
        return pd.to_numeric(parcels["area_mu"], errors="coerce").astype(float)
    if not isinstance(parcels, gpd.GeoDataFrame):
        msg = "`parcels` needs an `area_mu` column or polygon geometry to measure it."
        raise SchemaError(msg)
    if parcels.crs is None or not parcels.crs.is_projected:
        msg = (
            "`parcels` has no `area_mu` and its CRS is missing or geographic; add `area_mu` "
            "or project the layer (e.g. `parcels.to_crs(4549)`)."
        )
        raise CRSError(msg)
    return (parcels.geometry.area / M2_PER_MU).astype(float)


def flag_lowland(
    parcels: pd.DataFrame,
    *,
    rules: str | dict[str, Any] | Iterable[dict[str, Any] | str] = "default",
    exclude: Iterable[str] = (),
    industrial_codes: Sequence[str] | None = ("0601",),
    far_table: str | os.PathLike[str] | pd.DataFrame | None = None,
) -> LowlandResult:
    """Flag 低效工业用地 by configurable rules.

    Parameters
    ----------
    parcels
        One row per parcel with the columns the chosen rules read: ``land_use``,
        ``n_enterprises``, ``footprint_m2``, ``far``, ``coverage`` (from
        :func:`mujun_geo.buildings.building_metrics`), ``industry_code`` (main industry,
        :func:`main_industry`), ``tax_per_mu`` (Σ firm tax × land share / parcel 亩),
        ``tax_sum``, ``electricity_sum``, ``grade``, ``region_code`` (for mean-based
        thresholds) and ``area_mu`` (else measured from the geometry). Missing values never
        flag a parcel.
    rules
        Preset name or list of rules (see the module docstring and :func:`lowland_rules`).
    exclude
        Rule names to switch off, e.g. ``("d_grade",)``.
    industrial_codes
        ``land_use`` codes of industrial land (default 0601 工业用地); None treats every
        parcel as industrial.
    far_table
        Minimum FAR table for ``far_below_min`` rules that set none (see :func:`far_minimums`).

    Returns
    -------
    LowlandResult
        ``parcels`` (all rows, new columns added) and ``lowland`` (flagged rows).

    Raises
    ------
    SchemaError
        If a rule's input column is missing.
    ConfigError
        If the rules are invalid.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"parcel_id": ["P1", "P2", "P3"], "land_use": "0601",
    ...     "area_mu": [12.0, 30.0, 8.0], "n_enterprises": [0, 1, 1],
    ...     "footprint_m2": [0.0, 4000.0, 3000.0], "far": [0.0, 0.5, 1.2],
    ...     "coverage": [0.0, 0.2, 0.56], "industry_code": [None, "33", "17"],
    ...     "tax_per_mu": [None, 6.0, 20.0]})
    >>> r = flag_lowland(p, rules=["vacant", "idle", "far_below_min",
    ...                            "coverage_below_min", "low_tax_per_mu"])
    >>> r.parcels[["parcel_id", "lowland", "lowland_reasons"]]
      parcel_id  lowland                                  lowland_reasons
    0        P1        1                                           vacant
    1        P2        1  far_below_min;coverage_below_min;low_tax_per_mu
    2        P3        0
    >>> r.lowland[["parcel_id", "far", "far_min", "tax_per_mu"]]
      parcel_id  far  far_min  tax_per_mu
    0        P1  0.0      NaN         NaN
    1        P2  0.5      0.7         6.0
    """
    resolved = lowland_rules(rules, exclude=exclude)
    missing = {c: r["name"] for r in resolved for c in _required(r) if c not in parcels.columns}
    if industrial_codes is not None and "land_use" not in parcels.columns:
        missing["land_use"] = "industrial scope"
    if missing:
        hints = "; ".join(f"`{c}` (for {n})" for c, n in missing.items())
        msg = (
            f"`parcels` lacks columns needed by the lowland rules: {hints}. Add them "
            "(building_metrics gives far/coverage/footprint_m2, main_industry gives "
            "industry_code) or leave the rule out with `exclude=`."
        )
        raise SchemaError(msg)

    out = parcels.copy(deep=False)  # copy-on-write: new columns leave `parcels` alone
    area_mu = _area_mu(parcels)
    out["area_mu"] = area_mu
    if industrial_codes is None:
        industrial = pd.Series(True, index=out.index)
    else:
        codes = [str(c).strip() for c in industrial_codes]
        industrial = _codes(out["land_use"]).isin(codes).fillna(False).astype(bool)
    num = {
        c: pd.to_numeric(out[c], errors="coerce").astype(float)
        for c in ("n_enterprises", "footprint_m2", "far", "coverage", "tax_sum", "electricity_sum")
        if c in out.columns
    }
    firms = num["n_enterprises"] > 0 if "n_enterprises" in num else pd.Series(True, out.index)

    hits: list[tuple[str, np.ndarray]] = []  # (rule name, flagged parcels), in rule order
    notes = pd.Series("", index=out.index, dtype="str")
    figures: list[str] = ["area_mu"]

    def add(mask: pd.Series, name: str, cols: Sequence[str]) -> None:
        mask = mask.fillna(False).astype(bool) & industrial
        hits.append((name, mask.to_numpy(dtype=bool)))
        figures.extend(c for c in cols if c not in figures)

    for rule in resolved:
        kind, name = rule["kind"], rule["name"]
        if kind == "vacant":
            add(num["n_enterprises"] == 0, name, ["land_use", "n_enterprises"])
        elif kind == "idle":
            add(firms & (num["footprint_m2"] == 0), name, ["n_enterprises", "footprint_m2"])
        elif kind == "far_below_min":
            table = far_minimums(rule["far_table"] if rule["far_table"] is not None else far_table)
            lookup = dict(zip(table["industry_code_2017"], table["far_min"]))
            code = _codes(out["industry_code"])
            out["far_min"] = _per_unique(partial(_prefix_lookup, table=lookup), code)
            built = industrial & (num["footprint_m2"] > 0)
            add(built & (num["far"] < out["far_min"]), name, ["industry_code", "far", "far_min"])
            # the note on the few parcels it concerns (text for every parcel is slow)
            unknown = np.flatnonzero((built & firms & out["far_min"].isna()).to_numpy())
            if len(unknown):
                known = code.iloc[unknown]
                text = (
                    (f"{name}: industry " + known.fillna("") + " not in FAR table")
                    .where(known.notna(), f"{name}: no industry code")
                    .astype("str")
                )
                old = notes.iloc[unknown]
                notes = notes.copy()
                notes.iloc[unknown] = (old.where(old == "", old + "; ") + text).to_numpy()
        elif kind == "coverage_below_min":
            out["coverage_min"] = float(rule["min"])
            cov = num["coverage"]
            add((cov > 0) & (cov < float(rule["min"])), name, ["coverage", "coverage_min"])
        elif kind == "threshold":
            col = rule["column"]
            value = pd.to_numeric(out[col], errors="coerce").astype(float)
            eligible = industrial & value.notna()
            if rule["require_firms"]:
                eligible &= firms
            thr_col = f"{name}_threshold"
            if rule["below_mean_factor"] is not None:
                pop = eligible & area_mu.gt(0)
                key = out["region_code"] if "region_code" in out.columns else "all"
                frame = pd.DataFrame({"k": key, "vx": value * area_mu, "a": area_mu})[pop]
                sums = frame.groupby("k")[["vx", "a"]].sum()
                mean = (sums["vx"] / sums["a"]).rename("m")
                keys = pd.Series(key, index=out.index)
                out[thr_col] = float(rule["below_mean_factor"]) * keys.map(mean).astype(float)
            else:
                out[thr_col] = float(rule["below"] if rule["below"] is not None else rule["above"])
            if rule["min_area_mu"] is not None:
                eligible &= area_mu >= float(rule["min_area_mu"])
            hit = value > out[thr_col] if rule["above"] is not None else value < out[thr_col]
            add(eligible & hit, name, [col, thr_col])
        elif kind == "stopped":
            idle_power = (num["tax_sum"] <= 0) & (num["electricity_sum"] == 0)
            add(firms & idle_power, name, ["tax_sum", "electricity_sum"])
        elif kind == "grade":
            grade = out["grade"].astype("string").str.strip().str.upper()
            add(grade.isin(rule["grades"]), name, ["grade"])

    reasons = _joined_reasons(hits, out.index)
    out["lowland_assessed"] = industrial.to_numpy()
    out["lowland"] = (reasons != "").astype("int64")
    out["lowland_reasons"] = reasons
    out["lowland_notes"] = notes
    logger.info(
        "lowland: %d of %d industrial parcels flagged",
        int(out["lowland"].sum()),
        int(industrial.sum()),
    )

    keep = [c for c in ("parcel_id",) if c in out.columns]
    keep += ["area_mu", "lowland_reasons", "lowland_notes"]
    keep += [c for c in figures if c not in keep and c in out.columns]
    keep += [c for c in ("region_code", "park_id") if c in out.columns and c not in keep]
    # the flagged rows of the kept columns only (not of every column of the parcels)
    rows = np.flatnonzero(out["lowland"].to_numpy() == 1)
    if isinstance(out, gpd.GeoDataFrame):
        flagged = out[list(dict.fromkeys([*keep, out.geometry.name]))].take(rows)
        # copy=False: `flagged` is a new frame already (geopandas copies plain frames)
        layer = gpd.GeoDataFrame(flagged[keep], geometry=flagged.geometry, crs=out.crs, copy=False)
    else:
        layer = out[keep].take(rows)
    return LowlandResult(parcels=out, lowland=layer, rules=resolved)


def _joined_reasons(hits: list[tuple[str, np.ndarray]], index: pd.Index) -> pd.Series:
    """Per parcel the names of the rules that flag it, joined by ``;`` in rule order.

    Each distinct combination of rules is joined once (parcels are coded by the bits of
    the rules that flag them).
    """
    if not hits:
        return pd.Series("", index=index, dtype="str")
    if len(hits) <= 20:  # one integer per parcel, a bit per rule; few combinations
        bits = np.zeros(len(index), dtype=np.int64)
        for i, (_, mask) in enumerate(hits):
            bits |= mask.astype(np.int64) << i
        # the combinations present, numbered in increasing order (as np.unique would)
        present = np.bincount(bits, minlength=1 << len(hits)) > 0
        seen = np.flatnonzero(present)
        which = (np.cumsum(present) - 1)[bits]
        rows = (seen[:, None] >> np.arange(len(hits))) & 1 > 0
    else:
        flags = np.column_stack([mask for _, mask in hits])
        rows, which = np.unique(flags, axis=0, return_inverse=True)
    names = [name for name, _ in hits]
    text = [";".join(n for n, on in zip(names, row) if on) for row in rows]
    return _text_by_code(text, which.ravel(), index)


def _text_by_code(text: list[str], which: np.ndarray, index: pd.Index) -> pd.Series:
    """``pd.Series(np.array(text)[which], index=index, dtype="str")``, taken in Arrow.

    A few distinct strings repeated over many rows: Arrow's ``take`` builds the column
    without a Python string object per row.
    """
    import pyarrow as pa

    values = pa.array(text, pa.large_string()).take(pa.array(which, pa.int64()))
    return pd.Series(pd.array(values, dtype="str"), index=index)


def _rule_order() -> list[str]:
    names: list[str] = []
    for preset in PRESETS.values():
        names.extend(r["name"] for r in preset if r["name"] not in names)
    return names
