"""Latent variables of low-rank networks: overlaps, projections, and the reduced (kappa) dynamics.

Theory (Mastrogiuseppe & Ostojic 2018; Beiran et al. 2021; Dubreuil, Valente et al. 2022). Time is in units of
the membrane time constant ``tau`` (the Euler step of the network is ``alpha = dt / tau``). The noise-free network

    dx/dt = -x + M N^T phi(x) / size + W_in u(t),       phi = tanh,  M = m, N = n: (size, rank)

keeps ``x`` in ``span(M, W_in)`` (plus a part that decays as ``exp(-t)``): write
``x = M kappa + W_in v + x_perp`` with ``dv/dt = -v + u`` (the input filtered with the same time constant) and
``dx_perp/dt = -x_perp``. Matching the ``M`` components (the columns of ``[M, W_in]`` taken as a basis, which
need not be orthogonal) gives the exact reduced dynamics

    dkappa/dt = F(kappa, v) = -kappa + N^T phi(M kappa + W_in v) / size.

For a constant input ``u`` the filtered input settles at ``v = u``, so the fixed points of the network are those of
``F(., u)``. Its Jacobian is ``-I + sigma_eff(x)`` with the effective overlaps
``sigma_eff[i, j] = sum_k n_ki phi'(x_k) m_kj / size`` at ``x = M kappa + W_in u``.

Mean-field limit (size -> infinity): each neuron's loadings ``(m, n, w_in)`` are drawn from a mixture of Gaussians
(a :class:`rnnscope.analysis.PopulationModel`: populations ``p`` with fractions ``f_p``, means ``mu_p``
and covariances ``C_p``; its ``w_out`` block plays no part). With ``a = m . kappa + w . u``
(Gaussian in each population: mean ``mu_a``, variance ``Delta^2``), Stein's lemma gives

    F(kappa, u) = -kappa + sum_p f_p ( mu_n <phi(a)>_p + Cov_p(n, a) <phi'(a)>_p ),
    Cov_p(n, a) = C_nm kappa + C_nw u,

with the one-dimensional Gaussian averages done by Gauss-Hermite quadrature. For one zero-mean Gaussian and no
input this is ``-kappa + sigma_nm <phi'(Delta z)> kappa`` with ``Delta^2 = kappa^T C_mm kappa``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy.special import ndtr

from rnnscope._validation import check_array, check_int
from rnnscope.analysis._population_model import PopulationModel
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankWeights

__all__ = [
    "overlaps",
    "input_overlaps",
    "readout_overlaps",
    "EffectiveOverlaps",
    "effective_overlaps",
    "LatentProjection",
    "latent_projection",
    "reduced_flow",
    "reduced_jacobian",
    "mean_field_flow",
    "mean_field_jacobian",
    "FlowField",
    "flow_field",
    "latent_bounds",
]

# Gaussian averages <f(a)>, a ~ N(mean, std^2), of f = tanh and its first three derivatives. Gauss-Hermite in
# z = (a - mean) / std is exact to ~1e-9 for std <= 1 but converges slowly for wide Gaussians (tanh(std z) turns
# into a step), so for std > 1 the average is taken in a-space instead: composite Gauss-Legendre on
# [-16, 16] (where tanh varies; panels of width 1) plus the analytic tails (tanh = +-1 beyond, to 1e-13).
# Both branches agree with adaptive quadrature to < 1e-6 (tests/test_latent.py checks it).
_NODES, _WEIGHTS = hermegauss(81)
_WEIGHTS = _WEIGHTS / np.sqrt(2.0 * np.pi)  # expectations over z ~ N(0, 1)
_SWITCH_STD = 1.0
_A_LIMIT = 16.0


def _tanh_derivatives(t: np.ndarray, order: int) -> list[np.ndarray]:
    """The first ``order + 1`` of tanh, tanh', tanh'', tanh''' at a, given t = tanh(a)."""
    d1 = 1.0 - t**2
    out = [t, d1]
    if order >= 2:
        out += [-2.0 * t * d1, d1 * (6.0 * t**2 - 2.0)]
    return out


def _legendre_grid() -> tuple[np.ndarray, np.ndarray]:
    x, w = leggauss(8)
    edges = np.linspace(-_A_LIMIT, _A_LIMIT, 33)
    half = (edges[1] - edges[0]) / 2
    nodes = ((edges[:-1] + edges[1:]) / 2)[:, None] + half * x[None]
    return nodes.ravel(), np.tile(w * half, len(edges) - 1)


_A_NODES, _A_WEIGHTS = _legendre_grid()
_A_VALUES = np.stack(_tanh_derivatives(np.tanh(_A_NODES), 3)) * _A_WEIGHTS  # (4, nodes)


def gaussian_tanh_averages(mean: np.ndarray, std: np.ndarray, order: int = 1) -> list[np.ndarray]:
    """Gaussian averages of tanh and its derivatives, a ~ N(mean, std^2); mean, std: broadcastable arrays.

    Returns [<tanh(a)>, <tanh'(a)>] for order 1, plus [<tanh''(a)>, <tanh'''(a)>] for order 3.
    """
    mean, std = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(std, dtype=float))
    t = np.tanh(mean[..., None] + std[..., None] * _NODES)
    averages = [f @ _WEIGHTS for f in _tanh_derivatives(t, order)]
    wide = std > _SWITCH_STD
    if np.any(wide):
        mu, sd = mean[wide][:, None], std[wide][:, None]
        density = np.exp(-0.5 * ((_A_NODES - mu) / sd) ** 2) / (np.sqrt(2.0 * np.pi) * sd)
        values = density @ _A_VALUES[: len(averages)].T  # (wide, orders)
        values[:, 0] += ndtr((mean[wide] - _A_LIMIT) / std[wide]) - ndtr((-_A_LIMIT - mean[wide]) / std[wide])
        for i in range(len(averages)):
            averages[i][wide] = values[:, i]
    return averages


def _check_weights(weights: object) -> LowRankWeights:
    if not isinstance(weights, LowRankWeights):
        raise RnnscopeError(f"weights: expected LowRankWeights (a low-rank network), got {type(weights).__name__}")
    return weights


def _check_inputs(weights: LowRankWeights, inputs: np.ndarray | None, name: str = "inputs") -> np.ndarray:
    """A constant input ``u``: (inputs,), zeros when None."""
    if inputs is None:
        return np.zeros(weights.inputs)
    return check_array(inputs, name, shape=(weights.inputs,))


def _check_kappa(kappa: np.ndarray, rank: int) -> np.ndarray:
    kappa = check_array(kappa, "kappa")
    if kappa.ndim == 0 or kappa.shape[-1] != rank:
        raise RnnscopeError(f"kappa: expected shape (..., {rank}), got {kappa.shape}")
    return kappa


# ----------------------------------------------------------------------------------------------- overlaps


def overlaps(weights: LowRankWeights) -> np.ndarray:
    """sigma: (rank, rank) with ``sigma[i, j] = n_i . m_j / size``."""
    weights = _check_weights(weights)
    return weights.n.T @ weights.m / weights.size


def input_overlaps(weights: LowRankWeights) -> np.ndarray:
    """(rank, inputs): ``n_r . w_in_k / size``, how strongly input ``k`` drives ``kappa_r`` (linear regime)."""
    weights = _check_weights(weights)
    return weights.n.T @ weights.w_in / weights.size


def readout_overlaps(weights: LowRankWeights) -> np.ndarray:
    """(rank, outputs): ``m_r . w_out_o / size``, the readout of ``kappa_r`` in the linear regime
    (``z = tanh(x) @ w_out / size ~ kappa @ (m^T w_out / size)`` for small ``x = M kappa``)."""
    weights = _check_weights(weights)
    return weights.m.T @ weights.w_out / weights.size


def _gain(x: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(x) ** 2


@dataclass(frozen=True, eq=False)
class EffectiveOverlaps:
    """Overlaps weighted by the gain ``phi'(x) = 1 - tanh(x)^2``.

    gain: (size,), the gain of each neuron averaged over the given states;
    overlaps: (rank, rank), ``sum_k n_ki gain_k m_kj / size`` (the reduced Jacobian is ``-I + overlaps``);
    input_overlaps: (rank, inputs), ``sum_k n_ki gain_k w_in_kj / size``;
    per_neuron: (size, rank, rank), ``n_ki gain_k m_kj`` (its mean over neurons is ``overlaps``);
    populations: (populations,), the labels; fractions: (populations,);
    per_population: (populations, rank, rank), the mean of ``per_neuron`` within each population, so that
    ``overlaps = sum_p fractions[p] * per_population[p]``.
    """

    gain: np.ndarray
    overlaps: np.ndarray
    input_overlaps: np.ndarray
    per_neuron: np.ndarray
    populations: np.ndarray
    fractions: np.ndarray
    per_population: np.ndarray

    def to_dict(self) -> dict:
        return {
            "overlaps": self.overlaps.tolist(),
            "input_overlaps": self.input_overlaps.tolist(),
            "mean_gain": float(self.gain.mean()),
            "populations": [_json_label(p) for p in self.populations],
            "fractions": self.fractions.tolist(),
            "per_population": self.per_population.tolist(),
        }


def _json_label(label: object) -> object:
    return label.item() if isinstance(label, np.generic) else label


def _label_index(labels: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct labels (populations,), index (size,) of each neuron's population among them)."""
    if labels is None:
        return np.array([0]), np.zeros(size, dtype=int)
    labels = np.asarray(labels)
    if labels.shape != (size,):
        raise RnnscopeError(f"labels: expected shape ({size},), got {labels.shape}")
    values, index = np.unique(labels, return_inverse=True)
    return values, index


