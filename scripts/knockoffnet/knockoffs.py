"""Gaussian knockoffs: the negative controls that make the FDR statement true.

Two constructions are offered. ``model-x`` (Candès, Fan, Janson & Lv 2018) treats the rows
of X as draws from N(μ, Σ) and samples X~ | X from the Gaussian conditional that makes
[X, X~] pairwise exchangeable; its guarantee holds for *any* statistic, including a trained
network. ``fixed-x`` (Barber & Candès 2015) builds X~ deterministically-up-to-rotation so that
[X X~]ᵀ[X X~] is swap-invariant; its guarantee needs a statistic that sees the data only
through [X X~]ᵀ[X X~] and [X X~]ᵀy, which a network does not, so it is not the default.

Both need the vector s (S = diag(s)): the larger s_j, the less x~_j resembles x_j and the
more power, subject to the joint covariance staying PSD (2Σ − diag(s) ⪰ 0, s ≥ 0). Three
choices are solved on the correlation scale (see :func:`solve_s`): equicorrelated (closed
form), SDP (max Σ s_j) and MVR (min tr G_s⁻¹, Spector & Janson 2022, the default because
SDP knockoffs can make x_j reconstructable from the other columns and lose power).

All randomness comes from the ``numpy.random.Generator`` passed in, so a seed fixes a draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import linalg

from knockoffnet.errors import InputError
from knockoffnet.filters import check_copies, resolve_copies
from knockoffnet.knockoff_diagnostics import diagnostics
from knockoffnet.moments import (
    RowMoments,
    column_moments,
    ledoit_wolf,
    row_block,
    row_moments,
    row_slices,
    standardise_float32,
)
from knockoffnet.s_solvers import (
    DEFAULT_MAX_BLOCK,
    DEFAULT_S_METHOD,
    S_METHODS,
    _check_max_block,
    _choice,
    _validate_sigma,
    solve_group_s,
    solve_s,
    symmetrised,
    to_correlation,
)

if TYPE_CHECKING:  # annotations only: a block-wise draw imports the module when it runs
    from knockoffnet.knockoff_blocks import Links

METHODS = ("model-x", "fixed-x")
COVARIANCES = ("ledoit-wolf", "sample", "graphical-lasso")
# `full`: one joint draw over all p features; `blocks`: contiguous blocks of at most
# max_block features drawn independently (:mod:`knockoffnet.knockoff_blocks`); `auto`: full
# up to FULL_SAMPLING_MAX_P features, blocks beyond (model-x; groups stay inside blocks).
SAMPLINGS = ("auto", "full", "blocks")
# A joint draw holds about six float64 (p, p) matrices: 5 GB at 10⁴ features (measured: 5.9
# GB peak at 20,000 × 10,000), 21 GB at 2·10⁴.
FULL_SAMPLING_MAX_P = 10_000

# Rows the draw's diagnostics read at most (a random subset beyond): moments and the swap
# test are estimated well from 10,000 rows, and their float64 copies stay ~0.1 GB at p = 1000.
DIAGNOSTIC_ROWS = 10_000
# The checks' three (p, p) cross-products cost 6·rows·p² FLOPs: at p = 10⁴, 10,000 rows were
# 6·10¹² FLOPs, most of the job. Beyond p ≈ 4,500 the rows shrink to keep rows·p² at this
# budget, never below MIN_DIAGNOSTIC_ROWS.
DIAGNOSTIC_BUDGET = 2e11
MIN_DIAGNOSTIC_ROWS = 2_000


def resolve_sampling(sampling: str, p: int, method: str = "model-x") -> str:
    """``full`` or ``blocks`` for a cohort of p features (``auto``: blocks beyond
    FULL_SAMPLING_MAX_P model-x features, per feature or by group); an InputError for blocks
    with fixed-x knockoffs, which are built from the whole design's Gram matrix."""
    sampling = _choice(sampling, SAMPLINGS, "knockoffs.sampling")
    if sampling == "auto":
        return "blocks" if p > FULL_SAMPLING_MAX_P and method == "model-x" else "full"
    if sampling == "blocks" and method != "model-x":
        raise InputError(
            "knockoffs.sampling: blocks draws model-x knockoffs only; set "
            "knockoffs.sampling: full (or auto), or method: model-x"
        )
    return sampling


