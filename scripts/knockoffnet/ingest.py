"""Read, validate and standardise one cohort.

Everything that can be wrong with a user's table is checked here, before any computation, so a
bad input stops the workflow at its first job with one sentence that names the file, the column
or config key, and the fix. The input file is only ever read.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.errors import InputError
from knockoffnet.moments import column_moments, standardise_float32

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".txt": "tsv"}
MAX_CLASSES = 20


@dataclass
class Cohort:
    """A validated cohort: standardised features, coded labels and what was done to get there."""

    name: str
    X: np.ndarray  # (n, p) float32, mean 0, sd 1 (standardised in float64)
    y: np.ndarray  # (n,) int64 codes or float64 outcome
    features: list[str]
    means: np.ndarray
    sds: np.ndarray
    task: str
    classes: list[str]
    ids: list[str] | None
    label: str
    source: str
    dropped: dict[str, Any] = field(default_factory=dict)
    C: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (n, c) covariates
    covariates: list[str] = field(default_factory=list)
    variants: dict[str, list] | None = None  # PLINK: chromosome, position per feature

    def meta(self) -> dict[str, Any]:
        """The JSON-serialisable description later stages read (``data/meta.json``)."""
        return {
            "cohort": self.name,
            "source": self.source,
            "label": self.label,
            "features": self.features,
            "means": self.means.tolist(),
            "sds": self.sds.tolist(),
            "task": self.task,
            "classes": self.classes,
            "n": int(self.X.shape[0]),
            "p": int(self.X.shape[1]),
            "ids": self.ids,
            "dropped": self.dropped,
            "covariates": self.covariates,
            "variants": self.variants,
        }

    def labels_table(self) -> pd.DataFrame:
        if self.task == "regression":
            return pd.DataFrame({"class": [], "code": [], "count": []})
        counts = np.bincount(self.y, minlength=len(self.classes))
        return pd.DataFrame(
            {"class": self.classes, "code": range(len(self.classes)), "count": counts}
        )


def file_format(path: Path) -> tuple[str, bool]:
    """Return (format, gzipped) from the file name; reject unknown extensions."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in FORMATS:
        raise InputError(
            f"{path}: unsupported file extension {ext or '(none)'!r}; use one of "
            ".parquet, .csv, .tsv or .txt (tab-separated), optionally compressed as .gz"
        )
    return FORMATS[ext], gz


def _read_header(path: Path, fmt: str, gz: bool) -> list[str]:
    """Column names exactly as written (pandas would silently rename duplicates)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as err:
            raise InputError(
                f"{path}: not a readable Parquet file ({type(err).__name__}: {err}); check that "
                "the file is complete and that its extension matches its content"
            ) from err
    try:
        opener = gzip.open if gz else open
        with opener(path, "rt", newline="", encoding="utf-8") as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError, EOFError) as err:
        kind = "gzip-compressed text" if gz else "UTF-8 text"
        raise InputError(
            f"{path}: cannot be read as {kind} ({type(err).__name__}: {err}); check that the "
            "extension matches the content (e.g. a Parquet or Excel file named .csv)"
        ) from err
    if not first.strip():
        raise InputError(
            f"{path}: the file is empty; it needs a header row and at least one data row"
        )
    delimiter = "," if fmt == "csv" else "\t"
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    if len(header) == 1 and ("\t" if fmt == "csv" else ",") in first:
        other = "tab" if fmt == "csv" else "comma"
        raise InputError(
            f"{path}: the header has one column but contains {other}s; the extension says "
            f"{fmt.upper()} - rename the file to match its delimiter (.csv for commas, .tsv for tabs)"
        )
    return [h.strip() for h in header]


def table_header(path: str | Path) -> list[str]:
    """Check that the file exists, has a known format and unique column names; return them."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; check `cohorts.<name>.path` in the config")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file; `cohorts.<name>.path` must name a file")
    fmt, gz = file_format(path)
    header = _read_header(path, fmt, gz)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(
            f"{path}: duplicate column names {dupes}; rename them so every column is unique"
        )
    return header


