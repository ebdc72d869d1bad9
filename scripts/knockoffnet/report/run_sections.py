"""The report's sections on the run itself: knockoff diagnostics, Reduce Weight's
comparison, job benchmarks and provenance."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from knockoffnet.report.format import (
    DASH,
    _as_bool,
    _as_float,
    fmt_freq,
    fmt_int,
    fmt_num,
    fmt_pm,
    fmt_q,
    fmt_seconds,
)
from knockoffnet.report.results import Results


def _diagnostics(res: Results) -> dict[str, Any]:
    d = res.diagnostics
    cols = [
        "mean_s",
        "min_s",
        "max_dev_xx",
        "max_dev_kk",
        "max_dev_xk",
        "mean_abs_pair_corr",
        "swap_stat",
    ]
    rows = []
    for _, r in d.iterrows():
        row = {c: fmt_num(r.get(c)) for c in cols}
        method = str(r.get("method", DASH))
        if r.get("sampling") == "blocks":  # say that and what the cuts leave out
            method += (
                f", {int(r.get('blocks'))} blocks (largest cross-block |corr| "
                f"{fmt_num(r.get('max_cross_block_corr'))})"
            )
        row.update(
            draw=str(r.get("draw", DASH)),
            method=method,
            s_method=str(r.get("s_method", DASH)),
            covariance=str(r.get("covariance", DASH)),
            swap_pvalue=fmt_q(r.get("swap_pvalue")),
            flag=bool(r.get("flag", False)),
        )
        rows.append(row)
    warnings = [
        {
            "draw": str(r.get("draw")),
            "message": str(
                r.get("message")
                or "The diagnostics flagged this draw: exchangeability may be violated."
            ),
        }
        for _, r in d.iterrows()
        if bool(r.get("flag", False))
    ]
    return {"rows": rows, "warnings": warnings}


def _pruning(res: Results) -> dict[str, Any] | None:
    """Reduce Weight tables, or None when the prune rule did not run ('not run' in the page)."""
    if res.summary is None and res.structure is None and res.prediction is None:
        return None
    out: dict[str, Any] = {"summary": [], "structure": [], "prediction": [], "detail": []}
    if res.summary is not None:
        out["summary"] = [_pruning_size(r) for _, r in res.summary.iterrows()]
    if res.structure is not None:
        out["structure"], out["detail"] = _pruning_structure(res.structure, res.recommended)
    if res.prediction is not None:
        out["prediction"] = _prediction_rows(res.prediction)
    n = res.meta.get("n")
    used = res.summary["rows"].dropna() if res.summary is not None and "rows" in res.summary else []
    out["rows_note"] = ""
    if len(used) and n and int(used.max()) < int(n):
        out["rows_note"] = (
            f"The comparison and the exported networks used a stratified random {int(used.max()):,} "
            f"of the {int(n):,} rows (pruning.max_rows): more rows would cost time, not precision."
        )
    return out


def _pruning_size(r: pd.Series) -> dict[str, str]:
    row = {
        k: f"{fmt_int(r[f'{k}_before'])} → {fmt_int(r[f'{k}_after'])}"
        for k in ("weights", "neurons", "flops")
    }
    before = r["weights_before"]
    row["reduction"] = fmt_freq(1 - r["weights_after"] / before) if before else DASH
    return {"filter": str(r["filter"]), **row}


def _pruning_structure(
    structure: pd.DataFrame, recommended: str
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Per (filter, hidden layer) totals, and the paper's Table 10 for the recommended filter."""
    s = structure.copy()
    s["neuron_removed"] = _as_bool(s["neuron_removed"])
    agg = s.groupby(["filter", "layer"], sort=False).agg(
        neurons=("neuron", "size"),
        removed=("neuron_removed", "sum"),
        in_kept=("incoming_kept", "sum"),
        in_removed=("incoming_removed", "sum"),
    )
    totals = [
        {"filter": str(f), "layer": _one_based(lay)}
        | {k: fmt_int(r[k]) for k in ("neurons", "removed", "in_kept", "in_removed")}
        for (f, lay), r in agg.iterrows()
    ]
    detail = []
    for _, r in s[s["filter"] == recommended].iterrows():
        row = {k: fmt_int(r[k]) for k in r.index if k.startswith(("incoming", "outgoing"))}
        row |= {"layer": _one_based(r["layer"]), "neuron": _one_based(r["neuron"])}
        row["neuron_removed"] = "yes" if r["neuron_removed"] else ""
        detail.append(row)
    return totals, detail


