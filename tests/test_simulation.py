"""Simulation study: generators, scoring, the random-forest peer and a tiny end-to-end run."""

from __future__ import annotations

import base64
import inspect
import json
import logging
import math
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from jsonschema import Draft202012Validator

from knockoffnet.errors import InputError
from knockoffnet.filters import knockoff_select
from knockoffnet.report import fmt_num
from knockoffnet.selection import FILTERS
from knockoffnet.simulation.generators import GENERATORS, generate, latent_score, true_groups
from knockoffnet.simulation.peers import (
    _mixed_copies,
    _unmix,
    knockpy_statistic,
    oracle_statistic,
    peer_masks,
    peer_statistics,
    rf_statistic,
)
from knockoffnet.simulation.scoring import (
    REPLICATE_COLUMNS,
    SUMMARY_COLUMNS,
    fdp_power,
    fdr_check,
    fit_rows,
    fit_summary,
    pipeline_masks,
    score_masks,
    summarise,
)
from knockoffnet.statistics import multi_statistic

from conftest import REPO, snakemake

SMALL = {
    "teacher": ({"p": 12, "s": 4, "hidden": [16]}, 4),
    "notebook": ({"p": 12, "s": 4, "hidden": 16}, 4),
    "ar1": ({"p": 12, "s": 3}, 3),
    "blocks": ({"p": 12, "block": 3, "s": 2, "nonlinear": True}, 2),
    "global_null": ({"p": 12}, 0),
    "deeplink": ({"p": 30, "s": 5}, 5),
    "xor": ({"p": 12}, 3),
    "orange_skin": ({"p": 12}, 4),
    "nonlinear_regression": ({"p": 12}, 4),
    "genotypes": ({"p": 12, "s": 4}, 4),
}


def test_every_generator_is_covered() -> None:
    assert set(SMALL) == set(GENERATORS)


def test_genotype_generator_makes_dosages_in_ld_and_a_plink_fileset(tmp_path: Path) -> None:
    """0/1/2 dosages, neighbours correlated, a heterozygote effect; written and read back as
    PLINK (the `format: plink` designs)."""
    from knockoffnet.genotypes import write_plink

    frame, relevant = generate("genotypes", 2000, 1, {"p": 20, "s": 4, "rho": 0.8})
    G = frame[[f"x{j + 1}" for j in range(20)]].to_numpy()
    assert set(np.unique(G)) <= {0.0, 1.0, 2.0} and relevant == ["x1", "x7", "x14", "x20"]
    r = [np.corrcoef(G[:, j], G[:, j + 1])[0, 1] for j in range(19)]
    assert np.mean(r) > 0.3
    het = G[:, 0] == 1  # x1 acts through the heterozygote: cases are enriched at dosage 1
    assert frame["y"][het].mean() > frame["y"][~het].mean() + 0.1
    files = write_plink(
        tmp_path / "g", G[:50], [f"s{i}" for i in range(50)], list(frame.columns[2:])
    )
    from bed_reader import open_bed

    with open_bed(files[0]) as bed:
        np.testing.assert_array_equal(bed.read(dtype="float32"), G[:50])
        assert list(bed.sid) == [f"x{j + 1}" for j in range(20)]
    with pytest.raises(InputError, match="dosages"):
        write_plink(
            tmp_path / "bad", G[:5] + 0.5, [f"s{i}" for i in range(5)], list(frame.columns[2:])
        )


@pytest.mark.parametrize("name", sorted(SMALL))
def test_generator_shape_truth_and_determinism(name: str) -> None:
    params, n_relevant = SMALL[name]
    frame, relevant = generate(name, 300, 5, params)
    p = params["p"]
    assert list(frame.columns) == ["id", "y", *[f"x{j + 1}" for j in range(p)]]
    assert frame.shape == (300, p + 2) and frame["id"].is_unique
    assert len(relevant) == len(set(relevant)) == n_relevant
    assert set(relevant) <= set(frame.columns[2:])
    assert np.isfinite(frame.drop(columns="id").to_numpy(dtype=float)).all()
    again, relevant_again = generate(name, 300, 5, params)
    pd.testing.assert_frame_equal(frame, again)
    assert relevant == relevant_again
    other, _ = generate(name, 300, 6, params)
    assert not np.allclose(other["x1"], frame["x1"])


