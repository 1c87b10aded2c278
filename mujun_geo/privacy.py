"""Pseudonymised export: share results outside the department without names or codes.

The work plan asks to explore privacy-preserving data exchange (隐私计算). This module
replaces every identifying text column — credit codes, firm and holder names, addresses —
with a keyed hash (HMAC-SHA256 with a secret salt, first 16 hex characters). The same
salt gives the same pseudonym every year, so shared tables can still be joined across
years and layers; without the salt a pseudonym cannot be turned back into a code (an
unkeyed hash could: there are few enough valid credit codes to try them all).

Examples
--------
>>> import pandas as pd
>>> firms = pd.DataFrame({"credit_code": ["91330481MA2A5RLH34"], "name": ["海宁某公司"], "tax": [12.5]})
>>> out = pseudonymise({"enterprises": firms}, salt="county-secret")["enterprises"]
>>> out["credit_code"].iloc[0] == out["credit_code"].iloc[0] and out["credit_code"].iloc[0] != "91330481MA2A5RLH34"
True
>>> out["name"].iloc[0].startswith("P-"), float(out["tax"].iloc[0])
(True, 12.5)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import pandas as pd

from ._errors import ConfigError

__all__ = ["IDENTIFYING_COLUMNS", "check_salt", "pseudonym", "pseudonymise"]

#: Text columns that identify a firm or person.
IDENTIFYING_COLUMNS = (
    "credit_code", "name", "address", "holder_name", "holder_code", "group_code", "main_credit_code",
    "credit_codes", "occupant_code", "evidence", "grade_note", "land_note", "unmatched_reason",
)  # fmt: skip
#: Columns that hold a credit code or name only in some rows (problem tables): hashed too.
_KEY_COLUMNS = ("key",)
# layers whose `name` column is a place, not a firm
_PLACE_LAYERS = {"parks", "regions", "industries"}


def pseudonym(value: object, *, salt: str) -> object:
    """Keyed hash of one value (``None``/NaN stay missing)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return value
    digest = hmac.new(salt.encode("utf-8"), str(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return f"P-{digest[:16]}"


def check_salt(salt: str | None) -> None:
    """Raise :class:`ConfigError` unless ``salt`` is a usable secret (8+ characters)."""
    if not salt or len(salt) < 8:
        msg = "the pseudonymisation salt must be a secret of at least 8 characters (`--salt` or MUJUN_SALT)"
        raise ConfigError(msg)


def pseudonymise(layers: Mapping[str, pd.DataFrame], *, salt: str) -> dict[str, pd.DataFrame]:
    """Copies of ``layers`` with every identifying column replaced by keyed hashes.

    ``parcel_ids`` lists (``;``-joined) are left as they are: parcel codes are public
    cadastral identifiers, and the land is the point of the exchange. Free-text notes
    that may quote a name (``grade_note``, ``evidence`` …) are hashed whole.
    """
    check_salt(salt)
    out: dict[str, pd.DataFrame] = {}
    for layer, frame in layers.items():
        frame = frame.copy()
        cols = [c for c in (*IDENTIFYING_COLUMNS, *_KEY_COLUMNS) if c in frame.columns]
        if layer in _PLACE_LAYERS and "name" in cols:
            cols.remove("name")
        for col in cols:
            hashed = frame[col].map(lambda v: pseudonym(v, salt=salt))
            if isinstance(frame[col].dtype, pd.StringDtype):
                # keep text columns text even when every value is missing (map gives float),
                # so a layer and its subset (enterprises, unmatched) keep equal dtypes
                hashed = hashed.astype(frame[col].dtype)
            frame[col] = hashed
        if layer == "run_info" and "value" in frame:
            # the settings may name files after firms; keep the keys, drop free text paths
            frame["value"] = frame["value"].where(
                ~frame["key"].str.startswith("input:"), "pseudonymised"
            )
        out[layer] = frame
    return out
