"""Structured starts for the state-space fixed-point finder: where to look for saddles once attractors are known.

- :func:`edge_states`: edge tracking between pairs of attractors (Skufca, Yorke & Eckhardt, PRL 96, 174101, 2006).
  The segment between two stable points is bisected for the boundary of the first one's basin; the two states that
  bracket the boundary are iterated together (a basin is invariant, so they keep bracketing it) and re-bisected.
  The tracked trajectory stays on the boundary and slides to the edge state, for two neighbouring attractors the
  saddle with one unstable mode between them; the state of least speed ``|F(h) - h|`` met on the way is returned,
  to be polished by Levenberg-Marquardt.
- :func:`_structured_starts`: midpoints of pairs and centroids of groups of stable points (saddles with more
  unstable modes sit near centroids of the attractors they separate).
- :func:`unstable_directions`, :func:`follow_unstable_modes`: where the unstable manifold of a saddle leads.

Maps here are called as ``fmap(h)``: ``h (rows, state)`` float64 tensor -> ``(rows, state)`` (the finder's ``_Map``
at its constant input).
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import torch

__all__ = ["edge_states", "unstable_directions", "follow_unstable_modes"]

_DTYPE = torch.float64


def edge_states(
    fmap,
    stable: np.ndarray,
    pairs: np.ndarray,
    lower: torch.Tensor,
    upper: torch.Tensor,
    *,
    steps: int = 400,
    levels: int = 7,
    grid: int = 7,
    rounds: int = 3,
) -> np.ndarray:
    """Edge tracking between pairs of stable points; returns (pairs, state), per pair the state of least speed met.

    stable: (points, state) stable fixed points; pairs: (pairs, 2) int indices into ``stable``; lower, upper:
    (state,) box tensors. A state is in the basin of ``stable[i]`` when, after ``steps`` iterations of F, ``stable[i]``
    is the nearest stable point. Each round: ``levels`` refinements of the bracket, each testing ``grid`` points
    between its ends (the bracket shrinks by ``grid + 1`` per level), then the midpoint and both ends are iterated
    up to ``steps`` times; the ends are carried to the step where the midpoint was slowest.
    """
    stable_t = torch.as_tensor(stable, dtype=_DTYPE)
    pairs = np.asarray(pairs, int).reshape(-1, 2)
    rows, size = len(pairs), stable.shape[1]
    if rows == 0:
        return np.zeros((0, size))
    own = torch.as_tensor(pairs[:, 0])
    left, right = stable_t[pairs[:, 0]].clone(), stable_t[pairs[:, 1]].clone()
    best = 0.5 * (left + right)
    best_speed = torch.full((rows,), float("inf"), dtype=_DTYPE)
    fractions = torch.arange(1, grid + 1, dtype=_DTYPE) / (grid + 1)
    every = torch.arange(rows)

    def basin(h: torch.Tensor) -> torch.Tensor:
        for _ in range(steps):
            h = torch.clamp(fmap(h), lower, upper)
        return torch.argmin(torch.cdist(h, stable_t), dim=1)

    with torch.no_grad():
        for _ in range(rounds):
            for _ in range(levels):
                points = left[:, None] + fractions[None, :, None] * (right - left)[:, None]  # (rows, grid, state)
                inside = basin(points.reshape(-1, size)).reshape(rows, grid) == own[:, None]
                flags = torch.cat(
                    [torch.ones(rows, 1, dtype=torch.bool), inside, torch.zeros(rows, 1, dtype=torch.bool)], 1
                )
                first_out = torch.argmax((~flags).to(torch.int8), dim=1)  # >= 1: flags[:, 0] is True
                ladder = torch.cat([left[:, None], points, right[:, None]], dim=1)
                left, right = ladder[every, first_out - 1], ladder[every, first_out]
            h = 0.5 * (left + right)
            slowest = torch.zeros(rows, dtype=torch.long)
            round_speed = torch.full((rows,), float("inf"), dtype=_DTYPE)
            for k in range(steps):
                following = torch.clamp(fmap(h), lower, upper)
                speed = torch.linalg.vector_norm(following - h, dim=1)
                slower = speed < round_speed
                round_speed[slower], slowest[slower] = speed[slower], k
                better = speed < best_speed
                best[better], best_speed[better] = h[better], speed[better]
                h = following
            for k in range(int(slowest.max())):  # carry the bracket to where the midpoint was slowest
                go = slowest > k
                left[go] = torch.clamp(fmap(left[go]), lower, upper)
                right[go] = torch.clamp(fmap(right[go]), lower, upper)
    return best.numpy()


def _structured_starts(stable: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Midpoints of every pair of stable points, centroids of groups of 3 and 4 and of all of them; at most
    ``limit`` rows (pairs first, then a random sample of the groups)."""
    k = len(stable)
    if k < 2 or limit == 0:
        return np.zeros((0, stable.shape[1]))
    rows = [stable.mean(axis=0)]
    pairs = list(itertools.combinations(range(k), 2))
    if len(pairs) > limit - 1:
        pairs = [pairs[i] for i in rng.choice(len(pairs), size=limit - 1, replace=False)]
    rows += [stable[list(p)].mean(axis=0) for p in pairs]
    groups: list[tuple[int, ...]] = []
    for m in (3, 4):
        if m < k:
            groups += list(itertools.combinations(range(k), m)) if comb(k, m) <= 4 * limit else []
    room = limit - len(rows)
    if room > 0 and groups:
        chosen = rng.choice(len(groups), size=min(room, len(groups)), replace=False)
        rows += [stable[list(groups[i])].mean(axis=0) for i in np.sort(chosen)]
    elif room > 0 and k > 4:  # too many groups to list: random ones
        for _ in range(room):
            m = int(rng.integers(3, 5))
            rows.append(stable[rng.choice(k, size=m, replace=False)].mean(axis=0))
    return np.asarray(rows)


