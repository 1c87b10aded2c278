"""Overrides (人工确认) for :mod:`mujun_geo.matching` (private; the rules are documented there)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mujun_geo import _match_rules as R
from mujun_geo._errors import SchemaError
from mujun_geo._match_rules import clean_codes
from mujun_geo._validate import Problems

__all__ = ["DECISIONS", "apply_overrides", "parse_overrides", "require"]

#: Accepted override actions / review decisions and what they mean.
DECISIONS = {
    "confirm": "confirm",
    "确认": "confirm",
    "reject": "reject",
    "否决": "reject",
    "assign": "assign",
    "指定": "assign",
}


def require(df: pd.DataFrame, cols: Sequence[str], name: str) -> None:
    """Raise :class:`SchemaError` naming the columns of `cols` missing from `df`."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        msg = f"`{name}` lacks column(s) {missing}; present: {list(df.columns)}"
        raise SchemaError(msg)


def parse_overrides(overrides, firms, pinfo, problems: Problems) -> pd.DataFrame:
    """Validate overrides; return ``fi, pj, action, share, note, row`` (last row per pair wins).

    Rows that cannot be applied (unknown action, firm or parcel not in the data) and shares
    outside 0–1 go to `problems`.
    """
    cols = ["fi", "pj", "action", "share", "note", "row"]
    empty = pd.DataFrame(
        {c: pd.Series(dtype=t) for c, t in zip(cols, [int, int, object, float, object, int])}
    )
    if overrides is None or len(overrides) == 0:
        return empty
    require(overrides, ["credit_code", "parcel_id", "action"], "overrides")
    rows = (
        overrides["src_row"].to_numpy()
        if "src_row" in overrides
        else np.arange(1, len(overrides) + 1)
    )
    code = clean_codes(overrides["credit_code"]).reset_index(drop=True)
    pid = R.text_col(overrides, "parcel_id")
    action = R.text_col(overrides, "action").str.lower().map(DECISIONS)
    share = pd.to_numeric(overrides["share"], errors="coerce") if "share" in overrides else None
    share = pd.Series(np.nan if share is None else share.to_numpy(dtype=float))
    elig = firms["eligible"].to_numpy()
    fi = code.map(pd.Series(np.flatnonzero(elig), index=firms["code"][elig].to_numpy()))
    pj = pid.map(pd.Series(np.arange(len(pinfo)), index=pinfo["pid"].to_numpy()))
    key = (code.fillna("?") + "/" + pid.fillna("?")).to_numpy()
    bad = np.zeros(len(code), dtype=bool)
    for mask, kind, reason in (
        (action.isna(), "bad_action", "`action` must be confirm/reject/assign (确认/否决/指定)"),
        (fi.isna(), "stale_override", "credit_code is not among the (non-rejected) enterprises"),
        (pj.isna(), "stale_override", "parcel_id is not in the parcels layer"),
    ):
        mask = mask.to_numpy() & ~bad
        problems.add("overrides", rows[mask], key[mask], kind, f"override not applied: {reason}")
        bad |= mask
    out = (share.notna() & ~share.between(0, 1)).to_numpy()
    problems.add(
        "overrides",
        rows[out & ~bad],
        key[out & ~bad],
        "bad_share",
        "share must be within 0–1; ignored",
    )
    ov = pd.DataFrame(
        {
            "fi": fi,
            "pj": pj,
            "action": action,
            "share": share.mask(out),
            "note": R.text_col(overrides, "note"),
            "row": rows,
            "key": key,
        }
    )[~bad]
    dup = ov.duplicated(["fi", "pj"], keep="last").to_numpy()
    problems.add(
        "overrides",
        ov["row"][dup],
        ov["key"][dup],
        "duplicate_override",
        "another override row for the same firm and parcel comes later and wins",
    )
    ov = ov.drop_duplicates(["fi", "pj"], keep="last").astype({"fi": np.int64, "pj": np.int64})
    return ov[cols].reset_index(drop=True)


def apply_overrides(links: pd.DataFrame, ov: pd.DataFrame, pinfo: pd.DataFrame) -> pd.DataFrame:
    """Apply ``confirm`` and ``assign`` (``reject`` acts earlier, inside the rules)."""
    keep = ov[ov["action"] != "reject"]
    if not len(keep):
        return links
    n_p, pid = len(pinfo), pinfo["pid"].to_numpy(dtype=object)
    asg = keep[keep["action"] == "assign"]
    # STEP 1: assign wins over the firm's automatic links (auto and review); confirmed stay
    drop = (
        links["fi"].isin(asg["fi"]).to_numpy()
        & links["status"].isin(["auto", "review"]).to_numpy()
        & ~np.isin(R.pairs(links["fi"], links["pj"], n_p), R.pairs(keep["fi"], keep["pj"], n_p))
    )
    d = links[drop]
    dropped = (
        (pd.Series(pid[d["pj"]], index=d.index) + "(" + d["method"] + ")")
        .groupby(d["fi"])
        .agg(",".join)
    )
    links = links[~drop]
    # STEP 2: overrides for pairs the rules did not propose create manual links
    new = keep[
        ~np.isin(R.pairs(keep["fi"], keep["pj"], n_p), R.pairs(links["fi"], links["pj"], n_p))
    ]
    add = R.link_frame(new["fi"], new["pj"], "manual", 1.0, "本次规则未提出")
    add = add.assign(status="auto", industrial=pinfo["industrial"].to_numpy()[add["pj"]])
    links = pd.concat([links, add], ignore_index=True)
    act = links[["fi", "pj"]].merge(keep[["fi", "pj", "action"]], how="left")["action"].to_numpy()
    hit, is_a = pd.notna(act), act == "assign"
    links.loc[hit, "status"] = "confirmed"
    links.loc[is_a, "method"] = "manual"
    links.loc[is_a, "confidence"] = 1.0
    label = pd.Series(np.where(is_a, "人工指定; ", "人工确认; "), index=links.index)
    links.loc[hit, "evidence"] = label[hit] + links.loc[hit, "evidence"]
    extra = links["fi"].map(dropped)
    sel = is_a & extra.notna().to_numpy()
    links.loc[sel, "evidence"] = links.loc[sel, "evidence"] + "; 舍弃自动候选: " + extra[sel]
    return links.sort_values(["fi", "pj"]).reset_index(drop=True)
