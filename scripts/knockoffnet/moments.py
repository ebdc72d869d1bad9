"""Moments of a large matrix without float64 copies of it (issue 16: biobank-size cohorts).

A 100,000 × 1,000 cohort is 0.4 GB as float32 and 0.8 GB as float64; whole-matrix NumPy
expressions (``X.std(axis=0)``, ``X - X.mean(axis=0)``, ``X.T @ X`` after centring) each hold
one or more float64 temporaries of that size. Everything the knockoff construction needs from
the rows of X — the mean, the centred Gram matrix and, for Ledoit–Wolf, the sum of the
rows' fourth powers — is a sum over rows, so it is accumulated here over blocks of rows in
float64, and the result matches the whole-matrix computation up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Values per float64 staging block (32 MB): the only temporaries, whatever the matrix size.
BLOCK_VALUES = 4_000_000


def row_block(n_cols: int, budget: int = BLOCK_VALUES) -> int:
    """Rows per block so that one float64 block of `n_cols` columns holds about `budget`."""
    return max(1, budget // max(n_cols, 1))


def row_slices(n_rows: int, n_cols: int) -> list[slice]:
    """Row blocks of about `BLOCK_VALUES` float64 values each: (p, p) work by blocks of rows
    holds no (p, p) temporaries (0.8 GB each at p = 10⁴)."""
    step = row_block(n_cols)
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def column_block(n_rows: int, budget: int = BLOCK_VALUES) -> int:
    """Columns per block so that one float64 block of `n_rows` rows holds about `budget`."""
    return max(1, budget // max(n_rows, 1))


def all_finite(A: np.ndarray, rows: int = 4096) -> bool:
    """np.isfinite(A).all() a block of rows at a time (no mask the size of A)."""
    return all(np.isfinite(A[i : i + rows]).all() for i in range(0, A.shape[0], rows))


def column_moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, sd, max |value|) of each column in float64, a block of columns at a time."""
    n, p = values.shape
    mean, sd, absmax = np.empty(p), np.empty(p), np.empty(p)
    step = column_block(n)
    for start in range(0, p, step):
        block = values[:, start : start + step].astype(np.float64)
        cols = slice(start, start + block.shape[1])
        mean[cols] = block.mean(axis=0)
        sd[cols] = block.std(axis=0)
        absmax[cols] = np.abs(block).max(axis=0)
    return mean, sd, absmax


def standardise_float32(values: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """(values − mean) / sd as float32, computed in float64 a block of columns at a time.

    A float32 input is overwritten in place (no second copy of the matrix); a float64 one
    gets a new float32 array. Seven digits are far below any sampling error, and float32 is
    what the network reads.
    """
    out = values if values.dtype == np.float32 else np.empty(values.shape, dtype=np.float32)
    step = column_block(values.shape[0])
    for start in range(0, values.shape[1], step):
        cols = slice(start, start + step)
        out[:, cols] = (values[:, cols].astype(np.float64) - means[cols]) / sds[cols]
    return out


@dataclass(frozen=True)
class RowMoments:
    """Sums over the rows of an (n, p) matrix, as the covariance estimators need them."""

    n: int
    mean: np.ndarray  # (p,)
    gram: np.ndarray  # (p, p) Σ_i (x_i − mean)(x_i − mean)ᵀ
    fourth: float  # Σ_i ‖x_i − mean‖⁴ (Ledoit–Wolf's β)
    col_min: np.ndarray  # (p,)
    col_max: np.ndarray  # (p,)
    nonfinite: int  # NaN or infinite entries


def row_moments(X: np.ndarray, block: int | None = None) -> RowMoments:
    """:class:`RowMoments` of X in two passes over row blocks (mean first, then the centred
    sums, so the Gram matrix does not lose digits to a large mean)."""
    n, p = X.shape
    step = block or row_block(p)
    total = np.zeros(p)
    col_min, col_max = np.full(p, np.inf), np.full(p, -np.inf)
    nonfinite = 0
    for start in range(0, n, step):
        B = np.asarray(X[start : start + step], dtype=np.float64)
        finite = np.isfinite(B)
        nonfinite += int(B.size - np.count_nonzero(finite))
        total += np.where(finite, B, 0.0).sum(axis=0)
        np.minimum(col_min, B.min(axis=0), out=col_min)
        np.maximum(col_max, B.max(axis=0), out=col_max)
    mean = total / n
    gram = np.zeros((p, p))
    fourth = 0.0
    if nonfinite:  # the caller refuses such X; the sums would be meaningless
        return RowMoments(n, mean, gram, np.nan, col_min, col_max, nonfinite)
    for start in range(0, n, step):
        B = np.asarray(X[start : start + step], dtype=np.float64) - mean
        gram += B.T @ B
        fourth += float(np.sum(np.einsum("ij,ij->i", B, B) ** 2))
    return RowMoments(n, mean, gram, fourth, col_min, col_max, nonfinite)


def ledoit_wolf(m: RowMoments) -> np.ndarray:
    """The Ledoit–Wolf shrunk covariance from row moments (scikit-learn's estimator, centred).

    With S = G/n and μ = tr(S)/p the target is μI; the shrinkage is β/δ with
    δ = ‖S − μI‖²_F / p and β = min(δ, (Σ_i ‖x_i‖⁴/n − ‖S‖²_F) / (p n)), as in
    ``sklearn.covariance.ledoit_wolf_shrinkage`` (whose block sums reduce to these).
    """
    p = m.gram.shape[0]
    emp = m.gram / m.n
    if p == 1:
        return emp
    mu = np.trace(emp) / p
    sum_sq = float(sum(np.sum(emp[r] ** 2) for r in row_slices(p, p)))  # ‖S‖²_F
    beta = (m.fourth / m.n - sum_sq) / (p * m.n)
    delta = (sum_sq - 2.0 * mu * np.trace(emp) + p * mu**2) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    out = emp  # scaled in place: the same numbers as (1 − shrinkage)·emp
    out *= 1.0 - shrinkage
    out.flat[:: p + 1] += shrinkage * mu
    return out
