"""Multiple simultaneous knockoffs (knockoffs.copies = κ, Gimenez & Zou 2019): the joint
distribution of [X, X~¹..X~ᵏ], the κ-copy S constraint, the signed statistic, the filter whose
negatives count 1/κ each, e-values, and the selection tables built from (κ+1)p importances."""

from __future__ import annotations

import numpy as np
import pytest

from knockoffnet.aggregation import ebh, knockoff_evalues
from knockoffnet.errors import InputError
from knockoffnet.filters import (
    AUTO_COPIES,
    AUTO_COPIES_MAX_FEATURES,
    _min_selectable,
    knockoff_qvalues,
    knockoff_select,
    knockoff_threshold,
    no_selection_message,
    resolve_copies,
)
from knockoffnet.knockoffs import make_knockoffs, sample_model_x
from knockoffnet.s_solvers import S_METHODS, solve_s
from knockoffnet.selection import build_tables, run_statistics
from knockoffnet.statistics import multi_statistic, pair_statistic

from conftest import SELECTION


def ar1(p: int, rho: float) -> np.ndarray:
    return rho ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))


@pytest.mark.parametrize("method", S_METHODS)
@pytest.mark.parametrize("copies", [2, 3, 5])
def test_s_is_feasible_for_kappa_copies(method: str, copies: int) -> None:
    """(κ+1)/κ·Σ − S ⪰ 0 is what makes the (κ+1)p joint covariance PSD."""
    Sigma = ar1(12, 0.7)
    s = solve_s(Sigma, method, copies=copies)
    assert np.all(s > 0) and np.all(s <= 1)
    assert np.linalg.eigvalsh((copies + 1) / copies * Sigma - np.diag(s)).min() >= -1e-10
    # more copies, tighter constraint: never more room than one copy has
    assert s.sum() <= solve_s(Sigma, method).sum() + 1e-9


def test_one_copy_is_unchanged() -> None:
    Sigma = ar1(8, 0.5)
    for method in S_METHODS:
        assert np.array_equal(solve_s(Sigma, method), solve_s(Sigma, method, copies=1))
    X = np.random.default_rng(0).standard_normal((50, 8))
    s = solve_s(Sigma, "mvr")
    a = sample_model_x(X, np.zeros(8), Sigma, s, np.random.default_rng(3))
    b = sample_model_x(X, np.zeros(8), Sigma, s, np.random.default_rng(3), copies=1)
    assert np.array_equal(a, b)


def test_independent_features_get_independent_copies() -> None:
    """Σ = I allows s = 1 for any κ: copies uncorrelated with X and with each other."""
    for copies in (1, 3):
        assert np.allclose(solve_s(np.eye(5), "equicorrelated", copies=copies), 1.0)


def test_joint_covariance_is_exchangeable() -> None:
    """Every pair of the κ+1 blocks has cross-covariance Σ − S and each block Σ."""
    p, copies, n = 5, 3, 200_000
    Sigma = ar1(p, 0.6)
    rng = np.random.default_rng(1)
    X = rng.multivariate_normal(np.zeros(p), Sigma, size=n)
    s = solve_s(Sigma, "mvr", copies=copies)
    Xk = sample_model_x(X, np.zeros(p), Sigma, s, np.random.default_rng(2), copies=copies)
    assert Xk.shape == (n, copies * p)
    G = np.cov(np.hstack([X, Xk]), rowvar=False)
    ones = np.ones((copies + 1, copies + 1))
    target = np.kron(ones, Sigma - np.diag(s)) + np.kron(np.eye(copies + 1), np.diag(s))
    assert np.abs(G - target).max() < 0.02
    # and swapping a feature with one copy's column leaves the covariance as it was
    perm = np.arange((copies + 1) * p)
    perm[[1, 1 + 2 * p]] = perm[[1 + 2 * p, 1]]
    assert np.abs(G[np.ix_(perm, perm)] - target).max() < 0.02


