"""What a report shows, computed: behaviour, example trials, latent dynamics, overlaps, populations, and a text
summary of the mechanism generated from those numbers. No matplotlib here (figures are drawn by ``_html``)."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnscope import io
from rnnscope._validation import as_generator, check_int
from rnnscope.analysis import PopulationModel, epairs, fit_populations, loadings, resample_model
from rnnscope.models import LowRankWeights, RateRNN, simulate
from rnnscope.report._behaviour import (
    ChoiceTable,
    ConditionOverlaps,
    Gating,
    choice_tables,
    condition_overlaps,
    population_gating,
    value_name,
)
from rnnscope.report._mechanism import describe_mechanism
from rnnscope.tasks import Task, TrialBatch, decisions
from rnnscope.training import Evaluation, evaluate

__all__ = [
    "ReportConfig",
    "PsychometricCurve",
    "Psychometric",
    "psychometric",
    "ExampleTrials",
    "example_trials",
    "LatentSection",
    "PopulationSection",
    "RunAnalysis",
    "analyze_for_report",
    "describe_mechanism",
]

GROUPING_CONDITIONS = ("context", "modality")  # conditions that split trials into regimes (as analysis._run)


@dataclass(frozen=True)
class ReportConfig:
    """How much a report computes. trials: fresh trials for accuracy and psychometric curves; analysis_trials:
    trials simulated for latent trajectories and effective overlaps (trajectory_trials of them are drawn);
    example_trials: trials shown with inputs, targets and outputs; fixed_point_starts, flow_resolution: latent
    analysis; max_populations, restarts: Gaussian-mixture fits (BIC); resample_networks networks of
    resample_size neurons (None: the trained network's size) are drawn from one Gaussian and from two populations
    and tested on resample_trials trials; epairs_draws null clouds over at most epairs_neurons neurons."""

    # populations
    max_populations: int = 3
    restarts: int = 3
    resample_networks: int = 8
    resample_trials: int = 200
    resample_size: int | None = None
    epairs_draws: int = 100
    epairs_neurons: int = 1000
    # behaviour and latent dynamics
    trials: int = 1000
    analysis_trials: int = 200
    trajectory_trials: int = 24
    example_trials: int = 3
    fixed_point_starts: int = 100
    flow_resolution: int = 40

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "resample_size" and value is None:
                continue
            check_int(value, f.name, minimum=2 if f.name in ("max_populations", "trials", "analysis_trials") else 1)

    @classmethod
    def quick(cls) -> ReportConfig:
        """A reduced report for CI and smoke tests (seconds for a small network)."""
        return cls(trials=200, analysis_trials=40, trajectory_trials=12, example_trials=2, fixed_point_starts=20,
                   flow_resolution=25, max_populations=2, restarts=1, resample_networks=3, resample_trials=60,
                   epairs_draws=20, epairs_neurons=200)


# -- behaviour ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PsychometricCurve:
    """Fraction of +1 choices against one stimulus condition. values, choices, trials: (points,); group: the
    trials' grouping condition ("context=1"), "" for all trials."""

    stimulus: str
    group: str
    values: np.ndarray
    choices: np.ndarray
    trials: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"stimulus": self.stimulus, "group": self.group, "values": self.values.tolist(),
                "choices": self.choices.tolist(), "trials": self.trials.astype(int).tolist()}


