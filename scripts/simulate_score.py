"""Snakemake entry: FDP and power of every filter and peer for one replicate (rule
`simulate_score`)."""

import json

import numpy as np
import pandas as pd

from knockoffnet.groups import read_groups
from knockoffnet.runtime import rule_context
from knockoffnet.selection import group_labels
from knockoffnet.simulation.peers import peer_masks, peer_statistics
from knockoffnet.simulation.scoring import (
    check_against_pipeline,
    fit_rows,
    pipeline_masks,
    score_masks,
    scoring_groups,
)
from knockoffnet.simulation.tables import write_csv

with rule_context(snakemake) as log:
    design = snakemake.wildcards.design
    replicate = int(snakemake.wildcards.replicate)
    meta = json.loads(open(snakemake.input.meta).read())
    truth = json.loads(open(snakemake.input.truth).read())
    selection = dict(snakemake.params.selection)
    q_grid = [float(q) for q in snakemake.params.q_grid]

    runs = []
    for path, (draw, seed) in zip(snakemake.input.runs, snakemake.params.runs, strict=True):
        with np.load(path) as arrays:
            runs.append((draw, seed, dict(arrays)))
    groups = read_groups(snakemake.input.groups)
    labels = group_labels(groups, meta["features"])
    grouped = labels is not None
    q_all = sorted({*q_grid, float(selection["q"])})
    masks = pipeline_masks(runs, meta, selection, q_all, groups if grouped else None)
    selected = pd.read_csv(snakemake.input.selected, sep="\t")
    differ = check_against_pipeline(masks, meta["features"], selected, selection["q"])
    if differ:
        raise RuntimeError(
            f"recomputed selections of {differ} at q = {selection['q']} differ from "
            f"{snakemake.input.selected}: the study would not score what the pipeline reports"
        )
    masks = {key: mask for key, mask in masks.items() if key[1] in q_grid}

    X = np.load(snakemake.input.X)
    # Peers see every knockoff copy (knockpy's the first only) and are multi-knockoff filters
    # when there are several; on group knockoffs they are group filters (peer_masks).
    Xk = np.load(snakemake.input.Xk).astype(np.float64)
    y = np.load(snakemake.input.y)
    options = {**snakemake.params.options, "threads": int(snakemake.threads)}
    peer_seed = int(snakemake.params.seed)
    latent = np.load(snakemake.input.latent)
    for name, W in peer_statistics(
        snakemake.params.peers, X, Xk, y, meta["task"], peer_seed, options, log, latent=latent
    ).items():
        masks.update(peer_masks(W, name, q_grid, offset=1, labels=labels))

    # Grouped runs are scored per their groups (docs/method.md, "Group knockoffs"); at design
    # level `group` ungrouped runs per the generator's true blocks.
    scores = score_masks(
        masks,
        meta["features"],
        truth["relevant"],
        scoring_groups(meta, truth, groups, grouped, snakemake.params.level),
    )
    scores.insert(0, "replicate", replicate)
    scores.insert(0, "design", design)
    write_csv(snakemake.output.scores, scores)
    write_csv(snakemake.output.fit, fit_rows(runs, design, replicate))
    at = scores[np.isclose(scores["q"], selection["q"])]
    log.info("%s rep %d at q=%s:\n%s", design, replicate, selection["q"], at.to_string(index=False))
