"""Snakemake entry: one knockoff draw (rule `knockoffs`)."""

import json

import numpy as np
import pandas as pd

from knockoffnet.errors import InputError
from knockoffnet.groups import index_from_table, read_groups
from knockoffnet.knockoff_blocks import load_links
from knockoffnet.knockoffs import make_knockoffs
from knockoffnet.runtime import rule_context, save_npy, save_tsv

with rule_context(snakemake) as log:
    X = np.load(snakemake.input.X)
    meta = json.loads(open(snakemake.input.meta).read())
    draw = int(snakemake.params.draw)
    opts = snakemake.params.knockoffs
    seed = int(snakemake.params.seed)
    groups = read_groups(snakemake.input.groups)
    labels = index_from_table(groups, meta["features"])
    try:
        Xk, s, diagnostics = make_knockoffs(
            X,
            method=opts["method"],
            covariance=opts["covariance"],
            s_method=opts["s_method"],
            max_block=opts["max_block"],
            seed=seed,
            names=meta["features"],
            copies=opts["copies"],
            groups=labels,
            sampling=opts["sampling"],
            chromosomes=(meta.get("variants") or {}).get("chromosome"),
            block_order=opts.get("block_order", "auto"),
            links=load_links(snakemake.input.links),  # once per cohort, not per draw
        )
    except InputError as err:
        raise InputError(f"cohort {meta['cohort']} ({meta['source']}): {err}") from err
    row = {"draw": draw, **diagnostics}
    log.info("draw %d: mean s = %.4f; %s", draw, float(np.mean(s)), diagnostics.get("message"))
    save_npy(snakemake.output.Xk, Xk)  # float32, standardised
    save_npy(snakemake.output.s, s)
    save_tsv(snakemake.output.diagnostics, pd.DataFrame([row]))
