"""Distances between the representations of networks: CCA, SVCCA, PWCCA, shape metrics (Procrustes to CCA) and
linear CKA; and the pairwise distance matrix of many networks (MDS embeddings of it: ``_embedding.py``).

A network's representation is ``X: (conditions, size)``: its activity on the same condition-aligned trajectories
as every other network (conditions x time flattened into rows), so row k of X and row k of Y are the same
condition at the same time. Networks may differ in ``size``.

Every metric is a small class in the netrep / scikit-learn mould (see STYLE.md): ``__init__`` stores and checks
the hyperparameters, ``fit(X, Y)`` learns the alignment (state ending in ``_``) and returns ``self``,
``score(X, Y)`` applies that alignment to (X, Y), the same or held-out data with the same sizes, and returns the
distance as a float (0 for identical representations), and ``fit_score`` chains the two. Fitting is split into a
per-network step (centring, whitening, SVD; ``_prepare``) and a per-pair step (``_pair_distance``), so
``pairwise_distances`` preprocesses each of hundreds of networks once rather than once per pair.

References: Hotelling 1936 (CCA); Raghu, Gilmer, Yosinski & Sohl-Dickstein 2017 (SVCCA); Morcos, Raghu & Bengio
2018 (PWCCA); Williams, Kunz, Kornblith & Linderman 2021 (generalized shape metrics); Kornblith, Norouzi, Lee &
Hinton 2019 (CKA); Maheswaranathan, Williams, Golub, Ganguli & Sussillo 2019 (SVCCA distances and MDS over
populations of networks).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg

from rnnscope.errors import NotFittedError, RnnscopeError

__all__ = [
    "check_network",
    "check_pair",
    "CCADistance",
    "SVCCADistance",
    "PWCCADistance",
    "ShapeMetric",
    "ProcrustesDistance",
    "LinearCKADistance",
    "pairwise_distances",
]

_EPS = np.finfo(np.float64).eps


# -- the shared checkers -------------------------------------------------------------------------------------------
def _as_matrix(value: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RnnscopeError(f"{name}: cannot be read as an array of float64 ({exc})") from None


def _check_values(array: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise RnnscopeError(f"{name}: contains NaN or infinite values")
    return array


def check_network(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a finite float64 array (conditions, size) with at least 2 conditions and 1 unit."""
    X = _as_matrix(X, name)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise RnnscopeError(f"{name}: expected (conditions, size) with at least 2 conditions, got shape {X.shape}")
    return _check_values(X, name)


