"""MDS embeddings of any distance matrix between networks (e.g. ``pairwise_distances`` of a population): classical
MDS by eigendecomposition of the double-centred squared distances, or SMACOF (scikit-learn) from a seed."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnscope._validation import as_generator, check_int
from rnnscope.analysis._similarity import _as_matrix, _check_choice, _check_values
from rnnscope.errors import RnnscopeError

__all__ = ["MDSEmbedding", "mds_embedding"]


@dataclass(frozen=True)
class MDSEmbedding:
    """Points in ``dims`` dimensions whose distances approximate a distance matrix (axis 0 = networks).

    coordinates: (networks, dims); eigenvalues: (networks,) of the double-centred matrix B = -J D^2 J / 2,
    descending (classical MDS keeps the leading ones; negative ones mean D is not Euclidean); stress: Kruskal's
    stress-1, sqrt(sum (d_ij - |y_i - y_j|)^2 / sum d_ij^2) over i < j; method: "classical" or "smacof".
    """

    coordinates: np.ndarray
    eigenvalues: np.ndarray
    stress: float
    method: str

    def __post_init__(self) -> None:
        coordinates = np.asarray(self.coordinates, dtype=np.float64)
        eigenvalues = np.asarray(self.eigenvalues, dtype=np.float64)
        if coordinates.ndim != 2 or eigenvalues.shape != (coordinates.shape[0],):
            raise RnnscopeError(f"MDSEmbedding: expected coordinates (networks, dims) and eigenvalues (networks,), "
                                f"got {coordinates.shape} and {eigenvalues.shape}")
        object.__setattr__(self, "coordinates", coordinates)
        object.__setattr__(self, "eigenvalues", eigenvalues)

    def __len__(self) -> int:
        return int(self.coordinates.shape[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "coordinates": self.coordinates.tolist(),
            "eigenvalues": self.eigenvalues.tolist(),
            "stress": float(self.stress),
        }


def _check_distances(distances: Any) -> np.ndarray:
    D = _as_matrix(distances, "distances")
    if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] < 2:
        raise RnnscopeError(f"distances: expected a square (networks, networks) matrix with networks >= 2, got {D.shape}")
    _check_values(D, "distances")
    scale = max(float(np.abs(D).max()), 1.0)
    if np.any(D < -1e-9 * scale):
        raise RnnscopeError(f"distances: must be >= 0, got a minimum of {D.min():g}")
    if np.abs(D - D.T).max() > 1e-8 * scale:
        raise RnnscopeError(f"distances: must be symmetric, got |D - D^T| up to {np.abs(D - D.T).max():g}")
    if np.abs(np.diag(D)).max() > 1e-8 * scale:
        raise RnnscopeError(f"distances: the diagonal must be 0, got up to {np.abs(np.diag(D)).max():g}")
    return np.maximum((D + D.T) / 2, 0.0) * (1 - np.eye(D.shape[0]))


def _stress(D: np.ndarray, coordinates: np.ndarray) -> float:
    embedded = np.linalg.norm(coordinates[:, None, :] - coordinates[None, :, :], axis=-1)
    upper = np.triu_indices(D.shape[0], k=1)
    total = np.sum(D[upper] ** 2)
    return float(np.sqrt(np.sum((D[upper] - embedded[upper]) ** 2) / total)) if total > 0 else 0.0


def mds_embedding(
    distances: np.ndarray, *, dims: int = 2, method: str = "classical", rng: int | np.random.Generator | None = None
) -> MDSEmbedding:
    """Embed a distance matrix ``distances: (networks, networks)`` in ``dims`` dimensions.

    ``method="classical"`` (Torgerson): the leading eigenvectors of B = -J D^2 J / 2 scaled by the square roots of
    their (positive) eigenvalues; deterministic, each axis' sign fixed so that its largest |coordinate| is positive;
    ``rng`` is not used. ``method="smacof"``: scikit-learn's metric MDS on the precomputed distances, started from
    4 random configurations drawn from ``rng`` (an int seed or a Generator, required).
    """
    D = _check_distances(distances)
    n = D.shape[0]
    dims = check_int(dims, "dims", minimum=1, maximum=n)
    method = _check_choice(method, "method", ("classical", "smacof"))
    J = np.eye(n) - 1.0 / n
    B = -0.5 * J @ (D**2) @ J
    eigenvalues, vectors = np.linalg.eigh((B + B.T) / 2)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, vectors = eigenvalues[order], vectors[:, order]
    if method == "classical":
        coordinates = vectors[:, :dims] * np.sqrt(np.maximum(eigenvalues[:dims], 0.0))
        largest = np.argmax(np.abs(coordinates), axis=0)
        signs = np.sign(coordinates[largest, np.arange(dims)])
        coordinates = coordinates * np.where(signs == 0, 1.0, signs)
    else:
        if rng is None:
            raise RnnscopeError("rng: method='smacof' starts from random configurations; pass an int seed or a "
                                "np.random.Generator")
        from sklearn.manifold import MDS

        seed = int(as_generator(rng, name="rng").integers(2**31 - 1))
        params = inspect.signature(MDS).parameters
        if "metric_mds" in params:  # scikit-learn >= 1.8
            model = MDS(n_components=dims, metric_mds=True, metric="precomputed", n_init=4, init="random",
                        random_state=seed)
        else:
            model = MDS(n_components=dims, metric=True, dissimilarity="precomputed", n_init=4, random_state=seed)
        coordinates = model.fit_transform(D)
    return MDSEmbedding(coordinates, eigenvalues, _stress(D, coordinates), method)
