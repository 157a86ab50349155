"""The three tasks of Maheswaranathan, Williams, Golub, Ganguli & Sussillo (NeurIPS 2019), "Universality and
individuality in neural dynamics across large populations of recurrent networks": the 3-bit flip-flop,
frequency-cued sine-wave generation and context-dependent integration.

These are continuous tasks: the loss is read on every step, so the mask is 1 over the whole trial and the epoch
named ``decision`` (the epoch where rnnscope reads outputs) spans it. rnnscope's decision-task rule
(``tasks.correct_trials``: the sign of the mean output) does not measure them, so each task has its own
``score(outputs, batch) -> float`` and a ``criterion``: a network is trained to criterion on the task when
``score`` on a fresh batch is at least ``criterion`` (``meets_criterion``).

The paper's networks are discrete-time, so its rates are per step: pulse probability per step and angular frequency
in radians per step. rnnscope keeps those per-step values (at the default dt = 20 ms, one step is 20 ms) and sizes
trials in ms like every other task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnnscope._validation import check_int
from rnnscope.errors import RnnscopeError
from rnnscope.tasks._base import TaskBase, TrialBatch

__all__ = ["FlipFlop", "SineWave", "ContextIntegration"]

_REFERENCE = "Maheswaranathan, Williams, Golub, Ganguli & Sussillo 2019, NeurIPS"


def _check_outputs(outputs: np.ndarray, batch: TrialBatch) -> np.ndarray:
    """outputs: (trials, time, outputs), the shape of ``batch.targets``."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.shape != batch.targets.shape:
        raise RnnscopeError(f"outputs: expected the targets' shape (trials, time, outputs) = {batch.targets.shape}, "
                            f"got {outputs.shape}")
    return outputs


def _r_squared(outputs: np.ndarray, batch: TrialBatch) -> float:
    """1 - SS_res / SS_tot over every masked (trial, step, output), the targets' mean taken over the same entries."""
    outputs = _check_outputs(outputs, batch)
    weight = np.broadcast_to(batch.mask[..., None].astype(np.float64), outputs.shape)
    targets = batch.targets.astype(np.float64)
    total = weight.sum()
    mean = (weight * targets).sum() / total
    ss_tot = (weight * (targets - mean) ** 2).sum()
    ss_res = (weight * (outputs - targets) ** 2).sum()
    if ss_tot == 0:
        raise RnnscopeError("batch: the masked targets are constant, so R^2 is undefined")
    return float(1.0 - ss_res / ss_tot)


def _whole_trial(trials: int, steps: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"decision": (np.zeros(trials, dtype=np.int64), np.full(trials, steps, dtype=np.int64))}


@dataclass(frozen=True)
class _ContinuousTask(TaskBase):
    """Shared parts of the continuous tasks: one trial length, the mask on every step, a score and a criterion."""

    criterion: ClassVar[float] = 1.0
    score_description: ClassVar[str] = ""

    def _check_trial_steps(self, trial_ms: float) -> int:
        steps = self.steps(trial_ms)
        if steps < 1:
            raise RnnscopeError(f"trial_ms: a trial must last at least one step of dt = {self.dt:g} ms, got {trial_ms:g}")
        return steps

    def score(self, outputs: np.ndarray, batch: TrialBatch) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def meets_criterion(self, outputs: np.ndarray, batch: TrialBatch) -> bool:
        """True when ``score(outputs, batch) >= criterion``: the network is trained to criterion on this task."""
        return bool(self.score(outputs, batch) >= self.criterion)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["score"] = self.score_description
        out["criterion"] = self.criterion
        return out


