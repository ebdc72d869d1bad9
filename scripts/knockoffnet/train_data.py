"""The rows a fit trains and validates on: the data checked at the boundary, the seed's
stratified split (shared by the dense fit, the grid and every λ of a seed, so no validation
row is ever trained on) and the split's rows as tensors on the device for the length of a fit.

A quantitative outcome is standardised inside a fit (``training.outcome_scale``): the
tensors hold (y − mean) / sd of the training split, every start network is mapped into those
units and every returned one back (:func:`to_fit_units`, :func:`to_outcome_units`), so the
networks, losses and effects a fit hands out are in the outcome's units while the step
sizes, λ grid and early stopping see an outcome of variance 1 on every cohort.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from knockoffnet.errors import InputError
from knockoffnet.moments import all_finite
from knockoffnet.network import Net, flush_denormals
from knockoffnet.train_config import Log, TrainConfig, resolve_device


def _check_data(U: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Validate the design and response; returns float32 U and y (int64 codes or float32)."""
    U = np.asarray(U)
    y = np.asarray(y)
    if U.ndim != 2 or U.shape[0] < 2 or U.shape[1] < 1:
        raise InputError(f"U must be a 2-D array (n rows, 2p columns), got shape {U.shape}")
    if not np.issubdtype(U.dtype, np.number) or not all_finite(U):
        raise InputError("U (features and knockoffs) must be numeric with no NaN/inf values")
    if y.ndim != 1 or y.shape[0] != U.shape[0]:
        raise InputError(f"y must be 1-D with one value per row of U ({U.shape[0]}), got {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or not np.isfinite(y).all():
        raise InputError("y must be numeric with no NaN/inf values")
    if cfg.task == "regression":
        return U.astype(np.float32, copy=False), y.astype(np.float32)
    codes = y.astype(np.int64)
    if not np.array_equal(codes, y) or codes.min() < 0 or codes.max() >= cfg.n_classes:
        raise InputError(
            f"y must hold integer class codes 0..{cfg.n_classes - 1} for task {cfg.task!r}"
        )
    if np.unique(codes).size < 2:
        raise InputError("y holds a single class; classification needs at least two")
    return U.astype(np.float32, copy=False), codes


def _seeds(seed: int) -> tuple[int, int, int]:
    """Independent streams for split, init and shuffling, all derived from one seed."""
    if int(seed) < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed}")
    a, b, c = np.random.SeedSequence(int(seed)).generate_state(3, dtype=np.uint32)
    return int(a), int(b), int(c)


def split_indices(y: np.ndarray, cfg: TrainConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices (sorted), fixed per seed; stratified by class.

    Stratification keeps the class balance of the early-stopping signal equal to the data's;
    every class present must keep at least one row on each side. The dense fit, the grid
    and every λ of a seed share this split, so no validation row is ever trained on.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(_seeds(seed)[0])
    if cfg.task == "regression":
        groups = [np.arange(y.shape[0])]
    else:
        codes = y.astype(np.int64)
        groups = [np.flatnonzero(codes == c) for c in np.unique(codes)]
    val = []
    for g in groups:
        n_val = max(1, round(cfg.val_fraction * g.size))
        if g.size - n_val < 1:
            what = "the cohort" if cfg.task == "regression" else f"class code {y[g[0]]}"
            raise InputError(
                f"{what} has {g.size} row(s): too few to keep rows in both the training and "
                f"the validation split (val_fraction={cfg.val_fraction}); each class needs >= 2 "
                "rows; merge or drop rare classes"
            )
        val.append(rng.permutation(g)[:n_val])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(y.shape[0]), val_idx)
    return train_idx, val_idx


@dataclass(frozen=True)
class TrainData:
    """Training/validation tensors on the device (m = training rows)."""

    u_train: torch.Tensor
    y_train: torch.Tensor
    u_val: torch.Tensor
    y_val: torch.Tensor
    # y_train / y_val = (y − y_shift) / y_scale (regression with outcome_scale standardised)
    y_shift: float = 0.0
    y_scale: float = 1.0

    @property
    def m(self) -> int:
        return int(self.u_train.shape[0])

    @property
    def d(self) -> int:
        return int(self.u_train.shape[1])


