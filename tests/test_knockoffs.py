"""Knockoff construction: exact identities, Monte-Carlo moments, S feasibility and
optimality against reference solvers, determinism, input errors and diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from knockoffnet import knockoff_diagnostics as kd
from knockoffnet import knockoffs as kn
from knockoffnet import s_solvers as sv
from knockoffnet.errors import InputError


def sdp_s_cvxpy(R: np.ndarray, solver: str = "CLARABEL") -> np.ndarray:
    """Reference SDP solution from cvxpy (interior point; slow for p in the hundreds).

    A test reference only: cvxpy and Clarabel are in the `dev` extra, not the workflow's envs.
    """
    import cvxpy as cp

    p = R.shape[0]
    s = cp.Variable(p)
    cons = [s >= 0, s <= 1, 2 * R - cp.diag(s) >> 0]
    cp.Problem(cp.Maximize(cp.sum(s)), cons).solve(solver=solver)
    if s.value is None:
        raise RuntimeError(f"cvxpy/{solver} found no solution")
    return np.clip(np.asarray(s.value, dtype=np.float64), 0.0, 1.0)


def _ar1(p: int, rho: float) -> np.ndarray:
    idx = np.arange(p)
    return rho ** np.abs(np.subtract.outer(idx, idx))


def _equi(p: int, rho: float) -> np.ndarray:
    return np.full((p, p), rho) + (1.0 - rho) * np.eye(p)


def _factor(p: int, seed: int = 0) -> np.ndarray:
    F = np.random.default_rng(seed).standard_normal((p, 3))
    return kn.to_correlation(F @ F.T + 0.2 * np.eye(p))


def _gaussian(n: int, Sigma: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, Sigma.shape[0])) @ np.linalg.cholesky(Sigma).T


def _standardise(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)


def _min_eig(M: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(M).min())


def _joint_target(Sigma: np.ndarray, s: np.ndarray) -> np.ndarray:
    off = Sigma - np.diag(s)
    return np.block([[Sigma, off], [off, Sigma]])


# ------------------------------------------------------------------- fixed-X


@pytest.mark.parametrize("s_method", sv.S_METHODS)
@pytest.mark.parametrize("n", [40, 41, 300])  # n = 2p (no room for the intercept), 2p+1, ≫ 2p
def test_fixed_x_gram_identities(s_method: str, n: int) -> None:
    X = _standardise(_gaussian(n, _ar1(20, 0.6), seed=n))
    Xk, s = kn.fixed_x(X, s_method, np.random.default_rng(1))
    mean = X.mean(axis=0)
    norms = np.linalg.norm(X - mean, axis=0)
    Xn, Kn = (X - mean) / norms, (Xk - mean) / norms
    G = Xn.T @ Xn
    np.testing.assert_allclose(Kn.T @ Kn, G, atol=1e-8)
    np.testing.assert_allclose(Xn.T @ Kn, G - np.diag(s), atol=1e-8)
    if n > 40:
        np.testing.assert_allclose(Xk.mean(axis=0), mean, atol=1e-8)  # centred like X


# ------------------------------------------------------------------- model-X moments


def test_model_x_joint_covariance_and_swap_invariance() -> None:
    n, p = 20000, 10
    Sigma = _ar1(p, 0.6)
    X = _gaussian(n, Sigma, seed=3)
    s = kn.solve_s(Sigma, "mvr")
    Xk = kn.sample_model_x(X, np.zeros(p), Sigma, s, np.random.default_rng(4))
    # A unit-variance Gaussian covariance entry has SD ≤ sqrt(2/n); 5 SDs bound the max over
    # the 210 distinct entries with probability ≈ 1 − 210 · 6e-7.
    tol = 5.0 * np.sqrt(2.0 / n)
    target = _joint_target(Sigma, s)
    emp = np.cov(np.hstack([X, Xk]), rowvar=False)
    assert np.abs(emp - target).max() < tol
    swap = np.random.default_rng(5).choice(p, p // 2, replace=False)
    perm = np.arange(2 * p)
    perm[swap], perm[swap + p] = swap + p, swap
    swapped = np.cov(np.hstack([X, Xk])[:, perm], rowvar=False)
    assert np.abs(swapped - target).max() < tol
    assert np.abs(swapped - emp).max() < 2 * tol


def test_model_x_conditional_mean_is_exact_for_s_zero() -> None:
    X = _gaussian(50, _ar1(5, 0.5), seed=0)
    Xk = kn.sample_model_x(X, np.zeros(5), _ar1(5, 0.5), np.zeros(5), np.random.default_rng(0))
    np.testing.assert_allclose(Xk, X, atol=1e-12)  # s = 0: the knockoff is X itself


# ------------------------------------------------------------------- S feasibility


HARD = {
    "equi0.99": _equi(30, 0.99),
    "ar0.95": _ar1(30, 0.95),
    "ar0.5": _ar1(30, 0.5),
    "factor": _factor(30),
    "identity": np.eye(30),
}


@pytest.mark.parametrize("name", HARD)
@pytest.mark.parametrize("s_method", sv.S_METHODS)
def test_s_is_feasible(name: str, s_method: str) -> None:
    Sigma = HARD[name]
    s = kn.solve_s(Sigma, s_method)
    assert s.dtype == np.float64 and s.shape == (30,)
    assert np.all(s >= 0) and np.all(s <= 1)
    assert _min_eig(2 * Sigma - np.diag(s)) >= -1e-8
    assert _min_eig(_joint_target(Sigma, s)) >= -1e-8
    assert s.min() > 0


def test_equicorrelated_closed_form() -> None:
    s = kn.solve_s(_equi(10, 0.7), "equicorrelated")
    np.testing.assert_allclose(s, 2 * 0.3, rtol=2e-6)
    np.testing.assert_allclose(kn.solve_s(np.eye(4), "equicorrelated"), 1.0, rtol=2e-6)


def test_s_is_returned_on_the_covariance_scale() -> None:
    d = np.array([1.0, 4.0, 0.25, 9.0])
    R = _ar1(4, 0.4)
    cov = R * np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(kn.solve_s(cov, "mvr"), kn.solve_s(R, "mvr") * d, rtol=1e-10)


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")  # Clarabel on equi 0.99
@pytest.mark.parametrize("name", ["ar0.5", "equi0.99", "factor"])
def test_own_sdp_matches_cvxpy(name: str) -> None:
    R = HARD[name][:20, :20]
    ours, ref = kn.solve_s(R, "sdp"), sdp_s_cvxpy(R)
    assert abs(ours.mean() - ref.mean()) <= 0.01 * ref.mean()


def _mvr_objective(s: np.ndarray, R: np.ndarray) -> float:
    M = 2 * R - np.diag(s)
    if np.any(s <= 0) or _min_eig(M) <= 0:
        return 1e12
    return float(np.trace(np.linalg.inv(M)) + np.sum(1 / s))


@pytest.mark.parametrize("R", [_ar1(6, 0.8), _factor(6, seed=2)], ids=["ar0.8", "factor"])
def test_mvr_matches_direct_minimisation(R: np.ndarray) -> None:
    ours = sv.mvr_s(R)
    start = np.full(6, np.linalg.eigvalsh(R).min())
    ref = optimize.minimize(
        _mvr_objective, start, args=(R,), method="L-BFGS-B", bounds=[(1e-9, 1.0)] * 6,
        options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 5000},
    )  # fmt: skip
    assert _mvr_objective(ours, R) <= ref.fun * (1 + 1e-9)
    np.testing.assert_allclose(ours, ref.x, atol=1e-4)


# ------------------------------------------------------------------- block approximation


def _shuffled_block_diagonal() -> tuple[np.ndarray, list[set[int]]]:
    rng = np.random.default_rng(7)
    blocks = [_ar1(15, 0.7), _equi(12, 0.5), _factor(18, seed=3)]
    p = sum(b.shape[0] for b in blocks)
    Sigma = np.zeros((p, p))
    start = 0
    for b in blocks:
        Sigma[start : start + b.shape[0], start : start + b.shape[0]] = b
        start += b.shape[0]
    perm = rng.permutation(p)
    inv = np.argsort(perm)
    members, start = [], 0
    for b in blocks:
        members.append({int(inv[i]) for i in range(start, start + b.shape[0])})
        start += b.shape[0]
    return Sigma[np.ix_(perm, perm)], members


def test_feature_blocks_recover_true_blocks() -> None:
    Sigma, members = _shuffled_block_diagonal()
    found = [set(b.tolist()) for b in sv.feature_blocks(Sigma, max_block=18)]
    assert sorted(found, key=min) == sorted(members, key=min)
    assert all(len(b) <= 30 for b in sv.feature_blocks(Sigma, max_block=30))


@pytest.mark.parametrize("s_method", ["sdp", "mvr"])
def test_block_solution_matches_full_on_block_diagonal(s_method: str) -> None:
    Sigma, _ = _shuffled_block_diagonal()
    full = kn.solve_s(Sigma, s_method, max_block=100)
    blocked = kn.solve_s(Sigma, s_method, max_block=18)
    np.testing.assert_allclose(blocked, full, rtol=5e-3, atol=1e-4)


@pytest.mark.parametrize("s_method", ["sdp", "mvr"])
def test_block_solution_feasible_when_blocks_are_correlated(s_method: str) -> None:
    Sigma = _ar1(60, 0.8)  # every cut drops a 0.8 correlation: γ < 1 is needed
    s = kn.solve_s(Sigma, s_method, max_block=16)
    assert np.all((s > 0) & (s <= 1))
    assert _min_eig(2 * Sigma - np.diag(s)) >= -1e-8


# ------------------------------------------------------------------- covariance


@pytest.mark.parametrize("method", kn.COVARIANCES)
def test_estimate_covariance_returns_correlation(method: str) -> None:
    X = _standardise(_gaussian(200, _ar1(8, 0.5), seed=1))
    mu, R = kn.estimate_covariance(X, method)
    assert mu.shape == (8,) and R.shape == (8, 8)
    np.testing.assert_allclose(np.diag(R), 1.0)
    np.testing.assert_allclose(R, R.T)
    assert _min_eig(R) > 0
    assert abs(R[0, 1] - 0.5) < 0.2


def test_sample_covariance_refuses_n_le_p() -> None:
    X = _standardise(_gaussian(10, np.eye(12), seed=0))
    with pytest.raises(InputError, match="ledoit-wolf"):
        kn.estimate_covariance(X, "sample")


# ------------------------------------------------------------------- entry point


def test_make_knockoffs_is_deterministic_and_typed() -> None:
    X = _standardise(_gaussian(150, _ar1(6, 0.5), seed=2))
    a = kn.make_knockoffs(X, seed=11)
    b = kn.make_knockoffs(X, seed=11)
    c = kn.make_knockoffs(X, seed=12)
    assert a[0].dtype == np.float32 and a[0].shape == X.shape
    assert a[1].dtype == np.float64 and a[1].shape == (6,)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert not np.array_equal(a[0], c[0])
    for key in ("mean_s", "min_s", "max_dev_xx", "max_dev_kk", "max_dev_xk", "swap_pvalue"):
        assert isinstance(a[2][key], float)
    assert isinstance(a[2]["flag"], bool) and isinstance(a[2]["message"], str)


def test_knockoff_columns_are_standardised_like_x() -> None:
    X = _standardise(_gaussian(200, _ar1(5, 0.6), seed=4))
    for method in ("model-x", "fixed-x"):
        Xk, _, info = kn.make_knockoffs(X, method=method, seed=3)
        np.testing.assert_allclose(Xk.mean(axis=0), 0.0, atol=1e-6)
        np.testing.assert_allclose(Xk.std(axis=0), 1.0, atol=1e-5)
        assert 0.5 < info["knockoff_sd_min"] <= info["knockoff_sd_max"] < 1.5
    Z, sd = kn.standardise_columns(np.column_stack([np.full(4, 2.0), np.arange(4.0)]))
    assert sd[0] == 0.0 and np.all(Z[:, 0] == 0.0)  # a constant column is only centred


def test_make_knockoffs_fixed_x_runs() -> None:
    X = _standardise(_gaussian(100, _ar1(8, 0.5), seed=5))
    Xk, _, diag = kn.make_knockoffs(X, method="fixed-x", s_method="sdp", seed=1)
    assert Xk.shape == X.shape and diag["method"] == "fixed-x"
    assert diag["max_dev_kk"] < 1e-4  # fixed-X matches the Gram matrix exactly


def _with_column(X: np.ndarray, j: int, col: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[:, j] = col
    return X


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "fixed-x"}, r"knockoffs\.method.*n >= 2p.*model-x"),
        ({"method": "bogus"}, "knockoffs.method must be one of"),
        ({"s_method": "asdp"}, "knockoffs.s_method must be one of"),
        ({"covariance": "oas"}, "knockoffs.covariance must be one of"),
        ({"max_block": 1}, "knockoffs.max_block"),
        ({"seed": -1}, "knockoffs.seed"),
    ],
)
def test_bad_options_raise(kwargs: dict, match: str) -> None:
    X = _standardise(_gaussian(15, np.eye(10), seed=0))
    with pytest.raises(InputError, match=match):
        kn.make_knockoffs(X, **kwargs)


def test_bad_matrices_raise() -> None:
    X = _standardise(_gaussian(30, np.eye(5), seed=0))
    with pytest.raises(InputError, match=r"columns 1 and 3 .*not identifiable"):
        kn.make_knockoffs(_with_column(X, 3, X[:, 1]))
    with pytest.raises(InputError, match="columns 0 and 4"):
        kn.make_knockoffs(_with_column(X, 4, 1.0 - 2.0 * X[:, 0]))  # collinear, not equal
    with pytest.raises(InputError, match="NaN or infinite"):
        kn.make_knockoffs(_with_column(X, 2, np.full(30, np.nan)))
    with pytest.raises(InputError, match="constant"):
        kn.make_knockoffs(_with_column(X, 2, np.ones(30)))
    with pytest.raises(InputError, match="at least 3 samples"):
        kn.make_knockoffs(X[:2])
    with pytest.raises(InputError, match="not positive definite"):
        kn.solve_s(np.ones((3, 3)))


# ------------------------------------------------------------------- diagnostics


def test_diagnostics_quiet_on_gaussian_data() -> None:
    X = _standardise(_gaussian(1000, _ar1(8, 0.5), seed=21))
    _, _, diag = kn.make_knockoffs(X, seed=3)
    assert diag["flag"] is False, diag["message"]
    assert diag["message"].startswith("No evidence against exchangeability")
    assert diag["swap_pvalue"] > 0.01
    assert diag["max_dev_xx"] < 0.05 and diag["max_dev_kk"] < 0.15


@pytest.mark.parametrize("shape", [0.5, 1.0], ids=["gamma0.5", "exponential"])
def test_diagnostics_flag_skewed_features(shape: float) -> None:
    rng = np.random.default_rng(8)
    X = _standardise(rng.gamma(shape, size=(1000, 8)))
    _, _, diag = kn.make_knockoffs(X, seed=3)
    assert diag["flag"] is True
    assert "skew" in diag["message"] and "FDR" in diag["message"]
    assert diag["max_skew_gap"] > 1.0


def test_diagnostics_advice_fits_the_failed_check() -> None:
    """A swap-test failure with matching margins must not get the skewness advice."""
    n, calm = 1000, np.zeros(4)
    flag, msg = kd._verdict(0.001, calm, calm, n)
    assert flag and "swap test p = 0.001" in msg
    assert "depend on each other" in msg and "draws > 1" in msg and "Yeo-Johnson" not in msg
    skewed = np.array([0.0, 2.5, 0.0, 0.0])
    flag, msg = kd._verdict(0.5, skewed, calm, n, label=lambda j: f"x{j + 1}")
    assert flag and "column x2 is skewed" in msg and "Yeo-Johnson" in msg
    assert "depend on each other" not in msg
    flag, msg = kd._verdict(0.001, skewed, calm, n)
    assert flag and "swap test" in msg and "Yeo-Johnson" in msg
    assert kd._verdict(0.5, calm, calm, n)[0] is False


def test_mmd_detects_shift_and_not_identity() -> None:
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((200, 4)), rng.standard_normal((200, 4))
    assert kd.mmd_permutation_test(A, B, rng)[1] > 0.01
    assert kd.mmd_permutation_test(A, B + 0.5, rng)[1] < 0.01
