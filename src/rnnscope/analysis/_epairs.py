"""ePAIRS: is a cloud of points (one per neuron) clustered in direction, beyond a Gaussian?

The test of Raposo et al. 2014 (Hirokawa et al. 2019), as used by Dubreuil, Valente et al. 2022:

1. centre the points, rotate them onto their principal axes and divide each axis by its standard deviation
   (whitening: the cloud's covariance becomes the identity);
2. for each point, the cosines to its ``k`` nearest neighbours *in angle* (the ``k`` largest cosines to the other
   points); its angle is ``arccos`` of the mean of those ``k`` cosines;
3. the null: ``draws`` clouds of as many points drawn from a zero-mean Gaussian with the whitened data's diagonal
   covariance (the identity), each whitened like the data (step 1) and put through step 2
   (``procedure="whitened"``, the default). Whitening the null clouds too makes the null the statistic's
   distribution on Gaussian data processed exactly like the data. The authors' code
   (``mixedselectivity.epairs`` of github.com/adrian-valente/populations_paper_code, lines 46-49 and 105-113)
   skips it (``procedure="paper"``): a raw Gaussian cloud's sample covariance is not exactly the identity, its
   directions are slightly uneven, so its neighbours are slightly closer than those of the whitened data, and
   c is biased downwards on Gaussian data: by about 0.011 in 3 dimensions, 0.02 in 4, 0.034 in 6, 0.044 in 7
   (N = 512; the paper's networks resampled from one Gaussian have mean c -0.04 to -0.055 in 6-7 dimensions,
   its data/*_lr_c_boot_distr.npy; benchmarks/epairs_paper.py measures both nulls). The
   rank-sum test is liberal under both nulls because mutual neighbours share angles (6-14 % of Gaussian clouds
   below 0.05 in 3-6 dimensions, N = 512), which ``EpairsResult.p_value_resampled`` corrects;
4. the p-value of a two-sided Wilcoxon rank-sum test between the data angles and all null angles, and the effect
   size ``c = (median(null) - median(data)) / std(null)``: c > 0 when points have closer neighbours in angle than
   a Gaussian cloud would (clusters of directions).

The nearest-neighbour search runs in one compiled kernel over every null draw at once (no Python loop over draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from scipy import stats

from rnnscope._validation import as_generator, check_array, check_int
from rnnscope.errors import RnnscopeError

__all__ = ["EPAIRS_PROCEDURES", "EpairsResult", "epairs", "neighbour_angles", "whiten"]

EPAIRS_PROCEDURES = ("whitened", "paper")  # the null clouds whitened like the data, or not (the authors')


@dataclass(frozen=True, eq=False)
class EpairsResult:
    """Outcome of ePAIRS.

    p_value: two-sided Wilcoxon rank-sum p-value (data angles against all null angles);
    c: effect size ``(median(null_angles) - median(data_angles)) / std(null_angles)``;
    data_angles: (size,) each point's angle (radians) to its ``neighbours`` nearest neighbours;
    null_angles: (draws, size) the same for each Gaussian null cloud;
    neighbours: k; columns: labels of the space's axes (may be empty); procedure: the null (``EPAIRS_PROCEDURES``).
    """

    p_value: float
    c: float
    data_angles: np.ndarray
    null_angles: np.ndarray
    neighbours: int
    columns: tuple[str, ...] = ()
    procedure: str = "whitened"

    @property
    def significant(self) -> bool:
        """p < 0.05 / 100, the paper's threshold."""
        return self.p_value < 0.05 / 100

    @property
    def p_value_resampled(self) -> float:
        """A Monte-Carlo p-value: the rank of the data's median angle among the null clouds' median angles,
        two-sided, ``(1 + #{|null - centre| >= |data - centre|}) / (draws + 1)`` with ``centre`` the median of the
        null medians. The rank-sum ``p_value`` (the paper's) treats every point's angle as independent, which
        mutual nearest neighbours are not: on Gaussian clouds it rejects about 10 % of the time at 0.05 in three
        dimensions (6 % in two); this one holds its level, but cannot go below ``1 / (draws + 1)``."""
        null = np.median(self.null_angles, axis=1)  # (draws,)
        centre = np.median(null)
        extreme = np.abs(null - centre) >= abs(float(np.median(self.data_angles)) - centre)
        return float((1 + np.sum(extreme)) / (null.shape[0] + 1))

    def to_dict(self) -> dict:
        return {
            "p_value": float(self.p_value),
            "p_value_resampled": self.p_value_resampled,
            "c": float(self.c),
            "neighbours": int(self.neighbours),
            "draws": int(self.null_angles.shape[0]),
            "size": int(self.data_angles.shape[0]),
            "columns": list(self.columns),
            "procedure": self.procedure,
            "median_data_angle": float(np.median(self.data_angles)),
            "median_null_angle": float(np.median(self.null_angles)),
            "std_null_angle": float(np.std(self.null_angles)),
        }


def whiten(points: np.ndarray) -> np.ndarray:
    """Centre, rotate onto the principal axes and scale each axis to unit variance.

    points: (size, dims) -> (size, dims) with identity covariance (ddof = 0).
    """
    points = check_array(points, "points", ndim=2)
    centred = points - points.mean(axis=0)
    _, axes = np.linalg.eigh(centred.T @ centred)
    rotated = centred @ axes
    std = rotated.std(axis=0)
    if np.any(std <= 1e-12 * max(1.0, float(np.abs(points).max()))):
        raise RnnscopeError(
            f"points: the cloud is degenerate (rank {int(np.sum(std > 1e-12))} < {points.shape[1]} dimensions); "
            "drop constant or collinear columns"
        )
    return rotated / std


