rule select_features:
    """One Layer / Multiple Layers statistics, knockoff thresholds, VWA and e-BH aggregation."""
    input:
        runs=get_runs,
        meta="results/{cohort}/data/meta.json",
        groups="results/{cohort}/groups.tsv",
    output:
        statistics="results/{cohort}/statistics.tsv",
        thresholds="results/{cohort}/thresholds.tsv",
        selected=report(
            "results/{cohort}/selected.tsv",
            caption="../report/selected.rst",
            category="Selection",
            labels={"cohort": "{cohort}", "table": "selected features"},
        ),
        features=report(
            "results/{cohort}/features.tsv",
            caption="../report/features.rst",
            category="Selection",
            labels={"cohort": "{cohort}", "table": "per-feature evidence"},
        ),
    log:
        "logs/{cohort}/select.log",
    benchmark:
        "results/{cohort}/benchmarks/select.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=job_mem("select_features"),
        runtime=job_runtime("select_features"),
    params:
        selection=config["selection"],
        runs=RUNS,
    script:
        "../../scripts/select_features.py"
