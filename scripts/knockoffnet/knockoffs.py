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
from collections.abc import Callable, Sequence

import numpy as np
from scipy import linalg, stats
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from threadpoolctl import threadpool_limits

from knockoffnet.errors import InputError

METHODS = ("model-x", "fixed-x")
COVARIANCES = ("ledoit-wolf", "sample", "graphical-lasso")
S_METHODS = ("equicorrelated", "sdp", "mvr")
DEFAULT_S_METHOD = "mvr"
DEFAULT_MAX_BLOCK = 1000
# Above this mean |corr(x_j, x~_j)| the diagnostics warn that power will be low.
LOW_POWER_PAIR_CORR = 0.9

COLLINEAR_TOL = 1e-10  # |corr| above 1 - this: the pair carries one direction, not two.
FEASIBILITY_MARGIN = 1e-6  # relative shrink that keeps 2Σ − diag(s) strictly PD.
SWAP_ALPHA = 0.01  # swap-test p-value below this raises the flag.
SKEW_GAP = 1.0  # |skewness| > 1 is "highly skewed" (Bulmer); a gap this large matters.
KURT_GAP = 3.0  # excess kurtosis 3 = Laplace tails; Gaussian knockoffs cannot copy that.

_CD_BATCH = 64  # delayed Sherman–Morrison updates folded in with one GEMM.
_MU0 = 0.01  # first barrier weight: fewest Newton steps over AR(1), equi, factor, Wishart
_MU_CUT = 0.1  # barrier weight reduction per stage


# --------------------------------------------------------------------------- validation


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


def _collinear_pair(X: np.ndarray) -> tuple[int, int, float] | None:
    """First pair of columns with |corr| > 1 − COLLINEAR_TOL, or None."""
    Xc = X - X.mean(axis=0)
    Xn = Xc / np.linalg.norm(Xc, axis=0)
    C = np.abs(Xn.T @ Xn)
    hits = np.argwhere(np.triu(C > 1.0 - COLLINEAR_TOL, k=1))
    if hits.size == 0:
        return None
    i, j = (int(v) for v in hits[0])
    return i, j, float(C[i, j])


def validate_X(X: object) -> np.ndarray:
    """Float64 (n, p) copy of X, or InputError naming the problem.

    Knockoffs are undefined for constant columns (no correlation) and not identifiable for a
    perfectly collinear pair: x~_i would have to be exchangeable with x_i *and* x_j = ±x_i, so
    s_i = s_j = 0 and the pair can never be selected.
    """
    try:
        A = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"X must be a numeric matrix: {exc}") from exc
    if A.ndim != 2:
        raise InputError(f"X must be 2-D (samples x features); got shape {A.shape}")
    n, p = A.shape
    if p < 1:
        raise InputError("X has no columns; knockoffs need at least one feature")
    if n < 3:
        raise InputError(f"X has {n} row(s); knockoffs need at least 3 samples")
    bad = np.count_nonzero(~np.isfinite(A))
    if bad:
        raise InputError(f"X has {bad} NaN or infinite value(s); impute or drop them at ingest")
    const = np.flatnonzero(np.ptp(A, axis=0) == 0)
    if const.size:
        raise InputError(
            f"column(s) {', '.join(map(str, const[:10]))} are constant; drop them at ingest"
        )
    pair = _collinear_pair(A)
    if pair is not None:
        i, j, r = pair
        raise InputError(
            f"columns {i} and {j} are identical or perfectly collinear (|corr| = {r:.12f}); "
            "knockoffs are not identifiable for such a pair — drop one of the two columns"
        )
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
    scale = max(float(np.abs(S).max()), 1e-300)
    if np.abs(S - S.T).max() > 1e-8 * scale:
        raise InputError("Sigma must be symmetric")
    S = 0.5 * (S + S.T)
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


# --------------------------------------------------------------------------- covariance


