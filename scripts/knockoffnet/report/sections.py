"""The report's page sections as plain values (the template only lays them out)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.report.format import (
    DASH,
    MINUS,
    _as_bool,
    _as_float,
    _missing,
    fmt_freq,
    fmt_int,
    fmt_num,
    fmt_pm,
    fmt_q,
    fmt_seconds,
    fmt_signed,
)
from knockoffnet.report.results import Results, ebh_settings, run_label, run_threshold
from knockoffnet.simulation.scoring import fdp_power, summarise
from knockoffnet.vocabulary import FILTER_NAMES, FILTERS, GUARANTEE


def _direction(res: Results, sign: str, effect: float = float("nan")) -> str:
    """Plain words for ``features.tsv``'s ``direction`` (see
    :func:`knockoffnet.selection.effect_direction`); binary cohorts name the class whose odds
    go up."""
    sign = str(sign).replace("-", MINUS).strip()
    cls = res.classes
    binary = res.meta.get("task") == "binary" and len(cls) == 2
    if sign == "+":
        return (
            f"higher values go with higher odds of '{cls[1]}'"
            if binary
            else "higher values go with a higher network output"
        )
    if sign == MINUS:
        return (
            f"higher values go with higher odds of '{cls[0]}'"
            if binary
            else "higher values go with a lower network output"
        )
    if sign == "±":
        return "its effect differs between the classes (no single direction)"
    if effect == 0:
        return "not used by the network at the chosen λ in any run"
    return "no consistent direction over runs (their effects differ in sign, or some do not use it)"


def _feature_row(res: Results, flt: str, sel_row: pd.Series) -> dict[str, str]:
    f = res.features.set_index("feature")
    fr = f.loc[sel_row["feature"]] if sel_row["feature"] in f.index else pd.Series(dtype=object)
    direction = str(fr.get("direction", "0")).replace("-", MINUS)
    return {
        "feature": str(sel_row["feature"]),
        "direction": direction,
        "direction_text": _direction(res, direction, float(fr.get("effect_sd", np.nan))),
        "W": fmt_num(sel_row.get("W")),
        "frequency": fmt_freq(sel_row.get("frequency")),
        "qvalue": fmt_q(sel_row.get("qvalue")),
        "evalue": fmt_num(fr.get("evalue")),
        "effect_sd": fmt_signed(fr.get("effect_sd")),
        "effect_spread": fmt_num(fr.get("effect_sd_spread"), 2),
        "effect_unit": fmt_signed(fr.get("effect_unit")),
    }


def _threshold_summary(res: Results, flt: str) -> dict[str, Any]:
    """How T behaved: per-run for OL/ML, one aggregated value for VWA / e-BH."""
    t = res.thresholds[res.thresholds["filter"] == flt]
    published = t[t["scope"] == "filter"] if "scope" in t else t.iloc[:0]
    if "scope" in t:
        t = t[t["scope"] == "run"] if flt in ("OL", "ML") else published
    n_inf = int(np.isinf(t["T"]).sum())
    if flt in ("OL", "ML") and res.runs:
        finite = t["T"][np.isfinite(t["T"])]
        if len(published):
            parts = [
                f"T of the published statistic ({res.combine_text}) = "
                f"{fmt_num(published['T'].iloc[0])}"
            ]
        else:
            ref = run_threshold(res, flt, res.runs[0])
            parts = [f"T in the reference run ({run_label(*res.runs[0])}) = {fmt_num(ref)}"]
        parts.append(
            f"single runs: T = ∞ in {n_inf} of {len(t)}"
            if n_inf
            else f"single runs: T finite in all {len(t)}"
        )
        if len(finite) > 1:
            parts.append(f"median finite T = {fmt_num(finite.median())}")
        parts.append(f"features selected per run: {_range(t['n_selected'])}")
        text = "; ".join(parts) + "."
    elif flt == "ebh" and len(t):
        text = f"e-BH threshold on the averaged e-values: {fmt_num(t['T'].iloc[0])}."
    elif len(t) and np.isfinite(t["T"].iloc[0]):
        text = f"Rule: keep features selected in at least {fmt_freq(t['T'].iloc[0])} of runs."
    else:
        text = ""
    return {"text": text, "notes": _grouped_notes(t)}


def _grouped_notes(t: pd.DataFrame, limit: int = 4) -> list[dict[str, str]]:
    """One line per distinct note, naming how many runs share it (notes repeat across runs)."""
    groups: dict[str, list[str]] = {}
    for run, note in zip(_row_runs(t), t["note"], strict=True):
        if note.strip():
            groups.setdefault(note.strip(), []).append(run)
    out = []
    for note, runs in list(groups.items())[:limit]:
        named = [r for r in runs if r]
        where = (
            "" if not named else named[0] if len(named) == 1 else f"{len(named)} of {len(t)} runs"
        )
        out.append({"run": where, "note": note})
    if len(groups) > limit:
        rest = sum(len(r) for r in list(groups.values())[limit:])
        out.append({"run": "", "note": f"… and {rest} more run(s) with a similar note."})
    return out


def _row_runs(t: pd.DataFrame) -> list[str]:
    out = []
    for d, s in zip(t["draw"], t["seed"], strict=True):
        out.append("" if _missing(d) or _missing(s) else run_label(int(d), int(s)))
    return out


def _range(s: pd.Series) -> str:
    s = pd.to_numeric(s, errors="coerce").dropna()
    if s.empty:
        return DASH
    lo, hi = int(s.min()), int(s.max())
    return str(lo) if lo == hi else f"{lo}{DASH}{hi}"


def smallest_selection(res: Results) -> int:
    """⌈1/q⌉, or about ⌈1/(κq)⌉ with κ knockoff copies: the smallest knockoff+ selection."""
    copies = res.copies
    return math.ceil(1 / (copies * res.q) - 1e-9) if res.q > 0 else 0


def _empty_text(res: Results, flt: str) -> str:
    """Why nothing was selected, in words, when the select rule left no note."""
    q = res.q
    if flt in ("VWA-OL", "VWA-ML", "VWA-OML"):
        return "No feature was selected often enough across runs to pass the vote."
    base = (
        f"No threshold T brought the estimated false discovery proportion down to "
        f"q = {q:g}, so T = ∞ and nothing is selected."
    )
    copies = res.copies
    if res.offset == 1 and copies == 1:
        base += (
            f" With knockoff+ at least ⌈1/q⌉ = {math.ceil(1 / q)} features must clearly beat "
            "their knockoffs before any can be selected; several knockoff copies "
            "(knockoffs.copies) lower that to about 1/(κq)."
        )
    elif res.offset == 1:
        base += (
            f" With {copies} knockoff copies at least about 1/(κq) = "
            f"{smallest_selection(res)} features must beat all their copies before "
            "any can be selected."
        )
    return base


def _sorted_selection(df: pd.DataFrame) -> pd.DataFrame:
    """Most reliable first: frequency, then q-value, then W."""
    return df.assign(
        _f=-_as_float(df["frequency"]), _q=_as_float(df["qvalue"]), _w=-_as_float(df["W"])
    ).sort_values(["_f", "_q", "_w"], kind="stable")


def _groups_method(res: Results, ko: dict) -> str:
    """The Knockoffs row's note on grouping ("" without groups)."""
    mode = str(ko.get("groups", "none"))
    f = res.features
    if mode == "none" or "group" not in f:
        return ""
    how = f"auto, |r| ≥ {ko.get('group_cutoff', 0.5):g}" if mode == "auto" else f"table {mode}"
    n_groups = f["group"].nunique()
    return (
        f"; group knockoffs ({how}): {len(f)} features in {n_groups} groups, "
        f"largest {int(f['group_size'].max())}; the filters select groups"
    )