def effective_overlaps(
    weights: LowRankWeights, states: np.ndarray, labels: np.ndarray | None = None
) -> EffectiveOverlaps:
    """Gain-weighted overlaps at the states ``x``: (..., size), e.g. one fixed point ``M kappa + W_in u`` or the
    states of an epoch (trials, time, size); the gain is averaged over every leading axis.
    labels: (size,) each neuron's population, or None for one population.
    """
    weights = _check_weights(weights)
    states = check_array(states, "states")
    if states.ndim == 0 or states.shape[-1] != weights.size:
        raise RnnscopeError(f"states: expected shape (..., {weights.size}), got {states.shape}")
    values, index = _label_index(labels, weights.size)
    gain = _gain(states).reshape(-1, weights.size).mean(axis=0)
    gn = weights.n * gain[:, None]
    per_neuron = gn[:, :, None] * weights.m[:, None, :]
    counts = np.bincount(index, minlength=len(values)).astype(float)
    per_population = np.zeros((len(values), weights.rank, weights.rank))
    np.add.at(per_population, index, per_neuron)
    per_population /= counts[:, None, None]
    return EffectiveOverlaps(
        gain=gain,
        overlaps=gn.T @ weights.m / weights.size,
        input_overlaps=gn.T @ weights.w_in / weights.size,
        per_neuron=per_neuron,
        populations=values,
        fractions=counts / weights.size,
        per_population=per_population,
    )


