# Input functions, wildcard constraints and target lists. Only Python; no rules here.
import math
import os
import re

from snakemake.exceptions import WorkflowError

COHORTS = list(config["cohorts"])
DRAWS = list(range(config["knockoffs"]["draws"]))
SEEDS = list(range(config["training"]["seeds"]))
# Every (draw, seed) run, in the order get_runs lists their files.
RUNS = [(d, s) for d in DRAWS for s in SEEDS]
PATH_FILTERS = ["OL", "ML"]
FIGURES = [
    "ol_scatter",
    "ml_scatter",
    "w_sorted",
    "frequency_heatmap",
    "lambda_path",
    "effects",
    "network",
]


wildcard_constraints:
    cohort="|".join(re.escape(c) for c in COHORTS),
    draw=r"\d+",
    seed=r"\d+",
    chunk=r"\d+",


def n_lambdas():
    values = config["training"]["lambdas"]["values"]
    return len(values) if values else config["training"]["lambdas"]["count"]


def n_chunks():
    per_job = config["training"]["lambdas_per_job"]
    return 1 if per_job == 0 else math.ceil(n_lambdas() / per_job)


def chunk_slice(chunk):
    """[start, stop) of the lambda grid trained by job `chunk`."""
    per_job = config["training"]["lambdas_per_job"] or n_lambdas()
    start = int(chunk) * per_job
    return start, min(start + per_job, n_lambdas())


def validate_semantics():
    """Checks a JSON schema cannot express; each names the key and the fix."""
    if not config["cohorts"]:
        raise WorkflowError(
            "config key `cohorts` is empty: add at least one cohort (see config/README.md)"
        )
    for name, spec in config["cohorts"].items():
        path = spec["path"]
        if not path.startswith("results/") and not os.path.exists(path):
            raise WorkflowError(
                f"config key cohorts.{name}.path: {path} not found (relative paths are read from "
                f"{os.getcwd()}); fix the path or run snakemake from the right directory"
            )
        for key in ("features", "exclude"):
            values = spec.get(key) or []
            if len(set(values)) != len(values):
                raise WorkflowError(
                    f"config key cohorts.{name}.{key} lists a column twice; list each once"
                )
    values = config["training"]["lambdas"]["values"]
    if values and len(set(values)) != len(values):
        raise WorkflowError(
            "config key training.lambdas.values has repeated values; give distinct lambdas"
        )


validate_semantics()


def get_cohort_file(wildcards):
    return config["cohorts"][wildcards.cohort]["path"]


def get_chunks(wildcards):
    return expand(
        "results/{cohort}/path/draw{draw}_seed{seed}/chunk{chunk}.npz",
        cohort=wildcards.cohort,
        draw=wildcards.draw,
        seed=wildcards.seed,
        chunk=range(n_chunks()),
    )


def get_runs(wildcards):
    return expand(
        "results/{cohort}/z/draw{draw}_seed{seed}.npz",
        cohort=wildcards.cohort,
        draw=DRAWS,
        seed=SEEDS,
    )


def get_run_paths(wildcards):
    return expand(
        "results/{cohort}/z/draw{draw}_seed{seed}_path.tsv",
        cohort=wildcards.cohort,
        draw=DRAWS,
        seed=SEEDS,
    )


def get_diagnostics(wildcards):
    return expand(
        "results/{cohort}/knockoffs/draw{draw}_diagnostics.tsv",
        cohort=wildcards.cohort,
        draw=DRAWS,
    )


def get_figures(wildcards):
    names = FIGURES + (["fdr_power"] if wildcards.cohort in SIM_COHORTS else [])
    return expand("results/{cohort}/figures/{name}.png", cohort=wildcards.cohort, name=names)


def get_simulation_truth(wildcards):
    """A simulated cohort's report also reads its truth and its design's replicate scores."""
    if wildcards.cohort not in SIM_COHORTS:
        return {}
    design, replicate = SIM_COHORTS[wildcards.cohort]
    return {
        "truth": f"results/simulation/cohorts/{design}/rep{replicate}_truth.json",
        "scores": design_scores(design),
    }


def design_scores(design):
    """The score CSV of every replicate of a simulation design."""
    return [f"results/simulation/scores/{design}/rep{r}.csv" for r in range(SIM_REPLICATES[design])]


def get_design_scores(wildcards):
    return design_scores(wildcards.design)


def get_final_outputs():
    return expand(["results/{cohort}/report.html", "results/{cohort}/run.json"], cohort=COHORTS)


def cohort_config(cohort):
    """The config as it concerns one cohort (other cohorts left out, so adding one reruns nothing)."""
    resolved = {k: v for k, v in config.items() if k not in ("cohorts", "simulation")}
    resolved["cohorts"] = {cohort: config["cohorts"][cohort]}
    return resolved


def training_params():
    """The subset of the config that the training scripts need, as plain data."""
    return {
        "network": config["network"],
        "training": config["training"],
        "seed": config["seed"],
    }


def mem_from_input(factor, floor=1000):
    """Memory (MB) from the input size: arrays are held a few times over while computing."""

    def mem(wildcards, input, attempt):
        return int(max(floor, factor * input.size_mb) * attempt)

    return mem


def runtime_from_input(minutes_per_mb, floor=10):
    def runtime(wildcards, input, attempt):
        return int(max(floor, minutes_per_mb * input.size_mb) * attempt)

    return runtime
