"""Snakemake entry: the feature groups of a cohort, groups.tsv (rule `groups`)."""

import json

import numpy as np

from knockoffnet.groups import auto_groups, group_table, read_group_table
from knockoffnet.knockoff_blocks import load_links, ordered_blocks
from knockoffnet.knockoffs import resolve_sampling
from knockoffnet.runtime import rule_context, save_tsv

with rule_context(snakemake) as log:
    meta = json.loads(open(snakemake.input.meta).read())
    X = np.load(snakemake.input.X, mmap_mode="r")  # read only where groups need it
    mode, names = snakemake.params.groups, None
    if mode == "none":
        labels = np.arange(X.shape[1])
    elif mode == "auto":
        # a block-wise draw clusters block by block, so no group crosses a block
        ko, windows = snakemake.params.sampling, None
        if resolve_sampling(ko["sampling"], X.shape[1], ko["method"]) == "blocks":
            chromosomes = (meta.get("variants") or {}).get("chromosome")
            links = load_links(snakemake.input.links)  # the cohort's, shared with the draws
            windows = ordered_blocks(
                ko["block_order"], X, ko["max_block"], chromosomes, links=links
            )
            log.info("clustering within %d blocks of at most %d", len(windows), ko["max_block"])
        labels = auto_groups(X, snakemake.params.cutoff, windows)
    else:
        labels, names = read_group_table(snakemake.input.table, meta["features"])
    table = group_table(meta["features"], labels, X, names)
    sizes = np.bincount(labels)
    log.info(
        "%d features in %d groups (largest %d, %d singletons)",
        labels.size, sizes.size, sizes.max(), int(np.sum(sizes == 1)),
    )  # fmt: skip
    save_tsv(snakemake.output.groups, table)
