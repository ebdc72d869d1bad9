"""The report's sections on what was run and how well: preprocessing, the method's
settings, the "did the network learn" check and, for a simulated cohort, its truth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.report.format import (
    DASH,
    _as_float,
    fmt_freq,
    fmt_int,
    fmt_num,
    fmt_pm,
)
from knockoffnet.report.results import Results, ebh_settings, run_label
from knockoffnet.simulation.scoring import fdp_power, summarise
from knockoffnet.vocabulary import (
    DEFAULT_LEARNING_RATE,
    FILTERS,
    dense_coupling,
    fit_epochs,
    step_size,
    training_rows,
)


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
            "value": f"{tr.get('optimizer', 'fista')}{_step_text(tr, res.meta)}, "
            f"{tr.get('penalty', 'l1')} penalty, "
            f"{tr.get('start', 'cold')} start, batches of {tr.get('batch_size', 0) or 'all'} rows, "
            f"patience {_patience_text(tr, res.meta)}"
            + _coupling_text(tr, res.meta)
            + (
                f" (an epoch: a pass over the training rows or {int(tr['check_rows']):,} rows, "
                "whichever is fewer)"
                if tr.get("check_rows")
                else ""
            )
            + (
                "; the outcome standardised inside each fit, networks and effects in its units"
                if res.meta.get("task") == "regression"
                and tr.get("outcome_scale", "standardised") == "standardised"
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


def _cohort_rows(tr: dict[str, Any], meta: dict[str, Any]) -> int | None:
    """The cohort's training rows, which the `auto` settings are resolved from (None when
    the run's records lack its size or split)."""
    if "n" not in meta or "val_fraction" not in tr:
        return None
    return training_rows(meta["n"], tr["val_fraction"])


def _step_text(tr: dict[str, Any], meta: dict[str, Any]) -> str:
    """The fits' step size, `` (step …)``; ``auto`` as the step it gave this cohort."""
    optimizer, lr = tr.get("optimizer"), tr.get("learning_rate")
    if optimizer not in DEFAULT_LEARNING_RATE:
        return ""
    if lr != "auto" or optimizer != "adam":  # `auto` sizes Adam's step only
        return f" (step {step_size(lr, optimizer, 0):g})"
    m = _cohort_rows(tr, meta)
    return " (step auto)" if m is None else f" (step {step_size('auto', optimizer, m):.2g}, auto)"


def _coupling_text(tr: dict[str, Any], meta: dict[str, Any]) -> str:
    """``; the dense fit coupled …`` when the dense fit was coupled (``auto`` as what it
    gave this cohort); nothing for a free dense fit."""
    value = tr.get("dense_coupling", "none")
    if value == "auto":
        m = _cohort_rows(tr, meta)
        resolved = dense_coupling(value, m, tr.get("optimizer"))
        if resolved == "none":
            return ""
        if resolved == "auto":  # the cohort's rows are not known
            return "; the dense fit coupled by the training rows (dense_coupling auto)"
        return (
            f"; the dense fit coupled (auto, from about {m:,} training rows: a feature's columns "
            "share one fan-out, every λ then free)"
        )
    if value == "none":
        return ""
    return f"; the dense fit coupled ({value}: a feature's columns share one fan-out, every λ then free)"


def _patience_text(tr: dict[str, Any], meta: dict[str, Any]) -> str:
    """The fits' early-stopping patience; ``auto`` as the number it gave this cohort."""
    patience = tr.get("patience", DASH)
    if patience != "auto":
        return f"{patience} epochs"
    m = _cohort_rows(tr, meta)
    if m is None:
        return "auto"
    pat, cap = fit_epochs("auto", tr.get("max_epochs", "auto"), m)
    return f"{pat} epochs (auto, from about {m:,} training rows; at most {cap})"
