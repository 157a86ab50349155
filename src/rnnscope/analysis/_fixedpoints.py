"""Fixed points, stability, rings and limit cycles of the reduced (kappa) dynamics of low-rank networks.

The reduced flow ``F(kappa, u) = -kappa + N^T tanh(M kappa + W_in u) / size`` (or its mean-field limit, see
:mod:`rnnscope.analysis._latent`) has Jacobian ``-I + sigma_eff``; every start is refined by one batched
Levenberg-Marquardt solve of ``F = 0`` with that analytic ``rank x rank`` Jacobian. Time is in units of ``tau``,
so eigenvalues are rates in 1/tau.

Classes are those of the reduced system: ``stable`` (every Re < 0), ``source`` (every Re > 0), ``saddle`` (both
signs), ``marginal`` (some |Re| <= ``marginal_tol``). In the full network every fixed point has ``size - rank``
further eigenvalues equal to -1 (directions outside span(M)), so a reduced ``source`` is a saddle of the network.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from rnnscope._validation import as_generator, check_array, check_int, check_positive
from rnnscope.analysis._latent import (
    _check_inputs,
    _check_weights,
    _system,
)
from rnnscope.analysis._population_model import PopulationModel
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models import LowRankWeights

__all__ = [
    "FixedPoints",
    "FixedPointResult",
    "find_fixed_points",
    "classify",
    "OriginStability",
    "origin_stability",
    "SlowDirections",
    "slow_directions",
    "Potential",
    "potential",
]

_CLASSES = ("stable", "saddle", "source", "marginal")


def classify(eigenvalues: np.ndarray, marginal_tol: float = 1e-4) -> np.ndarray:
    """Class of each point from its Jacobian eigenvalues (points, rank) -> (points,) str."""
    real = np.real(np.atleast_2d(eigenvalues))
    marginal = np.any(np.abs(real) <= marginal_tol, axis=-1)
    positive = np.any(real > 0, axis=-1)
    negative = np.any(real < 0, axis=-1)
    out = np.where(positive & negative, "saddle", np.where(positive, "source", "stable"))
    return np.where(marginal, "marginal", out).astype("<U8")


def _sorted_eigenvalues(jacobians: np.ndarray) -> np.ndarray:
    values = np.linalg.eigvals(jacobians)
    order = np.argsort(-values.real - 1e-12 * values.imag, axis=-1, kind="stable")
    return np.take_along_axis(values, order, axis=-1)


@dataclass(frozen=True, eq=False)
class FixedPoints:
    """Fixed points of the reduced dynamics; every array has points on axis 0.

    kappa: (points, rank); speed: (points,), ``q = |F(kappa)|^2 / 2``; jacobians: (points, rank, rank);
    eigenvalues: (points, rank) complex, sorted by decreasing real part; stability: (points,) str, one of
    stable / saddle / source / marginal; converged: (points,) bool (failed starts are kept, marked False).
    """

    kappa: np.ndarray
    speed: np.ndarray
    jacobians: np.ndarray
    eigenvalues: np.ndarray
    stability: np.ndarray
    converged: np.ndarray

    def __post_init__(self) -> None:
        kappa = np.asarray(self.kappa, dtype=float)
        if kappa.ndim != 2:
            raise RnnscopeError(f"kappa: expected (points, rank), got shape {kappa.shape}")
        points, rank = kappa.shape
        expected = {
            "speed": (points,),
            "jacobians": (points, rank, rank),
            "eigenvalues": (points, rank),
            "stability": (points,),
            "converged": (points,),
        }
        for name, shape in expected.items():
            if np.shape(getattr(self, name)) != shape:
                raise RnnscopeError(f"{name}: expected shape {shape}, got {np.shape(getattr(self, name))}")

    def __len__(self) -> int:
        return int(self.kappa.shape[0])

    @property
    def rank(self) -> int:
        return int(self.kappa.shape[1])

    def __getitem__(self, index) -> FixedPoints:
        index = np.arange(len(self))[index]
        index = np.atleast_1d(index)
        return FixedPoints(
            self.kappa[index],
            self.speed[index],
            self.jacobians[index],
            self.eigenvalues[index],
            self.stability[index],
            self.converged[index],
        )

    def of_class(self, stability: str) -> FixedPoints:
        """The points of one class (stable, saddle, source or marginal)."""
        if stability not in _CLASSES:
            raise RnnscopeError(f"stability: expected one of {', '.join(_CLASSES)}, got {stability!r}")
        return self[self.stability == stability]

    def stable(self) -> FixedPoints:
        return self.of_class("stable")

    def counts(self) -> dict[str, int]:
        """Number of points of each class."""
        return {name: int(np.sum(self.stability == name)) for name in _CLASSES}

    def to_list(self) -> list[dict]:
        """One dict per point: kappa, class, eigenvalues as [re, im] pairs, speed, converged."""
        return [
            {
                "kappa": self.kappa[i].tolist(),
                "class": str(self.stability[i]),
                "eigenvalues": [[float(v.real), float(v.imag)] for v in self.eigenvalues[i]],
                "speed": float(self.speed[i]),
                "converged": bool(self.converged[i]),
            }
            for i in range(len(self))
        ]

    def to_dict(self) -> dict:
        return {"fixed_points": self.to_list()}


@dataclass(frozen=True, eq=False)
class FixedPointResult:
    """Everything found about the reduced dynamics at one constant input.

    fixed_points: the unique converged points (sorted by |kappa|, then kappa_1);
    starts: (starts, rank), where each search began (the first is the origin);
    endpoints: FixedPoints with one entry per start, where it ended (``converged`` False when it did not);
    inputs: (inputs,); mean_field: whether the infinite-size flow was used;
    ring: a continuous attractor (a closed curve of slow points around an unstable point) was found;
    limit_cycle: a simulated trajectory settled on a periodic orbit of nonzero amplitude;
    orbit: (steps, rank), one period of that orbit sampled every ``0.1 tau`` ((0, rank) when none);
    period: its period in units of tau (nan when none).
    """

    fixed_points: FixedPoints
    starts: np.ndarray
    endpoints: FixedPoints
    inputs: np.ndarray
    mean_field: bool
    ring: bool
    limit_cycle: bool
    orbit: np.ndarray
    period: float

    def to_dict(self) -> dict:
        """``{"fixed_points": [{"kappa", "class", "eigenvalues"}], "ring", "limit_cycle"}``, JSON-ready.

        Eigenvalues are always ``[re, im]`` pairs (rates in 1/tau), sorted by decreasing real part.
        """
        points = [
            {key: entry[key] for key in ("kappa", "class", "eigenvalues")} for entry in self.fixed_points.to_list()
        ]
        return {"fixed_points": points, "ring": bool(self.ring), "limit_cycle": bool(self.limit_cycle)}


# ----------------------------------------------------------------------------------------------- search


def _levenberg_marquardt(system, kappa: np.ndarray, *, tol: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Batched LM on F(kappa) = 0 for every row of kappa (starts, rank). Returns (kappa, |F|_max)."""
    kappa = kappa.copy()
    rank = kappa.shape[1]
    eye = np.eye(rank)
    velocity, jacobian = system.velocity_and_jacobian(kappa)
    cost = np.sum(velocity**2, axis=1)
    damping = np.full(len(kappa), 1e-3)
    active = np.max(np.abs(velocity), axis=1) > tol
    for _ in range(max_iter):
        if not np.any(active):
            break
        idx = np.flatnonzero(active)
        J, F = jacobian[idx], velocity[idx]
        JT = np.swapaxes(J, 1, 2)
        JTJ = JT @ J
        scale = np.maximum(np.einsum("bii->bi", JTJ), 1e-12)
        lhs = JTJ + damping[idx, None, None] * (eye * scale[:, None, :])
        step = -np.linalg.solve(lhs, np.einsum("bij,bj->bi", JT, F)[..., None])[..., 0]
        trial = kappa[idx] + step
        v_new, j_new = system.velocity_and_jacobian(trial)
        c_new = np.sum(v_new**2, axis=1)
        better = c_new < cost[idx]
        accepted = idx[better]
        kappa[accepted], velocity[accepted], jacobian[accepted], cost[accepted] = (
            trial[better],
            v_new[better],
            j_new[better],
            c_new[better],
        )
        damping[accepted] = np.maximum(damping[accepted] / 5.0, 1e-12)
        rejected = idx[~better]
        damping[rejected] *= 4.0
        tiny = np.max(np.abs(step), axis=1) < 1e-14 * (1.0 + np.max(np.abs(trial), axis=1))
        stuck = (damping[idx] > 1e12) | tiny
        active[idx] = (np.max(np.abs(velocity[idx]), axis=1) > tol) & ~stuck
    return kappa, np.max(np.abs(velocity), axis=1)


