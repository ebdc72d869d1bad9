"""Runtime of a simulation study, from one measured replicate per cost class.

Why: the full study (``config/simulation.yaml``) is about 43,000 jobs, far too many to run on a
workstation just to learn how long it takes. A replicate's cost depends on the shape of its
cohort (n, p, outcome: 2 or 3 classes, ..., or continuous) and on the study's training and peer
settings, hardly on which features are relevant. So: run replicate 0 of one design per cost
class with the study's own config (Snakemake writes a benchmark file for every job), then

    total core-seconds = sum over designs of replicates x (core-seconds of its class's replicate)

where a job's core-seconds are its wall seconds times the threads it reserves. Wall time on C
cores is that total over C, scaled by the packing efficiency measured on the timing run itself
(measured wall / ideal wall of the same jobs on the same cores), and never below one
replicate's critical path. The study's cohorts are independent, so this is how a cluster packs
them; per-job submission latency of a batch system is not included.

Run (benchmarks/README.md has the whole recipe): the timing run is
``snakemake --configfile config/simulation.yaml --cores 2 --scheduler greedy
$(.venv/bin/python benchmarks/study_runtime.py --print-targets)``; then
``.venv/bin/python benchmarks/study_runtime.py --timing-wall <its seconds> --cores 2 64 512``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from knockoffnet.simulation.generators import generate  # noqa: E402

# Threads each per-replicate rule reserves (workflow/rules/*.smk); the training rules take
# training.threads from the config.
FIXED_THREADS = {"knockoffs": 2}
TRAINING_RULES = ("lambda_grid", "train")
# Rules of the per-replicate chain in order; the seed-level rules run in parallel per seed.
CHAIN = ("simulate_cohort", "ingest", "knockoffs")
PER_SEED = ("lambda_grid", "train", "collect_z")
TAIL = ("select_features", "simulate_score")


def deep_merge(base: dict, over: dict) -> dict:
    """Snakemake's own config merge (snakemake.utils.update_config) on copies of both."""
    from snakemake.utils import update_config

    out = copy.deepcopy(base)
    update_config(out, copy.deepcopy(over))
    return out


def load_config(configfile: Path) -> dict:
    """The config the Snakefile sees: config/config.yaml, the study file, schema defaults."""
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config = deep_merge(config, yaml.safe_load(configfile.read_text()))
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return config


def cost_class(spec: dict) -> tuple[int, int, str]:
    """(n, p, outcome) of a design's cohort: what the training and peer cost depends on."""
    frame, _ = generate(spec["generator"], spec["n"], 0, spec.get("params"))
    y = frame["y"].to_numpy()
    levels = np.unique(y).size
    outcome = f"{levels} classes" if levels <= 20 else "continuous"
    return int(spec["n"]), frame.shape[1] - 2, outcome


def read_benchmarks(results: Path, design: str, replicate: int) -> pd.DataFrame | None:
    """Every benchmark row of one replicate's per-replicate jobs, or None if any is missing."""
    cohort = results / f"sim_{design}_{replicate}" / "benchmarks"
    files = {
        "simulate_cohort": [
            results / "simulation/benchmarks/cohorts" / design / f"rep{replicate}.tsv"
        ],
        "simulate_score": [
            results / "simulation/benchmarks/scores" / design / f"rep{replicate}.tsv"
        ],
        "ingest": [cohort / "ingest.tsv"],
        "knockoffs": sorted((cohort / "knockoffs").glob("*.tsv")),
        "select_features": [cohort / "select.tsv"],
    }
    for rule in PER_SEED:
        files[rule] = sorted((cohort / rule).glob("*.tsv"))
    rows = []
    for rule, paths in files.items():
        if not paths or not all(p.is_file() for p in paths):
            return None
        for path in paths:
            row = pd.read_csv(path, sep="\t").iloc[-1]
            # draw{d}_seed{s}[_chunk{c}]: the (draw, seed) run a per-seed job belongs to
            run = "_".join(path.stem.split("_")[:2]) if rule in PER_SEED else ""
            rows.append({"rule": rule, "run": run, "s": row["s"], "cpu_s": row["cpu_time"]})
    return pd.DataFrame(rows)


def replicate_cost(jobs: pd.DataFrame, threads: dict[str, int]) -> dict[str, float]:
    """Jobs, reserved core-seconds, CPU seconds and critical path (s) of one replicate."""
    core_s = jobs["s"] * jobs["rule"].map(lambda r: threads.get(r, 1))
    seeds = jobs[jobs["rule"].isin(PER_SEED)].groupby("run")["s"].sum()
    by_rule = jobs.groupby("rule")["s"].sum()
    critical = sum(by_rule.get(r, 0.0) for r in CHAIN + TAIL) + (seeds.max() if len(seeds) else 0)
    return {
        "jobs": len(jobs),
        "core_s": float(core_s.sum()),
        "cpu_s": float(jobs["cpu_s"].sum()),
        "train_core_s": float(core_s[jobs["rule"].isin(TRAINING_RULES)].sum()),
        "peer_s": float(by_rule.get("simulate_score", 0.0)),
        "critical_s": float(critical),
    }