def _prediction_rows(pred: pd.DataFrame) -> list[dict[str, Any]]:
    """mean ± sd cells; the filter name is shown once per group of methods."""
    rows, prev = [], None
    for _, r in pred.iterrows():
        rows.append(
            {
                "first": r["filter"] != prev,
                "filter": str(r["filter"]),
                "method": str(r["method"]),
                "n": fmt_int(r.get("n_features")),
                "accuracy": fmt_pm(r.get("accuracy_mean"), r.get("accuracy_sd")),
                "auc": fmt_pm(r.get("auc_mean"), r.get("auc_sd")),
                "f1": fmt_pm(r.get("f1_mean"), r.get("f1_sd")),
                "seconds": fmt_pm(r.get("seconds_mean"), r.get("seconds_sd")),
            }
        )
        prev = r["filter"]
    return rows


def _one_based(v: Any) -> str:
    """structure.tsv numbers layers and neurons from 0; readers (and the paper) count from 1."""
    try:
        return str(int(v) + 1)
    except (TypeError, ValueError):
        return str(v)


def summarise_benchmarks(files: Sequence[Path], root: Path | None) -> list[dict[str, str]]:
    """Per rule: jobs, total and max wall time, peak RSS (MB) from Snakemake benchmark files;
    the rule is the folder below ``root`` (or the file's name directly under it)."""
    if not files or root is None:
        return []
    frames = []
    for f in sorted(map(Path, files)):
        rel = f.relative_to(root)
        rule = rel.parts[0] if len(rel.parts) > 1 else f.stem
        try:
            df = pd.read_csv(f, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        frames.append(
            pd.DataFrame(
                {
                    "rule": rule,
                    "s": _as_float(df.get("s", pd.Series())),
                    "rss": _as_float(df.get("max_rss", pd.Series())),
                }
            )
        )
    if not frames:
        return []
    df = pd.concat(frames, ignore_index=True)
    agg = df.groupby("rule", sort=False).agg(
        jobs=("s", "size"), total=("s", "sum"), longest=("s", "max"), rss=("rss", "max")
    )
    rows = [
        {
            "rule": rule,
            "jobs": fmt_int(r["jobs"]),
            "total": fmt_seconds(r["total"]),
            "longest": fmt_seconds(r["longest"]),
            "rss": fmt_num(r["rss"]),
        }
        for rule, r in agg.sort_values("total", ascending=False).iterrows()
    ]
    rows.append(
        {
            "rule": "all rules",
            "jobs": fmt_int(agg["jobs"].sum()),
            "total": fmt_seconds(agg["total"].sum()),
            "longest": fmt_seconds(agg["longest"].max()),
            "rss": fmt_num(agg["rss"].max()),
        }
    )
    return rows


def _pretty(obj: Any) -> str:
    """YAML reads best for a config; JSON is the fallback when PyYAML is absent."""
    try:
        import yaml

        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=None)
    except ImportError:
        return json.dumps(obj, indent=2, ensure_ascii=False)


def _provenance(res: Results) -> dict[str, Any]:
    run = res.run
    return {
        "config": _pretty(res.config) if res.config else "",
        "versions": sorted((run.get("versions") or {}).items()),
        "git_commit": run.get("git_commit") or "not recorded (not a git checkout?)",
        "inputs": sorted((run.get("inputs") or {}).items()),
        "seeds": _pretty(run.get("seeds")) if run.get("seeds") else "",
        "created": run.get("created") or DASH,
        "benchmarks": summarise_benchmarks(res.files.benchmarks, res.files.benchmark_root),
    }
