"""Cohort ingestion: formats, preprocessing and every bad input the foundation issue lists."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from knockoffnet.errors import InputError
from knockoffnet.ingest import load_cohort

from conftest import REPO, snakemake, synthetic_cohort, write_config


def good(n: int = 60, p: int = 4) -> pd.DataFrame:
    return synthetic_cohort(n=n, p=p, seed=1)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)


# Each case: (name, builder(dir) -> path, spec overrides, preprocess, expected message fragments)
Case = tuple[str, Callable[[Path], Path], dict, dict, list[str]]


def _file(
    name: str, frame: pd.DataFrame | None = None, text: str | None = None, raw: bytes | None = None
):
    def build(directory: Path) -> Path:
        path = directory / name
        if frame is not None:
            write_csv(frame, path)
        elif text is not None:
            path.write_text(text)
        elif raw is not None:
            path.write_bytes(raw)
        return path

    return build


def _with(frame: pd.DataFrame, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    return fn(frame.copy())


def _dup_ids(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[1, "id"] = f.loc[0, "id"]
    return f


def _nan(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[3, "f1"] = np.nan
    return f


def _inf(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[3, "f2"] = np.inf
    return f


def _const(f: pd.DataFrame) -> pd.DataFrame:
    f["f3"] = 7.0
    return f


def _text(f: pd.DataFrame) -> pd.DataFrame:
    f["f2"] = np.where(np.arange(len(f)) % 2, "high", "low")
    return f


def _twin(f: pd.DataFrame) -> pd.DataFrame:
    f["f3"] = f["f0"]
    return f


def _single(f: pd.DataFrame) -> pd.DataFrame:
    f["outcome"] = "class_A"
    return f


def _rare(f: pd.DataFrame) -> pd.DataFrame:
    f.loc[:2, "outcome"] = "class_Z"
    return f


def _dup_header(directory: Path) -> Path:
    path = directory / "dupcols.csv"
    frame = good()
    text = frame.to_csv(index=False).splitlines()
    text[0] = text[0].replace("f1", "f0")
    path.write_text("\n".join(text) + "\n")
    return path


CASES: list[Case] = [
    (
        "missing_file",
        lambda d: d / "nope.csv",
        {},
        {},
        ["nope.csv", "file not found", "cohorts.<name>.path"],
    ),
    (
        "bad_extension",
        _file("table.xlsx", text="a,b\n1,2\n"),
        {},
        {},
        ["unsupported file extension", ".csv"],
    ),
    (
        "not_parquet",
        _file("fake.parquet", text="id,outcome\n1,2\n"),
        {},
        {},
        ["not a readable Parquet file"],
    ),
    (
        "not_gzip",
        _file("plain.csv.gz", text="id,outcome\n1,2\n"),
        {},
        {},
        ["cannot be read as gzip"],
    ),
    (
        "tabs_named_csv",
        _file("tabs.csv", text="id\toutcome\tf0\ns1\tA\t1\n"),
        {},
        {},
        ["delimiter", ".tsv"],
    ),
    ("empty_file", _file("empty.csv", text=""), {}, {}, ["empty"]),
    ("header_only", _file("header.csv", text="id,outcome,f0,f1\n"), {}, {}, ["no rows"]),
    (
        "label_absent",
        _file("ok.csv", good()),
        {"label": "diagnosis"},
        {},
        ["'diagnosis'", "not in the file"],
    ),
    (
        "duplicate_ids",
        _file("dupid.csv", _with(good(), _dup_ids)),
        {},
        {},
        ["'id'", "duplicate values"],
    ),
    (
        "single_class",
        _file("single.csv", _with(good(), _single)),
        {},
        {},
        ["single class", "'class_A'"],
    ),
    (
        "rare_class",
        _file("rare.csv", _with(good(), _rare)),
        {},
        {},
        ["class_Z", "too few", "training.val_fraction"],
    ),
    (
        "non_numeric",
        _file("text.csv", _with(good(), _text)),
        {},
        {},
        ["['f2']", "not numeric", "preprocess.categorical: onehot"],
    ),
    (
        "nan_values",
        _file("nan.csv", _with(good(), _nan)),
        {},
        {},
        ["['f1']", "missing or infinite", "preprocess.missing"],
    ),
    (
        "inf_values",
        _file("inf.csv", _with(good(), _inf)),
        {},
        {},
        ["['f2']", "missing or infinite"],
    ),
    (
        "constant_error",
        _file("const.csv", _with(good(), _const)),
        {},
        {"constant": "error"},
        ["['f3']", "constant", "preprocess.constant: drop"],
    ),
    ("duplicate_columns", _dup_header, {}, {}, ["duplicate column names", "f0"]),
    (
        "identical_features",
        _file("twin.csv", _with(good(), _twin)),
        {},
        {},
        ["identical feature columns", "'f0', 'f3'", "preprocess.duplicate: drop"],
    ),
    (
        "too_few_for_fixed_x",
        _file("small.csv", good(n=30, p=20)),
        {},
        {"__knockoff_method": "fixed-x"},
        ["30 rows for 20 features", "knockoffs.method: model-x"],
    ),
]


def _spec(path: Path, overrides: dict) -> dict:
    spec = {"path": str(path), "label": "outcome", "id": "id"}
    spec.update(overrides)
    return spec


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_message(tmp_path: Path, case: Case) -> None:
    name, build, overrides, preprocess, fragments = case
    path = build(tmp_path)
    preprocess = dict(preprocess)
    method = preprocess.pop("__knockoff_method", "model-x")
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(InputError) as err:
        load_cohort(name, _spec(path, overrides), preprocess, knockoff_method=method)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if before is not None:
        assert path.read_bytes() == before, "input file was modified"


# Bad cohorts run through the workflow: one per way in (file type, table, label, ids,
# values); test_bad_input_message checks every case's message on load_cohort, and every
# case fails before the job's only (atomic) writes.
WORKFLOW_CASES = {"bad_extension", "not_parquet", "label_absent", "duplicate_ids", "nan_values"}


def test_bad_inputs_leave_no_partial_outputs(tmp_path: Path) -> None:
    """Each bad cohort fails its ingest job with the message in its log and no outputs."""
    data = tmp_path / "data"
    data.mkdir()
    cohorts, expected, hashes = {}, {}, {}
    for name, build, overrides, _, fragments in CASES:
        if name not in WORKFLOW_CASES:
            continue
        path = build(data)
        cohorts[name] = _spec(path, overrides)
        expected[name] = fragments
        if path.exists():
            hashes[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    write_config(tmp_path, {"cohorts": cohorts})
    targets = [f"results/{c}/data/meta.json" for c in cohorts]
    result = snakemake(tmp_path, "--keep-going", *targets)
    assert result.returncode != 0
    for name, fragments in expected.items():
        log = (tmp_path / "logs" / name / "ingest.log").read_text()
        for fragment in fragments:
            assert fragment in log, f"{name}: {fragment!r} not in log {log!r}"
        assert "Traceback" not in log
        leftovers = (
            list((tmp_path / "results" / name).rglob("*.*"))
            if (tmp_path / "results" / name).exists()
            else []
        )
        assert not [p for p in leftovers if "benchmarks" not in p.parts], (
            f"{name}: partial outputs {leftovers}"
        )
    assert set(expected) == WORKFLOW_CASES
    for path, digest in hashes.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path} was modified"
    # The terminal shows the message, not only the log.
    assert "knockoffnet error in rule ingest" in result.stderr


def test_missing_file_stops_before_any_job(tmp_path: Path) -> None:
    write_config(tmp_path, {"cohorts": {"gone": {"path": "nope.csv", "label": "outcome"}}})
    result = snakemake(tmp_path)
    assert result.returncode != 0
    assert "cohorts.gone.path: nope.csv not found" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


def test_formats_agree(tmp_path: Path) -> None:
    """CSV, TSV, gzipped CSV and Parquet of one table give the same standardised cohort."""
    frame = good()
    paths = {
        "csv": tmp_path / "c.csv",
        "tsv": tmp_path / "c.tsv",
        "gz": tmp_path / "c.csv.gz",
        "txt": tmp_path / "c.txt",
        "parquet": tmp_path / "c.parquet",
    }
    frame.to_csv(paths["csv"], index=False)
    frame.to_csv(paths["tsv"], index=False, sep="\t")
    frame.to_csv(paths["txt"], index=False, sep="\t")
    with gzip.open(paths["gz"], "wt") as fh:
        frame.to_csv(fh, index=False)
    frame.to_parquet(paths["parquet"], index=False)
    cohorts = {k: load_cohort(k, _spec(p, {}), {}) for k, p in paths.items()}
    ref = cohorts["csv"]
    assert ref.X.shape == (60, 4)
    assert ref.X.dtype == np.float32  # standardised in float64, stored as float32
    np.testing.assert_allclose(ref.X.astype(np.float64).mean(axis=0), 0, atol=1e-7)
    np.testing.assert_allclose(ref.X.astype(np.float64).std(axis=0), 1, atol=1e-6)
    for c in cohorts.values():
        np.testing.assert_allclose(c.X, ref.X, atol=1e-9)
        np.testing.assert_array_equal(c.y, ref.y)
        assert c.features == ref.features and c.classes == ["class_A", "class_B"]


def test_preprocess_options(tmp_path: Path) -> None:
    frame = _with(_with(_with(good(), _nan), _const), _text)
    path = tmp_path / "mixed.csv"
    write_csv(frame, path)
    spec = _spec(path, {})
    dropped = load_cohort("m", spec, {"missing": "drop-rows", "categorical": "onehot"})
    assert dropped.X.shape[0] == 59 and dropped.dropped["rows_missing"] == 1
    assert "f3" in dropped.dropped["constant"] and "f3" not in dropped.features
    assert "f2=low" in dropped.features and dropped.dropped["categorical_onehot"] == ["f2"]
    imputed = load_cohort("m", spec, {"missing": "impute-mean", "categorical": "onehot"})
    assert imputed.X.shape[0] == 60 and np.isfinite(imputed.X).all()
    # original means/sds are kept so effects can be reported in original units
    raw = frame["f0"].to_numpy()
    assert imputed.means[imputed.features.index("f0")] == pytest.approx(raw.mean())
    assert imputed.sds[imputed.features.index("f0")] == pytest.approx(raw.std())


def test_identical_columns_drop(tmp_path: Path) -> None:
    path = tmp_path / "twin.csv"
    write_csv(_with(good(), _twin), path)
    cohort = load_cohort("t", _spec(path, {}), {"duplicate": "drop"})
    assert cohort.dropped["duplicate"] == ["f3"] and "f3" not in cohort.features


def test_features_exclude_and_tasks(tmp_path: Path) -> None:
    frame = synthetic_cohort(n=90, p=5, classes=3, seed=3)
    frame["dose"] = np.linspace(0, 1, len(frame)) + 0.01 * np.arange(len(frame)) ** 1.5
    path = tmp_path / "multi.csv"
    write_csv(frame, path)
    cohort = load_cohort("m", _spec(path, {"exclude": ["f4", "dose"]}), {})
    assert cohort.task == "multiclass" and cohort.classes == ["class_A", "class_B", "class_C"]
    assert cohort.features == ["f0", "f1", "f2", "f3"]
    assert list(cohort.labels_table()["count"]) == [30, 30, 30]
    chosen = load_cohort("m", _spec(path, {"features": ["f0", "f1"]}), {})
    assert chosen.features == ["f0", "f1"]
    reg = load_cohort("r", {"path": str(path), "label": "dose", "exclude": ["outcome", "id"]}, {})
    assert reg.task == "regression" and reg.y.dtype == np.float64 and reg.classes == []
    with pytest.raises(InputError, match="task: binary"):
        load_cohort("b", _spec(path, {"task": "binary"}), {})


def test_positive_class_is_coded_last(tmp_path: Path) -> None:
    path = REPO / "resources" / "wdbc.csv"
    cohort = load_cohort(
        "wdbc", {"path": str(path), "label": "diagnosis", "id": "sample", "positive": "B"}, {}
    )
    assert cohort.classes == ["M", "B"]
    assert cohort.X.shape == (569, 30)
