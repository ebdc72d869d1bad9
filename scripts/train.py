"""Snakemake entry: train one chunk of the lambda path, batched over lambda (rule `train`)."""

import os

import numpy as np

from knockoffnet.network import net_from_arrays
from knockoffnet.path import train_path
from knockoffnet.runtime import rule_context, save_npz, training_inputs

with rule_context(snakemake) as log:
    U, y, cfg, seed, meta = training_inputs(snakemake)
    grid = np.load(snakemake.input.grid)
    start = None
    if cfg.start == "warm":
        with np.load(snakemake.input.dense) as dense:
            start = net_from_arrays(dict(dense), 0)
    lo, hi = snakemake.params.slice
    log.info(
        "SLURM_JOB_ID=%s CUDA_VISIBLE_DEVICES=%s; lambdas %d..%d of %d, %s start",
        os.environ.get("SLURM_JOB_ID", "none"),
        os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        lo,
        hi - 1,
        len(grid),
        cfg.start,
    )
    result = train_path(U, y, grid[lo:hi], cfg, seed, start=start, log=log.info)
    save_npz(snakemake.output[0], **result)
