"""Snakemake entry: the seed's dense fit, its λ grid and the reference score (rule `lambda_grid`)."""

from knockoffnet.network import net_from_arrays
from knockoffnet.path import dense_fit, lambda_grid, split_indices
from knockoffnet.runtime import rule_context, save_npy, save_npz, training_inputs
from knockoffnet.scores import reference_score

with rule_context(snakemake) as log:
    U, y, cfg, seed, meta = training_inputs(snakemake)
    spec = snakemake.params.training
    dense = dense_fit(U, y, cfg, seed, log=log.info)
    start = net_from_arrays(dense, 0) if cfg.start == "warm" else None
    grid = lambda_grid(
        U,
        y,
        cfg,
        seed,
        count=spec["lambdas"]["count"],
        ratio=spec["lambdas"]["ratio"],
        values=spec["lambdas"]["values"],
        start=start,
        log=log.info,
    )
    train, val = split_indices(y, cfg, seed)
    reference = reference_score(
        U, y, train, val, cfg.task, seed, spec["reference"], threads=cfg.threads
    )
    log.info("reference (%s) validation score: %.4f", spec["reference"], reference)
    save_npy(snakemake.output.grid, grid)
    save_npz(snakemake.output.dense, reference_score=reference, **dense)