def group_text(res: Results, rows: pd.DataFrame) -> str:
    """Each selected group as "group (size: member, member, …; together: direction)": the
    direction of the members raised together (``group_direction``), which a group has even
    when every run's network used other members of it."""
    f = res.features
    if "group" not in rows or "group_size" not in f or not (f["group_size"] > 1).any():
        return ""
    parts = []
    for group in dict.fromkeys(rows["group"].astype(str)):  # in the table's order
        in_group = f[f["group"].astype(str) == group]
        members = in_group["feature"].astype(str).tolist()
        together = ""
        if "group_direction" in in_group and len(in_group):
            first = in_group.iloc[0]
            sign = str(first["group_direction"])
            together = f"; together: {_direction(res, sign, float(first['group_effect_sd']))}"
        parts.append(f"{group} ({len(members)}: {', '.join(members)}{together})")
    return "; ".join(parts)


def _selection_context(res: Results) -> list[dict[str, Any]]:
    out = []
    for flt in FILTERS:
        rows = _sorted_selection(res.selected[res.selected["filter"] == flt])
        out.append(
            {
                "key": flt,
                "id": f"sel-{flt}",
                "name": FILTER_NAMES[flt],
                "recommended": flt == res.recommended,
                "guarantee": GUARANTEE[flt],
                "rows": [_feature_row(res, flt, r) for _, r in rows.iterrows()],
                "groups": group_text(res, rows),
                "threshold": _threshold_summary(res, flt),
                "empty_text": _empty_text(res, flt),
            }
        )
    return out


