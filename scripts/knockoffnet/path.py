"""λ-path training of the knockoff network and the per-weight statistic Z (paper §3, §3.1).

For every λ of a grid the network on the 2p inputs ``[X, X~]`` (``knockoffnet.network``) is
trained on ``J = mean data loss + (λ/2m)·P(θ)`` by a proximal step rule
(``knockoffnet.optim``), with early stopping on a validation split fixed per seed. Every λ
starts from the same point: the seed's random initialisation (``start: cold``, the paper) or
the seed's dense fit, the network trained without penalty first (``start: warm``), so that Z
measures how long an input survives in a network that already uses it.
``Z = sup{λ : θ(λ) ≠ 0}`` is then read off the kept weights of every λ.

All λ of one call are trained together as one batched model. The λ values never interact
(shared start, shared mini-batch order drawn from the seed alone, per-λ stopping), so a λ's
result does not depend on which other λ share the call; the workflow relies on this to
split the grid into independent jobs. The grid itself is built by :mod:`knockoffnet.grid`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch

from knockoffnet import optim
from knockoffnet.errors import InputError
from knockoffnet.moments import all_finite
from knockoffnet.network import (
    Net,
    check_activation,
    eval_rows,
    evaluate,
    flush_denormals,
    forward,
    gradients,
    group_norms,
    init_net,
    net_arrays,
    net_from_arrays,
    stack,
)
from knockoffnet.vocabulary import (
    DEFAULT_LEARNING_RATE,
    OPTIMIZERS,
    PENALTIES,
    STARTS,
    TASKS,
    dense_decays,
)

_LOG = logging.getLogger(__name__)
Log = Callable[[str], None]

# batch_size = 0: full batch up to this many training rows, else AUTO_BATCH_SIZE rows per step.
AUTO_FULL_BATCH_MAX = 2048
AUTO_BATCH_SIZE = 1024
# A ReLU dense fit is dead when fewer than this fraction of its first hidden layer's
# activations on the validation rows are positive: the 1,476 study dense fits scanned had
# ≥ 0.012, the one that died at 50,000 × 1,000 had 0.0004 (docs/method.md, "Dead dense fits").
DEAD_ACTIVE = 0.005
# Refits of a dead dense fit, each with a tenth of the previous step size.
DENSE_REFITS = 2
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class TrainConfig:
    """Network, penalty and optimiser settings shared by the dense fit, the grid and the path."""

    hidden: tuple[int, ...] = (32,)
    activation: str = "relu"
    units: int = 4
    task: str = "binary"
    n_classes: int = 2
    val_fraction: float = 0.2
    patience: int = 20
    max_epochs: int = 300
    batch_size: int = 128
    check_rows: int = 20_000
    learning_rate: float | None = None
    optimizer: str = "adam"
    momentum: float = 0.9
    penalty: str = "group"
    start: str = "warm"
    min_improvement: float = 1e-3
    dense_decay: float | str | tuple[float, ...] = "auto"
    covariates: int = 0
    device: str = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        hidden = tuple(self.hidden) if isinstance(self.hidden, Sequence) else None
        if hidden is None or not all(isinstance(h, int | np.integer) and h >= 1 for h in hidden):
            raise InputError(f"hidden must be a list of positive integers, got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        check_activation(self.activation)
        _check_choice("task", self.task, TASKS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("penalty", self.penalty, PENALTIES)
        _check_choice("start", self.start, STARTS)
        if isinstance(self.units, bool) or not isinstance(self.units, int | np.integer):
            raise InputError(f"units must be a non-negative integer, got {self.units!r}")
        if self.units < 0:
            raise InputError(f"units must be >= 0 (0 = the paper's dense input), got {self.units}")
        if self.task == "binary" and self.n_classes != 2:
            raise InputError(f"task 'binary' needs n_classes = 2, got {self.n_classes}")
        if self.task == "multiclass" and self.n_classes < 2:
            raise InputError(f"task 'multiclass' needs n_classes >= 2, got {self.n_classes}")
        if not 0.0 < self.val_fraction < 1.0:
            raise InputError(f"val_fraction must lie in (0, 1), got {self.val_fraction}")
        for name in ("patience", "max_epochs", "threads"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 0:
            raise InputError(f"batch_size must be >= 0 (0 = auto), got {self.batch_size}")
        if isinstance(self.check_rows, bool) or int(self.check_rows) < 0:
            raise InputError(
                f"check_rows must be >= 0 (0 = a check after every pass), got {self.check_rows!r}"
            )
        lr = self.learning_rate
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            raise InputError(f"learning_rate must be positive and finite, got {lr}")
        if not 0.0 <= self.momentum < 1.0:
            raise InputError(f"momentum must lie in [0, 1), got {self.momentum}")
        if isinstance(self.covariates, bool) or int(self.covariates) < 0:
            raise InputError(f"covariates must be a count >= 0, got {self.covariates!r}")
        if not 0.0 <= self.min_improvement < 1.0:
            raise InputError(f"min_improvement must lie in [0, 1), got {self.min_improvement}")
        try:  # resolved here to the candidate decays, so every later reader sees numbers
            decays = dense_decays(self.dense_decay, self.optimizer, self.learning_rate)
        except (TypeError, ValueError):
            decays = ()
        if not decays or not all(math.isfinite(d) and 0.0 <= d * self.lr < 1.0 for d in decays):
            raise InputError(
                f"training.dense_decay must be auto, a number >= 0 and below 1 / learning rate "
                f"= {1 / self.lr:g} (each step multiplies the weights by 1 - lr × decay), or a "
                f"list of such numbers, got {self.dense_decay!r}"
            )
        object.__setattr__(self, "dense_decay", decays)
        if not _DEVICE_RE.match(str(self.device)):
            raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    @property
    def lr(self) -> float:
        """The step size in use: the configured one, else the step rule's default."""
        if self.learning_rate is None:
            return DEFAULT_LEARNING_RATE[self.optimizer]
        return float(self.learning_rate)

    @property
    def n_out(self) -> int:
        return self.n_classes if self.task == "multiclass" else 1


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def default_log(msg: str) -> None:
    _LOG.info(msg)