def to_correlation(Sigma: np.ndarray) -> np.ndarray:
    """Rescale a covariance to unit diagonal.

    X is standardised, so its target covariance *is* a correlation matrix; the estimators
    leave diagonals ≠ 1 (ddof=0 gives (n−1)/n, graphical lasso adds α). Working with unit
    diagonal also makes s scale-free: the bound s_j ≤ 1, the closed form s = 2λ_min and the
    SDP objective Σ s_j (which would otherwise favour high-variance columns) assume it.
    """
    d = np.sqrt(np.diag(Sigma))
    R = Sigma / np.outer(d, d)
    np.fill_diagonal(R, 1.0)
    return 0.5 * (R + R.T)


def estimate_covariance(
    X: np.ndarray, method: str = "ledoit-wolf"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and *correlation* matrix of the rows of X under the chosen estimator.

    ``ledoit-wolf`` (default) is always PD and needs no tuning; ``sample`` is singular when
    n ≤ p; ``graphical-lasso`` uses the fixed penalty α = sqrt(log p / n), the rate at which
    the sparse precision estimate is consistent (Ravikumar et al. 2011) — cross-validation
    would refit ~80 times per draw for little change in s.
    """
    return _estimate_covariance(validate_X(X), _choice(method, COVARIANCES, "knockoffs.covariance"))


def _estimate_covariance(X: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`estimate_covariance` on an already validated X."""
    from sklearn.covariance import GraphicalLasso, LedoitWolf

    n, p = X.shape
    mu = X.mean(axis=0)
    if method == "sample":
        if n <= p:
            raise InputError(
                f"the sample covariance is singular with n = {n} <= p = {p}; "
                "use knockoffs.covariance: ledoit-wolf"
            )
        cov = np.cov(X, rowvar=False).reshape(p, p)
    elif method == "ledoit-wolf":
        cov = LedoitWolf().fit(X).covariance_
    else:
        alpha = math.sqrt(math.log(max(p, 2)) / n)
        try:
            cov = GraphicalLasso(alpha=alpha, max_iter=200).fit(X).covariance_
        except (FloatingPointError, ValueError) as exc:
            raise InputError(
                f"graphical lasso did not converge ({exc}); use knockoffs.covariance: ledoit-wolf"
            ) from exc
    return mu, to_correlation(np.asarray(cov, dtype=np.float64))


# --------------------------------------------------------------------------- S solvers


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


def _mvr_step(s: float, c: float, b: float) -> float:
    """Exact minimiser over s_j of tr((2R − diag(s))⁻¹) + Σ 1/s_j, the others fixed.

    With δ = t − s_j, c = A_jj and b = ‖A e_j‖² (A = (2R − S)⁻¹), Sherman–Morrison gives the
    change δb/(1 − δc) + 1/t; its zero derivative is √b · t = 1 − δc, i.e.
    t = (1 + c s_j)/(√b + c) > 0, which keeps 1 − δc > 0 (M stays PD). The objective is
    convex, so clipping to t ≤ 1 gives the box-constrained optimum.
    """
    return min((1.0 + c * s) / (math.sqrt(b) + c), 1.0)


def _mvr_sweeps(R: np.ndarray, s: np.ndarray, tol: float, max_sweeps: int) -> np.ndarray:
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
            d = _mvr_step(float(s[j]), c, float(col @ col)) - s[j]
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


def mvr_s(R: np.ndarray, tol: float = 1e-5, max_sweeps: int = 200) -> np.ndarray:
    """MVR s: minimise tr(G_s⁻¹) = tr((2R − diag(s))⁻¹) + Σ 1/s_j over 0 < s ≤ 1.

    G_s = [[R, R − S], [R − S, R]] is block-diagonalised by (1/√2)[[I, I], [I, −I]] into
    diag(2R − S, S), hence the two traces. Both are convex, so coordinate descent with the
    closed-form step of :func:`_mvr_step` reaches the global minimum; the objective bounds
    1/λ_min(2R − S), so iterates stay safely PD. BLAS is single-threaded here: the
    per-coordinate products are too small for threads, and OpenBLAS thread wake-ups made a
    sweep ~10x slower on a busy 2-core machine.
    """
    s0 = np.full(R.shape[0], min(_min_eig(R), 0.5))
    with threadpool_limits(limits=1, user_api="blas"):
        return _mvr_sweeps(R, s0, tol, max_sweeps)


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


def sdp_s_cvxpy(R: np.ndarray, solver: str = "CLARABEL") -> np.ndarray:
    """Reference SDP solution from cvxpy (interior point; slow for p in the hundreds)."""
    import cvxpy as cp

    p = R.shape[0]
    s = cp.Variable(p)
    cons = [s >= 0, s <= 1, 2 * R - cp.diag(s) >> 0]
    cp.Problem(cp.Maximize(cp.sum(s)), cons).solve(solver=solver)
    if s.value is None:
        raise RuntimeError(f"cvxpy/{solver} found no solution")
    return np.clip(np.asarray(s.value, dtype=np.float64), 0.0, 1.0)


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
    D = 1.0 - np.abs(R)
    np.fill_diagonal(D, 0.0)
    root = hierarchy.to_tree(
        hierarchy.linkage(squareform(np.clip(D, 0.0, None), checks=False), "average")
    )
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
    L = linalg.cholesky(2.0 * R, lower=True)
    K = linalg.solve_triangular(L, np.diag(np.sqrt(np.clip(s, 0.0, None))), lower=True)
    p = R.shape[0]
    top = linalg.eigh(K.T @ K, eigvals_only=True, subset_by_index=[p - 1, p - 1])[0]
    return math.inf if top <= 0 else float(1.0 / top)


_SOLVERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"sdp": sdp_s, "mvr": mvr_s}


