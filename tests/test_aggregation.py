"""VWA hard vote, knockoff e-values and e-BH."""

from __future__ import annotations

import numpy as np
import pytest

from knockoffnet.aggregation import ebh, ebh_qvalues, knockoff_evalues, vwa
from knockoffnet.errors import InputError
from knockoffnet.filters import knockoff_select

W_HAND = np.array([5.0, 4.0, -3.0, 2.0, 1.0, -1.0, 0.0])  # see test_filters.py


def test_vwa_counts_and_boundaries() -> None:
    S = np.array(
        [
            [1, 1, 0, 0, 1],
            [1, 0, 0, 0, 1],
            [1, 1, 1, 0, 0],
            [1, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    kept, freq = vwa(S, 0.5)
    np.testing.assert_array_equal(freq, [1.0, 0.5, 0.25, 0.0, 0.5])
    np.testing.assert_array_equal(kept, [1, 1, 0, 0, 1])  # 2/4 ≥ 0.5 keeps (equality)
    np.testing.assert_array_equal(vwa(S, 0.25)[0], [1, 1, 1, 0, 1])
    np.testing.assert_array_equal(vwa(S, 0.5000001)[0], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(vwa(S, 1.0)[0], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(vwa(S.astype(int), 0.5)[0], kept)  # 0/1 accepted


@pytest.mark.parametrize(("count", "n", "ratio"), [(3, 10, 0.3), (1, 3, 1 / 3), (7, 10, 0.7)])
def test_vwa_equality_survives_float_rounding(count: int, n: int, ratio: float) -> None:
    S = np.zeros((n, 2), dtype=bool)
    S[:count, 0] = True
    S[: count - 1, 1] = True
    kept, _ = vwa(S, ratio)
    np.testing.assert_array_equal(kept, [True, False])
    kept, _ = vwa(S, 0.1 * 3 if ratio == 0.3 else ratio)  # 0.30000000000000004
    assert kept[0]


def test_vwa_oml_pools_rows() -> None:
    ol = np.array([[1, 0, 0], [1, 0, 0]], dtype=bool)
    ml = np.array([[1, 1, 0], [0, 0, 0]], dtype=bool)
    kept, freq = vwa(np.vstack([ol, ml]), 0.25)
    np.testing.assert_array_equal(freq, [0.75, 0.25, 0.0])
    np.testing.assert_array_equal(kept, [1, 1, 0])


@pytest.mark.parametrize(
    ("S", "ratio"),
    [
        (np.ones((2, 3), dtype=bool), 0.0),
        (np.ones((2, 3), dtype=bool), 1.5),
        (np.ones((2, 3), dtype=bool), float("nan")),
        (np.ones(3, dtype=bool), 0.5),  # one run must still be (1, p)
        (np.ones((0, 3), dtype=bool), 0.5),
        (np.array([[0, 2, 1]]), 0.5),
        (np.array([[0.0, np.nan, 1.0]]), 0.5),
        (np.array([["a", "b"]]), 0.5),
    ],
)
def test_vwa_bad_inputs(S: np.ndarray, ratio: float) -> None:
    with pytest.raises(InputError):
        vwa(S, ratio)


def test_evalues_hand_computed() -> None:
    # knockoff+ at 0.5: T = 4, no W ≤ −4 → e = 7 / 1 on {5, 4}
    np.testing.assert_array_equal(knockoff_evalues(W_HAND, 0.5), [7, 7, 0, 0, 0, 0, 0])
    # at 0.75: T = 1, two W ≤ −1 → e = 7 / 3 on W ≥ 1
    np.testing.assert_allclose(
        knockoff_evalues(W_HAND, 0.75), [7 / 3] * 2 + [0, 7 / 3, 7 / 3, 0, 0]
    )
    np.testing.assert_array_equal(knockoff_evalues(W_HAND, 0.4), np.zeros(7))  # T = ∞
    # offset 0 only moves T (= 2 here); the denominator keeps its +1: 7 / (1 + 1)
    np.testing.assert_array_equal(knockoff_evalues(W_HAND, 0.4, 0), [3.5, 3.5, 0, 3.5, 0, 0, 0])
    assert knockoff_evalues(np.array([]), 0.1).shape == (0,)


def test_ebh_hand_computed_step_up() -> None:
    # p = 4, q = 0.5 → thresholds p/(kq) = 8, 4, 8/3, 2: k = 1 fails, k = 2 and 3 pass → k* = 3
    e = np.array([3.0, 0.0, 6.0, 5.0])
    np.testing.assert_array_equal(ebh(e, 0.5), [True, False, True, True])
    # r_k = p/(k e_(k)) = 2/3, 2/5, 4/9, ∞ → suffix minima
    np.testing.assert_allclose(ebh_qvalues(e), [4 / 9, 1.0, 0.4, 0.4])
    np.testing.assert_array_equal(ebh(e, 0.42), [False, False, True, True])
    assert not ebh(e, 0.39).any()


def test_ebh_ties_and_equality() -> None:
    np.testing.assert_array_equal(ebh(np.array([4.0, 4.0, 4.0, 0.0]), 0.5), [1, 1, 1, 0])
    np.testing.assert_array_equal(ebh(np.full(4, 2.0), 0.5), [1, 1, 1, 1])  # 2 ≥ 4/(4·0.5)
    assert not ebh(np.full(4, 1.99), 0.5).any()
    assert not ebh(np.zeros(5), 1.0).any()
    assert ebh(np.array([]), 0.1).shape == (0,)


def test_ebh_qvalues_consistent_with_ebh() -> None:
    rng = np.random.default_rng(5)
    qs = np.r_[np.linspace(0.01, 0.99, 99), [0.05, 0.1, 0.2, 0.25, 0.5]]
    for rep in range(100):
        p = int(rng.integers(1, 40))
        if rep % 2:  # knockoff-like e-values: few distinct values, many ties and zeros
            e = rng.choice([0.0, p / 3, p / 2, p], size=p)
        else:
            e = rng.exponential(size=p) * rng.choice([0.5, 5, 50])
        qv = ebh_qvalues(e)
        assert np.all((qv > 0) & (qv <= 1))
        order = np.argsort(e)
        assert np.all(np.diff(qv[order]) <= 0)  # larger e, smaller q-value
        for q in qs:
            sel = ebh(e, q)
            np.testing.assert_array_equal(sel, qv <= q)
            if sel.any():  # the standard statement {e_j ≥ p/(k* q)} with k* = |selection|
                cut = p / (sel.sum() * q)
                assert np.all(e[sel] >= cut * (1 - 1e-12))
                assert not np.any(e[~sel] >= cut * (1 + 1e-12))


def test_derandomised_knockoffs_control_fdr() -> None:
    """Averaging knockoff+ e-values over runs (α_kn = q/2) and applying e-BH keeps FDR ≤ q.

    (It is conservative by construction: the realised FDP is far below q here.)
    """
    rng = np.random.default_rng(6)
    n_rep, runs, p, n_signal, q = 400, 8, 200, 30, 0.1
    null = np.arange(p) >= n_signal
    fdp, n_sel, null_mass = [], [], []
    for _ in range(n_rep):
        base = rng.laplace(size=p) * 0.5  # shared "data" part of W across runs
        W_runs = base + rng.laplace(size=(runs, p))  # symmetric nulls in every run
        W_runs[:, :n_signal] += 6.0
        e = np.mean([knockoff_evalues(W, q / 2) for W in W_runs], axis=0)
        sel = ebh(e, q)
        fdp.append((sel & null).sum() / max(1, sel.sum()))
        n_sel.append(sel.sum())
        null_mass.append(e[null].sum())
    fdp_arr = np.array(fdp)
    assert fdp_arr.mean() <= q + 3 * fdp_arr.std() / np.sqrt(n_rep)
    assert np.mean(n_sel) > 10  # not vacuous
    assert np.mean(null_mass) <= p  # relaxed e-values: Σ_null E[e_j] ≤ p


def test_single_run_ebh_recovers_knockoff_plus() -> None:
    """Ren & Barber: with one run and α_kn = q, e-BH on the e-values is exactly knockoff+."""
    rng = np.random.default_rng(8)
    for rep in range(300):
        p = int(rng.integers(5, 80))
        W = rng.laplace(size=p) + (rng.random(p) < 0.4) * rng.uniform(0, 6)
        if rep % 2:
            W = np.round(W)  # ties and zeros
        q = float(rng.uniform(0.05, 0.6))
        sel = ebh(knockoff_evalues(W, q), q)
        np.testing.assert_array_equal(sel, knockoff_select(W, q))


@pytest.mark.parametrize(
    ("e", "q"),
    [
        (np.array([1.0, -0.5]), 0.1),
        (np.array([1.0, np.nan]), 0.1),
        (np.ones((2, 2)), 0.1),
        (np.ones(3), 0.0),
        (np.ones(3), 2.0),
    ],
)
def test_ebh_bad_inputs(e: np.ndarray, q: float) -> None:
    with pytest.raises(InputError):
        ebh(e, q)
    if q == 0.1:
        with pytest.raises(InputError):
            ebh_qvalues(e)


@pytest.mark.parametrize(("W", "alpha"), [(W_HAND, 0.0), (W_HAND, 1.2), (np.array([np.nan]), 0.1)])
def test_evalues_bad_inputs(W: np.ndarray, alpha: float) -> None:
    with pytest.raises(InputError):
        knockoff_evalues(W, alpha)
    with pytest.raises(InputError):
        knockoff_evalues(W_HAND, 0.1, offset=3)


def test_ebh_of_one_draw_at_alpha_q_equals_knockoff_plus_at_exact_ties() -> None:
    """(1 + V)/k = q exactly (9/30 at q = 0.3, where 50/(30·(50/9)) rounds above 0.3) must
    pass in both procedures."""
    from knockoffnet.filters import knockoff_select

    p = 50
    W = np.zeros(p)
    W[:30] = np.arange(10, 40)  # 30 positives above T ...
    W[30:38] = -np.arange(50.0, 58.0)  # ... and 8 negatives beyond -T: (1 + 8)/30 = 0.3
    e = knockoff_evalues(W, 0.3)
    assert knockoff_select(W, 0.3).sum() == 30
    np.testing.assert_array_equal(ebh(e, 0.3), knockoff_select(W, 0.3))
    assert (ebh_qvalues(e)[:30] <= 0.3).all()
