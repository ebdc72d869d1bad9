"""e-BH over several knockoff draws against one (issue 15: defaults chosen from the study).

A diagnostic, not a timing: from a finished study run with ``knockoffs.draws`` > 1 it reads
every run's importances (``z/draw{d}_seed*.npz``), averages each draw's seeds as the
published filters do, and recomputes e-BH (``selection.ebh``, statistic ``--statistic``) at
q for several α_kn and for the first draw alone, so one run answers "is derandomising over
draws worth its training?" without re-training. Power, mean FDP and the number of
replicates that select nothing, mean ± se over replicates.

Run:  .venv/bin/python benchmarks/probe_draws.py --results <run>/results \
          --design normal-p50-s10-k3 --replicates 20 --q 0.1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from knockoffnet.aggregation import ebh, knockoff_evalues
from knockoffnet.statistics import multi_statistic

KEYS = {"OL": "importance_ol", "ML": "importance_ml"}


def draw_statistics(cohort_dir: Path, key: str, p: int) -> list[tuple[np.ndarray, int]]:
    """Per draw: (W of the seeds' mean importances, κ)."""
    out = []
    for d in range(1000):
        files = sorted((cohort_dir / "z").glob(f"draw{d}_seed*.npz"))
        if not files:
            break
        imp = np.mean([np.load(f)[key] for f in files], axis=0)
        zk = imp[p:].reshape(-1, p)
        out.append((multi_statistic(imp[:p], zk), zk.shape[0]))
    if not out:
        raise SystemExit(f"no z/draw*_seed*.npz under {cohort_dir}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--design", default="normal-p50-s10-k3")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--q", type=float, default=0.1)
    ap.add_argument("--statistic", choices=sorted(KEYS), default="ML")
    args = ap.parse_args()
    q, rows = args.q, []
    for r in range(args.replicates):
        truth = json.loads(
            (
                args.results / "simulation" / "cohorts" / args.design / f"rep{r}_truth.json"
            ).read_text()
        )
        p = int(truth["p"])
        relevant = np.isin([f"x{j + 1}" for j in range(p)], truth["relevant"])
        draws = draw_statistics(args.results / f"sim_{args.design}_{r}", KEYS[args.statistic], p)
        variants = {
            f"{len(draws)} draws, α_kn = q/2": (draws, q / 2),
            f"{len(draws)} draws, α_kn = q": (draws, q),
            "first draw alone, α_kn = q": (draws[:1], q),
        }
        for name, (used, alpha) in variants.items():
            e = np.mean([knockoff_evalues(W, alpha, 1, k) for W, k in used], axis=0)
            sel = ebh(e, q)
            rows.append(
                {
                    "variant": name,
                    "replicate": r,
                    "power": sel[relevant].mean(),
                    "fdp": (sel & ~relevant).sum() / max(sel.sum(), 1),
                    "nothing": int(sel.sum() == 0),
                }
            )
    df = pd.DataFrame(rows)
    g = df.groupby("variant", sort=False)
    table = pd.DataFrame(
        {
            "power": g["power"].mean(),
            "power_se": g["power"].sem(),
            "fdp": g["fdp"].mean(),
            "fdp_se": g["fdp"].sem(),
            "selecting_nothing": g["nothing"].sum(),
        }
    )
    print(f"{args.design}, {df['replicate'].nunique()} replicates, q = {q}, {args.statistic}\n")
    print(table.round(3).to_markdown())


if __name__ == "__main__":
    main()
