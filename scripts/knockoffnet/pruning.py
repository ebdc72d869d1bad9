"""Reduce Weight (paper §3.4, §4.2, §5.2): prune a network by its Z statistics and retrain it.

Z⁽ˡ⁾ₖⱼ = sup{λ : θ⁽ˡ⁾ₖⱼ(λ) ≠ 0} ranks weights by how long they survive the λ path, so the
weights with the smallest Z are the least important.  This module

* turns Z into keep-masks (:func:`deletion_threshold`, :func:`prune_masks`) and removes hidden
  neurons left without an incoming or outgoing weight (:func:`remove_dead_neurons`);
* describes the pruned structure (:func:`structure_table`, paper Table 10; :func:`summary_counts`);
* retrains General / Dropout / Reduce Weight networks on the selected features and compares them
  over repeated splits (:func:`train_network`, :func:`compare_predictions`, paper Tables 3, 11).
  Unlike the paper's notebooks, the Reduce Weight mask is held at zero for the whole training;
* exports the compacted network as safetensors + JSON (:func:`export_model`, :func:`load_model`).

Every weight matrix is (out, in) = (h_l, h_{l-1}) as in ``docs/architecture.md``; masks are bool
arrays of the same shapes with True = kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.numpy import load_file, save_file
from sklearn.metrics import f1_score, mean_squared_error, r2_score, roc_auc_score
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit, train_test_split
from torch import nn

from .errors import InputError

MODES = ("general", "dropout", "reduce_weight")
METHOD_LABELS = {"general": "General", "dropout": "Dropout", "reduce_weight": "Reduce Weight"}
TASKS = ("binary", "multiclass", "regression")
ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "sigmoid")
# Columns of the structure table (paper Table 10); the report reads them by name.
STRUCTURE_COLUMNS = (
    "layer",
    "neuron",
    "incoming_kept",
    "incoming_removed",
    "outgoing_kept",
    "outgoing_removed",
    "neuron_removed",
)
METRICS = ("accuracy", "auc", "f1", "rmse", "r2", "seconds")
FORMAT = "knockoffnet-mlp"
FORMAT_VERSION = 1
LEAKY_SLOPE = 0.01  # torch's default negative slope; numpy and torch must agree


# ----------------------------------------------------------------------------- validation


def _check_rate(c: float) -> float:
    """A deletion rate is a fraction; reject anything else before it silently prunes nothing."""
    if isinstance(c, bool) or not isinstance(c, int | float | np.floating | np.integer):
        raise InputError(f"pruning.deletion_rate must be a number in [0, 1], got {c!r}")
    if not 0.0 <= float(c) <= 1.0:
        raise InputError(f"pruning.deletion_rate must lie in [0, 1] (default 0.3), got {c!r}")
    return float(c)


def _check_layers(arrays: Sequence[np.ndarray], key: str) -> list[np.ndarray]:
    """Layers must chain as (h_l, h_{l-1}) and have at least one input column."""
    if len(arrays) == 0:
        raise InputError(f"{key}: no layers given; pass one (out, in) matrix per layer")
    layers = [np.asarray(a) for a in arrays]
    for i, a in enumerate(layers):
        if a.ndim != 2:
            raise InputError(f"{key}[{i}] must be a 2-D (out, in) matrix, got shape {a.shape}")
        if a.shape[0] == 0:
            raise InputError(f"{key}[{i}] has no output units (shape {a.shape})")
    if layers[0].shape[1] == 0:
        raise InputError(
            f"{key}[0] has 0 input columns: the selection is empty, so there is nothing to prune "
            "or retrain; skip pruning for this filter or raise selection.q"
        )
    for i in range(1, len(layers)):
        if layers[i].shape[1] != layers[i - 1].shape[0]:
            raise InputError(
                f"{key}[{i}] has {layers[i].shape[1]} inputs but {key}[{i - 1}] has "
                f"{layers[i - 1].shape[0]} outputs; layers must chain as (h_l, h_(l-1))"
            )
    return layers


def _check_masks(masks: Sequence[np.ndarray], key: str = "masks") -> list[np.ndarray]:
    return [np.asarray(m).astype(bool) for m in _check_layers(masks, key)]


def _check_like(arrays: Sequence[np.ndarray], shapes: Sequence[tuple], key: str) -> None:
    got = [np.shape(a) for a in arrays]
    if got != [tuple(s) for s in shapes]:
        raise InputError(f"{key}: shapes {got} do not match the network's {list(shapes)}")


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


# ----------------------------------------------------------------------------- pruning


def deletion_threshold(Z: list[np.ndarray], c: float) -> float:
    """e_c = max{a ∈ observed Z : #{Z ≤ a} / #{Z} ≤ c} over all layers pooled (paper §3.4).

    Ties are kept together: a tied group is deleted only if all of it fits under c, so the
    realised deletion fraction is ≤ c.  Returns −inf when even the smallest value exceeds c
    (nothing is deleted).
    """
    c = _check_rate(c)
    z = np.concatenate([a.ravel() for a in _check_layers(Z, "Z")]).astype(np.float64)
    if np.isnan(z).any():
        raise InputError("Z contains NaN; recompute the z/*.npz files (collect_z)")
    values, counts = np.unique(z, return_counts=True)
    ok = np.cumsum(counts) / z.size <= c  # monotone, so `ok` is a prefix
    return float(values[ok][-1]) if ok.any() else -np.inf


def prune_masks(
    Z: list[np.ndarray], c: float, magnitude: list[np.ndarray] | None = None
) -> list[np.ndarray]:
    """Keep-masks (True = kept) deleting the weights with the lowest Z; dead neurons not yet removed.

    Without ``magnitude`` this is the paper's rule: delete every weight with Z ≤ e_c, a tied
    group whole or not at all. Z takes grid values, and early stopping at small λ leaves large
    tied groups (on WDBC 43 % of the weights share the smallest Z), so that rule can delete
    nothing at c = 0.3. With ``magnitude`` (|θ| of the network whose Z it is) ties are broken by
    the weight's size and exactly ⌊c·N⌋ weights are deleted: the lowest Z first, and within a
    tie the smallest weights.

    Raises when the deletion leaves no path from the inputs to the output, since the retrained
    network would then be a constant.
    """
    if magnitude is None:
        e = deletion_threshold(Z, c)
        masks = [np.asarray(a, dtype=np.float64) > e for a in Z]
        label = f"e_c = {e:g}"
    else:
        c = _check_rate(c)
        layers = _check_layers(Z, "Z")
        mags = _check_layers(magnitude, "magnitude")
        _check_like(mags, [a.shape for a in layers], "magnitude")
        z = np.concatenate([a.ravel() for a in layers]).astype(np.float64)
        mag = np.abs(np.concatenate([a.ravel() for a in mags]).astype(np.float64))
        order = np.lexsort((mag, z))  # primary key: Z; ties: |θ|
        keep = np.ones(z.size, dtype=bool)
        keep[order[: int(np.floor(c * z.size))]] = False
        bounds = np.cumsum([0] + [a.size for a in layers])
        masks = [
            keep[a:b].reshape(m.shape)
            for a, b, m in zip(bounds[:-1], bounds[1:], layers, strict=True)
        ]
        label = "ties broken by |θ|"
    if not all(m.any() for m in _fixed_point(masks)):
        raise InputError(
            f"pruning.deletion_rate = {c} ({label}) deletes every path from the inputs to the "
            f"output; lower pruning.deletion_rate (default 0.3)"
        )
    return masks


def _fixed_point(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Repeatedly cut hidden neurons without incoming or outgoing weights until nothing changes."""
    m = [np.array(a, dtype=bool, copy=True) for a in masks]
    changed = True
    while changed:
        changed = False
        for i in range(len(m) - 1):
            dead = ~(m[i].any(axis=1) & m[i + 1].any(axis=0))
            if m[i][dead].any() or m[i + 1][:, dead].any():
                m[i][dead, :] = False
                m[i + 1][:, dead] = False
                changed = True
    return m


def remove_dead_neurons(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Remove (all weights of) hidden neurons with no incoming or no outgoing weight, to a fixed
    point across layers.  Inputs and output units are never removed.

    A neuron with no incoming weight outputs the constant σ(b); removing it is the paper's
    "deleting all weights pointing to a neuron is the same as deleting the neuron".
    """
    final = _fixed_point(_check_masks(masks))
    if not all(m.any() for m in final):
        raise InputError(
            "the pruned masks leave no path from the inputs to the output; "
            "lower pruning.deletion_rate (default 0.3)"
        )
    return final


def restrict_inputs(Z: list[np.ndarray], columns: Sequence[int] | np.ndarray) -> list[np.ndarray]:
    """Z of the prediction network: first-layer columns of the selected features, deeper as is.

    ``columns`` are original-feature indices j (column j of the path network's Z0 is x_j, column
    j + p its knockoff) or a boolean mask over Z0's columns.
    """
    layers = _check_layers(Z, "Z")
    cols = np.asarray(columns)
    if cols.dtype == bool:
        cols = np.flatnonzero(cols)
    if cols.size == 0:
        raise InputError(
            "the filter selected no features, so there is no network to prune; "
            "skip pruning for this filter or raise selection.q"
        )
    if cols.min() < 0 or cols.max() >= layers[0].shape[1]:
        raise InputError(f"selected columns must lie in 0..{layers[0].shape[1] - 1}")
    return [layers[0][:, cols.astype(np.int64)], *layers[1:]]


def structure_table(masks: list[np.ndarray]) -> pd.DataFrame:
    """Per hidden neuron: incoming/outgoing weights kept and removed by ``masks``, and whether the
    neuron is removed once dead neurons are cut (paper Table 10).

    ``layer`` l (0-based) is the hidden layer fed by θ⁽ˡ⁾: incoming = masks[l], outgoing =
    masks[l + 1]; ``neuron`` is the 0-based row of θ⁽ˡ⁾.  Pass the Z-masks of
    :func:`prune_masks` to count deletions by Z as in the paper.
    """
    m = _check_masks(masks)
    final = _fixed_point(m)
    columns = list(STRUCTURE_COLUMNS)
    parts = [
        pd.DataFrame(
            {
                "layer": i,
                "neuron": np.arange(m[i].shape[0]),
                "incoming_kept": m[i].sum(axis=1),
                "incoming_removed": (~m[i]).sum(axis=1),
                "outgoing_kept": m[i + 1].sum(axis=0),
                "outgoing_removed": (~m[i + 1]).sum(axis=0),
                "neuron_removed": ~final[i].any(axis=1),
            }
        )
        for i in range(len(m) - 1)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def summary_counts(masks: list[np.ndarray]) -> dict:
    """Weights, hidden neurons and inference FLOPs before/after pruning (after = dead removed).

    ``flops_*`` = 2 · #nonzero weights per sample (one multiply + one add per connection; biases
    and activations not counted); ``dense_flops_after`` = 2 · Σ h_l·h_{l-1} of the compacted
    network run as dense matrices (what :func:`compact` exports).
    """
    m = _check_masks(masks)
    final = _fixed_point(m)
    alive = [int(f.any(axis=1).sum()) for f in final[:-1]]
    sizes_after = [m[0].shape[1], *alive, m[-1].shape[0]]
    before = int(sum(a.size for a in m))
    after = int(sum(f.sum() for f in final))
    by_z = int(sum(a.sum() for a in m))
    return {
        "weights_before": before,
        "weights_after": after,
        "weights_deleted_by_z": before - by_z,
        "weights_removed_with_neurons": by_z - after,
        "deleted_fraction_by_z": (before - by_z) / before,
        "neurons_before": int(sum(a.shape[0] for a in m[:-1])),
        "neurons_after": int(sum(alive)),
        "inputs": int(m[0].shape[1]),
        "inputs_unused": int((~final[0].any(axis=0)).sum()),
        "outputs": int(m[-1].shape[0]),
        "flops_before": 2 * before,
        "flops_after": 2 * after,
        "dense_flops_after": 2 * int(np.dot(sizes_after[1:], sizes_after[:-1])),
    }


def _keep_indices(final: list[np.ndarray]) -> list[np.ndarray]:
    """Indices of the units kept in each layer (inputs and outputs: all)."""
    hidden = [np.flatnonzero(f.any(axis=1)) for f in final[:-1]]
    return [np.arange(final[0].shape[1]), *hidden, np.arange(final[-1].shape[0])]


def _slice(arrays: list[np.ndarray], keep: list[np.ndarray]) -> list[np.ndarray]:
    return [a[np.ix_(keep[i + 1], keep[i])] for i, a in enumerate(arrays)]


def compact(
    weights: list[np.ndarray], biases: list[np.ndarray], masks: list[np.ndarray]
) -> tuple[list, list]:
    """Physically remove dead hidden neurons; the result computes exactly the network with weights
    ``weights · remove_dead_neurons(masks)`` (pruned entries inside kept neurons stay 0)."""
    W = _check_layers(weights, "weights")
    _check_like(biases, [(w.shape[0],) for w in W], "biases")
    _check_like(masks, [w.shape for w in W], "masks")
    final = remove_dead_neurons(masks)
    keep = _keep_indices(final)
    Wc = _slice([np.where(f, w, 0.0) for w, f in zip(W, final, strict=True)], keep)
    bc = [np.asarray(b, dtype=np.float64)[k] for b, k in zip(biases, keep[1:], strict=True)]
    return [w.astype(np.float64) for w in Wc], bc


# ----------------------------------------------------------------------------- networks


def _torch_activation(name: str) -> nn.Module:
    _check_choice(name, ACTIVATIONS, "network.activation")
    return {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "elu": nn.ELU,
        "sigmoid": nn.Sigmoid,
        "leaky_relu": partial(nn.LeakyReLU, LEAKY_SLOPE),
    }[name]()


def _np_activation(name: str, x: np.ndarray) -> np.ndarray:
    _check_choice(name, ACTIVATIONS, "network.activation")
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
    **train_kw: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """General vs Dropout vs Reduce Weight over ``repeats`` (stratified) train/test splits.

    All methods see the same splits and seed ``seed + repeat`` (same inner validation split).
    ``mask=None`` drops Reduce Weight (e.g. for an all-features baseline).  Returns the tidy
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
    )
    for mode in modes:  # untimed warm-up, so torch's one-off start-up cost hits no method
        fit(X[splits[0][0]], y[splits[0][0]], mode=mode, seed=seed, **{**train_kw, "max_epochs": 1})
    rows = []
    for r, (tr, te) in enumerate(splits):
        for mode in modes:
            W, b, sec = fit(X[tr], y[tr], mode=mode, seed=seed + r, **train_kw)
            pred = predict(W, b, X[te], activation, task)
            rows.append(
                {
                    "repeat": r,
                    "method": mode,
                    **_metrics(y[te], pred, task, n_classes),
                    "seconds": sec,
                }
            )
    per_repeat = pd.DataFrame(rows, columns=["repeat", "method", *METRICS])
    return per_repeat, summarise(per_repeat)


