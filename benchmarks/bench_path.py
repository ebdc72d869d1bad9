"""Benchmarks of the λ-path trainer (scripts/knockoffnet/path.py).

Parts (``--part``, default all):

* ``step``: step-rule convergence — the penalised *training* objective
  ``mean loss + (λ/2m)·Σ|θ|`` after a fixed number of epochs (no early stopping) for each
  optimiser × learning rate, relative to the best value any rule reached for that λ.
* ``speed``: the paper's design (n = 1000, p = 100 → 200 inputs, hidden 264, 50 λ, one seed):
  the batched path vs the per-λ loop of the same code, identical epochs (no early stopping).
* ``flops``: achieved matmul FLOP rate of batched training (n = 20000, p = 500, hidden 64,
  20 λ) vs this machine's fp32 GEMM rate measured here with the same thread count.
* ``memory``: peak RSS (ru_maxrss) of a child process that only loads the data (baseline)
  vs children that run the batched and the sequential path (plus CUDA peak on a GPU).

Run: ``.venv/bin/python benchmarks/bench_path.py [--part all] [--threads 2] [--epochs 30]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from knockoffnet import grid as G
from knockoffnet import optim
from knockoffnet import path as P
from knockoffnet.network import evaluate, stack

# The setting the step rules were compared in (2026-11-22, benchmarks/README.md "Step rule"):
# the paper's input layer, element-wise L1, full batch up to 2,048 rows, else 1,024 a step.
# the paper's input layer, penalty and full batch; patience and cap as measured (before
# training.patience: auto, 2026-12-07)
STEP_SETTINGS = {"units": 0, "penalty": "l1", "batch_size": 0, "patience": 20, "max_epochs": 300}


def _quiet(msg: str) -> None:
    del msg


def synthetic(n: int, p: int, n_signal: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian X with independent Gaussian stand-in knockoffs; y binary, non-linear in signals."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Xk = rng.standard_normal((n, p))
    beta = rng.choice([-1.5, 1.5], n_signal)
    s = X[:, :n_signal]
    f = s @ beta / np.sqrt(n_signal) + np.tanh(s[:, 0] * s[:, 1 % n_signal])
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * f))).astype(np.int64)
    return np.hstack([X, Xk]).astype(np.float32), y


def train_objective(U, y, lambdas, cfg: P.TrainConfig, seed: int, epochs: int) -> np.ndarray:
    """Penalised training objective per λ after exactly ``epochs`` passes of ``cfg``'s rule,
    from the seed's random initialisation (the package's own step, batches and penalty)."""
    with P.prepared(U, y, cfg, seed, _quiet) as data:
        lam = torch.as_tensor(lambdas, dtype=torch.float64, device=data.u_train.device)
        start = P.start_net(None, data, cfg, seed)
        st = optim.new_state(stack(start, len(lambdas)), lam / (2.0 * data.m), cfg.optimizer)
        batches = P._batches(data, cfg, torch.Generator().manual_seed(seed))
        steps = -(-data.m // P._batch_size(data.m, cfg))  # one pass, whatever check_rows says
        for _ in range(epochs):
            P._run_check(st, data, cfg, batches, steps)
        loss, _ = evaluate(st.net, data.u_train, data.y_train, cfg.activation, cfg.task)
        pen = optim.penalty(st.net, cfg.penalty, data.d, cfg.covariates)
        return (loss + st.pen * pen).cpu().numpy()


def wdbc_with_knockoffs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The bundled WDBC cohort, standardised, with equicorrelated Gaussian knockoffs.

    Real, strongly correlated features (the largest eigenvalue of corr([X, X~]) is ≈ 27),
    which is where a too-large step first becomes unstable.
    """
    import pandas as pd

    df = pd.read_csv(Path(__file__).resolve().parents[1] / "resources" / "wdbc.csv")
    X = df.iloc[:, 2:].to_numpy(float)
    X = (X - X.mean(0)) / X.std(0)
    y = (df["diagnosis"] == "M").to_numpy().astype(np.int64)
    S = np.cov(X.T)
    s = 0.999 * min(1.0, 2 * np.linalg.eigvalsh(S).min())
    Si = np.linalg.inv(S)
    mean = X - s * X @ Si
    cov = 2 * s * np.eye(S.shape[0]) - s * s * Si
    L = np.linalg.cholesky(cov + 1e-9 * np.eye(S.shape[0]))
    Xk = mean + np.random.default_rng(seed).standard_normal(X.shape) @ L.T
    return np.hstack([X, Xk]).astype(np.float32), y