# ----------------------------------------------------------------------------- inputs, device


def resolve_device(spec: str, log: Log = default_log) -> torch.device:
    """Map ``auto|cpu|cuda[:N]`` to a device; a CUDA request without CUDA falls back to the CPU.

    Falling back (with a log line) rather than failing keeps one config usable on laptops and
    GPU nodes alike; ``auto`` honours CUDA_VISIBLE_DEVICES through torch.cuda.is_available().
    """
    if not _DEVICE_RE.match(str(spec)):
        raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    has_cuda = torch.cuda.is_available()
    if spec == "cpu" or (spec == "auto" and not has_cuda):
        log("device: cpu" + ("" if spec == "cpu" else " (CUDA not available)"))
        return torch.device("cpu")
    if not has_cuda:
        log(f"device: cpu (requested {spec!r} but CUDA is not available; falling back)")
        return torch.device("cpu")
    dev = torch.device("cuda" if spec == "auto" else spec)
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(
            f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) visible"
        )
    log(f"device: {dev} ({torch.cuda.get_device_name(dev)})")
    return dev


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

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device)

    try:
        with flush_denormals():
            yield TrainData(put(U32[:m]), put(yy[tr]), put(U32[m:]), put(yy[va]))
    finally:
        if borrowed:
            inverse = np.empty_like(order)
            inverse[order] = np.arange(order.size)
            permute_rows_(U32, inverse)


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


def initial_net(n_inputs: int, cfg: TrainConfig, seed: int) -> Net:
    """The seed's random initialisation (the cold start, and where the dense fit begins)."""
    return init_net(n_inputs, cfg.units, cfg.hidden, cfg.n_out, _seeds(seed)[1])


def start_net(start: Net | None, data: TrainData, cfg: TrainConfig, seed: int) -> Net:
    net = initial_net(data.d, cfg, seed) if start is None else start
    dev = data.u_train.device
    net = net.map(lambda t: t.to(device=dev, dtype=torch.float32))
    if net.ws[0].shape[1] != data.d * (cfg.units + 1) or net.units != cfg.units:
        raise InputError(
            f"the start network has {net.ws[0].shape[1]} first-layer inputs and {net.units} "
            f"units per input; the data and config need {data.d * (cfg.units + 1)} and "
            f"{cfg.units}: rerun the dense fit (lambda_grid) after changing the network"
        )
    return net


