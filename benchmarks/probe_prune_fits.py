"""What Reduce Weight's fits cost: the numbers behind `prune`'s runtime request (issue 16).

Two parts, each printing one line per case:

- ``--run DIR`` (a finished run's working directory; ``--cohort`` its cohort): for every
  distinct selection of its ``selected.tsv`` and the all-features baseline, the comparison
  and the final network as the rule fits them (one worker), with the Adam steps counted:
  fits, mean epochs per fit, seconds and milliseconds per step;
- ``--steps``: the cost of one step of a fit at the widths of the benchmark cohorts (random
  data, 4 epochs, no early stopping), the fixed part and the part that grows with inputs.

    python benchmarks/probe_prune_fits.py --run <workdir> --cohort scale
    python benchmarks/probe_prune_fits.py --steps
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from knockoffnet import job_resources as jr  # noqa: E402
from knockoffnet.retraining import comparison_rows, reduce_weight, train_network  # noqa: E402


def count_steps() -> list[int]:
    """Count every Adam step from now on (the fits' optimiser) in the returned cell."""
    counter = [0]
    step = torch.optim.Adam.step

    def counted(self, *args, **kwargs):
        counter[0] += 1
        return step(self, *args, **kwargs)

    torch.optim.Adam.step = counted
    return counter


def run_part(work: Path, cohort: str, max_rows: int, repeats: int, seed: int) -> None:
    res = work / "results" / cohort
    meta = json.loads((res / "data" / "meta.json").read_text())
    y = np.load(res / "data" / "y.npy")
    rows = comparison_rows(y, meta["task"], max_rows, seed)
    X, y = np.load(res / "data" / "X.npy", mmap_mode="r")[rows], y[rows]
    with np.load(res / "z" / "draw0_seed0.npz") as z:  # as scripts/prune.py reads it
        deeper = [k for k in range(1, 9) if f"Z{k}" in z.files]
        Z = [z["Z0_input"]] + [z[f"Z{k}"] for k in deeper]
        magnitude = [np.abs(z["W0_input"])] + [np.abs(z[f"W{k}"]) for k in deeper]
    hidden = tuple(int(layer.shape[1]) for layer in Z[1:])  # each deeper layer's inputs
    selected = pd.read_csv(res / "selected.tsv", sep="\t")
    features = np.asarray(meta["features"])
    sets = {
        tuple(np.flatnonzero(np.isin(features, g["feature"])))
        for _, g in selected.groupby("filter")
    }
    sets.add(tuple(range(len(features))))
    steps = count_steps()
    fits = 3 * repeats + 1
    per_epoch = 30 * math.ceil(len(y) * 0.6 / 64) + math.ceil(len(y) * 0.8 / 64)
    for columns in sorted(sets, key=len):
        steps[0] = 0
        start = time.perf_counter()
        reduce_weight(
            X, y, meta["task"], max(2, len(meta["classes"])), hidden, Z, magnitude,
            np.asarray(columns), 0.3, repeats, seed, workers=1,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        print(
            f"{cohort}: rows {len(y)}, {len(columns)} inputs: {fits} fits, {steps[0]} steps, "
            f"{steps[0] / per_epoch:.1f} epochs a fit, {seconds:.1f} s, "
            f"{1000 * seconds / steps[0]:.3f} ms a step",
            flush=True,
        )


def steps_part() -> None:
    rng = np.random.default_rng(0)
    warm = rng.standard_normal((500, 10)).astype(np.float32)
    train_network(warm, rng.integers(0, 2, 500), (32,), "binary", 2, "general", max_epochs=2)
    for rows, d in [(16_000, 24), (16_000, 1_000), (16_000, 5_000), (1_600, 60), (1_600, 200),
                    (1_600, 20_000)]:  # fmt: skip
        X = rng.standard_normal((rows, d)).astype(np.float32)
        y = rng.integers(0, 2, rows)
        start = time.perf_counter()
        train_network(X, y, (32,), "binary", 2, "general", max_epochs=4, patience=100)
        per_step = (time.perf_counter() - start) / (4 * math.ceil(rows * 0.8 / 64))
        flops = 6 * 64 * (d * 32 + 32)
        model = jr.PRUNE_STEP_SECONDS + flops / jr.PRUNE_FLOPS
        rate = flops / max(per_step - jr.PRUNE_STEP_SECONDS, 1e-9)  # of the arithmetic
        shown = f"; {rate:.2e} FLOP/s beyond the fixed part" if d >= 1_000 else ""
        print(
            f"{rows} rows, {d} inputs: {1000 * per_step:.3f} ms a step "
            f"(model {1000 * model:.3f}){shown}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a finished run's working directory")
    ap.add_argument("--cohort", default="scale")
    ap.add_argument("--max-rows", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1, help="the comparison's seed (any: counts)")
    ap.add_argument("--steps", action="store_true", help="the cost of a step by width")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.run:
        run_part(args.run, args.cohort, args.max_rows, args.repeats, args.seed)
    if args.steps:
        steps_part()


if __name__ == "__main__":
    main()