def _points(system, kappa: np.ndarray, converged: np.ndarray, marginal_tol: float) -> FixedPoints:
    velocity, jacobians = system.velocity_and_jacobian(kappa)
    eigenvalues = _sorted_eigenvalues(jacobians)
    stability = classify(eigenvalues, marginal_tol)
    return FixedPoints(
        kappa, 0.5 * np.sum(velocity**2, axis=1), jacobians, eigenvalues, stability, np.asarray(converged, bool)
    )


def _unique(kappa: np.ndarray, tol: float) -> np.ndarray:
    """Indices of representatives of the clusters of rows closer than tol (greedy, first come first kept)."""
    keep: list[int] = []
    for i, point in enumerate(kappa):
        if not keep or np.min(np.max(np.abs(kappa[keep] - point), axis=1)) > tol:
            keep.append(i)
    return np.array(keep, dtype=int)


# ----------------------------------------------------------------------------------------------- simulation


def _simulate(system, kappa: np.ndarray, duration: float, dt: float, record_every: int = 1) -> np.ndarray:
    """Heun-integrate dkappa/dt = F from kappa (B, rank); returns (steps // record_every, B, rank)."""
    steps = int(round(duration / dt))
    kept = []
    for step in range(steps):
        k1 = system.velocity(kappa)
        k2 = system.velocity(kappa + dt * k1)
        kappa = kappa + 0.5 * dt * (k1 + k2)
        if (step + 1) % record_every == 0:
            kept.append(kappa)
    return np.stack(kept) if kept else np.zeros((0,) + kappa.shape)


