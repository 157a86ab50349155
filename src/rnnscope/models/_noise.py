"""Counter-based Gaussian noise for the fused kernels: xi[trial, step, neuron] is a pure function of
(seed, trial, step, neuron), so results do not depend on threads or batch shapes, and :func:`fast_noise` (in
``_fast``) returns the very xi a kernel used.

Per (seed, trial, step) a 64-bit key (splitmix64); per neuron pair two 32-bit hashes (32-bit integer ops vectorise
twice as wide as 64-bit ones) feed Box-Muller with a polynomial -2 log u, the quadrant taken from hash bits, and
sin / cos polynomials on [-pi/4, pi/4].
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rnnscope.models._numerics import _bits_f32, _f32_bits, _sqrt

_U64 = np.uint64
_U32 = np.uint32
_GAMMA = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_S30, _S27, _S31 = _U64(30), _U64(27), _U64(31)


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
def _noise_items(lo, hi, seed, first, out):
    """xi of items lo..hi-1 of out (trials, time, size), item = trial * time + step; out[b] is trial first + b."""
    time = out.shape[1]
    for item in range(lo, hi):
        b = item // time
        t = item - b * time
        _fill_noise(seed, first + b, t, out[b, t])
