"""Checks that a knockoff draw behaves like one (one row per draw, with advice in words).

Second moments against their targets, a swap test (MMD permutation test between halves with
and without exchanged pairs) and the skewness/kurtosis gaps Gaussian knockoffs cannot close.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from knockoffnet.errors import InputError
from knockoffnet.moments import row_block, row_slices

# Above this mean |corr(x_j, x~_j)| the diagnostics warn that power will be low.
LOW_POWER_PAIR_CORR = 0.9
SWAP_ALPHA = 0.01  # swap-test p-value below this raises the flag.
SKEW_GAP = 1.0  # |skewness| > 1 is "highly skewed" (Bulmer); a gap this large matters.
KURT_GAP = 3.0  # excess kurtosis 3 = Laplace tails; Gaussian knockoffs cannot copy that.


def _swap_blocks(
    Cxx: np.ndarray,
    Ckk: np.ndarray,
    Cxk: np.ndarray,
    Ckx: np.ndarray,
    swap_rows: np.ndarray,
    swap_cols: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the joint covariance's blocks after exchanging x_j ↔ x~_j for j in the swap
    mask: the arguments are the same rows of Cxx, Ckk, Cxk and Ckx = Cxkᵀ, ``swap_rows`` the
    mask at those rows and ``swap_cols`` the whole mask (so (p, p) work goes by row blocks)."""
    a, b = swap_rows[:, None], swap_cols[None, :]
    both, only_a, only_b = a & b, a & ~b, ~a & b
    xx = np.where(both, Ckk, np.where(only_a, Ckx, np.where(only_b, Cxk, Cxx)))
    kk = np.where(both, Cxx, np.where(only_a, Cxk, np.where(only_b, Ckx, Ckk)))
    xk = np.where(both, Ckx, np.where(only_a, Ckk, np.where(only_b, Cxx, Cxk)))
    return xx, kk, xk


def _second_moment_gaps(
    Cxx: np.ndarray,
    Ckk: np.ndarray,
    Cxk: np.ndarray,
    Sigma: np.ndarray,
    S: np.ndarray,
    swap: np.ndarray,
) -> tuple[float, float, float, float]:
    """max |Cxx − Σ|, max |Ckk − Σ|, max |Cxk − (Σ − S)| and the largest change of any block
    when the pairs in ``swap`` are exchanged; by row blocks, so no (p, p) temporaries (at
    p = 10⁴ each is 0.8 GB). ``S`` is the vector s or the (p, p) group S."""
    p = Sigma.shape[0]
    dev_xx = dev_kk = dev_xk = gap = 0.0
    for r in row_slices(p, 4 * p):
        target = Sigma[r] - S[r] if S.ndim == 2 else Sigma[r].copy()
        if S.ndim == 1:
            idx = np.arange(r.start, r.stop)
            target[idx - r.start, idx] -= S[r]
        dev_xx = max(dev_xx, float(np.abs(Cxx[r] - Sigma[r]).max()))
        dev_kk = max(dev_kk, float(np.abs(Ckk[r] - Sigma[r]).max()))
        dev_xk = max(dev_xk, float(np.abs(Cxk[r] - target).max()))
        blocks = (Cxx[r], Ckk[r], Cxk[r], Cxk[:, r].T)
        swapped = _swap_blocks(*blocks, swap[r], swap)
        pairs = zip(swapped, blocks[:3], strict=True)
        gap = max(gap, *(float(np.abs(new - old).max()) for new, old in pairs))
    return dev_xx, dev_kk, dev_xk, gap


