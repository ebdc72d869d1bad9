"""Is the oracle's edge on Table 1's design its statistic or what it observes? (issue 14,
criterion 2)

A diagnostic, not a timing. The study's oracle (``simulation.peers.oracle_statistic``) is a
cross-validated lasso of the generator's noise-free latent score on all κ + 1 columns of
every feature; the filters only have the labels, one bit of that score per row. For each
replicate of a finished study run this scores, on the same knockoff copies and with the
same multi-knockoff threshold as the study (``simulation.peers.peer_masks``):

* ``oracle (latent)``: the study's oracle, with the study's peer seed (reproduces its cell);
* ``oracle statistic on the labels``: the same lasso, the 0/1 labels in place of the latent;
* ``L1 logistic on the labels``: a cross-validated L1-penalised logistic regression of the
  labels on the same columns, |β| as the importance (the labels' own likelihood).

Power and FDP at each q, mean ± se over replicates, and the paired difference of each
label-based row from the latent oracle. With ``--scores`` (a study's
``results/simulation/scores/<design>`` directory of the same replicates) the networks' OL and
ML rows are read from it and paired with the label-based rows too.

Run:  .venv/bin/python benchmarks/probe_label_oracle.py --results <study>/results \
          --design normal-p100-s33-k2 --replicates 20 [--seed 2026] [--scores <dir>]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from knockoffnet.seeds import derive_seed
from knockoffnet.simulation.peers import _mixed_copies, _unmix, oracle_statistic, peer_masks

ROWS = ("oracle (latent)", "oracle statistic on the labels", "L1 logistic on the labels")


def logistic_statistic(X: np.ndarray, Xk: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """(κ + 1, p) importances |β| of a 5-fold cross-validated L1 logistic regression on the
    columns in the peers' random order per feature (so no column position is favoured)."""
    from sklearn.linear_model import LogisticRegressionCV

    rng = np.random.Generator(np.random.PCG64(seed))
    order, U = _mixed_copies(X, Xk, rng)
    model = LogisticRegressionCV(  # pure L1, C chosen by held-out log loss (scikit-learn 1.8+)
        Cs=12,
        cv=5,
        l1_ratios=(1.0,),
        solver="liblinear",
        scoring="neg_log_loss",
        max_iter=2000,
        random_state=seed,
        use_legacy_attributes=False,
    )
    model.fit(U, y)
    return _unmix(np.abs(model.coef_[0]), order)


def replicate(results: Path, design: str, rep: int, master: int, qs: list[float]) -> dict:
    """{(row, q): (power, FDP)} for one replicate."""
    run = results / f"sim_{design}_{rep}"
    X, y = np.load(run / "data" / "X.npy"), np.load(run / "data" / "y.npy")
    Xk = np.load(run / "knockoffs" / "draw0.npy").astype(np.float64)
    cohort = results / "simulation" / "cohorts" / design
    latent = np.load(cohort / f"rep{rep}_latent.npy")
    meta = json.loads((run / "data" / "meta.json").read_text())
    relevant = set(json.loads((cohort / f"rep{rep}_truth.json").read_text())["relevant"])
    is_true = np.array([f in relevant for f in meta["features"]])
    seed = derive_seed(master, "peers", design, rep)
    stats = {
        ROWS[0]: oracle_statistic(X, Xk, latent, seed),
        ROWS[1]: oracle_statistic(X, Xk, y.astype(np.float64), seed),
        ROWS[2]: logistic_statistic(X, Xk, y, seed),
    }
    out = {}
    for name, W in stats.items():
        for (_, q), mask in peer_masks(W, name, qs, offset=1).items():
            hits = int((mask & is_true).sum())
            out[name, q] = (hits / is_true.sum(), (mask.sum() - hits) / max(int(mask.sum()), 1))
    return out


def _network_powers(scores: Path, replicates: int) -> dict[tuple[str, float], np.ndarray]:
    """{(OL or ML, q): power per replicate 0..R−1} from a study's score files."""
    frames = [pd.read_csv(scores / f"rep{r}.csv") for r in range(replicates)]
    df = pd.concat(frames)
    out = {}
    for (f, q), sub in df[df["filter"].isin(["OL", "ML"])].groupby(["filter", "q"]):
        out[f, round(float(q), 6)] = sub.sort_values("replicate")["power"].to_numpy()
    return out


def _mean_se(x: np.ndarray) -> str:
    return f"{x.mean():.3f} ± {x.std(ddof=1) / np.sqrt(x.size):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--design", default="normal-p100-s33-k2")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2026, help="the study config's master seed")
    ap.add_argument("--q", type=float, nargs="+", default=[0.1, 0.2])
    ap.add_argument("--scores", type=Path, help="the study's scores/<design> directory")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    reps = [
        replicate(args.results, args.design, r, args.seed, args.q) for r in range(args.replicates)
    ]
    lines = [
        f"| q | statistic ({args.design}, {len(reps)} replicates) | power | FDP | "
        "power − the latent oracle's (paired) | OL − it, ML − it (paired) |",
        "|---|---|---|---|---|---|",
    ]
    nets = _network_powers(args.scores, args.replicates) if args.scores else None
    for q in args.q:
        base = np.array([r[ROWS[0], q][0] for r in reps])
        for name in ROWS:
            power = np.array([r[name, q][0] for r in reps])
            fdp = np.array([r[name, q][1] for r in reps])
            diff = "" if name == ROWS[0] else _mean_se(power - base)
            vs = ""
            if nets is not None:
                vs = ", ".join(_mean_se(nets[f, round(q, 6)] - power) for f in ("OL", "ML"))
            lines.append(
                f"| {q:g} | {name} | {_mean_se(power)} | {_mean_se(fdp)} | {diff} | {vs} |"
            )
        if nets is not None:
            for f in ("OL", "ML"):
                lines.append(
                    f"| {q:g} | the study's {f} | {_mean_se(nets[f, round(q, 6)])} | | | |"
                )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
