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


@pytest.mark.parametrize("per_job, groups", [("auto", 2), (4, 0)])
def test_a_paths_small_jobs_form_one_group(tmp_path: Path, per_job, groups: int) -> None:
    """By default each (draw, seed) path whose whole λ grid trains in one job runs its grid and
    train jobs as one cluster job (group `path`, one per seed); a path split into chunks is
    not grouped (its chunks run side by side). A dry run shows the groups a cluster run makes."""
    work = make_workdir(tmp_path, tiny_config(lambdas_per_job=per_job))
    result = snakemake(work, "-n", "results/c/selected.tsv")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert out.count("Group job path") == groups, out[-3000:]
    seeds = set()
    for block in out.split("Group job path")[1:]:  # members are indented, the next job is not
        members = re.split(r"\n(?=\[|rule )", block)[0]
        rules = re.findall(r"^ +rule (\w+):", members, flags=re.M)
        seed = set(re.findall(r"^ +wildcards: .*seed=(\d+)", members, flags=re.M))
        assert sorted(rules) == ["lambda_grid", "train"] and len(seed) == 1, members
        seeds |= seed
    assert len(seeds) == groups, seeds


def test_group_components_bundle_paths(tmp_path: Path) -> None:
    """`group-components: {path: 2}` (the profile's commented option) puts both seeds' paths
    in one cluster job."""
    work = make_workdir(tmp_path, tiny_config(lambdas_per_job="auto"))
    result = snakemake(work, "-n", "results/c/selected.tsv", "--group-components", "path=2")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert out.count("Group job path") == 1, out[-3000:]
    members = re.split(r"\n(?=\[|rule )", out.split("Group job path")[1])[0]
    rules = re.findall(r"^ +rule (\w+):", members, flags=re.M)
    assert sorted(rules) == ["lambda_grid"] * 2 + ["train"] * 2, members


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
    config = tiny_config(lambdas_per_job="auto")
    local = make_workdir(tmp_path / "local", config)
    cluster = make_workdir(tmp_path / "cluster", config)
    target = "results/c/selected.tsv"

    # The repository's profile, plus what differs on this test cluster: partitions `cpu`/`gpu`
    # exist, any account passes (no accounting), there is no GPU, status via squeue (no sacct
    # database), 2 cores per group job. Each SLURM job costs ~15 s of round trips here, so the
    # data stages are grouped into one (ingest + links + groups + knockoffs) and collect_z +
    # select into another; each seed's grid and its one train job (the whole grid, as
    # `lambdas_per_job: auto` gives this cohort) form the workflow's own `path` group.
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
        "collect_z=collect", "select_features=collect",
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

    # Each seed's grid and train job ran inside one SLURM job of their own (the `path` group),
    # on the gpu partition, on the device the training code chose (and logged).
    paths = cluster / "logs" / "c" / "path"
    assert len(list(paths.glob("*chunk*.log"))) == 2, sorted(p.name for p in paths.iterdir())
    job_ids = {}
    for seed in (0, 1):
        found = set()
        for name in (f"draw0_seed{seed}_grid.log", f"draw0_seed{seed}_chunk0.log"):
            text = (paths / name).read_text()
            assert re.search(r"device: (cpu|cuda)", text), f"{name} has no device line"
            ids = re.findall(r"SLURM_JOB_ID=(\d+)", text)
            assert ids, f"{name} does not record a SLURM job id:\n{text[:2000]}"
            found.update(ids)
        assert len(found) == 1, f"seed {seed}: grid and train ran in SLURM jobs {found}"
        job_ids[seed] = found.pop()
    assert job_ids[0] != job_ids[1], f"both seeds' paths ran in one SLURM job: {job_ids}"
    for job_id in job_ids.values():
        partition = subprocess.run(
            ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%P"],
            capture_output=True,
            text=True,
            env=slurm_env(),
        )
        assert partition.stdout.strip() == "gpu", partition.stdout + partition.stderr

    for name in ("selected.tsv", "statistics.tsv"):
        got = (cluster / "results" / "c" / name).read_text()
        want = (local / "results" / "c" / name).read_text()
        assert got == want, f"{name} differs between the SLURM run and the local run"
