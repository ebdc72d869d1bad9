"""The study-runtime estimator (benchmarks/study_runtime.py) on synthetic benchmark files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location(
    "study_runtime", ROOT / "benchmarks/study_runtime.py"
)
study_runtime = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(study_runtime)

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(path: Path, s: float, cpu: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{s}\t0:00:00\t1\t1\t1\t1\t0\t0\t0\t{cpu}\n")


def _replicate(results: Path, design: str, seeds: int, train_s: float) -> None:
    """One replicate's benchmark files: 1 s per chain job, train_s per training chunk."""
    cohort = results / f"sim_{design}_0" / "benchmarks"
    _bench(results / "simulation/benchmarks/cohorts" / design / "rep0.tsv", 1, 1)
    _bench(results / "simulation/benchmarks/scores" / design / "rep0.tsv", 10, 10)
    _bench(cohort / "ingest.tsv", 1, 1)
    _bench(cohort / "knockoffs/draw0.tsv", 2, 3)
    _bench(cohort / "select.tsv", 1, 1)
    for seed in range(seeds):
        _bench(cohort / f"lambda_grid/draw0_seed{seed}.tsv", 1, 2)
        _bench(cohort / f"train/draw0_seed{seed}_chunk0.tsv", train_s, 2 * train_s)
        _bench(cohort / f"collect_z/draw0_seed{seed}.tsv", 1, 1)


def _config(designs: dict) -> dict:
    return {
        "training": {"threads": 2, "seeds": 2, "lambdas": {"count": 8}},
        "knockoffs": {"draws": 1},
        "network": {"hidden": [8]},
        "simulation": {"replicates": 20, "peers": ["rf"], "designs": designs},
    }


DESIGNS = {
    "a": {"generator": "teacher", "n": 100, "params": {"p": 10, "s": 5}},
    "b": {"generator": "teacher", "n": 100, "params": {"p": 10, "s": 2}},
    "c": {"generator": "global_null", "n": 100, "params": {"p": 20}},
}


def test_costs_add_up_per_class_and_replicate(tmp_path: Path) -> None:
    _replicate(tmp_path, "a", seeds=2, train_s=5)
    _replicate(tmp_path, "c", seeds=2, train_s=3)
    config = _config(DESIGNS)
    designs, classes = study_runtime.estimate(config, tmp_path)
    # a and b share (n, p, binary): b is priced by a's measured replicate.
    assert designs.set_index("design")["class"]["a"] == designs.set_index("design")["class"]["b"]
    row = classes.set_index("measured").loc["a"]
    assert row["designs"] == 2 and row["jobs"] == 5 + 3 * 2
    # core-s: chain 1 + 1 + 2*2 (knockoffs, 2 threads) + 1 + 10, per seed 2*(1 + 5) + 1
    assert row["core_s"] == pytest.approx(17 + 2 * 13)
    assert row["cpu_s"] == pytest.approx(1 + 10 + 1 + 3 + 1 + 2 * (2 + 10 + 1))
    # critical path: the chain plus one seed's grid, training and collection
    assert row["critical_s"] == pytest.approx(1 + 1 + 2 + 1 + 10 + (1 + 5 + 1))
    text = study_runtime.report(config, classes, timing_wall=None, timing_cores=2, cores=[1, 10**6])
    total = 20 * (2 * 43 + (17 + 2 * 9))
    assert f"Total: {total / 3600:.1f} h of reserved cores" in text
    assert "| 1 | " + f"{total / 3600:.1f} h |" in text
    # with unlimited cores the estimate is the longest replicate's critical path
    assert f"| 1000000 | {22 / 3600:.1f} h |" in text


def test_a_class_is_priced_by_the_mean_of_its_measured_designs(tmp_path: Path) -> None:
    _replicate(tmp_path, "a", seeds=2, train_s=5)  # 43 core-s
    _replicate(tmp_path, "b", seeds=2, train_s=7)  # 51 core-s
    _replicate(tmp_path, "c", seeds=2, train_s=3)
    config = _config(DESIGNS)
    _, classes = study_runtime.estimate(config, tmp_path)
    row = classes.set_index("measured").loc["a, b"]
    assert row["n_measured"] == 2 and row["designs"] == 2
    assert row["core_s"] == pytest.approx(47) and (row["core_s_min"], row["core_s_max"]) == (43, 51)
    text = study_runtime.report(config, classes, timing_wall=None, timing_cores=2, cores=[1])
    assert "| 47 (43–51) |" in text
    assert f"Total: {20 * (2 * 47 + 35) / 3600:.1f} h" in text


def test_packing_efficiency_scales_the_wall_estimate(tmp_path: Path) -> None:
    _replicate(tmp_path, "a", seeds=2, train_s=5)
    config = _config({"a": DESIGNS["a"]})
    _, classes = study_runtime.estimate(config, tmp_path)
    text = study_runtime.report(config, classes, timing_wall=43.0, timing_cores=1, cores=[1])
    assert "packing efficiency 1.00" in text
    text = study_runtime.report(config, classes, timing_wall=86.0, timing_cores=1, cores=[1])
    assert "packing efficiency 0.50" in text
    assert f"| 1 | {2 * 20 * 43 / 3600:.1f} h |" in text


def test_an_unmeasured_class_names_it_and_the_fix(tmp_path: Path) -> None:
    _replicate(tmp_path, "a", seeds=2, train_s=5)
    with pytest.raises(SystemExit, match=r"\(100, 20, '2 classes'\).*timing targets"):
        study_runtime.estimate(_config(DESIGNS), tmp_path)


def test_timing_targets_take_the_first_design_of_each_class() -> None:
    targets = study_runtime.timing_targets(_config(DESIGNS))
    assert targets == [
        "results/simulation/scores/a/rep0.csv",
        "results/simulation/scores/c/rep0.csv",
    ]


def test_config_merge_is_snakemakes() -> None:
    base = {"training": {"seeds": 10, "threads": 2}, "cohorts": {"wdbc": {}}}
    merged = study_runtime.deep_merge(base, {"training": {"seeds": 4}, "cohorts": {}})
    assert merged["training"] == {"seeds": 4, "threads": 2}
    assert merged["cohorts"] == {"wdbc": {}}  # an empty dict updates nothing
    assert base["training"]["seeds"] == 10
