"""Scoring the study: FDP and power of every selection against the truth, the pipeline's
filters recomputed on a grid of q, means and standard errors over replicates, the acceptance
check and the networks' validation scores."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from knockoffnet.selection import build_tables, group_labels, run_statistics
from knockoffnet.vocabulary import FILTERS

REPLICATE_COLUMNS = ["design", "replicate", "filter", "q", "n_selected", "fdp", "power"]
FIT_COLUMNS = [
    "design",
    "replicate",
    "draw",
    "seed",
    "metric",
    "dense",
    "chosen",
    "reference",
    "dense_decay",
]
SUMMARY_COLUMNS = ["design", "filter", "q", "fdp_mean", "fdp_se", "power_mean", "power_se"]


def fdp_power(selected: Iterable[str], relevant: Iterable[str]) -> tuple[int, float, float]:
    """(|S|, FDP, power) of one selection S against the truth S*.

    FDP = |S ∖ S*| / max(1, |S|) (0 for an empty selection); power = |S ∩ S*| / |S*|, and NaN
    when S* is empty (global null): there is nothing to find, and 0 would read as a failure.
    Under the null FDP = 1{|S| > 0}, so its mean is the probability of any selection.
    """
    S, truth = set(selected), set(relevant)
    hits = len(S & truth)
    fdp = (len(S) - hits) / max(1, len(S))
    power = hits / len(truth) if truth else math.nan
    return len(S), fdp, power


def score_masks(
    masks: dict[tuple[str, float], np.ndarray],
    features: Sequence[str],
    relevant: Sequence[str],
    groups: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (filter, q): n_selected, fdp, power of the boolean mask over `features`.

    With ``groups`` (each feature's group) the score is per group: a selected feature counts
    its group as selected, a selected group is a false discovery when none of its members is
    relevant, and power is the share of groups holding a relevant feature that were selected
    (so the grouped filter and the feature-level peers are scored on the same question).
    """
    names = np.asarray(features)
    if groups is not None:
        group_of = dict(zip(names, np.asarray(groups), strict=True))
        relevant = sorted({group_of[f] for f in relevant})
        names = np.asarray([group_of[f] for f in names])
    rows = []
    for (flt, q), mask in masks.items():
        n_sel, fdp, power = fdp_power(names[np.asarray(mask, dtype=bool)], relevant)
        rows.append({"filter": flt, "q": q, "n_selected": n_sel, "fdp": fdp, "power": power})
    return pd.DataFrame(rows, columns=["filter", "q", "n_selected", "fdp", "power"])


def scoring_groups(
    meta: dict[str, Any],
    truth: dict[str, Any],
    groups: pd.DataFrame,
    grouped: bool,
    level: str,
) -> list[str] | None:
    """The group of each of ``meta["features"]`` to score a replicate on, or None to score
    features: a grouped run's own groups; at design ``level: group`` an ungrouped run's true
    blocks (``truth["groups"]``, aligned with x1..xp), so both answer "which blocks?"."""
    if grouped:
        return groups.set_index("feature").loc[meta["features"], "group"].astype(str).tolist()
    if level != "group":
        return None
    blocks = truth.get("groups")
    if not blocks:
        raise ValueError(
            f"design {truth.get('design')!r} has level: group but its truth names no groups "
            f"(generator {truth.get('generator')!r}); use generator blocks or level: feature"
        )
    of = {f"x{j + 1}": label for j, label in enumerate(blocks)}
    return [of[f] for f in meta["features"]]


def pipeline_masks(
    runs: Sequence[tuple[int, int, dict[str, np.ndarray]]],
    meta: dict[str, Any],
    selection: dict[str, Any],
    q_grid: Iterable[float],
    groups: pd.DataFrame | None = None,
) -> dict[tuple[str, float], np.ndarray]:
    """Every pipeline filter's selection at each q, recomputed from the runs' Z exactly as
    rule select_features does (same functions, only `q` changed; e-BH's α follows q/2 unless
    the config fixes it), so the study scores the code users run."""
    masks = {}
    labels = group_labels(groups, meta["features"])
    for q in q_grid:
        sel = {**selection, "q": float(q)}
        stats = [run_statistics(arrays, d, s, meta["p"], sel, labels) for d, s, arrays in runs]
        table = build_tables(stats, meta, sel, groups)["features"]
        for flt in FILTERS:
            masks[(flt, float(q))] = table[f"selected_{flt}"].to_numpy(dtype=bool)
    return masks


