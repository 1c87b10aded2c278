"""Cartographic conventions shared by the static (:mod:`mujun_geo.plot`) and web maps.

Fixed grade colours, low-efficiency reason colours, the 亩均税收 palette and classes
(:func:`classify`: legends never show a degenerate ``0.38–0.38`` class), the status of a region
against its 亩均税收 target, the search for a font with Chinese glyphs, and the static maps'
furniture (extent at 1:1 aspect, scale bar in metres, north arrow). Public names are
re-exported by :mod:`mujun_geo.plot`.

Examples
--------
>>> import pandas as pd
>>> c = classify(pd.Series([0.384, 0.381, 2.0, None]), k=5)
>>> c.labels, c.index.tolist()
(['0.38', '2.00'], [0, 0, 1, -1])
>>> target_status(pd.DataFrame({"tax_per_mu": [30.0, 25.0, 10.0],
...                             "tax_per_mu_target": [30.0, 28.0, None]})).tolist()
['met', 'near', 'none']
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ._errors import MujunGeoError
from .labels import LOWLAND_REASONS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BACKGROUND",
    "Classes",
    "GRADE_COLORS",
    "GRADE_ORDER",
    "NO_DATA_COLOR",
    "OTHER_REASON_COLOR",
    "REASON_COLORS",
    "SCHEMES",
    "TARGET_STATUS",
    "TAX_COLORS",
    "actual_and_target",
    "classify",
    "find_cjk_font",
    "fit_extent",
    "first_reason",
    "grade_codes",
    "mpl_rc",
    "nice_length",
    "north_arrow",
    "reason_label",
    "require",
    "scale_bar",
    "target_status",
]

GRADE_ORDER = ("A", "B", "C", "D", "")
#: Fixed grade colours (ColorBrewer RdYlGn ends); "" = 未评价.
GRADE_COLORS: dict[str, str] = {
    "A": "#1a9850",
    "B": "#91cf60",
    "C": "#fc8d59",
    "D": "#d73027",
    "": "#bdbdbd",
}
NO_DATA_COLOR = "#bdbdbd"
BACKGROUND = "#f4f4f2"
#: 5-class ColorBrewer YlGnBu for 亩均税收 (low → high).
TAX_COLORS = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")
#: Colours of the low-efficiency rules of :mod:`mujun_geo.lowland`; other rule names get grey.
REASON_COLORS: dict[str, str] = {
    "vacant": "#e15759",
    "idle": "#f28e2b",
    "far_below_min": "#b07aa1",
    "coverage_below_min": "#76b7b2",
    "low_tax_per_mu": "#edc948",
    "stopped": "#9c755f",
    "d_grade": "#4e79a7",
}
OTHER_REASON_COLOR = "#7f7f7f"
#: Region status against the 亩均税收 target: code -> (Chinese label, colour).
TARGET_STATUS: dict[str, tuple[str, str]] = {
    "met": ("达到目标", "#1a9850"),
    "near": ("低于目标 20% 以内", "#fee08b"),
    "below": ("低于目标 20% 以上", "#d73027"),
    "none": ("无目标或无数据", NO_DATA_COLOR),
}
SCHEMES = ("quantiles", "fisherjenks")
_EXTRA_REASONS = {"low_revenue_per_mu": "亩均营业收入偏低"}


# ----------------------------------------------------------------------------- shared styling
def grade_codes(values: pd.Series) -> pd.Series:
    """Normalise grades to ``"A"``–``"D"``, everything else (None, NaN, "") to ``""``.

    Examples
    --------
    >>> grade_codes(pd.Series(["a", None, "D ", "x"])).tolist()
    ['A', '', 'D', '']
    """
    g = values.astype(object).where(values.notna(), "").astype(str).str.strip().str.upper()
    return g.where(g.isin(["A", "B", "C", "D"]), "").rename("grade")


def reason_label(name: str) -> str:
    """Chinese name of a low-efficiency rule (the rule name itself when unknown)."""
    return LOWLAND_REASONS.get(name, _EXTRA_REASONS.get(name, name))


def first_reason(reasons: pd.Series) -> pd.Series:
    """First rule name of each ``;``-joined ``lowland_reasons`` value (``""`` when none).

    Examples
    --------
    >>> first_reason(pd.Series(["idle;d_grade", None, ""])).tolist()
    ['idle', '', '']
    """
    s = reasons.astype(object).where(reasons.notna(), "").astype(str)
    return s.str.split(";").str[0].str.strip().rename("first_reason")


@dataclass(frozen=True)
class Classes:
    """Result of :func:`classify`: class upper bounds, legend labels, colours, class per row."""

    bins: list[float]
    labels: list[str]
    colors: list[str]
    index: pd.Series  # class number per input row, -1 = no value


def _palette(n: int) -> list[str]:
    if n <= 0:
        return []
    pick = np.round(np.linspace(0, len(TAX_COLORS) - 1, n)).astype(int)
    return [TAX_COLORS[i] for i in pick]


def classify(
    values: pd.Series,
    *,
    scheme: Literal["quantiles", "fisherjenks"] = "quantiles",
    k: int = 5,
    decimals: int = 2,
) -> Classes:
    """Graduated classes of ``values`` for a legend that reads well.

    Breaks come from mapclassify (``Quantiles`` or ``FisherJenks`` on at most 500
    quantile-sampled values, so 50,000 parcels classify in well under a second). They are
    rounded to ``decimals`` and duplicates are merged, so no legend shows a class like
    ``0.38–0.38``; a class holding one rounded value is labelled with that value alone.
    Class ``i`` holds rounded values in ``(bins[i-1], bins[i]]``; its label shows the
    smallest and largest value in it, so a class never reads ``0.38–0.38``.

    Parameters
    ----------
    values
        Numbers (NaN = no value, class -1).
    scheme
        ``"quantiles"`` or ``"fisherjenks"``.
    k
        Wanted number of classes (fewer when there are fewer distinct values).
    decimals
        Rounding of breaks and labels.

    Examples
    --------
    >>> c = classify(pd.Series([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]), k=2)
    >>> c.bins, c.labels, c.index.tolist()
    ([5.5, 10.0], ['1.00–5.00', '6.00–10.00'], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    """
    if scheme not in SCHEMES:
        msg = f"`scheme` must be one of {list(SCHEMES)}, got {scheme!r}"
        raise ValueError(msg)
    v = pd.to_numeric(pd.Series(values), errors="coerce").astype(float).round(decimals)
    valid = v.dropna().to_numpy()
    if valid.size == 0:
        return Classes([], [], [], pd.Series(-1, index=v.index, dtype=int))
    uniq = np.unique(valid)
    if uniq.size <= k:
        bins = uniq
    else:
        import mapclassify

        sample = valid if valid.size <= 500 else np.quantile(valid, np.linspace(0, 1, 500))
        require("mapclassify", "plot")  # also in the "web" extra
        with warnings.catch_warnings():
            # mapclassify warns on ties and on missing numba; ties are merged below
            warnings.simplefilter("ignore")
            if scheme == "quantiles":
                bins = mapclassify.Quantiles(valid, k=k).bins
            else:
                bins = mapclassify.FisherJenks(sample, k=k).bins
        bins = np.unique(np.round(np.asarray(bins, dtype=float), decimals))
    bins = bins[bins >= uniq[0]]
    bins[-1] = max(bins[-1], uniq[-1])
    idx = np.full(len(v), -1, dtype=int)
    ok = v.notna().to_numpy()
    vals = v.to_numpy()[ok]
    cls = np.searchsorted(bins, vals, side="left")
    used = np.unique(cls)  # classes left empty by the rounding are dropped
    remap = np.full(len(bins), -1)
    remap[used] = np.arange(len(used))
    idx[ok] = remap[cls]
    lo = pd.Series(vals).groupby(idx[ok]).min()
    hi = pd.Series(vals).groupby(idx[ok]).max()
    labels = [
        f"{lo[i]:.{decimals}f}" if lo[i] == hi[i] else f"{lo[i]:.{decimals}f}–{hi[i]:.{decimals}f}"
        for i in range(len(used))
    ]
    return Classes(
        [float(b) for b in bins[used]], labels, _palette(len(used)), pd.Series(idx, index=v.index)
    )


def actual_and_target(regions: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Return 亩均税收 and its target (``tax_per_mu_target``, else ``tax_per_mu - tax_gap``)."""
    nan = pd.Series(np.nan, index=regions.index)
    t = pd.to_numeric(regions["tax_per_mu"], errors="coerce") if "tax_per_mu" in regions else nan
    if "tax_per_mu_target" in regions:
        target = pd.to_numeric(regions["tax_per_mu_target"], errors="coerce")
    elif "tax_gap" in regions:
        target = t - pd.to_numeric(regions["tax_gap"], errors="coerce")
    else:
        target = nan
    return t.astype(float), target.astype(float)


def target_status(regions: pd.DataFrame) -> pd.Series:
    """Status of each region's 亩均税收 against its target: ``met``/``near``/``below``/``none``.

    The target is ``tax_per_mu_target``, or ``tax_per_mu - tax_gap`` when only the gap is
    there (gap = 实际 − 目标). ``near`` means at least 80 % of the target.
    """
    t, target = actual_and_target(regions)
    ratio = (t / target.where(target > 0)).to_numpy(dtype=float)
    status = np.select(
        [ratio >= 1.0, ratio >= 0.8, ratio < 0.8], ["met", "near", "below"], default="none"
    )
    return pd.Series(status, index=regions.index, name="target_status")


def require(module: str, extra: str) -> Any:
    """Import an optional dependency or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        msg = f'{module} is needed for this map: pip install "mujun_geo[{extra}]"'
        raise ImportError(msg) from err


# ----------------------------------------------------------------------------- font
_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Noto Sans CJK JP",
    "Droid Sans Fallback",
)
_CJK_FILE_HINTS = ("notosanscjk", "sourcehansans", "notosanssc", "wqy", "msyh", "simhei", "droid")


@functools.lru_cache(maxsize=8)
def find_cjk_font(*, families: tuple[str, ...] = _CJK_FAMILIES, search_files: bool = True) -> str:
    """Name of an installed font family that has Chinese glyphs, for matplotlib.

    Fonts installed after matplotlib built its font cache are found by scanning the
    system font folders (``search_files``) and registering the matching files.

    Raises
    ------
    MujunGeoError
        When none of ``families`` is installed; the message says how to install one.
    """
    require("matplotlib", "plot")
    from matplotlib import font_manager

    def known() -> set[str]:
        return {f.name for f in font_manager.fontManager.ttflist}

    names = known()
    if search_files and not any(f in names for f in families):
        for path in font_manager.findSystemFonts():
            stem = Path(path).name.lower().replace("-", "").replace("_", "")
            if any(h in stem for h in _CJK_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError):  # unreadable font file: skip it
                    continue
        names = known()
    for fam in families:
        if fam in names:
            return fam
    msg = (
        "no Chinese (CJK) font found for the static maps; install one, e.g. "
        "`apt-get install fonts-noto-cjk` (Debian/Ubuntu), "
        "`dnf install google-noto-sans-cjk-fonts` "
        "or `conda install -c conda-forge font-ttf-noto-cjk`; looked for: " + ", ".join(families)
    )
    raise MujunGeoError(msg)


def mpl_rc() -> dict[str, Any]:
    """Return matplotlib rc settings that draw Chinese text with :func:`find_cjk_font`."""
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [find_cjk_font(), "DejaVu Sans"],
        "axes.unicode_minus": False,
    }


# ----------------------------------------------------------------------------- map furniture
def nice_length(span_m: float) -> float:
    """Largest 1/2/5×10^n metres not above a quarter of ``span_m``."""
    target = max(span_m / 4.0, 1e-9)
    exp = np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * 10**exp <= target:
            return float(m * 10**exp)
    return float(10**exp)


def fit_extent(ax: Axes, bounds: Sequence[float], margin: float = 0.04) -> None:
    """Set limits that keep a 1:1 aspect inside the axes box, with a margin."""
    fig = ax.figure
    pos = ax.get_position()
    ratio = (pos.width * fig.get_figwidth()) / (pos.height * fig.get_figheight())  # type: ignore[union-attr]
    xmin, ymin, xmax, ymax = bounds
    dx = max(xmax - xmin, 1.0) * (1 + 2 * margin)
    dy = max(ymax - ymin, 1.0) * (1 + 2 * margin)
    if dx / dy > ratio:
        dy = dx / ratio
    else:
        dx = dy * ratio
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    ax.set_xlim(cx - dx / 2, cx + dx / 2)
    ax.set_ylim(cy - dy / 2, cy + dy / 2)
    ax.set_aspect("equal", adjustable="box")


def scale_bar(ax: Axes) -> float:
    """Draw a two-segment scale bar in the lower left; return its length in metres.

    The axes must show a projected CRS in metres at a 1:1 aspect (see :func:`fit_extent`).
    """
    from matplotlib.patches import Rectangle

    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    sx, sy = x1 - x0, y1 - y0
    length = nice_length(sx)
    unit, div = ("km", 1000.0) if length >= 1000 else ("m", 1.0)
    h, bx, by = sy * 0.012, x0 + sx * 0.04, y0 + sy * 0.045
    box = Rectangle(
        (bx - sx * 0.015, by - sy * 0.02),
        length + sx * 0.07,
        h + sy * 0.07,
        facecolor="white",
        alpha=0.9,
        edgecolor="#999999",
        linewidth=0.5,
        zorder=20,
    )
    ax.add_patch(box)
    for i, color in enumerate(("black", "white")):
        seg = Rectangle(
            (bx + i * length / 2, by),
            length / 2,
            h,
            facecolor=color,
            edgecolor="black",
            linewidth=0.6,
            zorder=21,
        )
        ax.add_patch(seg)
    for frac in (0.0, 0.5, 1.0):
        ax.text(
            bx + frac * length,
            by + h + sy * 0.008,
            f"{frac * length / div:g}",
            ha="center",
            va="bottom",
            fontsize=8,
            zorder=22,
        )
    ax.text(
        bx + length + sx * 0.012, by + h / 2, unit, ha="left", va="center", fontsize=8, zorder=22
    )
    return length


def north_arrow(ax: Axes) -> None:
    from matplotlib.patches import Polygon

    pos = ax.get_position()
    aspect = (pos.width * ax.figure.get_figwidth()) / (pos.height * ax.figure.get_figheight())  # type: ignore[union-attr]
    cx, top, hh = 0.95, 0.95, 0.07
    hw = hh * 0.35 / aspect
    left = [(cx, top), (cx - hw, top - hh), (cx, top - hh * 0.72)]
    right = [(cx, top), (cx + hw, top - hh), (cx, top - hh * 0.72)]
    for pts, fc in ((left, "black"), (right, "white")):
        ax.add_patch(
            Polygon(
                pts,
                closed=True,
                facecolor=fc,
                edgecolor="black",
                linewidth=0.8,
                transform=ax.transAxes,
                zorder=22,
            )
        )
    ax.text(
        cx,
        top + 0.005,
        "N",
        transform=ax.transAxes,
        ha="center",
        va="bottom",
        fontsize=11,
        fontweight="bold",
        zorder=22,
    )
