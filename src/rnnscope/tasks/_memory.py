"""Working-memory tasks: parametric working memory (Romo) and delayed match-to-sample."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnnscope.errors import RnnscopeError
from rnnscope.tasks._base import TaskBase, TrialBatch, epoch_mask, timeline

__all__ = ["ParametricWorkingMemory", "DelayedMatchToSample"]


def _delays(task: TaskBase, pinned: Any, low_ms: float, high_ms: float, trials: int, rng: np.random.Generator) -> np.ndarray:
    """Delays in steps, uniform over multiples of dt in [low_ms, high_ms], or pinned (in ms)."""
    low, high = task.steps(low_ms), task.steps(high_ms)
    if pinned is None:
        return rng.integers(low, high + 1, size=trials)
    pinned_ms = task.draw("delay_ms", pinned, np.array([]), trials, rng).astype(float)
    steps = np.floor(pinned_ms / task.dt + 1e-9).astype(np.int64)  # type: ignore[attr-defined]
    if np.any((steps < low) | (steps > high)):
        raise RnnscopeError(f"delay_ms: must lie within [{low_ms:g}, {high_ms:g}], got {np.unique(pinned_ms)}")
    return steps


@dataclass(frozen=True)
class ParametricWorkingMemory(TaskBase):
    """Parametric working memory (Romo et al. 1999 as in Dubreuil, Valente et al. 2022): compare two vibration
    frequencies separated by a delay.

    One input: ``(f - middle) / span`` during f1 and f2 (middle 22, span 24 for 10..34 Hz) plus N(0, input_noise_std)
    at every step. Pairs: every integer f1 with f2 = f1 + d in range, d in ``differences``. Delay uniform in
    [delay_min_ms, delay_max_ms]; trials are padded to the longest delay. Target ``(f1 - f2) / span`` over the
    decision epoch, where alone the mask is 1.
    """

    name: ClassVar[str] = "romo"
    description: ClassVar[str] = "parametric working memory"
    reference: ClassVar[str] = "Romo et al. 1999; Dubreuil, Valente et al. 2022"
    input_names: ClassVar[tuple[str, ...]] = ("frequency",)
    conditions: ClassVar[tuple[str, ...]] = ("f1", "f2", "delay_ms")

    dt: float = 20.0
    fixation_ms: float = 100.0
    f1_ms: float = 100.0
    delay_min_ms: float = 500.0
    delay_max_ms: float = 1000.0
    f2_ms: float = 100.0
    decision_ms: float = 100.0
    frequency_min: float = 10.0
    frequency_max: float = 34.0
    differences: tuple[float, ...] = (-24.0, -16.0, -8.0, 8.0, 16.0, 24.0)
    input_noise_std: float = 0.01

    def validate(self) -> None:
        if self.delay_min_ms > self.delay_max_ms:
            raise RnnscopeError(f"delay_min_ms: must be <= delay_max_ms = {self.delay_max_ms:g}, got {self.delay_min_ms:g}")
        if self.frequency_min >= self.frequency_max:
            raise RnnscopeError(f"frequency_min: must be < frequency_max = {self.frequency_max:g}, got {self.frequency_min:g}")
        if not self.pairs().size:
            raise RnnscopeError(f"differences: no frequency pair fits in [{self.frequency_min:g}, {self.frequency_max:g}]")
        if any(d == 0 for d in self.differences):
            raise RnnscopeError(f"differences: must not contain 0, got {self.differences}")

    @property
    def middle(self) -> float:
        return (self.frequency_min + self.frequency_max) / 2

    @property
    def span(self) -> float:
        return self.frequency_max - self.frequency_min

    def pairs(self) -> np.ndarray:
        """(pairs, 2) every (f1, f2) with integer f1 and both within the frequency range."""
        out = [
            (f1, f1 + d)
            for d in self.differences
            for f1 in np.arange(np.ceil(self.frequency_min), np.floor(self.frequency_max) + 1)
            if self.frequency_min <= f1 + d <= self.frequency_max
        ]
        return np.array(out, dtype=float).reshape(-1, 2)

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        if (conditions.get("f1") is None) != (conditions.get("f2") is None):
            raise RnnscopeError("f1: pin f1 and f2 together")
        if conditions.get("f1") is None:
            pairs = self.pairs()[rng.integers(0, len(self.pairs()), size=trials)]
            f1, f2 = pairs[:, 0], pairs[:, 1]
        else:
            f1 = self.draw("f1", conditions["f1"], np.array([]), trials, rng).astype(float)
            f2 = self.draw("f2", conditions["f2"], np.array([]), trials, rng).astype(float)
        delay = _delays(self, conditions.get("delay_ms"), self.delay_min_ms, self.delay_max_ms, trials, rng)
        durations = {
            "fixation": self.steps(self.fixation_ms), "f1": self.steps(self.f1_ms), "delay": delay,
            "f2": self.steps(self.f2_ms), "decision": self.steps(self.decision_ms),
        }
        epochs, _ = timeline(durations, trials)
        steps = sum(self.steps(getattr(self, f"{n}_ms")) for n in ("fixation", "f1", "delay_max", "f2", "decision"))
        inputs = self.input_noise_std * rng.standard_normal((trials, steps, 1))
        inputs[..., 0] += epoch_mask(*epochs["f1"], steps) * ((f1 - self.middle) / self.span)[:, None]
        inputs[..., 0] += epoch_mask(*epochs["f2"], steps) * ((f2 - self.middle) / self.span)[:, None]
        mask = epoch_mask(*epochs["decision"], steps)
        targets = (mask * ((f1 - f2) / self.span)[:, None])[..., None]
        conds = {"f1": f1, "f2": f2, "delay_ms": delay * self.dt}
        return TrialBatch(inputs, targets, mask, conds, epochs, self.dt)


@dataclass(frozen=True)
class DelayedMatchToSample(TaskBase):
    """Delayed match-to-sample (Miyashita 1988 as in Dubreuil, Valente et al. 2022).

    Two one-hot inputs (stimulus A, stimulus B): the sample's channel is 1 during the sample epoch, the test's during
    the test epoch; both carry N(0, input_noise_std) at every step. The delay is uniform in
    [delay_min_ms, delay_max_ms] (trials padded to the longest); the decision epoch starts right after the test.
    Target +1 when sample and test match, -1 otherwise, over the decision epoch.
    """

    name: ClassVar[str] = "dms"
    description: ClassVar[str] = "delayed match-to-sample"
    reference: ClassVar[str] = "Miyashita 1988; Dubreuil, Valente et al. 2022"
    input_names: ClassVar[tuple[str, ...]] = ("stimulus_a", "stimulus_b")
    conditions: ClassVar[tuple[str, ...]] = ("sample", "test", "delay_ms")
    condition_labels: ClassVar[Mapping[str, Mapping[int, str]]] = {
        "sample": {0: "A", 1: "B"}, "test": {0: "A", 1: "B"}, "match": {-1: "non-match", 1: "match"}}

    dt: float = 20.0
    fixation_ms: float = 100.0
    sample_ms: float = 500.0
    delay_min_ms: float = 500.0
    delay_max_ms: float = 3000.0
    test_ms: float = 500.0
    decision_ms: float = 1000.0
    stimulus_amplitude: float = 1.0
    input_noise_std: float = 0.03

    def validate(self) -> None:
        if self.delay_min_ms > self.delay_max_ms:
            raise RnnscopeError(f"delay_min_ms: must be <= delay_max_ms = {self.delay_max_ms:g}, got {self.delay_min_ms:g}")

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        sample = self.draw("sample", conditions.get("sample"), np.arange(2), trials, rng).astype(np.int64)
        test = self.draw("test", conditions.get("test"), np.arange(2), trials, rng).astype(np.int64)
        if np.any((sample < 0) | (sample > 1) | (test < 0) | (test > 1)):
            raise RnnscopeError("sample: stimuli are 0 (A) or 1 (B)")
        delay = _delays(self, conditions.get("delay_ms"), self.delay_min_ms, self.delay_max_ms, trials, rng)
        durations = {
            "fixation": self.steps(self.fixation_ms), "sample": self.steps(self.sample_ms), "delay": delay,
            "test": self.steps(self.test_ms), "decision": self.steps(self.decision_ms),
        }
        epochs, _ = timeline(durations, trials)
        steps = sum(self.steps(getattr(self, f"{n}_ms")) for n in ("fixation", "sample", "delay_max", "test", "decision"))
        inputs = self.input_noise_std * rng.standard_normal((trials, steps, 2))
        onehot = np.eye(2)
        inputs += epoch_mask(*epochs["sample"], steps)[..., None] * (self.stimulus_amplitude * onehot[sample])[:, None]
        inputs += epoch_mask(*epochs["test"], steps)[..., None] * (self.stimulus_amplitude * onehot[test])[:, None]
        mask = epoch_mask(*epochs["decision"], steps)
        match = np.where(sample == test, 1.0, -1.0)
        targets = (mask * match[:, None])[..., None]
        conds = {"sample": sample, "test": test, "match": match, "delay_ms": delay * self.dt}
        return TrialBatch(inputs, targets, mask, conds, epochs, self.dt)
