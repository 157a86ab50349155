"""Fused CPU kernels (numba) for rate networks: masked-MSE loss and its gradients, and batched simulation.

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
that are summed afterwards in a fixed order. Thread count is taken from ``numba.set_num_threads`` of the caller.
All arrays are contiguous float32; weights are transposed to (columns, size) so that loops over neurons vectorise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from rnnscope.errors import RnnscopeError

__all__ = [
    "fast_noise",
    "fast_loss",
    "fast_loss_ensemble",
    "fast_outputs",
    "fast_trajectories",
    "fast_path_supported",
    "stack_parameters",
    "warm_up",
]

_FASTMATH = {"reassoc", "contract", "nsz"}  # reassociation lets reductions vectorise; order stays fixed per build
_CHUNK = 8  # trials per thread in the full-rank kernel (fixed, so reductions do not depend on the thread count)

_U64 = np.uint64
_GAMMA = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_S30, _S27, _S31, _S40 = _U64(30), _U64(27), _U64(31), _U64(40)
_LOW24 = _U64(0xFFFFFF)
_TWO_M24 = np.float32(1.0 / 16777216.0)


# ----------------------------------------------------------------------------------------------------------------------
# Vectorisable float32 math (plain arithmetic, so LLVM turns the neuron loops into SIMD code)


@intrinsic
def _f32_bits(typingctx, x):
    """Reinterpret a float32 as int32 (no conversion)."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def _bits_f32(typingctx, x):
    """Reinterpret an int32 as float32."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _sqrt(typingctx, x):
    """float32 square root as the LLVM intrinsic (numba's ``math.sqrt`` calls libm, which blocks vectorisation)."""
    sig = types.float32(types.float32)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.sqrt", [ir.FloatType()])
        return builder.call(fn, args)

    return sig, codegen


@njit(inline="always")
def _tanh(x):
    """tanh of a float32 to a few ulp: a 13/6 rational minimax on [-7.9, 7.9] (the Eigen float kernel)."""
    c = np.float32(7.90531110763549805)
    xc = min(max(x, -c), c)
    x2 = xc * xc
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = x2 * p + np.float32(-8.60467152213735e-11)
    p = x2 * p + np.float32(5.12229709037114e-08)
    p = x2 * p + np.float32(1.48572235717979e-05)
    p = x2 * p + np.float32(6.37261928875436e-04)
    p = x2 * p + np.float32(4.89352455891786e-03)
    p = xc * p
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = x2 * q + np.float32(2.26843463243900e-03)
    q = x2 * q + np.float32(4.89352518554385e-03)
    out = p / q
    return x if abs(x) < np.float32(0.0004) else out


@njit(inline="always")
def _log(x):
    """Natural log of a positive normal float32 (Cephes logf, ~1 ulp)."""
    bits = _f32_bits(x)
    e = np.float32(((bits >> 23) & 0xFF) - 126)
    m = _bits_f32(np.int32((bits & 0x007FFFFF) | 0x3F000000))  # in [0.5, 1)
    small = m < np.float32(0.707106781186547524)
    e = e - np.float32(1.0) if small else e
    m = (m + m - np.float32(1.0)) if small else (m - np.float32(1.0))
    z = m * m
    y = np.float32(7.0376836292e-2) * m - np.float32(1.1514610310e-1)
    y = y * m + np.float32(1.1676998740e-1)
    y = y * m - np.float32(1.2420140846e-1)
    y = y * m + np.float32(1.4249322787e-1)
    y = y * m - np.float32(1.6668057665e-1)
    y = y * m + np.float32(2.0000714765e-1)
    y = y * m - np.float32(2.4999993993e-1)
    y = y * m + np.float32(3.3333331174e-1)
    y = y * m * z
    y = y - np.float32(2.12194440e-4) * e
    y = y - np.float32(0.5) * z
    return m + y + np.float32(0.693359375) * e


@njit(inline="always")
def _mix64(z):
    """The splitmix64 finaliser: a bijective 64-bit hash with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always")
def _stream_key(seed, trial, step):
    """The 64-bit key of one (seed, trial, step) noise vector."""
    k = _mix64(_U64(seed) + _GAMMA)
    k = _mix64(k + _U64(trial) * _M1 + _GAMMA)
    return _mix64(k + _U64(step) * _M2 + _GAMMA)


@njit(inline="always")
def _gauss_pair(key, p):
    """Two independent standard Gaussians for neuron pair p of the stream ``key`` (Box-Muller).

    ``key + (p + 1) * gamma`` is hashed to 64 bits: the top 24 bits give u1 in (0, 1), the low 24 bits w in
    [-1/2, 1/2); the pair is ``rho cos(2 pi w), rho sin(2 pi w)`` with ``rho = sqrt(-2 log u1)``.
    """
    h = _mix64(key + _U64(p + 1) * _GAMMA)
    u1 = (np.float32(h >> _S40) + np.float32(0.5)) * _TWO_M24
    w = np.float32(h & _LOW24) * _TWO_M24 - np.float32(0.5)
    rho = _sqrt(np.float32(-2.0) * _log(u1))
    qi = np.int32(np.float32(4.0) * w + np.float32(2.5))  # floor(4 w + 1/2) + 2 in {0, ..., 4}: the quadrant
    y = (w - np.float32(0.25) * np.float32(qi - 2)) * np.float32(6.283185307179586)  # in [-pi/4, pi/4]
    z = y * y
    sn = ((np.float32(-1.9515295891e-4) * z + np.float32(8.3321608736e-3)) * z - np.float32(1.6666654611e-1)) * z
    sn = y + y * sn
    cs = (np.float32(2.443315711809948e-5) * z - np.float32(1.388731625493765e-3)) * z + np.float32(
        4.166664568298827e-2
    )
    cs = np.float32(1.0) - np.float32(0.5) * z + z * z * cs
    # the angle is y + k pi / 2 with k = quadrant mod 4: (cos, sin) = (cs, sn), (-sn, cs), (-cs, -sn), (sn, -cs)
    k = (qi + 2) & 3
    swap = (k & 1) == 1
    c = sn if swap else cs
    s = cs if swap else sn
    sign_c = np.float32(1 - 2 * (((k + 1) >> 1) & 1))
    sign_s = np.float32(1 - 2 * ((k >> 1) & 1))
    return rho * sign_c * c, rho * sign_s * s


@njit(error_model="numpy", cache=True)
def _fill_noise(seed, trial, step, out):
    """Standard Gaussian xi of one (trial, step) for neurons 0..size-1: out (size,) float32.

    With ``half = size // 2``, neuron p < half takes the cosine and neuron half + p the sine of pair p of
    :func:`_gauss_pair` (an odd last neuron takes the cosine of pair ``half``). Compiled without fast-math, so every
    caller gets bit-identical numbers.
    """
    key = _stream_key(seed, trial, step)
    size = out.shape[0]
    half = size // 2
    first = out[:half]
    second = out[half : 2 * half]
    for p in range(half):
        c, s = _gauss_pair(key, p)
        first[p] = c
        second[p] = s
    if size > 2 * half:
        c, s = _gauss_pair(key, half)
        out[size - 1] = c


@njit(parallel=True, error_model="numpy", cache=True)
def _noise_kernel(seed, out):
    trials, time, _ = out.shape
    for item in prange(trials * time):
        b = item // time
        t = item - b * time
        _fill_noise(seed, b, t, out[b, t])
