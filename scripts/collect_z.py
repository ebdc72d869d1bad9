"""Snakemake entry: merge lambda chunks into Z and the chosen-lambda network (rule `collect_z`)."""

import numpy as np
import pandas as pd

from knockoffnet.path import concat_chunks, input_effects, z_statistics
from knockoffnet.runtime import rule_context, save_npz, save_tsv, training_inputs

with rule_context(snakemake) as log:
    U, y, cfg, seed, meta = training_inputs(snakemake)
    grid = np.load(snakemake.input.grid)
    path = concat_chunks([dict(np.load(f)) for f in snakemake.input.chunks])
    if not np.allclose(path["lambdas"], grid):
        raise RuntimeError("chunks do not cover the lambda grid in order; rerun the train jobs")
    n_layers = len(cfg.hidden) + 1
    stacks = [path[f"W{layer}"] for layer in range(n_layers)]
    Z = z_statistics(grid, stacks)
    # The Multiple Layers filter and the effects use the network at the lambda with the best
    # validation data loss: the most predictive of the fitted networks (docs/method.md).
    chosen = int(np.nanargmin(path["val_loss"]))
    weights = [w[chosen] for w in stacks]
    biases = [path[f"b{layer}"][chosen] for layer in range(n_layers)]
    effects = input_effects(weights, biases, U, cfg.activation)[: meta["p"]]
    log.info(
        "chosen lambda %.4g (index %d), val loss %.4f",
        grid[chosen],
        chosen,
        path["val_loss"][chosen],
    )
    arrays = {f"Z{i}": z for i, z in enumerate(Z)}
    arrays.update({f"W{i}": w for i, w in enumerate(weights)})
    arrays.update({f"b{i}": b for i, b in enumerate(biases)})
    save_npz(
        snakemake.output.z,
        lambdas=grid,
        chosen=np.array(chosen),
        effects=effects.astype(np.float64),
        **arrays,
    )
    table = pd.DataFrame(
        {
            "lambda": grid,
            "epochs": path["epochs"],
            "best_epoch": path["best_epoch"],
            "val_objective": path["val_objective"],
            "val_loss": path["val_loss"],
            "val_accuracy": path["val_accuracy"],
        }
    )
    for layer in range(n_layers):
        table[f"nnz_layer{layer}"] = path["nnz"][:, layer]
    table["chosen"] = np.arange(len(grid)) == chosen
    save_tsv(snakemake.output.path, table)
