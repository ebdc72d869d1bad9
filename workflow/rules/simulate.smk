# Simulation study (docs/validation.md). With a `simulation` block in the config, every
# design x replicate is an ordinary cohort sim_{design}_{replicate} (listed by common.smk), so
# it runs the same rules as a user's cohort; rule `simulate` then scores every filter and the
# peers against the truth.
if SIM is not None:
    SIM_CONSTRAINT = "|".join(re.escape(d) for d in SIM_DESIGNS)
    SIM_SCORES = [f"results/simulation/scores/{d}/rep{r}.csv" for d, r in SIM_RUNS]
    SIM_FITS = [f"results/simulation/scores/{d}/rep{r}_fit.csv" for d, r in SIM_RUNS]
    # The first `reports` replicates of each design (its own key, else the study's) get the
    # full per-cohort report.
    SIM_REPORTS = [
        f"results/sim_{d}_{r}/report.html" for d in SIM_DESIGNS for r in range(SIM_REPORT_COUNTS[d])
    ]
    SIM_DIAGNOSTICS = [
        f"results/sim_{d}_{r}/knockoffs/draw{k}_diagnostics.tsv" for d, r in SIM_RUNS for k in DRAWS
    ]
    SIM_DIAGNOSTIC_IDS = [(d, r) for d, r in SIM_RUNS for _ in DRAWS]

    rule simulate_cohort:
        """One simulated cohort (CSV) and its truth (relevant features) from a named generator."""
        output:
            csv="results/simulation/cohorts/{design}/rep{replicate}.csv",
            truth="results/simulation/cohorts/{design}/rep{replicate}_truth.json",
            latent="results/simulation/cohorts/{design}/rep{replicate}_latent.npy",
        log:
            "logs/simulation/cohorts/{design}/rep{replicate}.log",
        benchmark:
            "results/simulation/benchmarks/cohorts/{design}/rep{replicate}.tsv"
        wildcard_constraints:
            design=SIM_CONSTRAINT,
            replicate=r"\d+",
        conda:
            "../../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            spec=lambda wc: SIM["designs"][wc.design],
            seed=lambda wc: run_seed("simulate", wc.design, int(wc.replicate)),
        script:
            "../../scripts/simulate_cohort.py"

    rule simulate_plink:
        """A simulated genotype cohort as a PLINK fileset and phenotype table (`format: plink`)."""
        input:
            csv="results/simulation/cohorts/{design}/rep{replicate}.csv",
        output:
            bed="results/simulation/cohorts/{design}/rep{replicate}.bed",
            bim="results/simulation/cohorts/{design}/rep{replicate}.bim",
            fam="results/simulation/cohorts/{design}/rep{replicate}.fam",
            pheno="results/simulation/cohorts/{design}/rep{replicate}_pheno.tsv",
        log:
            "logs/simulation/cohorts/{design}/rep{replicate}_plink.log",
        benchmark:
            "results/simulation/benchmarks/cohorts/{design}/rep{replicate}_plink.tsv"
        wildcard_constraints:
            design=SIM_CONSTRAINT,
            replicate=r"\d+",
        conda:
            "../../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../../scripts/simulate_plink.py"

    rule simulate_score:
        """FDP and power of every filter (recomputed on the q grid) and of the peers, one replicate."""
        input:
            runs=expand(
                "results/sim_{{design}}_{{replicate}}/z/draw{draw}_seed{seed}.npz",
                draw=DRAWS,
                seed=SEEDS,
            ),
            meta="results/sim_{design}_{replicate}/data/meta.json",
            X="results/sim_{design}_{replicate}/data/X.npy",
            y="results/sim_{design}_{replicate}/data/y.npy",
            Xk="results/sim_{design}_{replicate}/knockoffs/draw0.npy",
            selected="results/sim_{design}_{replicate}/selected.tsv",
            groups="results/sim_{design}_{replicate}/groups.tsv",
            truth="results/simulation/cohorts/{design}/rep{replicate}_truth.json",
            latent="results/simulation/cohorts/{design}/rep{replicate}_latent.npy",
        output:
            scores="results/simulation/scores/{design}/rep{replicate}.csv",
            fit="results/simulation/scores/{design}/rep{replicate}_fit.csv",
        log:
            "logs/simulation/scores/{design}/rep{replicate}.log",
        benchmark:
            "results/simulation/benchmarks/scores/{design}/rep{replicate}.tsv"
        wildcard_constraints:
            design=SIM_CONSTRAINT,
            replicate=r"\d+",
        conda:
            "../../envs/simulation.yaml"
        threads: 1
        resources:
            mem_mb=lambda wc, input, attempt: int(max(2000, 10 * input.size_mb) * attempt),
            runtime=30,
        params:
            selection=selection_params(),
            q_grid=SIM["q_grid"],
            peers=SIM["peers"],
            level=lambda wc: SIM["designs"][wc.design]["level"],
            runs=RUNS,
            options={"rf_trees": SIM["rf_trees"], "deeppink_epochs": SIM["deeppink_epochs"]},
            seed=lambda wc: run_seed("peers", wc.design, int(wc.replicate)),
        script:
            "../../scripts/simulate_score.py"

    rule simulation_figure:
        """A simulated cohort's FDR and power against q: its design over all replicates."""
        input:
            scores=lambda wc: get_design_scores(wc),  # defined in common.smk, included later
        output:
            report(
                "results/sim_{design}_{replicate}/figures/fdr_power.png",
                caption="../report/fdr_power.rst",
                category="Figures",
                labels={"cohort": "sim_{design}_{replicate}", "figure": "fdr_power"},
            ),
        log:
            "logs/sim_{design}_{replicate}/simulation_figure.log",
        benchmark:
            "results/sim_{design}_{replicate}/benchmarks/simulation_figure.tsv"
        wildcard_constraints:
            design=SIM_CONSTRAINT,
            replicate=r"\d+",
        conda:
            "../../envs/report.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../../scripts/simulation_figure.py"

    rule simulate_summary:
        """Tidy replicate table, mean ± se per design/filter/q, acceptance check, plots."""
        input:
            scores=SIM_SCORES,
            fits=SIM_FITS,
            diagnostics=SIM_DIAGNOSTICS,
        output:
            replicates="results/simulation/replicates.csv",
            fit="results/simulation/fit.csv",
            summary="results/simulation/summary.csv",
            diagnostics="results/simulation/diagnostics.csv",
            check="results/simulation/fdr_check.csv",
            markdown="results/simulation/summary.md",
            fdr_power=report(
                "results/simulation/fdr_power.png",
                caption="../report/fdr_power.rst",
                category="Simulation",
            ),
            power_minus_fdr="results/simulation/power_minus_fdr.png",
        log:
            "logs/simulation/summary.log",
        benchmark:
            "results/simulation/benchmarks/summary.tsv"
        conda:
            "../../envs/report.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            designs={d: SIM["designs"][d] for d in SIM_DESIGNS},
            table_q=SIM["table_q"],
            diagnostic_ids=SIM_DIAGNOSTIC_IDS,
        script:
            "../../scripts/simulate_summary.py"

    rule simulate:
        """Target: the whole simulation study (snakemake simulate --configfile config/simulation.yaml)."""
        input:
            "results/simulation/summary.csv",
            "results/simulation/summary.md",
            "results/simulation/fdr_power.png",
            "results/simulation/power_minus_fdr.png",
            SIM_REPORTS,
