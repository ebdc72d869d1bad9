"""Training settings shared by the dense fit, the λ grid and the path, and the device they
run on: one frozen, validated :class:`TrainConfig` (the config's ``network`` and ``training``
keys, checked once at the boundary so the training code below it can trust every field).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from knockoffnet.errors import InputError
from knockoffnet.network import check_activation
from knockoffnet.vocabulary import (
    DENSE_COUPLINGS,
    OPTIMIZERS,
    OUTCOME_SCALES,
    PENALTIES,
    STARTS,
    TASKS,
    dense_coupling,
    dense_decays,
    fit_epochs,
    step_size,
)

_LOG = logging.getLogger(__name__)
Log = Callable[[str], None]

# batch_size = 0: full batch up to this many training rows, else AUTO_BATCH_SIZE rows per step.
AUTO_FULL_BATCH_MAX = 2048
AUTO_BATCH_SIZE = 1024
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
    patience: int | str = "auto"
    max_epochs: int | str = "auto"
    batch_size: int = 128
    check_rows: int = 20_000
    learning_rate: float | str | None = "auto"
    optimizer: str = "adam"
    momentum: float = 0.9
    penalty: str = "group"
    start: str = "warm"
    min_improvement: float = 1e-3
    dense_decay: float | str | tuple[float, ...] = "auto"
    dense_coupling: str = "auto"
    features: int = 0  # tested features p (the dense fit's coupling splits inputs by it)
    outcome_scale: str = "standardised"
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
        _check_choice("outcome_scale", self.outcome_scale, OUTCOME_SCALES)
        _check_choice("dense_coupling", self.dense_coupling, DENSE_COUPLINGS)
        if self.dense_coupling == "columns" and self.optimizer != "adam":
            raise InputError(
                f"training.dense_coupling: {self.dense_coupling} needs optimizer: adam (the "
                f"coupled dense fit is an Adam fit), got {self.optimizer!r}; set "
                "dense_coupling: none"
            )
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
        for name in ("patience", "max_epochs"):
            value = getattr(self, name)
            if value != "auto" and (isinstance(value, bool | str) or int(value) < 1):
                raise InputError(f"{name} must be auto or an integer >= 1, got {value!r}")
        if int(self.threads) < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        if self.batch_size < 0:
            raise InputError(f"batch_size must be >= 0 (0 = auto), got {self.batch_size}")
        if isinstance(self.check_rows, bool) or int(self.check_rows) < 0:
            raise InputError(
                f"check_rows must be >= 0 (0 = a check after every pass), got {self.check_rows!r}"
            )
        lr = self.learning_rate
        if lr != "auto" and (
            isinstance(lr, str | bool) or (lr is not None and not (math.isfinite(lr) and lr > 0))
        ):
            raise InputError(f"learning_rate must be null, auto or positive and finite, got {lr!r}")
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
        step = step_size(lr, self.optimizer, 0)  # `auto`: its largest step, the smallest cohorts'
        if not decays or not all(math.isfinite(d) and 0.0 <= d * step < 1.0 for d in decays):
            raise InputError(
                f"training.dense_decay must be auto, a number >= 0 and below 1 / learning rate "
                f"= {1 / step:g} (each step multiplies the weights by 1 - lr × decay), or a "
                f"list of such numbers, got {self.dense_decay!r}"
            )
        object.__setattr__(self, "dense_decay", decays)
        if not _DEVICE_RE.match(str(self.device)):
            raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    def at_rows(self, train_rows: int) -> TrainConfig:
        """These settings for a fit on ``train_rows`` training rows: ``auto`` patience and
        epoch cap resolved (:func:`knockoffnet.vocabulary.fit_epochs`), an ``auto`` step
        and dense coupling too (:func:`knockoffnet.vocabulary.step_size`,
        :func:`knockoffnet.vocabulary.dense_coupling`; an `auto` coupling is none too where
        the tested features are not known); numbers kept."""
        patience, cap = fit_epochs(self.patience, self.max_epochs, train_rows)
        lr = self.learning_rate
        if lr == "auto":
            lr = step_size(lr, self.optimizer, train_rows)
        coupling = self.dense_coupling
        if coupling == "auto":  # a fit that does not know its tested features is not coupled
            known = self.features > 0
            coupling = dense_coupling(coupling, train_rows, self.optimizer) if known else "none"
        new = (patience, cap, lr, coupling)
        if new == (self.patience, self.max_epochs, self.learning_rate, self.dense_coupling):
            return self
        return replace(
            self, patience=patience, max_epochs=cap, learning_rate=lr, dense_coupling=coupling
        )

    @property
    def lr(self) -> float:
        """The step size in use: the configured one, else the step rule's default. An
        ``auto`` step exists only for a number of training rows: :meth:`at_rows` first."""
        if self.learning_rate == "auto":
            raise ValueError("learning_rate auto is resolved by at_rows(training rows) first")
        return step_size(self.learning_rate, self.optimizer, 0)

    @property
    def n_out(self) -> int:
        return self.n_classes if self.task == "multiclass" else 1


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def default_log(msg: str) -> None:
    _LOG.info(msg)


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
