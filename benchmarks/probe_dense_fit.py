"""Why the dense fit trails gradient boosting on the AR(1) design (issue 14, criterion 5).

A diagnostic, not a timing: for each replicate of a finished study run it re-fits the seed's
dense network (``knockoffnet.dense.dense_fit``, λ = 0, early stopping on the validation split)
on the stored [X, X~] under a few training variants, and scores scikit-learn's
``HistGradientBoostingClassifier`` (the workflow's reference, ``scores.reference_score``) on
the same training/validation split. Variants:

* ``default``: today's settings;
* ``lr 1e-3``, ``batch 32``, ``hidden 64``, ``units 0``, ``patience 50``: one knob each;
* ``decay 0`` … ``decay 100``: decoupled weight decay on every weight matrix after each step
  (θ ← (1 − lr·decay)·θ), the package's ``training.dense_decay``;
* ``first a, rest b`` and ``decay 10 + units``: the same decay split by layer (a on the first
  dense layer, b on the layers above) or extended to the per-input units' slopes, which the
  package never decays; the probe swaps in its own decay function for these rows;
* ``EMA b`` and ``decay 10, EMA b``: an exponential moving average of every parameter
  (θ̄ ← b·θ̄ + (1 − b)·θ after each step; the validation check, early stopping and the kept
  weights all use θ̄), undecayed and with decay 10; the probe patches the
  package's step-end and check functions for these rows;
* ``units 2, decay 10`` … ``hidden 32-32, decay 10``: a smaller or larger network (two or
  eight units per input instead of four; 16, 64 or two layers of 32 hidden units instead of
  one of 32) with decay 10;
* ``drop a`` and ``pair drop a``: input dropout in the dense fit's training steps (each
  training row's columns zeroed with probability a and the rest scaled by 1/(1 − a)); ``pair``
  drops a feature and all its knockoff copies together, so the mask treats x_j and x~_j
  alike; without decay unless the row says so; the probe patches the package's step for these rows;
* ``true inputs``: the default fit on the relevant features' columns and their knockoff copies
  only (what the network reaches once the search among inputs is removed);
* ``true features``: the default fit on the relevant features alone, no knockoff columns.

Run:  .venv/bin/python benchmarks/probe_dense_fit.py --results <study>/results \
          --design ar1-p50-s10-k2 --replicates 20 --out dense_probe.md
Writes a Markdown table (validation accuracy − gradient boosting's, mean ± se over
replicates, and the mean best epoch) to stdout and --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import knockoffnet.path
from knockoffnet.dense import dense_fit
from knockoffnet.scores import reference_score
from knockoffnet.train_config import TrainConfig
from knockoffnet.train_data import split_indices

SEED = 7
VARIANTS: dict[str, dict] = {
    "default": {},
    "lr 1e-3": {"learning_rate": 1e-3},
    "batch 32": {"batch_size": 32},
    "hidden 64": {"hidden": (64,)},
    "units 0": {"units": 0},
    "patience 50": {"patience": 50},
    "decay 0": {"dense_decay": 0.0},
    "decay 1": {"dense_decay": 1.0},
    "decay 10": {"dense_decay": 10.0},
    "decay 30": {"dense_decay": 30.0},
    "decay 100": {"dense_decay": 100.0},
    "first 10, rest 0": {"dense_decay": 10.0},
    "first 30, rest 0": {"dense_decay": 30.0},
    "first 30, rest 10": {"dense_decay": 30.0},
    "first 20, rest 5": {"dense_decay": 20.0},
    "decay 10 + units": {"dense_decay": 10.0},
    "EMA 0.9": {"dense_decay": 0.0},
    "EMA 0.99": {"dense_decay": 0.0},
    "decay 10, EMA 0.9": {"dense_decay": 10.0},
    "decay 10, EMA 0.99": {"dense_decay": 10.0},
    "units 2, decay 10": {"units": 2, "dense_decay": 10.0},
    "hidden 16, decay 10": {"hidden": (16,), "dense_decay": 10.0},
    "units 2, hidden 16, decay 10": {"units": 2, "hidden": (16,), "dense_decay": 10.0},
    "units 8, decay 10": {"units": 8, "dense_decay": 10.0},
    "hidden 64, decay 10": {"hidden": (64,), "dense_decay": 10.0},
    "hidden 32-32, decay 10": {"hidden": (32, 32), "dense_decay": 10.0},
    "drop 0.2": {"dense_decay": 0.0},
    "drop 0.5": {"dense_decay": 0.0},
    "pair drop 0.2": {"dense_decay": 0.0},
    "pair drop 0.5": {"dense_decay": 0.0},
    "decay 10, pair drop 0.2": {"dense_decay": 10.0},
    "decay 10, drop 0.2": {"dense_decay": 10.0},
    "true inputs": {},
    "true features": {},
}


# (first layer, layers above, units' slopes) for the rows that split the decay by layer.
LAYER_DECAYS: dict[str, tuple[float, float, float]] = {
    "first 10, rest 0": (10.0, 0.0, 0.0),
    "first 30, rest 0": (30.0, 0.0, 0.0),
    "first 30, rest 10": (30.0, 10.0, 0.0),
    "first 20, rest 5": (20.0, 5.0, 0.0),
    "decay 10 + units": (10.0, 10.0, 10.0),
}
# β of the rows that average the weights.
EMA_BETAS: dict[str, float] = {
    "EMA 0.9": 0.9,
    "EMA 0.99": 0.99,
    "decay 10, EMA 0.9": 0.9,
    "decay 10, EMA 0.99": 0.99,
}
# (rate, whether a feature's copies share the mask) of the input-dropout rows.
DROPOUTS: dict[str, tuple[float, bool]] = {
    "drop 0.2": (0.2, False),
    "drop 0.5": (0.5, False),
    "pair drop 0.2": (0.2, True),
    "pair drop 0.5": (0.5, True),
    "decay 10, pair drop 0.2": (0.2, True),
    "decay 10, drop 0.2": (0.2, False),
}
_PACKAGE_DECAY = knockoffnet.path._decay_weights
_PACKAGE_STEP = knockoffnet.path._one_step
_PACKAGE_RECORD = knockoffnet.path._record_epoch


def _decay_by_layer(split: tuple[float, float, float]):
    """A stand-in for the package's decay step that decays each part at its own rate."""

    def decay(st, cfg, _decay: float) -> None:
        first, rest, units = split
        for i, w in enumerate(st.net.ws):
            w.mul_(1.0 - cfg.lr * (first if i == 0 else rest))
        if units > 0 and st.net.ua is not None:
            st.net.ua.mul_(1.0 - cfg.lr * units)

    return decay