def _periodic_orbit(trajectory: np.ndarray, dt: float, scale: float) -> tuple[bool, np.ndarray, float]:
    """Whether each trajectory (steps, B, rank) has settled on a periodic orbit; returns the first found."""
    steps = trajectory.shape[0]
    for b in range(trajectory.shape[1]):
        path = trajectory[:, b]
        end = path[-1]
        distance = np.linalg.norm(path - end, axis=1)
        amplitude = distance.max()
        if amplitude < 1e-2 * scale:
            continue
        far = np.flatnonzero(distance > 0.5 * amplitude)
        last_far = far[-1]
        back = np.flatnonzero(distance[:last_far] < 0.02 * amplitude)
        if len(back) == 0:
            continue
        # the two halves of the window must have the same extent (not a slowly decaying spiral)
        half = steps // 2
        first = np.ptp(path[:half], axis=0).max()
        second = np.ptp(path[half:], axis=0).max()
        if not np.isclose(first, second, rtol=0.05):
            continue
        # period: the last return before the final excursion
        start = back[-1]
        # refine: the local minimum of the distance around that return
        lo = max(start - 5, 0)
        start = lo + int(np.argmin(distance[lo : min(start + 5, last_far)]))
        period = (steps - 1 - start) * dt
        return True, path[start:].copy(), float(period)
    return False, np.zeros((0, trajectory.shape[2])), float("nan")