def _pair_moments(
    X: np.ndarray, Xk: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(Cxx, Ckk, Cxk) sample covariances (n − 1) and the |skewness| and |excess kurtosis|
    gaps per column (biased moments, as ``scipy.stats`` defaults), summed over row blocks in
    float64: no float64 copy of X or X~ as a whole."""
    n, p = X.shape
    step = row_block(2 * p)
    mx = np.zeros(p)
    mk = np.zeros(p)
    for start in range(0, n, step):
        mx += X[start : start + step].sum(axis=0, dtype=np.float64)
        mk += Xk[start : start + step].sum(axis=0, dtype=np.float64)
    mx, mk = mx / n, mk / n
    Cxx, Ckk, Cxk = np.zeros((p, p)), np.zeros((p, p)), np.zeros((p, p))
    powers = np.zeros((2, 3, p))  # (x, x~) × central moments 2, 3, 4
    for start in range(0, n, step):
        A = X[start : start + step].astype(np.float64) - mx
        B = Xk[start : start + step].astype(np.float64) - mk
        Cxx += A.T @ A
        Ckk += B.T @ B
        Cxk += A.T @ B
        for i, D in enumerate((A, B)):
            D2 = D * D
            powers[i] += [D2.sum(axis=0), (D2 * D).sum(axis=0), (D2 * D2).sum(axis=0)]
    m2, m3, m4 = powers[:, 0] / n, powers[:, 1] / n, powers[:, 2] / n
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(m2 > 0, m3 / m2**1.5, 0.0)
        kurt = np.where(m2 > 0, m4 / m2**2 - 3.0, -3.0)
    scale = 1.0 / (n - 1)
    for C in (Cxx, Ckk, Cxk):
        C *= scale  # in place: the same numbers, no copies
    return (
        Cxx,
        Ckk,
        Cxk,
        np.abs(skew[0] - skew[1]),
        np.abs(kurt[0] - kurt[1]),
    )


def mmd_permutation_test(
    A: np.ndarray, B: np.ndarray, rng: np.random.Generator, n_perm: int = 200
) -> tuple[float, float]:
    """Biased MMD² between samples A and B (Gaussian kernel, median-distance bandwidth) and
    its permutation p-value; all permutations are scored at once as wᵀKw."""
    W = np.vstack([A, B])
    m, ma = W.shape[0], A.shape[0]
    sq = np.einsum("ij,ij->i", W, W)
    D2 = np.clip(sq[:, None] + sq[None, :] - 2.0 * (W @ W.T), 0.0, None)
    h2 = float(np.median(D2[np.triu_indices(m, k=1)]))
    K = np.exp(-D2 / (2.0 * max(h2, 1e-12)))
    labels = np.r_[np.ones(ma), np.zeros(m - ma)]
    perms = np.vstack([labels, rng.permuted(np.tile(labels, (n_perm, 1)), axis=1)]).T
    weights = perms / ma - (1.0 - perms) / (m - ma)
    stat = np.einsum("ib,ib->b", weights, K @ weights)
    pvalue = (1.0 + np.count_nonzero(stat[1:] >= stat[0])) / (1.0 + n_perm)
    return float(stat[0]), float(pvalue)


def diagnostics(
    X: np.ndarray,
    Xk: np.ndarray,
    Sigma: np.ndarray,
    s: np.ndarray,
    rng: np.random.Generator,
    max_rows: int = 1000,
    n_perm: int = 200,
    names: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
) -> dict[str, float | bool | str]:
    """One row of checks that the draw behaves like a knockoff.

    ``names`` (feature names) make the plain-language message name columns as users know them.

    Second moments are compared with their targets (Σ, Σ, Σ − S). The swap test splits ≤
    max_rows random rows into two halves, exchanges a random half of the pairs (x_j, x~_j) in
    the second, and asks with an MMD permutation test whether the halves differ — under
    exchangeability they cannot. Gaussian knockoffs copy only means and covariances, so the
    largest per-feature gap in skewness and excess kurtosis between x_j and x~_j is reported
    too; strongly skewed features gave FDR above q in the knockoffnet paper.

    Group knockoffs (``groups``, a label per feature; ``s`` the block-diagonal S) are only
    exchangeable group by group, so the swap test then exchanges whole groups.
    """
    X, Xk = np.asarray(X), np.asarray(Xk)  # float32 stays float32: blocks are cast below
    Sigma = np.asarray(Sigma, dtype=np.float64)
    S = np.asarray(s, dtype=np.float64)
    S = S.reshape(-1) if S.ndim != 2 else S  # the vector s, or a group's (p, p) S
    s = np.diag(S).copy() if S.ndim == 2 else S
    n, p = X.shape
    if Xk.shape != (n, p) or Sigma.shape != (p, p) or S.shape not in ((p,), (p, p)):
        raise InputError(
            f"shapes disagree: X {X.shape}, Xk {Xk.shape}, Sigma {Sigma.shape}, s {s.shape}"
        )
    Cxx, Ckk, Cxk, skew_gap, kurt_gap = _pair_moments(X, Xk)
    pair_corr = np.diag(Cxk) / np.sqrt(np.diag(Cxx) * np.diag(Ckk))

    if groups is None:
        swap = np.zeros(p, dtype=bool)
        swap[rng.choice(p, max(1, p // 2), replace=False)] = True
    else:
        labels = np.asarray(groups, dtype=np.int64)
        chosen = np.zeros(int(labels.max()) + 1, dtype=bool)
        chosen[rng.choice(chosen.size, max(1, chosen.size // 2), replace=False)] = True
        swap = chosen[labels]
    dev_xx, dev_kk, dev_xk, cov_gap = _second_moment_gaps(Cxx, Ckk, Cxk, Sigma, S, swap)

    rows = rng.choice(n, min(n, max_rows), replace=False)
    half = rows.size // 2
    Z1 = np.hstack([X[rows[:half]], Xk[rows[:half]]]).astype(np.float64)
    first = X[rows[half : 2 * half]].astype(np.float64)
    second = Xk[rows[half : 2 * half]].astype(np.float64)
    Z2 = np.hstack([np.where(swap, second, first), np.where(swap, first, second)])
    swap_stat, swap_p = mmd_permutation_test(Z1, Z2, rng, n_perm)

    out: dict[str, float | bool | str] = {
        "mean_s": float(s.mean()),
        "min_s": float(s.min()),
        "max_dev_xx": dev_xx,
        "max_dev_kk": dev_kk,
        "max_dev_xk": dev_xk,
        "mean_abs_pair_corr": float(np.abs(pair_corr).mean()),
        "swap_stat": swap_stat,
        "swap_pvalue": swap_p,
        "swap_cov_gap": float(cov_gap),
        "max_skew_gap": float(skew_gap.max()),
        "max_kurt_gap": float(kurt_gap.max()),
    }
    label = (lambda j: repr(str(names[j]))) if names is not None else str
    flag, message = _verdict(swap_p, skew_gap, kurt_gap, n, label)
    out["flag"] = flag
    out["message"] = message + _power_note(
        out["mean_abs_pair_corr"], out["mean_s"], grouped=groups is not None
    )
    return out


def _power_note(pair_corr: float, mean_s: float, grouped: bool = False) -> str:
    """Near-copy knockoffs are valid but leave the statistic little to tell apart (WDBC: 0.95).

    With group knockoffs a member may stay close to its own knockoff: only the group as a
    whole has to differ, so the per-feature warning does not apply."""
    if pair_corr <= LOW_POWER_PAIR_CORR:
        return ""
    if grouped:
        return (
            f" Group knockoffs: members stay close to their own knockoffs (mean "
            f"|corr(x_j, x~_j)| = {pair_corr:.2f}, mean s = {mean_s:.3f}); expected, since only "
            "whole groups are compared with their knockoff groups."
        )
    return (
        f" Low power expected: the knockoffs are near copies of the features (mean "
        f"|corr(x_j, x~_j)| = {pair_corr:.2f}, mean s = {mean_s:.3f}) because some features are "
        "almost linear combinations of others, so a network can hardly tell a feature from its "
        "knockoff. Grouping correlated features (knockoffs.groups: auto) or dropping or "
        "averaging near-duplicate features before ingest raises power."
    )


def moment_thresholds(n: int) -> tuple[float, float]:
    """Skewness and excess-kurtosis gaps that raise the flag on n rows: the practical ones
    (SKEW_GAP, KURT_GAP), never below 4 standard errors of the gap for Gaussian data."""
    return max(SKEW_GAP, 4.0 * math.sqrt(12.0 / n)), max(KURT_GAP, 4.0 * math.sqrt(48.0 / n))


def _verdict(
    swap_p: float,
    skew_gap: np.ndarray,
    kurt_gap: np.ndarray,
    n: int,
    label: Callable[[int], str] = str,
) -> tuple[bool, str]:
    """Plain-language flag. Moment thresholds are the practical ones (SKEW_GAP, KURT_GAP) but
    never below 4 standard errors of the gap for Gaussian data (√(12/n), √(48/n)), so small
    samples do not raise the flag by noise alone."""
    skew_thr, kurt_thr = moment_thresholds(n)
    reasons = []
    if swap_p < SWAP_ALPHA:
        reasons.append(
            f"[X, X~] changes when pairs are swapped (swap test p = {swap_p:.3g} < {SWAP_ALPHA})"
        )
    j = int(np.argmax(skew_gap))
    if skew_gap[j] > skew_thr:
        reasons.append(
            f"column {label(j)} is skewed unlike its knockoff (skewness gap {skew_gap[j]:.2f} > "
            f"{skew_thr:.2f}; {int(np.count_nonzero(skew_gap > skew_thr))} column(s) affected)"
        )
    j = int(np.argmax(kurt_gap))
    if kurt_gap[j] > kurt_thr:
        reasons.append(
            f"column {label(j)} has tails unlike its knockoff (excess-kurtosis gap {kurt_gap[j]:.2f} > "
            f"{kurt_thr:.2f}; {int(np.count_nonzero(kurt_gap > kurt_thr))} column(s) affected)"
        )
    if not reasons:
        return False, (
            f"No evidence against exchangeability (swap test p = {swap_p:.3g}, largest skewness "
            f"gap {skew_gap.max():.2f}, largest kurtosis gap {kurt_gap.max():.2f})."
        )
    # The advice follows the evidence: a moment gap points at the margins (transform them),
    # a failed swap test with matching margins at the dependence, or at chance (level 0.01).
    moment_gap = skew_gap.max() > skew_thr or kurt_gap.max() > kurt_thr
    if moment_gap:
        advice = (
            "transform skewed or heavy-tailed features (log, Yeo-Johnson) before ingest or "
            "read the selection as exploratory."
        )
    else:
        advice = (
            "the margins match, so the difference lies in how features depend on each other "
            "(clusters, non-linear links), which a covariance cannot carry. Rerun with "
            "knockoffs.draws > 1 to see whether the selection is stable, or read it as "
            f"exploratory. At level {SWAP_ALPHA} about 1 in {round(1 / SWAP_ALPHA)} draws of "
            "truly exchangeable knockoffs is flagged by chance."
        )
    return True, (
        "Knockoffs may not be exchangeable with X: "
        + "; ".join(reasons)
        + ". Gaussian knockoffs match only means and covariances, so the FDR can exceed q; "
        + advice
    )
