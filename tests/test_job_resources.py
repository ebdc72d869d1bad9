"""What jobs ask a cluster for (issue 16): a model of the work, not a factor of file size."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from knockoffnet.coupling import COUPLED_EPOCHS, COUPLED_PATIENCE
from knockoffnet.job_resources import (
    DECAYED_PATIENCES,
    Shape,
    memory_mb,
    runtime_min,
    seconds_per_check,
    selection_sizes,
    shape_from_files,
    shape_from_meta,
)
from knockoffnet.vocabulary import AUTO_PATIENCE, fit_epochs

from conftest import REPO, synthetic_cohort, write_plink

RULES = (
    "ingest",
    "groups",
    "correlation_links",
    "knockoffs",
    "lambda_grid",
    "train",
    "collect_z",
    "prune",
)


@pytest.fixture(scope="module")
def defaults() -> dict:
    """The schema defaults (what a config that sets nothing gets)."""
    from snakemake.utils import validate

    config: dict = {"cohorts": {}}
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return config


@pytest.fixture(scope="module")
def recorded(defaults: dict) -> dict:
    """The defaults the recorded benchmark jobs ran with: before 2026-12-06 the dense fit was
    not decayed (`training.dense_decay: 0`), and a decayed one asks for a longer grid job."""
    return {**defaults, "training": {**defaults["training"], "dense_decay": 0}}


def test_shape_from_plink_and_table_files(tmp_path: Path) -> None:
    prefix, pheno, _ = write_plink(tmp_path, n=150, p=9)
    files = [f"{prefix}{s}" for s in (".bed", ".bim", ".fam")] + [str(pheno)]
    assert shape_from_files(files) == Shape(150, 9, genome=True)
    synthetic_cohort(n=3000, p=12).to_csv(tmp_path / "c.csv", index=False)
    est = shape_from_files([str(tmp_path / "c.csv")])
    assert est.p == 14  # id, outcome and 12 features: an upper bound is what a request needs
    assert 2700 <= est.n <= 3300
    synthetic_cohort(n=500, p=5).to_parquet(tmp_path / "c.parquet", index=False)
    assert shape_from_files([str(tmp_path / "c.parquet")]) == Shape(500, 7)


def test_shape_from_meta(tmp_path: Path) -> None:
    meta = {"n": 1000, "p": 40, "covariates": ["age", "sex"]}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert shape_from_meta(tmp_path / "meta.json") == Shape(1000, 40, 2)


def test_requests_grow_with_the_work_and_stay_schedulable(defaults: dict) -> None:
    """Linear in n for the data-sized jobs; a biobank cohort's jobs fit an ordinary node
    (the old factor × file size asked 23 GB and 38 h per training job at 100k × 1000)."""
    small, big = Shape(25_000, 1_000), Shape(100_000, 1_000)
    for rule in RULES:
        assert memory_mb(rule, big, defaults) >= memory_mb(rule, small, defaults), rule
        assert runtime_min(rule, big, defaults) >= runtime_min(rule, small, defaults), rule
        assert memory_mb(rule, big, defaults) <= 8_000, rule
        assert runtime_min(rule, big, defaults) <= 12 * 60, rule
    # the training jobs hold one float32 copy of [X, X~] (the split is taken in place);
    # collect_z is asked for a second one: a transient seen in 4 of 14 identical runs
    U = big.n * 2 * big.p * 4 / 1e6
    for rule in ("lambda_grid", "train"):
        assert U < memory_mb(rule, big, defaults) < 2 * U + 1000
    assert 2 * U < memory_mb("collect_z", big, defaults) < 3 * U + 1000
    # copies widen the network input and the draw
    many = {**defaults, "knockoffs": {**defaults["knockoffs"], "copies": 3}}
    assert memory_mb("train", big, many) > memory_mb("train", big, defaults)
    assert memory_mb("knockoffs", big, many) > memory_mb("knockoffs", big, defaults)
    # the default copies: auto asks for what the knockoff job will draw: 3 copies up to 500
    # features (as an explicit 3), 1 above (these 1,000-feature shapes: as an explicit 1)
    one = {**defaults, "knockoffs": {**defaults["knockoffs"], "copies": 1}}
    assert defaults["knockoffs"]["copies"] == "auto"
    narrow = Shape(100_000, 500)
    for rule in ("knockoffs", "lambda_grid", "train"):
        assert memory_mb(rule, narrow, defaults) == memory_mb(rule, narrow, many), rule
        assert runtime_min(rule, narrow, defaults) == runtime_min(rule, narrow, many), rule
        assert memory_mb(rule, big, defaults) == memory_mb(rule, big, one), rule
    # more threads, less wall time for training
    assert runtime_min("train", big, defaults, threads=8) < runtime_min("train", big, defaults)


def test_training_time_follows_the_rows_of_a_check(defaults: dict) -> None:
    """Early stopping counts checks of at most check_rows rows, so the typical λ's training
    time stops growing with the training rows beyond check_rows (only its validation checks
    do), and auto puts more λ in a job; below check_rows the cost is a pass per epoch."""
    from knockoffnet.job_resources import auto_lambdas_per_job, seconds_per_lambda

    passes = {**defaults, "training": {**defaults["training"], "check_rows": 0}}
    small, big = Shape(10_000, 1_000), Shape(100_000, 1_000)
    assert seconds_per_lambda(small, defaults) == seconds_per_lambda(small, passes)
    ratio = seconds_per_lambda(big, passes) / seconds_per_lambda(big, defaults)
    assert 2.5 < ratio < 4.0  # 80,000 rows a pass against 20,000 a check, validation alike
    assert auto_lambdas_per_job(big, defaults) >= auto_lambdas_per_job(big, passes)
    assert runtime_min("train", big, defaults) <= runtime_min("train", big, passes)


def test_knockoff_requests_follow_p_squared(defaults: dict) -> None:
    """At large p the draw holds (p, p) matrices and does O(n·p² + p³) work: the request
    must grow at least that fast (at 20,000 × 10,000 the job peaked at 11.3 GB while a model
    linear in p asked 3.4 GB, so every retry would have been killed too)."""
    small, big = Shape(20_000, 1_000), Shape(20_000, 10_000)
    mem = memory_mb("knockoffs", big, defaults)
    assert mem >= 6 * big.p**2 * 8 / 1e6  # six (p, p) float64 matrices at least
    assert mem > 5 * memory_mb("knockoffs", small, defaults)
    assert runtime_min("knockoffs", big, defaults, 2) > runtime_min("knockoffs", small, defaults, 2)
    grouped = {**defaults, "knockoffs": {**defaults["knockoffs"], "groups": "auto"}}
    assert memory_mb("knockoffs", big, grouped) > mem
    # per-feature knockoffs: the groups job only writes labels
    assert memory_mb("groups", big, defaults) < memory_mb("groups", big, grouped)


def test_block_wise_draws_ask_for_memory_linear_in_p(defaults: dict) -> None:
    """Beyond 10,000 features `sampling: auto` draws by blocks of max_block features: the
    request grows with n·p (X and its knockoffs) and max_block², not p² (a PLINK cohort,
    cut in genome order); a table's correlation order is its own job (`correlation_links`,
    once per cohort), O(rows·p) memory and O(rows·p²) time, and asks nothing otherwise."""
    blocks = {**defaults, "knockoffs": {**defaults["knockoffs"], "sampling": "blocks"}}
    full = {**defaults, "knockoffs": {**defaults["knockoffs"], "sampling": "full"}}
    wide, wider = Shape(20_000, 50_000, genome=True), Shape(20_000, 100_000, genome=True)
    table = Shape(20_000, 100_000)
    assert memory_mb("knockoffs", table, blocks) == memory_mb("knockoffs", wider, blocks)
    rows_mb = 2_000 * table.p * 4 / 1e6  # the order's rows, float32
    links = memory_mb("correlation_links", table, blocks)
    assert 2 * rows_mb <= links < 2 * rows_mb + 1_000
    small = Shape(20_000, 20_000)
    assert runtime_min("correlation_links", table, blocks) > runtime_min(
        "correlation_links", small, blocks
    )
    columns = {**blocks, "knockoffs": {**blocks["knockoffs"], "block_order": "columns"}}
    for shape, cfg in ((table, columns), (wider, blocks), (table, full)):  # no order to build
        assert memory_mb("correlation_links", shape, cfg) < 300
        assert runtime_min("correlation_links", shape, cfg) == 1
    assert memory_mb("knockoffs", wide, defaults) == memory_mb("knockoffs", wide, blocks)
    assert memory_mb("knockoffs", wide, blocks) < memory_mb("knockoffs", wide, full) / 10
    X = wider.n * wider.p * 4 / 1e6
    assert 2 * X < memory_mb("knockoffs", wider, blocks) < 2 * X + 2_000
    ratio = runtime_min("knockoffs", wider, blocks, 2) / runtime_min("knockoffs", wide, blocks, 2)
    assert 1.5 < ratio <= 2.5  # twice the blocks, twice the time
    edge = Shape(20_000, 10_000)  # auto: still one joint draw
    assert memory_mb("knockoffs", edge, defaults) == memory_mb("knockoffs", edge, full)
    # groups: auto clusters within the blocks, so its |corr| matrices are max_block², not p²
    grouped = {**defaults, "knockoffs": {**defaults["knockoffs"], "groups": "auto"}}
    assert memory_mb("groups", wide, grouped) < wide.x_mb() + 2_000
    joint = {**grouped, "knockoffs": {**grouped["knockoffs"], "sampling": "full"}}
    assert memory_mb("groups", wide, joint) > 24 * wide.p**2 / 1e6  # 60 GB: one clustering


def test_workflow_asks_the_model_for_ingest(tmp_path: Path, defaults: dict) -> None:
    """The dry run shows ingest's request computed from the PLINK files; later jobs wait
    for meta.json (<TBD> until ingest has run)."""
    from conftest import snakemake, write_config

    prefix, pheno, _ = write_plink(tmp_path, n=120, p=12)
    config = {"cohorts": {"geno": {"plink": prefix.name, "pheno": pheno.name, "label": "case"}}}
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "-n", "results/geno/selected.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    ingest = next(i for i, line in enumerate(lines) if line.startswith("rule ingest"))
    resources = next(line for line in lines[ingest:] if "resources:" in line)
    assert f"mem_mb={memory_mb('ingest', Shape(120, 12), defaults)}," in resources
    assert f"runtime={runtime_min('ingest', Shape(120, 12), defaults)}," in resources
    assert "mem_mb=<TBD>" in result.stdout


def test_prune_model_follows_the_fits_it_counts(defaults: dict) -> None:
    """Reduce Weight's request counts the fits retraining makes (its defaults: batch, inner
    validation, patience, held-out quarter), one set of fits per distinct selection plus the
    all-features baseline, and more inputs cost more time, fewer workers more."""
    import inspect

    from knockoffnet import job_resources as jr
    from knockoffnet.retraining import compare_predictions, train_network

    fit = inspect.signature(train_network).parameters
    assert fit["batch_size"].default == jr.PRUNE_BATCH
    assert fit["val_fraction"].default == jr.PRUNE_VAL
    assert fit["patience"].default == jr.PRUNE_PATIENCE
    assert inspect.signature(compare_predictions).parameters["test_fraction"].default == (
        jr.PRUNE_TEST
    )
    big = Shape(100_000, 1_000)
    few, every = (
        jr.prune_seconds(big, defaults, 2, [24, 1_000]),
        jr.prune_seconds(big, defaults, 2, [1_000]),
    )
    assert every < few < 2 * every  # a 24-feature selection: mostly the steps' fixed cost
    assert jr.prune_seconds(big, defaults, 2) == jr.prune_seconds(big, defaults, 2, [1_000] * 2)
    assert jr.prune_seconds(big, defaults, 1, [24, 1_000]) > 1.8 * few
    wide = Shape(2_000, 20_000)
    assert jr.prune_seconds(wide, defaults, 2, [20_000]) > 10 * jr.prune_seconds(
        wide, defaults, 2, [1_000]
    )


def test_selection_sizes_count_each_distinct_set_once(tmp_path: Path) -> None:
    path = tmp_path / "selected.tsv"
    rows = [("OL", "a"), ("OL", "b"), ("ML", "b"), ("ML", "a"), ("ebh", "c")]
    path.write_text("filter\tfeature\n" + "".join(f"{f}\t{x}\n" for f, x in rows))
    assert sorted(selection_sizes(path, 50)) == [1, 2, 50]
    path.write_text("filter\tfeature\tW\n")  # nothing selected: the baseline alone
    assert selection_sizes(path, 50) == [50]


def test_a_whole_grid_job_asks_for_its_average_lambda(defaults: dict) -> None:
    """A job with the whole grid asks for the longest λ once and a typical one for the rest;
    a chunk of the grid asks for the longest λ each (a chunk may hold only long λ)."""
    from knockoffnet import job_resources as jr

    small = Shape(2_000, 200)
    whole = {**defaults, "training": {**defaults["training"], "lambdas_per_job": 0}}
    half = {**defaults, "training": {**defaults["training"], "lambdas_per_job": 10}}
    check = jr.seconds_per_check(small, defaults)
    patience = AUTO_PATIENCE  # training.patience: auto at 1,600 training rows
    assert defaults["training"]["patience"] == "auto"
    longest = jr.LONGEST_PATIENCES * patience + jr.LONGEST_EXTRA
    assert jr.n_lambdas(whole, small) == 20
    want = (longest + 19 * jr.MEAN_PATIENCES * patience) * check + jr.SETUP_SECONDS
    assert runtime_min("train", small, whole) == math.ceil(want / 60)
    assert runtime_min("train", small, half) == math.ceil(
        (10 * longest * check + jr.SETUP_SECONDS) / 60
    )


def test_workflow_asks_prune_for_the_selections_it_fits(tmp_path: Path, defaults: dict) -> None:
    """Once selection has run, `prune`'s runtime request counts the distinct feature sets of
    selected.tsv (three sets and the baseline ask twice the time of one set and the baseline)."""
    from conftest import snakemake, write_config

    synthetic_cohort(n=240, p=8).to_csv(tmp_path / "c.csv", index=False)
    config = {
        "cohorts": {"c": {"path": "c.csv", "label": "outcome", "id": "id"}},
        "training": {"seeds": 1, "max_epochs": 30, "patience": 5, "lambdas": {"count": 4}},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "results/c/selected.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    selected = tmp_path / "results" / "c" / "selected.tsv"
    rows = [("OL", "f0"), ("ML", "f0"), ("ML", "f1"), ("ebh", "f2"), ("ebh", "f3")]
    selected.write_text("filter\tfeature\n" + "".join(f"{f}\t{x}\n" for f, x in rows))
    config["pruning"] = {"repeats": 4_000}  # minutes, not SLURM's one-minute floor
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "-n", "results/c/pruning/summary.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    block = result.stdout.split("rule prune:")[1]
    asked = int(re.search(r"runtime=(\d+)", block)[1])
    cfg = {**defaults, "pruning": {**defaults["pruning"], "repeats": 4_000}}
    shape = shape_from_meta(tmp_path / "results" / "c" / "data" / "meta.json")
    chosen = selection_sizes(selected, shape.p)
    assert sorted(chosen) == [1, 2, 2, 8]
    assert asked == runtime_min("prune", shape, cfg, 2, chosen)
    assert asked > 1.5 * runtime_min("prune", shape, cfg, 2, [1, 8])


def test_lambda_count_auto_halves_the_grid_from_large_cohort_rows() -> None:
    from knockoffnet.vocabulary import LARGE_COHORT_ROWS, lambda_count

    auto = {"count": "auto", "ratio": 0.01, "values": None}
    assert lambda_count(auto, 1_000) == 20 and lambda_count(auto, None) == 20
    assert lambda_count(auto, LARGE_COHORT_ROWS - 1) == 20
    assert lambda_count(auto, LARGE_COHORT_ROWS) == 10 and lambda_count(auto, 10**6) == 10
    assert lambda_count({**auto, "count": 40}, 10**6) == 40  # a number is kept at any size
    assert lambda_count({**auto, "values": [3.0, 2.0, 1.0]}, 10**6) == 3


def test_auto_lambdas_per_job(defaults: dict) -> None:
    """About a minute of training per job: the whole grid for small cohorts, one λ per job
    for a biobank-size one."""
    from knockoffnet.job_resources import auto_lambdas_per_job, seconds_per_lambda

    assert defaults["training"]["lambdas"]["count"] == "auto"
    assert defaults["training"]["lambdas_per_job"] == "auto"
    assert auto_lambdas_per_job(Shape(1_000, 50), defaults) == 20
    assert auto_lambdas_per_job(Shape(100_000, 1_000), defaults) == 1
    mid = Shape(20_000, 200)
    per = auto_lambdas_per_job(mid, defaults)
    assert 1 <= per <= 20
    assert per * seconds_per_lambda(mid, defaults) >= 60 or per == 20
    # on a GPU the batched λ cost what one does: the whole grid in one job at any size,
    # ten λ from 50,000 rows on (count: auto)
    gpu = {**defaults, "training": {**defaults["training"], "device": "cuda:0"}}
    assert auto_lambdas_per_job(Shape(100_000, 1_000), gpu) == 10
    assert auto_lambdas_per_job(Shape(49_999, 1_000), gpu) == 20


def test_auto_chunks_a_large_design_in_the_dag(tmp_path: Path) -> None:
    """A simulated design's size is known before any data exist: a large one gets one train
    job per λ (dry run only) and ten λ (`lambdas.count: auto`), a small one one job per
    path, and on a GPU one per path."""
    from conftest import snakemake

    def train_jobs(n: int, p: int, device: str = "auto", per_job: int | str = "auto") -> int:
        config = {
            "cohorts": {},
            "training": {"seeds": 2, "device": device, "lambdas_per_job": per_job},
            "simulation": {
                "replicates": 1,
                "designs": {"d": {"generator": "global_null", "n": n, "params": {"p": p}}},
            },
        }
        path = tmp_path / f"sim{n}{device}{per_job}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = snakemake(tmp_path, "-n", "simulate", "--configfile", str(path))
        assert result.returncode == 0, result.stderr[-3000:]
        counts = [line.split() for line in result.stdout.splitlines()]
        return next(int(c[1]) for c in counts if len(c) == 2 and c[0] == "train")

    assert train_jobs(1_000, 20) == 2  # one job per path
    assert train_jobs(200_000, 1_000) == 2 * 10  # one job per λ, ten λ from 50,000 rows
    assert train_jobs(49_999, 100, per_job=1) == 2 * 20  # twenty below
    assert train_jobs(200_000, 1_000, "cuda") == 2  # a GPU batches the whole path


def test_a_lone_grid_job_gets_the_idle_cores(tmp_path: Path) -> None:
    """With fewer grid jobs than cores a local run shares the cores among them (nothing else
    can run meanwhile); with as many grid jobs as cores each keeps `training.threads`."""
    from conftest import snakemake

    def grid_threads(seeds: int, cores: int) -> list[int]:
        config = {
            "cohorts": {},
            "training": {"seeds": seeds},
            "simulation": {
                "replicates": 1,
                "designs": {"d": {"generator": "global_null", "n": 1_000, "params": {"p": 20}}},
            },
        }
        path = tmp_path / f"sim{seeds}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = snakemake(
            tmp_path, "-n", "simulate", "--configfile", str(path), "--cores", str(cores)
        )
        assert result.returncode == 0, result.stderr[-3000:]
        found = []
        for block in re.split(r"\n *rule ", result.stdout)[1:]:  # grouped jobs are indented
            if block.startswith("lambda_grid:"):
                lines = [ln.split() for ln in block.splitlines()]
                found.append(next((int(w[1]) for w in lines if w[:1] == ["threads:"]), 1))
        assert len(found) == seeds
        return found

    assert grid_threads(1, 4) == [4]
    assert grid_threads(2, 4) == [2, 2]
    assert grid_threads(3, 4) == [1, 1, 1]


def test_jobs_import_the_running_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workflow puts its own scripts/ first on the PYTHONPATH its jobs inherit."""
    import os

    from knockoffnet.runtime import import_from

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    import_from("/checkout/scripts")
    assert os.environ["PYTHONPATH"].split(os.pathsep) == ["/checkout/scripts", "/elsewhere"]
    monkeypatch.delenv("PYTHONPATH")
    import_from("/checkout/scripts")
    assert os.environ["PYTHONPATH"] == "/checkout/scripts"


