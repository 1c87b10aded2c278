"""The bundled sample county (synthetic firms and parcels in 海宁市), for the demo and docs.

The files live in ``data/sample/`` of the source tree and are made by
``scripts/make_sample.py``; install mujun-geo from a clone (``pip install -e .``) to
have them.

Examples
--------
>>> get_path("parcels").name
'parcels.shp'
>>> get_path("nope")
Traceback (most recent call last):
...
ValueError: no sample dataset 'nope'; available: buildings, enterprises, overrides, parcels, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import RunSettings

__all__ = ["available", "get_path", "sample_dir", "sample_settings"]

_FILES = {
    "parcels": "parcels.shp",
    "enterprises": "enterprises.xlsx",
    "buildings": "buildings.gpkg",
    "parks": "parks.geojson",
    "regions": "regions.geojson",
    "overrides": "overrides.csv",
    "standard_land": "standard_land.csv",
}


def sample_dir() -> Path:
    """Folder holding the sample county files."""
    return Path(__file__).resolve().parents[2] / "data" / "sample"


def available() -> list[str]:
    """Names accepted by :func:`get_path`."""
    return sorted(_FILES)


def get_path(name: str) -> Path:
    """Path of one sample file by layer name; ``ValueError`` lists the names."""
    if name not in _FILES:
        msg = f"no sample dataset {name!r}; available: {', '.join(available())}"
        raise ValueError(msg)
    path = sample_dir() / _FILES[name]
    if not path.exists():
        msg = (
            f"sample file {path} is missing: mujun-geo must be installed from a clone "
            "(pip install -e .) or regenerate it with `python scripts/make_sample.py`"
        )
        raise FileNotFoundError(msg)
    return path


def sample_settings(**overrides: object) -> RunSettings:
    """Run settings for the sample county (every layer), output to ``out/`` by default."""
    from ..settings import RunSettings

    data: dict[str, object] = {
        "year": 2022,
        "inputs": {name: str(get_path(name)) for name in _FILES},
    }
    data.update(overrides)
    return RunSettings.from_dict(data)