@dataclass(frozen=True)
class FlipFlop(_ContinuousTask):
    """3-bit flip-flop (Sussillo & Barak 2013, as in Maheswaranathan et al. 2019, Fig. 1).

    Three input channels; on each step each channel independently carries a pulse with probability
    ``pulse_probability`` (0.05, the paper's rate per step), of sign +1 or -1 with equal odds and height
    ``pulse_amplitude``; otherwise 0. Output k holds the sign of the last pulse on channel k (+1 or -1), and 0 before
    that channel's first pulse. Pulses last one step.

    Mask: every step. The paper trains on the whole trial, and 0 before the first pulse is a defined target (the
    bit is not set yet), so no step is left out.

    Conditions (not pinnable; the pulse trains are the randomness): ``pulses`` (trials,) the number of pulses over
    the three channels, and ``final_bit_1`` .. ``final_bit_3`` (trials,) each output's value on the last step.

    Score: the fraction of masked (trial, step) entries on which all three outputs are right, an output being right
    when its sign equals the target's sign (target +-1) or when its magnitude is below 0.5 (target 0, before the
    first pulse). Trained to criterion: score > 0.99 (every output right on more than 99 % of the masked steps).
    """

    name: ClassVar[str] = "flipflop"
    description: ClassVar[str] = "3-bit flip-flop memory"
    reference: ClassVar[str] = f"{_REFERENCE}; Sussillo & Barak 2013, Neural Comput."
    input_names: ClassVar[tuple[str, ...]] = ("bit_1", "bit_2", "bit_3")
    output_names: ClassVar[tuple[str, ...]] = ("bit_1", "bit_2", "bit_3")
    conditions: ClassVar[tuple[str, ...]] = ()
    criterion: ClassVar[float] = 0.99
    score_description: ClassVar[str] = ("fraction of masked steps with every output's sign right (|output| < 0.5 "
                                        "before a channel's first pulse)")

    dt: float = 20.0
    trial_ms: float = 2000.0
    pulse_probability: float = 0.05
    pulse_amplitude: float = 1.0

    def validate(self) -> None:
        self._check_trial_steps(self.trial_ms)
        if not 0.0 < self.pulse_probability < 1.0:
            raise RnnscopeError(f"pulse_probability: must lie in (0, 1) (per step and channel), got {self.pulse_probability!r}")
        if self.pulse_amplitude <= 0:
            raise RnnscopeError(f"pulse_amplitude: must be > 0, got {self.pulse_amplitude!r}")

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        steps = self.steps(self.trial_ms)
        bits = len(self.input_names)
        pulse_txb = rng.random((trials, steps, bits)) < self.pulse_probability  # (trials, time, bits)
        sign = np.where(rng.random((trials, steps, bits)) < 0.5, -1.0, 1.0)
        pulses = np.where(pulse_txb, sign, 0.0)
        # Hold the last pulse: index of the last pulse at or before each step, carried forward along time.
        last = np.where(pulse_txb, np.arange(steps)[None, :, None], -1)
        last = np.maximum.accumulate(last, axis=1)
        held = np.take_along_axis(pulses, np.maximum(last, 0), axis=1)
        targets = np.where(last >= 0, held, 0.0)
        inputs = self.pulse_amplitude * pulses
        mask = np.ones((trials, steps))
        conds = {"pulses": pulse_txb.sum(axis=(1, 2))}
        conds.update({f"final_{name}": targets[:, -1, k] for k, name in enumerate(self.output_names)})
        return TrialBatch(inputs, targets, mask, conds, _whole_trial(trials, steps), self.dt)

    def score(self, outputs: np.ndarray, batch: TrialBatch) -> float:
        """Fraction of masked (trial, step) entries with all three outputs right (see the class docstring).
        outputs: (trials, time, 3)."""
        outputs = _check_outputs(outputs, batch)
        targets = batch.targets
        right = np.where(targets != 0, np.sign(outputs) == np.sign(targets), np.abs(outputs) < 0.5)
        every = np.all(right, axis=-1)
        return float((every * batch.mask).sum() / batch.mask.sum())


