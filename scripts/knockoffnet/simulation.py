"""Simulation study: data generators with a known truth, peer statistics, FDP/power scoring.

Every generator has the signature ``generator(n, rng, **params) -> (frame, relevant)``: a
DataFrame with columns ``id, y, x1..xp`` and the list of truly relevant feature names. The
frames go through the real pipeline as ordinary cohorts (``workflow/rules/simulate.smk``);
this module then re-derives every filter's selection on a grid of q from the pipeline's
per-run Z files and scores it against the truth. Choices the paper leaves open (sample size,
teacher initialisation, where the relevant features sit) are stated in each docstring and in
docs/validation.md.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.errors import InputError
from knockoffnet.filters import knockoff_threshold
from knockoffnet.selection import FILTERS, build_tables, run_statistics

Generator = Callable[..., tuple[pd.DataFrame, list[str]]]
PEERS = ("rf", "lasso", "deeppink", "lassonet", "oracle")
PEER_FILTER = {peer: f"peer-{peer}" for peer in PEERS}
DISTRIBUTIONS = ("normal", "chisq", "gamma")
# Population mean and sd of each feature law: the teacher sees standardised inputs so that its
# ReLU kinks fall inside the data whatever the law (chi-square(4): 4, √8; gamma(2, 1): 2, √2).
MOMENTS = {"normal": (0.0, 1.0), "chisq": (4.0, math.sqrt(8.0)), "gamma": (2.0, math.sqrt(2.0))}
REPLICATE_COLUMNS = ["design", "replicate", "filter", "q", "n_selected", "fdp", "power"]
FIT_COLUMNS = ["design", "replicate", "draw", "seed", "metric", "dense", "chosen", "reference"]
SUMMARY_COLUMNS = ["design", "filter", "q", "fdp_mean", "fdp_se", "power_mean", "power_se"]


# --------------------------------------------------------------------------- building blocks


def _frame(X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """The cohort table every generator returns: id, y, x1..xp."""
    n, p = X.shape
    frame = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(p)])
    frame.insert(0, "y", y)
    frame.insert(0, "id", [f"s{i}" for i in range(n)])
    return frame


def _with_latent(frame: pd.DataFrame, latent: np.ndarray) -> pd.DataFrame:
    """Attach the noise-free latent score the labels were cut from (``frame.attrs``): the
    oracle peer regresses on it, which no method that sees only y can."""
    frame.attrs["latent"] = np.asarray(latent, dtype=np.float64)
    return frame


def latent_score(frame: pd.DataFrame) -> np.ndarray:
    """The latent score of a generated cohort, NaNs when its generator has none."""
    latent = frame.attrs.get("latent")
    return np.full(frame.shape[0], np.nan) if latent is None else np.asarray(latent)


def _names(indices: Iterable[int]) -> list[str]:
    return [f"x{int(j) + 1}" for j in indices]


def _check_sizes(n: int, p: int, s: int = 0) -> None:
    if n < 20:
        raise InputError(f"design sample size n must be at least 20, got {n}")
    if p < 1 or not 0 <= s <= p:
        raise InputError(f"design needs p >= 1 and 0 <= s <= p, got p = {p}, s = {s}")


def sample_features(rng: np.random.Generator, n: int, p: int, distribution: str) -> np.ndarray:
    """Independent features from one of the paper's laws: N(0,1), χ²(4) or Gamma(2, 1)."""
    if distribution == "normal":
        return rng.standard_normal((n, p))
    if distribution == "chisq":
        return rng.chisquare(4.0, (n, p))
    if distribution == "gamma":
        return rng.gamma(2.0, 1.0, (n, p))
    raise InputError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")


def balanced_labels(score: np.ndarray, classes: int) -> np.ndarray:
    """Cut a score at its quantiles into `classes` equal-sized classes (the paper's step
    function with the threshold that balances the classes)."""
    if classes < 2:
        raise InputError(f"classes must be at least 2, got {classes}")
    cuts = np.quantile(score, np.arange(1, classes) / classes)
    return np.searchsorted(cuts, score, side="right").astype(np.int64)