@pytest.mark.parametrize(
    ("name", "params", "classes"),
    [
        ("teacher", {"p": 10, "s": 5, "classes": 2}, 2),
        ("teacher", {"p": 10, "s": 5, "classes": 3, "distribution": "gamma"}, 3),
        ("teacher", {"p": 10, "s": 5, "distribution": "chisq"}, 2),
        ("ar1", {"p": 10, "s": 3, "classes": 3}, 3),
        ("global_null", {"p": 10, "classes": 2}, 2),
        ("xor", {"p": 10}, 4),
        ("notebook", {"p": 10, "s": 4, "threshold": "median"}, 2),
    ],
)
def test_classes_are_balanced(name: str, params: dict, classes: int) -> None:
    frame, _ = generate(name, 601, 3, params)
    counts = frame["y"].value_counts().sort_index()
    assert list(counts.index) == list(range(classes))
    assert counts.max() - counts.min() <= 1


def test_teacher_labels_depend_on_the_relevant_features_only() -> None:
    """Changing a null column never changes y; the relevant columns carry the signal."""
    frame, relevant = generate("teacher", 2000, 1, {"p": 10, "s": 3, "hidden": [32]})
    assert relevant == ["x1", "x2", "x3"]
    y = frame["y"].to_numpy()
    corr = [abs(np.corrcoef(frame[c], y)[0, 1]) for c in frame.columns[2:]]
    assert max(corr[3:]) < 4 / math.sqrt(2000)


def test_global_null_y_is_independent_of_x() -> None:
    n = 4000
    frame, relevant = generate("global_null", n, 2, {"p": 20, "classes": 2})
    assert relevant == []
    y = frame["y"].to_numpy(dtype=float)
    X = frame.iloc[:, 2:].to_numpy()
    bound = 4.5 / math.sqrt(n)  # |r| of independent columns: sd ≈ 1/√n
    for feature in (X, X**2, np.abs(X)):
        r = [abs(np.corrcoef(col, y)[0, 1]) for col in feature.T]
        assert max(r) < bound
    # the labels are a shuffle of balanced codes, drawn after X: X alone does not fix them
    other_y = generate("global_null", n, 3, {"p": 20})[0]["y"]
    assert not np.array_equal(y, other_y)


def test_ar1_features_have_the_requested_correlation() -> None:
    frame, relevant = generate("ar1", 5000, 4, {"p": 8, "s": 2, "rho": 0.5})
    X = frame.iloc[:, 2:].to_numpy()
    lag1 = np.mean([np.corrcoef(X[:, j], X[:, j + 1])[0, 1] for j in range(7)])
    assert abs(lag1 - 0.5) < 0.05
    assert relevant == ["x1", "x8"]


