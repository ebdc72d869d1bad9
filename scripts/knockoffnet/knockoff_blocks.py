"""Knockoffs drawn block by block, for cohorts too wide for one joint draw (issue 16).

A joint model-X draw holds about six float64 (p, p) matrices (Σ, its factor, Σ⁻¹S, the
conditional covariance and its factor): 5 GB at p = 10⁴, 21 GB at 2·10⁴, half a terabyte
at 10⁵. Here the features are put in an order (:func:`block_order`), cut into runs of at most
``max_block`` consecutive features of that order (never across a chromosome; each cut
placed where the correlation across it is weakest) and each block's knockoffs are drawn
from its own mean, covariance and S, as if the blocks were independent. A PLINK cohort
keeps its genome order, so a block is a stretch of neighbouring variants, where linkage
disequilibrium lives; a table's columns can come in any order, so by default they are
ordered by correlation first (:func:`correlation_order`), which puts each cluster of
correlated features into one block wherever its columns are. Memory is
O(n·p + max_block²) and time O(n·p·max_block) plus the order's O(ORDER_ROWS·p²).

What this gives up: for x_a and x_b in different blocks A and B the draw makes
cov(x_a, x̃_b) = Σ_ab − (Σ_AB Σ_BB⁻¹ S_B)_ab instead of Σ_ab, so exchangeability holds
exactly only when the blocks are uncorrelated, and approximately when the correlations
across block boundaries are small (genotypes: LD decays with distance). The draw's
diagnostics therefore report the largest |corr| between neighbouring blocks' columns, the
correlation the draw does not carry, besides the checks of every block.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from knockoffnet.errors import InputError
from knockoffnet.groups import correlation
from knockoffnet.knockoff_diagnostics import (
    SWAP_ALPHA,
    _power_note,
    diagnostics,
    moment_thresholds,
)

# Columns on each side of a block boundary whose correlations the diagnostics measure.
EDGE_COLUMNS = 100
# Columns on each side of a candidate cut whose correlations score it (LD between variants
# decays within tens of neighbours).
LINK_COLUMNS = 10
# A draw whose largest cross-block |corr| exceeds this is flagged: features next to a cut
# lose much of their dependence on the other side, which their knockoffs then lack.
CROSS_BLOCK_FLAG = 0.5
# Rows the correlation order reads (evenly spaced): |corr| to about ±0.02, O(rows·p) memory.
ORDER_ROWS = 2_000
# Bytes of one chunk of the order's (chunk, p) correlations.
ORDER_CHUNK_BYTES = 64 * 2**20
BLOCK_ORDERS = ("auto", "columns", "correlation")
_ALL = slice(None)


def resolve_block_order(how: str, chromosomes: Sequence[str] | None = None) -> str:
    """``columns`` or ``correlation`` for ``knockoffs.block_order`` (``auto``: the given
    order where ``chromosomes`` are known, a PLINK cohort's genome order; by correlation
    otherwise, since a table's columns may come in any order)."""
    if how not in BLOCK_ORDERS:
        raise InputError(
            f"knockoffs.block_order must be one of {', '.join(BLOCK_ORDERS)}; got {how!r}"
        )
    if how == "auto":
        return "columns" if chromosomes is not None else "correlation"
    return how


def needs_links(
    sampling: str, method: str, how: str, p: int, chromosomes: Sequence[str] | None = None
) -> bool:
    """Whether a cohort's draws are cut from the correlation order, the one reader of
    :func:`correlation_links` (a block-wise draw, ``block_order`` resolving to correlation)."""
    from knockoffnet.knockoffs import resolve_sampling

    return (
        resolve_sampling(sampling, p, method) == "blocks"
        and resolve_block_order(how, chromosomes) == "correlation"
    )


def block_order(
    how: str,
    X: np.ndarray,
    rows: np.ndarray | slice = _ALL,
    chromosomes: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
    links: Links | None = None,
) -> np.ndarray:
    """The feature order that blocks are cut from (:func:`resolve_block_order`); ``links``
    (:func:`correlation_links`, computed once per cohort) spare recomputing them."""
    if resolve_block_order(how, chromosomes) == "columns":
        return np.arange(X.shape[1])
    return correlation_order(X, rows, chromosomes, groups, links=links)


def ordered_blocks(
    how: str,
    X: np.ndarray,
    max_block: int,
    chromosomes: Sequence[str] | None = None,
    rows: np.ndarray | slice = _ALL,
    groups: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    links: Links | None = None,
) -> list[np.ndarray]:
    """The blocks of a block-wise draw as column-index arrays: runs of :func:`block_order`
    cut by :func:`sampling_blocks`."""
    order = block_order(how, X, rows, chromosomes, groups, links)
    runs = sampling_blocks(X.shape[1], max_block, chromosomes, X, rows, groups, names, order)
    return [order[run] for run in runs]


class Links(NamedTuple):
    """Each feature's strongest |corr| links: edges src → dst with their weight."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray

    @classmethod
    def empty(cls) -> Links:
        """No edges (fewer than two features, or links that were not needed)."""
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))


def correlation_links(
    X: np.ndarray,
    rows: np.ndarray | slice = _ALL,
    chromosomes: Sequence[str] | None = None,
    k: int = LINK_COLUMNS,
) -> Links:
    """Each column's ``k`` most correlated others (|corr|, never across ``chromosomes``),
    the graph :func:`correlation_order` links: the order's whole O(ORDER_ROWS·p²) cost, so
    the workflow computes it once per cohort (rule ``correlation_links``) for the groups
    rule and every draw. Reads at most ORDER_ROWS evenly spaced rows of ``rows``; memory
    O(ORDER_ROWS·p) plus chunks of ORDER_CHUNK_BYTES."""
    n, p = X.shape
    if p < 2:
        return Links.empty()
    use = np.arange(n)[rows]
    if use.size > ORDER_ROWS:
        use = use[np.linspace(0, use.size - 1, ORDER_ROWS).round().astype(np.int64)]
    Z = np.asarray(X[use], dtype=np.float32)  # the rows' copy, the only (rows, p) array
    Z -= Z.mean(axis=0)
    sd = np.sqrt(np.einsum("ij,ij->j", Z, Z) / use.size)
    Z /= np.where(sd > 0, sd, 1.0).astype(np.float32)
    labels = None if chromosomes is None else np.asarray(chromosomes, dtype=str)
    k = min(k, p - 1)
    src, dst, weight = [], [], []
    step = max(1, ORDER_CHUNK_BYTES // (4 * p))
    for a in range(0, p, step):
        b = min(p, a + step)
        C = np.abs(Z[:, a:b].T @ Z) / use.size
        C[np.arange(b - a), np.arange(a, b)] = -1.0  # never its own neighbour
        if labels is not None:
            C[labels[a:b, None] != labels[None, :]] = -1.0
        top = np.argpartition(C, -k, axis=1)[:, -k:]
        w = np.take_along_axis(C, top, axis=1)
        keep = w >= 0
        src.append(np.broadcast_to(np.arange(a, b)[:, None], top.shape)[keep])
        dst.append(top[keep])
        weight.append(w[keep].astype(np.float64))
    return Links(*(np.concatenate(part) for part in (src, dst, weight)))


def save_links(path: str, links: Links | None) -> None:
    """links.npz; ``None`` (the draw cuts no blocks from a correlation order) as no edges
    and ``computed`` false, so a reader can tell "not needed" from "no links"."""
    from knockoffnet.runtime import save_npz

    save_npz(path, computed=np.bool_(links is not None), **(links or Links.empty())._asdict())


def load_links(path: str) -> Links | None:
    """What :func:`save_links` wrote (None where the links were not needed)."""
    with np.load(path) as f:
        if not bool(f["computed"]):
            return None
        return Links(f["src"], f["dst"], f["weight"])


def correlation_order(
    X: np.ndarray,
    rows: np.ndarray | slice = _ALL,
    chromosomes: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
    k: int = LINK_COLUMNS,
    links: Links | None = None,
) -> np.ndarray:
    """A permutation of the columns in which correlated features are neighbours: the leaf
    order of single linkage on |corr| over each feature's ``k`` most correlated others
    (:func:`correlation_links`, computed here unless ``links`` are given).

    Edges are merged strongest first (Kruskal); merging two clusters puts one's features
    right after the other's, so every cluster, at every level of the tree, is a run of
    consecutive positions and the weakest link of a run is where a cut drops least. Members
    of one group are joined before any correlation (a group stays one run), features on
    different ``chromosomes`` are never joined (each chromosome stays one run, in genome
    order), and clusters left unjoined follow in the order of their first column."""
    p = X.shape[1]
    if p < 2:
        return np.arange(p)
    if links is None:
        links = correlation_links(X, rows, chromosomes, k)
    src, dst, weight = [links.src], [links.dst], [links.weight]
    if groups is not None:  # consecutive members of a group, above any correlation
        g = np.asarray(groups, dtype=np.int64)
        by = np.argsort(g, kind="stable")
        same = g[by[1:]] == g[by[:-1]]
        src.append(by[:-1][same])
        dst.append(by[1:][same])
        weight.append(np.full(int(same.sum()), 2.0))
    return _kruskal_order(p, np.concatenate(src), np.concatenate(dst), np.concatenate(weight))


def _kruskal_order(p: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Leaf order of single linkage: edges strongest first (ties by src, dst); each merge
    appends the cluster whose smallest column is later to the other (linked lists, O(1))."""
    parent, low = list(range(p)), list(range(p))
    head, tail, nxt = list(range(p)), list(range(p)), [-1] * p

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    order = np.lexsort((dst, src, -weight))
    for i, j in zip(src[order].tolist(), dst[order].tolist(), strict=True):
        a, b = find(i), find(j)
        if a == b:
            continue
        if low[b] < low[a]:
            a, b = b, a
        nxt[tail[a]] = head[b]  # a's run, then b's
        tail[a] = tail[b]
        parent[b] = a
    out = []
    for r in sorted((r for r in range(p) if parent[r] == r), key=low.__getitem__):
        x = head[r]
        while x != -1:
            out.append(x)
            x = nxt[x]
    return np.asarray(out, dtype=np.int64)


def sampling_blocks(
    p: int,
    max_block: int,
    chromosomes: Sequence[str] | None = None,
    X: np.ndarray | None = None,
    rows: np.ndarray | slice = _ALL,
    groups: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    order: np.ndarray | None = None,
) -> list[slice]:
    """Runs of at most ``max_block`` consecutive positions of ``order`` (a permutation of
    the columns, :func:`block_order`; default the columns as given), cut at every change of
    chromosome; ``chromosomes``, ``groups`` and ``names`` are per column. Given ``X`` (its ``rows`` are read), each further cut is placed at the weakest
    link within the last half of the allowed range: where the largest |corr| between the
    LINK_COLUMNS columns on either side is smallest (a block then ends where LD is low and
    holds max_block/2 to max_block features); without X, each chromosome's run is split into
    near-equal blocks. With ``groups`` (a label per feature) a cut never separates two
    members of a group, so each group is drawn whole inside one block; a group that cannot
    fit (it spans more than max_block columns or two chromosomes) is an InputError naming two
    of its members (``names``, else column numbers)."""
    if p < 1 or max_block < 1:
        raise InputError(f"need p >= 1 and max_block >= 1, got p = {p}, max_block = {max_block}")
    if chromosomes is not None and len(chromosomes) != p:
        raise InputError(f"{len(chromosomes)} chromosome labels for {p} features")
    if order is not None:  # everything below works on positions of the order
        order = np.asarray(order, dtype=np.int64)
        chromosomes = None if chromosomes is None else np.asarray(chromosomes, dtype=str)[order]
        groups = None if groups is None else np.asarray(groups)[order]
        names = None if names is None else [names[j] for j in order]
    cuts = [0, p]
    if chromosomes is not None:
        labels = np.asarray(chromosomes, dtype=str)
        cuts = [0, *(np.flatnonzero(labels[1:] != labels[:-1]) + 1).tolist(), p]
    allowed = _group_cuts(p, groups)
    for c in cuts[1:-1]:
        if not allowed[c]:
            raise InputError(
                f"the feature group of {_straddling(groups, c, names)} has members on two "
                "chromosomes: block-wise knockoffs draw a group inside one chromosome; split "
                "that group in the group table, or draw jointly (knockoffs.sampling: full)"
            )
    blocks = []
    for start, stop in itertools.pairwise(cuts):
        if X is None and groups is None:
            k = math.ceil((stop - start) / max_block)
            edges = np.linspace(start, stop, k + 1).round().astype(int)
            blocks += [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
            continue
        current = start
        while stop - current > max_block:
            lo, hi = current + max(1, max_block // 2), current + max_block
            ok = allowed[lo : hi + 1]
            if not ok.any():  # no cut in the last half: the latest one in the first half
                earlier = np.flatnonzero(allowed[current + 1 : lo]) + current + 1
                if earlier.size == 0:
                    raise InputError(
                        f"the feature group of {_straddling(groups, hi, names)} (with the "
                        "groups its members interleave with) spans more than "
                        f"knockoffs.max_block = {max_block} consecutive features, so no block "
                        "can hold it whole: raise knockoffs.max_block, split the group, or "
                        "draw jointly (knockoffs.sampling: full)"
                    )
                cut = int(earlier[-1])
            else:
                scores = np.zeros(hi - lo + 1) if X is None else link_scores(X, lo, hi, rows, order)
                scores = np.where(ok, scores, np.inf)
                cut = lo + int(np.flatnonzero(scores == scores.min())[-1])  # the later of ties
            blocks.append(slice(current, cut))
            current = cut
        blocks.append(slice(current, stop))
    return blocks


def _group_cuts(p: int, groups: np.ndarray | None) -> np.ndarray:
    """allowed[c] (c = 0..p): a block may end before column c without separating a group,
    i.e. no group has members on both sides of c."""
    allowed = np.ones(p + 1, dtype=bool)
    if groups is None:
        return allowed
    labels = np.asarray(groups, dtype=np.int64)
    if labels.shape != (p,):
        raise InputError(f"{labels.size} group labels for {p} features")
    last = np.zeros(labels.max() + 1, dtype=np.int64)
    np.maximum.at(last, labels, np.arange(p))
    reach = np.maximum.accumulate(last[labels])  # furthest member of any group begun so far
    allowed[1:p] = reach[:-1] < np.arange(1, p)
    return allowed


def _straddling(groups: np.ndarray | None, c: int, names: Sequence[str] | None) -> str:
    """Two members of a group on either side of cut c, by name (else column number)."""
    labels = np.asarray(groups, dtype=np.int64)
    g = np.intersect1d(labels[:c], labels[c:])[0]
    a, b = np.flatnonzero(labels[:c] == g)[-1], c + np.flatnonzero(labels[c:] == g)[0]
    a, b = (str(names[a]), str(names[b])) if names is not None else (f"column {a}", f"{b}")
    return f"{a} and {b}"


def link_scores(
    X: np.ndarray,
    lo: int,
    hi: int,
    rows: np.ndarray | slice = _ALL,
    order: np.ndarray | None = None,
    k: int = LINK_COLUMNS,
) -> np.ndarray:
    """For each cut c in [lo, hi] (a block ends before position c of ``order``, default the
    columns): the largest |corr| between positions [c − k, c) and [c, c + k), the strongest
    correlation the cut would drop."""
    a, b = max(0, lo - k), min(X.shape[1], hi + k)
    C = correlation(X[:, slice(a, b) if order is None else order[a:b]][rows])  # a small copy
    scores = np.zeros(hi - lo + 1)
    for i, c in enumerate(range(lo, hi + 1)):
        left, right = slice(max(a, c - k) - a, c - a), slice(c - a, min(b, c + k) - a)
        if left.stop > left.start and right.stop > right.start:
            scores[i] = C[left, right].max()
    return scores


def block_draw(
    X: np.ndarray,
    blocks: Sequence[slice | np.ndarray],
    draw_block,
    rng: np.random.Generator,
    copies: int,
    rows: np.ndarray | slice,
    names: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
    order: str = "columns",
) -> tuple[np.ndarray, np.ndarray, dict[str, float | bool | str]]:
    """X̃ (float32 (n, κp), copies side by side as in a joint draw), s (p,) and the combined
    diagnostics of a block-wise draw (``order`` names the block order in them). ``blocks`` are column ranges or index arrays (runs of
    a :func:`block_order`).

    ``draw_block(X_B, columns, rng, groups_B) -> (X̃_B float32 (n, κ·|B|), S_B, Σ_B)`` draws
    one block (:func:`knockoffnet.knockoffs.make_knockoffs` supplies the joint draw on the
    block's columns); ``groups_B`` is None per feature, else the block's group labels
    renumbered 0..G_B−1 (``groups`` never cross blocks: :func:`sampling_blocks`), and S_B is
    then the block's group S matrix, whose diagonal goes into s. Every block gets its own
    random stream spawned from ``rng``, so a block's knockoffs do not depend on how many
    blocks precede it. ``rows`` are the diagnostics' rows.
    """
    n, p = X.shape
    Xk = np.empty((n, copies * p), dtype=np.float32)
    s = np.empty(p)
    checks = []
    checks_rows = np.arange(n)[rows].size
    blocks = _as_columns(blocks, p)
    for blk, stream in zip(blocks, rng.spawn(len(blocks)), strict=True):
        width = blk.size
        XB = np.ascontiguousarray(X[:, blk])
        gB = None
        if groups is not None:
            gB = np.unique(np.asarray(groups)[blk], return_inverse=True)[1].astype(np.int64)
            gB = gB if np.bincount(gB).max() > 1 else None  # only singletons: per feature
        XkB, SB, SigmaB = draw_block(XB, blk, stream, gB)
        for k in range(copies):
            Xk[:, k * p + blk] = XkB[:, k * width : (k + 1) * width]
        s[blk] = np.diag(SB) if np.ndim(SB) == 2 else SB
        label = None if names is None else [names[j] for j in blk]
        checks.append(
            diagnostics(XB[rows], XkB[rows, :width], SigmaB, SB, stream, names=label, groups=gB)
        )
        del XB, XkB
    info = combine_checks(checks, [b.size for b in blocks], checks_rows)
    cross = boundary_corr(X, blocks, rows)
    info["blocks"] = len(blocks)
    info["block_order"] = order
    info["max_cross_block_corr"] = cross
    widest = max(b.size for b in blocks)
    note = (
        f"Drawn block by block ({len(blocks)} blocks of at most {widest} features, cut from "
        f"the {'columns as given' if order == 'columns' else 'correlation order'}): "
        f"correlations across blocks are not carried (largest |corr| between neighbouring "
        f"blocks' features {cross:.2f}). "
    )
    if cross > CROSS_BLOCK_FLAG:
        info["flag"] = True
        note += (
            f"That exceeds {CROSS_BLOCK_FLAG}: features next to a cut lose dependence their "
            "knockoffs lack, so exchangeability is approximate there; raise knockoffs.max_block "
            "or draw jointly (knockoffs.sampling: full) if memory allows. "
        )
    info["message"] = note + str(info["message"])
    return Xk, s, info


def combine_checks(
    checks: list[dict[str, float | bool | str]], widths: list[int], rows: int
) -> dict[str, float | bool | str]:
    """One diagnostics row from the blocks' rows: means weighted by block width, extremes
    over blocks, and the swap test's smallest p-value Bonferroni-corrected over the blocks
    (so B exchangeable blocks raise the flag by chance about as often as one joint draw)."""
    w = np.asarray(widths, dtype=np.float64) / float(np.sum(widths))

    def col(key: str) -> np.ndarray:
        return np.array([float(c[key]) for c in checks])

    worst = int(np.argmin(col("swap_pvalue")))
    pvalue = min(1.0, float(col("swap_pvalue")[worst]) * len(checks))
    out: dict[str, float | bool | str] = {
        "mean_s": float(w @ col("mean_s")),
        "min_s": float(col("min_s").min()),
        "max_dev_xx": float(col("max_dev_xx").max()),
        "max_dev_kk": float(col("max_dev_kk").max()),
        "max_dev_xk": float(col("max_dev_xk").max()),
        "mean_abs_pair_corr": float(w @ col("mean_abs_pair_corr")),
        "swap_stat": float(col("swap_stat")[worst]),
        "swap_pvalue": pvalue,
        "swap_cov_gap": float(col("swap_cov_gap").max()),
        "max_skew_gap": float(col("max_skew_gap").max()),
        "max_kurt_gap": float(col("max_kurt_gap").max()),
    }
    skew_thr, kurt_thr = moment_thresholds(rows)
    moments = (col("max_skew_gap") > skew_thr) | (col("max_kurt_gap") > kurt_thr)
    if moments.any():  # that block's own message names the column
        out["flag"] = True
        out["message"] = str(checks[int(np.flatnonzero(moments)[0])]["message"])
    elif pvalue < SWAP_ALPHA:
        out["flag"] = True
        out["message"] = (
            f"Knockoffs may not be exchangeable with X: block {worst + 1} changes when pairs "
            f"are swapped (swap test p = {float(col('swap_pvalue')[worst]):.3g}, {pvalue:.3g} "
            f"over {len(checks)} blocks < {SWAP_ALPHA}). Gaussian knockoffs match only means "
            "and covariances, so the FDR can exceed q; rerun with knockoffs.draws > 1 to see "
            "whether the selection is stable, or read it as exploratory."
        )
    else:
        out["flag"] = False
        out["message"] = (
            f"No evidence against exchangeability in any block (smallest swap test p "
            f"{float(col('swap_pvalue')[worst]):.3g}, {pvalue:.3g} over {len(checks)} blocks; "
            f"largest skewness gap {out['max_skew_gap']:.2f}, largest kurtosis gap "
            f"{out['max_kurt_gap']:.2f})."
        )
    out["message"] = str(out["message"]) + _power_note(
        float(out["mean_abs_pair_corr"]), float(out["mean_s"])
    )
    return out


def boundary_corr(
    X: np.ndarray,
    blocks: Sequence[slice | np.ndarray],
    rows: np.ndarray | slice = _ALL,
    edge: int = EDGE_COLUMNS,
) -> float:
    """Largest |corr| between the last ``edge`` features of a block and the first ``edge``
    of the next (neighbours in the blocks' order): what the block-wise draw treats as zero
    where it is largest (0 with a single block)."""
    largest = 0.0
    for a, b in itertools.pairwise(_as_columns(blocks, X.shape[1])):
        left = X[:, a[-edge:]][rows]
        right = X[:, b[:edge]][rows]
        C = correlation(np.hstack([left, right]))[: left.shape[1], left.shape[1] :]
        largest = max(largest, float(C.max()))
    return largest


def _as_columns(blocks: Sequence[slice | np.ndarray], p: int) -> list[np.ndarray]:
    """Each block as an array of column indices (a range's too)."""
    columns = np.arange(p)
    return [columns[b] if isinstance(b, slice) else np.asarray(b, dtype=np.int64) for b in blocks]