@dataclass(frozen=True)
class SineWave(_ContinuousTask):
    """Frequency-cued sine-wave generation (Sussillo & Barak 2013, as in Maheswaranathan et al. 2019, Fig. 3).

    A static input sets the frequency of the sine wave the network must produce. Following Sussillo & Barak
    (whose task the 2019 paper reuses): ``frequencies`` = 51 targets, target j = 1..51 has angular frequency
    omega_j spaced evenly from ``omega_min`` = 0.1 to ``omega_max`` = 0.6 radians per step and input level
    ``j / frequencies + input_offset`` (offset 0.25, so levels 0.27 .. 1.25: affine in omega_j), held for the whole
    trial. Target: ``amplitude * sin(omega_j * t)`` with t = 0, 1, .. in steps and amplitude 1, no offset, phase 0.
    Our choices where the text is silent: the trial length (``trial_ms`` = 4000 ms, 200 steps at dt 20 ms, 3.2
    periods of the slowest wave), no input noise, the mask on every step.

    Conditions: ``frequency_index`` (trials,) j in 1..frequencies (pinnable); ``omega`` (trials,) radians per step;
    ``level`` (trials,) the static input.

    Score: R^2 of the outputs against the targets over the masked steps. Trained to criterion: R^2 >= 0.95.
    """

    name: ClassVar[str] = "sine"
    description: ClassVar[str] = "frequency-cued sine-wave generation"
    reference: ClassVar[str] = f"{_REFERENCE}; Sussillo & Barak 2013, Neural Comput."
    input_names: ClassVar[tuple[str, ...]] = ("frequency",)
    output_names: ClassVar[tuple[str, ...]] = ("sine",)
    conditions: ClassVar[tuple[str, ...]] = ("frequency_index",)
    criterion: ClassVar[float] = 0.95
    score_description: ClassVar[str] = "R^2 of the outputs against the target sine over the masked steps"

    dt: float = 20.0
    trial_ms: float = 4000.0
    frequencies: int = 51
    omega_min: float = 0.1
    omega_max: float = 0.6
    input_offset: float = 0.25
    amplitude: float = 1.0

    def validate(self) -> None:
        self._check_trial_steps(self.trial_ms)
        check_int(self.frequencies, "frequencies", minimum=1)
        if not 0.0 < self.omega_min <= np.pi:
            raise RnnscopeError(f"omega_min: must lie in (0, pi] radians per step, got {self.omega_min!r}")
        if not self.omega_min <= self.omega_max <= np.pi:
            raise RnnscopeError(f"omega_max: must lie in [omega_min = {self.omega_min:g}, pi] radians per step, "
                                f"got {self.omega_max!r}")
        if self.frequencies > 1 and self.omega_max == self.omega_min:
            raise RnnscopeError(f"omega_max: must exceed omega_min = {self.omega_min:g} when frequencies > 1, "
                                f"got {self.omega_max!r}")
        if self.amplitude <= 0:
            raise RnnscopeError(f"amplitude: must be > 0, got {self.amplitude!r}")

    def omegas(self) -> np.ndarray:
        """(frequencies,) angular frequency of target j = 1..frequencies, radians per step."""
        if self.frequencies == 1:
            return np.array([self.omega_min])
        return np.linspace(self.omega_min, self.omega_max, self.frequencies)

    def levels(self) -> np.ndarray:
        """(frequencies,) the static input for target j = 1..frequencies: j / frequencies + input_offset."""
        return np.arange(1, self.frequencies + 1) / self.frequencies + self.input_offset

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        index = self.draw("frequency_index", conditions.get("frequency_index"),
                          np.arange(1, self.frequencies + 1), trials, rng)
        if not np.all(np.isin(index, np.arange(1, self.frequencies + 1))):
            raise RnnscopeError(f"frequency_index: must be integers in 1..{self.frequencies}, got {np.unique(index)}")
        index = index.astype(np.int64)
        steps = self.steps(self.trial_ms)
        omega = self.omegas()[index - 1]
        level = self.levels()[index - 1]
        t = np.arange(steps)
        inputs = np.broadcast_to(level[:, None, None], (trials, steps, 1))
        targets = (self.amplitude * np.sin(omega[:, None] * t[None, :]))[..., None]
        mask = np.ones((trials, steps))
        conds = {"frequency_index": index, "omega": omega, "level": level}
        return TrialBatch(inputs, targets, mask, conds, _whole_trial(trials, steps), self.dt)

    def score(self, outputs: np.ndarray, batch: TrialBatch) -> float:
        """R^2 over the masked steps. outputs: (trials, time, 1)."""
        return _r_squared(outputs, batch)


