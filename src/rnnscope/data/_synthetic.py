"""Ground truth for the data analyses: recordings of synthetic neurons whose selectivity is drawn from one Gaussian
cloud (random mixed selectivity, as Raposo et al. 2014 report) or from separated clusters (structured
selectivity, as Hirokawa et al. 2019 report)."""

from __future__ import annotations

import numpy as np

from rnnscope._validation import as_generator, check_array, check_int, check_nonnegative, check_positive
from rnnscope.data._recordings import Recordings
from rnnscope.errors import RnnscopeError

__all__ = ["clustered_selectivity", "synthetic_recordings"]


def clustered_selectivity(
    size: int, *, variables: int = 3, clusters: int = 1, separation: float = 0.0, rng: np.random.Generator | int
) -> tuple[np.ndarray, np.ndarray]:
    """Selectivity points of ``size`` neurons: ``clusters`` equal-sized Gaussian clusters of unit covariance whose
    centres sit at distance ``separation`` from the origin along random orthogonal directions (alternating signs,
    so two clusters sit at +-separation along one axis: they differ in direction, as ePAIRS needs). clusters = 1:
    one centred Gaussian cloud (no structure).

    Returns space (size, variables) and labels (size,) (cluster of each neuron, 0..clusters-1).
    """
    size = check_int(size, "size", minimum=2)
    variables = check_int(variables, "variables", minimum=2)
    clusters = check_int(clusters, "clusters", minimum=1, maximum=2 * variables)
    separation = check_nonnegative(separation, "separation")
    rng = as_generator(rng, name="rng")
    directions, _ = np.linalg.qr(rng.standard_normal((variables, variables)))
    centres = np.zeros((clusters, variables))
    if clusters > 1:
        for c in range(clusters):
            centres[c] = (1.0 if c % 2 == 0 else -1.0) * separation * directions[:, c // 2]
    labels = np.arange(size) % clusters
    space = centres[labels] + rng.standard_normal((size, variables))
    return space, labels


def synthetic_recordings(
    space: np.ndarray,
    *,
    trials: int = 200,
    steps: int = 20,
    dt_ms: float = 50.0,
    noise_std: float = 1.0,
    baseline: float = 5.0,
    rng: np.random.Generator | int,
) -> Recordings:
    """Single-trial recordings whose neurons have the selectivity ``space`` (size, variables).

    Each trial draws every variable from {-1, -0.5, 0.5, 1} independently; neuron i's rate at step t is
    ``baseline + profile(t) * sum_v space[i, v] * variable_v + noise_std * xi`` with a bump ``profile`` peaking in
    the middle of the trial. Variables are named ``v0, v1, ...``. Returns Recordings (trials, steps, size).
    """
    space = check_array(space, "space", ndim=2)
    size, count = space.shape
    trials = check_int(trials, "trials", minimum=4)
    steps = check_int(steps, "steps", minimum=1)
    dt_ms = check_positive(dt_ms, "dt_ms")
    noise_std = check_nonnegative(noise_std, "noise_std")
    if size < 1:
        raise RnnscopeError("space: need at least one neuron")
    rng = as_generator(rng, name="rng")
    values = rng.choice(np.array([-1.0, -0.5, 0.5, 1.0]), size=(trials, count))
    t = np.arange(steps)
    profile = np.exp(-0.5 * ((t - (steps - 1) / 2) / max(steps / 5, 1.0)) ** 2)  # (steps,)
    drive = values @ space.T  # (trials, size)
    activity = baseline + profile[None, :, None] * drive[:, None, :] + noise_std * rng.standard_normal((trials, steps, size))
    return Recordings(activity=activity, conditions={f"v{v}": values[:, v] for v in range(count)},
                      time_ms=(t + 1) * dt_ms, neurons={"area": np.full(size, "synthetic")}, name="synthetic")
