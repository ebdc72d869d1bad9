"""The workflow as users run it: formatting, lint, dry run, and end-to-end runs on tiny configs."""

from __future__ import annotations

import html.parser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from knockoffnet.vocabulary import FILTERS

from conftest import REPO, snakemake, synthetic_cohort, write_config, write_plink


def tiny_training(**extra) -> dict:
    training = {
        "seeds": 2,
        "threads": 1,
        "max_epochs": 80,
        "patience": 8,
        "lambdas": {"count": 8, "ratio": 0.01},
        "lambdas_per_job": 4,
    }
    training.update(extra)
    return training


def test_snakefmt_clean() -> None:
    files = [
        str(REPO / "Snakefile"),
        *map(str, sorted((REPO / "workflow" / "rules").glob("*.smk"))),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", *files], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_ruff_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_and_dry_run_of_default_config(tmp_path: Path) -> None:
    """The shipped config validates, lints clean and plans every stage for the bundled cohort."""
    lint = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--cores", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-F", "--cores", "2", "--quiet", "rules"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert dry.returncode == 0, dry.stderr
    plan = dry.stdout + dry.stderr
    assert "No validator found" not in plan  # the schemas name the draft Snakemake validates
    for rule in [
        "ingest",
        "knockoffs",
        "lambda_grid",
        "train",
        "collect_z",
        "select_features",
        "prune",
        "figures",
        "report",
        "provenance",
    ]:
        assert rule in plan, f"rule {rule} missing from the default plan"


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"selection": {"q": 1.5}}, "selection"),
        ({"trainng": {"seeds": 2}}, "trainng"),
        ({"training": {"lambdas": {"count": 1}}}, "count"),
        ({"knockoffs": {"method": "second-order"}}, "second-order"),
        ({"knockoffs": {"copies": 2, "method": "fixed-x"}}, "knockoffs.copies"),
        ({"knockoffs": {"groups": "missing_groups.tsv"}}, "knockoffs.groups"),
        ({"knockoffs": {"groups": "auto", "method": "fixed-x"}}, "knockoffs.groups"),
        ({"knockoffs": {"copies": 2}, "selection": {"statistic": "paper"}}, "knockoffs.copies"),
        ({"knockoffs": {"copies": "three"}}, "copies"),
        # a cohort's own training block takes the fit keys only, with the run's checks
        (
            {"cohorts": {"c": {"path": "c.csv", "label": "outcome", "training": {"seeds": 2}}}},
            "seeds",
        ),
        (
            {"cohorts": {"c": {"path": "c.csv", "label": "outcome", "training": {"patience": 0}}}},
            "patience",
        ),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, patch: dict, fragment: str) -> None:
    config = {"cohorts": {"c": {"path": "c.csv", "label": "outcome"}}}
    config.update(patch)
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    assert fragment in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


class _Images(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))


