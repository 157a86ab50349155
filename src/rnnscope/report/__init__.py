"""Self-contained HTML reports of runs, side-by-side comparisons, and the demo."""

from rnnscope.report._api import compare, report
from rnnscope.report._behaviour import ChoiceTable, ConditionOverlaps, Gating, value_name
from rnnscope.report._data import DATA_SECTIONS, compare_run_with_data, data_report, write_data_report
from rnnscope.report._demo import DemoConfig, DemoResult, demo
from rnnscope.report._html import SECTIONS, RenderedFigures, ReportFiles, render_figures, write_comparison, write_report
from rnnscope.report._mechanism import format_p_value, rounded
from rnnscope.report._sections import (
    ExampleTrials,
    LatentSection,
    PopulationSection,
    Psychometric,
    PsychometricCurve,
    ReportConfig,
    RunAnalysis,
    analyze_for_report,
    describe_mechanism,
    example_trials,
    psychometric,
)

__all__ = [
    "DATA_SECTIONS",
    "ChoiceTable",
    "ConditionOverlaps",
    "Gating",
    "value_name",
    "format_p_value",
    "rounded",
    "data_report",
    "write_data_report",
    "compare_run_with_data",
    "report",
    "compare",
    "demo",
    "DemoConfig",
    "DemoResult",
    "ReportConfig",
    "RunAnalysis",
    "analyze_for_report",
    "describe_mechanism",
    "Psychometric",
    "PsychometricCurve",
    "psychometric",
    "ExampleTrials",
    "example_trials",
    "LatentSection",
    "PopulationSection",
    "SECTIONS",
    "ReportFiles",
    "RenderedFigures",
    "render_figures",
    "write_report",
    "write_comparison",
]
