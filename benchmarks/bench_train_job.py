"""Time one `train` job of a finished run with the code of any checkout (issue 16).

Re-runs the λ values of one training job (``scripts/train.py`` without Snakemake) on a run
directory's stored [X, X~], λ grid and dense fit, with the package of ``--code`` (a
checkout; default this one), and prints the wall time, the checks and how the result compares
with the run's stored ``chunk{lam}.npz`` (the same λ when the run's jobs held one λ each, as
``lambdas_per_job: auto`` gives at 100,000 × 1,000). Running two checkouts side by side gives a same-run ratio
without repeating the rest of the run (the grid, the other λ). ``--grid`` times the grid
job's dense fit and λ check instead, ``--collect`` the `collect_z` job's evaluation of the
chosen and dense networks (its time and peak RSS), ``--threads`` sets the threads:

    python benchmarks/bench_train_job.py --workdir <run dir> --cohort scale --lam 19 \
        --code <old checkout> --out old.npz &
    python benchmarks/bench_train_job.py --workdir <run dir> --cohort scale --lam 19 \
        --out new.npz

The training settings are the schema defaults merged with the run's ``config.yaml``
(``training`` and ``network`` blocks), as the workflow would give them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from bench_gpu import schema_defaults  # before --code's scripts/ goes first on sys.path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="the finished run's directory")
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--draw", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0, help="the training seed's index")
    ap.add_argument("--lam", type=int, help="index of the λ in the seed's grid")
    ap.add_argument(
        "--grid", action="store_true", help="time the grid job's dense fit and λ check instead"
    )
    ap.add_argument(
        "--collect",
        action="store_true",
        help="time collect_z's scores and importances and report the process's peak RSS",
    )
    ap.add_argument(
        "--eval-budget",
        type=int,
        help="with --collect: log2 of network.EXPANSION_BUDGET (smaller row blocks, more of "
        "them: magnifies heap growth per block)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose package trains")
    ap.add_argument("--out", type=Path, help="save the result (.npz)")
    args = ap.parse_args()
    if (args.lam is not None) + args.grid + args.collect != 1:
        ap.error("give one of --lam, --grid or --collect")
    sys.path.insert(0, str(args.code / "scripts"))
    from knockoffnet.network import net_from_arrays
    from knockoffnet.path import dense_fit, train_path

    try:
        from knockoffnet.grid import lambda_grid
    except ImportError:  # a checkout from before the grid had its own module
        from knockoffnet.path import lambda_grid
    from knockoffnet.runtime import load_columns, train_config
    from knockoffnet.seeds import derive_seed

    config = yaml.safe_load((args.workdir / "config.yaml").read_text())

    def block(name: str) -> dict:
        return {**schema_defaults(name, args.code), **config.get(name, {})}

    net, tr = block("network"), block("training")
    run = args.workdir / "results" / args.cohort
    meta = json.loads((run / "data" / "meta.json").read_text())
    y, C = np.load(run / "data" / "y.npy"), np.load(run / "data" / "C.npy")
    U = load_columns([run / "data" / "X.npy", run / "knockoffs" / f"draw{args.draw}.npy", C])
    cfg = train_config(net, tr, meta, int(C.shape[1]), threads=args.threads)
    seed = derive_seed(config["seed"], "train", args.cohort, args.draw, args.seed)
    path = run / "path" / f"draw{args.draw}_seed{args.seed}"
    grid = np.load(path / "grid.npy")
    start = None
    if cfg.start == "warm":
        with np.load(path / "dense.npz") as dense:
            start = net_from_arrays(dict(dense), 0)
    if args.collect:
        if args.eval_budget is not None:
            import knockoffnet.network

            knockoffnet.network.EXPANSION_BUDGET = 2**args.eval_budget
        time_collect(U, y, cfg, seed, path, run / "z" / f"{path.name}.npz", meta["p"])
        return
    if args.grid:
        time_grid(U, y, cfg, seed, grid, tr["lambdas"], start, dense_fit, lambda_grid)
        return
    t0 = time.perf_counter()
    res = train_path(U, y, grid[args.lam : args.lam + 1], cfg, seed, start=start, log=print)
    wall = time.perf_counter() - t0
    print(f"wall {wall:.1f} s; checks {res['epochs'].tolist()}, best {res['best_epoch'].tolist()}")
    stored = path / f"chunk{args.lam}.npz"
    if stored.exists():
        with np.load(stored) as old:
            same = [
                k
                for k in old.files
                if k in res and np.array_equal(old[k], res[k], equal_nan=old[k].dtype.kind == "f")
            ]
            print(f"identical to the stored {stored.name}: {len(same)} of {len(old.files)} arrays")
    if args.out:
        np.savez(args.out, **res)


def time_grid(U, y, cfg, seed, stored, lambdas, start, dense_fit, lambda_grid) -> None:
    """The grid job's two fits, timed apart: the dense fit from scratch, then the λ check
    from the run's stored dense fit (so a change to one does not move the other)."""
    t0 = time.perf_counter()
    dense_fit(U, y, cfg, seed, log=print)
    print(f"dense fit: wall {time.perf_counter() - t0:.1f} s ({cfg.threads} threads)")
    t0 = time.perf_counter()
    grid = lambda_grid(
        U, y, cfg, seed, count=stored.size, ratio=lambdas["ratio"], start=start, log=print
    )
    print(f"λ check: wall {time.perf_counter() - t0:.1f} s ({cfg.threads} threads)")
    print(f"grid identical to the stored grid.npy: {np.array_equal(grid, stored)}")


def time_collect(U, y, cfg, seed, path: Path, stored: Path, p: int) -> None:
    """collect_z's evaluation (validation scores of the dense and chosen networks, then the
    chosen network's importances over every row), timed, with the peak RSS of the process
    (the kernel's high-water mark, which includes the loaded [X, X~])."""
    import resource

    from knockoffnet.importance import run_importances
    from knockoffnet.network import net_from_arrays
    from knockoffnet.path import concat_chunks, split_indices, z_statistics
    from knockoffnet.scores import network_score

    def peak() -> str:
        return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"

    print(f"after loading [X, X~]: peak RSS {peak()}")
    chunks = sorted(path.glob("chunk*.npz"), key=lambda f: int(f.stem.removeprefix("chunk")))
    arrays = concat_chunks([dict(np.load(f)) for f in chunks])
    with np.load(path / "dense.npz") as f:
        dense = dict(f)
    t0 = time.perf_counter()
    chosen = int(np.nanargmin(arrays["val_loss"]))
    net = net_from_arrays(arrays, chosen)
    _, val = split_indices(y, cfg, seed)
    for name, model in (("dense", net_from_arrays(dense, 0)), ("chosen", net)):
        score = network_score(model, U[val], y[val], cfg.task, cfg.activation)
        print(f"{name} network's validation score {score:.4f}: peak RSS {peak()}")
    z = z_statistics(
        np.asarray(arrays["lambdas"]), [arrays[f"W{i}"] for i in range(len(cfg.hidden) + 1)]
    )
    summary = run_importances(net, z[0], U, p, cfg.activation, cfg.covariates)
    print(f"importances: peak RSS {peak()}; wall {time.perf_counter() - t0:.1f} s")
    if stored.exists():
        with np.load(stored) as old:
            same = [k for k in summary if k in old.files and np.array_equal(old[k], summary[k])]
            print(f"identical to the stored {stored.name}: {len(same)} of {len(summary)} arrays")


if __name__ == "__main__":
    main()
