"""Print-ready static maps (PNG): grades, 亩均税收, low-efficiency land, regions vs target.

Four maps for documents, each with title, legend, scale bar (computed in the layer's projected
CRS, metres), north arrow and a ``数据来源：… 制图日期：YYYY-MM-DD`` line:

* :func:`plot_grades` — parcels by 评价类别 A/B/C/D (fixed colours, grey = 未评价);
* :func:`plot_tax_per_mu` — 亩均税收 in 万元/亩, graduated (``scheme="quantiles"`` or
  ``"fisherjenks"``, ``k=5``; bins that round to the same value are merged);
* :func:`plot_lowland` — 低效工业用地 coloured by the first (rule-order) reason;
* :func:`plot_regions` — 行政区 亩均税收 against the target (``tax_per_mu_target``, or
  ``tax_per_mu - tax_gap``); without targets the regions are graduated by 亩均税收.

Chinese text needs a CJK font: :func:`find_cjk_font` looks for Noto Sans CJK SC (Debian
``fonts-noto-cjk``), Source Han Sans, WenQuanYi, Microsoft YaHei or SimHei and raises
:class:`~mujun_geo._errors.MujunGeoError` naming the package to install when none is found.
Colours and classes are shared with the web maps (``mujun_geo._mapstyle``, re-exported here).

Examples
--------
>>> import geopandas as gpd, shapely
>>> p = gpd.GeoDataFrame({"grade": ["A", None]}, crs=4549,
...     geometry=[shapely.box(0, 0, 300, 300), shapely.box(300, 0, 600, 300)])
>>> fig, ax = plot_grades(p, figsize=(6, 4), dpi=50, date="2024-05-01")
>>> ax.get_title(), ax.texts[-1].get_text()[-15:]
('工业用地亩均效益评价类别', '制图日期：2024-05-01')
>>> import matplotlib.pyplot as plt; plt.close(fig)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

import geopandas as gpd

from ._errors import SchemaError
from ._mapstyle import (
    BACKGROUND,
    GRADE_COLORS,
    GRADE_ORDER,
    NO_DATA_COLOR,
    OTHER_REASON_COLOR,
    REASON_COLORS,
    SCHEMES,
    TARGET_STATUS,
    TAX_COLORS,
    Classes,
    actual_and_target,
    classify,
    find_cjk_font,
    first_reason,
    fit_extent,
    grade_codes,
    mpl_rc,
    north_arrow,
    reason_label,
    require,
    scale_bar,
    target_status,
)
from .crs import require_projected
from .labels import GRADE_NAMES
from .units import M2_PER_MU

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BACKGROUND",
    "Classes",
    "GRADE_COLORS",
    "GRADE_ORDER",
    "NO_DATA_COLOR",
    "REASON_COLORS",
    "SCHEMES",
    "TARGET_STATUS",
    "TAX_COLORS",
    "classify",
    "find_cjk_font",
    "first_reason",
    "grade_codes",
    "make_static_maps",
    "plot_grades",
    "plot_lowland",
    "plot_regions",
    "plot_tax_per_mu",
    "reason_label",
    "target_status",
]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- drawing
def _new_axes(ax: Axes | None, figsize: tuple[float, float], dpi: int) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize, dpi=dpi)
    ax = fig.add_axes((0.03, 0.07, 0.70, 0.84))
    return fig, ax


def _footer(source: str | None, date: str | dt.date | None) -> str:
    from . import __version__

    day = date or dt.date.today()
    day = day.isoformat() if isinstance(day, dt.date) else str(day)
    src = source or f"亩均效益综合评价结果（mujun-geo {__version__} 计算）"
    return f"数据来源：{src}    制图日期：{day}"


def _check_layer(gdf: gpd.GeoDataFrame, name: str, columns: Sequence[str]) -> gpd.GeoDataFrame:
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"`{name}` must be a GeoDataFrame, got {type(gdf).__name__}"
        raise TypeError(msg)
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        msg = (
            f"`{name}` lacks column(s) {missing} needed for this map; columns: {list(gdf.columns)}"
        )
        raise SchemaError(msg)
    require_projected(gdf, name=name)
    keep = gdf.geometry.notna() & ~gdf.geometry.is_empty
    return gdf[keep]


def _area_mu(gdf: gpd.GeoDataFrame) -> pd.Series:
    if "area_mu" in gdf:
        return pd.to_numeric(gdf["area_mu"], errors="coerce").fillna(0.0)
    return gdf.geometry.area / M2_PER_MU


def _draw(
    gdf: gpd.GeoDataFrame,
    colors: pd.Series,
    legend: list[tuple[str, str]],
    *,
    title: str,
    legend_title: str,
    boundaries: gpd.GeoDataFrame | None,
    ax: Axes | None,
    figsize: tuple[float, float],
    dpi: int,
    source: str | None,
    date: str | dt.date | None,
    save: bool,
    filepath: str | os.PathLike[str] | None,
    background: gpd.GeoDataFrame | None = None,
    labels: pd.DataFrame | None = None,
    label_note: str | None = None,
) -> tuple[Figure, Axes]:
    require("matplotlib", "plot")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if save and filepath is None:
        msg = "`save=True` needs a `filepath` for the PNG"
        raise ValueError(msg)
    import matplotlib

    with matplotlib.rc_context(mpl_rc()):  # type: ignore[arg-type]
        fig, ax = _new_axes(ax, figsize, dpi)
        ax.set_facecolor("white")
        bounds = (background if background is not None and len(background) else gdf).total_bounds
        if not np.all(np.isfinite(bounds)):
            bounds = np.array([0.0, 0.0, 1000.0, 1000.0])
        fit_extent(ax, bounds)
        edge = 0.15 if len(gdf) > 2000 else 0.3
        if background is not None and len(background):
            background.plot(ax=ax, color="#e3e3e3", edgecolor="white", linewidth=edge, zorder=1)
        if len(gdf):
            gdf.plot(ax=ax, color=colors.to_numpy(), edgecolor="white", linewidth=edge, zorder=2)
        handles: list[Any] = [
            Patch(facecolor=c, edgecolor="#777777", linewidth=0.4, label=lab) for c, lab in legend
        ]
        if boundaries is not None and len(boundaries):
            b = boundaries.to_crs(gdf.crs) if boundaries.crs != gdf.crs else boundaries
            b.boundary.plot(ax=ax, color="#333333", linewidth=0.8, zorder=3)
            what = "园区边界" if "park_id" in b else ("行政区界" if "region_code" in b else "边界")
            handles.append(Line2D([], [], color="#333333", linewidth=0.8, label=what))
        if labels is not None and label_note:
            handles.append(Line2D([], [], linestyle="none", label=label_note))
        if labels is not None:
            import matplotlib.patheffects as pe

            for x, y, text in labels[["x", "y", "text"]].itertuples(index=False):
                ax.text(
                    x,
                    y,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    zorder=4,
                    path_effects=[pe.withStroke(linewidth=2.5, foreground="white")],
                )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_title(title, fontsize=16, pad=10)
        ax.legend(
            handles=handles,
            title=legend_title,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            frameon=False,
            fontsize=9,
            title_fontsize=10,
            alignment="left",
        )
        scale_bar(ax)
        north_arrow(ax)
        ax.annotate(
            _footer(source, date),
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -8),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=8,
            color="#444444",
        )
        if save:
            _save_png(fig, Path(filepath), dpi=dpi)  # type: ignore[arg-type]
    return fig, ax


def _save_png(fig: Figure, path: Path, *, dpi: int) -> None:
    """Write ``fig`` to ``path`` atomically (temporary file, then ``os.replace``)."""
    import matplotlib

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
    try:
        with matplotlib.rc_context(mpl_rc()):  # type: ignore[arg-type]
            fig.savefig(tmp, dpi=dpi, format="png", facecolor="white")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("wrote %s (%d bytes)", path, path.stat().st_size)


def _count_label(label: str, n: int, mu: float) -> str:
    return f"{label}（{n} 宗，{mu:,.1f} 亩）"


_PlotKw = dict[str, Any]


# ----------------------------------------------------------------------------- public maps
def plot_grades(
    parcels: gpd.GeoDataFrame,
    *,
    column: str = "grade",
    boundaries: gpd.GeoDataFrame | None = None,
    title: str = "工业用地亩均效益评价类别",
    ax: Axes | None = None,
    figsize: tuple[float, float] = (11.69, 8.27),
    save: bool = False,
    filepath: str | os.PathLike[str] | None = None,
    dpi: int = 300,
    source: str | None = None,
    date: str | dt.date | None = None,
) -> tuple[Figure, Axes]:
    """Map parcels by 评价类别 (A green … D red, grey = 未评价).

    Parameters
    ----------
    parcels
        Parcel polygons in a projected CRS (metres) with ``column``; ``area_mu`` is used
        for the legend's areas when present.
    column
        Grade column (A/B/C/D; anything else = 未评价).
    boundaries
        Optional polygons (parks or regions) drawn as outlines.
    title, source, date
        Title, data-source text and map date (default today) of the footer line.
    ax, figsize, dpi
        Axes to draw into (a new A4-landscape figure by default) and print resolution.
    save, filepath
        Write a PNG (atomically) to ``filepath``.

    Returns
    -------
    (fig, ax)

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> p = gpd.GeoDataFrame({"grade": ["A", "D"]},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)], crs=4549)
    >>> fig, ax = plot_grades(p, figsize=(4, 3), dpi=50)
    >>> [t.get_text() for t in ax.get_legend().get_texts()][:2]
    ['A 优先发展类（1 宗，15.0 亩）', 'B 鼓励提升类（0 宗，0.0 亩）']
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    gdf = _check_layer(parcels, "parcels", [column])
    g = grade_codes(gdf[column])
    mu = _area_mu(gdf)
    legend = [
        (
            GRADE_COLORS[c],
            _count_label(
                GRADE_NAMES.get(c, c or "未评价"), int((g == c).sum()), float(mu[g == c].sum())
            ),
        )
        for c in GRADE_ORDER
    ]
    return _draw(
        gdf,
        g.map(GRADE_COLORS),
        legend,
        title=title,
        legend_title="评价类别",
        boundaries=boundaries,
        ax=ax,
        figsize=figsize,
        dpi=dpi,
        source=source,
        date=date,
        save=save,
        filepath=filepath,
    )


