rule prune:
    """Reduce Weight: prune by Z, drop dead neurons, compare General / Dropout / Reduce Weight."""
    input:
        z="results/{{cohort}}/z/draw{draw}_seed{seed}.npz".format(
            draw=REFERENCE_RUN[0], seed=REFERENCE_RUN[1]
        ),
        selected="results/{cohort}/selected.tsv",
        X="results/{cohort}/data/X.npy",
        y="results/{cohort}/data/y.npy",
        meta="results/{cohort}/data/meta.json",
    output:
        structure="results/{cohort}/pruning/structure.tsv",
        summary="results/{cohort}/pruning/summary.tsv",
        prediction="results/{cohort}/pruning/prediction.tsv",
        repeats="results/{cohort}/pruning/prediction_repeats.tsv",
        masks=MASKS_FILE,
        models=directory("results/{cohort}/pruning/models"),
    log:
        "logs/{cohort}/prune.log",
    benchmark:
        "results/{cohort}/benchmarks/prune.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=job_mem("prune"),
        runtime=job_runtime("prune", selected="selected"),
    params:
        pruning=config["pruning"],
        network=network_params(),
        seed=lambda wc: run_seed("prune", wc.cohort),
        recommended=config["selection"]["recommended"],
    script:
        "../../scripts/prune.py"
