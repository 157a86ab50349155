"""Low-rank and full-rank rate networks as PyTorch modules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rnnscope._validation import check_int, check_nonnegative, check_positive
from rnnscope.errors import RnnscopeError
from rnnscope.models._core import DEFAULT_ALPHA, ConfiguredSizes, input_drive, rate_forcing, rate_step, run
from rnnscope.models._weights import FullRankWeights, LowRankWeights

__all__ = ["ModelConfig", "RateRNN", "LowRankRNN", "FullRankRNN", "build_model", "model_from_weights", "truncate"]


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a rate network's architecture (stored in ``config.json``).

    ``rank`` is None for a full-rank network.
    """

    size: int
    inputs: int
    outputs: int = 1
    rank: int | None = 1
    noise_std: float = 0.05
    alpha: float = DEFAULT_ALPHA  # dt / tau
    train_inputs: bool = True
    train_outputs: bool = True
    train_h0: bool = False
    init_std: float = 1.0  # std of m, n (low-rank) or rho / sqrt(size) scale of J (full-rank)
    # trainable per-column scales of w_in (s_in, (inputs,)) and w_out (s_out, (outputs,)), both starting at 1: the
    # network uses w_in * s_in and w_out * s_out (Dubreuil, Valente et al.'s si, so: fixed vectors, trained gains)
    train_input_scale: bool = False
    train_output_scale: bool = False

    def __post_init__(self) -> None:
        check_int(self.size, "size", minimum=1)
        check_int(self.inputs, "inputs", minimum=1)
        check_int(self.outputs, "outputs", minimum=1)
        if self.rank is not None:
            check_int(self.rank, "rank", minimum=1, maximum=self.size)
        check_nonnegative(self.noise_std, "noise_std")
        if not 0 < check_positive(self.alpha, "alpha") <= 1:
            raise RnnscopeError(f"alpha: must be in (0, 1], got {self.alpha}")
        check_positive(self.init_std, "init_std")
        for name in ("train_inputs", "train_outputs", "train_h0", "train_input_scale", "train_output_scale"):
            if not isinstance(getattr(self, name), bool):
                raise RnnscopeError(f"{name}: expected true or false, got {getattr(self, name)!r}")

    @property
    def kind(self) -> str:
        return "full-rank" if self.rank is None else "low-rank"

    @property
    def state_size(self) -> int:
        """The state x has one entry a neuron."""
        return self.size

    @property
    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape: what ``weights.safetensors`` holds for this architecture."""
        size = self.size
        recurrent = {"J": (size, size)} if self.rank is None else {"m": (size, self.rank), "n": (size, self.rank)}
        scales = {"s_in": (self.inputs,)} if self.train_input_scale else {}
        if self.train_output_scale:
            scales["s_out"] = (self.outputs,)
        return {"w_in": (size, self.inputs), "h0": (size,), **recurrent, "w_out": (size, self.outputs), **scales}


class RateRNN(ConfiguredSizes, nn.Module):
    """Shared machinery of the rate networks, a :class:`rnnscope.models.Cell` (state: x (..., size); forcing
    ``alpha W_in u + noise_std xi``; noise of size ``size``). Subclasses define ``recurrent``."""

    config: ModelConfig
    readout_scale: float

    def __init__(self, config: ModelConfig, *, generator: torch.Generator) -> None:
        super().__init__()
        self.config = config
        size = config.size
        self.w_in = nn.Parameter(torch.randn(size, config.inputs, generator=generator), requires_grad=config.train_inputs)
        self.h0 = nn.Parameter(torch.zeros(size), requires_grad=config.train_h0)
        if config.train_input_scale:
            self.s_in = nn.Parameter(torch.ones(config.inputs))
        if config.train_output_scale:
            self.s_out = nn.Parameter(torch.ones(config.outputs))

    def input_weights(self) -> torch.Tensor:
        """The input vectors the network uses: w_in * s_in (w_in itself without a trained input scale), (size, inputs)."""
        return self.w_in * self.s_in if self.config.train_input_scale else self.w_in

    def output_weights(self) -> torch.Tensor:
        """The readout vectors the network uses: w_out * s_out (w_out itself without a trained output scale),
        (size, outputs)."""
        return self.w_out * self.s_out if self.config.train_output_scale else self.w_out

    def recurrent(self, rates: torch.Tensor) -> torch.Tensor:
        """J r: (..., size) -> (..., size)."""
        raise NotImplementedError

    # -- the Cell interface (sizes from ConfiguredSizes) ----------------------------------------------------------
    def initial_state(self, batch: tuple[int, ...]) -> torch.Tensor:
        """h0 broadcast to (*batch, size)."""
        return self.h0.expand(tuple(batch) + (self.size,))

    def forcing(self, inputs: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """alpha W_in u + noise_std xi: inputs (..., trials, time, inputs) -> (..., trials, time, size)."""
        drive = input_drive(inputs.to(self.w_in.dtype), self.input_weights())
        return rate_forcing(drive, self.config.alpha, self.config.noise_std, noise)

    def step(self, state: torch.Tensor, forcing: torch.Tensor) -> torch.Tensor:
        """x <- (1 - alpha) x + alpha J tanh(x) + forcing: (..., size)."""
        return rate_step(state, forcing, self.recurrent, self.config.alpha)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every parameter as a float64 NumPy array, by name (as in ``weights.safetensors``)."""
        return {name: _np(value) for name, value in self.named_parameters()}

    def readout(self, states: torch.Tensor) -> torch.Tensor:
        """z = tanh(x) @ w_out * readout_scale: (..., size) -> (..., outputs)."""
        return torch.tanh(states) @ self.output_weights() * self.readout_scale

    def _run(self, inputs: torch.Tensor, noise: torch.Tensor | None, emit) -> torch.Tensor:
        if inputs.dim() != 3 or inputs.shape[-1] != self.config.inputs:
            raise RnnscopeError(
                f"inputs: expected shape (trials, time, {self.config.inputs}), got {tuple(inputs.shape)}"
            )
        return run(self, inputs, noise=noise, emit=emit)

    def forward(self, inputs: torch.Tensor, *, noise: torch.Tensor | None) -> torch.Tensor:
        """inputs: (trials, time, inputs); noise: xi (trials, time, size) or None. Returns (trials, time, outputs)."""
        return self._run(inputs, noise, self.readout)

    def trajectories(self, inputs: torch.Tensor, *, noise: torch.Tensor | None) -> torch.Tensor:
        """The states x after each step: (trials, time, size)."""
        return self._run(inputs, noise, lambda x: x)

    def weights(self) -> LowRankWeights | FullRankWeights:
        """A NumPy snapshot of the weights, for analysis (trained scales folded into w_in and w_out)."""
        raise NotImplementedError

    def connectivity(self) -> torch.Tensor:
        """J: (size, size), built on demand."""
        raise NotImplementedError


