"""The report's figures (rule `figures`), one function per figure, all pyplot-free."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from knockoffnet.plotting import (
    KO,
    KO_LIGHT,
    NULL,
    SEL,
    SEL_LIGHT,
    STYLE,
    new_figure,
    placeholder,
    save_figure,
)
from knockoffnet.report.format import MINUS, _as_bool, _as_float, fmt_num
from knockoffnet.report.network_figure import fig_network
from knockoffnet.report.results import (
    ResultFiles,
    Results,
    ebh_settings,
    load_results,
    run_label,
    run_stats,
    run_threshold,
)
from knockoffnet.vocabulary import FILTER_NAMES, FILTER_STATISTIC


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
    return f"{name}: {run_label(*run)}, q = {q:g}, {tt}"


def fig_ol_scatter(res: Results, path: Path) -> Path:
    """Paper Fig. 4: z_j against z~_j; selected = right of T and below the diagonal."""
    run = res.runs[0]
    df = run_stats(res, "OL", run)
    t = run_threshold(res, "OL", run)
    with matplotlib.rc_context(STYLE):
        fig = new_figure((6.0, 6.4))
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
        return save_figure(fig, path)


def fig_ml_scatter(res: Results, path: Path) -> Path:
    """Paper Fig. 5 on |g|: W = g² − g~², so the boundary g² = g~² + T is a hyperbola."""
    run = res.runs[0]
    df = run_stats(res, "ML", run).assign(
        ag=lambda d: d["z"].abs(), agk=lambda d: d["z_knockoff"].abs()
    )
    t = run_threshold(res, "ML", run)
    with matplotlib.rc_context(STYLE):
        fig = new_figure((6.0, 6.4))
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
        return save_figure(fig, path)


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
    p = len(run_stats(res, "OL", run))
    with matplotlib.rc_context(STYLE):
        fig = new_figure((8.6, 1.7 + 0.2 * min(p, 60)))
        axes = fig.subplots(1, 2)
        ts = [run_threshold(res, flt, run) for flt in ("OL", "ML")]
        for ax, flt, name, t in zip(
            axes, ("OL", "ML"), ("One Layer", "Multiple Layers"), ts, strict=True
        ):
            _w_panel(ax, run_stats(res, flt, run), t, name)
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
        fig.suptitle(f"Knockoff statistics W, {run_label(*run)}", fontsize=11)
        return save_figure(fig, path)


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
        fig = new_figure((min(3.5 + 0.5 * n_runs, 16), 1.8 + 0.24 * len(feats)))
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
        return save_figure(fig, path)


def _run_colors(n: int) -> list:
    return sns.color_palette("colorblind", n) if n <= 10 else ["#8c8c8c"] * n


def fig_lambda_path(res: Results, path: Path) -> Path:
    """Sparsity and validation loss along λ per run: shows where the chosen λ sits."""
    if res.paths.empty:
        return placeholder(path, "No λ-path tables (z/draw*_seed*_path.tsv) were found.")
    groups = list(res.paths.groupby(["draw", "seed"], sort=True))
    colors = _run_colors(len(groups))
    loss_col = "val_loss" if "val_loss" in res.paths else "val_objective"
    with matplotlib.rc_context(STYLE):
        fig = new_figure((8.6, 3.6))
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
        return save_figure(fig, path)


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
        fig = new_figure((6.8, 1.5 + 0.24 * len(f)))
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
        return save_figure(fig, path)


def manhattan_statistic(res: Results) -> str:
    """OL or ML: the statistic behind the recommended filter (e-BH: the one its e-values use).
    Its knockoff q-values grade every variant, where the aggregated filters' own q-values are
    all or nothing (e-BH over one draw: q or 1)."""
    if res.recommended == "ebh":
        stat = ebh_settings(res.config)["statistic"]
        return str(stat) if stat in ("OL", "ML") else "ML"
    return FILTER_STATISTIC.get(res.recommended, "ML")


def _chromosome_key(name: str) -> tuple[int, int | str]:
    """Natural order: 1, 2, …, 22, then X, Y, MT and the rest by name."""
    return (0, int(name)) if str(name).isdigit() else (1, str(name))


def manhattan_points(res: Results) -> pd.DataFrame:
    """One row per variant: feature, chrom, x (position laid end to end by chromosome), y
    (−log10 of the knockoff q-value of :func:`manhattan_statistic`, draw 0), W, sel (selected
    by the recommended filter). Empty without chromosome positions."""
    variants = res.meta.get("variants")
    if not variants:
        return pd.DataFrame()
    f = res.features.copy()
    pos = dict(zip(res.meta["features"], variants["position"], strict=True))
    chrom = dict(zip(res.meta["features"], variants["chromosome"], strict=True))
    f["chrom"], f["pos"] = f["feature"].map(chrom).astype(str), f["feature"].map(pos)
    stat = manhattan_statistic(res)
    f["y"] = -np.log10(np.clip(_as_float(f[f"{stat}_qvalue"]), 1e-300, 1.0))
    f["W"] = _as_float(f[f"{stat}_W"])
    f["sel"] = f.get(f"selected_{res.recommended}", pd.Series(False, index=f.index))
    offset, x = 0.0, pd.Series(0.0, index=f.index)
    for c in sorted(f["chrom"].unique(), key=_chromosome_key):
        part = f["chrom"] == c
        span = float(f.loc[part, "pos"].max() - f.loc[part, "pos"].min()) or 1.0
        x[part] = offset + f.loc[part, "pos"] - f.loc[part, "pos"].min()
        offset += span * 1.05
    f["x"] = x
    return f[["feature", "chrom", "x", "y", "W", "sel"]]


def fig_manhattan(res: Results, path: Path) -> Path:
    """Genotype cohorts: −log10 of the knockoff q-value of the statistic behind the
    recommended filter along the genome (chromosome, position from the .bim file), the q
    line dashed, the recommended filter's selection highlighted and the strongest labelled.
    Other cohorts get a placeholder (the report does not show it)."""
    f = manhattan_points(res)
    if f.empty:
        return placeholder(path, "Not a genotype cohort: no chromosome positions.")
    order = sorted(f["chrom"].unique(), key=_chromosome_key)
    stat = manhattan_statistic(res)
    with matplotlib.rc_context(STYLE):
        fig = new_figure((7.6, 3.6))
        ax = fig.add_subplot()
        for i, name in enumerate(order):
            part = (f["chrom"] == name) & ~f["sel"]
            ax.scatter(f.loc[part, "x"], f.loc[part, "y"], s=6, lw=0,
                       color=NULL if i % 2 else "#5d6d7e")  # fmt: skip
        ax.scatter(f.loc[f["sel"], "x"], f.loc[f["sel"], "y"], s=16, color=SEL,
                   label=f"selected by {res.recommended}", zorder=3)  # fmt: skip
        ax.axhline(-np.log10(res.q), color=KO, ls="--", lw=0.9, label=f"q = {res.q:g}")
        # the strongest selected (by q, then W), labelled left to right at alternating
        # heights so that neighbours on a shared q do not print over each other
        top = f[f["sel"]].sort_values(["y", "W"], ascending=False).head(12).sort_values("x")
        for k, (_, r) in enumerate(top.iterrows()):
            ax.annotate(r["feature"], (r["x"], r["y"]), fontsize=6.5, xytext=(2, 3 + 7 * (k % 2)),
                        textcoords="offset points")  # fmt: skip
        mids = [f.loc[f["chrom"] == c, "x"].agg(["min", "max"]).mean() for c in order]
        ax.set_xticks(mids, order, fontsize=7)
        ax.set_xlabel("chromosome")
        ax.set_ylabel(f"−log10 knockoff q ({stat})")
        ax.set_ylim(top=max(float(f["y"].max()), -np.log10(res.q)) * 1.15 + 0.05)
        ax.legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2)
        return save_figure(fig, path)


def make_figures(files: ResultFiles | Path, out_dir: Path) -> dict[str, Path]:
    """Write every report PNG into out_dir; missing inputs give a labelled placeholder PNG."""
    res = load_results(files)
    out = Path(out_dir)
    makers = {
        "ol_scatter": fig_ol_scatter,
        "ml_scatter": fig_ml_scatter,
        "w_sorted": fig_w_sorted,
        "frequency_heatmap": fig_frequency_heatmap,
        "lambda_path": fig_lambda_path,
        "effects": fig_effects,
        "network": fig_network,
        "manhattan": fig_manhattan,
    }
    return {name: make(res, out / f"{name}.png") for name, make in makers.items()}
