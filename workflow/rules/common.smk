# Input functions, parameters, wildcard constraints and target lists. Only Python; no rules.
import functools
import math
import os
import re
import sys

from snakemake.exceptions import WorkflowError

SCRIPTS_DIR = os.path.join(workflow.basedir, "scripts")
sys.path.insert(0, SCRIPTS_DIR)
from knockoffnet.filters import copies_for_statistic  # noqa: E402
from knockoffnet.job_resources import (  # noqa: E402
    Shape,
    auto_lambdas_per_job,
    memory_mb,
    runtime_min,
    selection_sizes,
    shape_from_files,
    shape_from_meta,
)
from knockoffnet.runtime import FIT_KEYS, import_from  # noqa: E402
from knockoffnet.seeds import derive_seed  # noqa: E402
from knockoffnet.simulation.generators import true_groups  # noqa: E402
from knockoffnet.vocabulary import FIGURES, GROUP_MODES, dense_decays, lambda_count  # noqa: E402

# Jobs import this checkout's package, not an installed copy of another checkout.
import_from(SCRIPTS_DIR)

DRAWS = list(range(config["knockoffs"]["draws"]))
SEEDS = list(range(config["training"]["seeds"]))
# Every (draw, seed) run, in the order get_runs lists their files.
RUNS = [(d, s) for d in DRAWS for s in SEEDS]
# The run whose network Reduce Weight prunes and the report's plots show.
REFERENCE_RUN = RUNS[0]

# ---------------------------------------------------------------- simulated cohorts
# With a `simulation` block every design x replicate is an ordinary cohort
# sim_{design}_{replicate}; they are listed here, next to the user's cohorts, without
# touching config["cohorts"].
SIM = config.get("simulation")
SIM_DESIGNS, SIM_REPLICATES, SIM_RUNS, SIM_COHORTS = [], {}, [], {}
if SIM is not None:
    validate(SIM, "../schemas/simulation.schema.yaml", set_default=True)
    SIM_DESIGNS = [d for d, spec in SIM["designs"].items() if spec["run"]]
    if not SIM_DESIGNS:
        raise WorkflowError(
            "config key simulation.designs: every design has `run: false`; enable at least one"
        )
    SIM_REPLICATES = {d: SIM["designs"][d]["replicates"] or SIM["replicates"] for d in SIM_DESIGNS}
    SIM_REPORT_COUNTS = {}  # a design's own `reports` over the study's
    for d in SIM_DESIGNS:
        own = SIM["designs"][d]["reports"]
        SIM_REPORT_COUNTS[d] = min(SIM["reports"] if own is None else own, SIM_REPLICATES[d])
    SIM_RUNS = [(d, r) for d in SIM_DESIGNS for r in range(SIM_REPLICATES[d])]
    SIM_COHORTS = {f"sim_{d}_{r}": (d, r) for d, r in SIM_RUNS}
    for d in SIM_DESIGNS:
        spec = SIM["designs"][d]
        if (
            spec["level"] == "group"
            and config["knockoffs"]["groups"] == "none"
            and true_groups(spec["generator"], spec["params"]) is None
        ):
            raise WorkflowError(
                f"config key simulation.designs.{d}.level: group scores an ungrouped run per "
                f"the generator's true blocks, and generator {spec['generator']!r} has none; "
                "use generator blocks, set knockoffs.groups, or level: feature"
            )


# Mappings of user-named entries: they keep the user's order (the study's tables and the
# targets follow it); every other mapping of the config is sorted by key.
NAMED_ENTRIES = {("cohorts",), ("simulation", "designs")}


def sort_config_keys(value, at=()):
    """Sort the config's mappings by key, in place and recursively, except the order of the
    NAMED_ENTRIES themselves (their contents are sorted). Snakemake compares a job's params
    by repr, which for a dict follows its key order: without this, the same config with
    its keys in another order (edited by hand, or rewritten by a tool) reruns every job."""
    if isinstance(value, dict):
        items = [(k, sort_config_keys(v, (*at, k))) for k, v in value.items()]
        if at not in NAMED_ENTRIES:
            items.sort(key=lambda item: str(item[0]))
        value.clear()
        value.update(items)
    elif isinstance(value, list):
        value[:] = [sort_config_keys(v, (*at, "[]")) for v in value]
    return value


