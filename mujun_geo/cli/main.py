"""The ``mujun-geo`` command group: logging set-up and subcommand registration."""

from __future__ import annotations

import logging

import click

from .. import __version__
from . import commands

__all__ = ["cli"]


def configure_logging(verbosity: int) -> None:
    """Send the package's log to stderr at a level set by ``-v``/``-q``."""
    level = max(logging.DEBUG, logging.WARNING - 10 * verbosity)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output.")
@click.version_option(__version__, prog_name="mujun-geo")
def cli(verbose: int, quiet: int) -> None:
    """亩均论英雄 GIS toolkit: 地企对应, 亩均评价, 容积率与低效用地, maps and reports."""
    configure_logging(verbose - quiet)


for command in commands.ALL:
    cli.add_command(command)