# The page lists at most this many features (selected ones first); features.tsv has all.
MAX_FEATURE_ROWS = 500


def _all_features(res: Results) -> list[dict[str, str]]:
    f = res.features.assign(
        _any=res.features[[c for c in res.features if c.startswith("selected_")]].any(axis=1)
    ).sort_values(["_any", "ML_W", "OL_W"], ascending=False)
    f = f.head(MAX_FEATURE_ROWS)
    rows = []
    for _, r in f.iterrows():
        by = [flt for flt in FILTERS if bool(r.get(f"selected_{flt}", False))]
        rows.append(
            {
                "feature": r["feature"],
                "mean": fmt_num(r.get("mean")),
                "sd": fmt_num(r.get("sd")),
                "OL_W": fmt_num(r.get("OL_W")),
                "OL_frequency": fmt_freq(r.get("OL_frequency")),
                "OL_qvalue": fmt_q(r.get("OL_qvalue")),
                "ML_W": fmt_num(r.get("ML_W")),
                "ML_frequency": fmt_freq(r.get("ML_frequency")),
                "ML_qvalue": fmt_q(r.get("ML_qvalue")),
                "evalue": fmt_num(r.get("evalue")),
                "effect_sd": fmt_signed(r.get("effect_sd")),
                "effect_spread": fmt_num(r.get("effect_sd_spread"), 2),
                "effect_unit": fmt_signed(r.get("effect_unit")),
                "direction": str(r.get("direction", "")).replace("-", MINUS),
                "selected_by": ", ".join(by) if by else DASH,
            }
        )
    return rows


def _labels(res: Results) -> list[dict[str, str]]:
    if res.labels is None:
        return []
    total = res.labels["count"].sum()
    return [
        {
            "class": str(r["class"]),
            "code": str(r["code"]),
            "count": fmt_int(r["count"]),
            "share": fmt_freq(r["count"] / total if total else math.nan),
        }
        for _, r in res.labels.iterrows()
    ]


def _listing(items: Any) -> str:
    items = list(items or [])
    return ", ".join(map(str, items)) if items else "none"


def _preprocessing(meta: dict) -> list[dict[str, str]]:
    d = meta.get("dropped") or {}
    return [
        {"what": "Constant columns dropped", "value": _listing(d.get("constant"))},
        {"what": "Duplicate columns dropped", "value": _listing(d.get("duplicate"))},
        {"what": "Rows dropped for missing values", "value": fmt_int(d.get("rows_missing", 0))},
        {"what": "Missing-value policy", "value": str(d.get("missing_policy", DASH))},
        {
            "what": "Categorical columns one-hot encoded",
            "value": _listing(d.get("categorical_onehot")),
        },
    ]