def test_make_knockoffs_stacks_standardised_copies() -> None:
    X = np.random.default_rng(4).multivariate_normal(np.zeros(6), ar1(6, 0.4), size=300)
    X = (X - X.mean(0)) / X.std(0)
    Xk, s, info = make_knockoffs(X, seed=9, copies=2)
    assert Xk.shape == (300, 12) and Xk.dtype == np.float32 and s.shape == (6,)
    assert np.allclose(Xk.mean(0), 0, atol=1e-5) and np.allclose(Xk.std(0), 1, atol=1e-4)
    assert info["copies"] == 2
    again, _, _ = make_knockoffs(X, seed=9, copies=2)
    assert np.array_equal(Xk, again)
    # the two copies are different draws, not one copy twice
    assert not np.allclose(Xk[:, :6], Xk[:, 6:])
    with pytest.raises(InputError, match="model-x"):
        make_knockoffs(X, method="fixed-x", copies=2)
    with pytest.raises(InputError, match="copies"):
        make_knockoffs(X, copies=0)


def test_auto_copies_are_three_on_small_model_x_cohorts_and_one_elsewhere() -> None:
    """The default: 3 copies up to 500 features with model-x knockoffs and the importance
    statistics; one copy on larger cohorts, fixed-x knockoffs or the paper's statistics
    (defined for one copy); an integer is kept, anything else named in the error."""
    assert resolve_copies("auto", 30) == AUTO_COPIES == 3
    assert resolve_copies("auto", AUTO_COPIES_MAX_FEATURES) == 3
    assert resolve_copies("auto", AUTO_COPIES_MAX_FEATURES + 1) == 1
    assert resolve_copies("auto", 30, method="fixed-x") == 1
    assert resolve_copies("auto", 30, statistic="paper") == 1
    assert resolve_copies(5, 10_000) == 5 and resolve_copies(1, 30) == 1
    for bad in ("three", 0, 2.5, True):
        with pytest.raises(InputError, match=r"knockoffs\.copies must be an integer >= 1 or auto"):
            resolve_copies(bad, 30)
    X = np.random.default_rng(5).standard_normal((200, 7))
    X = (X - X.mean(0)) / X.std(0)
    Xk, _, info = make_knockoffs(X, seed=3, copies="auto")
    assert Xk.shape == (200, 21) and info["copies"] == 3
    explicit, _, _ = make_knockoffs(X, seed=3, copies=3)
    assert np.array_equal(Xk, explicit)  # auto is exactly the copies it resolves to
    assert make_knockoffs(X, seed=3, method="fixed-x", copies="auto")[0].shape == (200, 7)


def test_multi_statistic_by_hand() -> None:
    z = np.array([5.0, 1.0, 2.0, 0.0, 3.0])
    zk = np.array(
        [
            [1.0, 4.0, 2.0, 0.0, 1.0],
            [2.0, 3.0, 1.0, 0.0, 3.0],
            [3.0, 0.0, 0.5, 0.0, 2.0],
        ]
    )
    W = multi_statistic(z, zk)
    # f0 wins: 5 − median(5,1,2,3) = 5 − 2.5; f1 loses: −(4 − median(1,4,3,0)) = −(4 − 2)
    # f2 tied with a copy at the top: 0; f3 all zero: 0; f4 tied at 3 with copy 2: 0
    assert np.allclose(W, [2.5, -2.0, 0.0, 0.0, 0.0])
    assert np.allclose(pair_statistic(z, zk, "difference"), W)
    with pytest.raises(InputError, match="importance"):
        pair_statistic(z, zk, "squares")


def test_one_copy_statistic_selects_as_the_difference() -> None:
    rng = np.random.default_rng(5)
    z, zk = rng.random(40), rng.random(40)
    z[:10] += 1
    W1 = pair_statistic(z, zk, "difference")
    Wm = multi_statistic(z, zk[None, :])
    assert np.allclose(Wm, W1 / 2)
    assert np.array_equal(knockoff_select(W1, 0.2), knockoff_select(Wm, 0.2))


def test_threshold_divides_negatives_by_kappa() -> None:
    # 3 positives, 1 negative: fdp̂(t ≤ 1) = (1 + 1)/(3κ) = 0.222 for κ = 3, 0.667 for κ = 1
    W = np.array([3.0, 2.0, 1.5, -1.0, 0.0])
    assert knockoff_threshold(W, 0.25, copies=3) == 1.0
    assert np.isinf(knockoff_threshold(W, 0.25))
    # above the negative: (1 + 0)/(κ · #{W ≥ t}); t = 1.5 gives 1/9
    qv = knockoff_qvalues(W, copies=3)
    assert np.allclose(qv, [1 / 9, 1 / 9, 1 / 9, 1.0, 1.0])
    for q in (0.05, 0.1, 0.2, 0.3):
        assert np.array_equal(knockoff_select(W, q, copies=3), qv <= q)


