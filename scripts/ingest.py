"""Snakemake entry: validate and standardise a cohort (rule `ingest`)."""

from knockoffnet.ingest import load_cohort, min_class_rows
from knockoffnet.runtime import rule_context, save_json, save_npy, save_tsv

with rule_context(snakemake) as log:
    cohort = load_cohort(
        snakemake.wildcards.cohort,
        dict(snakemake.params.spec),
        dict(snakemake.params.preprocess),
        min_per_class=min_class_rows(snakemake.params.val_fraction),
        knockoff_method=snakemake.params.knockoff_method,
    )
    log.info(
        "cohort %s: n=%d, p=%d, covariates=%s, task=%s, classes=%s, dropped=%s",
        cohort.name,
        cohort.X.shape[0],
        cohort.X.shape[1],
        cohort.covariates,
        cohort.task,
        cohort.classes,
        cohort.dropped,
    )
    save_npy(snakemake.output.X, cohort.X)
    save_npy(snakemake.output.y, cohort.y)
    save_npy(snakemake.output.C, cohort.C)
    save_tsv(snakemake.output.labels, cohort.labels_table())
    save_json(snakemake.output.meta, cohort.meta())
