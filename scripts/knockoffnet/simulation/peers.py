"""Peer knockoff statistics on the same data and knockoffs as the pipeline: random forest,
knockpy's lasso, DeepPINK and masked likelihood ratio (MLR), LassoNet, and the latent-score
oracle.

Every peer fits [X, X~] with a random half of the pairs exchanged and exchanges the
importances back, so a peer that prefers a column position cannot favour originals: W keeps
the flip-sign property by construction.

With κ > 1 knockoff copies (``Xk`` holds the κ copies side by side, as the pipeline stores
them) the random forest, LassoNet and the oracle fit all κ + 1 columns of each feature, in
an order drawn at random per feature, and return the (κ + 1, p) importances (row 0 the
features'); :func:`peer_masks` turns them into the multi-knockoff statistic and threshold,
as for the networks. knockpy's statistics take one knockoff matrix and see the first copy.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from knockoffnet.errors import InputError
from knockoffnet.filters import knockoff_threshold
from knockoffnet.groups import group_sum
from knockoffnet.statistics import multi_statistic

PEERS = ("rf", "lasso", "deeppink", "mlr", "lassonet", "oracle")
PEER_FILTER = {peer: f"peer-{peer}" for peer in PEERS}


def _random_swap(rng: np.random.Generator, p: int) -> np.ndarray:
    return rng.random(p) < 0.5


def _copies(X: np.ndarray, Xk: np.ndarray) -> int:
    """κ, the knockoff copies side by side in ``Xk``."""
    n, p = X.shape
    if Xk.shape[0] != n or Xk.shape[1] % p or Xk.shape[1] == 0:
        raise InputError(f"knockoffs of shape {Xk.shape} do not hold whole copies of X {X.shape}")
    return Xk.shape[1] // p


def _mixed_copies(
    X: np.ndarray, Xk: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The κ + 1 columns of each feature in a random order, and that order.

    ``order[b, j]`` is the copy (0 = the feature itself) that block b of the returned design
    holds for feature j. With one copy this is a random swap of each pair (the same draw as
    before multiple copies existed, so single-copy peers are unchanged bit for bit)."""
    p = X.shape[1]
    kappa = _copies(X, Xk)
    if kappa == 1:
        swap = _random_swap(rng, p)
        order = np.vstack([swap, ~swap]).astype(np.int64)
    else:
        order = rng.permuted(np.repeat(np.arange(kappa + 1)[:, None], p, axis=1), axis=0)
    every = np.stack([X, *np.split(Xk, kappa, axis=1)])  # (κ+1, n, p)
    blocks = np.take_along_axis(every, order[:, None, :], axis=0)
    return order, np.hstack(list(blocks))


