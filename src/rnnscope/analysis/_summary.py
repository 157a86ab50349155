"""One call that describes a low-rank network in latent terms (what ``rnnscope analyze`` prints)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnscope._validation import as_generator
from rnnscope.analysis._fixedpoints import FixedPointResult, OriginStability, find_fixed_points, origin_stability
from rnnscope.analysis._latent import _check_weights, input_overlaps, overlaps, readout_overlaps
from rnnscope.models import LowRankWeights

__all__ = ["LatentSummary", "latent_summary"]


@dataclass(frozen=True, eq=False)
class LatentSummary:
    """rank, size; overlaps: (rank, rank), ``n_i . m_j / size``; input_overlaps: (rank, inputs);
    readout_overlaps: (rank, outputs), ``m_r . w_out / size``; origin: linear stability of kappa = 0 without
    input; fixed_points: the fixed points of the reduced dynamics without input.
    """

    rank: int
    size: int
    overlaps: np.ndarray
    input_overlaps: np.ndarray
    readout_overlaps: np.ndarray
    origin: OriginStability
    fixed_points: FixedPointResult

    def to_dict(self) -> dict:
        arrays = {"overlaps": self.overlaps, "input_overlaps": self.input_overlaps,
                  "readout_overlaps": self.readout_overlaps}
        out = {"rank": int(self.rank), "size": int(self.size), **{k: v.tolist() for k, v in arrays.items()}}
        return {**out, "origin": self.origin.to_dict(), **self.fixed_points.to_dict()}


def latent_summary(weights: LowRankWeights, *, rng: np.random.Generator | int, starts: int = 100) -> LatentSummary:
    """Overlaps, input and readout overlaps, stability of the origin and fixed points without input: the weights
    alone, no task and no simulation (``analyze_on_task`` adds the task's trials)."""
    weights = _check_weights(weights)
    rng = as_generator(rng, name="rng")
    return LatentSummary(
        rank=weights.rank,
        size=weights.size,
        overlaps=overlaps(weights),
        input_overlaps=input_overlaps(weights),
        readout_overlaps=readout_overlaps(weights),
        origin=origin_stability(weights),
        fixed_points=find_fixed_points(weights, starts=starts, rng=rng),
    )
