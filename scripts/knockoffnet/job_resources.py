"""What each job asks a cluster for: memory and wall time from the work it does (issue 16).

A fixed factor × input size asked a 100,000 × 1,000 cohort's training jobs for 23 GB and 38 h
each, which a real queue holds for days or refuses. Here each rule's request follows a small
model of its work — rows n, features p, covariates c, knockoff copies κ, network widths, λ per
job, epochs — with constants measured by ``benchmarks/bench_scale.py`` (the benchmark table
sets the requests beside the measured peak RSS and wall time). Memory is what the job holds
(the arrays of issue 16's out-of-core layout plus the interpreter and its libraries); time is
the typical case (training: early stopping after about 4 × patience passes), and each retry
of a TIMEOUT or OUT_OF_MEMORY job multiplies both by its attempt number.

Pure functions of a :class:`Shape` and the config: the workflow reads the shape from the
cohort's ``meta.json`` once ingest has written it (Snakemake evaluates the request when the
job is ready), and ingest's own from the input files.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knockoffnet.coupling import COUPLED_EPOCHS, COUPLED_PATIENCE
from knockoffnet.filters import resolve_copies
from knockoffnet.vocabulary import (
    dense_coupling,
    dense_decays,
    fit_epochs,
    lambda_count,
    reference_rows,
    training_rows,
)

MB = 1e-6  # bytes → MB
# Resident memory of a fresh interpreter with the rule family's libraries (measured: the
# smallest cohorts' jobs: 574 MB for a 25,000 × 1,000 train job holding 200 MB of [X, X~];
# benchmarks/README.md "Scale").
BASE_MB = {"data": 250, "torch": 500, "report": 350}
# Sustained float32 FLOP rate of one CPU thread in mini-batch training, counted as 6 FLOPs
# per first-layer weight and training row and 2 per validation row: a validation check of
# the default-setting runs at 25,000 / 50,000 / 100,000 × 1,000 took 1.19 / 1.25 / 1.42 s for
# 4.2 / 4.5 / 5.1·10¹⁰ FLOPs, i.e. 3.5–3.6·10¹⁰ (benchmarks/README.md, "Requests against
# the measured jobs").
FLOPS_PER_THREAD = 3.5e10
# What each training thread beyond the first adds, as a fraction of the first's speed: a
# single seed's grid job at 100,000 × 1,000 on 2 threads ran its λ check at 1.56× and its
# dense fit at 1.14–1.54× one thread's speed (benchmarks/README.md, "Two threads for the
# grid job"); the single-λ train step 1.13×. Counting threads as fully additive would ask
# for less time than such a job takes.
THREAD_GAIN = 0.5
# Beyond this many bytes of first-layer weights (float32) a step streams them from memory
# rather than cache, at about half the rate: a 2,000 × 20,000 table (40,000 inputs × 5
# channels × 32 units, 26 MB) trained at 3.5 s a check for 1.9·10¹⁰ FLOP/s (2026-12-04).
CACHED_WEIGHT_BYTES = 8 * 2**20
# Sustained float64 rate of one thread in the knockoff job's dense linear algebra (Gram
# matrix, Cholesky factors and solves, the draw's GEMMs; measured at 20,000 × 10,000).
DENSE_FLOPS_PER_THREAD = 3.5e10
# (p, p) float64 matrices a knockoff draw holds at its peak (tracemalloc: 6.3 per-feature,
# about 9 with group knockoffs, whose S solver whitens by group; tests/test_moments.py).
P2_MATRICES = {False: 6.5, True: 9.5}
# Smallest runtime request, minutes: SLURM's unit of wall time.
MIN_RUNTIME = 1
# Seconds added to every job's runtime for what its measured wall time does not include:
# Snakemake's own start inside a cluster job (1.7 s for this workflow's DAG here) and a
# busier node's file system. The measured walls already include the interpreter, the
# imports (torch: 2.4 s) and reading the inputs.
SETUP_SECONDS = 10.0
# A λ ends `patience` checks after its best one; in the default-setting benchmark runs the
# best came 1–83 checks in at patience 20, so a λ took 21–103 checks: a `train` job asks
# for LONGEST_PATIENCES × patience + LONGEST_EXTRA checks per λ (125 at the defaults). Five
# patiences covered those runs, not the same 100,000-row job on a day the machine ran 1.5×
# slower (234 and 236 s against 3 minutes asked; 4 minutes now).
LONGEST_PATIENCES, LONGEST_EXTRA = 6, 5
# Averaged over a whole grid the λ took 55–61 checks at patience 20 (20-value grids at
# 25,000, 50,000 and 100,000 × 1,000): a job holding the whole grid asks for the longest λ
# once and MEAN_PATIENCES × patience checks for each of the others (a chunk of the grid,
# which may hold only long λ, asks for the longest of each).
MEAN_PATIENCES = 3
# The `lambda_grid` job (dense fit, six batched probes, three refining ones) took 259–335
# checks' worth of time at patience 20: it asks for GRID_PATIENCES × patience checks, at
# most GRID_FITS × max_epochs (each of its ten fits stops by max_epochs).
GRID_PATIENCES, GRID_FITS = 17, 10
# Each decayed candidate of the dense fit (`training.dense_decay`) trains besides the
# undecayed one counted above: 20-163 checks at decay 10 in the simulation study (n = 1,000,
# patience 20) and 23 at 100,000 × 1,000, so DECAYED_PATIENCES × patience checks each.
DECAYED_PATIENCES = 9
# The gradient-boosting reference inside `lambda_grid` (scikit-learn's defaults, 100
# boosting rounds) costs per input column about 8 ms plus 0.6 µs per training row on one
# thread: 27 s for 9,995 rows × 2,001 inputs, 88 s for 1,600 × 10,000, 197 s for 1,600 ×
# 20,000, 336 s for 1,000 × 40,000 (2026-12-04; scores.reference_rows sets the rows). It
# builds its histograms on the job's threads: 144 s for 1,600 × 40,000 on two (2026-12-05).
REFERENCE_SECONDS_PER_INPUT, REFERENCE_SECONDS_PER_VALUE = 0.010, 0.6e-6
# Reduce Weight's fits (retraining.train_network and compare_predictions, whose defaults
# tests/test_job_resources.py holds these to): mini-batches of 64 rows, an inner validation
# fifth, patience 10, a quarter of the compared rows held out per repeat.
PRUNE_BATCH, PRUNE_VAL, PRUNE_PATIENCE, PRUNE_TEST = 64, 0.2, 10, 0.25
# Epochs of an early-stopped fit, averaged over a selection's 31 fits: 11.3–23.0 over seven
# selections (2,000 and 20,000 rows, 17 to 20,000 inputs; 2026-12-05), the most where few
# inputs meet many rows: 2 × patience + 3.
PRUNE_EPOCHS = 2 * PRUNE_PATIENCE + 3
# A fit's step: PyTorch's dispatch of a small network's forward, backward and Adam update
# (0.21–0.27 ms a step at 24–200 inputs, one thread), then 6 FLOPs per weight and row at
# PRUNE_FLOPS (5.4·10¹⁰ measured at 1,000 inputs, 6.3 at 5,000, 7.2 at 20,000).
PRUNE_STEP_SECONDS, PRUNE_FLOPS = 0.25e-3, 5.0e10
# Rate at which the data jobs read, convert and write X (ingest read 100,000 × 1,000 in 6.5 s,
# about 3.7 GB a minute; a slower shared file system is allowed for).
READ_MB_PER_MIN = 1000.0
# Selection, figures and report took 0.4, 3.5 and 1.4 s at p = 1,000 and 1.0, 2.8 and
# 1.5 s at p = 20,000 (a table, 2026-12-05): start-up, not the features, sets their time;
# 1 ms a feature keeps them at a minute up to p = 50,000 (10 ms asked 4 minutes at 20,000).
TABLE_SECONDS_PER_FEATURE = 0.001


@dataclass(frozen=True)
class Shape:
    """Rows, features and covariates of a cohort as the jobs see it."""

    n: int
    p: int
    covariates: int = 0
    genome: bool = False  # chromosomes known (PLINK): blocks keep the genome order

    def x_mb(self) -> float:
        """X as float32."""
        return self.n * self.p * 4 * MB


# Rows a table's size estimate reads (at most HEAD_BYTES): rows of a 20,000-column table
# differ in length by a few per cent, and two of them put n 15 % low.
HEAD_ROWS, HEAD_BYTES = 64, 64 << 20


def shape_from_meta(path: str | Path) -> Shape:
    """The shape ingest recorded (``data/meta.json``)."""
    meta = json.loads(Path(path).read_text())
    genome = bool((meta.get("variants") or {}).get("chromosome"))
    return Shape(int(meta["n"]), int(meta["p"]), len(meta.get("covariates") or []), genome)


def _count_lines(path: str | Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def shape_from_files(files: list[str]) -> Shape:
    """Ingest's shape before it runs: PLINK from the .fam and .bim line counts; a table from
    its size (rows estimated from the first MB; columns from the header line). A file that
    cannot be read this way (ingest will say why) is sized by its bytes; a missing one raises
    FileNotFoundError, which makes Snakemake wait for it."""
    try:
        return _shape_from_files(files)
    except FileNotFoundError:
        raise
    except Exception:  # any unreadable input: ingest reports it, not the DAG
        size = sum(os.path.getsize(f) for f in files)
        return Shape(max(1, size // 8), 1)


def _shape_from_files(files: list[str]) -> Shape:
    if any(str(f).endswith(".bed") for f in files):
        fam = next(f for f in files if str(f).endswith(".fam"))
        bim = next(f for f in files if str(f).endswith(".bim"))
        return Shape(_count_lines(fam), _count_lines(bim), genome=True)
    path = Path(files[0])
    size = os.path.getsize(path)
    if path.suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        return Shape(int(meta.num_rows), int(meta.num_columns))
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:  # MBs until HEAD_ROWS rows: a wide table's MB holds two
        head = fh.read(1 << 20)
        while head.count(b"\n") < HEAD_ROWS and len(head) < HEAD_BYTES:
            more = fh.read(1 << 20)
            if not more:
                break
            head += more
    lines = head.split(b"\n")
    sep = b"\t" if b"\t" in lines[0] else b","
    p = lines[0].count(sep) + 1
    full = max(1, len(lines) - 2)  # the header and a possibly cut last line
    per_row = max(1.0, (len(head) - len(lines[0])) / full)
    ratio = 4.0 if path.suffix == ".gz" else 1.0  # compressed text: about 4× smaller
    return Shape(max(1, int(size * ratio / per_row)), p)


def _copies(cfg: dict[str, Any], shape: Shape) -> int:
    """κ as the knockoff job will resolve it (``auto`` depends on p)."""
    ko = cfg["knockoffs"]
    return resolve_copies(ko["copies"], shape.p, ko["method"], cfg["selection"]["statistic"])


def _epochs(cfg: dict[str, Any], shape: Shape) -> tuple[int, int]:
    """(patience, max_epochs) the cohort's fits use: ``auto`` resolved from its training
    rows, as the trainer resolves it (:func:`knockoffnet.vocabulary.fit_epochs`)."""
    t = cfg["training"]
    return fit_epochs(t["patience"], t["max_epochs"], training_rows(shape.n, t["val_fraction"]))


def _training(cfg: dict[str, Any], shape: Shape) -> tuple[int, int, int, int]:
    """(inputs d, channels per input, first hidden width, rows per mini-batch)."""
    kappa = _copies(cfg, shape)
    d = (kappa + 1) * shape.p + shape.covariates
    t = cfg["training"]
    m = training_rows(shape.n, t["val_fraction"])
    batch = int(t["batch_size"]) or min(m, 2048)
    return d, int(cfg["network"]["units"]) + 1, int(cfg["network"]["hidden"][0]), min(batch, m)


def _reference_values(cfg: dict[str, Any], shape: Shape) -> int:
    """Training values (rows × inputs) the gradient-boosting reference is fitted on."""
    if cfg["training"].get("reference") == "none":
        return 0
    d = _training(cfg, shape)[0]
    train = training_rows(shape.n, cfg["training"]["val_fraction"])
    return reference_rows(train, d) * d


def _joint_draws(shape: Shape, cfg: dict[str, Any]) -> tuple[int, int]:
    """(features of the widest joint draw, number of joint draws): all p at once, or the
    blocks of ``knockoffs.sampling: blocks`` (:mod:`knockoffnet.knockoff_blocks`; the job
    cuts them at chromosome changes too, which only makes them smaller)."""
    from knockoffnet.knockoffs import resolve_sampling

    ko = cfg["knockoffs"]
    if resolve_sampling(ko.get("sampling", "auto"), shape.p, ko["method"]) == "full":
        return shape.p, 1
    parts = math.ceil(shape.p / int(ko["max_block"]))
    return math.ceil(shape.p / parts), parts


def _order_cost(shape: Shape, cfg: dict[str, Any]) -> tuple[float, float]:
    """(MB, FLOPs) of the correlation links a block-wise draw of a table orders its blocks
    by (:func:`knockoffnet.knockoff_blocks.correlation_links`); (0, 0) otherwise."""
    from knockoffnet.knockoff_blocks import ORDER_CHUNK_BYTES, ORDER_ROWS, needs_links

    ko = cfg["knockoffs"]
    chromosomes = ["1"] * shape.p if shape.genome else None
    how = ko.get("block_order", "auto")
    if not needs_links(ko.get("sampling", "auto"), ko["method"], how, shape.p, chromosomes):
        return 0.0, 0.0
    rows = min(shape.n, ORDER_ROWS)
    # the rows' mapped pages and their float32 copy; a chunk's product, |·|, scaled copy
    # and int64 top-k indices (measured 764 MB at 2,000 × 20,000, 131 MB of it imports)
    memory = 2 * rows * shape.p * 4 * MB + 6 * ORDER_CHUNK_BYTES * MB
    return memory, 2.0 * rows * shape.p**2


def n_lambdas(cfg: dict[str, Any], shape: Shape | None = None) -> int:
    return lambda_count(cfg["training"]["lambdas"], shape.n if shape else None)


def memory_mb(rule: str, shape: Shape, cfg: dict[str, Any]) -> int:
    """Peak resident memory (MB) the rule's job needs for a cohort of this shape."""
    X = shape.x_mb()
    kappa = _copies(cfg, shape)
    p = shape.p
    if rule == "ingest":
        if shape.genome:  # bed-reader's column blocks, then X as float32
            return _mb(BASE_MB["data"] + 3.0 * X)
        # pandas parses a table into float64 columns and converts them (measured 2.9 times
        # the float64 values above the imports at 2,000 × 20,000)
        return _mb(BASE_MB["data"] + 3.5 * 2 * X)
    grouped = cfg["knockoffs"]["groups"] != "none"
    if rule == "groups":
        if not grouped:  # labels only, X is not read: the imports (208 MB measured at b2ace42)
            return _mb(BASE_MB["data"])
        width = _joint_draws(shape, cfg)[0]  # a block-wise draw clusters block by block
        # scipy's clustering and pandas on top of the imports; X's pages mapped
        return _mb(BASE_MB["data"] + X + 24 * width * width * MB)
    if rule == "correlation_links":  # the order's rows and chunks; X itself is mapped
        return _mb(BASE_MB["data"] + _order_cost(shape, cfg)[0])  # 208 MB with no links
    if rule == "knockoffs":
        from knockoffnet.knockoffs import diagnostic_rows

        width, parts = _joint_draws(shape, cfg)
        block = min(width, int(cfg["knockoffs"]["max_block"]))
        return _mb(
            BASE_MB["data"]
            + (1 + kappa) * X  # X and the draw, float32
            + (0 if parts == 1 else (1 + kappa) * shape.n * width * 4 * MB)  # a block's copies
            + 200  # row blocks of the sampler and the moments (32 MB each)
            + 24 * 8 * block * block * MB  # S solver on the largest block
            + P2_MATRICES[grouped] * width * width * 8 * MB  # Σ, Σ⁻¹S, factors, covariances
            + 3 * diagnostic_rows(shape.n, width) * width * 4 * MB  # diagnostics' sample
        )
    if rule in ("lambda_grid", "train", "collect_z"):
        d, ch, h, batch = _training(cfg, shape)
        U = shape.n * d * 4 * MB
        # one λ pass: a few (Λ, rows, d, units + 1) tensors, at most PASS_BUDGET values each;
        # Λ = the grid's 6 probes (lambda_grid), the job's λ (train) or one network
        lam = {"lambda_grid": 6, "train": _lambdas_per_job(cfg, shape)}.get(rule, 1)
        act = min(2**25, max(batch, 2048) * d * ch * lam) * 4 * MB
        if rule == "lambda_grid":  # the probes train as one batch of 6 whatever its size:
            # its input expansion, units, their gradient and the layer input, four such
            act = max(act, 4 / 3 * batch * d * ch * lam * 4 * MB)
        # the gradient-boosting reference's training values, float32 and float64
        extra = 12 * _reference_values(cfg, shape) * MB if rule == "lambda_grid" else 0.0
        if rule == "collect_z":  # validation scores and importances, by blocks of rows:
            # measured 0.53 GB above [X, X~] at 20,000 × 1,000; at 100,000 × 1,000 the same
            # job on the same inputs peaked at 1.66-2.53 GB over 14 runs (one more [X, X~]
            # for about a second, in 4 of them: C-heap fragmentation between row blocks,
            # fixed in f07f571 but kept covered until more runs show it gone), so one more U
            extra = 450.0 + U
        # three pass-sized tensors; a job holding a whole grid's passes peaks higher (2,000 ×
        # 200, all 20 λ in one job: 934-1,021 MB over five runs, against 951 asked with three)
        tensors = 4.0 if rule == "train" and lam > 1 else 3.0
        # [X, X~] once (the split is taken in place), a few activation tensors, Adam's state
        return _mb(BASE_MB["torch"] + U + tensors * act + extra + 16 * h * d * ch * lam * MB)
    if rule == "prune":
        rows = min(shape.n, int(cfg["pruning"]["max_rows"]))
        R = rows * p * 4 * MB  # the compared rows, float32 (X itself is mapped, not read)
        # the parent and two forked workers, summed as SLURM's accounting sums their RSS (the
        # pages they share counted per process): the parent holds the imports and the rows,
        # each worker those pages again plus its fits' copies of a split (summed 1,154 MB at
        # 2,000 × 200 and 1,774-1,789 at 100,000 × 1,000, 20,000 rows compared)
        return _mb(BASE_MB["torch"] + 2 * R + 2 * (380 + 3.5 * R))
    if rule == "select_features":
        # the runs' per-feature tables, and one run's Z file read whole at a time: its first
        # layer's Z (float64) and weights (float32) per channel, and per input (Z and W)
        d, ch, h, _ = _training(cfg, shape)
        z_file = h * d * (12 * ch + 16) * MB  # 97 MB at 20,000 features, 4 units, 32 hidden
        return _mb(BASE_MB["data"] + z_file + 2 * p * int(cfg["training"]["seeds"]) * 8 * MB * 100)
    if rule == "provenance":  # hashes the inputs in chunks
        return _mb(BASE_MB["data"])
    # figures and report: the result tables (a few float64 columns per feature); the figures
    # job also holds matplotlib's canvases (measured at p = 1,000: 322–327 and 235–242 MB; at
    # p = 20,000: 375 and 266 MB, about 3 and 1.5 kB a feature above the imports)
    plots = 100 if rule == "figures" else 0
    return _mb(BASE_MB["report"] + plots + 200 * p * 8 * MB * 2)


