rule figures:
    """The report's plots, also marked for Snakemake's native report."""
    input:
        unpack(get_result_tables),
        structure="results/{cohort}/pruning/structure.tsv",
        masks=MASKS_FILE,
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
        mem_mb=job_mem("figures"),
        runtime=job_runtime("figures"),
    params:
        runs=RUNS,
    script:
        "../../scripts/figures.py"


rule report:
    """One self-contained HTML report per cohort; it reads only these inputs."""
    input:
        unpack(get_simulation_truth),
        unpack(get_result_tables),
        figures=get_figures,
        diagnostics=get_diagnostics,
        structure="results/{cohort}/pruning/structure.tsv",
        summary="results/{cohort}/pruning/summary.tsv",
        prediction="results/{cohort}/pruning/prediction.tsv",
        masks=MASKS_FILE,
        benchmarks=get_benchmarks,
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
        mem_mb=job_mem("report"),
        runtime=job_runtime("report"),
    params:
        runs=RUNS,
        benchmark_root=lambda wc: f"results/{wc.cohort}/benchmarks",
    script:
        "../../scripts/report.py"
