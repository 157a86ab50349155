"""Gaussian mixtures fitted to a loading cloud: P = 1..Pmax populations, BIC, and the agreement of the labels
found by independent restarts (``label_agreement``, a mean adjusted Rand index)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from tqdm.auto import tqdm

from rnnscope._validation import as_generator, check_array, check_int
from rnnscope.analysis._loadings import Loadings
from rnnscope.errors import ConvergenceWarning, RnnscopeError

__all__ = ["PopulationFit", "MAX_POPULATIONS", "population_bound", "fit_populations"]


@dataclass(frozen=True, eq=False)
class PopulationFit:
    """Gaussian mixtures fitted to a loading cloud, one per number of populations in ``counts``.

    counts: (fits,) increasing numbers of populations P, one per fit (default 1..fits: a sweep from P = 1; a
    single fit of P populations has ``counts == [P]``); row p of every per-fit field is the fit of ``counts[p]``
    populations. bic: (fits,); label_agreement: (fits,) mean adjusted Rand index between the labels of every pair of
    restarts (1 = every restart finds the same partition); labels: (fits, size) population of each neuron under
    the best restart; fractions[p]: (P,); means[p]: (P, columns); covariances[p]: (P, columns, columns);
    sizes[p]: (P,) neurons assigned to each population; converged: (fits,). chosen: the P with the lowest BIC
    among those fitted. method: "em" or "bayes".
    """

    columns: tuple[str, ...]
    method: str
    bic: np.ndarray
    label_agreement: np.ndarray
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
        for name in ("label_agreement", "labels", "fractions", "means", "covariances", "sizes", "converged"):
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

    def labels_for(self, count: int | None = None) -> np.ndarray:
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
                    "label_agreement": float(self.label_agreement[p]),
                    "stability": float(self.label_agreement[p]),  # deprecated key, read by cli.py
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


def check_count(count: Any, name: str, *, size: int, dims: int) -> int:
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
    label_agreement: float
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
        label_agreement=float(np.mean(pairs)) if pairs else 1.0,
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
    method: str = "bayes",
    columns: tuple[str, ...] | None = None,
    progress: bool = True,
) -> PopulationFit:
    """Fit full-covariance Gaussian mixtures with min_populations..max_populations components (default 1..5: the
    BIC sweep; ``min_populations = max_populations = P`` fits only P).

    points: Loadings, or (size, dims) values (then ``columns`` names them). Each P is fitted ``restarts`` times
    from independent (k-means) initialisations; the restart with the highest likelihood (EM) or evidence lower
    bound ("bayes": a variational mixture whose component means are pinned to the cloud's mean by a strong prior,
    mean precision 1e5, as the paper: populations differ by their covariances) is kept, and the labels of all restarts give
    the label agreement (mean pairwise adjusted Rand index). BIC = -2 log L + parameters log(size), computed the same way
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
    max_populations = check_count(max_populations, "max_populations", size=size, dims=dims)
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
        columns=tuple(columns), method=method, bic=bic, label_agreement=np.array([f.label_agreement for f in fits]),
        labels=np.stack([f.labels for f in fits]), fractions=tuple(f.fractions for f in fits),
        means=tuple(f.means for f in fits), covariances=tuple(f.covariances for f in fits),
        sizes=tuple(f.sizes for f in fits), converged=np.array([f.converged for f in fits]),
        chosen=int(counts[int(np.argmin(bic))]), restarts=restarts, counts=np.asarray(counts),
    )
