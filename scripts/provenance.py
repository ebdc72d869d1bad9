"""Snakemake entry: results/{cohort}/run.json (rule `provenance`)."""

import datetime as dt
import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path

from knockoffnet.runtime import rule_context, save_json

PACKAGES = [
    "knockoffnet",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "torch",
    "snakemake",
    "matplotlib",
    "seaborn",
    "jinja2",
    "safetensors",
]


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    root = Path(snakemake.scriptdir).parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


with rule_context(snakemake) as log:
    config = snakemake.params.config
    from knockoffnet import __version__

    versions = {name: version(name) for name in PACKAGES}
    versions["knockoffnet"] = versions["knockoffnet"] or __version__
    versions["python"] = platform.python_version()
    record = {
        "cohort": snakemake.params.cohort,
        "config": config,
        "versions": versions,
        "git_commit": git_commit(),
        "inputs": {str(f): sha256(f) for f in snakemake.input.cohort},
        "seeds": snakemake.params.seeds,
        "recommended_filter": config["selection"]["recommended"],
        "platform": platform.platform(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    save_json(snakemake.output[0], record)
    log.info("wrote provenance for %s", snakemake.params.cohort)
