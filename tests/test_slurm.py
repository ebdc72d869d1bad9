"""The SLURM profile: static checks, a dry run with job grouping, and a real run on a local SLURM.

The real run (marker `slurm`) starts a single-node SLURM with tests/slurm/start_slurm.sh
(root only; installs Debian's slurm-wlm/munge when missing), submits a tiny config through
`--workflow-profile profiles/slurm`, checks that the training chunks ran inside SLURM jobs and
that the selections equal those of a local run, and stops only the daemons it started.
It is skipped, with the reason, when SLURM cannot be started here or when
snakemake-executor-plugin-slurm (the `slurm` extra) is not installed.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, snakemake, synthetic_cohort, write_config

PROFILE = REPO / "profiles" / "slurm"
START = REPO / "tests" / "slurm" / "start_slurm.sh"
STOP = REPO / "tests" / "slurm" / "stop_slurm.sh"
LOCK = Path("/tmp/knockoffnet-slurm.lock")
HAVE_PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None
NEEDS_PLUGIN = pytest.mark.skipif(
    not HAVE_PLUGIN,
    reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')",
)


def tiny_config(**training) -> dict:
    """The tiny end-to-end config: 1 knockoff draw, 2 seeds, 8 lambdas in chunks of 4."""
    return {
        "cohorts": {"c": {"path": "c.csv", "label": "outcome", "id": "id"}},
        "seed": 7,
        "knockoffs": {"draws": 1},
        "network": {"hidden": [16]},
        "training": {
            "seeds": 2,
            "threads": 1,
            "max_epochs": 80,
            "patience": 8,
            "lambdas": {"count": 8, "ratio": 0.01},
            "lambdas_per_job": 4,
            **training,
        },
        "selection": {"q": 0.2},
    }


def make_workdir(path: Path, config: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    synthetic_cohort(n=240, p=8, seed=11).to_csv(path / "c.csv", index=False)
    write_config(path, config)
    return path


# --------------------------------------------------------------------------- static checks


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def test_profile_keys() -> None:
    """The profile selects the SLURM executor and keeps site settings as placeholders."""
    p = profile()
    assert p["executor"] == "slurm"
    assert p["rerun-incomplete"] is True and p["retries"] >= 1
    assert p["latency-wait"] >= 5 and p["jobs"] >= 1 and p["cores"] >= 1
    assert p["slurm-init-seconds-before-status-checks"] >= 1
    defaults = p["default-resources"]
    assert {"slurm_partition", "slurm_account", "mem_mb", "runtime"} <= set(defaults)
    assert "CHANGE_ME" in defaults["slurm_account"] and "CHANGE_ME" in defaults["slurm_partition"]
    for rule in ("train", "lambda_grid"):
        assert p["set-resources"][rule]["slurm_partition"] == "gpu"
        assert "gpu_model" in p["set-resources"][rule]


def test_profile_every_key_is_commented() -> None:
    """Each top-level key has its own comment line right above it."""
    lines = (PROFILE / "config.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z][\w-]*:", line):
            above = lines[i - 1].strip() if i else ""
            assert above.startswith("#"), f"profile key without a comment: {line!r}"


def test_default_profile_reruns_incomplete() -> None:
    """Local runs (profiles/default) redo jobs a killed run left incomplete (tests/test_resume)."""
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert default["rerun-incomplete"] is True


@NEEDS_PLUGIN
def test_dry_run_groups_training_jobs(tmp_path: Path) -> None:
    """The grouping documented in the profile turns the per-chunk train jobs into one job."""
    work = make_workdir(tmp_path, tiny_config())
    result = snakemake(
        work,
        "-n",
        "results/c/selected.tsv",
        "--workflow-profile",
        str(PROFILE),
        "--groups",
        "train=training",
        "--group-components",
        "training=20",
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert out.count("Group job training") == 1, out[-3000:]
    assert "slurm_partition=gpu" in out and "gpu_model=" in out


# --------------------------------------------------------------------------- a real SLURM


@pytest.fixture(scope="module")
def local_slurm(request: pytest.FixtureRequest):
    """A running single-node SLURM; stops exactly the daemons the start script started."""
    if not HAVE_PLUGIN:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    if os.geteuid() != 0:
        pytest.skip("local SLURM: needs root to start munged, slurmctld and slurmd")
    # One test SLURM per machine: a concurrent pytest session waits for this one to finish.
    lock = LOCK.open("a")
    waited = time.monotonic()
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() - waited > 300:
                lock.close()
                pytest.skip(f"local SLURM busy: another test session holds {LOCK}")
            time.sleep(1)
    request.addfinalizer(lock.close)  # closing releases the lock, after the daemons stop
    begin = time.monotonic()
    started = subprocess.run(
        ["timeout", "-k", "10", "240", str(START)], capture_output=True, text=True
    )
    if started.returncode != 0:
        subprocess.run([str(STOP)], capture_output=True, text=True, timeout=60)
        lines = (started.stderr or started.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {started.returncode}"
        if started.returncode in (124, 137):
            reason = "start_slurm.sh timed out"
        print(started.stderr, file=sys.stderr)
        pytest.skip(f"local SLURM did not start: {reason}")
    print(f"local SLURM up in {time.monotonic() - begin:.1f} s", file=sys.stderr)
    yield
    stopped = subprocess.run([str(STOP)], capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr


def slurm_env() -> dict[str, str]:
    """The caller's environment without SLURM job variables (the tests may run inside a job)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}


