"""``mujun-geo validate``: check the inputs, print the problems, write nothing."""

from __future__ import annotations

from typing import Any

import click
import pandas as pd

from .._errors import MujunGeoError
from ..pipeline import ingest
from .options import input_options, settings_from, user_errors

__all__ = ["format_report", "validate_cmd"]

_SEVERITY = {"error": "阻断 error", "reject": "拒收 reject", "warning": "提示 warning"}


def format_report(problems: pd.DataFrame, *, examples: int = 3) -> str:
    """A readable report: counts by problem kind (worst first) with a few examples each.

    Examples
    --------
    >>> df = pd.DataFrame({"source": ["e.xlsx"] * 2, "row": [3, 9], "key": ["A", "B"],
    ...                    "kind": ["bad_checksum"] * 2, "reason": ["check wrong"] * 2,
    ...                    "severity": ["warning"] * 2})
    >>> print(format_report(df))
    2 problems: 0 blocking, 0 rejected rows, 2 warnings
    提示 warning  bad_checksum  2
        e.xlsx row 3 [A]: check wrong
        e.xlsx row 9 [B]: check wrong
    """
    n_err = int((problems["severity"] == "error").sum())
    n_rej = int((problems["severity"] == "reject").sum())
    n_warn = int((problems["severity"] == "warning").sum())
    lines = [
        f"{len(problems)} problems: {n_err} blocking, {n_rej} rejected rows, {n_warn} warnings"
    ]
    order = {"error": 0, "reject": 1, "warning": 2}
    groups = problems.groupby(["severity", "kind"], sort=False)
    for (sev, kind), grp in sorted(
        groups, key=lambda g: (order.get(g[0][0], 3), -len(g[1]), g[0][1])
    ):
        lines.append(f"{_SEVERITY.get(sev, sev)}  {kind}  {len(grp)}")
        for rec in grp.head(examples).itertuples():
            where = f"row {rec.row}" if pd.notna(rec.row) else ""
            key = f" [{rec.key}]" if rec.key is not None and pd.notna(rec.key) else ""
            lines.append(f"    {rec.source} {where}{key}: {rec.reason}")
    return "\n".join(lines)


@click.command("validate")
@input_options
@click.option("--examples", default=3, show_default=True, help="Examples printed per problem kind.")
@click.option("--all", "show_all", is_flag=True, help="Print every problem, not just examples.")
@user_errors
def validate_cmd(examples: int, show_all: bool, **kwargs: Any) -> None:
    """Check inputs and print every problem found; exit 1 if one blocks the run."""
    settings = settings_from(kwargs)
    if "parcels" not in settings.inputs and "enterprises" not in settings.inputs:
        from ..datasets import sample_settings

        click.echo("no inputs given: validating the bundled sample county", err=True)
        settings = sample_settings()
    try:
        data = ingest(settings)
    except MujunGeoError as exc:
        click.echo(f"阻断 error: {exc}")
        raise SystemExit(1) from exc
    frame = data.problems.frame()
    click.echo(format_report(frame, examples=10**9 if show_all else examples))
    if data.problems.has_errors:
        raise SystemExit(1)
