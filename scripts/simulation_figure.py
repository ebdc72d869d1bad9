"""Snakemake entry: a simulated cohort's FDR-and-power figure (rule `simulation_figure`): the
design's mean ± se over all its replicates, this replicate's own values marked."""

from pathlib import Path

import pandas as pd

from knockoffnet.runtime import rule_context
from knockoffnet.simulation.plots import fig_fdr_power
from knockoffnet.simulation.scoring import REPLICATE_COLUMNS, summarise

with rule_context(snakemake) as log:
    scores = pd.concat(map(pd.read_csv, snakemake.input.scores), ignore_index=True)
    scores = scores[REPLICATE_COLUMNS]
    mine = scores[scores["replicate"] == int(snakemake.wildcards.replicate)]
    fig_fdr_power(summarise(scores), Path(snakemake.output[0]), replicate=mine)
    log.info(
        "FDR/power figure of %s over %d replicates", snakemake.wildcards.design,
        scores["replicate"].nunique(),
    )  # fmt: skip
