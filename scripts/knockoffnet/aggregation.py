"""Aggregating selections over repeated trainings: VWA hard vote (Algorithm 3) and
derandomised knockoffs with e-values + e-BH (Ren & Barber 2023).

VWA stabilises the selection but has no formal FDR guarantee. The e-value route does:
averaged knockoff e-values are still (relaxed) e-values, and e-BH on them controls the FDR
at q whatever the dependence between runs.
"""

from __future__ import annotations

import numpy as np

from knockoffnet.errors import InputError
from knockoffnet.filters import _as_finite, _check_level, knockoff_threshold


def vwa(selected: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 3 hard vote: keep feature j when count_j / n ≥ ratio (equality keeps).

    ``selected`` is (runs, p) boolean, one row per training run; VWA-OML is the caller
    stacking the OL and ML rows (ratio 0.25 in the paper). A 1e-12 relative slack on the
    comparison makes e.g. 3 of 10 runs pass ratio 0.3 whatever the float rounding of
    0.3 · 10. Returns (kept (p,) bool, frequency (p,) float).
    """
    S = np.asarray(selected)
    if S.ndim != 2 or S.shape[0] < 1:
        raise InputError(f"selected must be a (runs, p) array with ≥ 1 run, got shape {S.shape}")
    if S.dtype != bool:
        if S.dtype.kind not in "iuf" or not np.all((S == 0) | (S == 1)):
            raise InputError("selected must be boolean (or 0/1): one selection mask per run")
        S = S.astype(bool)
    ratio = _check_level(ratio, "ratio")
    n = S.shape[0]
    count = np.count_nonzero(S, axis=0)
    kept = count >= ratio * n * (1.0 - 1e-12)
    return kept, count / n


def knockoff_evalues(W: np.ndarray, alpha: float, offset: int = 1, copies: int = 1) -> np.ndarray:
    """Knockoff e-values e_j = p · 1{W_j ≥ T} / (1 + #{k : W_k ≤ −T}), T the threshold at alpha.

    Ren & Barber's construction with T the knockoff+ threshold (offset 1, the default); it
    makes Σ_null E[e_j] ≤ p, so the average over runs can go into e-BH. The denominator is
    always 1 + #{W ≤ −T}: that +1 is what the optional-stopping bound needs, for any
    stopping time T, so offset 0 only changes T (a denominator of 0 would give e = ∞).
    All zeros when T = ∞. α_kn = q/2 is Ren & Barber's suggested default.

    With κ knockoff copies (W the signed multi-knockoff statistic) a null W_j is positive
    with probability 1/(κ+1), so E[#null positives / (1 + #null negatives)] ≤ 1/κ and
    e_j = κ p · 1{W_j ≥ T} / (1 + #{W ≤ −T}) keeps Σ_null E[e_j] ≤ p.
    """
    W = _as_finite(W, "W")
    alpha = _check_level(alpha, "alpha")
    T = knockoff_threshold(W, alpha, offset, copies)
    if not np.isfinite(T):
        return np.zeros(W.shape, dtype=np.float64)
    n_neg = np.count_nonzero(W <= -T)
    scale = W.size if copies == 1 else copies * W.size
    return np.where(W >= T, scale / (1.0 + n_neg), 0.0)


def _check_e(e: object) -> np.ndarray:
    e = _as_finite(e, "e")
    if np.any(e < 0):
        raise InputError("e-values must be ≥ 0")
    return e


# Relative slack on r_k: a knockoff e-value p/(1 + V) makes r_k = (1 + V)/k only up to rounding
# (50/(30·(50/9)) is 0.30000000000000004), which would reject at q = 0.3 a set the knockoff+
# filter accepts at exactly (1 + V)/k = q. The same slack in ebh and ebh_qvalues keeps them
# consistent.
_EBH_SLACK = 1e-12


def _ebh_curve(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """e sorted descending and r_k = p / (k · e_(k)) (inf where e_(k) = 0).

    e_(k) ≥ p/(k q) ⇔ r_k ≤ q; using the one r array in both :func:`ebh` and
    :func:`ebh_qvalues` keeps them exactly consistent.
    """
    es = np.sort(e)[::-1]
    k = np.arange(1, e.size + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        r = e.size / (k * es) * (1.0 - _EBH_SLACK)
    return es, r


def ebh(e: np.ndarray, q: float) -> np.ndarray:
    """e-BH: k* = max{k : e_(k) ≥ p/(k q)}; select the k* largest, i.e. {j : e_j ≥ e_(k*)}.

    FDR ≤ q for any dependence among (relaxed) e-values. Ties cannot straddle position k*:
    a tie at k*+1 would satisfy the condition too (r_k is non-increasing within a tie), so
    {e_j ≥ e_(k*)} = {e_j ≥ p/(k* q)} has exactly k* members.
    """
    e = _check_e(e)
    q = _check_level(q)
    es, r = _ebh_curve(e)
    ok = np.flatnonzero(r <= q)
    if not ok.size:
        return np.zeros(e.shape, dtype=bool)
    return e >= es[ok[-1]]


def ebh_qvalues(e: np.ndarray) -> np.ndarray:
    """Smallest q at which e-BH selects each feature: min{r_k : e_(k) ≤ e_j}, capped at 1.

    For every q in (0, 1): ebh(e, q)[j] ⇔ qvalue_j ≤ q (1.0 means "not below 1").
    """
    e = _check_e(e)
    es, r = _ebh_curve(e)
    if not e.size:
        return np.ones(0)
    suffix_min = np.minimum.accumulate(r[::-1])[::-1]
    first = np.searchsorted(-es, -e, side="left")  # first position of e_j's tie group
    return np.minimum(suffix_min[first], 1.0)