sort_config_keys(config)


def simulated_cohort_spec(design, replicate):
    """A simulated cohort's entry, every key filled as the schema would: its CSV, or with
    `format: plink` its PLINK fileset and phenotype table (rule simulate_plink)."""
    root = f"results/simulation/cohorts/{design}/rep{replicate}"
    spec = {
        "label": "y",
        "features": None,
        "exclude": [],
        "task": "auto",
        "positive": None,
        "covariates": [],
    }
    if SIM["designs"][design]["format"] == "plink":
        return {**spec, "plink": root, "pheno": f"{root}_pheno.tsv", "id": "IID"}
    return {**spec, "path": f"{root}.csv", "id": "id"}


COHORT_SPECS = {
    **config["cohorts"],
    **{name: simulated_cohort_spec(*dr) for name, dr in SIM_COHORTS.items()},
}
COHORTS = list(COHORT_SPECS)


def cohort_spec(cohort):
    return COHORT_SPECS[cohort]


def data_spec(cohort):
    """A cohort's entry as ingest reads it: without its `training` keys, which change its fits
    and not its data (editing them reruns the training chain, not ingest and knockoffs)."""
    return {k: v for k, v in cohort_spec(cohort).items() if k != "training"}


def training_config(cohort):
    """The `training` block as it applies to one cohort: the run's, with the keys of the
    cohort's own `training` entry (early stopping and step size, config/README.md) over it.
    The merge keeps the run's key order, so moving a key from one block to the other with
    the same value changes no job's params and reruns nothing."""
    return {**config["training"], **cohort_spec(cohort).get("training", {})}


wildcard_constraints:
    cohort="|".join(re.escape(c) for c in COHORTS),
    draw=r"\d+",
    seed=r"\d+",
    chunk=r"\d+",


@functools.cache
def n_lambdas(cohort):
    """The cohort's λ grid size: `training.lambdas.count`, with `auto` from its rows as
    known before ingest (the same number for the DAG and the grid job)."""
    shape = cohort_shape(cohort)
    return lambda_count(config["training"]["lambdas"], shape.n if shape else None)


def grid_params(cohort):
    """The grid job's training params: the fit keys, `reference`, and `lambdas` with the
    count resolved (a resolved count equal to the old number reruns nothing); the dense
    fit's decay resolved to its candidates (`auto` and [10, 0] are the same job; one
    candidate as its number, so `dense_decay: 10` is the job of the 2026-12-06 default),
    and only when one is non-zero, so a run made before the key existed reruns nothing at
    `dense_decay: 0`; `dense_coupling` likewise only when not `none`."""
    training = training_config(cohort)
    lambdas = {**training["lambdas"], "count": n_lambdas(cohort)}
    decays = dense_decays(training["dense_decay"], training["optimizer"], training["learning_rate"])
    dense = {"dense_decay": decays[0] if len(decays) == 1 else list(decays)}
    dense = dense if any(decays) else {}
    if training["dense_coupling"] != "none":  # absent at the default: old runs rerun nothing
        dense["dense_coupling"] = training["dense_coupling"]
    return {**fit_params(cohort, "lambdas", "reference"), "lambdas": lambdas, **dense}


