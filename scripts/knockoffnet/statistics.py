"""Knockoff statistics W from the λ-path importances Z (paper §3.1-3.2, Algorithms 1-2).

Z⁽⁰⁾ has shape (h1, 2p) (out × in): Z0[d, j] is the largest λ at which the weight from input
j to hidden unit d is still non-zero; column j is x_j, column j+p is x~_j.

Knockoff validity needs the *flip-sign* property: swapping x_j with x~_j (columns j and
j+p of Z0 and of θ⁽⁰⁾) must turn W_j into −W_j and leave every other W_k unchanged. Both
statistics here satisfy it exactly, including in floating point.
"""

from __future__ import annotations

import numpy as np

from knockoffnet.errors import InputError


def _as_matrix(x: object, name: str) -> np.ndarray:
    """Finite float64 matrix; NaN would make W silently 0 or NaN and corrupt the counts."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric: {exc}") from exc
    if a.ndim != 2 or 0 in a.shape:
        raise InputError(f"{name} must be a non-empty 2-D (out × in) array, got shape {a.shape}")
    bad = np.count_nonzero(~np.isfinite(a))
    if bad:
        raise InputError(f"{name} has {bad} NaN or infinite value(s); they must be finite")
    return a


def _check_z(Z0: object, p: int) -> np.ndarray:
    """Z0 must be (h1, 2p) and non-negative (its entries are λ values)."""
    if isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 1:
        raise InputError(f"p must be a positive integer, got {p!r}")
    Z = _as_matrix(Z0, "Z0")
    if Z.shape[1] != 2 * p:
        raise InputError(
            f"Z0 must have 2p = {2 * p} columns ([X, X~]), got shape {Z.shape}; "
            "the convention is (h1, 2p) = (out, in)"
        )
    if np.any(Z < 0):
        raise InputError("Z0 holds λ values (largest λ with a non-zero weight) and must be ≥ 0")
    return Z


def one_layer(Z0: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Layer Filter statistic: W_j = max(z_j, z~_j) · sign(z_j − z~_j), ties → 0.

    z_j = Σ_d Z0[d, j] and z~_j = Σ_d Z0[d, j+p]. The paper writes +1 for z_j ≥ z~_j (ties to
    the original). Ties are common (a feature and its knockoff that never enter both have
    z = 0), and tie → +max breaks the flip-sign property: swapping x_j and x~_j leaves a tied
    W_j positive instead of negating it, so null ties would all count as discoveries and
    never as the negatives that estimate false ones. W_j = 0 is its own negation, and
    zero W are never selected. Returns (z, z_knockoff, W), each of shape (p,).
    """
    Z = _check_z(Z0, p)
    col = Z.sum(axis=0)
    z, z_knockoff = col[:p], col[p:]
    W = np.maximum(z, z_knockoff) * np.sign(z - z_knockoff)
    return z, z_knockoff, W


def _normalise_null_layer(theta: np.ndarray, tol: float) -> np.ndarray:
    """Min-max normalise a layer whose weights are all ≈ 0 (max |θ| ≤ tol), as the paper does,
    so that one dead layer does not zero the whole product.

    A constant layer (e.g. exactly all zero) has no range; it becomes all ones, which passes
    every upstream path on with equal weight. Both maps act on the whole matrix through its
    global min/max, so permuting columns (swapping x_j ↔ x~_j) commutes with them.
    """
    if np.max(np.abs(theta)) > tol:
        return theta
    lo, hi = theta.min(), theta.max()
    if hi > lo:
        return (theta - lo) / (hi - lo)
    return np.ones_like(theta)


