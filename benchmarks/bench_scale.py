"""Scale curve of the real workflow on synthetic genotype cohorts written as PLINK (issue 16).

Each size is a fresh working directory under ``--out``: a PLINK 1 fileset (the study's
``genotypes`` generator: 0/1/2 dosages with linkage-disequilibrium-like correlation, two
chromosomes) and a phenotype table, run through the repository's Snakefile to ``report.html`` with one training
seed and the defaults otherwise. Per job, the wall time comes from Snakemake's benchmark
files, the peak RSS from the kernel's high-water mark recorded by every job process at exit
(an exit hook on PYTHONPATH; Snakemake's sampled ``max_rss`` misses short peaks), and the
requested ``mem_mb`` / ``runtime`` from Snakemake's job log, so the table compares what the
workflow asks a cluster for with what the job used. ``--baseline REF`` runs the same cohorts
with the code of a git ref first (a worktree), in the same run.

    python benchmarks/bench_scale.py --sizes 25000x1000,50000x1000,100000x1000
    python benchmarks/bench_scale.py --sizes 20000x1000,20000x5000,20000x10000
    python benchmarks/bench_scale.py --sizes 2000x200          # a quick check (~2 min)
    python benchmarks/bench_scale.py --sizes 2000x20000 --table \
        --target results/scale/knockoffs/draw0.npy --override '{knockoffs: {groups: auto}}'
                                        # a wide table: correlation order, block-wise draw
    python benchmarks/bench_scale.py --sizes 20000x1000 --baseline 8fe8665 \
        --target results/scale/knockoffs/draw0.npy             # data rules, before/after
    python benchmarks/bench_scale.py --sizes 20000x1000 --baseline 8fe8665 \
        --target results/scale/z/draw0_seed0.npz \
        --override '{training: {max_epochs: 3, patience: 2, lambdas: {count: 4}}}'  # training

``--table`` writes a table cohort instead (``table.csv``: the study's ``blocks`` generator,
blocks of 5 features at r = 0.8 with their columns dealt apart, 20 relevant blocks), whose
block-wise draw is cut from the correlation order.

Writes ``<out>/scale.csv`` (one row per size x rule), ``<out>/scale.md`` and ``<out>/scale.png``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
RELEVANT = 20
# benchmark name -> rule (and its entry script, named after it), where they differ
RULES = {"select": "select_features"}


def write_cohort(directory: Path, n: int, p: int, seed: int = 0) -> list[str]:
    """PLINK fileset `geno` and `pheno.tsv` in `directory`; returns the relevant variant IDs.

    The simulation study's ``genotypes`` generator (LD-like 0/1/2 dosages; 20 relevant
    variants, half through the heterozygote), two chromosomes, and an unrelated covariate
    `age` that the workflow adjusts for.
    """
    from knockoffnet.genotypes import write_plink
    from knockoffnet.simulation.generators import generate

    frame, relevant = generate("genotypes", n, seed, {"p": p, "s": RELEVANT})
    variants = [c for c in frame.columns if c not in ("id", "y")]
    half = p // 2
    write_plink(
        directory / "geno",
        frame[variants].to_numpy(),
        frame["id"].tolist(),
        variants,
        chromosome=["1"] * half + ["2"] * (p - half),
        position=[10_000 + 1000 * j for j in range(p)],
    )
    age = np.random.default_rng(seed).normal(50, 10, n)
    pheno = pd.DataFrame({"IID": frame["id"], "case": frame["y"], "age": age})
    pheno.to_csv(directory / "pheno.tsv", sep="\t", index=False)
    return relevant


def write_table(directory: Path, n: int, p: int, seed: int = 0) -> list[str]:
    """``table.csv`` in ``directory`` (id, y and p features in blocks of 5 at r = 0.8, each
    block's members dealt apart, as a table need not list correlated features together);
    returns the relevant features."""
    from knockoffnet.simulation.generators import generate

    params = {"p": p, "block": 5, "r": 0.8, "s": RELEVANT, "interleave": True}
    frame, relevant = generate("blocks", n, seed, params)
    frame.to_csv(directory / "table.csv", index=False)
    return relevant


def requested_resources(log_text: str) -> dict[str, dict[str, float]]:
    """benchmark path -> {mem_mb, runtime} as Snakemake printed them for each job."""
    out: dict[str, dict[str, float]] = {}
    for block in re.split(r"\n(?=\[|localrule |rule )", log_text):
        bench = re.search(r"benchmark: (\S+)", block)
        res = re.search(r"resources: (.+)", block)
        if not (bench and res):
            continue
        values = dict(re.findall(r"(\w+)=([\d.]+)", res.group(1)))
        out[bench.group(1)] = {k: float(values[k]) for k in ("mem_mb", "runtime") if k in values}
    return out


# Imported by every Python process of a run (PYTHONPATH): at exit it records the kernel's
# high-water mark of the process's RSS and, in a rule's script, which job it was (the rule
# and its wildcards but the cohort: the name of the job's benchmark file). Snakemake's
# benchmark files sample RSS every 30 s after a job's first 15 s and miss short peaks; this
# is exact, and it works the same for the baseline checkout and the current one.
SITECUSTOMIZE = """
import atexit, os, resource, sys

def _record():
    out = os.environ.get("KNOCKOFFNET_PEAK_DIR")
    if not out:
        return
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    smk = getattr(sys.modules.get("__main__"), "snakemake", None)
    rule = job = ""
    if smk is not None:
        rule = smk.rule
        job = "_".join(f"{k}{v}" for k, v in smk.wildcards.items() if k != "cohort")
    with open(os.path.join(out, f"{os.getpid()}.txt"), "w") as fh:
        fh.write(f"{os.path.basename(sys.argv[0])}\\t{peak:.1f}\\t{child:.1f}\\t{rule}\\t{job}\\n")

atexit.register(_record)
"""


def recorded_peaks(directory: Path) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """The exit hook's records: script name -> the largest peak RSS (MB) of its processes
    (or their children), and (rule, job) -> that job's own peak, where the process knew its
    job (the rule's script; job "" for a rule without wildcards but the cohort)."""
    by_script: dict[str, float] = {}
    by_job: dict[tuple[str, str], float] = {}
    for path in directory.glob("*.txt"):
        name, own, child, *job = path.read_text().rstrip("\n").split("\t")
        script = name.rsplit(".", 2)[-2] if name.count(".") >= 2 else name
        peak = max(float(own), float(child))
        by_script[script] = max(by_script.get(script, 0.0), peak)
        if job and job[0]:
            key = (job[0], job[1])
            by_job[key] = max(by_job.get(key, 0.0), peak)
    return by_script, by_job


def run_size(
    root: Path,
    n: int,
    p: int,
    cores: int,
    target: str,
    repo: Path = REPO,
    code: str = "current",
    override: dict | None = None,
    table: bool = False,
) -> pd.DataFrame:
    kind = "table_" if table else ""
    work = root / code / f"{kind}n{n}_p{p}"
    work.mkdir(parents=True, exist_ok=True)
    cohort = root / "cohorts" / f"{kind}n{n}_p{p}"
    files = ("table.csv",) if table else ("geno.bed", "geno.bim", "geno.fam", "pheno.tsv")
    if not (cohort / files[0]).exists():
        cohort.mkdir(parents=True, exist_ok=True)
        (write_table if table else write_cohort)(cohort, n, p)
    for name in files:
        if not (work / name).exists():
            (work / name).symlink_to(cohort / name)
    entry = (
        {"path": "table.csv", "label": "y", "id": "id"}
        if table
        else {"plink": "geno", "pheno": "pheno.tsv", "label": "case", "covariates": ["age"]}
    )
    config = {
        "cohorts": {"scale": entry},
        "seed": 1,
        "training": {"seeds": 1},
    }
    for key, value in (override or {}).items():  # one level deep: {"training": {...}}
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"),
           "--directory", str(work), "--configfile", "config.yaml", "--cores", str(cores),
           "--nolock", target]  # fmt: skip
    # the package of the checkout under test (the venv's editable install points elsewhere),
    # and the exit hook that records each process's peak RSS
    hook = root / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    peaks = work / "peaks"
    shutil.rmtree(peaks, ignore_errors=True)
    peaks.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": f"{repo / 'scripts'}{os.pathsep}{hook}",
        "KNOCKOFFNET_PEAK_DIR": str(peaks),
    }
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=env)
    wall = time.perf_counter() - start
    (work / "snakemake.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"n={n} p={p} failed; see {work / 'snakemake.log'}")
    requested = requested_resources(result.stdout + result.stderr)
    peak, job_peak = recorded_peaks(peaks)
    rows = []
    for path in sorted((work / "results" / "scale" / "benchmarks").rglob("*.tsv")):
        measured = pd.read_csv(path, sep="\t").iloc[0]
        rel = str(path.relative_to(work))
        rule = path.relative_to(work / "results" / "scale" / "benchmarks").parts[0]
        name = rule.removesuffix(".tsv")
        rows.append(
            {
                "code": code,
                "n": n,
                "p": p,
                "rule": name,
                "job": rel,
                "wall_s": float(measured["s"]),
                "max_rss_mb": float(measured["max_rss"]),
                "peak_rss_mb": job_peak.get(
                    (RULES.get(name, name), "" if path.stem == name else path.stem),
                    peak.get(RULES.get(name, name), np.nan),
                ),
                "requested_mem_mb": requested.get(rel, {}).get("mem_mb", np.nan),
                "requested_runtime_min": requested.get(rel, {}).get("runtime", np.nan),
                "end_to_end_s": wall,
            }
        )
    frame = pd.DataFrame(rows)
    # the feature sets Reduce Weight fitted, which its runtime request counts
    from knockoffnet.job_resources import selection_sizes

    selected = work / "results" / "scale" / "selected.tsv"
    chosen = sorted(selection_sizes(selected, p)) if selected.exists() else []
    frame["selections"] = np.where(frame["rule"] == "prune", ";".join(map(str, chosen)), "")
    # the exact peak where the exit hook recorded it, else Snakemake's sampled one
    frame["rss_mb"] = frame["peak_rss_mb"].fillna(frame["max_rss_mb"])
    return frame


def summarise(table: pd.DataFrame) -> str:
    """Markdown: per size the end-to-end time, the largest job RSS, and request/measured ratios."""
    t = table.assign(
        mem_ratio=table["requested_mem_mb"] / table["rss_mb"],
        time_ratio=60 * table["requested_runtime_min"] / table["wall_s"].clip(lower=1),
    )
    lines = [
        "| n | p | end to end (s) | slowest job (rule, s) | peak RSS (rule, MB) | "
        "mem asked / used (min, max) | time asked / used (min, max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (n, p), g in t.groupby(["n", "p"], sort=True):
        slow, big = g.loc[g["wall_s"].idxmax()], g.loc[g["rss_mb"].idxmax()]
        lines.append(
            f"| {n} | {p} | {g['end_to_end_s'].iloc[0]:.0f} | {slow['rule']} {slow['wall_s']:.0f} "
            f"| {big['rule']} {big['rss_mb']:.0f} | {g['mem_ratio'].min():.2f}, "
            f"{g['mem_ratio'].max():.2f} | {g['time_ratio'].min():.2f}, "
            f"{g['time_ratio'].max():.2f} |"
        )
    largest = t.groupby(["rule", "n", "p"]).agg(
        wall_s=("wall_s", "max"),
        rss=("rss_mb", "max"),
        asked_mb=("requested_mem_mb", "max"),
        asked_min=("requested_runtime_min", "max"),
    )
    cells = largest.apply(
        lambda r: (
            f"{r.wall_s:.0f} s / {r.rss:.0f} MB (asks {r.asked_min:.0f} min / {r.asked_mb:.0f} MB)"
        ),
        axis=1,
    ).unstack(["n", "p"])
    cells.columns = [f"n={n}, p={p}" for n, p in cells.columns]
    per_rule = cells.reset_index().to_markdown(index=False)
    return "\n".join(lines) + "\n\nPer rule, its largest job (measured / requested):\n\n" + per_rule


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (n, p), g in table.groupby(["n", "p"]):
        label = f"n={n}, p={p}"
        per_rule = g.groupby("rule")[["wall_s", "rss_mb"]].max()
        axes[0].plot(per_rule.index, per_rule["wall_s"], "o-", label=label)
        axes[1].plot(per_rule.index, per_rule["rss_mb"], "o-", label=label)
    axes[0].set_ylabel("wall time of the largest job (s)")
    axes[1].set_ylabel("peak RSS of the largest job (MB)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=60)
        ax.set_yscale("log")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def baseline_checkout(ref: str, root: Path) -> Path:
    """A detached git worktree of `ref` (the baseline code), created once under `root`."""
    path = root / f"baseline-{ref}"
    if not path.exists():
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), ref], check=True
        )
    return path