def runtime_min(
    rule: str,
    shape: Shape,
    cfg: dict[str, Any],
    threads: int = 1,
    selections: list[int] | None = None,
) -> int:
    """Wall minutes the rule's job may take, from above: the longest λ early stopping gave
    on the benchmark cohorts, not the typical one (a retry multiplies it). ``selections``:
    the sizes of the distinct feature sets `prune` compares (:func:`selection_sizes`)."""
    X = shape.x_mb()
    t = cfg["training"]
    if rule in ("lambda_grid", "train"):
        check = seconds_per_check(shape, cfg, threads)
        patience, cap = _epochs(cfg, shape)
        if rule == "lambda_grid":
            d = _training(cfg, shape)[0]
            # each of the ten fits stops after patience + 1 checks at the earliest; with a
            # short patience they run to a small max_epochs (a 2,000 × 20,000 table at
            # patience 2, max_epochs 6: 57 λ-checks), a few checks past patience + 1
            checks = max(GRID_PATIENCES * patience, GRID_FITS * min(cap, patience + 4))
            seconds = min(checks, GRID_FITS * cap) * check
            rule_step = (t.get("optimizer", "adam"), t.get("learning_rate"))
            decays = dense_decays(t.get("dense_decay", 0.0), *rule_step)
            decayed = sum(d > 0 for d in decays)
            rows = training_rows(shape.n, t["val_fraction"])
            coupling = dense_coupling(t.get("dense_coupling", "auto"), rows, rule_step[0])
            if coupling == "none":
                seconds += decayed * min(cap, DECAYED_PATIENCES * patience) * check
            else:  # every candidate waits longer and runs to a longer cap (coupling.py)
                wait = math.ceil(COUPLED_PATIENCE * patience)
                extra = len(decays) * (wait - patience) + decayed * COUPLED_EPOCHS * cap
                seconds += extra * check
            values = _reference_values(cfg, shape)
            reference = REFERENCE_SECONDS_PER_INPUT * d * (values > 0)
            reference += REFERENCE_SECONDS_PER_VALUE * values
            seconds += reference / max(1, threads)
        else:
            lam = _lambdas_per_job(cfg, shape)
            longest = min(cap, LONGEST_PATIENCES * patience + LONGEST_EXTRA)
            checks = lam * longest
            if lam > 1 and lam >= n_lambdas(cfg, shape):  # a whole grid: its λ average out
                checks = longest + (lam - 1) * min(cap, MEAN_PATIENCES * patience)
            seconds = checks * check
    elif rule == "collect_z":  # importances and effects: a few gradient passes
        d, ch, h, _ = _training(cfg, shape)
        seconds = 8 * 6.0 * shape.n * d * ch * h / (FLOPS_PER_THREAD * max(1, threads))
    elif rule == "prune":
        seconds = prune_seconds(shape, cfg, threads, selections)
    elif rule == "knockoffs":
        from knockoffnet.knockoffs import diagnostic_rows

        n = shape.n
        w, parts = _joint_draws(shape, cfg)  # each joint draw over w features
        block = min(w, int(cfg["knockoffs"]["max_block"]))
        flops = parts * (
            math.ceil(w / block) * 40 * block**3  # S solver, block by block
            + 7 * w**3  # Cholesky factors, solves and the feasibility eigenvalue on all w
            + 6 * n * w**2  # Gram matrix, then the draw's two GEMMs (mean and noise)
            + 6 * diagnostic_rows(n, w) * w**2  # the checks' cross-covariances
        )
        seconds = flops / (DENSE_FLOPS_PER_THREAD * max(1, threads))
    elif rule == "groups" and cfg["knockoffs"]["groups"] == "none":
        seconds = 0.0  # labels only: X is not read
    elif rule in ("ingest", "groups", "provenance"):  # reading (hashing), converting, writing X
        seconds = 60.0 * X / READ_MB_PER_MIN
    elif rule == "correlation_links":  # the order's correlations (the rows read are few)
        seconds = _order_cost(shape, cfg)[1] / (DENSE_FLOPS_PER_THREAD * max(1, threads))
    else:  # selection, figures, report: tables of a few values per feature and run
        seconds = TABLE_SECONDS_PER_FEATURE * shape.p
    return _minutes((SETUP_SECONDS + seconds) / 60.0)