# ----------------------------------------------------------------------------- training loop


def _batch_size(m: int, cfg: TrainConfig) -> int:
    """Rows per step; 0 = full batch for small cohorts, else AUTO_BATCH_SIZE.

    An epoch splits the m rows into ceil(m / size) near-equal batches (no tiny last batch).
    """
    if cfg.batch_size > 0:
        return min(cfg.batch_size, m)
    return m if m <= AUTO_FULL_BATCH_MAX else AUTO_BATCH_SIZE


def check_lambdas(lambdas) -> np.ndarray:
    lam = np.asarray(lambdas, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise InputError(f"lambdas must be a non-empty 1-D list, got shape {lam.shape}")
    if not (np.isfinite(lam).all() and (lam > 0).all()):
        raise InputError("every lambda must be positive and finite")
    return lam


@dataclass
class Records:
    """Per-λ bookkeeping of early stopping: best-epoch parameters and figures (global index)."""

    best: list[torch.Tensor]
    epochs: np.ndarray
    best_epoch: np.ndarray
    best_obj: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray
    curve: np.ndarray
    wait: np.ndarray


def _new_records(net: Net, max_epochs: int) -> Records:
    n = net.ws[0].shape[0]
    return Records(
        best=[t.clone() for t in net.tensors()],
        epochs=np.zeros(n, np.int64),
        best_epoch=np.zeros(n, np.int64),
        best_obj=np.full(n, np.inf),
        val_loss=np.full(n, np.nan),
        val_acc=np.full(n, np.nan),
        curve=np.full((n, max_epochs), np.nan),
        wait=np.zeros(n, np.int64),
    )


def _one_step(st: optim.State, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> None:
    act, task, d, free = cfg.activation, cfg.task, x.shape[1], cfg.covariates
    if cfg.optimizer == "fista":
        optim.fista_step(
            st,
            lambda net: gradients(net, x, y, act, task, st.work),
            cfg.lr,
            cfg.penalty,
            d,
            free,
        )
        return
    grads = gradients(st.net, x, y, act, task, st.work)
    optim.step(st, grads, cfg.optimizer, cfg.lr, cfg.momentum, cfg.penalty, d, free)


def _decay_weights(st: optim.State, cfg: TrainConfig, decay: float) -> None:
    """Decoupled weight decay after a step (the dense fit's ``dense_decay``): every weight
    matrix × (1 − lr·decay); the units' parameters and the biases are left alone."""
    if decay > 0.0:
        for w in st.net.ws:
            w.mul_(1.0 - cfg.lr * decay)


def steps_per_check(m: int, cfg: TrainConfig) -> int:
    """Optimiser steps between two validation checks (one "epoch" of early stopping).

    A pass over the m training rows, or ``check_rows`` rows when the pass is longer: a pass
    of a 100,000-row cohort is 625 steps, and patience counted in such passes would train
    each λ for at least 21 of them (hours on a CPU) where the validation objective has long
    stopped improving. Cohorts with m ≤ check_rows check after every pass, as before.
    """
    bsz = _batch_size(m, cfg)
    per_pass = -(-m // bsz)
    if cfg.check_rows <= 0 or m <= cfg.check_rows:
        return per_pass
    return -(-int(cfg.check_rows) // bsz)  # fewer than a pass's steps, as m > check_rows


def _batches(data: TrainData, cfg: TrainConfig, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Row indices of every step, pass after pass; each pass draws its order from ``gen``
    (one stream for all λ: the order depends on the seed and the pass only) and splits the
    m rows into ceil(m / size) near-equal batches (no tiny last batch)."""
    m, bsz = data.m, _batch_size(data.m, cfg)
    while True:
        perm = torch.randperm(m, generator=gen).to(data.u_train.device)
        yield from torch.tensor_split(perm, -(-m // bsz))


def _run_check(
    st: optim.State,
    data: TrainData,
    cfg: TrainConfig,
    batches: Iterator[torch.Tensor],
    steps: int,
    decay: float = 0.0,
) -> None:
    """The steps up to the next validation check: one pass, or check_rows rows."""
    if _batch_size(data.m, cfg) >= data.m:  # full batch: one step, no row order to draw
        _one_step(st, data.u_train, data.y_train, cfg)
        _decay_weights(st, cfg, decay)
        return
    for _ in range(steps):
        rows = next(batches)
        _one_step(st, data.u_train[rows], data.y_train[rows], cfg)
        _decay_weights(st, cfg, decay)


def _record_epoch(
    rec: Records, st: optim.State, epoch: int, data: TrainData, cfg: TrainConfig
) -> np.ndarray:
    """Score the epoch on the validation rows, keep improved λ's weights; returns stop mask.

    The score is the validation *penalised* objective, loss + (λ/2m)·P(θ): the bare loss of
    the dense start is often the best a large λ ever sees, which would keep (and count as
    non-zero) weights the penalty is about to remove. An epoch improves only if it lowers
    the best score by more than ``min_improvement`` (relative): proximal descent creeps down
    plateaus by tiny amounts and would otherwise never trigger patience.
    """
    vl_t, va_t = evaluate(st.net, data.u_val, data.y_val, cfg.activation, cfg.task, st.work)
    obj_t = vl_t + st.pen * optim.penalty(st.net, cfg.penalty, data.d, cfg.covariates)
    gi = st.idx.cpu().numpy()
    vl, va, obj = vl_t.cpu().numpy(), va_t.cpu().numpy(), obj_t.cpu().numpy()
    rec.curve[gi, epoch - 1] = vl
    prev = rec.best_obj[gi]
    with np.errstate(invalid="ignore"):
        improved = np.isfinite(obj) & (
            np.isinf(prev) | (obj < prev - cfg.min_improvement * np.abs(prev))
        )
    if improved.any():
        rows = torch.from_numpy(improved).to(st.idx.device)
        dst = st.idx[rows]
        for best, cur in zip(rec.best, st.net.tensors(), strict=True):
            best[dst] = cur[rows]
        g = gi[improved]
        rec.best_obj[g], rec.best_epoch[g] = obj[improved], epoch
        rec.val_loss[g], rec.val_acc[g] = vl[improved], va[improved]
    rec.wait[gi] = np.where(improved, 0, rec.wait[gi] + 1)
    rec.epochs[gi] = epoch
    return (rec.wait[gi] >= cfg.patience) | (epoch == cfg.max_epochs)


class StopRule(Protocol):
    """Extra stopping of :func:`train_batched` (the λ grid's check): after each validation
    check, a mask over the λ still training (``st.idx``) of those to stop now."""

    def stop(
        self, rec: Records, st: optim.State, lambdas: np.ndarray, data: TrainData, cfg: TrainConfig
    ) -> np.ndarray: ...


def train_batched(
    data: TrainData,
    lambdas: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    start: Net,
    log: Log,
    check: StopRule | None = None,
    decay: float = 0.0,
) -> dict[str, np.ndarray]:
    """Train every λ of ``lambdas`` from ``start`` as one batched model, per-λ early stopping.

    Stopped λ leave the working batch (their best weights are already recorded), so the
    loop runs while any λ trains without touching the others' results. With ``check`` (the
    grid check, :class:`knockoffnet.grid.GridCheck`) the λ whose answer is already known stop
    too.
    """
    device = data.u_train.device
    lam = torch.as_tensor(lambdas, dtype=torch.float64, device=device)
    st = optim.new_state(stack(start, len(lambdas)), lam / (2.0 * data.m), cfg.optimizer)
    rec = _new_records(st.net, cfg.max_epochs)
    gen = torch.Generator().manual_seed(_seeds(seed)[2])
    batches, steps = _batches(data, cfg, gen), steps_per_check(data.m, cfg)
    for epoch in range(1, cfg.max_epochs + 1):  # an epoch: the steps between two checks
        _run_check(st, data, cfg, batches, steps, decay)
        stop = _record_epoch(rec, st, epoch, data, cfg)
        if check is not None:
            stop |= check.stop(rec, st, lambdas, data, cfg)
        for j in st.idx.cpu().numpy()[stop]:
            _log_done(log, int(j), lambdas, rec, st.net, data.d, cfg.covariates)
        if stop.all():
            break
        if stop.any():
            st = optim.keep(st, torch.from_numpy(~stop).to(device))
        if epoch % 50 == 0:
            log(f"epoch {epoch}: {len(st.idx)}/{len(lambdas)} λ still training")
    if (rec.best_epoch == 0).any():
        log(
            f"warning: {(rec.best_epoch == 0).sum()} λ never gave a finite validation objective "
            "(diverged?); their weights are the start; lower learning_rate"
        )
    return _results(rec, lambdas, data, cfg, st.net)


def _results(
    rec: Records, lambdas: np.ndarray, data: TrainData, cfg: TrainConfig, like: Net
) -> dict[str, np.ndarray]:
    best = like.replace(rec.best)
    tl, _ = evaluate(best, data.u_train, data.y_train, cfg.activation, cfg.task)
    out: dict[str, np.ndarray] = {"lambdas": np.asarray(lambdas, np.float64)}
    out.update(net_arrays(best))
    nnz = [(w != 0).sum((1, 2)).cpu().numpy() for w in best.ws]
    out.update(
        epochs=rec.epochs,
        best_epoch=rec.best_epoch,
        val_objective=rec.best_obj,
        val_loss=rec.val_loss,
        val_accuracy=rec.val_acc,
        train_loss=tl.cpu().numpy(),
        nnz=np.stack(nnz, 1).astype(np.int64),
        inputs_alive=tested_alive(best.ws[0], data.d, cfg.covariates).cpu().numpy(),
        curve_val_loss=rec.curve,
    )
    return out


def tested_alive(w0: torch.Tensor, d: int, covariates: int) -> torch.Tensor:
    """How many tested inputs (the trailing covariates are never penalised) keep a non-zero
    first-layer weight: per λ for a stacked (Λ, out, in) θ⁽⁰⁾, a scalar for one network."""
    return (group_norms(w0, d)[..., : d - covariates] > 0).sum(-1)


def best_first_layer(rec: Records, like: Net) -> torch.Tensor:
    """θ⁽⁰⁾ of every λ's best weights (Λ, out, in): the flat list ends with the layers'
    weights and biases, the units' parameters (if any) come first."""
    return rec.best[len(rec.best) - 2 * len(like.ws)]


def _log_done(
    log: Log, j: int, lambdas: np.ndarray, rec: Records, like: Net, d: int, covariates: int
) -> None:
    tested = d - covariates
    alive = int(tested_alive(best_first_layer(rec, like)[j], d, covariates))
    log(
        f"λ {j + 1}/{len(lambdas)} = {lambdas[j]:.4g}: {rec.epochs[j]} epochs, best epoch "
        f"{rec.best_epoch[j]}, val loss {rec.val_loss[j]:.4f}, val objective "
        f"{rec.best_obj[j]:.4f}, inputs in use {alive}/{tested}"
        + (f" (and {covariates} covariates, never penalised)" if covariates else "")
    )


def _log_setup(log: Log, data: TrainData, cfg: TrainConfig, what: str) -> None:
    log(
        f"{what}: m={data.m} training / {data.u_val.shape[0]} validation rows, "
        f"{data.d} inputs × {cfg.units} units, hidden {list(cfg.hidden)}, {cfg.task}, "
        f"batch {_batch_size(data.m, cfg)}, {cfg.optimizer} lr={cfg.lr}, {cfg.penalty} "
        f"penalty, {cfg.start} start, patience {cfg.patience}, max_epochs {cfg.max_epochs} "
        f"(epochs of {steps_per_check(data.m, cfg)} steps), threads {cfg.threads}"
    )


def train_path(
    U: np.ndarray,
    y: np.ndarray,
    lambdas: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    start: Net | None = None,
    log: Log = default_log,
) -> dict[str, np.ndarray]:
    """Train all ``lambdas`` (in the given order) as one batched model; see module docstring.

    ``start`` is the point every λ starts from (the dense fit for ``start: warm``); None is
    the seed's random initialisation. Keys: ``lambdas``; ``W{l}`` (Λ, out, in) / ``b{l}``
    (Λ, out) float32 best-epoch parameters (and ``unit_a``/``unit_b`` (Λ, d, units));
    ``epochs``, ``best_epoch``; ``val_objective``, ``val_loss``, ``val_accuracy`` (NaN for
    regression) at the best epoch; ``train_loss`` at the kept weights; ``nnz`` (Λ, L+1);
    ``inputs_alive`` (Λ,); ``curve_val_loss`` (Λ, max_epochs), NaN after stopping.
    """
    lam = check_lambdas(lambdas)
    with prepared(U, y, cfg, seed, log) as data:
        _log_setup(log, data, cfg, f"training {lam.size} λ")
        net, per_pass = start_net(start, data, cfg, seed), lambdas_per_pass(data, cfg)
        if lam.size <= per_pass:
            return train_batched(data, lam, cfg, seed, net, log)
        log(f"{lam.size} λ in passes of {per_pass} (memory: {data.d} inputs)")
        parts = [
            train_batched(data, lam[i : i + per_pass], cfg, seed, net, log)
            for i in range(0, lam.size, per_pass)
        ]
    return concat_chunks(parts)


# Float32 values one λ-batched activation tensor (Λ, rows, d, units + 1) may hold (128 MB):
# sized for a CPU job's memory request (job_resources).
PASS_BUDGET = 2**25
# The same on a CUDA device (512 MB): a GPU's memory is not the job's RSS, and a pass's λ
# train side by side for about the price of one, so each further pass of a grid repeats a
# whole early-stopped fit. 2²⁵ split a 500,000 × 1,000 cohort's 10 λ into passes of 8 and 2
# on an H100 (benchmarks/README.md, "GPU"); 2²⁷ keeps up to 32 λ at p = 1,000 in one pass,
# about 1.5 GB of a GPU's memory beside the cohort's [X, X~].
CUDA_PASS_BUDGET = 2**27


def pass_budget(device: torch.device) -> int:
    """Float32 values one λ-batched tensor may hold on ``device`` (fixed per kind of device,
    so the same config and seed give the same passes, hence the same results, on it)."""
    return CUDA_PASS_BUDGET if device.type == "cuda" else PASS_BUDGET


def lambdas_per_pass(data: TrainData, cfg: TrainConfig) -> int:
    """How many λ one batched pass trains: all of them unless their input expansion over a
    mini-batch (or an evaluation block) would pass the device's :func:`pass_budget`, as at
    p ≈ 1000 on a CPU. Each λ trains independently of the others, so passes give the
    batched result."""
    channels = cfg.units + 1
    rows = max(
        min(_batch_size(data.m, cfg), data.m),
        min(eval_rows(data.d, channels), int(data.u_val.shape[0])),
    )
    return max(1, pass_budget(data.u_train.device) // (rows * data.d * channels))


def train_path_sequential(
    U: np.ndarray,
    y: np.ndarray,
    lambdas: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    start: Net | None = None,
    log: Log = default_log,
) -> dict[str, np.ndarray]:
    """One network per λ in a Python loop: the reference and benchmark baseline of train_path."""
    lam = check_lambdas(lambdas)
    with prepared(U, y, cfg, seed, log) as data:
        net = start_net(start, data, cfg, seed)
        parts = [train_batched(data, lam[i : i + 1], cfg, seed, net, log) for i in range(lam.size)]
    return concat_chunks(parts)


def dense_fit(
    U: np.ndarray, y: np.ndarray, cfg: TrainConfig, seed: int, log: Log = default_log
) -> dict[str, np.ndarray]:
    """The seed's network trained without penalty (λ = 0) from its random initialisation,
    early-stopped on the validation loss: the warm start of every λ, and the "did the
    network learn at all" reference of the report. Same keys as :func:`train_path` (Λ = 1).
    ``cfg.dense_decay`` holds the candidate decoupled weight decays of this fit only: each is
    fitted from the same start and the one with the lowest validation loss is returned, its
    decay under the key ``dense_decay`` (docs/method.md, "The dense fit and the start of every
    λ").

    A fit whose ReLU hidden layer went silent (:func:`active_fraction` < DEAD_ACTIVE) is
    refitted from the same start with a tenth of the step size, at most DENSE_REFITS times:
    Adam's first steps move each of a large fan-in's weights by about the step size at once
    and can switch every hidden unit off for good (one seed at 50,000 × 1,000).
    """
    with prepared(U, y, cfg, seed, log) as data:
        _log_setup(log, data, cfg, "dense fit")
        fits = [_dense_fit_decayed(data, cfg, seed, decay, log) for decay in cfg.dense_decay]
    best = min(range(len(fits)), key=lambda i: fits[i]["val_loss"][0])  # ties: the first
    res = fits[best]
    if len(fits) > 1:
        losses = ", ".join(
            f"{d:g}: {f['val_loss'][0]:.4f}" for d, f in zip(cfg.dense_decay, fits, strict=True)
        )
        log(f"dense fit: weight decay {cfg.dense_decay[best]:g} kept (validation loss {losses})")
    log(
        f"dense fit: {res['best_epoch'][0]} epochs to the best validation loss "
        f"{res['val_loss'][0]:.4f} (accuracy {res['val_accuracy'][0]:.3f})"
    )
    return {**res, "dense_decay": np.array([cfg.dense_decay[best]])}


def _dense_fit_decayed(
    data: TrainData, cfg: TrainConfig, seed: int, decay: float, log: Log
) -> dict[str, np.ndarray]:
    """One dense fit at one decay, from the seed's initialisation (the same for every
    decay, so the candidates differ by the decay alone), refitted if its units died."""
    if decay > 0:
        log(f"dense fit: weight decay {decay:g} (weights × {1.0 - cfg.lr * decay:g} a step)")
    fit = cfg
    for refit in range(DENSE_REFITS + 1):
        start = start_net(None, data, fit, seed)
        res = train_batched(data, np.zeros(1), fit, seed, start, log, decay=decay)
        active = active_fraction(res, data.u_val, fit)
        if active >= DEAD_ACTIVE or refit == DENSE_REFITS:
            break
        fit = replace(fit, learning_rate=fit.lr / 10)
        log(
            f"warning: the dense fit's hidden layer went silent ({active:.4f} of its "
            f"validation activations positive); refitting with learning rate {fit.lr:.3g}"
        )
    return res


def active_fraction(res: dict[str, np.ndarray], u: torch.Tensor, cfg: TrainConfig) -> float:
    """Fraction of positive first-hidden-layer activations of a fit's first network on the
    rows ``u`` (at most one evaluation block of them); 1.0 where units cannot die (no hidden
    layer, or an activation other than ReLU)."""
    if cfg.activation != "relu" or not cfg.hidden:
        return 1.0
    net = stack(net_from_arrays(res, 0), 1).map(lambda t: t.to(u.device, torch.float32))
    with torch.no_grad():
        _, inputs, _ = forward(net, u[: eval_rows(u.shape[1], cfg.units + 1)], cfg.activation)
    return float((inputs[1] > 0).double().mean())


def concat_chunks(chunks: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join chunk results along λ, ordered by descending λ (the grid order)."""
    if not chunks:
        raise InputError("no chunk results to concatenate")
    keys = set(chunks[0])
    for c in chunks[1:]:
        if set(c) != keys:
            raise InputError("chunk results have different keys (different network shapes?)")
    try:
        out = {k: np.concatenate([np.asarray(c[k]) for c in chunks], axis=0) for k in chunks[0]}
    except ValueError as err:
        raise InputError(f"chunk results do not fit together: {err}") from err
    order = np.argsort(-out["lambdas"], kind="stable")
    return {k: v[order] for k, v in out.items()}


# ----------------------------------------------------------------------------- Z


def z_statistics(lambdas: np.ndarray, weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Z per weight: the largest λ at which it is non-zero, 0 if zero at every λ.

    A weight that is never zeroed therefore gets the top of the grid (the paper's code gives
    it 0, which would rank the most robust weights last).
    """
    lam = check_lambdas(lambdas)
    out = []
    for i, w in enumerate(weights):
        w = np.asarray(w)
        if w.ndim != 3 or w.shape[0] != lam.size:
            raise InputError(f"weights[{i}] must have shape (Λ={lam.size}, out, in), got {w.shape}")
        out.append(np.where(w != 0, lam[:, None, None], 0.0).max(axis=0))
    return out


def __getattr__(name: str) -> object:
    """``lambda_grid`` lives in :mod:`knockoffnet.grid`; the lambda_grid rule's entry script
    still imports it from here: Snakemake reruns a rule whose script is newer than its
    outputs (its ``code`` trigger), so editing that script's import would rerun every
    finished path of a user who pulls the change."""
    if name == "lambda_grid":
        from knockoffnet.grid import lambda_grid

        return lambda_grid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
