"""The Python face of the fused CPU kernels (numba): validation, layout, the autograd Function and the
trainer's graph-free step, for the masked-MSE loss and its gradients and for batched simulation.

Modules: ``_noise`` (counter-based random numbers), ``_numerics`` (vectorisable float32 math),
``_kernels_lowrank`` and ``_kernels_fullrank`` (the kernels), ``_pool`` (threads), this one (what callers use).

The fast path computes exactly what the plain PyTorch path computes (``RateRNN.forward`` followed by the masked
MSE below and ``loss.backward()``), with the Gaussian private noise generated inside the kernel by a counter-based
generator keyed by ``(seed, trial, step, neuron)``. Results therefore do not depend on the number of threads, and
:func:`fast_noise` returns the very ``xi`` a kernel used, so the plain path can be run on the same noise.

Dynamics (``a = alpha``, ``s = noise_std``), for steps ``t = 0 .. time-1``, with ``x_0 = h0``::

    x_{t+1} = (1 - a) x_t + a (J tanh(x_t) + W_in u_t) + s xi_t,     J = m n^T / size  (or a full J)
    z_t     = tanh(x_{t+1}) @ w_out * readout_scale                  (1 / size low-rank, 1 full-rank)

Loss of one network (``mask: (trials, time)``)::

    L = mean_b [ sum_t mask[b, t] * mean_o (targets[b, t, o] - z[b, t, o])^2 / sum_t mask[b, t] ]

A trial whose mask sums to 0 contributes 0 (it still counts in the mean over trials).

Kernel design: one thread runs one trial (low-rank) or a fixed block of ``_CHUNK`` trials (full-rank) through all
steps forward, storing ``tanh(x)``, then backward through time by hand, into per-trial (per-block) gradient buffers
that are summed afterwards in a fixed order, so results are bit-identical for any number of threads. The trials are
split into ranges, one per thread (``numba.set_num_threads`` of the caller, or by default the cores not busy
with other work, see ``_pool._threads``), run by GIL-free kernels on a small thread pool. All arrays are contiguous float32;
weights are transposed to (columns, size) so
that loops over neurons vectorise; tanh, log, sin and cos are plain-arithmetic float32 versions that vectorise.
Low-rank networks of rank <= 2 with <= 2 inputs and one output (most tasks) run fused kernels: per step, one noise
loop and one loop doing the update, tanh and the next step's dot products forward; one loop backward (two at a
scored step). These loops are bound by loads and stores, not arithmetic, so each case has its own loop.

Noise: per (seed, trial, step) a 64-bit key (splitmix64); per neuron pair two 32-bit hashes (32-bit integer ops
vectorise twice as wide as 64-bit ones) feed Box-Muller with a polynomial -2 log u, the quadrant taken from hash
bits, and sin / cos polynomials on [-pi/4, pi/4].
Kernels are cached on disk by numba (``cache=True``: ``__pycache__`` beside this file, or numba's user cache
directory when that is not writable); :func:`warm_up` compiles or loads them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rnnscope._loss import masked_mse_per_trial, trial_weights
from rnnscope.errors import RnnscopeError
from rnnscope.models._kernels_fullrank import _fullrank_grad_items, _fullrank_sim_items
from rnnscope.models._kernels_lowrank import (
    _fusable,
    _lowrank_grad_items,
    _lowrank_grad_items_fused,
    _lowrank_sim_items,
    _lowrank_sim_items_fused,
)
from rnnscope.models._noise import _noise_items
from rnnscope.models._numerics import _CHUNK
from rnnscope.models._pool import _run_items
from rnnscope.models._weights import DEFAULT_ALPHA

__all__ = [
    "fast_noise",
    "fast_loss",
    "fast_loss_ensemble",
    "fast_loss_and_grad",
    "fast_loss_and_grads_ensemble",
    "fast_outputs",
    "fast_trajectories",
    "fast_path_supported",
    "stack_parameters",
    "FusedTrainStep",
    "warm_up",
]

_LOW_RANK_KEYS = ("m", "n", "w_in", "w_out", "h0")
_FULL_RANK_KEYS = ("J", "w_in", "w_out", "h0")


def _seed_array(seeds, networks: int) -> np.ndarray:
    values = [seeds] if isinstance(seeds, (int, np.integer)) or not hasattr(seeds, "__len__") else list(seeds)
    if len(values) != networks:
        raise RnnscopeError(f"seeds: expected {networks} seeds, got {len(values)}")
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < 2**64:
            raise RnnscopeError(f"seeds: expected integers in [0, 2**64), got {value!r}")
    return np.array([int(value) for value in values], dtype=np.uint64)


def fast_noise(shape: tuple[int, int, int], seed: int, *, first_trial: int = 0) -> np.ndarray:
    """The standard Gaussian noise xi the fast kernels use for one network and one seed.

    shape: (trials, time, size). Returns xi: (trials, time, size) float32; ``model(inputs, noise=torch.from_numpy(xi))``
    reproduces :func:`fast_loss` with the same seed. xi[b, t] depends only on (seed, first_trial + b, t) (and size):
    ``first_trial`` gives a later block of trials of the same draw.
    """
    if len(shape) != 3 or any(not isinstance(s, (int, np.integer)) or s < 0 for s in shape):
        raise RnnscopeError(f"shape: expected (trials, time, size) of non-negative ints, got {shape!r}")
    if isinstance(first_trial, bool) or not isinstance(first_trial, (int, np.integer)) or first_trial < 0:
        raise RnnscopeError(f"first_trial: expected a non-negative int, got {first_trial!r}")
    out = np.empty(tuple(int(s) for s in shape), np.float32)
    _run_items(_noise_items, out.shape[0] * out.shape[1], _seed_array(seed, 1)[0], np.int64(first_trial), out)
    return out


@dataclass(frozen=True)
class _Spec:
    """What the kernels need besides the tensors."""

    kind: str  # "low-rank" or "full-rank"
    alpha: np.ndarray  # (K,) float32
    noise_std: np.ndarray  # (K,) float32
    scale: np.ndarray  # (K,) float32
    seeds: np.ndarray  # (K,) uint64


def _per_network(value, networks: int, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(networks, float(array))
    if array.shape != (networks,) or not np.all(np.isfinite(array)):
        raise RnnscopeError(f"{name}: expected a finite number or {networks} numbers, got {value!r}")
    return array.astype(np.float32)


def _check_alpha(alpha: np.ndarray) -> np.ndarray:
    if not np.all((alpha > 0) & (alpha <= 1)):
        raise RnnscopeError(f"alpha: must be in (0, 1], got {alpha.tolist()}")
    return alpha


def _check_noise(noise_std: np.ndarray) -> np.ndarray:
    if not np.all(noise_std >= 0):
        raise RnnscopeError(f"noise_std: must be >= 0, got {noise_std.tolist()}")
    return noise_std


def _as_np(tensor, name: str) -> np.ndarray:
    """A C-contiguous, writeable float32 array (numba compiles one version for those), copying only if needed."""
    if isinstance(tensor, torch.Tensor):
        if tensor.device.type != "cpu":
            raise RnnscopeError(f"{name}: the fast path runs on CPU, got a tensor on {tensor.device}")
        tensor = tensor.detach().numpy()
    elif not isinstance(tensor, np.ndarray):
        tensor = np.asarray(tensor)
    if tensor.dtype != np.float32 or not tensor.flags.c_contiguous or not tensor.flags.writeable:
        tensor = np.array(tensor, dtype=np.float32, order="C")
    return tensor


def _columns_first(array: np.ndarray) -> np.ndarray:
    """(K, size, columns) -> contiguous (K, columns, size)."""
    return np.ascontiguousarray(array.transpose(0, 2, 1))


def _check_params(params: Mapping, *, need_trials: bool = False) -> tuple[str, dict[str, np.ndarray], int, int]:
    if not isinstance(params, Mapping):
        raise RnnscopeError(f"params: expected a mapping of parameter name -> array, got {type(params).__name__}")
    kind = "full-rank" if "J" in params else "low-rank"
    keys = _FULL_RANK_KEYS if kind == "full-rank" else _LOW_RANK_KEYS
    missing = [key for key in keys if key not in params]
    if missing:
        raise RnnscopeError(f"params: missing {missing} for a {kind} ensemble (keys {sorted(params)})")
    arrays = {key: _as_np(params[key], f"params[{key!r}]") for key in keys}
    h0 = arrays["h0"]
    if h0.ndim != 2:
        raise RnnscopeError(f"params['h0']: expected shape (networks, size), got {h0.shape}")
    networks, size = h0.shape
    for key in keys[:-1]:
        shape = arrays[key].shape
        if len(shape) != 3 or shape[:2] != (networks, size):
            raise RnnscopeError(f"params[{key!r}]: expected shape ({networks}, {size}, columns), got {shape}")
    if kind == "full-rank" and arrays["J"].shape[2] != size:
        raise RnnscopeError(f"params['J']: expected shape ({networks}, {size}, {size}), got {arrays['J'].shape}")
    if kind == "low-rank" and arrays["n"].shape != arrays["m"].shape:
        raise RnnscopeError(f"params['n']: expected the shape of m {arrays['m'].shape}, got {arrays['n'].shape}")
    return kind, arrays, networks, size


def _check_batch(inputs, networks: int, n_inputs: int, name: str = "inputs") -> np.ndarray:
    """inputs (trials, time, inputs) shared by all networks, or (networks, trials, time, inputs)."""
    array = _as_np(inputs, name)
    if array.ndim == 3:
        array = np.broadcast_to(array, (networks,) + array.shape)
    if array.ndim != 4 or array.shape[0] != networks or array.shape[3] != n_inputs:
        raise RnnscopeError(
            f"{name}: expected shape (trials, time, {n_inputs}) or ({networks}, trials, time, {n_inputs}), "
            f"got {tuple(np.shape(inputs))}"
        )
    return _as_np(array, name)


def _scales(kind: str, size: int, readout_scale, networks: int) -> np.ndarray:
    if readout_scale is None:
        readout_scale = 1.0 / size if kind == "low-rank" else 1.0
    return _per_network(readout_scale, networks, "readout_scale")


def _loss_grads(spec: _Spec, arrays: list[np.ndarray], u, y, mask, weights, want_win: bool, want_wout: bool):
    """Run the gradient kernel. arrays: the K-stacked parameters in key order (m, n or J, then w_in, w_out, h0).
    Returns losses (K,) float32 and the gradients in key order as contiguous float32 arrays of the parameters'
    shapes (None for w_in / w_out when not wanted)."""
    networks, trials = weights.shape
    if spec.kind == "low-rank":
        m, n, w_in, w_out, h0 = arrays
        rank_axis = (m.shape[2],)
    else:
        J, w_in, w_out, h0 = arrays
    size = h0.shape[1]
    n_in, n_out = w_in.shape[2], w_out.shape[2]
    if spec.kind == "low-rank":
        slots = trials
        g_rec = (np.zeros((networks, slots) + rank_axis + (size,), np.float32),
                 np.zeros((networks, slots) + rank_axis + (size,), np.float32))
    else:
        slots = (trials + _CHUNK - 1) // _CHUNK
        g_rec = (np.zeros((networks, slots, size, size), np.float32),)
    gwin = np.zeros((networks, slots, n_in, size) if want_win else (networks, slots, 1, 1), np.float32)
    gwout = np.zeros((networks, slots, n_out, size) if want_wout else (networks, slots, 1, 1), np.float32)
    gh0 = np.zeros((networks, slots, size), np.float32)
    losses = np.zeros((networks, trials), np.float64)
    common = (_columns_first(w_in), _columns_first(w_out), h0, u, y, mask, weights,
              spec.alpha, spec.noise_std, spec.scale, spec.seeds, want_win, want_wout)
    # per-trial (per-block) gradients summed in a fixed order (float32: 3x faster than via float64, and exact
    # enough for a few dozen terms)
    if spec.kind == "low-rank":
        kernel = _lowrank_grad_items_fused if _fusable(m.shape[2], n_in, n_out) else _lowrank_grad_items
        _run_items(kernel, networks * trials, _columns_first(m), _columns_first(n), *common, *g_rec, gwin, gwout, gh0,
                   losses)
        grads = [g.sum(axis=1).transpose(0, 2, 1) for g in g_rec]
    else:
        _run_items(_fullrank_grad_items, networks * slots, J, *common, *g_rec, gwin, gwout, gh0, losses)
        grads = [g_rec[0].sum(axis=1)]
    grads.append(gwin.sum(axis=1).transpose(0, 2, 1) if want_win else None)
    grads.append(gwout.sum(axis=1).transpose(0, 2, 1) if want_wout else None)
    grads.append(gh0.sum(axis=1))
    grads = [None if g is None else np.ascontiguousarray(g, dtype=np.float32) for g in grads]
    return losses.sum(axis=1).astype(np.float32), grads


class _EnsembleLoss(torch.autograd.Function):
    """losses (K,) = masked MSE of K networks; backward returns the gradients computed in forward."""

    @staticmethod
    def forward(ctx, spec: _Spec, u, y, mask, weights, *tensors):
        arrays = [_as_np(t, "params") for t in tensors]
        need = ctx.needs_input_grad[5:]
        losses, grads = _loss_grads(spec, arrays, u, y, mask, weights, bool(need[-3]), bool(need[-2]))
        ctx.grads = [None if g is None else torch.from_numpy(g) for g in grads]
        return torch.from_numpy(losses)

    @staticmethod
    def backward(ctx, grad_losses):
        out = []
        for needed, grad in zip(ctx.needs_input_grad[5:], ctx.grads, strict=True):
            if not needed or grad is None:
                out.append(None)
            else:
                scale = grad_losses.to(grad.dtype).reshape((-1,) + (1,) * (grad.dim() - 1))
                out.append(grad * scale)
        return (None, None, None, None, None, *out)


def _loss_inputs(inputs, targets, mask, networks: int, n_in: int, n_out: int):
    """u (K, trials, time, inputs), y (K, trials, time, outputs), mask (K, trials, time) as float32 arrays, and the
    per-trial loss weights (K, trials) = 1 / (trials * scored steps), 0 for a trial with no scored step."""
    u = _check_batch(inputs, networks, n_in, "inputs")
    y = _check_batch(targets, networks, n_out, "targets")
    trials, time = u.shape[1], u.shape[2]
    if y.shape[1:3] != (trials, time):
        raise RnnscopeError(f"targets: expected (.., {trials}, {time}, {n_out}) to match inputs, got {y.shape}")
    mk = _as_np(mask, "mask")
    if mk.ndim == 2:
        mk = np.broadcast_to(mk, (networks,) + mk.shape)
    if mk.shape != (networks, trials, time):
        raise RnnscopeError(f"mask: expected shape ({trials}, {time}) or ({networks}, {trials}, {time}), got {tuple(np.shape(mask))}")
    mk = _as_np(mk, "mask")
    return u, y, mk, trial_weights(mk.astype(np.float64))


def fast_loss_ensemble(
    params: Mapping[str, torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    seeds: Sequence[int],
    alpha: float | Sequence[float] = DEFAULT_ALPHA,
    noise_std: float | Sequence[float] = 0.05,
    readout_scale: float | Sequence[float] | None = None,
) -> torch.Tensor:
    """Masked-MSE losses of K rate networks, each on its own trials and noise, with gradients.

    params: low-rank ``m, n (K, size, rank)`` or full-rank ``J (K, size, size)``, plus ``w_in (K, size, inputs)``,
    ``w_out (K, size, outputs)``, ``h0 (K, size)``: CPU float32 tensors; those with ``requires_grad`` get gradients.
    inputs: (K, trials, time, inputs) or (trials, time, inputs) shared; targets: (K, trials, time, outputs) or
    (trials, time, outputs); mask: (K, trials, time) or (trials, time). seeds: K ints; network k uses
    ``fast_noise((trials, time, size), seeds[k])``. alpha, noise_std, readout_scale: one value or K values;
    readout_scale defaults to 1/size (low-rank) or 1 (full-rank), as in the models.
    Returns losses (K,); ``losses.sum().backward()`` fills each network's gradients. Under ``torch.no_grad()`` or
    when no parameter requires grad, the forward-only kernel computes the losses (and they carry no grad_fn).
    """
    kind, arrays, networks, size = _check_params(params)
    n_in, n_out = arrays["w_in"].shape[2], arrays["w_out"].shape[2]
    u, y, mk, weights = _loss_inputs(inputs, targets, mask, networks, n_in, n_out)
    spec = _Spec(
        kind=kind,
        alpha=_check_alpha(_per_network(alpha, networks, "alpha")),
        noise_std=_check_noise(_per_network(noise_std, networks, "noise_std")),
        scale=_scales(kind, size, readout_scale, networks),
        seeds=_seed_array(seeds, networks),
    )
    keys = _FULL_RANK_KEYS if kind == "full-rank" else _LOW_RANK_KEYS
    tensors = [params[key] for key in keys]
    if torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors):
        return _EnsembleLoss.apply(spec, u, y, mk, weights, *tensors)
    # no gradients wanted: the forward-only kernel, then the loss here
    z = _simulate(params, u, spec.seeds, spec.alpha, spec.noise_std, spec.scale, False)
    losses = masked_mse_per_trial(z.astype(np.float64), y, mk).mean(axis=-1)  # the one definition
    return torch.from_numpy(losses.astype(np.float32))


def fast_loss_and_grads_ensemble(
    params: Mapping[str, torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    seeds: Sequence[int],
    alpha: float | Sequence[float] = DEFAULT_ALPHA,
    noise_std: float | Sequence[float] = 0.05,
    readout_scale: float | Sequence[float] | None = None,
) -> np.ndarray:
    """As :func:`fast_loss_ensemble`, without an autograd graph: returns losses (K,) float32 and writes the
    gradient of ``losses.sum()`` to ``.grad`` of every tensor of ``params`` that requires grad (replacing it)."""
    kind, arrays, networks, size = _check_params(params)
    n_in, n_out = arrays["w_in"].shape[2], arrays["w_out"].shape[2]
    u, y, mk, weights = _loss_inputs(inputs, targets, mask, networks, n_in, n_out)
    spec = _Spec(
        kind=kind,
        alpha=_check_alpha(_per_network(alpha, networks, "alpha")),
        noise_std=_check_noise(_per_network(noise_std, networks, "noise_std")),
        scale=_scales(kind, size, readout_scale, networks),
        seeds=_seed_array(seeds, networks),
    )
    keys = _FULL_RANK_KEYS if kind == "full-rank" else _LOW_RANK_KEYS
    tensors = [params[key] for key in keys]
    wanted = [isinstance(t, torch.Tensor) and t.requires_grad for t in tensors]
    losses, grads = _loss_grads(spec, [arrays[key] for key in keys], u, y, mk, weights, wanted[-3], wanted[-2])
    for tensor, grad, want in zip(tensors, grads, wanted, strict=True):
        if want:
            tensor.grad = torch.from_numpy(grad)
    return losses


def fast_path_supported(model) -> bool:
    """Whether :func:`fast_loss` handles ``model``: a low-rank or full-rank RateRNN with float32 CPU parameters."""
    from rnnscope.models._rate import FullRankRNN, LowRankRNN

    if not isinstance(model, (LowRankRNN, FullRankRNN)):
        return False
    params = model._parameters  # direct access: nn.Module.__getattr__ is slow, and this runs once per batch
    return all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params.values() if p is not None)


def _model_params(model) -> dict[str, torch.Tensor]:
    from rnnscope.models._rate import LowRankRNN

    names = ("m", "n") if isinstance(model, LowRankRNN) else ("J",)
    params = {name: getattr(model, name).unsqueeze(0) for name in names}
    # the vectors the network uses: trained scales folded in (autograd carries gradients on to s_in, s_out)
    params.update(w_in=model.input_weights().unsqueeze(0), w_out=model.output_weights().unsqueeze(0),
                  h0=model.h0.unsqueeze(0))
    return params


def fast_loss(model, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, *, seed: int) -> torch.Tensor:
    """Masked-MSE loss of ``model`` (scalar tensor with a grad_fn), as the plain path would compute it on the noise
    ``fast_noise((trials, time, size), seed)``.

    inputs: (trials, time, inputs); targets: (trials, time, outputs); mask: (trials, time).
    ``loss.backward()`` fills ``.grad`` of exactly the parameters that require grad.
    """
    if not fast_path_supported(model):
        raise RnnscopeError(f"model: the fast path needs a LowRankRNN or FullRankRNN with float32 CPU parameters, got {type(model).__name__}")
    for name, value, ndim in (("inputs", inputs, 3), ("targets", targets, 3), ("mask", mask, 2)):
        if np.ndim(value) != ndim:
            raise RnnscopeError(f"{name}: expected {ndim} dimensions, got shape {tuple(np.shape(value))}")
    config = model.config
    losses = fast_loss_ensemble(
        _model_params(model), inputs, targets, mask, seeds=[seed],
        alpha=config.alpha, noise_std=config.noise_std, readout_scale=model.readout_scale,
    )
    return losses[0]


def fast_loss_and_grad(model, inputs, targets, mask, *, seed: int) -> float:
    """The loss of :func:`fast_loss` as a float, with the gradient of every parameter of ``model`` that requires
    grad written to its ``.grad`` (replacing it), without building an autograd graph: the trainer's hot path.

    inputs: (trials, time, inputs); targets: (trials, time, outputs); mask: (trials, time) arrays or tensors.
    """
    from rnnscope.models._rate import LowRankRNN

    if not fast_path_supported(model):
        raise RnnscopeError(f"model: the fast path needs a LowRankRNN or FullRankRNN with float32 CPU parameters, got {type(model).__name__}")
    if model.config.train_input_scale or model.config.train_output_scale:
        for p in model.parameters():
            p.grad = None
        loss = fast_loss(model, inputs, targets, mask, seed=seed)
        loss.backward()
        return float(loss.detach())
    kind = "low-rank" if isinstance(model, LowRankRNN) else "full-rank"
    keys = _LOW_RANK_KEYS if kind == "low-rank" else _FULL_RANK_KEYS
    tensors = [getattr(model, key) for key in keys]
    arrays = [t.detach().numpy()[None] for t in tensors]
    n_in, n_out = arrays[-3].shape[2], arrays[-2].shape[2]
    u, y, mk, weights = _loss_inputs(inputs, targets, mask, 1, n_in, n_out)
    config = model.config
    spec = _Spec(kind=kind, alpha=_check_alpha(_per_network(config.alpha, 1, "alpha")),
                 noise_std=_check_noise(_per_network(config.noise_std, 1, "noise_std")),
                 scale=_per_network(model.readout_scale, 1, "readout_scale"), seeds=_seed_array([seed], 1))
    losses, grads = _loss_grads(spec, [_as_np(a, "params") for a in arrays], u, y, mk, weights,
                                tensors[-3].requires_grad, tensors[-2].requires_grad)
    for tensor, grad in zip(tensors, grads, strict=True):
        if tensor.requires_grad:
            tensor.grad = torch.from_numpy(grad[0])
    return float(losses[0])



class FusedTrainStep:
    """:func:`fast_loss_and_grad` for one model, with what does not change between batches prepared once: the
    trainer's hot path (about 60 us of Python a batch instead of 160). The parameters are read through NumPy views
    of the model's tensors, so in-place updates (the optimizer, ``load_state_dict``) are seen."""

    def __init__(self, model) -> None:
        from rnnscope.models._rate import LowRankRNN

        if not fast_path_supported(model):
            raise RnnscopeError(f"model: the fast path needs a LowRankRNN or FullRankRNN with float32 CPU parameters, got {type(model).__name__}")
        self.kind = "low-rank" if isinstance(model, LowRankRNN) else "full-rank"
        keys = _LOW_RANK_KEYS if self.kind == "low-rank" else _FULL_RANK_KEYS
        self.tensors = [getattr(model, key) for key in keys]
        self.arrays = [_as_np(t, "params")[None] for t in self.tensors]
        # views when the parameters are contiguous (as built); copies, taken again each batch, otherwise
        self.views = all(np.shares_memory(a, t.detach().numpy()) for a, t in zip(self.arrays, self.tensors, strict=True))
        config = model.config
        self.alpha = _check_alpha(_per_network(config.alpha, 1, "alpha"))
        self.noise_std = _check_noise(_per_network(config.noise_std, 1, "noise_std"))
        self.scale = _per_network(model.readout_scale, 1, "readout_scale")
        # trained scales (chain rule on the kernel's gradients of the vectors used, w = v * s):
        # dL/ds_j = sum_i dL/dw_ij v_ij and dL/dv = dL/dw * s
        self.s_in = model.s_in if config.train_input_scale else None
        self.s_out = model.s_out if config.train_output_scale else None
        self.want_win = self.tensors[-3].requires_grad or (self.s_in is not None and self.s_in.requires_grad)
        self.want_wout = self.tensors[-2].requires_grad or (self.s_out is not None and self.s_out.requires_grad)

    def __call__(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray, seed: int) -> float:
        """inputs (trials, time, inputs), targets (trials, time, outputs), mask (trials, time): contiguous float32
        arrays. Returns the loss and writes the gradients to ``.grad``."""
        weights = trial_weights(mask.astype(np.float64))[None]
        spec = _Spec(kind=self.kind, alpha=self.alpha, noise_std=self.noise_std, scale=self.scale,
                     seeds=_seed_array([seed], 1))
        arrays = self.arrays if self.views else [_as_np(t, "params")[None] for t in self.tensors]
        scales = (self.s_in, self.s_out)
        if scales != (None, None):
            arrays = list(arrays)
            for position, scale in zip((-3, -2), scales, strict=True):
                if scale is not None:
                    arrays[position] = np.ascontiguousarray(arrays[position] * scale.detach().numpy(), np.float32)
        losses, grads = _loss_grads(spec, arrays, inputs[None], targets[None], mask[None], weights,
                                    self.want_win, self.want_wout)
        for position, scale in zip((-3, -2), scales, strict=True):
            if scale is not None:
                vectors, used = self.tensors[position].detach().numpy(), grads[position][0]
                if scale.requires_grad:
                    scale.grad = torch.from_numpy((used * vectors).sum(axis=0, dtype=np.float32))
                grads[position] = (used * scale.detach().numpy())[None]
        for tensor, grad in zip(self.tensors, grads, strict=True):
            if tensor.requires_grad:
                tensor.grad = torch.from_numpy(np.ascontiguousarray(grad[0], np.float32))
        return float(losses[0])

