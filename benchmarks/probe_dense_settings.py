"""The package's dense fit under other training settings, against gradient boosting (issue 14,
criterion 5; a diagnostic of a finished study run, not a timing).

For each stored replicate of a design it fits the seed's dense network exactly as rule
`lambda_grid` does (`knockoffnet.dense.dense_fit`: the decay candidates, early stopping, the
dead-unit refit) once per variant, each a JSON object of `TrainConfig` fields over the
defaults (`{"dense_coupling": "none"}` is the free fit, `{"dense_coupling": "columns"}` the
coupled one; `{}` the default, `auto`, which couples from 800 training rows), and scores
scikit-learn's gradient boosting (the workflow's reference) on the same split. It prints each
variant's validation accuracy minus gradient boosting's, mean ± se over the replicates, the
mean best epoch, and the paired difference against the first variant.

Run:  .venv/bin/python benchmarks/probe_dense_settings.py --results <study>/results \
          --design ar1-p50-s10-k2 --replicates 20 '{"dense_coupling": "none"}' \
          '{"dense_coupling": "columns"}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from knockoffnet.dense import dense_fit
from knockoffnet.runtime import load_columns
from knockoffnet.scores import reference_score
from knockoffnet.train_config import TrainConfig
from knockoffnet.train_data import split_indices

SEED = 11


def _se(a: np.ndarray) -> float:
    return float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--design", required=True)
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("variants", nargs="+", help="JSON objects of TrainConfig fields")
    args = ap.parse_args()
    torch.set_num_threads(1)
    variants = [json.loads(v) for v in args.variants]
    gaps = np.zeros((args.replicates, len(variants)))
    epochs = np.zeros_like(gaps)
    for rep in range(args.replicates):
        run = args.results / f"sim_{args.design}_{rep}"
        meta = json.loads((run / "data" / "meta.json").read_text())
        y = np.load(run / "data" / "y.npy")
        U = load_columns([run / "data" / "X.npy", run / "knockoffs" / "draw0.npy"])
        task, classes = meta["task"], max(2, len(meta["classes"]))
        shape = dict(task=task, n_classes=classes, device="cpu", features=len(meta["features"]))
        train, val = split_indices(y, TrainConfig(**shape), SEED)
        gb = reference_score(U, y, train, val, task, SEED, "gb", threads=1)
        for i, v in enumerate(variants):
            fit = dense_fit(U, y, TrainConfig(**shape, **v), SEED, log=lambda _m: None)
            gaps[rep, i] = float(fit["val_accuracy"][0]) - gb
            epochs[rep, i] = float(fit["best_epoch"][0])
        print(f"replicate {rep}: " + ", ".join(f"{g:+.3f}" for g in gaps[rep]), flush=True)
    print(
        f"\n| variant ({args.design}, {args.replicates} replicates) | dense − GB | best epoch "
        "| paired against the first |"
    )
    print("|---|---|---|---|")
    for i, v in enumerate(args.variants):
        d = gaps[:, i] - gaps[:, 0]
        paired = "" if i == 0 else f"{d.mean():+.3f} ± {_se(d):.3f}"
        print(
            f"| `{v}` | {gaps[:, i].mean():+.3f} ± {_se(gaps[:, i]):.3f} | "
            f"{epochs[:, i].mean():.1f} | {paired} |"
        )


if __name__ == "__main__":
    main()