# ----------------------------------------------------------------------------- export


def _paths(prefix: str | Path) -> tuple[Path, Path]:
    p = str(prefix)
    return Path(p + ".safetensors"), Path(p + ".json")


def _jsonable(values: Sequence | None) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in (values or [])]


def export_model(
    prefix: str | Path,
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    *,
    activation: str,
    task: str,
    classes: Sequence | None,
    features: Sequence[str],
    means: Sequence[float] | None = None,
    sds: Sequence[float] | None = None,
) -> None:
    """Write ``prefix.safetensors`` (W{i} (out, in), b{i}, float64) and ``prefix.json``
    (architecture and preprocessing).  Pass compacted weights (:func:`compact`); no pickle."""
    W = [np.ascontiguousarray(w, dtype=np.float64) for w in _check_layers(weights, "weights")]
    _check_like(biases, [(w.shape[0],) for w in W], "biases")
    _check_choice(activation, ACTIVATIONS, "network.activation")
    n_in, n_out = W[0].shape[1], W[-1].shape[0]
    classes = _jsonable(classes)
    if task == "classification":
        task = "binary" if n_out == 1 else "multiclass"
    task, expect = _resolve_task(task, len(classes) or None) if task != "regression" else (task, 1)
    if task == "regression" and classes:
        raise InputError("a regression model has no classes; pass classes=None")
    if n_out != expect:
        raise InputError(
            f"{task} export with {len(classes)} classes needs {expect} output units, "
            f"the network has {n_out}"
        )
    if len(features) != n_in:
        raise InputError(f"features has {len(features)} names but the network has {n_in} inputs")
    scale = {}
    for key, v in (("means", means), ("sds", sds)):
        if v is not None:
            v = np.asarray(v, dtype=np.float64).reshape(-1)
            if v.size != n_in or not np.isfinite(v).all() or (key == "sds" and (v <= 0).any()):
                raise InputError(
                    f"{key} must hold {n_in} finite values (sds > 0), one per input "
                    "feature, from data/meta.json restricted to the selection"
                )
            v = v.tolist()
        scale[key] = v
    st_path, json_path = _paths(prefix)
    st_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"W{i}": w for i, w in enumerate(W)}
    tensors |= {f"b{i}": np.ascontiguousarray(b, dtype=np.float64) for i, b in enumerate(biases)}
    save_file(tensors, str(st_path), metadata={"format": FORMAT})
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights_file": st_path.name,
        "layer_sizes": [n_in, *[w.shape[0] for w in W]],
        "weight_convention": "W{i} has shape (layer_sizes[i+1], layer_sizes[i]) = (out, in)",
        "activation": activation,
        "output": {"binary": "sigmoid", "multiclass": "softmax", "regression": "identity"}[task],
        "task": task,
        "classes": classes,
        "features": [str(f) for f in features],
        "means": scale["means"],
        "sds": scale["sds"],
        "nonzero_weights": int(sum(np.count_nonzero(w) for w in W)),
    }
    json_path.write_text(json.dumps(meta, indent=2) + "\n")