class LowRankRNN(RateRNN):
    """``J = m n^T / size`` of rank ``rank``; J is never built in the simulation.

    Parameters: m, n (size, rank); w_in (size, inputs); w_out (size, outputs); h0 (size,).
    """

    readout_scale: float

    def __init__(self, config: ModelConfig, *, generator: torch.Generator) -> None:
        if config.rank is None:
            raise RnnscopeError("rank: a low-rank network needs a rank")
        super().__init__(config, generator=generator)
        size, rank = config.size, config.rank
        self.m = nn.Parameter(config.init_std * torch.randn(size, rank, generator=generator))
        self.n = nn.Parameter(config.init_std * torch.randn(size, rank, generator=generator))
        self.w_out = nn.Parameter(
            4.0 * torch.randn(size, config.outputs, generator=generator), requires_grad=config.train_outputs
        )
        self.readout_scale = 1.0 / size

    @property
    def rank(self) -> int:
        return int(self.config.rank)

    def recurrent(self, rates: torch.Tensor) -> torch.Tensor:
        return (rates @ self.n) @ self.m.T / self.size

    def connectivity(self) -> torch.Tensor:
        return self.m @ self.n.T / self.size

    def weights(self) -> LowRankWeights:
        return LowRankWeights(
            m=_np(self.m), n=_np(self.n), w_in=_np(self.input_weights()), w_out=_np(self.output_weights()), h0=_np(self.h0),
            noise_std=self.config.noise_std, alpha=self.config.alpha,
        )

    @classmethod
    def from_full_rank(cls, model: FullRankRNN, rank: int) -> LowRankRNN:
        """Truncated SVD of J: ``m = sqrt(size) U_r sqrt(s_r)``, ``n = sqrt(size) V_r sqrt(s_r)``."""
        weights = model.weights()
        return model_from_weights(truncate(weights, rank))


