"""Which dense fit `training.dense_decay: auto` keeps in a finished study run (issue 14).

`auto` fits the dense network with weight decay 10 and without and keeps the lower validation
loss. A study run made with decay 10 alone (`dense_decay: 10`) stored every run's decayed
fit; this refits the undecayed one from the same seed (the workflow's seed derivation) on
the stored [X, X~] and reports, per design, in how many runs and replicates the undecayed
fit has the lower validation loss: those replicates' results change under `auto`, the
others' jobs are the same computations and stand.

Run:  .venv/bin/python benchmarks/probe_dense_choice.py --run <study workdir> \
          --config <its config file> --design ar1-p50-s10-k2 [--check]
``--check`` refits the decayed fit instead for the first two runs and prints both losses
(they must agree: the refit reproduces the stored job).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from knockoffnet.path import dense_fit  # noqa: E402
from knockoffnet.runtime import load_columns, train_config  # noqa: E402
from knockoffnet.seeds import derive_seed  # noqa: E402


def study_config(path: Path) -> dict:
    """The study's config with the schema's defaults filled in, as the workflow sees it."""
    from snakemake.utils import validate

    config = yaml.safe_load(path.read_text())
    config = {k: v for k, v in config.items() if k != "simulation"} | {"cohorts": {}}
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--design", required=True)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    config = study_config(args.config)
    training = {**config["training"], "dense_decay": 10.0 if args.check else 0.0}
    rows = []
    for root in sorted((args.run / "results").glob(f"sim_{args.design}_*")):
        meta = json.loads((root / "data" / "meta.json").read_text())
        y, C = np.load(root / "data" / "y.npy"), np.load(root / "data" / "C.npy")
        U = load_columns([root / "data" / "X.npy", root / "knockoffs" / "draw0.npy", C])
        cfg = train_config(config["network"], training, meta, C.shape[1], 1)
        for stored in sorted(root.glob("path/draw0_seed*/dense.npz")):
            seed = int(stored.parent.name.split("seed")[1])
            run_seed = derive_seed(config["seed"], "train", root.name, 0, seed)
            refit = dense_fit(U, y, cfg, run_seed, log=lambda _: None)
            before = float(np.load(stored)["val_loss"][0])
            rows.append((root.name, seed, before, float(refit["val_loss"][0])))
            if args.check:
                print(*rows[-1])
                if len(rows) == 2:
                    return
    undecayed = [r for r in rows if r[3] < r[2]]
    print(
        f"{args.design}: {len(rows)} runs; the undecayed fit has the lower validation loss in "
        f"{len(undecayed)}, in replicates {sorted({r[0] for r in undecayed})}"
    )


if __name__ == "__main__":
    main()
