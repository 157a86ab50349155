"""Float32 arithmetic that vectorises, shared by the fused kernels: bit casts, sqrt, tanh, and the last scored
step of a mask. Plain arithmetic, so LLVM turns the neuron loops into SIMD code."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_FASTMATH = {"reassoc", "contract", "nsz"}  # reassociation lets reductions vectorise; order stays fixed per build
_CHUNK = 8  # trials per thread in the full-rank kernel (fixed, so reductions do not depend on the thread count)


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
def _scored_steps(mask):
    """1 + the last step with a non-zero mask (0 if none): mask (time,)."""
    for t in range(mask.shape[0] - 1, -1, -1):
        if mask[t] != 0:
            return t + 1
    return 0
