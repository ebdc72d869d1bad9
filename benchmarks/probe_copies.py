"""Where the relevant features go with κ copies against one (issue 15, OL on the 3-class design).

A diagnostic, not a timing: from two finished study runs of the same replicates, one at
κ = 1 and one at κ copies (``knockoffs.copies``), it reads each run's per-seed importances
(``z/draw0_seed*.npz``), averages them over the seeds as the published OL/ML filters do,
and reports per statistic:

* power and FDP of the multi-knockoff+ filter at ``--q`` (the published filter's numbers);
* how many relevant features do not beat every copy (W ≤ 0), and how many beat them but
  fall below the threshold T;
* how cleanly the network ranks the relevant originals among all originals (how many of the
  top s places they hold; the weakest relevant over the strongest null importance);
* the power with other valid τ of Gimenez & Zou's statistic (largest − second largest,
  largest − mean of the others) beside theirs (largest − median).

Run:  .venv/bin/python benchmarks/probe_copies.py --k1 <κ = 1 run>/results \
          --kk <κ = 3 run>/results --design normal-p50-s10-k3 --replicates 20
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from knockoffnet.filters import knockoff_threshold
from knockoffnet.statistics import multi_statistic

KEYS = {"OL": "importance_ol", "ML": "importance_ml"}


def tau_statistic(z: np.ndarray, zk: np.ndarray, kind: str) -> np.ndarray:
    """Signed multi-knockoff W with τ = largest − ``kind`` of the others (median, second,
    mean); each is a symmetric function of the κ + 1 importances, so each is valid."""
    every = np.vstack([z, zk])
    ordered = np.sort(every, axis=0)[::-1]
    rest = {"median": np.median(every, axis=0), "second": ordered[1]}
    tau = ordered[0] - rest.get(kind, ordered[1:].mean(axis=0))
    winner = (z == ordered[0]) & ((zk == ordered[0]).sum(axis=0) == 0)
    return np.where(winner, tau, np.where(z < ordered[0], -tau, 0.0))


def seed_mean(results: Path, cohort: str, key: str, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(z, z~ (κ, p)): the importances of draw 0 averaged over its training seeds."""
    files = sorted((results / cohort / "z").glob("draw0_seed*.npz"))
    if not files:
        raise SystemExit(f"no z/draw0_seed*.npz under {results / cohort}")
    imp = np.mean([np.load(f)[key] for f in files], axis=0)
    return imp[:p], imp[p:].reshape(-1, p)


def replicate_rows(results: Path, design: str, r: int, q: float, label: str) -> list[dict]:
    truth_path = results / "simulation" / "cohorts" / design / f"rep{r}_truth.json"
    truth = json.loads(truth_path.read_text())
    p = int(truth["p"])
    names = [f"x{j + 1}" for j in range(p)]
    relevant = np.isin(names, truth["relevant"])
    rows = []
    for stat, key in KEYS.items():
        z, zk = seed_mean(results, f"sim_{design}_{r}", key, p)
        copies = zk.shape[0]
        W = multi_statistic(z, zk)
        T = knockoff_threshold(W, q, 1, copies)
        sel = W >= T
        top = np.argsort(-z)[: relevant.sum()]
        row = {
            "arm": label,
            "stat": stat,
            "replicate": r,
            "power": sel[relevant].mean(),
            "fdp": (sel & ~relevant).sum() / max(sel.sum(), 1),
            "lose_to_a_copy": int((W[relevant] <= 0).sum()),
            "below_T": int(((W[relevant] > 0) & ~sel[relevant]).sum()),
            "relevant_in_top": int(relevant[top].sum()),
            "weakest_over_null": float(z[relevant].min() / z[~relevant].max()),
        }
        for kind in ("second", "mean"):
            Wk = tau_statistic(z, zk, kind)
            row[f"power_tau_{kind}"] = (Wk >= knockoff_threshold(Wk, q, 1, copies))[relevant].mean()
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k1", type=Path, required=True, help="results/ of the κ = 1 run")
    ap.add_argument("--kk", type=Path, required=True, help="results/ of the κ-copy run")
    ap.add_argument("--design", default="normal-p50-s10-k3")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--q", type=float, default=0.1)
    args = ap.parse_args()
    rows = []
    for r in range(args.replicates):
        rows += replicate_rows(args.k1, args.design, r, args.q, "k1")
        rows += replicate_rows(args.kk, args.design, r, args.q, "kk")
    df = pd.DataFrame(rows)
    summary = df.groupby(["stat", "arm"]).agg(
        power=("power", "mean"),
        fdp=("fdp", "mean"),
        lose_to_a_copy=("lose_to_a_copy", "sum"),
        below_T=("below_T", "sum"),
        relevant_in_top=("relevant_in_top", "mean"),
        weakest_over_null=("weakest_over_null", "median"),
        power_tau_second=("power_tau_second", "mean"),
        power_tau_mean=("power_tau_mean", "mean"),
    )
    print(f"{args.design}, {df['replicate'].nunique()} replicates, q = {args.q}\n")
    print(summary.round(3).to_markdown())


if __name__ == "__main__":
    main()
