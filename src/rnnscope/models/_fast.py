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
split into ranges, one per thread (``numba.set_num_threads`` of the caller, or by default the cores not busy
with other work, see :func:`_threads`), run by GIL-free kernels on a small thread pool. All arrays are contiguous float32; weights are transposed to (columns, size) so
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
    "fast_loss_and_grad",
    "fast_loss_and_grads_ensemble",
    "fast_outputs",
    "fast_trajectories",
    "fast_path_supported",
    "stack_parameters",
    "warm_up",
]

_FASTMATH = {"reassoc", "contract", "nsz"}  # reassociation lets reductions vectorise; order stays fixed per build
_CHUNK = 8  # trials per thread in the full-rank kernel (fixed, so reductions do not depend on the thread count)

_U64 = np.uint64
_U32 = np.uint32
_GAMMA = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_S30, _S27, _S31 = _U64(30), _U64(27), _U64(31)


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
def _mix64(z):
    """The splitmix64 finaliser: a bijective 64-bit hash with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always")
def _minus_two_log(u):
    """-2 log(u) for u in (0, 1], to ~2e-6 absolute (a degree-8 polynomial for log(1 + m), m in [0, 1)); >= 0."""
    bits = _f32_bits(u)
    # the exponent as a float without an int -> float conversion: 2^23 + e read back from the bits of a float
    e = _bits_f32(np.int32(((bits >> 23) & 0xFF) | 0x4B000000)) - np.float32(8388608.0 + 127.0)
    m = _bits_f32(np.int32((bits & 0x007FFFFF) | 0x3F800000)) - np.float32(1.0)
    p = np.float32(-0.0064535442) * m + np.float32(0.0360884937)
    p = p * m - np.float32(0.0953293897)
    p = p * m + np.float32(0.1676540711)
    p = p * m - np.float32(0.2407338084)
    p = p * m + np.float32(0.3317990258)
    p = p * m - np.float32(0.4998741238)
    p = p * m + np.float32(0.9999964239)
    v = np.float32(-2.0) * (p * m + e * np.float32(0.6931471805599453))
    return v if v > np.float32(0.0) else np.float32(0.0)


@njit(inline="always")
def _hash32(x):
    """A bijective 32-bit hash with good avalanche (Wellons' lowbias32); 32-bit ops vectorise twice as wide."""
    x = _U32(x ^ (x >> _U32(16)))
    x = _U32(x * _U32(0x7FEB352D))
    x = _U32(x ^ (x >> _U32(15)))
    x = _U32(x * _U32(0x846CA68B))
    return _U32(x ^ (x >> _U32(16)))


@njit(inline="always")
def _stream_key(seed, trial, step):
    """The 64-bit key of one (seed, trial, step) noise vector."""
    k = _mix64(_U64(seed) + _GAMMA)
    k = _mix64(k + _U64(trial) * _M1 + _GAMMA)
    return _mix64(k + _U64(step) * _M2 + _GAMMA)


@njit(inline="always")
def _gauss_pair(k0, k1, p):
    """Two independent standard Gaussians for neuron pair p of the stream with 32-bit keys k0, k1 (Box-Muller).

    a = hash(p * golden ^ k0) and b = hash(a ^ k1) are two 32-bit words; the top 23 bits of a give u1 in (0, 1],
    the top 23 bits of b an angle y in [-pi/4, pi/4), and the low 3 bits of b the quadrant (a swap of cos and sin
    and two signs), so the angle y + q pi/2 is uniform on the circle. The pair is ``rho cos, rho sin`` with
    ``rho = sqrt(-2 log u1)`` (so |xi| <= sqrt(46 log 2) = 5.6).
    """
    a = _hash32(_U32(_U32(_U32(p) * _U32(0x9E3779B9)) ^ k0))
    b = _hash32(_U32(a ^ k1))
    u1 = np.float32(2.0) - _bits_f32(np.int32(_U32(_U32(a >> _U32(9)) | _U32(0x3F800000))))
    y = (_bits_f32(np.int32(_U32(_U32(b >> _U32(9)) | _U32(0x3F800000)))) - np.float32(1.5)) * np.float32(
        1.5707963267948966
    )
    z = y * y
    sn = ((np.float32(-1.9515295891e-4) * z + np.float32(8.3321608736e-3)) * z - np.float32(1.6666654611e-1)) * z
    sn = y + y * sn
    cs = (np.float32(2.443315711809948e-5) * z - np.float32(1.388731625493765e-3)) * z + np.float32(
        4.166664568298827e-2
    )
    cs = np.float32(1.0) - np.float32(0.5) * z + z * z * cs
    rho = _sqrt(_minus_two_log(u1))
    swap = (b & _U32(1)) != 0
    c = sn if swap else cs
    s = cs if swap else sn
    # sign flips by xor-ing bits 1 and 2 of b into the sign bits
    c = _bits_f32(np.int32(_U32(_f32_bits(rho * c)) ^ _U32(_U32(b & _U32(2)) << _U32(30))))
    s = _bits_f32(np.int32(_U32(_f32_bits(rho * s)) ^ _U32(_U32(b & _U32(4)) << _U32(29))))
    return c, s


@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def _fill_noise(seed, trial, step, out):
    """Standard Gaussian xi of one (trial, step) for neurons 0..size-1: out (size,) float32.

    With ``half = size // 2``, neuron p < half takes the cosine and neuron half + p the sine of pair p of
    :func:`_gauss_pair` (an odd last neuron takes the cosine of pair ``half``). Compiled once without
    reassociation, and every caller (the kernels and :func:`fast_noise`) calls this build, so all get bit-identical
    numbers.
    """
    key = _stream_key(seed, trial, step)
    k0 = _U32(key & _U64(0xFFFFFFFF))
    k1 = _U32(key >> _U64(32))
    size = out.shape[0]
    half = size // 2
    _fill_pairs(k0, k1, out[:half], out[half : 2 * half])
    if size > 2 * half:
        c, s = _gauss_pair(k0, k1, half)
        out[size - 1] = c


@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def _fill_pairs(k0, k1, first, second):
    """first[p], second[p] = the pair p of :func:`_gauss_pair` (a separate function: vectorised 1.5x faster than
    when inlined into :func:`_fill_noise`)."""
    for p in range(first.shape[0]):
        c, s = _gauss_pair(k0, k1, p)
        first[p] = c
        second[p] = s


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
    xs (time, size) = x_{t+1} when keep_x. Few passes over the neurons per step: noise, the leak + noise + first
    rank term, the other rank and input terms, and one pass for tanh fused with the next step's dot products
    (rank 1 or 2 with one output; separate dot-product passes otherwise).
    """
    size = h0.shape[0]
    time, inputs = u.shape
    rank = mT.shape[0]
    outputs = woutT.shape[0]
    inv = np.float32(1.0) / np.float32(size)
    leak = np.float32(1.0) - alpha
    x = np.empty(size, np.float32)
    xi = np.empty(size, np.float32)
    fused = outputs == 1 and rank <= 2
    m0 = mT[0]
    n0 = nT[0]
    n1 = nT[rank - 1]
    w0 = woutT[0]
    r0 = rs[0]
    for i in range(size):
        x[i] = h0[i]
        r0[i] = _tanh(h0[i])
    for k in range(rank):
        acc = np.float32(0.0)
        nk = nT[k]
        for i in range(size):
            acc += nk[i] * r0[i]
        kap[0, k] = acc * inv
    for t in range(time):
        c0 = alpha * kap[t, 0]
        if noise_std != 0:
            _fill_noise(seed, trial, t, xi)
            for i in range(size):
                x[i] = leak * x[i] + noise_std * xi[i] + c0 * m0[i]
        else:
            for i in range(size):
                x[i] = leak * x[i] + c0 * m0[i]
        for k in range(1, rank):
            ck = alpha * kap[t, k]
            mk = mT[k]
            for i in range(size):
                x[i] += ck * mk[i]
        for j in range(inputs):
            uj = u[t, j]
            if uj != 0:
                cj = alpha * uj
                wj = winT[j]
                for i in range(size):
                    x[i] += cj * wj[i]
        if keep_x:
            for i in range(size):
                xs[t, i] = x[i]
        rn = rs[t + 1]
        last = t + 1 == time
        if fused:
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            z0 = np.float32(0.0)
            for i in range(size):
                r = _tanh(x[i])
                rn[i] = r
                a0 += n0[i] * r
                a1 += n1[i] * r
                z0 += w0[i] * r
            zs[t, 0] = z0 * scale
            if not last:
                kap[t + 1, 0] = a0 * inv
                if rank == 2:
                    kap[t + 1, 1] = a1 * inv
        else:
            for i in range(size):
                rn[i] = _tanh(x[i])
            if not last:
                for k in range(rank):
                    acc = np.float32(0.0)
                    nk = nT[k]
                    for i in range(size):
                        acc += nk[i] * rn[i]
                    kap[t + 1, k] = acc * inv
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
    one = np.float32(1.0)
    d = np.zeros(size, np.float32)
    back = np.empty(size, np.float32)
    mu = np.empty(rank, np.float32)
    coef = np.float32(2.0 * weight / outputs)
    n0 = nT[0]
    gn0 = gn[0]
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
                        d[i] += g * wo[i] * (one - rn[i] * rn[i])
                else:
                    for i in range(size):
                        d[i] += g * wo[i] * (one - rn[i] * rn[i])
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
            mu[k] = acc * a_inv
        if rank == 1:
            c0 = mu[0]
            for i in range(size):
                ri = r[i]
                gn0[i] += c0 * ri
                d[i] = leak * d[i] + (one - ri * ri) * (c0 * n0[i])
        elif rank == 2:
            c0 = mu[0]
            c1 = mu[1]
            n1 = nT[1]
            gn1 = gn[1]
            for i in range(size):
                ri = r[i]
                gn0[i] += c0 * ri
                gn1[i] += c1 * ri
                d[i] = leak * d[i] + (one - ri * ri) * (c0 * n0[i] + c1 * n1[i])
        else:
            for i in range(size):
                back[i] = np.float32(0.0)
            for k in range(rank):
                c = mu[k]
                nk = nT[k]
                gk = gn[k]
                for i in range(size):
                    gk[i] += c * r[i]
                    back[i] += nk[i] * c
            for i in range(size):
                d[i] = leak * d[i] + (one - r[i] * r[i]) * back[i]
    for i in range(size):
        gh0[i] += d[i]
    return loss


def _fusable(rank: int, inputs: int, outputs: int) -> bool:
    """Whether the fused low-rank kernels handle this shape (else the general ones run)."""
    return rank <= 2 and inputs <= 2 and outputs == 1


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_forward_fused(mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seed, trial, rs, kap, zs, xs, keep_x,
                           xi):
    """:func:`_lowrank_forward` for rank <= 2, inputs <= 2 and one output: per step one noise pass and one pass
    doing the update, tanh and the next step's dot products (missing terms get zero coefficients)."""
    size = h0.shape[0]
    time, inputs = u.shape
    rank = mT.shape[0]
    inv = np.float32(1.0) / np.float32(size)
    leak = np.float32(1.0) - alpha
    zero = np.float32(0.0)
    m0, m1 = mT[0], mT[rank - 1]
    n0, n1 = nT[0], nT[rank - 1]
    w0 = woutT[0]
    v0 = winT[0] if inputs > 0 else m0
    v1 = winT[inputs - 1] if inputs > 1 else m0
    x = np.empty(size, np.float32)
    if noise_std == 0:
        for i in range(size):
            xi[i] = zero
    a0 = zero
    a1 = zero
    for i in range(size):
        x[i] = h0[i]
        r = _tanh(h0[i])
        rs[0, i] = r
        a0 += n0[i] * r
        a1 += n1[i] * r
    for t in range(time):
        c0 = alpha * a0 * inv
        c1 = alpha * a1 * inv if rank == 2 else zero
        kap[t, 0] = a0 * inv
        if rank == 2:
            kap[t, 1] = a1 * inv
        e0 = alpha * u[t, 0] if inputs > 0 else zero
        e1 = alpha * u[t, 1] if inputs > 1 else zero
        if noise_std != 0:
            _fill_noise(seed, trial, t, xi)
        rn = rs[t + 1]
        a0 = zero
        a1 = zero
        z0 = zero
        if rank == 1 and inputs == 1:  # the most common shape (rdm and the like), without the absent terms
            for i in range(size):
                xv = leak * x[i] + noise_std * xi[i] + c0 * m0[i] + e0 * v0[i]
                x[i] = xv
                r = _tanh(xv)
                rn[i] = r
                a0 += n0[i] * r
                z0 += w0[i] * r
        else:
            for i in range(size):
                xv = leak * x[i] + noise_std * xi[i] + (c0 * m0[i] + c1 * m1[i]) + (e0 * v0[i] + e1 * v1[i])
                x[i] = xv
                r = _tanh(xv)
                rn[i] = r
                a0 += n0[i] * r
                a1 += n1[i] * r
                z0 += w0[i] * r
        zs[t, 0] = z0 * scale
        if keep_x:
            for i in range(size):
                xs[t, i] = x[i]


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fused_step(r, a0, a1, d, gb0, gb1, m0, m1, gm0, gm1, gi0, gi1, leak, c0, c1, k0, k1, e0, e1, rank, active):
    """One loop over the neurons of the backward pass (r, a0, a1, d, ...: (size,); the second column only when
    rank == 2):

        d <- leak d + (1 - r^2) (c0 a0 + c1 a1),   gb0 += c0 r,   gb1 += c1 r

    and, when ``active`` >= 0, with the new d: mu = m^T d, gm += k d, gi += e d (``active`` input columns).
    Stepping back through tanh and J is (r_t, n, gn, leak, a_inv mu); adding a scored step's output is
    (r_{t+1}, w_out, gw_out, 1, g) with c1 = 0. One loop per case, so that no store is wasted on an absent input
    (stores bound these loops), in a function of its own (inlined, LLVM vectorised them less well).
    Returns (mu0, mu1)."""
    one = np.float32(1.0)
    mu0 = np.float32(0.0)
    mu1 = np.float32(0.0)
    size = d.shape[0]
    if rank == 1:
        if active < 0:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i])
                d[i] = dd
        elif active == 0:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
        elif active == 1:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                gi0[i] += e0 * dd
        else:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                gi0[i] += e0 * dd
                gi1[i] += e1 * dd
    else:
        if active < 0:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                gb1[i] += c1 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i] + c1 * a1[i])
                d[i] = dd
        elif active == 0:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                gb1[i] += c1 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i] + c1 * a1[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                mu1 += m1[i] * dd
                gm1[i] += k1 * dd
        elif active == 1:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                gb1[i] += c1 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i] + c1 * a1[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                mu1 += m1[i] * dd
                gm1[i] += k1 * dd
                gi0[i] += e0 * dd
        else:
            for i in range(size):
                ri = r[i]
                gb0[i] += c0 * ri
                gb1[i] += c1 * ri
                dd = leak * d[i] + (one - ri * ri) * (c0 * a0[i] + c1 * a1[i])
                d[i] = dd
                mu0 += m0[i] * dd
                gm0[i] += k0 * dd
                mu1 += m1[i] * dd
                gm1[i] += k1 * dd
                gi0[i] += e0 * dd
                gi1[i] += e1 * dd
    return mu0, mu1



@njit(inline="always")
def _input_terms(u, t, want_win, inputs, alpha, gwin, spare):
    """The input-gradient terms of step t with non-zero input, packed first: (count, e0, e1, g0, g1)."""
    zero = np.float32(0.0)
    count = 0
    e0 = zero
    e1 = zero
    g0 = spare
    g1 = spare
    if want_win:
        for j in range(inputs):
            uj = u[t, j]
            if uj != 0:
                if count == 0:
                    e0 = alpha * uj
                    g0 = gwin[j]
                else:
                    e1 = alpha * uj
                    g1 = gwin[j]
                count += 1
    return count, e0, e1, g0, g1


@njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_trial_grad_fused(
    mT, nT, winT, woutT, h0, u, y, mask, weight, alpha, noise_std, scale, seed, trial,
    gm, gn, gwin, gwout, gh0, want_win, want_wout, work_rs, work_kap, work_zs, work_xi, work_d, spare,
):
    """:func:`_lowrank_trial_grad` for rank <= 2, inputs <= 2 and one output, with one loop over the neurons per
    step backward (:func:`_fused_step`): stepping d back through tanh and J also accumulates the previous step's
    m^T d, dm and dW_in when that step is not scored; a scored step takes one more loop, which adds the output's
    gradient and does the same accumulations. work_xi, work_d (size,), spare (2, size): scratch."""
    size = h0.shape[0]
    inputs = u.shape[1]
    rank = mT.shape[0]
    time = _scored_steps(mask)
    if time == 0:
        return 0.0
    u = u[:time]
    rs = work_rs[: time + 1]
    kap = work_kap[:time]
    zs = work_zs[:time]
    _lowrank_forward_fused(mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seed, trial, rs, kap, zs, zs, False,
                           work_xi)
    loss = 0.0
    for t in range(time):
        if mask[t] != 0:
            diff = np.float64(zs[t, 0]) - np.float64(y[t, 0])
            loss += np.float64(mask[t]) * diff * diff
    loss *= weight
    inv = np.float32(1.0) / np.float32(size)
    leak = np.float32(1.0) - alpha
    a_inv = alpha * inv
    one = np.float32(1.0)
    zero = np.float32(0.0)
    m0, m1 = mT[0], mT[rank - 1]
    n0, n1 = nT[0], nT[rank - 1]
    gm0, gm1 = gm[0], gm[rank - 1]
    gn0, gn1 = gn[0], gn[rank - 1]
    w0 = woutT[0]
    gw0 = gwout[0]
    coef = np.float32(2.0 * weight) * scale
    d = work_d
    for i in range(size):
        d[i] = zero
    mu0 = zero
    mu1 = zero
    ready = False  # whether m^T d, dm and dW_in of step t were done by the loop of step t + 1
    for t in range(time - 1, -1, -1):
        if not ready:  # a scored step: add the output's gradient, with m^T d, dm and dW_in in the same loop
            g = coef * mask[t] * (zs[t, 0] - y[t, 0])
            k0 = alpha * kap[t, 0]
            k1 = alpha * kap[t, 1] if rank == 2 else zero
            active, e0, e1, gi0, gi1 = _input_terms(u, t, want_win, inputs, alpha, gwin, spare[0])
            mu0, mu1 = _fused_step(rs[t + 1], w0, w0, d, gw0 if want_wout else spare[0], spare[1], m0, m1, gm0,
                                   gm1, gi0, gi1, one, g, zero, k0, k1, e0, e1, rank, active)
        # d = dL/dx_{t+1} with step t's output included; mu = m^T d
        c0 = a_inv * mu0
        c1 = a_inv * mu1 if rank == 2 else zero
        ready = t > 0 and mask[t - 1] == 0
        if ready:
            k0 = alpha * kap[t - 1, 0]
            k1 = alpha * kap[t - 1, 1] if rank == 2 else zero
            active, e0, e1, gi0, gi1 = _input_terms(u, t - 1, want_win, inputs, alpha, gwin, spare[0])
        else:
            k0 = zero
            k1 = zero
            active, e0, e1, gi0, gi1 = _input_terms(u, t, False, inputs, alpha, gwin, spare[0])
            active = -1
        mu0, mu1 = _fused_step(rs[t], n0, n1, d, gn0, gn1, m0, m1, gm0, gm1, gi0, gi1, leak, c0, c1, k0, k1, e0, e1,
                               rank, active)
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
            alpha[k], noise_std[k], scale[k], seeds[k], b, gm[k, b], gn[k, b], gwin[k, b], gwout[k, b], gh0[k, b],
            want_win, want_wout, work_rs, work_kap, work_zs,
        )


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_grad_items_fused(
    lo, hi, mT, nT, winT, woutT, h0, u, y, mask, weights, alpha, noise_std, scale, seeds, want_win, want_wout,
    gm, gn, gwin, gwout, gh0, losses,
):
    """:func:`_lowrank_grad_items` for the shapes of :func:`_fusable` (a function of its own, so that each is
    compiled only when used)."""
    trials = weights.shape[1]
    time, size, rank, outputs = u.shape[2], h0.shape[1], mT.shape[1], woutT.shape[1]
    work_rs = np.empty((time + 1, size), np.float32)
    work_kap = np.empty((time, rank), np.float32)
    work_zs = np.empty((time, outputs), np.float32)
    work_xi = np.empty(size, np.float32)
    work_d = np.empty(size, np.float32)
    spare = np.zeros((2, size), np.float32)
    for item in range(lo, hi):
        k = item // trials
        b = item - k * trials
        losses[k, b] = _lowrank_trial_grad_fused(
            mT[k], nT[k], winT[k], woutT[k], h0[k], u[k, b], y[k, b], mask[k, b], weights[k, b],
            alpha[k], noise_std[k], scale[k], seeds[k], b, gm[k, b], gn[k, b], gwin[k, b], gwout[k, b], gh0[k, b],
            want_win, want_wout, work_rs, work_kap, work_zs, work_xi, work_d, spare,
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


@njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _lowrank_sim_items_fused(lo, hi, mT, nT, winT, woutT, h0, u, alpha, noise_std, scale, seeds, zs, xs, keep_x):
    """:func:`_lowrank_sim_items` for the shapes of :func:`_fusable`."""
    trials = zs.shape[1]
    time, size = u.shape[2], h0.shape[1]
    rank = mT.shape[1]
    rs = np.empty((time + 1, size), np.float32)
    kap = np.empty((time, rank), np.float32)
    xi = np.empty(size, np.float32)
    for item in range(lo, hi):
        k = item // trials
        b = item - k * trials
        _lowrank_forward_fused(
            mT[k], nT[k], winT[k], woutT[k], h0[k], u[k, b], alpha[k], noise_std[k], scale[k], seeds[k], b,
            rs, kap, zs[k, b], xs[k, b], keep_x, xi,
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


def _threads() -> int:
    """Threads for the kernels: numba's setting when the caller chose one (``numba.set_num_threads`` or the
    ``NUMBA_NUM_THREADS`` variable); by default the cores not busy with other work when the kernels first run in
    this process, ``cores + 1.5 - load`` rounded down by the one-minute load average (which counts this process's
    own thread: on a shared machine a second thread that has to share a core slows a run down)."""
    torch_threads = torch.get_num_threads()
    threads = numba.get_num_threads()  # the first call starts numba's OpenMP layer, which resets torch's thread count
    if torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)  # leave the caller's torch setting as it was
    if threads <= 1 or "NUMBA_NUM_THREADS" in os.environ or threads != numba.config.NUMBA_DEFAULT_NUM_THREADS:
        return threads
    return _default_threads(threads, os.getpid())


@functools.cache
def _default_threads(cores: int, pid: int) -> int:
    """The default of :func:`_threads`, decided once per process (the load average lags by a minute and counts
    the kernels' own threads, so deciding again would oscillate)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return cores
    return max(1, min(cores, int(cores + 1.5 - load)))


def _run_items(kernel, items: int, *args) -> None:
    """Run ``kernel(lo, hi, *args)`` over items 0..items-1 split into :func:`_threads` contiguous ranges.

    Each item writes only its own outputs, so the result does not depend on the split. (Plain threads around
    GIL-free kernels instead of ``prange``: a cold compile of all kernels took 26 s instead of 63 s.)
    """
    workers = min(_threads(), items)
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


def fast_loss_and_grads_ensemble(
    params: Mapping[str, torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    seeds: Sequence[int],
    alpha: float | Sequence[float] = 0.2,
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


def fast_loss_and_grad(model, inputs, targets, mask, *, seed: int) -> float:
    """The loss of :func:`fast_loss` as a float, with the gradient of every parameter of ``model`` that requires
    grad written to its ``.grad`` (replacing it), without building an autograd graph: the trainer's hot path.

    inputs: (trials, time, inputs); targets: (trials, time, outputs); mask: (trials, time) arrays or tensors.
    """
    from rnnscope.models._rate import LowRankRNN

    if not fast_path_supported(model):
        raise RnnscopeError(f"model: the fast path needs a LowRankRNN or FullRankRNN with float32 CPU parameters, got {type(model).__name__}")
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



class _TrainStep:
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
        self.want_win, self.want_wout = self.tensors[-3].requires_grad, self.tensors[-2].requires_grad

    def __call__(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray, seed: int) -> float:
        """inputs (trials, time, inputs), targets (trials, time, outputs), mask (trials, time): contiguous float32
        arrays. Returns the loss and writes the gradients to ``.grad``."""
        trials = inputs.shape[0]
        counts = mask.sum(axis=1, dtype=np.float64)
        weights = np.where(counts != 0, 1.0 / (trials * np.where(counts != 0, counts, 1.0)), 0.0)[None]
        spec = _Spec(kind=self.kind, alpha=self.alpha, noise_std=self.noise_std, scale=self.scale,
                     seeds=_seed_array([seed], 1))
        arrays = self.arrays if self.views else [_as_np(t, "params")[None] for t in self.tensors]
        losses, grads = _loss_grads(spec, arrays, inputs[None], targets[None], mask[None], weights,
                                    self.want_win, self.want_wout)
        for tensor, grad in zip(self.tensors, grads, strict=True):
            if tensor.requires_grad:
                tensor.grad = torch.from_numpy(grad[0])
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
