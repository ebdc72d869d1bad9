"""The pruned network as files: safetensors weights + a JSON description, and their loader.

A compacted network (``pruning.compact``) is written with everything needed to use it without
knockoffnet: feature names, means and sds to standardise raw values, activation, task, classes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file

from knockoffnet.errors import InputError
from knockoffnet.pruning import _check_layers, _check_like
from knockoffnet.retraining import _check_choice, _resolve_task, predict
from knockoffnet.vocabulary import ACTIVATIONS

FORMAT = "knockoffnet-mlp"
FORMAT_VERSION = 1


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
