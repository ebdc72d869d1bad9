"""Reduce Weight's retraining (paper §4.2, §5.2): General, Dropout and Reduce Weight networks on
the selected features, compared over repeated splits (paper Tables 3, 11).

Unlike the paper's notebooks, the Reduce Weight mask is held at zero for the whole training
(pruned weights never regrow). Masks come from ``knockoffnet.pruning``.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score, mean_squared_error, r2_score, roc_auc_score
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit, train_test_split
from torch import nn

from knockoffnet.errors import InputError
from knockoffnet.pruning import (
    _check_layers,
    _check_like,
    _keep_indices,
    _slice,
    compact,
    prune_masks,
    remove_dead_neurons,
    restrict_inputs,
)
from knockoffnet.vocabulary import ACTIVATIONS, LEAKY_SLOPE, TASKS

MODES = ("general", "dropout", "reduce_weight")
METHOD_LABELS = {"general": "General", "dropout": "Dropout", "reduce_weight": "Reduce Weight"}
METRICS = ("accuracy", "auc", "f1", "rmse", "r2", "seconds")


# ----------------------------------------------------------------------------- inputs


def _check_choice(value: str, choices: Sequence[str], key: str) -> str:
    if value not in choices:
        raise InputError(f"{key} must be one of {list(choices)}, got {value!r}")
    return value


def _resolve_task(task: str, n_classes: int | None) -> tuple[str, int]:
    """Map (task, n_classes) to (binary|multiclass|regression, number of output units)."""
    if task == "classification":
        task = "binary" if n_classes == 2 else "multiclass"
    _check_choice(task, TASKS, "task")
    if task == "regression":
        return task, 1
    if n_classes is None or int(n_classes) < 2:
        raise InputError(f"n_classes must be >= 2 for a {task} task, got {n_classes!r}")
    if task == "binary" and int(n_classes) != 2:
        raise InputError(f"task 'binary' needs n_classes = 2, got {n_classes}; use 'multiclass'")
    return task, (1 if task == "binary" else int(n_classes))


def _check_xy(X: np.ndarray, y: np.ndarray, task: str, n_classes: int | None):
    """Validated X (float32 kept as it is: the networks train in float32, and a float64 copy
    of the comparison's rows sat in the parent when the prune job forked its workers, counted
    again in each worker's RSS), y as class codes or float targets, the task and outputs."""
    X = np.asarray(X)
    if X.dtype != np.float32:
        X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] == 0:
        raise InputError(
            f"X must be a 2-D (n, p) matrix with p >= 1 selected features, got shape {X.shape}; "
            "an empty selection cannot be retrained (skip pruning for this filter)"
        )
    if not np.isfinite(X).all():
        raise InputError("X contains NaN/inf; impute or drop them at ingest")
    y = np.asarray(y)
    if y.shape[0] != X.shape[0]:
        raise InputError(f"y has {y.shape[0]} rows but X has {X.shape[0]}")
    task, n_out = _resolve_task(task, n_classes)
    if task == "regression":
        y = y.astype(np.float64).reshape(-1)
        if not np.isfinite(y).all():
            raise InputError("y contains NaN/inf; drop those rows at ingest")
    else:
        codes = y.astype(np.int64).reshape(-1)
        if not np.array_equal(codes, y.reshape(-1)) or codes.min() < 0 or codes.max() >= n_classes:
            raise InputError(f"y must hold integer class codes 0..{n_classes - 1} (see labels.tsv)")
        y = codes
    return X, y, task, n_out


# ----------------------------------------------------------------------------- networks


def _torch_activation(name: str) -> nn.Module:
    _check_choice(name, ACTIVATIONS, "network.activation")
    return {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "elu": nn.ELU,
        "leaky_relu": partial(nn.LeakyReLU, LEAKY_SLOPE),
    }[name]()


def _np_activation(name: str, x: np.ndarray) -> np.ndarray:
    _check_choice(name, (*ACTIVATIONS, "sigmoid"), "network.activation")
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if name == "leaky_relu":
        return np.where(x > 0, x, LEAKY_SLOPE * x)
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


