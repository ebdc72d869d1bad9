rule lambda_grid:
    """The dense fit of one (draw, seed), its lambda grid and the reference model's score."""
    input:
        X="results/{cohort}/data/X.npy",
        y="results/{cohort}/data/y.npy",
        C="results/{cohort}/data/C.npy",
        meta="results/{cohort}/data/meta.json",
        Xk="results/{cohort}/knockoffs/draw{draw}.npy",
    output:
        grid="results/{cohort}/path/draw{draw}_seed{seed}/grid.npy",
        dense="results/{cohort}/path/draw{draw}_seed{seed}/dense.npz",
    log:
        "logs/{cohort}/path/draw{draw}_seed{seed}_grid.log",
    benchmark:
        "results/{cohort}/benchmarks/lambda_grid/draw{draw}_seed{seed}.tsv"
    group:
        path_group
    conda:
        "../../envs/train.yaml"
    threads: grid_threads()
    resources:
        mem_mb=job_mem("lambda_grid"),
        runtime=job_runtime("lambda_grid"),
        gpu=job_gpu(),
    params:
        network=network_params(),
        training=lambda wc: grid_params(wc.cohort),
        seed=training_seed,
    script:
        "../../scripts/lambda_grid.py"


rule train:
    """Proximal L1 training of one contiguous chunk of the lambda grid, batched over lambda."""
    input:
        X="results/{cohort}/data/X.npy",
        y="results/{cohort}/data/y.npy",
        C="results/{cohort}/data/C.npy",
        meta="results/{cohort}/data/meta.json",
        Xk="results/{cohort}/knockoffs/draw{draw}.npy",
        grid="results/{cohort}/path/draw{draw}_seed{seed}/grid.npy",
        dense="results/{cohort}/path/draw{draw}_seed{seed}/dense.npz",
    output:
        "results/{cohort}/path/draw{draw}_seed{seed}/chunk{chunk}.npz",
    log:
        "logs/{cohort}/path/draw{draw}_seed{seed}_chunk{chunk}.log",
    benchmark:
        "results/{cohort}/benchmarks/train/draw{draw}_seed{seed}_chunk{chunk}.tsv"
    group:
        path_group
    conda:
        "../../envs/train.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=job_mem("train"),
        runtime=job_runtime("train"),
        gpu=job_gpu(),
    params:
        network=network_params(),
        training=lambda wc: fit_params(wc.cohort),
        seed=training_seed,
        slice=lambda wc: chunk_slice(wc.cohort, wc.chunk),
    script:
        "../../scripts/train.py"


rule collect_z:
    """Merge the chunks of one (draw, seed) into Z per weight, the chosen-lambda network, effects."""
    input:
        chunks=get_chunks,
        grid="results/{cohort}/path/draw{draw}_seed{seed}/grid.npy",
        dense="results/{cohort}/path/draw{draw}_seed{seed}/dense.npz",
        X="results/{cohort}/data/X.npy",
        y="results/{cohort}/data/y.npy",
        C="results/{cohort}/data/C.npy",
        meta="results/{cohort}/data/meta.json",
        Xk="results/{cohort}/knockoffs/draw{draw}.npy",
    output:
        z="results/{cohort}/z/draw{draw}_seed{seed}.npz",
        path="results/{cohort}/z/draw{draw}_seed{seed}_path.tsv",
    log:
        "logs/{cohort}/z/draw{draw}_seed{seed}.log",
    benchmark:
        "results/{cohort}/benchmarks/collect_z/draw{draw}_seed{seed}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=job_mem("collect_z"),
        runtime=job_runtime("collect_z"),
    params:
        network=network_params(),
        training=lambda wc: fit_params(wc.cohort),
        seed=training_seed,
    script:
        "../../scripts/collect_z.py"
