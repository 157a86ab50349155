"""The 3-bit flip-flop test networks (torch GRU, LSTM, vanilla tanh RNN, one layer each + a linear readout) as
maps ``F(h, u) -> h_next`` for the state-space fixed-point finder, and the task that trains them.

Used by ``make.py`` (training), ``tests/test_state_fixedpoints.py``, ``tests/test_topology.py`` and
``benchmarks/fixedpoint_speed.py``. Plain torch only: the cell interface of ``rnnscope.models`` does not exist yet.

Task: three channels of +-1 pulses (each channel pulses on ~5 % of steps, sign random); output channel i holds the
sign of channel i's last pulse (0 before the first). Weights: ``<name>.safetensors`` (float32); metadata in
``networks.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
CHANNELS = 3
PULSE_PROBABILITY = 0.05
KINDS = ("gru", "lstm", "rnn")


def flipflop(
    trials: int, steps: int, *, rng: np.random.Generator, pulse_probability: float = PULSE_PROBABILITY
) -> tuple[np.ndarray, np.ndarray]:
    """inputs, targets: (trials, steps, 3) float32; each channel pulses with ``pulse_probability`` per step."""
    pulse = rng.random((trials, steps, CHANNELS)) < pulse_probability
    sign = np.where(rng.random((trials, steps, CHANNELS)) < 0.5, -1.0, 1.0)
    inputs = (pulse * sign).astype(np.float32)
    targets = np.zeros_like(inputs)
    last = np.zeros((trials, CHANNELS), dtype=np.float32)
    for t in range(steps):
        last = np.where(pulse[:, t], inputs[:, t], last)
        targets[:, t] = last
    return inputs, targets


class FlipFlopNet(torch.nn.Module):
    """One torch recurrent layer of ``size`` units + a linear readout; state is h (GRU, RNN) or [h, c] (LSTM)."""

    def __init__(self, kind: str, size: int) -> None:
        super().__init__()
        layer = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[kind]
        self.kind, self.size = kind, size
        self.cell = layer(CHANNELS, size, batch_first=True)
        self.readout = torch.nn.Linear(size, CHANNELS)

    @property
    def state_size(self) -> int:
        return 2 * self.size if self.kind == "lstm" else self.size

    def _split(self, h: torch.Tensor):
        if self.kind == "lstm":
            return (h[..., : self.size].unsqueeze(0).contiguous(), h[..., self.size :].unsqueeze(0).contiguous())
        return h.unsqueeze(0).contiguous()

    def run(self, inputs: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (trials, time, 3), h0 (trials, state) -> outputs (trials, time, 3), states (trials, time, state)."""
        if self.kind == "lstm":
            h = h0[..., : self.size].unsqueeze(0).contiguous()
            c = h0[..., self.size :].unsqueeze(0).contiguous()
            hs, cs, outs = [], [], []
            for t in range(inputs.shape[1]):  # c along time is needed for the state; step by step
                out, (h, c) = self.cell(inputs[:, t : t + 1], (h, c))
                hs.append(h[0])
                cs.append(c[0])
                outs.append(out[:, 0])
            hidden = torch.stack(outs, dim=1)
            states = torch.cat([torch.stack(hs, 1), torch.stack(cs, 1)], dim=-1)
        else:
            hidden, _ = self.cell(inputs, self._split(h0))
            states = hidden
        return self.readout(hidden), states

    def outputs(self, inputs: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused forward for training: inputs (trials, time, 3), h0 (trials, state) -> outputs (trials, time, 3),
        hidden (trials, time, size) (for the LSTM, h only: no per-step c)."""
        hidden, _ = self.cell(inputs, self._split(h0))
        return self.readout(hidden), hidden

    def step(self, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The map F(h, u): h (batch, state), u (batch, 3) -> (batch, state)."""
        out = self.cell(u.unsqueeze(1), self._split(h))[1]
        if self.kind == "lstm":
            return torch.cat([out[0][0], out[1][0]], dim=-1)
        return out[0]


@dataclass(frozen=True)
class TestNetwork:
    """map: F(h (B, state), u (B, 3)) -> (B, state), float64; lower, upper: (state,) box (inf where unbounded);
    states: (samples, state) float64, visited on flip-flop trials; meta: the networks.json entry."""

    name: str
    map: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    net: FlipFlopNet
    lower: np.ndarray
    upper: np.ndarray
    states: np.ndarray
    meta: dict


def load(name: str, *, trials: int = 32, steps: int = 100, seed: int = 0) -> TestNetwork:
    """Load ``<name>.safetensors`` as a float64 map and sample its states on ``trials`` flip-flop trials."""
    meta = json.loads((HERE / "networks.json").read_text())[name]
    net = FlipFlopNet(meta["kind"], meta["size"])
    net.load_state_dict(load_file(str(HERE / f"{name}.safetensors")))
    net = net.double().requires_grad_(False)
    inputs, _ = flipflop(trials, steps, rng=np.random.default_rng(seed))
    with torch.no_grad():
        _, states = net.run(torch.from_numpy(inputs).double(), torch.zeros(trials, net.state_size, dtype=torch.float64))
    lower = -np.ones(net.state_size)
    upper = np.ones(net.state_size)
    if meta["kind"] == "lstm":
        lower[net.size :], upper[net.size :] = -np.inf, np.inf
    return TestNetwork(name, net.step, net, lower, upper, states.reshape(-1, net.state_size).numpy(), meta)
