"""λ-path training of the knockoff MLP and the per-weight statistic Z (paper §3, §3.1).

For every λ of a grid the network on the 2p inputs ``[X, X~]`` is trained with the penalised
objective ``J = mean data loss + (λ/2m)·Σ|θ|`` (weights only, biases free) by proximal gradient
descent, with early stopping on a validation split. ``Z = sup{λ : θ(λ) ≠ 0}`` is then read off
the kept weights of every λ.

All λ of one call are trained together as one batched model: each weight matrix is stored as
``(Λ, out, in)`` and every layer is a batched matmul with a leading λ axis. The λ values never
interact (shared initialisation, shared mini-batch order drawn from the seed alone, per-λ
stopping), so a λ's result does not depend on which other λ share the call; the workflow relies
on this to split the grid into independent jobs.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from knockoffnet.errors import InputError

_LOG = logging.getLogger(__name__)
Log = Callable[[str], None]

ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu")
TASKS = ("binary", "multiclass", "regression")
OPTIMIZERS = ("plain", "momentum", "fista")
LEAKY_SLOPE = 0.01
# batch_size = 0: full batch up to this many training rows, else AUTO_BATCH_SIZE rows per step.
AUTO_FULL_BATCH_MAX = 2048
AUTO_BATCH_SIZE = 1024
# An epoch counts as an improvement only if it lowers the best validation objective by this
# fraction; otherwise proximal descent creeping down a plateau would never trigger patience.
MIN_REL_IMPROVEMENT = 1e-4
# λ-grid top check: try λ0·4^k, k = 0..GRID_TRIES-1, in one batched run.
GRID_FACTOR = 4.0
GRID_TRIES = 6
# Rows per block when evaluating losses, fixed so sums do not depend on Λ.
EVAL_BLOCK = 2048
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class TrainConfig:
    """Network and optimiser settings shared by the λ grid and every training chunk."""

    hidden: tuple[int, ...] = (64,)
    activation: str = "relu"
    task: str = "binary"
    n_classes: int = 2
    val_fraction: float = 0.2
    patience: int = 10
    max_epochs: int = 300
    batch_size: int = 0
    learning_rate: float = 0.3
    optimizer: str = "fista"
    momentum: float = 0.9
    device: str = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        hidden = tuple(self.hidden) if isinstance(self.hidden, Sequence) else None
        if hidden is None or not all(isinstance(h, int | np.integer) and h >= 1 for h in hidden):
            raise InputError(f"hidden must be a list of positive integers, got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("task", self.task, TASKS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
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
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise InputError(f"learning_rate must be positive and finite, got {self.learning_rate}")
        if not 0.0 <= self.momentum < 1.0:
            raise InputError(f"momentum must lie in [0, 1), got {self.momentum}")
        if not _DEVICE_RE.match(str(self.device)):
            raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def _default_log(msg: str) -> None:
    _LOG.info(msg)


# ----------------------------------------------------------------------------- inputs, device


def resolve_device(spec: str, log: Log = _default_log) -> torch.device:
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
    if not np.issubdtype(U.dtype, np.number) or not np.isfinite(U).all():
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
    every class present must keep at least one row on each side.
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
class _Data:
    """Training/validation tensors on the device (m = training rows)."""

    u_train: torch.Tensor
    y_train: torch.Tensor
    u_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def m(self) -> int:
        return int(self.u_train.shape[0])


def _prepare(U, y, cfg: TrainConfig, seed: int, log: Log) -> tuple[_Data, torch.device]:
    U32, yy = _check_data(U, y, cfg)
    device = resolve_device(cfg.device, log)
    torch.set_num_threads(int(cfg.threads))
    tr, va = split_indices(yy, cfg, seed)

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    data = _Data(put(U32[tr]), put(yy[tr]), put(U32[va]), put(yy[va]))
    return data, device


def _out_units(cfg: TrainConfig) -> int:
    return cfg.n_classes if cfg.task == "multiclass" else 1


def _sizes(n_inputs: int, cfg: TrainConfig) -> list[int]:
    return [n_inputs, *cfg.hidden, _out_units(cfg)]


def init_params(sizes: Sequence[int], seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One network's weights (out, in) and biases, PyTorch-default Kaiming-uniform, from ``seed``.

    U(-1/√in, 1/√in) is what nn.Linear draws (kaiming_uniform with a=√5); every λ of a seed
    starts from this same draw.
    """
    gen = torch.Generator().manual_seed(_seeds(seed)[1])
    ws, bs = [], []
    for n_in, n_out in itertools.pairwise(sizes):
        bound = 1.0 / math.sqrt(n_in)
        ws.append((torch.rand(n_out, n_in, generator=gen) * 2 - 1) * bound)
        bs.append((torch.rand(n_out, generator=gen) * 2 - 1) * bound)
    return ws, bs


