"""Self-contained HTML report for one cohort: figures (PNG) and a Jinja2-rendered page.

Reads only the result tables under ``results/{cohort}/`` (see docs/architecture.md), so the
report can be re-rendered without re-running any training. Every figure is embedded as a
base64 PNG and all CSS is inline: the HTML opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from knockoffnet.simulation import fdp_power, summarise
from knockoffnet.vocabulary import FILTERS

matplotlib.use("Agg")

FILTER_NAMES = {
    "OL": "One Layer (OL)",
    "ML": "Multiple Layers (ML)",
    "VWA-OL": "Variable Weight Aggregation of OL (VWA-OL)",
    "VWA-ML": "Variable Weight Aggregation of ML (VWA-ML)",
    "VWA-OML": "Variable Weight Aggregation of OL and ML pooled (VWA-OML)",
    "ebh": "e-BH over runs (derandomised knockoffs)",
}
GUARANTEE = {
    "OL": "FDR ≤ q for knockoff draw 0 (knockoff+ on one statistic), given valid knockoffs.",
    "ML": "FDR ≤ q for knockoff draw 0 (knockoff+ on one statistic), given valid knockoffs.",
    "VWA-OL": "No formal FDR guarantee: a stability vote over runs.",
    "VWA-ML": "No formal FDR guarantee: a stability vote over runs.",
    "VWA-OML": "No formal FDR guarantee: a stability vote over runs.",
    "ebh": "FDR ≤ q over all runs combined (e-BH on averaged knockoff e-values).",
}
FIGURES = [
    "ol_scatter",
    "ml_scatter",
    "w_sorted",
    "frequency_heatmap",
    "lambda_path",
    "effects",
    "network",
]
MINUS = "\u2212"
DASH = "\u2013"
SEL = "#1b4f72"
SEL_LIGHT = "#e4eef7"
KO = "#c0392b"
KO_LIGHT = "#fbeeec"
NULL = "#9a9a9a"
DPI = 144
CSS_PX_PER_INCH = 118  # every figure is shown at the same scale, so fonts match across figures
RUN_ID = re.compile(r"draw(\d+)_seed(\d+)_path\.tsv$")
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
STYLE = {
    **sns.axes_style("ticks"),
    **sns.plotting_context("paper", font_scale=1.15),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.family": "DejaVu Sans",
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
}


# --------------------------------------------------------------------------------------------
# number formatting (public: the tests compare table cells with these)
# --------------------------------------------------------------------------------------------


def _missing(x: Any) -> bool:
    try:
        return x is None or (isinstance(x, float | int | np.number) and math.isnan(float(x)))
    except (TypeError, ValueError):
        return True


def fmt_num(x: Any, digits: int = 3) -> str:
    """Significant digits, a real minus sign and ×10ⁿ for extremes: tables stay scannable."""
    if _missing(x):
        return DASH
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else f"{MINUS}∞"
    if x == 0:
        return "0"
    x = float(f"{x:.{digits}g}")
    sign = MINUS if x < 0 else ""
    ax = abs(x)
    mag = math.floor(math.log10(ax))
    if -3 <= mag < 6:
        body = f"{ax:,.{max(digits - 1 - mag, 0)}f}"
        return sign + (body.replace(",", "") if ax < 10_000 else body)
    mant, exp = f"{ax:.{digits - 1}e}".split("e")
    return f"{sign}{mant}×10{str(int(exp)).translate(SUPERSCRIPT)}"


def fmt_signed(x: Any, digits: int = 3) -> str:
    """Like :func:`fmt_num` but with an explicit +, because effect signs carry the direction."""
    s = fmt_num(x, digits)
    return s if s in (DASH, "0") or s.startswith(MINUS) else "+" + s


def fmt_q(q: Any) -> str:
    """q-values to three decimals; below 0.001 the exact value is noise, so '<0.001'."""
    if _missing(q):
        return DASH
    q = float(q)
    return "<0.001" if q < 0.001 else f"{min(q, 1.0):.3f}"


def fmt_freq(f: Any) -> str:
    """Selection frequency as a whole percentage of runs."""
    return DASH if _missing(f) else f"{100 * float(f):.0f}%"


def fmt_int(n: Any) -> str:
    """Counts with thousands separators."""
    return DASH if _missing(n) else f"{int(n):,}"


def fmt_pm(mean: Any, sd: Any, digits: int = 3) -> str:
    """mean ± sd, the form every comparison table in the paper uses."""
    return DASH if _missing(mean) else f"{fmt_num(mean, digits)} ± {fmt_num(sd, 2)}"


def fmt_seconds(s: Any) -> str:
    """Durations a reader can compare at a glance (s, min, h)."""
    if _missing(s):
        return DASH
    s = float(s)
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def _read_tsv(path: Path) -> pd.DataFrame | None:
    """Missing optional files are None, not errors: the report documents what it could not show."""
    return pd.read_csv(path, sep="\t") if path.exists() else None


def _as_bool(s: pd.Series) -> pd.Series:
    return s.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def _as_float(s: pd.Series) -> pd.Series:
    text = s.astype(str).str.replace("∞", "inf", regex=False).str.replace(MINUS, "-", regex=False)
    return pd.to_numeric(text, errors="coerce")


def _read_paths(zdir: Path) -> pd.DataFrame:
    frames = []
    for f in sorted(zdir.glob("draw*_seed*_path.tsv")):
        m = RUN_ID.search(f.name)
        if m:
            df = pd.read_csv(f, sep="\t").assign(draw=int(m[1]), seed=int(m[2]))
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_diagnostics(kdir: Path) -> pd.DataFrame:
    frames = [pd.read_csv(f, sep="\t") for f in sorted(kdir.glob("draw*_diagnostics.tsv"))]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "flag" in df:
        df["flag"] = _as_bool(df["flag"])
    return df.sort_values("draw") if "draw" in df else df


@dataclass
class Results:
    """Everything the report needs, read once."""

    root: Path
    meta: dict
    run: dict
    labels: pd.DataFrame | None
    diagnostics: pd.DataFrame
    paths: pd.DataFrame
    statistics: pd.DataFrame
    thresholds: pd.DataFrame
    selected: pd.DataFrame
    features: pd.DataFrame
    structure: pd.DataFrame | None
    summary: pd.DataFrame | None
    prediction: pd.DataFrame | None

    @property
    def config(self) -> dict:
        return self.run.get("config") or {}

    @property
    def q(self) -> float:
        return float(self.config.get("selection", {}).get("q", 0.1))

    @property
    def offset(self) -> int:
        return int(self.config.get("selection", {}).get("offset", 1))

    @property
    def combine_text(self) -> str:
        sel = self.config.get("selection", {})
        if sel.get("combine", "first") == "mean":
            return "the importances of draw 0's training seeds averaged"
        return "the first run alone, as in the paper"

    @property
    def recommended(self) -> str:
        return self.run.get("recommended_filter") or "VWA-OL"

    @property
    def runs(self) -> list[tuple[int, int]]:
        """(draw, seed) pairs in a stable order; the first is the 'reference run' of the plots."""
        df = self.statistics[["draw", "seed"]].drop_duplicates()
        return sorted((int(d), int(s)) for d, s in df.itertuples(index=False))

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.meta.get("classes") or []]

    def selected_by(self, flt: str) -> list[str]:
        return self.selected.loc[self.selected["filter"] == flt, "feature"].astype(str).tolist()


def load_results(results_dir: Path) -> Results:
    """Read the result tables into typed frames (booleans and ∞ parsed consistently)."""
    root = Path(results_dir)
    stats = pd.read_csv(root / "statistics.tsv", sep="\t")
    stats["selected"] = _as_bool(stats["selected"])
    stats["feature"] = stats["feature"].astype(str)
    for col in ("z", "z_knockoff", "W", "qvalue", "evalue", "threshold"):
        if col in stats:
            stats[col] = _as_float(stats[col])
    thr = pd.read_csv(root / "thresholds.tsv", sep="\t", keep_default_na=True)
    thr["T"] = _as_float(thr["T"])
    note = thr["note"] if "note" in thr else pd.Series("", index=thr.index)
    thr["note"] = [n if isinstance(n, str) else "" for n in note]
    sel = pd.read_csv(root / "selected.tsv", sep="\t")
    sel["feature"] = sel["feature"].astype(str)
    feats = pd.read_csv(root / "features.tsv", sep="\t")
    feats["feature"] = feats["feature"].astype(str)
    for col in [c for c in feats if c.startswith("selected_")]:
        feats[col] = _as_bool(feats[col])
    run_path = root / "run.json"
    return Results(
        root=root,
        meta=json.loads((root / "data" / "meta.json").read_text()),
        run=json.loads(run_path.read_text()) if run_path.exists() else {},
        labels=_read_tsv(root / "labels.tsv"),
        diagnostics=_read_diagnostics(root / "knockoffs"),
        paths=_read_paths(root / "z"),
        statistics=stats,
        thresholds=thr,
        selected=sel,
        features=feats,
        structure=_read_tsv(root / "pruning" / "structure.tsv"),
        summary=_read_tsv(root / "pruning" / "summary.tsv"),
        prediction=_read_tsv(root / "pruning" / "prediction.tsv"),
    )


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def _figure(size: tuple[float, float]) -> Figure:
    """A pyplot-free figure: no global state, safe in Snakemake's parallel script runs."""
    return Figure(figsize=size, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", facecolor="white")
    return path


def _placeholder(path: Path, text: str) -> Path:
    """Rules declare every figure as output, so an absent input still yields a (labelled) PNG."""
    with matplotlib.rc_context(STYLE):
        fig = _figure((6.0, 1.4))
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, color="#555555")
        return _save(fig, path)