def read_table(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read the given columns (all when None) of a cohort file, and nothing else."""
    path = Path(path)
    header = table_header(path)
    fmt, gz = file_format(path)
    columns = header if columns is None else [c for c in header if c in set(columns)]
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=columns).to_pandas()
        else:
            table = pd.read_csv(
                path,
                sep="," if fmt == "csv" else "\t",
                usecols=columns,
                compression="gzip" if gz else None,
                na_values=["", "NA", "NaN", "nan", "null", "NULL"],
                keep_default_na=False,
                skipinitialspace=True,
            )
    except InputError:
        raise
    except Exception as err:
        raise InputError(
            f"{path}: could not be parsed as {fmt.upper()} ({type(err).__name__}: {err}); check "
            "the delimiter, quoting and that every row has the same number of fields"
        ) from err
    table.columns = [str(c).strip() for c in table.columns]
    return table


def _as_list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple):
        raise InputError(f"config key `{key}` must be a list of column names")
    return [str(v) for v in value]


def infer_task(label: pd.Series, requested: str) -> str:
    """binary / multiclass / regression from the label column when `task: auto`."""
    values = label.dropna()
    n_unique = values.nunique()
    if requested != "auto":
        return requested
    if n_unique <= 2:
        return "binary"
    numeric = pd.api.types.is_numeric_dtype(values)
    integral = numeric and np.allclose(
        values.to_numpy(dtype=float), np.round(values.to_numpy(dtype=float))
    )
    if not numeric or (integral and n_unique <= MAX_CLASSES):
        return "multiclass"
    return "regression"


def encode_labels(
    label: pd.Series, task: str, where: str, positive: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """Integer codes in a stable class order (sorted; the `positive` class last for binary)."""
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(label):
            raise InputError(
                f"{where}: `task: regression` needs a numeric label column; "
                f"found values like {label.iloc[0]!r}"
            )
        return label.to_numpy(dtype=np.float64), []
    as_text = label.map(_class_text)
    classes = sorted(as_text.unique(), key=_class_sort_key)
    if positive is not None:
        if str(positive) not in classes:
            raise InputError(
                f"{where}: `positive: {positive}` is not a value of the label column; "
                f"its values are {classes}"
            )
        classes = [c for c in classes if c != str(positive)] + [str(positive)]
    if len(classes) < 2:
        raise InputError(
            f"{where}: the label column has a single class ({classes[0]!r}); feature selection "
            "needs at least two outcome classes"
        )
    if task == "binary" and len(classes) != 2:
        raise InputError(
            f"{where}: `task: binary` but the label column has {len(classes)} classes {classes}; "
            "set `task: multiclass` (or `auto`)"
        )
    code = {c: i for i, c in enumerate(classes)}
    return as_text.map(code).to_numpy(dtype=np.int64), classes


def _class_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _class_sort_key(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


@dataclass
class _Raw:
    """A cohort as read, before the missing-value policy, checks and standardisation."""

    where: str
    source: str
    values: np.ndarray  # (n, p) raw features (NaN where missing)
    names: list[str]
    label: pd.Series
    ids: list[str] | None
    covariates: pd.DataFrame  # (n, c) raw covariates, already numeric
    dropped: dict[str, Any]
    variants: dict[str, list] | None = None  # PLINK: chromosome and position per feature


def load_cohort(
    name: str,
    spec: dict[str, Any],
    preprocess: dict[str, Any],
    *,
    min_per_class: int = 10,
    knockoff_method: str = "model-x",
) -> Cohort:
    """Validate and standardise cohort `name` as described by its config entry `spec`: a table
    (``path``) or PLINK genotypes with a phenotype table (``plink`` + ``pheno``).

    ``knockoff_method`` sets the smallest sample size accepted (fixed-X needs n >= 2p);
    ``min_per_class`` is the smallest class that still splits into training and validation.
    """
    if spec.get("plink"):
        from knockoffnet.genotypes import read_plink_cohort

        raw = read_plink_cohort(name, spec, preprocess)
    else:
        raw = _read_table_cohort(name, spec, preprocess)
    return _finish(name, raw, spec, preprocess, min_per_class, knockoff_method)


def _dropped(preprocess: dict[str, Any]) -> dict[str, Any]:
    return {
        "constant": [],
        "duplicate": [],
        "rows_missing": 0,
        "missing_policy": preprocess.get("missing", "error"),
        "categorical_onehot": [],
    }


def numeric_columns(
    frame: pd.DataFrame, where: str, what: str, preprocess: dict[str, Any], dropped: dict
) -> pd.DataFrame:
    """Non-numeric columns dummy-coded (``preprocess.categorical: onehot``) or refused."""
    non_numeric = [c for c in frame if not pd.api.types.is_numeric_dtype(frame[c])]
    if not non_numeric:
        return frame
    if preprocess.get("categorical", "error") == "error":
        example = frame[non_numeric[0]].dropna().astype(str).iloc[:3].tolist()
        raise InputError(
            f"{where}: {what} column(s) {non_numeric} are not numeric (e.g. {example}); "
            "fix the values, list the columns under `exclude`, or set "
            "`preprocess.categorical: onehot`"
        )
    dummies = pd.get_dummies(
        frame[non_numeric].astype("string"), prefix_sep="=", drop_first=True, dtype=float
    )
    # A missing category stays missing in every dummy, so the missing-value policy applies.
    for c in non_numeric:
        na = frame[c].isna()
        cols = [d for d in dummies.columns if d.startswith(f"{c}=")]
        dummies.loc[na, cols] = np.nan
    dropped["categorical_onehot"] = dropped["categorical_onehot"] + non_numeric
    return pd.concat([frame.drop(columns=non_numeric), dummies], axis=1)


def unique_ids(values: pd.Series, where: str, column: str) -> list[str]:
    ids = values.astype(str)
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise InputError(
            f"{where}: id column {column!r} has duplicate values (e.g. {sorted(set(dup))[:5]}); "
            "ids must identify rows uniquely - fix the file or drop `id` from the config"
        )
    return ids.tolist()


def _read_table_cohort(name: str, spec: dict[str, Any], preprocess: dict[str, Any]) -> _Raw:
    path = Path(spec["path"])
    where = f"{path}"
    key = f"cohorts.{name}"
    label = spec["label"]
    id_col = spec.get("id")
    wanted = _as_list(spec.get("features"), f"{key}.features")
    exclude = _as_list(spec.get("exclude"), f"{key}.exclude")
    covariates = _as_list(spec.get("covariates"), f"{key}.covariates")

    header = table_header(path)
    named = [label, id_col, *wanted, *exclude, *covariates]
    missing_cols = [c for c in named if c and c not in header]
    if missing_cols:
        raise InputError(
            f"{where}: column(s) {missing_cols} named in `{key}` are not in the file; "
            f"available columns start with {header[:8]}"
        )
    clash = sorted(set(covariates) & {label, id_col, *wanted})
    if clash:
        raise InputError(
            f"{where}: column(s) {clash} are listed under `{key}.covariates` and as the label, "
            "id or a feature; a covariate is adjusted for, never tested - list it once"
        )
    if wanted:
        features = [c for c in wanted if c not in exclude]
    else:
        features = [c for c in header if c not in {label, id_col, *exclude, *covariates}]
    if label in features:
        raise InputError(
            f"{where}: the label column {label!r} is also listed as a feature in `{key}.features`"
        )
    if not features:
        raise InputError(
            f"{where}: no feature columns left after `{key}.exclude`; list some in `{key}.features`"
        )
    columns = [c for c in [id_col, label, *features, *covariates] if c]
    table = read_table(path, columns)[columns]
    if len(table) == 0:
        raise InputError(f"{where}: the table has a header but no rows")
    dropped = _dropped(preprocess)
    ids = unique_ids(table[id_col], where, id_col) if id_col else None
    features_df = numeric_columns(table[features], where, "feature", preprocess, dropped)
    cov_df = numeric_columns(table[covariates], where, "covariate", preprocess, dropped)
    return _Raw(
        where=where,
        source=str(path),
        values=features_df.to_numpy(dtype=np.float64),
        names=[str(c) for c in features_df.columns],
        label=table[label],
        ids=ids,
        covariates=cov_df.astype(np.float64),
        dropped=dropped,
    )


def _apply_missing_policy(raw: _Raw, preprocess: dict[str, Any]) -> _Raw:
    """Rows with a missing feature, covariate or label: refuse, drop or impute (features and
    covariates only; a label is never imputed)."""
    where, label = raw.where, raw.label
    values, cov = raw.values, raw.covariates.to_numpy(dtype=np.float64)
    bad, bad_cov = ~np.isfinite(values), ~np.isfinite(cov)
    label_missing = label.isna().to_numpy()
    policy = preprocess.get("missing", "error")
    if not (bad.any() or bad_cov.any() or label_missing.any()):
        return raw
    if label_missing.any() and policy != "drop-rows":
        raise InputError(
            f"{where}: label column {label.name!r} has {int(label_missing.sum())} missing "
            "value(s); remove those rows or set `preprocess.missing: drop-rows`"
        )
    if policy == "error" and (bad.any() or bad_cov.any()):
        names = raw.names + list(raw.covariates.columns)
        both = np.hstack([bad, bad_cov])
        cols = [names[j] for j in np.flatnonzero(both.any(axis=0))]
        rows = int(both.any(axis=1).sum())
        raise InputError(
            f"{where}: missing or infinite values in column(s) {cols[:10]} ({rows} row(s)); "
            "set `preprocess.missing` to `drop-rows` or `impute-mean`, or fix the file"
        )
    if policy == "drop-rows":
        keep = ~(bad.any(axis=1) | bad_cov.any(axis=1) | label_missing)
        raw.dropped["rows_missing"] = int((~keep).sum())
        raw.values, raw.label = values[keep], label[keep]
        raw.covariates = raw.covariates.loc[keep]
        raw.ids = None if raw.ids is None else [i for i, k in zip(raw.ids, keep, strict=True) if k]
        return raw
    for block, mask, names in ((values, bad, raw.names), (cov, bad_cov, list(raw.covariates))):
        if not mask.any():
            continue
        col_mean = np.nanmean(np.where(mask, np.nan, block), axis=0)
        if np.isnan(col_mean).any():
            col = names[int(np.flatnonzero(np.isnan(col_mean))[0])]
            raise InputError(
                f"{where}: column {col!r} has no finite value to impute from; exclude it"
            )
        np.copyto(block, col_mean[None, :], where=mask)
    raw.values = values
    raw.covariates = pd.DataFrame(cov, columns=raw.covariates.columns, index=raw.covariates.index)
    raw.dropped["rows_imputed"] = int((bad.any(axis=1) | bad_cov.any(axis=1)).sum())
    return raw


def _finish(
    name: str,
    raw: _Raw,
    spec: dict[str, Any],
    preprocess: dict[str, Any],
    min_per_class: int,
    knockoff_method: str,
) -> Cohort:
    """The checks and standardisation every cohort goes through, whatever its file format."""
    raw = _apply_missing_policy(raw, preprocess)
    where, values, names, dropped = raw.where, raw.values, raw.names, raw.dropped
    label_series = raw.label
    if values.shape[0] == 0:
        raise InputError(f"{where}: no rows left after dropping rows with missing values")
    positions = raw.variants

    # Constant columns carry no information and make the covariance singular.
    _, sd, absmax = column_moments(values)
    const = sd <= 1e-12 * np.maximum(1.0, absmax)
    keep = ~const
    if const.any():
        const_names = [names[j] for j in np.flatnonzero(const)]
        if preprocess.get("constant", "drop") == "error":
            raise InputError(
                f"{where}: constant feature column(s) {const_names[:10]}; remove them or set "
                "`preprocess.constant: drop`"
            )
        dropped["constant"] = const_names
    if not keep.any():
        raise InputError(f"{where}: every feature column is constant; nothing to select from")
    if const.any():  # a copy of the matrix only when a column goes
        values, names = values[:, keep], [n for n, k in zip(names, keep, strict=True) if k]

    # Identical columns: their knockoffs are not identifiable (x_j and x_k are exchangeable).
    dup_pairs = _identical_columns(values)
    dup_keep = np.ones(len(names), bool)
    if dup_pairs:
        pairs = [(names[i], names[j]) for i, j in dup_pairs]
        if preprocess.get("duplicate", "error") == "error":
            raise InputError(
                f"{where}: identical feature columns {pairs[:5]}; a knockoff cannot tell them apart. "
                "Remove one of each pair (or list it under `exclude`), or set "
                "`preprocess.duplicate: drop` to keep the first"
            )
        drop = sorted({j for _, j in dup_pairs})
        dropped["duplicate"] = [names[j] for j in drop]
        dup_keep[drop] = False
        values, names = values[:, dup_keep], [n for n, k in zip(names, dup_keep, strict=True) if k]
    if positions is not None:
        kept = np.flatnonzero(keep)[dup_keep]
        positions = {k: [v[j] for j in kept] for k, v in positions.items()}

    n, p = values.shape
    task = infer_task(label_series, spec.get("task", "auto"))
    y, classes = encode_labels(
        label_series.reset_index(drop=True),
        task,
        f"{where}: column {label_series.name!r}",
        spec.get("positive"),
    )
    if task != "regression":
        counts = np.bincount(y, minlength=len(classes))
        small = [(classes[k], int(c)) for k, c in enumerate(counts) if c < min_per_class]
        if small:
            raise InputError(
                f"{where}: class(es) {small} in column {label_series.name!r} have fewer than "
                f"{min_per_class} rows, too few to split into training and validation; merge "
                "rare classes, collect more samples, or raise `training.val_fraction`"
            )
    min_rows = min_rows_for(knockoff_method, p)
    if n < min_rows:
        raise InputError(
            f"{where}: {n} rows for {p} features; the configured knockoff construction needs at "
            f"least {min_rows} rows (fixed-X needs n >= 2p). Use `knockoffs.method: model-x` or "
            "fewer features"
        )
    C = raw.covariates.to_numpy(dtype=np.float64)
    c_sd = C.std(axis=0)
    if (c_sd <= 0).any():
        col = raw.covariates.columns[int(np.flatnonzero(c_sd <= 0)[0])]
        raise InputError(
            f"{where}: covariate {col!r} is constant over the analysed rows; it cannot adjust "
            f"anything - remove it from `cohorts.{name}.covariates`"
        )

    means, sds, _ = column_moments(values)
    return Cohort(
        name=name,
        X=standardise_float32(values, means, sds),
        y=y,
        features=names,
        means=means,
        sds=sds,
        task=task,
        classes=classes,
        ids=raw.ids,
        label=str(label_series.name),
        source=raw.source,
        dropped=dropped,
        C=(C - C.mean(axis=0)) / c_sd if C.shape[1] else C,
        covariates=[str(c) for c in raw.covariates.columns],
        variants=positions,
    )


def _identical_columns(values: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of exactly equal columns, found by hashing rows of the transpose."""
    if values.shape[1] < 2:
        return []
    frame = pd.DataFrame(values.T)
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    order = np.argsort(hashed, kind="stable")
    same = hashed[order][1:] == hashed[order][:-1]
    pairs = []
    for k in np.flatnonzero(same):
        i, j = sorted((int(order[k]), int(order[k + 1])))
        if np.array_equal(values[:, i], values[:, j]):
            pairs.append((i, j))
    return pairs


def min_rows_for(method: str, p: int) -> int:
    """Smallest n the knockoff method accepts for p features."""
    return 2 * p if method == "fixed-x" else 3


def min_class_rows(val_fraction: float) -> int:
    """A class must put at least 2 rows into a validation split of this fraction."""
    return max(4, math.ceil(2 / val_fraction))