# ----------------------------------------------------------------------------- batched network
#
# Every layer is one batched matmul over the λ axis (torch.bmm; the shared input rows enter
# as a stride-0 expand, never copied). bmm computes each λ's product with the same BLAS call
# whatever Λ is, which is what makes chunked and whole-grid runs agree bit for bit. The two
# largest tensors, the first layer's activations and their gradient (Λ, B, h1), live in
# scratch buffers reused across steps (``work``): re-allocating them every step costs page
# faults comparable to the arithmetic on them.

Work = dict[str, torch.Tensor] | None


def _buffer(work: Work, name: str, shape: tuple[int, int, int], like: torch.Tensor) -> torch.Tensor:
    """A (Λ, rows, cols) scratch tensor, grown on demand (rows) and reused between steps."""
    t = None if work is None else work.get(name)
    if t is None or t.shape[0] != shape[0] or t.shape[2] != shape[2] or t.shape[1] < shape[1]:
        t = torch.empty(shape, dtype=like.dtype, device=like.device)
        if work is not None:
            work[name] = t
    return t[:, : shape[1]] if t.shape[1] != shape[1] else t


def _mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Batched a @ b (both (Λ, ·, ·)), padding a single row/column to two.

    With one row or column BLAS switches to gemv, which for Λ = 1 rounds differently from
    the batched kernel; padding keeps a λ's result independent of how many λ share a call.
    """
    one_row, one_col = int(a.shape[-2] == 1), int(b.shape[-1] == 1)
    if one_row or one_col:
        a = F.pad(a, (0, 0, 0, 1)) if one_row else a  # pad only the thin operand
        b = F.pad(b, (0, 1)) if one_col else b
        r = torch.bmm(a, b)
        r = r[:, : r.shape[1] - one_row, : r.shape[2] - one_col]
        return r if out is None else out.copy_(r)
    return torch.bmm(a, b) if out is None else torch.bmm(a, b, out=out)


def _act_(z: torch.Tensor, name: str) -> torch.Tensor:
    """Activation in place (backward needs only a = act(z), never z)."""
    if name == "relu":
        return z.relu_()
    if name == "tanh":
        return z.tanh_()
    if name == "elu":  # relu(z) + expm1(min(z, 0)); F.elu rounds by element position
        neg = z.clamp(max=0.0).expm1_()
        return z.relu_().add_(neg)
    return F.leaky_relu_(z, LEAKY_SLOPE)


def _act_backward_(ga: torch.Tensor, a: torch.Tensor, name: str) -> torch.Tensor:
    """∂loss/∂z from ∂loss/∂a, in place in ``ga``, using a = act(z) (one fused pass)."""
    aten = torch.ops.aten
    if name == "relu":
        return aten.threshold_backward.grad_input(ga, a, 0.0, grad_input=ga)
    if name == "tanh":
        return aten.tanh_backward.grad_input(ga, a, grad_input=ga)
    if name == "elu":
        return aten.elu_backward.grad_input(ga, 1.0, 1, 1, True, a, grad_input=ga)
    return aten.leaky_relu_backward.grad_input(ga, a, LEAKY_SLOPE, True, grad_input=ga)


def _act_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Out-of-place activation for autograd use (predict, input_effects)."""
    return {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "elu": F.elu,
        "leaky_relu": lambda z: F.leaky_relu(z, LEAKY_SLOPE),
    }[name]


