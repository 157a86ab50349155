"""``rnnscope demo``: train a random-dots and a context-dependent rank-1 network, analyse both (fixed points,
populations, resampling from one Gaussian and from two populations) and write their reports."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from rnnscope._validation import check_int
from rnnscope.errors import ConvergenceWarning
from rnnscope.models import ModelConfig, choose_backend
from rnnscope.report._api import resolve_rng
from rnnscope.report._html import RenderedFigures, ReportFiles, render_figures, write_comparison, write_report
from rnnscope.report._sections import ReportConfig, RunAnalysis, analyze_for_report
from rnnscope.tasks import make_task
from rnnscope.training import TrainingConfig, train

__all__ = ["DemoConfig", "DemoResult", "demo"]


@dataclass(frozen=True)
class DemoConfig:
    """What the demo trains and how much it analyses. The context-dependent network uses context cues of
    ``cue_amplitude``; the paper's finding (one Gaussian fails, two populations succeed) needs a large network
    (mante_size about 4096) because two fitted populations lose accuracy at small N (a finite-size effect).
    Training stops once validation accuracy reaches ``target_accuracy`` (at most ``*_epochs`` epochs)."""

    rdm_size: int = 512
    mante_size: int = 4096
    rdm_epochs: int = 10
    mante_epochs: int = 20
    train_trials: int = 800
    target_accuracy: float = 0.98
    cue_amplitude: float = 0.5
    backend: str = "auto"
    report: ReportConfig = field(default_factory=lambda: ReportConfig(
        trials=1000, analysis_trials=200, max_populations=3, restarts=2, resample_networks=8, resample_trials=200,
        epairs_draws=100, epairs_neurons=1000))

    @classmethod
    def quick(cls) -> DemoConfig:
        """Small networks, few epochs and trials: a smoke run for CI (tens of seconds)."""
        return cls(rdm_size=64, mante_size=96, rdm_epochs=2, mante_epochs=2, train_trials=128, backend="torch",
                   report=ReportConfig.quick())


@dataclass(frozen=True)
class DemoResult:
    """directory: where everything is; runs: {name: run directory}; reports: {name: ReportFiles};
    comparison: the side-by-side page; seconds: wall time per stage; populations: {name: {"one_gaussian",
    "two_populations", "trained"}} mean accuracies of the resampled networks; backends: {name: training path used}."""

    directory: Path
    runs: dict[str, Path]
    reports: dict[str, ReportFiles]
    comparison: ReportFiles
    seconds: dict[str, float]
    populations: dict[str, dict[str, float | None]]
    backends: dict[str, str]
    quick: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "runs": {k: str(v) for k, v in self.runs.items()},
            "reports": {k: str(v.html) for k, v in self.reports.items()},
            "comparison": str(self.comparison.html),
            "seconds": dict(self.seconds),
            "populations": self.populations,
            "backends": dict(self.backends),
            "quick": self.quick,
        }


def _population_summary(analysis: RunAnalysis) -> dict[str, float | None]:
    pops = analysis.populations
    out: dict[str, float | None] = {"one_gaussian": None, "two_populations": None, "trained": None}
    if pops is not None and pops.resampling:
        out["trained"] = float(pops.resampling[0].trained_accuracy)
        for r in pops.resampling:
            out["one_gaussian" if r.populations == 1 else "two_populations"] = float(r.mean)
    return out


def demo(
    out: str | Path = "rnnscope-demo",
    *,
    quick: bool = False,
    config: DemoConfig | None = None,
    rng: int | np.random.Generator | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> DemoResult:
    """Train, analyse and report a random-dots and a context-dependent rank-1 network under ``out``:
    ``out/runs/{rdm,mante}`` (run directories; rerunning resumes or reuses them), ``out/rdm/report.html``,
    ``out/mante/report.html`` and ``out/comparison/report.html``. quick: ``DemoConfig.quick()``. rng: an int seed
    (the training seed of both runs, and of each analysis) or a Generator (training seeds drawn from it; it then
    drives the analyses); ``seed=``: deprecated alias."""
    rng = resolve_rng(rng, seed, "demo")
    if isinstance(rng, np.random.Generator):
        analysis_rng, seed = rng, int(rng.integers(2**31 - 1))
    else:
        analysis_rng = seed = check_int(rng, "rng", minimum=0)
    cfg = config if config is not None else (DemoConfig.quick() if quick else DemoConfig())
    out = Path(out)
    seconds: dict[str, float] = {}
    tasks = {
        "rdm": (make_task("rdm"), cfg.rdm_size, cfg.rdm_epochs),
        "mante": (make_task("mante", {"cue_amplitude": cfg.cue_amplitude}), cfg.mante_size, cfg.mante_epochs),
    }
    stages = tqdm(total=2 * len(tasks) + 1, desc="rnnscope demo", unit="stage", disable=not progress, position=0)
    runs: dict[str, Path] = {}
    backend = cfg.backend
    backends: dict[str, str] = {}
    for name, (task, size, epochs) in tasks.items():
        model = ModelConfig(size=size, inputs=len(task.input_names), outputs=len(task.output_names), rank=1)
        chosen = choose_backend(model, backend=backend, training=True)
        stages.set_postfix_str(f"training {name} (N = {size}, {chosen})")
        training = TrainingConfig(epochs=epochs, train_trials=cfg.train_trials, target_accuracy=cfg.target_accuracy,
                                  backend=chosen)
        began = time.perf_counter()
        with warnings.catch_warnings():
            if quick:  # a smoke run is not meant to reach the criterion
                warnings.simplefilter("ignore", ConvergenceWarning)
            result = train(task, model, training, seed=seed, out=out / "runs" / name, resume=True, progress=progress)
        seconds[f"train {name}"] = time.perf_counter() - began
        runs[name] = result.path
        backends[name] = chosen
        stages.update()
    analyses: dict[str, RunAnalysis] = {}
    reports: dict[str, ReportFiles] = {}
    rendered: dict[str, RenderedFigures] = {}
    for name, path in runs.items():
        began = time.perf_counter()
        analyses[name] = analyze_for_report(path, config=cfg.report, rng=analysis_rng, name=name,
                                     progress=lambda section, n=name: stages.set_postfix_str(f"analysing {n}: {section}"))
        rendered[name] = render_figures(analyses[name])
        reports[name] = write_report(analyses[name], out / name, rendered=rendered[name])
        seconds[f"analyse {name}"] = time.perf_counter() - began
        stages.update()
    began = time.perf_counter()
    stages.set_postfix_str("comparison")
    comparison = write_comparison(list(analyses.values()), out / "comparison", rendered=list(rendered.values()))
    seconds["comparison"] = time.perf_counter() - began
    stages.update()
    stages.close()
    return DemoResult(out, runs, reports, comparison, seconds,
                      {name: _population_summary(a) for name, a in analyses.items()}, backends, quick)
