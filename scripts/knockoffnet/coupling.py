"""The coupled dense fit (``training.dense_coupling: columns``): a feature's columns share
its first-layer weights.

The dense fit sees each feature's κ + 1 columns ``[x_j, x~_j^(1), …, x~_j^(κ)]`` as separate
inputs, each with its own fan-out θ⁽⁰⁾ to the hidden layer. On the AR(1) design it overfits
that many free weights within a few passes and trails gradient boosting by 0.07 even with
weight decay (docs/validation.md, issue 14's criterion 5). Coupled, the fan-out of column c of
feature j is ``V_j · C_cj``: one weight per hidden unit and channel for the feature (V), and one
scalar per column (C, starting at 1, so no column is favoured), as DeepPINK's pairwise layer
lets a feature and its knockoff compete for one pathway. The per-input units stay per column.

The product is the package's own first layer, so a coupled fit *is* a network of the usual
shape: the λ path starts from it (warm start) with every weight free, and the statistics,
files and report read it as any other fit. Only the dense fit couples; the path never does.
Covariates (the last inputs, no knockoffs) keep free weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from knockoffnet.errors import InputError
from knockoffnet.network import group_view

# The coupled fit's validation loss keeps falling slowly for hundreds of checks (C, a scale
# of 1, moves by about the step a step): it waits COUPLED_PATIENCE × the patience and trains
# at most COUPLED_EPOCHS × max_epochs. On the AR(1) design at n = 1,000 (20 replicates,
# decay 10) patience 20 left it 0.045 ± 0.008 below gradient boosting, 30 0.035, 50 with the
# cap at 600 0.021 ± 0.007, while the uncoupled fit at patience 50 stayed 0.063 below
# (docs/validation.md, "A coupled dense fit").
COUPLED_PATIENCE, COUPLED_EPOCHS = 2.5, 2


@dataclass
class Coupling:
    """V (Λ, hidden, p, units + 1) and C (Λ, columns, p, 1) of a batched network whose
    first layer's tested block is V ⊙ C (columns = κ + 1 of each of p features)."""

    v: torch.Tensor
    c: torch.Tensor

    @property
    def columns(self) -> int:
        return int(self.c.shape[1])

    def tensors(self) -> list[torch.Tensor]:
        return [self.v, self.c]

    def rows(self, rows: torch.Tensor) -> Coupling:
        """The coupling of the λ rows kept (see :func:`knockoffnet.optim.keep`)."""
        return Coupling(self.v[rows], self.c[rows])

    def expand_(self, w0: torch.Tensor, n_inputs: int) -> None:
        """Write V ⊙ C into θ⁽⁰⁾'s tested block in place (covariates' weights untouched)."""
        column_block(w0, n_inputs, self.columns, self.v.shape[2]).copy_(
            self.v.unsqueeze(2) * self.c.unsqueeze(1)
        )

    def gradients(self, g0: torch.Tensor, n_inputs: int) -> list[torch.Tensor]:
        """∂loss/∂V and ∂loss/∂C from the gradient of the expanded θ⁽⁰⁾ (chain rule of the
        product: each column's block times its C, summed; each block against V, summed)."""
        g = column_block(g0, n_inputs, self.columns, self.v.shape[2])
        gv = (g * self.c.unsqueeze(1)).sum(2)
        gc = (g * self.v.unsqueeze(2)).sum(-1, keepdim=True).sum(1)
        return [gv, gc]


def column_block(w0: torch.Tensor, n_inputs: int, columns: int, p: int) -> torch.Tensor:
    """θ⁽⁰⁾ (Λ, h, d·(units + 1)) viewed as (Λ, h, columns, p, units + 1) over the tested
    inputs ``[X, X~1, …]`` (input c·p + j is column c of feature j); covariates left out."""
    v = group_view(w0, n_inputs)[..., : columns * p, :]
    return v.view(*v.shape[:-2], columns, p, v.shape[-1])


def couple(w0: torch.Tensor, n_inputs: int, features: int, covariates: int) -> Coupling:
    """The coupling of a batched network's first layer, started from its weights: V_j is
    the sum of feature j's column fan-outs over √columns (the variance of one column's
    draw, and the same whichever column is which) and C = 1, so the columns start alike and
    only their per-input units differ; swapping x_j with a knockoff copy in the data and
    the start swaps the fit exactly. Raises when the inputs are not ``features`` × columns
    (+ covariates)."""
    tested = n_inputs - covariates
    if features < 1 or tested % features or tested < 2 * features:
        raise InputError(
            f"training.dense_coupling: {tested} tested input columns do not split into the "
            f"{features} features and at least one knockoff copy each; set "
            "training.dense_coupling: none"
        )
    columns = tested // features
    block = column_block(w0, n_inputs, columns, features)
    v = block.sum(2) / columns**0.5
    c = torch.ones(w0.shape[0], columns, features, 1, dtype=w0.dtype, device=w0.device)
    coupling = Coupling(v, c)
    coupling.expand_(w0, n_inputs)
    return coupling