def check_pair(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``X: (conditions, size_x)`` and ``Y: (conditions, size_y)`` as finite float64 arrays with the same
    conditions; the error quotes both shapes."""
    X, Y = _as_matrix(X, "X"), _as_matrix(Y, "Y")
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or X.shape[0] < 2 or min(X.shape[1], Y.shape[1]) < 1:
        raise RnnscopeError(f"X, Y: expected (conditions, size_x) and (conditions, size_y) with the same conditions "
                            f"(at least 2), got X {X.shape} and Y {Y.shape}")
    return _check_values(X, "X"), _check_values(Y, "Y")


def _check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise RnnscopeError(f"{name}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise RnnscopeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _check_fraction(value: Any, name: str, *, low_open: bool) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or not ((0.0 < value <= 1.0) if low_open else (0.0 <= value <= 1.0)):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise RnnscopeError(f"{name}: expected a number in {interval}, got {value!r}")
    return float(value)


def _center(X: np.ndarray, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean (size,), X - mean); the mean is 0 when ``center`` is False."""
    mean = X.mean(axis=0) if center else np.zeros(X.shape[1])
    return mean, X - mean


def _rank_tol(singular: np.ndarray, shape: tuple[int, int]) -> float:
    """numpy.linalg.matrix_rank's tolerance."""
    return float(singular[0] * max(shape) * _EPS) if singular.size else 0.0


def _from_similarity(similarity: float, score_method: str) -> float:
    similarity = float(np.clip(similarity, -1.0, 1.0))
    return float(np.arccos(similarity)) if score_method == "angular" else 1.0 - similarity


# -- the contract ----------------------------------------------------------------------------------------------------
class _Metric:
    """fit / score / fit_score on top of a per-network ``_prepare`` and a per-pair ``_fit_pair`` / ``_pair_distance``."""

    @property
    def _is_symmetric(self) -> bool:
        """d(X, Y) == d(Y, X): pairwise_distances fills both triangles from one call."""
        return True

    def fit(self, X: np.ndarray, Y: np.ndarray) -> _Metric:
        """Learn the alignment of ``X: (conditions, size_x)`` and ``Y: (conditions, size_y)``; returns self."""
        X, Y = check_pair(X, Y)
        self._fit_pair(self._prepare(X, "X"), self._prepare(Y, "Y"))
        return self

    def score(self, X: np.ndarray, Y: np.ndarray) -> float:
        """The distance between ``X: (conditions, size_x)`` and ``Y: (conditions, size_y)`` under the fitted
        alignment (the sizes of the fit; the conditions may differ from the fit's, e.g. held-out data)."""
        X, Y = check_pair(X, Y)
        if not hasattr(self, "x_mean_"):
            raise NotFittedError(f"{type(self).__name__}: call fit(X, Y) before score(X, Y)")
        for name, data, mean in (("X", X, self.x_mean_), ("Y", Y, self.y_mean_)):
            if data.shape[1] != mean.shape[0]:
                raise RnnscopeError(f"{name}: fitted with size {mean.shape[0]}, got shape {data.shape}")
        return float(self._score(X - self.x_mean_, Y - self.y_mean_))

    def fit_score(self, X: np.ndarray, Y: np.ndarray) -> float:
        """``fit(X, Y).score(X, Y)``."""
        return self.fit(X, Y).score(X, Y)

    def __repr__(self) -> str:
        params = inspect.signature(type(self).__init__).parameters
        return f"{type(self).__name__}({', '.join(f'{p}={getattr(self, p)!r}' for p in params if p != 'self')})"

    # per-network and per-pair steps (override)
    def _prepare(self, X: np.ndarray, name: str) -> Any:
        raise NotImplementedError

    def _fit_pair(self, sx: Any, sy: Any) -> None:
        raise NotImplementedError

    def _score(self, Xc: np.ndarray, Yc: np.ndarray) -> float:
        raise NotImplementedError

    def _pair_distance(self, sx: Any, sy: Any) -> float:
        raise NotImplementedError

    def _pairwise(self, states: list[Any]) -> np.ndarray:
        """(n, n) distances between prepared networks, one ``_pair_distance`` per pair (both orders when the metric
        is not symmetric)."""
        n = len(states)
        distances = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                distances[i, j] = self._pair_distance(states[i], states[j])
                distances[j, i] = distances[i, j] if self._is_symmetric else self._pair_distance(states[j], states[i])
        return distances


# -- CCA and its relatives ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Subspace:
    """One network after centring and SVD. mean: (size,); basis: (conditions, rank) orthonormal columns spanning
    the kept directions of the centred activity; weights: (size, rank) with (X - mean) @ weights = basis;
    loadings: (rank, size) = basis.T @ (X - mean)."""

    mean: np.ndarray
    basis: np.ndarray
    weights: np.ndarray
    loadings: np.ndarray


def _subspace(X: np.ndarray, name: str, *, center: bool, variance: float | None) -> _Subspace:
    """Whitening by SVD: every direction of non-zero variance, or (``variance``) the fewest leading directions that
    explain that fraction of the variance (SVCCA)."""
    mean, Xc = _center(X, center)
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    rank = int(np.sum(S > _rank_tol(S, Xc.shape)))
    if rank == 0:
        raise RnnscopeError(f"{name}: has no variance across conditions (every column is constant)")
    keep = rank
    if variance is not None:
        explained = np.cumsum(S[:rank] ** 2) / np.sum(S[:rank] ** 2)
        keep = min(rank, int(np.searchsorted(explained, variance - 1e-12)) + 1)
    return _Subspace(mean, U[:, :keep], Vt[:keep].T / S[:keep], S[:keep, None] * Vt[:keep])


def _column_cosines(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(k,) cosine between column i of u and column i of v (0 where either is 0)."""
    norm = np.linalg.norm(u, axis=0) * np.linalg.norm(v, axis=0)
    dots = np.sum(u * v, axis=0)
    return np.divide(dots, norm, out=np.zeros_like(dots), where=norm > 0)


class CCADistance(_Metric):
    """Canonical correlation analysis (Hotelling 1936) as a distance.

    The canonical correlations rho_1 >= .. >= rho_k (k = min(rank X, rank Y)) are the cosines of the principal
    angles between the column spaces of the centred X and Y; the distance is ``1 - mean(rho)``
    (``score_method="one_minus"``) or ``arccos(mean(rho))`` (``"angular"``). It is 0 when Y = X A for any invertible A.

    Hyperparameters: center (subtract each unit's mean over conditions), score_method.
    Learned by fit: ``x_mean_`` (size_x,), ``y_mean_`` (size_y,), ``x_weights_`` (size_x, k), ``y_weights_``
    (size_y, k) (the canonical directions: (X - x_mean_) @ x_weights_ has orthonormal columns),
    ``canonical_correlations_`` (k,), descending. ``score`` returns the distance computed from the cosines between
    paired canonical variates of the given data (on the fit data, the canonical correlations).
    """

    _variance: float | None = None

    def __init__(self, center: bool = True, score_method: str = "one_minus") -> None:
        self.center = _check_bool(center, "center")
        self.score_method = _check_choice(score_method, "score_method", ("one_minus", "angular"))

    def _prepare(self, X: np.ndarray, name: str) -> _Subspace:
        return _subspace(X, name, center=self.center, variance=self._variance)

    def _align(self, sx: _Subspace, sy: _Subspace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x_rotation (rank_x, k), correlations (k,), y_rotation (rank_y, k))."""
        A, rho, Bt = np.linalg.svd(sx.basis.T @ sy.basis, full_matrices=False)
        return A, np.clip(rho, 0.0, 1.0), Bt.T

    def _fit_pair(self, sx: _Subspace, sy: _Subspace) -> None:
        A, rho, B = self._align(sx, sy)
        self.x_mean_, self.y_mean_ = sx.mean, sy.mean
        self.x_weights_, self.y_weights_ = sx.weights @ A, sy.weights @ B
        self.canonical_correlations_ = rho

    def _score(self, Xc: np.ndarray, Yc: np.ndarray) -> float:
        rho = _column_cosines(Xc @ self.x_weights_, Yc @ self.y_weights_)
        return _from_similarity(rho.mean(), self.score_method)

    def _pair_distance(self, sx: _Subspace, sy: _Subspace) -> float:
        rho = np.clip(linalg.svdvals(sx.basis.T @ sy.basis), 0.0, 1.0)
        return _from_similarity(rho.mean(), self.score_method)


class SVCCADistance(CCADistance):
    """SVCCA (Raghu et al. 2017), the distance of Maheswaranathan et al. 2019: each network is first reduced by SVD
    to the fewest leading directions that explain ``variance`` (0.99) of its variance, then compared by CCA;
    distance ``1 - mean(rho)`` ("one minus the average correlation coefficient") or ``arccos(mean(rho))``.

    Invariant to rotations, reflections, isotropic scaling and permutations of units (not to a general linear map,
    which changes what the SVD keeps). Learned state as ``CCADistance``; k = min of the kept dimensions.
    """

    def __init__(self, variance: float = 0.99, center: bool = True, score_method: str = "one_minus") -> None:
        super().__init__(center=center, score_method=score_method)
        self.variance = _check_fraction(variance, "variance", low_open=True)

    @property
    def _variance(self) -> float:  # type: ignore[override]
        return self.variance


class PWCCADistance(CCADistance):
    """Projection-weighted CCA (Morcos, Raghu & Bengio 2018): ``1 - sum_i alpha_i rho_i`` where alpha_i, normalised
    to sum 1, is how much of X the canonical variate h_i accounts for: ``alpha_i = sum_j |<h_i, x_j>|`` over X's
    units x_j (columns of the centred X), with the variates orthonormalised by QR as in the authors' code.

    The weights come from X, so Morcos et al.'s distance is not symmetric; with ``symmetric=True`` (default, so
    distance matrices are symmetric) the similarity is the mean of the X-weighted and the Y-weighted sums.
    ``score_method="angular"`` gives ``arccos`` of the weighted similarity instead.
    Learned state as ``CCADistance`` plus ``x_projection_weights_`` and ``y_projection_weights_`` (k,), each
    summing to 1.
    """

    def __init__(self, center: bool = True, symmetric: bool = True, score_method: str = "one_minus") -> None:
        super().__init__(center=center, score_method=score_method)
        self.symmetric = _check_bool(symmetric, "symmetric")

    @staticmethod
    def _normalise(weights: np.ndarray) -> np.ndarray:
        total = weights.sum()
        return weights / total if total > 0 else np.full_like(weights, 1.0 / weights.size)

    def _similarity(self, rho: np.ndarray, x_weights: np.ndarray, y_weights: np.ndarray) -> float:
        if self.symmetric:
            return 0.5 * float(x_weights @ rho + y_weights @ rho)
        return float(x_weights @ rho)

    def _fit_pair(self, sx: _Subspace, sy: _Subspace) -> None:
        super()._fit_pair(sx, sy)
        A, _, B = self._align(sx, sy)
        self.x_projection_weights_ = self._normalise(np.abs(A.T @ sx.loadings).sum(axis=1))
        self.y_projection_weights_ = self._normalise(np.abs(B.T @ sy.loadings).sum(axis=1))

    def _score(self, Xc: np.ndarray, Yc: np.ndarray) -> float:
        u, v = Xc @ self.x_weights_, Yc @ self.y_weights_
        rho = _column_cosines(u, v)
        x_weights = self._normalise(np.abs(np.linalg.qr(u)[0].T @ Xc).sum(axis=1))
        y_weights = self._normalise(np.abs(np.linalg.qr(v)[0].T @ Yc).sum(axis=1))
        return _from_similarity(self._similarity(rho, x_weights, y_weights), self.score_method)

    def _pair_distance(self, sx: _Subspace, sy: _Subspace) -> float:
        A, rho, B = self._align(sx, sy)
        x_weights = self._normalise(np.abs(A.T @ sx.loadings).sum(axis=1))
        y_weights = self._normalise(np.abs(B.T @ sy.loadings).sum(axis=1))
        return _from_similarity(self._similarity(rho, x_weights, y_weights), self.score_method)

    @property
    def _is_symmetric(self) -> bool:
        return self.symmetric


# -- shape metrics ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Shape:
    """One network after centring and partial whitening. mean: (size,); whitening: (size, size) Z, so that
    phi(X) = (X - mean) @ Z; compact: (conditions, rank) phi(X) in the eigenbasis of the covariance, directions of
    zero variance dropped (same inner products as phi(X)); eigenbasis: (size, rank) those eigenvectors, so that
    phi(X) = compact @ eigenbasis.T."""

    mean: np.ndarray
    whitening: np.ndarray
    eigenbasis: np.ndarray
    compact: np.ndarray


def _pad(X: np.ndarray, width: int) -> np.ndarray:
    return X if X.shape[1] == width else np.pad(X, ((0, 0), (0, width - X.shape[1])))


class ShapeMetric(_Metric):
    """Generalized shape metrics (Williams, Kunz, Kornblith & Linderman 2021) with partial whitening.

    Each network is centred and partially whitened, ``phi(X) = X (alpha I + (1 - alpha) C_X)^(-1/2)`` with
    ``C_X = X^T X / conditions``: ``alpha = 0`` whitens fully (CCA), ``alpha = 1`` leaves X as it is (Procrustes).
    The smaller network is padded with zero units, then the two are aligned by the orthogonal Q minimising
    ``|phi(X) - phi(Y) Q|``. Distances: ``"angular"``, ``arccos(<phi(X), phi(Y) Q> / (|phi(X)| |phi(Y)|))`` (a
    metric for every alpha, invariant to isotropic scaling), or ``"euclidean"``, ``|phi(X) - phi(Y) Q|_F /
    sqrt(conditions)``. At alpha = 0 with equal ranks the angular distance is ``arccos(mean canonical correlation)``.
    Invariances: rotations, reflections and permutations of units for every alpha; any invertible linear map at
    alpha = 0; isotropic scaling for the angular form at alpha = 0 or 1 only (for 0 < alpha < 1 the two terms of the
    partial whitening scale differently, as in the paper's formula; scale the networks first if that matters).

    Learned by fit: ``x_mean_``, ``y_mean_``; ``x_whitening_`` (size_x, size_x), ``y_whitening_`` (size_y,
    size_y); ``x_rotation_``, ``y_rotation_`` (width, width) with width = max(size_x, size_y), so that the aligned
    representations are ``pad(phi(X)) @ x_rotation_`` and ``pad(phi(Y)) @ y_rotation_``.
    """

    def __init__(self, alpha: float = 1.0, score_method: str = "angular", center: bool = True) -> None:
        self.alpha = _check_fraction(alpha, "alpha", low_open=False)
        self.score_method = _check_choice(score_method, "score_method", ("angular", "euclidean"))
        self.center = _check_bool(center, "center")

    def _prepare(self, X: np.ndarray, name: str) -> _Shape:
        mean, Xc = _center(X, self.center)
        lam, E = np.linalg.eigh(Xc.T @ Xc / Xc.shape[0])  # ascending
        lam = np.maximum(lam, 0.0)
        tol = lam[-1] * max(Xc.shape) * _EPS
        if lam[-1] <= 0:
            raise RnnscopeError(f"{name}: has no variance across conditions (every column is constant)")
        keep = lam > tol
        denominator = self.alpha + (1.0 - self.alpha) * lam
        scale = np.zeros_like(lam)
        usable = denominator > tol if self.alpha == 0 else np.ones_like(keep)
        scale[usable] = denominator[usable] ** -0.5
        whitening = (E * scale) @ E.T
        compact = (Xc @ E[:, keep]) * scale[keep]
        return _Shape(mean, whitening, E[:, keep], compact)

    def _fit_pair(self, sx: _Shape, sy: _Shape) -> None:
        self.x_mean_, self.y_mean_ = sx.mean, sy.mean
        self.x_whitening_, self.y_whitening_ = sx.whitening, sy.whitening
        width = max(sx.whitening.shape[0], sy.whitening.shape[0])
        phi_x, phi_y = sx.compact @ sx.eigenbasis.T, sy.compact @ sy.eigenbasis.T  # phi on the fit data
        U, _, Wt = np.linalg.svd(_pad(phi_x, width).T @ _pad(phi_y, width))
        self.x_rotation_, self.y_rotation_ = U, Wt.T

    def _score(self, Xc: np.ndarray, Yc: np.ndarray) -> float:
        width = self.x_rotation_.shape[0]
        a = _pad(Xc @ self.x_whitening_, width) @ self.x_rotation_
        b = _pad(Yc @ self.y_whitening_, width) @ self.y_rotation_
        if self.score_method == "angular":
            norm = np.linalg.norm(a) * np.linalg.norm(b)
            return float(np.arccos(np.clip(np.sum(a * b) / norm, -1.0, 1.0))) if norm > 0 else float(np.pi / 2)
        return float(np.linalg.norm(a - b) / np.sqrt(a.shape[0]))

    def _pair_distance(self, sx: _Shape, sy: _Shape) -> float:
        nuclear = float(linalg.svdvals(sx.compact.T @ sy.compact).sum())
        xx, yy = float(np.sum(sx.compact**2)), float(np.sum(sy.compact**2))
        if self.score_method == "angular":
            return float(np.arccos(np.clip(nuclear / np.sqrt(xx * yy), -1.0, 1.0)))
        return float(np.sqrt(max(xx + yy - 2.0 * nuclear, 0.0) / sx.compact.shape[0]))


class ProcrustesDistance(ShapeMetric):
    """Procrustes distance: ``ShapeMetric`` with alpha = 1 (no whitening). ``"euclidean"`` (default) is
    ``min_Q |X - Y Q|_F / sqrt(conditions)`` over orthogonal Q after centring, 0 under rotations and reflections
    but not under scaling; ``"angular"`` is the angle between X and the aligned Y (Williams et al. 2021), also
    invariant to isotropic scaling (the normalised form). Neither is invariant to a general linear map."""

    def __init__(self, score_method: str = "euclidean", center: bool = True) -> None:
        super().__init__(alpha=1.0, score_method=score_method, center=center)

    def __repr__(self) -> str:
        return f"ProcrustesDistance(score_method={self.score_method!r}, center={self.center!r})"


# -- CKA -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Normalised:
    """mean: (size,); features: (conditions, size) the centred X scaled so that |X^T X|_F = 1."""

    mean: np.ndarray
    features: np.ndarray


class LinearCKADistance(_Metric):
    """Linear centred kernel alignment (Kornblith et al. 2019) as a distance.

    ``CKA(X, Y) = |Y^T X|_F^2 / (|X^T X|_F |Y^T Y|_F)`` for centred X, Y: HSIC of the linear kernels, normalised.
    Invariant to orthogonal transforms and isotropic scaling of either network, not to general linear maps.
    Distance ``1 - CKA`` (``score_method="one_minus"``) or ``arccos(CKA)`` (``"angular"``, a metric).
    Learned by fit: ``x_mean_``, ``y_mean_`` and ``similarity_`` (CKA on the fit data). CKA aligns nothing, so
    ``score`` is the CKA distance of the given data, each centred on its own means as the definition asks (the same
    as the fit's on the fit data).
    """

    def __init__(self, center: bool = True, score_method: str = "one_minus") -> None:
        self.center = _check_bool(center, "center")
        self.score_method = _check_choice(score_method, "score_method", ("one_minus", "angular"))

    def _prepare(self, X: np.ndarray, name: str) -> _Normalised:
        mean, Xc = _center(X, self.center)
        gram = np.linalg.norm(Xc.T @ Xc) if Xc.shape[1] <= Xc.shape[0] else np.linalg.norm(Xc @ Xc.T)
        if gram == 0:
            raise RnnscopeError(f"{name}: is zero after centring (every column is constant)")
        return _Normalised(mean, Xc / np.sqrt(gram))

    @staticmethod
    def _cka(Xn: np.ndarray, Yn: np.ndarray) -> float:
        return float(np.sum((Yn.T @ Xn) ** 2))

    def _fit_pair(self, sx: _Normalised, sy: _Normalised) -> None:
        self.x_mean_, self.y_mean_ = sx.mean, sy.mean
        self.similarity_ = self._cka(sx.features, sy.features)

    def _score(self, Xc: np.ndarray, Yc: np.ndarray) -> float:
        sx = self._prepare(Xc, "X")
        sy = self._prepare(Yc, "Y")
        return _from_similarity(self._cka(sx.features, sy.features), self.score_method)

    def _pair_distance(self, sx: _Normalised, sy: _Normalised) -> float:
        return _from_similarity(self._cka(sx.features, sy.features), self.score_method)

    _GRAM_BYTES = 2**29  # the largest stack of (conditions, conditions) Gram matrices built for the one-product route

    def _pairwise(self, states: list[_Normalised]) -> np.ndarray:
        """CKA(X, Y) = <X X^T, Y Y^T>_F for the normalised features, so when conditions is below the typical
        size_x * size_y (a pair then costs conditions^2 rather than conditions * size_x * size_y) and the Gram
        matrices fit in memory, every pair comes from one product of the flattened Gram matrices; otherwise one
        (size_x, size_y) product per pair."""
        n, conditions = len(states), states[0].features.shape[0]
        sizes = np.array([s.features.shape[1] for s in states], dtype=np.float64)
        if conditions >= np.median(sizes) ** 2 or n * conditions**2 * 8 > self._GRAM_BYTES:
            return super()._pairwise(states)
        grams = np.stack([(s.features @ s.features.T).ravel() for s in states])  # (n, conditions^2)
        similarity = np.clip(grams @ grams.T, -1.0, 1.0)
        if self.score_method == "angular":
            distances = np.arccos(similarity)
        else:
            distances = 1.0 - similarity
        np.fill_diagonal(distances, 0.0)
        return (distances + distances.T) / 2


# -- many networks ---------------------------------------------------------------------------------------------------
_METRICS = (CCADistance, SVCCADistance, PWCCADistance, ShapeMetric, ProcrustesDistance, LinearCKADistance)


def pairwise_distances(networks: Sequence[np.ndarray], metric: _Metric) -> np.ndarray:
    """The distance between every two of ``networks`` under ``metric``.

    networks: n arrays (conditions, size_i), the same condition-aligned trajectories in every network; metric: an
    instance of one of this module's metric classes (its hyperparameters are used; it is not fitted or changed).
    Each network is preprocessed once (centring, SVD or whitening) and only the alignment is computed per pair,
    so the result equals ``metric.fit_score(networks[i], networks[j])`` at a fraction of the cost.
    Returns (n, n) float64, zero diagonal, symmetric unless the metric is not (``PWCCADistance(symmetric=False)``:
    entry (i, j) is d(networks[i], networks[j])).
    """
    if not isinstance(metric, _Metric):
        names = ", ".join(cls.__name__ for cls in _METRICS)
        raise RnnscopeError(f"metric: expected an instance of one of {names}, got {metric!r}")
    if isinstance(networks, np.ndarray) and networks.ndim == 3:
        networks = list(networks)
    if isinstance(networks, (str, bytes)) or not isinstance(networks, Sequence) or len(networks) == 0:
        raise RnnscopeError(f"networks: expected a non-empty sequence of (conditions, size) arrays, got {type(networks).__name__}")
    arrays = [check_network(X, f"networks[{i}]") for i, X in enumerate(networks)]
    for i, X in enumerate(arrays):
        if X.shape[0] != arrays[0].shape[0]:
            raise RnnscopeError(f"networks[{i}]: expected ({arrays[0].shape[0]}, size) conditions like networks[0] "
                                f"{arrays[0].shape}, got {X.shape}")
    return metric._pairwise([metric._prepare(X, f"networks[{i}]") for i, X in enumerate(arrays)])
