"""What the power changes of issue 14 cost: the default method against the paper's, same run.

Two measurements, each a ratio to the paper's configuration (``config/paper.yaml``) measured in
the same run, alternating, in fresh scratch directories:

* ``wdbc``: the bundled cohort end to end (``snakemake --cores 2``, every rule, report
  included): wall seconds of the whole run and core-seconds summed over the jobs' benchmark
  files. Target (issue 14): the default run at most 90 s on 2 cores.
* ``study``: replicate 0 of simulation designs (no peers) through the study's rules: the
  core-seconds of one replicate, which is what a simulation study's cost scales with.

The ``wdbc`` part also times ``per-feature``: the bundled config as it was before issue 15
(feature-level knockoffs, one copy, 10 seeds), so the bundled run's change is measured too;
the ``study`` part times ``before``: the default before the latest change of the training
defaults (today ``training: {patience: 20, max_epochs: 300}``, the default before 2026-12-07's
``auto``; run 7 and 8 of benchmarks/README.md compared ``training.dense_decay: 0`` here). The
bundled WDBC entry keeps patience 20 and cap 300 as its own (``cohorts.wdbc.training``), so
for ``wdbc`` the variant is ``auto``: that entry at the run's default; ``cap-300`` (wdbc only)
is ``auto``'s patience with the cap of before, to tell how much of the difference the cap is.
``--extra`` picks these variants. The paper's configuration runs WDBC at the paper file's
early stopping (patience 10): a cohort's own keys win over a config file's run-wide ones.

Run:  .venv/bin/python benchmarks/bench_method_cost.py --part wdbc study --repeats 2
Writes a Markdown table to stdout (and --out). Needs a quiet machine: other jobs inflate wall
times, not the ratios of interleaved runs as much.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config" / "paper.yaml"
# The bundled config before issue 15 (no groups, one knockoff copy, 10 seeds).
PER_FEATURE = {"knockoffs": {"groups": "none", "copies": 1}, "training": {"seeds": 10}}
# The training default before the latest change: patience 20 and a cap of 300 at every size
# (before 2026-12-07; `auto` raises both below 800 training rows). Study part only.
BEFORE = {"training": {"patience": 20, "max_epochs": 300}}


def _wdbc_training(patience: int | str, max_epochs: int | str) -> dict:
    """An overlay of the bundled cohort's own early stopping (cohorts.wdbc.training)."""
    return {"cohorts": {"wdbc": {"training": {"patience": patience, "max_epochs": max_epochs}}}}


# config/paper.yaml's early stopping (patience 10, the default cap) for the bundled cohort,
# whose own patience 20 would otherwise win over the paper file's run-wide keys.
PAPER_WDBC = _wdbc_training(10, "auto")
# wdbc variants: the bundled cohort at the run's default `auto`, and auto's patience with
# the cap of before (300): how much of the difference the cap is.
OVERLAYS = {
    "per-feature": PER_FEATURE,
    "auto": _wdbc_training("auto", "auto"),
    "cap-300": _wdbc_training("auto", 300),
}
WDBC_ONLY = ("per-feature", "auto", "cap-300")
STUDY_DESIGNS = {
    "ar1-p50-s10-k2": {"generator": "ar1", "n": 1000, "params": {"p": 50, "s": 10, "rho": 0.5}},
    "normal-p100-s33-k2": {
        "generator": "teacher",
        "n": 1000,
        "params": {"p": 100, "s": 33, "distribution": "normal"},
    },
}


def _snakemake(workdir: Path, configs: list[Path], targets: list[str]) -> float:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "--scheduler",
        "greedy",
        "--configfile",
        *map(str, configs),
        "--",
        *targets,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return wall


def _core_seconds(results: Path) -> float:
    """Σ over jobs of wall seconds × reserved threads ~ Σ cpu_time; we report cpu_time."""
    total = 0.0
    for f in results.rglob("benchmarks/**/*.tsv"):
        row = pd.read_csv(f, sep="\t").iloc[-1]
        total += float(row["cpu_time"])
    return total


