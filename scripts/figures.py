"""Snakemake entry: the report's figures (rule `figures`)."""

import shutil
from pathlib import Path

from knockoffnet.report import ResultFiles, make_figures
from knockoffnet.runtime import rule_context

with rule_context(snakemake) as log:
    inp = snakemake.input
    files = ResultFiles(
        statistics=Path(inp.statistics),
        thresholds=Path(inp.thresholds),
        selected=Path(inp.selected),
        features=Path(inp.features),
        meta=Path(inp.meta),
        run=Path(inp.run),
        labels=Path(inp.labels),
        paths=tuple(
            (d, s, Path(f)) for (d, s), f in zip(snakemake.params.runs, inp.paths, strict=True)
        ),
        structure=Path(inp.structure),
        masks=Path(inp.masks),
    )
    out_dir = Path(snakemake.output[0]).parent
    made = make_figures(files, out_dir)
    for target in map(Path, snakemake.output):
        name = target.stem
        if name not in made:
            raise RuntimeError(f"figure {name} was not produced")
        if Path(made[name]).resolve() != target.resolve():
            shutil.copyfile(made[name], target)
    log.info("figures: %s", sorted(made))
