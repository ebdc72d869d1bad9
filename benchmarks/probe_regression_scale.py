"""Does the regression path train better on a standardised outcome? (issue 14, noticed
2026-12-06 on the non-linear regression study).

A diagnostic, not a timing benchmark of the package: for each replicate of a finished
regression study run it fits one seed's dense fit, λ grid and path (``dense_fit``,
``lambda_grid``, ``train_path``, the workflow's own functions and defaults) on the stored
[X, X~] twice, once with ``training.outcome_scale: raw`` (y as given, the behaviour before
2026-12-06) and once with the default ``standardised`` ((y − mean) / sd inside the fit, the
networks handed back in y's units), and prints per replicate and arm: seconds, the chosen λ
(lowest validation loss), its validation MSE relative to var(y) as 1 − MSE / var (an R²,
comparable across the arms), and how many λ stopped at the ``max_epochs`` cap instead of by
early stopping. (Before outcome_scale existed, the second arm passed (y − mean) / sd of the
whole cohort; the figures in docs/validation.md of 2026-12-06 are from that form.)

Run:  .venv/bin/python benchmarks/probe_regression_scale.py --results <study>/results \\
          --design nonlinear-regression --replicates 10
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_gpu import schema_defaults

from knockoffnet.dense import dense_fit
from knockoffnet.grid import lambda_grid
from knockoffnet.network import net_from_arrays
from knockoffnet.path import train_path
from knockoffnet.train_config import TrainConfig
from knockoffnet.vocabulary import lambda_count

SEED = 7


def one_arm(U: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> tuple[float, int, float, int]:
    """(seconds, chosen λ index, 1 − its validation MSE / var(y), λ at the epoch cap)."""
    t0 = time.perf_counter()
    dense = dense_fit(U, y, cfg, SEED, log=lambda _m: None)
    start = net_from_arrays(dense, 0)
    lam = schema_defaults("training")["lambdas"]  # the workflow's grid, not a copy of it
    grid = lambda_grid(
        U,
        y,
        cfg,
        SEED,
        count=lambda_count(lam, y.size),
        ratio=lam["ratio"],
        start=start,
        log=lambda _m: None,
    )
    out = train_path(U, y, grid, cfg, SEED, start=start, log=lambda _m: None)
    best = int(np.nanargmin(out["val_loss"]))
    capped = int((out["epochs"] >= cfg.max_epochs).sum())
    return time.perf_counter() - t0, best, 1.0 - out["val_loss"][best] / y.var(), capped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--design", default="nonlinear-regression")
    ap.add_argument("--replicates", type=int, default=10)
    args = ap.parse_args()
    cfg = TrainConfig(task="regression", n_classes=2)
    rows = []
    for rep in range(args.replicates):
        run = args.results / f"sim_{args.design}_{rep}"
        X, y = np.load(run / "data" / "X.npy"), np.load(run / "data" / "y.npy")
        U = np.hstack([X, np.load(run / "knockoffs" / "draw0.npy")]).astype(np.float32)
        raw = one_arm(U, y, replace(cfg, outcome_scale="raw"))
        std = one_arm(U, y, replace(cfg, outcome_scale="standardised"))
        rows.append((raw, std))
        print(f"replicate {rep}: raw {raw}, standardised {std}", flush=True)
    raw, std = (np.array([r[i] for r in rows]) for i in (0, 1))
    gain = std[:, 2] - raw[:, 2]
    print(
        f"{len(rows)} replicates: time standardised / raw {std[:, 0].sum() / raw[:, 0].sum():.2f}; "
        f"R2 raw {raw[:, 2].mean():.3f}, standardised {std[:, 2].mean():.3f}, paired "
        f"{gain.mean():+.4f} ± {gain.std(ddof=1) / np.sqrt(len(gain)):.4f}; "
        f"λ at the cap {int(raw[:, 3].sum())} / {int(std[:, 3].sum())}"
    )


if __name__ == "__main__":
    main()