@pytest.mark.slow
def test_end_to_end_binary_and_multiclass(tmp_path: Path) -> None:
    """Every stage runs for a binary and a 3-class cohort; outputs match their contracts.
    (One knockoff draw here; the regression cohort's run has two.)"""
    synthetic_cohort(n=240, p=8, seed=11).to_csv(tmp_path / "bin.csv", index=False)
    synthetic_cohort(n=240, p=6, classes=3, seed=12).to_parquet(
        tmp_path / "multi.parquet", index=False
    )
    config = {
        "cohorts": {
            "bin": {"path": "bin.csv", "label": "outcome", "id": "id"},
            "multi": {
                "path": "multi.parquet",
                "label": "outcome",
                "id": "id",
                "task": "multiclass",
            },
        },
        "seed": 7,
        "knockoffs": {"draws": 1},
        "network": {"hidden": [16]},
        "training": tiny_training(),
        "selection": {"q": 0.2},
        "pruning": {"repeats": 2, "max_epochs": 40},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]

    for cohort, p, classes in (("bin", 8, 2), ("multi", 6, 3)):
        out = tmp_path / "results" / cohort
        selected = pd.read_csv(out / "selected.tsv", sep="\t")
        assert list(selected.columns) == ["filter", "feature", "W", "frequency", "qvalue", "group"]
        assert set(selected["filter"]) <= set(FILTERS)
        features = pd.read_csv(out / "features.tsv", sep="\t")
        assert len(features) == p and set(features["feature"]) == {f"f{j}" for j in range(p)}
        labels = pd.read_csv(out / "labels.tsv", sep="\t")
        assert len(labels) == classes
        thresholds = pd.read_csv(out / "thresholds.tsv", sep="\t")
        assert set(FILTERS) <= set(thresholds["filter"])
        # lambda_per_job = 4 with 8 lambdas: two chunk jobs per (draw, seed)
        assert len(list((out / "path").glob("draw*_seed*/chunk*.npz"))) == 1 * 2 * 2
        # copies: auto draws three knockoff copies on cohorts this small (issue 14/15)
        diag = pd.read_csv(out / "knockoffs" / "draw0_diagnostics.tsv", sep="\t")
        assert diag.loc[0, "copies"] == 3
        assert np.load(out / "knockoffs" / "draw0.npy", mmap_mode="r").shape[1] == 3 * p
        with np.load(out / "z" / "draw0_seed1.npz") as z:
            units = 4  # the default per-input units: 5 first-layer channels per input
            assert z["Z0"].shape == (16, 4 * p * (units + 1))
            assert z["Z0_input"].shape == (16, 4 * p)
            assert 0 < z["Z0"].max() <= z["lambdas"].max()
            assert z["importance_ol"].shape == z["importance_ml"].shape == (4 * p,)
        stats = pd.read_csv(out / "statistics.tsv", sep="\t")
        scores = stats.drop_duplicates(["draw", "seed"])
        assert len(scores) == 2 and scores["metric"].eq("accuracy").all()
        for col in ("dense_score", "chosen_score", "reference_score"):
            assert scores[col].between(0, 1).all(), col
        for r in scores.itertuples():  # the decay each dense fit kept, from `auto`'s [10, 0]
            with np.load(out / "path" / f"draw{r.draw}_seed{r.seed}" / "dense.npz") as dense:
                assert r.dense_decay == dense["dense_decay"][0] and r.dense_decay in (0, 10)
        assert {"filter", "run"} == set(thresholds["scope"])
        run = json.loads((out / "run.json").read_text())
        assert run["inputs"] and all(len(h) == 64 for h in run["inputs"].values())
        assert run["config"]["seed"] == 7 and "torch" in run["versions"]
        page = (out / "report.html").read_text()
        images = _Images()
        images.feed(page)
        assert images.sources and all(
            s.startswith("data:image/png;base64,") for s in images.sources
        )
        for name in selected["feature"]:
            assert name in page
        assert 'id="learning-table"' in page
        assert (out / "pruning" / "prediction.tsv").exists()
        for log in (tmp_path / "logs" / cohort / "path").glob("*chunk*.log"):
            assert "SLURM_JOB_ID" in log.read_text()

    # The signal features of the binary cohort dominate the One Layer statistic.
    features = pd.read_csv(tmp_path / "results" / "bin" / "features.tsv", sep="\t").set_index(
        "feature"
    )
    assert (
        features.loc[["f0", "f1", "f2"], "OL_W"].mean()
        > features.drop(["f0", "f1", "f2"])["OL_W"].mean()
    )

    # (Snakemake's own report of a run: test_end_to_end_ci_study builds one.)

    # Reruns after a finished run redo only what the change touches (issue 17).
    downstream = {"select_features": 2, "prune": 2, "figures": 2, "report": 2, "provenance": 2}
    # a third seed: 2 cohorts x 1 draw, 2 chunks; a second draw: 2 cohorts x 2 seeds
    chain = {"lambda_grid": 2, "train": 4, "collect_z": 2}
    draw_chain = {"lambda_grid": 4, "train": 8, "collect_z": 4}
    cases = [
        ({"training": tiny_training(seeds=3)}, {**chain, **downstream}),
        ({"knockoffs": {"draws": 2}}, {"knockoffs": 2, **draw_chain, **downstream}),
        ({"selection": {"q": 0.3}}, downstream),
    ]
    for change, expected in cases:
        write_config(tmp_path, {**config, **change})
        assert _planned_jobs(tmp_path) == {**expected, "all": 1}, change
    write_config(tmp_path, config)
    assert _planned_jobs(tmp_path) == {}
    # the same config with the keys of every mapping in reverse order reruns nothing
    write_config(tmp_path, _reversed_keys(config))
    assert _planned_jobs(tmp_path) == {}
    # training.dense_decay is a param as its resolved candidates (auto = [10, 0] with Adam:
    # nothing reruns); 10 alone (the 2026-12-06 default) refits the dense fits (rule
    # lambda_grid) and what follows, never the knockoffs
    for decay, planned in (([10, 0], False), (10.0, True)):
        write_config(tmp_path, {**config, "training": {**config["training"], "dense_decay": decay}})
        jobs = _planned_jobs(tmp_path)
        assert ("lambda_grid" in jobs) is planned and "knockoffs" not in jobs, jobs
    # training.dense_coupling is a param of the grid job only when not `none`: naming the
    # default (`auto`) refits nothing, `none` or `columns` refits the dense fits and what
    # follows (`none`: the param of the runs made before `auto` became the default)
    for coupling, planned in (("auto", False), ("none", True), ("columns", True)):
        training = {**config["training"], "dense_coupling": coupling}
        write_config(tmp_path, {**config, "training": training})
        jobs = _planned_jobs(tmp_path)
        assert ("lambda_grid" in jobs) is planned and "knockoffs" not in jobs, jobs
        assert jobs.get("lambda_grid", 4) == 4  # 2 cohorts x 2 seeds when refitted
    # training.outcome_scale is a param only of cohorts that can be a regression (task
    # auto or regression): `bin` (auto) refits, `multi` (multiclass) keeps its fits and
    # reruns only the jobs that record the whole config
    raw = {**config, "training": {**config["training"], "outcome_scale": "raw"}}
    write_config(tmp_path, raw)
    assert _planned_jobs(tmp_path) == {  # bin's 1 draw x 2 seeds: as many as `chain`
        **chain,
        **{"select_features": 1, "prune": 1, "figures": 2, "report": 2, "provenance": 2},
        "all": 1,
    }
    # a cohort's own training keys (cohorts.<name>.training) are params of its fits only:
    # the run's patience repeated in `bin` refits nothing (only the jobs recording bin's
    # config rerun); another key's value refits `bin` alone, never its ingest or knockoffs
    for keys, refit in (({"patience": 8}, False), ({"learning_rate": None}, True)):
        own = {**config["cohorts"]["bin"], "training": keys}
        write_config(tmp_path, {**config, "cohorts": {**config["cohorts"], "bin": own}})
        records = {"figures": 1, "report": 1, "provenance": 1, "all": 1}
        # bin's 1 draw x 2 seeds: as many as `chain`
        expected = {**chain, "select_features": 1, "prune": 1, **records}
        assert _planned_jobs(tmp_path) == (expected if refit else records), keys
    # group_cutoff is read only with groups: auto, so with groups: none no knockoff, training
    # or selection job reruns; only the jobs that record the whole config (run.json, report)
    cutoff = {**config, "knockoffs": {**config["knockoffs"], "group_cutoff": 0.7}}
    write_config(tmp_path, cutoff)
    assert _planned_jobs(tmp_path) == {"figures": 2, "report": 2, "provenance": 2, "all": 1}
    # (Same config and seed -> the same statistics and selections from a fresh directory:
    # tests/test_resume.py and tests/test_slurm.py compare two whole runs.)

    # training.dense_coupling: columns runs through the workflow: the grid job's dense fit
    # is coupled (its log says so; a feature's columns proportional in the kept first
    # layer), the λ path starts from it, and the cohort's statistics are written
    write_config(
        tmp_path, {**config, "training": {**config["training"], "dense_coupling": "columns"}}
    )
    coupled = snakemake(tmp_path, "results/bin/statistics.tsv")
    assert coupled.returncode == 0, coupled.stderr[-4000:]
    assert "dense fit: coupled" in (tmp_path / "logs/bin/path/draw0_seed0_grid.log").read_text()
    dense = np.load(tmp_path / "results/bin/path/draw0_seed0/dense.npz")
    units = 1 + dense["unit_a"].shape[-1]
    w0 = dense["W0"][0].reshape(16, -1, 8, units)  # hidden, columns, features, channels
    ratio = w0[:, 1:] / w0[:, :1]  # each copy's fan-out against the feature's
    assert w0.shape[1] > 1 and np.allclose(ratio, ratio[:1, :, :, :1], rtol=1e-3, atol=1e-5)
    assert len(pd.read_csv(tmp_path / "results/bin/statistics.tsv", sep="\t")) > 0


