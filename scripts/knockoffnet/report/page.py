"""Self-contained HTML report for one cohort: context assembly and Jinja2 rendering.

Every figure is embedded as a base64 PNG and all CSS is inline: the HTML opens offline and
can be mailed as one file. It reads only the files its rule declares (``ResultFiles``).
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from knockoffnet.plotting import DPI
from knockoffnet.report.figures import effect_axis_label, manhattan_statistic
from knockoffnet.report.format import DASH, MINUS, fmt_int
from knockoffnet.report.method_sections import (
    _method,
    _preprocessing,
    learning_check,
    simulation_context,
)
from knockoffnet.report.network_figure import load_masks, masks_label
from knockoffnet.report.results import ResultFiles, Results, load_results, run_label
from knockoffnet.report.run_sections import _diagnostics, _provenance, _pruning
from knockoffnet.report.selection_sections import (
    _all_features,
    _labels,
    _selection_context,
    _summary_sentences,
    _threshold_summary,
    group_text,
    smallest_selection,
)
from knockoffnet.vocabulary import FIGURES, FILTER_NAMES, GUARANTEE

CSS_PX_PER_INCH = 118  # every figure is shown at the same scale, so fonts match across figures


def _img(path: Path | None) -> dict[str, Any] | None:
    """Inline PNG plus its display width, so 1 figure inch is the same size on every figure."""
    if path is None or not Path(path).exists():
        return None
    data = Path(path).read_bytes()
    width_px = int.from_bytes(data[16:20], "big") if data[:8] == b"\x89PNG\r\n\x1a\n" else 0
    return {
        "src": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
        "width": round(width_px * CSS_PX_PER_INCH / DPI) if width_px else None,
    }


def build_context(
    res: Results,
    figures: dict[str, Path],
    simulation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """All values the template shows, already formatted (the template only lays them out);
    `simulation` is simulation_context()'s result for a simulated cohort, else None."""
    meta = res.meta
    cls = res.classes
    return {
        "cohort": meta.get("cohort") or DASH,
        "source": meta.get("source", DASH),
        "n": fmt_int(meta.get("n")),
        "p": fmt_int(meta.get("p", len(res.features))),
        "task": meta.get("task", DASH),
        "label": meta.get("label", DASH),
        "classes": cls,
        "labels": _labels(res),
        "positive": cls[1] if meta.get("task") == "binary" and len(cls) == 2 else None,
        "preprocessing": _preprocessing(meta),
        "method": _method(res),
        "learning": learning_check(res),
        "statistic": res.config.get("selection", {}).get("statistic", "paper"),
        "q": f"{res.q:g}",
        "need": smallest_selection(res),
        "copies": res.copies,
        "offset": res.offset,
        "recommended": res.recommended,
        "recommended_name": FILTER_NAMES.get(res.recommended, res.recommended),
        "recommended_guarantee": GUARANTEE.get(res.recommended, ""),
        "sentences": _summary_sentences(res),
        "recommended_groups": group_text(
            res, res.selected[res.selected["filter"] == res.recommended]
        ),
        "recommended_notes": _threshold_summary(res, res.recommended)["notes"],
        "reference_run": run_label(*res.runs[0]) if res.runs else DASH,
        "n_runs": len(res.runs),
        "selection": _selection_context(res),
        "all_features": _all_features(res),
        "n_features": len(res.features),
        "genotypes": bool(res.meta.get("variants")),
        "manhattan_statistic": manhattan_statistic(res),
        "effect_label": effect_axis_label(res),
        "diagnostics": _diagnostics(res),
        "pruning": _pruning(res),
        "provenance": _provenance(res),
        "img": {name: _img(figures.get(name)) for name in [*FIGURES, "fdr_power"]},
        "network_drawn": load_masks(res, res.recommended) is not None,
        "network_label": masks_label(res, res.recommended),
        "simulation": simulation,
        "minus": MINUS,
    }


def _template() -> jinja2.Template:
    text = resources.files(__package__).joinpath("templates/report.html.j2").read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
    )
    return env.from_string(text)


def render_report(
    files: ResultFiles | Path,
    figures: dict[str, Path],
    out_html: Path,
    truth: Path | None = None,
    scores: list[Path] | None = None,
) -> None:
    """Render results/{cohort}/report.html from ``files`` (a ResultFiles or a results folder).

    A simulated cohort passes its truth JSON and the score CSVs of every replicate of its
    design, which add the 'against the known truth' table.
    """
    res = load_results(files)
    simulation = None
    if truth is not None:
        frames = [pd.read_csv(f) for f in scores or []]
        if not frames:
            raise ValueError(f"truth {truth} given without the design's score files")
        table = pd.concat(frames, ignore_index=True)
        simulation = simulation_context(res, json.loads(Path(truth).read_text()), table)
    figs = {k: Path(v) for k, v in figures.items()}
    html = _template().render(**build_context(res, figs, simulation))
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
