"""The knockoff network: per-input units, an MLP on top, and its batched kernels.

Every input column u_j of ``U = [X, X~]`` first passes through ``units`` univariate units of
its own, ``φ_jc = act(a_jc·u_j + b_jc)``, next to the identity channel ``φ_j0 = u_j``; the
first dense layer θ⁽⁰⁾ then reads the 2p·(units + 1) channels, and hidden layers follow as
in the paper. With ``units = 0`` this is the paper's MLP on [X, X~] exactly. Per-input units
make a non-monotone effect (x², |x|, cos x) a first-order signal of one input's group of
first-layer weights; a dense first layer has to discover it through its hidden units, which
it does not at cohort sizes (docs/method.md, "Per-input units").

Columns of θ⁽⁰⁾ are ordered input by input: input j owns columns j·(units+1) … j·(units+1)+units,
so "input j's fan-out" is one contiguous block.

The batched form carries a leading λ axis on every parameter; each layer is one ``torch.bmm``
over it with the shared rows entering as a stride-0 expand. The backward pass is written by
hand (checked against autograd in the tests): it keeps activations in reused buffers and
makes every λ's arithmetic independent of how many λ share the call.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from knockoffnet.errors import InputError
from knockoffnet.moments import all_finite
from knockoffnet.vocabulary import ACTIVATIONS, LEAKY_SLOPE

# Rows per block when evaluating, fixed so sums do not depend on Λ.
EVAL_BLOCK = 2048
# Float32 values (16 MB) one λ's input expansion (rows, d, units + 1) may hold while
# evaluating: fewer rows per block beyond d·(units+1) = 2048 inputs (p ≈ 200 with 4 units).
EXPANSION_BUDGET = 2**22


def eval_rows(d: int, channels: int) -> int:
    """Rows per evaluation block for d inputs of ``channels`` columns each; never depends on
    Λ, so a batched path sums exactly as one network per λ does."""
    return int(max(16, min(EVAL_BLOCK, EXPANSION_BUDGET // max(1, d * channels))))


Work = dict[str, torch.Tensor] | None


@contextmanager
def flush_denormals() -> Iterator[None]:
    """CPU arithmetic with subnormal floats (|x| < 1.2e-38 in float32) flushed to zero.

    Inside an input group that the penalty keeps, the weights of a hidden unit that no row
    activates get no gradient while the group prox shrinks them by a factor < 1 every step,
    so they decay geometrically into the subnormal range, where x86 CPUs compute 5-10×
    slower: the small-λ networks of a 100,000 × 1,000 cohort held 35,000 such weights and
    trained at a quarter of the speed of the large-λ ones (docs/method.md, "Subnormal
    weights"). Flushed, such a weight becomes an exact zero, which it is in effect. Sets the
    calling thread's mode (the training threads: one by default) and turns it off again on
    exit, the process default (torch offers no way to read the mode before).
    """
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)


@dataclass
class Net:
    """Parameters of one network (or of Λ networks with a leading λ axis).

    ``ua``/``ub`` (d, units) are the per-input units' slopes and offsets (None when
    units = 0); ``ws[l]`` is θ⁽ˡ⁾ (out, in); ``bs[l]`` its bias.
    """

    ua: torch.Tensor | None
    ub: torch.Tensor | None
    ws: list[torch.Tensor]
    bs: list[torch.Tensor]

    def tensors(self) -> list[torch.Tensor]:
        """Every parameter, units first; the order every optimiser buffer follows."""
        head = [] if self.ua is None else [self.ua, self.ub]
        return head + self.ws + self.bs

    def replace(self, tensors: Sequence[torch.Tensor]) -> Net:
        """A Net of the same layout from a flat list in :meth:`tensors` order."""
        tensors = list(tensors)
        k = 0 if self.ua is None else 2
        n = len(self.ws)
        ua, ub = (tensors[0], tensors[1]) if k else (None, None)
        return Net(ua, ub, tensors[k : k + n], tensors[k + n : k + 2 * n])

    @property
    def units(self) -> int:
        return 0 if self.ua is None else int(self.ua.shape[-1])

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Net:
        return self.replace([fn(t) for t in self.tensors()])


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise InputError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return name


def layer_sizes(n_inputs: int, units: int, hidden: Sequence[int], n_out: int) -> list[int]:
    """Widths seen by the dense layers: the expanded input, the hidden layers, the output."""
    return [n_inputs * (units + 1), *hidden, n_out]


def init_net(n_inputs: int, units: int, hidden: Sequence[int], n_out: int, seed: int) -> Net:
    """One network from ``seed``: units a, b ~ N(0, 1); weights and biases U(±1/√fan_in).

    U(±1/√in) is what nn.Linear draws. With units = 0 nothing else is drawn, so the paper's
    network is reproduced draw for draw.
    """
    gen = torch.Generator().manual_seed(int(seed))
    ua = ub = None
    if units:
        ua = torch.randn(n_inputs, units, generator=gen)
        ub = torch.randn(n_inputs, units, generator=gen)
    ws, bs = [], []
    for n_in, n_out_ in itertools.pairwise(layer_sizes(n_inputs, units, hidden, n_out)):
        bound = 1.0 / math.sqrt(n_in)
        ws.append((torch.rand(n_out_, n_in, generator=gen) * 2 - 1) * bound)
        bs.append((torch.rand(n_out_, generator=gen) * 2 - 1) * bound)
    return Net(ua, ub, ws, bs)


def stack(net: Net, n: int) -> Net:
    """n copies of one network along a new leading λ axis."""
    return net.map(lambda t: t.unsqueeze(0).repeat(n, *([1] * t.dim())))


# ----------------------------------------------------------------------------- kernels


def _buffer(work: Work, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A scratch tensor, grown on demand along axis 1 (rows) and reused between steps."""
    t = None if work is None else work.get(name)
    if t is None or t.shape[0] != shape[0] or t.shape[2:] != shape[2:] or t.shape[1] < shape[1]:
        t = torch.empty(shape, dtype=like.dtype, device=like.device)
        if work is not None:
            work[name] = t
    return t[:, : shape[1]] if t.shape[1] != shape[1] else t


def mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Batched a @ b (both (Λ, ·, ·)), padding a single row/column to two.

    With one row or column BLAS switches to gemv, which for Λ = 1 rounds differently from
    the batched kernel; padding keeps a λ's result independent of how many λ share a call.
    """
    one_row, one_col = int(a.shape[-2] == 1), int(b.shape[-1] == 1)
    if one_row or one_col:
        a = F.pad(a, (0, 0, 0, 1)) if one_row else a
        b = F.pad(b, (0, 1)) if one_col else b
        r = torch.bmm(a, b)
        r = r[:, : r.shape[1] - one_row, : r.shape[2] - one_col]
        return r if out is None else out.copy_(r)
    return torch.bmm(a, b) if out is None else torch.bmm(a, b, out=out)


def act_(z: torch.Tensor, name: str) -> torch.Tensor:
    """Activation in place (backward needs only a = act(z), never z)."""
    if name == "relu":
        return z.relu_()
    if name == "tanh":
        return z.tanh_()
    if name == "elu":  # relu(z) + expm1(min(z, 0)); F.elu rounds by element position
        neg = z.clamp(max=0.0).expm1_()
        return z.relu_().add_(neg)
    return F.leaky_relu_(z, LEAKY_SLOPE)


def act_backward_(ga: torch.Tensor, a: torch.Tensor, name: str) -> torch.Tensor:
    """∂loss/∂z from ∂loss/∂a, in place in ``ga``, using a = act(z) (one fused pass)."""
    aten = torch.ops.aten
    if name == "relu":
        return aten.threshold_backward.grad_input(ga, a, 0.0, grad_input=ga)
    if name == "tanh":
        return aten.tanh_backward.grad_input(ga, a, grad_input=ga)
    if name == "elu":
        return aten.elu_backward.grad_input(ga, 1.0, 1, 1, True, a, grad_input=ga)
    return aten.leaky_relu_backward.grad_input(ga, a, LEAKY_SLOPE, True, grad_input=ga)


def act_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Out-of-place activation for autograd use (importances, effects, predictions)."""
    return {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "elu": F.elu,
        "leaky_relu": lambda z: F.leaky_relu(z, LEAKY_SLOPE),
    }[name]


