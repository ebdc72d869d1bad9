"""Knockoff thresholds, selections and q-values (Algorithms 1-2, steps 11-13 of the paper).

The threshold is Barber & Candès' data-dependent rule: the estimated FDP of the set
{W ≥ t} is (offset + #{W ≤ −t}) / max(1, #{W ≥ t}), because a null W_j is equally likely
to be ±|W_j|, so the negatives estimate the false positives among the positives.
``offset=1`` (knockoff+) controls the FDR; ``offset=0`` (knockoff, what the paper's code
uses) controls only the modified FDR E[V / (R + 1/q)].

With κ knockoff copies (``copies``, Gimenez & Zou 2019) W is the signed multi-knockoff
statistic (:func:`knockoffnet.statistics.multi_statistic`): a null W_j is negative κ times
as often as positive, so the negatives are divided by κ: fdp̂(t) = (offset + #{W ≤ −t}) /
(κ · #{W ≥ t}), and the smallest selection falls from ⌈1/q⌉ to about ⌈1/(κq)⌉.

Everything is computed from one sorted FDP curve (:func:`_fdp_curve`) so that the
threshold, the selection and the q-values agree bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from knockoffnet.errors import InputError


def _as_finite(x: object, name: str, ndim: int = 1) -> np.ndarray:
    """Float64 copy of ``x``; refuses wrong rank and NaN/inf, which would silently drop out of
    every comparison below and change the counts."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric: {exc}") from exc
    if a.ndim != ndim:
        raise InputError(f"{name} must be a {ndim}-D array, got shape {a.shape}")
    bad = np.count_nonzero(~np.isfinite(a))
    if bad:
        raise InputError(f"{name} has {bad} NaN or infinite value(s); they must be finite")
    return a


def _check_level(q: object, name: str = "q") -> float:
    """A level/ratio must lie in (0, 1]: 0 would select nothing by definition, > 1 is no rate."""
    try:
        value = float(q)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a number in (0, 1], got {q!r}") from exc
    if not 0.0 < value <= 1.0:
        raise InputError(f"{name} must lie in (0, 1], got {value}")
    return value


def _check_offset(offset: object) -> int:
    """Only 1 (knockoff+, FDR) and 0 (knockoff, modified FDR) have a guarantee."""
    if isinstance(offset, bool) or offset not in (0, 1):
        raise InputError(f"offset must be 1 (knockoff+) or 0 (knockoff), got {offset!r}")
    return int(offset)  # type: ignore[call-overload]


def check_copies(copies: object) -> int:
    """κ, the number of knockoff copies: an integer from 1 (the usual knockoffs) up."""
    if isinstance(copies, bool) or not isinstance(copies, int | np.integer) or copies < 1:
        raise InputError(f"knockoffs.copies must be an integer >= 1 or auto; got {copies!r}")
    return int(copies)


# `knockoffs.copies: auto` (the default): three copies on cohorts of up to this many features.
# There knockoff+'s smallest selection, ⌈1/q⌉ with one copy, is what empties a run (10
# relevant of 50: nothing at q = 0.05, and all or nothing at q = 0.1), and three copies lower
# it to about ⌈1/(3q)⌉ for a network input of 4p columns instead of 2p (docs/method.md,
# "Multiple knockoffs"); larger cohorts keep one copy and its cost.
AUTO_COPIES = 3
AUTO_COPIES_MAX_FEATURES = 500


def copies_for_statistic(copies: object, statistic: str) -> object:
    """The ``knockoffs.copies`` a draw is given: ``auto`` is 1 under the paper's statistics,
    which compare a feature with one knockoff; anything else passes unchanged. Applied
    before the draw, which does not know the statistic, so changing the statistic redraws
    nothing unless it changes κ."""
    return 1 if copies == "auto" and statistic != "importance" else copies


def resolve_copies(
    copies: object, p: int, method: str = "model-x", statistic: str = "importance"
) -> int:
    """κ for a cohort of p features: an integer is checked and kept;
    ``auto`` is :data:`AUTO_COPIES` for model-x knockoffs with the importance statistics on
    at most :data:`AUTO_COPIES_MAX_FEATURES` features, else 1 (fixed-x knockoffs and the
    paper's statistics exist for one copy only)."""
    copies = copies_for_statistic(copies, statistic)
    if copies != "auto":
        return check_copies(copies)
    return AUTO_COPIES if method == "model-x" and p <= AUTO_COPIES_MAX_FEATURES else 1