def _run_label(draw: int, seed: int) -> str:
    return f"draw {draw}, seed {seed}"


def _run_threshold(res: Results, flt: str, run: tuple[int, int]) -> float:
    t = res.thresholds
    if "scope" in t:
        t = t[t["scope"] == "run"]
    rows = t[(t["filter"] == flt) & (t["draw"] == run[0]) & (t["seed"] == run[1])]
    if len(rows):
        return float(rows["T"].iloc[0])
    s = res.statistics
    rows = s[(s["filter"] == flt) & (s["draw"] == run[0]) & (s["seed"] == run[1])]
    return float(rows["threshold"].iloc[0]) if len(rows) else math.inf


def _run_stats(res: Results, flt: str, run: tuple[int, int]) -> pd.DataFrame:
    s = res.statistics
    return s[(s["filter"] == flt) & (s["draw"] == run[0]) & (s["seed"] == run[1])]


def _declutter(fig: Figure, texts: list, rounds: int = 100) -> None:
    """Push overlapping point labels apart vertically: a tiny dependency-free 'repel'.

    Boxes are measured once and moved arithmetically (a label's box translates with it).
    """
    if len(texts) < 2:
        return
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    boxes = np.array([t.get_window_extent(renderer).extents for t in texts])  # x0 y0 x1 y1
    shift = np.zeros(len(texts))
    for _ in range(rounds):
        y0, y1 = boxes[:, 1] + shift, boxes[:, 3] + shift
        moved = False
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                if boxes[i, 0] >= boxes[j, 2] or boxes[j, 0] >= boxes[i, 2]:
                    continue
                lo, hi = (i, j) if y0[i] <= y0[j] else (j, i)
                overlap = y1[lo] - y0[hi]
                if overlap > 0:
                    shift[hi] += overlap / 2 + 0.5
                    shift[lo] -= overlap / 2 + 0.5
                    y0, y1 = boxes[:, 1] + shift, boxes[:, 3] + shift
                    moved = True
        if not moved:
            break
    for t, dy in zip(texts, shift, strict=True):
        x, y = t.xyann
        t.xyann = (x, y + dy * 72 / fig.dpi)


def _label_points(ax, df: pd.DataFrame, x: str, y: str, limit: int = 15) -> list:
    """Name the strongest selected points only, so labels do not pile up on the nulls."""
    top = df[df["selected"]].nlargest(limit, "W")
    return [
        ax.annotate(
            r["feature"],
            (r[x], r[y]),
            xytext=(5, 0),
            textcoords="offset points",
            fontsize=7.5,
            color=SEL,
            va="center",
            arrowprops={
                "arrowstyle": "-",
                "color": "#9fb6c9",
                "lw": 0.5,
                "shrinkA": 0,
                "shrinkB": 3,
            },
        )
        for _, r in top.iterrows()
    ]


def _scatter_points(ax, df: pd.DataFrame, x: str, y: str) -> list:
    null = df[~df["selected"]]
    sel = df[df["selected"]]
    ax.scatter(
        null[x],
        null[y],
        marker="s",
        s=22,
        color=NULL,
        alpha=0.8,
        lw=0,
        label="not selected",
        zorder=3,
    )
    ax.scatter(sel[x], sel[y], marker="o", s=34, color=SEL, lw=0, label="selected", zorder=4)
    return _label_points(ax, df, x, y)


def _sqrt_axes(ax, lim: float) -> None:
    """Square-root axes spread the crowd of small nulls yet keep the diagonal straight."""
    fwd = (lambda v: np.sqrt(np.clip(v, 0, None)), np.square)
    ax.set_xscale("function", functions=fwd)
    ax.set_yscale("function", functions=fwd)
    ax.set(xlim=(0, lim), ylim=(0, lim), aspect="equal")
    ticks = sqrt_ticks(lim)
    labels = [f"{t:g}".replace("-", MINUS) for t in ticks]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)


def sqrt_ticks(lim: float, min_gap: float = 0.16) -> list[float]:
    """1-2-5 ticks evenly spread on a square-root axis (linear ticks crowd at its top)."""
    if not lim > 0:
        return [0.0]
    top = math.floor(math.log10(lim))
    cands = sorted(
        m * 10.0**e for e in range(top - 4, top + 1) for m in (1, 2, 5) if m * 10.0**e <= lim
    )
    ticks = [0.0]
    for c in cands:
        if math.sqrt(c) - math.sqrt(ticks[-1]) >= min_gap * math.sqrt(lim):
            ticks.append(c)
    return ticks


def _finish_scatter(fig: Figure, ax, texts: list) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False, fontsize=8)
    _declutter(fig, texts)


def _threshold_title(name: str, t: float, run: tuple[int, int], q: float) -> str:
    tt = "T = ∞ (nothing selected)" if not math.isfinite(t) else f"T = {fmt_num(t)}"
    return f"{name}: {_run_label(*run)}, q = {q:g}, {tt}"


