"""Plumbing shared by the thin Snakemake entry scripts: logging, errors, atomic writes.

Every entry script does ``with rule_context(snakemake) as log: ...``. Inside, stderr and the
``logging`` module go to the rule's ``log:`` file; an :class:`InputError` is written to the log
*and* to the terminal as one plain sentence (no traceback) and the job exits 1, so Snakemake
removes the job's outputs and nothing half-finished is left behind. Thread limits need nothing
here: Snakemake sets OMP_NUM_THREADS, MKL_NUM_THREADS and the like to the rule's ``threads``
in the job's environment before the script (and NumPy) starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knockoffnet.errors import InputError

if TYPE_CHECKING:  # the trainer imports torch, which data-family jobs never load
    from knockoffnet.train_config import TrainConfig


@contextlib.contextmanager
def rule_context(smk: Any) -> Iterator[logging.Logger]:
    """Route logs to the rule's log file; turn InputError into a clean non-zero exit."""
    log_path = Path(str(smk.log[0])) if len(smk.log) else None
    terminal = sys.stderr
    handle = open(log_path, "w") if log_path else None
    if handle is not None:
        sys.stderr = handle
    logger = logging.getLogger("knockoffnet")
    logger.handlers.clear()
    h = logging.StreamHandler(handle or terminal)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(h)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if "SLURM_JOB_ID" in os.environ:  # which cluster job ran it (grouped jobs share one)
        logger.info("SLURM_JOB_ID=%s", os.environ["SLURM_JOB_ID"])
    try:
        yield logger
    except InputError as err:
        message = f"knockoffnet error in rule {smk.rule}: {err}"
        logger.error(message)
        print(message, file=terminal)
        _close(handle, terminal)
        sys.exit(1)
    except Exception:
        logger.error("unexpected failure:\n%s", traceback.format_exc())
        print(f"knockoffnet: rule {smk.rule} failed unexpectedly; see {log_path}", file=terminal)
        _close(handle, terminal)
        raise
    logger.info("peak memory: %s", peak_memory())
    _close(handle, terminal)


def peak_memory() -> str:
    """The kernel's high-water mark of this process's RSS and of its finished children's (the
    prune workers): exact, where Snakemake's benchmark samples every 30 s after the first 15 s
    and misses short peaks."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return f"{own:.0f} MB (largest child process {children:.0f} MB)"


def _close(handle: Any, terminal: Any) -> None:
    sys.stderr = terminal
    if handle is not None:
        handle.flush()
        handle.close()


def atomic_path(path: str | Path) -> Path:
    """A temporary sibling path; rename it onto ``path`` once fully written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    return Path(tmp)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """Write a .npy atomically (a killed job never leaves a truncated array)."""
    tmp = atomic_path(path)
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write an uncompressed .npz atomically (memory-mappable members, no pickles)."""
    tmp = atomic_path(path)
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def save_json(path: str | Path, obj: Any) -> None:
    tmp = atomic_path(path)
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def save_tsv(path: str | Path, frame: Any) -> None:
    tmp = atomic_path(path)
    frame.to_csv(tmp, sep="\t", index=False)
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def training_inputs(smk: Any) -> tuple[np.ndarray, np.ndarray, Any, int, dict]:
    """(U = [X, X~] float32, y, TrainConfig, run seed, meta) for a training-family rule.

    ``params.network`` and ``params.training`` hold only the keys that change a fit (the
    workflow leaves out seeds, draws, threads and job sizes, so adding a seed reruns nothing
    else); ``params.seed`` is the run's seed, derived by the workflow.
    """
    meta = json.loads(Path(smk.input.meta).read_text())
    y = np.load(smk.input.y)
    C = np.load(smk.input.C)  # covariates: adjusted for (unpenalised inputs), never tested
    U = load_columns([smk.input.X, smk.input.Xk, C])
    cfg = train_config(
        smk.params.network, smk.params.training, meta, int(C.shape[1]), int(smk.threads)
    )
    return U, y, cfg, int(smk.params.seed), meta


def train_config(
    network: dict, training: dict, meta: dict, covariates: int, threads: int
) -> TrainConfig:
    """The TrainConfig of a cohort (``meta.json``) from the config's network and training
    blocks: the one translation of config keys into the trainer's settings."""
    from knockoffnet.train_config import TrainConfig

    return TrainConfig(
        hidden=tuple(network["hidden"]),
        activation=network["activation"],
        units=int(network["units"]),
        task=meta["task"],
        n_classes=max(2, len(meta["classes"])),
        threads=threads,
        covariates=covariates,
        **{key: training[key] for key in FIT_KEYS},
        # rule lambda_grid's params carry the dense fit's decay only when non-zero
        # (common.smk, grid_params); the other jobs never fit the dense network
        dense_decay=training.get("dense_decay", 0.0),
        dense_coupling=training.get("dense_coupling", "auto"),
        features=len(meta.get("features", ())),  # 0 where a caller has no feature list
        # in the params of a cohort that can be a regression only (common.smk, fit_params)
        outcome_scale=training.get("outcome_scale", "standardised"),
    )


def import_from(directory: str) -> None:
    """Put ``directory`` first on the PYTHONPATH the workflow's jobs inherit.

    PYTHONPATH precedes site-packages, where an editable install may point at another
    checkout of this project (Snakemake only appends the script's own directory), so a
    study run from a second checkout would otherwise import the first one's code.
    """
    current = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (directory, current) if p)


def _npy_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of an open ``.npy`` file, left at its data."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def load_columns(parts: list[str | Path | np.ndarray], block_rows: int = 8192) -> np.ndarray:
    """[A | B | …] as one float32 array, each ``.npy`` file read a block of rows at a time
    straight into its columns: the job holds one copy of the matrix it trains on, not the
    files' arrays beside it (nor a float64 version of either)."""
    shapes = []
    for part in parts:
        if isinstance(part, np.ndarray):
            shapes.append(part.shape)
            continue
        with open(part, "rb") as fh:
            shape, _, _ = _npy_header(fh)
        shapes.append(shape)
        if len(shape) != 2:
            raise ValueError(f"{part}: expected a 2-D array, got shape {shape}")
    rows = {s[0] for s in shapes}
    if len(rows) != 1:
        raise ValueError(f"row counts differ between {parts}: {[s[0] for s in shapes]}")
    n = rows.pop()
    U = np.empty((n, sum(s[1] for s in shapes)), dtype=np.float32)
    col = 0
    for part, (_, width) in zip(parts, shapes, strict=True):
        target = U[:, col : col + width]
        col += width
        if isinstance(part, np.ndarray):
            target[:] = part
            continue
        with open(part, "rb") as fh:
            _, fortran, dtype = _npy_header(fh)
            if fortran:  # column-major (an older X.npy): rows are strided, copy through a map
                mapped = np.load(part, mmap_mode="r")
                for start in range(0, n, block_rows):
                    target[start : start + block_rows] = mapped[start : start + block_rows]
                del mapped
                continue
            for start in range(0, n, block_rows):
                count = min(block_rows, n - start)
                block = np.fromfile(fh, dtype=dtype, count=count * width)
                target[start : start + count] = block.reshape(count, width)
    return U


# The training keys that change a fitted path (and so are the training rules' params).
FIT_KEYS = (
    "val_fraction",
    "patience",
    "max_epochs",
    "batch_size",
    "check_rows",
    "learning_rate",
    "optimizer",
    "momentum",
    "penalty",
    "start",
    "min_improvement",
    "device",
)