def _fdp_curve(W: np.ndarray, offset: int, copies: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Candidate thresholds t (distinct non-zero |W|, ascending) and the estimated FDP at each.

    t = 0 is excluded: it would select features with W = 0, i.e. features that never beat
    (or lost to) their knockoff.
    """
    ts = np.unique(np.abs(W[W != 0]))
    pos = np.sort(W[W > 0])
    neg = np.sort(-W[W < 0])
    n_pos = pos.size - np.searchsorted(pos, ts, side="left")  # #{W ≥ t}
    n_neg = neg.size - np.searchsorted(neg, ts, side="left")  # #{W ≤ −t}
    fdp = (offset + n_neg) / np.maximum(1, n_pos)
    if copies > 1:
        fdp /= copies
    # A t above every positive W selects nothing; marking it unusable changes no selection
    # (a smaller qualifying t would win anyway) but keeps "T finite ⇔ something selected".
    fdp[n_pos == 0] = np.inf
    return ts, fdp


def knockoff_threshold(W: np.ndarray, q: float, offset: int = 1, copies: int = 1) -> float:
    """T = min{t ∈ {|W_j| > 0} : (offset + #{W ≤ −t}) / max(1, #{W ≥ t}) ≤ q}; inf if none.

    Only t with #{W ≥ t} ≥ 1 count, so T = inf exactly when nothing is selected (this only
    matters for offset 0 at q = 1, where an empty set could otherwise reach fdp̂ = 1).
    O(p log p): one sort plus binary searches instead of a count per candidate t.
    """
    W = _as_finite(W, "W")
    q = _check_level(q)
    ts, fdp = _fdp_curve(W, _check_offset(offset), check_copies(copies))
    ok = np.flatnonzero(fdp <= q)
    return float(ts[ok[0]]) if ok.size else math.inf


def knockoff_select(W: np.ndarray, q: float, offset: int = 1, copies: int = 1) -> np.ndarray:
    """Boolean mask W_j ≥ T (all False when T = inf)."""
    W = _as_finite(W, "W")
    return W >= knockoff_threshold(W, q, offset, copies)


def knockoff_qvalues(W: np.ndarray, offset: int = 1, copies: int = 1) -> np.ndarray:
    """Smallest q at which each feature is selected, so that users can change q without rerunning.

    For W_j > 0 it is min{fdp̂(t) : t ∈ {|W_k| > 0}, t ≤ W_j}, capped at 1; 1.0 for W_j ≤ 0.
    Consistency with :func:`knockoff_select`: for every q in (0, 1), selected at q ⇔
    qvalue ≤ q. At q = 1 the cap blurs the edge: a feature whose best fdp̂ exceeds 1 has
    q-value 1.0 but is still not selected at q = 1 (neither is any W_j ≤ 0).
    """
    W = _as_finite(W, "W")
    ts, fdp = _fdp_curve(W, _check_offset(offset), check_copies(copies))
    qv = np.ones(W.shape, dtype=np.float64)
    pos = W > 0
    if ts.size:
        best = np.minimum.accumulate(fdp)  # best fdp̂ over all t ≤ ts[i]
        idx = np.searchsorted(ts, W[pos], side="right") - 1  # ts[idx] == W_j exactly
        qv[pos] = np.minimum(best[idx], 1.0)
    return qv


def _min_selectable(q: float, copies: int = 1) -> int:
    """Smallest k with 1/(κk) ≤ q, evaluated with the same float division as the FDP curve."""

    def fdp(k: int) -> float:
        return 1.0 / k if copies == 1 else 1.0 / k / copies

    k = max(1, math.ceil(1.0 / (q * copies)))
    while k > 1 and fdp(k - 1) <= q:
        k -= 1
    while fdp(k) > q:
        k += 1
    return k


def no_selection_message(W: np.ndarray, q: float, offset: int = 1, copies: int = 1) -> str:
    """Plain-language reason why nothing is selected at level q ("" when something is).

    Empty selections are the most common surprise with knockoff+ on small p; the message
    says whether it is structural (too few positive W for the +1) or data-driven.
    """
    W = _as_finite(W, "W")
    q = _check_level(q)
    offset = _check_offset(offset)
    copies = check_copies(copies)
    _, fdp = _fdp_curve(W, offset, copies)
    if np.any(fdp <= q):
        return ""
    n_pos = int(np.count_nonzero(W > 0))
    n_neg = int(np.count_nonzero(W < 0))
    n_zero = W.size - n_pos - n_neg
    counts = f"{n_pos} positive, {n_neg} negative and {n_zero} zero W out of {W.size}"
    name = "knockoff+" if offset else "knockoff"
    if n_pos == 0:
        return (
            f"No feature selected at q = {q:g}: no feature beat its knockoff (W > 0), so "
            f"{name} cannot select anything at any q ({counts})."
        )
    best = float(fdp.min())
    needed = f"the smallest q at which {name} would select anything is {best:.3g}"
    if offset == 1:
        k = _min_selectable(q, copies)
        if n_pos < k:
            bound, rule, fix = (
                ("1/k", "⌈1/q⌉", "Raise q, add features, draw several knockoff copies "
                 "(knockoffs.copies)")
                if copies == 1
                else (f"1/({copies}k)", f"⌈1/({copies}q)⌉", "Raise q, add features, raise "
                      "knockoffs.copies")
            )  # fmt: skip
            return (
                f"No feature selected at q = {q:g}: knockoff+ counts one extra false discovery, "
                f"so a selection of k features has estimated FDP at least {bound}; with "
                f"q = {q:g} the smallest possible selection has {k} features ({rule}), and only "
                f"{n_pos} features have W > 0 ({counts}); {needed}. {fix}, or use offset 0 "
                "(knockoff, modified FDR only)."
            )
    fdp_text = "(1 + #{W ≤ −t}) / #{W ≥ t}" if offset else "#{W ≤ −t} / #{W ≥ t}"
    if copies > 1:
        fdp_text = f"{fdp_text} / {copies}"
    return (
        f"No feature selected at q = {q:g}: at every threshold t the estimated FDP "
        f"{fdp_text} exceeds q, because too many features lost to their knockoffs by a "
        f"comparable margin ({counts}); {needed}."
    )
