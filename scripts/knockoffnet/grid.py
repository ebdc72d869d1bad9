"""The λ grid of one seed: a descending geometric grid whose top zeroes every input (checked).

λ0 comes from the optimality condition of an all-zero first layer at the start point
(:func:`lambda_zero`); the network is non-convex and starts dense, so candidates above it are
trained from the start in one batched run (:func:`knockoffnet.path.train_batched`) and the
smallest that zeroes every tested input becomes the top. :class:`GridCheck` stops the
candidates whose answer is known before their own early stopping (docs/method.md, "λ grid").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from knockoffnet import optim
from knockoffnet.errors import InputError
from knockoffnet.network import Net, eval_rows, gradients, group_norms, group_view, stack
from knockoffnet.path import (
    Records,
    best_first_layer,
    check_lambdas,
    start_net,
    tested_alive,
    train_batched,
)
from knockoffnet.train_config import Log, TrainConfig, default_log
from knockoffnet.train_data import TrainData, prepared

# λ-grid top check: try λ0·4^k, k = 0..GRID_TRIES-1, in one batched run.
GRID_FACTOR = 4.0
GRID_TRIES = 6
# ... then GRID_REFINE values inside the bracket (top/4, top] that the check found.
GRID_REFINE = 3
# Epoch cap of the check, in patience windows.
GRID_CHECK_PATIENCES = 3
# Once two candidates of the check have kept every tested input at zero (current and best
# weights) for this many checks in a row, the larger candidates stop.
GRID_ZERO_CHECKS = 3
# With covariates, a candidate stops as "keeps features" once its best validation objective
# is this fraction below that of a candidate which zeroed every tested input and then stopped
# by patience (a converged covariates-only network from the same start): GridCheck.
GRID_FLOOR_MARGIN = 0.01


@dataclass
class GridCheck:
    """What the grid check needs to know of one batched run, and which λ it may stop.

    The check asks one thing of each candidate λ: does its best first layer end with every
    tested input at zero? Two kinds of λ have their answer before their own early stopping:

    - **Zeroing ones above two settled**: once two candidates have kept every tested input at
      zero (current and best weights) for ``zero_checks`` checks in a row, the larger ones
      stop. Such a λ zeroes the inputs within a check or two and then trains on for a
      patience window while the bias creeps down a flat objective (21 checks at 100,000
      rows). A λ just above the threshold can zero every input early and regrow some once the
      rest of the network settles (9 of 100 study grids), so the two smallest train to their
      own stop and give the answer; the ones above them matter only if both regrow.
    - **Keeping ones below the floor**: a λ is accepted as improved only with a lower
      validation objective than its best, so once its best is below every objective an
      all-zero tested layer can score (``floor``), its best can never become all zero. Without
      covariates such a network outputs a constant, and no constant scores below the best
      constant's validation loss (:func:`constant_loss`): the floor is exact and the answer
      the same as training on (the λ0 probe of a 100,000-row cohort used to run to the
      60-check cap for it). With covariates a zeroed network still models them; the floor
      is then ``1 − GRID_FLOOR_MARGIN`` times the best objective of a candidate that zeroed
      the tested inputs and stopped by patience (a converged covariates-only network from
      the same start), carried from the first run of the check to the refining one.
    """

    zero_checks: int
    floor: float | None = None
    zero_run: np.ndarray | None = None

    def stop(
        self, rec: Records, st: optim.State, lambdas: np.ndarray, data: TrainData, cfg: TrainConfig
    ) -> np.ndarray:
        """Stop mask of the active λ (``st.idx``) after the check just recorded."""
        if self.zero_run is None:
            self.zero_run = np.zeros(len(lambdas), np.int64)
        gi = st.idx.cpu().numpy()
        now = tested_alive(st.net.ws[0], data.d, cfg.covariates).cpu().numpy() == 0
        self.zero_run[gi] = np.where(now, self.zero_run[gi] + 1, 0)
        best_zero = tested_alive(best_first_layer(rec, st.net), data.d, cfg.covariates)
        best_zero = best_zero.cpu().numpy() == 0
        if cfg.covariates:
            done = np.ones(len(lambdas), bool)
            done[gi] = False
            converged = done & best_zero & (rec.wait >= cfg.patience)
            if converged.any():
                floor = float(rec.best_obj[converged].min()) * (1.0 - GRID_FLOOR_MARGIN)
                self.floor = floor if self.floor is None else min(self.floor, floor)
        stop = np.zeros(gi.size, bool)
        if self.floor is not None:
            stop |= ~best_zero[gi] & (rec.best_obj[gi] < self.floor)
        settled = np.sort(lambdas[(self.zero_run >= self.zero_checks) & best_zero])
        if settled.size >= 2:
            stop |= lambdas[gi] > settled[1]
        return stop


def constant_loss(y: torch.Tensor, task: str) -> float:
    """The smallest mean loss (``network.loss_rows``) any constant output scores on labels ``y``:
    the variance (regression) or the entropy of the class frequencies (binary, multiclass)."""
    yy = y.double().cpu()
    if task == "regression":
        return float(((yy - yy.mean()) ** 2).mean())
    freq = torch.bincount(yy.long()).double() / yy.numel()
    freq = freq[freq > 0]
    return float(-(freq * freq.log()).sum())


def lambda_zero(data: TrainData, cfg: TrainConfig, start: Net) -> float:
    """2m · the largest penalty-dual gradient at ``start`` with θ⁽⁰⁾ set to zero.

    Above it an all-zero first layer is stationary for the penalty: every weight (l1) or
    every input's fan-out (group) would stay at zero.
    """
    m = data.m
    net = stack(start, 1)
    net.ws[0].zero_()
    total = None
    n_blocks = -(-m // eval_rows(data.d, cfg.units + 1))
    for u, yy in zip(
        data.u_train.tensor_split(n_blocks), data.y_train.tensor_split(n_blocks), strict=True
    ):
        g = gradients(net, u, yy, cfg.activation, cfg.task)
        part = [t * (u.shape[0] / m) for t in g.ws]
        total = part if total is None else [a + b for a, b in zip(total, part, strict=True)]
    assert total is not None
    tested = data.d - cfg.covariates  # covariates are never penalised
    first = group_view(total[0], data.d)[..., :tested, :]
    if cfg.penalty == "group":
        return 2.0 * m * float(group_norms(first.reshape(*first.shape[:-2], -1), tested).max())
    return 2.0 * m * max(float(t.abs().max()) for t in [first, *total[1:]])


def _smallest_zeroing(
    data: TrainData,
    cands: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    start: Net,
    log: Log,
    check: GridCheck,
) -> float | None:
    """The smallest of ascending ``cands`` whose trained first layer is all zero (None: none).

    A λ that zeroes the first layer does so within a few patience windows; one that does not
    would creep on to max_epochs, so the check stops at GRID_CHECK_PATIENCES × patience.
    The λ whose answer is known earlier stop then (:class:`GridCheck`); ``check`` keeps
    its floor for the next call.
    """
    cfg = cfg.at_rows(data.m)
    cap = min(cfg.max_epochs, GRID_CHECK_PATIENCES * cfg.patience)
    check.zero_run = None
    res = train_batched(data, cands, replace(cfg, max_epochs=cap), seed, start, log, check)
    # The tested inputs only: a covariate's weights are never penalised, so counting them
    # (as the first layer's nnz does) found no zeroing λ on any cohort with covariates.
    zero = res["inputs_alive"] == 0
    return float(cands[int(np.argmax(zero))]) if zero.any() else None


def lambda_grid(
    U: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    count: int = 40,
    ratio: float = 1e-3,
    values: Sequence[float] | None = None,
    start: Net | None = None,
    log: Log = default_log,
) -> np.ndarray:
    """Descending geometric λ grid whose top zeroes every first-layer weight (checked).

    λ0 comes from the optimality condition of an all-zero first layer at the start point; the
    net is non-convex and starts dense, so λ0·4^k (k < GRID_TRIES) are trained from the start
    in one batched run, and GRID_REFINE values inside the bracket below the first that zeroes
    the first layer in a second; the smallest with an all-zero first layer becomes the top.
    ``values`` overrides the construction.
    """
    if values is not None:
        return np.sort(check_lambdas(values))[::-1].copy()
    if int(count) < 1:
        raise InputError(f"lambda count must be >= 1, got {count}")
    if not 0.0 < ratio < 1.0:
        raise InputError(f"lambda ratio must lie in (0, 1), got {ratio}")
    with prepared(U, y, cfg, seed, log) as data:
        net = start_net(start, data, cfg, seed)
        lam0 = lambda_zero(data, cfg, net)
        if start is not None and lam0 == 0.0:
            # The warm start's hidden units may all be off once its first layer is zeroed
            # (biases pushed below zero: a 50,000 × 1,000 cohort's dense fit after two
            # epochs, or any fit with a large step): no gradient reaches the inputs there,
            # though larger λ do zero the first layer. λ0 then comes from the seed's random
            # initialisation, and the candidates are still trained from the warm start.
            lam0 = lambda_zero(data, cfg, start_net(None, data, cfg, seed))
            log(
                "warning: no gradient reaches the inputs at the warm start's all-zero first "
                f"layer; λ0 = {lam0:.4g} from the seed's initialisation instead"
            )
        if not (math.isfinite(lam0) and lam0 > 0):
            raise InputError(
                f"the loss gradient at the start is {lam0}: the outcome carries no gradient "
                "to the inputs (a constant y, or all-zero U); check the label column"
            )
        cands = lam0 * GRID_FACTOR ** np.arange(GRID_TRIES)
        log(f"λ0 = {lam0:.4g} (all-zero first layer optimal); checking λ0·4^k, k < {GRID_TRIES}")
        check = GridCheck(GRID_ZERO_CHECKS)
        if not cfg.covariates:
            check.floor = constant_loss(data.y_val, cfg.task) * (1.0 - 1e-6)  # float32 losses
        top = _smallest_zeroing(data, cands, cfg, seed, net, log, check)
        if top is None:
            top = float(cands[-1])
            log(
                f"warning: first-layer weights stay non-zero up to λ = {top:.4g}; using it as "
                "the top of the grid"
            )
        elif top > lam0:  # refine within the bracket (top/4, top]: fewer dead λ at the top
            inner = top / GRID_FACTOR ** (np.arange(1, GRID_REFINE + 1) / (GRID_REFINE + 1))
            top = _smallest_zeroing(data, inner[::-1].copy(), cfg, seed, net, log, check) or top
    grid = top * ratio ** (np.arange(count) / max(count - 1, 1))
    log(f"λ grid: {count} values from {grid[0]:.4g} down to {grid[-1]:.4g}")
    return grid