def _ring(system, points: FixedPoints, scale: float, tol: float) -> bool:
    """A closed curve of slow points around an unstable centre.

    Along rays from the centre (the unstable fixed point closest to the origin, else the origin) in the plane of
    its two most unstable directions, find the outermost radius where the radial velocity changes sign from
    outward to inward; it is a ring when such a radius exists in every direction and the remaining (tangential
    and out-of-plane) velocity there, divided by the radius, stays below ``tol`` times the radial relaxation
    rate everywhere. A finite network breaks the ring into a few points joined by slow flow; a discrete set
    of attractors (e.g. bimodal loadings) has fast flow between them.
    """
    rank = points.rank
    if rank < 2:
        return False
    unstable = points[np.isin(points.stability, ("source", "saddle"))]
    if len(unstable) == 0:
        return False
    centre_index = int(np.argmin(np.linalg.norm(unstable.kappa, axis=1)))
    centre = unstable.kappa[centre_index]
    if np.sum(unstable.eigenvalues[centre_index].real > 0) < 2:
        return False
    values, vectors = np.linalg.eig(unstable.jacobians[centre_index])
    order = np.argsort(-values.real)
    first = vectors[:, order[0]]
    if abs(values[order[0]].imag) > 1e-12:
        plane = np.stack([first.real, first.imag], axis=1)
    else:
        plane = np.stack([vectors[:, order[0]].real, vectors[:, order[1]].real], axis=1)
    plane, _ = np.linalg.qr(plane)
    angles = np.linspace(0.0, 2 * np.pi, 36, endpoint=False)
    directions = np.cos(angles)[:, None] * plane[:, 0] + np.sin(angles)[:, None] * plane[:, 1]  # (A, rank)
    radii = np.linspace(1e-3, 1.5, 48) * scale

    def radial_velocity(radius: np.ndarray) -> np.ndarray:  # radius (A, G) -> (A, G)
        points = centre + radius[..., None] * directions[:, None, :]
        velocity = system.velocity(points.reshape(-1, rank)).reshape(points.shape)
        return np.einsum("agr,ar->ag", velocity, directions)

    radial = radial_velocity(np.broadcast_to(radii, (len(angles), len(radii))))
    crossing = (radial[:, :-1] > 0) & (radial[:, 1:] <= 0)
    if not np.all(crossing.any(axis=1)):
        return False
    last = crossing.shape[1] - 1 - np.argmax(crossing[:, ::-1], axis=1)  # outermost crossing per angle
    lo, hi = radii[last], radii[last + 1]
    for _ in range(30):  # bisection, all angles at once
        mid = 0.5 * (lo + hi)
        outward = radial_velocity(mid[:, None])[:, 0] > 0
        lo, hi = np.where(outward, mid, lo), np.where(outward, hi, mid)
    radius = 0.5 * (lo + hi)
    step = 1e-3 * scale
    f0, f1 = radial_velocity(np.stack([radius - step, radius + step], axis=1)).T
    rate = (f0 - f1) / (2 * step)  # -d(radial velocity)/dr > 0
    on_curve = centre + radius[:, None] * directions
    v = system.velocity(on_curve)
    across = v - np.sum(v * directions, axis=1, keepdims=True) * directions
    if np.any(radius < 0.05 * scale):
        return False
    return bool(np.max(np.linalg.norm(across, axis=1) / radius) < tol * np.median(rate))


# ----------------------------------------------------------------------------------------------- API


