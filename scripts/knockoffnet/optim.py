"""Proximal step rules for the penalised objective of every λ (batched over λ).

The objective of one λ is ``mean data loss + (λ/2m)·P(θ)`` with P either the paper's
element-wise ``Σ|θ|`` over every weight matrix (``l1``) or ``Σ_j ‖fan-out of input j‖₂`` over
the first layer only (``group``). Every rule takes a gradient step on the data loss and then
the proximal map of the penalty, which sets weights (or whole input groups) to exactly zero.

``adam`` preconditions both steps with the same diagonal D = √v̂ + ε (per weight for ``l1``;
one value per input group for ``group``, the group's mean second moment), i.e. it is the
proximal step in the D-metric: its fixed points are the stationary points of the penalised
objective, not of a rescaled one (docs/method.md, "Step rules"). Each λ's arithmetic is
element-wise or reduced in a fixed order, so it does not depend on which λ share a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from knockoffnet.coupling import Coupling
from knockoffnet.network import Net, group_view, per_lambda_sum

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass
class State:
    """Parameters and step-rule buffers of the λ values still training (rows = active λ)."""

    idx: torch.Tensor  # global λ index of each row
    pen: torch.Tensor  # (Λa,) penalty factor λ/2m
    net: Net
    bufs: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    k: torch.Tensor | None = None  # FISTA steps since (re)start
    t: int = 0  # Adam steps taken
    work: dict[str, torch.Tensor] = field(default_factory=dict)  # scratch, sized for Λa
    coupling: Coupling | None = None  # the coupled dense fit's V and C (knockoffnet.coupling)


def new_state(net: Net, pen: torch.Tensor, optimizer: str) -> State:
    """A fresh state for a batched ``net`` (leading λ axis) and per-λ penalty factors."""
    st = State(idx=torch.arange(pen.shape[0], device=pen.device), pen=pen, net=net)
    if optimizer in ("momentum", "fista"):  # both keep the previous iterate
        st.bufs = {"prev": [t.clone() for t in net.tensors()]}
    if optimizer == "fista":
        st.k = torch.zeros(pen.shape[0], device=pen.device)
    if optimizer == "adam":
        st.bufs = {"m": [torch.zeros_like(t) for t in net.tensors()], "v": []}
    return st


def attach(st: State, coupling: Coupling) -> None:
    """Train ``st`` coupled: Adam steps V and C, and θ⁽⁰⁾'s tested block follows as V ⊙ C.
    Only the dense fit couples (no penalty: the prox would act on θ⁽⁰⁾, not on V and C)."""
    if "m" not in st.bufs or bool((st.pen != 0).any()):
        raise ValueError("a coupled fit is an unpenalised Adam fit (the dense fit)")
    st.coupling = coupling
    st.bufs["m"] += [torch.zeros_like(t) for t in coupling.tensors()]


def keep(st: State, rows: torch.Tensor) -> State:
    """Drop stopped λ from the working batch (their best weights are already stored)."""
    return State(
        idx=st.idx[rows],
        pen=st.pen[rows],
        net=st.net.map(lambda t: t[rows]),
        bufs={k: [t[rows] for t in v] for k, v in st.bufs.items()},
        k=None if st.k is None else st.k[rows],
        t=st.t,
        coupling=None if st.coupling is None else st.coupling.rows(rows),
    )


def penalty(net: Net, kind: str, n_inputs: int, free: int = 0) -> torch.Tensor:
    """P(θ) per λ, float64: Σ|θ| over every weight (``l1``) or Σ_j ‖fan-out_j‖₂ (``group``).

    The last ``free`` inputs (covariates: adjusted for, never tested) carry no penalty.
    """
    pen = n_inputs - free
    if kind == "l1":
        w0 = group_view(net.ws[0], n_inputs)[..., :pen, :]
        return per_lambda_sum(w0.abs()) + sum(per_lambda_sum(w.abs()) for w in net.ws[1:])
    v = group_view(net.ws[0], n_inputs)[..., :pen, :]
    return per_lambda_sum(v.square().sum(-1, dtype=torch.float64).sum(-2).sqrt())


def soft_threshold(w: torch.Tensor, thr: torch.Tensor | float) -> torch.Tensor:
    """Proximal map of thr·|w|: shrink towards 0 by thr; |w| <= thr becomes exactly +0.0."""
    return _soft_threshold_(w.clone(), torch.as_tensor(thr, dtype=w.dtype, device=w.device))


def _soft_threshold_(w: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """In-place soft-threshold; w - clamp(w) is w - w = +0.0 exactly inside the dead zone."""
    return w.sub_(torch.clamp(w, -thr, thr))


def group_threshold_(
    w0: torch.Tensor, thr: torch.Tensor, n_inputs: int, free: int = 0
) -> torch.Tensor:
    """Proximal map of thr·Σ_j‖fan-out_j‖₂ in place: each input's block shrinks towards 0 as
    a whole and becomes exactly +0.0 when its norm is ≤ thr (thr broadcast to (Λ, 1, d, 1));
    the last ``free`` inputs are left alone."""
    v = group_view(w0, n_inputs)[..., : n_inputs - free, :]
    thr = thr if thr.dim() < 3 or thr.shape[-2] == 1 else thr[..., : n_inputs - free, :]
    norm = v.square().sum(-1, keepdim=True).sum(-3, keepdim=True).sqrt_()
    scale = torch.where(norm > thr, 1.0 - thr / norm.clamp(min=1e-30), torch.zeros_like(norm))
    v.mul_(scale).add_(0.0)  # -0.0 + 0.0 = +0.0: zeros are +0.0 as with soft_threshold
    return w0


def _prox_(
    net: Net, thr: torch.Tensor, kind: str, n_inputs: int, scale=None, free: int = 0
) -> None:
    """Penalty prox on the weights in place; ``thr`` (Λa,) = step·λ/2m; ``scale`` the Adam
    preconditioner of each weight (l1) or of θ⁽⁰⁾'s groups (group), dividing the threshold;
    the last ``free`` inputs' first-layer weights are not penalised."""
    if kind == "group":
        t = thr.view(-1, 1, 1, 1)
        group_threshold_(net.ws[0], t if scale is None else t / scale[0], n_inputs, free)
        return
    for i, w in enumerate(net.ws):
        t = thr.view(-1, 1, 1)
        t = t if scale is None else t / scale[i]
        if i == 0 and free:
            cols = w.shape[-1] - free * (w.shape[-1] // n_inputs)
            _soft_threshold_(w[..., :cols], t if t.shape[-1] == 1 else t[..., :cols])
            continue
        _soft_threshold_(w, t)


def step(
    st: State,
    grads: Net,
    optimizer: str,
    lr: float,
    momentum: float,
    kind: str,
    n_inputs: int,
    free: int = 0,
) -> None:
    """One proximal step on every active λ (in place). FISTA computes its own gradient.

    Adam's step of the first layer is scaled by :func:`first_layer_scale` (its fan-in)."""
    thr = (lr * st.pen).to(st.net.ws[0].dtype)
    params, gs = st.net.tensors(), grads.tensors()
    if optimizer == "adam":
        fan_in = st.net.ws[0].shape[-1]
        _adam_step(st, gs, lr, thr, kind, n_inputs, free, first_layer_scale(fan_in))
        return
    moms: list[torch.Tensor | None] = [None] * len(params)
    if optimizer == "momentum":
        # Heavy ball on the iterates (iPiano): θ⁺ = prox(θ - lr·g + μ(θ - θ⁻)). Its fixed
        # point is the penalised optimum; a momentum buffer of data gradients alone would
        # settle at the optimum for (1 - μ)·λ, because the prox only sees one step's shrinkage.
        prev = st.bufs["prev"]
        moms = [(t - p).mul_(momentum) for t, p in zip(params, prev, strict=True)]
        for p, t in zip(prev, params, strict=True):
            p.copy_(t)
    for t, g, mo in zip(params, gs, moms, strict=True):
        t.sub_(g, alpha=lr)
        if mo is not None:
            t.add_(mo)
    _prox_(st.net, thr, kind, n_inputs, free=free)


# Fan-in of θ⁽⁰⁾ up to which Adam takes its full step there (d·(units + 1) = 1024: p ≈ 100
# with one knockoff copy and 4 units; every simulation design and the bundled cohorts).
ADAM_FAN_IN = 1024


def first_layer_scale(fan_in: int) -> float:
    """Adam step multiplier of the first layer and the per-input units feeding it:
    min(1, ADAM_FAN_IN / fan-in).

    Adam moves every weight by about the step size whatever its gradient, so one step shifts
    a hidden unit's input by up to step × fan-in. At p = 1000 (fan-in 10,005) the first steps
    pushed every ReLU below zero for some seeds, leaving a network that outputs a constant
    (validation loss log 2 from the first epoch: docs/method.md, "Adam at large fan-in");
    dividing the step by the fan-in, as μP does for hidden layers, keeps that shift bounded.
    The units' parameters move every channel of that sum too, so they take the same step.
    """
    return min(1.0, ADAM_FAN_IN / max(1, int(fan_in)))


def _adam_step(
    st: State,
    gs: list[torch.Tensor],
    lr: float,
    thr: torch.Tensor,
    kind: str,
    n_inputs: int,
    free: int = 0,
    first_scale: float = 1.0,
) -> None:
    b1, b2 = ADAM_BETAS
    st.t += 1
    c1, c2 = 1.0 - b1**st.t, 1.0 - b2**st.t
    params = st.net.tensors()
    n_net = len(params)
    first = n_net - 2 * len(st.net.ws)  # index of θ⁽⁰⁾ in the flat list
    if st.coupling is not None:  # V and C last; θ⁽⁰⁾'s tested block is rewritten below
        params = params + st.coupling.tensors()
        gs = list(gs) + st.coupling.gradients(gs[first], n_inputs)
    ms, vs = st.bufs["m"], st.bufs["v"]
    grouped = kind == "group"
    if not vs:  # second moments: one per θ⁽⁰⁾ group under the group penalty, else per weight
        for i, p in enumerate(params):
            if grouped and i == first:
                vs.append(torch.zeros_like(_group_mean(p * 0, n_inputs)))
            else:
                vs.append(torch.zeros_like(p))
    scales: list[torch.Tensor] = []
    for i, (p, g, m, v) in enumerate(zip(params, gs, ms, vs, strict=True)):
        m.mul_(b1).add_(g, alpha=1 - b1)
        # θ⁽⁰⁾, the per-input units before it, and the coupling that makes θ⁽⁰⁾
        f = first_scale if i <= first or i >= n_net else 1.0
        if grouped and i == first:
            v.mul_(b2).add_(_group_mean(g * g, n_inputs), alpha=1 - b2)
            d = v.div(c2).sqrt_().add_(ADAM_EPS)  # (Λ, 1, d, 1)
            group_view(p, n_inputs).sub_(group_view(m, n_inputs).div(d).mul_(lr * f / c1))
        else:
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            d = v.div(c2).sqrt_().add_(ADAM_EPS)
            p.sub_(m.div(d).mul_(lr * f / c1))
        if first <= i < first + len(st.net.ws):
            # the prox threshold follows the step actually taken: lr·f / d
            scales.append(d if f == 1.0 else d / f)
    _prox_(st.net, thr, kind, n_inputs, scale=scales, free=free)
    if st.coupling is not None:
        st.coupling.expand_(st.net.ws[0], n_inputs)


def _group_mean(t: torch.Tensor, n_inputs: int) -> torch.Tensor:
    """Mean over each input's block of θ⁽⁰⁾ (hidden units and channels): (Λ, 1, d, 1)."""
    v = group_view(t, n_inputs)
    return v.sum(-1, keepdim=True).sum(-3, keepdim=True).div_(v.shape[-1] * v.shape[-3])


def fista_step(
    st: State,
    grad_at,  # callable Net -> Net: the data-loss gradient at a point
    lr: float,
    kind: str,
    n_inputs: int,
    free: int = 0,
) -> None:
    """FISTA: gradient at the extrapolated point, prox, gradient-mapping adaptive restart.

    Restart (β back to 0) per λ when the step points against the momentum
    (O'Donoghue & Candès), which keeps the non-convex path from overshooting.
    """
    assert st.k is not None
    thr = (lr * st.pen).to(st.net.ws[0].dtype)
    beta = st.k / (st.k + 3.0)
    params, prev = st.net.tensors(), st.bufs["prev"]
    ys = [
        (t - p).mul_(beta.view(-1, *([1] * (t.dim() - 1)))).add_(t)
        for t, p in zip(params, prev, strict=True)
    ]
    ynet = st.net.replace(ys)
    g = grad_at(ynet).tensors()
    new = st.net.replace([yv.sub(gv, alpha=lr) for yv, gv in zip(ys, g, strict=True)])
    _prox_(new, thr, kind, n_inputs, free=free)
    news = new.tensors()
    # ⟨y - x⁺, x⁺ - x⟩ > 0 means the step opposes the momentum: restart that λ.
    dot = torch.zeros(st.k.shape, dtype=torch.float64, device=st.k.device)
    for yv, nv, ov in zip(ys, news, params, strict=True):
        dot += per_lambda_sum((yv - nv) * (nv - ov))
    st.bufs["prev"] = params
    st.net = new
    st.k = torch.where(dot > 0, torch.zeros_like(st.k), st.k + 1.0)
