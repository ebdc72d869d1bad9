"""The knockoff S vector: how far each knockoff may move from its feature (S = diag(s)).

The larger s_j, the less x~_j resembles x_j and the more power, subject to the joint
covariance staying PSD (2Σ − diag(s) ⪰ 0, s ≥ 0). Three choices, solved on the correlation
scale (:func:`solve_s`): equicorrelated (closed form), SDP (max Σ s_j, by a log-barrier Newton
method) and MVR (min tr G_s⁻¹, Spector & Janson 2022, by coordinate descent; the default,
because SDP knockoffs can make x_j reconstructable from the other columns and lose power).
Large p is solved block by block after correlation clustering, then shrunk to feasibility.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from threadpoolctl import threadpool_limits

from knockoffnet.errors import InputError
from knockoffnet.filters import check_copies
from knockoffnet.moments import row_slices

S_METHODS = ("equicorrelated", "sdp", "mvr")
DEFAULT_S_METHOD = "mvr"
DEFAULT_MAX_BLOCK = 1000
FEASIBILITY_MARGIN = 1e-6  # relative shrink that keeps 2Σ − diag(s) strictly PD.

_CD_BATCH = 64  # delayed Sherman–Morrison updates folded in with one GEMM.
_MU0 = 0.01  # first barrier weight: fewest Newton steps over AR(1), equi, factor, Wishart
_MU_CUT = 0.1  # barrier weight reduction per stage


def _choice(value: object, allowed: tuple[str, ...], key: str) -> str:
    """Config strings are matched exactly; the message lists what is accepted."""
    if value not in allowed:
        raise InputError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _check_max_block(max_block: object) -> int:
    """Blocks smaller than 2 would ignore every correlation, which is never intended."""
    if isinstance(max_block, bool) or not isinstance(max_block, int | np.integer):
        raise InputError(f"knockoffs.max_block must be an integer >= 2; got {max_block!r}")
    if max_block < 2:
        raise InputError(f"knockoffs.max_block must be >= 2; got {max_block}")
    return int(max_block)


def to_correlation(Sigma: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Rescale a covariance to unit diagonal.

    X is standardised, so its target covariance *is* a correlation matrix; the estimators
    leave diagonals ≠ 1 (ddof=0 gives (n−1)/n, graphical lasso adds α). Working with unit
    diagonal also makes s scale-free: the bound s_j ≤ 1, the closed form s = 2λ_min and the
    SDP objective Σ s_j (which would otherwise favour high-variance columns) assume it.
    ``overwrite`` rescales a float64 Sigma in place (a caller's scratch matrix).
    """
    d = np.sqrt(np.diag(Sigma))
    R = Sigma if overwrite and Sigma.dtype == np.float64 else np.empty(Sigma.shape)
    for rows in row_slices(*Sigma.shape):  # no (p, p) temporaries beyond R: p = 10⁴ is 0.8 GB
        R[rows] = Sigma[rows] / np.outer(d[rows], d)
    np.fill_diagonal(R, 1.0)
    return symmetrised(R)


def symmetrised(A: np.ndarray) -> np.ndarray:
    """(A + Aᵀ) / 2 computed in place in A (one transient copy of Aᵀ), the same numbers as
    ``0.5 * (A + A.T)``."""
    A += A.T
    A *= 0.5
    return A


