"""A network's activity as recordings: N sampled neurons, spiking (Poisson) or Gaussian noise, the trials'
condition table and the network's own choices, so a network and an animal go through the same pipeline."""

from __future__ import annotations

import numpy as np

from rnnscope._validation import as_generator, check_int, check_nonnegative, check_positive
from rnnscope.data._recordings import Recordings
from rnnscope.errors import RnnscopeError
from rnnscope.models import FullRankWeights, LowRankWeights, simulate
from rnnscope.tasks import Task, decisions

__all__ = ["NOISE_MODELS", "recordings_from_network"]

NOISE_MODELS = ("poisson", "gaussian", "none")


def recordings_from_network(
    weights: LowRankWeights | FullRankWeights,
    task: Task,
    *,
    rng: np.random.Generator | int,
    neurons: int = 200,
    trials: int = 400,
    noise: str = "poisson",
    max_rate_hz: float = 40.0,
    baseline_hz: float = 2.0,
    noise_std: float = 0.1,
    name: str = "network",
) -> Recordings:
    """Simulate ``weights`` on ``trials`` fresh trials of ``task`` and record ``neurons`` neurons drawn without
    replacement.

    noise: "poisson": rates ``baseline_hz + (max_rate_hz - baseline_hz) * (1 + tanh(x)) / 2`` (Hz), spike counts
    drawn per time bin (dt of the task) and divided by the bin (the recorded rate, in Hz); "gaussian": ``tanh(x) +
    noise_std * xi``; "none": ``tanh(x)``. The condition table holds the task's conditions and ``choice``, the
    sign of the network's mean output in the decision epoch (the network's own choice, like an animal's).
    Neuron metadata: ``index`` (the neuron's index in the network) and ``area`` ("network").
    """
    rng = as_generator(rng, name="rng")
    if noise not in NOISE_MODELS:
        raise RnnscopeError(f"noise: expected one of {', '.join(NOISE_MODELS)}, got {noise!r}")
    neurons = check_int(neurons, "neurons", minimum=2, maximum=weights.size)
    trials = check_int(trials, "trials", minimum=2)
    max_rate_hz = check_positive(max_rate_hz, "max_rate_hz")
    baseline_hz = check_nonnegative(baseline_hz, "baseline_hz")
    noise_std = check_nonnegative(noise_std, "noise_std")
    if baseline_hz >= max_rate_hz:
        raise RnnscopeError(f"baseline_hz: must be below max_rate_hz ({max_rate_hz}), got {baseline_hz}")
    batch = task.sample(trials, rng=rng)
    result = simulate(weights, batch.inputs, rng=rng, record="both")
    outputs, states = result.outputs, result.states
    index = np.sort(rng.choice(weights.size, size=neurons, replace=False))
    rates = np.tanh(states[:, :, index].astype(np.float64))
    if noise == "poisson":
        bin_s = batch.dt / 1000.0
        hz = baseline_hz + (max_rate_hz - baseline_hz) * (1.0 + rates) / 2.0
        activity = rng.poisson(hz * bin_s) / bin_s
    elif noise == "gaussian":
        activity = rates + noise_std * rng.standard_normal(rates.shape)
    else:
        activity = rates
    conditions = {k: np.asarray(v) for k, v in batch.conditions.items()}
    conditions["choice"] = np.sign(decisions(outputs, batch.mask)[:, 0])
    steps = activity.shape[1]
    return Recordings(activity=activity, conditions=conditions, time_ms=(np.arange(steps) + 1) * batch.dt,
                      neurons={"index": index, "area": np.full(neurons, "network")}, name=name,
                      source=f"{name} ({noise} noise)")
