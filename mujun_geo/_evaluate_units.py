"""Classes, eligibility and evaluation units (宗地/集团评价) of :mod:`mujun_geo.evaluate`.

Private helper: see :mod:`mujun_geo.evaluate` for the rules.

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
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .scoring_config import EvalConfig

__all__ = ["PRIORITY", "build_units", "classify", "prefix_match", "text", "truthy"]

#: Class precedence when firms of several classes form one unit.
PRIORITY = {"above": 3, "below": 2, "service": 1, "service_building": 0, "": -1}
_TRUE = {"true", "1", "1.0", "yes", "y", "t", "是", "√", "有"}
_NO_VETO = {"", "nan", "none", "false", "0", "否", "无", "<na>"}


def text(s: pd.Series) -> np.ndarray:
    """Return stripped text with ``""`` for missing values."""
    return s.astype("string").str.strip().fillna("").to_numpy(dtype=object)


def truthy(s: pd.Series) -> np.ndarray:
    """Read flags given as bool, 0/1 or 是/否-style text (missing = False)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return (s.fillna(0) != 0).to_numpy(dtype=bool)
    return np.isin(np.char.lower(text(s).astype(str)), list(_TRUE))


def prefix_match(codes: np.ndarray, prefixes: Sequence[str]) -> np.ndarray:
    """Flag the industry codes that start with any of ``prefixes``."""
    s = pd.Series(codes, dtype="string")
    m = np.zeros(len(codes), dtype=bool)
    for p in prefixes:
        m |= s.str.startswith(p).fillna(False).to_numpy(dtype=bool)
    return m


# ---------------------------------------------------------------------------------------------
# STEP 2: class, eligibility and evaluation units