def _scratch(method: str) -> Path:
    work = Path(tempfile.mkdtemp(prefix=f"bench_{method}_"))
    (work / "resources").mkdir()
    for name in ("wdbc.csv",):
        shutil.copy(ROOT / "resources" / name, work / "resources" / name)
    (work / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", work / "config" / "config.yaml")
    return work


def run_wdbc(method: str) -> dict:
    work = _scratch(method)
    configs = [work / "config" / "config.yaml"] + ([PAPER] if method == "paper" else [])
    overlay = PAPER_WDBC if method == "paper" else OVERLAYS.get(method)
    if overlay:
        configs.append(work / "config" / "overlay.yaml")
        configs[-1].write_text(yaml.safe_dump(overlay))
    wall = _snakemake(work, configs, ["results/wdbc/report.html"])
    cpu = _core_seconds(work / "results")
    prune = pd.read_csv(work / "results/wdbc/benchmarks/prune.tsv", sep="\t").iloc[-1]["s"]
    shutil.rmtree(work)
    return {"part": "wdbc", "method": method, "wall_s": wall, "cpu_s": cpu, "prune_s": prune}


def run_study(method: str) -> list[dict]:
    work = _scratch(method)
    study = {
        "cohorts": {},
        "training": {"threads": 1},
        "simulation": {"replicates": 1, "peers": [], "reports": 0, "designs": STUDY_DESIGNS},
    }
    path = work / "config" / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    configs = [work / "config" / "config.yaml", path] + ([PAPER] if method == "paper" else [])
    if method == "before":
        configs.append(work / "config" / "overlay.yaml")
        configs[-1].write_text(yaml.safe_dump(BEFORE))
    targets = [f"results/simulation/scores/{d}/rep0.csv" for d in STUDY_DESIGNS]
    _snakemake(work, configs, targets)
    rows = []
    for design in STUDY_DESIGNS:
        cpu = _core_seconds(work / "results" / f"sim_{design}_0")
        rows.append({"part": f"study {design}", "method": method, "wall_s": None, "cpu_s": cpu})
    shutil.rmtree(work)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", nargs="+", choices=["wdbc", "study"], default=["wdbc", "study"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--extra",
        nargs="*",
        choices=["before", "per-feature", "auto", "cap-300"],
        default=["before", "per-feature"],
        help="variants timed after the default and the paper's configuration (before: study "
        "only; per-feature, auto, cap-300: wdbc only)",
    )
    args = ap.parse_args()
    rows: list[dict] = []
    for rep in range(args.repeats):
        order = ["default", "paper"] if rep % 2 == 0 else ["paper", "default"]
        order += args.extra
        for method in order:
            if "wdbc" in args.part and method != "before":
                rows.append({**run_wdbc(method), "repeat": rep})
            if method in WDBC_ONLY:
                continue
            if "study" in args.part:
                rows += [{**r, "repeat": rep} for r in run_study(method)]
            print(rows[-1], file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    best = frame.groupby(["part", "method"])[["wall_s", "cpu_s"]].min().unstack("method")
    lines = [
        f"load average {os.getloadavg()[0]:.1f}; best of {args.repeats} per cell",
        "",
        "| part | default wall (s) | paper wall (s) | default core-s | paper core-s | "
        "core-s ratio default/paper |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for part, r in best.iterrows():
        dw, pw = r[("wall_s", "default")], r[("wall_s", "paper")]
        dc, pc = r[("cpu_s", "default")], r[("cpu_s", "paper")]
        wall = (f"{dw:.1f}", f"{pw:.1f}") if pd.notna(dw) else ("–", "–")
        lines.append(f"| {part} | {wall[0]} | {wall[1]} | {dc:.0f} | {pc:.0f} | {dc / pc:.2f} |")
    text = "\n".join(lines)
    if "prune_s" in frame:
        prune = frame.groupby("method")["prune_s"].min()
        text += "\n\nwdbc prune rule wall (s, best): " + ", ".join(
            f"{m} {v:.1f}" for m, v in prune.items()
        )
    for variant, what in (("auto", "at auto"), ("cap-300", "at auto's patience, cap 300")):
        if variant in set(frame["method"]):
            w = frame[frame["part"] == "wdbc"].groupby("method")[["wall_s", "cpu_s"]].min()
            text += (
                f"\nwdbc {what}: wall {w.loc[variant, 'wall_s']:.1f} s, core-s "
                f"{w.loc[variant, 'cpu_s']:.0f}; / default wall "
                f"{w.loc[variant, 'wall_s'] / w.loc['default', 'wall_s']:.2f}"
            )
    if "per-feature" in set(frame["method"]):
        w = frame[frame["part"] == "wdbc"].groupby("method")[["wall_s", "cpu_s"]].min()
        text += (
            f"\nwdbc before issue 15 (per-feature knockoffs, 10 seeds): wall "
            f"{w.loc['per-feature', 'wall_s']:.1f} s, core-s {w.loc['per-feature', 'cpu_s']:.0f}; "
            f"default / per-feature wall {w.loc['default', 'wall_s'] / w.loc['per-feature', 'wall_s']:.2f}"
        )
    if "before" in set(frame["method"]):
        u = frame.groupby(["part", "method"])[["wall_s", "cpu_s"]].min()
        for part in sorted(set(frame["part"])):
            if (part, "before") in u.index:
                d, o = u.loc[(part, "default")], u.loc[(part, "before")]
                wall = f"wall {d.wall_s / o.wall_s:.2f}, " if pd.notna(d.wall_s) else ""
                text += (
                    f"\n{part}: default / before: {wall}"
                    f"core-s {d.cpu_s:.0f} / {o.cpu_s:.0f} = {d.cpu_s / o.cpu_s:.2f}"
                )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
