"""The training path on a GPU: checks and a 10-seed scale run (issue 16), without Snakemake.

The device machine this project is sometimes lent has PyTorch and CUDA but no Snakemake and
no network, and 15 minutes of device time per task; so this script calls the package's own
functions, the ones the workflow's jobs call, in one process tree, and writes every figure to
``--out`` (JSON, rewritten after each stage) so a run cut short still reports. Stages:

1. ``agreement``: a small genotype cohort's dense fit and λ path on the GPU and on the CPU
   (same seed, same grid): the largest weight difference, whether the same inputs stay alive
   at every λ, and whether a second GPU run is bit-identical (determinism).
2. ``syncs``: host↔device synchronisations counted by ``torch.cuda.set_sync_debug_mode``
   for two batch sizes over the same number of checks; per-step synchronisation would make
   the counts grow with the steps.
3. ``per_check``: three validation checks of the dense fit on the large cohort on the CPU
   (all cores) and on the GPU, fp32 and TF32: the same-run ratio.
4. ``scale``: the large cohort (the study's ``genotypes`` generator, 20 relevant variants,
   one knockoff draw), then ``--seeds`` training seeds at once, one process each (a GPU is
   latency-bound by one seed's small steps): dense fit, λ grid, all λ of the path as one
   batched job, Z, importances (on ``--importance-rows`` rows; the workflow's ``collect_z``
   uses all), then the workflow's statistics, filters and seed aggregation. Not run: the
   gradient-boosting reference, Reduce Weight, the report.

    python benchmarks/bench_gpu.py --n 500000 --p 1000 --seeds 10 --out gpu.json

``--device cpu`` runs every stage on the CPU (a small smoke run where there is no GPU).

One session's device time (15 minutes, one call at most 10) does not hold the whole 10-seed
run at 500,000 × 1,000 (2026-12-05: more than 483 s of seeds after a 73-s cohort). With
``--state DIR`` the cohort and each seed's dense fit and λ grid are kept in DIR (on the
device machine, an ignored path such as ``benchmarks/out/gpu_state`` survives between two
calls while the machine stays warm) and reused when present; ``--stop-after grid`` ends the
seeds there. So a first call builds the cohort, the dense fits and the grids and a second
call, right after it, trains the paths and selects::

    python3 benchmarks/bench_gpu.py --stages scale --state benchmarks/out/gpu_state \
        --stop-after grid --out $OUT/part1.json
    python3 benchmarks/bench_gpu.py --stages scale --state benchmarks/out/gpu_state \
        --out $OUT/part2.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

RELEVANT = 20
T0 = time.time()


def _filled(spec: dict):
    """A schema node's default, nested objects filled key by key (as the workflow's validation does)."""
    if "properties" not in spec:
        return spec.get("default")
    return {k: _filled(v) for k, v in spec["properties"].items()}


def schema_defaults(name: str, root: Path = ROOT) -> dict:
    """The config block ``name`` at the schema defaults of the checkout ``root`` (what the
    workflow's validation fills in; read without Snakemake, which a GPU machine may lack)."""
    schema = yaml.safe_load((root / "workflow" / "schemas" / "config.schema.yaml").read_text())
    return _filled(schema["properties"][name])


def config(device: str, threads: int = 1, **training):
    """The schema's default TrainConfig for a binary cohort, with ``training`` overrides."""
    from knockoffnet.runtime import train_config

    tr = {**schema_defaults("training"), "device": device, **training}
    meta = {"task": "binary", "classes": [0, 1]}
    return train_config(schema_defaults("network"), tr, meta, 0, threads)


def cohort(n: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(U = [X, X~] float32, y, feature names, relevant names): what ingest + knockoffs give."""
    from knockoffnet.knockoffs import make_knockoffs, standardise_columns
    from knockoffnet.simulation.generators import generate

    frame, relevant = generate("genotypes", n, seed, {"p": p, "s": min(RELEVANT, p // 2)})
    names = [c for c in frame.columns if c not in ("id", "y")]
    X = frame[names].to_numpy(np.float64, copy=True)
    y = frame["y"].to_numpy()
    del frame
    sd = X.std(axis=0)
    X -= X.mean(axis=0)
    X /= np.where(sd > 0, sd, 1.0)
    Xk, _, _ = make_knockoffs(X, seed=seed, names=names)
    U = np.empty((n, 2 * p), np.float32)
    U[:, :p], U[:, p:] = X, standardise_columns(Xk)[0]
    return U, y, names, relevant


def _alive(path: dict) -> np.ndarray:
    return np.asarray(path["inputs_alive"])


def agreement(device: str) -> dict:
    """Dense fit and a 6-λ path on ``device`` and on the CPU, and ``device`` twice."""
    import torch

    from knockoffnet.grid import lambda_grid
    from knockoffnet.network import net_from_arrays
    from knockoffnet.path import dense_fit, train_path

    U, y, _, _ = cohort(3000, 50, 7)
    quiet = lambda msg: None  # noqa: E731
    cpu = config("cpu")
    dense = dense_fit(U, y, cpu, 1, log=quiet)
    grid = lambda_grid(U, y, cpu, 1, count=6, start=net_from_arrays(dense, 0), log=quiet)

    def run(cfg) -> tuple[dict, dict]:
        d = dense_fit(U, y, cfg, 1, log=quiet)
        return d, train_path(U, y, grid, cfg, 1, start=net_from_arrays(d, 0), log=quiet)

    (d_cpu, p_cpu), (d_gpu, p_gpu), (_, p_gpu2) = run(cpu), run(config(device)), run(config(device))
    return {
        "device": device,
        "cuda": torch.cuda.is_available(),
        "dense_val_loss_cpu": float(d_cpu["val_loss"][0]),
        "dense_val_loss_gpu": float(d_gpu["val_loss"][0]),
        "dense_epochs_cpu_gpu": [int(d_cpu["best_epoch"][0]), int(d_gpu["best_epoch"][0])],
        "max_abs_diff_W0_path": float(np.abs(p_cpu["W0"] - p_gpu["W0"]).max()),
        "inputs_alive_cpu": _alive(p_cpu).tolist(),
        "inputs_alive_gpu": _alive(p_gpu).tolist(),
        "same_alive_inputs": bool(
            all(
                np.array_equal(a != 0, b != 0)
                for a, b in zip(np.abs(p_cpu["W0"]).sum(1), np.abs(p_gpu["W0"]).sum(1), strict=True)
            )
        ),
        "gpu_repeat_bit_identical": bool(
            all(np.array_equal(p_gpu[k], p_gpu2[k]) for k in p_gpu if k.startswith("W"))
        ),
    }


def syncs(device: str) -> dict:
    """Synchronising CUDA calls per fit for two batch sizes over five checks each."""
    import torch

    from knockoffnet.path import dense_fit

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA"}
    U, y, _, _ = cohort(4000, 50, 8)
    out = {}
    for bsz in (128, 32):
        cfg = config(device, max_epochs=5, patience=100, batch_size=bsz)
        torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dense_fit(U, y, cfg, 1, log=lambda msg: None)
        torch.cuda.set_sync_debug_mode("default")
        steps = 5 * -(-int(U.shape[0] * 0.8) // bsz)
        out[f"batch{bsz}"] = {"steps": steps, "syncs": len(caught)}
        where = sorted({str(w.filename).split("/")[-1] + f":{w.lineno}" for w in caught})
        out[f"batch{bsz}"]["where"] = where[:20]
    return out


def per_check(U: np.ndarray, y: np.ndarray, device: str, checks: int = 3) -> dict:
    """Seconds per validation check of the dense fit: CPU (all cores) vs device fp32/TF32."""
    import torch

    from knockoffnet.path import dense_fit

    out = {}
    settings = [("cpu", "cpu", os.cpu_count() or 1, False)]
    if torch.cuda.is_available():
        settings += [("gpu_fp32", device, 1, False), ("gpu_tf32", device, 1, True)]
    for name, dev, threads, tf32 in settings:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        cfg = config(dev, threads, max_epochs=checks, patience=100)
        t = time.perf_counter()
        res = dense_fit(U, y, cfg, 1, log=lambda msg: None)
        out[name] = {
            "s_per_check": (time.perf_counter() - t) / checks,
            "val_loss": float(res["val_loss"][0]),
        }
    torch.backends.cuda.matmul.allow_tf32 = False
    base = out["cpu"]["s_per_check"]
    for v in out.values():
        v["ratio_to_cpu"] = v["s_per_check"] / base
    return out


def _event(events: Path, **row) -> None:
    row["t"] = round(time.time() - T0, 1)
    with open(events, "a") as fh:  # one short append per line: whole lines from any process
        fh.write(json.dumps(row) + "\n")


def fit_seed(
    data: str, seed: int, device: str, rows: int, work: str, events: str, stop_after: str = ""
) -> None:
    """One seed as the workflow's lambda_grid, train and collect_z jobs would do it; a dense
    fit or grid already in ``data`` (``--state``) is reused, and ``stop_after`` "grid" ends
    the seed once its grid is saved."""
    try:
        from knockoffnet.grid import lambda_grid
        from knockoffnet.importance import run_importances
        from knockoffnet.network import net_arrays, net_from_arrays
        from knockoffnet.path import dense_fit, train_path, z_statistics
        from knockoffnet.vocabulary import lambda_count

        ev = Path(events)
        U, y = np.load(f"{data}/U.npy"), np.load(f"{data}/y.npy")
        p = U.shape[1] // 2
        cfg = config(device)
        lam = schema_defaults("training")["lambdas"]
        quiet = lambda msg: None  # noqa: E731
        saved_dense, saved_grid = Path(data, f"dense{seed}.npz"), Path(data, f"grid{seed}.npy")
        if saved_dense.exists() and saved_grid.exists():
            with np.load(saved_dense) as f:
                dense = dict(f)
            grid = np.load(saved_grid)
            _event(ev, seed=seed, stage="reused", what="dense fit and grid")
            start = net_from_arrays(dense, 0)
        else:
            t = time.perf_counter()
            dense = dense_fit(U, y, cfg, seed, log=quiet)
            t_dense = time.perf_counter() - t
            _event(ev, seed=seed, stage="dense", s=t_dense, checks=int(dense["epochs"][0]))
            start = net_from_arrays(dense, 0)
            t = time.perf_counter()
            grid = lambda_grid(
                U,
                y,
                cfg,
                seed,
                count=lambda_count(lam, y.size),
                ratio=lam["ratio"],
                start=start,
                log=quiet,
            )
            _event(ev, seed=seed, stage="grid", s=time.perf_counter() - t)
            np.savez(saved_dense, **dense)
            np.save(saved_grid, grid)
        if stop_after == "grid":
            return
        t = time.perf_counter()
        progress = lambda msg: _event(ev, seed=seed, stage="path_log", msg=msg)  # noqa: E731
        path = train_path(U, y, grid, cfg, seed, start=start, log=progress)
        _event(
            ev,
            seed=seed,
            stage="path",
            s=time.perf_counter() - t,
            checks=np.asarray(path["epochs"]).tolist(),
            val_accuracy=float(np.nanmax(path["val_accuracy"])),
        )
        t = time.perf_counter()
        Z = z_statistics(grid, [path[f"W{i}"] for i in range(len(cfg.hidden) + 1)])
        chosen = int(np.nanargmin(path["val_loss"]))
        net = net_from_arrays(path, chosen)
        sub = np.random.default_rng(seed).choice(U.shape[0], min(rows, U.shape[0]), False)
        summary = run_importances(net, Z[0], U[np.sort(sub)], p, cfg.activation, 0)
        np.savez(
            f"{work}/seed{seed}.npz",
            chosen=np.array(chosen),
            metric=np.array("accuracy"),
            **summary,
            **{f"Z{i}": z for i, z in enumerate(Z)},
            **net_arrays(net),
        )
        _event(ev, seed=seed, stage="z", s=time.perf_counter() - t)
    except Exception:
        _event(Path(events), seed=seed, stage="error", error=traceback.format_exc()[-2000:])
        raise


def select(work: Path, seeds: list[int], names: list[str], relevant: list[str]) -> dict:
    """The workflow's statistics, thresholds and seed aggregation on the seeds that finished."""
    from knockoffnet.selection import build_tables, run_statistics

    sel = schema_defaults("selection")
    runs = []
    for s in seeds:
        with np.load(work / f"seed{s}.npz") as f:
            runs.append(run_statistics(dict(f), 0, s, len(names), sel))
    p = len(names)
    meta = {"features": names, "p": p, "task": "binary", "classes": [0, 1]}
    meta.update(means=[0.0] * p, sds=[1.0] * p)  # standardised X; only the effect table reads them
    chosen = build_tables(runs, meta, sel)["selected"]
    truth = set(relevant)
    out = {}
    for flt, rows in chosen.groupby("filter"):
        hits = set(rows["feature"].astype(str))
        out[flt] = {"true": len(hits & truth), "false": len(hits - truth)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500_000)
    ap.add_argument("--p", type=int, default=1_000)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--importance-rows", type=int, default=20_000)
    ap.add_argument(
        "--budget", type=float, default=86_400.0, help="seconds from the start; then seeds stop"
    )
    ap.add_argument("--stages", default="agreement,syncs,per_check,scale")
    ap.add_argument(
        "--state",
        type=Path,
        help="keep the cohort, dense fits and grids here and reuse them (module docstring)",
    )
    ap.add_argument("--stop-after", choices=["grid"], default="", help="end each seed there")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import torch

    report: dict = {
        "command": " ".join(sys.argv),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cpus": os.cpu_count(),
    }
    stages = args.stages.split(",")

    def save(**kw) -> None:
        report.update(kw, elapsed_s=round(time.time() - T0, 1))
        args.out.write_text(json.dumps(report, indent=1))
        print(json.dumps(kw)[:3000], flush=True)

    for name, fn in (("agreement", agreement), ("syncs", syncs)):
        if name in stages:
            try:
                save(**{name: fn(args.device)})
            except Exception:
                save(**{name: {"error": traceback.format_exc()[-2000:]}})
    if not {"per_check", "scale"} & set(stages):
        return
    t = time.perf_counter()
    kept = args.state / "cohort.json" if args.state else None
    if kept is not None and kept.exists():
        U, y = np.load(args.state / "U.npy", mmap_mode="r"), np.load(args.state / "y.npy")
        names, relevant = (json.loads(kept.read_text())[k] for k in ("names", "relevant"))
        if U.shape != (args.n, 2 * args.p):
            raise SystemExit(f"--state {args.state} holds a {U.shape} cohort, not n × 2p")
        save(cohort={"n": args.n, "p": args.p, "reused": str(args.state), "relevant": relevant})
    else:
        U, y, names, relevant = cohort(args.n, args.p, 2026)
        save(cohort={"n": args.n, "p": args.p, "s": time.perf_counter() - t, "relevant": relevant})
    if "per_check" in stages:
        try:
            save(per_check=per_check(U, y, args.device))
        except Exception:
            save(per_check={"error": traceback.format_exc()[-2000:]})
    if "scale" not in stages:
        return
    import multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        data, work = args.state or Path(tmp, "data"), Path(tmp, "work")
        data.mkdir(parents=True, exist_ok=True)
        work.mkdir()
        if not (data / "cohort.json").exists():
            t = time.perf_counter()
            np.save(data / "U.npy", U)
            np.save(data / "y.npy", y)
            if args.state:
                (data / "cohort.json").write_text(
                    json.dumps({"names": names, "relevant": relevant})
                )
                save(state={"dir": str(data), "save_s": time.perf_counter() - t})
        del U
        events = args.out.with_suffix(".events.jsonl")
        events.unlink(missing_ok=True)
        ctx = mp.get_context("spawn")
        t = time.perf_counter()
        procs = [
            ctx.Process(
                target=fit_seed,
                args=(
                    str(data),
                    s,
                    args.device,
                    args.importance_rows,
                    str(work),
                    str(events),
                    args.stop_after,
                ),
            )
            for s in range(args.seeds)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:  # the seeds still training at the budget's end are stopped
            proc.join(timeout=max(1.0, args.budget - (time.time() - T0)))
            if proc.is_alive():
                proc.terminate()
                proc.join()
        wall = time.perf_counter() - t
        done = [s for s in range(args.seeds) if (work / f"seed{s}.npz").exists()]
        rows = [json.loads(line) for line in events.read_text().splitlines()]
        save(scale={"seeds": args.seeds, "seeds_done": len(done), "wall_s": wall, "events": rows})
        if done:
            save(selected=select(work, done, names, relevant))


if __name__ == "__main__":
    main()