@dataclass(frozen=True)
class Psychometric:
    """Psychometric curves of one network: one per stimulus condition and group."""

    curves: tuple[PsychometricCurve, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"curves": [c.to_dict() for c in self.curves]}


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def psychometric(outputs: np.ndarray, batch: TrialBatch, *, task: Task | None = None,
                 max_values: int = 12) -> Psychometric:
    """Fraction of trials whose decision (mean output over the decision epoch, first output) is positive against
    every coherence condition (a numeric condition whose name contains "coherence", at most ``max_values``
    values), per group (context, modality) where the task has one; categorical conditions (dms's sample, romo's
    f1) get a ``ChoiceTable`` instead. task: names the groups' values ("context=colour"). outputs: (trials,
    time, outputs)."""
    choice = decisions(outputs, batch.mask)[:, 0] > 0
    groups: list[tuple[str, np.ndarray]] = []
    for name in GROUPING_CONDITIONS:
        if name in batch.conditions:
            groups += [(f"{name}={value_name(task, name, v) if task is not None else _label(v)}",
                        batch.conditions[name] == v) for v in np.unique(batch.conditions[name])]
    if not groups:
        groups = [("", np.ones(batch.trials, dtype=bool))]
    curves = []
    for name, values in batch.conditions.items():
        if "coherence" not in name or not np.issubdtype(np.asarray(values).dtype, np.number):
            continue
        unique = np.unique(values)
        if len(unique) > max_values:
            continue
        for group, keep in groups:
            counts = np.array([np.sum(keep & (values == v)) for v in unique])
            present = counts > 0
            fractions = np.array([choice[keep & (values == v)].mean() if c else np.nan
                                  for v, c in zip(unique, counts, strict=True)])
            curves.append(PsychometricCurve(name, group, unique[present].astype(float), fractions[present],
                                            counts[present]))
    return Psychometric(tuple(curves))


@dataclass(frozen=True)
class ExampleTrials:
    """A few trials with the network's output. inputs: (trials, time, inputs); targets, outputs: (trials, time,
    outputs); mask: (trials, time); labels: (trials,) the trials' conditions as text; dt: step in ms."""

    inputs: np.ndarray
    targets: np.ndarray
    outputs: np.ndarray
    mask: np.ndarray
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    labels: tuple[str, ...]
    dt: float

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "dt_ms": self.dt, "input_names": list(self.input_names),
                "output_names": list(self.output_names), "inputs": self.inputs.tolist(),
                "targets": self.targets.tolist(), "outputs": self.outputs.tolist(), "mask": self.mask.tolist()}


def example_trials(outputs: np.ndarray, batch: TrialBatch, task: Task, count: int) -> ExampleTrials:
    """The first ``count`` trials of ``batch`` with their ``outputs`` (trials, time, outputs)."""
    count = min(count, batch.trials)
    labels = tuple(", ".join(f"{k} {_label(v[i])}" for k, v in batch.conditions.items()) for i in range(count))
    return ExampleTrials(batch.inputs[:count], batch.targets[:count], np.asarray(outputs[:count], dtype=np.float32),
                         batch.mask[:count], tuple(task.input_names), tuple(task.output_names), labels, batch.dt)


# -- latent and populations ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LatentSection:
    """analysis: ``TaskAnalysis`` (overlaps, fixed points, trajectories, effective overlaps per epoch and group);
    flow: ``FlowField`` without input; potential: rank-1 ``Potential`` (None for higher ranks); colour_by: the
    condition trajectories are coloured by (None: one colour); by_condition: effective overlaps of fresh trials
    grouped by each condition in ``OVERLAP_CONDITIONS`` (context, modality, sample, test, match, f1)."""

    analysis: Any
    flow: Any
    potential: Any
    colour_by: str | None
    by_condition: tuple[ConditionOverlaps, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = self.analysis.to_dict()
        out["colour_by"] = self.colour_by
        out["effective_overlaps_grouped"] = [g.to_dict() for g in self.by_condition]
        return out


@dataclass(frozen=True, eq=False)
class PopulationSection:
    """fit: ``PopulationFit`` (BIC for P = 1..max); labels: (size,) the two-population partition (None when it
    could not be formed); resampling: ``Resampling`` for one Gaussian then two populations; epairs:
    ``EpairsResult`` on the loadings (None if it could not run); epairs_neurons: how many neurons it used;
    notes: what was skipped and why."""

    fit: Any
    labels: np.ndarray | None
    resampling: tuple[Any, ...]
    epairs: Any
    epairs_neurons: int
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "bic": self.fit.to_dict() if self.fit is not None else None,
            "two_population_sizes": None if self.labels is None else np.bincount(self.labels).tolist(),
            "resampling": [r.to_dict() for r in self.resampling],
            "epairs": self.epairs.to_dict() if self.epairs is not None else None,
            "epairs_neurons": self.epairs_neurons,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, eq=False)
