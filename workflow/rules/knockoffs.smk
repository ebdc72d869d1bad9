rule correlation_links:
    """Each feature's strongest correlation links (the block order's cost), once per cohort."""
    input:
        X="results/{cohort}/data/X.npy",
        meta="results/{cohort}/data/meta.json",
    output:
        links="results/{cohort}/knockoffs/correlation_links.npz",
    log:
        "logs/{cohort}/knockoffs/correlation_links.log",
    benchmark:
        "results/{cohort}/benchmarks/correlation_links.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=job_mem("correlation_links"),
        runtime=job_runtime("correlation_links"),
    params:
        order=order_params(),
    script:
        "../../scripts/correlation_links.py"


rule groups:
    """Feature groups for group knockoffs: singletons, correlation clusters or a user table."""
    input:
        unpack(get_group_inputs),
    output:
        groups="results/{cohort}/groups.tsv",
    log:
        "logs/{cohort}/groups.log",
    benchmark:
        "results/{cohort}/benchmarks/groups.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=job_mem("groups"),
        runtime=job_runtime("groups"),
    params:
        groups=config["knockoffs"]["groups"],
        # only `auto` reads the cutoff and the draw's blocks: changing them reruns nothing
        # otherwise
        cutoff=(
            config["knockoffs"]["group_cutoff"]
            if config["knockoffs"]["groups"] == "auto"
            else None
        ),
        sampling=group_window_params(),
    script:
        "../../scripts/groups.py"


rule knockoffs:
    """One knockoff draw X~ of the standardised features, its S vector and diagnostics."""
    input:
        X="results/{cohort}/data/X.npy",
        meta="results/{cohort}/data/meta.json",
        groups="results/{cohort}/groups.tsv",
        links="results/{cohort}/knockoffs/correlation_links.npz",
    output:
        Xk="results/{cohort}/knockoffs/draw{draw}.npy",
        s="results/{cohort}/knockoffs/draw{draw}_s.npy",
        diagnostics="results/{cohort}/knockoffs/draw{draw}_diagnostics.tsv",
    log:
        "logs/{cohort}/knockoffs/draw{draw}.log",
    benchmark:
        "results/{cohort}/benchmarks/knockoffs/draw{draw}.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=job_mem("knockoffs"),
        runtime=job_runtime("knockoffs"),
    params:
        knockoffs=knockoff_params(),
        draw=lambda wc: int(wc.draw),
        seed=knockoff_seed,
    script:
        "../../scripts/knockoffs.py"
