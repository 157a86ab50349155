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
that are summed afterwards in a fixed order, so results are bit-identical for any number of threads. The trials are
split into ``numba.get_num_threads()`` ranges (set by the caller with ``numba.set_num_threads``), run by GIL-free
kernels on a small thread pool. All arrays are contiguous float32; weights are transposed to (columns, size) so
that loops over neurons vectorise; tanh, log, sin and cos are plain-arithmetic float32 versions that vectorise.
Kernels are cached on disk by numba (``cache=True``: ``__pycache__`` beside this file, or numba's user cache
directory when that is not writable); :func:`warm_up` compiles or loads them all.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
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
_S30, _S27, _S31, _S41 = _U64(30), _U64(27), _U64(31), _U64(41)
_LOW23 = _U64(0x7FFFFF)
_ONE_BITS = _U64(0x3F800000)  # the bits of 1.0f


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
    # exponent as a float without an int -> float conversion: 2^23 + e read back from the bits of a float
    e = _bits_f32(np.int32(((bits >> 23) & 0xFF) | 0x4B000000)) - np.float32(8388608.0 + 126.0)
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

    ``key + (p + 1) * gamma`` is hashed to 64 bits: the top 23 bits give u1 in (0, 1], the low 23 bits w in
    [-1/2, 1/2) (each as the mantissa of a float in [1, 2)); the pair is ``rho cos(2 pi w), rho sin(2 pi w)`` with
    ``rho = sqrt(-2 log u1)`` (so |xi| <= sqrt(46 log 2) = 5.6).
    """
    h = _mix64(key + _U64(p + 1) * _GAMMA)
    u1 = np.float32(2.0) - _bits_f32(np.int32((h >> _S41) | _ONE_BITS))
    w = _bits_f32(np.int32((h & _LOW23) | _ONE_BITS)) - np.float32(1.5)
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


@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def _fill_noise(seed, trial, step, out):
    """Standard Gaussian xi of one (trial, step) for neurons 0..size-1: out (size,) float32.

    With ``half = size // 2``, neuron p < half takes the cosine and neuron half + p the sine of pair p of
    :func:`_gauss_pair` (an odd last neuron takes the cosine of pair ``half``). Compiled once without reassociation, and every
    caller (the kernels and :func:`fast_noise`) calls this build, so all get bit-identical numbers.
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


@njit(nogil=True, error_model="numpy", cache=True)
def _noise_items(lo, hi, seed, out):
    """xi of items lo..hi-1 of out (trials, time, size), item = trial * time + step."""
    time = out.shape[1]
    for item in range(lo, hi):
        b = item // time
        t = item - b * time
        _fill_noise(seed, b, t, out[b, t])


@njit(inline="always")
def _scored_steps(mask):
    """1 + the last step with a non-zero mask (0 if none): mask (time,)."""
    for t in range(mask.shape[0] - 1, -1, -1):
        if mask[t] != 0:
            return t + 1
    return 0