def solve_s(
    Sigma: np.ndarray, method: str = DEFAULT_S_METHOD, max_block: int = DEFAULT_MAX_BLOCK
) -> np.ndarray:
    """The knockoff s vector for covariance Sigma, always feasible.

    Solved on the correlation scale and mapped back by s_j · Σ_jj. For p > max_block, SDP and
    MVR are solved per block of :func:`feature_blocks` and then scaled by the largest γ ≤ 1
    keeping 2R − γ·diag(s) ⪰ 0 (the ASDP of the R ``knockoff`` package). Every result is then
    checked with the same generalised eigenvalue and shrunk by a relative 1e-6 if it sits on
    or past the boundary, so the conditional covariance 2S − SΣ⁻¹S is PSD in floating point.
    With s ≥ 0 this makes the 2p joint covariance [[Σ, Σ−S], [Σ−S, Σ]] PSD: it is congruent
    to diag(2Σ − S, S).
    """
    method = _choice(method, S_METHODS, "knockoffs.s_method")
    max_block = _check_max_block(max_block)
    S = _validate_sigma(Sigma)
    var = np.diag(S).copy()
    R = to_correlation(S)
    if method == "equicorrelated":
        s = equicorrelated_s(R)
    else:
        s = np.empty(R.shape[0])
        for idx in feature_blocks(R, max_block):
            block = R[np.ix_(idx, idx)]
            try:
                s[idx] = _SOLVERS[method](block)
            except linalg.LinAlgError:  # 2R − λ_min·I not PD in floating point: R is
                s[idx] = equicorrelated_s(block)  # near-singular and any s is ≈ 0 anyway
    s = np.clip(s, 0.0, 1.0)
    gamma = feasible_scale(R, s)
    if gamma < 1.0 + FEASIBILITY_MARGIN:
        s *= min(gamma, 1.0) * (1.0 - FEASIBILITY_MARGIN)
    return s * var


# --------------------------------------------------------------------------- sampling