def _dropped(rate: float, paired: bool, p: int, seed: int):
    """A stand-in for the package's optimiser step that trains on the batch with input
    dropout (a mask per row; with ``paired`` one mask per feature shared by its copies)."""
    gen = torch.Generator().manual_seed(seed)

    def step(st, x, y, cfg) -> None:
        cols = p if paired else x.shape[1]
        keep = (torch.rand(x.shape[0], cols, generator=gen) >= rate).to(x.dtype)
        if paired:
            keep = keep.repeat(1, x.shape[1] // p)
        _PACKAGE_STEP(st, x * keep / (1.0 - rate), y, cfg)

    return step


def _averaged(beta: float, decay_step):
    """Stand-ins for the package's step end (decay, then the average's update) and its
    validation check (run on the averaged weights, which are what it keeps)."""
    avg: dict[int, list[torch.Tensor]] = {}

    def decay(st, cfg, d: float) -> None:
        decay_step(st, cfg, d)
        cur = st.net.tensors()
        if id(st) not in avg:
            avg[id(st)] = [t.detach().clone() for t in cur]
            return
        for a, t in zip(avg[id(st)], cur, strict=True):
            a.mul_(beta).add_(t, alpha=1.0 - beta)

    def record(rec, st, epoch, data, cfg):
        cur = st.net.tensors()
        saved = [t.detach().clone() for t in cur]
        for t, a in zip(cur, avg.get(id(st), saved), strict=True):
            t.copy_(a)
        try:
            return _PACKAGE_RECORD(rec, st, epoch, data, cfg)
        finally:
            for t, v in zip(cur, saved, strict=True):
                t.copy_(v)

    return decay, record


def replicate(
    results: Path, design: str, rep: int, names: list[str]
) -> dict[str, tuple[float, int]]:
    """{variant: (validation accuracy − gradient boosting's, best epoch)} for one replicate."""
    run = results / f"sim_{design}_{rep}"
    X, y = np.load(run / "data" / "X.npy"), np.load(run / "data" / "y.npy")
    Xk = np.load(run / "knockoffs" / "draw0.npy")
    U = np.hstack([X, Xk]).astype(np.float32)
    meta = json.loads((run / "data" / "meta.json").read_text())
    truth = json.loads(
        (results / "simulation" / "cohorts" / design / f"rep{rep}_truth.json").read_text()
    )
    p = X.shape[1]
    rel = np.array([meta["features"].index(f) for f in truth["relevant"]])
    copies = U.shape[1] // p
    cols = np.concatenate([rel + c * p for c in range(copies)])
    base = TrainConfig(task="binary", n_classes=2)
    train, val = split_indices(y, base, SEED)
    gb = reference_score(U, y, train, val, "binary", SEED, "gb", threads=1)
    out = {}
    for name in names:
        change = VARIANTS[name]
        data = {"true inputs": U[:, cols], "true features": U[:, rel]}.get(name, U)
        split = LAYER_DECAYS.get(name)
        step_end = _decay_by_layer(split) if split else _PACKAGE_DECAY
        check = _PACKAGE_RECORD
        if name in EMA_BETAS:
            step_end, check = _averaged(EMA_BETAS[name], step_end)
        knockoffnet.path._decay_weights, knockoffnet.path._record_epoch = step_end, check
        if name in DROPOUTS:
            knockoffnet.path._one_step = _dropped(*DROPOUTS[name], p, SEED)
        try:
            fit = dense_fit(data, y, replace(base, **change), SEED, log=lambda _m: None)
        finally:
            knockoffnet.path._decay_weights = _PACKAGE_DECAY
            knockoffnet.path._record_epoch = _PACKAGE_RECORD
            knockoffnet.path._one_step = _PACKAGE_STEP
        out[name] = (float(fit["val_accuracy"][0]) - gb, int(fit["best_epoch"][0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--design", default="ar1-p50-s10-k2")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args()
    rows = [replicate(args.results, args.design, r, args.variants) for r in range(args.replicates)]
    lines = [
        f"| variant ({args.design}, {len(rows)} replicates) | dense − GB | best epoch |",
        "|---|---|---|",
    ]
    for name in args.variants:
        gap = np.array([r[name][0] for r in rows])
        epochs = np.array([r[name][1] for r in rows])
        se = gap.std(ddof=1) / np.sqrt(gap.size)
        lines.append(f"| {name} | {gap.mean():+.3f} ± {se:.3f} | {epochs.mean():.1f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
