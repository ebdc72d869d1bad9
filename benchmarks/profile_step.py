"""Where one training step's time goes, on the CPU or a GPU (issue 16).

Times the optimiser step of the default network at p = 1,000 (2,000 inputs) for several
batch sizes, and one validation pass, then profiles ten steps at the default batch size:
operator calls per step and the operators that take the most (device) time. A step whose
wall time is far above its device time is bound by dispatching ~hundreds of small operators,
which no faster device changes; the remedy is fewer, larger operations (or CUDA graphs).

    python benchmarks/profile_step.py --device cuda --rows 100000 --out profile.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def measure(U: np.ndarray, y: np.ndarray, device: str, bsz: int, lambdas: int, profile: bool):
    """Step and validation times of one batch size; with ``profile``, the operators."""
    from bench_gpu import config

    from knockoffnet import optim
    from knockoffnet import path as P
    from knockoffnet.network import evaluate, stack

    cfg = config(device, 2, batch_size=bsz)
    with P.prepared(U, y, cfg, 1, lambda msg: None) as data:
        net = stack(P.start_net(None, data, cfg, 1), lambdas)
        pen = torch.full((lambdas,), 1e-3, dtype=torch.float64, device=net.ws[0].device)
        st = optim.new_state(net, pen, cfg.optimizer)
        batches = P._batches(data, cfg, torch.Generator().manual_seed(0))
        cuda = data.u_train.is_cuda

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize()

        def steps(k: int) -> None:
            for _ in range(k):
                rows = next(batches)
                P._one_step(st, data.u_train[rows], data.y_train[rows], cfg)

        steps(20)
        sync()
        t = time.perf_counter()
        steps(100)
        sync()
        row = {"step_ms": (time.perf_counter() - t) * 10}
        t = time.perf_counter()
        evaluate(st.net, data.u_val, data.y_val, cfg.activation, cfg.task, st.work)
        sync()
        row["validation_s"] = time.perf_counter() - t
        row["steps_per_check"] = P.steps_per_check(data.m, cfg)
        if not profile:
            return row
        acts = [torch.profiler.ProfilerActivity.CPU]
        if cuda:
            acts.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=acts) as prof:
            steps(10)
            sync()
    ka = prof.key_averages()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    # kernels only on a GPU: an operator's row repeats its kernels' device time (the
    # 2026-12-04 GPU figures summed both, an upper bound about twice the time)
    timed = [e for e in ka if not cuda or e.device_type == torch.autograd.DeviceType.CUDA]
    row["op_calls_per_step"] = sum(e.count for e in ka) / 10
    row["device_ms_per_step"] = sum(getattr(e, key) for e in timed) / 10 / 1e3
    top = sorted(ka, key=lambda e: -getattr(e, key))[:12]
    row["top"] = [[e.key, e.count / 10, getattr(e, key) / 10 / 1e3] for e in top]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--p", type=int, default=1_000)
    ap.add_argument("--lambdas", type=int, default=1, help="λ trained as one batch")
    ap.add_argument("--batches", default="128,512,2048")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    U = rng.standard_normal((args.rows, 2 * args.p)).astype(np.float32)
    y = (rng.random(args.rows) < 0.5).astype(np.int64)
    report: dict = {"command": " ".join(sys.argv), "torch": torch.__version__}
    for i, bsz in enumerate(int(b) for b in args.batches.split(",")):
        row = measure(U, y, args.device, bsz, args.lambdas, profile=i == 0)
        report[f"batch{bsz}"] = row
        print(json.dumps({f"batch{bsz}": row})[:1500], flush=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
