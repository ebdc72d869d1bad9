"""Kill and resume: a run SIGKILLed during training completes when started again.

A tiny config runs as users run it locally (profiles/default, which sets `rerun-incomplete`).
As soon as the first train job has finished, while others are still training, Snakemake and all
its jobs (one process group) get SIGKILL. Then:

* what the killed run left is never corrupt: every `.npz`/`.npy` present loads;
* finished chunks are kept, the interrupted ones are redone;
* the same command completes, a dry run afterwards finds nothing to do, no temporary files of
  the atomic writers (`.<name>.*`) are left under results/, every output loads;
* the selections equal those of an uninterrupted run in another directory;
* every training log names the device it trained on.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, snakemake, synthetic_cohort, write_config

TARGET = "results/c/selected.tsv"
SEEDS, CHUNKS = 2, 2  # 8 lambdas, 4 per job: 4 train jobs, two at a time on --cores 2
FINISHED_TRAIN = re.compile(r"Finished jobid: \d+ \(Rule: train\)")


def tiny_config() -> dict:
    return {
        "cohorts": {"c": {"path": "c.csv", "label": "outcome", "id": "id"}},
        "seed": 5,
        "knockoffs": {"draws": 1},
        "network": {"hidden": [16]},
        "training": {
            "seeds": SEEDS,
            "threads": 1,
            "max_epochs": 80,
            "patience": 8,
            "lambdas": {"count": 8, "ratio": 0.01},
            "lambdas_per_job": 8 // CHUNKS,
        },
        "selection": {"q": 0.2},
    }


def make_workdir(path: Path) -> Path:
    path.mkdir(parents=True)
    synthetic_cohort(n=240, p=8, seed=21).to_csv(path / "c.csv", index=False)
    write_config(path, tiny_config())
    return path


def command(workdir: Path) -> list[str]:
    """The same invocation as conftest.snakemake (profiles/default is picked up implicitly)."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--cores", "2",
        "--nolock",
        TARGET,
    ]  # fmt: skip


def session_alive(sid: int) -> list[int]:
    """PIDs still in session `sid` (field 6 of /proc/PID/stat)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def assert_loadable(results: Path) -> None:
    """Every array file under results/ loads completely (no truncated writes)."""
    for path in results.rglob("*.npz"):
        with np.load(path) as data:
            for key in data.files:
                data[key]  # reads every member; raises on a truncated archive
    for path in results.rglob("*.npy"):
        np.load(path)


def chunks(workdir: Path) -> list[Path]:
    return sorted((workdir / "results" / "c" / "path").glob("draw*_seed*/chunk*.npz"))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_killed_run_resumes_to_identical_results(tmp_path: Path) -> None:
    reference = make_workdir(tmp_path / "uninterrupted")
    killed = make_workdir(tmp_path / "killed")

    begin = time.monotonic()
    full = snakemake(reference, TARGET, timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]
    print(f"uninterrupted run: {time.monotonic() - begin:.0f} s", file=sys.stderr)

    # Start; once Snakemake reports the first train job finished, SIGKILL Snakemake and every
    # job at once (they share one process group).
    log_path = tmp_path / "killed.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        command(killed), cwd=killed, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    begin = time.monotonic()
    deadline = begin + 120
    while not FINISHED_TRAIN.search(log_path.read_text()):
        assert proc.poll() is None, f"run ended before training: {log_path.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no train job finished within 120 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    print(f"killed after {time.monotonic() - begin:.0f} s", file=sys.stderr)
    proc.wait(timeout=30)
    log.close()
    for _ in range(100):  # jobs die with their group; wait until none is left
        if not session_alive(proc.pid):
            break
        time.sleep(0.1)
    assert not session_alive(proc.pid), "processes of the killed run survived SIGKILL"
    done = chunks(killed)
    assert 0 < len(done) < SEEDS * CHUNKS, f"killed too late: {len(done)} chunks already done"
    assert not (killed / TARGET).exists()
    assert_loadable(killed / "results")  # atomic writes: what exists is complete

    # Resume with the same command: incomplete jobs are redone, finished chunks kept.
    kept = {p: p.stat().st_mtime_ns for p in done}
    begin = time.monotonic()
    again = snakemake(killed, TARGET, timeout=300)
    print(f"resumed run: {time.monotonic() - begin:.0f} s", file=sys.stderr)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "IncompleteFilesException" not in again.stderr
    assert any(p.stat().st_mtime_ns == t for p, t in kept.items() if p.exists()), (
        "the rerun retrained every finished chunk"
    )
    assert len(chunks(killed)) == SEEDS * CHUNKS
    nothing = snakemake(killed, "-n", TARGET)
    assert nothing.returncode == 0 and "Nothing to be done" in nothing.stdout + nothing.stderr

    results = killed / "results"
    leftovers = [str(p.relative_to(results)) for p in results.rglob(".*")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    assert_loadable(results)
    for name in ("selected.tsv", "statistics.tsv"):
        got = (results / "c" / name).read_text()
        want = (reference / "results" / "c" / name).read_text()
        assert got == want, f"{name} differs from the uninterrupted run"

    # Device selection (training.device: auto) is logged by every training job.
    for chunk_log in sorted((killed / "logs" / "c" / "path").glob("*chunk*.log")):
        assert re.search(r"device: (cpu|cuda)", chunk_log.read_text()), chunk_log.name
