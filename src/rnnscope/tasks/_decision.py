"""Decision tasks of Dubreuil, Valente et al. 2022: random dots, multisensory and context-dependent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnnscope.errors import RnnscopeError
from rnnscope.tasks._base import TaskBase, TrialBatch, epoch_mask, timeline

__all__ = ["RandomDots", "Multisensory", "ContextDependent"]


def _check_coherences(coherences: tuple[float, ...]) -> None:
    if len(coherences) == 0 or any(c == 0 for c in coherences):
        raise RnnscopeError(f"coherences: need at least one value and no zero, got {coherences}")


@dataclass(frozen=True)
class RandomDots(TaskBase):
    """Perceptual decision making (random dots): report the sign of a noisy stimulus' mean.

    One input: N(0, input_noise_std) at every step plus ``stimulus_scale * coherence`` during the stimulus.
    Target ``sign(coherence)`` over the decision epoch, where the mask is 1.
    """

    name: ClassVar[str] = "rdm"
    description: ClassVar[str] = "perceptual decision making (random dots)"
    reference: ClassVar[str] = "Dubreuil, Valente et al. 2022, Nat. Neurosci.; Britten et al. 1992"
    input_names: ClassVar[tuple[str, ...]] = ("stimulus",)
    conditions: ClassVar[tuple[str, ...]] = ("coherence",)

    dt: float = 20.0
    fixation_ms: float = 100.0
    stimulus_ms: float = 800.0
    delay_ms: float = 100.0
    decision_ms: float = 20.0
    coherences: tuple[float, ...] = (-4.0, -2.0, -1.0, 1.0, 2.0, 4.0)
    stimulus_scale: float = 0.1
    input_noise_std: float = 0.1

    def validate(self) -> None:
        _check_coherences(self.coherences)

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        coherence = self.draw("coherence", conditions.get("coherence"), self.coherences, trials, rng).astype(float)
        epochs, steps = timeline(
            {name: self.steps(getattr(self, f"{name}_ms")) for name in ("fixation", "stimulus", "delay", "decision")},
            trials,
        )
        inputs = self.input_noise_std * rng.standard_normal((trials, steps, 1))
        inputs[..., 0] += epoch_mask(*epochs["stimulus"], steps) * (self.stimulus_scale * coherence)[:, None]
        mask = epoch_mask(*epochs["decision"], steps)
        targets = (mask * np.sign(coherence)[:, None])[..., None]
        return TrialBatch(inputs, targets, mask, {"coherence": coherence}, epochs, self.dt)


@dataclass(frozen=True)
class _CuedDecision(TaskBase):
    """Timing and amplitudes shared by the two cued decision tasks: fixation, cue alone, stimulus, delay,
    decision; two noisy sensory streams and two cue channels."""

    dt: float = 20.0
    fixation_ms: float = 100.0
    cue_ms: float = 350.0
    stimulus_ms: float = 800.0
    delay_ms: float = 100.0
    decision_ms: float = 20.0
    coherences: tuple[float, ...] = (-4.0, -2.0, -1.0, 1.0, 2.0, 4.0)
    stimulus_scale: float = 0.1
    cue_amplitude: float = 0.1
    input_noise_std: float = 0.1

    def validate(self) -> None:
        _check_coherences(self.coherences)

    def _timeline(self, trials: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
        epochs = ("fixation", "cue", "stimulus", "delay", "decision")
        return timeline({n: self.steps(getattr(self, f"{n}_ms")) for n in epochs}, trials)

    def _streams(self, trials: int, steps: int, rng: np.random.Generator) -> np.ndarray:
        """(trials, steps, 4) inputs with N(0, input_noise_std) on the two sensory channels, zero cues."""
        inputs = np.zeros((trials, steps, 4))
        inputs[..., :2] = self.input_noise_std * rng.standard_normal((trials, steps, 2))
        return inputs


@dataclass(frozen=True)
class Multisensory(_CuedDecision):
    """Multisensory decision making (Raposo et al. 2014 as in Dubreuil, Valente et al. 2022).

    Inputs: visual, auditory, visual cue, auditory cue. Each trial is visual only (modality 0), auditory only (1)
    or both (2), equally likely. Both sensory channels carry N(0, input_noise_std) noise at every step; a presented
    channel gets ``stimulus_scale * coherence`` during the stimulus (the coherence's sign is the choice) and its cue
    (``cue_amplitude``) from the end of fixation to the end of the stimulus. Target: the choice (+-1).
    """

    name: ClassVar[str] = "raposo"
    description: ClassVar[str] = "multisensory decision making"
    reference: ClassVar[str] = "Raposo et al. 2014; Dubreuil, Valente et al. 2022"
    input_names: ClassVar[tuple[str, ...]] = ("visual", "auditory", "visual_cue", "auditory_cue")
    conditions: ClassVar[tuple[str, ...]] = ("coherence", "modality")
    condition_labels: ClassVar[Mapping[str, Mapping[int, str]]] = {
        "modality": {0: "visual", 1: "auditory", 2: "multisensory"}}
    relevant_inputs: ClassVar[Mapping[str, Mapping[int, tuple[str, ...]]]] = {
        "modality": {0: ("visual",), 1: ("auditory",), 2: ("visual", "auditory")}}

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        coherence = self.draw("coherence", conditions.get("coherence"), self.coherences, trials, rng).astype(float)
        modality = self.draw("modality", conditions.get("modality"), np.arange(3), trials, rng).astype(np.int64)
        if np.any((modality < 0) | (modality > 2)):
            raise RnnscopeError("modality: must be 0 (visual), 1 (auditory) or 2 (both)")
        epochs, steps = self._timeline(trials)
        present = np.stack([modality != 1, modality != 0], axis=1).astype(float)  # (trials, 2): visual, auditory
        inputs = np.zeros((trials, steps, 4))
        inputs[..., :2] = self.input_noise_std * rng.standard_normal((trials, steps, 2))
        stimulus = epoch_mask(*epochs["stimulus"], steps)[..., None]
        inputs[..., :2] += stimulus * (self.stimulus_scale * coherence[:, None] * present)[:, None, :]
        cue = epoch_mask(epochs["cue"][0], epochs["stimulus"][1], steps)[..., None]
        inputs[..., 2:] = cue * (self.cue_amplitude * present)[:, None, :]
        mask = epoch_mask(*epochs["decision"], steps)
        targets = (mask * np.sign(coherence)[:, None])[..., None]
        return TrialBatch(inputs, targets, mask, {"coherence": coherence, "modality": modality}, epochs, self.dt)


@dataclass(frozen=True)
class ContextDependent(_CuedDecision):
    """Context-dependent decision making (Mante et al. 2013 as in Dubreuil, Valente et al. 2022).

    Inputs: colour stream, motion stream, colour cue, motion cue (the reference networks' order: stream A, stream B,
    cue A, cue B). Both streams carry N(0, input_noise_std) noise at every step plus ``stimulus_scale`` times their
    own, independently drawn coherence during the stimulus. One cue (``cue_amplitude``) is on from the end of
    fixation to the start of the decision epoch: context 0 cues colour, 1 cues motion. Target: the sign of the cued
    stream's coherence.
    """

    name: ClassVar[str] = "mante"
    description: ClassVar[str] = "context-dependent decision making"
    reference: ClassVar[str] = "Mante et al. 2013; Dubreuil, Valente et al. 2022"
    input_names: ClassVar[tuple[str, ...]] = ("colour", "motion", "colour_cue", "motion_cue")
    conditions: ClassVar[tuple[str, ...]] = ("colour_coherence", "motion_coherence", "context")
    condition_labels: ClassVar[Mapping[str, Mapping[int, str]]] = {"context": {0: "colour", 1: "motion"}}
    relevant_inputs: ClassVar[Mapping[str, Mapping[int, tuple[str, ...]]]] = {
        "context": {0: ("colour",), 1: ("motion",)}}

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        colour = self.draw("colour_coherence", conditions.get("colour_coherence"), self.coherences, trials, rng)
        motion = self.draw("motion_coherence", conditions.get("motion_coherence"), self.coherences, trials, rng)
        context = self.draw("context", conditions.get("context"), np.arange(2), trials, rng).astype(np.int64)
        if np.any((context < 0) | (context > 1)):
            raise RnnscopeError("context: must be 0 (colour) or 1 (motion)")
        coherence = np.stack([colour, motion], axis=1).astype(float)  # (trials, 2)
        epochs, steps = self._timeline(trials)
        inputs = self._streams(trials, steps, rng)
        inputs[..., :2] += epoch_mask(*epochs["stimulus"], steps)[..., None] * (self.stimulus_scale * coherence)[:, None]
        cued = np.eye(2)[context]  # (trials, 2)
        inputs[..., 2:] = epoch_mask(epochs["cue"][0], epochs["delay"][1], steps)[..., None] * (self.cue_amplitude * cued)[:, None]
        mask = epoch_mask(*epochs["decision"], steps)
        choice = np.sign(coherence[np.arange(trials), context])
        targets = (mask * choice[:, None])[..., None]
        conds = {"colour_coherence": coherence[:, 0], "motion_coherence": coherence[:, 1], "context": context}
        return TrialBatch(inputs, targets, mask, conds, epochs, self.dt)
