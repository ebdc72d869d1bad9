"""The report's selection sections: the selected features of each filter, thresholds,
groups, the full feature listing and the label coding (plain values; the template lays them
out)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.report.format import (
    DASH,
    MINUS,
    _as_float,
    _missing,
    fmt_freq,
    fmt_int,
    fmt_num,
    fmt_q,
    fmt_signed,
)
from knockoffnet.report.results import Results, run_label, run_threshold
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
        **_effect_cells(fr),
    }


def _effect_cells(fr: pd.Series | dict) -> dict[str, str]:
    """A feature's e-value and effect cells (``features.tsv`` columns), as both the selection
    tables and the full feature listing show them."""
    return {
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
                **_effect_cells(r),
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


def _summary_sentences(res: Results) -> list[dict[str, str]]:
    rows = _sorted_selection(res.selected[res.selected["filter"] == res.recommended])
    return [_feature_row(res, res.recommended, r) for _, r in rows.iterrows()]
