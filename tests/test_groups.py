"""Group knockoffs (knockoffs.groups, issue 15): grouping, the block-diagonal S, group-level
exchangeability, group statistics and tables, and scoring per group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from knockoffnet.errors import InputError
from knockoffnet.filters import knockoff_select
from knockoffnet.groups import (
    auto_groups,
    group_sum,
    group_table,
    index_from_table,
    read_group_table,
)
from knockoffnet.knockoff_diagnostics import _power_note, diagnostics
from knockoffnet.knockoffs import make_knockoffs, sample_model_x
from knockoffnet.s_solvers import S_METHODS, solve_group_s
from knockoffnet.selection import build_tables, run_statistics
from knockoffnet.simulation.generators import true_groups
from knockoffnet.simulation.scoring import score_masks, scoring_groups

from conftest import SELECTION

LABELS = np.repeat(np.arange(4), 3)  # four blocks of three


def block_sigma(r_in: float = 0.9, r_out: float = 0.1) -> np.ndarray:
    Sigma = np.where(LABELS[:, None] == LABELS[None, :], r_in, r_out)
    np.fill_diagonal(Sigma, 1.0)
    return Sigma


def block_data(n: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).multivariate_normal(np.zeros(12), block_sigma(), size=n)
    return (X - X.mean(0)) / X.std(0)


def test_auto_groups_recover_correlated_blocks() -> None:
    X = block_data(2000, 0)
    assert np.array_equal(auto_groups(X, 0.5), LABELS)
    assert np.array_equal(auto_groups(X, 0.95), np.arange(12))  # nothing that correlated
    with pytest.raises(InputError, match="group_cutoff"):
        auto_groups(X, 1.0)


def test_auto_groups_within_windows_never_cross_them() -> None:
    """Clustered window by window (a block-wise draw's blocks): a window boundary through a
    correlated block splits it, windows on block boundaries change nothing, and one window
    over everything is the plain clustering."""
    X = block_data(2000, 0)
    assert np.array_equal(auto_groups(X, 0.5, [slice(0, 12)]), LABELS)
    assert np.array_equal(auto_groups(X, 0.5, [slice(0, 6), slice(6, 12)]), LABELS)
    split = auto_groups(X, 0.5, [slice(0, 4), slice(4, 12)])  # cuts the second block 1 | 2
    assert np.array_equal(split, [0, 0, 0, 1, 2, 2, 3, 3, 3, 4, 4, 4])


def test_group_table_names_groups_by_their_representative(tmp_path) -> None:
    X = block_data(500, 1)
    names = [f"f{j}" for j in range(12)]
    table = group_table(names, LABELS, X)
    assert list(table.columns) == ["feature", "group", "group_size", "representative"]
    assert table["group_size"].eq(3).all() and table["group"].nunique() == 4
    assert set(table.loc[:2, "group"]) <= {"f0", "f1", "f2"}
    assert np.array_equal(index_from_table(table, names), LABELS)


def test_group_table_file_and_its_errors(tmp_path) -> None:
    names = ["a", "b", "c", "d"]
    path = tmp_path / "groups.tsv"
    path.write_text("feature\tgroup\na\tsize\nb\tsize\n")
    labels, group_names = read_group_table(path, names)
    assert labels.tolist() == [0, 0, 1, 2] and group_names == ["size", "c", "d"]
    path.write_text("feature\tgroup\na\tsize\nzz\tsize\n")
    with pytest.raises(InputError, match="zz"):
        read_group_table(path, names)
    path.write_text("feature\tgroup\na\tsize\na\tshape\n")
    with pytest.raises(InputError, match="two groups"):
        read_group_table(path, names)
    path.write_text("feature\tgroup\n" + "".join(f"{f}\tall\n" for f in names))
    with pytest.raises(InputError, match="one group"):
        read_group_table(path, names)
    path.write_text("name\tcluster\na\tx\n")
    with pytest.raises(InputError, match="feature"):
        read_group_table(path, names)
    csv = tmp_path / "groups.csv"
    csv.write_text("feature,group\nc,x\nd,x\n")
    assert read_group_table(csv, names)[0].tolist() == [0, 1, 2, 2]


@pytest.mark.parametrize("method", S_METHODS)
@pytest.mark.parametrize("copies", [1, 2])
def test_group_s_is_block_diagonal_and_feasible(method: str, copies: int) -> None:
    Sigma = block_sigma()
    S = solve_group_s(Sigma, LABELS, method, copies=copies)
    outside = LABELS[:, None] != LABELS[None, :]
    assert np.abs(S[outside]).max() == 0.0
    assert np.linalg.eigvalsh(S).min() >= -1e-10
    assert np.linalg.eigvalsh((copies + 1) / copies * Sigma - S).min() >= -1e-10
    # grouping leaves much more room than per-feature knockoffs inside tight blocks
    assert np.diag(S).mean() > 0.5


def test_group_knockoffs_are_exchangeable_group_by_group() -> None:
    """[X, X~] keeps its covariance when a whole group is swapped, not when one member is."""
    rng = np.random.default_rng(2)
    Sigma = block_sigma()
    X = rng.multivariate_normal(np.zeros(12), Sigma, size=200_000)
    S = solve_group_s(Sigma, LABELS, "equicorrelated")
    Xk = sample_model_x(X, np.zeros(12), Sigma, S, np.random.default_rng(3))
    G = np.cov(np.hstack([X, Xk]), rowvar=False)
    target = np.block([[Sigma, Sigma - S], [Sigma - S, Sigma]])
    assert np.abs(G - target).max() < 0.02

    def swapped(cols: list[int]) -> np.ndarray:
        perm = np.arange(24)
        for j in cols:
            perm[[j, j + 12]] = perm[[j + 12, j]]
        return G[np.ix_(perm, perm)]

    assert np.abs(swapped([0, 1, 2]) - target).max() < 0.02
    assert np.abs(swapped([0]) - target).max() > 0.3
    # and the knockoffs are far from copies, unlike per-feature knockoffs on these blocks
    assert abs(np.corrcoef(X[:, 0], Xk[:, 0])[0, 1]) < 0.2


def test_make_knockoffs_with_groups_and_the_group_swap_test() -> None:
    X = block_data(600, 4)
    _, s, info = make_knockoffs(X, seed=5, groups=LABELS)
    assert s.shape == (12,) and np.all(s > 0)
    _, _, plain = make_knockoffs(X, seed=5)
    assert info["groups"] == 4 and plain["groups"] == 12
    assert info["mean_abs_pair_corr"] < 0.3 < plain["mean_abs_pair_corr"]
    assert "Low power expected" not in info["message"]
    near = _power_note(0.95, 0.05)
    assert "Low power expected" in near and "knockoffs.groups: auto" in near
    assert "only whole groups" in _power_note(0.95, 0.05, grouped=True)
    assert info["swap_pvalue"] > 0.01
    with pytest.raises(InputError, match="model-x"):
        make_knockoffs(X, method="fixed-x", groups=LABELS)
    # a draw from group knockoffs swapped per feature is not exchangeable
    Sigma = block_sigma()
    S = solve_group_s(Sigma, LABELS, "equicorrelated")
    rng = np.random.default_rng(6)
    Xn = rng.multivariate_normal(np.zeros(12), Sigma, size=4000)
    Xkn = sample_model_x(Xn, np.zeros(12), Sigma, S, rng)
    per_group = diagnostics(Xn, Xkn, Sigma, S, np.random.default_rng(7), groups=LABELS)
    per_feature = diagnostics(Xn, Xkn, Sigma, S, np.random.default_rng(7))
    assert per_group["swap_cov_gap"] < 0.1 < per_feature["swap_cov_gap"]


def test_group_sum_swaps_with_the_group() -> None:
    z = np.arange(12, dtype=float)
    zk = np.arange(12, dtype=float)[::-1].copy()
    a, b = group_sum(z, LABELS), group_sum(zk, LABELS)
    assert np.allclose(a, [3, 12, 21, 30])
    z2, zk2 = z.copy(), zk.copy()
    z2[:3], zk2[:3] = zk[:3], z[:3]  # swap group 0 with its knockoff group
    assert np.allclose(group_sum(z2, LABELS)[0], b[0])
    assert np.allclose(group_sum(zk2, LABELS)[0], a[0])
    assert group_sum(np.vstack([z, zk]), LABELS).shape == (2, 4)


def _grouped_run(p: int, labels: np.ndarray, signal_groups: list[int], rng) -> dict:
    imp = rng.exponential(size=2 * p)
    imp[:p][np.isin(labels, signal_groups)] += 3.0
    return {"importance_ol": imp, "importance_ml": imp, "effects": rng.normal(size=(p, 1))}


def test_tables_select_whole_groups() -> None:
    p = 60
    labels = np.repeat(np.arange(20), 3)
    names = [f"f{j}" for j in range(p)]
    groups = pd.DataFrame(
        {
            "feature": names,
            "group": [f"g{g}" for g in labels],
            "group_size": 3,
            "representative": [f"f{3 * g}" for g in labels],
        }
    )
    rng = np.random.default_rng(8)
    signal = list(range(8))
    runs = [
        run_statistics(_grouped_run(p, labels, signal, rng), 0, s, p, SELECTION, labels)
        for s in range(2)
    ]
    assert runs[0].W["OL"].shape == (20,)
    meta = {"features": names, "task": "binary", "means": [0.0] * p, "sds": [1.0] * p}
    tables = build_tables(runs, meta, SELECTION, groups)
    features, selected = tables["features"], tables["selected"]
    assert len(features) == p and {"group", "group_size"} <= set(features.columns)
    ol = selected[selected["filter"] == "OL"]
    assert len(ol) % 3 == 0 and set(ol["group"]) >= {f"g{g}" for g in signal}
    # every member of a group carries its group's W and q-value
    per_group = features.groupby("group")[["OL_W", "OL_qvalue"]].nunique()
    assert per_group.max().max() == 1
    # the threshold rows count groups
    t = tables["thresholds"]
    n_groups = int(t[(t["filter"] == "OL") & (t["scope"] == "filter")]["n_selected"].iloc[0])
    assert n_groups * 3 == len(ol)
    # ungrouped tables still say which "group" each feature is: itself
    plain = build_tables(
        [run_statistics(_grouped_run(p, labels, signal, rng), 0, 0, p, SELECTION)],
        meta,
        SELECTION,
    )
    assert (plain["features"]["group"] == plain["features"]["feature"]).all()


def test_group_filter_controls_fdr_on_null_groups() -> None:
    """Group W from summed importances, null groups exchangeable with their knockoff groups:
    mean group-level FDP ≤ q + 2 se over 400 replicates."""
    rng = np.random.default_rng(9)
    labels = np.repeat(np.arange(40), 5)
    q, fdp = 0.1, []
    for _ in range(400):
        z, zk = rng.exponential(size=200), rng.exponential(size=200)
        z[labels < 12] += 1.5
        W = group_sum(z, labels) - group_sum(zk, labels)
        sel = knockoff_select(W, q)
        fdp.append(sel[12:].sum() / max(1, sel.sum()))
    fdp = np.asarray(fdp)
    assert fdp.mean() <= q + 2 * fdp.std(ddof=1) / np.sqrt(fdp.size)


def test_scoring_per_group() -> None:
    features = ["a", "b", "c", "d"]
    groups = ["g1", "g1", "g2", "g2"]
    mask = np.array([False, True, True, False])  # b (null member of a relevant group), c
    by_feature = score_masks({("OL", 0.1): mask}, features, ["a"])
    by_group = score_masks({("OL", 0.1): mask}, features, ["a"], groups)
    assert by_feature.loc[0, "fdp"] == 1.0 and by_feature.loc[0, "power"] == 0.0
    assert by_group.loc[0, "fdp"] == 0.5 and by_group.loc[0, "power"] == 1.0


def test_true_groups_are_the_generators_blocks() -> None:
    assert true_groups("blocks", {"p": 6, "block": 3}) == ["block1"] * 3 + ["block2"] * 3
    assert len(true_groups("blocks", {})) == 100  # the generator's defaults: p = 100
    assert true_groups("teacher", {"p": 6}) is None


def test_scoring_groups_by_run_and_design_level() -> None:
    meta = {"features": ["x2", "x1", "x3"]}  # order of the run, not of the generator
    truth = {"design": "d", "generator": "blocks", "groups": ["block1", "block1", "block2"]}
    run_groups = pd.DataFrame({"feature": ["x1", "x2", "x3"], "group": [7, 7, 8]})
    assert scoring_groups(meta, truth, run_groups, True, "feature") == ["7", "7", "8"]
    assert scoring_groups(meta, truth, run_groups, False, "feature") is None
    assert scoring_groups(meta, truth, run_groups, False, "group") == [
        "block1",
        "block1",
        "block2",
    ]
    with pytest.raises(ValueError, match="level: group"):
        scoring_groups(meta, {**truth, "groups": None}, run_groups, False, "group")


def test_blocks_with_no_signal_is_a_global_null() -> None:
    from knockoffnet.simulation.generators import generate

    frame, relevant = generate("blocks", 400, 3, {"p": 20, "block": 5, "s": 0})
    assert relevant == []
    assert sorted(np.bincount(frame["y"])) == [200, 200]
    X = frame[[f"x{j}" for j in range(1, 21)]].to_numpy()
    assert np.corrcoef(X[:, 0], X[:, 1])[0, 1] > 0.8  # the blocks are still there
    assert abs(np.corrcoef(X[:, 0], frame["y"])[0, 1]) < 0.2


def test_peers_on_group_knockoffs_select_whole_groups() -> None:
    """On group knockoffs a peer is thresholded per group (W summed over members), never per
    member: a null group whose members cancel is not selected, and a selected group selects
    all of its members."""
    from knockoffnet.simulation.peers import peer_masks

    labels = np.repeat(np.arange(12), 2)
    W = np.concatenate([np.ones(20), [5.0, -5.0], [-1.0, -1.0]])
    per_feature = peer_masks(W, "peer-rf", [0.2])[("peer-rf", 0.2)]
    per_group = peer_masks(W, "peer-rf", [0.2], labels=labels)[("peer-rf", 0.2)]
    assert per_feature[20]  # the member of the cancelling null group
    np.testing.assert_array_equal(per_group, labels < 10)
