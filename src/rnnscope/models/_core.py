"""The cell interface and the one PyTorch time loop every recurrent network shares.

A **cell** computes one step; the loop over time lives here, so a new kind of network (GRU, LSTM, UGRNN, vanilla
RNN) plugs into simulation and training by implementing :class:`Cell`, without touching either. Shapes (any
leading axes ``...``: networks, trials)::

    cell.state_size, cell.inputs, cell.outputs, cell.noise_size          ints
    cell.initial_state(batch)      -> state   (*batch, state_size)
    cell.forcing(inputs, noise)    -> forcing (..., trials, time, state_size): everything that does not depend on
                                      the state, for all steps at once (inputs (..., trials, time, inputs);
                                      noise xi (..., trials, time, noise_size) or None)
    cell.step(state, forcing_t)    -> state   (..., trials, state_size)
    cell.readout(state)            -> outputs (..., trials, outputs)
    cell.arrays()                  -> {name: np.ndarray}, the parameters as named NumPy arrays

A rate network (``RateRNN``) is the cell ``x <- (1 - alpha) x + alpha J tanh(x) + [alpha W_in u + noise_std xi]``
with the bracket as its forcing. :func:`run` drives any cell; :func:`integrate` is the rate loop over plain
functions (a stack of networks in analysis, sampled loadings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from rnnscope.models._weights import DEFAULT_ALPHA  # the Euler step dt / tau = 20 ms / 100 ms

__all__ = ["Cell", "ConfiguredSizes", "run", "integrate", "input_drive", "draw_noise", "DEFAULT_ALPHA"]



@runtime_checkable
class Cell(Protocol):
    """One step of a recurrent network (see the module docstring for shapes)."""

    @property
    def state_size(self) -> int: ...

    @property
    def inputs(self) -> int: ...

    @property
    def outputs(self) -> int: ...

    @property
    def noise_size(self) -> int: ...

    def initial_state(self, batch: tuple[int, ...]) -> torch.Tensor: ...

    def forcing(self, inputs: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor: ...

    def step(self, state: torch.Tensor, forcing: torch.Tensor) -> torch.Tensor: ...

    def readout(self, state: torch.Tensor) -> torch.Tensor: ...

    def arrays(self) -> dict[str, np.ndarray]: ...


class ConfiguredSizes:
    """The Cell interface's sizes read from ``self.config`` (a frozen config with ``size``, ``inputs``, ``outputs``
    and ``state_size``): shared by the rate networks and the gated cells. Private noise has one channel a unit."""

    config: Any

    @property
    def size(self) -> int:
        return self.config.size

    @property
    def state_size(self) -> int:
        return self.config.state_size

    @property
    def inputs(self) -> int:
        return self.config.inputs

    @property
    def outputs(self) -> int:
        return self.config.outputs

    @property
    def noise_size(self) -> int:
        return self.config.size


def run(
    cell: Cell, inputs: torch.Tensor, *, noise: torch.Tensor | None, emit: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Drive ``cell`` with ``inputs`` (..., trials, time, inputs) and private noise xi (..., trials, time,
    noise_size) or None. emit maps the state after each step to what is kept (``cell.readout``, or the state
    itself). Returns the kept values stacked on the time axis: (..., trials, time, features)."""
    forcing = cell.forcing(inputs, noise)
    state = cell.initial_state(tuple(forcing.shape[:-2]))
    kept = []
    # unbind gives each step its own view: indexing a tensor that needs grad makes backward cost grow as T^2
    for step_forcing in forcing.unbind(-2):
        state = cell.step(state, step_forcing)
        kept.append(emit(state))
    return torch.stack(kept, dim=-2)


def input_drive(inputs: torch.Tensor, w_in: torch.Tensor) -> torch.Tensor:
    """W_in u for every step at once.

    inputs: (trials, time, inputs) or (*networks, trials, time, inputs);
    w_in: (size, inputs) or (*networks, size, inputs). Returns (*networks, trials, time, size).
    """
    if w_in.dim() == 2:
        return inputs @ w_in.T
    return inputs @ w_in.transpose(-1, -2).unsqueeze(-3)


def draw_noise(shape: tuple[int, ...], *, generator: torch.Generator, dtype=torch.float32, device=None) -> torch.Tensor:
    """Standard Gaussian private noise xi: (*networks, trials, time, size)."""
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


def rate_forcing(drive: torch.Tensor, alpha: float, noise_std: float, noise: torch.Tensor | None) -> torch.Tensor:
    """The state-independent part of a rate step: ``alpha W_in u + noise_std xi`` (..., trials, time, size)."""
    forcing = alpha * drive
    if noise is not None and noise_std > 0:
        if noise.shape != drive.shape:
            raise ValueError(f"noise: expected shape {tuple(drive.shape)}, got {tuple(noise.shape)}")
        forcing = forcing + noise_std * noise
    return forcing


def rate_step(x: torch.Tensor, forcing: torch.Tensor, recurrent: Callable[[torch.Tensor], torch.Tensor],
              alpha: float) -> torch.Tensor:
    """One Euler step of a rate network: ``(1 - alpha) x + alpha J tanh(x) + forcing``."""
    return (1.0 - alpha) * x + alpha * recurrent(torch.tanh(x)) + forcing


class _FunctionCell:
    """A rate cell over plain functions (what :func:`integrate` runs)."""

    def __init__(self, drive, h0, recurrent, alpha, noise_std) -> None:
        self.drive, self.h0, self.recurrent, self.alpha, self.noise_std = drive, h0, recurrent, alpha, noise_std

    def forcing(self, inputs, noise):
        return rate_forcing(self.drive, self.alpha, self.noise_std, noise)

    def initial_state(self, batch):
        return self.h0.expand(batch + self.drive.shape[-1:])

    def step(self, state, forcing):
        return rate_step(state, forcing, self.recurrent, self.alpha)


def integrate(
    drive: torch.Tensor,
    h0: torch.Tensor,
    recurrent: Callable[[torch.Tensor], torch.Tensor],
    emit: Callable[[torch.Tensor], torch.Tensor],
    *,
    alpha: float,
    noise_std: float,
    noise: torch.Tensor | None,
) -> torch.Tensor:
    """Euler-integrate ``x <- x + noise_std xi + alpha (-x + J tanh(x) + drive)`` (through :func:`run`).

    drive: (..., trials, time, size), the input drive W_in u; h0: broadcastable to (..., trials, size);
    recurrent: r (..., trials, size) -> J r; emit: x after each step -> what to keep (state or output);
    noise: xi with the shape of ``drive``, or None for noise-free dynamics.
    Returns the emitted values stacked on the time axis: (..., trials, time, features).
    """
    return run(_FunctionCell(drive, h0, recurrent, alpha, noise_std), drive, noise=noise, emit=emit)  # type: ignore[arg-type]
