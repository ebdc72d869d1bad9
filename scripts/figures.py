"""Snakemake entry: the report's figures (rule `figures`)."""

import shutil
from pathlib import Path

from knockoffnet.report import ResultFiles, make_figures
from knockoffnet.runtime import rule_context

with rule_context(snakemake) as log:
    files = ResultFiles.from_inputs(snakemake.input, snakemake.params.runs)
    made = make_figures(files, Path(snakemake.output[0]).parent)
    for target in map(Path, snakemake.output):
        if target.stem not in made:
            raise RuntimeError(f"figure {target.stem} was not produced")
        if Path(made[target.stem]).resolve() != target.resolve():
            shutil.copyfile(made[target.stem], target)
    log.info("figures: %s", sorted(made))
