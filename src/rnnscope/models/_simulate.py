"""Simulation of one network or a stack of networks, and the one place a backend is chosen.

Backends: ``"fast"``, the fused numba kernels (CPU, float32, the private noise generated in the kernel from a
seed) and ``"torch"``, the PyTorch time loop (:func:`rnnscope.models.run`) on ``device`` (CPU or CUDA). Both use
the same private noise for the same ``rng``: the counter-based xi of :func:`rnnscope.models.fast_noise`, so the
backend changes only float rounding, never the draw.

Perturbations in time (:class:`rnnscope.models.Perturbation`, ``simulate(..., perturbation=)``) run on the PyTorch
loop only: the fused kernels have no hook for them, so :func:`choose_backend` (``perturbed=True``) picks
``"torch"`` and refuses ``backend="fast"``. Without a perturbation nothing changes, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnnscope._validation import as_generator, check_array, check_positive
from rnnscope.errors import RnnscopeError
from rnnscope.models._core import input_drive, integrate, rate_forcing
from rnnscope.models._fast import fast_noise, fast_outputs, fast_path_supported, fast_trajectories, stack_parameters
from rnnscope.models._perturb import Perturbations, _Resolved, as_perturbations, perturbation_windows, run_perturbed
from rnnscope.models._rate import ModelConfig, RateRNN, model_from_weights
from rnnscope.models._weights import FullRankWeights, LowRankBatch, LowRankWeights, stack_weights

__all__ = ["BACKENDS", "choose_backend", "Simulation", "simulate"]

BACKENDS = ("auto", "fast", "torch")
RECORDS = ("outputs", "states", "both")

Network = RateRNN | LowRankWeights | FullRankWeights | LowRankBatch | Sequence[LowRankWeights]


def _device(device: str | torch.device | None) -> str:
    name = "cpu" if device is None else str(torch.device(device))
    if name != "cpu" and not name.startswith("cuda"):
        raise RnnscopeError(f"device: must be 'cpu' or 'cuda[:N]', got {device!r}")
    return name


def _fused_supported(network: Any, training: bool) -> bool:
    """Whether the fused kernels handle ``network`` (and can train it when ``training``)."""
    if isinstance(network, ModelConfig):
        return True  # built as float32 low-rank or full-rank networks
    if isinstance(network, RateRNN):
        return fast_path_supported(network)
    if isinstance(network, (LowRankWeights, FullRankWeights, LowRankBatch)):
        return not training  # NumPy snapshots are simulated, not trained
    if isinstance(network, Sequence) and network and all(isinstance(w, LowRankWeights) for w in network):
        return not training
    return False  # any other Cell: the generic PyTorch loop


def choose_backend(
    network: Any, *, device: str | torch.device | None = None, backend: str = "auto", training: bool = False,
    perturbed: bool = False,
) -> str:
    """The backend that runs ``network``: ``"fast"`` (fused kernels) or ``"torch"`` (PyTorch on ``device``).

    network: a ModelConfig (asks about the networks it builds, without building one), a RateRNN or any Cell,
    LowRankWeights, FullRankWeights, a LowRankBatch or a sequence of LowRankWeights. backend: ``"auto"`` picks the
    fused kernels whenever they handle the network on the CPU (float32 parameters), else PyTorch; ``"fast"`` and
    ``"torch"`` insist, and ``"fast"`` with a CUDA device or an unsupported network is an error. training: whether
    the network is to be trained (weight snapshots can only be simulated). perturbed: whether it runs under a
    perturbation in time, which only the PyTorch loop applies (``"auto"`` then picks ``"torch"``). Every part of
    rnnscope that runs networks (training, analysis, truncation, the demo) asks here.
    """
    if backend not in BACKENDS:
        raise RnnscopeError(f"backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    device = _device(device)
    supported = _fused_supported(network, training) and not perturbed
    if backend == "torch":
        return "torch"
    if backend == "fast":
        if device != "cpu":
            raise RnnscopeError(f"backend: the fused kernels run on the CPU, not on device {device!r}")
        if perturbed:
            raise RnnscopeError("backend: the fused kernels do not apply perturbations; use 'torch' or 'auto'")
        if not supported:
            raise RnnscopeError(f"backend: the fused kernels cannot {'train' if training else 'run'} "
                                f"{type(network).__name__} (a low-rank or full-rank network with float32 parameters)")
        return "fast"
    return "fast" if device == "cpu" and supported else "torch"


@dataclass(frozen=True, eq=False)
class Simulation:
    """What :func:`simulate` recorded (float32; None when not recorded).

    One network: outputs (trials, time, outputs), states x after each step (trials, time, size).
    A stack (``stacked``): outputs (networks, trials, time, outputs), states (networks, trials, time, size).
    backend: the backend that ran it.
    """

    outputs: np.ndarray | None
    states: np.ndarray | None
    stacked: bool
    backend: str

    def to_dict(self) -> dict[str, Any]:
        shape = lambda a: None if a is None else list(a.shape)  # noqa: E731
        return {"outputs": shape(self.outputs), "states": shape(self.states), "stacked": self.stacked,
                "backend": self.backend}


def _as_stack(network: Any) -> LowRankBatch | None:
    if isinstance(network, LowRankBatch):
        return network
    if isinstance(network, Sequence) and not isinstance(network, (str, bytes)):
        if not all(isinstance(w, LowRankWeights) for w in network):
            raise RnnscopeError("network: a stack must hold LowRankWeights only (or be a LowRankBatch)")
        return stack_weights(list(network))
    return None


def _kernel_params(network: Any) -> tuple[dict[str, np.ndarray], float, float, float]:
    """(stacked arrays, alpha, noise_std, readout_scale) of a network for the fused kernels."""
    if isinstance(network, LowRankBatch):
        return network.arrays(), network.alpha, network.noise_std, 1.0 / network.size
    if isinstance(network, RateRNN):
        arrays = {name: value.detach().numpy() for name, value in stack_parameters([network]).items()}
        return arrays, network.config.alpha, network.config.noise_std, network.readout_scale
    names = ("m", "n") if isinstance(network, LowRankWeights) else ("J",)
    arrays = {name: getattr(network, name)[None] for name in names + ("w_in", "w_out", "h0")}
    return arrays, network.alpha, network.noise_std, network.readout_scale


def _stack_noise(seeds: list[int], start: int, shape: tuple[int, int, int], device: str) -> torch.Tensor:
    """xi (networks, chunk, time, size) of trials start.. for each seed (one seed: broadcast to every network)."""
    unique = seeds[:1] if len(set(seeds)) == 1 else seeds
    blocks = [torch.from_numpy(fast_noise(shape, seed, first_trial=start)) for seed in unique]
    return torch.stack(blocks).to(device)


def simulate(
    network: Network,
    inputs: np.ndarray,
    *,
    rng: int | np.random.Generator | None,
    record: str = "outputs",
    noise: bool = True,
    device: str | torch.device | None = None,
    backend: str = "auto",
    shared_noise: bool = True,
    memory_mb: float = 128.0,
    perturbation: Perturbations | None = None,
    epochs: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    dt: float | None = None,
) -> Simulation:
    """Run ``network`` on ``inputs`` (trials, time, inputs), without gradients.

    network: one network (RateRNN, LowRankWeights, FullRankWeights: results without a network axis) or a stack
    of low-rank networks of one shape (LowRankBatch or a sequence of LowRankWeights: results with the network
    axis first, every network on the same trials). rng: an int seed or a Generator, the source of the private
    noise (None only with ``noise=False``); with ``shared_noise`` (default) neuron i of every network of a stack
    receives the same noise sequence on a given trial (common random numbers: less variance between networks),
    otherwise each network draws its own. record: ``"outputs"``, ``"states"`` or ``"both"``. backend, device:
    see :func:`choose_backend`. memory_mb bounds the per-chunk tensors of the PyTorch loop (chunked over trials).
    The noise for seed s is ``fast_noise((trials, time, size), s)`` on every backend.

    perturbation: a :class:`Perturbation` or a sequence of them, applied at the steps of their windows (see
    ``rnnscope.models._perturb`` for the equations; outputs are read through the perturbed rates); epochs
    ``{name: (start (trials,), stop (trials,))}`` in steps (``batch.epochs``) and dt in ms (``batch.dt``) place
    windows given by epoch name or in ms. A perturbation runs on the PyTorch loop (see :func:`choose_backend`);
    with None (or an empty sequence) the result is bit-identical to a call without it.
    """
    if record not in RECORDS:
        raise RnnscopeError(f"record: must be one of {', '.join(RECORDS)}, got {record!r}")
    if not isinstance(noise, bool):
        raise RnnscopeError(f"noise: expected true or false, got {noise!r}")
    memory_mb = check_positive(memory_mb, "memory_mb")
    stack = _as_stack(network)
    net = stack if stack is not None else network
    if not isinstance(net, (RateRNN, LowRankWeights, FullRankWeights, LowRankBatch)):
        raise RnnscopeError(f"network: expected a rate network, weights or a stack of them, got {type(network).__name__}")
    inputs = check_array(inputs, "inputs", ndim=3, dtype=np.float32)
    if inputs.shape[-1] != net.w_in.shape[-1]:
        raise RnnscopeError(f"inputs: the network takes {net.w_in.shape[-1]} inputs, got shape {inputs.shape}")
    if rng is None and noise:
        raise RnnscopeError("rng: a seed or np.random.Generator is required for noisy dynamics (or noise=False)")
    networks = stack.networks if stack is not None else 1
    seeds = [0] * networks
    if noise:
        rng = as_generator(rng, name="rng")
        seeds = [int(rng.integers(2**63 - 1))] * networks if shared_noise or networks == 1 else [
            int(s) for s in rng.integers(2**63 - 1, size=networks)]
    perturbations = as_perturbations(perturbation)
    flags = None
    if perturbations:
        flags = perturbation_windows(perturbations, inputs.shape[0], inputs.shape[1], epochs=epochs, dt=dt)
    chosen = choose_backend(net, device=device, backend=backend, perturbed=bool(perturbations))
    if chosen == "fast":
        arrays, alpha, noise_std, scale = _kernel_params(net)
        noise_std = noise_std if noise else 0.0
        kwargs = dict(seeds=seeds, alpha=alpha, noise_std=noise_std, readout_scale=scale)
        outputs = states = None
        if record == "outputs":
            outputs = fast_outputs(arrays, inputs, **kwargs)
        else:
            states = fast_trajectories(arrays, inputs, **kwargs)
            if record == "both":
                w_out = np.asarray(arrays["w_out"], dtype=np.float32)
                outputs = (np.tanh(states) @ w_out[:, None] * np.float32(scale)).astype(np.float32)
        if stack is None:
            outputs, states = (None if a is None else a[0] for a in (outputs, states))
        return Simulation(outputs, states, stack is not None, chosen)
    outputs, states = _torch_simulate(net, inputs, seeds if noise else None, record, _device(device), memory_mb,
                                      perturbations, flags)
    return Simulation(outputs, states, stack is not None, chosen)


@torch.no_grad()
def _torch_simulate(net, inputs: np.ndarray, seeds: list[int] | None, record: str, device: str,
                    memory_mb: float, perturbations=(), flags: np.ndarray | None = None
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The PyTorch loop of :func:`simulate`, chunked over trials; flags (trials, time, K) with perturbations."""
    stacked = isinstance(net, LowRankBatch)
    if stacked:
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        m, n, w_in, w_out, h0 = (as_tensor(a) for a in (net.m, net.n, net.w_in, net.w_out, net.h0))
        n_scaled, m_t, w_out_scaled = n / net.size, m.transpose(-1, -2), w_out / net.size
        noise_std, alpha, networks, dtype = net.noise_std, net.alpha, net.networks, torch.float32
    else:
        model = net if isinstance(net, RateRNN) else model_from_weights(net)
        model = model.to(device)
        noise_std, alpha, networks = model.config.noise_std, model.config.alpha, 1
        dtype = next(model.parameters()).dtype
    resolved = None
    if perturbations:
        m_clamp = m if stacked else getattr(model, "m", None)
        resolved = _Resolved(perturbations, net.size, m_clamp, dtype, device)
    size, (trials, steps) = net.size, inputs.shape[:2]
    kept = 2 if record == "both" else 1
    per_trial = (3 + kept + bool(perturbations)) * 4 * networks * steps * size  # a perturbation copies the forcing
    chunk = max(1, min(trials, int(memory_mb * 2**20 // per_trial)))
    outputs, states = [], []
    for start in range(0, trials, chunk):
        u = torch.from_numpy(inputs[start : start + chunk]).to(device=device, dtype=dtype)
        shape = (u.shape[0], steps, size)
        xi = None
        if seeds is not None and noise_std > 0:
            xi = _stack_noise(seeds, start, shape, device).to(dtype)
            xi = xi.expand((networks,) + shape) if stacked else xi[0]
        if resolved is not None:
            f = torch.from_numpy(flags[start : start + chunk]).to(device=device, dtype=dtype)
            if stacked:
                forcing = rate_forcing(input_drive(u, w_in), alpha, noise_std, xi)
                x, z = run_perturbed(forcing, f, h0[:, None, :], lambda r: (r @ n_scaled) @ m_t,
                                     lambda r: r @ w_out_scaled[:, None], alpha=alpha, resolved=resolved, record=record)
            else:
                x, z = run_perturbed(model.forcing(u, xi), f, model.h0, model.recurrent,
                                     lambda r: r @ model.output_weights() * model.readout_scale, alpha=alpha,
                                     resolved=resolved, record=record)
        elif stacked:
            x = integrate(input_drive(u, w_in), h0[:, None, :], lambda r: (r @ n_scaled) @ m_t, lambda s: s,
                          alpha=alpha, noise_std=noise_std, noise=xi)
            z = torch.tanh(x) @ w_out_scaled[:, None] if record != "states" else None
        else:
            x = model.trajectories(u, noise=xi)
            z = model.readout(x) if record != "states" else None
        if record != "outputs":
            states.append(x.float().cpu().numpy())
        if z is not None:
            outputs.append(z.float().cpu().numpy())
    axis = 1 if stacked else 0
    return (np.concatenate(outputs, axis=axis) if outputs else None,
            np.concatenate(states, axis=axis) if states else None)