# ----------------------------------------------------------------------------------------------------------------------
# Low-rank kernel: one trial per call, forward then backward through time


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_forward(mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seed, trial, rs, kap, zs, xs, keep_x):
    """Run one trial forward.

    mT, nT: (rank, size); winT: (inputs, size); woutT: (outputs, size); h0: (size,); u: (time, inputs).
    Fills rs (time+1, size) = tanh(x_t), kap (time, rank) = n^T r_t / size, zs (time, outputs) = outputs, and
    xs (time, size) = x_{t+1} when keep_x.
    """
    size = h0.shape[0]
    time, inputs = u.shape
    rank = mT.shape[0]
    outputs = woutT.shape[0]
    inv = np.float32(1.0) / np.float32(size)
    leak = np.float32(1.0) - alpha
    x = np.empty(size, np.float32)
    xi = np.zeros(size, np.float32)
    drive = np.empty(size, np.float32)
    r0 = rs[0]
    for i in range(size):
        x[i] = h0[i]
        r0[i] = _tanh(h0[i])
    for t in range(time):
        r = rs[t]
        for k in range(rank):
            acc = np.float32(0.0)
            nk = nT[k]
            for i in range(size):
                acc += nk[i] * r[i]
            kap[t, k] = acc * inv
        if noise_std != 0:
            _fill_noise(seed, trial, t, xi)
        for i in range(size):
            drive[i] = np.float32(0.0)
        for j in range(inputs):
            uj = u[t, j]
            if uj != 0:
                wj = winT[j]
                for i in range(size):
                    drive[i] += wj[i] * uj
        for k in range(rank):
            ck = kap[t, k]
            mk = mT[k]
            for i in range(size):
                drive[i] += mk[i] * ck
        rn = rs[t + 1]
        for i in range(size):
            xv = leak * x[i] + alpha * drive[i] + noise_std * xi[i]
            x[i] = xv
            rn[i] = _tanh(xv)
        if keep_x:
            for i in range(size):
                xs[t, i] = x[i]
        for o in range(outputs):
            acc = np.float32(0.0)
            wo = woutT[o]
            for i in range(size):
                acc += wo[i] * rn[i]
            zs[t, o] = acc * scale


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_trial_grad(
    mT, nT, winT, woutT, h0, u, y, mask, weight, alpha, noise_std, scale, seed, trial,
    gm, gn, gwin, gwout, gh0, want_win, want_wout, work_rs, work_kap, work_zs,
):
    """Loss of one trial times ``weight`` (float64) and its gradients, added into gm, gn (rank, size),
    gwin (inputs, size), gwout (outputs, size), gh0 (size,). u: (time, inputs); y: (time, outputs); mask: (time,).
    work_rs (time+1, size), work_kap (time, rank), work_zs (time, outputs): scratch space, reused across trials
    (allocating it per trial costs page faults and, with several threads, TLB shootdowns)."""
    size = h0.shape[0]
    inputs = u.shape[1]
    rank = mT.shape[0]
    outputs = woutT.shape[0]
    time = _scored_steps(mask)  # steps after the last scored one do not change the loss
    if time == 0:
        return 0.0
    u = u[:time]
    rs = work_rs[: time + 1]
    kap = work_kap[:time]
    zs = work_zs[:time]
    _lowrank_forward(mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seed, trial, rs, kap, zs, zs, False)
    loss = 0.0
    for t in range(time):
        if mask[t] != 0:
            acc = 0.0
            for o in range(outputs):
                diff = np.float64(zs[t, o]) - np.float64(y[t, o])
                acc += diff * diff
            loss += np.float64(mask[t]) * acc / outputs
    loss *= weight
    inv = np.float32(1.0) / np.float32(size)
    leak = np.float32(1.0) - alpha
    a_inv = alpha * inv
    d = np.zeros(size, np.float32)
    back = np.empty(size, np.float32)
    mu = np.empty(rank, np.float32)
    coef = np.float32(2.0 * weight / outputs)
    for t in range(time - 1, -1, -1):
        rn = rs[t + 1]
        if mask[t] != 0:
            for o in range(outputs):
                g = coef * mask[t] * (zs[t, o] - y[t, o]) * scale
                wo = woutT[o]
                if want_wout:
                    gw = gwout[o]
                    for i in range(size):
                        gw[i] += g * rn[i]
                        d[i] += g * wo[i] * (np.float32(1.0) - rn[i] * rn[i])
                else:
                    for i in range(size):
                        d[i] += g * wo[i] * (np.float32(1.0) - rn[i] * rn[i])
        # d = dL/dx_{t+1}; x_{t+1} = leak x_t + alpha (m kap_t + W_in u_t) + noise
        if want_win:
            for j in range(inputs):
                uj = u[t, j]
                if uj != 0:
                    gj = gwin[j]
                    c = alpha * uj
                    for i in range(size):
                        gj[i] += c * d[i]
        r = rs[t]
        for k in range(rank):
            acc = np.float32(0.0)
            mk = mT[k]
            c = alpha * kap[t, k]
            gk = gm[k]
            for i in range(size):
                acc += mk[i] * d[i]
                gk[i] += c * d[i]
            mu[k] = acc
        for i in range(size):
            back[i] = np.float32(0.0)
        for k in range(rank):
            c = a_inv * mu[k]
            nk = nT[k]
            gk = gn[k]
            for i in range(size):
                gk[i] += c * r[i]
                back[i] += nk[i] * c
        for i in range(size):
            d[i] = leak * d[i] + (np.float32(1.0) - r[i] * r[i]) * back[i]
    for i in range(size):
        gh0[i] += d[i]
    return loss


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_grad_items(
    lo, hi, mT, nT, winT, woutT, h0, u, y, mask, weights, alpha, noise_std, scale, seeds, want_win, want_wout,
    gm, gn, gwin, gwout, gh0, losses,
):
    """Networks k, trials b: mT, nT (K, rank, size); winT (K, inputs, size); woutT (K, outputs, size); h0 (K, size);
    u (K, B, time, inputs); y (K, B, time, outputs); mask, weights (K, B, time) / (K, B); alpha, noise_std, scale (K,);
    seeds (K,). Items lo..hi-1 (item = k * B + b) fill their per-trial gradients gm, gn (K, B, rank, size) ... and
    losses (K, B) (zeroed by the caller)."""
    trials = weights.shape[1]
    time, size, rank, outputs = u.shape[2], h0.shape[1], mT.shape[1], woutT.shape[1]
    work_rs = np.empty((time + 1, size), np.float32)
    work_kap = np.empty((time, rank), np.float32)
    work_zs = np.empty((time, outputs), np.float32)
    for item in range(lo, hi):
        k = item // trials
        b = item - k * trials
        losses[k, b] = _lowrank_trial_grad(
            mT[k], nT[k], winT[k], woutT[k], h0[k], u[k, b], y[k, b], mask[k, b], weights[k, b],
            alpha[k], noise_std[k], scale[k], seeds[k], b,
            gm[k, b], gn[k, b], gwin[k, b], gwout[k, b], gh0[k, b], want_win, want_wout, work_rs, work_kap, work_zs,
        )


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_sim_items(lo, hi, mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seeds, zs, xs, keep_x):
    """Forward only, items lo..hi-1 (item = k * B + b): zs (K, B, time, outputs); xs (K, B, time, size) when keep_x
    (else any (K, B, 1, 1) array)."""
    trials = zs.shape[1]
    time, size = u.shape[2], h0.shape[1]
    rank = mT.shape[1]
    rs = np.empty((time + 1, size), np.float32)
    kap = np.empty((time, rank), np.float32)
    for item in range(lo, hi):
        k = item // trials
        b = item - k * trials
        _lowrank_forward(
            mT[k], nT[k], winT[k], woutT[k], h0[k], u[k, b], alpha[k], noise_std[k], scale[k], seeds[k], b,
            rs, kap, zs[k, b], xs[k, b], keep_x,
        )


