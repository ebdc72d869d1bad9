"""Shared matplotlib set-up of every figure knockoffnet draws (report and simulation study).

Figures are pyplot-free (no global state: safe in Snakemake's parallel script runs), drawn in
one style and saved as PNG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import seaborn as sns
from matplotlib.figure import Figure

matplotlib.use("Agg")

SEL = "#1b4f72"
SEL_LIGHT = "#e4eef7"
KO = "#c0392b"
KO_LIGHT = "#fbeeec"
NULL = "#9a9a9a"
DPI = 144
STYLE = {
    **sns.axes_style("ticks"),
    **sns.plotting_context("paper", font_scale=1.15),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.family": "DejaVu Sans",
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
}


def new_figure(size: tuple[float, float]) -> Figure:
    """A pyplot-free figure: no global state, safe in Snakemake's parallel script runs."""
    return Figure(figsize=size, layout="constrained")


def save_figure(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", facecolor="white")
    return path


def placeholder(path: Path, text: str) -> Path:
    """Rules declare every figure as output, so an absent input still yields a (labelled) PNG."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure((6.0, 1.4))
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, color="#555555")
        return save_figure(fig, path)