def _simulate(params, inputs, seeds, alpha, noise_std, readout_scale, keep_x: bool) -> np.ndarray:
    kind, arrays, networks, size = _check_params(params)
    n_in, n_out = arrays["w_in"].shape[2], arrays["w_out"].shape[2]
    u = _check_batch(inputs, networks, n_in, "inputs")
    trials, time = u.shape[1], u.shape[2]
    alpha = _check_alpha(_per_network(alpha, networks, "alpha"))
    noise = _check_noise(_per_network(noise_std, networks, "noise_std"))
    scale = _scales(kind, size, readout_scale, networks)
    seed_array = _seed_array(seeds, networks)
    zs = np.zeros((networks, trials, time, n_out), np.float32)
    xs = np.zeros((networks, trials, time, size) if keep_x else (networks, trials, 1, 1), np.float32)
    common = (_columns_first(arrays["w_in"]), _columns_first(arrays["w_out"]), arrays["h0"], u,
              alpha, noise, scale, seed_array, zs, xs, keep_x)
    if kind == "low-rank":
        kernel = _lowrank_sim_items_fused if _fusable(arrays["m"].shape[2], n_in, n_out) else _lowrank_sim_items
        _run_items(kernel, networks * trials, _columns_first(arrays["m"]), _columns_first(arrays["n"]), *common)
    else:
        blocks = (trials + _CHUNK - 1) // _CHUNK
        _run_items(_fullrank_sim_items, networks * blocks, arrays["J"], *common)
    return xs if keep_x else zs


