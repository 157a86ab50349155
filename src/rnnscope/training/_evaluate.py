"""Run a network on trials and score it: outputs, accuracy, loss, accuracy per condition."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rnnscope._validation import as_generator, check_int
from rnnscope.models import FullRankWeights, LowRankWeights, RateRNN
from rnnscope.models import simulate as _simulate
from rnnscope.tasks import Task, TrialBatch, correct_trials, masked_mse

__all__ = ["Evaluation", "evaluate", "simulate", "torch_generator"]


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A torch generator seeded from ``rng`` (the one bridge between the two)."""
    return torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))


def simulate(
    model: RateRNN | LowRankWeights | FullRankWeights,
    batch: TrialBatch,
    *,
    rng: np.random.Generator | int | None,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Deprecated: use ``rnnscope.models.simulate(model, batch.inputs, rng=rng, record="both")``.

    Returns outputs (trials, time, outputs) and states x (trials, time, size), float32; rng None means
    noise-free dynamics."""
    check_int(chunk, "chunk", minimum=1)
    result = _simulate(model, batch.inputs, rng=rng, record="both", noise=rng is not None)
    return result.outputs, result.states


@dataclass(frozen=True)
class Evaluation:
    """accuracy and loss over ``trials`` fresh trials; per_condition: {condition: {value: accuracy}};
    correct: (trials,) bool per trial; conditions: {name: (trials,)}."""

    accuracy: float
    loss: float
    trials: int
    per_condition: dict[str, dict[str, float]]
    correct: np.ndarray = field(repr=False)
    conditions: dict[str, np.ndarray] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "loss": self.loss, "trials": self.trials, "per_condition": self.per_condition}


def _per_condition(correct: np.ndarray, conditions: dict[str, np.ndarray], max_values: int = 50) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, values in conditions.items():
        unique = np.unique(values)
        if len(unique) > max_values:
            continue
        out[name] = {f"{v:g}" if isinstance(v, (float, np.floating)) else str(v): float(correct[values == v].mean()) for v in unique}
    return out


def evaluate(
    model: RateRNN | LowRankWeights | FullRankWeights,
    task: Task,
    *,
    trials: int = 1000,
    rng: np.random.Generator | int,
    noise: bool = True,
    chunk: int = 256,
) -> Evaluation:
    """Accuracy and loss on ``trials`` fresh trials of ``task`` (with the network's private noise unless
    ``noise=False``), run by ``rnnscope.models.simulate`` on the backend it chooses."""
    check_int(trials, "trials", minimum=1)
    rng = as_generator(rng, name="rng")
    check_int(chunk, "chunk", minimum=1)
    batch = task.sample(trials, rng=rng)
    outputs = _simulate(model, batch.inputs, rng=rng, noise=noise, memory_mb=max(1.0, chunk / 2)).outputs
    correct = correct_trials(outputs, batch)
    return Evaluation(
        accuracy=float(correct.mean()),
        loss=masked_mse(outputs, batch),
        trials=trials,
        per_condition=_per_condition(correct, dict(batch.conditions)),
        correct=correct,
        conditions=dict(batch.conditions),
    )
