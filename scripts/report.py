"""Snakemake entry: the self-contained HTML report (rule `report`)."""

from pathlib import Path

from knockoffnet.report import ResultFiles, render_report
from knockoffnet.runtime import rule_context

with rule_context(snakemake) as log:
    inp = snakemake.input
    files = ResultFiles.from_inputs(inp, snakemake.params.runs, snakemake.params.benchmark_root)
    # A simulated cohort's inputs add its truth and every replicate's scores of its design.
    truth = getattr(inp, "truth", None)
    render_report(
        files,
        {Path(f).stem: Path(f) for f in inp.figures},
        Path(snakemake.output[0]),
        truth=Path(truth) if truth else None,
        scores=[Path(f) for f in getattr(inp, "scores", [])],
    )
    log.info("report written to %s", snakemake.output[0])
