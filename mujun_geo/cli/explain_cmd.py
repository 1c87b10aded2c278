"""``mujun-geo explain CREDIT_CODE``: the whole computation of one firm's score and grade."""

from __future__ import annotations

from typing import Any

import click

from .options import input_options, settings_from, user_errors

__all__ = ["explain_cmd"]


@click.command("explain")
@click.argument("credit_code")
@input_options
@click.option("--demo", is_flag=True, help="Use the bundled sample county.")
@user_errors
def explain_cmd(credit_code: str, demo: bool, **kwargs: Any) -> None:
    """Print every step that gave CREDIT_CODE its score and grade (in Chinese)."""
    from ..evaluate import explain
    from ..pipeline import run

    if demo:
        from ..datasets import sample_settings

        settings = sample_settings()
    else:
        settings = settings_from(kwargs)
    result = run(settings, write=False, until="evaluate")
    firms = result.layers["enterprises"]
    click.echo(
        explain(
            firms,
            credit_code.strip().upper(),
            config=settings.evaluation.get("preset", "zhejiang-2022"),
        )
    )
