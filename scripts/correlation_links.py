"""Snakemake entry: each feature's strongest correlation links, once per cohort (rule
`correlation_links`): what the block order of a block-wise draw is built from."""

import json

import numpy as np

from knockoffnet.knockoff_blocks import correlation_links, needs_links, save_links
from knockoffnet.runtime import rule_context

with rule_context(snakemake) as log:
    meta = json.loads(open(snakemake.input.meta).read())
    X = np.load(snakemake.input.X, mmap_mode="r")  # only the order's rows are read
    ko, links = snakemake.params.order, None
    chromosomes = (meta.get("variants") or {}).get("chromosome")
    if ko is not None and needs_links(
        ko["sampling"], ko["method"], ko["block_order"], X.shape[1], chromosomes
    ):
        links = correlation_links(X, chromosomes=chromosomes)
        log.info("%d correlation links among %d features", links.src.size, X.shape[1])
    else:
        log.info("no block-wise draw cut from a correlation order: nothing to link")
    save_links(snakemake.output.links, links)
