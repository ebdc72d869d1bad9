"""Would a pairwise-coupling input layer let the dense fit match gradient boosting? (issue 14,
criterion 5; a diagnostic, not part of the package).

The dense fit sees every feature's κ + 1 columns ([X, X~1, …, X~κ]) as separate inputs, and
on the AR(1) design it trails gradient boosting by 0.16 (docs/validation.md, item 5). DeepPINK
lets a feature and its knockoffs compete for one pathway: z_j = Σ_c C_jc·u_j^(c), so the
network behind it has p inputs, not (κ + 1)·p. This probe fits, in plain PyTorch autograd,
the package's dense architecture (per-input units [z, relu(a·z + b)] × 4, one hidden layer
of 32 ReLU, Adam at lr 3·10⁻³ (the first layer's step scaled by its fan-in as in the
package), batches of 128, a check per pass, patience 20, the best
validation loss kept) on the study's stored replicates and the package's split, with and
without the coupling layer and decoupled weight decay (θ ← (1 − lr·decay)·θ on the two
weight matrices), and scores scikit-learn's gradient boosting (the workflow's reference) on
the same split. Coupling weights start equal (1 / (κ + 1)), so no column is favoured.

The "channels coupled" and "columns coupled" variants couple *after* the units instead, as
the package's `training.dense_coupling: columns` does: column c of feature j gets the
first-layer fan-out V_j ⊙ C_cj (C per column and channel, or per column), which is the
package's own first layer, so the λ path can start from it (docs/method.md, "A coupled dense
fit"). ``--variants`` picks rows.

With ``--power-seeds N`` it also selects at q = 0.1 from each variant's dense fits (N seeds,
decay 10): the per-column mean squared derivative, multi-knockoff statistic and threshold.

Run:  .venv/bin/python benchmarks/probe_coupled_dense.py --results <study>/results \
          --design ar1-p50-s10-k2 --replicates 20 --power-seeds 3
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from knockoffnet.filters import knockoff_threshold
from knockoffnet.optim import first_layer_scale
from knockoffnet.path import TrainConfig, split_indices
from knockoffnet.scores import reference_score
from knockoffnet.statistics import multi_statistic

SEED = 7
VARIANTS: dict[str, dict] = {
    "dense, all columns": {},
    "dense, all columns, decay 10": {"decay": 10.0},
    "dense, X only (no knockoff columns)": {"x_only": True},
    "coupled": {"coupled": True},
    "coupled, decay 3": {"coupled": True, "decay": 3.0},
    "coupled, decay 5": {"coupled": True, "decay": 5.0},
    "coupled, decay 10": {"coupled": True, "decay": 10.0},
    "coupled, decay 20": {"coupled": True, "decay": 20.0},
    "channels coupled, decay 10": {"coupled": "channels", "decay": 10.0},
    "channels coupled, decay 5": {"coupled": "channels", "decay": 5.0},
    "channels coupled, decay 20": {"coupled": "channels", "decay": 20.0},
    "columns coupled, decay 10": {"coupled": "columns", "decay": 10.0},
    "columns coupled, decay 5": {"coupled": "columns", "decay": 5.0},
    "columns coupled, decay 20": {"coupled": "columns", "decay": 20.0},
    "columns coupled": {"coupled": "columns"},
}


class Dense(torch.nn.Module):
    """The package's dense network (units 4, hidden [32]), optionally behind a coupling layer."""

    def __init__(self, p: int, columns: int, coupled: bool, seed: int, units: int = 4) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.p, self.columns, self.coupled = p, columns, coupled
        d = p if coupled is True else p * columns
        if coupled is True:
            self.C = torch.nn.Parameter(torch.full((columns, p), 1.0 / columns))
        self.ua = torch.nn.Parameter(torch.randn(d, units, generator=gen))
        self.ub = torch.nn.Parameter(torch.randn(d, units, generator=gen))
        self.W0, self.b0 = _linear(d * (units + 1), 32, gen)
        self.W1, self.b1 = _linear(32, 1, gen)
        if coupled in ("channels", "columns"):
            # first layer V ⊙ C: one hidden weight per feature and channel, shared by the
            # feature's columns through C (starting at 1, every column alike); expandable
            # into the package's first layer exactly
            w = self.W0.detach().view(32, columns, p, units + 1)[:, 0]
            self.V = torch.nn.Parameter(w.clone())
            shape = (columns, p, units + 1) if coupled == "channels" else (columns, p, 1)
            self.C = torch.nn.Parameter(torch.ones(shape))
            self.W0.requires_grad_(False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z = (u.view(-1, self.columns, self.p) * self.C).sum(1) if self.coupled is True else u
        units = torch.relu(z.unsqueeze(-1) * self.ua + self.ub)
        phi = torch.cat([z.unsqueeze(-1), units], -1).flatten(1)
        return (torch.relu(phi @ self.first().T + self.b0) @ self.W1.T + self.b1)[:, 0]

    def first(self) -> torch.Tensor:
        """The first layer as the package holds it: V ⊙ C expanded where channels couple."""
        if self.coupled in ("channels", "columns"):
            return (self.V.unsqueeze(1) * self.C.unsqueeze(0)).flatten(1)
        return self.W0


def _linear(n_in: int, n_out: int, gen: torch.Generator):
    bound = 1.0 / math.sqrt(n_in)
    w = torch.nn.Parameter((torch.rand(n_out, n_in, generator=gen) * 2 - 1) * bound)
    b = torch.nn.Parameter((torch.rand(n_out, generator=gen) * 2 - 1) * bound)
    return w, b


def fit(U, y, train, val, columns: int, coupled=False, decay=0.0, seed=SEED, cap=300):
    """Validation accuracy at the best validation loss, the passes trained, and the network
    at that loss (patience 20)."""
    torch.manual_seed(seed)
    net = Dense(U.shape[1] // columns, columns, coupled, seed)
    lr = 3e-3
    # the package's Adam step of the first layer and the units before it, scaled by
    # min(1, 1024 / fan-in) (optim.first_layer_scale); the coupling weights go with them
    shared = coupled in ("channels", "columns")
    w0 = net.V if shared else net.W0
    first = [net.ua, net.ub, w0, *([net.C] if coupled else [])]
    rest = [net.b0, net.W1, net.b1]
    scale = first_layer_scale(net.W0.shape[1])
    opt = torch.optim.Adam([{"params": first, "lr": lr * scale}, {"params": rest, "lr": lr}])
    ut, yt = torch.from_numpy(U[train]), torch.from_numpy(y[train]).float()
    uv, yv = torch.from_numpy(U[val]), torch.from_numpy(y[val]).float()
    gen = torch.Generator().manual_seed(seed)
    best, best_acc, since, batches, passes = math.inf, 0.0, 0, -(-len(train) // 128), 0
    kept = None
    while passes < cap:
        passes += 1
        for rows in torch.tensor_split(torch.randperm(len(train), generator=gen), batches):
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(net(ut[rows]), yt[rows]).backward()
            opt.step()
            if decay:
                with torch.no_grad():
                    for w in (w0, net.W1):
                        w.mul_(1.0 - lr * decay)
        with torch.no_grad():
            out = net(uv)
            loss = float(F.binary_cross_entropy_with_logits(out, yv))
        if loss < best:
            best, since = loss, 0
            best_acc = float(((out > 0).float() == yv).float().mean())
            kept = {k: v.clone() for k, v in net.state_dict().items()}
        elif (since := since + 1) >= 20:
            break
    net.load_state_dict(kept)
    return best_acc, passes, net


def power(U, y, relevant, columns: int, coupled: bool, seeds: int, q: float = 0.1):
    """Power and FDP at q of the multi-knockoff statistic from the mean squared derivative of
    each input column (the package's ML statistic, read from the dense fit; no λ path),
    summed over ``seeds`` fits with decay 10, each on its own split as the workflow's seeds."""
    T = np.zeros(U.shape[1])
    for s in range(seeds):
        train, val = split_indices(y, TrainConfig(task="binary", n_classes=2), 1000 + s)
        net = fit(U, y, train, val, columns, coupled, 10.0, seed=1000 + s)[2]
        u = torch.from_numpy(U).requires_grad_(True)
        net(u).sum().backward()
        T += (u.grad**2).mean(0).numpy()
    T = T.reshape(columns, -1)
    W = multi_statistic(T[0], T[1:])
    chosen = W >= knockoff_threshold(W, q, 1, columns - 1)
    return (chosen & relevant).sum() / relevant.sum(), (chosen & ~relevant).sum() / max(
        1, chosen.sum()
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--design", default="ar1-p50-s10-k2")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument(
        "--power-seeds", type=int, default=0, help="also the power at q = 0.1 from this many fits"
    )
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args()
    found: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    torch.set_num_threads(1)
    gaps: dict[str, list[tuple[float, int]]] = {name: [] for name in args.variants}
    for rep in range(args.replicates):
        run = args.results / f"sim_{args.design}_{rep}"
        X, y = np.load(run / "data" / "X.npy"), np.load(run / "data" / "y.npy")
        U = np.hstack([X, np.load(run / "knockoffs" / "draw0.npy")]).astype(np.float32)
        columns = U.shape[1] // X.shape[1]
        train, val = split_indices(y, TrainConfig(task="binary", n_classes=2), SEED)
        gb = reference_score(U, y, train, val, "binary", SEED, "gb", threads=1)
        for name in args.variants:
            v = VARIANTS[name]
            data, cols = (X.astype(np.float32), 1) if v.get("x_only") else (U, columns)
            acc, epochs, _ = fit(
                data, y, train, val, cols, v.get("coupled", False), v.get("decay", 0)
            )
            gaps[name].append((acc - gb, epochs))
        if args.power_seeds:
            meta = json.loads((run / "data" / "meta.json").read_text())
            truth = args.results / "simulation" / "cohorts" / args.design / f"rep{rep}_truth.json"
            relevant = np.isin(meta["features"], json.loads(truth.read_text())["relevant"])
            for coupled in (False, True):
                found[coupled].append(power(U, y, relevant, columns, coupled, args.power_seeds))
    print(f"| variant ({args.design}, {args.replicates} replicates) | dense − GB | passes |")
    print("|---|---|---|")
    for name, rows in gaps.items():
        gap = np.array([r[0] for r in rows])
        passes = np.mean([r[1] for r in rows])
        se = gap.std(ddof=1) / np.sqrt(gap.size)
        print(f"| {name} | {gap.mean():+.3f} ± {se:.3f} | {passes:.1f} |")
    if args.power_seeds:
        print(f"\n| statistic ({args.power_seeds} fits, decay 10) | power at q = 0.1 | mean FDP |")
        print("|---|---|---|")
        for coupled, rows in found.items():
            a = np.array(rows)
            se = a.std(0, ddof=1) / np.sqrt(len(a))
            name = "coupled" if coupled else "dense, all columns"
            print(
                f"| {name} | {a[:, 0].mean():.3f} ± {se[0]:.3f} | {a[:, 1].mean():.3f} ± {se[1]:.3f} |"
            )


if __name__ == "__main__":
    main()