def fast_outputs(
    params: Mapping[str, np.ndarray | torch.Tensor],
    inputs: np.ndarray | torch.Tensor,
    *,
    seeds: Sequence[int],
    alpha: float | Sequence[float] = DEFAULT_ALPHA,
    noise_std: float | Sequence[float] = 0.05,
    readout_scale: float | Sequence[float] | None = None,
) -> np.ndarray:
    """Outputs of K networks (no gradients): params as in :func:`fast_loss_ensemble` (arrays or tensors);
    inputs (trials, time, inputs) shared or (K, trials, time, inputs). Returns z: (K, trials, time, outputs) float32.
    Pass noise_std=0 for noise-free runs (seeds are then unused but still required)."""
    return _simulate(params, inputs, seeds, alpha, noise_std, readout_scale, False)


def fast_trajectories(
    params: Mapping[str, np.ndarray | torch.Tensor],
    inputs: np.ndarray | torch.Tensor,
    *,
    seeds: Sequence[int],
    alpha: float | Sequence[float] = DEFAULT_ALPHA,
    noise_std: float | Sequence[float] = 0.05,
    readout_scale: float | Sequence[float] | None = None,
) -> np.ndarray:
    """States x after each step of K networks, as :func:`fast_outputs`: (K, trials, time, size) float32."""
    return _simulate(params, inputs, seeds, alpha, noise_std, readout_scale, True)


