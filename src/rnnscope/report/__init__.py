"""Self-contained HTML reports of runs, side-by-side comparisons, and the demo."""

from rnnscope.report._api import compare, report
from rnnscope.report._demo import DemoConfig, DemoResult, demo
from rnnscope.report._html import SECTIONS, RenderedFigures, ReportFiles, render_figures, write_comparison, write_report
from rnnscope.report._sections import (
    ExampleTrials,
    LatentSection,
    PopulationSection,
    Psychometric,
    PsychometricCurve,
    ReportConfig,
    RunAnalysis,
    analyze_run,
    describe_mechanism,
    example_trials,
    psychometric,
)

__all__ = [
    "report",
    "compare",
    "demo",
    "DemoConfig",
    "DemoResult",
    "ReportConfig",
    "RunAnalysis",
    "analyze_run",
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