def _method(res: Results) -> list[dict[str, str]]:
    cfg = res.config
    ko = cfg.get("knockoffs", {})
    sel = cfg.get("selection", {})
    draws = sorted({d for d, _ in res.runs})
    seeds = sorted({s for _, s in res.runs})
    net, tr = cfg.get("network", {}), cfg.get("training", {})
    hidden = net.get("hidden")
    n_lambda = int(res.paths.groupby(["draw", "seed"]).size().max()) if not res.paths.empty else 0
    ebh_opts = ebh_settings(cfg)
    ebh_alpha = ebh_opts.get("alpha_kn")
    return [
        {"what": "Target FDR q", "value": f"{res.q:g}"},
        {
            "what": "Threshold rule",
            "value": "knockoff+ (offset 1, controls FDR)"
            if res.offset == 1
            else "knockoff (offset 0, controls a modified FDR)",
        },
        {
            "what": "Knockoffs",
            "value": f"{ko.get('method', DASH)}, S by {ko.get('s_method', DASH)}"
            f", covariance {ko.get('covariance', DASH)}"
            + (
                f"; {res.copies} copies per draw (multiple knockoffs: a feature must beat "
                "every copy"
                + (", chosen by copies: auto" if ko.get("copies") == "auto" else "")
                + ")"
                if res.copies > 1
                else ""
            )
            + _groups_method(res, ko),
        },
        {
            "what": "Runs",
            "value": f"{len(draws)} knockoff draw(s) × {len(seeds)} training seed(s)"
            f" = {len(res.runs)} runs",
        },
        {
            "what": "Network",
            "value": f"{units_text(net.get('units', 0))}; hidden layers {hidden}, "
            f"{net.get('activation', 'relu')}"
            if hidden
            else DASH,
        },
        {
            "what": "Training",
            "value": f"{tr.get('optimizer', 'fista')}, {tr.get('penalty', 'l1')} penalty, "
            f"{tr.get('start', 'cold')} start, batches of {tr.get('batch_size', 0) or 'all'} rows, "
            f"patience {tr.get('patience', DASH)} epochs"
            + (
                f" (an epoch: a pass over the training rows or {int(tr['check_rows']):,} rows, "
                "whichever is fewer)"
                if tr.get("check_rows")
                else ""
            ),
        },
        {"what": "λ path", "value": f"{n_lambda} values per run" if n_lambda else DASH},
        {
            "what": "Statistics",
            "value": STATISTIC_TEXT[sel.get("statistic", "paper")]
            + f"; OL and ML use {res.combine_text}",
        },
        {
            "what": "VWA vote ratio",
            "value": f"{fmt_freq(sel.get('vwa_ratio', 0.5))} (VWA-OL, "
            f"VWA-ML); {fmt_freq(sel.get('vwa_oml_ratio', 0.25))} (VWA-OML)",
        },
        {
            "what": "e-BH",
            "value": f"e-values from {ebh_opts.get('statistic') or 'OL'} at α = "
            + (
                f"{ebh_alpha:g}"
                if ebh_alpha is not None
                else (f"q = {res.q:g}" if len(draws) == 1 else f"q/2 = {res.q / 2:g}")
            ),
        },
    ]


STATISTIC_TEXT = {
    "importance": "OL: norm of each input's first-layer weights; ML: mean squared "
    "derivative of the output (neither cancels a non-monotone effect)",
    "paper": "the paper's: OL sums Z (largest λ with a non-zero weight), ML weights it by "
    "the product of the weight matrices",
}


def units_text(units: int) -> str:
    if not units:
        return "dense input layer (the paper's)"
    return f"{units} learned univariate units per input"


def decay_counts(decays: pd.Series) -> str:
    """How often each weight decay was kept, largest first ("10 ×3, 0 ×1"); a dash if none
    is known."""
    counts = decays.dropna().value_counts().sort_index(ascending=False)
    return ", ".join(f"{fmt_num(d)} ×{n}" for d, n in counts.items()) or fmt_num(np.nan)


