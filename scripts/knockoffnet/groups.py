"""Feature groups for group knockoffs (issue 15; Dai & Barber 2016).

When features are nearly collinear a knockoff must nearly copy its feature, and no statistic
can prefer one to the other. Grouping such features and asking "does this group matter?"
lets the group's knockoffs differ from the group as a whole (S is block-diagonal by group,
:func:`knockoffnet.s_solvers.solve_group_s`) and the filter run over groups.

A grouping is an integer label per feature, 0..G−1, numbered by each group's first member.
``auto`` clusters features by average linkage on 1 − |corr| and cuts the tree at
1 − ``group_cutoff`` (default |r| = 0.5: features whose average absolute correlation is at
least 0.5 share a group), as the GWAS knockoff tools do for linkage disequilibrium.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from knockoffnet.errors import InputError
from knockoffnet.moments import row_moments

DEFAULT_GROUP_CUTOFF = 0.5
GROUP_COLUMNS = ["feature", "group", "group_size", "representative"]


def _relabel(labels: Sequence[object]) -> np.ndarray:
    """Labels 0..G−1 in order of each group's first member (stable, seed-free)."""
    _, first, inverse = np.unique(np.asarray(labels), return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.reshape(-1)]


def correlation(X: np.ndarray) -> np.ndarray:
    """|corr| of the columns of X (float64, unit diagonal), from row-block sums: no float64
    copy of a large X."""
    gram = row_moments(np.asarray(X)).gram
    norms = np.sqrt(np.diag(gram))
    norms = np.where(norms > 0, norms, 1.0)
    R = np.abs(gram / np.outer(norms, norms))
    np.fill_diagonal(R, 1.0)
    return np.clip(R, 0.0, 1.0)


def auto_groups(
    X: np.ndarray,
    cutoff: float = DEFAULT_GROUP_CUTOFF,
    windows: Sequence[slice | np.ndarray] | None = None,
) -> np.ndarray:
    """Average-linkage clusters of 1 − |corr| cut at 1 − cutoff; labels 0..G−1.

    With ``windows`` (column ranges or index arrays covering X, e.g. the blocks of a block-wise
    knockoff draw) each window is clustered on its own: O(window²) memory instead of O(p²),
    and no group crosses a window, so every group can be drawn whole inside one block."""
    cutoff = float(cutoff)
    if not 0.0 < cutoff < 1.0:
        raise InputError(f"knockoffs.group_cutoff must lie in (0, 1); got {cutoff}")
    if windows is None:
        return _clusters(correlation(X), cutoff)
    labels, offset = np.empty(X.shape[1], dtype=np.int64), 0
    for window in windows:
        part = _clusters(correlation(X[:, window]), cutoff)
        labels[window] = part + offset
        offset += int(part.max()) + 1
    return labels


def _clusters(R: np.ndarray, cutoff: float) -> np.ndarray:
    """Average-linkage clusters of 1 − R cut at 1 − cutoff (labels in order of appearance)."""
    # scipy here, not at the top: the selection and report environments import this module
    # for its table helpers and do not ship scipy.
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    if R.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)
    D = 1.0 - R
    np.fill_diagonal(D, 0.0)
    tree = hierarchy.linkage(squareform(0.5 * (D + D.T), checks=False), method="average")
    return _relabel(hierarchy.fcluster(tree, t=1.0 - cutoff, criterion="distance"))