def part_step(args) -> dict:
    """Step-rule comparison on a full-batch, a mini-batch and a real (WDBC) case."""
    rules = {
        "plain": [0.3, 1.0],
        "momentum": [0.03, 0.1, 0.3],
        "fista": [0.1, 0.3, 1.0],
    }
    e = args.step_epochs
    cases = {
        "full-batch n=1000 p=50 h=64": (lambda: synthetic(1000, 50, 5, seed=1), e),
        "mini-batch n=8000 p=50 h=64": (lambda: synthetic(8000, 50, 5, seed=1), max(e // 5, 1)),
        "WDBC n=569 p=30 h=64 (Gaussian knockoffs)": (wdbc_with_knockoffs, 2 * e),
    }
    out = {}
    for case, (make, epochs) in cases.items():
        U, y = make()
        base = P.TrainConfig(hidden=(64,), threads=args.threads, device="cpu", **STEP_SETTINGS)
        grid = G.lambda_grid(U, y, base, seed=1, count=40, log=_quiet)
        lambdas = grid[[5, 15, 25, 35]]
        res = {}
        for rule, lrs in rules.items():
            for lr in lrs:
                cfg = P.TrainConfig(
                    hidden=(64,),
                    optimizer=rule,
                    learning_rate=lr,
                    threads=args.threads,
                    device="cpu",
                    **STEP_SETTINGS,
                )
                t = time.perf_counter()
                obj = train_objective(U, y, lambdas, cfg, 1, epochs)
                res[f"{rule} lr={lr}"] = (obj, time.perf_counter() - t)
        best = np.nanmin(np.stack([v[0] for v in res.values()]), 0)
        rows = {
            k: {
                "objective": [round(float(x), 5) for x in v[0]],
                "excess_pct": [
                    round(float(100 * (x / b - 1)), 2) for x, b in zip(v[0], best, strict=True)
                ],
                "mean_excess_pct": round(float(np.mean(100 * (v[0] / best - 1))), 2),
                "seconds": round(v[1], 2),
            }
            for k, v in res.items()
        }
        out[case] = {"epochs": epochs, "lambdas": [round(float(x), 4) for x in lambdas], **rows}
        print(f"\n[step] {case}, {epochs} epochs, λ = {np.round(lambdas, 3).tolist()}")
        for k, v in rows.items():
            print(f"  {k:18s} mean excess {v['mean_excess_pct']:8.2f}%  {v['excess_pct']}")
    return out


def _mm_flops(sizes: list[int], rows: int, n_lam: int, backward: bool) -> float:
    """Matmul FLOPs of one pass over ``rows`` rows: forward 2·rows·in·out per layer and λ;
    backward adds the weight gradient (same) and, above the first layer, the input gradient."""
    total = 0.0
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        per = 2.0 * rows * a * b * n_lam
        total += per * ((3 if i > 0 else 2) if backward else 1)
    return total


def gemm_rate(threads: int, n: int = 4096, reps: int = 5) -> float:
    """This machine's fp32 GEMM rate (FLOP/s), best of ``reps`` square n×n products."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def paper_design(args):
    U, y = synthetic(1000, 100, 33, seed=2)
    cfg = P.TrainConfig(
        hidden=(264,),
        max_epochs=args.epochs,
        patience=args.epochs,
        threads=args.threads,
        device=args.device,
    )
    return U, y, cfg


def part_speed(args) -> dict:
    """(a) batched vs per-λ loop, identical work (no early stopping), the paper's design."""
    U, y, cfg = paper_design(args)
    t = time.perf_counter()
    grid = G.lambda_grid(U, y, cfg, seed=1, count=50, log=_quiet)
    t_grid = time.perf_counter() - t
    t_b = t_s = np.inf
    for _ in range(args.repeats):  # alternate, keep the best: the machine may be shared
        t = time.perf_counter()
        batched = P.train_path(U, y, grid, cfg, seed=1, log=_quiet)
        t_b = min(t_b, time.perf_counter() - t)
        t = time.perf_counter()
        seq = P.train_path_sequential(U, y, grid, cfg, seed=1, log=_quiet)
        t_s = min(t_s, time.perf_counter() - t)
    same = all(np.array_equal(batched[k], seq[k], equal_nan=True) for k in batched)
    m = round(0.8 * U.shape[0])
    flops = args.epochs * (
        _mm_flops([200, 264, 1], m, 50, True) + _mm_flops([200, 264, 1], 1000 - m, 50, False)
    )
    res = {
        "design": "n=1000, 200 inputs, hidden 264, 50 λ, full batch, "
        f"{args.epochs} epochs per λ (patience = max_epochs), best of {args.repeats}",
        "grid_seconds": round(t_grid, 2),
        "batched_seconds": round(t_b, 2),
        "sequential_seconds": round(t_s, 2),
        "speedup": round(t_s / t_b, 2),
        "identical_results": same,
        "batched_gflops": round(flops / t_b / 1e9, 1),
        "sequential_gflops": round(flops / t_s / 1e9, 1),
    }
    print(f"\n[speed] {res}")
    return res


def part_flops(args) -> dict:
    """(b) achieved matmul FLOP rate of batched training vs the measured GEMM rate."""
    n, p, h, n_lam, ep = 20000, 500, 64, 20, args.flops_epochs
    U, y = synthetic(n, p, 20, seed=3)
    cfg = P.TrainConfig(
        hidden=(h,), max_epochs=ep, patience=ep, threads=args.threads, device=args.device
    )
    lambdas = np.geomspace(50.0, 0.05, n_lam)
    peak_before = gemm_rate(args.threads)  # bracket the runs: the load may change meanwhile
    t_train = np.inf
    for _ in range(args.repeats):
        t = time.perf_counter()
        P.train_path(U, y, lambdas, cfg, seed=1, log=_quiet)
        t_train = min(t_train, time.perf_counter() - t)
    peak_after = gemm_rate(args.threads)
    sizes = [2 * p, h, 1]
    m = n - round(0.2 * n)
    flops = ep * (_mm_flops(sizes, m, n_lam, True) + _mm_flops(sizes, n - m, n_lam, False))
    flops += _mm_flops(sizes, m, n_lam, False)  # final training-loss pass at the kept weights
    peak = max(peak_before, peak_after)
    rate = flops / t_train
    res = {
        "design": f"n={n}, {2 * p} inputs, hidden {h}, {n_lam} λ, batch "
        f"{P._batch_size(m, cfg)}, {ep} epochs, best of {args.repeats}",
        "seconds": round(t_train, 2),
        "matmul_gflop": round(flops / 1e9, 1),
        "achieved_gflops": round(rate / 1e9, 1),
        "gemm_peak_gflops": round(peak / 1e9, 1),
        "gemm_before_after_gflops": [round(peak_before / 1e9, 1), round(peak_after / 1e9, 1)],
        "fraction_of_peak": round(rate / peak, 3),
    }
    print(f"\n[flops] {res}")
    return res


def child(args) -> None:
    """Run one memory scenario in this (fresh) process and print its peak RSS."""
    torch.set_num_threads(args.threads)
    U, y, cfg = paper_design(args)
    grid = np.geomspace(100.0, 0.1, 50)
    if args.child == "batched":
        P.train_path(U, y, grid, cfg, seed=1, log=_quiet)
    elif args.child == "sequential":
        P.train_path_sequential(U, y, grid, cfg, seed=1, log=_quiet)
    else:
        with P.prepared(U, y, cfg, 1, _quiet):
            pass
    cuda = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"rss_mb": rss_mb, "hwm_mb": _vm_hwm_mb(), "cuda_mb": _mb(cuda)}))