def relu_teacher(
    rng: np.random.Generator, sizes: Sequence[int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random ReLU network weights (out × in) with He scaling, so activations keep their scale
    through depth; biases N(0, 0.5²) put the ReLU kinks inside the data."""
    layers = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        gain = 2.0 if len(layers) < len(sizes) - 2 else 1.0
        W = rng.standard_normal((fan_out, fan_in)) * math.sqrt(gain / fan_in)
        layers.append((W, 0.5 * rng.standard_normal(fan_out)))
    return layers


def forward(layers: list[tuple[np.ndarray, np.ndarray]], X: np.ndarray) -> np.ndarray:
    """Network output (n, out): ReLU after every layer but the last."""
    h = X
    for i, (W, b) in enumerate(layers):
        h = h @ W.T + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def _add_noise(rng: np.random.Generator, score: np.ndarray, noise: float) -> np.ndarray:
    """Gaussian noise with sd `noise` × sd(score): the paper's optional knob for difficulty."""
    if noise < 0:
        raise InputError(f"noise must be >= 0, got {noise}")
    sd = float(score.std()) or 1.0
    return score + noise * sd * rng.standard_normal(score.shape)


# --------------------------------------------------------------------------- designs


def teacher(
    n: int,
    rng: np.random.Generator,
    p: int = 100,
    s: int = 33,
    distribution: str = "normal",
    classes: int = 2,
    hidden: Sequence[int] = (264,),
    noise: float = 0.0,
) -> tuple[pd.DataFrame, list[str]]:
    """The paper's §4 design: independent N(0,1), χ²(4) or Gamma(2,1) features; the first s
    are relevant (as in its Table 4); y cuts a random ReLU teacher's output on those s
    (standardised by the law's population moments) at its quantiles into balanced classes.
    The teacher is redrawn each replicate, so FDR and power average over teachers too."""
    _check_sizes(n, p, s)
    X = sample_features(rng, n, p, distribution)
    mean, sd = MOMENTS[distribution]
    net = relu_teacher(rng, [s, *hidden, 1])
    latent = forward(net, (X[:, :s] - mean) / sd)[:, 0]
    score = _add_noise(rng, latent, noise)
    return _with_latent(_frame(X, balanced_labels(score, classes)), latent), _names(range(s))


def notebook(
    n: int,
    rng: np.random.Generator,
    p: int = 100,
    s: int = 33,
    mean: float = 2.0,
    sd: float = 3.0,
    hidden: int = 264,
    threshold: float | str = 0.5,
) -> tuple[pd.DataFrame, list[str]]:
    """The authors' notebooks: s relevant features N(mean, sd²), p − s nulls N(0, 1), a
    freshly initialised s → hidden ReLU → 1 network (PyTorch's default uniform ±1/√fan_in
    weights and biases) and y = 1{output > threshold} with the raw threshold 0.5. Nothing
    balances the classes, so the positive rate depends on the teacher draw (see
    docs/validation.md); ``threshold: median`` balances them instead."""
    _check_sizes(n, p, s)
    X = rng.standard_normal((n, p))
    X[:, :s] = mean + sd * X[:, :s]
    layers = []
    for fan_in, fan_out in ((s, hidden), (hidden, 1)):
        bound = 1.0 / math.sqrt(fan_in)
        layers.append(
            (rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out))
        )
    out = forward(layers, X[:, :s])[:, 0]
    cut = float(np.median(out)) if threshold == "median" else float(threshold)
    return _frame(X, (out > cut).astype(np.int64)), _names(range(s))


def _ar1_cholesky(p: int, rho: float) -> np.ndarray:
    if not -1.0 < rho < 1.0:
        raise InputError(f"rho must lie in (-1, 1), got {rho}")
    lags = np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    return np.linalg.cholesky(rho**lags)


NON_MONOTONE: list[Callable[[np.ndarray], np.ndarray]] = [
    lambda x: x**2 - 1.0,
    lambda x: np.abs(x) - math.sqrt(2.0 / math.pi),
    lambda x: np.cos(2.0 * x) - math.exp(-2.0),
    lambda x: np.sin(2.0 * x),
]


def ar1(
    n: int,
    rng: np.random.Generator,
    p: int = 100,
    s: int = 20,
    rho: float = 0.5,
    classes: int = 2,
    noise: float = 0.5,
) -> tuple[pd.DataFrame, list[str]]:
    """Correlated Gaussian features, cov ρ^|i−j|, with non-monotone signals (x² − 1, |x|,
    cos 2x, sin 2x, each centred) on s evenly spaced features, random signs. Every relevant
    feature has correlated null neighbours: the setting where marginal screening fails and
    knockoffs must separate a signal from its proxies."""
    _check_sizes(n, p, s)
    X = rng.standard_normal((n, p)) @ _ar1_cholesky(p, rho).T
    idx = np.unique(np.round(np.linspace(0, p - 1, s)).astype(int))
    signs = rng.choice([-1.0, 1.0], idx.size)
    terms = [NON_MONOTONE[k % len(NON_MONOTONE)](X[:, j]) for k, j in enumerate(idx)]
    latent = np.column_stack(terms) @ signs
    score = _add_noise(rng, latent, noise)
    return _with_latent(_frame(X, balanced_labels(score, classes)), latent), _names(idx)


def global_null(
    n: int, rng: np.random.Generator, p: int = 100, classes: int = 2, distribution: str = "normal"
) -> tuple[pd.DataFrame, list[str]]:
    """y independent of X: balanced labels shuffled at random. Any selection is all false."""
    _check_sizes(n, p)
    X = sample_features(rng, n, p, distribution)
    if classes < 2:
        raise InputError(f"classes must be at least 2, got {classes}")
    y = rng.permutation(np.arange(n) % classes).astype(np.int64)
    return _frame(X, y), []


def deeplink(
    n: int,
    rng: np.random.Generator,
    p: int = 500,
    factors: int = 3,
    s: int = 10,
    amplitude: float = 5.0,
    noise: float = 1.0,
) -> tuple[pd.DataFrame, list[str]]:
    """DeepLINK's design (Zhu et al. 2021): linear factor model X = F Λᵀ + E with r factors,
    columns scaled to unit ℓ2 norm (as in their code), s signals of ±amplitude at random
    positions, and the regression outcome y = sin(Xβ)·exp(Xβ) + N(0, noise²)."""
    _check_sizes(n, p, s)
    F = rng.standard_normal((n, factors))
    loadings = rng.standard_normal((p, factors))
    X = F @ loadings.T + rng.standard_normal((n, p))
    X /= np.linalg.norm(X, axis=0)
    idx = np.sort(rng.choice(p, s, replace=False))
    beta = np.zeros(p)
    beta[idx] = amplitude * rng.choice([-1.0, 1.0], s)
    lin = X @ beta
    y = np.sin(lin) * np.exp(lin) + noise * rng.standard_normal(n)
    return _frame(X, y), _names(idx)


XOR_PATTERNS = np.array([[1, 1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1]], dtype=float)


def xor(
    n: int, rng: np.random.Generator, p: int = 50, shift: float = 1.0
) -> tuple[pd.DataFrame, list[str]]:
    """4-class XOR (Chen et al. 2017, used by Wojtas & Chen 2020): class c shifts x1..x3 by
    ±shift·v_c, the sign drawn per sample, where v_0..v_3 are the four antipodal pairs of
    cube vertices; so no single feature, and no linear function, separates the classes.
    Features x4..xp are N(0, 1) nulls."""
    _check_sizes(n, p, 3)
    X = rng.standard_normal((n, p))
    y = rng.permutation(np.arange(n) % 4).astype(np.int64)
    sign = rng.choice([-1.0, 1.0], n)[:, None]
    X[:, :3] += shift * sign * XOR_PATTERNS[y]
    return _frame(X, y), _names(range(3))


def orange_skin(n: int, rng: np.random.Generator, p: int = 50) -> tuple[pd.DataFrame, list[str]]:
    """Orange skin (Chen et al. 2018, L2X; used by Wojtas & Chen): logit P(y = 1) =
    Σ_{j≤4} x_j² − 4 with N(0, 1) features; x5..xp are nulls."""
    _check_sizes(n, p, 4)
    X = rng.standard_normal((n, p))
    logit = (X[:, :4] ** 2).sum(axis=1) - 4.0
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return _frame(X, y), _names(range(4))


def nonlinear_regression(
    n: int, rng: np.random.Generator, p: int = 50, noise: float = 1.0
) -> tuple[pd.DataFrame, list[str]]:
    """Non-linear additive regression (Wojtas & Chen 2020):
    y = −2 sin(2x1) + max(x2, 0) + x3 + exp(−x4) + N(0, noise²); x5..xp are nulls."""
    _check_sizes(n, p, 4)
    X = rng.standard_normal((n, p))
    y = (
        -2.0 * np.sin(2.0 * X[:, 0])
        + np.maximum(X[:, 1], 0.0)
        + X[:, 2]
        + np.exp(-X[:, 3])
        + noise * rng.standard_normal(n)
    )
    return _frame(X, y), _names(range(4))


GENERATORS: dict[str, Generator] = {
    "teacher": teacher,
    "notebook": notebook,
    "ar1": ar1,
    "global_null": global_null,
    "deeplink": deeplink,
    "xor": xor,
    "orange_skin": orange_skin,
    "nonlinear_regression": nonlinear_regression,
}


def generate(
    generator: str, n: int, seed: int, params: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Run a named generator with its own PCG64 stream; unknown names or keys name the fix."""
    if generator not in GENERATORS:
        raise InputError(f"unknown generator {generator!r}; choose one of {sorted(GENERATORS)}")
    fn = GENERATORS[generator]
    params = dict(params or {})
    allowed = set(inspect.signature(fn).parameters) - {"n", "rng"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InputError(
            f"generator {generator!r} has no parameter(s) {unknown}; it takes {sorted(allowed)}"
        )
    return fn(int(n), np.random.Generator(np.random.PCG64(int(seed))), **params)


# --------------------------------------------------------------------------- scoring


def fdp_power(selected: Iterable[str], relevant: Iterable[str]) -> tuple[int, float, float]:
    """(|S|, FDP, power) of one selection S against the truth S*.

    FDP = |S ∖ S*| / max(1, |S|) (0 for an empty selection); power = |S ∩ S*| / |S*|, and NaN
    when S* is empty (global null): there is nothing to find, and 0 would read as a failure.
    Under the null FDP = 1{|S| > 0}, so its mean is the probability of any selection.
    """
    S, truth = set(selected), set(relevant)
    hits = len(S & truth)
    fdp = (len(S) - hits) / max(1, len(S))
    power = hits / len(truth) if truth else math.nan
    return len(S), fdp, power


def score_masks(
    masks: dict[tuple[str, float], np.ndarray], features: Sequence[str], relevant: Sequence[str]
) -> pd.DataFrame:
    """One row per (filter, q): n_selected, fdp, power of the boolean mask over `features`."""
    names = np.asarray(features)
    rows = []
    for (flt, q), mask in masks.items():
        n_sel, fdp, power = fdp_power(names[np.asarray(mask, dtype=bool)], relevant)
        rows.append({"filter": flt, "q": q, "n_selected": n_sel, "fdp": fdp, "power": power})
    return pd.DataFrame(rows, columns=["filter", "q", "n_selected", "fdp", "power"])


def pipeline_masks(
    runs: Sequence[tuple[int, int, dict[str, np.ndarray]]],
    meta: dict[str, Any],
    selection: dict[str, Any],
    q_grid: Iterable[float],
) -> dict[tuple[str, float], np.ndarray]:
    """Every pipeline filter's selection at each q, recomputed from the runs' Z exactly as
    rule select_features does (same functions, only `q` changed; e-BH's α follows q/2 unless
    the config fixes it), so the study scores the code users run."""
    masks = {}
    for q in q_grid:
        sel = {**selection, "q": float(q)}
        stats = [run_statistics(arrays, d, s, meta["p"], sel) for d, s, arrays in runs]
        table = build_tables(stats, meta, sel)["features"]
        for flt in FILTERS:
            masks[(flt, float(q))] = table[f"selected_{flt}"].to_numpy(dtype=bool)
    return masks


def check_against_pipeline(
    masks: dict[tuple[str, float], np.ndarray],
    features: Sequence[str],
    selected: pd.DataFrame,
    q: float,
) -> list[str]:
    """Filters whose recomputed selection at the config's q differs from selected.tsv (should
    be none: a difference means the study no longer scores what the pipeline reports)."""
    names = np.asarray(features)
    bad = []
    for flt in FILTERS:
        ours = set(names[masks[(flt, float(q))]])
        theirs = set(selected.loc[selected["filter"] == flt, "feature"].astype(str))
        if ours != theirs:
            bad.append(flt)
    return bad


# --------------------------------------------------------------------------- peers


def _random_swap(rng: np.random.Generator, p: int) -> np.ndarray:
    return rng.random(p) < 0.5


def rf_statistic(
    X: np.ndarray,
    Xk: np.ndarray,
    y: np.ndarray,
    task: str,
    seed: int,
    trees: int = 500,
    threads: int = 1,
) -> np.ndarray:
    """Random-forest knockoff statistic W_j = MDI(x_j) − MDI(x~_j) from one forest on [X, X~].

    Each pair (x_j, x~_j) is swapped at random before fitting and the importances swapped
    back, so any positional preference of the forest cannot favour originals: W keeps the
    flip-sign property by construction.
    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    rng = np.random.Generator(np.random.PCG64(seed))
    swap, U = _swapped_pairs(X, Xk, rng)
    model_cls = RandomForestRegressor if task == "regression" else RandomForestClassifier
    model = model_cls(
        n_estimators=trees,
        max_features="sqrt",
        min_samples_leaf=5,
        random_state=int(rng.integers(2**31 - 1)),
        n_jobs=threads,
    )
    model.fit(U, y)
    return _unswap(model.feature_importances_, swap)


def knockpy_statistic(
    name: str, X: np.ndarray, Xk: np.ndarray, y: np.ndarray, task: str, seed: int, epochs: int = 50
) -> np.ndarray:
    """knockpy's lasso or DeepPINK statistic on our data and our knockoffs.

    knockpy picks the lasso family itself (logistic for two classes, Gaussian otherwise, so a
    multiclass outcome is regressed on its class codes). DeepPINK always uses its Gaussian
    (squared-error) loss on the codes: knockpy 1.3.5's binomial branch passes a 2-D target to
    torch's cross-entropy and fails. NumPy's and torch's global RNGs, which knockpy uses
    internally, are seeded first. Raises ImportError when knockpy is missing.
    """
    import knockpy.knockoff_stats as ks

    np.random.seed(seed % 2**32)  # noqa: NPY002 - knockpy draws from NumPy's global RNG
    if name == "lasso":
        return np.asarray(ks.LassoStatistic().fit(X, Xk, y), dtype=float)
    if name == "deeppink":
        import torch

        torch.manual_seed(seed)
        stat = ks.DeepPinkStatistic()
        target = np.asarray(y, dtype=float)
        W = stat.fit(
            X, Xk, target, y_dist="gaussian", train_kwargs={"verbose": False, "num_epochs": epochs}
        )
        return np.asarray(W, dtype=float)
    raise InputError(f"unknown knockpy peer {name!r}; choose lasso or deeppink")


def _swapped_pairs(X: np.ndarray, Xk: np.ndarray, rng: np.random.Generator):
    """[X, X~] with a random half of the pairs exchanged, and how to exchange them back: a
    peer that prefers one column position cannot then favour originals (flip-sign holds)."""
    swap = _random_swap(rng, X.shape[1])
    return swap, np.hstack([np.where(swap, Xk, X), np.where(swap, X, Xk)])


def _unswap(importance: np.ndarray, swap: np.ndarray) -> np.ndarray:
    p = swap.size
    z = np.where(swap, importance[p:], importance[:p])
    zk = np.where(swap, importance[:p], importance[p:])
    return z - zk


def lassonet_statistic(
    X: np.ndarray, Xk: np.ndarray, y: np.ndarray, task: str, seed: int, hidden: int = 64
) -> np.ndarray:
    """LassoNet (Lemhadri et al. 2021) on [X, X~]: W_j = importance(x_j) − importance(x~_j),
    its ``feature_importances_`` being the λ at which a feature leaves the path.

    The package's defaults except a 64-unit hidden layer (ours) and a path multiplier of 1.05
    instead of 1.02 (2.5× fewer λ; the default costs minutes per replicate). Raises
    ImportError without the ``baselines`` extra.
    """
    import torch
    from lassonet import LassoNetClassifier, LassoNetRegressor

    rng = np.random.Generator(np.random.PCG64(seed))
    swap, U = _swapped_pairs(X, Xk, rng)
    model_cls = LassoNetRegressor if task == "regression" else LassoNetClassifier
    state = int(rng.integers(2**31 - 1))
    torch.manual_seed(state)
    model = model_cls(
        hidden_dims=(hidden,),
        path_multiplier=1.05,
        val_size=0.2,
        verbose=0,
        random_state=state,
        torch_seed=state,
    )
    target = y.astype(np.float32) if task == "regression" else y.astype(np.int64)
    model.path(U.astype(np.float32), target, return_state_dicts=False)
    return _unswap(np.asarray(model.feature_importances_, dtype=np.float64), swap)


def oracle_statistic(X: np.ndarray, Xk: np.ndarray, latent: np.ndarray, seed: int) -> np.ndarray:
    """The oracle: a cross-validated lasso of the generator's noise-free *latent score* (what
    the labels were cut from) on [X, X~], W_j = |β_j| − |β~_j|.

    It sees more than any method that only has the labels, on the same knockoffs, so on a
    design whose latent is close to linear (the teacher designs) its power is the ceiling
    the filters are measured against. It says nothing where effects are non-monotone.
    """
    from sklearn.linear_model import LassoCV

    rng = np.random.Generator(np.random.PCG64(seed))
    swap, U = _swapped_pairs(X, Xk, rng)
    model = LassoCV(cv=5, random_state=int(rng.integers(2**31 - 1)), max_iter=5000)
    model.fit(U, latent)
    return _unswap(np.abs(model.coef_), swap)


def peer_masks(
    W: np.ndarray, filter_name: str, q_grid: Iterable[float], offset: int = 1
) -> dict[tuple[str, float], np.ndarray]:
    """Knockoff(+) selection of a peer's W at every q, with the pipeline's own threshold."""
    return {(filter_name, float(q)): W >= knockoff_threshold(W, float(q), offset) for q in q_grid}


def peer_statistics(
    peers: Iterable[str],
    X: np.ndarray,
    Xk: np.ndarray,
    y: np.ndarray,
    task: str,
    seed: int,
    options: dict[str, Any],
    log: logging.Logger,
    latent: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """W of each requested peer. A knockpy or LassoNet peer is skipped, with a logged reason,
    when its package is not installed (the optional `baselines` extra); the oracle when the
    design has no latent score. Each peer's time is logged: their cost varies by minutes
    between replicates and dominates some study jobs."""
    out = {}
    for peer in peers:
        start = time.perf_counter()
        try:
            if peer == "rf":
                W = rf_statistic(
                    X, Xk, y, task, seed, options.get("rf_trees", 500), options.get("threads", 1)
                )
            elif peer == "lassonet":
                W = lassonet_statistic(X, Xk, y, task, seed)
            elif peer == "oracle":
                if latent is None or not np.isfinite(latent).all():
                    log.info("peer oracle skipped: this design has no latent score")
                    continue
                W = oracle_statistic(X, Xk, latent, seed)
            else:
                W = knockpy_statistic(
                    peer, X, Xk, y, task, seed, options.get("deeppink_epochs", 50)
                )
        except ImportError as err:
            log.warning(
                "peer %s skipped: its package is not importable (%s); install the `baselines` "
                "extra (pip install -e '.[baselines]') to score it",
                peer,
                err,
            )
            continue
        out[PEER_FILTER[peer]] = W
        log.info("peer %s: %.1f s", peer, time.perf_counter() - start)
    return out


# --------------------------------------------------------------------------- aggregation


def summarise(replicates: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error (sd / √R, ddof 1; NaN for a single replicate) of FDP and power
    per design, filter and q. NaN powers (global null) stay NaN."""
    grouped = replicates.groupby(["design", "filter", "q"], sort=False)

    def se(x: pd.Series) -> float:
        x = x.dropna()
        return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan

    out = grouped.agg(
        fdp_mean=("fdp", "mean"),
        fdp_se=("fdp", se),
        power_mean=("power", "mean"),
        power_se=("power", se),
    ).reset_index()
    return out[SUMMARY_COLUMNS]


def fdr_check(
    summary: pd.DataFrame, designs: Iterable[str], filters: Sequence[str] = ("OL", "ML", "ebh")
) -> pd.DataFrame:
    """The acceptance check: mean FDP ≤ q + 2 s.e. for the FDR-controlling filters on the
    designs where exact control is expected (a missing s.e., one replicate, counts as 0)."""
    part = summary[summary["design"].isin(list(designs)) & summary["filter"].isin(filters)].copy()
    part["bound"] = part["q"] + 2 * part["fdp_se"].fillna(0.0)
    part["holds"] = part["fdp_mean"] <= part["bound"] + 1e-12
    return part[["design", "filter", "q", "fdp_mean", "fdp_se", "bound", "holds"]]


def fit_rows(
    runs: Sequence[tuple[int, int, dict[str, np.ndarray]]], design: str, replicate: int
) -> pd.DataFrame:
    """Validation scores of every run of one replicate (dense fit, chosen λ, reference)."""
    rows = [
        {
            "design": design,
            "replicate": replicate,
            "draw": d,
            "seed": s,
            "metric": str(a.get("metric", "")),
            "dense": float(a.get("dense_score", np.nan)),
            "chosen": float(a.get("chosen_score", np.nan)),
            "reference": float(a.get("reference_score", np.nan)),
        }
        for d, s, a in runs
    ]
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def fit_summary(fits: pd.DataFrame) -> pd.DataFrame:
    """Per design: mean ± se over replicates (runs averaged within a replicate) of the
    validation scores, and the mean gap to the gradient-boosting reference."""
    per_rep = fits.groupby(["design", "replicate", "metric"], sort=False)[
        ["dense", "chosen", "reference"]
    ].mean()
    per_rep["dense_gap"] = per_rep["dense"] - per_rep["reference"]
    per_rep["chosen_gap"] = per_rep["chosen"] - per_rep["reference"]
    grouped = per_rep.groupby(level=["design", "metric"], sort=False)
    mean, count = grouped.mean(), grouped.count()
    se = grouped.std(ddof=1) / np.sqrt(count)
    out = mean.add_suffix("_mean").join(se.add_suffix("_se")).reset_index()
    return out


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no optional `tabulate` dependency)."""

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return "–" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def study_table(summary: pd.DataFrame, replicates: pd.DataFrame, q: float) -> pd.DataFrame:
    """One row per (design, filter) at level q: FDR and power as 'mean ± se', R replicates."""
    part = summary[np.isclose(summary["q"], q)]
    counts = replicates.groupby("design")["replicate"].nunique()

    def pm(m: float, s: float) -> str:
        if math.isnan(m):
            return "–"
        return f"{m:.3f}" if math.isnan(s) else f"{m:.3f} ± {s:.3f}"

    return pd.DataFrame(
        {
            "design": part["design"],
            "R": part["design"].map(counts).astype(int),
            "filter": part["filter"],
            "FDR": [pm(m, s) for m, s in zip(part["fdp_mean"], part["fdp_se"], strict=True)],
            "power": [pm(m, s) for m, s in zip(part["power_mean"], part["power_se"], strict=True)],
        }
    )


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a CSV atomically (a killed job never leaves a half-written table)."""
    from knockoffnet.runtime import atomic_path

    tmp = atomic_path(path)
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def diagnostics_summary(diagnostics: pd.DataFrame) -> pd.DataFrame:
    """Per design: share of knockoff draws the diagnostics flagged, the largest skewness gap,
    the smallest swap-test p-value and one flagged message (what a user would have read)."""
    rows = []
    for design, part in diagnostics.groupby("design", sort=False):
        flagged = part[part["flag"].astype(str).str.lower() == "true"]
        rows.append(
            {
                "design": design,
                "draws": len(part),
                "flagged": len(flagged),
                "max_skew_gap": float(part["max_skew_gap"].max()),
                "min_swap_pvalue": float(part["swap_pvalue"].min()),
                "message": str(flagged["message"].iloc[0]) if len(flagged) else "",
            }
        )
    return pd.DataFrame(rows)


def study_markdown(
    summary: pd.DataFrame,
    replicates: pd.DataFrame,
    check: pd.DataFrame,
    diagnostics: pd.DataFrame,
    designs: dict[str, Any],
    q: float,
    fits: pd.DataFrame | None = None,
) -> str:
    """The study in Markdown, ready to paste into docs/validation.md: designs, the table at
    level q, the acceptance check over the whole q grid and the knockoff diagnostics."""
    spec = pd.DataFrame(
        [
            {
                "design": name,
                "generator": d["generator"],
                "n": d["n"],
                "params": ", ".join(f"{k}={v}" for k, v in d["params"].items()) or "defaults",
                "fdr_check": d["fdr_check"],
            }
            for name, d in designs.items()
        ]
    )
    failed = check[~check["holds"]]
    verdict = (
        "holds in every cell"
        if failed.empty
        else f"fails in {len(failed)} of {len(check)} cells (listed below)"
    )
    parts = [
        "### Designs",
        "",
        markdown_table(spec),
        "",
        f"### FDR and power at q = {q:g} (mean ± standard error over R replicates)",
        "",
        markdown_table(study_table(summary, replicates, q)),
        "",
        "### Acceptance check: mean FDP ≤ q + 2 se (OL, ML, ebh; designs with fdr_check)",
        "",
        f"Over q ∈ {sorted(check['q'].unique().tolist())}: {verdict}.",
        "",
    ]
    if not failed.empty:
        parts += [markdown_table(failed), ""]
    if fits is not None and len(fits):
        fs = fit_summary(fits)
        table = pd.DataFrame(
            {
                "design": fs["design"],
                "metric": fs["metric"],
                **{
                    col: [
                        f"{m:.3f} ± {e:.3f}"
                        for m, e in zip(fs[f"{col}_mean"], fs[f"{col}_se"], strict=True)
                    ]
                    for col in ("dense", "chosen", "reference", "dense_gap", "chosen_gap")
                },
            }
        )
        parts += [
            "### Did the network learn? Validation score (mean ± se over replicates)",
            "",
            "dense: the seed's network fitted without penalty; chosen: the λ the statistics "
            "read; reference: histogram gradient boosting on the same training rows of [X, X~]; "
            "gaps are network − reference.",
            "",
            markdown_table(table),
            "",
        ]
    diag = diagnostics_summary(diagnostics)
    parts += ["### Knockoff diagnostics (draws flagged by the exchangeability checks)", ""]
    parts += [markdown_table(diag), ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- plots


def plot_power_minus_fdr(summary: pd.DataFrame, path: str | Path) -> None:
    """Power − FDR against q per design and filter: the paper's Figures 2-3 read the best q off
    the maximum of this curve. Designs without a truth (global null) are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = summary.dropna(subset=["power_mean"])
    designs = list(dict.fromkeys(data["design"])) or ["(no design with relevant features)"]
    filters = list(dict.fromkeys(summary["filter"]))
    colors = dict(zip(filters, plt.get_cmap("tab10").colors, strict=False))
    fig, axes = plt.subplots(
        1, len(designs), figsize=(3.0 * len(designs) + 1.8, 3.2), squeeze=False, sharey=True
    )
    for c, design in enumerate(designs):
        part = data[data["design"] == design]
        for flt in filters:
            d = part[part["filter"] == flt].sort_values("q")
            axes[0, c].plot(d["q"], d["power_mean"] - d["fdp_mean"], marker="o", ms=3,
                            lw=1.1, color=colors.get(flt), label=flt)  # fmt: skip
        axes[0, c].axhline(0.0, color="k", lw=0.6)
        axes[0, c].set_title(design, fontsize=9)
        axes[0, c].set_xlabel("target FDR q")
    axes[0, 0].set_ylabel("power − FDR")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1 - 1.6 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
