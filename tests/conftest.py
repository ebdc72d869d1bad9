"""Shared helpers: running the real workflow in a scratch directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# A complete `selection` block for the selection-table unit tests (q = 0.2, knockoff+).
SELECTION = {
    "q": 0.2,
    "offset": 1,
    "combine": "mean",
    "statistic": "importance",
    "vwa_ratio": 0.5,
    "vwa_oml_ratio": 0.5,
    "ebh": {"alpha_kn": None, "offset": 1, "statistic": "ML"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collect the end-to-end runs (marked ``slow`` or ``slurm``) first, in their order: a
    run of minutes handed out last would leave the other xdist workers idle at the end."""
    items.sort(
        key=lambda item: (
            not any(item.iter_markers(name="slow")) and not any(item.iter_markers(name="slurm"))
        )
    )


def write_config(workdir: Path, config: dict) -> Path:
    """Write `config/config.yaml` in a scratch working directory (the Snakefile's default)."""
    path = workdir / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with `workdir` as working directory."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "--nolock",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)


def synthetic_cohort(
    n: int = 240,
    p: int = 8,
    signals: int = 3,
    classes: int = 2,
    null: bool = False,
    seed: int = 0,
    continuous: bool = False,
) -> pd.DataFrame:
    """A small cohort with a non-linear signal in the first `signals` features; the outcome is
    the score cut into `classes` classes, or the score itself when `continuous`."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    if null:
        score = rng.standard_normal(n)
    else:
        score = (
            X[:, 0] * 1.5
            + np.abs(X[:, 1]) * 1.5
            - 1.2 * X[:, 2] ** 2
            + 0.3 * rng.standard_normal(n)
        )
        if signals > 3:
            score = score + X[:, 3:signals].sum(axis=1)
    cuts = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    y = np.searchsorted(cuts, score)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(p)])
    outcome = score if continuous else np.array([f"class_{k}" for k in "ABCDE"])[y]
    frame.insert(0, "outcome", outcome)
    frame.insert(0, "id", [f"s{i}" for i in range(n)])
    return frame


def write_plink(
    directory: Path, n: int = 120, p: int = 12, seed: int = 0, missing: int = 0
) -> tuple[Path, Path, np.ndarray]:
    """A small PLINK fileset (0/1/2 dosages, `missing` NaN genotypes) and its phenotype table.

    The phenotype table lists the samples in another order than the .fam and leaves the last
    5 genotyped samples out; the outcome depends on variants rs0 and rs1 and on `age`.
    """
    rng = np.random.default_rng(seed)
    G = rng.binomial(2, 0.3, size=(n, p)).astype(np.float32)
    if missing:
        G.flat[rng.choice(G.size, missing, replace=False)] = np.nan
    prefix = directory / "geno"
    iids = [f"id{i}" for i in range(n)]
    from bed_reader import to_bed

    to_bed(
        f"{prefix}.bed", G,
        properties={"iid": iids, "fid": iids, "sid": [f"rs{j}" for j in range(p)],
                    "chromosome": ["1"] * (p // 2) + ["2"] * (p - p // 2),
                    "bp_position": list(range(1000, 1000 + 100 * p, 100))},
    )  # fmt: skip
    age = rng.normal(50, 10, n)
    score = np.nan_to_num(G[:, 0]) - np.nan_to_num(G[:, 1]) + 0.05 * (age - 50)
    order = rng.permutation(n - 5)
    pheno = pd.DataFrame(
        {"IID": np.array(iids)[order], "case": (score > np.median(score)).astype(int)[order],
         "age": age[order], "sex": rng.choice(["F", "M"], n)[order]}
    )  # fmt: skip
    pheno.to_csv(directory / "pheno.tsv", sep="\t", index=False)
    return prefix, directory / "pheno.tsv", G


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
