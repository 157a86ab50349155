"""Populations silenced or with their gain scaled, and effective overlaps per population and condition group
(the gain-modulation mechanism of Dubreuil, Valente et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnscope._validation import check_array, check_int, check_nonnegative
from rnnscope.analysis._evaluation import evaluate_networks
from rnnscope.analysis._loadings import check_labels, loadings
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankWeights, simulate
from rnnscope.tasks import TrialBatch

__all__ = ["scale_population", "Inactivation", "inactivate", "GroupOverlaps", "overlaps_by_group"]


def scale_population(
    weights: LowRankWeights, labels: np.ndarray, population: int, *, gain: float = 0.0
) -> LowRankWeights:
    """A copy of ``weights`` where the neurons of ``population`` have their rates scaled by ``gain``.

    Scales the rows of ``n`` and ``w_out`` (what the neurons send), and with ``gain = 0`` also zeroes ``m``
    (silencing, as the paper: the neurons neither send nor receive the latent). labels: (size,) 0..P-1.
    """
    labels = check_labels(labels, weights.size)
    population = check_int(population, "population", minimum=0, maximum=int(labels.max()))
    gain = check_nonnegative(gain, "gain")
    factor = np.where(labels == population, gain, 1.0)[:, None]
    m = weights.m * factor if gain == 0 else weights.m
    return LowRankWeights(
        m=m, n=weights.n * factor, w_in=weights.w_in, w_out=weights.w_out * factor, h0=weights.h0,
        noise_std=weights.noise_std, alpha=weights.alpha,
    )


@dataclass(frozen=True, eq=False)
class Inactivation:
    """Accuracy per condition group of the intact network and with each population scaled by ``gain``.

    groups: (groups,) values of the grouping condition; accuracy: (1 + populations, groups), row 0 the intact
    network and row 1 + p the network with population p scaled; gain: 0 for silencing.
    """

    group_by: str
    groups: np.ndarray
    accuracy: np.ndarray
    gain: float

    @property
    def populations(self) -> int:
        return int(self.accuracy.shape[0] - 1)

    def to_dict(self) -> dict:
        groups = [g.item() if isinstance(g, np.generic) else g for g in self.groups]
        return {
            "group_by": self.group_by,
            "gain": float(self.gain),
            "groups": groups,
            "intact": dict(zip(map(str, groups), self.accuracy[0].tolist(), strict=True)),
            "scaled": [
                {"population": p, "accuracy": dict(zip(map(str, groups), self.accuracy[1 + p].tolist(), strict=True))}
                for p in range(self.populations)
            ],
        }


def inactivate(
    weights: LowRankWeights,
    labels: np.ndarray,
    batch: TrialBatch,
    *,
    rng: np.random.Generator | int,
    group_by: str = "context",
    gain: float = 0.0,
    memory_mb: float = 128.0,
    device: str | torch.device = "cpu",
) -> Inactivation:
    """Scale (default: silence) each population in turn and report accuracy per value of ``batch.conditions[group_by]``.

    labels: (size,) 0..P-1. The intact network and one network per population run in one batched simulation.
    """
    labels = check_labels(labels, weights.size)
    if group_by not in batch.conditions:
        raise RnnscopeError(f"group_by: {group_by!r} is not a condition of the trials ({', '.join(batch.conditions)})")
    variants = [weights] + [scale_population(weights, labels, p, gain=gain) for p in range(int(labels.max()) + 1)]
    result = evaluate_networks(variants, batch, rng=rng, memory_mb=memory_mb, device=device)
    groups, accuracy = result.by_condition(batch.conditions[group_by])
    return Inactivation(group_by=group_by, groups=groups, accuracy=accuracy, gain=float(gain))


@dataclass(frozen=True, eq=False)
class GroupOverlaps:
    """Overlaps between n and every loading column, weighted by each neuron's gain phi'(x) = 1 - tanh(x)^2.

    values: (groups, populations, rank, columns), entry [g, p, r, c] = mean over neurons i of population p of
    ``n[i, r] * loading[i, c] * <phi'(x_i)>_g``, with <.>_g the mean over the trials of group g and the steps of
    ``epoch``; total: (groups, rank, columns), the same over all neurons (= fraction-weighted sum over
    populations); gains: (groups, size) the mean phi'(x_i) per group.
    """

    groups: np.ndarray
    columns: tuple[str, ...]
    values: np.ndarray
    total: np.ndarray
    gains: np.ndarray
    fractions: np.ndarray

    def to_dict(self) -> dict:
        return {
            "groups": [g.item() if isinstance(g, np.generic) else g for g in self.groups],
            "columns": list(self.columns),
            "values": self.values.tolist(),
            "total": self.total.tolist(),
            "fractions": self.fractions.tolist(),
        }


def overlaps_by_group(
    weights: LowRankWeights,
    labels: np.ndarray | None,
    batch: TrialBatch,
    *,
    rng: np.random.Generator | int,
    group_by: str = "context",
    epoch: str | np.ndarray = "stimulus",
    memory_mb: float = 128.0,
) -> GroupOverlaps:
    """Effective overlaps per population and condition group (the gain-modulation mechanism of the paper).

    Extends ``rnnscope.analysis.effective_overlaps`` (one set of states) to every loading column
    (inputs included) and to condition groups: the (n, m) block of ``values[g]`` equals that function's
    ``per_population`` at the group's states.

    labels: (size,) 0..P-1, or None for one population; epoch: a name in ``batch.epochs`` or a (trials, time) bool
    mask of the steps over which phi' is averaged.
    """
    points = loadings(weights)
    labels = np.zeros(weights.size, dtype=int) if labels is None else check_labels(labels, weights.size)
    if group_by not in batch.conditions:
        raise RnnscopeError(f"group_by: {group_by!r} is not a condition of the trials ({', '.join(batch.conditions)})")
    if isinstance(epoch, str):
        if epoch not in batch.epochs:
            raise RnnscopeError(f"epoch: {epoch!r} is not an epoch of the trials ({', '.join(batch.epochs)})")
        start, stop = batch.epochs[epoch]
        steps = np.arange(batch.steps)
        window = (steps >= np.asarray(start)[:, None]) & (steps < np.asarray(stop)[:, None])
    else:
        window = check_array(epoch, "epoch", shape=(batch.trials, batch.steps), dtype=bool)
    states = simulate(weights, batch.inputs, rng=rng, record="states", memory_mb=memory_mb).states
    slopes = 1.0 - np.tanh(states.astype(np.float64)) ** 2  # (trials, time, size)
    conditions = np.asarray(batch.conditions[group_by])
    groups = np.unique(conditions)
    gains = np.stack(
        [slopes[(conditions == g)[:, None] & window].mean(axis=0) for g in groups]
    )  # (groups, size)
    n = weights.n
    count = int(labels.max()) + 1
    # products[i, r, c] = n[i, r] * loading[i, c]
    products = n[:, :, None] * points.values[:, None, :]
    weighted = gains[:, :, None, None] * products[None]  # (groups, size, rank, columns)
    values = np.stack([weighted[:, labels == p].mean(axis=1) for p in range(count)], axis=1)
    fractions = np.bincount(labels, minlength=count) / weights.size
    return GroupOverlaps(
        groups=groups, columns=points.columns, values=values, total=weighted.mean(axis=1), gains=gains,
        fractions=fractions,
    )
