"""Run settings: what a county changes in its YAML file, with the defaults used otherwise.

A run is configured by a YAML file (``mujun-geo run --config FILE.yml``) whose keys are the
fields below; ``mujun-geo config show run`` prints a complete file to edit. Paths in
``inputs`` are relative to the YAML file's folder.

====================  ==============================  =========================================
key                   default                         meaning
====================  ==============================  =========================================
year                  2022                            evaluation year (rows without 年份 get it)
inputs.<layer>        —                               file of each input layer (parcels and
                                                      enterprises required)
crs.<layer>           —                               CRS to declare for a file that has none
coord_sys             (from the 坐标系 column)         system of 经度/纬度 where the row is blank
encoding              (detected)                      force a Shapefile text encoding
engine                pyogrio                         pyogrio or fiona (vector I/O), or dask:
                                                      matching and land stage on a cluster
scheduler             (local cluster)                 dask scheduler address (engine dask)
npartitions           (one per 25 000 parcels)        parcel partitions (engine dask)
target_crs            (the parcels' projected CRS)    working CRS for all areas and distances
matching.*            max_distance 50 (m),            see :func:`mujun_geo.matching.match_enterprises`
                      land_mode "parcel", …
evaluation.preset     zhejiang-2022                   preset name or YAML path (scoring rules)
land.*                storey_height_m 3.5 (m), …      see :mod:`mujun_geo.land`
output.dir            out                             output folder
output.gpkg           mujun.gpkg                      GeoPackage file name in the folder
output.report         true                            write report.xlsx beside it
output.maps           true                            write maps/*.html (offline) and maps/*.png
output.basemap        none                            none | tianditu | amap | osm (HTML maps)
output.tianditu_key   —                               天地图 key (``tk``) for basemap tianditu
output.max_features   20000                           above this, HTML maps draw parcels by grid
output.dpi            300                             resolution of the PNG maps
output.pseudonymise   false                           replace credit codes and names by keyed
                                                      hashes (salt from MUJUN_SALT or --salt,
                                                      never from this file)
db                    —                               PostGIS DSN: every output layer is also
                                                      written there, one schema per year, in one
                                                      transaction (password from PGPASSWORD or
                                                      ~/.pgpass, never in the DSN)
db_schema             mujun_<year>                    schema name for the run in the database
====================  ==============================  =========================================

Examples
--------
>>> s = RunSettings.from_dict({"year": 2023, "inputs": {"parcels": "p.shp", "enterprises": "e.xlsx"}})
>>> s.year, s.matching["max_distance"], s.output_path.name
(2023, 50.0, 'mujun.gpkg')
>>> RunSettings.from_dict({"yaer": 2023})
Traceback (most recent call last):
...
mujun_geo._errors.ConfigError: unknown setting(s) `yaer`; allowed: coord_sys, crs, db, ...
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ._errors import ConfigError

__all__ = ["DEFAULTS", "ENGINES", "INPUT_LAYERS", "RunSettings", "default_yaml"]

#: ``engine``: the vector I/O engine (pyogrio, fiona), or ``dask`` — pyogrio I/O with matching
#: and the land stage on a dask.distributed cluster (see :mod:`mujun_geo.distributed`)
ENGINES = ("pyogrio", "fiona", "dask")

INPUT_LAYERS = (
    "parcels",
    "enterprises",
    "buildings",
    "parks",
    "regions",
    "overrides",
    "standard_land",
    "targets",
    "previous",
)

DEFAULTS: dict[str, Any] = {
    "year": 2022,
    "inputs": {},
    "crs": {},
    "coord_sys": None,
    "encoding": None,
    "engine": "pyogrio",
    "scheduler": None,
    "npartitions": None,
    "target_crs": None,
    "matching": {
        "max_distance": 50.0,
        "land_mode": "parcel",
        "industrial_codes": ["0601", "0602", "0508"],
        "name_threshold": 92.0,
    },
    "evaluation": {"preset": "zhejiang-2022"},
    "land": {
        "storey_height_m": 3.5,
        "tall_storey_m": 8.0,
        "tall_storey_factor": 2.0,
        "lowland_rules": "default",
        "height_raster": None,
    },
    "output": {
        "dir": "out",
        "gpkg": "mujun.gpkg",
        "report": True,
        "maps": True,
        "basemap": None,
        "tianditu_key": None,
        "max_features": 20000,
        "dpi": 300,
    },
    "db": None,
    "db_schema": None,
}


@dataclass
class RunSettings:
    """Validated settings of one run (see the module docstring for every key)."""

    year: int = 2022
    inputs: dict[str, Any] = field(default_factory=dict)
    crs: dict[str, str] = field(default_factory=dict)
    coord_sys: str | None = None
    encoding: str | None = None
    engine: str = "pyogrio"
    scheduler: str | None = None
    npartitions: int | None = None
    target_crs: str | None = None
    matching: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    land: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    db: str | None = None
    db_schema: str | None = None
    source: Path | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base_dir: Path | None = None) -> RunSettings:
        """Merge ``data`` over :data:`DEFAULTS`, refusing unknown keys."""
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            msg = (
                f"unknown setting(s) {', '.join(f'`{k}`' for k in unknown)}; "
                f"allowed: {', '.join(sorted(DEFAULTS))}"
            )
            raise ConfigError(msg)
        merged = copy.deepcopy(DEFAULTS)
        for key, value in data.items():
            if isinstance(merged[key], dict) and key not in ("inputs", "crs"):
                if not isinstance(value, dict):
                    msg = f"setting `{key}` must be a mapping, got {value!r}"
                    raise ConfigError(msg)
                merged[key].update(value)
            elif value is not None:
                merged[key] = value
        bad_layers = sorted(set(merged["inputs"]) - set(INPUT_LAYERS))
        if bad_layers:
            msg = f"unknown input layer(s) {bad_layers}; allowed: {', '.join(INPUT_LAYERS)}"
            raise ConfigError(msg)
        if merged["engine"] not in ENGINES:
            msg = f"`engine` must be one of {', '.join(ENGINES)}, got {merged['engine']!r}"
            raise ConfigError(msg)
        base = base_dir or Path.cwd()
        inputs = {k: _input_path(v, base) for k, v in merged["inputs"].items() if v}
        try:
            year = int(merged["year"])
        except (TypeError, ValueError) as exc:
            msg = f"`year` must be a whole number, got {merged['year']!r}"
            raise ConfigError(msg) from exc
        out = dict(merged["output"])
        out["dir"] = Path(out["dir"]) if Path(out["dir"]).is_absolute() else base / out["dir"]
        return cls(
            year=year,
            inputs=inputs,
            crs=dict(merged["crs"]),
            coord_sys=merged["coord_sys"],
            encoding=merged["encoding"],
            engine=merged["engine"],
            target_crs=merged["target_crs"],
            matching=merged["matching"],
            evaluation=merged["evaluation"],
            land=merged["land"],
            output=out,
            db=merged["db"],
            db_schema=merged["db_schema"],
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunSettings:
        """Read a run file; relative paths are taken from the file's folder."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError as exc:
            msg = f"config file not found: {path}"
            raise ConfigError(msg) from exc
        except yaml.YAMLError as exc:
            msg = f"{path} is not valid YAML: {exc}"
            raise ConfigError(msg) from exc
        if not isinstance(data, dict):
            msg = f"{path} must hold a mapping of settings"
            raise ConfigError(msg)
        settings = cls.from_dict(data, base_dir=path.parent.resolve())
        settings.source = path
        return settings

    @property
    def io_engine(self) -> Literal["pyogrio", "fiona"]:
        """The vector I/O engine: pyogrio unless fiona was asked for."""
        return "fiona" if self.engine == "fiona" else "pyogrio"

    @property
    def output_path(self) -> Path:
        """The GeoPackage this run writes."""
        return Path(self.output["dir"]) / self.output["gpkg"]

    def to_yaml(self) -> str:
        """The settings as YAML text (recorded in ``run_info``)."""
        data = {
            "year": self.year,
            "inputs": {k: str(v) for k, v in self.inputs.items()},
            "crs": self.crs,
            "coord_sys": self.coord_sys,
            "encoding": self.encoding,
            "engine": self.engine,
            "scheduler": self.scheduler,
            "npartitions": self.npartitions,
            "target_crs": self.target_crs,
            "matching": self.matching,
            "evaluation": self.evaluation,
            "land": self.land,
            "output": {
                k: v
                for k, v in {**self.output, "dir": str(self.output["dir"])}.items()
                if k != "salt"
            },
            "db": _mask(self.db),
            "db_schema": self.db_schema,
        }
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _input_path(value: object, base: Path) -> Any:
    text = str(value)
    if text.startswith(("postgresql://", "postgres://")):
        return text  # a PostGIS table: postgresql://host/db#schema.table
    return Path(text) if Path(text).is_absolute() else base / text


def _mask(dsn: str | None) -> str | None:
    if dsn is None:
        return None
    from .db import mask_dsn

    return mask_dsn(dsn)


def default_yaml() -> str:
    """A complete run file with every default, for ``mujun-geo config show run``."""
    data = copy.deepcopy(DEFAULTS)
    data["inputs"] = {
        "parcels": "parcels.shp",
        "enterprises": "enterprises.xlsx",
        "buildings": "buildings.gpkg",
        "parks": "parks.geojson",
        "regions": "regions.geojson",
        "overrides": "overrides.csv",
    }
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