class FullRankRNN(RateRNN):
    """A full connectivity matrix J: (size, size). Readout ``z = tanh(x) @ w_out``."""

    def __init__(self, config: ModelConfig, *, generator: torch.Generator) -> None:
        if config.rank is not None:
            raise RnnscopeError(f"rank: a full-rank network takes no rank, got {config.rank}")
        super().__init__(config, generator=generator)
        size = config.size
        self.J = nn.Parameter(config.init_std / math.sqrt(size) * torch.randn(size, size, generator=generator))
        self.w_out = nn.Parameter(
            torch.randn(size, config.outputs, generator=generator) / size, requires_grad=config.train_outputs
        )
        self.readout_scale = 1.0

    def recurrent(self, rates: torch.Tensor) -> torch.Tensor:
        return rates @ self.J.T

    def connectivity(self) -> torch.Tensor:
        return self.J

    def weights(self) -> FullRankWeights:
        return FullRankWeights(
            J=_np(self.J), w_in=_np(self.input_weights()), w_out=_np(self.output_weights()), h0=_np(self.h0),
            noise_std=self.config.noise_std, alpha=self.config.alpha,
        )


def _np(parameter: torch.Tensor) -> np.ndarray:
    return parameter.detach().cpu().numpy().astype(np.float64)


def build_model(config: ModelConfig, *, generator: torch.Generator) -> RateRNN:
    """A freshly initialised network of the kind ``config`` describes."""
    return (FullRankRNN if config.rank is None else LowRankRNN)(config, generator=generator)


def truncate(weights: FullRankWeights, rank: int) -> LowRankWeights:
    """The best rank-``rank`` approximation of a full-rank network (truncated SVD), readout rescaled by size."""
    check_int(rank, "rank", minimum=1, maximum=weights.size)
    u, s, vt = np.linalg.svd(weights.J)
    scale = np.sqrt(weights.size * s[:rank])
    return LowRankWeights(
        m=u[:, :rank] * scale, n=vt[:rank].T * scale, w_in=weights.w_in, w_out=weights.w_out * weights.size,
        h0=weights.h0, noise_std=weights.noise_std, alpha=weights.alpha,
    )


def model_from_weights(
    weights: LowRankWeights | FullRankWeights,
    *,
    train_inputs: bool = True,
    train_outputs: bool = True,
    train_h0: bool = False,
    train_input_scale: bool = False,
    train_output_scale: bool = False,
    dtype: torch.dtype = torch.float32,
) -> RateRNN:
    """A module holding exactly ``weights`` (float32 by default); trained scales, if asked for, start at 1."""
    rank = weights.rank if isinstance(weights, LowRankWeights) else None
    config = ModelConfig(
        size=weights.size, inputs=weights.inputs, outputs=weights.outputs, rank=rank,
        noise_std=weights.noise_std, alpha=weights.alpha,
        train_inputs=train_inputs, train_outputs=train_outputs, train_h0=train_h0,
        train_input_scale=train_input_scale, train_output_scale=train_output_scale,
    )
    model = build_model(config, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        names = ("m", "n") if rank is not None else ("J",)
        for name in names + ("w_in", "w_out", "h0"):
            getattr(model, name).copy_(torch.tensor(np.array(getattr(weights, name)), dtype=torch.float32))
    return model.to(dtype)