@contextmanager
def prepared(U, y, cfg: TrainConfig, seed: int, log: Log) -> Iterator[TrainData]:
    """The split's rows as tensors for the length of a fit.

    A float32 C-ordered U (what the workflow loads) is not copied: its rows are put in
    [training, validation] order in place, the tensors are views of it (on the CPU), and
    the original order is restored on exit — a large cohort's job then holds one copy of
    [X, X~] instead of two. Any other U is converted once, as before. The fit computes with
    subnormal floats flushed to zero (:func:`knockoffnet.network.flush_denormals`).
    """
    U32, yy = _check_data(U, y, cfg)
    device = resolve_device(cfg.device, log)
    torch.set_num_threads(int(cfg.threads))
    tr, va = split_indices(yy, cfg, seed)
    order = np.concatenate([tr, va])
    borrowed = U32 is U or np.shares_memory(U32, np.asarray(U))
    if not (U32.flags.c_contiguous and U32.flags.writeable):
        U32 = np.ascontiguousarray(U32)
        borrowed = False
    permute_rows_(U32, order)
    m = tr.size
    shift, scale = outcome_scaling(yy[tr], cfg)
    if (shift, scale) != (0.0, 1.0):
        yy = ((yy.astype(np.float64) - shift) / scale).astype(np.float32)
        log(f"outcome standardised in the fit: mean {shift:.4g}, sd {scale:.4g}")

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device)

    try:
        with flush_denormals():
            yield TrainData(put(U32[:m]), put(yy[tr]), put(U32[m:]), put(yy[va]), shift, scale)
    finally:
        if borrowed:
            inverse = np.empty_like(order)
            inverse[order] = np.arange(order.size)
            permute_rows_(U32, inverse)


def outcome_scaling(y_train: np.ndarray, cfg: TrainConfig) -> tuple[float, float]:
    """(shift, scale) a fit divides a quantitative outcome by: the training split's mean and
    sd (float64) with ``outcome_scale: standardised``, else (0, 1). The split is fixed per
    seed, so the dense fit, the grid and every λ of a seed use the same pair. A constant
    training outcome keeps scale 1 (the grid then stops with its own error)."""
    if cfg.task != "regression" or cfg.outcome_scale == "raw":
        return 0.0, 1.0
    y = np.asarray(y_train, dtype=np.float64)
    sd = float(y.std())
    return float(y.mean()), sd if sd > 0 and np.isfinite(sd) else 1.0


def to_fit_units(net: Net, data: TrainData) -> Net:
    """A network of the outcome's units as one of the fit's standardised units: its output
    layer's weights and bias are (θ / sd, (b − mean) / sd); nothing else changes."""
    sd, mean = data.y_scale, data.y_shift
    return _with_output(net, net.ws[-1] / sd, (net.bs[-1] - mean) / sd)


def to_outcome_units(net: Net, data: TrainData) -> Net:
    """The inverse of :func:`to_fit_units`: (θ · sd, b · sd + mean) in the output layer."""
    sd, mean = data.y_scale, data.y_shift
    return _with_output(net, net.ws[-1] * sd, net.bs[-1] * sd + mean)


def _with_output(net: Net, weight: torch.Tensor, bias: torch.Tensor) -> Net:
    """``net`` with its output layer's weight and bias replaced."""
    return Net(net.ua, net.ub, [*net.ws[:-1], weight], [*net.bs[:-1], bias])


def permute_rows_(A: np.ndarray, order: np.ndarray) -> None:
    """A[i] ← A[order[i]] for every row i, in place: cycle by cycle, one spare row."""
    order = np.asarray(order, dtype=np.int64)
    moved = order != np.arange(order.size)
    seen = ~moved
    for start in np.flatnonzero(moved):
        if seen[start]:
            continue
        spare = A[start].copy()
        j = int(start)
        while True:
            seen[j] = True
            k = int(order[j])
            if k == start:
                A[j] = spare
                break
            A[j] = A[k]
            j = k