def diagnostic_rows(n: int, p: int) -> int:
    """Rows the draw's checks read: all of a small cohort, a random subset of a large one."""
    return int(min(n, DIAGNOSTIC_ROWS, max(MIN_DIAGNOSTIC_ROWS, DIAGNOSTIC_BUDGET // (p * p))))


COLLINEAR_TOL = 1e-10  # |corr| above 1 - this: the pair carries one direction, not two.


# --------------------------------------------------------------------------- validation


def validate_X(X: object) -> np.ndarray:
    """Float64 (n, p) copy of X, or InputError naming the problem (:func:`_checked_moments`).

    Knockoffs are undefined for constant columns (no correlation) and not identifiable for a
    perfectly collinear pair: x~_i would have to be exchangeable with x_i *and* x_j = ±x_i, so
    s_i = s_j = 0 and the pair can never be selected.
    """
    A, _ = _checked_moments(X)
    return np.array(A, dtype=np.float64)


def _checked_moments(X: object, columns: np.ndarray | None = None) -> tuple[np.ndarray, RowMoments]:
    """X as an (n, p) array (float32 kept: no float64 copy) and its row moments, or an
    InputError naming the problem; the checks read only the moments. ``columns`` are the
    column numbers the errors name (X a block of a wider matrix's columns)."""
    try:
        A = np.asarray(X)
        if A.dtype not in (np.float32, np.float64):
            A = A.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"X must be a numeric matrix: {exc}") from exc
    if A.ndim != 2:
        raise InputError(f"X must be 2-D (samples x features); got shape {A.shape}")
    n, p = A.shape
    if p < 1:
        raise InputError("X has no columns; knockoffs need at least one feature")
    number = np.arange(p) if columns is None else np.asarray(columns)
    if n < 3:
        raise InputError(f"X has {n} row(s); knockoffs need at least 3 samples")
    m = row_moments(A)
    if m.nonfinite:
        raise InputError(
            f"X has {m.nonfinite} NaN or infinite value(s); impute or drop them at ingest"
        )
    const = np.flatnonzero(m.col_max == m.col_min)
    if const.size:
        raise InputError(
            f"column(s) {', '.join(str(number[j]) for j in const[:10])} are constant; drop them"
            " at ingest"
        )
    d = np.sqrt(np.diag(m.gram))
    for rows in row_slices(p, p):  # by row blocks: no (p, p) temporaries
        C = np.abs(m.gram[rows] / np.outer(d[rows], d))
        hits = np.argwhere(np.triu(C > 1.0 - COLLINEAR_TOL, k=rows.start + 1))
        if hits.size:
            i, j = (int(v) for v in hits[0])
            raise InputError(
                f"columns {number[i + rows.start]} and {number[j]} are identical or perfectly"
                f" collinear (|corr|"
                f" = {C[i, j]:.12f}); knockoffs are not identifiable for such a pair — drop one"
                " of the two columns"
            )
    return A, m


def _covariance_from_moments(m: RowMoments, method: str) -> np.ndarray:
    """The correlation matrix of the chosen estimator, from row moments alone."""
    from sklearn.covariance import GraphicalLasso

    n, p = m.n, m.gram.shape[0]
    if method == "sample":
        if n <= p:
            raise InputError(
                f"the sample covariance is singular with n = {n} <= p = {p}; "
                "use knockoffs.covariance: ledoit-wolf"
            )
        cov = m.gram / (n - 1)
    elif method == "ledoit-wolf":
        cov = ledoit_wolf(m)
    else:
        alpha = math.sqrt(math.log(max(p, 2)) / n)
        try:
            fit = GraphicalLasso(alpha=alpha, max_iter=200, covariance="precomputed")
            cov = fit.fit(m.gram / n).covariance_
        except (FloatingPointError, ValueError) as exc:
            raise InputError(
                f"graphical lasso did not converge ({exc}); use knockoffs.covariance: ledoit-wolf"
            ) from exc
    # every branch made a fresh matrix: rescale it in place
    return to_correlation(np.asarray(cov, dtype=np.float64), overwrite=True)


# --------------------------------------------------------------------------- covariance


def estimate_covariance(
    X: np.ndarray, method: str = "ledoit-wolf"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and *correlation* matrix of the rows of X under the chosen estimator.

    ``ledoit-wolf`` (default) is always PD and needs no tuning; ``sample`` is singular when
    n ≤ p; ``graphical-lasso`` uses the fixed penalty α = sqrt(log p / n), the rate at which
    the sparse precision estimate is consistent (Ravikumar et al. 2011) — cross-validation
    would refit ~80 times per draw for little change in s.
    """
    method = _choice(method, COVARIANCES, "knockoffs.covariance")
    _, m = _checked_moments(X)
    return m.mean, _covariance_from_moments(m, method)


# --------------------------------------------------------------------------- sampling


def _psd_factor(V: np.ndarray) -> np.ndarray:
    """C with C Cᵀ = V for a PSD V: Cholesky when V is numerically PD (fast), else the
    eigen-decomposition with negative round-off clipped (V is congruent to 2Σ − S, so it is
    near-singular when s sits on the boundary of the feasible set)."""
    V = symmetrised(V)  # in place: V is the caller's scratch
    L, info = linalg.lapack.dpotrf(V, lower=True, clean=True)
    if info == 0:
        return L
    vals, vecs = linalg.eigh(V)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def sample_model_x(
    X: np.ndarray,
    mu: np.ndarray,
    Sigma: np.ndarray,
    s: np.ndarray,
    rng: np.random.Generator,
    copies: int = 1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Draw X~ | X ~ N(μ + (X − μ)(I − Σ⁻¹S), 2S − SΣ⁻¹S), row by row, vectorised.

    This is the Gaussian conditional that makes [X, X~] ~ N([μ, μ], [[Σ, Σ−S], [Σ−S, Σ]]).

    κ = ``copies`` > 1 returns [X~¹, …, X~ᵏ] (n, κp), jointly exchangeable with X (Gimenez &
    Zou 2019): every pair of the κ+1 blocks has cross-covariance Σ − S. Given X the copies
    share the mean above and have covariance I⊗S + J⊗(S − SΣ⁻¹S), drawn as a common part
    N(0, (κ+1)/κ·S − SΣ⁻¹S) plus κ independent N(0, S) draws centred over the copies
    (covariance (I − J/κ)⊗S). s must satisfy (κ+1)/κ·Σ − S ⪰ 0
    (:func:`knockoffnet.s_solvers.solve_s` with the same ``copies``).
    ``s`` is the diagonal of S, or for group knockoffs the block-diagonal (p, p) S itself.

    Rows are drawn in blocks (about 32 MB of float64 each) into ``out`` (float64 by default;
    pass a float32 (n, κp) array for a large cohort), so no float64 matrix of X's size is
    held. With one copy the random numbers are those of one whole-matrix draw, whatever the
    block size; with κ copies each block draws its common part, then its κ parts.
    """
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    Sigma = _validate_sigma(Sigma)
    p = Sigma.shape[0]
    mu = np.asarray(mu, dtype=np.float64).reshape(-1)
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 2:
        s = s.reshape(-1)
    if X.ndim != 2 or X.shape[1] != p or mu.shape != (p,) or s.shape not in ((p,), (p, p)):
        raise InputError(
            f"shapes disagree: X {X.shape}, mu {mu.shape}, Sigma {Sigma.shape}, s {s.shape}"
        )
    copies = check_copies(copies)
    n = X.shape[0]
    if out is None:
        out = np.empty((n, copies * p))
    if out.shape != (n, copies * p):
        raise InputError(f"out has shape {out.shape}; expected {(n, copies * p)}")
    c = 2.0 if copies == 1 else (copies + 1) / copies
    # Sigma is a validated copy, exactly symmetric: its Fortran-ordered transpose is the same
    # matrix, which LAPACK factors in place (at p = 10⁴ each (p, p) array is 0.8 GB)
    factor = linalg.cho_factor(Sigma.T, overwrite_a=True)
    del Sigma
    if s.ndim == 1:
        SinvS = np.zeros((p, p), order="F")
        np.fill_diagonal(SinvS, s)
        SinvS = linalg.cho_solve(factor, SinvS, overwrite_b=True)  # Σ⁻¹S
        del factor
        V = SinvS * -s[:, None]  # c·S − SΣ⁻¹S, with S diagonal
        V.flat[:: p + 1] += c * s
    else:  # a block-diagonal group S
        SinvS = linalg.cho_solve(factor, s)
        del factor
        V = c * s - s @ SinvS
    C = _psd_factor(V)
    del V
    scale = np.sqrt(s) if s.ndim == 1 else _psd_factor(np.array(s)).T
    step = row_block((copies + 2) * p)
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        B = np.asarray(X[rows], dtype=np.float64)
        mean = B - (B - mu) @ SinvS + rng.standard_normal(B.shape) @ C.T
        if copies == 1:
            out[rows] = mean
            continue
        E = rng.standard_normal((copies, *B.shape))
        E = E * scale if s.ndim == 1 else E @ scale
        E -= E.mean(axis=0)
        for k in range(copies):
            out[rows, k * p : (k + 1) * p] = mean + E[k]
    return out


def _orthonormal_complement(B: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A random n × k orthonormal U with Uᵀ B = 0, without forming an n × n basis."""
    Q, _ = linalg.qr(B, mode="economic")
    Z = rng.standard_normal((B.shape[0], k))
    for _ in range(2):  # twice is enough to reach machine precision (Gram–Schmidt "twice")
        Z -= Q @ (Q.T @ Z)
    U, _ = linalg.qr(Z, mode="economic")
    return U


def fixed_x(
    X: np.ndarray,
    s_method: str = DEFAULT_S_METHOD,
    rng: np.random.Generator | None = None,
    max_block: int = DEFAULT_MAX_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-X knockoffs (Barber & Candès 2015), returned on the scale of X.

    Columns are centred and scaled to unit norm (X_n), so Σ = X_nᵀX_n is the sample
    correlation and s is on the same scale as for model-X. With U an n × p orthonormal matrix
    orthogonal to col(X_n) (and to the intercept when n > 2p, so X~ is centred like X) and
    CᵀC = 2S − SΣ⁻¹S:  X~_n = X_n(I − Σ⁻¹S) + U C, which gives X~_nᵀX~_n = Σ and
    X_nᵀX~_n = Σ − S exactly. The result is mapped back by X~ = mean + X~_n · ‖x_j − mean‖.
    """
    return _fixed_x(validate_X(X), s_method, rng, max_block)


def _fixed_x(
    X: np.ndarray, s_method: str, rng: np.random.Generator | None, max_block: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fixed_x` on an already validated X."""
    n, p = X.shape
    if n < 2 * p:
        raise InputError(
            f"knockoffs.method: fixed-x needs n >= 2p samples (n = {n}, p = {p}); "
            "use knockoffs.method: model-x"
        )
    rng = np.random.Generator(np.random.PCG64(0)) if rng is None else rng
    mean = X.mean(axis=0)
    norms = np.linalg.norm(X - mean, axis=0)
    Xn = (X - mean) / norms
    Sigma = Xn.T @ Xn
    Sigma = 0.5 * (Sigma + Sigma.T)
    np.fill_diagonal(Sigma, 1.0)
    s = solve_s(Sigma, s_method, max_block)
    SinvS = linalg.cho_solve(linalg.cho_factor(_validate_sigma(Sigma)), np.diag(s))
    CtC = 2.0 * np.diag(s) - s[:, None] * SinvS
    C = _psd_factor(CtC).T  # CᵀC = CtC
    basis = np.column_stack([np.ones(n), Xn]) if n > 2 * p else Xn
    U = _orthonormal_complement(basis, p, rng)
    Xk_n = Xn - Xn @ SinvS + U @ C
    return mean + Xk_n * norms, s


# --------------------------------------------------------------------------- entry point


def make_knockoffs(
    X: np.ndarray,
    method: str = "model-x",
    covariance: str = "ledoit-wolf",
    s_method: str = DEFAULT_S_METHOD,
    max_block: int = DEFAULT_MAX_BLOCK,
    seed: int = 0,
    names: Sequence[str] | None = None,
    copies: int | str = 1,
    groups: np.ndarray | None = None,
    sampling: str = "auto",
    chromosomes: Sequence[str] | None = None,
    block_order: str = "auto",
    links: Links | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float | bool | str]]:
    """One knockoff draw: (X~ as float32 (n, κp), s float64 (p,), diagnostics).

    The same seed gives identical output: every random number comes from PCG64(seed).
    ``covariance`` is used by model-x only (fixed-x uses the data's own Gram matrix).
    κ = ``copies`` > 1 (model-x only) stacks κ jointly exchangeable copies side by side
    (``auto``: :func:`knockoffnet.filters.resolve_copies` of p; the diagnostics record κ); the
    diagnostics describe the first copy (every copy has the same distribution given X).
    ``groups`` (a label 0..G−1 per feature, :mod:`knockoffnet.groups`) makes group knockoffs
    (model-x only): S is block-diagonal by group (:func:`solve_group_s`), a group is
    exchangeable with its knockoffs as a whole, and the returned s is S's diagonal.
    ``sampling`` (:func:`resolve_sampling`) draws a wide cohort block by block, never across
    a change of ``chromosomes`` (one label per feature, PLINK cohorts) nor through a group,
    its blocks cut from the features in ``block_order``
    (:func:`knockoffnet.knockoff_blocks.block_order`; ``links``, the cohort's
    :func:`~knockoffnet.knockoff_blocks.correlation_links`, spare recomputing them).
    """
    method = _choice(method, METHODS, "knockoffs.method")
    covariance = _choice(covariance, COVARIANCES, "knockoffs.covariance")
    s_method = _choice(s_method, S_METHODS, "knockoffs.s_method")
    max_block = _check_max_block(max_block)
    copies = resolve_copies(copies, X.shape[1], method)
    if copies > 1 and method != "model-x":
        raise InputError(
            f"knockoffs.copies: {copies} needs knockoffs.method: model-x (fixed-x knockoffs "
            "exist for one copy only); set copies: 1 or method: model-x"
        )
    grouped = groups is not None and np.bincount(np.asarray(groups, dtype=np.int64)).max() > 1
    if grouped and method != "model-x":
        raise InputError(
            "knockoffs.groups needs knockoffs.method: model-x (fixed-x group knockoffs are not "
            "implemented); set method: model-x or groups: none"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"knockoffs.seed must be a non-negative integer; got {seed!r}")
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    sampling = resolve_sampling(sampling, X.shape[1], method)
    info: dict[str, float | bool | str] = {
        "method": method,
        "covariance": covariance if method == "model-x" else "gram",
        "s_method": s_method,
        "copies": copies,
        "groups": int(np.max(groups)) + 1 if grouped else X.shape[1],
        "sampling": sampling,
    }
    if sampling == "blocks":
        Xk, s, diag = _block_knockoffs(
            X, covariance, s_method, max_block, rng, copies, names, chromosomes,
            groups if grouped else None, block_order, links,
        )  # fmt: skip
        info.update(diag)
        Xk, sd = standardise_columns(Xk)
        info.update(knockoff_sd_min=float(sd.min()), knockoff_sd_max=float(sd.max()))
        return Xk, s, info
    if method == "model-x":
        X, m = _checked_moments(X)
        mu, Sigma = m.mean, _covariance_from_moments(m, covariance)
        del m  # its (p, p) Gram matrix: Sigma holds what the draw needs
        Xk = np.empty((X.shape[0], copies * X.shape[1]), dtype=np.float32)
        if grouped:
            S = solve_group_s(Sigma, groups, s_method, max_block, copies)
            sample_model_x(X, mu, Sigma, S, rng, copies, out=Xk)
            s = np.diag(S).copy()
        else:
            s = solve_s(Sigma, s_method, max_block, copies)
            sample_model_x(X, mu, Sigma, s, rng, copies, out=Xk)
    else:
        X = validate_X(X)
        Xk, s = _fixed_x(X, s_method, rng, max_block)
        Sigma = to_correlation(np.cov(X, rowvar=False).reshape(X.shape[1], X.shape[1]))
    # The checks read a random subset of rows beyond diagnostic_rows (their float64 copies
    # would otherwise be the largest arrays of a biobank-size draw).
    rows = slice(None)
    n_diag = diagnostic_rows(*X.shape)
    if X.shape[0] > n_diag:
        rows = np.sort(rng.choice(X.shape[0], n_diag, replace=False))
    diag = diagnostics(
        X[rows],
        Xk[rows, : X.shape[1]],
        Sigma,
        S if grouped else s,
        rng,
        names=names,
        groups=groups if grouped else None,
    )
    info.update(diag)
    info["diagnostic_rows"] = n_diag
    Xk, sd = standardise_columns(Xk)
    info.update(knockoff_sd_min=float(sd.min()), knockoff_sd_max=float(sd.max()))
    return Xk, s, info


def _block_knockoffs(
    X: np.ndarray,
    covariance: str,
    s_method: str,
    max_block: int,
    rng: np.random.Generator,
    copies: int,
    names: Sequence[str] | None,
    chromosomes: Sequence[str] | None,
    groups: np.ndarray | None = None,
    order: str = "auto",
    links: Links | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float | bool | str]]:
    """The block-wise model-x draw: each block checked, estimated, solved and sampled as a
    cohort of its own (:mod:`knockoffnet.knockoff_blocks`); with ``groups`` every block holds
    whole groups and gets a group S."""
    from knockoffnet.knockoff_blocks import block_draw, ordered_blocks, resolve_block_order

    A = np.asarray(X)
    if A.ndim != 2 or A.shape[1] < 1:
        _checked_moments(A)  # raises the joint draw's message (each block checks its rows)
    n, p = A.shape
    n_diag = diagnostic_rows(n, min(p, max_block))
    rows: np.ndarray | slice = slice(None)
    if n > n_diag:
        rows = np.sort(rng.choice(n, n_diag, replace=False))
    # runs of the block order, cut at weak links and between groups
    how = resolve_block_order(order, chromosomes)
    blocks = ordered_blocks(how, A, max_block, chromosomes, rows, groups, names, links)

    def draw_block(
        XB: np.ndarray, cols: np.ndarray, stream: np.random.Generator, gB: np.ndarray | None
    ):
        XB, m = _checked_moments(XB, cols)
        mu, Sigma = m.mean, _covariance_from_moments(m, covariance)
        del m
        if gB is None:
            SB = solve_s(Sigma, s_method, max_block, copies)
        else:
            SB = solve_group_s(Sigma, gB, s_method, max_block, copies)
        out = np.empty((XB.shape[0], copies * XB.shape[1]), dtype=np.float32)
        sample_model_x(XB, mu, Sigma, SB, stream, copies, out=out)
        return out, SB, Sigma

    Xk, s, diag = block_draw(A, blocks, draw_block, rng, copies, rows, names, groups, how)
    diag["diagnostic_rows"] = n_diag
    return Xk, s, diag


def standardise_columns(Xk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each knockoff column to mean 0, sd 1, as ingest does to X; returns (X~ float32, raw sds).

    X is standardised exactly while a draw's X~ only has unit variance in expectation, so a
    network could tell a feature from its knockoff by its scale alone. The same per-column
    map on both halves keeps exchangeability (swapping x_j and x~_j commutes with it).
    A constant column (sd 0) is only centred. A float32 X~ is overwritten in place.
    """
    mean, sd, _ = column_moments(np.asarray(Xk))
    return standardise_float32(np.asarray(Xk), mean, np.where(sd > 0, sd, 1.0)), sd
