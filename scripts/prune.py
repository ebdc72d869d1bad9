"""Snakemake entry: Reduce Weight and the prediction comparison (rule `prune`)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from knockoffnet.export import export_model
from knockoffnet.pruning import (
    compact,
    prune_masks,
    remove_dead_neurons,
    restrict_inputs,
    structure_table,
    summary_counts,
)
from knockoffnet.retraining import METHOD_LABELS, compare_predictions, train_network
from knockoffnet.runtime import rule_context, save_npz, save_tsv
from knockoffnet.vocabulary import FILTERS

with rule_context(snakemake) as log:
    opts = snakemake.params.pruning
    hidden = tuple(snakemake.params.network["hidden"])
    activation = snakemake.params.network["activation"]
    meta = json.loads(Path(snakemake.input.meta).read_text())
    X, y = np.load(snakemake.input.X), np.load(snakemake.input.y)
    features = np.asarray(meta["features"])
    n_classes = max(2, len(meta["classes"]))
    # Layer 0 per input (unit channels collapsed): the pruned network is the paper's MLP on
    # the selected features (docs/method.md, "Reduce Weight").
    with np.load(snakemake.input.z) as run:
        deeper = range(1, len(hidden) + 1)
        Z = [run["Z0_input"]] + [run[f"Z{layer}"] for layer in deeper]
        magnitude = [np.abs(run["W0_input"])] + [np.abs(run[f"W{layer}"]) for layer in deeper]
    selected = pd.read_csv(snakemake.input.selected, sep="\t")
    seed = int(snakemake.params.seed)

    chosen = {f: selected.loc[selected["filter"] == f, "feature"].tolist() for f in FILTERS}
    chosen["all features"] = features.tolist()
    models = Path(snakemake.output.models)
    models.mkdir(parents=True, exist_ok=True)
    structures, summaries, predictions, repeats = [], [], [], []
    recommended = snakemake.params.recommended
    drawn = recommended if chosen.get(recommended) else "all features"
    for name, names in chosen.items():
        if not names:
            summaries.append({"filter": name, "note": "no features selected; nothing to prune"})
            log.info("%s: empty selection, skipped", name)
            continue
        columns = np.flatnonzero(np.isin(features, names))
        masks = remove_dead_neurons(
            prune_masks(
                restrict_inputs(Z, columns),
                opts["deletion_rate"],
                magnitude=restrict_inputs(magnitude, columns)
                if opts["tie_break"] == "magnitude"
                else None,
            )
        )
        table = structure_table(masks)
        table.insert(0, "filter", name)
        structures.append(table)
        summaries.append({"filter": name, **summary_counts(masks), "note": ""})
        per_repeat, summary = compare_predictions(
            X[:, columns],
            y,
            meta["task"],
            n_classes,
            hidden,
            masks,
            repeats=opts["repeats"],
            seed=seed,
            activation=activation,
            dropout=opts["dropout"],
            max_epochs=opts["max_epochs"],
        )
        per_repeat["method"] = per_repeat["method"].map(METHOD_LABELS)
        summary["method"] = summary["method"].map(METHOD_LABELS)
        per_repeat.insert(0, "filter", name)
        summary.insert(0, "filter", name)
        summary.insert(2, "n_features", len(columns))
        repeats.append(per_repeat)
        predictions.append(summary)
        weights, biases, _ = train_network(
            X[:, columns],
            y,
            hidden,
            meta["task"],
            n_classes,
            "reduce_weight",
            mask=masks,
            activation=activation,
            seed=seed,
            max_epochs=opts["max_epochs"],
        )
        weights, biases = compact(weights, biases, masks)
        safe = name.replace(" ", "_")
        export_model(
            models / safe,
            weights,
            biases,
            activation=activation,
            task=meta["task"],
            classes=meta["classes"],
            features=features[columns].tolist(),
            means=np.asarray(meta["means"])[columns],
            sds=np.asarray(meta["sds"])[columns],
        )
        if name == drawn:
            save_npz(
                snakemake.output.masks,
                inputs=features[columns].astype(str),
                filter=np.array(name),
                **{f"mask{layer}": m for layer, m in enumerate(masks)},
            )
        log.info("%s: %d features, %s", name, len(columns), summary_counts(masks))
    if drawn not in chosen or not chosen[drawn]:
        raise RuntimeError("no network to draw")
    save_tsv(snakemake.output.structure, pd.concat(structures, ignore_index=True))
    save_tsv(snakemake.output.summary, pd.DataFrame(summaries))
    save_tsv(snakemake.output.prediction, pd.concat(predictions, ignore_index=True))
    save_tsv(snakemake.output.repeats, pd.concat(repeats, ignore_index=True))
