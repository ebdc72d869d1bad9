"""From every run's importances (knockoff draw × training seed) to the selection tables.

This is the glue between the per-run statistics (``statistics``), the knockoff threshold
(``filters``) and the aggregation over runs (``aggregation``); it only arranges their outputs
into the tables the workflow publishes (``selected.tsv``, ``features.tsv``, ...).

A *run* is one trained path. The published OL and ML filters threshold one statistic per
knockoff draw: the importances of the draw's training seeds averaged (``combine: mean``,
default; an ensemble of networks on the same knockoffs) or the first seed's alone
(``combine: first``, the paper). Averaging is done on the importances z and z~ before W is
formed, column by column, so flip-sign holds for the average as for each run. VWA votes over
the runs; e-BH averages e-values over the draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.aggregation import ebh, ebh_qvalues, knockoff_evalues, vwa
from knockoffnet.errors import InputError
from knockoffnet.filters import knockoff_qvalues, knockoff_threshold, no_selection_message
from knockoffnet.groups import group_sum, index_from_table
from knockoffnet.statistics import multi_layer, one_layer, pair_statistic
from knockoffnet.vocabulary import FILTERS, PATH_FILTERS

# Per-run diagnostics copied from z/draw{d}_seed{s}.npz to every row of the run in
# statistics.tsv: the validation scores and the dense fit's kept weight decay.
RUN_KEYS = ("dense_score", "chosen_score", "reference_score", "dense_decay")


@dataclass
class RunStats:
    """The OL and ML importances of one run, and what its own threshold selects."""

    draw: int
    seed: int
    importance: dict[str, tuple[np.ndarray, np.ndarray]]  # filter -> (original, knockoff)
    units: dict[str, tuple[np.ndarray, np.ndarray]]  # the same per group (= importance if none)
    W: dict[str, np.ndarray]
    T: dict[str, float]
    selected: dict[str, np.ndarray]
    qvalue: dict[str, np.ndarray]
    effects: np.ndarray  # (p, K) mean d(output)/dx per SD
    magnitude: np.ndarray  # (p,) root mean squared d(output)/dx per SD
    scores: dict[str, float]
    metric: str
    copies: int = 1  # κ, knockoff copies the run was trained with


def _form(selection: dict[str, Any], flt: str) -> str:
    if selection.get("statistic", "importance") == "importance":
        return "difference"
    return "signed_max" if flt == "OL" else "squares"


def _split(importance: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(z of the p features, z~): (p,) for one knockoff copy, (κ, p) for κ > 1 copies."""
    a = np.asarray(importance)
    if a.ndim != 1 or a.size % p or a.size < 2 * p:
        raise InputError(
            f"a run's importances have {a.size} entries, not a multiple >= 2 of p = {p} "
            "([X, X~1..X~k]); rerun collect_z"
        )
    copies = a.size // p - 1
    return a[:p], a[p:] if copies == 1 else a[p:].reshape(copies, p)


def copies_of(pair: tuple[np.ndarray, np.ndarray]) -> int:
    """κ, the number of knockoff copies behind an importance pair."""
    return 1 if np.ndim(pair[1]) == 1 else int(np.shape(pair[1])[0])


def strongest_knockoff(zk: np.ndarray) -> np.ndarray:
    """The knockoff importance a feature is compared with in the tables: its copy's, or the
    largest of its κ copies' (the one it had to beat)."""
    return zk if np.ndim(zk) == 1 else np.max(zk, axis=0)


