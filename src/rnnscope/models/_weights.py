"""Plain NumPy snapshots of a rate network's weights: what every analysis reads.

The dynamics, shared by every rate network in rnnscope (Euler step ``alpha = dt / tau``)::

    x[t+1] = x[t] + noise_std * xi[t] + alpha * (-x[t] + J tanh(x[t]) + W_in u[t])
    z[t]   = tanh(x[t+1]) @ w_out / size      (low-rank)
    z[t]   = tanh(x[t+1]) @ w_out             (full-rank)

with ``J = m n^T / size`` for a low-rank network. All weights are stored with neurons on axis 0,
so each neuron is one row of loadings: ``m, n (size, rank)``, ``w_in (size, inputs)``,
``w_out (size, outputs)``, ``h0 (size,)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rnnscope._validation import check_array, check_int, check_nonnegative, check_positive, check_probability
from rnnscope.errors import RnnscopeError

DEFAULT_ALPHA = 0.2  # the Euler step dt / tau (20 ms / 100 ms); re-exported as rnnscope.models.DEFAULT_ALPHA

__all__ = ["LowRankWeights", "FullRankWeights", "RateWeights", "LowRankBatch", "stack_weights"]


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


def _check_common(weights: LowRankWeights | FullRankWeights, size: int) -> None:
    w_in = check_array(weights.w_in, "w_in", ndim=2)
    w_out = check_array(weights.w_out, "w_out", ndim=2)
    h0 = check_array(weights.h0, "h0", ndim=1)
    for name, array in (("w_in", w_in), ("w_out", w_out), ("h0", h0)):
        if array.shape[0] != size:
            raise RnnscopeError(f"{name}: expected {size} neurons on axis 0, got shape {array.shape}")
    object.__setattr__(weights, "w_in", _frozen(w_in))
    object.__setattr__(weights, "w_out", _frozen(w_out))
    object.__setattr__(weights, "h0", _frozen(h0))
    check_nonnegative(weights.noise_std, "noise_std")
    alpha = check_positive(weights.alpha, "alpha")
    if alpha > 1:
        raise RnnscopeError(f"alpha: must be in (0, 1], got {alpha}")


class _Shapes:
    """Sizes read from the trailing axes of the weights, shared by single networks and stacks of networks."""

    w_in: np.ndarray
    w_out: np.ndarray

    @property
    def size(self) -> int:
        return int(self.w_in.shape[-2])

    @property
    def inputs(self) -> int:
        return int(self.w_in.shape[-1])

    @property
    def outputs(self) -> int:
        return int(self.w_out.shape[-1])


@dataclass(frozen=True, eq=False)
class LowRankWeights(_Shapes):
    """A low-rank network ``J = m n^T / size``.

    m, n: (size, rank); w_in: (size, inputs); w_out: (size, outputs); h0: (size,).
    The readout divides by ``size``: ``z = tanh(x) @ w_out / size``.
    """

    m: np.ndarray
    n: np.ndarray
    w_in: np.ndarray
    w_out: np.ndarray
    h0: np.ndarray
    noise_std: float = 0.05
    alpha: float = DEFAULT_ALPHA
    readout_scale: float = field(init=False)

    def __post_init__(self) -> None:
        m = check_array(self.m, "m", ndim=2)
        n = check_array(self.n, "n", ndim=2)
        if m.shape != n.shape:
            raise RnnscopeError(f"n: expected the shape of m {m.shape}, got {n.shape}")
        if m.shape[1] > m.shape[0]:
            raise RnnscopeError(f"rank: must be <= size {m.shape[0]}, got {m.shape[1]}")
        object.__setattr__(self, "m", _frozen(m))
        object.__setattr__(self, "n", _frozen(n))
        _check_common(self, m.shape[0])
        object.__setattr__(self, "readout_scale", 1.0 / m.shape[0])

    @property
    def rank(self) -> int:
        return int(self.m.shape[-1])

    def connectivity(self) -> np.ndarray:
        """J: (size, size). Built on demand only; the simulation never needs it."""
        return self.m @ self.n.T / self.size

    def recurrent(self, rates: np.ndarray) -> np.ndarray:
        """J r for rates (..., size) -> (..., size), without forming J."""
        return (rates @ self.n) @ self.m.T / self.size


@dataclass(frozen=True, eq=False)
class FullRankWeights(_Shapes):
    """A full-rank network.

    J: (size, size), row i holds the weights onto neuron i; w_in: (size, inputs); w_out: (size, outputs);
    h0: (size,). The readout does not divide by ``size``: ``z = tanh(x) @ w_out``.
    """

    J: np.ndarray
    w_in: np.ndarray
    w_out: np.ndarray
    h0: np.ndarray
    noise_std: float = 0.05
    alpha: float = DEFAULT_ALPHA
    readout_scale: float = field(init=False, default=1.0)

    def __post_init__(self) -> None:
        J = check_array(self.J, "J", ndim=2)
        if J.shape[0] != J.shape[1]:
            raise RnnscopeError(f"J: expected a square matrix, got shape {J.shape}")
        object.__setattr__(self, "J", _frozen(J))
        _check_common(self, J.shape[0])


    def connectivity(self) -> np.ndarray:
        """J: (size, size)."""
        return self.J

    def recurrent(self, rates: np.ndarray) -> np.ndarray:
        """J r for rates (..., size) -> (..., size)."""
        return rates @ self.J.T


RateWeights = LowRankWeights | FullRankWeights


@dataclass(frozen=True, eq=False)
class LowRankBatch(_Shapes):
    """Many low-rank networks of one size, stacked on a leading axis (for one batched simulation).

    m, n: (networks, size, rank); w_in: (networks, size, inputs); w_out: (networks, size, outputs);
    h0: (networks, size). Readout and recurrence divide by ``size`` as in LowRankWeights.
    """

    m: np.ndarray
    n: np.ndarray
    w_in: np.ndarray
    w_out: np.ndarray
    h0: np.ndarray
    noise_std: float = 0.05
    alpha: float = DEFAULT_ALPHA

    def __post_init__(self) -> None:
        m = check_array(self.m, "m", ndim=3)
        networks, size, rank = m.shape
        check_array(self.n, "n", shape=(networks, size, rank))
        check_array(self.w_in, "w_in", shape=(networks, size, None))
        check_array(self.w_out, "w_out", shape=(networks, size, None))
        check_array(self.h0, "h0", shape=(networks, size))
        check_nonnegative(self.noise_std, "noise_std")
        check_probability(self.alpha, "alpha")

    @property
    def networks(self) -> int:
        return int(self.m.shape[0])

    @property
    def rank(self) -> int:
        return int(self.m.shape[-1])

    def arrays(self) -> dict[str, np.ndarray]:
        """{m, n, w_in, w_out, h0}: the stacked arrays, as the fused kernels take them."""
        return {"m": self.m, "n": self.n, "w_in": self.w_in, "w_out": self.w_out, "h0": self.h0}

    def network(self, index: int) -> LowRankWeights:
        """Network ``index`` as LowRankWeights."""
        index = check_int(index, "index", minimum=0, maximum=self.networks - 1)
        return LowRankWeights(
            m=self.m[index], n=self.n[index], w_in=self.w_in[index], w_out=self.w_out[index], h0=self.h0[index],
            noise_std=self.noise_std, alpha=self.alpha,
        )


def stack_weights(weights: Sequence[LowRankWeights]) -> LowRankBatch:
    """Stack networks of the same size, rank, inputs, outputs and dynamics into a LowRankBatch."""
    if len(weights) == 0:
        raise RnnscopeError("weights: need at least one network")
    first = weights[0]
    for i, w in enumerate(weights):
        if not isinstance(w, LowRankWeights):
            raise RnnscopeError(f"weights[{i}]: expected LowRankWeights, got {type(w).__name__}")
        shapes = (w.m.shape, w.w_in.shape, w.w_out.shape, w.noise_std, w.alpha)
        if shapes != (first.m.shape, first.w_in.shape, first.w_out.shape, first.noise_std, first.alpha):
            raise RnnscopeError(
                f"weights[{i}]: shapes/dynamics {shapes} differ from weights[0] "
                f"{(first.m.shape, first.w_in.shape, first.w_out.shape, first.noise_std, first.alpha)}"
            )
    return LowRankBatch(
        m=np.stack([w.m for w in weights]), n=np.stack([w.n for w in weights]),
        w_in=np.stack([w.w_in for w in weights]), w_out=np.stack([w.w_out for w in weights]),
        h0=np.stack([w.h0 for w in weights]), noise_std=first.noise_std, alpha=first.alpha,
    )
