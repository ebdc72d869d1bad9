rule ingest:
    """Read, validate and standardise one cohort; write the class <-> code mapping."""
    input:
        get_cohort_file,
    output:
        X="results/{cohort}/data/X.npy",
        y="results/{cohort}/data/y.npy",
        C="results/{cohort}/data/C.npy",
        meta="results/{cohort}/data/meta.json",
        labels="results/{cohort}/labels.tsv",
    log:
        "logs/{cohort}/ingest.log",
    benchmark:
        "results/{cohort}/benchmarks/ingest.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=job_mem("ingest"),
        runtime=job_runtime("ingest"),
    params:
        spec=lambda wc: data_spec(wc.cohort),
        preprocess=config["preprocess"],
        knockoff_method=config["knockoffs"]["method"],
        val_fraction=config["training"]["val_fraction"],
    script:
        "../../scripts/ingest.py"


rule provenance:
    """Record what produced this cohort's results: config, versions, commit, input hashes."""
    input:
        cohort=get_cohort_file,
        meta="results/{cohort}/data/meta.json",
    output:
        "results/{cohort}/run.json",
    log:
        "logs/{cohort}/provenance.log",
    benchmark:
        "results/{cohort}/benchmarks/provenance.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=job_mem("provenance"),
        runtime=job_runtime("provenance"),
    params:
        config=lambda wc: cohort_config(wc.cohort),
        cohort=lambda wc: wc.cohort,
        seeds=lambda wc: run_seeds(wc.cohort),
    script:
        "../../scripts/provenance.py"