def classify(df: pd.DataFrame, cfg: EvalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Return the class of each row and why it is not evaluated (``""`` = eligible)."""
    n = len(df)
    service = df["sector"].str.lower().to_numpy() == "service"
    above = (df["scale"] == "above").to_numpy()
    as_below = df["newly_scaled"].to_numpy() & cfg.settings.newly_scaled_as_below
    no_land = ~(df["land_mu"].to_numpy() > 0)
    service_cls = np.where(
        no_land & ("service_building" in cfg.classes), "service_building", "service"
    )
    cls = np.select(
        [service, above & ~as_below, df["scale"].to_numpy() != ""],
        [service_cls, "above", "below"],
        "",
    ).astype(object)
    reason = np.full(n, "", dtype=object)

    def mark(mask: np.ndarray, why: Any) -> None:
        sel = mask & (reason == "")
        reason[sel] = why[sel] if isinstance(why, np.ndarray) else why

    mark(
        df["match_status"].to_numpy() == "rejected",
        "地企对应已驳回（match_status=rejected），不参与评价",
    )
    codes = df["industry_code"].to_numpy()
    excl = prefix_match(codes, cfg.settings.excluded_industries)
    mark(
        excl, ("行业代码" + pd.Series(codes, dtype=object) + "不在评价范围，不参与评价").to_numpy()
    )
    mark(cls == "", "企业规模（scale）未知，无法确定评价类别")
    mark(df["utility"].to_numpy(), "公益性企业，不参与评价分类")
    # a class missing from the config is checked per unit: a service firm on an industrial
    # parcel shares the parcel's grade even when the config does not evaluate services
    return cls, reason


def _components(
    df: pd.DataFrame, eligible: np.ndarray, cfg: EvalConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label rows by unit; also return group-parent rows and rows joined by group links."""
    n = len(df)
    rows = np.arange(n)
    ii, jj = [rows], [rows]
    parent = np.zeros(n, dtype=bool)
    grouped = np.zeros(n, dtype=bool)
    if cfg.settings.parcel_mode:
        key = df["eval_unit"].to_numpy()
        idx = np.flatnonzero(eligible & (key != ""))
        if idx.size:
            first = pd.Series(idx).groupby(key[idx]).transform("first").to_numpy()
            ii.append(idx)
            jj.append(first)
    if cfg.settings.group_mode:
        el = pd.DataFrame({"cc": df["credit_code"], "reg": df["region_code"], "row": rows})[
            eligible
        ]
        parents = el[el["cc"] != ""].drop_duplicates(["cc", "reg"])
        kids = pd.DataFrame({"cc": df["group_code"], "reg": df["region_code"], "kid": rows})
        kids = kids[eligible & (kids["cc"] != "") & (kids["cc"] != df["credit_code"])]
        links = kids.merge(parents, on=["cc", "reg"])
        if len(links):
            ii.append(links["kid"].to_numpy())
            jj.append(links["row"].to_numpy())
            parent[links["row"].to_numpy()] = True
            grouped[links["kid"].to_numpy()] = True
            grouped[links["row"].to_numpy()] = True
    i, j = np.concatenate(ii), np.concatenate(jj)
    graph = coo_matrix((np.ones(i.size), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels, parent, grouped


def build_units(
    df: pd.DataFrame, cfg: EvalConfig, cls: np.ndarray, reason: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame]:
    """Return the unit label per row and the unit table (lead firm, class, sums, flags)."""
    eligible = reason == ""
    labels, parent, grouped = _components(df, eligible, cfg)
    service = (df["sector"].str.lower() == "service").to_numpy()
    rows = pd.DataFrame(
        {
            "unit": labels,
            "prio": [PRIORITY[c] for c in cls],
            "parent": parent,
            "industrial": ~service,
            "revenue": df["revenue"].fillna(-np.inf),
        }
    )
    has_industrial = rows.groupby("unit")["industrial"].transform("any").to_numpy()
    counted = ~service | ~has_industrial
    rows["counted"] = counted
    order = rows.sort_values(
        ["unit", "counted", "parent", "prio", "revenue"],
        ascending=[True, False, False, False, False],
        kind="stable",
    )
    lead_row = order.index.to_numpy()[~order["unit"].duplicated().to_numpy()]
    units = pd.DataFrame(index=pd.Index(labels[lead_row], name="unit"))
    units["lead_row"] = lead_row
    prio = rows[counted].groupby("unit")["prio"].max()
    units["cls"] = prio.map({v: k for k, v in PRIORITY.items()})
    units["size"] = rows.groupby("unit").size()
    units["grouped"] = pd.Series(grouped).groupby(labels).any()
    for c in ("credit_code", "name", "region_code", "industry_code"):
        units[c] = df[c].to_numpy()[lead_row]
    units["reason"] = reason[lead_row]
    # STEP 2b: sums over counted members; land once per parcel (eval_unit) key
    num_cols = [c for c in df.columns if pd.api.types.is_float_dtype(df[c]) and c != "land_mu"]
    sums = df.loc[counted, num_cols].groupby(labels[counted]).sum(min_count=1)
    units = units.join(sums.add_prefix("sum:"))
    by_parcel = cfg.settings.parcel_mode & (df["eval_unit"] != "").to_numpy()
    pkey = np.where(by_parcel, "u" + df["eval_unit"].astype(str), "r" + df.index.astype(str))
    land = pd.DataFrame({"unit": labels, "pkey": pkey, "land": df["land_mu"], "counted": counted})
    land = land.groupby(["unit", "pkey"]).agg(land=("land", "max"), counted=("counted", "any"))
    units["sum:land_mu"] = land[land["counted"]].groupby(level="unit")["land"].sum(min_count=1)
    flags = [c for c in df.columns if df[c].dtype == bool]
    units = units.join(df.loc[counted, flags].groupby(labels[counted]).any())
    veto = df["veto"].to_numpy().copy()
    veto[~counted | np.isin(np.char.lower(veto.astype(str)), list(_NO_VETO))] = ""
    # only the (few) rows with a veto go through Python: distinct reasons per unit, row order
    has = np.flatnonzero(veto != "")
    reasons: dict[Any, dict[str, None]] = {}
    for lab, v in zip(labels[has].tolist(), veto[has].tolist()):
        reasons.setdefault(lab, {})[v] = None
    joined = pd.Series({k: "；".join(v) for k, v in reasons.items()}, dtype="str")
    units["veto"] = joined.reindex(units.index, fill_value="")
    return labels, units