class MaskedMLP(nn.Module):
    """Fully connected network whose masked weights are zero at init, get zero gradient, and are
    re-zeroed by :meth:`apply_masks` after every optimiser step (belt and braces: Adam's moments of
    a zero gradient stay zero, but weight decay or another optimiser could move them)."""

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        dropout: float = 0.0,
        masks: list[np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        self.act = _torch_activation(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.masks = [torch.as_tensor(np.asarray(m), dtype=torch.float32) for m in masks or []]
        for lin, m in zip(self.linears, self.masks, strict=False):
            lin.weight.register_hook(lambda g, m=m: g * m)
        self.apply_masks()

    def apply_masks(self) -> None:
        with torch.no_grad():
            for lin, m in zip(self.linears, self.masks, strict=False):
                lin.weight.mul_(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lin in self.linears[:-1]:
            x = self.drop(self.act(lin(x)))
        return self.linears[-1](x)


def make_network(
    sizes: Sequence[int],
    activation: str = "relu",
    dropout: float = 0.0,
    mask: list[np.ndarray] | None = None,
) -> MaskedMLP:
    """Build the comparison network (dropout on hidden layers only; mask held at zero)."""
    if mask is not None:
        _check_like(mask, [(b, a) for a, b in pairwise(sizes)], "mask")
    return MaskedMLP(sizes, activation, dropout, mask)


def _inner_split(y: np.ndarray, val_fraction: float, seed: int, classify: bool):
    """Early-stopping split, stratified when every class can be represented in both parts."""
    idx = np.arange(y.shape[0])
    try:
        return train_test_split(
            idx, test_size=val_fraction, random_state=seed, stratify=y if classify else None
        )
    except ValueError:
        return train_test_split(idx, test_size=val_fraction, random_state=seed)


def train_network(
    X: np.ndarray,
    y: np.ndarray,
    hidden: tuple[int, ...],
    task: str,
    n_classes: int,
    mode: str,
    mask: list[np.ndarray] | None = None,
    dropout: float = 0.5,
    activation: str = "relu",
    seed: int = 0,
    max_epochs: int = 200,
    patience: int = 10,
    val_fraction: float = 0.2,
    learning_rate: float = 1e-2,
    batch_size: int = 64,
) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Train a (p × hidden × outputs) network with Adam and early stopping; return float64
    weights (out, in), biases and the training wall time in seconds.

    ``mode``: ``general`` (dense), ``dropout`` (p = ``dropout`` after each hidden activation) or
    ``reduce_weight``: the mask (after :func:`remove_dead_neurons`) is held at zero throughout, and
    dead neurons are physically absent, so the timing reflects the smaller network.  Returned
    weights always have the full shapes, exactly 0.0 where masked (dead neurons: zero bias).
    Regression targets are standardised for training and un-standardised in the last layer.
    """
    X, y, task, n_out = _check_xy(X, y, task, n_classes)
    _check_choice(mode, MODES, "mode")
    sizes = [X.shape[1], *[int(h) for h in hidden], n_out]
    if min(sizes) < 1:
        raise InputError(f"network.hidden must hold positive layer sizes, got {list(hidden)}")
    if not 0.0 <= dropout < 1.0:
        raise InputError(f"pruning.dropout must lie in [0, 1), got {dropout}")
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"training.val_fraction must lie in (0, 1), got {val_fraction}")
    if max_epochs < 1 or patience < 1 or batch_size < 1:
        raise InputError(
            "pruning.max_epochs, training.patience and training.batch_size must be >= 1"
        )
    shapes = [(b, a) for a, b in pairwise(sizes)]
    keep = [np.arange(s) for s in sizes]
    sub_mask = None
    if mode == "reduce_weight":
        if mask is None:
            raise InputError("mode 'reduce_weight' needs the pruning mask (prune_masks)")
        _check_like(mask, shapes, "mask")
        final = remove_dead_neurons(mask)
        keep = _keep_indices(final)
        sub_mask = _slice(final, keep)
    classify = task != "regression"
    tr, va = _inner_split(y, val_fraction, seed, classify)
    mu, sd = (0.0, 1.0) if classify else (y[tr].mean(), y[tr].std() or 1.0)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    if task == "multiclass":
        yt, loss_fn = torch.as_tensor(y, dtype=torch.long), nn.CrossEntropyLoss()
    else:
        yt = torch.as_tensor((y - mu) / sd, dtype=torch.float32).reshape(-1, 1)
        loss_fn = nn.BCEWithLogitsLoss() if task == "binary" else nn.MSELoss()
    tr_t, va_t = torch.as_tensor(tr), torch.as_tensor(va)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        net = make_network(
            [len(k) for k in keep], activation, dropout if mode == "dropout" else 0.0, sub_mask
        )
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
        best, best_state, wait = np.inf, None, 0
        for _ in range(max_epochs):
            net.train()
            for batch in tr_t[torch.randperm(tr_t.numel(), generator=gen)].split(batch_size):
                opt.zero_grad()
                loss_fn(net(Xt[batch]), yt[batch]).backward()
                opt.step()
                net.apply_masks()
            net.eval()
            with torch.no_grad():
                val = float(loss_fn(net(Xt[va_t]), yt[va_t]))
            if val < best:
                best, wait = val, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                wait += 1
                if wait >= patience:
                    break
        if best_state is None:
            raise InputError(
                "training diverged (validation loss never finite); lower training.learning_rate"
            )
        net.load_state_dict(best_state)
        seconds = time.perf_counter() - start
    weights = [np.zeros(s) for s in shapes]
    biases = [np.zeros(s[0]) for s in shapes]
    for i, lin in enumerate(net.linears):
        weights[i][np.ix_(keep[i + 1], keep[i])] = lin.weight.detach().double().numpy()
        biases[i][keep[i + 1]] = lin.bias.detach().double().numpy()
    weights[-1], biases[-1] = weights[-1] * sd, biases[-1] * sd + mu
    return weights, biases, seconds


def predict(
    weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray, activation: str, task: str
) -> np.ndarray:
    """Forward pass in float64 on standardised X.

    Classification returns (n, K) class probabilities in code order, also for binary (columns
    P(code 0), P(code 1) from the single sigmoid output); regression returns (n,) values.
    """
    W = _check_layers(weights, "weights")
    _check_like(biases, [(w.shape[0],) for w in W], "biases")
    h = np.asarray(X, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] != W[0].shape[1]:
        raise InputError(f"X must have shape (n, {W[0].shape[1]}), got {h.shape}")
    for w, b in zip(W[:-1], biases[:-1], strict=True):
        h = _np_activation(activation, h @ w.T + b)
    out = h @ W[-1].T + biases[-1]
    n_out = out.shape[1]
    if task == "regression":
        return out[:, 0]
    if task == "binary" or (task == "classification" and n_out == 1):
        p1 = _np_activation("sigmoid", out[:, 0])
        return np.column_stack([1.0 - p1, p1])
    _check_choice(task, ("multiclass", "classification"), "task")
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- comparison


def _metrics(y: np.ndarray, pred: np.ndarray, task: str, n_classes: int) -> dict[str, float]:
    """Test-set metrics; those not defined for the task are NaN so all rows share columns."""
    out = dict.fromkeys(("accuracy", "auc", "f1", "rmse", "r2"), np.nan)
    if task == "regression":
        out["rmse"] = float(np.sqrt(mean_squared_error(y, pred)))
        out["r2"] = float(r2_score(y, pred))
        return out
    labels = np.arange(n_classes)
    out["accuracy"] = float(np.mean(pred.argmax(axis=1) == y))
    out["f1"] = float(
        f1_score(y, pred.argmax(axis=1), labels=labels, average="macro", zero_division=0)
    )
    if np.unique(y).size == n_classes:
        out["auc"] = float(
            roc_auc_score(y, pred[:, 1])
            if n_classes == 2
            else roc_auc_score(y, pred, multi_class="ovr", labels=labels)
        )
    return out


def summarise(per_repeat: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd (ddof = 1) of every metric per method, in method order."""
    g = per_repeat.groupby("method", sort=False)[list(METRICS)]
    mean, sd = g.mean().add_suffix("_mean"), g.std(ddof=1).add_suffix("_sd")
    cols = [c for m in METRICS for c in (f"{m}_mean", f"{m}_sd")]
    out = pd.concat([mean, sd], axis=1)[cols]
    out.insert(0, "n", g.size())
    return out.reset_index()


def paired_differences(per_repeat: pd.DataFrame, reference: str = "general") -> pd.DataFrame:
    """Per method and metric: mean/sd of (method − reference) over the same splits, and the
    number of splits where the method is better, so a gain is shown pairwise, not by two means."""
    wide = per_repeat.pivot(index="repeat", columns="method", values=list(METRICS))
    rows = []
    for metric in METRICS:
        lower_better = metric in ("rmse", "seconds")
        for method in per_repeat["method"].unique():
            if method == reference:
                continue
            d = (wide[metric][method] - wide[metric][reference]).dropna()
            if d.empty:
                continue
            better = (d < 0) if lower_better else (d > 0)
            rows.append(
                {
                    "method": method,
                    "reference": reference,
                    "metric": metric,
                    "diff_mean": d.mean(),
                    "diff_sd": d.std(ddof=1),
                    "n": d.size,
                    "n_better": int(better.sum()),
                }
            )
    return pd.DataFrame(rows)


def _warm_up(fit, X: np.ndarray, y: np.ndarray, modes: Sequence[str], seed: int) -> None:
    """One untimed epoch per method, so torch's one-off start-up cost hits no timed fit."""
    for mode in modes:
        fit(X, y, mode=mode, seed=seed, max_epochs=1)


_WORKER_JOB = None  # a forked worker's comparison cell function, set once by _worker_init


def _worker_init(job, fit, X: np.ndarray, y: np.ndarray, modes: Sequence[str], seed: int) -> None:
    """Runs once per forked worker: the data arrive with the fork, not pickled with each task."""
    global _WORKER_JOB
    _WORKER_JOB = job
    torch.set_num_threads(1)
    _warm_up(fit, X, y, modes, seed)


def _worker_fit(t: tuple[int, str]) -> dict:
    return _WORKER_JOB(t)


def _one_fit(fit, X, y, splits, seed: int, activation: str, task: str, n_classes: int, t):
    """One (repeat, method) cell of the comparison: train on the split, score on its test rows."""
    r, mode = t
    tr, te = splits[r]
    W, b, sec = fit(X[tr], y[tr], mode=mode, seed=seed + r)
    pred = predict(W, b, X[te], activation, task)
    return {"repeat": r, "method": mode, **_metrics(y[te], pred, task, n_classes), "seconds": sec}


def compare_predictions(
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    n_classes: int,
    hidden: tuple[int, ...],
    mask: list[np.ndarray] | None,
    repeats: int = 10,
    seed: int = 0,
    activation: str = "relu",
    dropout: float = 0.5,
    test_fraction: float = 0.25,
    workers: int = 1,
    **train_kw: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """General vs Dropout vs Reduce Weight over ``repeats`` (stratified) train/test splits.

    All methods see the same splits and seed ``seed + repeat`` (same inner validation split).
    ``mask=None`` drops Reduce Weight (e.g. for an all-features baseline). ``workers`` > 1
    spreads the fits over that many processes (the rule's threads) with the same rows.  Returns the tidy
    per-repeat table (repeat, method, accuracy, auc, f1, rmse, r2, seconds) and
    :func:`summarise` of it.
    """
    X, y, task, _ = _check_xy(X, y, task, n_classes)
    if isinstance(repeats, bool) or int(repeats) != repeats or repeats < 1:
        raise InputError(f"pruning.repeats must be an integer >= 1, got {repeats!r}")
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    split_cls = ShuffleSplit if task == "regression" else StratifiedShuffleSplit
    splitter = split_cls(n_splits=int(repeats), test_size=test_fraction, random_state=seed)
    try:
        splits = list(splitter.split(X, y))
    except ValueError as err:
        raise InputError(
            f"cannot make {repeats} train/test splits: {err}; check class counts in labels.tsv"
        ) from err
    modes = MODES if mask is not None else MODES[:2]
    fit = partial(
        train_network,
        hidden=hidden,
        task=task,
        n_classes=n_classes,
        mask=mask,
        dropout=dropout,
        activation=activation,
        **train_kw,
    )
    tasks = [(r, mode) for r in range(len(splits)) for mode in modes]
    job = partial(_one_fit, fit, X, y, splits, seed, activation, task, n_classes)
    workers = max(1, min(int(workers), len(tasks)))
    if workers == 1:
        _warm_up(fit, X[splits[0][0]], y[splits[0][0]], modes, seed)
        rows = [job(t) for t in tasks]
    else:
        # Every fit is seeded by its (repeat, method) alone, so the rows do not depend on
        # how many workers share them. Forked workers (no re-import of the rule script, which
        # spawn would run again) with one torch thread each, warmed up like the serial path.
        context = multiprocessing.get_context("fork")
        init = (job, fit, X[splits[0][0]], y[splits[0][0]], modes, seed)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                 initargs=init) as pool:  # fmt: skip
            rows = list(pool.map(_worker_fit, tasks))
    per_repeat = pd.DataFrame(rows, columns=["repeat", "method", *METRICS])
    return per_repeat, summarise(per_repeat)


# ----------------------------------------------------------------------------- one filter


def comparison_rows(y: np.ndarray, task: str, max_rows: int, seed: int) -> np.ndarray:
    """All row indices, or a (class-stratified) random subsample of ``max_rows`` of them.

    The comparison trains 3 networks × repeats per selection; past a few ten thousand rows
    its precision no longer needs more rows, while its cost grows with them.
    """
    n = len(y)
    if n <= max_rows:
        return np.arange(n)
    strata = None if task == "regression" else y
    rows, _ = train_test_split(
        np.arange(n), train_size=int(max_rows), stratify=strata, random_state=int(seed) % 2**32
    )
    return np.sort(rows)


@dataclass
class FilterNetwork:
    """Reduce Weight for one selection: masks, the comparison and the final compacted network."""

    columns: np.ndarray
    masks: list[np.ndarray]
    per_repeat: pd.DataFrame
    summary: pd.DataFrame
    weights: list[np.ndarray]
    biases: list[np.ndarray]


def reduce_weight(
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    n_classes: int,
    hidden: tuple[int, ...],
    Z: list[np.ndarray],
    magnitude: list[np.ndarray] | None,
    columns: np.ndarray,
    deletion_rate: float,
    repeats: int,
    seed: int,
    activation: str = "relu",
    dropout: float = 0.5,
    max_epochs: int = 200,
    workers: int = 1,
) -> FilterNetwork:
    """Prune the network of the selected ``columns`` by Z, compare General / Dropout / Reduce
    Weight over repeated splits and train the final Reduce Weight network on all rows.

    ``magnitude`` (|θ| of the network whose Z it is) breaks ties in Z; None is the paper's rule.
    ``workers``: processes for the comparison's fits (results do not depend on it).
    """
    masks = remove_dead_neurons(
        prune_masks(
            restrict_inputs(Z, columns),
            deletion_rate,
            magnitude=None if magnitude is None else restrict_inputs(magnitude, columns),
        )
    )
    every = np.array_equal(columns, np.arange(X.shape[1]))
    Xs = X if every else X[:, columns]  # the all-features baseline: no second copy of X
    per_repeat, summary = compare_predictions(
        Xs, y, task, n_classes, hidden, masks, repeats=repeats, seed=seed,
        activation=activation, dropout=dropout, max_epochs=max_epochs, workers=workers,
    )  # fmt: skip
    weights, biases, _ = train_network(
        Xs, y, hidden, task, n_classes, "reduce_weight", mask=masks, activation=activation,
        seed=seed, max_epochs=max_epochs,
    )  # fmt: skip
    weights, biases = compact(weights, biases, masks)
    return FilterNetwork(columns, masks, per_repeat, summary, weights, biases)