class RunAnalysis:
    """Everything one report shows about one run.

    name: a short label; path: the run directory (None for an in-memory network); config: the run's config.json;
    history: per-epoch metrics; evaluation: accuracy on ``ReportConfig.trials`` fresh trials; psychometric;
    examples; latent: None for full-rank networks; populations: None for full-rank networks; summary: the
    generated text; weights: the low-rank weights analysed (None for full rank); report_config: the settings;
    notes: sections left empty and why; seconds: time spent per section; tables: choice tables (dms match
    accuracy per sample/test pair, romo f1-f2 decision map); gating: each population's part of the effective
    input overlaps per context (None without contexts or populations)."""

    name: str
    path: Path | None
    config: dict[str, Any]
    task: Task
    history: tuple[dict[str, Any], ...]
    evaluation: Evaluation
    psychometric: Psychometric
    examples: ExampleTrials
    latent: LatentSection | None
    populations: PopulationSection | None
    summary: str
    weights: LowRankWeights | None = None
    report_config: ReportConfig = ReportConfig()
    notes: tuple[str, ...] = ()
    seconds: Mapping[str, float] = field(default_factory=dict)
    tables: tuple[ChoiceTable, ...] = ()
    gating: Gating | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path) if self.path is not None else None,
            "config": self.config,
            "history": list(self.history),
            "evaluation": self.evaluation.to_dict(),
            "psychometric": self.psychometric.to_dict(),
            "tables": [t.to_dict() for t in self.tables],
            "gating": self.gating.to_dict() if self.gating is not None else None,
            "latent": self.latent.to_dict() if self.latent is not None else None,
            "populations": self.populations.to_dict() if self.populations is not None else None,
            "summary": self.summary,
            "notes": list(self.notes),
            "seconds": dict(self.seconds),
        }


