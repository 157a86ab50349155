"""Gated and vanilla recurrent cells (the architectures of Maheswaranathan, Williams, Golub, Ganguli & Sussillo 2019):
vanilla RNN, UGRNN (Collins, Sohl-Dickstein & Sussillo 2017), GRU and LSTM, as :class:`rnnscope.models.Cell`.

Equations and parameter layout are PyTorch's (``torch.nn.RNN/GRU/LSTM``, one layer): ``weight_ih_l0``
(gates * size, inputs), ``weight_hh_l0`` (gates * size, size), ``bias_ih_l0``, ``bias_hh_l0`` (gates * size,), gate
blocks stacked in PyTorch's order; ``act`` is the config's activation (tanh or ReLU), sigma the logistic function::

    vanilla (1 block):          h' = act(W_ih u + b_ih + W_hh h + b_hh)
    ugrnn   (2 blocks: g, c):   g = sigma(gi_g + gh_g); c = act(gi_c + gh_c); h' = g h + (1 - g) c
    gru     (3 blocks: r, z, n): r = sigma(gi_r + gh_r); z = sigma(gi_z + gh_z); n = act(gi_n + r gh_n);
                                h' = (1 - z) n + z h
    lstm    (4 blocks: i, f, g, o): c' = sigma(f) c + sigma(i) act(g); h' = sigma(o) act(c')

with ``gi = W_ih u + b_ih`` (the forcing, computed for all steps at once) and ``gh = W_hh h + b_hh``. The UGRNN
keeps both biases, like PyTorch's cells, so every cell has the same four recurrent tensors. The state is h
(size,), or [h, c] (2 size,) for the LSTM; the readout is linear with a bias, ``z = h @ w_out + b_out``, with
``w_out`` (size, outputs) as in the rate networks. ``h0`` (state_size,) is the initial state: zero, trainable
when ``train_h0``. Private noise, when ``noise_std > 0``, is added to h after every step.

A stack of K networks of one config has every parameter with a leading network axis (``networks=K``): states
(K, trials, state_size), the same trials for every network; the steps are batched matmuls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rnnscope._validation import check_int, check_nonnegative
from rnnscope.errors import RnnscopeError
from rnnscope.models._core import ConfiguredSizes, run

__all__ = ["CELLS", "ACTIVATIONS", "GatedConfig", "GatedRNN"]

CELLS = ("vanilla", "ugrnn", "gru", "lstm")
ACTIVATIONS = ("tanh", "relu")
_GATES = {"vanilla": 1, "ugrnn": 2, "gru": 3, "lstm": 4}
_TORCH = {"vanilla": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}  # PyTorch's fused module for each cell it has
RECURRENT = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "w_out")  # what the L2 penalty covers (not biases, not h0)


@dataclass(frozen=True)
class GatedConfig:
    """Everything needed to rebuild a vanilla/gated network (stored in ``config.json`` under ``model``).

    cell: one of ``CELLS``; size: hidden units (N); inputs, outputs: channels; activation: ``tanh`` or ``relu``
    (the candidate/hidden nonlinearity; gates stay logistic); l2: weight of the L2 penalty ``l2 * sum w^2`` over
    ``weight_ih_l0``, ``weight_hh_l0`` and ``w_out`` (the paper's grid: 1e-5 .. 1e-2); train_h0: learn the initial
    state (else it stays 0); noise_std: std of the private noise added to h after each step (0: none).
    """

    cell: str
    size: int
    inputs: int
    outputs: int = 1
    activation: str = "tanh"
    l2: float = 0.0
    train_h0: bool = False
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise RnnscopeError(f"cell: must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.activation not in ACTIVATIONS:
            raise RnnscopeError(f"activation: must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        check_int(self.size, "size", minimum=1)
        check_int(self.inputs, "inputs", minimum=1)
        check_int(self.outputs, "outputs", minimum=1)
        check_nonnegative(self.l2, "l2")
        check_nonnegative(self.noise_std, "noise_std")
        if not isinstance(self.train_h0, bool):
            raise RnnscopeError(f"train_h0: expected true or false, got {self.train_h0!r}")

    @property
    def kind(self) -> str:
        """The cell name (``Run.to_dict`` reports it like a rate network's ``low-rank``/``full-rank``)."""
        return self.cell

    @property
    def rank(self) -> None:
        """No rank constraint (the field rate networks have)."""
        return None

    @property
    def gates(self) -> int:
        """Blocks of ``size`` rows stacked in ``weight_ih_l0`` / ``weight_hh_l0``."""
        return _GATES[self.cell]

    @property
    def state_size(self) -> int:
        """size, or 2 size for the LSTM ([h, c])."""
        return 2 * self.size if self.cell == "lstm" else self.size

    @property
    def fused(self) -> bool:
        """Whether PyTorch has this exact cell fused (``torch.nn.GRU``/``LSTM`` with tanh, ``torch.nn.RNN``)."""
        if self.cell not in _TORCH or self.noise_std > 0:
            return False
        return self.cell == "vanilla" or self.activation == "tanh"

    @property
    def state_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), each (state_size,): the box the state can reach (what a fixed-point finder keeps the
        state in). tanh units, GRU and UGRNN states lie in [-1, 1]; ReLU units in [0, inf); an LSTM's h in [-1, 1]
        and its cell c is unbounded."""
        lower, upper = np.full(self.state_size, -1.0), np.full(self.state_size, 1.0)
        if self.cell == "vanilla" and self.activation == "relu":
            lower, upper = np.zeros(self.state_size), np.full(self.state_size, np.inf)
        if self.cell == "lstm":
            lower[self.size:], upper[self.size:] = -np.inf, np.inf
        return lower, upper

    @property
    def label(self) -> str:
        """A short name: ``gru-tanh-64``."""
        return f"{self.cell}-{self.activation}-{self.size}"

    @property
    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape: what ``weights.safetensors`` holds for this architecture."""
        rows = self.gates * self.size
        return {"weight_ih_l0": (rows, self.inputs), "weight_hh_l0": (rows, self.size), "bias_ih_l0": (rows,),
                "bias_hh_l0": (rows,), "h0": (self.state_size,), "w_out": (self.size, self.outputs),
                "b_out": (self.outputs,)}


def _activation(name: str):
    return torch.tanh if name == "tanh" else torch.relu


class GatedRNN(ConfiguredSizes, nn.Module):
    """A vanilla/UGRNN/GRU/LSTM network, or a stack of ``networks`` of them; a :class:`rnnscope.models.Cell`.

    Initialisation is PyTorch's: every parameter uniform in ``[-1/sqrt(size), 1/sqrt(size)]`` drawn from
    ``generator`` (``h0`` zero). With ``networks=K`` the K networks are drawn one after the other from the same
    generator; :meth:`stack` builds a stack from single networks instead (e.g. one seed each).
    """

    config: GatedConfig

    def __init__(self, config: GatedConfig, *, generator: torch.Generator, networks: int | None = None) -> None:
        super().__init__()
        if not isinstance(config, GatedConfig):
            raise RnnscopeError(f"config: expected a GatedConfig, got {type(config).__name__}")
        if networks is not None:
            check_int(networks, "networks", minimum=1)
        self.config = config
        self.networks = networks
        lead = () if networks is None else (networks,)
        bound = 1.0 / math.sqrt(config.size)
        for name, shape in config.parameter_shapes.items():
            if name == "h0":
                value = torch.zeros(lead + shape)
            else:
                value = (torch.rand(lead + shape, generator=generator) * 2 - 1) * bound
            self.register_parameter(name, nn.Parameter(value, requires_grad=name != "h0" or config.train_h0))

    @classmethod
    def stack(cls, models: list[GatedRNN]) -> GatedRNN:
        """K single networks of one config as one stack (parameters copied, network axis first)."""
        if not models or any(not isinstance(m, GatedRNN) or m.networks is not None for m in models):
            raise RnnscopeError("models: expected a non-empty list of single GatedRNN networks")
        if any(m.config != models[0].config for m in models):
            raise RnnscopeError("models: a stack needs networks of one config")
        out = cls(models[0].config, generator=torch.Generator().manual_seed(0), networks=len(models))
        with torch.no_grad():
            for name, p in out.named_parameters():
                p.copy_(torch.stack([getattr(m, name).detach() for m in models]))
        return out

    def unstack(self, index: int) -> GatedRNN:
        """Network ``index`` of a stack as a single network (parameters copied)."""
        if self.networks is None:
            raise RnnscopeError("unstack: this is a single network, not a stack")
        check_int(index, "index", minimum=0, maximum=self.networks - 1)
        out = GatedRNN(self.config, generator=torch.Generator().manual_seed(0))
        out.to(self.weight_hh_l0.device)
        with torch.no_grad():
            for name, p in out.named_parameters():
                p.copy_(getattr(self, name)[index])
        return out

    # -- the Cell interface (sizes from ConfiguredSizes) ----------------------------------------------------------

    def _linear(self, x: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x @ weight_t + bias over the trailing axis; a stack pairs axis 0 of x (K, ...) with network k."""
        if self.networks is None:
            return x @ weight_t + bias
        K = self.networks
        flat = x.reshape(K, -1, x.shape[-1])
        out = torch.baddbmm(bias.unsqueeze(1), flat, weight_t)
        return out.reshape(tuple(x.shape[:-1]) + (weight_t.shape[-1],))

    def initial_state(self, batch: tuple[int, ...]) -> torch.Tensor:
        """h0 broadcast to (*batch, state_size); for a stack batch starts with the network axis."""
        batch = tuple(batch)
        if self.networks is None:
            return self.h0.expand(batch + (self.state_size,))
        h0 = self.h0.reshape((self.networks,) + (1,) * (len(batch) - 1) + (self.state_size,))
        return h0.expand(batch + (self.state_size,))

    def forcing(self, inputs: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """gi = W_ih u + b_ih, then noise_std xi when noisy: inputs (..., trials, time, inputs) (a stack: with or
        without the network axis) -> (..., trials, time, gates * size [+ size])."""
        weight = self.weight_ih_l0
        if self.networks is not None and inputs.dim() == 3:  # the same trials for every network of the stack
            inputs = inputs.expand((self.networks,) + tuple(inputs.shape))
        drive = self._linear(inputs.to(weight.dtype), weight.transpose(-1, -2), self.bias_ih_l0)
        if noise is None or self.config.noise_std == 0:
            return drive
        expected = tuple(drive.shape[:-1]) + (self.size,)
        if tuple(noise.shape) != expected:
            raise RnnscopeError(f"noise: expected shape {expected}, got {tuple(noise.shape)}")
        return torch.cat([drive, self.config.noise_std * noise.to(drive.dtype)], dim=-1)

    def step(self, state: torch.Tensor, forcing: torch.Tensor) -> torch.Tensor:
        """One step of the cell (module docstring): state (..., state_size), forcing (..., gates * size [+ size])."""
        size, cell, act = self.size, self.config.cell, _activation(self.config.activation)
        rows = self.config.gates * size
        gi, noise = forcing[..., :rows], (forcing[..., rows:] if forcing.shape[-1] > rows else None)
        h = state[..., :size]
        gh = self._linear(h, self.weight_hh_l0.transpose(-1, -2), self.bias_hh_l0)
        if cell == "vanilla":
            new = act(gi + gh)
        elif cell == "ugrnn":
            g = torch.sigmoid(gi[..., :size] + gh[..., :size])
            c = act(gi[..., size:] + gh[..., size:])
            new = g * h + (1 - g) * c
        elif cell == "gru":
            r = torch.sigmoid(gi[..., :size] + gh[..., :size])
            z = torch.sigmoid(gi[..., size : 2 * size] + gh[..., size : 2 * size])
            n = act(gi[..., 2 * size :] + r * gh[..., 2 * size :])
            new = (1 - z) * n + z * h
        else:
            gates = gi + gh
            i, f = torch.sigmoid(gates[..., :size]), torch.sigmoid(gates[..., size : 2 * size])
            g, o = act(gates[..., 2 * size : 3 * size]), torch.sigmoid(gates[..., 3 * size :])
            c = f * state[..., size:] + i * g
            new = o * act(c)
            if noise is not None:
                new = new + noise
            return torch.cat([new, c], dim=-1)
        return new if noise is None else new + noise

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        """z = h @ w_out + b_out: state (..., state_size) (or h (..., size)) -> (..., outputs)."""
        return self._linear(state[..., : self.size], self.w_out, self.b_out)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every parameter as a float64 NumPy array, by name (as in ``weights.safetensors``)."""
        return {name: value.detach().cpu().numpy().astype(np.float64) for name, value in self.named_parameters()}

    # -- running -------------------------------------------------------------------------------------------------
    def _check_inputs(self, inputs: torch.Tensor) -> None:
        if inputs.dim() not in (3, 4) or inputs.shape[-1] != self.inputs or (inputs.dim() == 4 and (
                self.networks is None or inputs.shape[0] != self.networks)):
            lead = "" if self.networks is None else f"[{self.networks}, ]"
            raise RnnscopeError(f"inputs: expected shape ({lead}trials, time, {self.inputs}), got {tuple(inputs.shape)}")

    def uses_fused(self, inputs: torch.Tensor, noise: torch.Tensor | None) -> bool:
        """Whether :meth:`forward` runs PyTorch's fused module: a single network whose cell PyTorch has
        (``config.fused``), on the CPU, without noise."""
        return (self.networks is None and self.config.fused and noise is None and inputs.device.type == "cpu"
                and self.weight_hh_l0.device.type == "cpu")

    def _fused(self, inputs: torch.Tensor) -> torch.Tensor:
        """h after each step (trials, time, size) through ``torch.nn.RNN/GRU/LSTM`` with our parameters."""
        config = self.config
        kwargs = {"nonlinearity": config.activation} if config.cell == "vanilla" else {}
        # on the meta device: no memory, no draw from torch's global generator; our parameters replace its own
        template = _TORCH[config.cell](config.inputs, config.size, batch_first=True, device="meta", **kwargs)
        params = {name: getattr(self, name) for name in RECURRENT}
        trials = inputs.shape[0]
        h0 = self.h0.unsqueeze(0).unsqueeze(0).expand(1, trials, config.state_size)
        hx = (h0[..., : config.size].contiguous(), h0[..., config.size :].contiguous()) if config.cell == "lstm" \
            else h0.contiguous()
        hidden, _ = torch.func.functional_call(template, params, (inputs.to(self.weight_hh_l0.dtype), hx))
        return hidden

    def forward(self, inputs: torch.Tensor, *, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs (..., trials, time, outputs) for inputs (trials, time, inputs) (a stack also takes
        (networks, trials, time, inputs)) and noise xi (..., trials, time, size) or None. Uses PyTorch's fused
        module when :meth:`uses_fused`, else the shared loop ``models.run``; both compute the same equations."""
        self._check_inputs(inputs)
        if self.uses_fused(inputs, noise):
            return self.readout(self._fused(inputs))
        return run(self, inputs, noise=noise, emit=self.readout)

    def trajectories(self, inputs: torch.Tensor, *, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The states after each step: (..., trials, time, state_size) (h, or [h, c] for the LSTM)."""
        self._check_inputs(inputs)
        if self.uses_fused(inputs, noise) and self.config.cell != "lstm":
            return self._fused(inputs)
        return run(self, inputs, noise=noise, emit=lambda s: s)

    def transition(self, state: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The map F(h, u) of one noise-free step: state (..., state_size), inputs (..., inputs) -> (..., state_size)
        (what a fixed-point finder needs)."""
        return self.step(state, self.forcing(inputs.unsqueeze(-2), None).squeeze(-2))

    def l2_penalty(self) -> torch.Tensor:
        """``l2 * sum of squared weights`` (``weight_ih_l0``, ``weight_hh_l0``, ``w_out``): a scalar, or (networks,)
        for a stack."""
        if self.networks is None:
            total = sum(getattr(self, name).pow(2).sum() for name in WEIGHTS)
        else:
            total = sum(getattr(self, name).pow(2).reshape(self.networks, -1).sum(dim=1) for name in WEIGHTS)
        return self.config.l2 * total