def read_group_table(path: str | Path, features: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """(labels, group names) from a user's table (columns ``feature`` and ``group``; TSV/CSV).

    Features the table leaves out form groups of their own. Unknown features, a feature in
    two groups and a single group holding every feature (nothing left to compare it with)
    are errors naming the file and the fix.
    """
    path = Path(path)
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        table = pd.read_csv(path, sep=sep, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"knockoffs.groups: cannot read {path}: {exc}") from exc
    missing = [c for c in ("feature", "group") if c not in table.columns]
    if missing:
        raise InputError(
            f"knockoffs.groups: {path} lacks column(s) {', '.join(missing)}; it needs "
            f"`feature` and `group` (found {', '.join(map(str, table.columns))})"
        )
    table = table[["feature", "group"]].dropna()
    names = list(features)
    unknown = sorted(set(table["feature"]) - set(names))
    if unknown:
        raise InputError(
            f"knockoffs.groups: {path} names {len(unknown)} feature(s) the cohort does not have "
            f"(e.g. {', '.join(unknown[:5])}); list only the cohort's features "
            "(after ingest's exclusions)"
        )
    twice = table.loc[table["feature"].duplicated(keep=False)]
    if not twice.empty and twice.groupby("feature")["group"].nunique().max() > 1:
        bad = twice.groupby("feature")["group"].nunique()
        bad = sorted(bad[bad > 1].index)
        raise InputError(
            f"knockoffs.groups: {path} puts feature(s) {', '.join(bad[:5])} in two groups; "
            "each feature belongs to exactly one group"
        )
    given = dict(zip(table["feature"], table["group"], strict=True))
    keys = [f"group:{given[f]}" if f in given else f"feature:{f}" for f in names]
    out = _relabel(keys)
    if len(names) > 1 and out.max() == 0:
        raise InputError(
            f"knockoffs.groups: {path} puts all {len(names)} features in one group; a single "
            "group has nothing to be compared with — split it or use knockoffs.groups: none"
        )
    group_names = [""] * (int(out.max()) + 1)
    for key, g in zip(keys, out, strict=True):
        group_names[g] = key.split(":", 1)[1]
    return out, group_names


def group_table(
    features: Sequence[str], labels: np.ndarray, X: np.ndarray, names: Sequence[str] | None = None
) -> pd.DataFrame:
    """groups.tsv: feature, group, group_size, representative.

    A group is named by its representative (the member with the largest mean |corr| to the
    other members, the first on ties), or by the user's label when ``names`` gives one.
    """
    labels = np.asarray(labels, dtype=np.int64)
    features = np.asarray(features, dtype=object)
    sizes = np.bincount(labels)
    first = np.full(sizes.size, labels.size)
    np.minimum.at(first, labels, np.arange(labels.size))  # a singleton is its own name
    rep = features[first]
    by_group = np.argsort(labels, kind="stable")  # each group's members, in column order
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for g in np.flatnonzero(sizes > 1):  # over groups, never a scan of all labels per group
        members = by_group[starts[g] : starts[g + 1]]
        R = correlation(np.asarray(X[:, members]))
        rep[g] = features[members[int(np.argmax(R.sum(axis=0)))]]
    group_names = rep if names is None else np.asarray(names, dtype=object)
    return pd.DataFrame(
        {
            "feature": features,
            "group": group_names[labels],
            "group_size": sizes[labels],
            "representative": rep[labels],
        },
        columns=GROUP_COLUMNS,
    )


def read_groups(path: str | Path) -> pd.DataFrame:
    """groups.tsv as written by the groups rule (names kept as text, e.g. "1" stays "1")."""
    return pd.read_csv(path, sep="\t", dtype={"feature": str, "group": str, "representative": str})


def index_from_table(table: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Labels 0..G−1 per feature (in ``features`` order) from a groups.tsv table."""
    missing = sorted(set(features) - set(table["feature"].astype(str)))
    if missing:
        raise InputError(
            f"groups.tsv lacks feature(s) {', '.join(missing[:5])}; rerun the groups rule"
        )
    by_feature = dict(zip(table["feature"].astype(str), table["group"].astype(str), strict=True))
    return _relabel([by_feature[f] for f in features])


def group_sum(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sum over each group's members along the last axis: (…, p) → (…, G).

    Summing is linear, so averaging seeds before or after grouping gives the same result,
    and swapping a whole group with its knockoff group swaps the sums (flip-sign)."""
    a = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n_groups = int(labels.max()) + 1
    rows = a.reshape(-1, a.shape[-1])  # at most κ+1 rows: a loop over copies, not features
    out = np.stack([np.bincount(labels, weights=row, minlength=n_groups) for row in rows])
    return out.reshape(*a.shape[:-1], n_groups)