def plot_tax_per_mu(
    parcels: gpd.GeoDataFrame,
    *,
    column: str = "tax_per_mu",
    scheme: Literal["quantiles", "fisherjenks"] = "quantiles",
    k: int = 5,
    boundaries: gpd.GeoDataFrame | None = None,
    title: str = "工业用地亩均税收",
    ax: Axes | None = None,
    figsize: tuple[float, float] = (11.69, 8.27),
    save: bool = False,
    filepath: str | os.PathLike[str] | None = None,
    dpi: int = 300,
    source: str | None = None,
    date: str | dt.date | None = None,
) -> tuple[Figure, Axes]:
    """Map parcels by 亩均税收 (万元/亩), graduated with :func:`classify`; grey = 无数据.

    Parameters are those of :func:`plot_grades`, plus ``scheme`` and ``k`` of
    :func:`classify`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> p = gpd.GeoDataFrame({"tax_per_mu": [5.0, 40.0, None]}, crs=4549,
    ...     geometry=[shapely.box(i * 100, 0, i * 100 + 90, 90) for i in range(3)])
    >>> fig, ax = plot_tax_per_mu(p, figsize=(4, 3), dpi=50)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['5.00（1 宗）', '40.00（1 宗）', '无数据（1 宗）']
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    gdf = _check_layer(parcels, "parcels", [column])
    cls = classify(gdf[column], scheme=scheme, k=k)
    palette = [*cls.colors, NO_DATA_COLOR]
    colors = cls.index.map(lambda i: palette[i])
    legend = [
        (c, f"{lab}（{int((cls.index == i).sum())} 宗）")
        for i, (c, lab) in enumerate(zip(cls.colors, cls.labels))
    ]
    legend.append((NO_DATA_COLOR, f"无数据（{int((cls.index == -1).sum())} 宗）"))
    return _draw(
        gdf,
        colors,
        legend,
        title=title,
        legend_title="亩均税收（万元/亩）",
        boundaries=boundaries,
        ax=ax,
        figsize=figsize,
        dpi=dpi,
        source=source,
        date=date,
        save=save,
        filepath=filepath,
    )


def plot_lowland(
    parcels: gpd.GeoDataFrame,
    *,
    boundaries: gpd.GeoDataFrame | None = None,
    title: str = "低效工业用地分布",
    ax: Axes | None = None,
    figsize: tuple[float, float] = (11.69, 8.27),
    save: bool = False,
    filepath: str | os.PathLike[str] | None = None,
    dpi: int = 300,
    source: str | None = None,
    date: str | dt.date | None = None,
) -> tuple[Figure, Axes]:
    """Map 低效工业用地 (``lowland == 1``) coloured by its first reason over grey parcels.

    ``parcels`` needs ``lowland`` (0/1) and ``lowland_reasons`` (";"-joined rule names);
    the other parameters are those of :func:`plot_grades`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> p = gpd.GeoDataFrame({"lowland": [1, 0], "lowland_reasons": ["idle;d_grade", ""]},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)], crs=4549)
    >>> fig, ax = plot_lowland(p, figsize=(4, 3), dpi=50)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['未建设(无建筑)（1 宗，15.0 亩）', '非低效用地（1 宗）']
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    gdf = _check_layer(parcels, "parcels", ["lowland", "lowland_reasons"])
    flag = pd.to_numeric(gdf["lowland"], errors="coerce").fillna(0).astype(int) == 1
    low = gdf[flag]
    first = first_reason(low["lowland_reasons"])
    mu = _area_mu(low)
    order = [r for r in REASON_COLORS if (first == r).any()]
    order += sorted(set(first) - set(order))
    legend = [
        (
            REASON_COLORS.get(r, OTHER_REASON_COLOR),
            _count_label(
                reason_label(r) if r else "未注明原因",
                int((first == r).sum()),
                float(mu[first == r].sum()),
            ),
        )
        for r in order
    ]
    legend.append(("#e3e3e3", f"非低效用地（{int((~flag).sum())} 宗）"))
    colors = first.map(lambda r: REASON_COLORS.get(r, OTHER_REASON_COLOR))
    return _draw(
        low,
        colors,
        legend,
        title=title,
        legend_title="低效原因（按首要原因着色）",
        boundaries=boundaries,
        ax=ax,
        figsize=figsize,
        dpi=dpi,
        source=source,
        date=date,
        save=save,
        filepath=filepath,
        background=gdf[~flag],
    )


