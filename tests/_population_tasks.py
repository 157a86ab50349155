"""Private trial generators for the population tests, written from /work/shared/reference/README.md.

Used until (and alongside) rnnscope.tasks: they follow the reference networks' training conventions exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnscope.tasks._base import TrialBatch

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
COHERENCES = np.array([-4, -2, -1, 1, 2, 4])


def _steps(ms: float, dt: float = 20.0) -> int:
    return int(ms // dt)


def mante_trials(trials: int, *, rng: np.random.Generator, cue_amplitude: float = 0.1) -> TrialBatch:
    """Context-dependent task. inputs: stream A, stream B, cue A, cue B; conditions: context (0 = A, 1 = B),
    coherence_a, coherence_b, choice."""
    fixation, cue, stimulus, delay, decision = (_steps(x) for x in (100, 350, 800, 100, 20))
    stim_begin = fixation + cue
    stim_end = stim_begin + stimulus
    response = stim_end + delay
    steps = response + decision
    inputs = np.zeros((trials, steps, 4))
    inputs[:, :, :2] = 0.1 * rng.standard_normal((trials, steps, 2))
    coh_a = rng.choice(COHERENCES, size=trials)
    coh_b = rng.choice(COHERENCES, size=trials)
    context = rng.integers(0, 2, size=trials)
    inputs[:, stim_begin:stim_end, 0] += 0.1 * coh_a[:, None]
    inputs[:, stim_begin:stim_end, 1] += 0.1 * coh_b[:, None]
    for k in range(2):
        inputs[context == k, fixation:response, 2 + k] = cue_amplitude
    choice = np.where(context == 0, np.sign(coh_a), np.sign(coh_b))
    targets = np.zeros((trials, steps, 1))
    targets[:, response:, 0] = choice[:, None]
    mask = np.zeros((trials, steps))
    mask[:, response:] = 1
    ones = np.ones(trials, dtype=int)
    return TrialBatch(
        inputs=inputs, targets=targets, mask=mask,
        conditions={"context": context, "coherence_a": coh_a, "coherence_b": coh_b, "choice": choice},
        epochs={
            "fixation": (0 * ones, fixation * ones), "cue": (fixation * ones, stim_begin * ones),
            "stimulus": (stim_begin * ones, stim_end * ones), "delay": (stim_end * ones, response * ones),
            "decision": (response * ones, steps * ones),
        },
    )


def rdm_trials(trials: int, *, rng: np.random.Generator) -> TrialBatch:
    """Random dots: one input, N(0, 0.1) noise plus 0.1 x coherence during the stimulus."""
    fixation, stimulus, delay, decision = (_steps(x) for x in (100, 800, 100, 20))
    stim_end = fixation + stimulus
    response = stim_end + delay
    steps = response + decision
    coherence = rng.choice(COHERENCES, size=trials)
    inputs = 0.1 * rng.standard_normal((trials, steps, 1))
    inputs[:, fixation:stim_end, 0] += 0.1 * coherence[:, None]
    targets = np.zeros((trials, steps, 1))
    targets[:, response:, 0] = np.sign(coherence)[:, None]
    mask = np.zeros((trials, steps))
    mask[:, response:] = 1
    return TrialBatch(inputs=inputs, targets=targets, mask=mask, conditions={"coherence": coherence})


def raposo_trials(trials: int, *, rng: np.random.Generator) -> TrialBatch:
    """Multisensory: visual, auditory, visual cue, auditory cue; modality 0 visual, 1 auditory, 2 both."""
    fixation, cue, stimulus, delay, decision = (_steps(x) for x in (100, 350, 800, 100, 20))
    stim_begin = fixation + cue
    stim_end = stim_begin + stimulus
    response = stim_end + delay
    steps = response + decision
    choice = rng.choice(np.array([-1, 1]), size=trials)
    magnitude = rng.choice(np.array([1, 2, 4]), size=trials)
    modality = rng.integers(0, 3, size=trials)
    inputs = np.zeros((trials, steps, 4))
    inputs[:, :, :2] = 0.1 * rng.standard_normal((trials, steps, 2))
    for channel, present in ((0, modality != 1), (1, modality != 0)):
        inputs[present, stim_begin:stim_end, channel] += 0.1 * (choice * magnitude)[present, None]
        inputs[present, fixation:stim_end, 2 + channel] = 0.1
    targets = np.zeros((trials, steps, 1))
    targets[:, response:, 0] = choice[:, None]
    mask = np.zeros((trials, steps))
    mask[:, response:] = 1
    return TrialBatch(inputs=inputs, targets=targets, mask=mask, conditions={"modality": modality, "choice": choice})


def romo_trials(trials: int, *, rng: np.random.Generator) -> TrialBatch:
    """Parametric working memory: input (f - 22) / 24 during f1 and f2 plus N(0, 0.01) noise; padded delays."""
    fixation, f_steps, decision = _steps(100), _steps(100), _steps(100)
    delays = np.arange(_steps(500), _steps(1000) + 1)
    delay = rng.choice(delays, size=trials)
    steps = fixation + f_steps + delays.max() + f_steps + decision
    differences = np.array([-24, -16, -8, 8, 16, 24])
    diff = rng.choice(differences, size=trials)
    low = np.maximum(10, 10 - diff)
    high = np.minimum(34, 34 - diff)
    f1 = rng.integers(low, high + 1)
    f2 = f1 + diff
    inputs = 0.01 * rng.standard_normal((trials, steps, 1))
    targets = np.zeros((trials, steps, 1))
    mask = np.zeros((trials, steps))
    for i in range(trials):
        f2_start = fixation + f_steps + delay[i]
        inputs[i, fixation : fixation + f_steps, 0] += (f1[i] - 22) / 24
        inputs[i, f2_start : f2_start + f_steps, 0] += (f2[i] - 22) / 24
        targets[i, f2_start + f_steps : f2_start + f_steps + decision, 0] = (f1[i] - f2[i]) / 24
        mask[i, f2_start + f_steps : f2_start + f_steps + decision] = 1
    return TrialBatch(inputs=inputs, targets=targets, mask=mask, conditions={"f1": f1, "f2": f2})
