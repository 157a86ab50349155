"""One call per report: analyse a run (or several) and write the page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rnnscope import io
from rnnscope.errors import RnnscopeError
from rnnscope.report._html import ReportFiles, write_comparison, write_report
from rnnscope.report._sections import ReportConfig, analyze_run

__all__ = ["report", "compare"]


def _config(config: ReportConfig | None, quick: bool) -> ReportConfig:
    if config is not None and quick:
        raise RnnscopeError("quick: pass either quick=True or a ReportConfig, not both")
    return config if config is not None else (ReportConfig.quick() if quick else ReportConfig())


def report(
    run: str | Path,
    *,
    out: str | Path | None = None,
    config: ReportConfig | None = None,
    quick: bool = False,
    seed: int = 0,
) -> ReportFiles:
    """Analyse the run directory ``run`` and write its report to ``out`` (default ``RUN/report``):
    ``report.html`` (self-contained), figures as PNG and SVG, numbers as JSON."""
    out = io.check_output(Path(run) / "report" if out is None else Path(out), directory=True)
    analysis = analyze_run(run, config=_config(config, quick), rng=seed)
    return write_report(analysis, out)


def compare(
    runs: Sequence[str | Path],
    *,
    out: str | Path = "rnnscope-comparison",
    config: ReportConfig | None = None,
    quick: bool = False,
    seed: int = 0,
) -> ReportFiles:
    """The same report sections for several runs side by side, written to ``out``."""
    runs = list(runs)
    if len(runs) < 2:
        raise RnnscopeError(f"runs: a comparison needs at least 2 run directories, got {len(runs)}")
    cfg = _config(config, quick)
    io.check_output(out, directory=True)
    analyses = [analyze_run(run, config=cfg, rng=seed) for run in runs]
    return write_comparison(analyses, out)
