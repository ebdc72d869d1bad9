"""The cohort report: figures (``figures``, ``network_figure``) and the self-contained HTML page
(``selection_sections``, ``method_sections`` and ``run_sections`` build its values, ``page``
renders it) from the result files its rules declare
(``results``), with the number formats in ``format``."""

from knockoffnet.report.figures import (
    effect_axis_label,
    make_figures,
    manhattan_points,
    manhattan_statistic,
    sqrt_ticks,
)
from knockoffnet.report.format import fmt_freq, fmt_int, fmt_num, fmt_pm, fmt_q, fmt_signed
from knockoffnet.report.method_sections import learning_check, simulation_context
from knockoffnet.report.network_figure import alive_neurons, fig_network, masks_label
from knockoffnet.report.page import FILTER_NAMES, GUARANTEE, build_context, render_report
from knockoffnet.report.results import ResultFiles, Results, load_results
from knockoffnet.report.run_sections import summarise_benchmarks
from knockoffnet.vocabulary import FIGURES, FILTERS

__all__ = [
    "FIGURES",
    "FILTERS",
    "FILTER_NAMES",
    "GUARANTEE",
    "ResultFiles",
    "Results",
    "alive_neurons",
    "build_context",
    "effect_axis_label",
    "fig_network",
    "fmt_freq",
    "fmt_int",
    "fmt_num",
    "fmt_pm",
    "fmt_q",
    "fmt_signed",
    "learning_check",
    "load_results",
    "make_figures",
    "manhattan_points",
    "manhattan_statistic",
    "masks_label",
    "render_report",
    "simulation_context",
    "sqrt_ticks",
    "summarise_benchmarks",
]
