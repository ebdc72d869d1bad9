"""Per-input summaries of one fitted knockoff network (the chosen λ of a run).

``importance_ol`` — One Layer: ‖fan-out of input j‖₂ over θ⁽⁰⁾ (its hidden units and unit
channels). It reads the first layer only, as the paper's One Layer filter does, but as a
magnitude: the paper's Z-sum ranks inputs by when they *enter* a cold path, which favours
linear effects (docs/method.md, "What the statistics cancel").

``importance_ml`` — Multiple Layers: E_rows ‖∂f/∂u_j‖² through every layer, over the outputs
(class-centred logits for multiclass). A squared derivative does not cancel a non-monotone
effect, and a norm over classes does not cancel the classes at the two ends, where the
paper's signed product of weight matrices summed over classes does both.

Both are computed column by column of ``[X, X~]`` with the same function, so swapping x_j and
x~_j swaps the two importances: W = imp_j − imp_{j+p} has the flip-sign property whenever the
training does (tests/test_statistics.py; the training side in tests/test_path.py).

``Z0_input``/``W0_input`` collapse θ⁽⁰⁾'s unit channels to one column per input (Z: the
largest over the channels; θ: the channels weighted by their mean derivative, i.e. the
first layer linearised at the data), for the paper's statistics and for Reduce Weight.
"""

from __future__ import annotations

import numpy as np
import torch

from knockoffnet.network import Net, act_fn, eval_rows, group_view, input_summaries, row_blocks


def linearised_first_layer(net: Net, U: np.ndarray, activation: str) -> np.ndarray:
    """θ⁽⁰⁾ per input, (h, d): Σ_c θ⁽⁰⁾[:, j, c] · mean_rows ∂φ_jc/∂u_j (channel 0 is u_j)."""
    w0 = group_view(net.ws[0].detach().double(), U.shape[1])  # (h, d, k+1)
    if net.ua is None:
        return w0[..., 0].numpy()
    f = act_fn(activation)
    a, b = net.ua.detach().double(), net.ub.detach().double()
    slope = torch.zeros_like(a)
    block = eval_rows(U.shape[1], net.units + 1)
    for rows in row_blocks(np.asarray(U), block):
        u = rows.requires_grad_(True)
        units = f(u.unsqueeze(-1) * a + b)  # (n, d, k)
        for c in range(a.shape[1]):
            (g,) = torch.autograd.grad(units[..., c].sum(), u, retain_graph=True)
            slope[:, c] += g.sum(0)
    slope /= U.shape[0]
    channel = torch.cat([torch.ones_like(slope[:, :1]), slope], dim=1)  # (d, k+1)
    return (w0 * channel).sum(-1).numpy()


def group_z(z0: np.ndarray, n_inputs: int) -> np.ndarray:
    """Z of θ⁽⁰⁾ (h, d·(k+1)) per input, (h, d): the largest over the input's channels."""
    a = np.asarray(z0)
    return a.reshape(a.shape[0], n_inputs, a.shape[1] // n_inputs).max(axis=2)


def run_importances(
    net: Net, z0: np.ndarray, U: np.ndarray, p: int, activation: str, covariates: int = 0
) -> dict[str, np.ndarray]:
    """Everything the selection and the report need from one run's chosen network.

    ``U`` is [X, X~¹, …, X~ᵏ] (κ knockoff copies, usually one) followed by ``covariates``
    columns; only the (κ+1)p feature and knockoff columns are summarised (covariates are
    adjusted for, never tested).
    """
    d = U.shape[1]
    tested = d - covariates
    if tested < 2 * p or tested % p:
        raise ValueError(f"U has {d} columns: not (κ+1)·{p} tested columns + {covariates}")
    grads = input_summaries(net, U, activation)
    ol = torch.linalg.vector_norm(group_view(net.ws[0].detach().double(), d), dim=(0, 2))
    return {
        "importance_ol": ol.numpy()[:tested],
        "importance_ml": grads["importance"][:tested],
        "effects": grads["effects"][:p],
        "effect_magnitude": np.sqrt(grads["importance"][:p]),
        "Z0_input": group_z(z0, d)[:, :tested],
        "W0_input": linearised_first_layer(net, U, activation)[:, :tested],
    }