def learning_check(res: Results) -> dict[str, Any] | None:
    """Per run: validation score of the dense fit, of the chosen-λ network and of the
    gradient-boosting reference (statistics.tsv), the weight decay the dense fit kept, and a
    warning when the network learned clearly less than the reference."""
    s = res.statistics
    if "chosen_score" not in s:
        return None
    runs = s.drop_duplicates(["draw", "seed"]).sort_values(["draw", "seed"])
    metric = str(runs["metric"].iloc[0]) if "metric" in runs else "score"
    # results written before the column existed show a dash: the kept decay is not known
    decays = (
        _as_float(runs["dense_decay"]) if "dense_decay" in runs else pd.Series(np.nan, runs.index)
    )
    rows = [
        {
            "run": run_label(int(r.draw), int(r.seed)),
            "dense": fmt_num(r.dense_score),
            "decay": fmt_num(decay),
            "chosen": fmt_num(r.chosen_score),
            "reference": fmt_num(r.reference_score),
        }
        for r, decay in zip(runs.itertuples(index=False), decays, strict=True)
    ]
    chosen = _as_float(runs["chosen_score"])
    reference = _as_float(runs["reference_score"])
    gap = float(np.nanmean(reference - chosen)) if reference.notna().any() else float("nan")
    warning = ""
    if np.isfinite(gap) and gap > 0.05:
        warning = (
            f"The chosen networks' validation {metric} is {gap:.3f} below the gradient-boosting "
            "reference on average: the network learned less than a simple model does from the "
            "same rows, so the filters can miss signals. Try more training seeds, "
            "`network.units` > 0, or more epochs (`training.patience`)."
        )
    return {
        "metric": metric,
        "rows": rows,
        "mean": {
            "dense": fmt_num(_as_float(runs["dense_score"]).mean()),
            "decay": decay_counts(decays),
            "chosen": fmt_num(chosen.mean()),
            "reference": fmt_num(reference.mean()),
        },
        "warning": warning,
    }


def _summary_sentences(res: Results) -> list[dict[str, str]]:
    rows = _sorted_selection(res.selected[res.selected["filter"] == res.recommended])
    return [_feature_row(res, res.recommended, r) for _, r in rows.iterrows()]


def _params_text(params: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in params.items())


def simulation_context(res: Results, truth: dict, scores: pd.DataFrame) -> dict[str, Any]:
    """'Against the known truth' for a simulated cohort: this replicate's selections at the
    report's q scored against the relevant features, beside the design's mean ± se over its
    replicates (`scores`: every replicate's rows of simulation.REPLICATE_COLUMNS).

    The pipeline filters are scored from this report's own selected.tsv, so the false
    discoveries can be named; the peers (scored only by the study) come from `scores`.
    """
    relevant = [str(f) for f in truth.get("relevant") or []]
    replicate = int(truth["replicate"])
    at_q = scores[np.isclose(scores["q"].astype(float), res.q)]
    mine = at_q[at_q["replicate"] == replicate].set_index("filter")
    design = summarise(at_q).set_index("filter")
    extra = sorted(set(scores["filter"]) - set(FILTERS))
    rows = []
    for flt in [*FILTERS, *extra]:
        if flt in FILTERS:
            sel = res.selected_by(flt)
            n_sel, fdp, power = fdp_power(sel, relevant)
            false = [f for f in sel if f not in set(relevant)]
        elif flt in mine.index:
            r = mine.loc[flt]
            n_sel, fdp, power, false = int(r["n_selected"]), r["fdp"], r["power"], None
        else:
            continue
        n_false = len(false) if false is not None else round(float(fdp) * n_sel)
        d = design.loc[flt] if flt in design.index else None
        rows.append(
            {
                "filter": flt,
                "peer": flt not in FILTERS,
                "recommended": flt == res.recommended,
                "selected": fmt_int(n_sel),
                "true": fmt_int(n_sel - n_false),
                "false": fmt_int(n_false),
                "fdp": fmt_num(fdp),
                "power": fmt_num(power),
                "design_fdr": DASH if d is None else fmt_pm(d["fdp_mean"], d["fdp_se"]),
                "design_power": DASH if d is None else fmt_pm(d["power_mean"], d["power_se"]),
                "false_names": DASH if false is None else (", ".join(false) or "none"),
            }
        )
    return {
        "design": str(truth.get("design", DASH)),
        "replicate": replicate,
        "generator": str(truth.get("generator", DASH)),
        "n": fmt_int(truth.get("n")),
        "params": _params_text(truth.get("params") or {}),
        "relevant": ", ".join(relevant),
        "n_relevant": len(relevant),
        "p": fmt_int(truth.get("p", len(res.features))),
        "replicates": int(scores["replicate"].nunique()),
        "on_grid": not at_q.empty,
        "grid": ", ".join(f"{q:g}" for q in sorted(scores["q"].astype(float).unique())),
        "rows": rows,
    }


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
