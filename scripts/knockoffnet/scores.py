"""Did the network learn? Validation scores of the fitted networks beside a reference model.

A knockoff filter can only find what its model has learned: a network that stopped near its
initialisation selects nothing, however valid. Every run therefore records, on its own
validation split, the score of the dense fit, of the network at the chosen λ and of a
gradient-boosting model (scikit-learn ``HistGradientBoosting*``) fitted on the same training
rows of ``[X, X~]``. Scores are accuracy for classification and R² for regression, so
"higher is better" holds for all three and they sit side by side in ``statistics.tsv`` and the
report.
"""

from __future__ import annotations

import numpy as np

from knockoffnet.errors import InputError
from knockoffnet.network import Net, predict
from knockoffnet.vocabulary import REFERENCES, TASKS, reference_rows


def metric_name(task: str) -> str:
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return "R2" if task == "regression" else "accuracy"


def score_outputs(out: np.ndarray, y: np.ndarray, task: str) -> float:
    """Accuracy of logits (binary: logit > 0; multiclass: argmax) or R² of outputs."""
    out = np.asarray(out, dtype=np.float64)
    y = np.asarray(y)
    if task == "binary":
        return float(np.mean((out[:, 0] > 0) == (y == 1)))
    if task == "multiclass":
        return float(np.mean(out.argmax(axis=1) == y))
    resid = np.sum((y - out[:, 0]) ** 2)
    total = np.sum((y - y.mean()) ** 2)
    return float(1.0 - resid / total) if total > 0 else float("nan")


def network_score(net: Net, U: np.ndarray, y: np.ndarray, task: str, activation: str) -> float:
    """The network's validation score on rows ``U``, ``y``."""
    return score_outputs(predict(net, U, activation), y, task)


def reference_score(
    U: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    task: str,
    seed: int,
    kind: str = "gb",
    threads: int = 1,
) -> float:
    """Validation score of the reference model fitted on ``U[train]`` (NaN for ``none``).

    Histogram gradient boosting with scikit-learn's defaults: no tuning, so it is a
    floor for what a flexible model learns from these rows, not a competitor. It converts
    its input to float64, so beyond REFERENCE_VALUES training values it is fitted on a
    random subset of the training rows (10,000 at 2,000 inputs; the same seed, the same
    rows): its score is then a floor for fewer rows than the network saw.
    """
    if kind not in REFERENCES:
        raise InputError(f"unknown reference {kind!r}; choose one of {', '.join(REFERENCES)}")
    if kind == "none":
        return float("nan")
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    model_cls = (
        HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    )
    model = model_cls(random_state=int(seed) % (2**32))
    rows = reference_rows(len(train), U.shape[1])
    if len(train) > rows:
        rng = np.random.default_rng(int(seed) % (2**32))
        train = np.sort(rng.choice(np.asarray(train), rows, replace=False))
    with threadpool_limits(int(threads)):
        model.fit(U[train], y[train])
        pred = model.predict(U[val])
    if task == "regression":
        resid = np.sum((y[val] - pred) ** 2)
        total = np.sum((y[val] - y[val].mean()) ** 2)
        return float(1.0 - resid / total) if total > 0 else float("nan")
    return float(np.mean(pred == y[val]))