def _unmix(importance: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Importances back in copy order: (κ+1, p), row 0 the features'. One copy: W = z − z~
    directly (a 1-D statistic, as :func:`peer_masks` expects of single-copy peers)."""
    blocks = np.asarray(importance, dtype=np.float64).reshape(order.shape)
    Z = np.empty_like(blocks)
    np.put_along_axis(Z, order, blocks, axis=0)
    return Z[0] - Z[1] if Z.shape[0] == 2 else Z


def rf_statistic(
    X: np.ndarray,
    Xk: np.ndarray,
    y: np.ndarray,
    task: str,
    seed: int,
    trees: int = 500,
    threads: int = 1,
) -> np.ndarray:
    """Random-forest knockoff statistic W_j = MDI(x_j) − MDI(x~_j) from one forest on [X, X~].

    Each pair (x_j, x~_j) is swapped at random before fitting and the importances swapped
    back, so any positional preference of the forest cannot favour originals: W keeps the
    flip-sign property by construction. With κ > 1 copies: the (κ + 1, p) importances of one
    forest on every copy (module docstring).
    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    rng = np.random.Generator(np.random.PCG64(seed))
    order, U = _mixed_copies(X, Xk, rng)
    model_cls = RandomForestRegressor if task == "regression" else RandomForestClassifier
    model = model_cls(
        n_estimators=trees,
        max_features="sqrt",
        min_samples_leaf=5,
        random_state=int(rng.integers(2**31 - 1)),
        n_jobs=threads,
    )
    model.fit(U, y)
    return _unmix(model.feature_importances_, order)


def knockpy_statistic(
    name: str, X: np.ndarray, Xk: np.ndarray, y: np.ndarray, task: str, seed: int, epochs: int = 50
) -> np.ndarray:
    """knockpy's lasso, DeepPINK or MLR statistic on our data and our knockoffs.

    knockpy picks the lasso family itself (logistic for two classes, Gaussian otherwise, so a
    multiclass outcome is regressed on its class codes). DeepPINK always uses its Gaussian
    (squared-error) loss on the codes: knockpy 1.3.5's binomial branch passes a 2-D target to
    torch's cross-entropy and fails. MLR is Spector & Fithian's masked likelihood ratio under
    a spike-and-slab linear model (knockpy's defaults: 5 Gibbs chains of 2,000 draws), probit
    for two classes and Gaussian on the codes otherwise; it is asymptotically the most
    powerful statistic when that model holds, so on the near-linear teacher designs it is the
    strongest peer that, like the networks, sees only the labels. NumPy's and torch's global
    RNGs, and C's rand() that MLR's sampler draws from, are seeded first, so a peer's W is
    reproducible. Raises ImportError when knockpy is missing.
    """
    import knockpy.knockoff_stats as ks

    np.random.seed(seed % 2**32)  # noqa: NPY002 - knockpy draws from NumPy's global RNG
    if name == "lasso":
        return np.asarray(ks.LassoStatistic().fit(X, Xk, y), dtype=float)
    if name == "deeppink":
        import torch

        torch.manual_seed(seed)
        stat = ks.DeepPinkStatistic()
        target = np.asarray(y, dtype=float)
        W = stat.fit(
            X, Xk, target, y_dist="gaussian", train_kwargs={"verbose": False, "num_epochs": epochs}
        )
        return np.asarray(W, dtype=float)
    if name == "mlr":
        from knockpy.mlr import MLR_Spikeslab

        # knockpy's Gibbs sampler draws from C's rand() besides NumPy: seed both
        ctypes.CDLL(None).srand(seed % 2**31)
        groups = np.arange(1, X.shape[1] + 1)  # one group per feature: feature-level MLR
        return np.asarray(MLR_Spikeslab().fit(X, Xk, np.asarray(y), groups=groups), dtype=float)
    raise InputError(f"unknown knockpy peer {name!r}; choose lasso, deeppink or mlr")


def lassonet_statistic(
    X: np.ndarray, Xk: np.ndarray, y: np.ndarray, task: str, seed: int, hidden: int = 64
) -> np.ndarray:
    """LassoNet (Lemhadri et al. 2021) on [X, X~]: W_j = importance(x_j) − importance(x~_j),
    its ``feature_importances_`` being the λ at which a feature leaves the path.

    The package's defaults except a 64-unit hidden layer (ours) and a path multiplier of 1.05
    instead of 1.02 (2.5× fewer λ; the default costs minutes per replicate). Raises
    ImportError without the ``baselines`` extra.
    """
    import torch
    from lassonet import LassoNetClassifier, LassoNetRegressor

    rng = np.random.Generator(np.random.PCG64(seed))
    order, U = _mixed_copies(X, Xk, rng)
    model_cls = LassoNetRegressor if task == "regression" else LassoNetClassifier
    state = int(rng.integers(2**31 - 1))
    torch.manual_seed(state)
    model = model_cls(
        hidden_dims=(hidden,),
        path_multiplier=1.05,
        val_size=0.2,
        verbose=0,
        random_state=state,
        torch_seed=state,
    )
    target = y.astype(np.float32) if task == "regression" else y.astype(np.int64)
    model.path(U.astype(np.float32), target, return_state_dicts=False)
    return _unmix(np.asarray(model.feature_importances_, dtype=np.float64), order)


def oracle_statistic(X: np.ndarray, Xk: np.ndarray, latent: np.ndarray, seed: int) -> np.ndarray:
    """The oracle: a cross-validated lasso of the generator's noise-free *latent score* (what
    the labels were cut from) on [X, X~], W_j = |β_j| − |β~_j|.

    It sees more than any method that only has the labels, on the same knockoffs, so on a
    design whose latent is close to linear (the teacher designs) its power is the ceiling
    the filters are measured against. It says nothing where effects are non-monotone.
    """
    from sklearn.linear_model import LassoCV

    rng = np.random.Generator(np.random.PCG64(seed))
    order, U = _mixed_copies(X, Xk, rng)
    model = LassoCV(cv=5, random_state=int(rng.integers(2**31 - 1)), max_iter=5000)
    model.fit(U, latent)
    return _unmix(np.abs(model.coef_), order)


def peer_masks(
    W: np.ndarray,
    filter_name: str,
    q_grid: Iterable[float],
    offset: int = 1,
    labels: np.ndarray | None = None,
) -> dict[tuple[str, float], np.ndarray]:
    """Knockoff(+) selection of a peer's W at every q, with the pipeline's own threshold; a
    mask over features.

    With ``labels`` (each feature's group, 0..G−1: the run drew group knockoffs) the peer is
    a group filter: only whole groups are exchangeable with their knockoffs, so a per-feature
    threshold has no FDR guarantee there. W_g = Σ_{j∈g} W_j (antisymmetric under a group
    swap, as every peer's W_j is a difference of a feature's and its knockoff's importance)
    is thresholded and each selected group selects all of its members.

    A 2-D ``W`` is a multi-copy peer's (κ + 1, p) importances: summed per group first, then
    the multi-knockoff statistic and threshold (negatives ÷ κ), as for the networks.
    """
    W = np.asarray(W, dtype=np.float64)
    copies = 1
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        W = group_sum(W, labels)
    if W.ndim == 2:
        copies = W.shape[0] - 1
        W = multi_statistic(W[0], W[1:])
    keep = (lambda mask: mask) if labels is None else (lambda mask: mask[labels])
    return {
        (filter_name, float(q)): keep(W >= knockoff_threshold(W, float(q), offset, copies))
        for q in q_grid
    }


def peer_statistics(
    peers: Iterable[str],
    X: np.ndarray,
    Xk: np.ndarray,
    y: np.ndarray,
    task: str,
    seed: int,
    options: dict[str, Any],
    log: logging.Logger,
    latent: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """W of each requested peer ((κ + 1, p) importances for a multi-copy peer on κ > 1
    copies, module docstring). A knockpy or LassoNet peer is skipped, with a logged reason,
    when its package is not installed (the optional `baselines` extra); the oracle when the
    design has no latent score. Each peer's time is logged: their cost varies by minutes
    between replicates and dominates some study jobs."""
    out = {}
    for peer in peers:
        start = time.perf_counter()
        try:
            if peer == "rf":
                W = rf_statistic(
                    X, Xk, y, task, seed, options.get("rf_trees", 500), options.get("threads", 1)
                )
            elif peer == "lassonet":
                W = lassonet_statistic(X, Xk, y, task, seed)
            elif peer == "oracle":
                if latent is None or not np.isfinite(latent).all():
                    log.info("peer oracle skipped: this design has no latent score")
                    continue
                W = oracle_statistic(X, Xk, latent, seed)
            else:  # knockpy takes one knockoff matrix: the first copy
                W = knockpy_statistic(
                    peer, X, Xk[:, : X.shape[1]], y, task, seed, options.get("deeppink_epochs", 50)
                )
        except ImportError as err:
            log.warning(
                "peer %s skipped: its package is not importable (%s); install the `baselines` "
                "extra (pip install -e '.[baselines]') to score it",
                peer,
                err,
            )
            continue
        out[PEER_FILTER[peer]] = W
        log.info("peer %s: %.1f s", peer, time.perf_counter() - start)
    return out