def run_importances(run: dict[str, np.ndarray], p: int, statistic: str) -> dict[str, tuple]:
    """(z, z~) per filter from a run's z/*.npz arrays (z~ is (κ, p) with κ > 1 copies)."""
    if statistic == "importance":
        return {
            "OL": _split(run["importance_ol"], p),
            "ML": _split(run["importance_ml"], p),
        }
    if np.asarray(run["importance_ol"]).size != 2 * p:
        raise InputError(
            "selection.statistic: paper is defined for one knockoff copy; with "
            "knockoffs.copies > 1 use selection.statistic: importance"
        )
    z0 = run["Z0_input"]
    n_layers = sum(1 for k in run if k.startswith("W") and k[1:].isdigit())
    weights = [run["W0_input"]] + [run[f"W{layer}"] for layer in range(1, n_layers)]
    z, zk, _ = one_layer(z0, p)
    g, gk, _, _ = multi_layer(z0, weights, p)
    return {"OL": (z, zk), "ML": (g, gk)}


def _to_units(pair: tuple[np.ndarray, np.ndarray], groups: np.ndarray | None) -> tuple:
    """A feature-level (z, z~) pair summed over groups (unchanged without groups)."""
    if groups is None:
        return pair
    return group_sum(pair[0], groups), group_sum(pair[1], groups)


def run_statistics(
    run: dict[str, np.ndarray],
    draw: int,
    seed: int,
    p: int,
    selection: dict[str, Any],
    groups: np.ndarray | None = None,
) -> RunStats:
    """W, threshold, selection and q-values of both statistics for one trained path.

    With ``groups`` (a label 0..G−1 per feature) everything but the importances is per group:
    a group's importance is the sum of its members' (and its knockoff group's the sum of
    theirs), so W, T, the selection and the q-values have length G.
    """
    pairs = run_importances(run, p, selection.get("statistic", "importance"))
    q, offset = selection["q"], selection["offset"]
    copies = copies_of(pairs["OL"])
    units = {f: _to_units(pairs[f], groups) for f in PATH_FILTERS}
    W = {f: pair_statistic(*units[f], _form(selection, f)) for f in PATH_FILTERS}
    T = {f: knockoff_threshold(W[f], q, offset, copies) for f in PATH_FILTERS}
    effects = np.asarray(run["effects"], dtype=float).reshape(p, -1)
    magnitude = run.get("effect_magnitude")
    return RunStats(
        draw=draw,
        seed=seed,
        importance=pairs,
        units=units,
        W=W,
        T=T,
        selected={f: W[f] >= T[f] for f in PATH_FILTERS},
        qvalue={f: knockoff_qvalues(W[f], offset, copies) for f in PATH_FILTERS},
        effects=effects,
        magnitude=np.abs(effects).max(axis=1) if magnitude is None else np.asarray(magnitude),
        scores={k: float(run[k]) if k in run else float("nan") for k in RUN_KEYS},
        metric=str(run["metric"]) if "metric" in run else "",
        copies=copies,
    )


def combined_pair(
    runs: list[RunStats], flt: str, draw: int, combine: str, level: str = "importance"
) -> tuple[np.ndarray, np.ndarray]:
    """(z, z~) of one draw for the published filter: the seeds' mean or the first seed's;
    per feature (``level="importance"``) or per group (``"units"``)."""
    members = sorted((r for r in runs if r.draw == draw), key=lambda r: r.seed)
    if combine == "first":
        members = members[:1]
    z = np.mean([getattr(r, level)[flt][0] for r in members], axis=0)
    zk = np.mean([getattr(r, level)[flt][1] for r in members], axis=0)
    return z, zk


def ebh_alpha(selection: dict[str, Any], n_draws: int) -> float:
    """α_kn of the e-values: the configured value, else q for one draw (e-BH is then the
    knockoff+ filter itself) and q/2 for several (Ren & Barber's default)."""
    alpha = selection["ebh"]["alpha_kn"]
    if alpha is not None:
        return float(alpha)
    return float(selection["q"]) if n_draws == 1 else float(selection["q"]) / 2


