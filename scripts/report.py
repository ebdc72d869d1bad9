"""Snakemake entry: the self-contained HTML report (rule `report`)."""

from pathlib import Path

from knockoffnet.report import render_report
from knockoffnet.runtime import rule_context

with rule_context(snakemake) as log:
    results = Path(snakemake.input.run).parent
    figures = {Path(f).stem: Path(f) for f in snakemake.input.figures}
    # A simulated cohort's inputs add its truth and every replicate's scores of its design.
    truth = getattr(snakemake.input, "truth", None)
    render_report(
        results,
        figures,
        Path(snakemake.output[0]),
        benchmarks_dir=results / "benchmarks",
        truth=Path(truth) if truth else None,
        scores=[Path(f) for f in getattr(snakemake.input, "scores", [])],
    )
    log.info("report written to %s", snakemake.output[0])
