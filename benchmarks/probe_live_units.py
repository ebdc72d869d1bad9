"""How many first-layer hidden units of a study's networks ever fire (docs/validation.md,
"Hidden units that never fire at n = 400").

For every replicate of one design in a finished study's ``results`` directory, every run's
chosen network (``z/draw0_seed*.npz``) and dense fit (``path/draw0_seed*/dense.npz``) is
evaluated on the replicate's [X, X~] (``data/X.npy``, ``knockoffs/draw0.npy``); a hidden unit
is live when its pre-activation is positive on at least ``--min-share`` of the rows. Prints
the mean number of live units per network, and per dense fit by its kept weight decay.

    python benchmarks/probe_live_units.py --results <run>/results \
        --design ar1-p50-s10-k2-n400 [--seeds 3] [--activation leaky_relu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from knockoffnet.network import forward, net_from_arrays, stack  # noqa: E402


def live_units(arrays: dict[str, np.ndarray], U: torch.Tensor, act: str, share: float) -> int:
    """First-hidden-layer units positive on at least ``share`` of the rows of U (the
    package's forward pass, read as `dense.active_fraction` reads it)."""
    index = 0 if np.asarray(arrays["W0"]).ndim == 3 else None  # a dense fit is a 1-λ path
    with torch.no_grad():
        _, inputs, _ = forward(stack(net_from_arrays(arrays, index), 1), U, act)
    return int(((inputs[1][0] > 0).double().mean(0) >= share).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--design", required=True)
    ap.add_argument("--seeds", type=int, default=None, help="only seeds below this")
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--min-share", type=float, default=0.01)
    args = ap.parse_args()
    chosen, dense = [], {}
    replicates = sorted(args.results.glob(f"sim_{args.design}_*"))
    if not replicates:
        raise SystemExit(f"no replicate directories sim_{args.design}_* in {args.results}")
    for rep in replicates:
        U = np.hstack([np.load(rep / "data" / "X.npy"), np.load(rep / "knockoffs" / "draw0.npy")])
        U = torch.as_tensor(U, dtype=torch.float64)
        for z in sorted(rep.glob("z/draw0_seed*.npz")):
            seed = int(z.stem.removeprefix("draw0_seed"))
            if args.seeds is not None and seed >= args.seeds:
                continue
            with np.load(z) as f:
                chosen.append(live_units(dict(f), U, args.activation, args.min_share))
            with np.load(rep / "path" / f"draw0_seed{seed}" / "dense.npz") as f:
                arrays = dict(f)
            decay = float(arrays["dense_decay"][0]) if "dense_decay" in arrays else float("nan")
            dense.setdefault(decay, []).append(
                live_units(arrays, U, args.activation, args.min_share)
            )
    c = np.array(chosen)
    every = np.concatenate([np.array(v) for v in dense.values()])
    print(
        f"{args.design}: {len(replicates)} replicates, {c.size} runs; live hidden units: "
        f"chosen {c.mean():.1f} (median {np.median(c):.0f}, {np.mean(c <= 2):.2f} with <= 2), "
        f"dense {every.mean():.1f}"
    )
    for decay, v in sorted(dense.items()):
        print(f"  dense fits with decay {decay:g}: {len(v)}, live units {np.mean(v):.1f}")


if __name__ == "__main__":
    main()
