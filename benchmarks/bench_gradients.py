"""One training step's hand-written backward pass against another checkout's, same run.

Loads ``network.gradients`` from this checkout and from ``--baseline`` (a checkout, e.g. a
``git worktree`` of the commit before a change) into one process, trains two copies of the
same network on the same mini-batches, alternating rounds of ``--steps`` steps between the
two, and prints each one's milliseconds per step (minimum and median over the rounds: this
machine's timings vary by up to 2× between rounds, the minimum is the least disturbed) and
whether the two networks are still identical bit for bit after every step they took.

    python benchmarks/bench_gradients.py --baseline /path/to/old/checkout --p 1000
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    ap.add_argument("--p", type=int, default=1000, help="features (2p inputs)")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=50, help="steps per round")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    from bench_gpu import config

    from knockoffnet import optim
    from knockoffnet import path as P
    from knockoffnet.network import gradients, stack

    old = _module(args.baseline / "scripts" / "knockoffnet" / "network.py", "baseline_network")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    U = rng.standard_normal((args.rows, 2 * args.p)).astype(np.float32)
    y = (rng.random(args.rows) < 0.5).astype(np.int64)
    cfg = config("cpu", args.threads, batch_size=128)
    impls = {"baseline": old.gradients, "current": gradients}
    with P.prepared(U, y, cfg, 1, lambda msg: None) as data:
        pen = torch.full((1,), 1e-3, dtype=torch.float64)
        start = P.start_net(None, data, cfg, 1)
        states = {k: optim.new_state(stack(start, 1), pen, cfg.optimizer) for k in impls}
        batches = P._batches(data, cfg, torch.Generator().manual_seed(0))
        rows = [next(batches) for _ in range(args.steps)]
        times: dict[str, list[float]] = {k: [] for k in impls}
        same = True
        for _ in range(args.rounds):
            for name, grad in impls.items():
                st = states[name]
                t = time.perf_counter()
                for r in rows:
                    x = data.u_train[r]
                    g = grad(st.net, x, data.y_train[r], cfg.activation, cfg.task, st.work)
                    optim.step(st, g, cfg.optimizer, cfg.lr, cfg.momentum, cfg.penalty, x.shape[1])
                times[name].append((time.perf_counter() - t) / args.steps * 1e3)
            a, b = (states[k].net.tensors() for k in impls)
            same &= all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    print(
        f"p = {args.p}, batch 128, {args.threads} thread(s), {args.rounds} rounds of {args.steps}"
    )
    for name, t in times.items():
        t = np.asarray(t[1:])  # the first round warms the caches
        print(f"{name}: min {t.min():.2f} ms/step, median {np.median(t):.2f}")
    ratio = min(times["current"][1:]) / min(times["baseline"][1:])
    print(f"current / baseline (minimum): {ratio:.2f}; identical networks throughout: {same}")


if __name__ == "__main__":
    main()
