"""Collect data problems as rows, so nothing is dropped silently.

Every reader and stage records what it found wrong as a row ``source, row, key, reason,
severity, kind``: ``severity`` is ``"reject"`` (the row is unusable and left out of the
evaluation, it goes to the ``rejects`` layer), ``"warning"`` (kept, flagged) or
``"error"`` (blocks the run: ``mujun-geo validate`` exits 1). ``kind`` is a short stable
code for counting (``bad_checksum``, ``duplicate_id`` …); ``reason`` says it in words.

Examples
--------
>>> p = Problems()
>>> p.add("enterprises.xlsx", [3, 7], ["A", "B"], "bad_checksum", "check character wrong", "warning")
>>> p.frame()[["row", "kind", "severity"]].values.tolist()
[[3, 'bad_checksum', 'warning'], [7, 'bad_checksum', 'warning']]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import pandas as pd

__all__ = ["COLUMNS", "Problems", "Severity"]

Severity = Literal["reject", "warning", "error"]
COLUMNS = ["source", "row", "key", "kind", "reason", "severity"]


class Problems:
    """An append-only table of data problems."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(
        self,
        source: str,
        rows: Iterable[object] | object,
        keys: Iterable[object] | object,
        kind: str,
        reason: str | Sequence[str],
        severity: Severity = "warning",
    ) -> None:
        """Record one problem, or the same problem for many rows at once."""
        if isinstance(rows, pd.Series) and pd.api.types.is_integer_dtype(rows.dtype):
            # row numbers of a frame: one array conversion instead of a list of scalars
            rows_a = pd.array(rows.to_numpy(), dtype="Int64")
        else:
            rows_l: list[object] = (
                list(rows) if isinstance(rows, Iterable) and _listlike(rows) else [rows]
            )
            rows_a = pd.array(rows_l, dtype="Int64")
        n = len(rows_a)
        if isinstance(keys, pd.Series) and isinstance(keys.dtype, pd.StringDtype):
            # text keys: str values or None already, without stepping through Arrow by value
            keys_s: list[object] = keys.to_numpy(dtype=object, na_value=None).tolist()
        else:
            keys_l: list[object] = (
                list(keys) if isinstance(keys, Iterable) and _listlike(keys) else [keys] * n
            )
            keys_s = [None if _isna(k) else str(k) for k in keys_l]
        if not n:
            return
        reasons = list(reason) if not isinstance(reason, str) else [reason] * n
        self._parts.append(
            pd.DataFrame(
                {
                    "source": source,
                    "row": rows_a,
                    "key": keys_s,
                    "kind": kind,
                    "reason": reasons,
                    "severity": severity,
                }
            )
        )

    def extend(self, other: Problems | pd.DataFrame | None) -> None:
        """Append the rows of another collector or frame with :data:`COLUMNS`."""
        if other is None:
            return
        frame = other.frame() if isinstance(other, Problems) else other
        if len(frame):
            self._parts.append(frame[COLUMNS].copy())

    def frame(self) -> pd.DataFrame:
        """All problems so far, in the order found."""
        if not self._parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS}).astype(
                {"row": "Int64"}
            )
        return pd.concat(self._parts, ignore_index=True)

    def rejects(self) -> pd.DataFrame:
        """The rows for the ``rejects`` layer (severity ``reject`` or ``error``)."""
        f = self.frame()
        return f[f["severity"].isin(["reject", "error"])].reset_index(drop=True)

    @property
    def has_errors(self) -> bool:
        """True when a problem blocks the run."""
        f = self.frame()
        return bool((f["severity"] == "error").any())

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)


def _listlike(value: object) -> bool:
    return not isinstance(value, (str, bytes)) and isinstance(value, Iterable)


def _isna(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
