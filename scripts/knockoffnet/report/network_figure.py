"""The report's drawing of the pruned network (Reduce Weight masks of the recommended filter)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from knockoffnet.plotting import SEL, STYLE, new_figure, placeholder, save_figure
from knockoffnet.pruning import alive_neurons
from knockoffnet.report.results import Results


def load_masks(res: Results, flt: str) -> tuple[list[np.ndarray], list[str]] | None:
    """The masks of the network the prune rule drew for ``flt`` (its declared masks file)."""
    f = res.files.masks
    if f is None or not Path(f).exists() or f"masks_{flt}" not in Path(f).name:
        return None
    with np.load(f, allow_pickle=False) as z:
        keys = sorted((k for k in z.files if re.fullmatch(r"mask\d+", k)), key=lambda k: int(k[4:]))
        masks = [np.asarray(z[k], dtype=bool) for k in keys]
        inputs = [str(x) for x in z["inputs"]] if "inputs" in z.files else []
    return (masks, inputs) if masks else None


def masks_label(res: Results, flt: str) -> str:
    """Whose network the mask file holds: the prune rule draws "all features" when `flt`
    selected nothing, and records that under the key `filter`."""
    f = res.files.masks
    if f is not None and Path(f).exists() and f"masks_{flt}" in Path(f).name:
        with np.load(f, allow_pickle=False) as z:
            if "filter" in z.files and str(z["filter"]) != flt:
                return f"{z['filter']} ({flt} selected none)"
    return flt


def _output_names(res: Results, n_out: int) -> list[str]:
    cls = res.classes
    if n_out == 1 and len(cls) == 2:
        return [f"log-odds '{cls[1]}'"]
    return cls if len(cls) == n_out else [f"output {i + 1}" for i in range(n_out)]


def _draw_layer_lines(ax, masks, alive, xs, ys) -> None:
    for li, m in enumerate(masks):
        out_i, in_i = np.nonzero(m)
        ok = alive[li][in_i] & alive[li + 1][out_i]
        segs = [
            [(xs[li], ys[li][a]), (xs[li + 1], ys[li + 1][b])]
            for a, b in zip(in_i[ok], out_i[ok], strict=True)
        ]
        alpha = float(np.clip(25 / max(len(segs), 1), 0.12, 0.7))
        ax.add_collection(LineCollection(segs, colors="#34495e", linewidths=0.7, alpha=alpha))


def _draw_neurons(ax, alive: list[np.ndarray], xs: np.ndarray, ys: list, size: float) -> None:
    """Kept neurons as open circles, removed ones grey and dashed, a count above each layer."""
    top = max(len(a) for a in alive)
    for li, (a, y) in enumerate(zip(alive, ys, strict=True)):
        x = np.full(len(y), xs[li])
        ax.scatter(x[a], y[a], s=size, facecolor="white", edgecolor=SEL, lw=1.3, zorder=3)
        ax.scatter(
            x[~a],
            y[~a],
            s=size,
            facecolor="#f0f0f0",
            edgecolor="#a0a0a0",
            lw=1.0,
            linestyle=(0, (2, 1.5)),
            zorder=3,
        )
        last = li == len(alive) - 1
        name = "inputs" if li == 0 else "outputs" if last else f"hidden {li}"
        verb = "used" if li == 0 else "kept"
        ax.text(
            xs[li],
            top - 0.2 + 0.04 * top,
            f"{name}\n{a.sum()} of {len(a)} {verb}",
            ha="center",
            va="bottom",
            fontsize=8,
        )


def _label_network(ax, res: Results, inputs: list[str], alive, xs, ys) -> None:
    """Feature names left of the inputs (grey when unused), class names right of the outputs."""
    n_in = len(alive[0])
    labels = inputs if len(inputs) == n_in else [f"x{i + 1}" for i in range(n_in)]
    if n_in <= 40:
        for lab, y, a in zip(labels, ys[0], alive[0], strict=True):
            color = "#222222" if a else "#a0a0a0"
            ax.text(xs[0] - 0.35, y, lab, ha="right", va="center", fontsize=7.5, color=color)
    for lab, y in zip(_output_names(res, len(alive[-1])), ys[-1], strict=True):
        ax.text(xs[-1] + 0.35, y, lab, ha="left", va="center", fontsize=8)


def _network_legend(ax) -> None:
    kept = {"marker": "o", "ls": "", "ms": 8, "mfc": "white", "mec": SEL}
    removed = {"marker": "o", "ls": "", "ms": 8, "mfc": "#f0f0f0", "mec": "#a0a0a0"}
    handles = [
        Line2D([], [], label="kept neuron", **kept),
        Line2D([], [], label="removed neuron", **removed),
        Line2D([], [], color="#34495e", lw=1, label="kept weight"),
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=3,
        frameon=False,
        fontsize=8,
    )


def _layer_y(n: int, height: int) -> np.ndarray:
    """Centre each layer; small layers are spread out (up to 3 units apart) so labels breathe."""
    gap = min(max(height - 1, 1) / max(n - 1, 1), 3.0) if n > 1 else 0.0
    return (height - 1) / 2 + gap * ((n - 1) / 2 - np.arange(n, dtype=float))


def fig_network(res: Results, path: Path, flt: str | None = None) -> Path:
    """Paper Figs. 7–8: kept weights as lines, removed neurons dashed and grey."""
    flt = flt or res.recommended
    loaded = load_masks(res, flt)
    if loaded is None:
        text = f"Reduce Weight was not run for {flt} (no pruning/masks file): no network to draw."
        return placeholder(path, text)
    masks, inputs = loaded
    alive = alive_neurons(masks)
    height = max(len(a) for a in alive)
    xs = np.arange(len(alive)) * 3.0
    ys = [_layer_y(len(a), height) for a in alive]
    with matplotlib.rc_context(STYLE):
        fig = new_figure((8.5, min(2.2 + 0.22 * height, 9.0)))
        ax = fig.add_subplot()
        _draw_layer_lines(ax, masks, alive, xs, ys)
        _draw_neurons(ax, alive, xs, ys, size=float(np.clip((260 / height) ** 2, 10, 150)))
        _label_network(ax, res, inputs, alive, xs, ys)
        ax.set_xlim(xs[0] - 3.2, xs[-1] + 3.0)
        ax.set_ylim(-1, height + 0.12 * height + 1.2)
        ax.axis("off")
        _network_legend(ax)
        ax.set_title(f"Reduce Weight network for {masks_label(res, flt)}", fontsize=10)
        return save_figure(fig, path)