def unstable_directions(
    jacobian: np.ndarray, *, max_modes: int = 6, directions: int = 64, rng: np.random.Generator
) -> np.ndarray:
    """Unit directions into the unstable manifold of a fixed point: (directions, state).

    jacobian: (state, state), ``dF/dh`` there. The unstable eigenspace (``|lambda| > 1``; a complex pair gives
    its real and imaginary parts) gets an orthonormal basis ``v_1..v_k``; the directions are every sign
    combination ``sum_i +-v_i / sqrt(k)`` (``2^k``: ``+-v`` for one mode) when ``k <= max_modes``, else
    ``directions`` random unit combinations. Combinations are generic points of the unstable manifold; a single
    mode of a higher saddle can lie, by symmetry, in the stable manifold of another saddle. (0, state) when k = 0.
    """
    values, vectors = np.linalg.eig(jacobian)
    picked = np.abs(values) > 1.0
    if not np.any(picked):
        return np.zeros((0, jacobian.shape[0]))
    columns = []
    for value, vector in zip(values[picked], vectors[:, picked].T, strict=True):
        if abs(value.imag) > 1e-12 * max(abs(value), 1.0):
            if value.imag > 0:
                columns += [vector.real, vector.imag]
        else:
            columns.append(vector.real)
    basis, _ = np.linalg.qr(np.stack(columns, axis=1))
    k = basis.shape[1]
    if k <= max_modes:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=k)))
    else:
        signs = rng.standard_normal((directions, k))
    out = signs @ basis.T
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def follow_unstable_modes(
    fmap,
    points,
    lower,
    upper,
    *,
    rng: np.random.Generator,
    displacement: float = 1e-3,
    steps: int = 400,
    max_modes: int = 6,
    directions: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Iterate F from each unstable point displaced along :func:`unstable_directions`.

    fmap: a ``_Map``; points: the unstable points. Returns owner (probes,) int, the index in ``points`` of each
    probe, and ends (probes, state), where each probe is after ``steps`` iterations (clipped to the box).
    """
    owner, begin = [], []
    for i in range(len(points)):
        dirs = unstable_directions(points.jacobians[i], max_modes=max_modes, directions=directions, rng=rng)
        owner += [i] * len(dirs)
        begin.append(points.states[i] + displacement * (1.0 + np.linalg.norm(points.states[i])) * dirs)
    if not owner:
        return np.zeros(0, int), np.zeros((0, points.size))
    h = torch.clamp(torch.as_tensor(np.concatenate(begin), dtype=_DTYPE), lower, upper)
    with torch.no_grad():
        for _ in range(steps):
            h = torch.clamp(fmap(h), lower, upper)
    return np.asarray(owner, int), h.numpy()
