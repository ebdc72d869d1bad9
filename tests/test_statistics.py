"""One Layer and Multiple Layers knockoff statistics."""

from __future__ import annotations

import numpy as np
import pytest

from knockoffnet.errors import InputError
from knockoffnet.statistics import multi_layer, one_layer


def _swap(M: np.ndarray, p: int, js: np.ndarray) -> np.ndarray:
    """Swap input columns j ↔ j+p for j in js (what exchanging x_j and x~_j does)."""
    out = M.copy()
    out[:, js], out[:, js + p] = M[:, js + p], M[:, js]
    return out


def test_one_layer_hand_computed() -> None:
    # columns: x1 x2 x3 | x~1 x~2 x~3 ; z = [4, 1, 5], z~ = [2, 3, 5]
    Z0 = np.array([[1.0, 0.0, 2.0, 2.0, 0.0, 5.0], [3.0, 1.0, 3.0, 0.0, 3.0, 0.0]])
    z, zk, W = one_layer(Z0, 3)
    np.testing.assert_array_equal(z, [4, 1, 5])
    np.testing.assert_array_equal(zk, [2, 3, 5])
    np.testing.assert_array_equal(W, [4, -3, 0])  # the tie (5 vs 5) is 0, not +5


def test_one_layer_never_entered_pair_is_zero() -> None:
    Z0 = np.zeros((4, 6))
    Z0[:, 0] = 1.0
    _, _, W = one_layer(Z0, 3)
    np.testing.assert_array_equal(W, [4, 0, 0])


def test_one_layer_flip_sign_exact() -> None:
    rng = np.random.default_rng(0)
    p = 40
    for rep in range(20):
        Z0 = rng.integers(0, 3, size=(5, 2 * p)).astype(float)  # many ties
        if rep % 2:
            Z0 = rng.exponential(size=(5, 2 * p)) * (rng.random((5, 2 * p)) < 0.3)
        js = np.flatnonzero(rng.random(p) < 0.5)
        _, _, W = one_layer(Z0, p)
        z, zk, W_sw = one_layer(_swap(Z0, p, js), p)
        flip = np.ones(p)
        flip[js] = -1
        np.testing.assert_array_equal(W_sw, flip * W)
        assert np.all(np.abs(W) == np.maximum(z, zk) * (z != zk))


# Hand example (p = 2, h1 = 2, K = 1): θ⁽¹⁾θ⁽⁰⁾ = [2, 3, −1, −2]; z = [1, 3], z~ = [3, 1]
THETA0 = np.array([[1.0, 2.0, 0.0, -1.0], [0.0, 1.0, 1.0, 0.0]])
THETA1 = np.array([[2.0, -1.0]])
Z0 = np.array([[1.0, 2.0, 0.0, 1.0], [0.0, 1.0, 3.0, 0.0]])


def test_multi_layer_hand_computed() -> None:
    g, gk, W, w = multi_layer(Z0, [THETA0, THETA1], 2)
    np.testing.assert_array_equal(w, [2, 3, -1, -2])
    np.testing.assert_array_equal(g, [2, 9])  # z·w[:p]
    np.testing.assert_array_equal(gk, [-3, -2])  # z~·w[p:]
    np.testing.assert_array_equal(W, [4 - 9, 81 - 4])


def test_multi_layer_multiclass_sums_outputs() -> None:
    theta1 = np.array([[2.0, -1.0], [1.0, 1.0]])  # rows [2,3,-1,-2] and [1,3,1,-1]
    _, _, W, w = multi_layer(Z0, [THETA0, theta1], 2)
    np.testing.assert_array_equal(w, [3, 6, 0, -3])
    np.testing.assert_array_equal(W, [9 - 0, 324 - 9])


def test_multi_layer_single_layer_product_is_theta0() -> None:
    _, _, _, w = multi_layer(Z0, [THETA0], 2)
    np.testing.assert_array_equal(w, THETA0.sum(axis=0))


def test_multi_layer_near_zero_layer_is_min_max_normalised() -> None:
    tiny = np.array([[1e-5, -1e-5]])  # max |θ| ≤ 1e-4 → min-max → [[1, 0]]
    _, _, W, w = multi_layer(Z0, [THETA0, tiny], 2)
    np.testing.assert_array_equal(w, THETA0[0])  # [1, 2, 0, −1]
    np.testing.assert_array_equal(W, [1 - 0, 36 - 1])
    # the boundary max |θ| == tol is normalised; just above it is used as is
    _, _, _, w_eq = multi_layer(Z0, [THETA0, np.array([[1e-4, 0.0]])], 2)
    np.testing.assert_array_equal(w_eq, THETA0[0])
    _, _, _, w_raw = multi_layer(Z0, [THETA0, tiny], 2, tol=1e-6)
    np.testing.assert_allclose(w_raw, 1e-5 * (THETA0[0] - THETA0[1]))


