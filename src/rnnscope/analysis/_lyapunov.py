"""Lyapunov spectrum of a recurrent network along its task trajectories (QR / Benettin method), for any map.

The network is a map ``F(h, u) -> h_next`` (see :mod:`rnnscope.analysis._state_fixedpoints`: a float64 torch
callable on batches whose rows do not interact). Along each trial ``h_{t+1} = F(h_t, u_t)``, an orthonormal frame
``Q`` is pushed forward by the Jacobian and re-orthonormalised, ``J_t Q_t = Q_{t+1} R_t``; the exponents are the
time averages of ``log |diag R_t|`` after ``burn_in`` steps (which let the frame align). Exponents are in nats per
step (divide by ``dt`` for a rate), sorted in decreasing order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnscope._validation import as_generator, check_array, check_int
from rnnscope.analysis._state_fixedpoints import StateMap, _Map
from rnnscope.errors import RnnscopeError

__all__ = ["LyapunovSpectrum", "lyapunov_spectrum"]


@dataclass(frozen=True, eq=False)
class LyapunovSpectrum:
    """exponents: (trials, modes), nats per step, decreasing along modes; steps: time steps averaged per trial
    (``time - burn_in``); burn_in: steps discarded first."""

    exponents: np.ndarray
    steps: int
    burn_in: int

    def __post_init__(self) -> None:
        if np.ndim(self.exponents) != 2:
            raise RnnscopeError(f"exponents: expected (trials, modes), got shape {np.shape(self.exponents)}")

    @property
    def mean(self) -> np.ndarray:
        """(modes,): the exponents averaged over trials."""
        return self.exponents.mean(axis=0)

    @property
    def maximum(self) -> float:
        """The largest mean exponent."""
        return float(self.mean[0])

    def to_dict(self) -> dict:
        return {
            "exponents": self.exponents.tolist(),
            "mean": self.mean.tolist(),
            "steps": int(self.steps),
            "burn_in": int(self.burn_in),
        }


def lyapunov_spectrum(
    map: StateMap,
    inputs: np.ndarray,
    states: np.ndarray,
    *,
    rng: int | np.random.Generator,
    modes: int | None = None,
    burn_in: int = 0,
    chunk_rows: int = 65536,
) -> LyapunovSpectrum:
    """The ``modes`` largest Lyapunov exponents of each trial.

    map: ``F(h (rows, state), u (rows, inputs)) -> (rows, state)`` in float64; inputs: (trials, time, inputs);
    states: (trials, state), the initial states; rng: seed or generator for the random initial frames;
    modes: how many exponents (default: all ``state``); burn_in: steps run before averaging (< time).
    Returns a LyapunovSpectrum with exponents (trials, modes).
    """
    rng = as_generator(rng, name="rng")
    inputs = check_array(inputs, "inputs", ndim=3)
    states = check_array(states, "states", ndim=2)
    trials, time, _ = inputs.shape
    if states.shape[0] != trials:
        raise RnnscopeError(f"states: expected {trials} rows (one per trial of inputs), got shape {states.shape}")
    size = states.shape[1]
    modes = size if modes is None else check_int(modes, "modes", minimum=1, maximum=size)
    burn_in = check_int(burn_in, "burn_in", minimum=0, maximum=time - 1)

    frame = np.linalg.qr(rng.standard_normal((trials, size, modes)))[0]
    q = torch.as_tensor(frame, dtype=torch.float64)
    h = torch.as_tensor(states, dtype=torch.float64)
    u_all = torch.as_tensor(inputs, dtype=torch.float64)
    total = torch.zeros(trials, modes, dtype=torch.float64)
    fmap = _Map(map, u_all[0, 0], size, chunk_rows)
    for t in range(time):
        residual, jacobian = fmap.residual_and_jacobian(h, u_all[:, t])
        q, r = torch.linalg.qr(jacobian @ q)
        diagonal = torch.diagonal(r, dim1=1, dim2=2)
        signs = torch.where(diagonal < 0, -1.0, 1.0).to(q.dtype)
        q = q * signs[:, None, :]
        if t >= burn_in:
            total += torch.log(torch.abs(diagonal))
        h = h + residual
    exponents = np.sort((total / (time - burn_in)).numpy(), axis=1)[:, ::-1]
    return LyapunovSpectrum(np.ascontiguousarray(exponents), time - burn_in, burn_in)