def _mb(x: float | None) -> float | None:
    return None if x is None else round(x / 2**20, 1)


def _vm_hwm_mb() -> float | None:
    """Peak RSS of this process image (VmHWM, Linux). Unlike ru_maxrss it is not inherited
    from the parent across fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def part_memory(args) -> dict:
    """(c) peak memory of batched vs sequential training, relative to a data-only child."""
    res = {}
    for mode in ("baseline", "batched", "sequential"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--threads",
            str(args.threads),
            "--epochs",
            str(args.mem_epochs),
            "--device",
            args.device,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        res[mode] = json.loads(out.strip().splitlines()[-1])
    key = "hwm_mb" if res["baseline"]["hwm_mb"] is not None else "rss_mb"
    peak = {k: v[key] for k, v in res.items()}
    params = 50 * (200 * 264 + 264 + 264 + 1) * 4 / 2**20
    acts = 50 * 800 * 264 * 4 / 2**20
    summary = {
        "design": f"paper design, {args.mem_epochs} epochs",
        "measure": key
        + " (ru_maxrss of each child: "
        + ", ".join(f"{k} {round(v['rss_mb'], 1)}" for k, v in res.items())
        + ")",
        **{f"{k}_peak_mb": round(v, 1) for k, v in peak.items()},
        "batched_over_baseline_mb": round(peak["batched"] - peak["baseline"], 1),
        "sequential_over_baseline_mb": round(peak["sequential"] - peak["baseline"], 1),
        "batched_vs_baseline_ratio": round(peak["batched"] / peak["baseline"], 2),
        "batched_vs_sequential_ratio": round(peak["batched"] / peak["sequential"], 2),
        "one_copy_all_lambda_weights_mb": round(params, 1),
        "one_activation_tensor_mb": round(acts, 1),
        "cuda_peak_mb": {k: v["cuda_mb"] for k, v in res.items()},
    }
    print(f"\n[memory] {summary}")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--part", default="all", choices=["all", "step", "speed", "flops", "memory"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--step-epochs", type=int, default=150, help="full-batch case epochs")
    ap.add_argument("--epochs", type=int, default=30, help="epochs per λ for speed/memory")
    ap.add_argument("--flops-epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2, help="speed/flops: best of this many")
    ap.add_argument("--mem-epochs", type=int, default=5, help="epochs per λ for memory")
    ap.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    torch.set_num_threads(args.threads)
    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    # memory first: the children's peak RSS must not include a big parent's.
    parts = ["memory", "step", "speed", "flops"] if args.part == "all" else [args.part]
    for part in parts:
        figures[part] = globals()[f"part_{part}"](args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
