"""Certified fixed points of any recurrent network in its full state space (discrete-time maps).

The network is given only as a **map** ``F(h, u) -> h_next``: a torch callable on batches, ``h: (rows, state)``
float64 and ``u: (rows, inputs)`` float64 (a constant input is broadcast to every row before the call), returning
``(rows, state)``. Rows must not interact (row ``b`` of the output depends only on row ``b`` of ``h`` and ``u``);
every torch recurrent cell stepped on a batch satisfies this (``F(h, u) = cell(u, h)``). The map must compute in
float64 (for a torch module, a ``copy.deepcopy(module).double()``): certification is done in float64. The map is
never modified; gradients are taken with ``torch.autograd.grad`` with respect to the states only, so no parameter
``.grad`` is touched. The reachable **box** ``lower <= h <= upper`` (``(state,)`` arrays, ``inf`` where unbounded,
or ``None``) is where the network's states can be: ``[-1, 1]`` for tanh units and GRU states, ``h`` of an LSTM
(whose state is ``[h, c]``; ``c`` unbounded).

Algorithm (:func:`find_state_fixed_points`): starts are states sampled from trajectories plus Gaussian noise, all
optimised as one batch by Levenberg-Marquardt on the residual ``r = F(h) - h`` with ``J = dF/dh - I`` from
autograd, a trust region (each step's length is capped, the cap adapts per start) and the state projected back
into the box after every step (outside it, saturated gates make ``q`` flat and give false points). Adam on
``q = |F(h) - h|^2 / 2`` is an optional warm start. Then structured starts, midpoints of pairs and centroids of
groups of the stable points found, locate the saddles between attractors. Every point reported as fixed is
**certified**: in float64 its Newton distance ``|J^+ r|`` is below ``tol (1 + |h|)`` (default ``tol = 1e-8``) and it
lies in the box. Starts that end elsewhere are kept: ``stationary`` (the search stopped: a slow point, a local
minimum of ``q`` or a point pinned on the box) or ``moving`` (still descending when ``max_iter`` ran out).

Classes use the eigenvalues (multipliers) of ``dF/dh``: ``stable`` (every ``|lambda| < 1``), ``saddle`` (some above
1, some below; ``unstable`` counts those above) and ``source`` (every ``|lambda| > 1``).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rnnscope._validation import as_generator, check_array, check_int, check_nonnegative, check_positive
from rnnscope.analysis._state_points import _KINDS, StateFixedPointResult, StateFixedPoints
from rnnscope.analysis._state_starts import (
    _structured_starts,
    edge_states,
    follow_unstable_modes,
    unstable_directions,
)
from rnnscope.errors import ConvergenceWarning, RnnscopeError

__all__ = [
    "StateMap",
    "StateFixedPoints",
    "StateFixedPointResult",
    "find_state_fixed_points",
    "certify_fixed_points",
    "map_jacobians",
    "unstable_directions",
    "follow_unstable_modes",
]

StateMap = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_DTYPE = torch.float64


# ----------------------------------------------------------------------------------------------- map calls


class _Map:
    """The user's map at one constant input, float64, with checked output."""

    def __init__(self, fn: StateMap, inputs: torch.Tensor, state: int, chunk_rows: int) -> None:
        if not callable(fn):
            raise RnnscopeError(f"map: expected a callable F(h, u) -> h_next, got {type(fn).__name__}")
        self.fn, self.inputs, self.state, self.chunk_rows = fn, inputs, state, chunk_rows

    def __call__(self, h: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """F(h, u): h (rows, state); u (rows, inputs), default the constant input on every row."""
        out = self.fn(h, self.inputs.expand(h.shape[0], -1) if u is None else u)
        if not isinstance(out, torch.Tensor) or out.shape != h.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise RnnscopeError(f"map: F(h, u) must return a tensor of shape {tuple(h.shape)}, got {shape}")
        if out.dtype != _DTYPE:
            raise RnnscopeError(f"map: F(h, u) must compute in float64 (e.g. module.double()), got {out.dtype}")
        return out

    def residual(self, h: torch.Tensor) -> torch.Tensor:
        """r = F(h) - h: (rows, state)."""
        with torch.no_grad():
            return self(h) - h

    def residual_and_jacobian(
        self, h: torch.Tensor, u: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """r = F(h, u) - h (rows, state) and dF/dh (rows, state, state), one backward pass per chunk of rows;
        u: (rows, inputs), default the constant input.

        Each row is copied ``state`` times; the backward pass of ``sum_k F_k(copy k)`` gives row k of the
        Jacobian in copy k (rows do not interact)."""
        rows, state = h.shape
        per_chunk = max(1, self.chunk_rows // state)
        residuals, jacobians = [], []
        for lo in range(0, rows, per_chunk):
            block = h[lo : lo + per_chunk]
            n = block.shape[0]
            copies = block.detach().unsqueeze(0).expand(state, n, state).reshape(state * n, state).clone()
            copies.requires_grad_(True)
            u_copies = None
            if u is not None:
                u_block = u[lo : lo + per_chunk]
                u_copies = u_block.unsqueeze(0).expand(state, n, u_block.shape[1]).reshape(state * n, -1)
            with torch.enable_grad():
                out = self(copies, u_copies).reshape(state, n, state)
                selected = torch.diagonal(out, dim1=0, dim2=2)  # (n, state): [b, k] = F_k(copy k of row b)
                (grad,) = torch.autograd.grad(selected.sum(), copies)
            jacobians.append(grad.reshape(state, n, state).permute(1, 0, 2).detach())
            residuals.append(out[0].detach() - block)
        return torch.cat(residuals), torch.cat(jacobians)


def _newton_distance(r: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    """|J^+ r| with J = dF/dh - I: r (rows, state), jacobian (rows, state, state) -> (rows,)."""
    if r.shape[0] == 0:
        return r.new_zeros(0)
    eye = torch.eye(r.shape[1], dtype=r.dtype)
    pinv = torch.linalg.pinv(jacobian - eye, rtol=1e-13)
    return torch.linalg.vector_norm(torch.einsum("bij,bj->bi", pinv, r), dim=1)


def _box_tensors(lower: np.ndarray, upper: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(lower, dtype=_DTYPE), torch.as_tensor(upper, dtype=_DTYPE)


# ----------------------------------------------------------------------------------------------- optimisers


def _adam(fmap: _Map, h: torch.Tensor, lower, upper, *, steps: int, lr: float) -> torch.Tensor:
    """Adam on q = |F(h) - h|^2 / 2 summed over starts, clipped to the box after every step."""
    h = h.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([h], lr=lr)
    for _ in range(steps):
        with torch.enable_grad():
            loss = 0.5 * torch.sum((fmap(h) - h) ** 2)
            (grad,) = torch.autograd.grad(loss, h)
        h.grad = grad
        optimizer.step()
        with torch.no_grad():
            h.copy_(torch.clamp(h, lower, upper))
    return h.detach()


@dataclass
class _Search:
    endpoints: torch.Tensor  # (starts, state)
    done: torch.Tensor  # (starts,) bool: the Newton distance fell below tol during the search
    stuck: torch.Tensor  # (starts,) bool: the search stopped (no acceptable step)
    moving: torch.Tensor  # (starts,) bool: still descending at max_iter
    iterations: torch.Tensor  # (starts,) int


def _levenberg_marquardt(
    fmap: _Map, h: torch.Tensor, lower, upper, *, tol: float, max_iter: int, max_step: float, window: int = 20
) -> _Search:
    """Batched LM with a per-start trust radius (step length <= radius <= max_step), projected onto the box."""
    h = torch.clamp(h.clone(), lower, upper)
    rows, state = h.shape
    eye = torch.eye(state, dtype=_DTYPE)
    r, jac = fmap.residual_and_jacobian(h)
    jac = jac - eye
    q = 0.5 * torch.sum(r**2, dim=1)
    scale = torch.sum(jac**2, dim=(1, 2)) / state + 1e-300
    mu = 1e-3 * scale
    radius = torch.full((rows,), float(max_step), dtype=_DTYPE)
    done = torch.zeros(rows, dtype=torch.bool)
    stuck = torch.zeros(rows, dtype=torch.bool)
    iterations = torch.zeros(rows, dtype=torch.long)
    snapshot_h, snapshot_q = h.clone(), q.clone()

    def check_done(idx: torch.Tensor) -> None:
        norm = 1.0 + torch.linalg.vector_norm(h[idx], dim=1)
        near = torch.linalg.vector_norm(r[idx], dim=1) < 100.0 * tol * norm
        cand = idx[near]
        if len(cand):
            distance = _newton_distance(r[cand], jac[cand] + eye)
            done[cand[distance < tol * norm[near]]] = True

    check_done(torch.arange(rows))
    for it in range(max_iter):
        if it == max_iter - window:
            snapshot_h, snapshot_q = h.clone(), q.clone()
        idx = torch.nonzero(~(done | stuck)).flatten()
        if len(idx) == 0:
            break
        iterations[idx] += 1
        J, res = jac[idx], r[idx]
        JT = J.transpose(1, 2)
        lhs = JT @ J + mu[idx, None, None] * eye
        step = -torch.linalg.solve(lhs, torch.einsum("bij,bj->bi", JT, res))
        length = torch.linalg.vector_norm(step, dim=1)
        step = step * torch.clamp(radius[idx] / torch.clamp(length, min=1e-300), max=1.0)[:, None]
        trial = torch.clamp(h[idx] + step, lower, upper)
        r_trial = fmap.residual(trial)
        q_trial = 0.5 * torch.sum(r_trial**2, dim=1)
        # the undamped Gauss-Newton step too, kept where it does better: near an attractor with a multiplier close
        # to 1, J is nearly singular and the damping would shrink the step along the slow direction to a crawl
        newton = -torch.linalg.lstsq(J, res.unsqueeze(-1)).solution.squeeze(-1)
        length = torch.linalg.vector_norm(newton, dim=1)
        newton = newton * torch.clamp(radius[idx] / torch.clamp(length, min=1e-300), max=1.0)[:, None]
        trial_newton = torch.clamp(h[idx] + newton, lower, upper)
        r_newton = fmap.residual(trial_newton)
        q_newton = 0.5 * torch.sum(r_newton**2, dim=1)
        take = torch.isfinite(q_newton) & ~(q_newton >= q_trial)
        trial, r_trial, q_trial = (
            torch.where(take[:, None], trial_newton, trial),
            r_newton,
            torch.where(take, q_newton, q_trial),
        )
        better = torch.isfinite(q_trial) & (q_trial < q[idx])
        accepted, rejected = idx[better], idx[~better]
        if len(accepted):
            r_new, j_new = fmap.residual_and_jacobian(trial[better])
            h[accepted], r[accepted], jac[accepted], q[accepted] = trial[better], r_new, j_new - eye, q_trial[better]
            mu[accepted] = torch.clamp(mu[accepted] / 3.0, min=1e-16 * scale[accepted])
            radius[accepted] = torch.clamp(2.0 * radius[accepted], max=max_step)
            check_done(accepted)
        if len(rejected):
            mu[rejected] *= 4.0
            radius[rejected] *= 0.5
            norm = 1.0 + torch.linalg.vector_norm(h[rejected], dim=1)
            stuck[rejected] = (radius[rejected] < 1e-15 * norm) | (mu[rejected] > 1e16 * scale[rejected])
    active = ~(done | stuck)
    norm = 1.0 + torch.linalg.vector_norm(h, dim=1)
    moved = torch.linalg.vector_norm(h - snapshot_h, dim=1) > 1e-7 * norm
    descending = q < (1.0 - 1e-3) * snapshot_q
    moving = active & (moved | descending)
    return _Search(h, done, stuck, moving, iterations)


# ----------------------------------------------------------------------------------------------- helpers


def map_jacobians(
    map: StateMap, inputs: np.ndarray, states: np.ndarray, *, chunk_rows: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """``F(h, u) - h`` and ``dF/dh`` at each state, in float64.

    inputs: (inputs,), constant; states: (points, state). Returns residuals (points, state) and jacobians
    (points, state, state).
    """
    inputs = check_array(inputs, "inputs", ndim=1)
    states = check_array(states, "states", ndim=2)
    fmap = _Map(map, torch.as_tensor(inputs, dtype=_DTYPE), states.shape[1], chunk_rows)
    r, jac = fmap.residual_and_jacobian(torch.as_tensor(states, dtype=_DTYPE))
    return r.numpy(), jac.numpy()


def _check_box(lower, upper, state: int) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name, value, fill in (("lower", lower, -np.inf), ("upper", upper, np.inf)):
        if value is None:
            out.append(np.full(state, fill))
            continue
        array = np.asarray(value, dtype=float)
        if array.ndim == 0:
            array = np.full(state, float(array))
        if array.shape != (state,) or np.any(np.isnan(array)):
            raise RnnscopeError(f"{name}: expected None, a number or shape ({state},) without NaN, got {array.shape}")
        out.append(array)
    if np.any(out[0] >= out[1]):
        i = int(np.argmax(out[0] >= out[1]))
        raise RnnscopeError(
            f"lower, upper: need lower < upper in every dimension, got {out[0][i]} >= {out[1][i]} at {i}"
        )
    return out[0], out[1]


def _sorted_eigenvalues(jacobians: np.ndarray) -> np.ndarray:
    if len(jacobians) == 0:
        return np.zeros(jacobians.shape[:2], dtype=complex)
    values = np.linalg.eigvals(jacobians)
    order = np.argsort(-np.abs(values) - 1e-12 * values.imag, axis=-1, kind="stable")
    return np.take_along_axis(values, order, axis=-1)


def _points(fmap: _Map, states: np.ndarray, converged: np.ndarray) -> StateFixedPoints:
    state = fmap.state
    if len(states):
        r, jac = fmap.residual_and_jacobian(torch.as_tensor(states, dtype=_DTYPE))
        distance = _newton_distance(r, jac).numpy()
        r, jac = r.numpy(), jac.numpy()
    else:
        r, jac, distance = np.zeros((0, state)), np.zeros((0, state, state)), np.zeros(0)
    eigenvalues = _sorted_eigenvalues(jac)
    unstable = np.sum(np.abs(eigenvalues) > 1.0, axis=1).astype(int)
    stability = np.where(unstable == 0, "stable", np.where(unstable == state, "source", "saddle")).astype("<U6")
    return StateFixedPoints(
        np.asarray(states, float).reshape(-1, state),
        0.5 * np.sum(r**2, axis=1),
        distance,
        jac,
        eigenvalues,
        unstable,
        stability,
        np.asarray(converged, bool),
    )


def _unique(states: np.ndarray, tol: float) -> np.ndarray:
    """Indices of representatives of clusters of rows within ``tol (1 + |h|)`` (greedy, first kept)."""
    keep: list[int] = []
    for i, point in enumerate(states):
        if keep:
            distance = np.linalg.norm(states[keep] - point, axis=1)
            if np.min(distance) <= tol * (1.0 + np.linalg.norm(point)):
                continue
        keep.append(i)
    return np.array(keep, dtype=int)


def _distance_to(states: np.ndarray, point: np.ndarray) -> float:
    return float(np.min(np.linalg.norm(states - point, axis=1))) if len(states) else float("inf")


def certify_fixed_points(
    map: StateMap,
    inputs: np.ndarray,
    states: np.ndarray,
    *,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    tol: float = 1e-8,
) -> np.ndarray:
    """Whether each state is a certified fixed point of ``F(., inputs)``: in float64, ``|J^+ r| < tol (1 + |h|)``
    (``J = dF/dh - I``, ``r = F(h) - h``) and ``lower <= h <= upper``.

    inputs: (inputs,); states: (points, state); lower, upper: (state,) or None. Returns (points,) bool.
    """
    states = check_array(states, "states", ndim=2)
    tol = check_positive(tol, "tol")
    lower, upper = _check_box(lower, upper, states.shape[1])
    r, jac = map_jacobians(map, inputs, states)
    distance = _newton_distance(torch.as_tensor(r), torch.as_tensor(jac)).numpy()
    inside = np.all((states >= lower) & (states <= upper), axis=1)
    return (distance < tol * (1.0 + np.linalg.norm(states, axis=1))) & inside


# ----------------------------------------------------------------------------------------------- search


def find_state_fixed_points(
    map: StateMap,
    inputs: np.ndarray,
    *,
    states: np.ndarray,
    rng: int | np.random.Generator,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    starts: int = 256,
    noise: float = 0.05,
    tol: float = 1e-8,
    max_iter: int = 200,
    max_step: float = 0.5,
    adam_steps: int = 0,
    adam_lr: float = 1e-2,
    iterate_steps: int = 0,
    structured: int = 256,
    edge_steps: int = 0,
    unique_tol: float = 1e-5,
    chunk_rows: int = 65536,
) -> StateFixedPointResult:
    """Certified fixed points of ``h -> F(h, inputs)`` in the full state space.

    map: ``F(h (rows, state), u (rows, inputs)) -> (rows, state)``, float64 torch callable (module docstring);
    inputs: (inputs,), the constant input; states: (samples, state), states visited on trajectories, from which
    ``starts`` are drawn (with replacement when fewer) and perturbed by Gaussian noise of standard deviation
    ``noise`` (state units); rng: seed or generator for the draws; lower, upper: (state,) reachable box, a number,
    or None (unbounded); tol: certification tolerance on the Newton distance, relative to ``1 + |h|``;
    max_iter: Levenberg-Marquardt iterations per round; max_step: longest step (Euclidean, state units);
    adam_steps: optional Adam warm start on q (0: none); iterate_steps: iterations of F (clipped to the box)
    applied to the trajectory starts before the search (0: none), which carries them onto the attractors;
    structured: most structured starts (midpoints of pairs and centroids of groups of the stable points found;
    0: none); edge_steps: when positive, edge tracking between every pair of stable points found (at most
    ``structured`` pairs; :func:`~rnnscope.analysis._state_starts.edge_states` with ``steps=edge_steps``, the
    iterations that decide a basin) adds a start near each saddle with one unstable mode; unique_tol: points closer than
    ``unique_tol (1 + |h|)`` are one; chunk_rows: rows per Jacobian pass (memory).

    Issues a ConvergenceWarning when some starts are still moving after ``max_iter`` iterations.
    """
    rng = as_generator(rng, name="rng")
    inputs = check_array(inputs, "inputs", ndim=1)
    states = check_array(states, "states", ndim=2)
    if len(states) == 0:
        raise RnnscopeError("states: need at least one state to start from, got 0 rows")
    size = states.shape[1]
    lower, upper = _check_box(lower, upper, size)
    starts = check_int(starts, "starts", minimum=1)
    noise = check_nonnegative(noise, "noise")
    tol = check_positive(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    max_step = check_positive(max_step, "max_step")
    adam_steps = check_int(adam_steps, "adam_steps", minimum=0)
    adam_lr = check_positive(adam_lr, "adam_lr")
    iterate_steps = check_int(iterate_steps, "iterate_steps", minimum=0)
    edge_steps = check_int(edge_steps, "edge_steps", minimum=0)
    structured = check_int(structured, "structured", minimum=0)
    unique_tol = check_positive(unique_tol, "unique_tol")
    chunk_rows = check_int(chunk_rows, "chunk_rows", minimum=1)

    fmap = _Map(map, torch.as_tensor(inputs, dtype=_DTYPE), size, chunk_rows)
    lo, hi = _box_tensors(lower, upper)
    chosen = rng.choice(len(states), size=starts, replace=starts > len(states))
    first = np.clip(states[chosen] + noise * rng.standard_normal((starts, size)), lower, upper)
    if iterate_steps:
        h = torch.as_tensor(first, dtype=_DTYPE)
        with torch.no_grad():
            for _ in range(iterate_steps):
                h = torch.clamp(fmap(h), lo, hi)
        first = h.numpy()

    def search(begin: np.ndarray) -> _Search:
        h = torch.as_tensor(begin, dtype=_DTYPE)
        if adam_steps:
            h = _adam(fmap, h, lo, hi, steps=adam_steps, lr=adam_lr)
        return _levenberg_marquardt(fmap, h, lo, hi, tol=tol, max_iter=max_iter, max_step=max_step)

    rounds = [(first, search(first))]
    known = np.zeros((0, size))  # stable points already used for structured starts
    for _ in range(3 if structured else 0):  # again while new stable points turn up
        ends = np.concatenate([found.endpoints.numpy() for _, found in rounds])
        ends = ends[_certified(fmap, ends, lower, upper, tol)]
        if len(ends) == 0:
            break
        ends = ends[_unique(ends, unique_tol)]
        points = _points(fmap, ends, np.ones(len(ends), bool))
        stable = points.stable().states
        new = [s for s in stable if len(known) == 0 or _distance_to(known, s) > unique_tol * (1 + np.linalg.norm(s))]
        if not new and len(rounds) > 1:
            break
        extra = [_structured_starts(stable, structured, rng)]
        if edge_steps and len(known) == 0 and len(stable) > 1:
            pairs = np.array(list(itertools.combinations(range(len(stable)), 2)))
            pairs = pairs[np.sort(rng.choice(len(pairs), min(structured, len(pairs)), replace=False))]
            extra.append(edge_states(fmap, stable, pairs, lo, hi, steps=edge_steps))
        known = stable
        unstable = points[points.unstable > 0]
        if len(unstable):  # where the unstable modes of saddles lead: attractors the trajectories missed
            _, probes = follow_unstable_modes(fmap, unstable, lo, hi, rng=rng)
            extra.append(probes.reshape(-1, size)[: max(structured, 1)])
        extra = np.concatenate(extra)
        if len(extra) == 0:
            break
        extra = np.clip(extra, lower, upper)
        rounds.append((extra, search(extra)))

    all_starts = np.concatenate([begin for begin, _ in rounds])
    kind = np.concatenate([np.full(len(begin), _KINDS[min(i, 1)]) for i, (begin, _) in enumerate(rounds)])
    endpoints = torch.cat([found.endpoints for _, found in rounds])
    stuck = torch.cat([found.stuck for _, found in rounds]).numpy()
    moving = torch.cat([found.moving for _, found in rounds]).numpy()
    iterations = torch.cat([found.iterations for _, found in rounds]).numpy()

    r, jac = fmap.residual_and_jacobian(endpoints)
    distance = _newton_distance(r, jac).numpy()
    endpoints = endpoints.numpy()
    speed = 0.5 * np.sum(r.numpy() ** 2, axis=1)
    norm = 1.0 + np.linalg.norm(endpoints, axis=1)
    inside = np.all((endpoints >= lower) & (endpoints <= upper), axis=1)
    converged = (distance < tol * norm) & inside
    status = np.where(converged, "fixed", np.where(moving & ~stuck, "moving", "stationary")).astype("<U10")

    fixed_states = endpoints[converged]
    fixed_states = fixed_states[_unique(fixed_states, unique_tol)] if len(fixed_states) else fixed_states
    fixed = _points(fmap, fixed_states.reshape(-1, size), np.ones(len(fixed_states), bool))
    order = np.lexsort((np.linalg.norm(fixed.states, axis=1), fixed.unstable))
    fixed = fixed[order] if len(fixed) else fixed

    slow_states = endpoints[status == "stationary"]
    if len(slow_states):
        slow_states = slow_states[_unique(slow_states, unique_tol)]
        if len(fixed):  # a stationary start may sit on a certified point within unique_tol: not a slow point
            far = [
                np.min(np.linalg.norm(fixed.states - s, axis=1)) > unique_tol * (1 + np.linalg.norm(s))
                for s in slow_states
            ]
            slow_states = slow_states[np.asarray(far, bool)]
    slow = _points(fmap, slow_states.reshape(-1, size), np.zeros(len(slow_states), bool))
    if len(slow):
        slow = slow[np.argsort(slow.speed, kind="stable")]

    n_moving = int(np.sum(status == "moving"))
    if n_moving:
        warnings.warn(
            f"find_state_fixed_points: {n_moving} of {len(status)} starts still moving after {max_iter} "
            "iterations (raise max_iter)",
            ConvergenceWarning,
            stacklevel=2,
        )
    return StateFixedPointResult(
        fixed_points=fixed,
        slow_points=slow,
        starts=all_starts,
        kind=kind.astype("<U10"),
        endpoints=endpoints,
        endpoint_speed=speed,
        endpoint_newton_distance=distance,
        status=status,
        iterations=iterations.astype(int),
        inputs=inputs,
        lower=lower,
        upper=upper,
        tol=tol,
    )


def _certified(fmap: _Map, states: np.ndarray, lower: np.ndarray, upper: np.ndarray, tol: float) -> np.ndarray:
    r, jac = fmap.residual_and_jacobian(torch.as_tensor(states, dtype=_DTYPE))
    distance = _newton_distance(r, jac).numpy()
    inside = np.all((states >= lower) & (states <= upper), axis=1)
    return (distance < tol * (1.0 + np.linalg.norm(states, axis=1))) & inside