def fig_ol_scatter(res: Results, path: Path) -> Path:
    """Paper Fig. 4: z_j against z~_j; selected = right of T and below the diagonal."""
    run = res.runs[0]
    df = _run_stats(res, "OL", run)
    t = _run_threshold(res, "OL", run)
    with matplotlib.rc_context(STYLE):
        fig = _figure((6.0, 6.4))
        ax = fig.add_subplot()
        hi = float(np.nanmax([df["z"].max(), df["z_knockoff"].max(), 1e-12]))
        lim = max(hi, t if math.isfinite(t) else 0) * 1.1
        if math.isfinite(t):
            ax.fill(
                [t, lim, lim, t], [0, 0, lim, t], color=SEL_LIGHT, lw=0, label="W ≥ T: selected"
            )
            ax.fill(
                [0, 0, lim, t],
                [t, lim, lim, t],
                color=KO_LIGHT,
                lw=0,
                label="W ≤ −T: knockoff wins",
            )
            ax.plot([t, t, lim], [0, t, lim], color=SEL, lw=1.4, label="boundary of W ≥ T")
            ax.plot([0, t], [t, t], color=KO, lw=1.0, ls="--", label="boundary of W ≤ −T")
        ax.plot([0, lim], [0, lim], color="#555555", lw=0.8, ls=":", label="z = z̃")
        texts = _scatter_points(ax, df, "z", "z_knockoff")
        _sqrt_axes(ax, lim)
        ax.set_xlabel(r"$z_j$: feature (summed $\lambda$ at which its weights vanish)")
        ax.set_ylabel(r"$\tilde z_j$: its knockoff")
        ax.set_title(_threshold_title("One Layer", t, run, res.q), fontsize=10)
        _finish_scatter(fig, ax, texts)
        return _save(fig, path)


def fig_ml_scatter(res: Results, path: Path) -> Path:
    """Paper Fig. 5 on |g|: W = g² − g~², so the boundary g² = g~² + T is a hyperbola."""
    run = res.runs[0]
    df = _run_stats(res, "ML", run).assign(
        ag=lambda d: d["z"].abs(), agk=lambda d: d["z_knockoff"].abs()
    )
    t = _run_threshold(res, "ML", run)
    with matplotlib.rc_context(STYLE):
        fig = _figure((6.0, 6.4))
        ax = fig.add_subplot()
        rt = math.sqrt(t) if math.isfinite(t) and t > 0 else 0.0
        lim = max(float(np.nanmax([df["ag"].max(), df["agk"].max(), 1e-12])), rt) * 1.1
        if math.isfinite(t):
            u = np.linspace(0, math.sqrt(lim), 300) ** 2
            b = np.sqrt(u**2 + t)
            keep = b <= lim
            ax.fill_betweenx(u[keep], b[keep], lim, color=SEL_LIGHT, lw=0, label="W ≥ T: selected")
            ax.fill_between(
                u[keep], b[keep], lim, color=KO_LIGHT, lw=0, label="W ≤ −T: knockoff wins"
            )
            ax.plot(b[keep], u[keep], color=SEL, lw=1.4, label="boundary g² − g̃² = T")
            ax.plot(u[keep], b[keep], color=KO, lw=1.0, ls="--", label="boundary g̃² − g² = T")
        ax.plot([0, lim], [0, lim], color="#555555", lw=0.8, ls=":", label="|g| = |g̃|")
        texts = _scatter_points(ax, df, "ag", "agk")
        _sqrt_axes(ax, lim)
        ax.set_xlabel(r"$|g_j| = |z_j\,w_j|$: feature")
        ax.set_ylabel(r"$|\tilde g_j| = |\tilde z_j\,w_{j+p}|$: its knockoff")
        ax.set_title(_threshold_title("Multiple Layers", t, run, res.q), fontsize=10)
        _finish_scatter(fig, ax, texts)
        return _save(fig, path)


def _w_panel(ax, df: pd.DataFrame, t: float, title: str) -> None:
    df = df.sort_values("W", ascending=True)
    colors = np.where(df["selected"], SEL, np.where(df["W"] < 0, KO, NULL))
    y = np.arange(len(df))
    if len(df) <= 60:
        ax.barh(y, df["W"], color=colors, height=0.75)
        ax.set_yticks(y, df["feature"], fontsize=7.5)
    else:
        ax.scatter(df["W"], y, c=colors, s=6, lw=0)
        ax.set_yticks([])
        ax.set_ylabel("features, sorted by W")
    ax.axvline(0, color="#333333", lw=0.6)
    if math.isfinite(t):
        ax.axvline(t, color=SEL, lw=1.1, ls="--")
        ax.axvline(-t, color=KO, lw=1.0, ls=":")
    ax.set_ylim(-0.7, len(df) - 0.3)
    ax.set_xlabel("W")
    ax.set_title(
        f"{title}  ({'T = ∞' if not math.isfinite(t) else 'T = ' + fmt_num(t)})", fontsize=10
    )


def fig_w_sorted(res: Results, path: Path) -> Path:
    """Sorted W of the reference run, with T and −T: how far the selection is from the nulls."""
    run = res.runs[0]
    p = len(_run_stats(res, "OL", run))
    with matplotlib.rc_context(STYLE):
        fig = _figure((8.6, 1.7 + 0.2 * min(p, 60)))
        axes = fig.subplots(1, 2)
        ts = [_run_threshold(res, flt, run) for flt in ("OL", "ML")]
        for ax, flt, name, t in zip(
            axes, ("OL", "ML"), ("One Layer", "Multiple Layers"), ts, strict=True
        ):
            _w_panel(ax, _run_stats(res, flt, run), t, name)
        handles = [Line2D([], [], color=c, lw=6) for c in (SEL, NULL, KO)]
        labels = ["selected", "W ≥ 0, not selected", "W < 0 (knockoff ahead)"]
        if any(math.isfinite(t) for t in ts):
            handles += [
                Line2D([], [], color=SEL, lw=1.1, ls="--"),
                Line2D([], [], color=KO, lw=1, ls=":"),
            ]
            labels += ["T", "−T"]
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=len(labels),
            frameon=False,
            fontsize=8,
        )
        fig.suptitle(f"Knockoff statistics W, {_run_label(*run)}", fontsize=11)
        return _save(fig, path)


def _selection_matrix(res: Results, flt: str, feats: list[str]) -> pd.DataFrame:
    s = res.statistics[res.statistics["filter"] == flt]
    m = s.pivot_table(
        index="feature", columns=["draw", "seed"], values="selected", aggfunc="max"
    ).astype(float)
    m = m.reindex(index=feats).reindex(columns=pd.MultiIndex.from_tuples(res.runs))
    m.columns = [f"d{d}·s{s}" for d, s in m.columns]
    return m.fillna(0.0)


def _top_features(res: Results, limit: int = 40) -> list[str]:
    """Most frequently selected first; large cohorts are cut so the rows stay legible."""
    f = res.features.set_index("feature")
    score = f.get("OL_frequency", 0) + f.get("ML_frequency", 0)
    order = pd.DataFrame({"score": score, "W": f.get("OL_W", 0)}).sort_values(
        ["score", "W"], ascending=False
    )
    return order.index[:limit].astype(str).tolist()


