"""The GPU benchmark script, run on the CPU: a device session is short and rare, so the
script must not have rotted when one comes (benchmarks/bench_gpu.py, issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

# Runs of the benchmark script (minutes): started first, on one worker, which runs the
# module fixture once for both tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench_gpu")]


@pytest.fixture(scope="module")
def every_stage(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """One run of every stage (about a minute on 2 cores), shared by the tests below: its
    scale stage is also the one-call run the two-call split must reproduce."""
    out = tmp_path_factory.mktemp("bench_gpu") / "gpu.json"
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"),
        "--n", "3000", "--p", "50", "--seeds", "2", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text()), out


def test_bench_gpu_runs_every_stage_on_the_cpu(every_stage: tuple[dict, Path]) -> None:
    report, out = every_stage
    agreement = report["agreement"]
    assert "error" not in agreement and agreement["gpu_repeat_bit_identical"] is True
    assert report["syncs"] == {"skipped": "no CUDA"}
    assert report["per_check"]["cpu"]["s_per_check"] > 0
    scale = report["scale"]
    assert scale["seeds_done"] == 2
    for seed in (0, 1):
        events = [e for e in scale["events"] if e["seed"] == seed]
        assert {"dense", "grid", "path", "z"} <= {e["stage"] for e in events}
        # every λ of the path is logged as it stops, so a run cut short shows its progress
        done = [
            e for e in events if e["stage"] == "path_log" and " epochs, best epoch " in e["msg"]
        ]
        assert len(done) == 20
    # the 20 relevant variants of the genotype cohort are found, as the workflow finds them
    assert report["selected"]["ML"]["true"] == 20
    assert (out.parent / "gpu.events.jsonl").exists()


def _scale(tmp: Path, name: str, *extra: str) -> dict:
    """The scale stage alone, on the every-stage run's cohort, seed 0 only."""
    out = tmp / f"{name}.json"
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--stages", "scale",
        "--n", "3000", "--p", "50", "--seeds", "1", "--device", "cpu", "--out", str(out), *extra,
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def _paths(report: dict) -> dict[int, tuple[float, list[int]]]:
    """Per seed: the path's best validation accuracy and each λ's checks."""
    events = report["scale"]["events"]
    return {e["seed"]: (e["val_accuracy"], e["checks"]) for e in events if e["stage"] == "path"}


def test_bench_gpu_in_two_calls_equals_one(tmp_path: Path, every_stage: tuple[dict, Path]) -> None:
    """--state/--stop-after split the scale run over two device calls (the cohort, dense fits
    and grids in the first, the paths in the second) with the one-call run's results (the
    scale stage of the every-stage run: each stage and each seed seeds its own work, so
    neither the stages before it nor the other seed change seed 0's path there)."""
    whole = every_stage[0]
    state = str(tmp_path / "state")
    first = _scale(tmp_path, "first", "--state", state, "--stop-after", "grid")
    assert first["scale"]["seeds_done"] == 0 and "selected" not in first
    assert {e["stage"] for e in first["scale"]["events"]} == {"dense", "grid"}
    second = _scale(tmp_path, "second", "--state", state)
    assert second["cohort"]["reused"] == state
    stages = [e["stage"] for e in second["scale"]["events"]]
    assert stages.count("reused") == 1 and "dense" not in stages and "grid" not in stages
    assert second["scale"]["seeds_done"] == 1
    assert _paths(second) == {0: _paths(whole)[0]}
    # every λ of seed 0 stopped where it stopped in one call; the selection (one seed's vote)
    # finds signals
    assert second["selected"]["ML"]["true"] > 0