def _validate_sigma(Sigma: object) -> np.ndarray:
    """Symmetric, finite, positive-definite (p, p) float64 copy of Sigma."""
    try:
        S = np.asarray(Sigma, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"Sigma must be a numeric matrix: {exc}") from exc
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] < 1:
        raise InputError(f"Sigma must be a square (p, p) matrix; got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise InputError("Sigma has NaN or infinite entries")
    blocks = row_slices(*S.shape)
    scale = max(max(float(np.abs(S[r]).max()) for r in blocks), 1e-300)
    if any(np.abs(S[r] - S[:, r].T).max() > 1e-8 * scale for r in blocks):
        raise InputError("Sigma must be symmetric")
    S = symmetrised(np.array(S))  # a copy: the caller's Sigma is left as it is
    if np.any(np.diag(S) <= 0):
        raise InputError("Sigma has a non-positive diagonal entry (a constant feature)")
    try:
        linalg.cholesky(S, lower=True)
    except linalg.LinAlgError as exc:
        raise InputError(
            "Sigma is not positive definite (linearly dependent features, or n <= p with the "
            "sample covariance); use knockoffs.covariance: ledoit-wolf"
        ) from exc
    return S


def _cholesky(M: np.ndarray) -> np.ndarray | None:
    """Upper Cholesky factor of M, or None when M is not numerically positive definite."""
    c, info = linalg.lapack.dpotrf(M, lower=False, clean=True)
    return c if info == 0 else None


def _chol_inverse(c: np.ndarray) -> np.ndarray:
    """Full symmetric inverse from an upper Cholesky factor (LAPACK potri)."""
    inv, info = linalg.lapack.dpotri(c, lower=False)
    if info != 0:
        raise linalg.LinAlgError("Cholesky inverse failed")
    return np.triu(inv) + np.triu(inv, 1).T


def _spd_inverse(M: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric PD matrix via Cholesky (LinAlgError when not PD)."""
    c = _cholesky(M)
    if c is None:
        raise linalg.LinAlgError("matrix is not positive definite")
    return _chol_inverse(c)


def _min_eig(M: np.ndarray) -> float:
    """Smallest eigenvalue only (LAPACK's subset driver, cheaper than the full spectrum)."""
    return float(linalg.eigh(M, eigvals_only=True, subset_by_index=[0, 0], check_finite=False)[0])


def equicorrelated_s(R: np.ndarray) -> np.ndarray:
    """s_j = min(2 λ_min(R), 1): the largest common s with 2R − sI ⪰ 0."""
    return np.full(R.shape[0], min(2.0 * _min_eig(R), 1.0))


def _mvr_step(s: float, c: float, b: float, root_w: float = 1.0) -> float:
    """Exact minimiser over s_j of tr((2R − diag(s))⁻¹) + w Σ 1/s_j, the others fixed.

    With δ = t − s_j, c = A_jj and b = ‖A e_j‖² (A = (2R − S)⁻¹), Sherman–Morrison gives the
    change δb/(1 − δc) + w/t; its zero derivative is √b · t = √w (1 − δc), i.e.
    t = (1 + c s_j)/(√b/√w + c) > 0, which keeps 1 − δc > 0 (M stays PD). The objective is
    convex, so clipping to t ≤ 1 gives the box-constrained optimum. w = 1 for one knockoff
    copy, κ² for κ copies (:func:`mvr_s`).
    """
    return min((1.0 + c * s) / (math.sqrt(b) / root_w + c), 1.0)


def _mvr_sweeps(
    R: np.ndarray, s: np.ndarray, tol: float, max_sweeps: int, root_w: float = 1.0
) -> np.ndarray:
    """Cyclic coordinate descent with A = (2R − diag(s))⁻¹ kept current.

    A change of s_j is a rank-one change of M = 2R − S, so the column of A the next
    coordinate needs follows from Sherman–Morrison. The rank-one terms are buffered and
    folded in with one matrix product every ``_CD_BATCH`` coordinates (BLAS-3 instead of p
    BLAS-2 updates); A is recomputed from scratch each sweep so round-off cannot build up.
    """
    p = R.shape[0]
    s = s.copy()
    V = np.empty((_CD_BATCH, p))
    w = np.empty(_CD_BATCH)
    for _ in range(max_sweeps):
        A = _spd_inverse(2.0 * R - np.diag(s))
        k = 0
        biggest = 0.0
        for j in range(p):
            col = A[j] + (w[:k] * V[:k, j]) @ V[:k] if k else A[j].copy()
            c = float(col[j])
            d = _mvr_step(float(s[j]), c, float(col @ col), root_w) - s[j]
            if d == 0.0:
                continue
            s[j] += d
            biggest = max(biggest, abs(d))
            V[k] = col
            w[k] = d / (1.0 - d * c)
            k += 1
            if k == _CD_BATCH:
                A += V.T @ (w[:, None] * V)
                k = 0
        if biggest <= tol * float(s.max()):
            break
    return s


def mvr_s(R: np.ndarray, tol: float = 1e-5, max_sweeps: int = 200, copies: int = 1) -> np.ndarray:
    """MVR s: minimise tr(G_s⁻¹) = tr((2R − diag(s))⁻¹) + Σ 1/s_j over 0 < s ≤ 1.

    G_s = [[R, R − S], [R − S, R]] is block-diagonalised by (1/√2)[[I, I], [I, −I]] into
    diag(2R − S, S), hence the two traces. Both are convex, so coordinate descent with the
    closed-form step of :func:`_mvr_step` reaches the global minimum; the objective bounds
    1/λ_min(2R − S), so iterates stay safely PD. BLAS is single-threaded here: the
    per-coordinate products are too small for threads, and OpenBLAS thread wake-ups made a
    sweep ~10x slower on a busy 2-core machine.

    With κ = ``copies`` knockoff copies (R already scaled by (κ+1)/(2κ), :func:`solve_s`) the
    joint covariance of the κ+1 blocks splits into (κ+1)R − κS once and S κ times, so
    tr(G_s⁻¹) ∝ tr((2R − S)⁻¹) + κ² Σ 1/s_j: the same descent with weight κ² on Σ 1/s_j.
    """
    s0 = np.full(R.shape[0], min(_min_eig(R), 0.5))
    with threadpool_limits(limits=1, user_api="blas"):
        return _mvr_sweeps(R, s0, tol, max_sweeps, float(copies))


def _sdp_barrier(R: np.ndarray, s: np.ndarray, mu: float) -> tuple[float, np.ndarray | None]:
    """f(s) = −Σ s/μ − log det(2R − S) − Σ log s − Σ log(1 − s) and the Cholesky factor of
    2R − S; (inf, None) outside the domain."""
    if np.any(s <= 0.0) or np.any(s >= 1.0):
        return math.inf, None
    c = _cholesky(2.0 * R - np.diag(s))
    if c is None:
        return math.inf, None
    logdet = 2.0 * float(np.log(np.diag(c)).sum())
    return float(-s.sum() / mu - logdet - np.log(s).sum() - np.log1p(-s).sum()), c


def sdp_s(
    R: np.ndarray,
    s0: np.ndarray | None = None,
    mu0: float = _MU0,
    rel_gap: float = 1e-3,
    centred: float = 0.05,
    max_newton: int = 200,
) -> np.ndarray:
    """SDP s: maximise Σ s_j s.t. 0 ≤ s ≤ 1, 2R − diag(s) ⪰ 0, by a primal barrier method.

    Each stage minimises the self-concordant f(s) = −Σ s_j/μ − log det(2R − S) − Σ log s_j
    − Σ log(1 − s_j) by Newton's method with a backtracking line search (Cholesky failure =
    outside the domain). With A = (2R − S)⁻¹ the gradient is −1/μ + diag(A) − 1/s +
    1/(1 − s) and the Hessian A∘A + diag(1/s² + 1/(1 − s)²): a step is a few Cholesky
    factorisations, BLAS-3, no loop over coordinates. A centred point is within 3pμ of the
    optimum, so μ is cut tenfold until 3pμ ≤ rel_gap · Σ s. (Coordinate ascent on the same
    barrier was tried first: it drives λ_min(2R − S) to round-off on long AR(1) chains.)
    """
    p = R.shape[0]
    s = np.full(p, min(_min_eig(R), 0.5)) if s0 is None else s0.copy()
    mu = mu0
    f, chol = _sdp_barrier(R, s, mu)
    if chol is None:
        raise linalg.LinAlgError("the starting point of the SDP barrier is not feasible")
    for _ in range(max_newton):
        A = _chol_inverse(chol)
        grad = -1.0 / mu + np.diag(A) - 1.0 / s + 1.0 / (1.0 - s)
        H = A * A
        H[np.diag_indices(p)] += 1.0 / s**2 + 1.0 / (1.0 - s) ** 2
        step = -linalg.solve(H, grad, assume_a="pos", check_finite=False)
        slope = float(grad @ step)
        alpha = 1.0
        while alpha > 1e-10:
            f_new, c_new = _sdp_barrier(R, s + alpha * step, mu)
            if f_new <= f + 0.01 * alpha * slope:
                break
            alpha *= 0.5
        else:
            break  # no progress possible in floating point: s is as good as it gets
        s, f, chol = s + alpha * step, f_new, c_new
        if math.sqrt(max(-slope, 0.0)) < centred:  # centred enough: cut μ or stop
            if 3.0 * p * mu <= rel_gap * float(s.sum()):
                break
            mu *= _MU_CUT
            f, chol = _sdp_barrier(R, s, mu)
    return s


def feature_blocks(R: np.ndarray, max_block: int) -> list[np.ndarray]:
    """Partition features into blocks of ≤ max_block strongly correlated features.

    Average-linkage clustering on 1 − |R| keeps correlated features together, so dropping
    the between-block correlations (the block-diagonal approximation) loses little. The
    maximal subtrees of size ≤ max_block are taken, then neighbours in dendrogram order are
    packed together up to max_block, because solving more features jointly is never worse.
    """
    p = R.shape[0]
    if p <= max_block:
        return [np.arange(p)]
    D = np.abs(R)
    np.subtract(1.0, D, out=D)
    np.fill_diagonal(D, 0.0)
    np.clip(D, 0.0, None, out=D)
    condensed = squareform(D, checks=False)
    del D
    root = hierarchy.to_tree(hierarchy.linkage(condensed, "average"))
    clusters: list[list[int]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.get_count() <= max_block:
            clusters.append(node.pre_order())
        else:
            stack.extend([node.get_right(), node.get_left()])
    blocks: list[list[int]] = [[]]
    for members in clusters:
        if len(blocks[-1]) + len(members) > max_block:
            blocks.append([])
        blocks[-1].extend(members)
    return [np.sort(np.asarray(b)) for b in blocks]


def feasible_scale(R: np.ndarray, s: np.ndarray) -> float:
    """Largest γ with 2R − γ·diag(s) ⪰ 0: 1 / λ_max(D^½ (2R)⁻¹ D^½) (generalised eigenvalue)."""
    if not np.any(s > 0):
        return math.inf
    p = R.shape[0]
    # Fortran-ordered operands let LAPACK work in place: three (p, p) arrays at most, not six
    L = linalg.cholesky(np.multiply(R, 2.0, order="F"), lower=True, overwrite_a=True)
    D = np.zeros((p, p), order="F")
    np.fill_diagonal(D, np.sqrt(np.clip(s, 0.0, None)))
    K = linalg.solve_triangular(L, D, lower=True, overwrite_b=True)
    del L, D
    G = K.T @ K
    del K
    top = linalg.eigh(G, eigvals_only=True, subset_by_index=[p - 1, p - 1], overwrite_a=True)[0]
    return math.inf if top <= 0 else float(1.0 / top)


def solve_s(
    Sigma: np.ndarray,
    method: str = DEFAULT_S_METHOD,
    max_block: int = DEFAULT_MAX_BLOCK,
    copies: int = 1,
) -> np.ndarray:
    """The knockoff s vector for covariance Sigma, always feasible.

    Solved on the correlation scale and mapped back by s_j · Σ_jj. For p > max_block, SDP and
    MVR are solved per block of :func:`feature_blocks` and then scaled by the largest γ ≤ 1
    keeping 2R − γ·diag(s) ⪰ 0 (the ASDP of the R ``knockoff`` package). Every result is then
    checked with the same generalised eigenvalue and shrunk by a relative 1e-6 if it sits on
    or past the boundary, so the conditional covariance 2S − SΣ⁻¹S is PSD in floating point.
    With s ≥ 0 this makes the 2p joint covariance [[Σ, Σ−S], [Σ−S, Σ]] PSD: it is congruent
    to diag(2Σ − S, S).

    κ = ``copies`` > 1 (Gimenez & Zou 2019): the (κ+1)p joint covariance, Σ on the diagonal
    blocks and Σ − S off them, is PSD iff (κ+1)/κ · Σ − S ⪰ 0 (and S ⪰ 0). Every solver
    works on R scaled by (κ+1)/(2κ), which turns that constraint into its usual 2R − S ⪰ 0
    form; MVR also weights its Σ 1/s_j term by κ² (:func:`mvr_s`).
    """
    method = _choice(method, S_METHODS, "knockoffs.s_method")
    max_block = _check_max_block(max_block)
    copies = check_copies(copies)
    S = _validate_sigma(Sigma)
    var = np.diag(S).copy()
    R = to_correlation(S)
    del S  # (p, p) matrices dominate a large-p job's memory: hold as few as possible
    Rc = R if copies == 1 else R * ((copies + 1) / (2 * copies))
    if method == "equicorrelated":
        s = equicorrelated_s(Rc)
    else:
        s = np.empty(R.shape[0])
        for idx in feature_blocks(R, max_block):
            block = Rc[np.ix_(idx, idx)]
            try:
                if method == "mvr":
                    s[idx] = mvr_s(block, copies=copies)
                else:
                    s[idx] = sdp_s(block)
            except linalg.LinAlgError:  # 2R − λ_min·I not PD in floating point: R is
                s[idx] = equicorrelated_s(block)  # near-singular and any s is ≈ 0 anyway
    s = np.clip(s, 0.0, 1.0)
    gamma = feasible_scale(Rc, s)
    if gamma < 1.0 + FEASIBILITY_MARGIN:
        s *= min(gamma, 1.0) * (1.0 - FEASIBILITY_MARGIN)
    return s * var


def group_whitening(R: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(D^½, D^-½) for D = blockdiag(R_gg) over the groups of ``labels`` (one eigh per group
    of two or more; singletons are 1). Eigenvalues are floored at 1e-10 so an almost
    collinear group stays invertible."""
    p = R.shape[0]
    half, inv_half = np.eye(p), np.eye(p)
    labels = np.asarray(labels, dtype=np.int64)
    for g in np.flatnonzero(np.bincount(labels) > 1):  # loop over groups, not features
        idx = np.flatnonzero(labels == g)
        vals, vecs = linalg.eigh(R[np.ix_(idx, idx)])
        vals = np.clip(vals, 1e-10, None)
        half[np.ix_(idx, idx)] = (vecs * np.sqrt(vals)) @ vecs.T
        inv_half[np.ix_(idx, idx)] = (vecs / np.sqrt(vals)) @ vecs.T
    return half, inv_half


def solve_group_s(
    Sigma: np.ndarray,
    labels: np.ndarray,
    method: str = DEFAULT_S_METHOD,
    max_block: int = DEFAULT_MAX_BLOCK,
    copies: int = 1,
) -> np.ndarray:
    """Block-diagonal S (p, p) for group knockoffs: S = D^½ diag(s') D^½.

    D = blockdiag(Σ_gg) over the groups; s' is the chosen solver's vector on the
    group-whitened correlation R' = D^-½ Σ D^-½, whose diagonal blocks are identities. Then
    (κ+1)/κ·Σ − S = D^½((κ+1)/κ·R' − diag(s'))D^½ ⪰ 0 exactly when the solver's constraint
    holds, and S only couples members of one group, so exchanging a whole group with its
    knockoffs leaves the joint law unchanged (Dai & Barber 2016). With ``equicorrelated`` this
    is their group-equicorrelated S = γD, γ = min(1, 2λ_min(R')); with ``sdp``/``mvr`` it is
    the solver's optimum within the S of this form, not the full group SDP/MVR.
    """
    S = _validate_sigma(Sigma)
    sd = np.sqrt(np.diag(S))
    R = to_correlation(S)
    half, inv_half = group_whitening(R, labels)
    Rw = inv_half @ R @ inv_half
    Rw = 0.5 * (Rw + Rw.T)
    np.fill_diagonal(Rw, 1.0)
    s = solve_s(Rw, method, max_block, copies)
    S_corr = (half * s) @ half
    S_corr = 0.5 * (S_corr + S_corr.T)
    return S_corr * np.outer(sd, sd)
