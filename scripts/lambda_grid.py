"""Snakemake entry: the data-driven lambda grid of one (draw, seed) (rule `lambda_grid`)."""

from knockoffnet.path import lambda_grid
from knockoffnet.runtime import rule_context, save_npy, training_inputs

with rule_context(snakemake) as log:
    U, y, cfg, seed, meta = training_inputs(snakemake)
    spec = snakemake.params.train["training"]["lambdas"]
    grid = lambda_grid(
        U,
        y,
        cfg,
        seed,
        count=spec["count"],
        ratio=spec["ratio"],
        values=spec["values"],
        log=log.info,
    )
    log.info("lambda grid: %d values from %.4g down to %.4g", len(grid), grid[0], grid[-1])
    save_npy(snakemake.output[0], grid)