def _psd_factor(V: np.ndarray) -> np.ndarray:
    """C with C Cᵀ = V for a PSD V: Cholesky when V is numerically PD (fast), else the
    eigen-decomposition with negative round-off clipped (V is congruent to 2Σ − S, so it is
    near-singular when s sits on the boundary of the feasible set)."""
    V = 0.5 * (V + V.T)
    L, info = linalg.lapack.dpotrf(V, lower=True, clean=True)
    if info == 0:
        return L
    vals, vecs = linalg.eigh(V)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def sample_model_x(
    X: np.ndarray, mu: np.ndarray, Sigma: np.ndarray, s: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw X~ | X ~ N(μ + (X − μ)(I − Σ⁻¹S), 2S − SΣ⁻¹S), row by row, vectorised.

    This is the Gaussian conditional that makes [X, X~] ~ N([μ, μ], [[Σ, Σ−S], [Σ−S, Σ]]).
    """
    X = np.asarray(X, dtype=np.float64)
    Sigma = _validate_sigma(Sigma)
    p = Sigma.shape[0]
    mu = np.asarray(mu, dtype=np.float64).reshape(-1)
    s = np.asarray(s, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[1] != p or mu.shape != (p,) or s.shape != (p,):
        raise InputError(
            f"shapes disagree: X {X.shape}, mu {mu.shape}, Sigma {Sigma.shape}, s {s.shape}"
        )
    SinvS = linalg.cho_solve(linalg.cho_factor(Sigma), np.diag(s))  # Σ⁻¹S
    V = 2.0 * np.diag(s) - s[:, None] * SinvS
    C = _psd_factor(V)
    Z = rng.standard_normal(X.shape)
    return X - (X - mu) @ SinvS + Z @ C.T


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


# --------------------------------------------------------------------------- diagnostics


def _swap_blocks(
    Cxx: np.ndarray, Ckk: np.ndarray, Cxk: np.ndarray, swap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks of the joint covariance after exchanging x_j ↔ x~_j for j in ``swap`` (a mask)."""
    a, b = swap[:, None], swap[None, :]
    both, only_a, only_b = a & b, a & ~b, ~a & b
    Ckx = Cxk.T
    xx = np.where(both, Ckk, np.where(only_a, Ckx, np.where(only_b, Cxk, Cxx)))
    kk = np.where(both, Cxx, np.where(only_a, Cxk, np.where(only_b, Ckx, Ckk)))
    xk = np.where(both, Ckx, np.where(only_a, Ckk, np.where(only_b, Cxx, Cxk)))
    return xx, kk, xk


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
) -> dict[str, float | bool | str]:
    """One row of checks that the draw behaves like a knockoff.

    ``names`` (feature names) make the plain-language message name columns as users know them.

    Second moments are compared with their targets (Σ, Σ, Σ − S). The swap test splits ≤
    max_rows random rows into two halves, exchanges a random half of the pairs (x_j, x~_j) in
    the second, and asks with an MMD permutation test whether the halves differ — under
    exchangeability they cannot. Gaussian knockoffs copy only means and covariances, so the
    largest per-feature gap in skewness and excess kurtosis between x_j and x~_j is reported
    too; strongly skewed features gave FDR above q in the knockoffnet paper.
    """
    X = np.asarray(X, dtype=np.float64)
    Xk = np.asarray(Xk, dtype=np.float64)
    Sigma = np.asarray(Sigma, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64).reshape(-1)
    n, p = X.shape
    if Xk.shape != (n, p) or Sigma.shape != (p, p) or s.shape != (p,):
        raise InputError(
            f"shapes disagree: X {X.shape}, Xk {Xk.shape}, Sigma {Sigma.shape}, s {s.shape}"
        )
    Xc, Kc = X - X.mean(axis=0), Xk - Xk.mean(axis=0)
    Cxx, Ckk, Cxk = (Xc.T @ Xc) / (n - 1), (Kc.T @ Kc) / (n - 1), (Xc.T @ Kc) / (n - 1)
    pair_corr = np.diag(Cxk) / np.sqrt(np.diag(Cxx) * np.diag(Ckk))

    swap = np.zeros(p, dtype=bool)
    swap[rng.choice(p, max(1, p // 2), replace=False)] = True
    sxx, skk, sxk = _swap_blocks(Cxx, Ckk, Cxk, swap)
    cov_gap = max(np.abs(sxx - Cxx).max(), np.abs(skk - Ckk).max(), np.abs(sxk - Cxk).max())

    rows = rng.choice(n, min(n, max_rows), replace=False)
    half = rows.size // 2
    Z1 = np.hstack([X[rows[:half]], Xk[rows[:half]]])
    first, second = X[rows[half : 2 * half]], Xk[rows[half : 2 * half]]
    Z2 = np.hstack([np.where(swap, second, first), np.where(swap, first, second)])
    swap_stat, swap_p = mmd_permutation_test(Z1, Z2, rng, n_perm)

    skew_gap = np.abs(stats.skew(X, axis=0) - stats.skew(Xk, axis=0))
    kurt_gap = np.abs(stats.kurtosis(X, axis=0) - stats.kurtosis(Xk, axis=0))
    out: dict[str, float | bool | str] = {
        "mean_s": float(s.mean()),
        "min_s": float(s.min()),
        "max_dev_xx": float(np.abs(Cxx - Sigma).max()),
        "max_dev_kk": float(np.abs(Ckk - Sigma).max()),
        "max_dev_xk": float(np.abs(Cxk - (Sigma - np.diag(s))).max()),
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
    out["message"] = message + _power_note(out["mean_abs_pair_corr"], out["mean_s"])
    return out


def _power_note(pair_corr: float, mean_s: float) -> str:
    """Near-copy knockoffs are valid but leave the statistic little to tell apart (WDBC: 0.95)."""
    if pair_corr <= LOW_POWER_PAIR_CORR:
        return ""
    return (
        f" Low power expected: the knockoffs are near copies of the features (mean "
        f"|corr(x_j, x~_j)| = {pair_corr:.2f}, mean s = {mean_s:.3f}) because some features are "
        "almost linear combinations of others, so a network can hardly tell a feature from its "
        "knockoff. Dropping or averaging near-duplicate features before ingest raises power."
    )


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
    skew_thr = max(SKEW_GAP, 4.0 * math.sqrt(12.0 / n))
    kurt_thr = max(KURT_GAP, 4.0 * math.sqrt(48.0 / n))
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


# --------------------------------------------------------------------------- entry point


def make_knockoffs(
    X: np.ndarray,
    method: str = "model-x",
    covariance: str = "ledoit-wolf",
    s_method: str = DEFAULT_S_METHOD,
    max_block: int = DEFAULT_MAX_BLOCK,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float | bool | str]]:
    """One knockoff draw: (X~ as float32 (n, p), s float64 (p,), diagnostics).

    The same seed gives identical output: every random number comes from PCG64(seed).
    ``covariance`` is used by model-x only (fixed-x uses the data's own Gram matrix).
    """
    method = _choice(method, METHODS, "knockoffs.method")
    covariance = _choice(covariance, COVARIANCES, "knockoffs.covariance")
    s_method = _choice(s_method, S_METHODS, "knockoffs.s_method")
    max_block = _check_max_block(max_block)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"knockoffs.seed must be a non-negative integer; got {seed!r}")
    X = validate_X(X)
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    if method == "model-x":
        mu, Sigma = _estimate_covariance(X, covariance)
        s = solve_s(Sigma, s_method, max_block)
        Xk = sample_model_x(X, mu, Sigma, s, rng)
    else:
        Xk, s = _fixed_x(X, s_method, rng, max_block)
        Sigma = to_correlation(np.cov(X, rowvar=False).reshape(X.shape[1], X.shape[1]))
    diag = diagnostics(X, Xk, Sigma, s, rng, names=names)
    info: dict[str, float | bool | str] = {
        "method": method,
        "covariance": covariance if method == "model-x" else "gram",
        "s_method": s_method,
    }
    info.update(diag)
    Xk, sd = standardise_columns(Xk)
    info.update(knockoff_sd_min=float(sd.min()), knockoff_sd_max=float(sd.max()))
    return Xk.astype(np.float32), s, info


def standardise_columns(Xk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each knockoff column to mean 0, sd 1, as ingest does to X; returns (X~, raw sds).

    X is standardised exactly while a draw's X~ only has unit variance in expectation, so a
    network could tell a feature from its knockoff by its scale alone. The same per-column
    map on both halves keeps exchangeability (swapping x_j and x~_j commutes with it).
    A constant column (sd 0) is only centred.
    """
    Xk = np.asarray(Xk, dtype=np.float64)
    mean = Xk.mean(axis=0)
    sd = Xk.std(axis=0)
    return (Xk - mean) / np.where(sd > 0, sd, 1.0), sd