def _forward(
    ws: list[torch.Tensor], bs: list[torch.Tensor], x: torch.Tensor, act: str, work: Work = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Outputs (Λ, B, K) for rows x (B, in) shared by all λ, plus each layer's input."""
    n_lam, rows = ws[0].shape[0], x.shape[0]
    xe = x.expand(n_lam, rows, x.shape[1])
    h = _buffer(work, "a1", (n_lam, rows, ws[0].shape[1]), x)
    _mm(xe, ws[0].transpose(1, 2), out=h).add_(bs[0].unsqueeze(1))
    inputs = [xe]
    for i in range(1, len(ws)):
        h = _act_(h, act)
        inputs.append(h)
        h = _mm(h, ws[i].transpose(1, 2)).add_(bs[i].unsqueeze(1))
    return h, inputs


# σ and softplus are spelled out with exp/log1p: torch's own sigmoid/softplus kernels round
# differently in the vectorised loop's tail, so a λ's value would depend on its position in
# the batched tensor (and so on the chunk it was trained in).


def _sigmoid(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-z).add_(1.0).reciprocal_()


def _softplus(z: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(-z.abs())).add_(z.clamp(min=0.0))


def _loss_rows(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Per-row data loss (Λ, B) for logits/outputs (Λ, B, K)."""
    if task == "regression":
        r = out[..., 0] - y
        return r * r
    if task == "binary":
        z = out[..., 0]
        return _softplus(z).sub_(z * y.to(z.dtype))
    logp = torch.log_softmax(out, dim=-1)
    return -logp.gather(-1, y.view(1, -1, 1).expand(out.shape[0], -1, 1)).squeeze(-1)


def _loss_grad(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """∂(mean batch loss)/∂out, (Λ, B, K): sigmoid/softmax/linear residuals over B."""
    n = out.shape[1]
    if task == "regression":
        return (out - y.view(1, -1, 1)).mul_(2.0 / n)
    if task == "binary":
        return _sigmoid(out).sub_(y.to(out.dtype).view(1, -1, 1)).div_(n)
    g = torch.softmax(out, dim=-1)
    idx = y.view(1, -1, 1).expand(out.shape[0], -1, 1)
    return g.scatter_add_(-1, idx, torch.full_like(g[..., :1], -1.0)).div_(n)


def _gradients(
    ws: list[torch.Tensor],
    bs: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    act: str,
    task: str,
    work: Work = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Hand-written backward pass of the mean batch data loss for all λ at once.

    Skipping autograd avoids its graph bookkeeping every step and lets activations and
    gradients live in reused buffers; tests check the result against autograd.
    """
    out, inputs = _forward(ws, bs, x, act, work)
    g = _loss_grad(out, y, task)
    n_layers = len(ws)
    gws: list[torch.Tensor] = [torch.empty(0)] * n_layers
    gbs: list[torch.Tensor] = [torch.empty(0)] * n_layers
    for i in range(n_layers - 1, -1, -1):
        gbs[i] = g.sum(1)
        gws[i] = _mm(g.transpose(1, 2), inputs[i])
        if i == 0:
            break
        ga = _buffer(work, "g1", inputs[1].shape, x) if i == 1 else None
        if g.shape[-1] == 1:  # one output unit: ∂loss/∂a is an outer product, no matmul
            ga = torch.mul(g, ws[i], out=ga)
        else:
            ga = _mm(g, ws[i], out=ga)
        g = _act_backward_(ga, inputs[i], act)
    return gws, gbs


def soft_threshold(w: torch.Tensor, thr: torch.Tensor | float) -> torch.Tensor:
    """Proximal map of thr·|w|: shrink towards 0 by thr; |w| <= thr becomes exactly +0.0."""
    return _soft_threshold_(w.clone(), torch.as_tensor(thr, dtype=w.dtype, device=w.device))


def _soft_threshold_(w: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """In-place soft-threshold; w - clamp(w) is w - w = +0.0 exactly inside the dead zone."""
    return w.sub_(torch.clamp(w, -thr, thr))


def _evaluate(
    ws: list[torch.Tensor],
    bs: list[torch.Tensor],
    u: torch.Tensor,
    y: torch.Tensor,
    act: str,
    task: str,
    work: Work = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean data loss and accuracy per λ (float64), in fixed row blocks to bound memory."""
    n_lam = ws[0].shape[0]
    loss = torch.zeros(n_lam, dtype=torch.float64, device=u.device)
    hits = torch.zeros(n_lam, dtype=torch.float64, device=u.device)
    n_blocks = -(-u.shape[0] // EVAL_BLOCK)
    for ub, yb in zip(u.tensor_split(n_blocks), y.tensor_split(n_blocks), strict=True):
        out, _ = _forward(ws, bs, ub, act, work)
        loss += _loss_rows(out, yb, task).sum(1).double()
        if task == "binary":
            hits += ((out[..., 0] > 0) == (yb == 1)).sum(1).double()
        elif task == "multiclass":
            hits += (out.argmax(-1) == yb).sum(1).double()
    acc = hits / u.shape[0] if task != "regression" else torch.full_like(hits, float("nan"))
    return loss / u.shape[0], acc


def _per_lambda_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over all but the λ axis in float64, last axis first.

    A one-shot reduction of a single λ's (out, in) block would be split across threads
    (a different summation order than for Λ > 1); row sums first keep the order fixed.
    """
    t = t.sum(-1, dtype=torch.float64)
    return t.sum(-1) if t.dim() > 1 else t


def _l1(ws: list[torch.Tensor]) -> torch.Tensor:
    """Σ|θ| per λ over every weight matrix (biases excluded), float64."""
    return sum(_per_lambda_sum(w.abs()) for w in ws)


# ----------------------------------------------------------------------------- optimiser state


@dataclass
class _State:
    """Parameters and step-rule buffers of the λ values still training (rows = active λ)."""

    idx: torch.Tensor  # global λ index of each row
    thr: torch.Tensor  # (Λa, 1, 1) prox threshold per step: lr·λ/(2m)
    ws: list[torch.Tensor]
    bs: list[torch.Tensor]
    bufs: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    k: torch.Tensor | None = None  # FISTA steps since (re)start
    work: dict[str, torch.Tensor] = field(default_factory=dict)  # scratch, sized for Λa


def _keep(st: _State, keep: torch.Tensor) -> _State:
    """Drop stopped λ from the working batch (their best weights are already stored)."""
    return _State(
        idx=st.idx[keep],
        thr=st.thr[keep],
        ws=[w[keep] for w in st.ws],
        bs=[b[keep] for b in st.bs],
        bufs={k: [t[keep] for t in v] for k, v in st.bufs.items()},
        k=None if st.k is None else st.k[keep],
    )


def _new_state(w0, b0, lambdas: torch.Tensor, m: int, cfg: TrainConfig) -> _State:
    n = lambdas.shape[0]
    ws = [w.unsqueeze(0).repeat(n, 1, 1) for w in w0]
    bs = [b.unsqueeze(0).repeat(n, 1) for b in b0]
    thr = (cfg.learning_rate * lambdas / (2.0 * m)).to(ws[0].dtype).view(-1, 1, 1)
    st = _State(idx=torch.arange(n, device=ws[0].device), thr=thr, ws=ws, bs=bs)
    if cfg.optimizer in ("momentum", "fista"):  # both keep the previous iterate
        st.bufs = {"pw": [w.clone() for w in ws], "pb": [b.clone() for b in bs]}
    if cfg.optimizer == "fista":
        st.k = torch.zeros(n, device=ws[0].device)
    return st


def _step(st: _State, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> None:
    """One proximal gradient step on every active λ (in place)."""
    lr, act, task = cfg.learning_rate, cfg.activation, cfg.task
    if cfg.optimizer == "fista":
        _fista_step(st, x, y, cfg)
        return
    gws, gbs = _gradients(st.ws, st.bs, x, y, act, task, st.work)
    moms: list[torch.Tensor | None] = [None] * (len(st.ws) + len(st.bs))
    if cfg.optimizer == "momentum":
        # Heavy ball on the iterates (iPiano): θ⁺ = prox(θ - lr·g + μ(θ - θ⁻)). Its fixed
        # point is the penalised optimum; a momentum buffer of data gradients alone would
        # settle at the optimum for (1 - μ)·λ, because the prox only sees one step's shrinkage.
        prev = st.bufs["pw"] + st.bufs["pb"]
        moms = [(t - p).mul_(cfg.momentum) for t, p in zip(st.ws + st.bs, prev, strict=True)]
        for p, t in zip(prev, st.ws + st.bs, strict=True):
            p.copy_(t)
    nw = len(st.ws)
    for i, (t, g) in enumerate(zip(st.ws + st.bs, gws + gbs, strict=True)):
        t.sub_(g, alpha=lr)
        if moms[i] is not None:
            t.add_(moms[i])
        if i < nw:
            _soft_threshold_(t, st.thr)


def _fista_step(st: _State, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> None:
    """FISTA: gradient at the extrapolated point, prox, gradient-mapping adaptive restart.

    Restart (β back to 0) per λ when the step points against the momentum
    (O'Donoghue & Candès), which keeps the non-convex path from overshooting.
    """
    assert st.k is not None
    lr = cfg.learning_rate
    beta = st.k / (st.k + 3.0)
    b3, b2 = beta.view(-1, 1, 1), beta.view(-1, 1)
    yws = [(w - p).mul_(b3).add_(w) for w, p in zip(st.ws, st.bufs["pw"], strict=True)]
    ybs = [(b - p).mul_(b2).add_(b) for b, p in zip(st.bs, st.bufs["pb"], strict=True)]
    gws, gbs = _gradients(yws, ybs, x, y, cfg.activation, cfg.task, st.work)
    nws = [_soft_threshold_(yw.sub(g, alpha=lr), st.thr) for yw, g in zip(yws, gws, strict=True)]
    nbs = [yb.sub(g, alpha=lr) for yb, g in zip(ybs, gbs, strict=True)]
    # ⟨y - x⁺, x⁺ - x⟩ > 0 means the step opposes the momentum: restart that λ.
    dot = torch.zeros(st.k.shape, dtype=torch.float64, device=st.k.device)
    for yv, nv, ov in zip(yws + ybs, nws + nbs, st.ws + st.bs, strict=True):
        dot += _per_lambda_sum((yv - nv) * (nv - ov))
    st.bufs["pw"], st.bufs["pb"] = st.ws, st.bs
    st.ws, st.bs = nws, nbs
    st.k = torch.where(dot > 0, torch.zeros_like(st.k), st.k + 1.0)


# ----------------------------------------------------------------------------- training loop


def _batch_size(m: int, cfg: TrainConfig) -> int:
    """Rows per step: full batch for small cohorts (exact gradients, noise-free stopping).

    An epoch splits the m rows into ceil(m / size) near-equal batches (no tiny last batch).
    """
    if cfg.batch_size > 0:
        return min(cfg.batch_size, m)
    return m if m <= AUTO_FULL_BATCH_MAX else AUTO_BATCH_SIZE


def _check_lambdas(lambdas) -> np.ndarray:
    lam = np.asarray(lambdas, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise InputError(f"lambdas must be a non-empty 1-D list, got shape {lam.shape}")
    if not (np.isfinite(lam).all() and (lam > 0).all()):
        raise InputError("every lambda must be positive and finite")
    return lam


@dataclass
class _Records:
    """Per-λ bookkeeping of early stopping: best-epoch parameters and figures (global index)."""

    best_w: list[torch.Tensor]
    best_b: list[torch.Tensor]
    epochs: np.ndarray
    best_epoch: np.ndarray
    best_obj: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray
    curve: np.ndarray
    wait: np.ndarray


def _new_records(st: _State, max_epochs: int) -> _Records:
    n = st.ws[0].shape[0]
    return _Records(
        best_w=[w.clone() for w in st.ws],
        best_b=[b.clone() for b in st.bs],
        epochs=np.zeros(n, np.int64),
        best_epoch=np.zeros(n, np.int64),
        best_obj=np.full(n, np.inf),
        val_loss=np.full(n, np.nan),
        val_acc=np.full(n, np.nan),
        curve=np.full((n, max_epochs), np.nan),
        wait=np.zeros(n, np.int64),
    )


def _run_epoch(st: _State, data: _Data, cfg: TrainConfig, gen: torch.Generator) -> None:
    """One pass over the training rows; the row order is drawn every epoch whatever Λ is."""
    m, bsz = data.m, _batch_size(data.m, cfg)
    if bsz >= m:
        _step(st, data.u_train, data.y_train, cfg)
        return
    perm = torch.randperm(m, generator=gen).to(data.u_train.device)
    for rows in torch.tensor_split(perm, -(-m // bsz)):
        _step(st, data.u_train[rows], data.y_train[rows], cfg)


def _record_epoch(
    rec: _Records, st: _State, epoch: int, pen: torch.Tensor, data: _Data, cfg: TrainConfig
) -> np.ndarray:
    """Score the epoch on the validation rows, keep improved λ's weights; returns stop mask.

    The score is the validation *penalised* objective, loss + (λ/2m)·Σ|θ|: the bare loss of
    the dense initial network is often the best a large λ ever sees, which would keep
    (and count as non-zero) weights the penalty is about to remove.
    """
    vl_t, va_t = _evaluate(st.ws, st.bs, data.u_val, data.y_val, cfg.activation, cfg.task, st.work)
    obj_t = vl_t + pen[st.idx] * _l1(st.ws)
    gi = st.idx.cpu().numpy()
    vl, va, obj = vl_t.cpu().numpy(), va_t.cpu().numpy(), obj_t.cpu().numpy()
    rec.curve[gi, epoch - 1] = vl
    prev = rec.best_obj[gi]
    with np.errstate(invalid="ignore"):
        improved = np.isfinite(obj) & (
            np.isinf(prev) | (obj < prev - MIN_REL_IMPROVEMENT * np.abs(prev))
        )
    if improved.any():
        rows = torch.from_numpy(improved).to(st.idx.device)
        dst = st.idx[rows]
        for best, cur in zip(rec.best_w + rec.best_b, st.ws + st.bs, strict=True):
            best[dst] = cur[rows]
        g = gi[improved]
        rec.best_obj[g], rec.best_epoch[g] = obj[improved], epoch
        rec.val_loss[g], rec.val_acc[g] = vl[improved], va[improved]
    rec.wait[gi] = np.where(improved, 0, rec.wait[gi] + 1)
    rec.epochs[gi] = epoch
    return (rec.wait[gi] >= cfg.patience) | (epoch == cfg.max_epochs)


def _train(
    data: _Data, lambdas: np.ndarray, cfg: TrainConfig, seed: int, log: Log
) -> dict[str, np.ndarray]:
    """Train every λ of ``lambdas`` as one batched model with per-λ early stopping.

    Stopped λ leave the working batch (their best weights are already recorded), so
    the loop runs while any λ trains without touching the others' results.
    """
    device = data.u_train.device
    w0, b0 = init_params(_sizes(data.u_train.shape[1], cfg), seed)
    lam = torch.as_tensor(lambdas, dtype=torch.float64, device=device)
    st = _new_state([w.to(device) for w in w0], [b.to(device) for b in b0], lam, data.m, cfg)
    rec = _new_records(st, cfg.max_epochs)
    pen = lam / (2.0 * data.m)
    # One shuffling stream for all λ: epoch e's row order depends on the seed and e only.
    gen = torch.Generator().manual_seed(_seeds(seed)[2])
    for epoch in range(1, cfg.max_epochs + 1):
        _run_epoch(st, data, cfg, gen)
        stop = _record_epoch(rec, st, epoch, pen, data, cfg)
        for j in st.idx.cpu().numpy()[stop]:
            _log_done(log, int(j), lambdas, rec)
        if stop.all():
            break
        if stop.any():
            st = _keep(st, torch.from_numpy(~stop).to(device))
        if epoch % 50 == 0:
            log(f"epoch {epoch}: {len(st.idx)}/{len(lambdas)} λ still training")
    if (rec.best_epoch == 0).any():
        log(
            f"warning: {(rec.best_epoch == 0).sum()} λ never gave a finite validation objective "
            "(diverged?); their weights are the initialisation; lower learning_rate"
        )
    return _results(rec, lambdas, data, cfg)


def _results(
    rec: _Records, lambdas: np.ndarray, data: _Data, cfg: TrainConfig
) -> dict[str, np.ndarray]:
    tl, _ = _evaluate(rec.best_w, rec.best_b, data.u_train, data.y_train, cfg.activation, cfg.task)
    out: dict[str, np.ndarray] = {"lambdas": np.asarray(lambdas, np.float64)}
    for i, (w, b) in enumerate(zip(rec.best_w, rec.best_b, strict=True)):
        out[f"W{i}"] = w.cpu().numpy().astype(np.float32)
        out[f"b{i}"] = b.cpu().numpy().astype(np.float32)
    nnz = [(w != 0).sum((1, 2)).cpu().numpy() for w in rec.best_w]
    out.update(
        epochs=rec.epochs,
        best_epoch=rec.best_epoch,
        val_objective=rec.best_obj,
        val_loss=rec.val_loss,
        val_accuracy=rec.val_acc,
        train_loss=tl.cpu().numpy(),
        nnz=np.stack(nnz, 1).astype(np.int64),
        curve_val_loss=rec.curve,
    )
    return out


def _log_done(log: Log, j: int, lambdas: np.ndarray, rec: _Records) -> None:
    nnz = [int((w[j] != 0).sum()) for w in rec.best_w]
    log(
        f"λ {j + 1}/{len(lambdas)} = {lambdas[j]:.4g}: {rec.epochs[j]} epochs, best epoch "
        f"{rec.best_epoch[j]}, val loss {rec.val_loss[j]:.4f}, val objective "
        f"{rec.best_obj[j]:.4f}, non-zero weights {nnz}"
    )


def train_path(
    U: np.ndarray,
    y: np.ndarray,
    lambdas: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    log: Log = _default_log,
) -> dict[str, np.ndarray]:
    """Train all ``lambdas`` (in the given order) as one batched model; see module docstring.

    Keys: ``lambdas``; ``W{l}`` (Λ, out, in) / ``b{l}`` (Λ, out) float32 best-epoch
    parameters; ``epochs``, ``best_epoch``; ``val_objective``, ``val_loss``,
    ``val_accuracy`` (NaN for regression) at the best epoch; ``train_loss`` at the kept
    weights; ``nnz`` (Λ, L+1); ``curve_val_loss`` (Λ, max_epochs), NaN after stopping.
    """
    lam = _check_lambdas(lambdas)
    data, _ = _prepare(U, y, cfg, seed, log)
    _log_setup(log, data, cfg, len(lam))
    return _train(data, lam, cfg, seed, log)


def train_path_sequential(
    U: np.ndarray,
    y: np.ndarray,
    lambdas: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    log: Log = _default_log,
) -> dict[str, np.ndarray]:
    """One network per λ in a Python loop: the reference and benchmark baseline of train_path."""
    lam = _check_lambdas(lambdas)
    data, _ = _prepare(U, y, cfg, seed, log)
    _log_setup(log, data, cfg, len(lam))
    return concat_chunks([_train(data, lam[i : i + 1], cfg, seed, log) for i in range(lam.size)])


def _log_setup(log: Log, data: _Data, cfg: TrainConfig, n_lam: int) -> None:
    log(
        f"training {n_lam} λ: m={data.m} training / {data.u_val.shape[0]} validation rows, "
        f"{data.u_train.shape[1]} inputs, hidden {list(cfg.hidden)}, {cfg.task}, "
        f"batch {_batch_size(data.m, cfg)}, {cfg.optimizer} lr={cfg.learning_rate}, "
        f"patience {cfg.patience}, max_epochs {cfg.max_epochs}, threads {cfg.threads}"
    )


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


# ----------------------------------------------------------------------------- λ grid


def _lambda_zero(data: _Data, cfg: TrainConfig, seed: int) -> float:
    """2m·max|∂L/∂θ| at the initialisation: above it a zero weight would stay at zero."""
    device, m = data.u_train.device, data.m
    w0, b0 = init_params(_sizes(data.u_train.shape[1], cfg), seed)
    ws = [w.to(device).unsqueeze(0) for w in w0]
    bs = [b.to(device).unsqueeze(0) for b in b0]
    total = [torch.zeros_like(w) for w in ws]
    n_blocks = -(-m // EVAL_BLOCK)
    for u, yy in zip(
        data.u_train.tensor_split(n_blocks), data.y_train.tensor_split(n_blocks), strict=True
    ):
        gws, _ = _gradients(ws, bs, u, yy, cfg.activation, cfg.task)
        for t, g in zip(total, gws, strict=True):
            t.add_(g, alpha=u.shape[0] / m)
    return 2.0 * m * max(float(t.abs().max()) for t in total)


def lambda_grid(
    U: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    count: int = 40,
    ratio: float = 1e-3,
    values: Sequence[float] | None = None,
    log: Log = _default_log,
) -> np.ndarray:
    """Descending geometric λ grid whose top zeroes every first-layer weight (checked).

    λ0 comes from the optimality condition at the initialisation; the net is non-convex and
    starts dense, so λ0·4^k (k < GRID_TRIES) are trained in one batched run and the smallest
    with an all-zero first layer becomes the top. ``values`` overrides the construction.
    """
    if values is not None:
        return np.sort(_check_lambdas(values))[::-1].copy()
    if int(count) < 1:
        raise InputError(f"lambda count must be >= 1, got {count}")
    if not 0.0 < ratio < 1.0:
        raise InputError(f"lambda ratio must lie in (0, 1), got {ratio}")
    data, _ = _prepare(U, y, cfg, seed, log)
    lam0 = _lambda_zero(data, cfg, seed)
    if not (math.isfinite(lam0) and lam0 > 0):
        raise InputError(f"the loss gradient at the initialisation is {lam0}; check y and U")
    cands = lam0 * GRID_FACTOR ** np.arange(GRID_TRIES)
    log(f"λ0 = {lam0:.4g} (optimality condition at init); checking λ0·4^k, k < {GRID_TRIES}")
    res = _train(data, cands, cfg, seed, log)
    zero = res["nnz"][:, 0] == 0
    if zero.any():
        top = float(cands[int(np.argmax(zero))])
    else:
        top = float(cands[-1])
        log(
            f"warning: first-layer weights stay non-zero up to λ = {top:.4g}; using it as the "
            "top of the grid"
        )
    grid = top * ratio ** (np.arange(count) / max(count - 1, 1))
    log(f"λ grid: {count} values from {grid[0]:.4g} down to {grid[-1]:.4g}")
    return grid


# ----------------------------------------------------------------------------- Z and networks


def z_statistics(lambdas: np.ndarray, weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Z per weight: the largest λ at which it is non-zero, 0 if zero at every λ.

    A weight that is never zeroed therefore gets the top of the grid (the paper's code gives
    it 0, which would rank the most robust weights last).
    """
    lam = _check_lambdas(lambdas)
    out = []
    for i, w in enumerate(weights):
        w = np.asarray(w)
        if w.ndim != 3 or w.shape[0] != lam.size:
            raise InputError(f"weights[{i}] must have shape (Λ={lam.size}, out, in), got {w.shape}")
        out.append(np.where(w != 0, lam[:, None, None], 0.0).max(axis=0))
    return out


def _net_tensors(weights, biases, U, activation: str):
    _check_choice("activation", activation, ACTIVATIONS)
    if len(weights) != len(biases) or not weights:
        raise InputError("weights and biases must be non-empty lists of equal length")
    ws = [torch.as_tensor(np.asarray(w), dtype=torch.float64) for w in weights]
    bs = [torch.as_tensor(np.asarray(b), dtype=torch.float64) for b in biases]
    u = torch.as_tensor(np.asarray(U), dtype=torch.float64)
    n_in = u.shape[1] if u.ndim == 2 else -1
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        if w.ndim != 2 or w.shape[1] != n_in or b.shape != (w.shape[0],):
            raise InputError(
                f"layer {i}: weight {tuple(w.shape)} / bias {tuple(b.shape)} do not fit an "
                f"input of width {n_in} (weights are (out, in))"
            )
        n_in = w.shape[0]
    if not torch.isfinite(u).all():
        raise InputError("U must not contain NaN/inf values")
    return ws, bs, u


def _forward_one(ws, bs, u, activation: str) -> torch.Tensor:
    f, h = _act_fn(activation), u
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        h = torch.addmm(b, h, w.T)
        if i < len(ws) - 1:
            h = f(h)
    return h


def predict(
    weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], U: np.ndarray, activation: str
) -> np.ndarray:
    """Raw outputs (logits for classification) of one network, (n, out), float64."""
    ws, bs, u = _net_tensors(weights, biases, U, activation)
    with torch.no_grad():
        return _forward_one(ws, bs, u, activation).numpy()


def input_effects(
    weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], U: np.ndarray, activation: str
) -> np.ndarray:
    """Mean over rows of ∂output_k/∂input_j (logit scale), (n_inputs, out), via autograd."""
    ws, bs, u = _net_tensors(weights, biases, U, activation)
    u = u.clone().requires_grad_(True)
    out = _forward_one(ws, bs, u, activation)
    k = out.shape[1]
    basis = torch.eye(k, dtype=out.dtype).unsqueeze(1).expand(k, out.shape[0], k)
    (g,) = torch.autograd.grad(out, u, grad_outputs=basis, is_grads_batched=True)
    return g.mean(1).T.numpy()
