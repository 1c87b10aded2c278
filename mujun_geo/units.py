"""Units used across mujun-geo.

1 亩 is exactly 10000/15 = 2000/3 square metres (1/15 hectare). Never use 666.67.

Examples
--------
>>> from mujun_geo.units import m2_to_mu, mu_to_m2
>>> m2_to_mu(2000)
3.0
>>> mu_to_m2(15)
10000.0
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["M2_PER_MU", "m2_to_mu", "mu_to_m2"]

#: Square metres in one 亩, exact.
M2_PER_MU: float = 2000.0 / 3.0

T = TypeVar("T")


def m2_to_mu(area_m2: T) -> T:
    """Convert square metres to 亩 (multiplies by 3/2000, exact for whole m²/2000 multiples)."""
    return area_m2 * 3.0 / 2000.0  # type: ignore[operator,return-value]


def mu_to_m2(area_mu: T) -> T:
    """Convert 亩 to square metres."""
    return area_mu * 2000.0 / 3.0  # type: ignore[operator,return-value]