# ----------------------------------------------------------------------------------------------------------------------
# Full-rank kernel: one block of up to _CHUNK trials per call, so each row of J is reused across the block


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fullrank_forward(J, winT, woutT, h0, u, alpha, noise_std, scale, seed, first, rs, zs, xs, keep_x):
    """Run trials first .. first+C-1 forward. J: (size, size); u: (C, time, inputs).

    Fills rs (C, time+1, size) = tanh(x_t), zs (C, time, outputs), and xs (C, time, size) when keep_x.
    """
    size = h0.shape[0]
    chunk, time, inputs = u.shape
    outputs = woutT.shape[0]
    leak = np.float32(1.0) - alpha
    x = np.empty((chunk, size), np.float32)
    xi = np.zeros(size, np.float32)
    drive = np.empty((chunk, size), np.float32)
    for c in range(chunk):
        for i in range(size):
            x[c, i] = h0[i]
            rs[c, 0, i] = _tanh(h0[i])
    for t in range(time):
        for i in range(size):
            row = J[i]
            for c in range(chunk):
                r = rs[c, t]
                acc = np.float32(0.0)
                for j in range(size):
                    acc += row[j] * r[j]
                drive[c, i] = acc
        for c in range(chunk):
            dc = drive[c]
            for j in range(inputs):
                uj = u[c, t, j]
                if uj != 0:
                    wj = winT[j]
                    for i in range(size):
                        dc[i] += wj[i] * uj
            if noise_std != 0:
                _fill_noise(seed, first + c, t, xi)
            rn = rs[c, t + 1]
            xc = x[c]
            for i in range(size):
                xv = leak * xc[i] + alpha * dc[i] + noise_std * xi[i]
                xc[i] = xv
                rn[i] = _tanh(xv)
            if keep_x:
                for i in range(size):
                    xs[c, t, i] = xc[i]
            for o in range(outputs):
                acc = np.float32(0.0)
                wo = woutT[o]
                for i in range(size):
                    acc += wo[i] * rn[i]
                zs[c, t, o] = acc * scale


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fullrank_block_grad(
    J, winT, woutT, h0, u, y, mask, weight, alpha, noise_std, scale, seed, first,
    gJ, gwin, gwout, gh0, losses, want_win, want_wout, work_rs,
):
    """Losses (C,) times weight and gradients of trials first .. first+C-1, added into gJ (size, size),
    gwin (inputs, size), gwout (outputs, size), gh0 (size,). u (C, time, inputs); y (C, time, outputs); mask (C, time);
    work_rs (_CHUNK, time+1, size): scratch space reused across blocks."""
    size = h0.shape[0]
    chunk, inputs = u.shape[0], u.shape[2]
    outputs = woutT.shape[0]
    time = 0
    for c in range(chunk):
        time = max(time, _scored_steps(mask[c]))
    u = u[:, :time]
    rs = work_rs[:chunk, : time + 1]
    zs = np.empty((chunk, time, outputs), np.float32)
    _fullrank_forward(J, winT, woutT, h0, u, alpha, noise_std, scale, seed, first, rs, zs, zs, False)
    for c in range(chunk):
        loss = 0.0
        for t in range(time):
            if mask[c, t] != 0:
                acc = 0.0
                for o in range(outputs):
                    diff = np.float64(zs[c, t, o]) - np.float64(y[c, t, o])
                    acc += diff * diff
                loss += np.float64(mask[c, t]) * acc / outputs
        losses[c] = loss * weight[c]
    leak = np.float32(1.0) - alpha
    d = np.zeros((chunk, size), np.float32)
    back = np.empty((chunk, size), np.float32)
    for t in range(time - 1, -1, -1):
        for c in range(chunk):
            if mask[c, t] != 0:
                rn = rs[c, t + 1]
                dc = d[c]
                coef = np.float32(2.0 * weight[c] / outputs) * mask[c, t] * scale
                for o in range(outputs):
                    g = coef * (zs[c, t, o] - y[c, t, o])
                    wo = woutT[o]
                    if want_wout:
                        gw = gwout[o]
                        for i in range(size):
                            gw[i] += g * rn[i]
                    for i in range(size):
                        dc[i] += g * wo[i] * (np.float32(1.0) - rn[i] * rn[i])
            if want_win:
                for j in range(inputs):
                    uj = u[c, t, j]
                    if uj != 0:
                        gj = gwin[j]
                        cj = alpha * uj
                        for i in range(size):
                            gj[i] += cj * d[c, i]
        # J^T d and dJ += alpha d r^T, one row of J at a time
        for c in range(chunk):
            for j in range(size):
                back[c, j] = np.float32(0.0)
        for i in range(size):
            row = J[i]
            grow = gJ[i]
            for c in range(chunk):
                dci = d[c, i]
                if dci != 0:
                    r = rs[c, t]
                    bc = back[c]
                    adci = alpha * dci
                    for j in range(size):
                        bc[j] += row[j] * dci
                        grow[j] += adci * r[j]
        for c in range(chunk):
            r = rs[c, t]
            for j in range(size):
                d[c, j] = leak * d[c, j] + alpha * (np.float32(1.0) - r[j] * r[j]) * back[c, j]
    for c in range(chunk):
        for i in range(size):
            gh0[i] += d[c, i]


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fullrank_grad_items(
    lo, hi, J, winT, woutT, h0, u, y, mask, weights, alpha, noise_std, scale, seeds, want_win, want_wout,
    gJ, gwin, gwout, gh0, losses,
):
    """As :func:`_lowrank_grad_items` with J (K, size, size), items = (network, block of _CHUNK trials); gradients are
    per block: gJ (K, blocks, size, size), gwin (K, blocks, inputs, size), gwout (K, blocks, outputs, size),
    gh0 (K, blocks, size)."""
    trials = weights.shape[1]
    blocks = (trials + _CHUNK - 1) // _CHUNK
    work_rs = np.empty((_CHUNK, u.shape[2] + 1, h0.shape[1]), np.float32)
    for item in range(lo, hi):
        k = item // blocks
        blk = item - k * blocks
        first = blk * _CHUNK
        last = min(first + _CHUNK, trials)
        _fullrank_block_grad(
            J[k], winT[k], woutT[k], h0[k], u[k, first:last], y[k, first:last], mask[k, first:last],
            weights[k, first:last], alpha[k], noise_std[k], scale[k], seeds[k], first,
            gJ[k, blk], gwin[k, blk], gwout[k, blk], gh0[k, blk], losses[k, first:last], want_win, want_wout, work_rs,
        )


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fullrank_sim_items(lo, hi, J, winT, woutT, h0, u, alpha, noise_std, scale, seeds, zs, xs, keep_x):
    """Forward only, as :func:`_lowrank_sim_items` with J (K, size, size) and items (network, block of trials)."""
    trials = zs.shape[1]
    time, size = u.shape[2], h0.shape[1]
    blocks = (trials + _CHUNK - 1) // _CHUNK
    work_rs = np.empty((_CHUNK, time + 1, size), np.float32)
    for item in range(lo, hi):
        k = item // blocks
        blk = item - k * blocks
        first = blk * _CHUNK
        last = min(first + _CHUNK, trials)
        _fullrank_forward(
            J[k], winT[k], woutT[k], h0[k], u[k, first:last], alpha[k], noise_std[k], scale[k], seeds[k], first,
            work_rs[: last - first], zs[k, first:last], xs[k, first:last], keep_x,
        )


