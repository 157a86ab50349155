"""Trials of the reference networks' tasks for the population tests, from rnnscope.tasks."""

from __future__ import annotations

import numpy as np

from rnnscope.tasks import TrialBatch, make_task


def mante_trials(trials: int, *, rng: np.random.Generator, cue_amplitude: float = 0.1) -> TrialBatch:
    return make_task("mante", {"cue_amplitude": cue_amplitude}).sample(trials, rng=rng)


def rdm_trials(trials: int, *, rng: np.random.Generator) -> TrialBatch:
    return make_task("rdm").sample(trials, rng=rng)


def raposo_trials(trials: int, *, rng: np.random.Generator) -> TrialBatch:
    return make_task("raposo").sample(trials, rng=rng)


def romo_trials(trials: int, *, rng: np.random.Generator) -> TrialBatch:
    return make_task("romo").sample(trials, rng=rng)
