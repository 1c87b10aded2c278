"""``mujun-geo match | evaluate | land``: run the pipeline up to one stage and write its layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .options import input_options, settings_from, user_errors
from .run import _progress

__all__ = ["evaluate_cmd", "land_cmd", "match_cmd"]


def _stage(until: str, out: Path | None, overwrite: bool, kwargs: dict[str, Any]) -> Any:
    from ..pipeline import run

    settings = settings_from(kwargs, out=out)
    settings.output["gpkg"] = f"{until}.gpkg"
    settings.output["report"] = until == "land"
    return run(
        settings,
        overwrite=overwrite,
        progress=_progress(),
        until=None if until == "land" else until,
    )


_out = click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder [default: out]."
)
_overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing output.")


@click.command("match")
@input_options
@_out
@_overwrite
@user_errors
def match_cmd(out: Path | None, overwrite: bool, **kwargs: Any) -> None:
    """地企对应: link enterprises to parcels; write out/match.gpkg and print a summary."""
    result = _stage("match", out, overwrite, kwargs)
    m = result.layers["matches"]
    firms = result.layers["enterprises"]
    click.echo(f"写出 wrote {result.path}")
    click.echo(
        "links by method 按方式: "
        + ", ".join(f"{k} {v}" for k, v in m["method"].value_counts().sort_index().items())
    )
    click.echo(
        "links by status 按状态: "
        + ", ".join(f"{k} {v}" for k, v in m["status"].value_counts().sort_index().items())
    )
    status = firms["match_status"].value_counts()
    click.echo(
        f"firms 企业: matched {status.get('matched', 0)}, unmatched {status.get('unmatched', 0)}, "
        f"rejected {status.get('rejected', 0)}; awaiting review 待复核 {firms['n_review'].gt(0).sum()}"
    )
    click.echo(f"vacant industrial parcels 空置工业宗地: {len(result.layers['vacant'])}")


@click.command("evaluate")
@input_options
@_out
@_overwrite
@user_errors
def evaluate_cmd(out: Path | None, overwrite: bool, **kwargs: Any) -> None:
    """亩均评价: match, then score and grade every firm; write out/evaluate.gpkg."""
    result = _stage("evaluate", out, overwrite, kwargs)
    firms = result.layers["enterprises"]
    click.echo(f"写出 wrote {result.path}")
    counts = firms["grade"].fillna("").replace("", "未评价").value_counts().sort_index()
    click.echo("grades 评价结果: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@click.command("land")
@input_options
@_out
@_overwrite
@user_errors
def land_cmd(out: Path | None, overwrite: bool, **kwargs: Any) -> None:
    """容积率与低效用地: FAR, coverage, low-efficiency land, 高耗低效, 标准地; write out/land.gpkg."""
    result = _stage("land", out, overwrite, kwargs)
    low = result.layers.get("lowland")
    click.echo(f"写出 wrote {result.path}")
    if low is not None:
        click.echo(
            f"low-efficiency parcels 低效工业用地: {len(low)}, {low['area_mu'].sum():.1f} 亩"
        )
    hele = result.layers.get("high_energy_low_efficiency")
    if hele is not None:
        click.echo(f"高耗低效 firms: {len(hele)}")