def prune_seconds(
    shape: Shape, cfg: dict[str, Any], threads: int = 1, selections: list[int] | None = None
) -> float:
    """Reduce Weight's fits: per distinct selection (and the all-features baseline), 3
    networks × repeats on the compared rows, spread over ``threads`` worker processes, then
    the final network on all of them. Their steps are mini-batches of small networks, so a
    step's fixed cost counts as much as its arithmetic (a 24-feature selection took longer
    than all 1,000 features at 100,000 × 1,000). Unknown selections: every feature, twice."""
    pr = cfg["pruning"]
    rows = min(shape.n, int(pr["max_rows"]))
    sizes = [shape.p, shape.p] if selections is None else list(selections)
    hidden = [int(u) for u in cfg["network"]["hidden"]]
    epochs = min(int(pr["max_epochs"]), PRUNE_EPOCHS)
    fits = 3 * int(pr["repeats"])
    workers = max(1, min(int(threads), fits))
    compared = math.ceil(rows * (1 - PRUNE_TEST) * (1 - PRUNE_VAL) / PRUNE_BATCH)
    final = math.ceil(rows * (1 - PRUNE_VAL) / PRUNE_BATCH)
    seconds = 0.0
    for d in sizes:
        weights = sum(a * b for a, b in zip([d, *hidden], [*hidden, 1], strict=True))
        step = PRUNE_STEP_SECONDS + 6.0 * PRUNE_BATCH * weights / PRUNE_FLOPS
        seconds += epochs * step * (fits * compared / workers + final)
    return seconds


