"""Options shared by several subcommands, and the error handling of the CLI."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .._errors import MujunGeoError
from ..settings import INPUT_LAYERS, RunSettings

__all__ = ["input_options", "settings_from", "user_errors"]

F = Callable[..., Any]
_FILE = click.Path(exists=False, dir_okay=False, path_type=Path)


def input_options(func: F) -> F:
    """Add ``--config`` and one ``--<layer> FILE`` option per input layer."""
    opts = [
        click.option(
            "--config",
            "config",
            type=_FILE,
            help="Run file (YAML); see `mujun-geo config show run`.",
        ),
        click.option(
            "--parcels", help="宗地 polygons (any GDAL vector format, or a PostGIS table)."
        ),
        click.option("--enterprises", help="企业 table (XLSX/CSV), point layer or PostGIS table."),
        click.option("--buildings", type=_FILE, help="建筑物 polygons with 层数/高度/用途."),
        click.option("--parks", type=_FILE, help="园区 polygons."),
        click.option("--regions", type=_FILE, help="行政区 polygons (city and county)."),
        click.option("--overrides", type=_FILE, help="人工确认 table (staff decisions on links)."),
        click.option(
            "--standard-land", "standard_land", type=_FILE, help="标准地 commitments table."
        ),
        click.option(
            "--targets",
            type=_FILE,
            help="Region targets table (adds to the built-in 2022 targets).",
        ),
        click.option(
            "--previous",
            type=_FILE,
            help="Last year's output GeoPackage, for year-over-year change.",
        ),
        click.option(
            "--crs", "crs", metavar="EPSG", help="CRS to declare for input files that have none."
        ),
        click.option(
            "--coord-sys",
            type=click.Choice(["wgs84", "cgcs2000", "gcj02", "bd09"]),
            help="System of 经度/纬度 where the 坐标系 column is blank.",
        ),
        click.option(
            "--encoding", help="Force the text encoding of Shapefiles (default: detected)."
        ),
        click.option(
            "--engine", type=click.Choice(["pyogrio", "fiona"]), help="Vector I/O engine."
        ),
        click.option("--year", type=int, help="Evaluation year."),
        click.option("--preset", help="Scoring preset or YAML (see `mujun-geo config list`)."),
        click.option(
            "--db",
            "db",
            metavar="DSN",
            help="PostGIS database (postgresql://user@host/db) to write every layer to, one schema "
            "per year; the password comes from PGPASSWORD or ~/.pgpass. Inputs can be tables: "
            "--parcels 'postgresql://…#schema.table'.",
        ),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def settings_from(kwargs: dict[str, Any], *, out: Path | None = None) -> RunSettings:
    """Build run settings from a config file and/or the command-line options (options win)."""
    config = kwargs.pop("config", None)
    settings = RunSettings.from_yaml(config) if config else RunSettings.from_dict({})
    for layer in INPUT_LAYERS:
        value = kwargs.get(layer)
        if value is not None:
            settings.inputs[layer] = value
    if kwargs.get("crs"):
        for layer in INPUT_LAYERS:
            settings.crs.setdefault(layer, kwargs["crs"])
    for key in ("coord_sys", "encoding", "engine", "scheduler"):
        if kwargs.get(key):
            setattr(settings, key, kwargs[key])
    if kwargs.get("year"):
        settings.year = kwargs["year"]
    if kwargs.get("preset"):
        settings.evaluation["preset"] = kwargs["preset"]
    if kwargs.get("db"):
        settings.db = kwargs["db"]
    if out is not None:
        settings.output["dir"] = out
    return settings


def user_errors(func: F) -> F:
    """Turn the toolkit's own errors into a message and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (MujunGeoError, FileNotFoundError) as exc:
            logging.getLogger("mujun_geo").debug("user error", exc_info=True)
            raise click.ClickException(str(exc)) from exc

    return wrapper
