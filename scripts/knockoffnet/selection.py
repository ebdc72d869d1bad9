"""From the Z of every run (knockoff draw × training seed) to the selection tables.

This is the glue between the per-run statistics (``statistics``), the knockoff threshold
(``filters``) and the aggregation over runs (``aggregation``); it only arranges their outputs
into the tables the workflow publishes (``selected.tsv``, ``features.tsv``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.aggregation import ebh, ebh_qvalues, knockoff_evalues, vwa
from knockoffnet.filters import knockoff_qvalues, knockoff_threshold, no_selection_message
from knockoffnet.statistics import multi_layer, one_layer

FILTERS = ["OL", "ML", "VWA-OL", "VWA-ML", "VWA-OML", "ebh"]


@dataclass
class RunStats:
    """The One Layer and Multiple Layers statistics of one run."""

    draw: int
    seed: int
    importance: dict[str, tuple[np.ndarray, np.ndarray]]  # filter -> (original, knockoff)
    W: dict[str, np.ndarray]
    T: dict[str, float]
    selected: dict[str, np.ndarray]
    qvalue: dict[str, np.ndarray]
    evalue: np.ndarray
    effects: np.ndarray  # (p, K) mean d(output)/dx per SD


def run_statistics(
    run: dict[str, np.ndarray], draw: int, seed: int, p: int, selection: dict[str, Any]
) -> RunStats:
    """W, threshold, selection and q-values of both filters for one trained path."""
    n_layers = sum(1 for k in run if k.startswith("Z"))
    Z0 = run["Z0"]
    weights = [run[f"W{layer}"] for layer in range(n_layers)]
    z, zk, w_ol = one_layer(Z0, p)
    g, gk, w_ml, _ = multi_layer(Z0, weights, p)
    q, offset = selection["q"], selection["offset"]
    stats = {"OL": w_ol, "ML": w_ml}
    T = {f: knockoff_threshold(W, q, offset) for f, W in stats.items()}
    alpha = selection["ebh_alpha"] if selection["ebh_alpha"] is not None else q / 2
    return RunStats(
        draw=draw,
        seed=seed,
        importance={"OL": (z, zk), "ML": (g, gk)},
        W=stats,
        T=T,
        selected={f: stats[f] >= T[f] for f in stats},
        qvalue={f: knockoff_qvalues(W, offset) for f, W in stats.items()},
        evalue=knockoff_evalues(stats[selection["ebh_statistic"]], alpha, offset=1),
        effects=np.asarray(run["effects"], dtype=float).reshape(p, -1),
    )


def effect_summary(runs: list[RunStats], task: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-SD effect and its spread over runs.

    Binary: d log-odds of the positive class; regression: outcome units; multiclass: the mean
    absolute derivative of the centred class logits (a size without a single direction).
    """
    per_run = np.stack([r.effects for r in runs])  # (R, p, K)
    if task == "multiclass" and per_run.shape[2] > 1:
        centred = per_run - per_run.mean(axis=2, keepdims=True)
        values = np.abs(centred).mean(axis=2)
    else:
        values = per_run[:, :, 0]
    spread = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(values.shape[1])
    return values.mean(axis=0), spread