@dataclass(frozen=True)
class ContextIntegration(_ContinuousTask):
    """Context-dependent integration (Maheswaranathan et al. 2019, Fig. 5; the task of Sussillo's contextual
    integrator tutorial in google-research/computation-thru-dynamics).

    Inputs: two white-noise streams and two context channels. Each stream is its own per-trial mean plus
    N(0, input_noise_std) noise on every step; the means are drawn independently from N(0, mean_std). A one-hot
    static context (``context_amplitude`` on one channel for the whole trial) selects the stream to integrate:
    context 0 selects stream a, 1 selects stream b. Target: the running integral of the selected stream, its
    cumulative sum up to and including each step (not multiplied by dt, as in the reference code, so it stays O(1)).
    The paper reports a running integral as the output (the network is read on every step), not a final sign.

    Values from the reference code (T = 1, 25 steps, stddev 0.025 / sqrt(1/25) = 0.125, bias limit 0.01): 25 steps
    (``trial_ms`` = 500 at dt 20), ``input_noise_std`` = 0.125. The reference draws the mean as
    0.01 * 2 * (z - 0.5) with z ~ N(0, 1): spread 0.02 but centred on -0.01, which we take to be a slip, so
    ``mean_std`` = 0.02 centred on 0. The mask is on every step.

    Conditions (all pinnable): ``context`` (trials,) 0 or 1; ``mean_a``, ``mean_b`` (trials,) the streams' means.

    Score: R^2 of the outputs against the running integral over the masked steps. Trained to criterion:
    R^2 >= 0.95.
    """

    name: ClassVar[str] = "context_integration"
    description: ClassVar[str] = "context-dependent integration of one of two noise streams"
    reference: ClassVar[str] = f"{_REFERENCE}; google-research/computation-thru-dynamics (contextual integrator)"
    input_names: ClassVar[tuple[str, ...]] = ("stream_a", "stream_b", "context_a", "context_b")
    output_names: ClassVar[tuple[str, ...]] = ("integral",)
    conditions: ClassVar[tuple[str, ...]] = ("context", "mean_a", "mean_b")
    criterion: ClassVar[float] = 0.95
    score_description: ClassVar[str] = "R^2 of the outputs against the running integral over the masked steps"

    dt: float = 20.0
    trial_ms: float = 500.0
    input_noise_std: float = 0.125
    mean_std: float = 0.02
    context_amplitude: float = 1.0

    def validate(self) -> None:
        self._check_trial_steps(self.trial_ms)
        if self.context_amplitude <= 0:
            raise RnnscopeError(f"context_amplitude: must be > 0, got {self.context_amplitude!r}")
        if self.input_noise_std == 0 and self.mean_std == 0:
            raise RnnscopeError("input_noise_std: with mean_std = 0 too, every stream is 0 and there is nothing "
                                "to integrate; got input_noise_std = 0")

    def _mean(self, name: str, pinned: Any, trials: int, rng: np.random.Generator) -> np.ndarray:
        if pinned is None:
            return self.mean_std * rng.standard_normal(trials)
        values = self.draw(name, pinned, np.array([]), trials, rng).astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise RnnscopeError(f"{name}: must be finite, got {values}")
        return values

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        context = self.draw("context", conditions.get("context"), np.arange(2), trials, rng)
        if not np.all(np.isin(context, (0, 1))):
            raise RnnscopeError(f"context: must be 0 (stream a) or 1 (stream b), got {np.unique(context)}")
        context = context.astype(np.int64)
        mean_a = self._mean("mean_a", conditions.get("mean_a"), trials, rng)
        mean_b = self._mean("mean_b", conditions.get("mean_b"), trials, rng)
        steps = self.steps(self.trial_ms)
        means = np.stack([mean_a, mean_b], axis=1)  # (trials, 2)
        streams = means[:, None, :] + self.input_noise_std * rng.standard_normal((trials, steps, 2))
        cue = self.context_amplitude * np.eye(2)[context]  # (trials, 2)
        inputs = np.concatenate([streams, np.broadcast_to(cue[:, None, :], (trials, steps, 2))], axis=2)
        selected = streams[np.arange(trials), :, context]  # (trials, time)
        targets = np.cumsum(selected, axis=1)[..., None]
        mask = np.ones((trials, steps))
        conds = {"context": context, "mean_a": mean_a, "mean_b": mean_b}
        return TrialBatch(inputs, targets, mask, conds, _whole_trial(trials, steps), self.dt)

    def score(self, outputs: np.ndarray, batch: TrialBatch) -> float:
        """R^2 over the masked steps. outputs: (trials, time, 1)."""
        return _r_squared(outputs, batch)