def find_fixed_points(
    weights: LowRankWeights,
    *,
    inputs: np.ndarray | None = None,
    mean_field: bool = False,
    starts: int = 100,
    rng: np.random.Generator | int,
    labels: np.ndarray | None = None,
    population_model: PopulationModel | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    marginal_tol: float = 1e-4,
    ring_tol: float = 0.15,
) -> FixedPointResult:
    """Fixed points of the reduced dynamics at the constant input ``inputs``: (inputs,) (zeros when None).

    ``starts`` searches begin at the origin and at points drawn uniformly in the box ``|kappa_r| <= bound_r``
    that holds every fixed point (see :func:`latent_bounds`); all are refined together by batched
    Levenberg-Marquardt with the analytic Jacobian, to ``max |F| <= tol``, and de-duplicated. mean_field:
    use the infinite-size flow for loadings drawn from ``population_model`` (default:
    ``PopulationModel.from_weights`` over ``labels``, one Gaussian per population fitted to the loadings). Rings and limit cycles are looked for in rank >= 2: the
    reduced system is simulated from 16 of the starts (and next to every unstable focus) for 60 tau, then 40 tau
    more are checked for a periodic orbit.
    """
    weights = _check_weights(weights)
    starts = check_int(starts, "starts", minimum=1)
    rng = as_generator(rng, name="rng")
    tol = check_positive(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    u = _check_inputs(weights, inputs)
    system = _system(weights, u, mean_field, labels, population_model)
    bound = np.maximum(system.bound, 1e-6)
    scale = float(np.linalg.norm(bound))
    initial = np.zeros((starts, weights.rank))
    initial[1:] = rng.uniform(-1.0, 1.0, size=(starts - 1, weights.rank)) * bound
    kappa, residual = _levenberg_marquardt(system, initial, tol=tol, max_iter=max_iter)
    converged = residual <= tol
    endpoints = _points(system, kappa, converged, marginal_tol)
    if not np.any(converged):
        warnings.warn(
            f"find_fixed_points: none of {starts} starts converged to |F| <= {tol:g} "
            f"(smallest residual {residual.min():.3g})",
            ConvergenceWarning,
            stacklevel=2,
        )
    found = kappa[converged]
    order = np.lexsort(
        tuple(found[:, r] for r in range(weights.rank - 1, -1, -1)) + (np.round(np.linalg.norm(found, axis=1), 8),)
    )
    found = found[order]
    keep = _unique(found, 1e-5 * max(scale, 1.0))
    unique = _points(system, found[keep], np.ones(len(keep), bool), marginal_tol)

    ring = limit_cycle = False
    orbit, period = np.zeros((0, weights.rank)), float("nan")
    if weights.rank >= 2:
        ring = _ring(system, unique, scale, ring_tol)
        seeds = [initial[1:17]]
        foci = unique[(np.abs(unique.eigenvalues.imag).max(axis=1) > 1e-9) & (unique.eigenvalues.real.max(axis=1) > 0)]
        if len(foci):
            seeds.append(foci.kappa + 1e-2 * scale * rng.standard_normal(foci.kappa.shape))
        seed = np.concatenate(seeds, axis=0)
        if len(seed):
            dt = 0.1
            settled = _simulate(system, seed, 60.0, dt, record_every=600)[-1]
            window = _simulate(system, settled, 40.0, dt)
            limit_cycle, orbit, period = _periodic_orbit(window, dt, scale)
    for array in (initial, u, orbit):
        array.setflags(write=False)
    return FixedPointResult(
        unique,
        initial,
        endpoints,
        u,
        bool(mean_field),
        bool(ring and not limit_cycle),
        bool(limit_cycle),
        orbit,
        period,
    )


@dataclass(frozen=True, eq=False)
class OriginStability:
    """Linearisation of the reduced dynamics at kappa = 0 (a fixed point when ``N^T tanh(W_in u) = 0``).

    effective_overlaps: (rank, rank), ``N^T diag(phi'(W_in u)) M / size``; overlap_eigenvalues: (rank,) complex,
    its eigenvalues, sorted by decreasing real part; eigenvalues: (rank,) of the Jacobian (``overlap_eigenvalues
    - 1``); stable: all real parts < 0 (every overlap eigenvalue has real part < 1);
    directions: (rank, rank) complex, column i is the eigenvector of ``eigenvalues[i]`` (slowest/most unstable
    first).
    """

    effective_overlaps: np.ndarray
    overlap_eigenvalues: np.ndarray
    eigenvalues: np.ndarray
    stable: bool
    directions: np.ndarray

    def to_dict(self) -> dict:
        return {
            "effective_overlaps": self.effective_overlaps.tolist(),
            "eigenvalues": [[float(v.real), float(v.imag)] for v in self.eigenvalues],
            "stable": bool(self.stable),
        }


def origin_stability(
    weights: LowRankWeights,
    *,
    inputs: np.ndarray | None = None,
    mean_field: bool = False,
    labels: np.ndarray | None = None,
    population_model: PopulationModel | None = None,
) -> OriginStability:
    """Linear stability of kappa = 0 at the constant input ``inputs`` (inputs,), from the effective overlaps
    (mean_field: of ``population_model``, default ``PopulationModel.from_weights`` over ``labels``)."""
    weights = _check_weights(weights)
    u = _check_inputs(weights, inputs)
    system = _system(weights, u, mean_field, labels, population_model)
    _, jacobian = system.velocity_and_jacobian(np.zeros((1, weights.rank)))
    values, vectors = np.linalg.eig(jacobian[0])
    order = np.argsort(-values.real, kind="stable")
    values, vectors = values[order], vectors[:, order]
    sigma = jacobian[0] + np.eye(weights.rank)
    return OriginStability(sigma, values + 1.0, values, bool(np.all(values.real < 0)), vectors)


@dataclass(frozen=True, eq=False)
class SlowDirections:
    """Eigen-decomposition of the reduced Jacobian at each point, slowest (smallest |Re|) first.

    kappa: (points, rank); eigenvalues: (points, rank) complex; directions: (points, rank, rank) complex,
    ``directions[p, :, i]`` is the eigenvector of ``eigenvalues[p, i]``; time_constants: (points, rank),
    ``1 / |Re|`` in units of tau (inf for a marginal direction).
    """

    kappa: np.ndarray
    eigenvalues: np.ndarray
    directions: np.ndarray
    time_constants: np.ndarray


def slow_directions(
    weights: LowRankWeights, kappa: np.ndarray, *, inputs: np.ndarray | None = None, mean_field: bool = False
) -> SlowDirections:
    """Slow directions of the reduced flow at kappa: (points, rank) (e.g. the fixed points' kappa)."""
    weights = _check_weights(weights)
    kappa = check_array(kappa, "kappa", shape=(None, weights.rank))
    system = _system(weights, _check_inputs(weights, inputs), mean_field)
    _, jacobians = system.velocity_and_jacobian(kappa)
    values, vectors = np.linalg.eig(jacobians)
    order = np.argsort(np.abs(values.real), axis=1, kind="stable")
    values = np.take_along_axis(values, order, axis=1)
    vectors = np.take_along_axis(vectors, order[:, None, :], axis=2)
    with np.errstate(divide="ignore"):
        time_constants = 1.0 / np.abs(values.real)
    return SlowDirections(kappa, values, vectors, time_constants)


@dataclass(frozen=True, eq=False)
class Potential:
    """Rank-1 potential ``V(kappa) = -int_0^kappa F``, so that ``dkappa/dt = -dV/dkappa`` (V(0) = 0).

    kappa: (points,); value: (points,); inputs: (inputs,); mean_field: bool.
    """

    kappa: np.ndarray
    value: np.ndarray
    inputs: np.ndarray
    mean_field: bool

    def to_dict(self) -> dict:
        return {
            "kappa": self.kappa.tolist(),
            "value": self.value.tolist(),
            "inputs": self.inputs.tolist(),
            "mean_field": bool(self.mean_field),
        }


def _log_cosh(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return x + np.log1p(np.exp(-2.0 * x)) - np.log(2.0)


def potential(
    weights: LowRankWeights,
    *,
    inputs: np.ndarray | None = None,
    mean_field: bool = False,
    resolution: int = 401,
    bound: float | None = None,
    population_model: PopulationModel | None = None,
) -> Potential:
    """Potential of a rank-1 network on ``resolution`` points of ``[-bound, bound]`` (default 1.25 x the box).

    Finite size, exactly: ``V = kappa^2 / 2 - (1/size) sum_k (n_k / m_k) [log cosh(m_k kappa + c_k) -
    log cosh(c_k)]`` with ``c = W_in u`` (``n_k tanh(c_k) kappa`` where ``m_k = 0``). Mean field: the integral of
    the mean-field flow of ``population_model`` (default: one Gaussian fitted to the loadings) by the trapezoidal
    rule on the grid.
    """
    weights = _check_weights(weights)
    if weights.rank != 1:
        raise RnnscopeError(f"weights: a potential exists for rank 1 only, got rank {weights.rank}")
    resolution = check_int(resolution, "resolution", minimum=3)
    u = _check_inputs(weights, inputs)
    system = _system(weights, u, mean_field, None, population_model)
    half = 1.25 * float(system.bound[0]) if bound is None else check_positive(bound, "bound")
    kappa = np.linspace(-half, half, resolution)
    if mean_field:
        velocity = system.velocity(kappa[:, None])[:, 0]
        value = -np.concatenate([[0.0], np.cumsum(0.5 * (velocity[1:] + velocity[:-1]) * np.diff(kappa))])
        value -= np.interp(0.0, kappa, value)
    else:
        m, n, c = weights.m[:, 0], weights.n[:, 0], weights.w_in @ u
        small = np.abs(m) < 1e-12
        safe = np.where(small, 1.0, m)
        arg = kappa[:, None] * m + c
        integral = np.where(small, n * np.tanh(c) * kappa[:, None], n / safe * (_log_cosh(arg) - _log_cosh(c)))
        value = 0.5 * kappa**2 - integral.mean(axis=1)
    for array in (kappa, value, u):
        array.setflags(write=False)
    return Potential(kappa, value, u, bool(mean_field))
