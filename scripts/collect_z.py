"""Snakemake entry: merge the λ chunks of one (draw, seed) into Z, the chosen network, its
per-input importances and the run's validation scores (rule `collect_z`)."""

import numpy as np
import pandas as pd

from knockoffnet.importance import run_importances
from knockoffnet.network import net_arrays, net_from_arrays
from knockoffnet.path import concat_chunks, split_indices, z_statistics
from knockoffnet.runtime import rule_context, save_npz, save_tsv, training_inputs
from knockoffnet.scores import metric_name, network_score

with rule_context(snakemake) as log:
    U, y, cfg, seed, meta = training_inputs(snakemake)
    grid = np.load(snakemake.input.grid)
    path = concat_chunks([dict(np.load(f)) for f in snakemake.input.chunks])
    if not np.allclose(path["lambdas"], grid):
        raise RuntimeError("chunks do not cover the lambda grid in order; rerun the train jobs")
    with np.load(snakemake.input.dense) as f:
        dense = dict(f)
    n_layers = len(cfg.hidden) + 1
    Z = z_statistics(grid, [path[f"W{layer}"] for layer in range(n_layers)])
    # OL, ML and the effects use the network at the λ with the best validation data loss:
    # the most predictive of the fitted networks (docs/method.md).
    chosen = int(np.nanargmin(path["val_loss"]))
    net = net_from_arrays(path, chosen)
    _, val = split_indices(y, cfg, seed)
    scores = {
        "dense_score": network_score(
            net_from_arrays(dense, 0), U[val], y[val], cfg.task, cfg.activation
        ),
        "chosen_score": network_score(net, U[val], y[val], cfg.task, cfg.activation),
        "reference_score": float(dense["reference_score"]),
    }
    # the dense fit's kept weight decay (`training.dense_decay`); NaN for a dense.npz from
    # before the key, so an old fit is never reported as undecayed
    decay = float(dense["dense_decay"][0]) if "dense_decay" in dense else float("nan")
    log.info(
        "chosen lambda %.4g (index %d), val loss %.4f; validation %s: dense %.4f, chosen %.4f, "
        "reference %.4f",
        grid[chosen],
        chosen,
        path["val_loss"][chosen],
        metric_name(cfg.task),
        *scores.values(),
    )
    summary = run_importances(net, Z[0], U, meta["p"], cfg.activation, cfg.covariates)
    save_npz(
        snakemake.output.z,
        lambdas=grid,
        chosen=np.array(chosen),
        metric=np.array(metric_name(cfg.task)),
        **{k: np.array(v) for k, v in scores.items()},
        dense_decay=np.array(decay),
        **summary,
        **{f"Z{i}": z for i, z in enumerate(Z)},
        **net_arrays(net),
    )
    table = pd.DataFrame(
        {
            "lambda": grid,
            "epochs": path["epochs"],
            "best_epoch": path["best_epoch"],
            "val_objective": path["val_objective"],
            "val_loss": path["val_loss"],
            "val_accuracy": path["val_accuracy"],
            "inputs_alive": path["inputs_alive"],
        }
    )
    for layer in range(n_layers):
        table[f"nnz_layer{layer}"] = path["nnz"][:, layer]
    table["chosen"] = np.arange(len(grid)) == chosen
    save_tsv(snakemake.output.path, table)
