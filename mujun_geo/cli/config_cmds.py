"""``mujun-geo config``: list and print presets and the run file."""

from __future__ import annotations

import click

from .options import user_errors

__all__ = ["config_group"]


@click.group("config")
def config_group() -> None:
    """Scoring presets and the run file (YAML), to copy and edit."""


@config_group.command("list")
def config_list() -> None:
    """List the built-in scoring presets."""
    from ..scoring_config import preset_names

    for name in preset_names():
        click.echo(name)
    click.echo("run  (the run file: inputs, matching, land and output settings)")


@config_group.command("show")
@click.argument("name")
@user_errors
def config_show(name: str) -> None:
    """Print preset NAME (or `run`) as an editable YAML file."""
    if name == "run":
        from ..settings import default_yaml

        click.echo(default_yaml(), nl=False)
        return
    from ..scoring_config import config_yaml, preset_names

    if name not in preset_names():
        msg = f"no preset {name!r}; available: {', '.join(preset_names())}, run"
        raise click.BadParameter(msg, param_hint="NAME")
    click.echo(config_yaml(name), nl=False)