# ----------------------------------------------------------------------------------------------------------------------
# Python side: threads, validation, layout, autograd


@functools.cache
def _executor(workers: int, pid: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads for process ``pid``, made on first use (the kernels release the GIL).
    Keyed by pid because a forked child inherits the pool object but not its threads."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnnscope-fast")


def _run_items(kernel, items: int, *args) -> None:
    """Run ``kernel(lo, hi, *args)`` over items 0..items-1 split into ``numba.get_num_threads()`` contiguous ranges.

    Each item writes only its own outputs, so the result does not depend on the split. (Plain threads around
    GIL-free kernels instead of ``prange``: a cold compile of all kernels took 26 s instead of 63 s.)
    """
    workers = min(numba.get_num_threads(), items)
    if workers <= 1:
        kernel(0, items, *args)
        return
    bounds = [items * w // workers for w in range(workers + 1)]
    pool = _executor(workers, os.getpid())
    futures = [pool.submit(kernel, bounds[w], bounds[w + 1], *args) for w in range(1, workers)]
    kernel(bounds[0], bounds[1], *args)  # the calling thread takes the first range
    for future in futures:
        future.result()

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


def fast_noise(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """The standard Gaussian noise xi the fast kernels use for one network and one seed.

    shape: (trials, time, size). Returns xi: (trials, time, size) float32; ``model(inputs, noise=torch.from_numpy(xi))``
    reproduces :func:`fast_loss` with the same seed. xi[b, t] depends only on (seed, b, t) (and size).
    """
    if len(shape) != 3 or any(not isinstance(s, (int, np.integer)) or s < 0 for s in shape):
        raise RnnscopeError(f"shape: expected (trials, time, size) of non-negative ints, got {shape!r}")
    out = np.empty(tuple(int(s) for s in shape), np.float32)
    _run_items(_noise_items, out.shape[0] * out.shape[1], _seed_array(seed, 1)[0], out)
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


class _EnsembleLoss(torch.autograd.Function):
    """losses (K,) = masked MSE of K networks; backward returns the gradients computed in forward."""

    @staticmethod
    def forward(ctx, spec: _Spec, u, y, mask, weights, *tensors):
        arrays = [_as_np(t, "params") for t in tensors]
        networks, trials = weights.shape
        if spec.kind == "low-rank":
            m, n, w_in, w_out, h0 = arrays
            rank_axis = (m.shape[2],)
        else:
            J, w_in, w_out, h0 = arrays
        size = h0.shape[1]
        n_in, n_out = w_in.shape[2], w_out.shape[2]
        need = ctx.needs_input_grad[5:]
        want_win, want_wout = bool(need[-3]), bool(need[-2])
        if spec.kind == "low-rank":
            slots = trials
            g_rec = (np.zeros((networks, slots) + rank_axis + (size,), np.float32),
                     np.zeros((networks, slots) + rank_axis + (size,), np.float32))
        else:
            slots = (trials + _CHUNK - 1) // _CHUNK
            g_rec = (np.zeros((networks, slots, size, size), np.float32),)
        gwin = np.zeros((networks, slots, n_in, size), np.float32) if want_win else np.zeros((networks, slots, 1, 1), np.float32)
        gwout = np.zeros((networks, slots, n_out, size), np.float32) if want_wout else np.zeros((networks, slots, 1, 1), np.float32)
        gh0 = np.zeros((networks, slots, size), np.float32)
        losses = np.zeros((networks, trials), np.float64)
        common = (_columns_first(w_in), _columns_first(w_out), h0, u, y, mask, weights,
                  spec.alpha, spec.noise_std, spec.scale, spec.seeds, want_win, want_wout)
        if spec.kind == "low-rank":
            _run_items(_lowrank_grad_items, networks * trials, _columns_first(m), _columns_first(n), *common, *g_rec,
                       gwin, gwout, gh0, losses)
            grads = [g.sum(axis=1, dtype=np.float64).transpose(0, 2, 1) for g in g_rec]
        else:
            _run_items(_fullrank_grad_items, networks * slots, J, *common, *g_rec, gwin, gwout, gh0, losses)
            grads = [g_rec[0].sum(axis=1, dtype=np.float64)]
        grads.append(gwin.sum(axis=1, dtype=np.float64).transpose(0, 2, 1) if want_win else None)
        grads.append(gwout.sum(axis=1, dtype=np.float64).transpose(0, 2, 1) if want_wout else None)
        grads.append(gh0.sum(axis=1, dtype=np.float64))
        ctx.grads = [None if g is None else torch.from_numpy(np.ascontiguousarray(g, dtype=np.float32)) for g in grads]
        return torch.from_numpy(losses.sum(axis=1).astype(np.float32))

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
    counts = mk.sum(axis=2, dtype=np.float64)
    with np.errstate(divide="ignore"):
        weights = np.where(counts != 0, 1.0 / (trials * np.where(counts != 0, counts, 1.0)), 0.0)
    return u, y, mk, weights


def fast_loss_ensemble(
    params: Mapping[str, torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    seeds: Sequence[int],
    alpha: float | Sequence[float] = 0.2,
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
    per_step = ((z.astype(np.float64) - y) ** 2).mean(axis=-1)  # (K, trials, time)
    losses = (weights * (mk * per_step).sum(axis=-1)).sum(axis=-1)
    return torch.from_numpy(losses.astype(np.float32))


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
    return {name: getattr(model, name).unsqueeze(0) for name in names + ("w_in", "w_out", "h0")}


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
        _run_items(_lowrank_sim_items, networks * trials, _columns_first(arrays["m"]), _columns_first(arrays["n"]), *common)
    else:
        blocks = (trials + _CHUNK - 1) // _CHUNK
        _run_items(_fullrank_sim_items, networks * blocks, arrays["J"], *common)
    return xs if keep_x else zs


def fast_outputs(
    params: Mapping[str, np.ndarray | torch.Tensor],
    inputs: np.ndarray | torch.Tensor,
    *,
    seeds: Sequence[int],
    alpha: float | Sequence[float] = 0.2,
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
    alpha: float | Sequence[float] = 0.2,
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
    first = _model_params(models[0])
    out = {}
    for name in first:
        tensors = [getattr(model, name).detach() for model in models]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise RnnscopeError(f"models: parameter {name} differs in shape across models")
        out[name] = torch.stack(tensors).clone().requires_grad_(getattr(models[0], name).requires_grad)
    return out


def warm_up() -> float:
    """Compile (or load from the numba cache) every kernel on a tiny problem; returns the seconds it took."""
    import time

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for full in (False, True):
        size = 4
        params = {"w_in": torch.zeros(1, size, 1), "w_out": torch.zeros(1, size, 1), "h0": torch.zeros(1, size)}
        if full:
            params["J"] = torch.zeros(1, size, size)
        else:
            params["m"] = torch.zeros(1, size, 1)
            params["n"] = torch.zeros(1, size, 1)
        for value in params.values():
            value.requires_grad_(True)
        u = torch.from_numpy(rng.standard_normal((2, 3, 1)).astype(np.float32))
        fast_loss_ensemble(params, u, u, torch.ones(2, 3), seeds=[0]).sum().backward()
        fast_outputs(params, u, seeds=[0])
        fast_trajectories(params, u, seeds=[0])
    fast_noise((1, 1, 2), 0)
    return time.perf_counter() - start
