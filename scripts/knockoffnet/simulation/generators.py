"""Simulated cohorts with a known truth: the study's data generators.

Every generator has the signature ``generator(n, rng, **params) -> (frame, relevant)``: a
DataFrame with columns ``id, y, x1..xp`` and the list of truly relevant feature names;
generators with a latent score (the value the labels were cut from) attach it to
``frame.attrs`` for the oracle peer. Choices the paper leaves open (sample size, teacher
initialisation, where the relevant features sit) are stated in each docstring and in
docs/validation.md.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.errors import InputError

Generator = Callable[..., tuple[pd.DataFrame, list[str]]]
DISTRIBUTIONS = ("normal", "chisq", "gamma")
# Population mean and sd of each feature law: the teacher sees standardised inputs so that its
# ReLU kinks fall inside the data whatever the law (chi-square(4): 4, √8; gamma(2, 1): 2, √2).
MOMENTS = {"normal": (0.0, 1.0), "chisq": (4.0, math.sqrt(8.0)), "gamma": (2.0, math.sqrt(2.0))}


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


def blocks(
    n: int,
    rng: np.random.Generator,
    p: int = 100,
    block: int = 5,
    r: float = 0.9,
    s: int = 10,
    classes: int = 2,
    noise: float = 0.5,
    nonlinear: bool = False,
    interleave: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Blocks of ``block`` equicorrelated features (within-block corr r, independent blocks)
    with the signal on one random member of each of the first s blocks (issue 15's design for
    group knockoffs): at feature level "which member?" is nearly unanswerable, at group level
    it is the question. Signals are linear (random signs), or with ``nonlinear`` alternately
    linear and x² − 1. With s = 0 the labels are independent of X (a global null whose
    features still come in tight blocks). With ``interleave`` the same draw's columns are
    dealt out block by block (block b's members at columns b, b + p/block, ...), so no two
    members are neighbours: a table whose columns are not in correlation order."""
    _check_sizes(n, p, s)
    if p % block or not 1 < block <= p:
        raise InputError(f"p = {p} must be a multiple of the block size {block} (> 1)")
    if not 0.0 <= r < 1.0:
        raise InputError(f"r must lie in [0, 1), got {r}")
    if s > p // block:
        raise InputError(f"s = {s} relevant blocks, but there are only {p // block}")
    shared = rng.standard_normal((n, p // block))
    X = math.sqrt(r) * np.repeat(shared, block, axis=1) + math.sqrt(1.0 - r) * (
        rng.standard_normal((n, p))
    )
    idx = np.arange(s) * block + rng.integers(0, block, s)
    signs = rng.choice([-1.0, 1.0], s)
    terms = [X[:, j] ** 2 - 1.0 if nonlinear and k % 2 else X[:, j] for k, j in enumerate(idx)]
    # s = 0: labels from the noise alone, a global null with correlated blocks
    latent = np.column_stack(terms) @ signs if terms else np.zeros(n)
    score = _add_noise(rng, latent, noise)
    if interleave:  # column c of the contiguous layout moves to _dealt(c)
        moved = _dealt(np.arange(p), p, block)
        X[:, moved], idx = X.copy(), moved[idx]
    return _with_latent(_frame(X, balanced_labels(score, classes)), latent), _names(idx)


def _dealt(columns: np.ndarray, p: int, block: int) -> np.ndarray:
    """Where the interleaved layout puts contiguous column c: member c % block of block
    c // block goes to column (c % block)·(p / block) + c // block."""
    return (columns % block) * (p // block) + columns // block


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


def genotypes(
    n: int,
    rng: np.random.Generator,
    p: int = 50,
    s: int = 10,
    rho: float = 0.6,
    effect: float = 0.8,
    classes: int = 2,
    noise: float = 1.0,
) -> tuple[pd.DataFrame, list[str]]:
    """Genotype dosages 0/1/2 with linkage-disequilibrium-like correlation (issue 16).

    Each sample's two haplotypes come from a latent AR(1) Gaussian along the p variants
    (correlation ``rho`` between neighbours), cut at each variant's minor allele frequency
    (uniform on 0.1-0.5). ``s`` relevant variants spread evenly; half act through the
    heterozygote (dosage 1 against 0 or 2: no monotone model captures it), half additively,
    each with weight ``effect``. Written as PLINK with a design's ``format: plink``.
    """
    _check_sizes(n, p, s)
    if not 0.0 <= rho < 1.0:
        raise InputError(f"rho must lie in [0, 1), got {rho}")
    maf = rng.uniform(0.1, 0.5, p)
    from scipy.stats import norm

    cut = norm.ppf(maf)  # P(z < cut) = maf
    G = np.zeros((n, p))
    for _ in range(2):
        z = rng.standard_normal(n)
        for j in range(p):
            if j:
                z = rho * z + math.sqrt(1.0 - rho**2) * rng.standard_normal(n)
            G[:, j] += z < cut[j]
    idx = np.unique(np.linspace(0, p - 1, s).round().astype(int)) if s else np.array([], int)
    het = (G[:, idx[::2]] == 1).astype(np.float64)
    additive = G[:, idx[1::2]] - 2.0 * maf[idx[1::2]]
    latent = effect * ((het - het.mean(axis=0)).sum(axis=1) + additive.sum(axis=1))
    score = _add_noise(rng, latent, noise)
    return _with_latent(_frame(G, balanced_labels(score, classes)), latent), _names(idx)


GENERATORS: dict[str, Generator] = {
    "genotypes": genotypes,
    "teacher": teacher,
    "notebook": notebook,
    "ar1": ar1,
    "blocks": blocks,
    "global_null": global_null,
    "deeplink": deeplink,
    "xor": xor,
    "orange_skin": orange_skin,
    "nonlinear_regression": nonlinear_regression,
}


def true_groups(generator: str, params: dict[str, Any] | None = None) -> list[str] | None:
    """Each feature's block (``block1``, ``block2``, ...) where the generator builds its
    features in known blocks (``blocks``), else None: the groups an ungrouped filter is
    scored on at design ``level: group``, so it answers the grouped filter's question."""
    if generator != "blocks":
        return None
    defaults = {
        name: par.default
        for name, par in inspect.signature(blocks).parameters.items()
        if par.default is not inspect.Parameter.empty
    }
    kw = {**defaults, **(params or {})}
    p, block = int(kw["p"]), int(kw["block"])
    label = np.arange(p) // block
    if kw["interleave"]:
        label[_dealt(np.arange(p), p, block)] = label.copy()
    return [f"block{b + 1}" for b in label]


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