def stack_parameters(models: Sequence) -> dict[str, torch.Tensor]:
    """K models of one architecture as new leaf tensors with a leading axis K (``requires_grad`` as in each model's
    parameters): ``m, n (K, size, rank)`` or ``J (K, size, size)``, ``w_in``, ``w_out``, ``h0``."""
    if len(models) == 0:
        raise RnnscopeError("models: expected at least one model")
    each = [_model_params(model) for model in models]
    out = {}
    for name in each[0]:
        tensors = [params[name][0].detach() for params in each]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise RnnscopeError(f"models: parameter {name} differs in shape across models")
        out[name] = torch.stack(tensors).clone().requires_grad_(each[0][name].requires_grad)
    return out


def warm_up() -> float:
    """Compile (or load from the numba cache) every kernel on a tiny problem; returns the seconds it took."""
    import time

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for kind in ("low-rank fused", "low-rank", "full-rank"):
        size = 4
        params = {"w_in": torch.zeros(1, size, 1), "w_out": torch.zeros(1, size, 1), "h0": torch.zeros(1, size)}
        if kind == "full-rank":
            params["J"] = torch.zeros(1, size, size)
        else:
            rank = 1 if kind == "low-rank fused" else 3  # rank 3: the general kernels
            params["m"] = torch.zeros(1, size, rank)
            params["n"] = torch.zeros(1, size, rank)
        for value in params.values():
            value.requires_grad_(True)
        u = torch.from_numpy(rng.standard_normal((2, 3, 1)).astype(np.float32))
        fast_loss_ensemble(params, u, u, torch.ones(2, 3), seeds=[0]).sum().backward()
        fast_outputs(params, u, seeds=[0])
        fast_trajectories(params, u, seeds=[0])
    fast_noise((1, 1, 2), 0)
    return time.perf_counter() - start
