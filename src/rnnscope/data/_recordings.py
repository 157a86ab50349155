"""Recorded neural data as one validated object: rates (trials, time, neurons), a condition table, time stamps and
neuron metadata. Network activity exported as recordings (``recordings_from_network``) is the same object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from rnnscope import io
from rnnscope._validation import check_array
from rnnscope.errors import RnnscopeError

__all__ = ["Recordings", "load_recordings", "save_recordings"]


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


def _column(values: Any, name: str, length: int, what: str) -> np.ndarray:
    """A condition or neuron column: (length,) numeric (finite float64) or text (str)."""
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != length:
        raise RnnscopeError(f"{name}: expected shape ({length},) (one value per {what}), got {array.shape}")
    if array.dtype.kind in "biuf":
        return _frozen(check_array(array, name, ndim=1))
    if array.dtype.kind in "US":
        return _frozen(array.astype(str))
    raise RnnscopeError(f"{name}: expected numbers or text, got dtype {array.dtype}")


@dataclass(frozen=True, eq=False)
class Recordings:
    """Rates of recorded (or simulated) neurons with the table of what happened on each trial.

    activity: (trials, time, size) rates (float64); with ``averaged`` the rows are conditions (e.g. PSTHs), not
    single trials. conditions: {name: (trials,)} numbers or text (stimulus, choice, context, ...), one row per trial
    (or per condition). time_ms: (time,) strictly increasing time stamps. neurons: {name: (size,)} metadata (area,
    session, ...). name: a label for reports; source: where it was read from (for messages).
    """

    activity: np.ndarray
    conditions: Mapping[str, np.ndarray]
    time_ms: np.ndarray
    neurons: Mapping[str, np.ndarray] = field(default_factory=dict)
    averaged: bool = False
    name: str = "recordings"
    source: str = ""

    def __post_init__(self) -> None:
        where = f"{self.source}: " if self.source else ""
        activity = np.asarray(self.activity)
        if activity.ndim != 3:
            raise RnnscopeError(f"{where}activity: expected (trials, time, neurons), got shape {activity.shape}")
        if activity.dtype.kind not in "biuf":
            raise RnnscopeError(f"{where}activity: expected numbers, got dtype {activity.dtype}")
        activity = activity.astype(np.float64)
        bad = ~np.isfinite(activity)
        if bad.any():
            trial, step, neuron = (int(i) for i in np.argwhere(bad)[0])
            raise RnnscopeError(f"{where}activity: {int(bad.sum())} NaN or infinite rate(s), first at row {trial}, "
                                f"step {step}, neuron {neuron}")
        rows, steps, size = activity.shape
        if rows < 2 or steps < 1 or size < 1:
            raise RnnscopeError(f"{where}activity: need at least 2 rows, 1 step and 1 neuron, got shape {activity.shape}")
        flat = activity.reshape(rows * steps, size)
        constant = np.flatnonzero(np.ptp(flat, axis=0) == 0)
        if constant.size:
            raise RnnscopeError(f"{where}activity: {constant.size} neuron(s) have no variance (constant rate), first "
                                f"neuron {int(constant[0])}; drop them (Recordings.select)")
        what = "condition" if self.averaged else "trial"
        conditions = {str(k): _column(v, f"{where}conditions[{k!r}]", rows, what) for k, v in dict(self.conditions).items()}
        neurons = {str(k): _column(v, f"{where}neurons[{k!r}]", size, "neuron") for k, v in dict(self.neurons).items()}
        time_ms = check_array(self.time_ms, f"{where}time_ms", shape=(steps,))
        if steps > 1 and np.any(np.diff(time_ms) <= 0):
            raise RnnscopeError(f"{where}time_ms: must be strictly increasing")
        object.__setattr__(self, "activity", _frozen(activity))
        object.__setattr__(self, "conditions", MappingProxyType(conditions))
        object.__setattr__(self, "neurons", MappingProxyType(neurons))
        object.__setattr__(self, "time_ms", _frozen(time_ms))
        object.__setattr__(self, "averaged", bool(self.averaged))

    # -- shape ----------------------------------------------------------------------------------------------------
    @property
    def trials(self) -> int:
        """Rows of ``activity``: trials, or conditions when ``averaged``."""
        return int(self.activity.shape[0])

    @property
    def steps(self) -> int:
        return int(self.activity.shape[1])

    @property
    def size(self) -> int:
        """Number of neurons."""
        return int(self.activity.shape[2])

    # -- regressors -----------------------------------------------------------------------------------------------
    def variables(self, names: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
        """Task variables for the regression: {name: (trials,) float64}.

        names: the condition columns to use, in order; by default every numeric column that varies and is not an
        exact copy of an earlier one, plus every two-level text column. Text columns with two levels are coded
        -1 / +1 (levels in sorted order); other text columns cannot be regressors.
        """
        chosen = list(self.conditions) if names is None else list(names)
        out: dict[str, np.ndarray] = {}
        for name in chosen:
            if name not in self.conditions:
                raise RnnscopeError(f"variables: {name!r} is not a condition column ({', '.join(self.conditions) or 'none'})")
            values = self.conditions[name]
            if values.dtype.kind == "U":
                levels = np.unique(values)
                if levels.size != 2:
                    if names is None:
                        continue
                    raise RnnscopeError(f"variables: text column {name!r} has {levels.size} levels; only two-level "
                                        "text columns can be regressors (code it as numbers)")
                values = np.where(values == levels[1], 1.0, -1.0)
            values = np.asarray(values, dtype=np.float64)
            if names is None and (np.ptp(values) == 0 or any(np.array_equal(values, v) for v in out.values())):
                continue
            if names is not None and np.ptp(values) == 0:
                raise RnnscopeError(f"variables: {name!r} does not vary over the {self.trials} rows")
            out[name] = values
        if not out:
            raise RnnscopeError(f"{self.source or 'conditions'}: no condition column varies; need at least one task variable")
        return out

    def select(self, neurons: np.ndarray) -> Recordings:
        """The recordings of a subset of neurons. neurons: (size,) bool mask or integer indices."""
        index = np.asarray(neurons)
        if index.dtype == bool:
            if index.shape != (self.size,):
                raise RnnscopeError(f"neurons: expected a ({self.size},) mask, got shape {index.shape}")
            index = np.flatnonzero(index)
        return Recordings(activity=self.activity[:, :, index], conditions=dict(self.conditions), time_ms=self.time_ms,
                          neurons={k: v[index] for k, v in self.neurons.items()}, averaged=self.averaged,
                          name=self.name, source=self.source)

    def condition_means(self, variables: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Average the rows that share every value of ``variables``.

        Returns means (conditions, time, size) and their values (conditions, variables), in sorted order.
        """
        table = np.stack([np.asarray(v, dtype=np.float64) for v in variables.values()], axis=1)
        values, inverse = np.unique(table, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        sums = np.zeros((values.shape[0], self.steps, self.size))
        np.add.at(sums, inverse, self.activity)
        return sums / np.bincount(inverse)[:, None, None], values

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The ``.npz`` layout: activity, time_ms, averaged, name, condition_<name>, neuron_<name> (no objects)."""
        arrays = {"activity": np.asarray(self.activity), "time_ms": np.asarray(self.time_ms),
                  "averaged": np.asarray(self.averaged), "name": np.asarray(self.name)}
        arrays.update({f"condition_{k}": np.asarray(v) for k, v in self.conditions.items()})
        arrays.update({f"neuron_{k}": np.asarray(v) for k, v in self.neurons.items()})
        return arrays

    def to_dict(self) -> dict:
        """A summary (no rates)."""
        def levels(values: np.ndarray) -> list:
            unique = np.unique(values)
            return [v.item() for v in unique[:20]]

        return {
            "name": self.name,
            "source": self.source,
            "averaged": self.averaged,
            "trials": self.trials,
            "steps": self.steps,
            "size": self.size,
            "time_ms": [float(self.time_ms[0]), float(self.time_ms[-1])],
            "conditions": {k: levels(v) for k, v in self.conditions.items()},
            "neurons": {k: levels(v) for k, v in self.neurons.items()},
        }


def load_recordings(path: str | Path, *, bin_ms: float = 50.0, align: str = "start_time") -> Recordings:
    """Read and validate recordings from ``.npz``, long-format ``.csv``/``.parquet`` or ``.nwb`` (by suffix; the
    formats are described in ``rnnscope.io.read_recordings``). bin_ms, align: binning of NWB spike times."""
    fields = io.read_recordings(path, bin_ms=bin_ms, align=align)
    try:
        return Recordings(**fields)
    except RnnscopeError as exc:
        raise RnnscopeError(f"{path}: {exc}") from None


def save_recordings(path: str | Path, recordings: Recordings) -> Path:
    """Write ``recordings`` to exactly ``path`` (a new ``.npz`` file), atomically; never overwrites a file."""
    return io.write_recordings(path, recordings.to_arrays())