def grid_threads():
    """Threads of a `lambda_grid` job: `training.threads`, or on a local run with fewer grid
    jobs than cores the cores shared among them. Nothing else can run while a seed's grid
    job does (its train jobs wait for its grid), and its λ check, batched over probes, uses
    a second thread at 1.56× (benchmarks/README.md); results do not depend on threads
    (docs/method.md, "Device, threads, determinism"). Cluster jobs keep `training.threads`:
    more CPUs per job would only wait longer in the queue."""
    threads = config["training"]["threads"]
    try:
        cores = workflow.cores if workflow.local_exec else None
    except WorkflowError:  # no --cores (e.g. a dry run): nothing to share
        cores = None
    if not isinstance(cores, int):
        return threads
    grid_jobs = max(1, len(RUNS) * len(COHORTS))
    return max(threads, cores // grid_jobs)


def n_chunks(cohort):
    return math.ceil(n_lambdas(cohort) / lambdas_per_job(cohort))


def path_group(wildcards):
    """Snakemake group of a path's small jobs on a cluster: `lambda_grid` and its one `train`
    job (the whole λ grid, as `lambdas_per_job: auto` gives every cohort whose path is under
    about a minute of work) run in one cluster job instead of queueing twice for seconds of
    work. Components are single (draw, seed) paths; `group-components: {path: k}` bundles k.
    A path in several chunks is not grouped: its chunks are a minute or more each and run
    side by side on their own nodes (grouped, they would ask for their summed GPUs). Both
    rules run on the same partition (the profile's `set-resources`); local runs ignore groups."""
    return "path" if n_chunks(wildcards.cohort) == 1 else None


def chunk_slice(cohort, chunk):
    """[start, stop) of the lambda grid trained by job `chunk` of `cohort`."""
    per_job = lambdas_per_job(cohort)
    start = int(chunk) * per_job
    return start, min(start + per_job, n_lambdas(cohort))


@functools.cache
def lambdas_per_job(cohort):
    """λ per `train` job: the config's number (0 = the whole grid), or with `auto` enough λ
    for about a minute of work from the cohort's shape (known before ingest from its files
    or its simulation design; unknown shapes train the whole grid in one job)."""
    per_job = config["training"]["lambdas_per_job"]
    if per_job != "auto":
        return per_job or n_lambdas(cohort)
    shape = cohort_shape(cohort)
    if shape is None:
        return n_lambdas(cohort)
    return auto_lambdas_per_job(shape, cohort_config(cohort), config["training"]["threads"])


def cohort_shape(cohort):
    """(n, p) of a cohort before ingest, or None where its files do not exist yet."""
    if cohort in SIM_COHORTS:
        design = SIM["designs"][SIM_COHORTS[cohort][0]]
        return Shape(int(design["n"]), int(design.get("params", {}).get("p", 1)))
    try:
        return shape_from_files(cohort_files(cohort_spec(cohort)))
    except OSError:  # not there yet (a file another rule writes)
        return None


def cohort_files(spec):
    """The input files of a cohort: its table, or its PLINK fileset and phenotype table."""
    if spec.get("plink"):
        return [f"{spec['plink']}{suffix}" for suffix in (".bed", ".bim", ".fam")] + [spec["pheno"]]
    return [spec["path"]]


def group_table_path():
    """The user's feature → group table, or None for `none` and `auto`."""
    mode = config["knockoffs"]["groups"]
    return None if mode in GROUP_MODES else mode


def get_group_inputs(wildcards):
    """X and meta; the user's group table when knockoffs.groups names one; the correlation
    links when `auto` clusters within a block-wise draw's blocks."""
    root = f"results/{wildcards.cohort}"
    files = {"X": f"{root}/data/X.npy", "meta": f"{root}/data/meta.json"}
    if group_table_path():
        files["table"] = group_table_path()
    if config["knockoffs"]["groups"] == "auto":
        files["links"] = f"{root}/knockoffs/correlation_links.npz"
    return files


def validate_semantics():
    """Checks a JSON schema cannot express; each names the key and the fix."""
    if not COHORTS:
        raise WorkflowError(
            "config key `cohorts` is empty: add at least one cohort (see config/README.md)"
        )
    table = group_table_path()
    if table and not os.path.exists(table):
        raise WorkflowError(
            f"config key knockoffs.groups: {table} not found; give `none`, `auto` or the path "
            "of a table with columns feature and group (relative to the working directory)"
        )
    if config["knockoffs"]["groups"] != "none" and config["knockoffs"]["method"] != "model-x":
        raise WorkflowError(
            "config key knockoffs.groups needs knockoffs.method: model-x (fixed-x group "
            "knockoffs are not implemented); set method: model-x or groups: none"
        )
    copies = config["knockoffs"]["copies"]
    copies = 1 if copies == "auto" else copies  # auto adapts to the method and statistic
    if copies > 1 and config["knockoffs"]["method"] != "model-x":
        raise WorkflowError(
            f"config key knockoffs.copies: {copies} copies need knockoffs.method: model-x "
            "(fixed-x knockoffs exist for one copy only); set copies: 1 or method: model-x"
        )
    if copies > 1 and config["selection"]["statistic"] != "importance":
        raise WorkflowError(
            f"config key knockoffs.copies: {copies} copies need selection.statistic: "
            "importance (the paper's statistics compare a feature with one knockoff)"
        )
    for name in SIM_COHORTS:
        if name in config["cohorts"]:
            raise WorkflowError(
                f"config key cohorts.{name} clashes with a simulated cohort; rename it"
            )
    if SIM is not None and "simulation" in config["cohorts"]:
        raise WorkflowError(
            "config key cohorts.simulation: the name is reserved for results/simulation/; "
            "rename that cohort"
        )
    for name, spec in config["cohorts"].items():
        if bool(spec.get("path")) == bool(spec.get("plink")):
            raise WorkflowError(
                f"config key cohorts.{name}: give either `path` (a table) or `plink` (the prefix "
                "of a .bed/.bim/.fam fileset, with `pheno`), not both and not neither"
            )
        if spec.get("plink") and not spec.get("pheno"):
            raise WorkflowError(
                f"config key cohorts.{name}.pheno: a PLINK cohort needs the phenotype table "
                "(columns IID, the label and any covariates)"
            )
        key = "path" if spec.get("path") else "plink"
        for path in cohort_files(spec):
            if not path.startswith("results/") and not os.path.exists(path):
                raise WorkflowError(
                    f"config key cohorts.{name}.{key}: {path} not found (relative paths are read "
                    f"from {os.getcwd()}); fix the path or run snakemake from the right directory"
                )
        for key in ("features", "exclude", "covariates"):
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
    return cohort_files(cohort_spec(wildcards.cohort))


def get_chunks(wildcards):
    return expand(
        "results/{cohort}/path/draw{draw}_seed{seed}/chunk{chunk}.npz",
        cohort=wildcards.cohort,
        draw=wildcards.draw,
        seed=wildcards.seed,
        chunk=range(n_chunks(wildcards.cohort)),
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


# Reduce Weight's masks of the recommended filter's network (rule prune), drawn by the report.
MASKS_FILE = f"results/{{cohort}}/pruning/masks_{config['selection']['recommended']}.npz"


def get_result_tables(wildcards):
    """The selection tables, metadata and λ-path tables the figures and the report read."""
    root = f"results/{wildcards.cohort}"
    return {
        "selected": f"{root}/selected.tsv",
        "features": f"{root}/features.tsv",
        "statistics": f"{root}/statistics.tsv",
        "thresholds": f"{root}/thresholds.tsv",
        "meta": f"{root}/data/meta.json",
        "labels": f"{root}/labels.tsv",
        "run": f"{root}/run.json",
        "paths": get_run_paths(wildcards),
    }


def get_benchmarks(wildcards):
    """The benchmark file of every job of a cohort upstream of its report (the report's
    time-and-memory table)."""
    root = f"results/{wildcards.cohort}/benchmarks"
    files = [
        f"{root}/{rule}.tsv" for rule in ("ingest", "provenance", "select", "prune", "figures")
    ]
    files += [f"{root}/knockoffs/draw{d}.tsv" for d in DRAWS]
    for d, s in RUNS:
        files += [
            f"{root}/lambda_grid/draw{d}_seed{s}.tsv",
            f"{root}/collect_z/draw{d}_seed{s}.tsv",
        ]
        files += [
            f"{root}/train/draw{d}_seed{s}_chunk{c}.tsv" for c in range(n_chunks(wildcards.cohort))
        ]
    if wildcards.cohort in SIM_COHORTS:
        files.append(f"{root}/simulation_figure.tsv")
    return files


def get_figures(wildcards):
    names = [*FIGURES, *(["fdr_power"] if wildcards.cohort in SIM_COHORTS else [])]
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
    resolved["cohorts"] = {cohort: cohort_spec(cohort)}
    resolved["training"] = training_config(cohort)
    return resolved


# ---------------------------------------------------------------- parameters and seeds
# Each job gets only what changes its output, so that e.g. one more training seed adds one
# lambda_grid/train/collect_z chain and reruns nothing already trained.


def run_seed(kind, *parts):
    """The one derivation of every job seed from the master seed (knockoffnet.seeds)."""
    return derive_seed(config["seed"], kind, *parts)


def knockoff_seed(wildcards):
    return run_seed("knockoffs", wildcards.cohort, int(wildcards.draw))


def training_seed(wildcards):
    return run_seed("train", wildcards.cohort, int(wildcards.draw), int(wildcards.seed))


def _block_only_keys():
    """Keys only a block-wise draw reads: left out of the params of a joint draw
    (`sampling: full`), so changing them reruns nothing there."""
    return ("block_order",) if config["knockoffs"]["sampling"] == "full" else ()


def knockoff_params():
    """The knockoffs block without `draws` (how many draws there are changes no draw),
    without the grouping keys (the draw reads their result, groups.tsv) and without the
    block-only keys of a joint draw."""
    skip = ("draws", "groups", "group_cutoff", *_block_only_keys())
    ko = {k: v for k, v in config["knockoffs"].items() if k not in skip}
    ko["copies"] = copies_for_statistic(ko["copies"], config["selection"]["statistic"])
    return ko


def order_params():
    """What decides whether a draw is cut from a correlation order (None for a joint draw,
    `sampling: full`, so changing them reruns nothing there)."""
    if config["knockoffs"]["sampling"] == "full":
        return None
    return {k: config["knockoffs"][k] for k in ("sampling", "method", "block_order")}


def group_window_params():
    """What `groups: auto` reads to cluster within a block-wise draw's blocks (None for
    other groupings, so changing these keys reruns nothing there)."""
    if config["knockoffs"]["groups"] != "auto":
        return None
    keys = ("sampling", "max_block", "method", "block_order")
    return {k: config["knockoffs"][k] for k in keys if k not in _block_only_keys()}


def network_params():
    return {k: config["network"][k] for k in ("hidden", "activation", "units")}


def fit_params(cohort, *extra):
    """The training keys that change a fitted path (runtime.FIT_KEYS) and `extra` ones;
    `outcome_scale` only for a cohort whose task is `regression` or `auto` (a classification
    fit ignores it, so changing it reruns nothing there)."""
    keys = (*FIT_KEYS, *extra)
    if cohort_spec(cohort).get("task", "auto") in ("regression", "auto"):
        keys = (*keys, "outcome_scale")
    training = training_config(cohort)
    return {k: training[k] for k in keys}


def selection_params():
    """The selection block without `recommended` (a report choice, not a selection one)."""
    return {k: v for k, v in config["selection"].items() if k != "recommended"}


def run_seeds(cohort):
    """Every seed of a cohort's runs, for run.json."""
    return {
        "master": config["seed"],
        "knockoffs": {str(d): run_seed("knockoffs", cohort, d) for d in DRAWS},
        "training": {f"draw{d}_seed{s}": run_seed("train", cohort, d, s) for d, s in RUNS},
    }


def job_shape(input):
    """The cohort's shape: from meta.json once ingest wrote it, else from the input files.
    A missing file makes Snakemake defer the request until the job is ready to run."""
    if "meta" in input.keys():
        return shape_from_meta(input.meta)
    return shape_from_files([str(f) for f in input])


def job_config(wildcards):
    """The config a job's resource model reads: its cohort's (training keys of its own
    included), or the run's for a job of no one cohort (the study's tables)."""
    cohort = getattr(wildcards, "cohort", None)
    return cohort_config(cohort) if cohort in COHORT_SPECS else config


def job_mem(rule):
    """mem_mb of `rule`'s jobs from a model of their work (knockoffnet.job_resources)."""

    def mem(wildcards, input, attempt):
        return memory_mb(rule, job_shape(input), job_config(wildcards)) * attempt

    return mem


def job_gpu():
    """A GPU is asked for only when training may use one: `training.device: cpu` asks for none,
    so CPU-only clusters need not list a GPU partition (auto and cuda ask for one)."""
    return 0 if config["training"]["device"] == "cpu" else 1


def job_runtime(rule, selected=None):
    """runtime (minutes) of `rule`'s jobs; each retry multiplies it by the attempt.
    `selected`: the input holding selected.tsv, for a job whose time follows its sets."""

    def runtime(wildcards, input, threads, attempt):
        shape = job_shape(input)
        chosen = selection_sizes(input[selected], shape.p) if selected else None
        return runtime_min(rule, shape, job_config(wildcards), threads, chosen) * attempt

    return runtime
