"""Scale curve of the real workflow on synthetic genotype cohorts written as PLINK (issue 16).

Each size is a fresh working directory under ``--out``: a PLINK 1 fileset (0/1/2 dosages with
linkage-disequilibrium-like correlation between neighbouring variants, two chromosomes) and a
phenotype table, run through the repository's Snakefile to ``report.html`` with one training
seed and the defaults otherwise. Per rule, the wall time and peak RSS come from Snakemake's own
benchmark files, and the requested ``mem_mb`` / ``runtime`` from Snakemake's job log, so the
table compares what the workflow asks a cluster for with what the job used.

    python benchmarks/bench_scale.py --sizes 25000x1000,50000x1000,100000x1000
    python benchmarks/bench_scale.py --sizes 20000x1000,20000x5000,20000x10000
    python benchmarks/bench_scale.py --sizes 2000x200          # a quick check (~2 min)

Writes ``<out>/scale.csv`` (one row per size x rule), ``<out>/scale.md`` and ``<out>/scale.png``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
RELEVANT = 20


def write_cohort(directory: Path, n: int, p: int, seed: int = 0) -> list[str]:
    """PLINK fileset `geno` and `pheno.tsv` in `directory`; returns the relevant variant IDs.

    Genotypes: two haplotypes per sample from a latent AR(1) Gaussian along each chromosome
    (rho 0.6, minor allele frequency 0.1-0.5), so neighbouring variants are correlated as in LD.
    Written in column blocks; the outcome depends non-linearly on 20 spread-out variants
    (a heterozygote effect on half of them, so no monotone model captures it all).
    """
    from bed_reader import to_bed

    rng = np.random.default_rng(seed)
    maf = rng.uniform(0.1, 0.5, p)
    cut = -np.abs(np.quantile(rng.standard_normal(100_000), maf))  # P(z < cut) = maf
    G = np.empty((n, p), dtype=np.float32)
    chrom = np.where(np.arange(p) < p // 2, 1, 2)
    for hap in range(2):
        z = rng.standard_normal(n).astype(np.float32)
        for j in range(p):
            if j and chrom[j] == chrom[j - 1]:
                z = 0.6 * z + 0.8 * rng.standard_normal(n).astype(np.float32)
            else:
                z = rng.standard_normal(n).astype(np.float32)
            if hap == 0:
                G[:, j] = z < cut[j]
            else:
                G[:, j] += z < cut[j]
    ids = [f"s{i}" for i in range(n)]
    sid = [f"rs{j}" for j in range(p)]
    to_bed(
        directory / "geno.bed", G,
        properties={"iid": ids, "fid": ids, "sid": sid, "chromosome": chrom.astype(str).tolist(),
                    "bp_position": (np.arange(p) * 1000 + 10_000).tolist()},
    )  # fmt: skip
    relevant = np.linspace(0, p - 1, RELEVANT).astype(int)
    het = (G[:, relevant[::2]] == 1).astype(np.float32)
    additive = G[:, relevant[1::2]] - 2 * maf[relevant[1::2]]
    score = 0.8 * (het - het.mean(axis=0)).sum(axis=1) + 0.8 * additive.sum(axis=1)
    age = rng.normal(50, 10, n)
    risk = score + 0.02 * (age - 50) + rng.logistic(size=n)
    pheno = pd.DataFrame({"IID": ids, "case": (risk > np.median(risk)).astype(int), "age": age})
    pheno.to_csv(directory / "pheno.tsv", sep="\t", index=False)
    return [sid[j] for j in relevant]


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


def run_size(root: Path, n: int, p: int, cores: int) -> pd.DataFrame:
    work = root / f"n{n}_p{p}"
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "geno.bed").exists():
        write_cohort(work, n, p)
    config = {
        "cohorts": {
            "scale": {"plink": "geno", "pheno": "pheno.tsv", "label": "case", "covariates": ["age"]}
        },
        "seed": 1,
        "training": {"seeds": 1},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(work), "--configfile", "config.yaml", "--cores", str(cores),
           "--nolock", "results/scale/report.html"]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - start
    (work / "snakemake.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"n={n} p={p} failed; see {work / 'snakemake.log'}")
    requested = requested_resources(result.stdout + result.stderr)
    rows = []
    for path in sorted((work / "results" / "scale" / "benchmarks").rglob("*.tsv")):
        measured = pd.read_csv(path, sep="\t").iloc[0]
        rel = str(path.relative_to(work))
        rule = path.relative_to(work / "results" / "scale" / "benchmarks").parts[0]
        rows.append(
            {
                "n": n,
                "p": p,
                "rule": rule.removesuffix(".tsv"),
                "job": rel,
                "wall_s": float(measured["s"]),
                "max_rss_mb": float(measured["max_rss"]),
                "requested_mem_mb": requested.get(rel, {}).get("mem_mb", np.nan),
                "requested_runtime_min": requested.get(rel, {}).get("runtime", np.nan),
                "end_to_end_s": wall,
            }
        )
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> str:
    """Markdown: per size the end-to-end time, the largest job RSS, and request/measured ratios."""
    t = table.assign(
        mem_ratio=table["requested_mem_mb"] / table["max_rss_mb"],
        time_ratio=60 * table["requested_runtime_min"] / table["wall_s"].clip(lower=1),
    )
    lines = [
        "| n | p | end to end (s) | slowest job (rule, s) | peak RSS (rule, MB) | "
        "mem asked / used (min, max) | time asked / used (min, max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (n, p), g in t.groupby(["n", "p"], sort=True):
        slow, big = g.loc[g["wall_s"].idxmax()], g.loc[g["max_rss_mb"].idxmax()]
        lines.append(
            f"| {n} | {p} | {g['end_to_end_s'].iloc[0]:.0f} | {slow['rule']} {slow['wall_s']:.0f} "
            f"| {big['rule']} {big['max_rss_mb']:.0f} | {g['mem_ratio'].min():.2f}, "
            f"{g['mem_ratio'].max():.2f} | {g['time_ratio'].min():.2f}, "
            f"{g['time_ratio'].max():.2f} |"
        )
    largest = t.groupby(["rule", "n", "p"]).agg(
        wall_s=("wall_s", "max"),
        rss=("max_rss_mb", "max"),
        asked_mb=("requested_mem_mb", "max"),
        asked_min=("requested_runtime_min", "max"),
    )
    cells = largest.apply(
        lambda r: f"{r.wall_s:.0f} s / {r.rss:.0f} MB (asks {r.asked_min:.0f} min / "
        f"{r.asked_mb:.0f} MB)",
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
        per_rule = g.groupby("rule")[["wall_s", "max_rss_mb"]].max()
        axes[0].plot(per_rule.index, per_rule["wall_s"], "o-", label=label)
        axes[1].plot(per_rule.index, per_rule["max_rss_mb"], "o-", label=label)
    axes[0].set_ylabel("wall time of the largest job (s)")
    axes[1].set_ylabel("peak RSS of the largest job (MB)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=60)
        ax.set_yscale("log")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000x200", help="comma-separated NxP")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "scale")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frames = []
    for size in args.sizes.split(","):
        n, p = (int(v) for v in size.lower().split("x"))
        frames.append(run_size(args.out, n, p, args.cores))
        print(f"n={n} p={p}: {frames[-1]['end_to_end_s'].iloc[0]:.0f} s", flush=True)
    table = pd.concat(frames, ignore_index=True)
    csv = args.out / "scale.csv"
    if csv.exists():  # keep earlier sizes of the same output folder
        old = pd.read_csv(csv)
        keep = ~old.set_index(["n", "p"]).index.isin(table.set_index(["n", "p"]).index)
        table = pd.concat([old[keep], table], ignore_index=True)
    table.to_csv(csv, index=False)
    (args.out / "scale.md").write_text(summarise(table) + "\n")
    plot(table, args.out / "scale.png")
    print(summarise(table))


if __name__ == "__main__":
    main()
