rule figures:
    """The report's plots, also marked for Snakemake's native report."""
    input:
        selected="results/{cohort}/selected.tsv",
        features="results/{cohort}/features.tsv",
        statistics="results/{cohort}/statistics.tsv",
        paths=get_run_paths,
        structure="results/{cohort}/pruning/structure.tsv",
        run="results/{cohort}/run.json",
    output:
        [
            report(
                f"results/{{cohort}}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
                labels={"cohort": "{cohort}", "figure": name},
            )
            for name in FIGURES
        ],
    log:
        "logs/{cohort}/figures.log",
    benchmark:
        "results/{cohort}/benchmarks/figures.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../../scripts/figures.py"


rule report:
    """One self-contained HTML report per cohort."""
    input:
        unpack(get_simulation_truth),
        figures=get_figures,
        selected="results/{cohort}/selected.tsv",
        features="results/{cohort}/features.tsv",
        diagnostics=get_diagnostics,
        prediction="results/{cohort}/pruning/prediction.tsv",
        run="results/{cohort}/run.json",
    output:
        "results/{cohort}/report.html",
    log:
        "logs/{cohort}/report.log",
    benchmark:
        "results/{cohort}/benchmarks/report.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../../scripts/report.py"