def _expand(net: Net, x: torch.Tensor, act: str, work: Work) -> tuple[torch.Tensor, torch.Tensor]:
    """(Λ, B, d·(units+1)) channels [u_j, act(a_j1 u_j + b_j1), …] and the unit part (Λ, B, d, k)."""
    n_lam = net.ws[0].shape[0]
    rows, d = x.shape
    k = net.units
    phi = _buffer(work, "phi", (n_lam, rows, d, k + 1), x)
    phi[..., 0] = x
    # The units are computed in a contiguous buffer and copied into the channels: the
    # backward pass reads them in act_backward_, which on the strided view (every
    # (k+1)-th element) was a third of a step's time at 2,000 inputs; values are the same.
    units = _buffer(work, "units", (n_lam, rows, d, k), x)
    torch.mul(x.view(1, rows, d, 1), net.ua.unsqueeze(1), out=units)
    act_(units.add_(net.ub.unsqueeze(1)), act)
    phi[..., 1:] = units
    return phi.view(n_lam, rows, d * (k + 1)), units


def forward(
    net: Net, x: torch.Tensor, act: str, work: Work = None
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
    """Outputs (Λ, B, K) for rows x (B, d) shared by all λ, each dense layer's input, units."""
    n_lam, rows = net.ws[0].shape[0], x.shape[0]
    units = None
    if net.ua is None:
        h0 = x.expand(n_lam, rows, x.shape[1])
    else:
        h0, units = _expand(net, x, act, work)
    h = _buffer(work, "a1", (n_lam, rows, net.ws[0].shape[1]), x)
    mm(h0, net.ws[0].transpose(1, 2), out=h).add_(net.bs[0].unsqueeze(1))
    inputs = [h0]
    for i in range(1, len(net.ws)):
        h = act_(h, act)
        inputs.append(h)
        h = mm(h, net.ws[i].transpose(1, 2)).add_(net.bs[i].unsqueeze(1))
    return h, inputs, units


# σ and softplus are spelled out with exp/log1p: torch's own sigmoid/softplus kernels round
# differently in the vectorised loop's tail, so a λ's value would depend on its position in
# the batched tensor (and so on the chunk it was trained in).


def _sigmoid(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-z).add_(1.0).reciprocal_()


def _softplus(z: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(-z.abs())).add_(z.clamp(min=0.0))


def loss_rows(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
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


def gradients(
    net: Net, x: torch.Tensor, y: torch.Tensor, act: str, task: str, work: Work = None
) -> Net:
    """Hand-written backward pass of the mean batch data loss for all λ at once."""
    out, inputs, units = forward(net, x, act, work)
    g = _loss_grad(out, y, task)
    n_layers = len(net.ws)
    gws: list[torch.Tensor] = [torch.empty(0)] * n_layers
    gbs: list[torch.Tensor] = [torch.empty(0)] * n_layers
    for i in range(n_layers - 1, -1, -1):
        gbs[i] = g.sum(1)
        gws[i] = mm(g.transpose(1, 2), inputs[i])
        if i == 0:
            break
        ga = _buffer(work, "g1", inputs[1].shape, x) if i == 1 else None
        if g.shape[-1] == 1:  # one output unit: ∂loss/∂a is an outer product, no matmul
            ga = torch.mul(g, net.ws[i], out=ga)
        else:
            ga = mm(g, net.ws[i], out=ga)
        g = act_backward_(ga, inputs[i], act)
    if net.ua is None:
        return Net(None, None, gws, gbs)
    # Through the units: ∂/∂φ_jc, then act', then a_jc (times u_j) and b_jc. Only the unit
    # channels' columns of θ⁽⁰⁾ enter (the identity channel's gradient is not needed), so
    # the product comes out contiguous in the units' layout: a fifth less matmul and no
    # strided copy of a (rows, d, units) block per step, the same sums (each element is
    # one dot product over the hidden units).
    n_lam, rows, d, k = units.shape
    w_units = group_view(net.ws[0], d)[..., 1:].reshape(n_lam, -1, d * k)
    gz = _buffer(work, "gz", (n_lam, rows, d * k), x)
    gz = act_backward_(mm(g, w_units, out=gz).view(n_lam, rows, d, k), units, act)
    gb = gz.sum(1)
    ga_ = gz.mul_(x.view(1, rows, d, 1)).sum(1)
    return Net(ga_, gb, gws, gbs)


def evaluate(
    net: Net, u: torch.Tensor, y: torch.Tensor, act: str, task: str, work: Work = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean data loss and accuracy per λ (float64), in fixed row blocks to bound memory."""
    n_lam = net.ws[0].shape[0]
    loss = torch.zeros(n_lam, dtype=torch.float64, device=u.device)
    hits = torch.zeros(n_lam, dtype=torch.float64, device=u.device)
    rows = eval_rows(u.shape[1], net.units + 1)
    n_blocks = -(-u.shape[0] // rows)
    for ub, yb in zip(u.tensor_split(n_blocks), y.tensor_split(n_blocks), strict=True):
        out, _, _ = forward(net, ub, act, work)
        loss += loss_rows(out, yb, task).sum(1).double()
        if task == "binary":
            hits += ((out[..., 0] > 0) == (yb == 1)).sum(1).double()
        elif task == "multiclass":
            hits += (out.argmax(-1) == yb).sum(1).double()
    acc = hits / u.shape[0] if task != "regression" else torch.full_like(hits, float("nan"))
    return loss / u.shape[0], acc


def per_lambda_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over all but the λ axis in float64, last axis first.

    A one-shot reduction of a single λ's block would be split across threads (a different
    summation order than for Λ > 1); row sums first keep the order fixed.
    """
    t = t.sum(-1, dtype=torch.float64)
    while t.dim() > 1:
        t = t.sum(-1)
    return t


def group_view(w0: torch.Tensor, n_inputs: int) -> torch.Tensor:
    """θ⁽⁰⁾ (…, h, d·(units+1)) viewed as (…, h, d, units+1): input j's fan-out is [..., j, :]."""
    return w0.view(*w0.shape[:-1], n_inputs, w0.shape[-1] // n_inputs)


def group_norms(w0: torch.Tensor, n_inputs: int) -> torch.Tensor:
    """‖θ⁽⁰⁾ fan-out of input j‖₂ per λ: (Λ, d), float64, in a fixed summation order."""
    sq = group_view(w0, n_inputs).square().sum(-1, dtype=torch.float64).sum(-2)
    return sq.sqrt()


# ----------------------------------------------------------------------------- one network


def net_from_arrays(arrays: dict[str, np.ndarray], index: int | None = None) -> Net:
    """A float64 Net from ``W{l}``/``b{l}`` (+ ``unit_a``/``unit_b``) arrays; ``index`` picks
    one λ of a path's stacked arrays."""
    n_layers = sum(1 for k in arrays if k.startswith("W") and k[1:].isdigit())
    if n_layers == 0:
        raise InputError("no weight arrays W0, W1, … in the network file")

    def get(key: str) -> torch.Tensor:
        a = np.asarray(arrays[key])
        return torch.as_tensor(a if index is None else a[index], dtype=torch.float64)

    ua = get("unit_a") if "unit_a" in arrays else None
    ub = get("unit_b") if "unit_b" in arrays else None
    return Net(
        ua, ub, [get(f"W{i}") for i in range(n_layers)], [get(f"b{i}") for i in range(n_layers)]
    )


def net_arrays(net: Net) -> dict[str, np.ndarray]:
    """The inverse of :func:`net_from_arrays` (float32)."""
    out = {f"W{i}": w.cpu().numpy().astype(np.float32) for i, w in enumerate(net.ws)}
    out.update({f"b{i}": b.cpu().numpy().astype(np.float32) for i, b in enumerate(net.bs)})
    if net.ua is not None:
        out["unit_a"] = net.ua.cpu().numpy().astype(np.float32)
        out["unit_b"] = net.ub.cpu().numpy().astype(np.float32)
    return out


def _check_one(net: Net, U: np.ndarray, activation: str) -> np.ndarray:
    """U as an array that fits the network (checked a block of rows at a time: callers turn
    blocks into float64 tensors, never the whole matrix)."""
    check_activation(activation)
    U = np.asarray(U)
    if U.ndim != 2 or not all_finite(U):
        raise InputError("U must be a finite 2-D array (rows × inputs)")
    n_in = U.shape[1] * (net.units + 1)
    for i, (w, b) in enumerate(zip(net.ws, net.bs, strict=True)):
        if w.ndim != 2 or w.shape[1] != n_in or b.shape != (w.shape[0],):
            raise InputError(
                f"layer {i}: weight {tuple(w.shape)} / bias {tuple(b.shape)} do not fit an "
                f"input of width {n_in} (weights are (out, in))"
            )
        n_in = w.shape[0]
    return U


def row_blocks(U: np.ndarray, block: int):
    """float64 tensors of consecutive row blocks of U."""
    for start in range(0, U.shape[0], block):
        yield torch.as_tensor(U[start : start + block], dtype=torch.float64)


def forward_one(net: Net, u: torch.Tensor, activation: str) -> torch.Tensor:
    """Outputs (n, K) of one network (autograd-friendly, any dtype)."""
    f = act_fn(activation)
    h = u
    if net.ua is not None:
        units = f(u.unsqueeze(-1) * net.ua + net.ub)
        h = torch.cat([u.unsqueeze(-1), units], -1).reshape(u.shape[0], -1)
    for i, (w, b) in enumerate(zip(net.ws, net.bs, strict=True)):
        h = torch.addmm(b, h, w.T)
        if i < len(net.ws) - 1:
            h = f(h)
    return h


def predict(net: Net, U: np.ndarray, activation: str) -> np.ndarray:
    """Raw outputs (logits for classification) of one network, (n, K), float64."""
    U = _check_one(net, U, activation)
    block = eval_rows(U.shape[1], net.units + 1)
    # One output array filled in place: small per-block results kept between the blocks'
    # large temporaries fragment the C heap, which then grows by about a block per block
    # (a transient 1.5 GB over 20,000 rows × 2,000 inputs, benchmarks/README.md).
    out = np.empty((U.shape[0], net.ws[-1].shape[0]))
    with torch.no_grad():
        for start, u in zip(range(0, U.shape[0], block), row_blocks(U, block), strict=True):
            out[start : start + u.shape[0]] = forward_one(net, u, activation).numpy()
    return out


def _gradient_blocks(net: Net, U: np.ndarray, activation: str, block: int):
    """∂output_k/∂input_j per row, (rows, inputs, K) float64, one row block at a time."""
    U = _check_one(net, U, activation)
    k = net.ws[-1].shape[0]
    for u in row_blocks(U, block):
        u = u.requires_grad_(True)
        out = forward_one(net, u, activation)
        basis = torch.eye(k, dtype=out.dtype).unsqueeze(1).expand(k, out.shape[0], k)
        (g,) = torch.autograd.grad(out, u, grad_outputs=basis, is_grads_batched=True)
        yield g.permute(1, 2, 0)


def input_summaries(
    net: Net, U: np.ndarray, activation: str, block: int = EVAL_BLOCK
) -> dict[str, np.ndarray]:
    """Row means of the input gradients, accumulated block by block (memory O(block)).

    ``effects`` (inputs, K): mean ∂output_k/∂u_j (logit scale), signed;
    ``importance`` (inputs,): E‖∂f/∂u_j‖² over outputs, softmax logits centred over classes.
    A squared derivative does not cancel where the effect changes sign (|x| = relu(x) +
    relu(−x)), and the norm over classes does not cancel classes at the two ends the way a
    signed sum over outputs does.
    """
    n, d = np.asarray(U).shape
    k = net.ws[-1].shape[0]
    # Accumulated in place, as predict fills its output: nothing small is allocated between
    # one block's temporaries and the next (heap fragmentation).
    effects = torch.zeros(d, k, dtype=torch.float64)
    importance = torch.zeros(d, dtype=torch.float64)
    block = min(block, eval_rows(d, net.units + 1))
    for g in _gradient_blocks(net, U, activation, block):
        effects += g.sum(0)
        c = g - g.mean(-1, keepdim=True) if g.shape[-1] > 1 else g
        importance += c.square().sum(-1).sum(0)
    return {"effects": (effects / n).numpy(), "importance": (importance / n).numpy()}
