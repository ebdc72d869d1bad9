"""Snakemake entry: a simulated genotype cohort as a PLINK fileset and phenotype table
(rule `simulate_plink`, designs with `format: plink`)."""

import pandas as pd

from knockoffnet.genotypes import write_plink
from knockoffnet.runtime import rule_context

with rule_context(snakemake) as log:
    frame = pd.read_csv(snakemake.input.csv)
    variants = [c for c in frame.columns if c not in ("id", "y")]
    prefix = snakemake.output.bed.removesuffix(".bed")
    write_plink(prefix, frame[variants].to_numpy(), frame["id"].astype(str).tolist(), variants)
    pd.DataFrame({"IID": frame["id"].astype(str), "y": frame["y"]}).to_csv(
        snakemake.output.pheno, sep="\t", index=False
    )
    log.info("%s: %d samples x %d variants", prefix, frame.shape[0], len(variants))
