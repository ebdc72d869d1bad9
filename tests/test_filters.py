"""Knockoff thresholds, selections, q-values and the empty-selection message."""

from __future__ import annotations

import math

import numpy as np
import pytest

from knockoffnet.errors import InputError
from knockoffnet.filters import (
    knockoff_qvalues,
    knockoff_select,
    knockoff_threshold,
    no_selection_message,
)

# Hand-computed: t=1: #{W≥t}=4, #{W≤−t}=2; t=2: 3, 1; t=3: 2, 1; t=4: 2, 0; t=5: 1, 0.
# knockoff+ fdp̂ = [3/4, 2/3, 1, 1/2, 1]; knockoff fdp̂ = [1/2, 1/3, 1/2, 0, 0].
W_HAND = np.array([5.0, 4.0, -3.0, 2.0, 1.0, -1.0, 0.0])


@pytest.mark.parametrize(
    ("q", "offset", "T", "n_sel"),
    [
        (0.5, 1, 4.0, 2),
        (0.4, 1, math.inf, 0),
        (2 / 3, 1, 2.0, 3),
        (0.75, 1, 1.0, 4),
        (1.0, 1, 1.0, 4),
        (0.5, 0, 1.0, 4),
        (0.4, 0, 2.0, 3),
        (0.3, 0, 4.0, 2),
    ],
)
def test_threshold_hand_computed(q: float, offset: int, T: float, n_sel: int) -> None:
    assert knockoff_threshold(W_HAND, q, offset) == T
    sel = knockoff_select(W_HAND, q, offset)
    assert sel.sum() == n_sel
    assert not sel[[2, 5, 6]].any()  # negatives and the zero are never selected


def test_threshold_ties() -> None:
    W = np.array([2.0, 2.0, -2.0, 1.0, 1.0, 1.0])  # t=1: 5 pos, 1 neg; t=2: 2 pos, 1 neg
    assert knockoff_threshold(W, 0.4, 1) == 1.0  # (1+1)/5 = 0.4
    assert knockoff_threshold(W, 0.3, 1) == math.inf
    assert knockoff_threshold(W, 0.2, 0) == 1.0  # 1/5
    assert knockoff_threshold(W, 0.1, 0) == math.inf
    np.testing.assert_array_equal(knockoff_select(W, 0.4), [1, 1, 0, 1, 1, 1])


@pytest.mark.parametrize("W", [[], [0.0, 0.0, 0.0], [-1.0, -2.0, -0.5], [0.0, -3.0]], ids=str)
@pytest.mark.parametrize("offset", [0, 1])
def test_threshold_infinite(W: list[float], offset: int) -> None:
    assert knockoff_threshold(np.array(W), 1.0, offset) == math.inf
    assert not knockoff_select(np.array(W), 1.0, offset).any()
    np.testing.assert_array_equal(knockoff_qvalues(np.array(W), offset), np.ones(len(W)))


def test_zeros_never_threshold_or_selected() -> None:
    W = np.array([3.0, 0.0, 0.0, 0.0])
    assert knockoff_threshold(W, 1.0) == 3.0  # (1+0)/1 ≤ 1
    np.testing.assert_array_equal(knockoff_select(W, 1.0), [True, False, False, False])
    assert knockoff_threshold(W, 0.5) == math.inf
    assert knockoff_threshold(W, 0.5, offset=0) == 3.0


def test_qvalues_hand_computed() -> None:
    # running minima of the fdp̂ curves over t ≤ W_j
    np.testing.assert_allclose(
        knockoff_qvalues(W_HAND, 1), [0.5, 0.5, 1, 2 / 3, 0.75, 1, 1], rtol=0, atol=0
    )
    np.testing.assert_allclose(knockoff_qvalues(W_HAND, 0), [0, 0, 1, 1 / 3, 0.5, 1, 1])


def test_qvalues_consistent_with_select_random_with_ties() -> None:
    rng = np.random.default_rng(1)
    qs = np.r_[np.linspace(0.01, 0.99, 99), [0.1, 0.2, 1 / 3, 0.25, 0.5, 2 / 3, 0.999999]]
    for rep in range(150):
        p = int(rng.integers(1, 60))
        if rep % 2:  # integer W: many ties, many zeros
            W = rng.integers(-4, 7, size=p).astype(float)
        else:
            W = rng.laplace(size=p) + (rng.random(p) < 0.3) * 2.0
        for offset in (0, 1):
            qv = knockoff_qvalues(W, offset)
            assert np.all((qv >= 0) & (qv <= 1))
            assert np.all(qv[W <= 0] == 1.0)
            # larger W never has a larger q-value
            order = np.argsort(W[W > 0])
            assert np.all(np.diff(qv[W > 0][order]) <= 0)
            for q in qs:
                np.testing.assert_array_equal(knockoff_select(W, q, offset), qv <= q)
            # at q = 1 selection implies q-value ≤ 1 (the cap makes the converse fail)
            assert np.all(qv[knockoff_select(W, 1.0, offset)] <= 1.0)


