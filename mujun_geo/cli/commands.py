"""Registry of the subcommands (each lives in its own module)."""

from __future__ import annotations

from .config_cmds import config_group
from .explain_cmd import explain_cmd
from .review_cmds import review_group
from .run import demo_cmd, run_cmd
from .stage_cmds import evaluate_cmd, land_cmd, match_cmd
from .validate import validate_cmd

__all__ = ["ALL"]

ALL = [
    demo_cmd,
    run_cmd,
    validate_cmd,
    match_cmd,
    evaluate_cmd,
    land_cmd,
    explain_cmd,
    config_group,
    review_group,
]