def selection_sizes(path: str | Path, p: int) -> list[int]:
    """Sizes of the distinct feature sets `prune` fits (a set two filters share is fitted
    once), and p for its all-features baseline, from ``selected.tsv``."""
    import csv

    sets: dict[str, set[str]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            sets.setdefault(row["filter"], set()).add(row["feature"])
    return [len(s) for s in {frozenset(s) for s in sets.values()}] + [p]


def seconds_per_check(shape: Shape, cfg: dict[str, Any], threads: int = 1) -> float:
    """One validation check of training: ``check_rows`` training rows (a pass over the
    training rows when they are fewer), 6 FLOPs per first-layer weight and row (forward and
    backward dominate), then a pass over the validation rows at 2 FLOPs per weight and row."""
    d, ch, h, _ = _training(cfg, shape)
    t = cfg["training"]
    m = shape.n * (1.0 - float(t["val_fraction"]))
    check = int(t.get("check_rows", 0))
    rows = min(m, check) if check > 0 else m
    val = shape.n - m
    weights = d * ch * h
    rate = FLOPS_PER_THREAD * (1.0 if weights * 4 <= CACHED_WEIGHT_BYTES else 0.5)
    return (6.0 * rows + 2.0 * val) * weights / (rate * thread_speedup(threads))


def thread_speedup(threads: int) -> float:
    """Training's speed on ``threads`` threads relative to one (sub-linear, THREAD_GAIN)."""
    return 1.0 + THREAD_GAIN * (max(1, int(threads)) - 1)


# Work (seconds) a `train` job should do at least when lambdas_per_job is auto: start-up
# (imports, reading [X, X~]) costs a few seconds a job.
MIN_JOB_SECONDS = 60.0


def seconds_per_lambda(shape: Shape, cfg: dict[str, Any], threads: int = 1) -> float:
    """Typical training seconds of one λ: about 4 × patience checks (an epoch: a pass over
    the training rows, or ``check_rows`` rows of a larger cohort)."""
    patience, cap = _epochs(cfg, shape)
    epochs = min(cap, 4 * patience)
    return epochs * seconds_per_check(shape, cfg, threads)


def auto_lambdas_per_job(shape: Shape, cfg: dict[str, Any], threads: int = 1) -> int:
    """λ per job so that each job trains about MIN_JOB_SECONDS or more: the whole grid for a
    small cohort (one job per path, as 0), fewer per job as the cohort grows, so a large
    cohort's path spreads over nodes while no job is mostly start-up.

    ``training.device: cuda`` trains the whole grid in one job at any size: a GPU step is
    bound by dispatching its few hundred small operators, not by arithmetic, so 20 λ batched
    cost what one does (H200, p = 1,000: 2.07 against 2.14 ms a step; benchmarks/README.md,
    "GPU"), while 20 one-λ jobs would cost 20 times as much.
    """
    if str(cfg["training"].get("device", "auto")).startswith("cuda"):
        return n_lambdas(cfg, shape)
    per = seconds_per_lambda(shape, cfg, threads)
    return int(min(n_lambdas(cfg, shape), max(1, math.ceil(MIN_JOB_SECONDS / max(per, 1e-9)))))


def _lambdas_per_job(cfg: dict[str, Any], shape: Shape | None = None) -> int:
    per_job = cfg["training"]["lambdas_per_job"]
    if per_job == "auto":
        return auto_lambdas_per_job(shape, cfg) if shape else n_lambdas(cfg)
    count = n_lambdas(cfg, shape)
    return count if int(per_job) == 0 else min(int(per_job), count)


def _mb(value: float) -> int:
    return math.ceil(max(value, 200.0))


def _minutes(value: float) -> int:
    return math.ceil(max(value, MIN_RUNTIME))
