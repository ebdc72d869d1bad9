"""Why the λ path misses the orange skin's even signals at n = 400 (issue 14): a diagnostic.

For each replicate of a finished study run it fits the seed's dense network, λ grid and path
from the stored [X, X~] (the package's functions, the schema's default settings for a binary
cohort) under a few training variants, and reports what the statistics then see: the chosen
network's validation accuracy minus gradient boosting's on the same split, and where the
relevant features land in the ML importance averaged over the seeds (W_j = importance of x_j
against its knockoff copies' by the study's multi-knockoff statistic; the share with W_j > 0, the share ranked among
the top as many features as are relevant, and the power of knockoff+ at q = 0.1 on that W,
which also sees how far the nulls' negative W reach). Variants (``--variants``):

* ``default``: the settings before 2026-12-07 (patience 20 checks, at most 300; ``auto``
  now resolves to 150 and 1,000 at these 320 training rows, the ``patience 150`` row);
* ``patience 60``: three times the patience;
* ``patience 150``: 7.5 times the patience, at most 1,000 checks;
* ``dense patience 150``: the longer patience for the seed's dense fit only, every λ of the
  path at the default (is escaping the plateau once, before the path, enough?).

At n = 400 a check is one pass over 320 training rows, three steps of 128 rows: patience 20
is 60 optimiser steps, against 140 at n = 1,000.

Run:  .venv/bin/python benchmarks/probe_path_patience.py --results <study>/results \
          --design orange-skin-n400 --replicates 5 6 8 12 15 18
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_gpu import config, schema_defaults  # noqa: E402

from knockoffnet.dense import dense_fit  # noqa: E402
from knockoffnet.filters import knockoff_threshold  # noqa: E402
from knockoffnet.grid import lambda_grid  # noqa: E402
from knockoffnet.importance import run_importances  # noqa: E402
from knockoffnet.network import net_from_arrays  # noqa: E402
from knockoffnet.path import train_path, z_statistics  # noqa: E402
from knockoffnet.scores import reference_score  # noqa: E402
from knockoffnet.statistics import multi_statistic  # noqa: E402
from knockoffnet.train_data import split_indices  # noqa: E402
from knockoffnet.vocabulary import lambda_count  # noqa: E402

# variant: (change of the dense fit's settings, change of the path's settings)
SHORT, LONG = {"patience": 20, "max_epochs": 300}, {"patience": 150, "max_epochs": 1000}
VARIANTS: dict[str, tuple[dict, dict]] = {
    "default": (SHORT, SHORT),
    "patience 60": ({"patience": 60}, {"patience": 60}),
    "patience 150": (LONG, LONG),
    "dense patience 150": (LONG, {}),
    # Adam's step 0.01 instead of 0.003 at the patience of before: larger steps or more of them?
    "lr 0.01": ({**SHORT, "learning_rate": 0.01}, {**SHORT, "learning_rate": 0.01}),
    # at auto's patience (150 at these 320 rows), one more change to both fits each:
    "patience 150, batch 32": ({**LONG, "batch_size": 32}, {**LONG, "batch_size": 32}),
    "patience 150, batch 64": ({**LONG, "batch_size": 64}, {**LONG, "batch_size": 64}),
    "patience 150, lr 0.01": ({**LONG, "learning_rate": 0.01}, {**LONG, "learning_rate": 0.01}),
    "patience 150, units 2": ({**LONG, "units": 2}, {**LONG, "units": 2}),
    "patience 150, hidden 16": ({**LONG, "hidden": (16,)}, {**LONG, "hidden": (16,)}),
}
quiet = lambda _m: None  # noqa: E731


def one_run(
    U: np.ndarray, y: np.ndarray, p: int, seed: int, change: tuple[dict, dict]
) -> tuple[float, np.ndarray]:
    """(chosen network's validation accuracy − gradient boosting's, ML importance per column)."""
    base = config("cpu", 1)
    dense_cfg, cfg = replace(base, **change[0]), replace(base, **change[1])
    start = net_from_arrays(dense_fit(U, y, dense_cfg, seed, log=quiet), 0)
    lam = schema_defaults("training")["lambdas"]
    count = lambda_count(lam, y.size)
    grid = lambda_grid(U, y, cfg, seed, count=count, ratio=lam["ratio"], start=start, log=quiet)
    path = train_path(U, y, grid, cfg, seed, start=start, log=quiet)
    Z = z_statistics(grid, [path[f"W{i}"] for i in range(len(cfg.hidden) + 1)])
    chosen = int(np.nanargmin(path["val_loss"]))  # as rule collect_z chooses
    net = net_from_arrays(path, chosen)
    train, val = split_indices(y, cfg, seed)
    gb = reference_score(U, y, train, val, "binary", seed, "gb", threads=1)
    imp = run_importances(net, Z[0], U, p, cfg.activation, 0)["importance_ml"]
    return float(path["val_accuracy"][chosen]) - gb, imp


def replicate(run: Path, relevant: list[str], seeds: int, names: list[str]) -> dict:
    """{variant: (accuracy gap, share of relevant with W > 0, share in the top |relevant|,
    power of knockoff+ at q = 0.1)}."""
    X, y = np.load(run / "data" / "X.npy"), np.load(run / "data" / "y.npy")
    U = np.hstack([X, np.load(run / "knockoffs" / "draw0.npy")]).astype(np.float32)
    p = X.shape[1]
    features = json.loads((run / "data" / "meta.json").read_text())["features"]
    rel = np.array([features.index(f) for f in relevant])
    out = {}
    for name in names:
        runs = [one_run(U, y, p, s, VARIANTS[name]) for s in range(seeds)]
        imp = np.mean([r[1] for r in runs], axis=0).reshape(-1, p)
        W = multi_statistic(imp[0], imp[1:])  # as the study's statistics rule
        rank = np.argsort(np.argsort(-W))
        gap = float(np.mean([r[0] for r in runs]))
        power = float(np.mean(W[rel] >= knockoff_threshold(W, 0.1, 1, imp.shape[0] - 1)))
        out[name] = (
            gap,
            float(np.mean(W[rel] > 0)),
            float(np.mean(rank[rel] < rel.size)),
            power,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--design", default="orange-skin-n400")
    ap.add_argument("--replicates", type=int, nargs="+", required=True)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args()
    truth = args.results / "simulation" / "cohorts" / args.design
    rows = []
    for r in args.replicates:
        relevant = json.loads((truth / f"rep{r}_truth.json").read_text())["relevant"]
        rows.append(
            replicate(args.results / f"sim_{args.design}_{r}", relevant, args.seeds, args.variants)
        )
        print(r, {k: tuple(round(x, 3) for x in v) for k, v in rows[-1].items()}, flush=True)
    print(
        f"| variant ({args.design}, {len(rows)} replicates × {args.seeds} seeds) "
        "| chosen − GB | W > 0 | in the top | power at q = 0.1 |"
    )
    print("|---|---|---|---|---|")
    for name in args.variants:
        a = np.array([r[name] for r in rows])
        se = a[:, 0].std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
        print(
            f"| {name} | {a[:, 0].mean():+.3f} ± {se:.3f} | {a[:, 1].mean():.2f} "
            f"| {a[:, 2].mean():.2f} | {a[:, 3].mean():.2f} |"
        )


if __name__ == "__main__":
    main()