def test_multi_layer_all_zero_layer_becomes_ones() -> None:
    _, _, W, w = multi_layer(Z0, [THETA0, np.zeros((1, 2))], 2)
    np.testing.assert_array_equal(w, THETA0.sum(axis=0))  # [1, 3, 1, −1], not 0
    np.testing.assert_array_equal(W, [1 - 9, 81 - 1])
    _, _, W0, w0 = multi_layer(Z0, [np.zeros((2, 4)), THETA1], 2)
    np.testing.assert_array_equal(w0, [1, 1, 1, 1])
    np.testing.assert_array_equal(W0, [1 - 9, 9 - 1])  # reduces to z² − z~²


def test_multi_layer_matches_explicit_product() -> None:
    rng = np.random.default_rng(3)
    p, h = 5, [10, 7, 4, 3]
    thetas = [rng.normal(size=(h[0], 2 * p))] + [
        rng.normal(size=(h[i + 1], h[i])) for i in range(3)
    ]
    Z = rng.exponential(size=(h[0], 2 * p))
    g, gk, W, w = multi_layer(Z, thetas, p)
    w_ref = np.linalg.multi_dot(thetas[::-1]).T.sum(axis=1)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12)
    z = Z.sum(axis=0)
    np.testing.assert_allclose(g, z[:p] * w_ref[:p], rtol=1e-12)
    np.testing.assert_allclose(gk, z[p:] * w_ref[p:], rtol=1e-12)
    np.testing.assert_allclose(W, g**2 - gk**2, rtol=1e-12)


@pytest.mark.parametrize("null_first", [False, True])
def test_multi_layer_flip_sign_exact(null_first: bool) -> None:
    rng = np.random.default_rng(4)
    p = 30
    for _ in range(10):
        theta0 = rng.normal(size=(8, 2 * p)) * (rng.random((8, 2 * p)) < 0.5)
        if null_first:  # exercises the global min-max map on the swapped layer
            theta0 *= 1e-6
        thetas = [theta0, rng.normal(size=(6, 8)), 1e-7 * rng.normal(size=(2, 6))]
        Z = rng.integers(0, 3, size=(8, 2 * p)).astype(float)
        js = np.flatnonzero(rng.random(p) < 0.5)
        g, _, W, _ = multi_layer(Z, thetas, p)
        g_s, gk_s, W_s, _ = multi_layer(_swap(Z, p, js), [_swap(theta0, p, js), *thetas[1:]], p)
        flip = np.ones(p)
        flip[js] = -1
        np.testing.assert_array_equal(W_s, flip * W)
        np.testing.assert_array_equal(np.where(flip < 0, gk_s, g_s), g)


@pytest.mark.parametrize(
    ("Z", "p"),
    [
        (np.ones((2, 5)), 2),  # not 2p columns
        (np.ones((2, 4)).T, 2),  # transposed (in, out)
        (np.ones(4), 2),  # 1-D
        (np.zeros((0, 4)), 2),  # no hidden units
        (np.array([[1.0, np.nan, 0.0, 1.0]]), 2),
        (np.array([[1.0, -1.0, 0.0, 1.0]]), 2),  # λ values are ≥ 0
        (np.ones((2, 4)), 0),
        (np.ones((2, 4)), 2.0),
    ],
)
def test_bad_z_raises(Z: np.ndarray, p: object) -> None:
    with pytest.raises(InputError):
        one_layer(Z, p)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        multi_layer(Z, [np.ones((2, 4))], p)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("weights", "tol"),
    [
        ([], 1e-4),
        ([THETA0.T, THETA1], 1e-4),  # first layer not (h1, 2p)
        ([THETA0, np.ones((1, 3))], 1e-4),  # does not chain
        ([THETA0, THETA1.T], 1e-4),  # (in, out) instead of (out, in)
        ([THETA0, np.array([[np.inf, 1.0]])], 1e-4),
        ([THETA0, THETA1], -1.0),
        ([THETA0, THETA1], float("nan")),
    ],
)
def test_bad_weights_raise(weights: list[np.ndarray], tol: float) -> None:
    with pytest.raises(InputError):
        multi_layer(Z0, weights, 2, tol=tol)
