"""Would a pairwise-coupling input layer let the dense fit match gradient boosting? (issue 14,
criterion 5; a diagnostic, not part of the package).

The dense fit sees every feature's κ + 1 columns ([X, X~1, …, X~κ]) as separate inputs, and
on the AR(1) design it trails gradient boosting by 0.16 (docs/validation.md, item 5). DeepPINK
lets a feature and its knockoffs compete for one pathway: z_j = Σ_c C_jc·u_j^(c), so the
network behind it has p inputs, not (κ + 1)·p. This probe fits, in plain PyTorch autograd,
the package's dense architecture (per-input units [z, relu(a·z + b)] × 4, one hidden layer
of 32 ReLU, Adam at lr 3·10⁻³, batches of 128, a check per pass, patience 20, the best
validation loss kept) on the study's stored replicates and the package's split, with and
without the coupling layer and decoupled weight decay (θ ← (1 − lr·decay)·θ on the two
weight matrices), and scores scikit-learn's gradient boosting (the workflow's reference) on
the same split. Coupling weights start equal (1 / (κ + 1)), so no column is favoured.

Run:  .venv/bin/python benchmarks/probe_coupled_dense.py --results <study>/results \
          --design ar1-p50-s10-k2 --replicates 20
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from knockoffnet.path import TrainConfig, split_indices
from knockoffnet.scores import reference_score

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
}


class Dense(torch.nn.Module):
    """The package's dense network (units 4, hidden [32]), optionally behind a coupling layer."""

    def __init__(self, p: int, columns: int, coupled: bool, seed: int, units: int = 4) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.p, self.columns, self.coupled = p, columns, coupled
        d = p if coupled else p * columns
        if coupled:
            self.C = torch.nn.Parameter(torch.full((columns, p), 1.0 / columns))
        self.ua = torch.nn.Parameter(torch.randn(d, units, generator=gen))
        self.ub = torch.nn.Parameter(torch.randn(d, units, generator=gen))
        self.W0, self.b0 = _linear(d * (units + 1), 32, gen)
        self.W1, self.b1 = _linear(32, 1, gen)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z = (u.view(-1, self.columns, self.p) * self.C).sum(1) if self.coupled else u
        units = torch.relu(z.unsqueeze(-1) * self.ua + self.ub)
        phi = torch.cat([z.unsqueeze(-1), units], -1).flatten(1)
        return (torch.relu(phi @ self.W0.T + self.b0) @ self.W1.T + self.b1)[:, 0]


def _linear(n_in: int, n_out: int, gen: torch.Generator):
    bound = 1.0 / math.sqrt(n_in)
    w = torch.nn.Parameter((torch.rand(n_out, n_in, generator=gen) * 2 - 1) * bound)
    b = torch.nn.Parameter((torch.rand(n_out, generator=gen) * 2 - 1) * bound)
    return w, b


def fit(U, y, train, val, columns: int, coupled=False, decay=0.0, patience=20, cap=300):
    """Validation accuracy at the best validation loss, and the passes trained."""
    torch.manual_seed(SEED)
    net = Dense(U.shape[1] // columns, columns, coupled, SEED)
    lr = 3e-3
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ut, yt = torch.from_numpy(U[train]), torch.from_numpy(y[train]).float()
    uv, yv = torch.from_numpy(U[val]), torch.from_numpy(y[val]).float()
    gen = torch.Generator().manual_seed(SEED)
    best, best_acc, since, batches, passes = math.inf, 0.0, 0, -(-len(train) // 128), 0
    while passes < cap:
        passes += 1
        for rows in torch.tensor_split(torch.randperm(len(train), generator=gen), batches):
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(net(ut[rows]), yt[rows]).backward()
            opt.step()
            if decay:
                with torch.no_grad():
                    for w in (net.W0, net.W1):
                        w.mul_(1.0 - lr * decay)
        with torch.no_grad():
            out = net(uv)
            loss = float(F.binary_cross_entropy_with_logits(out, yv))
        if loss < best:
            best, since = loss, 0
            best_acc = float(((out > 0).float() == yv).float().mean())
        elif (since := since + 1) >= patience:
            break
    return best_acc, passes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--design", default="ar1-p50-s10-k2")
    ap.add_argument("--replicates", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    gaps: dict[str, list[tuple[float, int]]] = {name: [] for name in VARIANTS}
    for rep in range(args.replicates):
        run = args.results / f"sim_{args.design}_{rep}"
        X, y = np.load(run / "data" / "X.npy"), np.load(run / "data" / "y.npy")
        U = np.hstack([X, np.load(run / "knockoffs" / "draw0.npy")]).astype(np.float32)
        columns = U.shape[1] // X.shape[1]
        train, val = split_indices(y, TrainConfig(task="binary", n_classes=2), SEED)
        gb = reference_score(U, y, train, val, "binary", SEED, "gb", threads=1)
        for name, v in VARIANTS.items():
            data, cols = (X.astype(np.float32), 1) if v.get("x_only") else (U, columns)
            acc, epochs = fit(data, y, train, val, cols, v.get("coupled", False), v.get("decay", 0))
            gaps[name].append((acc - gb, epochs))
    print(f"| variant ({args.design}, {args.replicates} replicates) | dense − GB | passes |")
    print("|---|---|---|")
    for name, rows in gaps.items():
        gap = np.array([r[0] for r in rows])
        passes = np.mean([r[1] for r in rows])
        se = gap.std(ddof=1) / np.sqrt(gap.size)
        print(f"| {name} | {gap.mean():+.3f} ± {se:.3f} | {passes:.1f} |")


if __name__ == "__main__":
    main()
