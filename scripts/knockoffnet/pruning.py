"""Reduce Weight (paper §3.4): prune a network by its Z statistics.

Z⁽ˡ⁾ₖⱼ = sup{λ : θ⁽ˡ⁾ₖⱼ(λ) ≠ 0} ranks weights by how long they survive the λ path, so the
weights with the smallest Z are the least important. This module turns Z into keep-masks
(:func:`deletion_threshold`, :func:`prune_masks`), removes hidden neurons left without an
incoming or outgoing weight (:func:`remove_dead_neurons`), and describes the pruned structure
(:func:`structure_table`, paper Table 10; :func:`summary_counts`). Retraining and the
prediction comparison are in ``retraining``, the model files in ``export``.

Every weight matrix is (out, in) = (h_l, h_{l-1}) as in ``docs/architecture.md``; masks are bool
arrays of the same shapes with True = kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from knockoffnet.errors import InputError

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


def alive_neurons(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer (inputs, hidden…, outputs): True where a kept path runs through the neuron.

    The same fixed point as :func:`remove_dead_neurons` (a weight into a removed neuron is as
    good as removed, which can strand the neuron it comes from), without its error when no
    path is left: the report draws whatever remains.
    """
    final = _fixed_point(_check_masks(masks))
    hidden = [m.any(axis=1) for m in final[:-1]]
    return [final[0].any(axis=0), *hidden, np.ones(final[-1].shape[0], dtype=bool)]


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