def test_smallest_selection_is_about_one_over_kappa_q() -> None:
    assert _min_selectable(0.1) == 10
    assert _min_selectable(0.1, copies=5) == 2
    assert _min_selectable(0.1, copies=3) == 4
    W = np.array([2.0, 1.0, 0.5] + [0.0] * 27)  # 3 positives, p = 30
    msg = no_selection_message(W, 0.1, copies=3)
    assert "4 features" in msg and "⌈1/(3q)⌉" in msg
    assert no_selection_message(W, 0.2, copies=3) == ""  # (1)/(3·3) ≤ 0.2


def test_multi_knockoff_filter_controls_fdr_on_exchangeable_nulls() -> None:
    """Null importances exchangeable across the κ+1 columns, signals mostly winning: over 400
    replicates the mean FDP stays within q + 2 se, and a small signal set (5 of 60, fewer than
    1/q) is found, which one knockoff (the first copy) mostly misses."""
    rng = np.random.default_rng(6)
    copies, q, p, k, reps = 4, 0.1, 60, 5, 400
    fdp, power, single = [], [], []
    for _ in range(reps):
        imp = rng.exponential(size=(copies + 1, p))
        imp[0, :k] += 8.0
        W = multi_statistic(imp[0], imp[1:])
        sel = knockoff_select(W, q, copies=copies)
        fdp.append(sel[k:].sum() / max(1, sel.sum()))
        power.append(sel[:k].mean())
        single.append(knockoff_select(imp[0] - imp[1], q)[:k].mean())
    fdp = np.asarray(fdp)
    assert fdp.mean() <= q + 2 * fdp.std(ddof=1) / np.sqrt(reps)
    assert np.mean(power) > 0.8 and np.mean(single) < 0.3


def test_evalues_match_the_filter_at_alpha_q() -> None:
    """e-BH on one draw's κ-copy e-values at α_kn = q selects the multi-knockoff+ set."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        W = rng.normal(size=40)
        W[:8] = np.abs(W[:8]) + 2
        e = knockoff_evalues(W, 0.2, copies=3)
        assert np.array_equal(ebh(e, 0.2), knockoff_select(W, 0.2, copies=3))


def _run(p: int, copies: int, rng: np.random.Generator, signal: int) -> dict[str, np.ndarray]:
    imp = rng.exponential(size=(copies + 1) * p)
    imp[:signal] += 5
    return {
        "importance_ol": imp,
        "importance_ml": imp * 2,
        "effects": rng.normal(size=(p, 1)),
        "effect_magnitude": rng.random(p),
    }


def test_selection_tables_from_kappa_copies() -> None:
    p, copies = 12, 3
    rng = np.random.default_rng(8)
    selection = SELECTION
    runs = [run_statistics(_run(p, copies, rng, 3), 0, s, p, selection) for s in range(3)]
    assert runs[0].copies == copies and runs[0].importance["OL"][1].shape == (copies, p)
    meta = {
        "features": [f"f{j}" for j in range(p)],
        "task": "binary",
        "means": [0.0] * p,
        "sds": [1.0] * p,
    }
    tables = build_tables(runs, meta, selection)
    features = tables["features"]
    assert len(features) == p
    # the table's knockoff importance is the strongest copy's, averaged over seeds
    zk = np.mean([r.importance["OL"][1] for r in runs], axis=0).max(axis=0)
    assert np.allclose(features["OL_z_knockoff"], zk)
    assert features.loc[:2, "selected_OL"].all()  # three clear signals, 3 ≥ 1/(κ q) = 1.67
    with pytest.raises(InputError, match="importance"):
        run_statistics(_run(p, copies, rng, 3), 0, 0, p, {**selection, "statistic": "paper"})
    with pytest.raises(InputError, match="multiple"):
        run_statistics({**_run(p, 1, rng, 3), "importance_ol": np.ones(2 * p + 1)}, 0, 0, p,
                       selection)  # fmt: skip
