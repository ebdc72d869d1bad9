"""The seed's dense fit: the network trained without penalty (λ = 0) before the path, the
warm start of every λ and the report's "did the network learn" reference (docs/method.md,
"The dense fit and the start of every λ")."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from knockoffnet.coupling import COUPLED_EPOCHS, COUPLED_PATIENCE
from knockoffnet.network import eval_rows, forward, net_from_arrays, stack
from knockoffnet.path import _log_setup, start_net, train_batched
from knockoffnet.train_config import Log, TrainConfig, default_log
from knockoffnet.train_data import TrainData, prepared

# A ReLU dense fit is dead when fewer than this fraction of its first hidden layer's
# activations on the validation rows are positive: the 1,476 study dense fits scanned had
# ≥ 0.012, the one that died at 50,000 × 1,000 had 0.0004 (docs/method.md, "Dead dense fits").
DEAD_ACTIVE = 0.005
# Refits of a dead dense fit, each with a tenth of the previous step size.
DENSE_REFITS = 2


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
        cfg = cfg.at_rows(data.m)  # an `auto` step is a number from here on
        if cfg.dense_coupling != "none":  # a coupled fit converges slowly: it waits longer
            cfg = coupled_epochs(cfg)
            log(
                f"dense fit: coupled ({cfg.dense_coupling}: a feature's columns share one "
                f"fan-out), patience {cfg.patience}, max_epochs {cfg.max_epochs}"
            )
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


def coupled_epochs(cfg: TrainConfig) -> TrainConfig:
    """Patience and epoch cap of the coupled dense fit (numbers: after ``at_rows``)."""
    return replace(
        cfg,
        patience=math.ceil(COUPLED_PATIENCE * int(cfg.patience)),
        max_epochs=COUPLED_EPOCHS * int(cfg.max_epochs),
    )


def _dense_fit_decayed(
    data: TrainData, cfg: TrainConfig, seed: int, decay: float, log: Log
) -> dict[str, np.ndarray]:
    """One dense fit at one decay, from the seed's initialisation (the same for every
    decay, so the candidates differ by the decay alone), refitted if its units died."""
    if decay > 0:
        log(f"dense fit: weight decay {decay:g} (weights × {1.0 - cfg.lr * decay:g} a step)")
    fit, coupled = cfg, cfg.dense_coupling == "columns"
    for refit in range(DENSE_REFITS + 1):
        start = start_net(None, data, fit, seed)
        res = train_batched(data, np.zeros(1), fit, seed, start, log, decay=decay, coupled=coupled)
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