def test_unreadable_inputs_are_sized_by_their_bytes(tmp_path: Path) -> None:
    """A file ingest will refuse (not gzip despite .gz) still gets a request; a missing one
    raises FileNotFoundError, which Snakemake turns into a deferred request."""
    bad = tmp_path / "table.csv.gz"
    bad.write_text("id,y,x\n1,0,2.5\n" * 100)
    assert shape_from_files([str(bad)]) == Shape(bad.stat().st_size // 8, 1)
    with pytest.raises(FileNotFoundError):
        shape_from_files([str(tmp_path / "gone.csv")])


@pytest.mark.parametrize(("device", "gpus"), [("cpu", "0"), ("auto", "1")])
def test_training_asks_for_a_gpu_only_when_it_may_use_one(
    tmp_path: Path, device: str, gpus: str
) -> None:
    """`training.device: cpu` jobs must not wait in a cluster's GPU queue."""
    from conftest import snakemake, write_config

    synthetic_cohort(n=80, p=6).to_csv(tmp_path / "c.csv", index=False)
    config = {
        "cohorts": {"c": {"path": "c.csv", "label": "outcome", "id": "id"}},
        "training": {"device": device},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "-n", "results/c/selected.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for rule in ("lambda_grid", "train"):
        start = next(i for i, line in enumerate(lines) if line.strip() == f"rule {rule}:")
        resources = next(line for line in lines[start:] if "resources:" in line)
        assert f"gpu={gpus}" in resources, resources


def _asked_and_measured(jobs, defaults: dict):
    """Per recorded job: its wall time and peak next to what the model asks for it."""
    import pandas as pd

    groups = jobs["groups"].astype(object).fillna("none") if "groups" in jobs else "none"
    jobs = jobs.assign(groups=groups)
    base = {**defaults, "training": {**defaults["training"], "seeds": 1}}
    threads = {"prune": 2, "knockoffs": 2}  # the rules' threads where no column records them
    rows = []
    for job in jobs.itertuples():
        training = dict(base["training"])
        if pd.notna(getattr(job, "patience", float("nan"))):  # a run with shortened training
            lambdas = {**training["lambdas"], "count": int(job.lambdas)}
            training.update(patience=int(job.patience), max_epochs=int(job.max_epochs))
            training["lambdas"] = lambdas
        cfg = {
            **base,
            "training": training,
            "knockoffs": {**base["knockoffs"], "groups": job.groups},
        }
        shape, rule = (
            Shape(job.n, job.p, job.covariates, job.genome),
            job.rule.replace("select", "select_features"),
        )
        # Reduce Weight forks two workers: their summed RSS is what it must hold, sampled
        # every 0.2 s by benchmarks/tree_memory.py where recorded (`summed_rss_mb`), else by
        # Snakemake. Prune jobs recorded without it ran before 1843837, whose comparison held
        # a float64 copy of the rows in every process: their memory no longer binds the model.
        summed = getattr(job, "summed_rss_mb", float("nan"))
        superseded = rule == "prune" and pd.isna(summed)
        if rule != "prune":
            rss = job.peak_rss_mb
        else:
            rss = job.snakemake_max_rss_mb if superseded else summed
        ran_on = getattr(job, "threads", float("nan"))
        # the feature sets `prune` fitted where recorded (else the model's every-feature guess)
        chosen = getattr(job, "selections", float("nan"))
        chosen = [int(k) for k in chosen.split(";")] if isinstance(chosen, str) else None
        asked_min = runtime_min(
            rule, shape, cfg, int(ran_on) if pd.notna(ran_on) else threads.get(rule, 1), chosen
        )
        asked_mb = memory_mb(rule, shape, cfg)
        source = getattr(job, "source", "")
        row = (source, job.n, job.p, rule, job.wall_s, 60 * asked_min, rss, asked_mb, superseded)
        rows.append(row)
    columns = ["source", "n", "p", "rule", "wall", "asked_s", "rss", "asked_mb", "superseded"]
    return pd.DataFrame(rows, columns=columns)


def _check_requests(table) -> None:
    """Every job asked at least its wall time and peak memory and at most twice its memory;
    in each record set each rule's longest job asked at most twice its wall time (in SLURM's
    whole minutes: at most ⌈2 × wall⌉ minutes, one at least)."""
    assert (table["asked_s"] >= table["wall"]).all(), table[table["asked_s"] < table["wall"]]
    longest = table.loc[table.groupby(["source", "n", "p", "rule"])["wall"].idxmax()]
    limit = longest["wall"].map(lambda s: 60 * max(1, math.ceil(2 * s / 60)))
    assert (longest["asked_s"] <= limit).all(), longest[longest["asked_s"] > limit]
    memory = table[~table["superseded"]]
    assert (memory["asked_mb"] >= memory["rss"]).all(), memory[memory["asked_mb"] < memory["rss"]]
    within = memory["asked_mb"] <= 2 * memory["rss"]
    assert within.all(), memory[~within]


def _records(*names: str, genome: bool = True):
    """The recorded jobs of benchmarks/records/<name>/jobs.csv, each with its record set."""
    import pandas as pd

    frames = [
        pd.read_csv(REPO / "benchmarks" / "records" / name / "jobs.csv").assign(source=name)
        for name in names
    ]
    return pd.concat(frames, ignore_index=True).assign(genome=genome)


def test_requests_cover_the_measured_benchmark_jobs(recorded: dict) -> None:
    """Issue 16's criterion on the recorded benchmark jobs (benchmarks/records/
    scale_2026-12-04/jobs.csv: one seed end to end at 25,000 / 50,000 / 100,000 × 1,000 with
    default settings, and the data jobs at 20,000 × 1,000 / 5,000 / 10,000; scale_2026-12-05:
    100,000 × 1,000 again with the grid check's floor and ten λ, on a day the machine ran
    about 1.5× slower; scale_2026-12-05_threads: the same on a fast day with the lone grid
    job on both cores, its `threads` column what each job ran on (its 45-s `prune` left out:
    Snakemake's 30-s RSS sampling missed its two workers' summed peak); scale_2026-12-05_head:
    the same cohort end to end at 5e9b91a (its `prune` left out likewise), and at 42cb94c
    (scale_2026-12-05_final, the requests of this model; `prune` likewise); table_2026-12-04:
    a 2,000 × 20,000 table with `groups: auto`, its training shortened to patience 2,
    max_epochs 6 and 4 λ, as recorded; prune_2026-12-05: the `prune` job of 1843837 at
    100,000 × 1,000 and 2,000 × 200, its summed RSS sampled every 0.2 s and the sizes of the
    feature sets it fitted): every job is asked at least its measured peak memory and wall
    time and at most twice its memory; in each record set each rule's longest job at most
    twice its time. A `train` job asks for the longest λ's time, so the short λ of the same
    rule are asked more than twice theirs."""
    import pandas as pd

    scale = _records(
        "scale_2026-12-04",
        "scale_2026-12-05",
        "scale_2026-12-05_threads",
        "scale_2026-12-05_head",
        "scale_2026-12-05_final",
        "prune_2026-12-05",
    )
    wide = _records("table_2026-12-04", genome=False)
    jobs = pd.concat([scale, wide], ignore_index=True)
    table = _asked_and_measured(jobs, recorded)
    assert len(table) == len(jobs) >= 99 + 21 + 20 + 20 + 19 + 4 + 6
    assert set(table["rule"]) >= set(RULES)
    assert (jobs.loc[jobs["rule"] == "lambda_grid", "threads"] == 2).sum() == 3
    assert ((table["rule"] == "prune") & ~table["superseded"]).sum() == 6
    _check_requests(table)


def test_requests_cover_a_small_cohorts_jobs(recorded: dict) -> None:
    """The quick check's cohort (benchmarks/records/small_2026-12-05: 2,000 × 200, one seed,
    defaults, every job of a run to the report). Its one `train` job holds all 20 λ (934-1,021
    MB in five runs, once asked 951), and `prune`'s parent and two forked workers summed to
    1,176 MB of RSS before 1843837 (once asked 1,140; 1,151-1,154 since, prune_2026-12-05).
    Every job asks for a minute, SLURM's floor, which is within twice the longest of each
    rule, and memory within 2×."""
    table = _asked_and_measured(_records("small_2026-12-05"), recorded)
    assert len(table) == 12 and set(table["rule"]) >= set(RULES)
    assert (table["asked_s"] == 60).all(), table[table["asked_s"] != 60]
    _check_requests(table)


def test_requests_cover_a_wide_tables_jobs(recorded: dict) -> None:
    """A 2,000 × 20,000 table with `groups: auto` through every rule to the report
    (benchmarks/records/table_2026-12-05, c853a57; training shortened to patience 2,
    max_epochs 6 and 4 λ, as recorded; `prune`'s summed RSS sampled every 0.2 s, and the
    feature sets it fitted): every job asked at least its peak and wall time, memory within
    2×, each rule's longest job within 2× of its time (benchmarks/README.md, "A wide table to
    the report")."""
    table = _asked_and_measured(_records("table_2026-12-05", genome=False), recorded)
    assert len(table) == 13 and set(table["rule"]) >= set(RULES)
    assert not table["superseded"].any()
    _check_requests(table)


def test_a_decayed_dense_fit_asks_for_its_longer_fit(defaults: dict, recorded: dict) -> None:
    """Each decayed candidate of training.dense_decay (auto = [10, 0] with Adam, the default)
    is one more dense fit of up to DECAYED_PATIENCES × patience checks: the grid job asks
    for it on top of the grid's own checks; the λ jobs (never decayed) do not; `auto` with a
    full-batch step rule decays nothing."""
    shape = Shape(100_000, 1_000)
    check = seconds_per_check(shape, defaults)
    t = defaults["training"]
    patience, cap = fit_epochs(t["patience"], t["max_epochs"], 80_000)  # auto: 20 and 300
    extra = min(cap, DECAYED_PATIENCES * patience) * check / 60.0
    plain_grid = runtime_min("lambda_grid", shape, recorded)
    auto_grid = runtime_min("lambda_grid", shape, defaults)
    assert plain_grid + math.floor(extra) <= auto_grid <= plain_grid + math.ceil(extra) + 1
    two = {**defaults, "training": {**t, "dense_decay": [3, 10, 0]}}
    assert runtime_min("lambda_grid", shape, two) >= plain_grid + math.floor(2 * extra)
    assert runtime_min("train", shape, defaults) == runtime_min("train", shape, recorded)
    fista = {**defaults, "training": {**t, "optimizer": "fista"}}
    fista_plain = {**fista, "training": {**fista["training"], "dense_decay": 0}}
    assert runtime_min("lambda_grid", shape, fista) == runtime_min(
        "lambda_grid", shape, fista_plain
    )


def test_a_coupled_dense_fit_asks_for_its_longer_fits(defaults: dict) -> None:
    """training.dense_coupling: columns makes every dense candidate wait COUPLED_PATIENCE ×
    the patience and the decayed one run to COUPLED_EPOCHS × max_epochs: the grid job asks
    for that on top of the uncoupled grid; the λ jobs (never coupled) ask the same."""
    shape = Shape(1_000, 50)  # the AR(1) design's cohort, where the coupled fit was measured
    t = defaults["training"]
    coupled = {**defaults, "training": {**t, "dense_coupling": "columns"}}
    plain = {**defaults, "training": {**t, "dense_coupling": "none"}}
    check = seconds_per_check(shape, defaults)
    patience, cap = fit_epochs(t["patience"], t["max_epochs"], 800)  # auto: 20 and 300
    extra = 2 * (math.ceil(COUPLED_PATIENCE * patience) - patience) + COUPLED_EPOCHS * cap
    extra -= min(cap, DECAYED_PATIENCES * patience)  # the uncoupled decayed candidate's
    free, longer = (runtime_min("lambda_grid", Shape(100_000, 1_000), c) for c in (plain, coupled))
    assert longer > free
    small = runtime_min("lambda_grid", shape, coupled)
    assert small >= runtime_min("lambda_grid", shape, plain) + math.floor(extra * check / 60)
    assert runtime_min("train", shape, coupled) == runtime_min("train", shape, plain)
    # `auto` (the default) asks what the coupling it resolves to asks: coupled from 800
    # training rows up to 20,000
    auto = {**defaults, "training": {**t, "dense_coupling": "auto"}}
    assert t["dense_coupling"] == "auto"
    small = Shape(990, 5_000)  # 792 training rows: long enough a grid job to tell apart
    large = Shape(100_000, 1_000, 1, True)  # 80,000 training rows: free, as measured there
    for rows, same in ((shape, coupled), (small, plain), (large, plain)):
        assert runtime_min("lambda_grid", rows, auto) == runtime_min("lambda_grid", rows, same)
    assert runtime_min("lambda_grid", small, coupled) > runtime_min("lambda_grid", small, auto)


def test_schema_takes_learning_rate_auto_and_a_cohorts_own_training_keys() -> None:
    """`learning_rate: auto` validates (run-wide and in a cohort's own `training` entry,
    whose keys take no defaults, so that the run's values show through); a word that is not
    `auto` does not; the resource models size a job of either."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
    own = {"patience": 20, "learning_rate": "auto"}
    config: dict = {
        "cohorts": {"c": {"path": "c.csv", "label": "y", "training": dict(own)}},
        "training": {"learning_rate": "auto"},
    }
    validate(config, schema, set_default=True)
    assert config["cohorts"]["c"]["training"] == own
    assert config["training"]["learning_rate"] == "auto"
    shape = Shape(400, 50)
    for rule in ("lambda_grid", "train"):
        assert runtime_min(rule, shape, config, 1) >= 1
        assert memory_mb(rule, shape, config) > 0
    for bad in (
        {"training": {"learning_rate": "fast"}},
        {"cohorts": {"c": {"label": "y", "training": {"seeds": 2}}}},
    ):
        with pytest.raises(WorkflowError):
            validate({"cohorts": {}, **bad}, schema, set_default=True)