def plot_regions(
    regions: gpd.GeoDataFrame,
    *,
    title: str = "各地亩均税收与目标对比",
    label_max: int = 60,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (11.69, 8.27),
    save: bool = False,
    filepath: str | os.PathLike[str] | None = None,
    dpi: int = 300,
    source: str | None = None,
    date: str | dt.date | None = None,
) -> tuple[Figure, Axes]:
    """Map regions by 亩均税收 against target (:func:`target_status`), labelled with figures.

    Without any target the regions are graduated by ``tax_per_mu`` instead. Each region
    is labelled ``name`` and ``实际/目标`` when there are at most ``label_max`` regions.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> r = gpd.GeoDataFrame({"name": ["甲", "乙"], "tax_per_mu": [32.0, 20.0],
    ...     "tax_per_mu_target": [30.0, 30.0]}, crs=4549,
    ...     geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000)])
    >>> fig, ax = plot_regions(r, figsize=(4, 3), dpi=50)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['达到目标（1）', '低于目标 20% 以内（0）', '低于目标 20% 以上（1）', '无目标或无数据（0）',
     '标注：实际/目标（万元/亩）']
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    gdf = _check_layer(regions, "regions", ["tax_per_mu"])
    if "level" in gdf and {"city", "county"} <= set(gdf["level"]):
        # cities for the provincial picture; counties only where they have figures, so the
        # county outlines of a whole city do not bury its label
        keep = (gdf["level"] != "county") | pd.to_numeric(
            gdf["tax_per_mu"], errors="coerce"
        ).notna()
        gdf = gdf[keep]
    status = target_status(gdf)
    t, target = actual_and_target(gdf)
    if (status != "none").any():
        colors = status.map(lambda s: TARGET_STATUS[s][1])
        legend = [
            (col, f"{lab}（{int((status == s).sum())}）") for s, (lab, col) in TARGET_STATUS.items()
        ]
        legend_title = "亩均税收对照目标"
        label_note = "标注：实际/目标（万元/亩）"
        text = [
            (f"{a:.1f}" if pd.notna(a) else "—") + (f"/{b:.1f}" if pd.notna(b) else "")
            for a, b in zip(t, target)
        ]
    else:
        cls = classify(t)
        palette = [*cls.colors, NO_DATA_COLOR]
        colors = cls.index.map(lambda i: palette[i])
        legend = [(c, lab) for c, lab in zip(cls.colors, cls.labels)] + [(NO_DATA_COLOR, "无数据")]
        legend_title = "亩均税收（万元/亩；未提供目标值）"
        label_note = "标注：亩均税收（万元/亩）"
        text = [f"{a:.1f}" if pd.notna(a) else "" for a in t]
    labels = None
    if len(gdf) <= label_max:
        pts = gdf.geometry.representative_point()
        names = gdf["name"].astype(str) if "name" in gdf else pd.Series("", index=gdf.index)
        labels = pd.DataFrame(
            {"x": pts.x, "y": pts.y, "text": [f"{n}\n{v}".strip() for n, v in zip(names, text)]}
        )
    return _draw(
        gdf,
        colors,
        legend,
        title=title,
        legend_title=legend_title,
        boundaries=None,
        ax=ax,
        figsize=figsize,
        dpi=dpi,
        source=source,
        date=date,
        save=save,
        filepath=filepath,
        labels=labels,
        label_note=label_note,
    )


def make_static_maps(
    layers: Mapping[str, gpd.GeoDataFrame | None],
    out_dir: str | os.PathLike[str],
    *,
    dpi: int = 300,
    figsize: tuple[float, float] = (11.69, 8.27),
    scheme: Literal["quantiles", "fisherjenks"] = "quantiles",
    k: int = 5,
    source: str | None = None,
    date: str | dt.date | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the static maps that the given layers allow, as PNG files in ``out_dir``.

    ``grades.png`` (parcels with ``grade``), ``tax_per_mu.png`` (``tax_per_mu``),
    ``lowland.png`` (``lowland``, ``lowland_reasons``) and ``regions.png`` (regions with
    ``tax_per_mu``). Park outlines (else region outlines) are drawn on the parcel maps.

    Raises
    ------
    FileExistsError
        When a PNG exists and ``overwrite`` is False (nothing is written then).

    Examples
    --------
    >>> import tempfile, geopandas as gpd, shapely
    >>> p = gpd.GeoDataFrame({"grade": ["A"], "tax_per_mu": [12.0]}, crs=4549,
    ...     geometry=[shapely.box(0, 0, 100, 100)])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = make_static_maps({"parcels": p}, d, dpi=20, figsize=(4, 3))
    ...     sorted(paths), paths["grades"].name
    (['grades', 'tax_per_mu'], 'grades.png')
    """
    require("matplotlib", "plot")
    import matplotlib.pyplot as plt

    parcels = layers.get("parcels")
    regions = layers.get("regions")
    outline = layers.get("parks")
    if outline is None:
        outline = regions
    jobs: dict[str, Any] = {}
    common: _PlotKw = {"figsize": figsize, "dpi": dpi, "source": source, "date": date}
    if parcels is not None and "grade" in parcels:
        jobs["grades"] = lambda: plot_grades(parcels, boundaries=outline, **common)
    if parcels is not None and "tax_per_mu" in parcels:
        jobs["tax_per_mu"] = lambda: plot_tax_per_mu(
            parcels, scheme=scheme, k=k, boundaries=outline, **common
        )
    if parcels is not None and {"lowland", "lowland_reasons"} <= set(parcels.columns):
        jobs["lowland"] = lambda: plot_lowland(parcels, boundaries=outline, **common)
    if regions is not None and "tax_per_mu" in regions:
        jobs["regions"] = lambda: plot_regions(regions, **common)
    out = Path(out_dir)
    paths = {name: out / f"{name}.png" for name in jobs}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        msg = f"map file(s) exist: {existing}; pass `overwrite=True` to replace them"
        raise FileExistsError(msg)
    for name, job in jobs.items():
        fig, _ = job()
        try:
            _save_png(fig, paths[name], dpi=dpi)
        finally:
            plt.close(fig)
    return paths
