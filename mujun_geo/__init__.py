"""mujun-geo: GIS toolkit for Zhejiang's 亩均论英雄 (per-mu efficiency) reform.

``import mujun_geo as mg`` gives every stage as a function on (Geo)DataFrames:

========================  ==========================================================
``mg.read_parcels`` …     readers (any GDAL vector format, CSV, XLSX) → canonical frames
``mg.match_enterprises``  地企对应: firms to parcels, review table, overrides
``mg.evaluate``           亩均评价: indicators, scores, A/B/C/D grades (``mg.explain``)
``mg.building_metrics``   容积率, 建筑系数, 配套用地 per parcel
``mg.flag_lowland``       低效工业用地 rules; ``mg.high_energy_low_efficiency``
``mg.run``                the whole pipeline from a :class:`~mujun_geo.settings.RunSettings`
========================  ==========================================================

Examples
--------
>>> import mujun_geo as mg
>>> parcels = mg.read_parcels(mg.datasets.get_path("parcels"))
>>> firms = mg.read_enterprises(mg.datasets.get_path("enterprises"), target_crs=parcels.crs)
>>> result = mg.match_enterprises(firms, parcels)
>>> result.summary()["n_matched"] > 1300
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mujun_geo")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

# the version is set before the submodules import it
from . import aggregate as aggregate
from . import coords as coords
from . import creditcode as creditcode
from . import crs as crs
from . import datasets as datasets
from . import export as export
from . import io as io
from . import land as land
from . import matching as matching
from . import report as report
from . import scoring_config as scoring_config
from . import settings as settings
from .evaluate import evaluate, explain
from .io import (
    read_buildings,
    read_enterprises,
    read_overrides,
    read_parcels,
    read_parks,
    read_regions,
    read_standard_land,
    read_targets,
)
from .land import building_metrics, flag_lowland, high_energy_low_efficiency, standard_land_review
from .matching import apply_review, match_enterprises, review_table
from .pipeline import ingest, run
from .settings import RunSettings
from .units import M2_PER_MU, m2_to_mu, mu_to_m2

__all__ = [
    "M2_PER_MU", "RunSettings", "aggregate", "apply_review", "building_metrics", "coords", "creditcode",
    "crs", "datasets", "evaluate", "explain", "export", "flag_lowland", "high_energy_low_efficiency",
    "ingest", "io", "land", "m2_to_mu", "match_enterprises", "matching", "mu_to_m2", "read_buildings",
    "read_enterprises", "read_overrides", "read_parcels", "read_parks", "read_regions",
    "read_standard_land", "read_targets", "report", "review_table", "run", "scoring_config", "settings",
    "standard_land_review",
]  # fmt: skip


def __getattr__(name: str) -> object:
    # the map modules need the optional extras (folium, matplotlib): import on first use
    if name in ("webmap", "plot", "db", "distributed"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    msg = f"module 'mujun_geo' has no attribute {name!r}"
    raise AttributeError(msg)
