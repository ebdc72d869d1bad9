"""Snakemake entry: replicate table, summary, acceptance check and plots (rule
`simulate_summary`)."""

from pathlib import Path

import pandas as pd

from knockoffnet.runtime import rule_context
from knockoffnet.simulation.plots import fig_fdr_power, plot_power_minus_fdr
from knockoffnet.simulation.scoring import REPLICATE_COLUMNS, fdr_check, fit_summary, summarise
from knockoffnet.simulation.tables import study_markdown, write_csv

with rule_context(snakemake) as log:
    designs = dict(snakemake.params.designs)
    replicates = pd.concat(map(pd.read_csv, snakemake.input.scores), ignore_index=True)
    replicates = replicates[REPLICATE_COLUMNS]
    summary = summarise(replicates)
    checked = [d for d, spec in designs.items() if spec["fdr_check"]]
    check = fdr_check(summary, checked)

    rows = []
    for path, (design, replicate) in zip(
        snakemake.input.diagnostics, snakemake.params.diagnostic_ids, strict=True
    ):
        frame = pd.read_csv(path, sep="\t")
        frame.insert(0, "replicate", int(replicate))
        frame.insert(0, "design", design)
        rows.append(frame)
    diagnostics = pd.concat(rows, ignore_index=True)
    fits = pd.concat(map(pd.read_csv, snakemake.input.fits), ignore_index=True)

    write_csv(snakemake.output.replicates, replicates)
    write_csv(snakemake.output.summary, summary)
    write_csv(snakemake.output.diagnostics, diagnostics)
    write_csv(snakemake.output.check, check)
    write_csv(snakemake.output.fit, fit_summary(fits))
    markdown = study_markdown(
        summary, replicates, check, diagnostics, designs, snakemake.params.table_q, fits
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
