"""Small private constructors of low-rank networks with prescribed loading statistics, for the tests."""

from __future__ import annotations

import numpy as np

from rnnscope.models import LowRankWeights


def network(m: np.ndarray, n: np.ndarray, w_in: np.ndarray | None = None) -> LowRankWeights:
    size = len(m)
    w_in = np.zeros((size, 1)) if w_in is None else w_in
    return LowRankWeights(m=m, n=n, w_in=w_in, w_out=np.ones((size, 1)), h0=np.zeros(size))


def gaussian_network(sigma, size: int, *, rng: np.random.Generator, noise: float = 1.0) -> LowRankWeights:
    """m ~ N(0, I); n_i = sum_j sigma_ij m_j + noise, so that <n_i m_j> = sigma_ij."""
    sigma = np.atleast_2d(np.asarray(sigma, dtype=float))
    m = rng.standard_normal((size, len(sigma)))
    n = m @ sigma.T + noise * rng.standard_normal((size, len(sigma)))
    return network(m, n)


def bimodal_network(s: float, size: int, *, rng: np.random.Generator, noise: float = 0.5):
    """m_r = sqrt(s) z_r + x, n_r = sqrt(s) z_r + x', z_r = +-1: (network, population labels 0..3)."""
    z = rng.choice([-1.0, 1.0], size=(size, 2))
    m = np.sqrt(s) * z + noise * rng.standard_normal((size, 2))
    n = np.sqrt(s) * z + noise * rng.standard_normal((size, 2))
    return network(m, n), (2 * (z[:, 0] > 0) + (z[:, 1] > 0)).astype(int)


def two_population_network(size: int, *, rng: np.random.Generator, drive: float = 10.0):
    """Two equal populations with overlaps [[4, 3], [+1, 2]] and [[4, 3], [-1, 2]] (s21 = +1 / -1), and one input
    that reaches population 0 only (w_in = drive there): (network, population labels)."""
    half = size // 2
    m = rng.standard_normal((size, 2))
    first, second = np.array([[4.0, 3.0], [1.0, 2.0]]), np.array([[4.0, 3.0], [-1.0, 2.0]])
    n = np.concatenate([m[:half] @ first.T, m[half:] @ second.T]) + rng.standard_normal((size, 2))
    w_in = np.zeros((size, 1))
    w_in[:half] = drive
    return network(m, n, w_in), np.r_[np.zeros(half, int), np.ones(size - half, int)]


def simulate_network(weights: LowRankWeights, x0: np.ndarray, inputs: np.ndarray, steps: int) -> np.ndarray:
    """Plain noise-free Euler simulation of the full network: x0 (trials, size), inputs (inputs,) constant.
    Returns the final states (trials, size)."""
    J = weights.m @ weights.n.T / weights.size
    x = x0.copy()
    for _ in range(steps):
        x = x + weights.alpha * (-x + np.tanh(x) @ J.T + weights.w_in @ inputs)
    return x
