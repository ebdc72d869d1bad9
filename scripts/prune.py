"""Snakemake entry: Reduce Weight and the prediction comparison for every filter (rule `prune`).

Filters that selected the same features share one computation (with one knockoff draw, ebh
and ML select the same set): the comparison is the expensive part of the rule.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from knockoffnet.export import export_model
from knockoffnet.pruning import structure_table, summary_counts
from knockoffnet.retraining import METHOD_LABELS, comparison_rows, reduce_weight
from knockoffnet.runtime import rule_context, save_npz, save_tsv
from knockoffnet.vocabulary import FILTERS

with rule_context(snakemake) as log:
    opts, net = snakemake.params.pruning, snakemake.params.network
    meta = json.loads(Path(snakemake.input.meta).read_text())
    y = np.load(snakemake.input.y)
    rows = comparison_rows(y, meta["task"], opts["max_rows"], int(snakemake.params.seed))
    if rows.size < y.size:
        log.info("comparison on %d of %d rows (pruning.max_rows)", rows.size, y.size)
    # only the compared rows are read into memory, never the whole of a large cohort's X
    X, y = np.load(snakemake.input.X, mmap_mode="r")[rows], y[rows]
    features = np.asarray(meta["features"])
    # Layer 0 per input (unit channels collapsed): the pruned network is the paper's MLP on
    # the selected features (docs/method.md, "Reduce Weight").
    with np.load(snakemake.input.z) as run:
        deeper = range(1, len(net["hidden"]) + 1)
        Z = [run["Z0_input"]] + [run[f"Z{layer}"] for layer in deeper]
        magnitude = [np.abs(run["W0_input"])] + [np.abs(run[f"W{layer}"]) for layer in deeper]
    selected = pd.read_csv(snakemake.input.selected, sep="\t")
    chosen = {f: selected.loc[selected["filter"] == f, "feature"].tolist() for f in FILTERS}
    chosen["all features"] = features.tolist()
    recommended = snakemake.params.recommended
    drawn = recommended if chosen.get(recommended) else "all features"
    models = Path(snakemake.output.models)
    models.mkdir(parents=True, exist_ok=True)
    done, tables = {}, {"structure": [], "summary": [], "prediction": [], "repeats": []}
    for name, names in chosen.items():
        if not names:
            tables["summary"].append(
                {"filter": name, "note": "no features selected; nothing to prune"}
            )
            log.info("%s: empty selection, skipped", name)
            continue
        columns = np.flatnonzero(np.isin(features, names))
        key = tuple(columns)
        if key not in done:
            done[key] = (name, reduce_weight(
                X, y, meta["task"], max(2, len(meta["classes"])), tuple(net["hidden"]), Z,
                magnitude if opts["tie_break"] == "magnitude" else None, columns,
                opts["deletion_rate"], opts["repeats"], int(snakemake.params.seed),
                activation=net["activation"], dropout=opts["dropout"],
                max_epochs=opts["max_epochs"], workers=snakemake.threads,
            ))  # fmt: skip
        first, fit = done[key]
        note = "" if first == name else f"same features as {first}: its computation reused"
        tables["structure"].append(structure_table(fit.masks).assign(filter=name))
        counts = summary_counts(fit.masks)
        tables["summary"].append({"filter": name, **counts, "rows": rows.size, "note": note})
        for part, frame in (("repeats", fit.per_repeat), ("prediction", fit.summary)):
            frame = frame.assign(method=frame["method"].map(METHOD_LABELS))
            frame.insert(0, "filter", name)
            if part == "prediction":
                frame.insert(2, "n_features", len(columns))
            tables[part].append(frame)
        export_model(
            models / name.replace(" ", "_"), fit.weights, fit.biases,
            activation=net["activation"], task=meta["task"], classes=meta["classes"],
            features=features[columns].tolist(), means=np.asarray(meta["means"])[columns],
            sds=np.asarray(meta["sds"])[columns],
        )  # fmt: skip
        if name == drawn:
            save_npz(
                snakemake.output.masks,
                inputs=features[columns].astype(str),
                filter=np.array(name),
                **{f"mask{layer}": m for layer, m in enumerate(fit.masks)},
            )
        log.info("%s: %d features %s", name, len(columns), note or summary_counts(fit.masks))
    structure = pd.concat(tables["structure"], ignore_index=True)
    save_tsv(snakemake.output.structure, structure[["filter", *structure.columns[:-1]]])
    save_tsv(snakemake.output.summary, pd.DataFrame(tables["summary"]))
    save_tsv(snakemake.output.prediction, pd.concat(tables["prediction"], ignore_index=True))
    save_tsv(snakemake.output.repeats, pd.concat(tables["repeats"], ignore_index=True))