def _reversed_keys(value):
    """``value`` with the keys of every mapping in it in reverse order."""
    if isinstance(value, dict):
        return {k: _reversed_keys(v) for k, v in reversed(value.items())}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


@pytest.mark.slow
def test_end_to_end_regression_cohort(tmp_path: Path) -> None:
    """A quantitative outcome (task auto: regression) runs every stage to the report: R² in
    the learning check, the non-linear signal features above the nulls, Reduce Weight's
    comparison in R²."""
    synthetic_cohort(n=240, p=6, seed=13, continuous=True).to_csv(tmp_path / "q.csv", index=False)
    config = {
        "cohorts": {"q": {"path": "q.csv", "label": "outcome", "id": "id"}},
        "seed": 9,
        "knockoffs": {"draws": 2},
        "network": {"hidden": [16]},
        # the small-cohort step (auto, the default, said explicitly): 0.01 at these 192 rows
        "training": tiny_training(lambdas_per_job=0, learning_rate="auto"),
        "selection": {"q": 0.2},
        "pruning": {"repeats": 2, "max_epochs": 40},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "results/q/report.html")
    assert result.returncode == 0, result.stderr[-4000:]
    out = tmp_path / "results" / "q"
    meta = json.loads((out / "data" / "meta.json").read_text())
    assert meta["task"] == "regression" and meta["classes"] == []
    stats = pd.read_csv(out / "statistics.tsv", sep="\t")
    scores = stats.drop_duplicates(["draw", "seed"])
    assert len(scores) == 4 and scores["metric"].eq("R2").all()  # 2 draws x 2 seeds
    assert set(map(tuple, scores[["draw", "seed"]].to_numpy())) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    # the networks at the chosen λ explain the outcome (its noise is 0.3 of a score of sd ~2)
    assert (scores["chosen_score"] > 0.5).all(), scores
    assert scores["reference_score"].between(-1, 1).all()
    features = pd.read_csv(out / "features.tsv", sep="\t").set_index("feature")
    signal, nulls = ["f0", "f1", "f2"], ["f3", "f4", "f5"]
    assert features.loc[signal, "ML_W"].min() > features.loc[nulls, "ML_W"].max()
    selected = pd.read_csv(out / "selected.tsv", sep="\t")
    assert set(selected["feature"]) <= set(features.index)
    prediction = pd.read_csv(out / "pruning" / "prediction.tsv", sep="\t")
    assert "r2_mean" in prediction and prediction["r2_mean"].notna().any()
    page = (out / "report.html").read_text()
    assert 'id="learning-table"' in page and "Validation R2" in page
    # the outcome is trained standardised (training.outcome_scale) and said so
    assert "outcome standardised inside each fit" in page
    assert "adam (step 0.01, auto)" in page
    grid_log = (tmp_path / "logs" / "q" / "path" / "draw0_seed0_grid.log").read_text()
    assert "outcome standardised in the fit: mean" in grid_log
    assert "adam lr=0.01," in grid_log


