"""Many networks on one batch of trials: one batched simulation (``rnnscope.models.simulate``), accuracy per
network and condition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankBatch, LowRankWeights, simulate, stack_weights
from rnnscope.tasks import TrialBatch, correct_trials

__all__ = ["NetworkAccuracy", "evaluate_networks"]


def _as_stack(networks: LowRankBatch | LowRankWeights | Sequence[LowRankWeights]) -> LowRankBatch:
    """One network or many as a stack, so every result has the network axis first."""
    if isinstance(networks, LowRankBatch):
        return networks
    if isinstance(networks, LowRankWeights):
        return stack_weights([networks])
    if isinstance(networks, Sequence) and networks and all(isinstance(w, LowRankWeights) for w in networks):
        return stack_weights(list(networks))
    raise RnnscopeError(f"networks: expected LowRankWeights, a sequence of them or a LowRankBatch, got {type(networks).__name__}")


@dataclass(frozen=True, eq=False)
class NetworkAccuracy:
    """Accuracy of many networks on one batch of trials.

    correct: (networks, trials) bool, the task's accuracy rule (sign of the mean output over the decision epoch
    equals the sign of the mean target there); accuracy: (networks,).
    """

    correct: np.ndarray
    accuracy: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))

    def by_condition(self, conditions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy per value of a condition (trials,): (values (groups,), accuracy (networks, groups))."""
        conditions = np.asarray(conditions)
        if conditions.shape != (self.correct.shape[1],):
            raise RnnscopeError(f"conditions: expected shape ({self.correct.shape[1]},), got {conditions.shape}")
        values = np.unique(conditions)
        return values, np.stack([self.correct[:, conditions == v].mean(axis=1) for v in values], axis=1)

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy.tolist(), "mean": self.mean}


def evaluate_networks(
    networks: LowRankBatch | LowRankWeights | Sequence[LowRankWeights],
    batch: TrialBatch,
    *,
    rng: np.random.Generator | int,
    memory_mb: float = 128.0,
    device: str | torch.device = "cpu",
) -> NetworkAccuracy:
    """Accuracy of every network on the trials of ``batch``: one batched ``rnnscope.models.simulate`` (which
    chooses the backend), neuron i of every network receiving the same private noise (common random numbers)."""
    outputs = simulate(_as_stack(networks), batch.inputs, rng=rng, memory_mb=memory_mb, device=device).outputs
    correct = np.stack([correct_trials(o, batch) for o in outputs])
    return NetworkAccuracy(correct=correct, accuracy=correct.mean(axis=1))
