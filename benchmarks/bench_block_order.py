"""Benchmark: what the correlation order costs a block-wise draw of a wide table (issue 16).

A table cohort drawn block by block (`knockoffs.sampling: blocks`) is cut, by default, from
a correlation order (`knockoffs.block_order: auto`, docs/method.md "Block order"); the
baseline is the same draw cut from the columns as given (`block_order: columns`), run in
the same invocation on the same file. Design: n × p float32 features in clusters of five
(within-cluster r = 0.8) whose columns are shuffled, stored as .npy and memory-mapped as
the knockoffs rule reads it. Each (p, order) runs in a fresh process, so its peak RSS is
its own; reported: wall seconds of the whole draw and of the order alone, peak RSS, the
draw's largest cross-block |corr| and whether it was flagged.

    .venv/bin/python benchmarks/bench_block_order.py --n 10000 --p 10000 20000 50000 \
        --out /tmp/bench_block_order.md
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def write_cohort(path: Path, n: int, p: int, seed: int = 0) -> None:
    """Shuffled clusters of five at r = 0.8, written by column chunks (float32 .npy)."""
    rng = np.random.default_rng(seed)
    shuffle = rng.permutation(p)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, p))
    for a in range(0, n, 2_000):
        b = min(n, a + 2_000)
        shared = rng.standard_normal((b - a, p // 5), dtype=np.float32)
        noise = rng.standard_normal((b - a, p), dtype=np.float32)
        block = np.sqrt(0.8) * np.repeat(shared, 5, axis=1) + np.sqrt(0.2) * noise
        X[a:b] = block[:, shuffle]
    X.flush()
    del X


def worker(path: str, order: str) -> dict:
    """One block-wise draw (and, timed apart, its order) in this process."""
    from knockoffnet.knockoff_blocks import block_order
    from knockoffnet.knockoffs import make_knockoffs

    X = np.load(path, mmap_mode="r")
    start = time.perf_counter()
    block_order(order, X)
    order_s = time.perf_counter() - start
    start = time.perf_counter()
    _, _, info = make_knockoffs(X, seed=1, sampling="blocks", block_order=order)
    return {
        "draw_s": time.perf_counter() - start,
        "order_s": order_s,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cross": float(info["max_cross_block_corr"]),
        "flag": bool(info["flag"]),
        "blocks": int(info["blocks"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--p", type=int, nargs="+", default=[10_000, 20_000])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--worker", nargs=2, metavar=("NPY", "ORDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    lines = [
        f"n = {args.n}; `block_order: columns` is the baseline, same file, same run",
        "",
        "| p | order | draw s (ratio) | of which the order | peak MB (ratio) | blocks | "
        "largest cross-block corr | flagged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for p in args.p:
            path = Path(tmp) / f"X_{p}.npy"
            write_cohort(path, args.n, p)
            runs = {}
            for order in ("columns", "correlation"):
                cmd = [sys.executable, __file__, "--worker", str(path), order]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                runs[order] = json.loads(out.stdout.strip().splitlines()[-1])
            base = runs["columns"]
            for order, r in runs.items():
                lines.append(
                    f"| {p:,} | {order} | {r['draw_s']:.1f} ({r['draw_s'] / base['draw_s']:.2f}×)"
                    f" | {r['order_s']:.1f} | {r['peak_mb']:,.0f} "
                    f"({r['peak_mb'] / base['peak_mb']:.2f}×) | {r['blocks']} | "
                    f"{r['cross']:.2f} | {'yes' if r['flag'] else 'no'} |"
                )
            path.unlink()
            print("\n".join(lines[-2:]), flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