def test_blocks_are_correlated_within_and_one_member_is_relevant() -> None:
    frame, relevant = generate("blocks", 5000, 4, {"p": 12, "block": 4, "r": 0.8, "s": 2})
    R = np.corrcoef(frame.iloc[:, 2:].to_numpy(), rowvar=False)
    block = np.equal.outer(np.arange(12) // 4, np.arange(12) // 4)
    same = block & ~np.eye(12, dtype=bool)
    assert abs(R[same].mean() - 0.8) < 0.03 and abs(R[~block].mean()) < 0.03
    blocks = sorted((int(name[1:]) - 1) // 4 for name in relevant)
    assert blocks == [0, 1]  # one member of each of the first s blocks
    with pytest.raises(InputError, match="multiple"):
        generate("blocks", 50, 0, {"p": 10, "block": 4, "s": 1})


def test_interleaved_blocks_are_the_same_draw_with_members_dealt_apart() -> None:
    """`interleave` moves the columns only: the labels and each feature's values are the
    contiguous draw's, no two members of a block are neighbours, and the true groups and the
    relevant names follow the columns."""
    params = {"p": 12, "block": 4, "r": 0.8, "s": 2}
    frame, relevant = generate("blocks", 5000, 4, params)
    dealt, moved = generate("blocks", 5000, 4, {**params, "interleave": True})
    assert dealt["y"].equals(frame["y"])
    groups = true_groups("blocks", {**params, "interleave": True})
    assert groups == [f"block{j % 3 + 1}" for j in range(12)]  # 3 blocks dealt in turn
    R = np.corrcoef(dealt.iloc[:, 2:].to_numpy(), rowvar=False)
    same = np.equal.outer(groups, groups) & ~np.eye(12, dtype=bool)
    assert abs(R[same].mean() - 0.8) < 0.03 and np.abs(np.diag(R, 1)).max() < 0.1
    for name, new in zip(relevant, moved, strict=True):  # the same feature, renamed
        assert np.array_equal(frame[name], dealt[new])
    assert sorted(groups[int(n[1:]) - 1] for n in moved) == ["block1", "block2"]


def test_skewed_laws_are_skewed() -> None:
    for law, skew in (("chisq", math.sqrt(2.0)), ("gamma", math.sqrt(2.0))):
        frame, _ = generate("teacher", 20000, 0, {"p": 2, "s": 1, "distribution": law})
        x = frame["x2"].to_numpy()
        sample_skew = np.mean((x - x.mean()) ** 3) / x.std() ** 3
        assert abs(sample_skew - skew) < 0.15


def test_generator_errors_name_the_fix() -> None:
    with pytest.raises(InputError, match="bogus"):
        generate("teacher", 100, 0, {"bogus": 1})
    with pytest.raises(InputError, match="unknown generator"):
        generate("nope", 100, 0)
    with pytest.raises(InputError, match="distribution"):
        generate("teacher", 100, 0, {"p": 5, "s": 2, "distribution": "cauchy"})
    with pytest.raises(InputError, match="s <= p"):
        generate("teacher", 100, 0, {"p": 5, "s": 6})


def test_fdp_and_power_by_hand() -> None:
    truth = ["x1", "x2", "x3", "x4"]
    assert fdp_power(["x1", "x2", "x9"], truth) == (3, pytest.approx(1 / 3), 0.5)
    assert fdp_power([], truth) == (0, 0.0, 0.0)
    assert fdp_power(truth, truth) == (4, 0.0, 1.0)
    n, fdp, power = fdp_power(["x5"], [])
    assert (n, fdp) == (1, 1.0) and math.isnan(power)
    n, fdp, power = fdp_power([], [])
    assert (n, fdp) == (0, 0.0) and math.isnan(power)


def test_score_masks_rows() -> None:
    features = ["x1", "x2", "x3", "x4"]
    masks = {
        ("OL", 0.1): np.array([True, False, False, True]),
        ("ebh", 0.2): np.zeros(4, dtype=bool),
    }
    scores = score_masks(masks, features, ["x1", "x2"])
    assert list(scores.columns) == ["filter", "q", "n_selected", "fdp", "power"]
    row = scores.set_index("filter").loc["OL"]
    assert (row["n_selected"], row["fdp"], row["power"]) == (2, 0.5, 0.5)
    assert scores.set_index("filter").loc["ebh", "fdp"] == 0.0


def test_summarise_and_fdr_check() -> None:
    rows = []
    for r, (fdp, power) in enumerate([(0.0, 0.5), (0.2, 1.0), (0.1, 0.75)]):
        rows.append(["d", r, "OL", 0.1, 3, fdp, power])
        rows.append(["null", r, "OL", 0.1, int(r == 0), float(r == 0), math.nan])
    replicates = pd.DataFrame(rows, columns=REPLICATE_COLUMNS)
    summary = summarise(replicates)
    assert list(summary.columns) == SUMMARY_COLUMNS
    d = summary.set_index("design").loc["d"]
    assert d["fdp_mean"] == pytest.approx(0.1)
    assert d["fdp_se"] == pytest.approx(0.1 / math.sqrt(3))
    assert d["power_mean"] == pytest.approx(0.75)
    null = summary.set_index("design").loc["null"]
    assert null["fdp_mean"] == pytest.approx(1 / 3)
    assert math.isnan(null["power_mean"]) and math.isnan(null["power_se"])
    check = fdr_check(summary, ["d", "null"]).set_index("design")
    assert bool(check.loc["d", "holds"])
    # 1/3 ≤ 0.1 + 2 · se(1, 0, 0) = 0.1 + 2/3: the check holds, but only thanks to the se
    assert bool(check.loc["null", "holds"])
    single = summarise(replicates[replicates["replicate"] == 0])
    assert single["fdp_se"].isna().all()


def _fake_runs(p: int, n_runs: int, seed: int) -> list[tuple[int, int, dict[str, np.ndarray]]]:
    """Z and weights of a one-hidden-layer network where features 0-2 beat their knockoffs."""
    rng = np.random.default_rng(seed)
    runs = []
    for k in range(n_runs):
        Z0 = rng.exponential(size=(6, 2 * p))
        Z0[:, :3] += 3.0
        importance = rng.exponential(size=(2, 2 * p))
        importance[:, :3] += 8.0
        runs.append(
            (
                0,
                k,
                {
                    "Z0": Z0,
                    "Z0_input": Z0,
                    "Z1": rng.exponential(size=(1, 6)),
                    "W0": rng.standard_normal((6, 2 * p)),
                    "W0_input": rng.standard_normal((6, 2 * p)),
                    "W1": rng.standard_normal((1, 6)),
                    "importance_ol": importance[0],
                    "importance_ml": importance[1],
                    "effects": rng.standard_normal(p),
                },
            )
        )
    return runs


def test_pipeline_masks_cover_every_filter_and_grow_with_q() -> None:
    p = 30
    meta = {
        "features": [f"x{j + 1}" for j in range(p)],
        "p": p,
        "task": "binary",
        "means": [0.0] * p,
        "sds": [1.0] * p,
    }
    selection = {
        "q": 0.1,
        "offset": 1,
        "vwa_ratio": 0.5,
        "vwa_oml_ratio": 0.25,
        "ebh": {"alpha_kn": None, "offset": 1, "statistic": "OL"},
    }
    grid = [0.1, 0.3, 0.5]
    masks = pipeline_masks(_fake_runs(p, 3, 0), meta, selection, grid)
    assert set(masks) == {(f, q) for f in FILTERS for q in grid}
    for f in ("OL", "ML"):  # a single run's knockoff selection is nested in q
        assert not np.any(masks[(f, 0.1)] & ~masks[(f, 0.5)])
    assert masks[("OL", 0.5)][:3].all()


def _knockoff_pair(n: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent N(0, 1) features: an independent copy is an exact knockoff."""
    rng = np.random.default_rng(seed)
    X, Xk = rng.standard_normal((n, p)), rng.standard_normal((n, p))
    y = ((X[:, 0] ** 2 + X[:, 1]) > 1.0).astype(np.int64)
    return X, Xk, y


def test_random_forest_peer_finds_signals_and_is_deterministic() -> None:
    X, Xk, y = _knockoff_pair(400, 15, 0)
    W = rf_statistic(X, Xk, y, "binary", seed=3, trees=100)
    assert W.shape == (15,)
    assert set(np.argsort(-W)[:2]) == {0, 1} and (W[:2] > 0).all()
    np.testing.assert_array_equal(W, rf_statistic(X, Xk, y, "binary", seed=3, trees=100))
    masks = peer_masks(W, "peer-rf", [0.5])
    assert masks[("peer-rf", 0.5)].dtype == bool


def test_random_forest_peer_is_antisymmetric_in_distribution() -> None:
    """Swapping every original with its knockoff negates W up to forest noise."""
    X, Xk, y = _knockoff_pair(400, 6, 1)
    W = rf_statistic(X, Xk, y, "binary", seed=5, trees=300)
    W_swapped = rf_statistic(Xk, X, y, "binary", seed=5, trees=300)
    assert np.all(W_swapped[:2] < 0)
    assert np.corrcoef(W, -W_swapped)[0, 1] > 0.9


def test_random_forest_peer_regression() -> None:
    X, Xk, _ = _knockoff_pair(300, 8, 2)
    y = np.sin(2 * X[:, 0]) + X[:, 1]
    W = rf_statistic(X, Xk, y, "regression", seed=1, trees=100)
    assert set(np.argsort(-W)[:2]) == {0, 1}


def test_peers_mix_every_copy_and_put_importances_back_in_copy_order() -> None:
    """κ = 3: each feature's four columns go to random blocks; unmixing a per-column value
    returns it to its copy (row 0 the feature), so no peer can favour a position."""
    rng = np.random.default_rng(4)
    X = np.zeros((5, 6))
    Xk = np.hstack([np.full((5, 6), c + 1.0) for c in range(3)])  # copy c holds c + 1
    order, U = _mixed_copies(X, Xk, rng)
    assert U.shape == (5, 24)
    assert (np.sort(order, axis=0) == np.arange(4)[:, None]).all()  # a permutation per feature
    assert (order != order[:, :1]).any()  # not one order for every feature
    Z = _unmix(U.mean(axis=0), order)
    np.testing.assert_array_equal(Z, np.repeat(np.arange(4.0)[:, None], 6, axis=1))


def test_multi_copy_forest_peer_uses_the_multi_knockoff_threshold() -> None:
    """Two strong signals among 8 features, three copies: the peer's (4, p) importances go
    through the multi-knockoff filter, whose negatives count ÷ κ, so at q = 0.2 it selects
    exactly the two (estimated FDP 1/(3·2)); the same W under the single-copy threshold
    (1/2) selects nothing. As a group filter it sums each copy's importances per group."""
    X, _, _ = _knockoff_pair(600, 8, 6)
    y = ((X[:, 0] + X[:, 1]) > 0).astype(np.int64)
    Xk = np.random.default_rng(7).standard_normal((600, 24))
    Z = rf_statistic(X, Xk, y, "binary", seed=2, trees=200)
    assert Z.shape == (4, 8) and (Z[0, :2] > Z[1:, :2].max(axis=0)).all()
    mask = peer_masks(Z, "peer-rf", [0.2])[("peer-rf", 0.2)]
    np.testing.assert_array_equal(mask, np.arange(8) < 2)
    assert not knockoff_select(multi_statistic(Z[0], Z[1:]), 0.2).any()
    grouped = peer_masks(Z, "peer-rf", [0.5], labels=np.arange(8) // 2)[("peer-rf", 0.5)]
    assert grouped[:2].all() and (grouped[::2] == grouped[1::2]).all()  # whole groups


def test_mlr_peer_finds_linear_signals_and_is_reproducible() -> None:
    """knockpy's MLR (probit for two classes) ranks the two linear signals first with W near
    its maximum of 1/2, and the same seed gives the same W although its sampler draws from
    C's rand(). Skipped without the optional `baselines` extra (CI does not install it)."""
    pytest.importorskip("knockpy.mlr")
    rng = np.random.default_rng(4)
    X, Xk = rng.standard_normal((300, 6)), rng.standard_normal((300, 6))
    y = ((X[:, 0] + 0.8 * X[:, 1] + 0.3 * rng.standard_normal(300)) > 0).astype(np.int64)
    W = knockpy_statistic("mlr", X, Xk, y, "binary", seed=3)
    assert W.shape == (6,) and (W[:2] > 0.45).all() and (np.abs(W[2:]) < 0.1).all()
    np.testing.assert_array_equal(W, knockpy_statistic("mlr", X, Xk, y, "binary", seed=3))
    assert not np.array_equal(W, knockpy_statistic("mlr", X, Xk, y, "binary", seed=4))


def test_knockpy_peers_are_skipped_with_a_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "knockpy", None)  # import knockpy -> ImportError
    monkeypatch.setitem(sys.modules, "knockpy.knockoff_stats", None)
    monkeypatch.setitem(sys.modules, "lassonet", None)
    X, Xk, y = _knockoff_pair(200, 5, 3)
    with caplog.at_level(logging.INFO, logger="test-simulation"):
        out = peer_statistics(
            ["rf", "lasso", "deeppink", "mlr", "lassonet", "oracle"],
            X,
            Xk,
            y,
            "binary",
            0,
            {"rf_trees": 20},
            logging.getLogger("test-simulation"),
        )
    assert list(out) == ["peer-rf"]
    assert caplog.text.count("its package is not importable") == 4
    assert "peer oracle skipped: this design has no latent score" in caplog.text
    # each peer that ran logs its time; the skipped ones do not
    assert re.search(r"peer rf: \d+\.\d s", caplog.text)
    assert "peer lasso:" not in caplog.text and "peer deeppink:" not in caplog.text


# ------------------------------------------------------------------ configs and workflow


def _schema() -> dict:
    return yaml.safe_load((REPO / "workflow" / "schemas" / "simulation.schema.yaml").read_text())


# Every shipped study config, so a new one cannot escape the check (overlays such as
# simulation_groups_ungrouped.yaml, merged over another file, carry no designs of their own).
SIMULATION_CONFIGS = sorted(
    p.name
    for p in (REPO / "config").glob("simulation*.yaml")
    if "simulation" in yaml.safe_load(p.read_text())
)


@pytest.mark.parametrize("name", SIMULATION_CONFIGS)
def test_shipped_simulation_configs_are_valid(name: str) -> None:
    """Every design validates and its generator accepts its parameters (run at a tiny n)."""
    config = yaml.safe_load((REPO / "config" / name).read_text())
    Draft202012Validator(_schema()).validate(config["simulation"])
    for design, spec in config["simulation"]["designs"].items():
        params = dict(spec.get("params", {}))
        fn = GENERATORS[spec["generator"]]
        assert set(params) <= set(inspect.signature(fn).parameters), design
        frame, relevant = generate(spec["generator"], 60, 0, params)
        assert frame.shape[0] == 60 and set(relevant) <= set(frame.columns), design


def test_group_level_design_needs_true_blocks_when_ungrouped(tmp_path: Path) -> None:
    config = {
        "knockoffs": {"groups": "none"},
        "simulation": {"designs": {"d1": {"generator": "teacher", "n": 100, "level": "group"}}},
    }
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "simulate", "--configfile", str(path))
    assert result.returncode != 0
    assert "simulation.designs.d1.level" in result.stdout + result.stderr


def test_full_study_has_twenty_replicates_and_the_q_grid() -> None:
    sim = yaml.safe_load((REPO / "config" / "simulation.yaml").read_text())["simulation"]
    assert sim["replicates"] >= 20
    assert sim["q_grid"] == [0.05, 0.1, 0.2, 0.3, 0.4, 0.5]
    generators = {d["generator"] for d in sim["designs"].values()}
    assert generators == set(GENERATORS)


def test_check_study_is_the_reduced_one_at_default_settings() -> None:
    """Its header promises OL/ML equal to the reduced study's: same seed, same designs."""
    load = lambda name: yaml.safe_load((REPO / "config" / name).read_text())  # noqa: E731
    check, reduced = load("simulation_check.yaml"), load("simulation_reduced.yaml")
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert set(check["training"]) == {"threads"}  # every method setting at its default
    assert schema["properties"]["training"]["properties"]["seeds"]["default"] == 10
    assert "network" not in check and check["seed"] == reduced["seed"]
    assert check["knockoffs"] == reduced["knockoffs"]
    assert check["simulation"]["replicates"] >= 20
    for name, spec in check["simulation"]["designs"].items():
        assert spec == reduced["simulation"]["designs"][name], name
        assert spec.get("fdr_check", True), name


def test_bad_simulation_config_names_the_key(tmp_path: Path) -> None:
    config = {
        "simulation": {"designs": {"d1": {"generator": "teapot", "n": 100}}},
    }
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "simulate", "--configfile", str(path))
    assert result.returncode != 0
    assert "teapot" in result.stdout + result.stderr


@pytest.mark.slow
def test_end_to_end_ci_study(tmp_path: Path) -> None:
    """config/simulation_ci.yaml through the real pipeline: tidy tables, plots, truth files."""
    result = snakemake(
        tmp_path, "simulate", "--configfile", str(REPO / "config" / "simulation_ci.yaml")
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = tmp_path / "results" / "simulation"
    config = yaml.safe_load((REPO / "config" / "simulation_ci.yaml").read_text())["simulation"]
    designs, grid = list(config["designs"]), config["q_grid"]

    replicates = pd.read_csv(out / "replicates.csv")
    assert list(replicates.columns) == REPLICATE_COLUMNS
    assert set(replicates["design"]) == set(designs)
    assert set(replicates["replicate"]) == {0, 1}
    assert set(replicates["filter"]) >= {*FILTERS, "peer-rf"}
    assert sorted(replicates["q"].unique()) == sorted(grid)
    assert replicates["fdp"].between(0, 1).all()
    null = replicates[replicates["design"] == "globalnull"]
    assert null["power"].isna().all()
    assert (null["fdp"] == (null["n_selected"] > 0)).all()
    signal = replicates[replicates["design"] == "normal"]
    assert signal["power"].between(0, 1).all()

    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    expected = replicates.groupby(["design", "filter", "q"])["fdp"].mean()
    got = summary.set_index(["design", "filter", "q"])["fdp_mean"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)

    for name in ("fdr_power.png", "power_minus_fdr.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Acceptance check" in (out / "summary.md").read_text()
    assert set(pd.read_csv(out / "diagnostics.csv")["design"]) == set(designs)
    truth = json.loads((out / "cohorts" / "normal" / "rep0_truth.json").read_text())
    assert truth["relevant"] == [f"x{j}" for j in range(1, 6)]
    # the simulated cohorts ran the user pipeline, selection tables included
    assert (tmp_path / "results" / "sim_normal_0" / "selected.tsv").exists()
    # the genotype design went through PLINK input like a user's .bed/.bim/.fam cohort
    meta = json.loads((tmp_path / "results" / "sim_geno_0" / "data" / "meta.json").read_text())
    assert meta["source"].endswith("cohorts/geno/rep0.bed") and meta["variants"]["chromosome"]
    assert set(replicates.loc[replicates["design"] == "geno", "replicate"]) == {0}
    # level: group scores the ungrouped run per the generator's two blocks, not its 10 features
    blocks = replicates[replicates["design"] == "blocks"]
    assert not blocks.empty and blocks["n_selected"].between(0, 2).all()
    truth = json.loads((out / "cohorts" / "blocks" / "rep0_truth.json").read_text())
    assert truth["groups"] == ["block1"] * 5 + ["block2"] * 5
    # `reports: 1` (default): replicate 0 of each design gets the full report, scored against
    # its truth and with its design's FDR/power figure embedded; replicate 1 gets none; a
    # design's own `reports: 0` (the null and genotype designs) builds none
    reported = [d for d in designs if config["designs"][d].get("reports", 1) > 0]
    assert reported == ["normal", "blocks"]
    for design in designs:
        if design in reported:
            _check_simulated_report(tmp_path / "results" / f"sim_{design}_0", out, design)
        else:
            assert not (tmp_path / "results" / f"sim_{design}_0" / "report.html").exists()
        assert not (tmp_path / "results" / f"sim_{design}_1" / "report.html").exists()
    # Snakemake's own report of the study carries the per-cohort FDR/power figures too
    args = ("simulate", "--configfile", str(REPO / "config" / "simulation_ci.yaml"))
    native = snakemake(tmp_path, *args, "--report", "report.zip")
    assert native.returncode == 0, native.stderr[-3000:]
    with zipfile.ZipFile(tmp_path / "report.zip") as bundle:
        names = bundle.namelist()
    # the study's fdr_power.png and one per reported replicate (report 0 of each design)
    assert sum(n.endswith("/fdr_power.png") for n in names) == 1 + len(reported), names
    # and each reported cohort's own figures, with their captions
    assert sum(n.endswith("/ol_scatter.png") for n in names) == len(reported), names
    try:
        import knockpy  # noqa: F401
    except ImportError:
        log = (tmp_path / "logs" / "simulation" / "scores" / "normal" / "rep0.log").read_text()
        assert "its package is not importable" in log


def _check_simulated_report(results: Path, study: Path, design: str) -> None:
    """The report's truth table agrees with selected.tsv and the truth; the figure is inline."""
    html = (results / "report.html").read_text()
    assert "Against the known truth (simulated cohort)" in html
    png = (results / "figures" / "fdr_power.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'id="fig-fdr_power"' in html and base64.b64encode(png[:300]).decode()[:200] in html
    truth = json.loads((study / "cohorts" / design / "rep0_truth.json").read_text())
    selected = pd.read_csv(results / "selected.tsv", sep="\t")
    body = html[html.index('id="truth-table"') :]
    body = body[: body.index("</table>")].replace('<span class="pill">recommended</span>', "")
    rows = [re.sub(r"<[^>]+>", "|", tr).split("|") for tr in body.split("<tr")[3:]]
    cells = {r[1]: [c for c in r[2:] if c.strip()] for r in rows}
    for flt in FILTERS:
        sel = selected.loc[selected["filter"] == flt, "feature"].astype(str)
        n_sel, fdp, power = fdp_power(sel, truth["relevant"])
        assert cells[flt][0] == str(n_sel), (design, flt)
        assert cells[flt][3] == fmt_num(fdp), (design, flt, cells[flt])
        assert cells[flt][4] == fmt_num(power), (design, flt, cells[flt])


def test_oracle_peer_regresses_the_latent_score_and_teacher_exposes_it() -> None:
    frame, relevant = generate("teacher", 400, 2, {"p": 12, "s": 3})
    latent = latent_score(frame)
    assert latent.shape == (400,) and np.isfinite(latent).all()
    assert np.isnan(latent_score(generate("xor", 100, 1, {"p": 6})[0])).all()
    X = frame[[f"x{j}" for j in range(1, 13)]].to_numpy()
    X = (X - X.mean(0)) / X.std(0)
    Xk = np.random.default_rng(0).standard_normal(X.shape)
    W = oracle_statistic(X, Xk, latent, seed=1)
    assert len(set(np.argsort(-W)[:3]) & {0, 1, 2}) >= 2 and relevant == ["x1", "x2", "x3"]


def _run_scores(dense: float, decay: float | None) -> dict[str, np.ndarray]:
    scores = {"metric": np.array("accuracy"), "dense_score": np.array(dense)}
    scores |= {"chosen_score": np.array(0.8), "reference_score": np.array(0.75)}
    return scores if decay is None else scores | {"dense_decay": np.array(decay)}


def test_fit_summary_gives_the_gaps_and_how_often_a_decayed_dense_fit_was_kept():
    fits = pd.concat(
        [
            fit_rows([(0, 0, _run_scores(0.7, 0.0)), (0, 1, _run_scores(0.8, 10.0))], "d", 0),
            fit_rows([(0, 0, _run_scores(0.6, 10.0)), (0, 1, _run_scores(0.6, 10.0))], "d", 1),
            fit_rows([(0, 0, _run_scores(0.9, None))], "old", 0),  # before the key existed
        ]
    )
    assert fits["dense_decay"].tolist()[:4] == [0.0, 10.0, 10.0, 10.0]
    out = fit_summary(fits).set_index("design")
    # replicates average their runs first: dense 0.75 and 0.6, decayed shares 0.5 and 1
    assert out.loc["d", "dense_mean"] == pytest.approx(0.675)
    assert out.loc["d", "dense_gap_mean"] == pytest.approx(-0.075)
    assert out.loc["d", "decayed_mean"] == pytest.approx(0.75)
    assert out.loc["d", "decayed_se"] == pytest.approx(0.25)
    assert np.isnan(out.loc["old", "decayed_mean"])  # unknown, not "never decayed"
    assert out.loc["old", "dense_gap_mean"] == pytest.approx(0.15)
    # results from before the column: the scores still summarise
    legacy = fit_summary(fits.drop(columns="dense_decay")).set_index("design")
    assert legacy.loc["d", "dense_mean"] == pytest.approx(0.675)
    assert legacy["decayed_mean"].isna().all()