def _whiten_clouds(clouds: np.ndarray) -> np.ndarray:
    """``whiten`` applied to every cloud at once: (clouds, size, dims) -> (clouds, size, dims)."""
    centred = clouds - clouds.mean(axis=1, keepdims=True)
    eigenvalues, axes = np.linalg.eigh(np.einsum("bni,bnj->bij", centred, centred) / clouds.shape[1])
    return np.einsum("bni,bij->bnj", centred, axes) / np.sqrt(eigenvalues)[:, None, :]


@numba.njit(cache=True, fastmath=False)
def _mean_top_cosines(unit_t: np.ndarray, k: int) -> np.ndarray:  # pragma: no cover - compiled
    """unit_t: (clouds, dims, size) unit vectors (transposed for contiguous inner loops).

    Returns (clouds, size): for each point, the mean of its ``k`` largest cosines to the other points.
    """
    clouds, dims, size = unit_t.shape
    out = np.empty((clouds, size), dtype=np.float64)
    row = np.empty(size, dtype=unit_t.dtype)
    best = np.empty(k, dtype=np.float64)
    for s in range(clouds):
        for i in range(size):
            row[:] = 0.0
            for q in range(dims):
                a = unit_t[s, q, i]
                for j in range(size):
                    row[j] += a * unit_t[s, q, j]
            for p in range(k):
                best[p] = -2.0
            for j in range(size):
                if j == i:
                    continue
                c = row[j]
                if c > best[k - 1]:
                    p = k - 1
                    while p > 0 and best[p - 1] < c:
                        best[p] = best[p - 1]
                        p -= 1
                    best[p] = c
            acc = 0.0
            for p in range(k):
                acc += best[p]
            out[s, i] = acc / k
    return out


def _angles(clouds: np.ndarray, neighbours: int, dtype: type) -> np.ndarray:
    """clouds: (clouds, size, dims) -> (clouds, size) angles (radians) to the nearest neighbours in angle."""
    norms = np.linalg.norm(clouds, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise RnnscopeError("points: a point sits exactly at the centre; its direction is undefined")
    unit_t = np.ascontiguousarray(np.swapaxes(clouds / norms, -1, -2), dtype=dtype)
    cosines = _mean_top_cosines(unit_t, neighbours)
    return np.arccos(np.clip(cosines, -1.0, 1.0))


def neighbour_angles(points: np.ndarray, *, neighbours: int = 3) -> np.ndarray:
    """Each point's angle to its ``neighbours`` nearest neighbours in angle, from the origin (no whitening).

    points: (size, dims) -> (size,) radians, ``arccos`` of the mean cosine to the k most aligned other points.
    """
    points = check_array(points, "points", ndim=2)
    check_int(neighbours, "neighbours", minimum=1, maximum=points.shape[0] - 1)
    return _angles(points[None], neighbours, np.float64)[0]


def epairs(
    points: np.ndarray,
    *,
    rng: np.random.Generator | int,
    draws: int = 500,
    neighbours: int = 3,
    columns: tuple[str, ...] = (),
    procedure: str = "whitened",
) -> EpairsResult:
    """ePAIRS on a cloud of points (see the module docstring).

    points: (size, dims), e.g. connectivity loadings (m, n, w_in) or a selectivity space; draws: null clouds;
    procedure: ``"whitened"`` (each null cloud whitened like the data: c unbiased on Gaussian data) or ``"paper"``
    (the authors' raw Gaussian null clouds: c lower by 0.01-0.05 on Gaussian data, growing with dims).
    The null clouds are simulated in float32 (angle error ~1e-6 rad), the data in float64.
    """
    points = check_array(points, "points", ndim=2)
    size, dims = points.shape
    if size < 3:
        raise RnnscopeError(f"points: need at least 3 points, got {size}")
    if dims < 2:
        raise RnnscopeError(f"points: need at least 2 dimensions for angles, got {dims}")
    check_int(neighbours, "neighbours", minimum=1, maximum=size - 1)
    check_int(draws, "draws", minimum=1)
    if columns and len(columns) != dims:
        raise RnnscopeError(f"columns: expected {dims} labels, got {len(columns)}")
    if procedure not in EPAIRS_PROCEDURES:
        raise RnnscopeError(f"procedure: expected one of {', '.join(EPAIRS_PROCEDURES)}, got {procedure!r}")
    rng = as_generator(rng, name="rng")
    white = whiten(points)
    data_angles = _angles(white[None], neighbours, np.float64)[0]
    null_std = white.std(axis=0)  # the whitened data's diagonal covariance (ones, up to rounding)
    null = rng.standard_normal((draws, size, dims)) * null_std
    if procedure == "whitened":
        null = _whiten_clouds(null)
    null_angles = _angles(null, neighbours, np.float32)
    p_value = float(stats.ranksums(null_angles.ravel(), data_angles).pvalue)
    c = float((np.median(null_angles) - np.median(data_angles)) / np.std(null_angles))
    return EpairsResult(
        p_value=p_value, c=c, data_angles=data_angles, null_angles=null_angles, neighbours=neighbours,
        columns=tuple(columns), procedure=procedure,
    )
