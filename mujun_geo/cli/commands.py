"""Registry of the subcommands (each lives in its own module)."""

from __future__ import annotations

from .run import demo_cmd, run_cmd
from .validate import validate_cmd

__all__ = ["ALL"]

ALL = [demo_cmd, run_cmd, validate_cmd]