def check_against_pipeline(
    masks: dict[tuple[str, float], np.ndarray],
    features: Sequence[str],
    selected: pd.DataFrame,
    q: float,
) -> list[str]:
    """Filters whose recomputed selection at the config's q differs from selected.tsv (should
    be none: a difference means the study no longer scores what the pipeline reports)."""
    names = np.asarray(features)
    bad = []
    for flt in FILTERS:
        ours = set(names[masks[(flt, float(q))]])
        theirs = set(selected.loc[selected["filter"] == flt, "feature"].astype(str))
        if ours != theirs:
            bad.append(flt)
    return bad


def summarise(replicates: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error (sd / √R, ddof 1; NaN for a single replicate) of FDP and power
    per design, filter and q. NaN powers (global null) stay NaN."""
    grouped = replicates.groupby(["design", "filter", "q"], sort=False)

    def se(x: pd.Series) -> float:
        x = x.dropna()
        return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan

    out = grouped.agg(
        fdp_mean=("fdp", "mean"),
        fdp_se=("fdp", se),
        power_mean=("power", "mean"),
        power_se=("power", se),
    ).reset_index()
    return out[SUMMARY_COLUMNS]


def fdr_check(
    summary: pd.DataFrame, designs: Iterable[str], filters: Sequence[str] = ("OL", "ML", "ebh")
) -> pd.DataFrame:
    """The acceptance check: mean FDP ≤ q + 2 s.e. for the FDR-controlling filters on the
    designs where exact control is expected (a missing s.e., one replicate, counts as 0)."""
    part = summary[summary["design"].isin(list(designs)) & summary["filter"].isin(filters)].copy()
    part["bound"] = part["q"] + 2 * part["fdp_se"].fillna(0.0)
    part["holds"] = part["fdp_mean"] <= part["bound"] + 1e-12
    return part[["design", "filter", "q", "fdp_mean", "fdp_se", "bound", "holds"]]


def fit_rows(
    runs: Sequence[tuple[int, int, dict[str, np.ndarray]]], design: str, replicate: int
) -> pd.DataFrame:
    """Validation scores of every run of one replicate (dense fit, chosen λ, reference) and
    the weight decay its dense fit kept (NaN for a run from before 2026-12-06)."""
    rows = [
        {
            "design": design,
            "replicate": replicate,
            "draw": d,
            "seed": s,
            "metric": str(a.get("metric", "")),
            "dense": float(a.get("dense_score", np.nan)),
            "chosen": float(a.get("chosen_score", np.nan)),
            "reference": float(a.get("reference_score", np.nan)),
            "dense_decay": float(a.get("dense_decay", np.nan)),
        }
        for d, s, a in runs
    ]
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def fit_summary(fits: pd.DataFrame) -> pd.DataFrame:
    """Per design: mean ± se over replicates (runs averaged within a replicate) of the
    validation scores, the mean gap to the gradient-boosting reference, and ``decayed``, the
    share of runs whose dense fit kept a weight decay > 0 (NaN where no run recorded it)."""
    decay = fits["dense_decay"] if "dense_decay" in fits else pd.Series(np.nan, fits.index)
    fits = fits.assign(decayed=(decay > 0).astype(float).where(decay.notna()))
    per_rep = fits.groupby(["design", "replicate", "metric"], sort=False)[
        ["dense", "chosen", "reference", "decayed"]
    ].mean()
    per_rep["dense_gap"] = per_rep["dense"] - per_rep["reference"]
    per_rep["chosen_gap"] = per_rep["chosen"] - per_rep["reference"]
    grouped = per_rep.groupby(level=["design", "metric"], sort=False)
    mean, count = grouped.mean(), grouped.count()
    se = grouped.std(ddof=1) / np.sqrt(count)
    out = mean.add_suffix("_mean").join(se.add_suffix("_se")).reset_index()
    return out
