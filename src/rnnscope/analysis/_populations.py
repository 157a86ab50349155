"""Population structure of low-rank networks (Dubreuil, Valente et al. 2022).

Each neuron is one point in *loading space*: its row of ``(w_in, n, m, w_out)``. Because rnnscope scales
``J = m n^T / size`` and ``z = tanh(x) @ w_out / size``, loadings do not depend on the network size, so a
distribution of loadings defines networks of any size. This module

- fits Gaussian mixtures with P = 1..Pmax populations to the loading cloud (BIC, label stability);
- holds a ``PopulationModel`` (fractions, means, covariances): THE sampler of new networks, used here for
  resampling and reused by network design;
- evaluates many networks on a batch of trials in one batched simulation (``evaluate_networks``);
- finds the minimal number of populations whose resampled networks keep the trained network's accuracy;
- silences populations or scales their gain, and computes effective overlaps per population and condition group.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from tqdm.auto import tqdm

from rnnscope._validation import as_generator, check_array, check_int, check_nonnegative, check_probability
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models._core import draw_noise, input_drive, integrate
from rnnscope.models._weights import LowRankBatch, LowRankWeights, stack_weights
from rnnscope.tasks._base import Task, TrialBatch, correct_trials

__all__ = [
    "Loadings",
    "loadings",
    "loading_columns",
    "PopulationFit",
    "MAX_POPULATIONS",
    "population_bound",
    "fit_populations",
    "PopulationModel",
    "PopulationSampler",
    "simulate_networks",
    "NetworkAccuracy",
    "evaluate_networks",
    "Resampling",
    "resample",
    "MinimalPopulations",
    "minimal_populations",
    "scale_population",
    "Inactivation",
    "inactivate",
    "GroupOverlaps",
    "overlaps_by_group",
]

_BLOCKS = ("w_in", "n", "m", "w_out")
_LABEL = re.compile(r"^(w_in|n|m|w_out)\[(\d+)\]$")


# ---------------------------------------------------------------------------------------------------------------
# Loading space
# ---------------------------------------------------------------------------------------------------------------
def loading_columns(*, rank: int, inputs: int, outputs: int) -> tuple[str, ...]:
    """Column labels in the order (w_in, n, m, w_out): ``("w_in[0]", ..., "n[0]", ..., "m[0]", ..., "w_out[0]")``."""
    counts = {"w_in": inputs, "n": rank, "m": rank, "w_out": outputs}
    return tuple(f"{block}[{i}]" for block in _BLOCKS for i in range(counts[block]))


def _layout(columns: Sequence[str]) -> dict[str, int]:
    """{block: count} parsed from labels, checking they are exactly ``loading_columns`` of those counts."""
    counts = dict.fromkeys(_BLOCKS, 0)
    for label in columns:
        match = _LABEL.match(label)
        if match is None:
            raise RnnscopeError(f"columns: {label!r} is not a loading label like 'w_in[0]', 'n[0]', 'm[0]', 'w_out[0]'")
        counts[match.group(1)] += 1
    expected = loading_columns(rank=counts["m"], inputs=counts["w_in"], outputs=counts["w_out"])
    if tuple(columns) != expected or counts["m"] != counts["n"] or counts["m"] < 1 or counts["w_out"] < 1:
        raise RnnscopeError(f"columns: expected labels in the order {expected}, got {tuple(columns)}")
    return counts


def _weights_from_values(
    values: np.ndarray, columns: Sequence[str], *, noise_std: float, alpha: float, h0: np.ndarray | None
) -> LowRankWeights:
    """The inverse of ``loadings``: LowRankWeights from a (size, columns) matrix (any size)."""
    counts = _layout(columns)
    values = check_array(values, "values", ndim=2)
    if values.shape[1] != len(columns):
        raise RnnscopeError(f"values: expected {len(columns)} columns, got shape {values.shape}")
    blocks, start = {}, 0
    for block in _BLOCKS:
        blocks[block] = values[:, start : start + counts[block]]
        start += counts[block]
    size = values.shape[0]
    h0 = np.zeros(size) if h0 is None else h0
    return LowRankWeights(
        m=blocks["m"], n=blocks["n"], w_in=blocks["w_in"], w_out=blocks["w_out"], h0=h0,
        noise_std=noise_std, alpha=alpha,
    )


@dataclass(frozen=True, eq=False)
class Loadings:
    """One point per neuron in loading space.

    values: (size, columns), neuron i's row of (w_in, n, m, w_out); columns: labels (see ``loading_columns``);
    noise_std, alpha: the network's dynamics, kept so ``to_weights`` rebuilds a network.
    """

    values: np.ndarray
    columns: tuple[str, ...]
    noise_std: float = 0.05
    alpha: float = 0.2

    def __post_init__(self) -> None:
        _layout(self.columns)
        values = check_array(self.values, "values", ndim=2)
        if values.shape[1] != len(self.columns):
            raise RnnscopeError(f"values: expected {len(self.columns)} columns, got shape {values.shape}")
        values = values.copy()
        values.setflags(write=False)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "columns", tuple(self.columns))

    @property
    def size(self) -> int:
        return int(self.values.shape[0])

    def select(self, blocks: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
        """The columns of the given blocks (e.g. ``("m", "n", "w_in")``): values (size, k) and their labels."""
        unknown = [b for b in blocks if b not in _BLOCKS]
        if unknown:
            raise RnnscopeError(f"blocks: {unknown[0]!r} is not one of {_BLOCKS}")
        keep = [i for b in blocks for i, c in enumerate(self.columns) if c.startswith(b + "[")]
        return self.values[:, keep], tuple(self.columns[i] for i in keep)

    def to_weights(self, values: np.ndarray | None = None, *, h0: np.ndarray | None = None) -> LowRankWeights:
        """A network from a loading matrix with these columns: values (size', columns), any size'
        (default: these loadings); h0 (size',) defaults to zeros."""
        return _weights_from_values(
            self.values if values is None else values, self.columns, noise_std=self.noise_std, alpha=self.alpha, h0=h0
        )


def loadings(weights: LowRankWeights) -> Loadings:
    """The loading space of a low-rank network: (size, inputs + 2 rank + outputs), columns (w_in, n, m, w_out)."""
    if not isinstance(weights, LowRankWeights):
        raise RnnscopeError(f"weights: population analysis needs a low-rank network, got {type(weights).__name__}")
    columns = loading_columns(rank=weights.rank, inputs=weights.inputs, outputs=weights.outputs)
    values = np.hstack([weights.w_in, weights.n, weights.m, weights.w_out])
    return Loadings(values=values, columns=columns, noise_std=weights.noise_std, alpha=weights.alpha)


# ---------------------------------------------------------------------------------------------------------------
# Mixture fits
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PopulationFit:
    """Gaussian mixtures fitted to a loading cloud, one per number of populations in ``counts``.

    counts: (fits,) increasing numbers of populations P, one per fit (default 1..fits: a sweep from P = 1; a
    single fit of P populations has ``counts == [P]``); row p of every per-fit field is the fit of ``counts[p]``
    populations. bic: (fits,); stability: (fits,) mean adjusted Rand index between the labels of every pair of
    restarts (1 = every restart finds the same partition); labels: (fits, size) population of each neuron under
    the best restart; fractions[p]: (P,); means[p]: (P, columns); covariances[p]: (P, columns, columns);
    sizes[p]: (P,) neurons assigned to each population; converged: (fits,). chosen: the P with the lowest BIC
    among those fitted. method: "em" or "bayes".
    """

    columns: tuple[str, ...]
    method: str
    bic: np.ndarray
    stability: np.ndarray
    labels: np.ndarray
    fractions: tuple[np.ndarray, ...]
    means: tuple[np.ndarray, ...]
    covariances: tuple[np.ndarray, ...]
    sizes: tuple[np.ndarray, ...]
    converged: np.ndarray
    chosen: int
    restarts: int
    counts: np.ndarray | None = None

    def __post_init__(self) -> None:
        fits = int(np.shape(self.bic)[0])
        counts = np.arange(1, fits + 1) if self.counts is None else check_array(self.counts, "counts", dtype=int)
        if counts.shape != (fits,) or np.any(counts < 1) or np.any(np.diff(counts) <= 0):
            raise RnnscopeError(f"counts: expected {fits} increasing numbers of populations >= 1, got {counts.tolist()}")
        for name in ("stability", "labels", "fractions", "means", "covariances", "sizes", "converged"):
            if len(getattr(self, name)) != fits:
                raise RnnscopeError(f"{name}: expected one entry per fit ({fits}), got {len(getattr(self, name))}")
        for p, count in enumerate(counts):
            if self.means[p].shape[0] != count:
                raise RnnscopeError(f"means[{p}]: expected {count} populations, got shape {self.means[p].shape}")
        counts = counts.copy()
        counts.setflags(write=False)
        object.__setattr__(self, "counts", counts)

    @property
    def max_populations(self) -> int:
        return int(self.counts[-1])

    def _row(self, count: int, name: str) -> int:
        """Row of the fit with ``count`` populations; an error names ``name`` and the counts that were fitted."""
        count = check_int(count, name, minimum=1)
        rows = np.flatnonzero(self.counts == count)
        if rows.size == 0:
            raise RnnscopeError(f"{name}: no fit with {count} populations (fitted: {self.counts.tolist()})")
        return int(rows[0])

    def populations(self, count: int | None = None) -> np.ndarray:
        """(size,) labels of the fit with ``count`` populations (default: the chosen one)."""
        return self.labels[self._row(self.chosen if count is None else count, "count")]

    def to_dict(self) -> dict:
        return {
            "columns": list(self.columns),
            "method": self.method,
            "restarts": self.restarts,
            "chosen": self.chosen,
            "counts": [int(c) for c in self.counts],
            "bic": [float(b) for b in self.bic],
            "fits": [
                {
                    "populations": int(count),
                    "bic": float(self.bic[p]),
                    "stability": float(self.stability[p]),
                    "converged": bool(self.converged[p]),
                    "sizes": [int(s) for s in self.sizes[p]],
                    "fractions": self.fractions[p].tolist(),
                    "means": self.means[p].tolist(),
                    "covariances": self.covariances[p].tolist(),
                }
                for p, count in enumerate(self.counts)
            ],
        }


# The largest number of populations any fit here accepts, whatever the size. The paper's networks need 1 to 3
# populations and BIC rises well before 20 on every reference network; beyond that a fit splits the cloud into
# groups of a few dozen neurons whose restarts disagree, while each fit costs time growing with P (EM steps are
# O(size P dims^2) and need more iterations), so a larger P is almost always a typo or a misunderstanding.
MAX_POPULATIONS = 20


def population_bound(size: int, dims: int) -> int:
    """The largest P a mixture fit of ``size`` points in ``dims`` dimensions accepts: each full-covariance
    population needs at least ``dims + 1`` points for a non-singular covariance, and no fit goes beyond
    ``MAX_POPULATIONS``."""
    return min(MAX_POPULATIONS, size // (dims + 1))


def _check_count(count: Any, name: str, *, size: int, dims: int) -> int:
    """``count`` populations as an int within ``population_bound(size, dims)``; a one-line error naming ``name``."""
    count = check_int(count, name, minimum=1)
    if count > MAX_POPULATIONS:
        raise RnnscopeError(
            f"{name}: {count} is above the cap of {MAX_POPULATIONS} populations (trained networks need a handful; "
            f"larger mixtures split the loadings into unstable groups and take minutes to fit)"
        )
    if size < count * (dims + 1):
        raise RnnscopeError(
            f"{name}: {size} neurons are too few for {count} full-covariance populations in {dims} loading "
            f"dimensions (each needs at least {dims + 1} neurons, so at most {size // (dims + 1)} populations)"
        )
    return count


def _free_parameters(components: int, dims: int) -> int:
    return (components - 1) + components * dims + components * dims * (dims + 1) // 2


@dataclass(frozen=True, eq=False)
class _Mixture:
    """The best of the restarts with one number of populations (one row of a PopulationFit)."""

    bic: float
    stability: float
    converged: bool
    labels: np.ndarray  # (size,)
    fractions: np.ndarray  # (P,)
    means: np.ndarray  # (P, dims)
    covariances: np.ndarray  # (P, dims, dims)
    sizes: np.ndarray  # (P,)


def _fit_mixture(values: np.ndarray, count: int, seeds: Sequence[int], *, method: str, bar: Any) -> _Mixture:
    """Fit ``count`` components once per seed (values: (size, dims)); keep the best restart. ``bar`` ticks once
    per restart."""
    size, dims = values.shape
    models, restart_labels = [], []
    for seed in seeds:
        if method == "em":
            model = GaussianMixture(n_components=count, covariance_type="full", random_state=seed, max_iter=500)
        else:
            model = BayesianGaussianMixture(
                n_components=count, covariance_type="full", random_state=seed, max_iter=1000,
                mean_precision_prior=1e5, weight_concentration_prior_type="dirichlet_distribution",
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SklearnConvergenceWarning)
            model.fit(values)
        models.append(model)
        restart_labels.append(model.predict(values))
        bar.update(1)
    best = int(np.argmax([m.lower_bound_ for m in models]))
    model = models[best]
    if not model.converged_:
        warnings.warn(
            f"mixture with {count} populations did not converge in {model.max_iter} iterations",
            ConvergenceWarning, stacklevel=3,  # the caller of fit_populations
        )
    log_likelihood = float(model.score(values)) * size
    pairs = [
        adjusted_rand_score(restart_labels[i], restart_labels[j])
        for i in range(len(seeds)) for j in range(i + 1, len(seeds))
    ]
    return _Mixture(
        bic=-2.0 * log_likelihood + _free_parameters(count, dims) * math.log(size),
        stability=float(np.mean(pairs)) if pairs else 1.0,
        converged=bool(model.converged_),
        labels=restart_labels[best],
        fractions=np.asarray(model.weights_, dtype=np.float64) / np.sum(model.weights_),
        means=np.asarray(model.means_, dtype=np.float64),
        covariances=np.asarray(model.covariances_, dtype=np.float64),
        sizes=np.bincount(restart_labels[best], minlength=count),
    )


def fit_populations(
    points: Loadings | np.ndarray,
    *,
    rng: np.random.Generator | int,
    max_populations: int = 5,
    min_populations: int = 1,
    restarts: int = 10,
    method: str = "em",
    columns: tuple[str, ...] | None = None,
    progress: bool = True,
) -> PopulationFit:
    """Fit full-covariance Gaussian mixtures with min_populations..max_populations components (default 1..5: the
    BIC sweep; ``min_populations = max_populations = P`` fits only P).

    points: Loadings, or (size, dims) values (then ``columns`` names them). Each P is fitted ``restarts`` times
    from independent (k-means) initialisations; the restart with the highest likelihood (EM) or evidence lower
    bound ("bayes": a variational mixture whose component means are pinned to the cloud's mean by a strong prior,
    mean precision 1e5, as the paper: populations differ by their covariances) is kept, and the labels of all restarts give
    the stability (mean pairwise adjusted Rand index). BIC = -2 log L + parameters log(size), computed the same way
    for both methods. P may be at most ``population_bound(size, dims)`` (dims + 1 points per population, and
    ``MAX_POPULATIONS``).

    Seeds: the restarts of P = 1, 2, ... draw their seeds from ``rng`` in that order, and the seeds of the P below
    ``min_populations`` are drawn and skipped. So the fit of P populations is the same alone as inside a sweep
    from 1 on the same generator state, and leaves the generator in the same state as that sweep.
    progress: a tqdm bar (one tick per restart) once the fits take more than a second.
    """
    if isinstance(points, Loadings):
        values, columns = points.values, points.columns
    else:
        values = check_array(points, "points", ndim=2)
        columns = tuple(columns) if columns is not None else tuple(f"x[{i}]" for i in range(values.shape[1]))
    size, dims = values.shape
    if len(columns) != dims:
        raise RnnscopeError(f"columns: expected {dims} labels, got {len(columns)}")
    max_populations = _check_count(max_populations, "max_populations", size=size, dims=dims)
    min_populations = check_int(min_populations, "min_populations", minimum=1, maximum=max_populations)
    restarts = check_int(restarts, "restarts", minimum=1)
    if method not in ("em", "bayes"):
        raise RnnscopeError(f"method: expected 'em' or 'bayes', got {method!r}")
    rng = as_generator(rng, name="rng")
    seeds = [[int(rng.integers(2**31 - 1)) for _ in range(restarts)] for _ in range(max_populations)]
    counts = range(min_populations, max_populations + 1)
    fits = []
    with tqdm(total=len(counts) * restarts, desc=f"{method} mixtures, P = {min_populations}..{max_populations}",
              unit="fit", disable=not progress, delay=1.0, leave=False) as bar:
        for count in counts:
            fits.append(_fit_mixture(values, count, seeds[count - 1], method=method, bar=bar))
    bic = np.array([f.bic for f in fits])
    return PopulationFit(
        columns=tuple(columns), method=method, bic=bic, stability=np.array([f.stability for f in fits]),
        labels=np.stack([f.labels for f in fits]), fractions=tuple(f.fractions for f in fits),
        means=tuple(f.means for f in fits), covariances=tuple(f.covariances for f in fits),
        sizes=tuple(f.sizes for f in fits), converged=np.array([f.converged for f in fits]),
        chosen=int(counts[int(np.argmin(bic))]), restarts=restarts, counts=np.asarray(counts),
    )


# ---------------------------------------------------------------------------------------------------------------
# The population model: THE sampler of networks
# ---------------------------------------------------------------------------------------------------------------
def _psd_sqrt(covariance: np.ndarray) -> np.ndarray:
    """A (d, d) factor L with L L^T = covariance (symmetric PSD; tiny negative eigenvalues clipped)."""
    eigenvalues, vectors = np.linalg.eigh(covariance)
    return vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def _counts(fractions: np.ndarray, size: int) -> np.ndarray:
    """Neurons per population: ``fractions * size`` rounded by largest remainders (sums to size)."""
    exact = fractions * size
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: size - counts.sum()]] += 1
    return counts


@dataclass(frozen=True, eq=False)
class PopulationModel:
    """A mixture of Gaussian populations in loading space: the generative model of networks of any size.

    fractions: (P,) sum to 1; means: (P, columns); covariances: (P, columns, columns) symmetric PSD;
    columns: loading labels (see ``loading_columns``); noise_std, alpha: dynamics of the networks it makes.
    Also the mixture the mean-field flow reads (``rnnscope.analysis._latent``), through ``moments`` and ``overlaps``.
    """

    fractions: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    columns: tuple[str, ...]
    noise_std: float = 0.05
    alpha: float = 0.2

    def __post_init__(self) -> None:
        columns = tuple(self.columns)
        _layout(columns)
        fractions = check_array(self.fractions, "fractions", ndim=1)
        count, dims = fractions.shape[0], len(columns)
        means = check_array(self.means, "means", shape=(count, dims))
        covariances = check_array(self.covariances, "covariances", shape=(count, dims, dims))
        if count < 1:
            raise RnnscopeError("fractions: need at least one population")
        if np.any(fractions < 0) or abs(fractions.sum() - 1.0) > 1e-6:
            raise RnnscopeError(f"fractions: must be >= 0 and sum to 1, got {fractions.tolist()}")
        for p, cov in enumerate(covariances):
            scale = max(1.0, float(np.abs(cov).max()))
            if not np.allclose(cov, cov.T, atol=1e-8 * scale):
                raise RnnscopeError(f"covariances[{p}]: not symmetric")
            smallest = float(np.linalg.eigvalsh(cov).min())
            if smallest < -1e-8 * scale:
                raise RnnscopeError(f"covariances[{p}]: not positive semidefinite (smallest eigenvalue {smallest:.3g})")
        check_nonnegative(self.noise_std, "noise_std")
        check_probability(self.alpha, "alpha")
        for name, value in (("fractions", fractions / fractions.sum()), ("means", means), ("covariances", covariances)):
            value = value.copy()
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "columns", columns)

    @property
    def populations(self) -> int:
        return int(self.fractions.shape[0])

    @property
    def rank(self) -> int:
        return _layout(self.columns)["m"]

    @property
    def inputs(self) -> int:
        return _layout(self.columns)["w_in"]

    @property
    def outputs(self) -> int:
        return _layout(self.columns)["w_out"]

    # -- moments --------------------------------------------------------------------------------------------------
    def block(self, name: str) -> np.ndarray:
        """(count,) indices into ``columns`` of the block ``name`` ("w_in", "n", "m" or "w_out"), in label order."""
        if name not in _BLOCKS:
            raise RnnscopeError(f"name: {name!r} is not one of {_BLOCKS}")
        return np.array([i for i, c in enumerate(self.columns) if c.startswith(name + "[")], dtype=int)

    def moments(self, blocks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The mixture restricted to ``blocks`` in the order given (e.g. ``("m", "n", "w_in")``):
        means (P, k) and covariances (P, k, k), k the number of columns of those blocks."""
        keep = np.concatenate([self.block(name) for name in blocks]) if len(blocks) else np.zeros(0, dtype=int)
        return self.means[:, keep], self.covariances[:, keep][:, :, keep]

    def overlaps(self) -> np.ndarray:
        """(rank, rank): ``<n_i m_j>`` over the mixture, second moments including the means (the overlaps of a
        network of infinite size drawn from the model)."""
        n, m = self.block("n"), self.block("m")
        second = self.covariances[:, n][:, :, m] + self.means[:, n, None] * self.means[:, None, m]
        return np.einsum("p,pij->ij", self.fractions, second)

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_weights(cls, weights: LowRankWeights, populations: np.ndarray | None = None) -> PopulationModel:
        """Empirical fractions, means and covariances (ddof = 1) of the labelled neurons of a network.

        populations: (size,) integer labels 0..P-1; None puts every neuron in one Gaussian.
        """
        points = loadings(weights)
        labels = np.zeros(points.size, dtype=int) if populations is None else _check_labels(populations, points.size)
        count = int(labels.max()) + 1
        fractions, means, covariances = [], [], []
        for p in range(count):
            members = points.values[labels == p]
            if members.shape[0] < 2:
                raise RnnscopeError(f"populations: population {p} has {members.shape[0]} neuron(s); need at least 2")
            fractions.append(members.shape[0] / points.size)
            means.append(members.mean(axis=0))
            covariances.append(np.atleast_2d(np.cov(members, rowvar=False)))
        return cls(
            fractions=np.asarray(fractions), means=np.asarray(means), covariances=np.asarray(covariances),
            columns=points.columns, noise_std=weights.noise_std, alpha=weights.alpha,
        )

    @classmethod
    def from_fit(
        cls, fit: PopulationFit, populations: int | None = None, *, noise_std: float = 0.05, alpha: float = 0.2
    ) -> PopulationModel:
        """The fitted mixture with ``populations`` components (default: the BIC choice)."""
        row = fit._row(fit.chosen if populations is None else populations, "populations")
        return cls(
            fractions=fit.fractions[row], means=fit.means[row], covariances=fit.covariances[row],
            columns=fit.columns, noise_std=noise_std, alpha=alpha,
        )

    # -- sampling -------------------------------------------------------------------------------------------------
    def sample_loadings(
        self, size: int, *, rng: np.random.Generator | int, zero_mean: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw one network's loadings: values (size, columns) and populations (size,).

        Each population gets ``round(fraction * size)`` neurons (largest remainders), drawn from
        N(mean, covariance), or N(0, covariance) with ``zero_mean`` (the paper's convention; beware that it
        drops the between-population part of the covariance, which can flip a readout's sign when the
        populations split a unimodal cloud).
        """
        values, labels = self._draw(1, size, rng=rng, zero_mean=zero_mean)
        return values[0], labels

    def sample(self, size: int, *, rng: np.random.Generator | int, zero_mean: bool = False) -> LowRankWeights:
        """One network of ``size`` neurons (h0 = 0)."""
        values, _ = self.sample_loadings(size, rng=rng, zero_mean=zero_mean)
        return _weights_from_values(values, self.columns, noise_std=self.noise_std, alpha=self.alpha, h0=None)

    def sample_many(
        self, networks: int, size: int, *, rng: np.random.Generator | int, zero_mean: bool = False
    ) -> LowRankBatch:
        """``networks`` independent networks of ``size`` neurons, stacked for one batched simulation."""
        networks = check_int(networks, "networks", minimum=1)
        values, _ = self._draw(networks, size, rng=rng, zero_mean=zero_mean)
        counts = _layout(self.columns)
        blocks, start = {}, 0
        for block in _BLOCKS:
            blocks[block] = values[:, :, start : start + counts[block]]
            start += counts[block]
        return LowRankBatch(
            m=blocks["m"], n=blocks["n"], w_in=blocks["w_in"], w_out=blocks["w_out"], h0=np.zeros(values.shape[:2]),
            noise_std=self.noise_std, alpha=self.alpha,
        )

    def _draw(
        self, networks: int, size: int, *, rng: np.random.Generator | int, zero_mean: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """values (networks, size, columns), populations (size,) shared by all networks."""
        size = check_int(size, "size", minimum=1)
        rng = as_generator(rng, name="rng")
        counts = _counts(self.fractions, size)
        labels = np.repeat(np.arange(self.populations), counts)
        dims = len(self.columns)
        values = np.empty((networks, size, dims))
        start = 0
        for p, count in enumerate(counts):
            factor = _psd_sqrt(self.covariances[p])
            draws = rng.standard_normal((networks, count, dims)) @ factor.T
            values[:, start : start + count] = draws if zero_mean else draws + self.means[p]
            start += count
        return values, labels

    def sampler(self, *, zero_mean: bool = False, dtype: torch.dtype = torch.float64) -> PopulationSampler:
        """The same mixture as a differentiable, trainable sampler (see ``PopulationSampler``)."""
        return PopulationSampler(self, zero_mean=zero_mean, dtype=dtype)

    def to_dict(self) -> dict:
        return {
            "columns": list(self.columns),
            "fractions": self.fractions.tolist(),
            "means": self.means.tolist(),
            "covariances": self.covariances.tolist(),
            "noise_std": float(self.noise_std),
            "alpha": float(self.alpha),
        }


def _cholesky(covariance: np.ndarray) -> np.ndarray:
    """(d, d) lower-triangular L with L L^T = covariance + a jitter that makes it positive definite (a singular
    covariance gets the smallest jitter 1e-10 .. 1e-2 times its scale that a Cholesky factorisation accepts)."""
    scale = max(1.0, float(np.abs(covariance).max()))
    eye = np.eye(covariance.shape[0])
    for jitter in (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2):
        try:
            return np.linalg.cholesky(covariance + jitter * scale * eye)
        except np.linalg.LinAlgError:
            continue
    raise RnnscopeError("covariances: no Cholesky factor even with a jitter of 1e-2 times the scale")


class PopulationSampler(torch.nn.Module):
    """A PopulationModel as a differentiable sampler whose parameters train by gradient descent.

    Population p's loadings are ``mean_p + z L_p^T`` (reparametrised samples) with z standard normal and L_p
    lower triangular with a positive diagonal ``exp(log_diagonal_p)``, so ``L_p L_p^T`` is always a valid
    covariance. Trainable parameters: ``means`` (P, columns) (frozen at zero with ``zero_mean``), ``lower``
    (P, columns, columns) (only its strictly lower triangle is used) and ``log_diagonal`` (P, columns).
    Fractions, columns and dynamics are fixed; population p holds neurons ``_counts(fractions, size)`` in order,
    as ``PopulationModel.sample`` does. Starts at the model (a singular covariance gets a tiny jitter).
    """

    def __init__(self, model: PopulationModel, *, zero_mean: bool = False, dtype: torch.dtype = torch.float64):
        super().__init__()
        if not isinstance(model, PopulationModel):
            raise RnnscopeError(f"model: expected a PopulationModel, got {type(model).__name__}")
        self.model = model
        self.zero_mean = bool(zero_mean)
        factors = np.stack([_cholesky(c) for c in model.covariances])  # (P, D, D)
        means = np.zeros_like(model.means) if zero_mean else model.means
        self.means = torch.nn.Parameter(torch.tensor(means, dtype=dtype), requires_grad=not zero_mean)
        self.lower = torch.nn.Parameter(torch.tensor(np.tril(factors, -1), dtype=dtype))
        diagonal = np.diagonal(factors, axis1=1, axis2=2)
        self.log_diagonal = torch.nn.Parameter(torch.tensor(np.log(diagonal), dtype=dtype))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.model.columns

    def factors(self) -> torch.Tensor:
        """(P, columns, columns) lower-triangular factors L_p."""
        return torch.tril(self.lower, -1) + torch.diag_embed(torch.exp(self.log_diagonal))

    def covariances(self) -> torch.Tensor:
        """(P, columns, columns) L_p L_p^T."""
        factors = self.factors()
        return factors @ factors.transpose(-1, -2)

    def normals(self, size: int, *, generator: torch.Generator, networks: int | None = None) -> torch.Tensor:
        """Standard normals z: (size, columns), or (networks, size, columns)."""
        size = check_int(size, "size", minimum=1)
        shape = (size, len(self.columns)) if networks is None else (
            check_int(networks, "networks", minimum=1), size, len(self.columns))
        return torch.randn(shape, generator=generator, dtype=self.lower.dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Loadings (..., size, columns) from standard normals z (..., size, columns); differentiable in the
        parameters. Rows are grouped by population in order (``populations(size)`` gives the labels)."""
        counts = [int(c) for c in _counts(self.model.fractions, int(z.shape[-2]))]
        factors = self.factors()
        pieces = [
            self.means[p] + draws @ factors[p].T
            for p, draws in enumerate(torch.split(z, counts, dim=-2))
        ]
        return torch.cat(pieces, dim=-2)

    def populations(self, size: int) -> np.ndarray:
        """(size,) population of each row of a draw of ``size`` neurons."""
        return np.repeat(np.arange(self.model.populations), _counts(self.model.fractions, size))

    def to_model(self) -> PopulationModel:
        """The current parameters as a PopulationModel (covariances L L^T, same fractions and dynamics)."""
        with torch.no_grad():
            means = self.means.detach().cpu().numpy().astype(np.float64)
            covariances = self.covariances().detach().cpu().numpy().astype(np.float64)
        covariances = (covariances + covariances.transpose(0, 2, 1)) / 2
        return PopulationModel(
            fractions=self.model.fractions, means=means, covariances=covariances, columns=self.model.columns,
            noise_std=self.model.noise_std, alpha=self.model.alpha,
        )


def _check_labels(populations: Any, size: int) -> np.ndarray:
    labels = np.asarray(populations)
    if labels.shape != (size,):
        raise RnnscopeError(f"populations: expected shape ({size},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise RnnscopeError("populations: expected non-negative integer labels")
    present = np.unique(labels)
    if not np.array_equal(present, np.arange(present.shape[0])):
        raise RnnscopeError(f"populations: labels must be 0..P-1 with none missing, got {present.tolist()}")
    return labels.astype(int)


# ---------------------------------------------------------------------------------------------------------------
# Batched simulation and evaluation
# ---------------------------------------------------------------------------------------------------------------
def _as_batch(networks: LowRankBatch | LowRankWeights | Sequence[LowRankWeights]) -> LowRankBatch:
    if isinstance(networks, LowRankBatch):
        return networks
    if isinstance(networks, LowRankWeights):
        return stack_weights([networks])
    return stack_weights(list(networks))


def _chunks(trials: int, networks: int, steps: int, size: int, memory_mb: float) -> int:
    """Trials per chunk so the per-chunk tensors (drive, noise, forcing: float32) stay within ``memory_mb``."""
    per_trial = 3 * 4 * networks * steps * size
    return max(1, min(trials, int(memory_mb * 2**20 // per_trial)))


def simulate_networks(
    networks: LowRankBatch | LowRankWeights | Sequence[LowRankWeights],
    inputs: np.ndarray,
    *,
    rng: np.random.Generator | int,
    emit: Callable[[torch.Tensor], torch.Tensor] | None = None,
    shared_noise: bool = True,
    memory_mb: float = 128.0,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Run every network on the same trials in one batched simulation (float32, chunked over trials).

    inputs: (trials, time, inputs). Each neuron gets private noise; with ``shared_noise`` (default) neuron i of
    every network receives the same noise sequence on a given trial (common random numbers: each network's noise
    is still a valid independent draw for that network, comparisons between networks get less variance, and the
    simulation draws ``networks`` times fewer normals); otherwise every network draws its own. emit maps the states after each
    step, x (networks, chunk, size), to what is kept; the default is the readout z = tanh(x) @ w_out / size.
    Returns (networks, trials, time, features) (features = outputs by default).
    """
    batch = _as_batch(networks)
    inputs = check_array(inputs, "inputs", ndim=3)
    if inputs.shape[-1] != batch.w_in.shape[-1]:
        raise RnnscopeError(f"inputs: the networks take {batch.w_in.shape[-1]} inputs, got shape {inputs.shape}")
    rng = as_generator(rng, name="rng")
    if emit is None and torch.device(device).type == "cpu":
        # the fused CPU kernel: every network and trial in one call, noise generated in the kernel (one seed for
        # all networks gives them the same noise, as shared_noise asks)
        from rnnscope.models._fast import fast_outputs

        seeds = [int(rng.integers(2**63 - 1))] * batch.networks if shared_noise else [
            int(s) for s in rng.integers(2**63 - 1, size=batch.networks)]
        return fast_outputs(batch.arrays(), inputs, seeds=seeds, alpha=batch.alpha, noise_std=batch.noise_std).astype(np.float64)
    generator = torch.Generator(device=device).manual_seed(int(rng.integers(2**63 - 1)))
    as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
    m, n, w_in, w_out, h0 = (as_tensor(a) for a in (batch.m, batch.n, batch.w_in, batch.w_out, batch.h0))
    size = batch.size
    n_scaled = n / size
    m_t = m.transpose(-1, -2)

    def recurrent(rates: torch.Tensor) -> torch.Tensor:  # rates (networks, chunk, size)
        return (rates @ n_scaled) @ m_t

    if emit is None:
        w_out_scaled = w_out / size

        def emit(x: torch.Tensor) -> torch.Tensor:
            # tanh(x) = 2 sigmoid(2x) - 1, several times faster than torch.tanh on CPU
            return (2.0 * torch.sigmoid(2.0 * x) - 1.0) @ w_out_scaled

    trials, steps = inputs.shape[:2]
    chunk = _chunks(trials, batch.networks, steps, size, memory_mb)
    pieces = []
    with torch.no_grad():
        for start in range(0, trials, chunk):
            u = as_tensor(inputs[start : start + chunk])
            drive = input_drive(u, w_in)  # (networks, chunk, time, size)
            noise = None
            if batch.noise_std > 0 and shared_noise:
                noise = draw_noise(tuple(drive.shape[1:]), generator=generator, device=device).expand(drive.shape)
            elif batch.noise_std > 0:
                noise = draw_noise(tuple(drive.shape), generator=generator, device=device)
            out = integrate(
                drive, h0[:, None, :], recurrent, emit, alpha=batch.alpha, noise_std=batch.noise_std, noise=noise
            )
            pieces.append(out.cpu().numpy())
            del drive, noise, out
    return np.concatenate(pieces, axis=1).astype(np.float64)


@dataclass(frozen=True, eq=False)
class NetworkAccuracy:
    """Accuracy of many networks on one batch of trials.

    correct: (networks, trials) bool, the task's accuracy rule (sign of the mean output over the decision epoch
    equals the sign of the mean target there); accuracy: (networks,).
    """

    correct: np.ndarray
    accuracy: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))

    def by_condition(self, conditions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy per value of a condition (trials,): (values (groups,), accuracy (networks, groups))."""
        conditions = np.asarray(conditions)
        if conditions.shape != (self.correct.shape[1],):
            raise RnnscopeError(f"conditions: expected shape ({self.correct.shape[1]},), got {conditions.shape}")
        values = np.unique(conditions)
        return values, np.stack([self.correct[:, conditions == v].mean(axis=1) for v in values], axis=1)

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy.tolist(), "mean": self.mean}


def evaluate_networks(
    networks: LowRankBatch | LowRankWeights | Sequence[LowRankWeights],
    trials: TrialBatch,
    *,
    rng: np.random.Generator | int,
    memory_mb: float = 128.0,
    device: str | torch.device = "cpu",
) -> NetworkAccuracy:
    """Accuracy of every network on ``trials`` (one batched simulation)."""
    outputs = simulate_networks(networks, trials.inputs, rng=rng, memory_mb=memory_mb, device=device)
    correct = np.stack([correct_trials(o, trials) for o in outputs])
    return NetworkAccuracy(correct=correct, accuracy=correct.mean(axis=1))


# ---------------------------------------------------------------------------------------------------------------
# Resampling and the minimal number of populations
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Resampling:
    """Networks resampled from a population model and their accuracy.

    accuracy: (networks,); trained_accuracy: the original network on the same trials (NaN if not evaluated);
    populations: P of the model; size: neurons of each resampled network; zero_mean: whether means were dropped.
    """

    accuracy: np.ndarray
    trained_accuracy: float
    populations: int
    size: int
    zero_mean: bool

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))

    def to_dict(self) -> dict:
        return {
            "populations": self.populations,
            "size": self.size,
            "zero_mean": self.zero_mean,
            "accuracy": self.accuracy.tolist(),
            "mean": self.mean,
            "trained_accuracy": None if math.isnan(self.trained_accuracy) else float(self.trained_accuracy),
        }


def resample(
    model: PopulationModel,
    trials: TrialBatch,
    *,
    rng: np.random.Generator | int,
    networks: int = 20,
    size: int = 512,
    zero_mean: bool = False,
    trained: LowRankWeights | None = None,
    memory_mb: float = 128.0,
    device: str | torch.device = "cpu",
) -> Resampling:
    """Draw ``networks`` networks of ``size`` neurons from ``model`` and evaluate them on ``trials`` in one batched
    simulation (with ``trained`` evaluated in a separate run on the same trials, if given)."""
    rng = as_generator(rng, name="rng")
    batch = model.sample_many(networks, size, rng=rng, zero_mean=zero_mean)
    result = evaluate_networks(batch, trials, rng=rng, memory_mb=memory_mb, device=device)
    trained_accuracy = math.nan
    if trained is not None:
        trained_accuracy = evaluate_networks(trained, trials, rng=rng, memory_mb=memory_mb, device=device).mean
    return Resampling(
        accuracy=result.accuracy, trained_accuracy=trained_accuracy, populations=model.populations,
        size=batch.size, zero_mean=zero_mean,
    )


@dataclass(frozen=True, eq=False)
class MinimalPopulations:
    """The smallest number of populations whose resampled networks match the trained network.

    accuracy: (max_populations, networks) accuracy of each network resampled from the mixture fit, row p for
    P = p + 1 (rows after the first success are NaN when the search stopped early); retrained_accuracy:
    (max_populations, networks) the same after retraining the population model (``retrain``; all NaN without);
    retrain_losses: (max_populations, retrain_epochs) the retraining loss per epoch (NaN rows where not
    retrained; (max_populations, 0) without ``retrain``); trained_accuracy: the trained network's accuracy;
    tolerance: P succeeds when the mean accuracy, before or after retraining, is >= trained_accuracy - tolerance;
    populations: the minimal P, or None when no P up to max_populations succeeds; fit: the mixture fits the
    models came from; retrained_models: the retrained PopulationModel per P (None where not retrained).
    """

    accuracy: np.ndarray
    trained_accuracy: float
    tolerance: float
    populations: int | None
    zero_mean: bool
    size: int
    fit: PopulationFit
    retrain: bool = False
    retrained_accuracy: np.ndarray | None = None
    retrain_losses: np.ndarray | None = None
    retrained_models: tuple[PopulationModel | None, ...] = ()

    def __post_init__(self) -> None:
        rows = self.accuracy.shape[0]
        if self.retrained_accuracy is None:
            object.__setattr__(self, "retrained_accuracy", np.full(self.accuracy.shape, np.nan))
        if self.retrain_losses is None:
            object.__setattr__(self, "retrain_losses", np.full((rows, 0), np.nan))
        if not self.retrained_models:
            object.__setattr__(self, "retrained_models", (None,) * rows)

    @property
    def mean_accuracy(self) -> np.ndarray:
        """(max_populations,) mean accuracy per P (NaN where not evaluated)."""
        return _nanmean_rows(self.accuracy)

    @property
    def mean_retrained_accuracy(self) -> np.ndarray:
        """(max_populations,) mean accuracy per P after retraining (NaN where not retrained)."""
        return _nanmean_rows(self.retrained_accuracy)

    def to_dict(self) -> dict:
        nan_free = lambda values: [None if math.isnan(a) else float(a) for a in values]  # noqa: E731
        return {
            "populations": self.populations,
            "trained_accuracy": float(self.trained_accuracy),
            "tolerance": float(self.tolerance),
            "zero_mean": self.zero_mean,
            "size": self.size,
            "mean_accuracy": nan_free(self.mean_accuracy),
            "accuracy": [nan_free(row) for row in self.accuracy],
            "retrain": self.retrain,
            "mean_retrained_accuracy": nan_free(self.mean_retrained_accuracy),
            "retrained_accuracy": [nan_free(row) for row in self.retrained_accuracy],
            "retrain_losses": [nan_free(row) for row in self.retrain_losses],
            "retrained_models": [None if m is None else m.to_dict() for m in self.retrained_models],
            "bic": [float(b) for b in self.fit.bic],
        }


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1)


def minimal_populations(
    weights: LowRankWeights,
    trials: TrialBatch,
    *,
    rng: np.random.Generator | int,
    max_populations: int = 3,
    networks: int = 10,
    size: int | None = None,
    tolerance: float = 0.05,
    zero_mean: bool = False,
    method: str = "bayes",
    restarts: int = 5,
    stop_early: bool = True,
    retrain: bool = False,
    task: Task | None = None,
    retrain_epochs: int = 200,
    retrain_size: int | None = None,
    retrain_trials: int = 32,
    retrain_lr: float = 0.05,
    memory_mb: float = 128.0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> MinimalPopulations:
    """Smallest P in 1..max_populations whose resampled networks reach the trained accuracy within ``tolerance``.

    For each P the population model is built from the network's own neurons, labelled by the mixture fit
    (empirical fractions, means and covariances, as the paper). By default each population keeps its mean
    (``zero_mean=False``): the mixture then reproduces the whole cloud's covariance (within plus between
    populations), so splitting a unimodal cloud in two cannot lose a covariance that the single Gaussian keeps
    (with zero means, the dropped between-population term can flip the sign of an overlap such as the readout's
    and give accuracy near 0). P = 1 uses one Gaussian of all neurons.

    With ``retrain`` (needs ``task``, which draws the training trials), each P's model is also retrained by
    gradient descent on its means and Cholesky factors (``rnnscope.analysis._retrain.retrain_population_model``),
    then resampled at ``size`` and evaluated on ``trials``; P succeeds if its networks reach the target before
    or after retraining. Retraining takes ``retrain_epochs`` Adam steps at learning rate ``retrain_lr``, each on
    ``retrain_trials`` new trials and a fresh network of ``retrain_size`` neurons (default ``min(size, 512)``:
    the parameters do not depend on the size, and finite-size effects only shrink at larger sizes). On
    mante_lr_fig1 (N = 512), two retrained populations reach about 0.99 after 200 epochs (0.93 after 50) and one
    about 0.78.

    progress: tqdm bars for the mixture fits and for the P evaluated, once a stage takes more than a second.
    """
    rng = as_generator(rng, name="rng")
    max_populations = check_int(max_populations, "max_populations", minimum=1)
    networks = check_int(networks, "networks", minimum=1)
    tolerance = check_probability(tolerance, "tolerance")
    size = weights.size if size is None else check_int(size, "size", minimum=1)
    retrain = bool(retrain)
    if retrain:
        if task is None:
            raise RnnscopeError("task: retrain=True needs the task, to draw the retraining trials")
        retrain_epochs = check_int(retrain_epochs, "retrain_epochs", minimum=1)
        retrain_size = max(2, min(size, 512)) if retrain_size is None else check_int(
            retrain_size, "retrain_size", minimum=2)
        from rnnscope.analysis._retrain import retrain_population_model
    fit = fit_populations(
        loadings(weights), rng=rng, max_populations=max_populations, restarts=restarts, method=method, progress=progress
    )
    trained_accuracy = evaluate_networks(weights, trials, rng=rng, memory_mb=memory_mb, device=device).mean
    accuracy = np.full((max_populations, networks), np.nan)
    retrained_accuracy = np.full((max_populations, networks), np.nan)
    losses = np.full((max_populations, retrain_epochs if retrain else 0), np.nan)
    models: list[PopulationModel | None] = [None] * max_populations
    found = None
    bar = tqdm(range(1, max_populations + 1), desc="minimal populations", unit="P", disable=not progress, delay=1.0,
               leave=False)
    for count in bar:
        labels = fit.populations(count)
        labels = _relabel(labels)
        model = PopulationModel.from_weights(weights, labels if count > 1 else None)
        result = resample(
            model, trials, rng=rng, networks=networks, size=size, zero_mean=zero_mean,
            memory_mb=memory_mb, device=device,
        )
        accuracy[count - 1] = result.accuracy
        success = result.mean >= trained_accuracy - tolerance
        if retrain:
            retraining = retrain_population_model(
                model, task, rng=rng, epochs=retrain_epochs, size=retrain_size, trials=retrain_trials,
                lr=retrain_lr, zero_mean=zero_mean,
            )
            retrained, losses[count - 1] = retraining.model, retraining.losses
            models[count - 1] = retrained
            again = resample(
                retrained, trials, rng=rng, networks=networks, size=size, zero_mean=zero_mean,
                memory_mb=memory_mb, device=device,
            )
            retrained_accuracy[count - 1] = again.accuracy
            success = success or again.mean >= trained_accuracy - tolerance
        if found is None and success:
            found = count
            if stop_early:
                break
    bar.close()
    return MinimalPopulations(
        accuracy=accuracy, trained_accuracy=trained_accuracy, tolerance=tolerance, populations=found,
        zero_mean=zero_mean, size=size, fit=fit, retrain=retrain, retrained_accuracy=retrained_accuracy,
        retrain_losses=losses, retrained_models=tuple(models),
    )


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..P'-1 over the populations actually present (a fit may leave components empty),
    dropping nothing; populations of fewer than 2 neurons are merged into the largest."""
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    largest = int(np.argmax(counts))
    inverse = np.where(counts[inverse] < 2, largest, inverse)
    _, inverse = np.unique(inverse, return_inverse=True)
    return inverse.astype(int)


# ---------------------------------------------------------------------------------------------------------------
# Inactivation, gain and effective overlaps
# ---------------------------------------------------------------------------------------------------------------
def scale_population(
    weights: LowRankWeights, populations: np.ndarray, population: int, *, gain: float = 0.0
) -> LowRankWeights:
    """A copy of ``weights`` where the neurons of ``population`` have their rates scaled by ``gain``.

    Scales the rows of ``n`` and ``w_out`` (what the neurons send), and with ``gain = 0`` also zeroes ``m``
    (silencing, as the paper: the neurons neither send nor receive the latent). populations: (size,) labels.
    """
    labels = _check_labels(populations, weights.size)
    population = check_int(population, "population", minimum=0, maximum=int(labels.max()))
    gain = check_nonnegative(gain, "gain")
    factor = np.where(labels == population, gain, 1.0)[:, None]
    m = weights.m * factor if gain == 0 else weights.m
    return LowRankWeights(
        m=m, n=weights.n * factor, w_in=weights.w_in, w_out=weights.w_out * factor, h0=weights.h0,
        noise_std=weights.noise_std, alpha=weights.alpha,
    )


@dataclass(frozen=True, eq=False)
class Inactivation:
    """Accuracy per condition group of the intact network and with each population scaled by ``gain``.

    groups: (groups,) values of the grouping condition; accuracy: (1 + populations, groups), row 0 the intact
    network and row 1 + p the network with population p scaled; gain: 0 for silencing.
    """

    group_by: str
    groups: np.ndarray
    accuracy: np.ndarray
    gain: float

    @property
    def populations(self) -> int:
        return int(self.accuracy.shape[0] - 1)

    def to_dict(self) -> dict:
        groups = [g.item() if isinstance(g, np.generic) else g for g in self.groups]
        return {
            "group_by": self.group_by,
            "gain": float(self.gain),
            "groups": groups,
            "intact": dict(zip(map(str, groups), self.accuracy[0].tolist(), strict=True)),
            "scaled": [
                {"population": p, "accuracy": dict(zip(map(str, groups), self.accuracy[1 + p].tolist(), strict=True))}
                for p in range(self.populations)
            ],
        }


def inactivate(
    weights: LowRankWeights,
    populations: np.ndarray,
    trials: TrialBatch,
    *,
    rng: np.random.Generator | int,
    group_by: str = "context",
    gain: float = 0.0,
    memory_mb: float = 128.0,
    device: str | torch.device = "cpu",
) -> Inactivation:
    """Scale (default: silence) each population in turn and report accuracy per value of ``trials.conditions[group_by]``.

    The intact network and one network per population run in one batched simulation.
    """
    labels = _check_labels(populations, weights.size)
    if group_by not in trials.conditions:
        raise RnnscopeError(f"group_by: {group_by!r} is not a condition of the trials ({', '.join(trials.conditions)})")
    variants = [weights] + [scale_population(weights, labels, p, gain=gain) for p in range(int(labels.max()) + 1)]
    result = evaluate_networks(variants, trials, rng=rng, memory_mb=memory_mb, device=device)
    groups, accuracy = result.by_condition(trials.conditions[group_by])
    return Inactivation(group_by=group_by, groups=groups, accuracy=accuracy, gain=float(gain))


@dataclass(frozen=True, eq=False)
class GroupOverlaps:
    """Overlaps between n and every loading column, weighted by each neuron's gain phi'(x) = 1 - tanh(x)^2.

    values: (groups, populations, rank, columns), entry [g, p, r, c] = mean over neurons i of population p of
    ``n[i, r] * loading[i, c] * <phi'(x_i)>_g``, with <.>_g the mean over the trials of group g and the steps of
    ``epoch``; total: (groups, rank, columns), the same over all neurons (= fraction-weighted sum over
    populations); gains: (groups, size) the mean phi'(x_i) per group.
    """

    groups: np.ndarray
    columns: tuple[str, ...]
    values: np.ndarray
    total: np.ndarray
    gains: np.ndarray
    fractions: np.ndarray

    def to_dict(self) -> dict:
        return {
            "groups": [g.item() if isinstance(g, np.generic) else g for g in self.groups],
            "columns": list(self.columns),
            "values": self.values.tolist(),
            "total": self.total.tolist(),
            "fractions": self.fractions.tolist(),
        }


def overlaps_by_group(
    weights: LowRankWeights,
    populations: np.ndarray | None,
    trials: TrialBatch,
    *,
    rng: np.random.Generator | int,
    group_by: str = "context",
    epoch: str | np.ndarray = "stimulus",
    memory_mb: float = 128.0,
) -> GroupOverlaps:
    """Effective overlaps per population and condition group (the gain-modulation mechanism of the paper).

    Extends ``rnnscope.analysis._latent.effective_overlaps`` (one set of states) to every loading column
    (inputs included) and to condition groups: the (n, m) block of ``values[g]`` equals that function's
    ``per_population`` at the group's states.

    epoch: a name in ``trials.epochs`` or a (trials, time) bool mask of the steps over which phi' is averaged.
    """
    points = loadings(weights)
    labels = np.zeros(weights.size, dtype=int) if populations is None else _check_labels(populations, weights.size)
    if group_by not in trials.conditions:
        raise RnnscopeError(f"group_by: {group_by!r} is not a condition of the trials ({', '.join(trials.conditions)})")
    if isinstance(epoch, str):
        if epoch not in trials.epochs:
            raise RnnscopeError(f"epoch: {epoch!r} is not an epoch of the trials ({', '.join(trials.epochs)})")
        start, stop = trials.epochs[epoch]
        steps = np.arange(trials.steps)
        window = (steps >= np.asarray(start)[:, None]) & (steps < np.asarray(stop)[:, None])
    else:
        window = check_array(epoch, "epoch", shape=(trials.trials, trials.steps), dtype=bool)
    slopes = simulate_networks(
        weights, trials.inputs, rng=rng, emit=lambda x: 1.0 - torch.tanh(x) ** 2, memory_mb=memory_mb
    )[0]  # (trials, time, size)
    conditions = np.asarray(trials.conditions[group_by])
    groups = np.unique(conditions)
    gains = np.stack(
        [slopes[(conditions == g)[:, None] & window].mean(axis=0) for g in groups]
    )  # (groups, size)
    n = weights.n
    count = int(labels.max()) + 1
    # products[i, r, c] = n[i, r] * loading[i, c]
    products = n[:, :, None] * points.values[:, None, :]
    weighted = gains[:, :, None, None] * products[None]  # (groups, size, rank, columns)
    values = np.stack([weighted[:, labels == p].mean(axis=1) for p in range(count)], axis=1)
    fractions = np.bincount(labels, minlength=count) / weights.size
    return GroupOverlaps(
        groups=groups, columns=points.columns, values=values, total=weighted.mean(axis=1), gains=gains,
        fractions=fractions,
    )
