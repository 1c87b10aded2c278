"""``mujun-geo run`` and ``mujun-geo demo``: the whole pipeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ..pipeline import RunResult, run
from ..settings import RunSettings
from .options import input_options, settings_from, user_errors

__all__ = ["demo_cmd", "run_cmd"]


def _progress() -> Any:
    start = time.perf_counter()
    step = [0]

    def say(message: str) -> None:
        step[0] += 1
        click.echo(f"[{time.perf_counter() - start:6.1f}s] {message}", err=True)

    return say


def _summary(result: RunResult) -> None:
    layers = result.layers
    click.echo(f"写出 wrote {result.path}")
    for name, frame in layers.items():
        click.echo(f"  {name:<28} {len(frame):>7} rows")
    firms = layers.get("enterprises")
    if firms is not None and "grade" in firms:
        counts = firms["grade"].fillna("").replace("", "未评价").value_counts().to_dict()
        click.echo("  grades 评价结果: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    n_rej = len(layers.get("rejects", []))
    click.echo(f"  rejected input rows 拒收: {n_rej} (see the `rejects` layer)")


def execute(settings: RunSettings, *, overwrite: bool) -> RunResult:
    """Run and print the summary (shared by run and demo)."""
    result = run(settings, overwrite=overwrite, progress=_progress())
    _summary(result)
    return result


@click.command("run")
@input_options
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder [default: out]."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option(
    "--pseudonymise",
    is_flag=True,
    help="Replace credit codes and names by keyed hashes, to share results outside the department.",
)
@click.option(
    "--salt", envvar="MUJUN_SALT", help="Secret for --pseudonymise (or the MUJUN_SALT variable)."
)
@click.option("--no-maps", is_flag=True, help="Skip the HTML and PNG maps.")
@user_errors
def run_cmd(
    out: Path | None,
    overwrite: bool,
    pseudonymise: bool,
    salt: str | None,
    no_maps: bool,
    **kwargs: Any,
) -> None:
    """Run every stage on your inputs and write out/mujun.gpkg (+ report, maps)."""
    settings = settings_from(kwargs, out=out)
    if pseudonymise:
        settings.output["pseudonymise"] = True
        settings.output["salt"] = salt
    if no_maps:
        settings.output["maps"] = False
    execute(settings, overwrite=overwrite)


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Output folder.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@user_errors
def demo_cmd(out: Path, overwrite: bool) -> None:
    """Run the whole pipeline on the bundled sample county (海宁市, synthetic)."""
    from ..datasets import sample_settings

    settings = sample_settings()
    settings.output["dir"] = out
    execute(settings, overwrite=overwrite)
