"""Snakemake entry: train one chunk of the lambda path, batched over lambda (rule `train`)."""

import os

import numpy as np

from knockoffnet.path import train_path
from knockoffnet.runtime import rule_context, save_npz, training_inputs

with rule_context(snakemake) as log:
    U, y, cfg, seed, meta = training_inputs(snakemake)
    grid = np.load(snakemake.input.grid)
    start, stop = snakemake.params.slice
    log.info(
        "SLURM_JOB_ID=%s CUDA_VISIBLE_DEVICES=%s; lambdas %d..%d of %d",
        os.environ.get("SLURM_JOB_ID", "none"),
        os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        start,
        stop - 1,
        len(grid),
    )
    result = train_path(U, y, grid[start:stop], cfg, seed, log=log.info)
    save_npz(snakemake.output[0], **result)