def fig_frequency_heatmap(res: Results, path: Path) -> Path:
    """Features × runs selection map for OL and ML plus the VWA frequencies it produces."""
    feats = _top_features(res)
    n_runs = len(res.runs)
    ratio = float(res.config.get("selection", {}).get("vwa_ratio", 0.5))
    with matplotlib.rc_context(STYLE):
        fig = _figure((min(3.5 + 0.5 * n_runs, 16), 1.8 + 0.24 * len(feats)))
        axes = fig.subplots(
            1, 3, sharey=True, gridspec_kw={"width_ratios": [n_runs, n_runs, max(3, n_runs * 0.7)]}
        )
        cmap = ListedColormap(["#f2f2f2", SEL])
        for ax, flt in zip(axes[:2], ("OL", "ML"), strict=True):
            m = _selection_matrix(res, flt, feats)
            sns.heatmap(
                m,
                ax=ax,
                cmap=cmap,
                vmin=0,
                vmax=1,
                cbar=False,
                linewidths=0.6,
                linecolor="white",
                xticklabels=n_runs <= 30,
                yticklabels=True,
            )
            ax.set_title(FILTER_NAMES[flt], fontsize=9.5)
            ax.set_xlabel("")
            ax.set_ylabel("")
            ax.tick_params(axis="x", labelrotation=90, labelsize=7)
            ax.tick_params(axis="y", labelsize=7.5, length=0)
        f = res.features.set_index("feature").reindex(feats)
        y = np.arange(len(feats)) + 0.5
        axes[2].barh(y - 0.18, f["OL_frequency"], height=0.34, color=SEL, label="OL")
        axes[2].barh(y + 0.18, f["ML_frequency"], height=0.34, color="#7fa7c9", label="ML")
        axes[2].axvline(ratio, color="#333333", ls="--", lw=0.9)
        axes[2].set(xlim=(0, 1), xlabel="frequency")
        axes[2].set_title(f"selection frequency\n(VWA vote at {ratio:.0%})", fontsize=9.5)
        axes[2].legend(fontsize=7.5, frameon=False, loc="lower right")
        axes[2].tick_params(axis="y", length=0)
        fig.supxlabel("run (d = knockoff draw · s = training seed)", fontsize=9)
        if len(res.features) > len(feats):
            fig.suptitle(
                f"{len(feats)} most often selected of {len(res.features)} features", fontsize=9
            )
        return _save(fig, path)


def _run_colors(n: int) -> list:
    return sns.color_palette("colorblind", n) if n <= 10 else ["#8c8c8c"] * n


def fig_lambda_path(res: Results, path: Path) -> Path:
    """Sparsity and validation loss along λ per run: shows where the chosen λ sits."""
    if res.paths.empty:
        return _placeholder(path, "No λ-path tables (z/draw*_seed*_path.tsv) were found.")
    groups = list(res.paths.groupby(["draw", "seed"], sort=True))
    colors = _run_colors(len(groups))
    loss_col = "val_loss" if "val_loss" in res.paths else "val_objective"
    with matplotlib.rc_context(STYLE):
        fig = _figure((8.6, 3.6))
        axes = fig.subplots(1, 2)
        for ((d, s), df), color in zip(groups, colors, strict=True):
            lw = 1.3 if len(groups) <= 10 else 0.6
            for ax, col in zip(axes, ("nnz_layer0", loss_col), strict=True):
                ax.plot(df["lambda"], df[col], color=color, lw=lw, label=f"d{d}·s{s}")
                if "chosen" in df:
                    ch = df[_as_bool(df["chosen"])]
                    ax.scatter(
                        ch["lambda"],
                        ch[col],
                        color=color,
                        s=30,
                        zorder=5,
                        edgecolor="black",
                        lw=0.6,
                    )
        for ax in axes:
            ax.set_xscale("log")
            ax.invert_xaxis()
            ax.set_xlabel("λ  (path runs from sparse, left, to dense, right)")
        axes[0].set_ylabel("non-zero first-layer weights")
        axes[1].set_ylabel("validation loss" if loss_col == "val_loss" else "validation objective")
        axes[0].set_title("Sparsity of the first layer", fontsize=10)
        axes[1].set_title("Validation loss (● = chosen λ)", fontsize=10)
        if len(groups) <= 10:
            axes[1].legend(fontsize=7, frameon=False, ncols=2, title="run", title_fontsize=7)
        return _save(fig, path)


def effect_axis_label(res: Results) -> str:
    """What one unit on the effect axis means, in the cohort's own class names."""
    cls = res.classes
    if res.meta.get("task") == "binary" and len(cls) == 2:
        return f"effect on the log-odds of '{cls[1]}' per SD of the feature"
    if res.meta.get("task") == "regression":
        return "effect on the predicted outcome per SD of the feature"
    return "effect on the network output per SD of the feature"


def fig_effects(res: Results, path: Path) -> Path:
    """Effect per SD with its spread over seeds; the recommended selection is highlighted."""
    f = res.features.copy()
    rec_col = f"selected_{res.recommended}"
    chosen = f[rec_col] if rec_col in f else pd.Series(False, index=f.index)
    f["rec"] = chosen
    any_sel = f[[c for c in f if c.startswith("selected_")]].any(axis=1)
    if len(f) > 40:
        keep = f.index[any_sel].union(f["effect_sd"].abs().nlargest(40).index)
        f = f.loc[keep].reindex(f.loc[keep, "effect_sd"].abs().nlargest(40).index)
    f = f.sort_values("effect_sd")
    with matplotlib.rc_context(STYLE):
        fig = _figure((6.8, 1.5 + 0.24 * len(f)))
        ax = fig.add_subplot()
        y = np.arange(len(f))
        for mask, color, lab in (
            (~f["rec"], NULL, "not selected"),
            (f["rec"], SEL, f"selected by {res.recommended}"),
        ):
            ax.errorbar(
                f.loc[mask, "effect_sd"],
                y[mask.to_numpy()],
                xerr=f.loc[mask, "effect_sd_spread"],
                fmt="o",
                color=color,
                ms=4.5,
                elinewidth=1.1,
                capsize=2,
                label=lab,
            )
        ax.axvline(0, color="#333333", lw=0.7)
        ax.set_yticks(y, f["feature"], fontsize=7.5)
        ax.set_ylim(-0.7, len(f) - 0.3)
        ax.set_xlabel(effect_axis_label(res) + "\n(mean ± spread over seeds)")
        ax.legend(fontsize=8, frameon=False, loc="lower right")
        ax.grid(axis="x", color="#e6e6e6", lw=0.6)
        return _save(fig, path)


def _load_masks(res: Results, flt: str) -> tuple[list[np.ndarray], list[str]] | None:
    f = res.root / "pruning" / f"masks_{flt}.npz"
    if not f.exists():
        return None
    with np.load(f, allow_pickle=False) as z:
        keys = sorted((k for k in z.files if re.fullmatch(r"mask\d+", k)), key=lambda k: int(k[4:]))
        masks = [np.asarray(z[k], dtype=bool) for k in keys]
        inputs = [str(x) for x in z["inputs"]] if "inputs" in z.files else []
    return (masks, inputs) if masks else None


def masks_label(res: Results, flt: str) -> str:
    """Whose network the mask file holds: the prune rule draws "all features" when `flt`
    selected nothing, and records that under the key `filter`."""
    f = res.root / "pruning" / f"masks_{flt}.npz"
    if f.exists():
        with np.load(f, allow_pickle=False) as z:
            if "filter" in z.files and str(z["filter"]) != flt:
                return f"{z['filter']} ({flt} selected none)"
    return flt


