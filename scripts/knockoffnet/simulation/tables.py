"""The study in tables: Markdown for docs/validation.md, CSV files, diagnostics summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.simulation.scoring import fit_summary


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no optional `tabulate` dependency)."""

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return "–" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def study_table(summary: pd.DataFrame, replicates: pd.DataFrame, q: float) -> pd.DataFrame:
    """One row per (design, filter) at level q: FDR and power as 'mean ± se', R replicates."""
    part = summary[np.isclose(summary["q"], q)]
    counts = replicates.groupby("design")["replicate"].nunique()

    def pm(m: float, s: float) -> str:
        if math.isnan(m):
            return "–"
        return f"{m:.3f}" if math.isnan(s) else f"{m:.3f} ± {s:.3f}"

    return pd.DataFrame(
        {
            "design": part["design"],
            "R": part["design"].map(counts).astype(int),
            "filter": part["filter"],
            "FDR": [pm(m, s) for m, s in zip(part["fdp_mean"], part["fdp_se"], strict=True)],
            "power": [pm(m, s) for m, s in zip(part["power_mean"], part["power_se"], strict=True)],
        }
    )


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a CSV atomically (a killed job never leaves a half-written table)."""
    from knockoffnet.runtime import atomic_path

    tmp = atomic_path(path)
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def diagnostics_summary(diagnostics: pd.DataFrame) -> pd.DataFrame:
    """Per design: share of knockoff draws the diagnostics flagged, the largest skewness gap,
    the smallest swap-test p-value and one flagged message (what a user would have read)."""
    rows = []
    for design, part in diagnostics.groupby("design", sort=False):
        flagged = part[part["flag"].astype(str).str.lower() == "true"]
        rows.append(
            {
                "design": design,
                "draws": len(part),
                "flagged": len(flagged),
                "max_skew_gap": float(part["max_skew_gap"].max()),
                "min_swap_pvalue": float(part["swap_pvalue"].min()),
                "message": str(flagged["message"].iloc[0]) if len(flagged) else "",
            }
        )
    return pd.DataFrame(rows)


def study_markdown(
    summary: pd.DataFrame,
    replicates: pd.DataFrame,
    check: pd.DataFrame,
    diagnostics: pd.DataFrame,
    designs: dict[str, Any],
    q: float,
    fits: pd.DataFrame | None = None,
) -> str:
    """The study in Markdown, ready to paste into docs/validation.md: designs, the table at
    level q, the acceptance check over the whole q grid and the knockoff diagnostics."""
    spec = pd.DataFrame(
        [
            {
                "design": name,
                "generator": d["generator"],
                "n": d["n"],
                "params": ", ".join(f"{k}={v}" for k, v in d["params"].items()) or "defaults",
                "fdr_check": d["fdr_check"],
            }
            for name, d in designs.items()
        ]
    )
    failed = check[~check["holds"]]
    verdict = (
        "holds in every cell"
        if failed.empty
        else f"fails in {len(failed)} of {len(check)} cells (listed below)"
    )
    parts = [
        "### Designs",
        "",
        markdown_table(spec),
        "",
        f"### FDR and power at q = {q:g} (mean ± standard error over R replicates)",
        "",
        markdown_table(study_table(summary, replicates, q)),
        "",
        "### Acceptance check: mean FDP ≤ q + 2 se (OL, ML, ebh; designs with fdr_check)",
        "",
        f"Over q ∈ {sorted(check['q'].unique().tolist())}: {verdict}.",
        "",
    ]
    if not failed.empty:
        parts += [markdown_table(failed), ""]
    if fits is not None and len(fits):
        fs = fit_summary(fits)
        table = pd.DataFrame(
            {
                "design": fs["design"],
                "metric": fs["metric"],
                **{
                    col: [
                        f"{m:.3f} ± {e:.3f}" if np.isfinite(m) else "–"
                        for m, e in zip(fs[f"{col}_mean"], fs[f"{col}_se"], strict=True)
                    ]
                    for col in (
                        "dense",
                        "chosen",
                        "reference",
                        "dense_gap",
                        "chosen_gap",
                        "decayed",
                    )
                },
            }
        )
        parts += [
            "### Did the network learn? Validation score (mean ± se over replicates)",
            "",
            "dense: the seed's network fitted without penalty; chosen: the λ the statistics "
            "read; reference: histogram gradient boosting on the same training rows of [X, X~]; "
            "gaps are network − reference; decayed: the share of runs whose dense fit kept a "
            "weight decay (training.dense_decay).",
            "",
            markdown_table(table),
            "",
        ]
    diag = diagnostics_summary(diagnostics)
    parts += ["### Knockoff diagnostics (draws flagged by the exchangeability checks)", ""]
    parts += [markdown_table(diag), ""]
    return "\n".join(parts)