def _populations(weights: LowRankWeights, task: Task, config: ReportConfig, rng: np.random.Generator) -> PopulationSection:
    notes: list[str] = []
    points = loadings(weights)
    dims = points.values.shape[1]
    max_populations = min(config.max_populations, max(1, weights.size // (dims + 1)))
    fit = fit_populations(points, rng=rng, max_populations=max_populations, restarts=config.restarts,
                          method="bayes")
    size = config.resample_size or weights.size
    batch = task.sample(config.resample_trials, rng=rng)
    resampled = [resample_model(PopulationModel.from_weights(weights), batch, rng=rng,
                                networks=config.resample_networks, size=size, trained=weights)]
    labels = None
    if fit.max_populations >= 2:
        raw = fit.labels_for(2)
        present, labels = np.unique(raw, return_inverse=True)
        counts = np.bincount(labels)
        if len(present) == 2 and counts.min() >= dims + 1:
            resampled.append(resample_model(PopulationModel.from_weights(weights, labels), batch, rng=rng,
                                            networks=config.resample_networks, size=size, trained=None))
        else:
            notes.append(f"two-population fit left populations of {counts.tolist()} neurons; not resampled")
            labels = None
    else:
        notes.append("too few neurons to fit two populations")
    values = points.values[:, points.values.std(axis=0) > 1e-12]
    neurons = min(config.epairs_neurons, weights.size)
    pairs = None
    if neurons >= 10 and values.shape[1] >= 2:
        subset = np.sort(rng.choice(weights.size, size=neurons, replace=False))
        pairs = epairs(values[subset], rng=rng, draws=config.epairs_draws)
    else:
        notes.append("ePAIRS needs at least 10 neurons and 2 varying loading columns")
    return PopulationSection(fit, labels, tuple(resampled), pairs, neurons, tuple(notes))


def _colour_by(conditions: Mapping[str, np.ndarray]) -> str | None:
    for name, values in conditions.items():
        if name not in GROUPING_CONDITIONS and np.issubdtype(np.asarray(values).dtype, np.number) and len(np.unique(values)) <= 12:
            return name
    return None


def _latent(weights: LowRankWeights, task: Task, config: ReportConfig, rng: np.random.Generator) -> LatentSection:
    from rnnscope.analysis import analyze_on_task, flow_field, potential

    analysis = analyze_on_task(weights, task, trials=config.analysis_trials, rng=rng, starts=config.fixed_point_starts)
    flow = flow_field(weights, resolution=config.flow_resolution)
    pot = potential(weights) if weights.rank == 1 else None
    batch = task.sample(config.analysis_trials, rng=rng)
    states = simulate(weights, batch.inputs, rng=rng, record="states").states
    grouped = condition_overlaps(weights, np.asarray(states), batch, task)
    return LatentSection(analysis, flow, pot, _colour_by(analysis.conditions), grouped)


def _design_labels(config: Mapping[str, Any], size: int) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """The populations a designed network was drawn from, (labels (size,), names), or None."""
    from rnnscope.design import population_labels, spec_from_dict

    design = config.get("design")
    if not isinstance(design, dict) or not isinstance(design.get("spec"), dict) or design.get("size") != size:
        return None
    try:
        spec = spec_from_dict(design["spec"])
    except Exception:  # a spec this version cannot read: no design labels, the report still works
        return None
    return population_labels(spec, size), tuple(str(p.name) for p in spec.populations)


def _gating(weights: LowRankWeights, config: Mapping[str, Any], task: Task, latent: LatentSection | None,
            populations: PopulationSection | None) -> Gating | None:
    contexts = [g for g in (latent.by_condition if latent is not None else ()) if g.condition in GROUPING_CONDITIONS]
    if not contexts:
        return None
    designed = _design_labels(config, weights.size)
    if designed is not None and len(np.unique(designed[0])) >= 2:
        return population_gating(weights, contexts[0], designed[0], task, population_names=designed[1], source="design")
    if populations is not None and populations.labels is not None:
        return population_gating(weights, contexts[0], populations.labels, task, source="two-population fit")
    return None


# -- one run ------------------------------------------------------------------------------------------------------
def _weights_of(model: RateRNN) -> Any:
    return model.weights()


def analyze_for_report(
    run: str | Path | io.Run,
    *,
    config: ReportConfig = ReportConfig(),
    rng: np.random.Generator | int,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunAnalysis:
    """Compute every section of a run's report (behaviour, latent dynamics, populations, mechanism), as
    ``write_report`` shows it; ``rnnscope.analysis.analyze_on_task`` is the latent part alone. run: a run directory or a loaded ``Run``; progress: called with
    each section's name before it is computed."""
    loaded = run if isinstance(run, io.Run) else io.load_run(run)
    rng = as_generator(rng, name="rng")
    seconds: dict[str, float] = {}
    notes: list[str] = []
    step = progress or (lambda _name: None)

    def timed(section: str, compute: Callable[[], Any]) -> Any:
        step(section)
        began = time.perf_counter()
        value = compute()
        seconds[section] = time.perf_counter() - began
        return value

    task, model = loaded.task, loaded.model
    history = tuple(io.read_metrics(loaded.path))
    if not history:
        notes.append("no metrics.jsonl: learning curves unavailable (imported or designed network)")
    evaluation = timed("behaviour", lambda: evaluate(model, task, trials=config.trials, rng=rng))

    def behaviour() -> tuple[Psychometric, ExampleTrials, tuple[ChoiceTable, ...]]:
        batch = task.sample(config.trials, rng=rng)
        outputs = simulate(model, batch.inputs, rng=rng).outputs
        return (psychometric(outputs, batch, task=task), example_trials(outputs, batch, task, config.example_trials),
                choice_tables(outputs, batch, task))

    curves, examples, tables = timed("psychometric", behaviour)
    weights = _weights_of(model)
    latent = populations = gating = None
    if isinstance(weights, LowRankWeights):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            latent = timed("latent", lambda: _latent(weights, task, config, rng))
        populations = timed("populations", lambda: _populations(weights, task, config, rng))
        notes += list(populations.notes)
        gating = _gating(weights, loaded.config, task, latent, populations)
    else:
        notes.append("full-rank network: latent and population analyses need a low-rank network")
    analysis = RunAnalysis(
        name=name or (loaded.path.name if loaded.path is not None else "network"), path=loaded.path,
        config=loaded.config, task=task, history=history, evaluation=evaluation, psychometric=curves,
        examples=examples, latent=latent, populations=populations, summary="",
        weights=weights if isinstance(weights, LowRankWeights) else None, report_config=config, notes=tuple(notes),
        seconds=seconds, tables=tables, gating=gating,
    )
    return dataclasses.replace(analysis, summary=describe_mechanism(analysis))
