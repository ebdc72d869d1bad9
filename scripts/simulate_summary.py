"""Snakemake entry: replicate table, summary, acceptance check and plots (rule
`simulate_summary`)."""

import re
from pathlib import Path

import pandas as pd

from knockoffnet.report import fig_fdr_power
from knockoffnet.runtime import rule_context
from knockoffnet.simulation import (
    REPLICATE_COLUMNS,
    fdr_check,
    plot_power_minus_fdr,
    study_markdown,
    summarise,
    write_csv,
)

with rule_context(snakemake) as log:
    designs = dict(snakemake.params.designs)
    replicates = pd.concat(map(pd.read_csv, snakemake.input.scores), ignore_index=True)
    replicates = replicates[REPLICATE_COLUMNS]
    summary = summarise(replicates)
    checked = [d for d, spec in designs.items() if spec["fdr_check"]]
    check = fdr_check(summary, checked)

    rows = []
    for path in snakemake.input.diagnostics:
        design, replicate = re.search(r"results/sim_([^/_]+)_(\d+)/", path).groups()
        frame = pd.read_csv(path, sep="\t")
        frame.insert(0, "replicate", int(replicate))
        frame.insert(0, "design", design)
        rows.append(frame)
    diagnostics = pd.concat(rows, ignore_index=True)

    write_csv(snakemake.output.replicates, replicates)
    write_csv(snakemake.output.summary, summary)
    write_csv(snakemake.output.diagnostics, diagnostics)
    write_csv(snakemake.output.check, check)
    markdown = study_markdown(
        summary, replicates, check, diagnostics, designs, snakemake.params.table_q
    )
    with open(snakemake.output.markdown, "w") as fh:
        fh.write(markdown)
    fig_fdr_power(summary, Path(snakemake.output.fdr_power))
    plot_power_minus_fdr(summary, snakemake.output.power_minus_fdr)
    failed = check[~check["holds"]]
    log.info(
        "%d replicates, %d designs; FDR check failed in %d of %d cells",
        len(replicates.groupby(["design", "replicate"])),
        replicates["design"].nunique(),
        len(failed),
        len(check),
    )