@pytest.mark.slurm
def test_workflow_through_slurm(local_slurm, tmp_path: Path) -> None:
    """Training runs inside SLURM jobs; selections equal a local run of the same config."""
    config = tiny_config()
    local = make_workdir(tmp_path / "local", config)
    cluster = make_workdir(tmp_path / "cluster", config)
    target = "results/c/selected.tsv"

    # The repository's profile, plus what differs on this test cluster: partitions `cpu`/`gpu`
    # exist, any account passes (no accounting), there is no GPU, status via squeue (no sacct
    # database), 2 cores per group job. Stages are grouped into three SLURM jobs (each job
    # costs ~15 s of SLURM round trips here): ingest + links + groups + knockoffs; the lambda grids and every
    # train chunk of both seeds (2 components, which also exercises the group `cores` limit:
    # without --cores 2 the group would ask for more CPUs than the node has); collect_z + select.
    command = [
        "timeout", "-k", "10", "240",
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(cluster),
        "--nolock",
        "--workflow-profile", str(PROFILE),
        "--cores", "2",
        "--default-resources", "slurm_partition=cpu", "slurm_account=root",
        "--set-resources",
        "lambda_grid:slurm_partition=gpu", "lambda_grid:gpu=0",
        "train:slurm_partition=gpu", "train:gpu=0",
        "--groups",
        "ingest=prep", "correlation_links=prep", "groups=prep", "knockoffs=prep",
        "lambda_grid=training", "train=training",
        "collect_z=collect", "select_features=collect",
        "--group-components", "training=2",
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs",
        "--latency-wait", "5",
        "--retries", "0",
        target,
    ]  # fmt: skip
    # The local reference run overlaps with the SLURM run, which mostly waits on status checks.
    begin = time.monotonic()
    output = tmp_path / "slurm-run.log"
    with output.open("w") as sink:
        run = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, cwd=cluster, env=slurm_env()
        )
        try:
            reference = snakemake(local, target)
            print(f"local reference run: {time.monotonic() - begin:.0f} s", file=sys.stderr)
            returncode = run.wait(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    elapsed = time.monotonic() - begin
    print(f"workflow through SLURM: {elapsed:.0f} s", file=sys.stderr)
    assert reference.returncode == 0, reference.stderr[-3000:]
    slurm_logs = sorted((cluster / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert returncode == 0, (
        f"exit {returncode} after {elapsed:.0f} s\n{output.read_text()[-4000:]}\n"
        + "\n".join(f"== {p}\n{p.read_text()[-1500:]}" for p in slurm_logs[-3:])
    )

    # Every training chunk ran inside the one grouped SLURM job, on the gpu partition, on the
    # device the training code chose (and logged).
    chunk_logs = sorted((cluster / "logs" / "c" / "path").glob("*chunk*.log"))
    assert len(chunk_logs) == 2 * 2, [p.name for p in chunk_logs]
    job_ids = set()
    for log in chunk_logs:
        text = log.read_text()
        found = re.search(r"SLURM_JOB_ID=(\d+)", text)
        assert found, f"{log.name} does not record a SLURM job id:\n{text[:2000]}"
        job_ids.add(found[1])
        assert re.search(r"device: (cpu|cuda)", text), f"{log.name} has no device line"
    assert len(job_ids) == 1, f"train chunks were not grouped into one SLURM job: {job_ids}"
    partition = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", job_ids.pop(), "-o", "%P"],
        capture_output=True,
        text=True,
        env=slurm_env(),
    )
    assert partition.stdout.strip() == "gpu", partition.stdout + partition.stderr

    for name in ("selected.tsv", "statistics.tsv"):
        got = (cluster / "results" / "c" / name).read_text()
        want = (local / "results" / "c" / name).read_text()
        assert got == want, f"{name} differs between the SLURM run and the local run"