def multi_layer(
    Z0: np.ndarray, weights: list[np.ndarray], p: int, tol: float = 1e-4
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Multiple Layers Filter statistic: W_j = g_j² − g~_j² with g_j = z_j·w_j, g~_j = z~_j·w_{j+p}.

    w = (θ⁽ᴸ⁾ ⋯ θ⁽⁰⁾)ᵀ summed over the K output units (K = 1 for binary/regression) is the
    linearised end-to-end weight of each of the 2p inputs, so the statistic uses the whole
    network, not just the first layer. ``weights`` = [θ⁽⁰⁾, …, θ⁽ᴸ⁾], each (out, in) and
    chained, θ⁽⁰⁾ of the same shape as Z0 and θ⁽ᴸ⁾ of shape (K, h_L). Layers with max |θ| ≤ tol are replaced
    by :func:`_normalise_null_layer` first. Returns (g, g_knockoff, W, w), w of shape (2p,).
    """
    Z = _check_z(Z0, p)
    try:
        tol = float(tol)
    except (TypeError, ValueError) as exc:
        raise InputError(f"tol must be a non-negative number, got {tol!r}") from exc
    if not tol >= 0 or not np.isfinite(tol):
        raise InputError(f"tol must be a finite non-negative number, got {tol}")
    if len(weights) == 0:
        raise InputError("weights must hold at least the first-layer matrix θ⁽⁰⁾")
    thetas = [_as_matrix(t, f"weights[{i}]") for i, t in enumerate(weights)]
    if thetas[0].shape != Z.shape:
        raise InputError(
            f"weights[0] must have the shape of Z0 {Z.shape} (h1, 2p), got {thetas[0].shape}"
        )
    for i in range(1, len(thetas)):
        if thetas[i].shape[1] != thetas[i - 1].shape[0]:
            raise InputError(
                f"weights[{i}] has shape {thetas[i].shape} but must have "
                f"{thetas[i - 1].shape[0]} columns (the outputs of weights[{i - 1}]); "
                "the convention is (out, in)"
            )
    product = _normalise_null_layer(thetas[0], tol)
    for theta in thetas[1:]:  # loop over layers, not features
        product = _normalise_null_layer(theta, tol) @ product
    w = product.sum(axis=0)  # (K, 2p) → (2p,)
    col = Z.sum(axis=0)
    g = col[:p] * w[:p]
    g_knockoff = col[p:] * w[p:]
    W = g**2 - g_knockoff**2
    return g, g_knockoff, W, w


PAIR_FORMS = ("difference", "signed_max", "squares")


def pair_statistic(z: np.ndarray, z_knockoff: np.ndarray, form: str) -> np.ndarray:
    """W from a feature's and its knockoff's importance, antisymmetric in the pair.

    ``difference`` z − z~ (importance statistics: gradient, group norm); ``signed_max``
    max(z, z~)·sign(z − z~) (the One Layer form, ties → 0); ``squares`` z² − z~² (the
    Multiple Layers form). Each turns into −W when z and z~ trade places, so any importance
    computed column by column gives a valid knockoff statistic.

    With κ > 1 knockoff copies ``z_knockoff`` is (κ, p) and only ``difference`` applies:
    see :func:`multi_statistic`.
    """
    z = np.asarray(z, dtype=np.float64)
    zk = np.asarray(z_knockoff, dtype=np.float64)
    if zk.ndim == 2 and zk.shape[0] == 1:
        zk = zk[0]
    if zk.ndim == 2:
        if form != "difference":
            raise InputError(
                f"the {form} statistic is defined for one knockoff copy; with knockoffs.copies "
                "> 1 use selection.statistic: importance"
            )
        return multi_statistic(z, zk)
    if z.shape != zk.shape or z.ndim != 1:
        raise InputError(f"z and z_knockoff must be 1-D of equal length, got {z.shape}, {zk.shape}")
    if not (np.isfinite(z).all() and np.isfinite(zk).all()):
        raise InputError("importances must be finite")
    if form == "difference":
        return z - zk
    if form == "signed_max":
        return np.maximum(z, zk) * np.sign(z - zk)
    if form == "squares":
        return z**2 - zk**2
    raise InputError(f"unknown statistic form {form!r}; choose one of {', '.join(PAIR_FORMS)}")


def multi_statistic(z: np.ndarray, z_knockoffs: np.ndarray) -> np.ndarray:
    """Signed multi-knockoff statistic: W_j = ±τ_j, + when the feature beats all its copies.

    Gimenez & Zou (2019): among the κ+1 importances of feature j and its κ copies, κ_j is the
    index of the largest (0 = the feature) and τ_j = largest − median. W_j = τ_j if κ_j = 0,
    −τ_j otherwise, and 0 when the largest is shared (no winner: counting a tie for the
    feature would bias it, as for the One Layer ties). Under the null the κ+1 importances
    are exchangeable, so a null W_j is positive with probability 1/(κ+1) and negative with
    κ/(κ+1) whatever |W_j|: the filter counts negatives ÷ κ (``copies`` in
    :mod:`knockoffnet.filters`). For κ = 1 this is (z − z~)/2, the ``difference`` form
    halved, which selects the same features.
    """
    z = np.asarray(z, dtype=np.float64)
    zk = np.asarray(z_knockoffs, dtype=np.float64)
    if z.ndim != 1 or zk.ndim != 2 or zk.shape[1] != z.shape[0]:
        raise InputError(
            f"z must be (p,) and the copies' importances (κ, p); got {z.shape}, {zk.shape}"
        )
    if not (np.isfinite(z).all() and np.isfinite(zk).all()):
        raise InputError("importances must be finite")
    every = np.vstack([z, zk])  # (κ+1, p)
    top = every.max(axis=0)
    tau = top - np.median(every, axis=0)
    winner = (z == top) & ((zk == top).sum(axis=0) == 0)
    loser = z < top
    return np.where(winner, tau, np.where(loser, -tau, 0.0))
