"""Latent analysis of a trained network on its own task: what ``rnnscope analyze RUN`` reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnscope._validation import as_generator, check_int
from rnnscope.analysis._latent import EffectiveOverlaps, LatentProjection, effective_overlaps, latent_projection
from rnnscope.analysis._summary import LatentSummary, latent_summary
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankWeights, RateRNN, simulate
from rnnscope.tasks import Task, epoch_mask

__all__ = ["TaskAnalysis", "analyze_on_task", "GROUPING_CONDITIONS"]

# conditions that split trials into a few regimes whose effective overlaps are worth comparing
GROUPING_CONDITIONS = ("context", "modality")


@dataclass(frozen=True, eq=False)
class TaskAnalysis:
    """summary: overlaps and fixed points without input; projection: trajectories (trials, time, size) of
    ``trials`` fresh trials written in span(M, W_in); epochs: {epoch: EffectiveOverlaps averaged over that epoch's
    states}; groups: {"condition=value": {epoch: EffectiveOverlaps}} for the grouping conditions the task has
    (e.g. per context); conditions: {name: (trials,)} of the simulated trials."""

    summary: LatentSummary
    projection: LatentProjection
    epochs: dict[str, EffectiveOverlaps]
    groups: dict[str, dict[str, EffectiveOverlaps]]
    conditions: dict[str, np.ndarray]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary.to_dict(),
            "variance_explained": self.projection.variance_explained,
            "recurrent_variance_explained": self.projection.recurrent_variance_explained,
            "effective_overlaps": {name: eff.to_dict() for name, eff in self.epochs.items()},
            "effective_overlaps_by_condition": {
                group: {name: eff.to_dict() for name, eff in per_epoch.items()} for group, per_epoch in self.groups.items()
            },
        }


def _per_epoch(weights: LowRankWeights, states: np.ndarray, epochs: dict, labels: np.ndarray | None) -> dict:
    out = {}
    for name, (start, stop) in epochs.items():
        selected = states[epoch_mask(start, stop, states.shape[1])]
        if len(selected):
            out[name] = effective_overlaps(weights, selected, labels)
    return out


def analyze_on_task(
    model: RateRNN | LowRankWeights,
    task: Task,
    *,
    trials: int = 200,
    rng: np.random.Generator | int,
    labels: np.ndarray | None = None,
    starts: int = 100,
) -> TaskAnalysis:
    """Overlaps, fixed points without input, variance explained by span(M, W_in) on the task's trials, and
    effective overlaps per task epoch (and per context or modality, where the task has one)."""
    weights = model.weights() if isinstance(model, RateRNN) else model
    if not isinstance(weights, LowRankWeights):
        raise RnnscopeError("model: latent analysis needs a low-rank network (truncate a full-rank one first)")
    check_int(trials, "trials", minimum=1)
    rng = as_generator(rng, name="rng")
    summary = latent_summary(weights, rng=rng, starts=starts)
    batch = task.sample(trials, rng=rng)
    states = simulate(weights, batch.inputs, rng=rng, record="states").states
    projection = latent_projection(weights, states)
    epochs = dict(batch.epochs)
    groups = {}
    for name in GROUPING_CONDITIONS:
        if name in batch.conditions:
            for value in np.unique(batch.conditions[name]):
                keep = batch.conditions[name] == value
                sub = {k: (a[keep], b[keep]) for k, (a, b) in epochs.items()}
                groups[f"{name}={value}"] = _per_epoch(weights, states[keep], sub, labels)
    return TaskAnalysis(summary, projection, _per_epoch(weights, states, epochs, labels), groups,
                        dict(batch.conditions))
