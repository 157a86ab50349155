"""Trials as arrays, the Task protocol, epoch timing and the one accuracy rule every task shares."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from rnnscope._loss import masked_mse as _masked_mse_formula
from rnnscope._validation import as_generator, check_int, check_nonnegative, check_positive
from rnnscope.errors import RnnscopeError

__all__ = [
    "TrialBatch",
    "Task",
    "TaskBase",
    "decisions",
    "correct_trials",
    "accuracy",
    "masked_mse",
    "epoch_mask",
    "timeline",
]


@dataclass(frozen=True, eq=False)
class TrialBatch:
    """A batch of trials.

    inputs: (trials, time, inputs) float32; targets: (trials, time, outputs) float32;
    mask: (trials, time) float32, 1 where the loss and the decision are read (the decision epoch);
    conditions: {name: (trials,)} what was drawn for each trial; epochs: {name: (start (trials,), stop (trials,))}
    in steps; dt: step in ms.
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    conditions: Mapping[str, np.ndarray]
    epochs: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    dt: float = 20.0

    def __post_init__(self) -> None:
        inputs = np.asarray(self.inputs, dtype=np.float32)
        targets = np.asarray(self.targets, dtype=np.float32)
        mask = np.asarray(self.mask, dtype=np.float32)
        if inputs.ndim != 3:
            raise RnnscopeError(f"inputs: expected (trials, time, inputs), got shape {inputs.shape}")
        if targets.ndim != 3 or targets.shape[:2] != inputs.shape[:2]:
            raise RnnscopeError(f"targets: expected ({inputs.shape[0]}, {inputs.shape[1]}, outputs), got {targets.shape}")
        if mask.shape != inputs.shape[:2]:
            raise RnnscopeError(f"mask: expected {inputs.shape[:2]}, got {mask.shape}")
        for name, values in self.conditions.items():
            if np.shape(values) != (inputs.shape[0],):
                raise RnnscopeError(f"conditions[{name!r}]: expected shape ({inputs.shape[0]},), got {np.shape(values)}")
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "conditions", {k: np.asarray(v) for k, v in self.conditions.items()})

    @property
    def trials(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def steps(self) -> int:
        return int(self.inputs.shape[1])

    def subset(self, index: np.ndarray | slice) -> TrialBatch:
        """The trials selected by ``index`` (a slice, an integer array or a boolean (trials,) array)."""
        return TrialBatch(
            inputs=self.inputs[index],
            targets=self.targets[index],
            mask=self.mask[index],
            conditions={k: v[index] for k, v in self.conditions.items()},
            epochs={k: (a[index], b[index]) for k, (a, b) in self.epochs.items()},
            dt=self.dt,
        )


@runtime_checkable
class Task(Protocol):
    """What rnnscope needs of a task. Any object with these members works, no subclassing needed.

    ``sample(trials, rng=..., **conditions)`` returns a TrialBatch; keyword conditions pin what would be drawn
    (a scalar for all trials or an array (trials,)), so a psychometric curve needs no new code.
    """

    name: str
    dt: float
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch: ...


def epoch_mask(start: np.ndarray, stop: np.ndarray, steps: int) -> np.ndarray:
    """(trials, steps) bool, True where start[i] <= t < stop[i]."""
    t = np.arange(steps)
    return (t >= np.asarray(start)[:, None]) & (t < np.asarray(stop)[:, None])


def _resolve_annotation(cls: type, f: dataclasses.Field) -> Any:
    hints = typing.get_type_hints(cls)
    return hints.get(f.name, f.type)


@dataclass(frozen=True)
class TaskBase:
    """Shared parts of the built-in tasks: validation of timings (ms, rounded down to whole steps) and noise levels,
    drawing or pinning conditions, and parameter listing. Subclasses are frozen dataclasses whose fields are
    the task's parameters; fields ending in ``_ms`` are durations.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    input_names: ClassVar[tuple[str, ...]] = ()
    output_names: ClassVar[tuple[str, ...]] = ("choice",)

    def __post_init__(self) -> None:
        check_positive(self.dt, "dt")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, (float, np.floating)) and not np.isfinite(item):
                    raise RnnscopeError(f"{f.name}: must be finite, got {value!r}")
            if f.name.endswith("_ms"):
                check_nonnegative(value, f.name)
            elif f.name.endswith(("_std", "_scale", "_amplitude")):
                check_nonnegative(value, f.name)
        if "decision_ms" in {f.name for f in dataclasses.fields(self)} and self.steps(self.decision_ms) < 1:
            raise RnnscopeError(f"decision_ms: the decision epoch (where the loss mask and the answer are read) must "
                                f"last at least one step of dt = {self.dt:g} ms, got {self.decision_ms:g}")
        self.validate()

    def validate(self) -> None:
        """Task-specific checks (override)."""

    conditions: ClassVar[tuple[str, ...]] = ()  # what ``sample`` can pin by keyword
    # what integer condition values mean, {condition: {value: name}} (e.g. mante's context 0 is "colour"), and which
    # inputs a context value makes relevant, {condition: {value: input names}}; reports and text output read them
    condition_labels: ClassVar[Mapping[str, Mapping[int, str]]] = {}
    relevant_inputs: ClassVar[Mapping[str, Mapping[int, tuple[str, ...]]]] = {}

    def sample(self, trials: int, *, rng: np.random.Generator | int, **conditions: Any) -> TrialBatch:
        """``trials`` fresh trials; rng: an int seed or a Generator; keyword conditions (names in ``conditions``)
        pin what would be drawn, as a scalar for all trials or an array (trials,)."""
        check_int(trials, "trials", minimum=1)
        self.check_conditions(conditions, self.conditions)
        return self._sample(trials, rng=as_generator(rng, name="rng"), **conditions)

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        """Draw the trials (override): conditions are checked and rng is a Generator."""
        raise NotImplementedError

    # -- helpers for subclasses -------------------------------------------------------------------------------
    def steps(self, duration_ms: float) -> int:
        """A duration in ms as whole steps, rounded down as the reference code does (350 ms at dt 20 -> 17 steps)."""
        return int(np.floor(duration_ms / self.dt + 1e-9))  # type: ignore[attr-defined]

    @staticmethod
    def draw(
        name: str, pinned: Any, values: np.ndarray, trials: int, rng: np.random.Generator
    ) -> np.ndarray:
        """``pinned`` broadcast to (trials,) if given, else ``trials`` uniform draws from ``values``."""
        if pinned is None:
            return rng.choice(np.asarray(values), size=trials)
        pinned = np.asarray(pinned)
        if pinned.ndim == 0:
            return np.full(trials, pinned.item())
        if pinned.shape != (trials,):
            raise RnnscopeError(f"{name}: expected a scalar or an array of shape ({trials},), got {pinned.shape}")
        return pinned

    @staticmethod
    def check_conditions(conditions: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(conditions) - set(allowed))
        if unknown:
            raise RnnscopeError(f"{unknown[0]}: not a condition of this task (conditions: {', '.join(allowed)})")

    # -- description --------------------------------------------------------------------------------------------
    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """{parameter: default} for every option, JSON-ready."""
        out = {}
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            out[f.name] = list(default) if isinstance(default, tuple) else default
        return out

    @classmethod
    def option_type(cls, name: str) -> Any:
        for f in dataclasses.fields(cls):
            if f.name == name:
                return _resolve_annotation(cls, f)
        raise RnnscopeError(f"{name}: not an option of task {cls.name!r} (options: {', '.join(cls.parameters())})")

    def options(self) -> dict[str, Any]:
        """The values of every parameter, JSON-ready."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "reference": self.reference,
            "inputs": list(self.input_names),
            "outputs": list(self.output_names),
            "parameters": self.options(),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- the one decision and accuracy rule ---------------------------------------------------------------------------
def decisions(outputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean output over each trial's masked steps. outputs: (trials, time, outputs); mask: (trials, time).
    Returns (trials, outputs)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    mask = np.asarray(mask, dtype=np.float64)
    counts = mask.sum(axis=1)
    if np.any(counts == 0):
        raise RnnscopeError("mask: every trial needs at least one masked (decision) step")
    return np.einsum("bto,bt->bo", outputs, mask) / counts[:, None]


def correct_trials(outputs: np.ndarray, batch: TrialBatch) -> np.ndarray:
    """(trials,) bool: the sign of the mean output over the decision epoch equals the sign of the mean target
    there, for every output channel. Works for binary choices and for signed targets such as f1 - f2."""
    if np.shape(outputs)[-1] != batch.targets.shape[-1]:
        raise RnnscopeError(
            f"outputs: the network has {np.shape(outputs)[-1]} outputs but the task has {batch.targets.shape[-1]}"
        )
    made = np.sign(decisions(outputs, batch.mask))
    wanted = np.sign(decisions(batch.targets, batch.mask))
    return np.all(made == wanted, axis=-1)


def accuracy(outputs: np.ndarray, batch: TrialBatch) -> float:
    """Fraction of correct trials (see ``correct_trials``)."""
    return float(np.mean(correct_trials(outputs, batch)))


def masked_mse(outputs: np.ndarray, batch: TrialBatch) -> float:
    """The training loss in NumPy (float64), the one definition of ``rnnscope._loss``: per trial, the mean over
    masked steps of the mean over outputs of the squared error (0 for a trial whose mask is all zero); then the
    mean over all trials. outputs: (trials, time, outputs)."""
    return float(_masked_mse_formula(np.asarray(outputs, dtype=np.float64), batch.targets, batch.mask))


def timeline(durations: Mapping[str, int | np.ndarray], trials: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """Lay epochs end to end. durations: {epoch: steps (int or (trials,))} in order.

    Returns ({epoch: (start (trials,), stop (trials,))}, total steps); trials shorter than the longest are padded
    at the end.
    """
    epochs = {}
    start = np.zeros(trials, dtype=np.int64)
    for name, steps in durations.items():
        stop = start + np.broadcast_to(np.asarray(steps, dtype=np.int64), (trials,))
        epochs[name] = (start, stop)
        start = stop
    return epochs, int(start.max()) if trials else 0