def _fdp_over_replicates(
    n_rep: int, p: int, n_signal: int, shift: float, q: float, offset: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FDP, #false and #selected per replicate: nulls i.i.d. Laplace (symmetric), signals shifted."""
    rng = np.random.default_rng(seed)
    W_all = rng.laplace(size=(n_rep, p))
    W_all[:, :n_signal] += shift
    null = np.arange(p) >= n_signal
    sel = np.array([knockoff_select(W, q, offset) for W in W_all])
    V = (sel & null).sum(axis=1)
    R = sel.sum(axis=1)
    return V / np.maximum(R, 1), V, R


@pytest.mark.parametrize("q", [0.1, 0.2])
def test_knockoff_plus_controls_fdr(q: float) -> None:
    fdp, _, R = _fdp_over_replicates(2000, 200, 30, 4.5, q, 1, seed=int(q * 100))
    margin = 3 * fdp.std() / np.sqrt(fdp.size)
    assert fdp.mean() <= q + margin
    assert R.mean() > 10  # the setting has power, so the bound is not vacuous
    assert fdp.mean() > q / 2  # and it uses most of the budget


@pytest.mark.parametrize("q", [0.1, 0.2])
def test_global_null_knockoff_plus_vs_knockoff(q: float) -> None:
    """All nulls: FDP = 1{anything selected}. knockoff+ keeps that rare; knockoff does not
    (it selects whenever the largest |W| is positive), yet its modified FDR holds."""
    fdp_plus, _, _ = _fdp_over_replicates(2000, 200, 0, 0.0, q, 1, seed=7)
    fdp_zero, V, R = _fdp_over_replicates(2000, 200, 0, 0.0, q, 0, seed=7)
    assert fdp_plus.mean() <= q + 3 * fdp_plus.std() / np.sqrt(2000)
    assert fdp_zero.mean() > 0.4  # ≥ P(top |W| positive) = 1/2, up to noise
    assert fdp_zero.mean() > 2 * q
    mfdr = V / (R + 1 / q)
    assert mfdr.mean() <= q + 3 * mfdr.std() / np.sqrt(2000)


def test_sparse_knockoff_exceeds_q_but_modified_fdr_holds() -> None:
    q = 0.1
    fdp, V, R = _fdp_over_replicates(2000, 200, 3, 3.0, q, 0, seed=11)
    assert fdp.mean() > q + 3 * fdp.std() / np.sqrt(fdp.size)
    mfdr = V / (R + 1 / q)
    assert mfdr.mean() <= q + 3 * mfdr.std() / np.sqrt(fdp.size)


@pytest.mark.parametrize("q", [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 1 / 3, 0.5, 1.0])
def test_minimum_selection_size_knockoff_plus(q: float) -> None:
    """Without negatives, knockoff+ selects iff at least ⌈1/q⌉ W are positive."""
    k = math.ceil(round(1 / q, 9))
    assert knockoff_threshold(np.r_[np.arange(1.0, k), np.zeros(5)], q) == math.inf
    assert knockoff_threshold(np.arange(1.0, k + 1), q) == 1.0
    if k > 1:
        msg = no_selection_message(np.arange(1.0, k), q, 1)
        assert f"smallest possible selection has {k} features" in msg
        assert f"only {k - 1} features have W > 0" in msg


def test_no_selection_message_cases() -> None:
    assert no_selection_message(W_HAND, 0.5, 1) == ""
    msg = no_selection_message(np.array([1.0, 2.0, 3.0]), 0.1, 1)
    assert "10 features" in msg and "only 3" in msg and "0.333" in msg
    msg = no_selection_message(np.array([-1.0, -2.0, 0.0]), 0.1, 0)
    assert "no feature beat its knockoff" in msg and "0 positive, 2 negative and 1 zero" in msg
    assert "no feature beat its knockoff" in no_selection_message(np.array([]), 0.2, 1)
    # enough positives for the +1, but the negatives push fdp̂ above q
    W = np.r_[np.arange(1.0, 21.0), -np.arange(1.5, 21.5)]
    msg = no_selection_message(W, 0.1, 1)
    assert "estimated FDP" in msg and "20 positive, 20 negative" in msg
    msg = no_selection_message(np.array([1.0, -5.0, 3.0]), 0.1, 0)
    assert "#{W ≤ −t} / #{W ≥ t}" in msg and "0.5" in msg


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5, float("nan"), "a", None])
def test_bad_level_raises(q: object) -> None:
    with pytest.raises(InputError):
        knockoff_threshold(W_HAND, q)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        no_selection_message(W_HAND, q)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "W", [np.array([1.0, np.nan]), np.array([np.inf, 1.0]), np.ones((2, 2)), ["a", "b"]]
)
def test_bad_W_raises(W: object) -> None:
    for call in (
        lambda: knockoff_threshold(W, 0.1),  # type: ignore[arg-type]
        lambda: knockoff_select(W, 0.1),  # type: ignore[arg-type]
        lambda: knockoff_qvalues(W),  # type: ignore[arg-type]
    ):
        with pytest.raises(InputError):
            call()


@pytest.mark.parametrize("offset", [2, -1, True, 0.5])
def test_bad_offset_raises(offset: object) -> None:
    with pytest.raises(InputError):
        knockoff_threshold(W_HAND, 0.1, offset)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        knockoff_qvalues(W_HAND, offset)  # type: ignore[arg-type]
