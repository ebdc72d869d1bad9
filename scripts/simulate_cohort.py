"""Snakemake entry: one simulated cohort and its truth (rule `simulate_cohort`)."""

import numpy as np

from knockoffnet.runtime import rule_context, save_json, save_npy
from knockoffnet.simulation.generators import generate, latent_score, true_groups
from knockoffnet.simulation.tables import write_csv

with rule_context(snakemake) as log:
    design = snakemake.wildcards.design
    replicate = int(snakemake.wildcards.replicate)
    spec = dict(snakemake.params.spec)
    seed = int(snakemake.params.seed)
    frame, relevant = generate(spec["generator"], spec["n"], seed, dict(spec["params"]))
    y = frame["y"].to_numpy()
    counts = (
        {str(k): int(v) for k, v in zip(*np.unique(y, return_counts=True), strict=True)}
        if np.issubdtype(y.dtype, np.integer)
        else None
    )
    write_csv(snakemake.output.csv, frame)
    save_npy(snakemake.output.latent, latent_score(frame))
    save_json(
        snakemake.output.truth,
        {
            "design": design,
            "replicate": replicate,
            "generator": spec["generator"],
            "params": dict(spec["params"]),
            "n": int(frame.shape[0]),
            "p": int(frame.shape[1] - 2),
            "seed": seed,
            "relevant": relevant,
            # x1..xp's true blocks (generator blocks), else null
            "groups": true_groups(spec["generator"], dict(spec["params"])),
            "class_counts": counts,
        },
    )
    log.info(
        "%s rep %d: %s n=%d p=%d, %d relevant, class counts %s",
        design,
        replicate,
        spec["generator"],
        frame.shape[0],
        frame.shape[1] - 2,
        len(relevant),
        counts,
    )
