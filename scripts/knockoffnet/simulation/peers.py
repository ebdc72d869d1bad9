"""Peer knockoff statistics on the same data and knockoffs as the pipeline: random forest,
knockpy's lasso and DeepPINK, LassoNet, and the latent-score oracle.

Every peer fits [X, X~] with a random half of the pairs exchanged and exchanges the
importances back, so a peer that prefers a column position cannot favour originals: W keeps
the flip-sign property by construction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from knockoffnet.errors import InputError
from knockoffnet.filters import knockoff_threshold
from knockoffnet.groups import group_sum

PEERS = ("rf", "lasso", "deeppink", "lassonet", "oracle")
PEER_FILTER = {peer: f"peer-{peer}" for peer in PEERS}


def _random_swap(rng: np.random.Generator, p: int) -> np.ndarray:
    return rng.random(p) < 0.5


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
    flip-sign property by construction.
    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    rng = np.random.Generator(np.random.PCG64(seed))
    swap, U = _swapped_pairs(X, Xk, rng)
    model_cls = RandomForestRegressor if task == "regression" else RandomForestClassifier
    model = model_cls(
        n_estimators=trees,
        max_features="sqrt",
        min_samples_leaf=5,
        random_state=int(rng.integers(2**31 - 1)),
        n_jobs=threads,
    )
    model.fit(U, y)
    return _unswap(model.feature_importances_, swap)


def knockpy_statistic(
    name: str, X: np.ndarray, Xk: np.ndarray, y: np.ndarray, task: str, seed: int, epochs: int = 50
) -> np.ndarray:
    """knockpy's lasso or DeepPINK statistic on our data and our knockoffs.

    knockpy picks the lasso family itself (logistic for two classes, Gaussian otherwise, so a
    multiclass outcome is regressed on its class codes). DeepPINK always uses its Gaussian
    (squared-error) loss on the codes: knockpy 1.3.5's binomial branch passes a 2-D target to
    torch's cross-entropy and fails. NumPy's and torch's global RNGs, which knockpy uses
    internally, are seeded first. Raises ImportError when knockpy is missing.
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
    raise InputError(f"unknown knockpy peer {name!r}; choose lasso or deeppink")


def _swapped_pairs(X: np.ndarray, Xk: np.ndarray, rng: np.random.Generator):
    """[X, X~] with a random half of the pairs exchanged, and how to exchange them back: a
    peer that prefers one column position cannot then favour originals (flip-sign holds)."""
    swap = _random_swap(rng, X.shape[1])
    return swap, np.hstack([np.where(swap, Xk, X), np.where(swap, X, Xk)])


def _unswap(importance: np.ndarray, swap: np.ndarray) -> np.ndarray:
    p = swap.size
    z = np.where(swap, importance[p:], importance[:p])
    zk = np.where(swap, importance[:p], importance[p:])
    return z - zk


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
    swap, U = _swapped_pairs(X, Xk, rng)
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
    return _unswap(np.asarray(model.feature_importances_, dtype=np.float64), swap)


def oracle_statistic(X: np.ndarray, Xk: np.ndarray, latent: np.ndarray, seed: int) -> np.ndarray:
    """The oracle: a cross-validated lasso of the generator's noise-free *latent score* (what
    the labels were cut from) on [X, X~], W_j = |β_j| − |β~_j|.

    It sees more than any method that only has the labels, on the same knockoffs, so on a
    design whose latent is close to linear (the teacher designs) its power is the ceiling
    the filters are measured against. It says nothing where effects are non-monotone.
    """
    from sklearn.linear_model import LassoCV

    rng = np.random.Generator(np.random.PCG64(seed))
    swap, U = _swapped_pairs(X, Xk, rng)
    model = LassoCV(cv=5, random_state=int(rng.integers(2**31 - 1)), max_iter=5000)
    model.fit(U, latent)
    return _unswap(np.abs(model.coef_), swap)


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
    """
    if labels is None:
        return {
            (filter_name, float(q)): W >= knockoff_threshold(W, float(q), offset) for q in q_grid
        }
    labels = np.asarray(labels, dtype=np.int64)
    Wg = group_sum(W, labels)
    return {
        (filter_name, float(q)): (Wg >= knockoff_threshold(Wg, float(q), offset))[labels]
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
    """W of each requested peer. A knockpy or LassoNet peer is skipped, with a logged reason,
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
            else:
                W = knockpy_statistic(
                    peer, X, Xk, y, task, seed, options.get("deeppink_epochs", 50)
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