def estimate(config: dict, results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-design cost classes, and per class the mean cost of its measured replicates.

    Every measured design of a class counts (their spread shows how well one class stands in
    for its designs); a class with none measured is an error naming it."""
    sim = config["simulation"]
    threads = dict(FIXED_THREADS, **{r: int(config["training"]["threads"]) for r in TRAINING_RULES})
    designs = pd.DataFrame(
        [{"design": d, "class": cost_class(spec)} for d, spec in sim["designs"].items()]
    )
    measured: dict[tuple, list[tuple[str, dict[str, float]]]] = {}
    for design, klass in designs.itertuples(index=False):
        jobs = read_benchmarks(results, design, 0)
        if jobs is not None:
            measured.setdefault(klass, []).append((design, replicate_cost(jobs, threads)))
    missing = sorted({k for k in designs["class"] if k not in measured})
    if missing:
        raise SystemExit(
            f"no measured replicate 0 under {results} for cost class(es) {missing}: run the "
            "timing targets of benchmarks/README.md for one design of each"
        )
    rows = []
    for (n, p, outcome), runs in measured.items():
        costs = pd.DataFrame([cost for _, cost in runs])
        rows.append(
            {
                "n": n,
                "p": p,
                "outcome": outcome,
                "measured": ", ".join(d for d, _ in runs),
                "n_measured": len(runs),
                **costs.mean().to_dict(),
                "core_s_min": float(costs["core_s"].min()),
                "core_s_max": float(costs["core_s"].max()),
                "critical_s_max": float(costs["critical_s"].max()),
            }
        )
    classes = pd.DataFrame(rows)
    classes["designs"] = [int((designs["class"] == k).sum()) for k in measured]
    classes = classes.sort_values(["p", "outcome"]).reset_index(drop=True)
    return designs, classes


def timing_targets(config: dict) -> list[str]:
    """Score files of replicate 0 of the first design of every cost class: the timing run."""
    first: dict[tuple, str] = {}
    for design, spec in config["simulation"]["designs"].items():
        first.setdefault(cost_class(spec), design)
    return [f"results/simulation/scores/{d}/rep0.csv" for d in first.values()]


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def report(
    config: dict,
    classes: pd.DataFrame,
    timing_wall: float | None,
    timing_cores: int,
    cores: list[int],
) -> str:
    """Markdown: per-class costs, totals, and wall time on each core count."""
    reps = int(config["simulation"]["replicates"])
    n_designs = int(classes["designs"].sum())
    lines = [
        f"Study: {n_designs} designs x {reps} replicates; training seeds "
        f"{config['training']['seeds']}, knockoff draws {config['knockoffs']['draws']}, "
        f"network {config['network']['hidden']}, {config['training']['lambdas']['count']} λ, "
        f"training threads {config['training']['threads']}, peers {config['simulation']['peers']}.",
        "",
        "| p | outcome | designs | measured on | jobs / rep | core-s / rep (range) | CPU-s / rep | "
        "training share | peers (s) | critical path (s) |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in classes.itertuples(index=False):
        lines.append(
            f"| {r.p} | {r.outcome} | {r.designs} | {r.measured} | {r.jobs:.0f} | {r.core_s:.0f}"
            + (f" ({r.core_s_min:.0f}–{r.core_s_max:.0f})" if r.n_measured > 1 else "")
            + " | "
            f"{r.cpu_s:.0f} | {r.train_core_s / r.core_s:.0%} | {r.peer_s:.0f} | {r.critical_s:.0f} |"
        )
    total_core = float((classes["core_s"] * classes["designs"]).sum() * reps)
    total_cpu = float((classes["cpu_s"] * classes["designs"]).sum() * reps)
    total_jobs = int((classes["jobs"] * classes["designs"]).sum() * reps)
    critical = float(classes["critical_s_max"].max())
    sample_core = float((classes["core_s"] * classes["n_measured"]).sum())
    lines += [
        "",
        f"Per-replicate jobs: {total_jobs:,} (plus the summary and the per-design reports, "
        "not measured here).",
        f"Cost classes: {len(classes)}, measured on {int(classes['n_measured'].sum())} "
        "replicates (one per design listed).",
        f"Total: {hours(total_core)} of reserved cores ({hours(total_cpu)} CPU time used).",
    ]
    efficiency = 1.0
    if timing_wall:
        ideal = sample_core / timing_cores
        efficiency = ideal / timing_wall
        lines.append(
            f"Timing run: the {int(classes['n_measured'].sum())} measured replicates reserve {sample_core:.0f} core-s, "
            f"ideally {ideal:.0f} s on {timing_cores} cores; measured {timing_wall:.0f} s: "
            f"packing efficiency {efficiency:.2f}."
        )
    lines += ["", "| cores | estimated wall |", "|---:|---:|"]
    for c in cores:
        wall = max(total_core / c / efficiency, critical)
        lines.append(f"| {c} | {hours(wall)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", type=Path, default=ROOT / "config" / "simulation.yaml")
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--timing-wall", type=float, help="measured wall seconds of the timing run")
    ap.add_argument("--timing-cores", type=int, default=2)
    ap.add_argument("--cores", type=int, nargs="+", default=[2, 64, 512])
    ap.add_argument("--out", type=Path, help="also write the Markdown here")
    ap.add_argument(
        "--print-targets", action="store_true", help="print the timing run's targets and exit"
    )
    args = ap.parse_args()
    config = load_config(args.configfile)
    if args.print_targets:
        print(" ".join(timing_targets(config)))
        return
    _, classes = estimate(config, args.results)
    text = report(config, classes, args.timing_wall, args.timing_cores, args.cores)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
