"""One call per report: analyse a run (or several) and write the page."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnscope import io
from rnnscope.errors import RnnscopeError
from rnnscope.report._html import ReportFiles, write_comparison, write_report
from rnnscope.report._sections import ReportConfig, analyze_for_report

__all__ = ["report", "compare"]


def resolve_rng(
    rng: int | np.random.Generator | None, seed: int | None, where: str
) -> int | np.random.Generator:
    """``rng``, or the deprecated ``seed=`` alias of an int ``rng`` (with a DeprecationWarning naming ``where``)."""
    if seed is None:
        if rng is None:
            raise RnnscopeError(f"rng: {where} needs a seed or np.random.Generator (rnnscope never draws hidden randomness)")
        return rng
    if rng is not None:
        raise RnnscopeError(f"seed: give {where} rng only (seed= is its deprecated alias)")
    warnings.warn(f"{where}(seed=...) is deprecated; pass rng=", DeprecationWarning, stacklevel=3)
    return seed


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
    rng: int | np.random.Generator | None = None,
    seed: int | None = None,
) -> ReportFiles:
    """Analyse the run directory ``run`` and write its report to ``out`` (default ``RUN/report``):
    ``report.html`` (self-contained), figures as PNG and SVG, numbers as JSON. rng: seed or Generator of every
    draw (``seed=``: deprecated alias)."""
    rng = resolve_rng(rng, seed, "report")
    out = io.check_output(Path(run) / "report" if out is None else Path(out), directory=True)
    analysis = analyze_for_report(run, config=_config(config, quick), rng=rng)
    return write_report(analysis, out)


def compare(
    runs: Sequence[str | Path],
    *,
    out: str | Path = "rnnscope-comparison",
    config: ReportConfig | None = None,
    quick: bool = False,
    rng: int | np.random.Generator | None = None,
    seed: int | None = None,
) -> ReportFiles:
    """The same report sections for several runs side by side, written to ``out``. rng: an int seed (each run
    analysed from it) or one Generator shared in turn (``seed=``: deprecated alias)."""
    runs = list(runs)
    if len(runs) < 2:
        raise RnnscopeError(f"runs: a comparison needs at least 2 run directories, got {len(runs)}")
    rng = resolve_rng(rng, seed, "compare")
    cfg = _config(config, quick)
    io.check_output(out, directory=True)
    analyses = [analyze_for_report(run, config=cfg, rng=rng) for run in runs]
    return write_comparison(analyses, out)
