"""What rank does a network need? Accuracy of its truncated-SVD low-rank versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnscope._validation import as_generator, check_int, check_probability
from rnnscope.errors import RnnscopeError
from rnnscope.models import FullRankWeights, RateWeights, simulate, truncate
from rnnscope.tasks import Task, TrialBatch, correct_trials

__all__ = ["RankTruncation", "truncation_accuracy"]


@dataclass(frozen=True, eq=False)
class RankTruncation:
    """ranks: (ranks,); accuracy: (ranks,) accuracy of the rank-r truncation of J; full_accuracy: the full
    network's, on the same trials and noise; singular_values: (size,) of J; needed: the smallest rank within
    ``tolerance`` of the full accuracy (None if none is)."""

    ranks: np.ndarray
    accuracy: np.ndarray
    full_accuracy: float
    singular_values: np.ndarray
    tolerance: float
    needed: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranks": self.ranks.tolist(),
            "accuracy": self.accuracy.tolist(),
            "full_accuracy": self.full_accuracy,
            "tolerance": self.tolerance,
            "needed": self.needed,
            "singular_values": self.singular_values[: max(10, int(self.ranks.max()))].tolist(),
        }


def _accuracy(weights: RateWeights, batch: TrialBatch, seed: int) -> float:
    outputs = simulate(weights, batch.inputs, rng=seed).outputs
    return float(correct_trials(outputs, batch).mean())


def truncation_accuracy(
    weights: FullRankWeights,
    task: Task,
    *,
    ranks: Sequence[int] = (1, 2, 3, 4, 5),
    trials: int = 500,
    tolerance: float = 0.02,
    rng: np.random.Generator | int,
) -> RankTruncation:
    """Truncate J to each rank (``rnnscope.models.truncate``: m = sqrt(N) U_r sqrt(s_r), n = sqrt(N) V_r
    sqrt(s_r), readout rescaled) and evaluate every truncation and the full network on the same trials with the
    same private noise (``rnnscope.models.simulate``, which chooses the backend)."""
    if not isinstance(weights, FullRankWeights):
        raise RnnscopeError(f"weights: truncation needs a full-rank network, got {type(weights).__name__}")
    ranks = np.array(sorted({check_int(r, "ranks", minimum=1, maximum=weights.size) for r in ranks}))
    tolerance = check_probability(tolerance, "tolerance")
    rng = as_generator(rng, name="rng")
    batch = task.sample(check_int(trials, "trials", minimum=1), rng=rng)
    seed = int(rng.integers(2**63 - 1))  # one seed: the same private noise for every network
    full = _accuracy(weights, batch, seed)
    accuracy = [_accuracy(truncate(weights, int(r)), batch, seed) for r in ranks]
    accuracy = np.array(accuracy)
    ok = [int(r) for r, a in zip(ranks, accuracy, strict=True) if a >= full - tolerance]
    return RankTruncation(ranks, accuracy, full, np.linalg.svd(weights.J, compute_uv=False), tolerance,
                          min(ok) if ok else None)
