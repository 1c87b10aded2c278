"""``mujun-geo review apply``: turn staff decisions in the review sheet into overrides."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from .options import user_errors

__all__ = ["review_group"]


@click.group("review")
def review_group() -> None:
    """The 地企对应 review loop: links with status `review` go to staff and come back."""


def _read_review(path: Path) -> pd.DataFrame:
    from ..io import read_table
    from ..labels import LAYERS, column_for

    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        names = openpyxl.load_workbook(path, read_only=True).sheetnames
        sheet = LAYERS["review"] if LAYERS["review"] in names else 0
        frame = read_table(path, layer=sheet)
    else:
        frame = read_table(path)
    return frame.rename(columns=lambda c: column_for(str(c)))


@review_group.command("apply")
@click.argument("review_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--overrides",
    "overrides_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Overrides CSV to create or extend (later decisions on the same link win).",
)
@user_errors
def review_apply(review_file: Path, overrides_path: Path) -> None:
    """Read REVIEW_FILE (the 待人工复核 sheet of report.xlsx, or a CSV) and update the overrides."""
    from ..io import read_overrides
    from ..matching import apply_review

    decided = apply_review(_read_review(review_file))
    new = decided[["credit_code", "parcel_id", "action", "share", "note"]]
    if overrides_path.exists():
        old = read_overrides(overrides_path)[
            ["credit_code", "parcel_id", "action", "share", "note"]
        ]
        merged = pd.concat([old, new], ignore_index=True)
    else:
        merged = new
    merged = merged.drop_duplicates(["credit_code", "parcel_id"], keep="last")
    tmp = overrides_path.with_name(f".{overrides_path.name}.partial")
    out = merged.rename(
        columns={
            "credit_code": "统一社会信用代码",
            "parcel_id": "宗地代码",
            "action": "操作",
            "share": "面积份额",
            "note": "备注",
        }
    )
    out["操作"] = out["操作"].map({"confirm": "确认", "reject": "否决", "assign": "指定"})
    out.to_csv(tmp, index=False, encoding="utf-8-sig")
    tmp.replace(overrides_path)
    click.echo(f"{len(new)} decisions read; {overrides_path} now holds {len(merged)} overrides")
