"""The study's figures: FDR and power against q (the paper's Figures 2-3), power − FDR."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from knockoffnet.plotting import STYLE, new_figure, save_figure
from knockoffnet.vocabulary import FILTERS


def fig_fdr_power(summary: pd.DataFrame, path: Path, replicate: pd.DataFrame | None = None) -> Path:
    """Empirical FDR (top) and power (bottom) against q, one column per design, one line per
    filter (the paper's Figures 2-3): FDR curves should stay under y = q. Peers are dashed.

    `summary` has the columns of simulation.SUMMARY_COLUMNS; `replicate` (rows of one
    replicate: design, filter, q, fdp, power) marks that replicate's own values, so a
    simulated cohort's report shows where its run sits among the design's replicates.
    """
    designs = list(dict.fromkeys(summary["design"].astype(str)))
    present = set(summary["filter"])
    order = [f for f in FILTERS if f in present] + sorted(present - set(FILTERS))
    colors = dict(zip(order, sns.color_palette("colorblind", len(order)), strict=True))
    with matplotlib.rc_context(STYLE):
        fig = new_figure((3.2 * len(designs) + 1.9, 6.0))
        axes = fig.subplots(2, len(designs), squeeze=False, sharex=True, sharey="row")
        for c, design in enumerate(designs):
            part = summary[summary["design"].astype(str) == design]
            mine = None
            if replicate is not None:
                mine = replicate[replicate["design"].astype(str) == design]
            for flt in order:
                d = part[part["filter"] == flt].sort_values("q")
                ls = "-" if flt in FILTERS else "--"
                for r, col in enumerate(("fdp", "power")):
                    axes[r, c].errorbar(
                        d["q"], d[f"{col}_mean"], yerr=d[f"{col}_se"], color=colors[flt],
                        marker="o", ms=3.5, lw=1.2, ls=ls, capsize=2, label=flt,
                    )  # fmt: skip
                    if mine is not None and not mine.empty:
                        m = mine[mine["filter"] == flt].sort_values("q")
                        axes[r, c].plot(
                            m["q"], m[col], ls="none", marker="x", ms=5, mew=1.1,
                            color=colors[flt],
                        )  # fmt: skip
            qs = np.linspace(0, part["q"].max(), 2)
            axes[0, c].plot(qs, qs, color="#333333", ls=":", lw=1.0, label="y = q")
            axes[0, c].set_title(design, fontsize=9.5)
            axes[1, c].set_xlabel("target FDR q")
        axes[0, 0].set_ylabel("empirical FDR (mean ± se)")
        axes[1, 0].set_ylabel("power (mean ± se)")
        for ax in axes.ravel():
            ax.set_ylim(-0.02, 1.02)
        h, lab = axes[0, 0].get_legend_handles_labels()
        if replicate is not None and not replicate.empty:
            h.append(Line2D([], [], ls="none", marker="x", color="#333333"))
            lab.append("this replicate")
        fig.legend(h, lab, loc="outside right center", frameon=False, fontsize=8)
        return save_figure(fig, path)


def plot_power_minus_fdr(summary: pd.DataFrame, path: str | Path) -> None:
    """Power − FDR against q per design and filter: the paper's Figures 2-3 read the best q off
    the maximum of this curve. Designs without a truth (global null) are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = summary.dropna(subset=["power_mean"])
    designs = list(dict.fromkeys(data["design"])) or ["(no design with relevant features)"]
    filters = list(dict.fromkeys(summary["filter"]))
    colors = dict(zip(filters, plt.get_cmap("tab10").colors, strict=False))
    fig, axes = plt.subplots(
        1, len(designs), figsize=(3.0 * len(designs) + 1.8, 3.2), squeeze=False, sharey=True
    )
    for c, design in enumerate(designs):
        part = data[data["design"] == design]
        for flt in filters:
            d = part[part["filter"] == flt].sort_values("q")
            axes[0, c].plot(d["q"], d["power_mean"] - d["fdp_mean"], marker="o", ms=3,
                            lw=1.1, color=colors.get(flt), label=flt)  # fmt: skip
        axes[0, c].axhline(0.0, color="k", lw=0.6)
        axes[0, c].set_title(design, fontsize=9)
        axes[0, c].set_xlabel("target FDR q")
    axes[0, 0].set_ylabel("power − FDR")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1 - 1.6 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