# ----------------------------------------------------------------------------------------------- projection


@dataclass(frozen=True, eq=False)
class LatentProjection:
    """Trajectories written as ``x = M kappa + W_in v + remainder`` (least squares on span(M, W_in)).

    kappa: (..., rank); input_kappa: (..., inputs), the coordinates ``v`` along the input vectors;
    remainder: (..., size), the part of ``x`` orthogonal to span(M, W_in);
    variance_explained: fraction of the variance of ``x`` (about its mean over every leading axis, summed over
    neurons) that lies in span(M, W_in); recurrent_variance_explained: the same for span(M) alone.
    When the columns of ``[M, W_in]`` are orthogonal, ``kappa_r = m_r . x / |m_r|^2``.
    """

    kappa: np.ndarray
    input_kappa: np.ndarray
    remainder: np.ndarray
    variance_explained: float
    recurrent_variance_explained: float

    def to_dict(self) -> dict:
        return {
            "variance_explained": float(self.variance_explained),
            "recurrent_variance_explained": float(self.recurrent_variance_explained),
        }


def _explained(flat: np.ndarray, basis: np.ndarray) -> float:
    centred = flat - flat.mean(axis=0)
    total = float(np.sum(centred**2))
    if total == 0.0:
        return 1.0
    q, _ = np.linalg.qr(basis)
    inside = centred @ q
    return float(np.sum(inside**2)) / total


