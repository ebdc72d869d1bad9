"""Snakemake entry: one knockoff draw (rule `knockoffs`)."""

import json
import re

import numpy as np
import pandas as pd

from knockoffnet.errors import InputError
from knockoffnet.knockoffs import make_knockoffs
from knockoffnet.runtime import derive_seed, rule_context, save_npy, save_tsv

# Above this mean |corr(x_j, x~_j)| knockoffs are near copies and power is low (WDBC: 0.95).
LOW_POWER_PAIR_CORR = 0.9

with rule_context(snakemake) as log:
    X = np.load(snakemake.input.X)
    meta = json.loads(open(snakemake.input.meta).read())
    draw = int(snakemake.wildcards.draw)
    opts = snakemake.params.knockoffs
    seed = derive_seed(snakemake.params.seed, "knockoffs", snakemake.wildcards.cohort, draw)
    try:
        Xk, s, diagnostics = make_knockoffs(
            X,
            method=opts["method"],
            covariance=opts["covariance"],
            s_method=opts["s_method"],
            max_block=opts["max_block"],
            seed=seed,
        )
    except InputError as err:
        raise InputError(f"cohort {meta['cohort']} ({meta['source']}): {err}") from err
    names = meta["features"]
    # The module speaks in column indices; users read feature names.
    message = re.sub(
        r"column (\d+)", lambda m: f"column {names[int(m.group(1))]!r}", diagnostics["message"]
    )
    if diagnostics["mean_abs_pair_corr"] > LOW_POWER_PAIR_CORR:
        message += (
            f" Low power expected: the knockoffs are near copies of the features (mean "
            f"|corr(x_j, x~_j)| = {diagnostics['mean_abs_pair_corr']:.2f}, mean s = "
            f"{diagnostics['mean_s']:.3f}) because some features are almost linear combinations "
            "of others, so a network can hardly tell a feature from its knockoff. Dropping or "
            "averaging near-duplicate features before ingest raises power."
        )
    diagnostics["message"] = message
    row = {"draw": draw, "method": opts["method"], "s_method": opts["s_method"]}
    row["covariance"] = opts["covariance"]
    row.update(diagnostics)
    log.info("draw %d: mean s = %.4f; %s", draw, float(np.mean(s)), diagnostics.get("message"))
    save_npy(snakemake.output.Xk, Xk.astype(np.float32))
    save_npy(snakemake.output.s, s)
    save_tsv(snakemake.output.diagnostics, pd.DataFrame([row]))