def test_bad_group_table_stops_with_its_name_and_no_output(tmp_path: Path) -> None:
    """A group table naming a feature the cohort lacks: non-zero exit, a message naming the
    table and the feature, and no groups.tsv (nor anything after it)."""
    synthetic_cohort(n=60, p=4, seed=3).to_csv(tmp_path / "c.csv", index=False)
    (tmp_path / "g.tsv").write_text("feature\tgroup\nf0\tA\nnot_a_feature\tA\n")
    config = {
        "cohorts": {"c": {"path": "c.csv", "label": "outcome", "id": "id"}},
        "knockoffs": {"groups": "g.tsv"},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "results/c/groups.tsv")
    assert result.returncode != 0
    log = (tmp_path / "logs" / "c" / "groups.log").read_text()
    assert "g.tsv" in log and "not_a_feature" in log
    assert not (tmp_path / "results" / "c" / "groups.tsv").exists()


@pytest.mark.slow
def test_bundled_wdbc_run_selects_groups(tmp_path: Path) -> None:
    """Issue 15: the bundled config (group knockoffs, five copies) selects on WDBC at q = 0.1:
    the recommended filter (e-BH) keeps the size-and-concavity group, and whole groups only."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "resources").mkdir()
    shutil.copy(REPO / "resources" / "wdbc.csv", tmp_path / "resources" / "wdbc.csv")
    result = snakemake(tmp_path, "results/wdbc/selected.tsv")
    assert result.returncode == 0, result.stderr[-4000:]
    out = tmp_path / "results" / "wdbc"
    groups = pd.read_csv(out / "groups.tsv", sep="\t")
    size = groups.loc[groups["feature"] == "perimeter_worst", "group"].iloc[0]
    assert {"radius_mean", "area_worst"} <= set(groups.loc[groups["group"] == size, "feature"])
    selected = pd.read_csv(out / "selected.tsv", sep="\t")
    ebh = selected[selected["filter"] == "ebh"]
    assert size in set(ebh["group"])
    for group in set(ebh["group"]):
        assert (ebh["group"] == group).sum() == (groups["group"] == group).sum()
    # larger tumours go with malignancy in every run, as a group: its members raised together
    features = pd.read_csv(out / "features.tsv", sep="\t").set_index("feature")
    assert features.loc["perimeter_worst", "group_direction"] == "+"
    assert (features.loc[features["group"] == size, "group_direction"] == "+").all()


@pytest.mark.slow
def test_small_multiclass_cohort_selects_groups(tmp_path: Path) -> None:
    """Issue 15: the 13-feature, 3-class Wine cohort selected nothing at q = 0.1 under any
    filter; with group knockoffs and five copies the recommended filter (e-BH) selects groups,
    among them the phenols (flavanoids, total phenols, proanthocyanins, OD280/OD315), which
    are known to separate the cultivars."""
    shutil.copy(REPO / "tests" / "fixtures" / "wine.csv", tmp_path / "wine.csv")
    config = {
        "cohorts": {"wine": {"path": "wine.csv", "label": "cultivar", "id": "sample"}},
        "seed": 2026,
        "knockoffs": {"groups": "auto", "copies": 5},
        # two seeds, not the README's four, for time: the phenols are selected at both
        "training": {"seeds": 2},
        "selection": {"q": 0.1},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "results/wine/selected.tsv")
    assert result.returncode == 0, result.stderr[-4000:]
    out = tmp_path / "results" / "wine"
    groups = pd.read_csv(out / "groups.tsv", sep="\t")
    assert groups["group_size"].max() > 1
    phenols = groups.loc[groups["feature"] == "flavanoids", "group"].iloc[0]
    assert set(groups.loc[groups["group"] == phenols, "feature"]) >= {
        "flavanoids",
        "total_phenols",
    }
    selected = pd.read_csv(out / "selected.tsv", sep="\t")
    ebh = selected[selected["filter"] == "ebh"]
    assert phenols in set(ebh["group"])
    for group in set(ebh["group"]):  # whole groups only
        assert (ebh["group"] == group).sum() == (groups["group"] == group).sum()


def _planned_jobs(workdir: Path) -> dict[str, int]:
    """Job counts per rule of `snakemake -n` (empty when nothing would run)."""
    dry = snakemake(workdir, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    text = dry.stdout + dry.stderr
    if "Job stats:" not in text:
        return {}
    table = text[text.index("Job stats:") :].splitlines()[3:]
    counts = {}
    for line in table:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.slow
def test_global_null_selects_nothing_in_most_replicates(tmp_path: Path) -> None:
    """y independent of X through the real pipeline: knockoff+ filters rarely select anything
    (four cohorts: none selected anything in six on 2026-12-07; the 20-replicate global null
    studies are in docs/validation.md)."""
    replicates = 4
    cohorts = {}
    for r in range(replicates):
        synthetic_cohort(n=200, p=10, null=True, seed=100 + r).to_csv(
            tmp_path / f"null{r}.csv", index=False
        )
        cohorts[f"null{r}"] = {"path": f"null{r}.csv", "label": "outcome", "id": "id"}
    config = {
        "cohorts": cohorts,
        "seed": 3,
        "network": {"hidden": [8]},
        # one seed per cohort: what is tested is the selection under the null, not the vote
        "training": tiny_training(seeds=1, lambdas_per_job=0),
        "selection": {"q": 0.2},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, *[f"results/{c}/selected.tsv" for c in cohorts])
    assert result.returncode == 0, result.stderr[-4000:]
    nonempty = {f: 0 for f in ("OL", "ML", "ebh")}
    for c in cohorts:
        selected = pd.read_csv(tmp_path / "results" / c / "selected.tsv", sep="\t")
        for f in nonempty:
            nonempty[f] += int((selected["filter"] == f).any())
        thresholds = pd.read_csv(tmp_path / "results" / c / "thresholds.tsv", sep="\t")
        empty = thresholds[
            (thresholds["n_selected"] == 0) & thresholds["filter"].isin(["OL", "ML", "ebh"])
        ]
        assert empty["note"].fillna("").str.len().gt(0).all(), "empty selections must be explained"
    for f, count in nonempty.items():
        assert count < replicates / 2, f"{f} selected under the null in {count}/{replicates}"


def test_command_line_config_replaces_the_bundled_one(tmp_path: Path) -> None:
    """`--configfile mine.yaml` runs only mine.yaml's cohorts at the defaults; listing
    config/config.yaml first merges over it (the bundled tuning must not leak into studies)."""
    for name in ("bundled", "mine"):
        synthetic_cohort(n=120, p=4).to_csv(tmp_path / f"{name}.csv", index=False)
    write_config(
        tmp_path,
        {
            "cohorts": {"bundled": {"path": "bundled.csv", "label": "outcome", "id": "id"}},
            "training": {"seeds": 1},
        },
    )
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        yaml.safe_dump({"cohorts": {"mine": {"path": "mine.csv", "label": "outcome", "id": "id"}}})
    )

    def planned(*configfiles: str) -> tuple[str, int]:
        result = snakemake(tmp_path, "-n", "--configfile", *configfiles)
        assert result.returncode == 0, result.stderr[-3000:]
        paths = [line.split()[1] for line in result.stdout.splitlines() if "lambda_grid " in line]
        return result.stdout, int(paths[0]) if paths else 0

    alone, paths = planned(str(mine))
    assert "results/mine/report.html" in alone
    assert "results/bundled" not in alone
    assert paths == 10  # the default 10 seeds, not the bundled file's 1
    merged, paths = planned("config/config.yaml", str(mine))
    assert "results/mine/report.html" in merged and "results/bundled/report.html" in merged
    assert paths == 2  # seeds: 1 merged in, for both cohorts


def test_default_config_is_valid_yaml_with_bundled_cohort() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert (REPO / config["cohorts"]["wdbc"]["path"]).exists()


@pytest.mark.slow
def test_end_to_end_plink_cohort_with_covariates(tmp_path: Path) -> None:
    """A PLINK fileset with a phenotype table runs every stage; covariates are never tested."""
    prefix, pheno, _ = write_plink(tmp_path, n=200, p=10)
    (tmp_path / "blocks.tsv").write_text("feature\tgroup\nrs0\tA\nrs1\tA\nrs2\tA\nrs3\tB\nrs4\tB\n")
    config = {
        "cohorts": {
            "geno": {
                "plink": prefix.name,
                "pheno": pheno.name,
                "label": "case",
                "covariates": ["age"],
            }
        },
        "seed": 5,
        # three knockoff copies of group knockoffs (issue 15): [X, X~1, X~2, X~3] and the
        # covariate enter the net; rs0-rs2 and rs3-rs4 are tested as groups
        "knockoffs": {"copies": 3, "groups": "blocks.tsv"},
        "network": {"hidden": [8]},
        "training": tiny_training(lambdas_per_job=0),
        "selection": {"q": 0.3},
        "pruning": {"repeats": 2, "max_epochs": 20, "max_rows": 100},
    }
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "results/geno/report.html")
    assert result.returncode == 0, result.stderr[-4000:]
    out = tmp_path / "results" / "geno"
    meta = json.loads((out / "data" / "meta.json").read_text())
    assert meta["covariates"] == ["age"] and meta["features"] == [f"rs{j}" for j in range(10)]
    assert np.load(out / "data" / "C.npy").shape == (195, 1)
    assert np.load(out / "knockoffs" / "draw0.npy").shape == (195, 3 * 10)
    groups = pd.read_csv(out / "groups.tsv", sep="\t")
    assert groups["group"].tolist()[:5] == ["A"] * 3 + ["B"] * 2
    assert groups["group_size"].tolist() == [3, 3, 3, 2, 2] + [1] * 5
    diag = pd.read_csv(out / "knockoffs" / "draw0_diagnostics.tsv", sep="\t")
    assert diag.loc[0, "groups"] == 7 and diag.loc[0, "copies"] == 3
    with np.load(out / "z" / "draw0_seed0.npz") as z:
        assert z["importance_ol"].shape == z["importance_ml"].shape == (4 * 10,)
        assert z["effects"].shape[0] == 10
    features = pd.read_csv(out / "features.tsv", sep="\t")
    assert set(features["feature"]) == set(meta["features"])  # age is never a candidate
    selected = pd.read_csv(out / "selected.tsv", sep="\t")
    assert set(selected["feature"]) <= set(meta["features"])
    # a group is selected whole or not at all
    for (_flt, group), rows in selected.groupby(["filter", "group"]):
        assert len(rows) == (groups["group"] == group).sum()
    assert features.groupby("group")["OL_W"].nunique().max() == 1
    run = json.loads((out / "run.json").read_text())
    assert set(run["inputs"]) == {"geno.bed", "geno.bim", "geno.fam", "pheno.tsv"}
    assert meta["variants"]["chromosome"][0] == "1"
    page = (out / "report.html").read_text()
    assert 'id="fig-manhattan"' in page
    assert "3 copies per draw" in page and "group knockoffs (table blocks.tsv)" in page
    summary = pd.read_csv(out / "pruning" / "summary.tsv", sep="\t")
    assert summary["rows"].dropna().eq(100).all()  # pruning.max_rows: a subsample of 195
    assert "stratified random 100 of the 195 rows" in page