def alive_neurons(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer (inputs, hidden…, outputs): a neuron lives if a kept path runs through it.

    Liveness is propagated to a fixed point, because a weight into a removed neuron is as
    good as removed (paper §3.4), which can in turn strand the neuron it comes from.
    """
    sizes = [masks[0].shape[1], *(m.shape[0] for m in masks)]
    alive = [np.ones(n, dtype=bool) for n in sizes]
    changed = True
    while changed:
        before = [a.copy() for a in alive]
        alive[0] = masks[0][alive[1]].any(axis=0)
        for li in range(1, len(sizes) - 1):
            has_in = masks[li - 1][:, alive[li - 1]].any(axis=1)
            has_out = masks[li][alive[li + 1]].any(axis=0)
            alive[li] = alive[li] & has_in & has_out
        changed = any((a != b).any() for a, b in zip(alive, before, strict=True))
    return alive


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
    loaded = _load_masks(res, flt)
    if loaded is None:
        text = f"Reduce Weight was not run for {flt} (no pruning/masks file): no network to draw."
        return _placeholder(path, text)
    masks, inputs = loaded
    alive = alive_neurons(masks)
    height = max(len(a) for a in alive)
    xs = np.arange(len(alive)) * 3.0
    ys = [_layer_y(len(a), height) for a in alive]
    with matplotlib.rc_context(STYLE):
        fig = _figure((8.5, min(2.2 + 0.22 * height, 9.0)))
        ax = fig.add_subplot()
        _draw_layer_lines(ax, masks, alive, xs, ys)
        _draw_neurons(ax, alive, xs, ys, size=float(np.clip((260 / height) ** 2, 10, 150)))
        _label_network(ax, res, inputs, alive, xs, ys)
        ax.set_xlim(xs[0] - 3.2, xs[-1] + 3.0)
        ax.set_ylim(-1, height + 0.12 * height + 1.2)
        ax.axis("off")
        _network_legend(ax)
        ax.set_title(f"Reduce Weight network for {masks_label(res, flt)}", fontsize=10)
        return _save(fig, path)


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
        fig = _figure((3.2 * len(designs) + 1.9, 6.0))
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
        return _save(fig, path)


def make_figures(results_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Write every report PNG into out_dir; missing inputs give a labelled placeholder PNG."""
    res = load_results(Path(results_dir))
    out = Path(out_dir)
    makers = {
        "ol_scatter": fig_ol_scatter,
        "ml_scatter": fig_ml_scatter,
        "w_sorted": fig_w_sorted,
        "frequency_heatmap": fig_frequency_heatmap,
        "lambda_path": fig_lambda_path,
        "effects": fig_effects,
        "network": fig_network,
    }
    return {name: make(res, out / f"{name}.png") for name, make in makers.items()}


# --------------------------------------------------------------------------------------------
# page context
# --------------------------------------------------------------------------------------------


def _direction(res: Results, sign: str) -> str:
    """Plain words for the sign; binary cohorts name the class whose odds go up."""
    sign = str(sign).replace("-", MINUS).strip()
    cls = res.classes
    binary = res.meta.get("task") == "binary" and len(cls) == 2
    if sign == "+":
        return (
            f"higher values go with higher odds of '{cls[1]}'"
            if binary
            else "higher values go with a higher network output"
        )
    if sign == MINUS:
        return (
            f"higher values go with higher odds of '{cls[0]}'"
            if binary
            else "higher values go with a lower network output"
        )
    return "no consistent direction over seeds"


def _feature_row(res: Results, flt: str, sel_row: pd.Series) -> dict[str, str]:
    f = res.features.set_index("feature")
    fr = f.loc[sel_row["feature"]] if sel_row["feature"] in f.index else pd.Series(dtype=object)
    direction = str(fr.get("direction", "0")).replace("-", MINUS)
    return {
        "feature": str(sel_row["feature"]),
        "direction": direction,
        "direction_text": _direction(res, direction),
        "W": fmt_num(sel_row.get("W")),
        "frequency": fmt_freq(sel_row.get("frequency")),
        "qvalue": fmt_q(sel_row.get("qvalue")),
        "evalue": fmt_num(fr.get("evalue")),
        "effect_sd": fmt_signed(fr.get("effect_sd")),
        "effect_spread": fmt_num(fr.get("effect_sd_spread"), 2),
        "effect_unit": fmt_signed(fr.get("effect_unit")),
    }


def _threshold_summary(res: Results, flt: str) -> dict[str, Any]:
    """How T behaved: per-run for OL/ML, one aggregated value for VWA / e-BH."""
    t = res.thresholds[res.thresholds["filter"] == flt]
    published = t[t["scope"] == "filter"] if "scope" in t else t.iloc[:0]
    if "scope" in t:
        t = t[t["scope"] == "run"] if flt in ("OL", "ML") else published
    n_inf = int(np.isinf(t["T"]).sum())
    if flt in ("OL", "ML") and res.runs:
        finite = t["T"][np.isfinite(t["T"])]
        if len(published):
            parts = [
                f"T of the published statistic ({res.combine_text}) = "
                f"{fmt_num(published['T'].iloc[0])}"
            ]
        else:
            ref = _run_threshold(res, flt, res.runs[0])
            parts = [f"T in the reference run ({_run_label(*res.runs[0])}) = {fmt_num(ref)}"]
        parts.append(
            f"single runs: T = ∞ in {n_inf} of {len(t)}"
            if n_inf
            else f"single runs: T finite in all {len(t)}"
        )
        if len(finite) > 1:
            parts.append(f"median finite T = {fmt_num(finite.median())}")
        parts.append(f"features selected per run: {_range(t['n_selected'])}")
        text = "; ".join(parts) + "."
    elif flt == "ebh" and len(t):
        text = f"e-BH threshold on the averaged e-values: {fmt_num(t['T'].iloc[0])}."
    elif len(t) and np.isfinite(t["T"].iloc[0]):
        text = f"Rule: keep features selected in at least {fmt_freq(t['T'].iloc[0])} of runs."
    else:
        text = ""
    return {"text": text, "notes": _grouped_notes(t)}


def _grouped_notes(t: pd.DataFrame, limit: int = 4) -> list[dict[str, str]]:
    """One line per distinct note, naming how many runs share it (notes repeat across runs)."""
    groups: dict[str, list[str]] = {}
    for run, note in zip(_row_runs(t), t["note"], strict=True):
        if note.strip():
            groups.setdefault(note.strip(), []).append(run)
    out = []
    for note, runs in list(groups.items())[:limit]:
        named = [r for r in runs if r]
        where = (
            "" if not named else named[0] if len(named) == 1 else f"{len(named)} of {len(t)} runs"
        )
        out.append({"run": where, "note": note})
    if len(groups) > limit:
        rest = sum(len(r) for r in list(groups.values())[limit:])
        out.append({"run": "", "note": f"… and {rest} more run(s) with a similar note."})
    return out


def _row_runs(t: pd.DataFrame) -> list[str]:
    out = []
    for d, s in zip(t["draw"], t["seed"], strict=True):
        out.append("" if _missing(d) or _missing(s) else _run_label(int(d), int(s)))
    return out


def _range(s: pd.Series) -> str:
    s = pd.to_numeric(s, errors="coerce").dropna()
    if s.empty:
        return DASH
    lo, hi = int(s.min()), int(s.max())
    return str(lo) if lo == hi else f"{lo}{DASH}{hi}"


def _empty_text(res: Results, flt: str) -> str:
    """Why nothing was selected, in words, when the select rule left no note."""
    q = res.q
    if flt in ("VWA-OL", "VWA-ML", "VWA-OML"):
        return "No feature was selected often enough across runs to pass the vote."
    base = (
        f"No threshold T brought the estimated false discovery proportion down to "
        f"q = {q:g}, so T = ∞ and nothing is selected."
    )
    if res.offset == 1:
        base += (
            f" With knockoff+ at least ⌈1/q⌉ = {math.ceil(1 / q)} features must clearly beat "
            "their knockoffs before any can be selected."
        )
    return base


def _sorted_selection(df: pd.DataFrame) -> pd.DataFrame:
    """Most reliable first: frequency, then q-value, then W."""
    return df.assign(
        _f=-_as_float(df["frequency"]), _q=_as_float(df["qvalue"]), _w=-_as_float(df["W"])
    ).sort_values(["_f", "_q", "_w"], kind="stable")


def _selection_context(res: Results) -> list[dict[str, Any]]:
    out = []
    for flt in FILTERS:
        rows = _sorted_selection(res.selected[res.selected["filter"] == flt])
        out.append(
            {
                "key": flt,
                "id": f"sel-{flt}",
                "name": FILTER_NAMES[flt],
                "recommended": flt == res.recommended,
                "guarantee": GUARANTEE[flt],
                "rows": [_feature_row(res, flt, r) for _, r in rows.iterrows()],
                "threshold": _threshold_summary(res, flt),
                "empty_text": _empty_text(res, flt),
            }
        )
    return out


def _all_features(res: Results) -> list[dict[str, str]]:
    f = res.features.sort_values(["OL_frequency", "OL_W"], ascending=False)
    rows = []
    for _, r in f.iterrows():
        by = [flt for flt in FILTERS if bool(r.get(f"selected_{flt}", False))]
        rows.append(
            {
                "feature": r["feature"],
                "mean": fmt_num(r.get("mean")),
                "sd": fmt_num(r.get("sd")),
                "OL_W": fmt_num(r.get("OL_W")),
                "OL_frequency": fmt_freq(r.get("OL_frequency")),
                "OL_qvalue": fmt_q(r.get("OL_qvalue")),
                "ML_W": fmt_num(r.get("ML_W")),
                "ML_frequency": fmt_freq(r.get("ML_frequency")),
                "ML_qvalue": fmt_q(r.get("ML_qvalue")),
                "evalue": fmt_num(r.get("evalue")),
                "effect_sd": fmt_signed(r.get("effect_sd")),
                "effect_spread": fmt_num(r.get("effect_sd_spread"), 2),
                "effect_unit": fmt_signed(r.get("effect_unit")),
                "direction": str(r.get("direction", "")).replace("-", MINUS),
                "selected_by": ", ".join(by) if by else DASH,
            }
        )
    return rows


def _labels(res: Results) -> list[dict[str, str]]:
    if res.labels is None:
        return []
    total = res.labels["count"].sum()
    return [
        {
            "class": str(r["class"]),
            "code": str(r["code"]),
            "count": fmt_int(r["count"]),
            "share": fmt_freq(r["count"] / total if total else math.nan),
        }
        for _, r in res.labels.iterrows()
    ]


def _listing(items: Any) -> str:
    items = list(items or [])
    return ", ".join(map(str, items)) if items else "none"


def _preprocessing(meta: dict) -> list[dict[str, str]]:
    d = meta.get("dropped") or {}
    return [
        {"what": "Constant columns dropped", "value": _listing(d.get("constant"))},
        {"what": "Duplicate columns dropped", "value": _listing(d.get("duplicate"))},
        {"what": "Rows dropped for missing values", "value": fmt_int(d.get("rows_missing", 0))},
        {"what": "Missing-value policy", "value": str(d.get("missing_policy", DASH))},
        {
            "what": "Categorical columns one-hot encoded",
            "value": _listing(d.get("categorical_onehot")),
        },
    ]


def _method(res: Results) -> list[dict[str, str]]:
    cfg = res.config
    ko = cfg.get("knockoffs", {})
    sel = cfg.get("selection", {})
    draws = sorted({d for d, _ in res.runs})
    seeds = sorted({s for _, s in res.runs})
    net, tr = cfg.get("network", {}), cfg.get("training", {})
    hidden = net.get("hidden")
    n_lambda = int(res.paths.groupby(["draw", "seed"]).size().max()) if not res.paths.empty else 0
    ebh_alpha = sel.get("ebh_alpha")
    return [
        {"what": "Target FDR q", "value": f"{res.q:g}"},
        {
            "what": "Threshold rule",
            "value": "knockoff+ (offset 1, controls FDR)"
            if res.offset == 1
            else "knockoff (offset 0, controls a modified FDR)",
        },
        {
            "what": "Knockoffs",
            "value": f"{ko.get('method', DASH)}, S by {ko.get('s_method', DASH)}"
            f", covariance {ko.get('covariance', DASH)}",
        },
        {
            "what": "Runs",
            "value": f"{len(draws)} knockoff draw(s) × {len(seeds)} training seed(s)"
            f" = {len(res.runs)} runs",
        },
        {
            "what": "Network",
            "value": f"{units_text(net.get('units', 0))}; hidden layers {hidden}, "
            f"{net.get('activation', 'relu')}"
            if hidden
            else DASH,
        },
        {
            "what": "Training",
            "value": f"{tr.get('optimizer', 'fista')}, {tr.get('penalty', 'l1')} penalty, "
            f"{tr.get('start', 'cold')} start, batches of {tr.get('batch_size', 0) or 'all'} rows, "
            f"patience {tr.get('patience', DASH)} epochs",
        },
        {"what": "λ path", "value": f"{n_lambda} values per run" if n_lambda else DASH},
        {
            "what": "Statistics",
            "value": STATISTIC_TEXT[sel.get("statistic", "paper")]
            + f"; OL and ML use {res.combine_text}",
        },
        {
            "what": "VWA vote ratio",
            "value": f"{fmt_freq(sel.get('vwa_ratio', 0.5))} (VWA-OL, "
            f"VWA-ML); {fmt_freq(sel.get('vwa_oml_ratio', 0.25))} (VWA-OML)",
        },
        {
            "what": "e-BH",
            "value": f"e-values from {sel.get('ebh_statistic', 'OL')} at α = "
            + (
                f"{ebh_alpha:g}"
                if ebh_alpha is not None
                else (f"q = {res.q:g}" if len(draws) == 1 else f"q/2 = {res.q / 2:g}")
            ),
        },
    ]


STATISTIC_TEXT = {
    "importance": "OL: norm of each input's first-layer weights; ML: mean squared "
    "derivative of the output (neither cancels a non-monotone effect)",
    "paper": "the paper's: OL sums Z (largest λ with a non-zero weight), ML weights it by "
    "the product of the weight matrices",
}


def units_text(units: int) -> str:
    if not units:
        return "dense input layer (the paper's)"
    return f"{units} learned univariate units per input"


def learning_check(res: Results) -> dict[str, Any] | None:
    """Per run: validation score of the dense fit, of the chosen-λ network and of the
    gradient-boosting reference (statistics.tsv), with a warning when the network learned
    clearly less than the reference."""
    s = res.statistics
    if "chosen_score" not in s:
        return None
    runs = s.drop_duplicates(["draw", "seed"]).sort_values(["draw", "seed"])
    metric = str(runs["metric"].iloc[0]) if "metric" in runs else "score"
    rows = [
        {
            "run": _run_label(int(r.draw), int(r.seed)),
            "dense": fmt_num(r.dense_score),
            "chosen": fmt_num(r.chosen_score),
            "reference": fmt_num(r.reference_score),
        }
        for r in runs.itertuples(index=False)
    ]
    chosen = _as_float(runs["chosen_score"])
    reference = _as_float(runs["reference_score"])
    gap = float(np.nanmean(reference - chosen)) if reference.notna().any() else float("nan")
    warning = ""
    if np.isfinite(gap) and gap > 0.05:
        warning = (
            f"The chosen networks' validation {metric} is {gap:.3f} below the gradient-boosting "
            "reference on average: the network learned less than a simple model does from the "
            "same rows, so the filters can miss signals. Try more training seeds, "
            "`network.units` > 0, or more epochs (`training.patience`)."
        )
    return {
        "metric": metric,
        "rows": rows,
        "mean": {
            "dense": fmt_num(_as_float(runs["dense_score"]).mean()),
            "chosen": fmt_num(chosen.mean()),
            "reference": fmt_num(reference.mean()),
        },
        "warning": warning,
    }


def _summary_sentences(res: Results) -> list[dict[str, str]]:
    rows = _sorted_selection(res.selected[res.selected["filter"] == res.recommended])
    return [_feature_row(res, res.recommended, r) for _, r in rows.iterrows()]


def _params_text(params: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in params.items())


def simulation_context(res: Results, truth: dict, scores: pd.DataFrame) -> dict[str, Any]:
    """'Against the known truth' for a simulated cohort: this replicate's selections at the
    report's q scored against the relevant features, beside the design's mean ± se over its
    replicates (`scores`: every replicate's rows of simulation.REPLICATE_COLUMNS).

    The pipeline filters are scored from this report's own selected.tsv, so the false
    discoveries can be named; the peers (scored only by the study) come from `scores`.
    """
    relevant = [str(f) for f in truth.get("relevant") or []]
    replicate = int(truth["replicate"])
    at_q = scores[np.isclose(scores["q"].astype(float), res.q)]
    mine = at_q[at_q["replicate"] == replicate].set_index("filter")
    design = summarise(at_q).set_index("filter")
    extra = sorted(set(scores["filter"]) - set(FILTERS))
    rows = []
    for flt in [*FILTERS, *extra]:
        if flt in FILTERS:
            sel = res.selected_by(flt)
            n_sel, fdp, power = fdp_power(sel, relevant)
            false = [f for f in sel if f not in set(relevant)]
        elif flt in mine.index:
            r = mine.loc[flt]
            n_sel, fdp, power, false = int(r["n_selected"]), r["fdp"], r["power"], None
        else:
            continue
        n_false = len(false) if false is not None else round(float(fdp) * n_sel)
        d = design.loc[flt] if flt in design.index else None
        rows.append(
            {
                "filter": flt,
                "peer": flt not in FILTERS,
                "recommended": flt == res.recommended,
                "selected": fmt_int(n_sel),
                "true": fmt_int(n_sel - n_false),
                "false": fmt_int(n_false),
                "fdp": fmt_num(fdp),
                "power": fmt_num(power),
                "design_fdr": DASH if d is None else fmt_pm(d["fdp_mean"], d["fdp_se"]),
                "design_power": DASH if d is None else fmt_pm(d["power_mean"], d["power_se"]),
                "false_names": DASH if false is None else (", ".join(false) or "none"),
            }
        )
    return {
        "design": str(truth.get("design", DASH)),
        "replicate": replicate,
        "generator": str(truth.get("generator", DASH)),
        "n": fmt_int(truth.get("n")),
        "params": _params_text(truth.get("params") or {}),
        "relevant": ", ".join(relevant),
        "n_relevant": len(relevant),
        "p": fmt_int(truth.get("p", len(res.features))),
        "replicates": int(scores["replicate"].nunique()),
        "on_grid": not at_q.empty,
        "grid": ", ".join(f"{q:g}" for q in sorted(scores["q"].astype(float).unique())),
        "rows": rows,
    }


def _diagnostics(res: Results) -> dict[str, Any]:
    d = res.diagnostics
    cols = [
        "mean_s",
        "min_s",
        "max_dev_xx",
        "max_dev_kk",
        "max_dev_xk",
        "mean_abs_pair_corr",
        "swap_stat",
    ]
    rows = []
    for _, r in d.iterrows():
        row = {c: fmt_num(r.get(c)) for c in cols}
        row.update(
            draw=str(r.get("draw", DASH)),
            method=str(r.get("method", DASH)),
            s_method=str(r.get("s_method", DASH)),
            covariance=str(r.get("covariance", DASH)),
            swap_pvalue=fmt_q(r.get("swap_pvalue")),
            flag=bool(r.get("flag", False)),
        )
        rows.append(row)
    warnings = [
        {
            "draw": str(r.get("draw")),
            "message": str(
                r.get("message")
                or "The diagnostics flagged this draw: exchangeability may be violated."
            ),
        }
        for _, r in d.iterrows()
        if bool(r.get("flag", False))
    ]
    return {"rows": rows, "warnings": warnings}


def _pruning(res: Results) -> dict[str, Any] | None:
    """Reduce Weight tables, or None when the prune rule did not run ('not run' in the page)."""
    if res.summary is None and res.structure is None and res.prediction is None:
        return None
    out: dict[str, Any] = {"summary": [], "structure": [], "prediction": [], "detail": []}
    if res.summary is not None:
        out["summary"] = [_pruning_size(r) for _, r in res.summary.iterrows()]
    if res.structure is not None:
        out["structure"], out["detail"] = _pruning_structure(res.structure, res.recommended)
    if res.prediction is not None:
        out["prediction"] = _prediction_rows(res.prediction)
    return out


def _pruning_size(r: pd.Series) -> dict[str, str]:
    row = {
        k: f"{fmt_int(r[f'{k}_before'])} → {fmt_int(r[f'{k}_after'])}"
        for k in ("weights", "neurons", "flops")
    }
    before = r["weights_before"]
    row["reduction"] = fmt_freq(1 - r["weights_after"] / before) if before else DASH
    return {"filter": str(r["filter"]), **row}


def _pruning_structure(
    structure: pd.DataFrame, recommended: str
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Per (filter, hidden layer) totals, and the paper's Table 10 for the recommended filter."""
    s = structure.copy()
    s["neuron_removed"] = _as_bool(s["neuron_removed"])
    agg = s.groupby(["filter", "layer"], sort=False).agg(
        neurons=("neuron", "size"),
        removed=("neuron_removed", "sum"),
        in_kept=("incoming_kept", "sum"),
        in_removed=("incoming_removed", "sum"),
    )
    totals = [
        {"filter": str(f), "layer": _one_based(lay)}
        | {k: fmt_int(r[k]) for k in ("neurons", "removed", "in_kept", "in_removed")}
        for (f, lay), r in agg.iterrows()
    ]
    detail = []
    for _, r in s[s["filter"] == recommended].iterrows():
        row = {k: fmt_int(r[k]) for k in r.index if k.startswith(("incoming", "outgoing"))}
        row |= {"layer": _one_based(r["layer"]), "neuron": _one_based(r["neuron"])}
        row["neuron_removed"] = "yes" if r["neuron_removed"] else ""
        detail.append(row)
    return totals, detail


def _prediction_rows(pred: pd.DataFrame) -> list[dict[str, Any]]:
    """mean ± sd cells; the filter name is shown once per group of methods."""
    rows, prev = [], None
    for _, r in pred.iterrows():
        rows.append(
            {
                "first": r["filter"] != prev,
                "filter": str(r["filter"]),
                "method": str(r["method"]),
                "n": fmt_int(r.get("n_features")),
                "accuracy": fmt_pm(r.get("accuracy_mean"), r.get("accuracy_sd")),
                "auc": fmt_pm(r.get("auc_mean"), r.get("auc_sd")),
                "f1": fmt_pm(r.get("f1_mean"), r.get("f1_sd")),
                "seconds": fmt_pm(r.get("seconds_mean"), r.get("seconds_sd")),
            }
        )
        prev = r["filter"]
    return rows


def _one_based(v: Any) -> str:
    """structure.tsv numbers layers and neurons from 0; readers (and the paper) count from 1."""
    try:
        return str(int(v) + 1)
    except (TypeError, ValueError):
        return str(v)


def summarise_benchmarks(bench_dir: Path | None) -> list[dict[str, str]]:
    """Per rule: jobs, total and max wall time, peak RSS (MB) from Snakemake benchmark files."""
    if bench_dir is None or not Path(bench_dir).is_dir():
        return []
    frames = []
    for f in sorted(Path(bench_dir).rglob("*.tsv")):
        rel = f.relative_to(bench_dir)
        rule = rel.parts[0] if len(rel.parts) > 1 else f.stem
        try:
            df = pd.read_csv(f, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        frames.append(
            pd.DataFrame(
                {
                    "rule": rule,
                    "s": _as_float(df.get("s", pd.Series())),
                    "rss": _as_float(df.get("max_rss", pd.Series())),
                }
            )
        )
    if not frames:
        return []
    df = pd.concat(frames, ignore_index=True)
    agg = df.groupby("rule", sort=False).agg(
        jobs=("s", "size"), total=("s", "sum"), longest=("s", "max"), rss=("rss", "max")
    )
    rows = [
        {
            "rule": rule,
            "jobs": fmt_int(r["jobs"]),
            "total": fmt_seconds(r["total"]),
            "longest": fmt_seconds(r["longest"]),
            "rss": fmt_num(r["rss"]),
        }
        for rule, r in agg.sort_values("total", ascending=False).iterrows()
    ]
    rows.append(
        {
            "rule": "all rules",
            "jobs": fmt_int(agg["jobs"].sum()),
            "total": fmt_seconds(agg["total"].sum()),
            "longest": fmt_seconds(agg["longest"].max()),
            "rss": fmt_num(agg["rss"].max()),
        }
    )
    return rows


def _pretty(obj: Any) -> str:
    """YAML reads best for a config; JSON is the fallback when PyYAML is absent."""
    try:
        import yaml

        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=None)
    except ImportError:
        return json.dumps(obj, indent=2, ensure_ascii=False)


def _provenance(res: Results, bench_dir: Path | None) -> dict[str, Any]:
    run = res.run
    return {
        "config": _pretty(res.config) if res.config else "",
        "versions": sorted((run.get("versions") or {}).items()),
        "git_commit": run.get("git_commit") or "not recorded (not a git checkout?)",
        "inputs": sorted((run.get("inputs") or {}).items()),
        "seeds": _pretty(run.get("seeds")) if run.get("seeds") else "",
        "created": run.get("created") or DASH,
        "benchmarks": summarise_benchmarks(bench_dir),
    }


def _img(path: Path | None) -> dict[str, Any] | None:
    """Inline PNG plus its display width, so 1 figure inch is the same size on every figure."""
    if path is None or not Path(path).exists():
        return None
    data = Path(path).read_bytes()
    width_px = int.from_bytes(data[16:20], "big") if data[:8] == b"\x89PNG\r\n\x1a\n" else 0
    return {
        "src": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
        "width": round(width_px * CSS_PX_PER_INCH / DPI) if width_px else None,
    }


def build_context(
    res: Results,
    figures: dict[str, Path],
    bench_dir: Path | None,
    simulation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """All values the template shows, already formatted (the template only lays them out);
    `simulation` is simulation_context()'s result for a simulated cohort, else None."""
    meta = res.meta
    cls = res.classes
    return {
        "cohort": meta.get("cohort") or res.root.name,
        "source": meta.get("source", DASH),
        "n": fmt_int(meta.get("n")),
        "p": fmt_int(meta.get("p", len(res.features))),
        "task": meta.get("task", DASH),
        "label": meta.get("label", DASH),
        "classes": cls,
        "labels": _labels(res),
        "positive": cls[1] if meta.get("task") == "binary" and len(cls) == 2 else None,
        "preprocessing": _preprocessing(meta),
        "method": _method(res),
        "learning": learning_check(res),
        "statistic": res.config.get("selection", {}).get("statistic", "paper"),
        "q": f"{res.q:g}",
        "need": math.ceil(1 / res.q) if res.q > 0 else 0,
        "offset": res.offset,
        "recommended": res.recommended,
        "recommended_name": FILTER_NAMES.get(res.recommended, res.recommended),
        "recommended_guarantee": GUARANTEE.get(res.recommended, ""),
        "sentences": _summary_sentences(res),
        "recommended_notes": _threshold_summary(res, res.recommended)["notes"],
        "reference_run": _run_label(*res.runs[0]) if res.runs else DASH,
        "n_runs": len(res.runs),
        "selection": _selection_context(res),
        "all_features": _all_features(res),
        "effect_label": effect_axis_label(res),
        "diagnostics": _diagnostics(res),
        "pruning": _pruning(res),
        "provenance": _provenance(res, bench_dir),
        "img": {name: _img(figures.get(name)) for name in [*FIGURES, "fdr_power"]},
        "network_drawn": _load_masks(res, res.recommended) is not None,
        "network_label": masks_label(res, res.recommended),
        "simulation": simulation,
        "minus": MINUS,
    }


def _template() -> jinja2.Template:
    text = resources.files(__package__).joinpath("templates/report.html.j2").read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
    )
    return env.from_string(text)


def render_report(
    results_dir: Path,
    figures: dict[str, Path],
    out_html: Path,
    benchmarks_dir: Path | None = None,
    truth: Path | None = None,
    scores: list[Path] | None = None,
) -> None:
    """Render results/{cohort}/report.html; benchmarks default to results_dir/benchmarks.

    A simulated cohort passes its truth JSON and the score CSVs of every replicate of its
    design, which add the 'against the known truth' table.
    """
    res = load_results(Path(results_dir))
    bench = Path(benchmarks_dir) if benchmarks_dir is not None else res.root / "benchmarks"
    simulation = None
    if truth is not None:
        frames = [pd.read_csv(f) for f in scores or []]
        if not frames:
            raise ValueError(f"truth {truth} given without the design's score files")
        table = pd.concat(frames, ignore_index=True)
        simulation = simulation_context(res, json.loads(Path(truth).read_text()), table)
    figs = {k: Path(v) for k, v in figures.items()}
    html = _template().render(**build_context(res, figs, bench, simulation))
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
