"""Plumbing shared by the thin Snakemake entry scripts: logging, errors, threads.

Every entry script does ``with rule_context(snakemake) as log: ...``. Inside, stderr and the
``logging`` module go to the rule's ``log:`` file; an :class:`InputError` is written to the log
*and* to the terminal as one plain sentence (no traceback) and the job exits 1, so Snakemake
removes the job's outputs and nothing half-finished is left behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import traceback
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from knockoffnet.errors import InputError


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
    threads = int(getattr(smk, "threads", 1) or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
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
    _close(handle, terminal)


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


def derive_seed(master: int, *parts: str | int) -> int:
    """A 32-bit seed for one job, from the master seed and the job's identity.

    SeedSequence mixes the parts so neighbouring draws/seeds get unrelated streams, and the
    result depends only on the config, never on job order or the machine.
    """
    words = [int(master)] + [
        int(p) if isinstance(p, int) else zlib.crc32(str(p).encode()) for p in parts
    ]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def training_inputs(smk: Any) -> tuple[np.ndarray, np.ndarray, Any, int, dict]:
    """(U = [X, X~] float32, y, TrainConfig, torch seed, meta) for a training-family rule."""
    from knockoffnet.path import TrainConfig

    meta = json.loads(Path(smk.input.meta).read_text())
    X = np.load(smk.input.X)
    Xk = np.load(smk.input.Xk)
    y = np.load(smk.input.y)
    U = np.hstack([X.astype(np.float32), Xk.astype(np.float32)])
    params = smk.params.train
    t = params["training"]
    cfg = TrainConfig(
        hidden=tuple(params["network"]["hidden"]),
        activation=params["network"]["activation"],
        units=int(params["network"]["units"]),
        task=meta["task"],
        n_classes=max(2, len(meta["classes"])),
        val_fraction=t["val_fraction"],
        patience=t["patience"],
        max_epochs=t["max_epochs"],
        batch_size=t["batch_size"],
        learning_rate=t["learning_rate"],
        optimizer=t["optimizer"],
        momentum=t["momentum"],
        penalty=t["penalty"],
        start=t["start"],
        min_improvement=t["min_improvement"],
        device=t["device"],
        threads=int(smk.threads),
    )
    seed = derive_seed(
        params["seed"],
        "train",
        smk.wildcards.cohort,
        int(smk.wildcards.draw),
        int(smk.wildcards.seed),
    )
    return U, y, cfg, seed, meta
