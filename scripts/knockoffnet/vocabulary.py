"""The one definition of every name the workflow, the config schema and the report share.

Tasks, activations, step rules, penalties, statistics and filter names are spelled here once;
every other module imports them, so a new choice is added in one place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

TASKS = ("binary", "multiclass", "regression")
ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu")
LEAKY_SLOPE = 0.01

# Step rules of the λ path; `adam` is proximal Adam for mini-batches, `fista` the full-batch
# accelerated proximal gradient of the paper's reproduction.
OPTIMIZERS = ("adam", "fista", "momentum", "plain")
# `group`: one penalty per input on its whole fan-out (the input enters or leaves as one);
# `l1`: the paper's element-wise penalty on every weight.
PENALTIES = ("group", "l1")
# `warm`: every λ starts from the seed's dense fit; `cold`: from the random initialisation.
STARTS = ("warm", "cold")
# A quantitative outcome inside a fit: `standardised` trains every network on the training
# split's (y − mean) / sd and folds the scale back into the output layer; `raw` trains on y
# as given (the behaviour before 2026-12-06). Classification ignores it.
OUTCOME_SCALES = ("standardised", "raw")
# Each step rule's step size when `training.learning_rate` is null (docs/method.md, "Step rules").
DEFAULT_LEARNING_RATE = {"adam": 3e-3, "fista": 0.3, "momentum": 0.3, "plain": 1.0}
# `training.dense_decay: auto`: the dense fit with decoupled weight decay 10 and without, and
# the one with the lower validation loss starts the path. 10 with Adam is what the simulation
# study measured at Adam's default step (docs/validation.md, "A decayed dense fit as the
# default"); on weak, spread-out signals (a 100,000 × 1,000 genotype cohort) it shrinks the
# network to a constant, which the undecayed fit then beats (docs/method.md). The decay is
# scaled by the step, so at steps of 0.1 and more (the full-batch rules' 0.3-1, the paper's
# FISTA among them) 10 would flip the weights' sign; nothing was studied there, and `auto`
# decays nothing.
AUTO_DENSE_DECAY = 10.0
# `training.dense_coupling`: `columns` fits the dense network with each feature's columns
# sharing one fan-out scaled per column (knockoffnet.coupling); `none`, every column free;
# `auto` by the training rows (:func:`dense_coupling`).
DENSE_COUPLINGS = ("none", "columns", "auto")


def dense_decays(
    value: float | str | Sequence[float], optimizer: str, learning_rate: float | str | None = None
) -> tuple[float, ...]:
    """``training.dense_decay`` as the candidate decays of the dense fit (the one with the
    lower validation loss is kept): a number alone, a list as given, ``auto`` by the step
    rule and step."""
    if isinstance(value, str) and value == "auto":
        # `learning_rate: auto` by its largest step, which the smallest cohorts take
        lr = step_size(learning_rate, optimizer, 0)
        return (
            (AUTO_DENSE_DECAY, 0.0)
            if optimizer == "adam" and AUTO_DENSE_DECAY * lr < 1.0
            else (0.0,)
        )
    if isinstance(value, str | bool) or value is None:
        raise ValueError(f"not a decay: {value!r}")
    if isinstance(value, Sequence):
        if not value or any(isinstance(v, str | bool) for v in value):
            raise ValueError(f"not a list of decays: {value!r}")
        return tuple(float(v) for v in value)
    return (float(value),)


# `training.patience: auto` / `max_epochs: auto`: early stopping's patience from the training
# rows m (docs/method.md, "Early stopping"). A check is a pass of ceil(m / 128) steps at the
# default batch, so a small cohort's patience of 20 passes is few steps: at m = 320 (n = 400)
# 60, and the λ fits of Wojtas & Chen's orange skin stopped on their starting plateau, where
# 150 passes let most leave it (docs/validation.md, "`training.patience: auto` at n = 400":
# power 0.18-0.23 -> 0.65-0.66 there, the global null still empty); at m = 800 (the n = 1,000 designs every criterion was measured on) 20 sufficed. auto is 20
# from 800 rows, 150 up to 320, geometric in m between; the epoch cap follows the patience.
AUTO_PATIENCE = 20
AUTO_PATIENCE_SMALL = 150
AUTO_PATIENCE_ROWS = 800
AUTO_PATIENCE_SMALL_ROWS = 320
AUTO_MAX_EPOCHS = 300
AUTO_EPOCHS_PER_PATIENCE = 20 / 3  # 1,000 at patience 150, as the study arm measured


# `training.dense_coupling: auto`: `columns` from AUTO_COUPLING_ROWS training rows up to
# AUTO_COUPLING_MAX_ROWS, `none` outside (docs/validation.md, "A coupled dense fit"). At 800
# rows (the n = 1,000 designs) the coupled fit closed the dense fit's gap to gradient boosting
# and raised ML's power on AR(1), and at 4,000 (n = 5,000) it halved the gap; at 320
# (n = 400) it left the gap as it was and ML's power lower at three seeds, for 2.5× the wait.
# From 20,000 rows (where a validation check becomes a part of a pass, `check_rows`) it was
# not measured: at 80,000 (a 100,000 × 1,000 genotype cohort) the free dense fit already
# beats gradient boosting, and the coupled fit's longer wait would hold the grid job up to
# about twice as long there.
AUTO_COUPLING_ROWS = AUTO_PATIENCE_ROWS
AUTO_COUPLING_MAX_ROWS = 20_000


def dense_coupling(value: str, train_rows: int | None, optimizer: str | None = "adam") -> str:
    """``training.dense_coupling`` of a fit on ``train_rows`` training rows with ``optimizer``:
    a named coupling as given; ``auto`` is ``none`` for the step rules other than Adam (the
    coupled fit is built on Adam's steps, coupling.py), else by the rows, and stays ``auto``
    where the rows are not known (a report without the cohort's size)."""
    if value != "auto":
        return value
    if optimizer != "adam":
        return "none"
    if train_rows is None:
        return "auto"
    return "columns" if AUTO_COUPLING_ROWS <= int(train_rows) < AUTO_COUPLING_MAX_ROWS else "none"


def training_rows(n: int, val_fraction: float) -> int:
    """Training rows of an n-row cohort before its split is drawn (the stratified split's
    count differs by a row or so per class): what the job resources and the report size by."""
    return int(int(n) * (1.0 - float(val_fraction)))


def small_cohort_fraction(train_rows: int) -> float:
    """Where ``train_rows`` sits between the cohorts `auto` trains as before (0, from
    AUTO_PATIENCE_ROWS rows) and the smallest it was measured on (1, up to
    AUTO_PATIENCE_SMALL_ROWS): the geometric position the `auto` rules interpolate by."""
    m = int(train_rows)
    if m >= AUTO_PATIENCE_ROWS:
        return 0.0
    if m <= AUTO_PATIENCE_SMALL_ROWS:
        return 1.0
    return math.log(AUTO_PATIENCE_ROWS / m) / math.log(
        AUTO_PATIENCE_ROWS / AUTO_PATIENCE_SMALL_ROWS
    )


def auto_patience(train_rows: int) -> int:
    """``training.patience: auto`` for ``train_rows`` training rows (the dense fit's and
    every λ's early-stopping patience, in checks)."""
    frac = small_cohort_fraction(train_rows)
    return round(AUTO_PATIENCE * (AUTO_PATIENCE_SMALL / AUTO_PATIENCE) ** frac)


# `training.learning_rate: auto`: Adam's default step (DEFAULT_LEARNING_RATE) from 800
# training rows, AUTO_ADAM_STEP_SMALL up to 320, geometric between, as the patience; the other
# step rules keep their defaults. At 320 rows `auto`'s patience alone left the dense fits 0.13
# below gradient boosting on the orange skin, and the step 0.01 with it fitted as well as
# gradient boosting and selected where the patience alone did not (docs/validation.md,
# "Adam's step at n = 400"; the workflow arm: ML 0.65 -> 0.85 at q = 0.1, "Adam's step 0.01
# at n = 400"; the global null and the additive regression there hold). The default since
# 2026-12-07.
AUTO_ADAM_STEP_SMALL = 0.01


def step_size(learning_rate: float | str | None, optimizer: str, train_rows: int) -> float:
    """The step of a fit on ``train_rows`` rows: a number as given, null the step rule's
    default, ``auto`` Adam's by the training rows (the other rules' default)."""
    if learning_rate is None or (learning_rate == "auto" and optimizer != "adam"):
        return DEFAULT_LEARNING_RATE[optimizer]
    if learning_rate == "auto":
        frac = small_cohort_fraction(train_rows)
        if frac == 1.0:
            return AUTO_ADAM_STEP_SMALL
        return (
            DEFAULT_LEARNING_RATE["adam"]
            * (AUTO_ADAM_STEP_SMALL / DEFAULT_LEARNING_RATE["adam"]) ** frac
        )
    return float(learning_rate)


def fit_epochs(patience: int | str, max_epochs: int | str, train_rows: int) -> tuple[int, int]:
    """(patience, max_epochs) of a fit on ``train_rows`` rows: ``auto`` resolved (the cap
    AUTO_MAX_EPOCHS, or AUTO_EPOCHS_PER_PATIENCE × patience where that is more), numbers as
    given."""
    pat = auto_patience(train_rows) if patience == "auto" else int(patience)
    if max_epochs != "auto":
        return pat, int(max_epochs)
    return pat, max(AUTO_MAX_EPOCHS, math.ceil(AUTO_EPOCHS_PER_PATIENCE * pat))


# Per-run importances behind the OL and ML filters: `importance` (first-layer group norm and
# mean squared input gradient, neither cancels) or the paper's Z-based forms.
STATISTICS = ("importance", "paper")
# How the training seeds of one knockoff draw combine for the OL/ML filters.
COMBINES = ("mean", "first")

# Reference models scored beside the network on every run's validation split
# (`training.reference`), and the training values (rows × inputs) the reference is fitted on
# at most (0.16 GB as float64; the job resources model its time and memory from it).
REFERENCES = ("gb", "none")
REFERENCE_VALUES = 20_000_000


def reference_rows(train_rows: int, inputs: int) -> int:
    """Training rows the reference is fitted on: all, or a subset of REFERENCE_VALUES
    values, never fewer than 1,000 rows (a 40,000-input table: 1,000 rows, 4·10⁷ values)."""
    return min(int(train_rows), max(1000, REFERENCE_VALUES // max(1, int(inputs))))


# training.lambdas.count: auto: the grid's size from the cohort's rows (docs/method.md, "λ grid").
AUTO_LAMBDAS = 20
AUTO_LAMBDAS_LARGE = 10
LARGE_COHORT_ROWS = 50_000


def lambda_count(lambdas: dict, rows: int | None) -> int:
    """λ values of the grid: the explicit grid's length, the configured count, or with
    ``count: auto`` AUTO_LAMBDAS, halved from LARGE_COHORT_ROWS rows. The default statistics
    read only the chosen λ's network, so the grid's resolution only moves which λ that is,
    while each λ of a 100,000-row cohort costs minutes (benchmarks/README.md, "Ten λ").
    ``rows`` None (the cohort's files not written yet): AUTO_LAMBDAS."""
    if lambdas.get("values"):
        return len(lambdas["values"])
    count = lambdas.get("count", "auto")
    if count != "auto":
        return int(count)
    large = rows is not None and int(rows) >= LARGE_COHORT_ROWS
    return AUTO_LAMBDAS_LARGE if large else AUTO_LAMBDAS


PATH_FILTERS = ("OL", "ML")
FILTERS = ("OL", "ML", "VWA-OL", "VWA-ML", "VWA-OML", "ebh")
# The path statistic each filter is built on (VWA-OML pools both; ML stands for it). e-BH's
# is configured (`selection.ebh.statistic`).
FILTER_STATISTIC = {"OL": "OL", "ML": "ML", "VWA-OL": "OL", "VWA-ML": "ML", "VWA-OML": "ML"}
FILTER_NAMES = {
    "OL": "One Layer (OL)",
    "ML": "Multiple Layers (ML)",
    "VWA-OL": "Variable Weight Aggregation of OL (VWA-OL)",
    "VWA-ML": "Variable Weight Aggregation of ML (VWA-ML)",
    "VWA-OML": "Variable Weight Aggregation of OL and ML pooled (VWA-OML)",
    "ebh": "e-BH over runs (derandomised knockoffs)",
}
GUARANTEE = {
    "OL": "FDR ≤ q for knockoff draw 0 (knockoff+ on one statistic), given valid knockoffs.",
    "ML": "FDR ≤ q for knockoff draw 0 (knockoff+ on one statistic), given valid knockoffs.",
    "VWA-OL": "No formal FDR guarantee: a stability vote over runs.",
    "VWA-ML": "No formal FDR guarantee: a stability vote over runs.",
    "VWA-OML": "No formal FDR guarantee: a stability vote over runs.",
    "ebh": "FDR ≤ q over all runs combined (e-BH on averaged knockoff e-values).",
}

# The report's figures (rule `figures`; the report embeds them by these names).
FIGURES = (
    "ol_scatter",
    "ml_scatter",
    "w_sorted",
    "frequency_heatmap",
    "lambda_path",
    "effects",
    "network",
    "manhattan",
)

# knockoffs.groups: these two words, or else the path of a feature → group table.
GROUP_MODES = ("none", "auto")