def build_tables(
    runs: list[RunStats], meta: dict[str, Any], selection: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """statistics, thresholds, selected and features tables (formats in docs/architecture.md)."""
    features = np.asarray(meta["features"])
    p = len(features)
    q, offset = selection["q"], selection["offset"]
    first = runs[0]
    n_runs = len(runs)

    stat_rows = []
    threshold_rows = []
    for r in runs:
        for f in ("OL", "ML"):
            orig, knock = r.importance[f]
            stat_rows.append(
                pd.DataFrame(
                    {
                        "draw": r.draw,
                        "seed": r.seed,
                        "filter": f,
                        "feature": features,
                        "z": orig,
                        "z_knockoff": knock,
                        "W": r.W[f],
                        "qvalue": r.qvalue[f],
                        "evalue": r.evalue if f == selection["ebh_statistic"] else np.nan,
                        "selected": r.selected[f],
                        "threshold": r.T[f],
                    }
                )
            )
            threshold_rows.append(
                {
                    "filter": f,
                    "draw": r.draw,
                    "seed": r.seed,
                    "q": q,
                    "offset": offset,
                    "T": r.T[f],
                    "n_selected": int(r.selected[f].sum()),
                    "note": no_selection_message(r.W[f], q, offset) if np.isinf(r.T[f]) else "",
                }
            )
    statistics = pd.concat(stat_rows, ignore_index=True)

    sel = {f: np.stack([r.selected[f] for r in runs]) for f in ("OL", "ML")}
    W_all = {f: np.stack([r.W[f] for r in runs]) for f in ("OL", "ML")}
    q_all = {f: np.stack([r.qvalue[f] for r in runs]) for f in ("OL", "ML")}
    kept_ol, freq_ol = vwa(sel["OL"], selection["vwa_ratio"])
    kept_ml, freq_ml = vwa(sel["ML"], selection["vwa_ratio"])
    kept_oml, freq_oml = vwa(np.vstack([sel["OL"], sel["ML"]]), selection["vwa_oml_ratio"])
    e_mean = np.stack([r.evalue for r in runs]).mean(axis=0)
    kept_ebh = ebh(e_mean, q)
    q_ebh = ebh_qvalues(e_mean)
    ebh_stat = selection["ebh_statistic"]

    chosen = {
        "OL": (first.selected["OL"], first.W["OL"], freq_ol, first.qvalue["OL"]),
        "ML": (first.selected["ML"], first.W["ML"], freq_ml, first.qvalue["ML"]),
        "VWA-OL": (kept_ol, np.median(W_all["OL"], 0), freq_ol, np.median(q_all["OL"], 0)),
        "VWA-ML": (kept_ml, np.median(W_all["ML"], 0), freq_ml, np.median(q_all["ML"], 0)),
        "VWA-OML": (
            kept_oml,
            np.median(W_all["OL"], 0),
            freq_oml,
            np.median(np.vstack([q_all["OL"], q_all["ML"]]), 0),
        ),
        "ebh": (
            kept_ebh,
            np.median(W_all[ebh_stat], 0),
            freq_ol if ebh_stat == "OL" else freq_ml,
            q_ebh,
        ),
    }
    selected_rows = []
    for f in FILTERS:
        kept, W, freq, qv = chosen[f]
        idx = np.flatnonzero(kept)
        idx = idx[np.argsort(-W[idx], kind="stable")]
        selected_rows.append(
            pd.DataFrame(
                {
                    "filter": f,
                    "feature": features[idx],
                    "W": W[idx],
                    "frequency": freq[idx],
                    "qvalue": qv[idx],
                }
            )
        )
    selected = pd.concat(selected_rows, ignore_index=True)

    for f, kept, ratio, pool in (
        ("VWA-OL", kept_ol, selection["vwa_ratio"], n_runs),
        ("VWA-ML", kept_ml, selection["vwa_ratio"], n_runs),
        ("VWA-OML", kept_oml, selection["vwa_oml_ratio"], 2 * n_runs),
    ):
        note = ""
        if not kept.any():
            base = "ML" if f == "VWA-ML" else "OL"
            empty_runs = sum(np.isinf(r.T[base]) for r in runs)
            note = (
                f"No feature was selected in at least {ratio:.0%} of the {pool} runs; "
                f"{empty_runs} of {n_runs} single runs of {base} had no threshold (T = inf)."
            )
        threshold_rows.append(
            {
                "filter": f,
                "draw": None,
                "seed": None,
                "q": q,
                "offset": offset,
                "T": np.nan,
                "n_selected": int(kept.sum()),
                "note": note,
            }
        )
    k = int(kept_ebh.sum())
    threshold_rows.append(
        {
            "filter": "ebh",
            "draw": None,
            "seed": None,
            "q": q,
            "offset": 1,
            "T": p / (k * q) if k else np.inf,
            "n_selected": k,
            "note": ""
            if k
            else (
                f"e-BH selected nothing: no set of k features had mean e-values all >= p/(k q) "
                f"(p = {p}, q = {q}). The per-run knockoff+ filters at level "
                f"{selection['ebh_alpha'] or q / 2:g} rarely selected the same features."
            ),
        }
    )
    thresholds = pd.DataFrame(threshold_rows)

    effect, spread = effect_summary(runs, meta["task"])
    sds = np.asarray(meta["sds"], dtype=float)
    stat_frame = {
        "OL": [np.median(np.stack([r.importance["OL"][i] for r in runs]), 0) for i in (0, 1)],
        "ML": [np.median(np.stack([r.importance["ML"][i] for r in runs]), 0) for i in (0, 1)],
    }
    direction = np.where(effect > 0, "+", np.where(effect < 0, "−", "0"))
    if meta["task"] == "multiclass":
        direction = np.full(p, "±")
    table = {
        "feature": features,
        "mean": meta["means"],
        "sd": sds,
        "OL_z": stat_frame["OL"][0],
        "OL_z_knockoff": stat_frame["OL"][1],
        "OL_W": np.median(W_all["OL"], 0),
        "OL_frequency": freq_ol,
        "OL_qvalue": np.median(q_all["OL"], 0),
        "ML_g": stat_frame["ML"][0],
        "ML_g_knockoff": stat_frame["ML"][1],
        "ML_W": np.median(W_all["ML"], 0),
        "ML_frequency": freq_ml,
        "ML_qvalue": np.median(q_all["ML"], 0),
        "evalue": e_mean,
        "ebh_qvalue": q_ebh,
    }
    for f in FILTERS:
        table[f"selected_{f}"] = chosen[f][0]
    table.update(
        {
            "effect_sd": effect,
            "effect_sd_spread": spread,
            "effect_unit": effect / sds,
            "direction": direction,
        }
    )
    return {
        "statistics": statistics,
        "thresholds": thresholds,
        "selected": selected,
        "features": pd.DataFrame(table),
    }