def _predict_raw(
    weights: list[np.ndarray], biases: list[np.ndarray], meta: dict, X: np.ndarray | pd.DataFrame
) -> np.ndarray:
    """Predict from original-unit features (a DataFrame is reordered by feature name)."""
    if isinstance(X, pd.DataFrame):
        missing = sorted(set(meta["features"]) - set(X.columns))
        if missing:
            raise InputError(f"X lacks the model's feature columns {missing}")
        X = X[meta["features"]].to_numpy()
    X = np.asarray(X, dtype=np.float64)
    if meta["means"] is not None:
        X = X - np.asarray(meta["means"])
    if meta["sds"] is not None:
        X = X / np.asarray(meta["sds"])
    return predict(weights, biases, X, meta["activation"], meta["task"])


def load_model(prefix: str | Path) -> dict:
    """Load an :func:`export_model` pair: ``weights``, ``biases``, ``meta`` and
    ``predict(X_raw)`` (original units; probabilities (n, K) or values (n,))."""
    st_path, json_path = _paths(prefix)
    if not st_path.is_file() or not json_path.is_file():
        raise InputError(f"model files {st_path} and {json_path} must both exist")
    meta = json.loads(json_path.read_text())
    if meta.get("format") != FORMAT:
        raise InputError(f"{json_path} is not a {FORMAT} file (format = {meta.get('format')!r})")
    tensors = load_file(str(st_path))
    sizes = meta["layer_sizes"]
    weights = [tensors[f"W{i}"] for i in range(len(sizes) - 1)]
    biases = [tensors[f"b{i}"] for i in range(len(sizes) - 1)]
    _check_like(weights, [(b, a) for a, b in pairwise(sizes)], str(st_path))
    predict_fn: Callable[[np.ndarray], np.ndarray] = partial(_predict_raw, weights, biases, meta)
    return {"weights": weights, "biases": biases, "meta": meta, "predict": predict_fn}
