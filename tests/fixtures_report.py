"""Synthetic `results/{cohort}/` directories in the formats the report reads.

The numbers are made up but internally consistent (thresholds, q-values, selections and
frequencies are computed from the fake W with the real knockoff+ rule), so the report can
be rendered and inspected without training a network.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from knockoffnet.pruning import STRUCTURE_COLUMNS
from knockoffnet.selection import effect_direction, effect_summary

WDBC_NAMES = [
    f"{base}_{kind}"
    for kind in ("mean", "se", "worst")
    for base in (
        "radius",
        "texture",
        "perimeter",
        "area",
        "smoothness",
        "compactness",
        "concavity",
        "concave_points",
        "symmetry",
        "fractal_dimension",
    )
]
HIDDEN = [8, 4]
Q = 0.25
OFFSET = 1
VWA_RATIO = 0.5
VWA_OML_RATIO = 0.25
N_DRAWS = 2


def write_fake_results(
    results_dir: Path,
    *,
    task: str = "binary",
    empty: bool = False,
    n_seeds: int = 3,
    p: int = 12,
) -> None:
    """Write every file the report reads; `empty=True` mimics a global null (nothing selected)."""
    results_dir = Path(results_dir)
    for sub in ("data", "knockoffs", "z", "pruning", "benchmarks"):
        (results_dir / sub).mkdir(parents=True, exist_ok=True)
    names = _feature_names(p)
    classes = ["benign", "malignant"] if task == "binary" else ["low", "intermediate", "high"]
    n_signal = 0 if empty else max(1, p // 2 if task == "binary" else 5 * p // 6)
    rng = np.random.default_rng(7 if task == "binary" else 11)
    means = rng.uniform(0.05, 150.0, p).round(4)
    sds = (means * rng.uniform(0.05, 0.5, p)).round(5)

    _write_meta(results_dir, names, means, sds, task, classes)
    _write_labels(results_dir, classes)
    _write_diagnostics(results_dir, flag_second=empty)
    runs = [(d, s) for d in range(N_DRAWS) for s in range(n_seeds)]
    for d, s in runs:
        _write_path(results_dir, d, s, p, n_out=1 if task == "binary" else len(classes))
    stats, thresholds = _statistics(names, runs, n_signal, empty, salt=len(classes))
    stats.to_csv(results_dir / "statistics.tsv", sep="\t", index=False)
    agg, selections = _aggregate(stats, names, runs)
    pd.concat([thresholds, agg], ignore_index=True).to_csv(
        results_dir / "thresholds.tsv", sep="\t", index=False
    )
    _write_selected(results_dir, stats, selections, runs)
    _write_features(
        results_dir, stats, selections, names, means, sds, n_signal, rng, task, len(runs)
    )
    recommended = "VWA-OL"
    if not empty:
        _write_pruning(results_dir, selections, p, task, len(classes), rng)
    _write_run(results_dir, runs, recommended)
    _write_benchmarks(results_dir / "benchmarks", runs)


def write_fake_simulation(root: Path, features: list[str]) -> tuple[Path, list[Path]]:
    """A simulated cohort's truth JSON and 3 replicates' score CSVs (replicate 0 is this
    cohort) in the formats of rule `simulate_score`; the first 4 features are relevant."""
    rng = np.random.default_rng(3)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    truth = {
        "design": "fake-design",
        "replicate": 0,
        "generator": "teacher",
        "params": {"p": len(features), "s": 4, "distribution": "normal", "classes": 2},
        "n": 569,
        "p": len(features),
        "seed": 1,
        "relevant": features[:4],
    }
    truth_path = root / "rep0_truth.json"
    truth_path.write_text(json.dumps(truth))
    paths = []
    filters = ("OL", "ML", "VWA-OL", "VWA-ML", "VWA-OML", "ebh", "peer-rf")
    for rep in range(3):
        rows = []
        for k, flt in enumerate(filters):
            for q in (0.05, 0.1, Q, 0.5):
                n_sel = int(rng.integers(0, 8))
                false = int(rng.integers(0, n_sel + 1))
                power = (n_sel - false) / 4 if n_sel - false <= 4 else 1.0
                fdp = false / max(1, n_sel)
                rows.append(["fake-design", rep, flt, q, n_sel, fdp, power + 0 * k])
        cols = ["design", "replicate", "filter", "q", "n_selected", "fdp", "power"]
        path = root / f"rep{rep}.csv"
        pd.DataFrame(rows, columns=cols).to_csv(path, index=False)
        paths.append(path)
    return truth_path, paths


def _feature_names(p: int) -> list[str]:
    return [WDBC_NAMES[j] if j < len(WDBC_NAMES) else f"x{j + 1}" for j in range(p)]


def _write_meta(results_dir, names, means, sds, task, classes) -> None:
    meta = {
        "cohort": "fake",
        "source": "resources/fake.csv",
        "features": names,
        "means": means.tolist(),
        "sds": sds.tolist(),
        "task": task,
        "classes": classes,
        "n": 569,
        "p": len(names),
        "ids": "sample",
        "label": "diagnosis",
        "dropped": {
            "constant": ["all_zero"],
            "duplicate": ["radius_copy"],
            "rows_missing": 3,
            "missing_policy": "drop-rows",
            "categorical_onehot": [],
        },
    }
    (results_dir / "data" / "meta.json").write_text(json.dumps(meta, indent=1))


def _write_labels(results_dir, classes) -> None:
    counts = [357, 212] if len(classes) == 2 else [250, 200, 119]
    pd.DataFrame({"class": classes, "code": range(len(classes)), "count": counts}).to_csv(
        results_dir / "labels.tsv", sep="\t", index=False
    )


def _write_diagnostics(results_dir, flag_second: bool) -> None:
    for d in range(N_DRAWS):
        flag = flag_second and d == 1
        row = {
            "draw": d,
            "method": "model-x",
            "s_method": "mvr",
            "covariance": "ledoit-wolf",
            "mean_s": 0.41,
            "min_s": 0.08,
            "max_dev_xx": 0.012,
            "max_dev_kk": 0.031 + 0.2 * flag,
            "max_dev_xk": 0.027,
            "mean_abs_pair_corr": 0.58,
            "swap_stat": 0.9 + 3 * flag,
            "swap_pvalue": 0.0004 if flag else 0.43,
            "flag": flag,
            "message": (
                "Knockoff-knockoff correlations differ from the original features' by up to 0.23;"
                " exchangeability looks violated, so FDR control may not hold."
                if flag
                else ""
            ),
        }
        pd.DataFrame([row]).to_csv(
            results_dir / "knockoffs" / f"draw{d}_diagnostics.tsv", sep="\t", index=False
        )


def _write_path(results_dir, d: int, s: int, p: int, n_out: int) -> None:
    rng = np.random.default_rng(100 * d + s)
    lam = np.geomspace(0.5, 0.5e-3, 25)
    frac = 1.0 / (1.0 + np.exp(-(np.arange(25) - 10 - rng.normal(0, 1.5)) / 2.5))
    sizes = [(HIDDEN[0], 2 * p), (HIDDEN[1], HIDDEN[0]), (n_out, HIDDEN[1])]
    loss = 0.12 + 0.5 * np.exp(-np.arange(25) / 4) + 0.002 * (np.arange(25) - 14) ** 2 / 4
    loss = loss + rng.normal(0, 0.004, 25)
    df = pd.DataFrame(
        {
            "lambda": lam,
            "epochs": rng.integers(12, 120, 25),
            "best_epoch": rng.integers(2, 110, 25),
            "val_objective": loss + lam * 0.1,
            "val_loss": loss,
            "val_accuracy": 1 - loss / 2,
        }
    )
    for layer, (o, i) in enumerate(sizes):
        df[f"nnz_layer{layer}"] = np.round(frac * o * i * (0.9 - 0.2 * layer)).astype(int)
    df["chosen"] = np.arange(25) == int(np.argmin(df["val_objective"]))
    df.to_csv(results_dir / "z" / f"draw{d}_seed{s}_path.tsv", sep="\t", index=False)


def _threshold(w: np.ndarray, q: float, offset: int) -> float:
    """Knockoff(+) threshold T = min{t in |W|: (offset + #{W <= -t}) / max(1, #{W >= t}) <= q}."""
    for t in np.sort(np.abs(w[w != 0])):
        if (offset + np.sum(w <= -t)) / max(1, np.sum(w >= t)) <= q:
            return float(t)
    return math.inf


def _qvalues(w: np.ndarray, offset: int) -> np.ndarray:
    """Smallest q at which each feature would be selected (1 when never)."""
    ts = np.sort(np.abs(w[w != 0]))
    fdp = np.array([(offset + np.sum(w <= -t)) / max(1, np.sum(w >= t)) for t in ts])
    out = np.ones(len(w))
    for j, wj in enumerate(w):
        if wj > 0:
            out[j] = min(1.0, float(np.min(fdp[ts <= wj])))
    return out


def _inf_note(q: float) -> str:
    need = math.ceil(1 / q)
    return (
        f"T = \u221e: no threshold brings the estimated false discovery proportion down to "
        f"q = {q:g}. With knockoff+ at least {need} features must beat their knockoffs, with no "
        "knockoff beating its original by as much, before anything can be selected; "
        "so nothing is selected."
    )


def _statistics(names, runs, n_signal, empty, salt: int):
    p = len(names)
    rows, trows = [], []
    for d, s in runs:
        rng = np.random.default_rng(1000 * salt + 10 * d + s)
        z = rng.gamma(2.0, 0.02, p)
        zk = rng.gamma(2.0, 0.02, p)
        z[:n_signal] += rng.uniform(0.15, 0.4, n_signal)
        if n_signal > 1 and s % 2 == 1:
            z[n_signal - 1] = zk[n_signal - 1] * 0.8  # a borderline signal missed in some runs
        w_ml, wk_ml = rng.normal(1.0, 0.3, p), rng.normal(1.0, 0.3, p)
        for flt, a, b in (("OL", z, zk), ("ML", z * w_ml, zk * wk_ml)):
            w = np.where(a >= b, np.maximum(a, b), -np.maximum(a, b))
            if flt == "ML":
                w = a**2 - b**2
            t = math.inf if empty else _threshold(w, Q, OFFSET)
            sel = w >= t
            qv = _qvalues(w, OFFSET)
            e = p * sel / (OFFSET + np.sum(w <= -t)) if np.isfinite(t) else np.zeros(p)
            # dense, chosen, GB scores; the dense fit's kept decay (seed 1 kept the undecayed)
            fit = [0.70 + 0.01 * s, 0.80 + 0.01 * s, 0.82, 0.0 if s == 1 else 10.0, "accuracy"]
            for j in range(p):
                rows.append(
                    [d, s, flt, names[j], a[j], b[j], w[j], qv[j], e[j], bool(sel[j]), t, *fit]
                )
            note = "" if np.isfinite(t) else _inf_note(Q)
            trows.append([flt, d, s, Q, OFFSET, t, int(sel.sum()), note])
    cols = [
        "draw",
        "seed",
        "filter",
        "feature",
        "z",
        "z_knockoff",
        "W",
        "qvalue",
        "evalue",
        "selected",
        "threshold",
        "dense_score",
        "chosen_score",
        "reference_score",
        "dense_decay",
        "metric",
    ]
    tcols = ["filter", "draw", "seed", "q", "offset", "T", "n_selected", "note"]
    return pd.DataFrame(rows, columns=cols), pd.DataFrame(trows, columns=tcols)


def _aggregate(stats, names, runs):
    """VWA votes and e-BH over runs, as the select rule would do."""
    p, n_runs = len(names), len(runs)
    freq = {
        flt: stats[stats["filter"] == flt].groupby("feature")["selected"].mean().reindex(names)
        for flt in ("OL", "ML")
    }
    pooled = (freq["OL"] + freq["ML"]) / 2
    ebar = stats[stats["filter"] == "OL"].groupby("feature")["evalue"].mean().reindex(names)
    order = np.argsort(-ebar.to_numpy())
    k_star = max([k for k in range(1, p + 1) if ebar.iloc[order[k - 1]] >= p / (Q * k)], default=0)
    ebh = set(np.array(names)[order[:k_star]])
    selections = {
        "VWA-OL": set(freq["OL"].index[freq["OL"] >= VWA_RATIO]),
        "VWA-ML": set(freq["ML"].index[freq["ML"] >= VWA_RATIO]),
        "VWA-OML": set(pooled.index[pooled >= VWA_OML_RATIO]),
        "ebh": ebh,
    }
    rows = []
    for flt, ratio in (("VWA-OL", VWA_RATIO), ("VWA-ML", VWA_RATIO), ("VWA-OML", VWA_OML_RATIO)):
        note = (
            ""
            if selections[flt]
            else (f"No feature was selected in at least {ratio:.0%} of the {n_runs} runs.")
        )
        rows.append([flt, None, None, Q, OFFSET, ratio, len(selections[flt]), note])
    t_ebh = p / (Q * k_star) if k_star else math.inf
    note = (
        ""
        if k_star
        else (
            "T = \u221e: no averaged e-value reached p/(q\u00b7k) for any k, so e-BH selects nothing."
        )
    )
    rows.append(["ebh", None, None, Q, OFFSET, t_ebh, k_star, note])
    tcols = ["filter", "draw", "seed", "q", "offset", "T", "n_selected", "note"]
    selections["freq"] = freq
    selections["ebar"] = ebar
    return pd.DataFrame(rows, columns=tcols), selections


def _write_selected(results_dir, stats, selections, runs) -> None:
    ref = stats[(stats["draw"] == runs[0][0]) & (stats["seed"] == runs[0][1])]
    med = stats.groupby(["filter", "feature"])[["W", "qvalue"]].median()
    freq = selections["freq"]
    rows = []
    for flt in ("OL", "ML"):
        part = ref[(ref["filter"] == flt) & ref["selected"]]
        for _, r in part.iterrows():
            rows.append([flt, r["feature"], r["W"], freq[flt][r["feature"]], r["qvalue"]])
    for flt in ("VWA-OL", "VWA-ML", "VWA-OML", "ebh"):
        base = "ML" if flt == "VWA-ML" else "OL"
        for f in sorted(selections[flt], key=lambda f: -freq[base][f]):
            rows.append(
                [flt, f, med.loc[(base, f), "W"], freq[base][f], med.loc[(base, f), "qvalue"]]
            )
    pd.DataFrame(rows, columns=["filter", "feature", "W", "frequency", "qvalue"]).to_csv(
        results_dir / "selected.tsv", sep="\t", index=False
    )


def _write_features(
    results_dir, stats, selections, names, means, sds, n_signal, rng, task, n_runs
) -> None:
    mean = stats.groupby(["filter", "feature"])[["z", "z_knockoff", "W"]].mean()
    med_q = stats.groupby(["filter", "feature"])["qvalue"].median()
    freq = selections["freq"]
    ref = stats[(stats["draw"] == 0) & (stats["seed"] == 0)].set_index(["filter", "feature"])
    effect = np.where(
        np.arange(len(names)) < n_signal,
        rng.uniform(0.3, 1.2, len(names)) * np.resize([1, -1], len(names)),
        rng.normal(0, 0.04, len(names)),
    )
    # each run's effect: the feature's effect plus run-to-run noise of its own size; the
    # table's columns from those runs as selection.py makes them (direction: every run agrees)
    noise = rng.uniform(0.03, 0.15, len(names))
    values = effect + noise * np.random.default_rng(3).standard_normal((n_runs, len(names)))
    effect, spread = effect_summary(values)
    df = pd.DataFrame({"feature": names, "mean": means, "sd": sds})
    for flt, a, b in (("OL", "OL_z", "OL_z_knockoff"), ("ML", "ML_g", "ML_g_knockoff")):
        df[a] = [mean.loc[(flt, f), "z"] for f in names]
        df[b] = [mean.loc[(flt, f), "z_knockoff"] for f in names]
        df[f"{flt}_W"] = [mean.loc[(flt, f), "W"] for f in names]
        df[f"{flt}_frequency"] = freq[flt].to_numpy()
        df[f"{flt}_qvalue"] = [med_q[(flt, f)] for f in names]
    df["evalue"] = selections["ebar"].to_numpy()
    for flt in ("OL", "ML"):
        df[f"selected_{flt}"] = [bool(ref.loc[(flt, f), "selected"]) for f in names]
    for flt in ("VWA-OL", "VWA-ML", "VWA-OML", "ebh"):
        df[f"selected_{flt}"] = [f in selections[flt] for f in names]
    df["effect_sd"] = effect
    df["effect_sd_spread"] = spread
    df["effect_unit"] = effect / sds
    df["direction"] = effect_direction(values, task)
    df.to_csv(results_dir / "features.tsv", sep="\t", index=False)


def _masks(n_in: int, n_out: int, rng) -> list[np.ndarray]:
    """Random Reduce Weight masks (out, in) with one hidden neuron removed entirely."""
    sizes = [n_in, *HIDDEN, n_out]
    masks = [rng.random((sizes[i + 1], sizes[i])) > 0.45 for i in range(len(sizes) - 1)]
    masks[0][2, :] = False  # hidden neuron 3 of layer 1 loses every input: it is removed
    masks[1][:, 5] = False  # hidden neuron 6 of layer 1 loses every output: removed too
    masks[-1][:, 0] = True
    return masks


def _write_pruning(results_dir, selections, p, task, k, rng) -> None:
    n_out = 1 if task == "binary" else k
    sel_ol = {f for f, v in selections["freq"]["OL"].items() if v >= 0.5}
    filters = {
        "OL": sel_ol,
        "ML": selections["VWA-ML"],
        "VWA-OL": selections["VWA-OL"],
        "VWA-ML": selections["VWA-ML"],
        "VWA-OML": selections["VWA-OML"],
        "ebh": selections["ebh"],
    }
    srows, sumrows, prows = [], [], []
    for flt, feats in filters.items():
        if not feats:
            continue
        masks = _masks(len(feats), n_out, rng)
        inputs = np.array(sorted(feats))
        np.savez(
            results_dir / "pruning" / f"masks_{flt}.npz",
            inputs=inputs,
            **{f"mask{i}": m for i, m in enumerate(masks)},
        )
        srows += _structure_rows(flt, masks)
        before = sum(m.size for m in masks)
        after = sum(int(m.sum()) for m in masks)
        neurons = sum(m.shape[0] for m in masks[:-1])  # hidden neurons only
        removed = sum(r[-1] for r in srows if r[0] == flt)
        sumrows.append([flt, before, after, neurons, neurons - removed, 2 * before, 2 * after])
        prows += _prediction_rows(flt, len(feats), rng)
    prows += _prediction_rows("all features", p, rng)
    pd.DataFrame(
        srows,
        columns=["filter", *STRUCTURE_COLUMNS],
    ).to_csv(results_dir / "pruning" / "structure.tsv", sep="\t", index=False)
    pd.DataFrame(
        sumrows,
        columns=[
            "filter",
            "weights_before",
            "weights_after",
            "neurons_before",
            "neurons_after",
            "flops_before",
            "flops_after",
        ],
    ).to_csv(results_dir / "pruning" / "summary.tsv", sep="\t", index=False)
    pd.DataFrame(
        prows,
        columns=[
            "filter",
            "method",
            "n_features",
            "accuracy_mean",
            "accuracy_sd",
            "auc_mean",
            "auc_sd",
            "f1_mean",
            "f1_sd",
            "seconds_mean",
            "seconds_sd",
        ],
    ).to_csv(results_dir / "pruning" / "prediction.tsv", sep="\t", index=False)


def _structure_rows(flt: str, masks: list[np.ndarray]) -> list[list]:
    rows = []
    for layer in range(len(masks) - 1):  # 0-based hidden layer fed by masks[layer]
        inc, out = masks[layer], masks[layer + 1]
        for i in range(inc.shape[0]):
            ik, ok = int(inc[i].sum()), int(out[:, i].sum())
            rows.append(
                [
                    flt,
                    layer,
                    i,
                    ik,
                    inc.shape[1] - ik,
                    ok,
                    out.shape[0] - ok,
                    bool(ik == 0 or ok == 0),
                ]
            )
    return rows


def _prediction_rows(flt: str, n_features: int, rng) -> list[list]:
    rows = []
    for method, bonus in (("General", 0.0), ("Dropout", -0.01), ("Reduce Weight", 0.004)):
        acc = 0.93 + bonus + rng.normal(0, 0.01)
        rows.append(
            [
                flt,
                method,
                n_features,
                acc,
                0.015,
                acc + 0.03,
                0.01,
                acc - 0.01,
                0.02,
                10 + rng.normal(0, 1),
                0.4,
            ]
        )
    return rows


def _write_run(results_dir, runs, recommended) -> None:
    config = {
        "cohorts": {
            "fake": {
                "path": "resources/fake.csv",
                "label": "diagnosis",
                "id": "sample",
                "task": "auto",
                "positive": None,
            }
        },
        "seed": 2026,
        "preprocess": {
            "missing": "drop-rows",
            "categorical": "error",
            "constant": "drop",
            "duplicate": "drop",
        },
        "knockoffs": {
            "draws": N_DRAWS,
            "method": "model-x",
            "covariance": "ledoit-wolf",
            "s_method": "mvr",
            "max_block": 500,
        },
        "network": {"hidden": HIDDEN, "activation": "relu"},
        "training": {
            "seeds": len(runs) // N_DRAWS,
            "lambdas": {"count": 25, "ratio": 0.001},
            "patience": 10,
            "max_epochs": 300,
            "optimizer": "momentum",
        },
        "selection": {
            "q": Q,
            "offset": OFFSET,
            "vwa_ratio": VWA_RATIO,
            "vwa_oml_ratio": VWA_OML_RATIO,
            "ebh": {"alpha_kn": None, "offset": 1, "statistic": "OL"},
            "recommended": recommended,
        },
        "pruning": {"deletion_rate": 0.5, "repeats": 10, "dropout": 0.5},
    }
    run = {
        "config": config,
        "versions": {
            "python": "3.11.7",
            "numpy": "2.4.6",
            "torch": "2.13.0",
            "snakemake": "9.27.1",
            "knockoffnet": "0.1.0",
        },
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "inputs": {"resources/fake.csv": hashlib.sha256(b"fake").hexdigest()},
        "seeds": {
            "master": 2026,
            "knockoffs": [11 + d for d in range(N_DRAWS)],
            "training": sorted({s for _, s in runs}),
        },
        "created": "2026-07-01T12:00:00+00:00",
        "recommended_filter": recommended,
    }
    (results_dir / "run.json").write_text(json.dumps(run, indent=1))


def _write_benchmarks(bench_dir: Path, runs) -> None:
    cols = [
        "s",
        "h:m:s",
        "max_rss",
        "max_vms",
        "max_uss",
        "max_pss",
        "io_in",
        "io_out",
        "mean_load",
        "cpu_time",
    ]
    jobs = {
        "ingest": [None],
        "knockoffs": [f"draw{d}" for d in range(N_DRAWS)],
        "train": [f"draw{d}_seed{s}_chunk0" for d, s in runs],
        "select": [None],
    }
    for i, (rule, wcs) in enumerate(jobs.items()):
        for k, wc in enumerate(wcs):
            path = bench_dir / f"{rule}.tsv" if wc is None else bench_dir / rule / f"{wc}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            sec = 1.5 + 20 * (rule == "train") + k
            row = [
                sec,
                f"0:00:{int(sec):02d}",
                180.0 + 50 * i,
                900.0,
                170.0,
                172.0,
                0.1,
                2.0,
                88.0,
                sec * 0.9,
            ]
            pd.DataFrame([row], columns=cols).to_csv(path, sep="\t", index=False)
