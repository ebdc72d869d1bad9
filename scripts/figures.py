"""Snakemake entry: the report's figures (rule `figures`)."""

import shutil
from pathlib import Path

from knockoffnet.report import make_figures
from knockoffnet.runtime import rule_context

with rule_context(snakemake) as log:
    results = Path(snakemake.input.run).parent
    out_dir = Path(snakemake.output[0]).parent
    made = make_figures(results, out_dir)
    for target in map(Path, snakemake.output):
        name = target.stem
        if name not in made:
            raise RuntimeError(f"figure {name} was not produced")
        if Path(made[name]).resolve() != target.resolve():
            shutil.copyfile(made[name], target)
    log.info("figures: %s", sorted(made))
