"""The analyses of networks, on recordings: selectivity over time, ePAIRS in selectivity space, Gaussian-mixture
fits of selectivity profiles, and projections on task-variable axes (targeted dimensionality reduction).

Every step calls the implementation used for networks (``rnnscope.analysis.selectivity``, ``epairs``,
``fit_populations``); what is added here is what recordings need:

- the time of each variable's selectivity is chosen by cross-validation when single trials are available: the
  trials are split into two random halves ``splits`` times, and the *signal* of variable v at step t is the inner
  product over neurons of the two halves' (window-averaged) coefficients, an unbiased estimate of
  ``|beta_true(t, v)|^2`` (the plain norm on all trials is inflated by noise at every step, most at noisy steps);
- the coefficients can be denoised as in Mante et al. 2013: projected onto the top ``denoise`` principal
  components (neuron space) of the condition-averaged responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from rnnscope._validation import as_generator, check_array, check_int
from rnnscope.analysis import EpairsResult, PopulationFit, Selectivity, epairs, fit_populations, selectivity
from rnnscope.data._recordings import Recordings
from rnnscope.errors import RnnscopeError

__all__ = [
    "DataSelectivity",
    "data_selectivity",
    "data_epairs",
    "data_populations",
    "TaskProjection",
    "task_projection",
    "DataAnalysis",
    "analyze_recordings",
]


def _finite(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _finite_list(values: np.ndarray) -> list:
    return [_finite_list(v) if np.ndim(v) else _finite(v) for v in np.asarray(values, dtype=np.float64)]


@dataclass(frozen=True, eq=False)
class DataSelectivity:
    """Selectivity of recorded neurons over time, with the peak of each variable chosen on held-out trials.

    regression: the regression on all rows (``rnnscope.analysis.Selectivity``: betas (time, variables, size));
    signal: (time, variables) cross-validated ``|beta(t, v)|^2`` (sum over neurons of the product of the two
    halves' window-averaged coefficients, averaged over splits), or the plain squared norm when not cross-validated;
    peak_steps: (variables,) step of maximal signal; space: (size, variables) each neuron's window-averaged (and
    denoised) coefficient at each variable's peak: the selectivity space. window_steps: width of the average;
    denoise: principal components kept (0: none); cross_validated: whether single trials allowed the split.
    """

    regression: Selectivity
    signal: np.ndarray
    peak_steps: np.ndarray
    space: np.ndarray
    time_ms: np.ndarray
    window_steps: int
    denoise: int
    cross_validated: bool
    splits: int

    @property
    def variables(self) -> tuple[str, ...]:
        return self.regression.variables

    def to_dict(self) -> dict:
        return {
            "variables": list(self.variables),
            "peak_steps": [int(s) for s in self.peak_steps],
            "peak_time_ms": [float(self.time_ms[s]) for s in self.peak_steps],
            "window_steps": self.window_steps,
            "denoise": self.denoise,
            "cross_validated": self.cross_validated,
            "splits": self.splits,
            "signal": _finite_list(self.signal.T),  # (variables, time)
            "beta_norms": _finite_list(np.linalg.norm(self.regression.betas, axis=-1).T),  # (variables, time)
            "mean_r_squared": [_finite(np.nanmean(r)) if np.isfinite(r).any() else None for r in self.regression.r_squared],
            "space": _finite_list(self.space),
        }


def _windowed(betas: np.ndarray, window_steps: int) -> np.ndarray:
    """Moving average over time of (time, variables, size)."""
    return betas if window_steps == 1 else uniform_filter1d(betas, window_steps, axis=0, mode="nearest")


def _denoiser(recordings: Recordings, variables: dict[str, np.ndarray], components: int) -> np.ndarray:
    """(size, components) top principal axes (neuron space) of the condition-averaged responses."""
    means, _ = recordings.condition_means(variables)
    flat = means.reshape(-1, recordings.size)
    flat = flat - flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    return vt[:components].T


def data_selectivity(
    recordings: Recordings,
    *,
    rng: np.random.Generator | int,
    variables: Sequence[str] | None = None,
    window_steps: int = 1,
    denoise: int | None = None,
    splits: int = 10,
    steps: np.ndarray | None = None,
) -> DataSelectivity:
    """Regress each neuron's rate on the task variables at every step and build the selectivity space.

    variables: condition columns (default: ``Recordings.variables()``); window_steps: steps averaged around each
    peak; denoise: keep the top principal components of the condition-averaged responses (Mante et al. 2013; None:
    no denoising); splits: random half-splits of the trials for the cross-validated peak (single trials only);
    steps: optional (time,) bool mask of the steps allowed for the peaks.
    """
    rng = as_generator(rng, name="rng")
    table = recordings.variables(None if variables is None else tuple(variables))
    window_steps = check_int(window_steps, "window_steps", minimum=1, maximum=recordings.steps)
    splits = check_int(splits, "splits", minimum=1)
    full = selectivity(recordings.activity, table)
    activity = recordings.activity
    rows = recordings.trials
    cross_validated = not recordings.averaged and rows >= 4 * (len(table) + 1)
    if cross_validated:
        signal = np.zeros((recordings.steps, len(table)))
        for _ in range(splits):
            order = rng.permutation(rows)
            halves = order[: rows // 2], order[rows // 2 :]
            betas = []
            for half in halves:
                try:
                    part = selectivity(activity[half], {k: v[half] for k, v in table.items()})
                except RnnscopeError as exc:
                    raise RnnscopeError(f"{recordings.source or recordings.name}: a random half of the trials is "
                                        f"degenerate ({exc}); use more trials or fewer variables") from None
                betas.append(_windowed(part.betas, window_steps))
            signal += np.einsum("tvs,tvs->tv", betas[0], betas[1]) / splits
    else:
        signal = np.linalg.norm(_windowed(full.betas, window_steps), axis=-1) ** 2
        splits = 0
    masked = signal
    if steps is not None:
        allowed = check_array(steps, "steps", shape=(recordings.steps,), dtype=bool)
        if not allowed.any():
            raise RnnscopeError("steps: selects no step")
        masked = np.where(allowed[:, None], signal, -np.inf)
    peak_steps = np.argmax(masked, axis=0)
    betas = _windowed(full.betas, window_steps)
    components = 0
    if denoise is not None:
        components = check_int(denoise, "denoise", minimum=1, maximum=recordings.size)
        axes = _denoiser(recordings, table, components)
        betas = np.einsum("tvs,sk,rk->tvr", betas, axes, axes)
    space = betas[peak_steps, np.arange(len(table))].T
    return DataSelectivity(regression=full, signal=signal, peak_steps=peak_steps, space=space,
                           time_ms=recordings.time_ms, window_steps=window_steps, denoise=components,
                           cross_validated=cross_validated, splits=splits)


def _space(source: Recordings | DataSelectivity, rng: np.random.Generator) -> DataSelectivity:
    if isinstance(source, DataSelectivity):
        return source
    if isinstance(source, Recordings):
        return data_selectivity(source, rng=rng)
    raise RnnscopeError(f"expected Recordings or DataSelectivity, got {type(source).__name__}")


def data_epairs(
    source: Recordings | DataSelectivity, *, rng: np.random.Generator | int, draws: int = 500, neighbours: int = 3
) -> EpairsResult:
    """ePAIRS (``rnnscope.analysis.epairs``) on the selectivity space: one point per neuron.

    source: a selectivity result, or recordings (then ``data_selectivity`` with its defaults, same generator)."""
    rng = as_generator(rng, name="rng")
    selectivity_result = _space(source, rng)
    return epairs(selectivity_result.space, rng=rng, draws=draws, neighbours=neighbours,
                  columns=selectivity_result.variables)


def data_populations(
    source: Recordings | DataSelectivity,
    *,
    rng: np.random.Generator | int,
    max_populations: int = 4,
    restarts: int = 10,
    method: str = "em",
    progress: bool = False,
) -> PopulationFit:
    """Gaussian mixtures (``rnnscope.analysis.fit_populations``) of the selectivity profiles: BIC, label agreement.

    source: a selectivity result, or recordings (then ``data_selectivity`` with its defaults, same generator)."""
    rng = as_generator(rng, name="rng")
    selectivity_result = _space(source, rng)
    return fit_populations(selectivity_result.space, rng=rng, max_populations=max_populations, restarts=restarts,
                           method=method, columns=selectivity_result.variables, progress=progress)


@dataclass(frozen=True, eq=False)
class TaskProjection:
    """Population activity projected on task-variable axes (targeted dimensionality reduction, Mante et al. 2013).

    variables: names of the axes; axes: (size, variables) orthonormal, from the selectivity space by QR in the
    order of ``variables`` (each axis keeps what the earlier ones do not explain); projections: (conditions, time,
    variables) condition-averaged activity (mean over neurons removed) on each axis; values: (conditions,
    variables) the variables' value in each condition.
    """

    variables: tuple[str, ...]
    axes: np.ndarray
    projections: np.ndarray
    values: np.ndarray
    time_ms: np.ndarray

    def to_dict(self) -> dict:
        return {"variables": list(self.variables), "values": self.values.tolist(),
                "time_ms": self.time_ms.tolist(), "projections": _finite_list(self.projections)}


def task_projection(recordings: Recordings, selectivity_result: DataSelectivity) -> TaskProjection:
    """Project the condition-averaged activity on the orthogonalised selectivity axes."""
    if selectivity_result.space.shape[0] != recordings.size:
        raise RnnscopeError(f"selectivity_result: made from {selectivity_result.space.shape[0]} neurons, the "
                            f"recordings have {recordings.size}")
    table = recordings.variables(selectivity_result.variables)
    q, r = np.linalg.qr(selectivity_result.space)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)  # each axis points along its own variable's coefficients
    means, values = recordings.condition_means(table)
    centred = means - recordings.activity.mean(axis=(0, 1))
    return TaskProjection(variables=selectivity_result.variables, axes=q,
                          projections=np.einsum("cts,sv->ctv", centred, q), values=values,
                          time_ms=recordings.time_ms)


@dataclass(frozen=True, eq=False)
class DataAnalysis:
    """Every analysis of one set of recordings: what ``rnnscope data report`` shows.

    name; summary: ``Recordings.to_dict()``; selectivity, epairs, populations, projection: the results above;
    connectivity_epairs: ePAIRS on the connectivity loadings when the recordings came from a network, else None.
    """

    name: str
    summary: dict
    selectivity: DataSelectivity
    epairs: EpairsResult
    populations: PopulationFit
    projection: TaskProjection
    connectivity_epairs: EpairsResult | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "recordings": self.summary,
            "selectivity": self.selectivity.to_dict(),
            "epairs": {"space": "selectivity", **self.epairs.to_dict()},
            "connectivity_epairs": None if self.connectivity_epairs is None
            else {"space": "connectivity", **self.connectivity_epairs.to_dict()},
            "populations": self.populations.to_dict(),
            "projection": self.projection.to_dict(),
        }


def analyze_recordings(
    recordings: Recordings,
    *,
    rng: np.random.Generator | int,
    variables: Sequence[str] | None = None,
    window_steps: int = 1,
    denoise: int | None = None,
    draws: int = 500,
    max_populations: int = 4,
    restarts: int = 10,
    connectivity_epairs: EpairsResult | None = None,
) -> DataAnalysis:
    """Selectivity, ePAIRS, mixture fits and task projections of ``recordings``, from one generator.

    connectivity_epairs: when the recordings are a network's, its connectivity-space ePAIRS, shown beside.
    """
    rng = as_generator(rng, name="rng")
    sel = data_selectivity(recordings, rng=rng, variables=variables, window_steps=window_steps, denoise=denoise)
    dims = len(sel.variables)
    max_populations = min(check_int(max_populations, "max_populations", minimum=1), max(1, recordings.size // (dims + 1)))
    return DataAnalysis(
        name=recordings.name, summary=recordings.to_dict(), selectivity=sel,
        epairs=data_epairs(sel, rng=rng, draws=draws),
        populations=data_populations(sel, rng=rng, max_populations=max_populations, restarts=restarts),
        projection=task_projection(recordings, sel), connectivity_epairs=connectivity_epairs,
    )
