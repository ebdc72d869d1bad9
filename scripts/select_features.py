"""Snakemake entry: statistics, thresholds and aggregation over runs (rule `select_features`)."""

import json

import numpy as np

from knockoffnet.groups import read_groups
from knockoffnet.runtime import rule_context, save_tsv
from knockoffnet.selection import build_tables, group_labels, run_statistics

with rule_context(snakemake) as log:
    meta = json.loads(open(snakemake.input.meta).read())
    selection = dict(snakemake.params.selection)
    groups = read_groups(snakemake.input.groups)
    labels = group_labels(groups, meta["features"])
    runs = []
    for path, (draw, seed) in zip(snakemake.input.runs, snakemake.params.runs, strict=True):
        with np.load(path) as arrays:
            stats = run_statistics(dict(arrays), draw, seed, meta["p"], selection, labels)
            runs.append(stats)
    tables = build_tables(runs, meta, selection, groups)
    for name, table in tables.items():
        save_tsv(snakemake.output[name], table)
    counts = tables["selected"].groupby("filter").size().to_dict()
    log.info("selected per filter at q=%s: %s", selection["q"], counts)
