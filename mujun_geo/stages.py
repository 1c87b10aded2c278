"""Stage wiring for :func:`mujun_geo.pipeline.run`: from ingested inputs to output layers."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from .units import m2_to_mu

__all__ = ["run_stages"]


def run_stages(data, *, progress: Callable[[str], None], timings: dict[str, float]) -> dict[str, pd.DataFrame]:
    """Run the stages after ingest and return the output layers by name."""
    frames = data.frames
    t0 = time.perf_counter()
    parcels = frames["parcels"].copy()
    parcels["area_mu"] = m2_to_mu(parcels["area_m2"])
    layers: dict[str, pd.DataFrame] = {"parcels": parcels, "enterprises": frames["enterprises"]}
    timings["stages"] = time.perf_counter() - t0
    return layers