def compare(table: pd.DataFrame) -> str:
    """Markdown: per size and rule, the largest job's peak RSS and wall time, current code
    against the baseline measured in the same run."""
    largest = table.groupby(["n", "p", "rule", "code"])[["rss_mb", "wall_s"]].max()
    wide = largest.unstack("code")
    lines = [
        "| n | p | rule | peak RSS baseline (MB) | peak RSS now (MB) | ratio | wall baseline (s) "
        "| wall now (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (n, p, rule), r in wide.iterrows():
        base, now = r[("rss_mb", "baseline")], r[("rss_mb", "current")]
        lines.append(
            f"| {n} | {p} | {rule} | {base:.0f} | {now:.0f} | {now / base:.2f} | "
            f"{r[('wall_s', 'baseline')]:.1f} | {r[('wall_s', 'current')]:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000x200", help="comma-separated NxP")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "scale")
    parser.add_argument(
        "--target", default="results/scale/report.html", help="the file each run builds"
    )
    parser.add_argument("--baseline", help="a git ref whose code runs the same cohorts first")
    parser.add_argument("--table", action="store_true", help="table cohorts instead of PLINK")
    parser.add_argument(
        "--override",
        default="{}",
        help="YAML merged into the config, e.g. '{training: {max_epochs: 3}}' to measure "
        "memory without the full training time",
    )
    args = parser.parse_args()
    override = yaml.safe_load(args.override) or {}
    args.out.mkdir(parents=True, exist_ok=True)
    frames = []
    for size in args.sizes.split(","):
        n, p = (int(v) for v in size.lower().split("x"))
        if args.baseline:
            repo = baseline_checkout(args.baseline, args.out)
            frames.append(
                run_size(
                    args.out, n, p, args.cores, args.target, repo, "baseline", override, args.table
                )
            )
        frames.append(
            run_size(args.out, n, p, args.cores, args.target, override=override, table=args.table)
        )
        print(f"n={n} p={p}: {frames[-1]['end_to_end_s'].iloc[0]:.0f} s", flush=True)
    table = pd.concat(frames, ignore_index=True)
    table.to_csv(args.out / "scale.csv", index=False)
    current = table[table["code"] == "current"]
    text = summarise(current)
    if args.baseline:
        text += f"\n\nAgainst {args.baseline} (same cohorts, same run):\n\n" + compare(table)
    (args.out / "scale.md").write_text(text + "\n")
    plot(current, args.out / "scale.png")
    print(text)


if __name__ == "__main__":
    main()