def latent_projection(weights: LowRankWeights, trajectories: np.ndarray) -> LatentProjection:
    """Project states ``trajectories``: (..., size), e.g. (trials, time, size), on span(M, W_in)."""
    weights = _check_weights(weights)
    x = check_array(trajectories, "trajectories")
    if x.ndim == 0 or x.shape[-1] != weights.size:
        raise RnnscopeError(f"trajectories: expected shape (..., {weights.size}), got {x.shape}")
    basis = np.concatenate([weights.m, weights.w_in], axis=1)  # (size, rank + inputs)
    flat = x.reshape(-1, weights.size)
    coords, *_ = np.linalg.lstsq(basis, flat.T, rcond=None)  # (rank + inputs, samples)
    coords = coords.T
    remainder = flat - coords @ basis.T
    lead = x.shape[:-1]
    return LatentProjection(
        kappa=coords[:, : weights.rank].reshape(lead + (weights.rank,)),
        input_kappa=coords[:, weights.rank :].reshape(lead + (weights.inputs,)),
        remainder=remainder.reshape(x.shape),
        variance_explained=_explained(flat, basis),
        recurrent_variance_explained=_explained(flat, weights.m),
    )


# ----------------------------------------------------------------------------------------------- flows


class _FiniteSystem:
    """The exact reduced flow of a finite network at a constant input: kappa (B, rank) -> (B, rank)."""

    def __init__(self, weights: LowRankWeights, inputs: np.ndarray) -> None:
        self.m = weights.m
        self.n_scaled = weights.n / weights.size
        self.offset = weights.w_in @ inputs  # (size,)
        self.rank = weights.rank
        # |phi| <= 1, so every fixed point (and every attractor) lies in |kappa_r| <= mean |n_r|
        self.bound = np.abs(weights.n).mean(axis=0)

    def velocity(self, kappa: np.ndarray) -> np.ndarray:
        rates = np.tanh(kappa @ self.m.T + self.offset)
        return rates @ self.n_scaled - kappa

    def velocity_and_jacobian(self, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rates = np.tanh(kappa @ self.m.T + self.offset)  # (B, size)
        velocity = rates @ self.n_scaled - kappa
        gain = 1.0 - rates**2
        # sigma_eff[b] = N^T diag(gain_b) M / size, without forming any size x size matrix
        sigma = np.matmul(self.n_scaled.T, gain[:, :, None] * self.m)  # (B, rank, rank)
        return velocity, sigma - np.eye(self.rank)


class _MeanFieldSystem:
    """The mean-field flow at a constant input: kappa (B, rank) -> (B, rank), see the module docstring."""

    def __init__(self, population_model: PopulationModel, inputs: np.ndarray) -> None:
        R, inputs_count = population_model.rank, population_model.inputs
        mu, C = population_model.moments(("m", "n", "w_in"))  # columns (m_1..m_R, n_1..n_R, w_in_1..w_in_I)
        self.rank = R
        self.fractions = population_model.fractions
        self.mu_m, self.mu_n = mu[:, :R], mu[:, R : 2 * R]  # (P, R)
        self.mu_w_u = mu[:, 2 * R :] @ inputs  # (P,)
        self.C_mm, self.C_nm = C[:, :R, :R], C[:, R : 2 * R, :R]  # (P, R, R)
        self.C_mw_u = C[:, :R, 2 * R :] @ inputs  # (P, R): Cov(m, w . u)
        self.C_nw_u = C[:, R : 2 * R, 2 * R :] @ inputs  # (P, R): Cov(n, w . u)
        self.var_w_u = (
            np.einsum("i,pij,j->p", inputs, C[:, 2 * R :, 2 * R :], inputs) if inputs_count else np.zeros(len(mu))
        )
        second_n = np.einsum("pii->pi", C[:, R : 2 * R, R : 2 * R]) + self.mu_n**2
        self.bound = np.sqrt(self.fractions @ second_n)  # E|n_r| <= sqrt(E n_r^2)

    def _moments(self, kappa: np.ndarray, order: int):
        mean_a = kappa @ self.mu_m.T + self.mu_w_u  # (B, P)
        cov_ma = np.einsum("pij,bj->bpi", self.C_mm, kappa) + self.C_mw_u  # (B, P, R)
        cov_na = np.einsum("pij,bj->bpi", self.C_nm, kappa) + self.C_nw_u  # (B, P, R)
        var_a = np.einsum("bpi,bi->bp", cov_ma, kappa) + kappa @ self.C_mw_u.T + self.var_w_u
        delta = np.sqrt(np.maximum(var_a, 0.0))
        return cov_ma, cov_na, gaussian_tanh_averages(mean_a, delta, order)

    def velocity(self, kappa: np.ndarray) -> np.ndarray:
        _, cov_na, (e0, e1) = self._moments(kappa, 1)
        drive = self.mu_n[None] * e0[..., None] + cov_na * e1[..., None]  # (B, P, R)
        return np.einsum("p,bpr->br", self.fractions, drive) - kappa

    def velocity_and_jacobian(self, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cov_ma, cov_na, (e0, e1, e2, e3) = self._moments(kappa, 3)
        drive = self.mu_n[None] * e0[..., None] + cov_na * e1[..., None]
        velocity = np.einsum("p,bpr->br", self.fractions, drive) - kappa
        # d<phi>/dkappa_j = <phi'> mu_m_j + <phi''> Cov(m_j, a);  d<phi'>/dkappa_j = <phi''> mu_m_j + <phi'''> Cov(m_j, a)
        d0 = e1[..., None] * self.mu_m[None] + e2[..., None] * cov_ma  # (B, P, R)
        d1 = e2[..., None] * self.mu_m[None] + e3[..., None] * cov_ma
        per_population = (
            self.mu_n[None, :, :, None] * d0[:, :, None, :]
            + self.C_nm[None] * e1[..., None, None]
            + cov_na[..., :, None] * d1[:, :, None, :]
        )  # (B, P, R, R)
        jacobian = np.einsum("p,bpij->bij", self.fractions, per_population) - np.eye(self.rank)
        return velocity, jacobian


def _check_population_model(population_model: object) -> PopulationModel:
    if not isinstance(population_model, PopulationModel):
        raise RnnscopeError(f"population_model: expected a PopulationModel, got {type(population_model).__name__}")
    return population_model


def _network_population_model(weights: LowRankWeights, labels: np.ndarray | None = None) -> PopulationModel:
    """The default mean-field model of a network: ``PopulationModel.from_weights``, one Gaussian per population
    fitted to its loadings (empirical fractions, means, and covariances with ddof = 1).

    labels: (size,) labels of any kind (mapped to 0..P-1 in sorted order), or None for one population.
    """
    weights = _check_weights(weights)
    if labels is None:
        return PopulationModel.from_weights(weights)
    _, index = _label_index(labels, weights.size)
    return PopulationModel.from_weights(weights, index)


def _system(
    weights: LowRankWeights,
    inputs: np.ndarray | None,
    mean_field: bool,
    labels: np.ndarray | None = None,
    population_model: PopulationModel | None = None,
) -> _FiniteSystem | _MeanFieldSystem:
    weights = _check_weights(weights)
    u = _check_inputs(weights, inputs)
    if not mean_field:
        return _FiniteSystem(weights, u)
    if population_model is None:
        population_model = _network_population_model(weights, labels)
    population_model = _check_population_model(population_model)
    if population_model.rank != weights.rank or population_model.inputs != weights.inputs:
        raise RnnscopeError(
            f"population_model: rank {population_model.rank} and inputs {population_model.inputs} do not match the "
            f"network's rank {weights.rank} and inputs {weights.inputs}"
        )
    return _MeanFieldSystem(population_model, u)


def _apply(function, kappa: np.ndarray, rank: int, tail: tuple[int, ...]) -> np.ndarray:
    kappa = _check_kappa(kappa, rank)
    flat = kappa.reshape(-1, rank)
    return function(flat).reshape(kappa.shape[:-1] + tail)


def reduced_flow(weights: LowRankWeights, kappa: np.ndarray, inputs: np.ndarray | None = None) -> np.ndarray:
    """The exact reduced flow ``F(kappa, u) = -kappa + N^T tanh(M kappa + W_in u) / size``.

    kappa: (..., rank); inputs: (inputs,) constant (filtered) input, zeros when None. Returns (..., rank).
    """
    system = _FiniteSystem(_check_weights(weights), _check_inputs(weights, inputs))
    return _apply(system.velocity, kappa, weights.rank, (weights.rank,))


def reduced_jacobian(weights: LowRankWeights, kappa: np.ndarray, inputs: np.ndarray | None = None) -> np.ndarray:
    """dF/dkappa = -I + N^T diag(phi'(M kappa + W_in u)) M / size: (..., rank, rank) for kappa (..., rank)."""
    system = _FiniteSystem(_check_weights(weights), _check_inputs(weights, inputs))
    return _apply(lambda k: system.velocity_and_jacobian(k)[1], kappa, weights.rank, (weights.rank, weights.rank))


def _model_system(population_model: PopulationModel, inputs: np.ndarray | None) -> _MeanFieldSystem:
    population_model = _check_population_model(population_model)
    count = population_model.inputs
    u = np.zeros(count) if inputs is None else check_array(inputs, "inputs", shape=(count,))
    return _MeanFieldSystem(population_model, u)


def mean_field_flow(
    population_model: PopulationModel, kappa: np.ndarray, inputs: np.ndarray | None = None
) -> np.ndarray:
    """The infinite-size flow for loadings drawn from ``population_model``: kappa (..., rank) -> (..., rank);
    inputs: (inputs,) constant input, zeros when None."""
    system = _model_system(population_model, inputs)
    R = population_model.rank
    return _apply(system.velocity, kappa, R, (R,))


def mean_field_jacobian(
    population_model: PopulationModel, kappa: np.ndarray, inputs: np.ndarray | None = None
) -> np.ndarray:
    """Analytic Jacobian of :func:`mean_field_flow`: (..., rank, rank)."""
    system = _model_system(population_model, inputs)
    R = population_model.rank
    return _apply(lambda k: system.velocity_and_jacobian(k)[1], kappa, R, (R, R))


def latent_bounds(
    weights: LowRankWeights,
    *,
    mean_field: bool = False,
    labels: np.ndarray | None = None,
    population_model: PopulationModel | None = None,
) -> np.ndarray:
    """(rank,) half-widths of a box that holds every fixed point and attractor: ``mean |n_r|`` (finite size,
    since |tanh| <= 1) or ``sqrt(<n_r^2>)`` over ``population_model`` (mean field; default
    ``PopulationModel.from_weights`` over ``labels``)."""
    return _system(weights, None, mean_field, labels, population_model).bound


@dataclass(frozen=True, eq=False)
class FlowField:
    """The reduced flow on a grid over (kappa_1, kappa_2); other latent coordinates held at 0.

    kappa: (rows, cols, rank), the grid points (rows follow kappa_2, cols follow kappa_1; rank 1 has one row);
    velocity: (rows, cols, rank), dkappa/dt in units of 1/tau; speed: (rows, cols), |velocity|;
    inputs: (inputs,), the constant input; mean_field: whether the infinite-size flow was used.
    """

    kappa: np.ndarray
    velocity: np.ndarray
    speed: np.ndarray
    inputs: np.ndarray
    mean_field: bool

    @property
    def rank(self) -> int:
        return int(self.kappa.shape[-1])

    def to_dict(self) -> dict:
        return {
            "kappa": self.kappa.tolist(),
            "velocity": self.velocity.tolist(),
            "speed": self.speed.tolist(),
            "inputs": self.inputs.tolist(),
            "mean_field": bool(self.mean_field),
        }


def flow_field(
    weights: LowRankWeights,
    *,
    inputs: np.ndarray | None = None,
    mean_field: bool = False,
    resolution: int = 50,
    bounds: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    population_model: PopulationModel | None = None,
) -> FlowField:
    """Evaluate the reduced flow (exact finite-size, or mean field) on a ``resolution`` x ``resolution`` grid.

    bounds: (2,) or (rank,) half-widths of the grid along kappa_1 (and kappa_2); default 1.25 x
    :func:`latent_bounds`. population_model: the mixture of the mean field (default
    ``PopulationModel.from_weights`` over ``labels``: one Gaussian per population fitted to the loadings).
    """
    weights = _check_weights(weights)
    resolution = check_int(resolution, "resolution", minimum=2)
    u = _check_inputs(weights, inputs)
    system = _system(weights, u, mean_field, labels, population_model)
    if bounds is None:
        half = 1.25 * np.maximum(system.bound, 1e-3)
    else:
        half = check_array(bounds, "bounds", ndim=1)
        if np.any(half <= 0):
            raise RnnscopeError(f"bounds: must be > 0, got {half.tolist()}")
    axis1 = np.linspace(-half[0], half[0], resolution)
    if weights.rank == 1:
        kappa = axis1[None, :, None]
    else:
        axis2 = np.linspace(-half[1 if len(half) > 1 else 0], half[1 if len(half) > 1 else 0], resolution)
        k1, k2 = np.meshgrid(axis1, axis2)
        kappa = np.zeros((resolution, resolution, weights.rank))
        kappa[..., 0], kappa[..., 1] = k1, k2
    velocity = system.velocity(kappa.reshape(-1, weights.rank)).reshape(kappa.shape)
    for array in (kappa, velocity, u):
        array.setflags(write=False)
    return FlowField(kappa, velocity, np.linalg.norm(velocity, axis=-1), u, bool(mean_field))