def effect_summary(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-SD effect and its spread over runs, from :func:`run_effects`'s (R, p) values.

    Binary: d log-odds of the positive class; regression: outcome units; multiclass: the mean
    absolute derivative of the centred class logits (a size without a single direction).
    """
    spread = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
    return values.mean(axis=0), spread


def run_effects(runs: list[RunStats], task: str, labels: np.ndarray | None = None) -> np.ndarray:
    """(R, p) per-SD effect of every run (the sizes :func:`effect_summary` averages).

    With group ``labels`` each feature gets its group's effect instead: the derivative for a
    one-SD rise of every member together (the members' derivatives summed). A group selected
    as a whole has a direction even when each run's network used other members of it.
    """
    per_run = np.stack([r.effects for r in runs])  # (R, p, K)
    if labels is not None:  # by bincount: a (p, G) membership matrix is 640 MB at 20,000 × 4,000
        sums = group_sum(per_run.transpose(0, 2, 1), labels)  # (R, K, G)
        per_run = sums.transpose(0, 2, 1)[:, labels]
    if task == "multiclass" and per_run.shape[2] > 1:
        centred = per_run - per_run.mean(axis=2, keepdims=True)
        return np.abs(centred).mean(axis=2)
    return per_run[:, :, 0]


def effect_direction(values: np.ndarray, task: str) -> np.ndarray:
    """Per feature '+' or '−' when every run's effect ``values[r, j]`` has that sign, else '0'
    (runs that disagree, or some whose network does not use the feature: effect exactly 0);
    '±' for every feature of a multiclass outcome, which has no single direction.

    The sign of the mean alone would let one run of four name a direction for all of them.
    """
    values = np.asarray(values, dtype=float)
    if task == "multiclass":
        return np.full(values.shape[1], "±")
    up, down = (values > 0).all(axis=0), (values < 0).all(axis=0)
    return np.where(up, "+", np.where(down, "−", "0"))


@dataclass
class _Filter:
    kept: np.ndarray
    W: np.ndarray
    frequency: np.ndarray
    qvalue: np.ndarray


def group_labels(groups: pd.DataFrame | None, features: Any) -> np.ndarray | None:
    """Labels 0..G−1 per feature from groups.tsv; None when every group is a single feature
    (the ungrouped filter, computed exactly as without a table)."""
    if groups is None:
        return None
    labels = index_from_table(groups, list(features))
    return None if labels.max() + 1 == len(labels) else labels


def build_tables(
    runs: list[RunStats],
    meta: dict[str, Any],
    selection: dict[str, Any],
    groups: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """statistics, thresholds, selected and features tables (formats in docs/architecture.md).

    ``groups`` is groups.tsv: with groups of several features the filters select groups
    (``runs`` must come from :func:`run_statistics` with the same labels) and every member of
    a selected group is listed, with its group's W, frequency and q-value.
    """
    features = np.asarray(meta["features"])
    p = len(features)
    labels = group_labels(groups, features)
    if groups is None:
        group_of, group_size = features, np.ones(p, dtype=int)
    else:
        by_feature = groups.set_index(groups["feature"].astype(str))
        group_of = by_feature.loc[features, "group"].astype(str).to_numpy()
        group_size = by_feature.loc[features, "group_size"].to_numpy(dtype=int)

    def expand(a: np.ndarray) -> np.ndarray:
        """A per-group array as one value per feature (each member gets its group's)."""
        return np.asarray(a) if labels is None else np.asarray(a)[labels]

    q, offset = selection["q"], selection["offset"]
    combine = selection.get("combine", "mean")
    draws = sorted({r.draw for r in runs})
    first_draw = draws[0]

    # The published OL/ML filters and the e-values: one W per draw.
    draw_W = {
        (flt, d): pair_statistic(
            *combined_pair(runs, flt, d, combine, "units"), _form(selection, flt)
        )
        for flt in PATH_FILTERS
        for d in draws
    }
    alpha = ebh_alpha(selection, len(draws))
    ebh_stat, ebh_offset = selection["ebh"]["statistic"], selection["ebh"]["offset"]
    copies = runs[0].copies
    e_draw = {d: knockoff_evalues(draw_W[(ebh_stat, d)], alpha, ebh_offset, copies) for d in draws}
    e_mean = np.mean([e_draw[d] for d in draws], axis=0)
    # How often each feature passed its draw's threshold (its e-value was non-zero).
    e_frequency = np.mean([e_draw[d] > 0 for d in draws], axis=0)

    sel = {f: np.stack([r.selected[f] for r in runs]) for f in PATH_FILTERS}
    freq = {f: sel[f].mean(axis=0) for f in PATH_FILTERS}
    filters: dict[str, _Filter] = {}
    threshold_rows = []
    for f in PATH_FILTERS:
        W = draw_W[(f, first_draw)]
        T = knockoff_threshold(W, q, offset, copies)
        filters[f] = _Filter(W >= T, W, freq[f], knockoff_qvalues(W, offset, copies))
        threshold_rows.append(
            _threshold_row(f, "filter", first_draw, None, q, offset, T, W >= T)
            | {"note": no_selection_message(W, q, offset, copies) if np.isinf(T) else ""}
        )
    ratio = selection["vwa_ratio"]
    for f in PATH_FILTERS:
        kept, fr = vwa(sel[f], ratio)
        W_med = np.median(np.stack([r.W[f] for r in runs]), 0)
        q_med = np.median(np.stack([r.qvalue[f] for r in runs]), 0)
        filters[f"VWA-{f}"] = _Filter(kept, W_med, fr, q_med)
    kept, fr = vwa(np.vstack([sel["OL"], sel["ML"]]), selection["vwa_oml_ratio"])
    q_pool = np.median(np.vstack([np.stack([r.qvalue[f] for r in runs]) for f in PATH_FILTERS]), 0)
    filters["VWA-OML"] = _Filter(kept, filters["VWA-OL"].W, fr, q_pool)
    filters["ebh"] = _Filter(
        ebh(e_mean, q), draw_W[(ebh_stat, first_draw)], freq[ebh_stat], ebh_qvalues(e_mean)
    )

    statistics = _statistics_table(runs, features, e_draw, ebh_stat, expand)
    n_units = len(filters["OL"].W)
    for r in runs:
        for f in PATH_FILTERS:
            row = _threshold_row(f, "run", r.draw, r.seed, q, offset, r.T[f], r.selected[f])
            if np.isinf(r.T[f]):
                row["note"] = no_selection_message(r.W[f], q, offset, r.copies)
            threshold_rows.append(row)
    threshold_rows += _aggregate_threshold_rows(runs, filters, selection, n_units, alpha)
    filters = {
        f: _Filter(expand(v.kept), expand(v.W), expand(v.frequency), expand(v.qvalue))
        for f, v in filters.items()
    }

    selected_rows = []
    for f in FILTERS:
        flt = filters[f]
        idx = np.flatnonzero(flt.kept)
        idx = idx[np.argsort(-flt.W[idx], kind="stable")]
        selected_rows.append(
            pd.DataFrame(
                {
                    "filter": f,
                    "feature": features[idx],
                    "W": flt.W[idx],
                    "frequency": flt.frequency[idx],
                    "qvalue": flt.qvalue[idx],
                    "group": group_of[idx],
                }
            )
        )

    values = run_effects(runs, meta["task"])
    effect, spread = effect_summary(values)
    magnitude = np.mean([r.magnitude for r in runs], axis=0)
    sds = np.asarray(meta["sds"], dtype=float)
    direction = effect_direction(values, meta["task"])
    group_values = values if labels is None else run_effects(runs, meta["task"], labels)
    table: dict[str, Any] = {"feature": features, "mean": meta["means"], "sd": sds}
    names = {"OL": ("OL_z", "OL_z_knockoff"), "ML": ("ML_g", "ML_g_knockoff")}
    for f in PATH_FILTERS:
        z, zk = combined_pair(runs, f, first_draw, combine)
        table.update(
            {
                names[f][0]: z,
                names[f][1]: strongest_knockoff(zk),
                f"{f}_W": filters[f].W,
                f"{f}_frequency": expand(freq[f]),
                f"{f}_qvalue": filters[f].qvalue,
            }
        )
    table.update(
        {
            "evalue": expand(e_mean),
            "ebh_frequency": expand(e_frequency),
            "ebh_qvalue": filters["ebh"].qvalue,
        }
    )
    for f in FILTERS:
        table[f"selected_{f}"] = filters[f].kept
    table.update(
        {
            "effect_sd": effect,
            "effect_sd_spread": spread,
            "effect_unit": effect / sds,
            "effect_magnitude_sd": magnitude,
            "direction": direction,
            "group_effect_sd": group_values.mean(axis=0),
            "group_direction": effect_direction(group_values, meta["task"]),
            "group": group_of,
            "group_size": group_size,
        }
    )
    return {
        "statistics": statistics,
        "thresholds": pd.DataFrame(threshold_rows),
        "selected": pd.concat(selected_rows, ignore_index=True),
        "features": pd.DataFrame(table),
    }


def _threshold_row(flt, scope, draw, seed, q, offset, T, kept) -> dict[str, Any]:
    return {
        "filter": flt,
        "scope": scope,
        "draw": draw,
        "seed": seed,
        "q": q,
        "offset": offset,
        "T": T,
        "n_selected": int(np.count_nonzero(kept)),
        "note": "",
    }


def _statistics_table(
    runs: list[RunStats],
    features: np.ndarray,
    e_draw: dict[int, np.ndarray],
    ebh_stat: str,
    expand: Any,
) -> pd.DataFrame:
    rows = []
    for r in runs:
        for f in PATH_FILTERS:
            orig, knock = r.importance[f]
            frame = pd.DataFrame(
                {
                    "draw": r.draw,
                    "seed": r.seed,
                    "filter": f,
                    "feature": features,
                    "z": orig,
                    "z_knockoff": strongest_knockoff(knock),
                    "W": expand(r.W[f]),
                    "qvalue": expand(r.qvalue[f]),
                    "evalue": expand(e_draw[r.draw]) if f == ebh_stat else np.nan,
                    "selected": expand(r.selected[f]),
                    "threshold": r.T[f],
                }
            )
            for key in RUN_KEYS:
                frame[key] = r.scores[key]
            frame["metric"] = r.metric
            rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def _aggregate_threshold_rows(
    runs: list[RunStats], filters: dict[str, _Filter], selection: dict, p: int, alpha: float
) -> list[dict[str, Any]]:
    q, offset = selection["q"], selection["offset"]
    n_runs = len(runs)
    rows = []
    for f, ratio, pool in (
        ("VWA-OL", selection["vwa_ratio"], n_runs),
        ("VWA-ML", selection["vwa_ratio"], n_runs),
        ("VWA-OML", selection["vwa_oml_ratio"], 2 * n_runs),
    ):
        kept = filters[f].kept
        note = ""
        if not kept.any():
            base = "ML" if f == "VWA-ML" else "OL"
            empty_runs = sum(np.isinf(r.T[base]) for r in runs)
            note = (
                f"No feature was selected in at least {ratio:.0%} of the {pool} runs; "
                f"{empty_runs} of {n_runs} single runs of {base} had no threshold (T = inf)."
            )
        row = _threshold_row(f, "filter", None, None, q, offset, np.nan, kept)
        rows.append(row | {"note": note})
    k = int(filters["ebh"].kept.sum())
    note = ""
    if not k:
        note = (
            f"e-BH selected nothing: no set of k features had mean e-values all >= p/(k q) "
            f"(p = {p}, q = {q}); each draw's e-values come from its knockoff+ filter at level "
            f"{alpha:g}, which selected too few features, or different ones in different draws."
        )
    row = _threshold_row("ebh", "filter", None, None, q, 1, p / (k * q) if k else np.inf, k)
    rows.append(row | {"n_selected": k, "note": note})
    return rows
