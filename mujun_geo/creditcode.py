"""统一社会信用代码 (GB 32100-2015): format and check-character validation.

An 18-character code: registration authority (1), organisation kind (1), region code of
the registering office (6 digits), the organisation code of GB 11714 (9), and a check
character. Characters come from a 31-symbol alphabet without I, O, S, V and Z. The check
character makes ``Σ value_i × 3^i mod 31`` come out to zero (DOMAIN.md §6.3).

Some early pilot codes fail the check yet are legal, so callers flag rather than reject.

Examples
--------
>>> is_valid("91310110666007217T")
True
>>> is_valid("91310110666007217A")
False
>>> check_character("91310110666007217")
'T'
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["ALPHABET", "check_character", "is_valid", "make_credit_code", "validate_series"]

#: The 31 characters allowed in a code, in value order.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)])
_FORMAT = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def check_character(first17: str) -> str:
    """Return the GB 32100-2015 check character for the first 17 characters."""
    if len(first17) != 17 or any(c not in _VALUE for c in first17):
        msg = f"`first17` must be 17 characters of {ALPHABET!r}, got {first17!r}"
        raise ValueError(msg)
    total = int(np.dot([_VALUE[c] for c in first17], _WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid(code: str) -> bool:
    """Return True when ``code`` has the right format and check character."""
    code = str(code).strip().upper()
    return bool(_FORMAT.match(code)) and check_character(code[:17]) == code[17]


def make_credit_code(
    region_code: str, serial: int, *, authority: str = "9", kind: str = "1"
) -> str:
    """Build a valid code for synthetic data (region code, then a 9-character body).

    Examples
    --------
    >>> code = make_credit_code("330481", 12345)
    >>> code[:8], is_valid(code)
    ('91330481', True)
    """
    body = np.base_repr(serial, 31).rjust(9, "0")[-9:]
    body = "".join(ALPHABET[int(ch, 31)] for ch in body)
    first17 = f"{authority}{kind}{region_code}{body}"
    return first17 + check_character(first17)


def validate_series(codes: pd.Series) -> pd.DataFrame:
    """Classify every code as ``ok``, ``bad_format`` or ``bad_checksum`` (vectorised).

    Parameters
    ----------
    codes
        Credit codes as text; blanks count as ``missing``.

    Returns
    -------
    pandas.DataFrame
        Columns ``code`` (stripped, upper case) and ``status``, with the input's index.

    Examples
    --------
    >>> validate_series(pd.Series(["91310110666007217T", "91310110666007217A", "x", None]))["status"].tolist()
    ['ok', 'bad_checksum', 'bad_format', 'missing']
    """
    clean = codes.astype("string").str.strip().str.upper()
    present = clean.notna() & (clean != "")
    fmt = present & clean.str.match(_FORMAT.pattern).fillna(False).astype(bool)
    status = np.full(len(codes), "missing", dtype=object)
    status[(present & ~fmt).to_numpy(dtype=bool)] = "bad_format"
    sel = fmt.to_numpy(dtype=bool)
    if sel.any():
        status[sel] = np.where(_checksum_ok(clean[sel]), "ok", "bad_checksum")
    return pd.DataFrame(
        {
            "code": clean.astype(object).where(present, None),
            "status": pd.Series(status, index=codes.index, dtype=object),
        }
    )


# value of each byte in the alphabet; -1 elsewhere (never looked up: the format check comes first)
_BYTE_VALUE = np.full(256, -1, dtype=np.int64)
_BYTE_VALUE[np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)] = np.arange(len(ALPHABET))


def _checksum_ok(codes: pd.Series) -> np.ndarray:
    """True where the check character of well-formed codes (18 ASCII characters) is right.

    The codes' bytes, contiguous in the Arrow data buffer, are viewed as an ``(n, 18)``
    code-point matrix, so the weighted sum is one matrix product instead of a Python loop.
    """
    arr = pa.array(codes, type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    if not (np.diff(offsets) == 18).all():
        # a non-ASCII digit passed the format's \d (pandas matches with Python's re when the
        # data is not all ASCII); it has no value: KeyError, as the per-character lookup gave
        raise KeyError(next(ch for code in codes for ch in code if ch not in _VALUE))
    matrix = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    values = _BYTE_VALUE[matrix.reshape(n, 18)]
    expected = (31 - (values[:, :17] @ _WEIGHTS) % 31) % 31
    return np.asarray(expected == values[:, 17])
