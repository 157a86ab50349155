"""Perturbations in time: silence or scale the rates of some neurons, clamp a latent variable, or add a pulse to
the drive, during an epoch or a window of each trial.

Dynamics of a rate network (``a = alpha``, ``s = noise_std``, step ``t = 0 .. time-1``, ``x_0 = h0``)::

    x_{t+1} = (1 - a) x_t + a (J G_t tanh(x_t) + W_in u_t + P_t) + s xi_t,    then the clamps C_t
    z_t     = (G_t tanh(x_{t+1})) @ w_out * readout_scale

with, when no perturbation is active at step t, ``G_t = 1``, ``P_t = 0`` and no clamp (the plain dynamics).
A perturbation active at step t (``u_t`` is the input of the epoch the step belongs to: ``batch.epochs`` index
steps this way) acts as follows:

- ``silence``: ``G_t[i] = 0`` for the chosen neurons (their rates reach neither the recurrent input nor the
  readout); ``scale_gain``: ``G_t[i] = value``. Several gain perturbations multiply.
- ``add_input``: ``P_t += drive`` (size,) -- a pulse in neuron space; ``Perturbation.pulse`` builds
  ``drive = W_in v`` from input values v. With a neuron selection only those neurons receive it. Pulses add.
- ``clamp_kappa``: after the update, ``x_{t+1} <- x_{t+1} - (kappa_r - value) m_r`` with
  ``kappa_r = x_{t+1} . m_r / |m_r|^2`` (the projection of the latent analysis), so that kappa_r = value exactly.
  Only low-rank networks have m; when the columns of m are not orthogonal a clamp of kappa_r also moves the
  projection on the other columns, and several clamps apply in the order given.

The window: ``epoch`` (a name of ``TrialBatch.epochs``, per trial), ``window_steps`` or ``window_ms`` (start,
stop), or both: with an epoch the window is counted from the epoch's onset and cut at its end (``epoch="delay",
window_steps=(0, 1)``: the first step of the delay only); without, from the start of the trial. Neither: every
step. The initial state x_0 is never perturbed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnnscope._validation import check_int
from rnnscope.errors import RnnscopeError
from rnnscope.models._core import rate_step, run

__all__ = ["KINDS", "Perturbation", "Perturbations", "as_perturbations", "perturbation_windows"]

KINDS = ("silence", "scale_gain", "clamp_kappa", "add_input")


def _finite(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RnnscopeError(f"{field}: expected a number, got {value!r}")
    if not np.isfinite(value):
        raise RnnscopeError(f"{field}: must be finite, got {value!r}")
    return float(value)


def _pair(value: Any, field: str, *, integer: bool) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise RnnscopeError(f"{field}: expected (start, stop), got {value!r}")
    start, stop = (check_int(v, field, minimum=0) if integer else _finite(v, field) for v in value)
    if start < 0 or stop <= start:
        raise RnnscopeError(f"{field}: expected 0 <= start < stop, got {tuple(value)!r}")
    return (start, stop)


@dataclass(frozen=True, eq=False)
class Perturbation:
    """One perturbation: what (``kind``), on which neurons or latent direction, and when (see the module docstring).

    kind: ``"silence"``, ``"scale_gain"``, ``"clamp_kappa"`` or ``"add_input"``.
    Which neurons (silence, scale_gain; optional for add_input): ``neurons`` a (size,) bool mask or (k,) indices,
    or ``labels`` (size,) ints 0..P-1 (e.g. ``rnnscope.analysis.population_labels_of``) with ``population``.
    value: the gain g (scale_gain, >= 0) or the value kappa_r is held at (clamp_kappa, default 0).
    kappa: r, the latent variable to clamp (clamp_kappa). drive: (size,) the vector added to the drive (add_input).
    When: ``epoch`` and/or ``window_steps`` (ints) or ``window_ms`` (ms, rounded to steps of the trials' dt).
    """

    kind: str
    neurons: np.ndarray | None = None
    labels: np.ndarray | None = None
    population: int | None = None
    value: float | None = None
    kappa: int | None = None
    drive: np.ndarray | None = None
    epoch: str | None = None
    window_steps: tuple[int, int] | None = None
    window_ms: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RnnscopeError(f"kind: must be one of {', '.join(KINDS)}, got {self.kind!r}")
        selects = self.neurons is not None or self.labels is not None or self.population is not None
        if self.neurons is not None and (self.labels is not None or self.population is not None):
            raise RnnscopeError("neurons: give either neurons or labels with population, not both")
        if (self.labels is None) != (self.population is None):
            raise RnnscopeError("population: labels and population go together (labels (size,), population p)")
        if self.neurons is not None:
            neurons = np.asarray(self.neurons)
            if neurons.ndim != 1 or not (neurons.dtype == bool or np.issubdtype(neurons.dtype, np.integer)):
                raise RnnscopeError(f"neurons: expected a (size,) bool mask or (k,) int indices, got "
                                    f"{neurons.dtype} of shape {neurons.shape}")
            if neurons.dtype != bool and neurons.size and neurons.min() < 0:
                raise RnnscopeError(f"neurons: indices must be >= 0, got {int(neurons.min())}")
            object.__setattr__(self, "neurons", neurons.copy())
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
                raise RnnscopeError(f"labels: expected (size,) integers 0..P-1, got {labels.dtype} of shape {labels.shape}")
            population = check_int(self.population, "population", minimum=0)
            if population > int(labels.max()):
                raise RnnscopeError(f"population: must be in 0..{int(labels.max())} (the labels), got {population}")
            object.__setattr__(self, "labels", labels.copy())
        if self.kind in ("silence", "scale_gain") and not selects:
            raise RnnscopeError(f"neurons: {self.kind} needs neurons, or labels with population")
        if self.kind == "clamp_kappa":
            if selects:
                raise RnnscopeError("neurons: clamp_kappa acts on a latent direction, not on neurons")
            check_int(self.kappa, "kappa", minimum=0)
            object.__setattr__(self, "value", 0.0 if self.value is None else _finite(self.value, "value"))
        elif self.kappa is not None:
            raise RnnscopeError(f"kappa: only clamp_kappa takes a latent index, not {self.kind}")
        if self.kind == "scale_gain":
            if self.value is None or _finite(self.value, "value") < 0:
                raise RnnscopeError(f"value: scale_gain needs a gain >= 0, got {self.value!r}")
            object.__setattr__(self, "value", float(self.value))
        if self.kind == "silence" and self.value is not None:
            raise RnnscopeError("value: silence takes no value (it is a gain of 0)")
        if self.kind == "add_input":
            if self.value is not None:
                raise RnnscopeError("value: add_input takes a drive vector, not a value")
            if self.drive is None:
                raise RnnscopeError("drive: add_input needs a (size,) drive vector (Perturbation.pulse builds one)")
            drive = np.asarray(self.drive, dtype=np.float64)
            if drive.ndim != 1 or not np.all(np.isfinite(drive)):
                raise RnnscopeError(f"drive: expected a finite (size,) vector, got shape {drive.shape}")
            object.__setattr__(self, "drive", drive)
        elif self.drive is not None:
            raise RnnscopeError(f"drive: only add_input takes a drive, not {self.kind}")
        if self.epoch is not None and (not isinstance(self.epoch, str) or not self.epoch):
            raise RnnscopeError(f"epoch: expected an epoch name, got {self.epoch!r}")
        if self.window_steps is not None and self.window_ms is not None:
            raise RnnscopeError("window_ms: give window_steps or window_ms, not both")
        if self.window_steps is not None:
            object.__setattr__(self, "window_steps", _pair(self.window_steps, "window_steps", integer=True))
        if self.window_ms is not None:
            object.__setattr__(self, "window_ms", _pair(self.window_ms, "window_ms", integer=False))

    @classmethod
    def pulse(cls, w_in: np.ndarray, values: np.ndarray | Sequence[float], **when: Any) -> Perturbation:
        """An add_input pulse of input values ``values`` (inputs,) through w_in (size, inputs): drive = W_in v."""
        w_in = np.asarray(w_in, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        if w_in.ndim != 2 or values.shape != (w_in.shape[1],):
            raise RnnscopeError(f"values: expected ({w_in.shape[-1]},) input values for w_in {w_in.shape}, got {values.shape}")
        return cls("add_input", drive=w_in @ values, **when)

    def mask(self, size: int) -> np.ndarray | None:
        """(size,) bool: the neurons it acts on, or None for all (clamp_kappa, an unrestricted pulse)."""
        if self.neurons is not None:
            if self.neurons.dtype == bool:
                if self.neurons.shape != (size,):
                    raise RnnscopeError(f"neurons: expected a ({size},) mask, got shape {self.neurons.shape}")
                return self.neurons
            if self.neurons.size and self.neurons.max() >= size:
                raise RnnscopeError(f"neurons: indices must be < size = {size}, got {int(self.neurons.max())}")
            out = np.zeros(size, dtype=bool)
            out[self.neurons] = True
            return out
        if self.labels is not None:
            if self.labels.shape != (size,):
                raise RnnscopeError(f"labels: expected ({size},) labels, got shape {self.labels.shape}")
            return self.labels == self.population
        return None

    def window(self, trials: int, steps: int, *, epochs: Mapping[str, tuple] | None = None,
               dt: float | None = None) -> np.ndarray:
        """(trials, steps) bool: True at the steps where it acts. epochs: ``TrialBatch.epochs`` {name: (start
        (trials,), stop (trials,))} in steps, needed with ``epoch``; dt: ms per step, needed with ``window_ms``."""
        start, stop = np.zeros(trials, dtype=np.int64), np.full(trials, steps, dtype=np.int64)
        if self.epoch is not None:
            if not epochs or self.epoch not in epochs:
                known = ", ".join(epochs) if epochs else "none were given: pass epochs=batch.epochs"
                raise RnnscopeError(f"epoch: {self.epoch!r} is not an epoch of the trials ({known})")
            first, last = (np.broadcast_to(np.asarray(a, dtype=np.int64), (trials,)) for a in epochs[self.epoch])
            start, stop = first.copy(), last.copy()
        window = self.window_steps
        if self.window_ms is not None:
            if dt is None:
                raise RnnscopeError("window_ms: the trials' dt is needed (pass dt=batch.dt), or give window_steps")
            window = tuple(int(round(v / dt)) for v in self.window_ms)
            if window[1] <= window[0]:
                raise RnnscopeError(f"window_ms: {self.window_ms} is shorter than one step of {dt:g} ms")
        if window is not None:
            offset = start if self.epoch is not None else 0
            start, stop = offset + np.full(trials, window[0]), np.minimum(stop, offset + window[1])
        t = np.arange(steps)
        return (t >= start[:, None]) & (t < stop[:, None])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        mask = None if self.neurons is None else self.neurons
        if mask is not None:
            out["neurons"] = int(mask.sum()) if mask.dtype == bool else int(len(np.unique(mask)))
        if self.labels is not None:
            out["population"] = int(self.population)
            out["neurons"] = int(np.sum(self.labels == self.population))
        for name in ("value", "kappa", "epoch", "window_steps", "window_ms"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        if self.drive is not None:
            out["drive_norm"] = float(np.linalg.norm(self.drive))
        return out


Perturbations = Perturbation | Sequence[Perturbation]


def as_perturbations(perturbation: Perturbations | None) -> tuple[Perturbation, ...]:
    """() for None, else a tuple of Perturbation (checked)."""
    if perturbation is None:
        return ()
    items = (perturbation,) if isinstance(perturbation, Perturbation) else tuple(perturbation)
    for k, item in enumerate(items):
        if not isinstance(item, Perturbation):
            raise RnnscopeError(f"perturbation[{k}]: expected a Perturbation, got {type(item).__name__}")
    return items


def perturbation_windows(perturbations: tuple[Perturbation, ...], trials: int, steps: int, *,
                         epochs: Mapping[str, tuple] | None, dt: float | None) -> np.ndarray:
    """(trials, steps, K) float32: 1 where perturbation k acts."""
    return np.stack([p.window(trials, steps, epochs=epochs, dt=dt) for p in perturbations], axis=-1).astype(np.float32)


class _Resolved:
    """Perturbations as tensors for one network shape: per perturbation a gain vector, a pulse or a clamp.

    m: (size, rank) or (networks, size, rank) for clamps (None for full-rank networks)."""

    def __init__(self, perturbations: tuple[Perturbation, ...], size: int, m: torch.Tensor | None,
                 dtype: torch.dtype, device: str) -> None:
        self.count = len(perturbations)
        self.gains: list[tuple[int, torch.Tensor]] = []  # (k, (size,) g - 1 on the chosen neurons, 0 elsewhere)
        self.pulses: list[tuple[int, torch.Tensor]] = []  # (k, (size,) drive)
        self.clamps: list[tuple[int, torch.Tensor, torch.Tensor, float]] = []  # (k, m_r, m_r / |m_r|^2, value)
        tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
        for k, p in enumerate(perturbations):
            mask = p.mask(size)
            if p.kind in ("silence", "scale_gain"):
                gain = 0.0 if p.kind == "silence" else float(p.value)
                self.gains.append((k, tensor(np.where(mask, gain - 1.0, 0.0))))
            elif p.kind == "add_input":
                if p.drive.shape != (size,):
                    raise RnnscopeError(f"drive: expected shape ({size},), got {p.drive.shape}")
                self.pulses.append((k, tensor(p.drive if mask is None else np.where(mask, p.drive, 0.0))))
            else:
                if m is None:
                    raise RnnscopeError("kappa: clamp_kappa needs a low-rank network (kappa_r = x . m_r / |m_r|^2)")
                if p.kappa >= m.shape[-1]:
                    raise RnnscopeError(f"kappa: must be < rank = {m.shape[-1]}, got {p.kappa}")
                m_r = m[..., p.kappa].to(dtype)  # (size,) or (networks, size)
                norm = (m_r * m_r).sum(-1, keepdim=True)
                if torch.any(norm == 0):
                    raise RnnscopeError(f"kappa: m[:, {p.kappa}] is zero, kappa_{p.kappa} is undefined")
                if m_r.dim() == 2:  # a stack: broadcast over trials
                    m_r, norm = m_r[:, None, :], norm[:, None, :]
                self.clamps.append((k, m_r, m_r / norm, float(p.value)))

    def gain(self, flags: torch.Tensor) -> torch.Tensor | None:
        """G_t (..., trials, size) from the active flags (..., trials, K), or None when no gain perturbation."""
        out = None
        for k, delta in self.gains:
            g = 1.0 + flags[..., k : k + 1] * delta
            out = g if out is None else out * g
        return out


class _PerturbedCell:
    """A rate cell whose forcing carries, after the size entries, the K active flags of the step; its state is
    ``[x, flags of the last step]`` so that the readout sees the gain of the step that produced x."""

    def __init__(self, forcing: torch.Tensor, flags: torch.Tensor, h0: torch.Tensor, recurrent, alpha: float,
                 resolved: _Resolved) -> None:
        self.size, self.alpha, self.resolved, self.recurrent, self.h0 = forcing.shape[-1], alpha, resolved, recurrent, h0
        self._forcing = torch.cat([forcing, flags.expand(forcing.shape[:-1] + flags.shape[-1:])], dim=-1)

    def forcing(self, inputs, noise):
        return self._forcing

    def initial_state(self, batch):
        x = self.h0.expand(batch + (self.size,))
        return torch.cat([x, torch.zeros(batch + (self.resolved.count,), dtype=x.dtype, device=x.device)], dim=-1)

    def step(self, state, forcing_t):
        x, flags, drive = state[..., : self.size], forcing_t[..., self.size :], forcing_t[..., : self.size]
        for k, pulse in self.resolved.pulses:
            drive = drive + (self.alpha * flags[..., k : k + 1]) * pulse
        gain = self.resolved.gain(flags)
        recurrent = self.recurrent if gain is None else (lambda r: self.recurrent(gain * r))
        x = rate_step(x, drive, recurrent, self.alpha)
        for k, m_r, m_dual, value in self.resolved.clamps:
            kappa = (x * m_dual).sum(-1, keepdim=True)
            x = x - flags[..., k : k + 1] * (kappa - value) * m_r
        return torch.cat([x, flags], dim=-1)

    def split(self, state) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x, G) of a state: x (..., size) and the gain of the step that produced it (or None)."""
        return state[..., : self.size], self.resolved.gain(state[..., self.size :])


def run_perturbed(forcing: torch.Tensor, flags: torch.Tensor, h0: torch.Tensor, recurrent, readout, *, alpha: float,
                  resolved: _Resolved, record: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The perturbed rate loop (through :func:`rnnscope.models.run`).

    forcing: (..., trials, time, size) ``alpha W_in u + noise_std xi``; flags: (trials, time, K) the active
    perturbations; readout: rates (..., trials, size) -> (..., trials, outputs). Returns (x, z): the states after
    each step (..., trials, time, size) and the outputs (..., trials, time, outputs), None when record is "states".
    """
    cell = _PerturbedCell(forcing, flags.to(forcing.dtype), h0, recurrent, alpha, resolved)
    kept = run(cell, forcing, noise=None, emit=lambda s: s)  # type: ignore[arg-type]
    x, gain = cell.split(kept)
    if record == "states":
        return x, None
    rates = torch.tanh(x) if gain is None else gain * torch.tanh(x)
    return x, readout(rates)
