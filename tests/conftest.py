"""Tiny synthetic layers in a projected CRS, small enough to check by hand."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
