# knockoffnet: FDR-controlled feature selection with neural networks and knockoffs.
# Entry point: `snakemake --workflow-profile profiles/default` (see README.md).
from snakemake.utils import min_version, validate

min_version("9.0")


# The bundled cohort's config, unless the command line names config files: those replace it (a
# merge would add WDBC and its tuning, e.g. group knockoffs, to every other config); list
# config/config.yaml first to merge over it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml", set_default=True)


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/knockoffs.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/prune.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        get_final_outputs(),
