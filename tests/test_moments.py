"""Block-wise moments and sampling (issue 16): same numbers as the whole-matrix computation,
without float64 copies of the matrix."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from knockoffnet import knockoffs, moments
from knockoffnet.knockoffs import estimate_covariance, make_knockoffs, sample_model_x
from knockoffnet.s_solvers import solve_s


def _ar1(n: int, p: int, rho: float = 0.6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho**2) * X[:, j]
    return 3.0 + X  # a mean far from 0: the centred sums must not lose it


@pytest.mark.parametrize("block", [None, 7, 1000])
def test_row_moments_match_whole_matrix(block: int | None) -> None:
    X = _ar1(503, 9)
    m = moments.row_moments(X, block=block)
    Xc = X - X.mean(axis=0)
    np.testing.assert_allclose(m.mean, X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(m.gram, Xc.T @ Xc, rtol=1e-11)
    np.testing.assert_allclose(m.fourth, np.sum(np.sum(Xc**2, axis=1) ** 2), rtol=1e-11)
    assert m.nonfinite == 0
    np.testing.assert_array_equal(m.col_min, X.min(axis=0))


@pytest.mark.parametrize(("n", "p"), [(400, 12), (30, 60), (50, 1)])
def test_ledoit_wolf_from_moments_is_sklearns(n: int, p: int) -> None:
    X = _ar1(n, p, seed=n)
    ours = moments.ledoit_wolf(moments.row_moments(X, block=11))
    np.testing.assert_allclose(ours, LedoitWolf().fit(X).covariance_, rtol=1e-9, atol=1e-12)


def test_estimate_covariance_of_float32_input_matches_float64() -> None:
    X = _ar1(300, 8)
    mu64, c64 = estimate_covariance(X)
    mu32, c32 = estimate_covariance(X.astype(np.float32))
    np.testing.assert_allclose(mu32, mu64, atol=1e-5)
    np.testing.assert_allclose(c32, c64, atol=1e-5)


def test_column_moments_and_standardise_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    X = _ar1(200, 13).astype(np.float32)
    monkeypatch.setattr(moments, "column_block", lambda n, budget=0: 4)
    mean, sd, absmax = moments.column_moments(X)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(mean, X64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sd, X64.std(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(absmax, np.abs(X64).max(axis=0))
    Z = moments.standardise_float32(X, mean, sd)
    assert Z is X and Z.dtype == np.float32  # float32 is standardised in place
    np.testing.assert_allclose(Z, (X64 - mean) / sd, atol=1e-6)
    W = moments.standardise_float32(X64, mean, sd)
    assert W.dtype == np.float32 and W is not X64


@pytest.mark.parametrize("copies", [1, 3])
def test_sampling_in_row_blocks(monkeypatch: pytest.MonkeyPatch, copies: int) -> None:
    """One copy: the same draw whatever the block size. Several: still the target law."""
    X = _ar1(600, 6) - 3.0
    mu, Sigma = estimate_covariance(X)
    s = solve_s(Sigma, "mvr", copies=copies)
    whole = sample_model_x(X, mu, Sigma, s, np.random.default_rng(4), copies)
    monkeypatch.setattr(knockoffs, "row_block", lambda cols, budget=0: 37)
    blocked = sample_model_x(X, mu, Sigma, s, np.random.default_rng(4), copies)
    out = np.empty((600, copies * 6), dtype=np.float32)
    sample_model_x(X.astype(np.float32), mu, Sigma, s, np.random.default_rng(4), copies, out=out)
    np.testing.assert_allclose(out, blocked, atol=1e-5)
    if copies == 1:
        np.testing.assert_allclose(blocked, whole, atol=1e-12)
        return
    # each copy's mean given X and its cross-covariance with X are right on 600 rows; the
    # exact joint law is tested on 200,000 rows in test_multi_knockoffs.py
    for k in range(copies):
        gap = np.corrcoef(blocked[:, k * 6 : (k + 1) * 6].T, X.T)[:6, 6:] - (Sigma - np.diag(s))
        assert np.abs(gap).max() < 0.15


def test_large_draw_reads_a_subset_for_diagnostics() -> None:
    """Beyond DIAGNOSTIC_ROWS the checks read a random subset; X~ is float32 and standardised."""
    X = _ar1(knockoffs.DIAGNOSTIC_ROWS + 500, 4, seed=2).astype(np.float32)
    Xk, _, info = make_knockoffs(X, seed=1)
    assert Xk.dtype == np.float32 and Xk.shape == X.shape
    assert info["diagnostic_rows"] == knockoffs.DIAGNOSTIC_ROWS
    np.testing.assert_allclose(Xk.astype(np.float64).std(axis=0), 1.0, atol=1e-5)
    small = make_knockoffs(X[:300], seed=1)[2]
    assert small["diagnostic_rows"] == 300


def test_diagnostic_rows_shrink_at_large_p() -> None:
    """rows·p² stays within budget at large p (the checks' cost), never below the floor."""
    rows = knockoffs.diagnostic_rows
    assert rows(50_000, 1_000) == knockoffs.DIAGNOSTIC_ROWS
    assert rows(50_000, 10_000) == knockoffs.MIN_DIAGNOSTIC_ROWS
    assert rows(500, 10_000) == 500
    mid = rows(50_000, 6_000)
    assert knockoffs.MIN_DIAGNOSTIC_ROWS < mid < knockoffs.DIAGNOSTIC_ROWS
    assert mid * 6_000**2 <= knockoffs.DIAGNOSTIC_BUDGET


def test_draw_holds_few_p_by_p_matrices() -> None:
    """At large p the (p, p) float64 matrices dominate a draw's memory (0.8 GB each at
    p = 10⁴): the draw must not hold more than about six at once (it held twelve, 12.2 p² of
    traced allocations at this shape, before row-block and in-place LAPACK work)."""
    import tracemalloc

    import scipy.cluster.hierarchy  # noqa: F401 - imports allocate; keep them out of the peak
    import sklearn.covariance  # noqa: F401

    n, p = 400, 1200
    X = np.random.default_rng(0).standard_normal((n, p)).astype(np.float32)
    make_knockoffs(X[:50, :20], seed=0)  # warm every lazy import and cache
    tracemalloc.start()
    try:
        Xk, s, _ = make_knockoffs(X, seed=1, max_block=500)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.all(s > 0) and Xk.shape == X.shape
    assert peak / (p * p * 8) < 10.0


def test_load_columns_reads_files_into_one_float32_matrix(tmp_path) -> None:
    """The training input [X, X~, C] is assembled block by block from the .npy files."""
    from knockoffnet.runtime import load_columns

    rng = np.random.default_rng(0)
    X, Xk, C = (
        rng.random((1001, 3)),
        rng.random((1001, 6)).astype(np.float32),
        rng.random((1001, 2)),
    )
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Xk.npy", Xk)
    U = load_columns([tmp_path / "X.npy", tmp_path / "Xk.npy", C], block_rows=97)
    assert U.dtype == np.float32
    np.testing.assert_array_equal(U, np.hstack([X, Xk, C]).astype(np.float32))
    np.save(tmp_path / "F.npy", np.asfortranarray(X))  # column-major files are read too
    np.testing.assert_array_equal(load_columns([tmp_path / "F.npy"], block_rows=97), U[:, :3])
    np.save(tmp_path / "short.npy", X[:10])
    with pytest.raises(ValueError, match="row counts differ"):
        load_columns([tmp_path / "X.npy", tmp_path / "short.npy"])


def test_diagnostic_moments_match_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The draw's covariance blocks and skewness/kurtosis gaps, summed over row blocks."""
    from scipy import stats

    from knockoffnet import knockoff_diagnostics as kd

    rng = np.random.default_rng(3)
    X = rng.exponential(size=(301, 5))
    Xk = rng.standard_normal((301, 5)).astype(np.float32)
    monkeypatch.setattr(kd, "row_block", lambda cols, budget=0: 29)
    Cxx, Ckk, Cxk, skew_gap, kurt_gap = kd._pair_moments(X, Xk)
    joint = np.cov(np.hstack([X, Xk.astype(np.float64)]), rowvar=False)
    np.testing.assert_allclose(Cxx, joint[:5, :5], rtol=1e-10)
    np.testing.assert_allclose(Ckk, joint[5:, 5:], rtol=1e-6)
    np.testing.assert_allclose(Cxk, joint[:5, 5:], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(skew_gap, np.abs(stats.skew(X) - stats.skew(Xk)), rtol=1e-5)
    np.testing.assert_allclose(kurt_gap, np.abs(stats.kurtosis(X) - stats.kurtosis(Xk)), rtol=1e-5)


def test_reference_model_fits_a_bounded_row_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond REFERENCE_VALUES the gradient-boosting reference sees a seeded subset of the
    training rows: the same seed gives the same score, and it still learns the signal."""
    from knockoffnet import scores, vocabulary

    rng = np.random.default_rng(0)
    U = rng.standard_normal((3000, 6)).astype(np.float32)
    y = (U[:, 0] + 0.3 * rng.standard_normal(3000) > 0).astype(np.int64)
    train, val = np.arange(2000), np.arange(2000, 3000)
    full = scores.reference_score(U, y, train, val, "binary", seed=3)
    monkeypatch.setattr(vocabulary, "REFERENCE_VALUES", 6 * 1200)
    assert vocabulary.reference_rows(2000, 6) == 1200
    assert vocabulary.reference_rows(2000, 6 * 10**6) == 1000  # never below 1,000 rows
    assert vocabulary.reference_rows(800, 6) == 800
    sub = scores.reference_score(U, y, train, val, "binary", seed=3)
    assert sub == scores.reference_score(U, y, train, val, "binary", seed=3)
    assert sub != full and sub > 0.8
