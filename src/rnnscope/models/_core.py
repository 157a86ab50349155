"""The one time loop every rate network shares (PyTorch path).

Shapes broadcast over leading axes, so the same loop runs one network on a batch of trials
or many networks (resampled surrogates, ensembles) at once:
``drive (*networks, trials, time, size)``, ``h0 (*networks, size)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["integrate", "input_drive", "draw_noise"]


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
    """Euler-integrate ``x <- x + noise_std xi + alpha (-x + J tanh(x) + drive)``.

    drive: (..., trials, time, size), the input drive W_in u; h0: broadcastable to (..., trials, size);
    recurrent: r (..., trials, size) -> J r; emit: x after each step -> what to keep (state or output);
    noise: xi with the shape of ``drive``, or None for noise-free dynamics.
    Returns the emitted values stacked on the time axis: (..., trials, time, features).
    """
    forcing = alpha * drive
    if noise is not None and noise_std > 0:
        if noise.shape != drive.shape:
            raise ValueError(f"noise: expected shape {tuple(drive.shape)}, got {tuple(noise.shape)}")
        forcing = forcing + noise_std * noise
    x = h0.expand(drive.shape[:-2] + drive.shape[-1:])
    kept = []
    # unbind gives each step its own view: indexing a tensor that needs grad makes backward cost grow as T^2
    for step_forcing in forcing.unbind(-2):
        x = (1.0 - alpha) * x + alpha * recurrent(torch.tanh(x)) + step_forcing
        kept.append(emit(x))
    return torch.stack(kept, dim=-2)
