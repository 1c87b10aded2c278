"""mujun-geo: GIS toolkit for Zhejiang's 亩均论英雄 (per-mu efficiency) reform."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mujun_geo")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
