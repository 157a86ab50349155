"""Population analyses of a network on its own task: what the population commands of the CLI report."""

from __future__ import annotations

import dataclasses

import numpy as np

from rnnscope._validation import as_generator, check_int
from rnnscope.analysis._epairs import EpairsResult, epairs
from rnnscope.analysis._inactivation import Inactivation, inactivate
from rnnscope.analysis._loadings import loadings, relabel
from rnnscope.analysis._mixtures import PopulationFit, check_count, fit_populations
from rnnscope.analysis._population_model import PopulationModel
from rnnscope.analysis._resampling import Resampling, resample_model
from rnnscope.analysis._selectivity import Selectivity, selectivity
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankWeights, simulate
from rnnscope.tasks import Task, TrialBatch, decisions

__all__ = [
    "population_labels_of",
    "resample_network",
    "connectivity_epairs",
    "task_variables",
    "selectivity_on_task",
    "selectivity_epairs",
    "inactivate_populations",
    "CONNECTIVITY_BLOCKS",
]

# the connectivity space of ePAIRS in Dubreuil, Valente et al. 2022: w_in (times its gain) with m and n, never w_out
# (training_scripts/{rdm,romo,raposo,mante,dms}_fig1.py of github.com/adrian-valente/populations_paper_code)
CONNECTIVITY_BLOCKS = ("m", "n", "w_in")


def population_labels_of(
    weights: LowRankWeights,
    populations: int,
    *,
    rng: np.random.Generator | int,
    method: str = "bayes",
    restarts: int = 5,
    progress: bool = True,
) -> tuple[np.ndarray, PopulationFit]:
    """(size,) labels 0..P-1 of the network's neurons under a P-component mixture fit of its loadings, and the fit.

    Only the P-component mixture is fitted (``fit.counts == [P]``; P = 1 takes one restart, as its labels are all
    0); its labels are those of the P entry of ``fit_populations(..., max_populations=P)`` on the same ``rng``.
    P may be at most ``population_bound(size, dims)``: at least dims + 1 neurons per population, and at most
    ``MAX_POPULATIONS``.
    """
    points = loadings(weights)
    populations = check_count(populations, "populations", size=points.size, dims=len(points.columns))
    fit = fit_populations(
        points, rng=rng, min_populations=populations, max_populations=populations,
        restarts=1 if populations == 1 else restarts, method=method, progress=progress,
    )
    if populations == 1:
        return np.zeros(weights.size, dtype=int), fit
    return relabel(fit.labels_for(populations)), fit


def resample_network(
    weights: LowRankWeights,
    task: Task,
    *,
    populations: int,
    rng: np.random.Generator | int,
    networks: int = 20,
    size: int | None = None,
    trials: int = 500,
    zero_mean: bool = False,
    method: str = "bayes",
    tolerance: float = 0.05,
    progress: bool = True,
) -> Resampling:
    """Networks drawn from one Gaussian (P = 1) or from the trained network's P populations (labels from a mixture fit of
    P components only, see ``population_labels_of``; each population's empirical mean and covariance), evaluated
    with the trained network on the same trials. The result names the fit (``method``) and the population sizes, and
    explains a gap to the trained network larger than ``tolerance`` (``Resampling.advice``). progress: a tqdm bar
    for the mixture fit once it takes more than a second."""
    rng = as_generator(rng, name="rng")
    labels, _ = population_labels_of(weights, populations, rng=rng, method=method, progress=progress)
    model = PopulationModel.from_weights(weights, labels if populations > 1 else None)
    batch = task.sample(check_int(trials, "trials", minimum=1), rng=rng)
    result = resample_model(model, batch, rng=rng, networks=networks, size=size or weights.size,
                            zero_mean=zero_mean, trained=weights, tolerance=tolerance)
    trained_sizes = tuple(int(c) for c in np.bincount(labels, minlength=populations))
    return dataclasses.replace(result, method=method, trained_population_sizes=trained_sizes)


def connectivity_epairs(
    weights: LowRankWeights,
    *,
    rng: np.random.Generator | int,
    draws: int = 500,
    blocks: tuple[str, ...] = CONNECTIVITY_BLOCKS,
    procedure: str = "whitened",
) -> EpairsResult:
    """ePAIRS on each neuron's loadings of ``blocks`` (default the paper's (m, n, w_in)); procedure: the null,
    ``"whitened"`` or the authors' ``"paper"`` (see ``epairs``). The test is invariant to any invertible linear map
    of the columns, so the gains of w_in (the paper's si) do not matter, only which blocks enter."""
    points, columns = loadings(weights).select(blocks)
    return epairs(points, rng=rng, draws=draws, columns=columns, procedure=procedure)


def task_variables(batch: TrialBatch) -> dict[str, np.ndarray]:
    """Regressors of a task's trials: the choice (sign of the target in the decision epoch) and every numeric
    condition that varies and is not an exact copy of another regressor."""
    variables = {"choice": np.sign(decisions(batch.targets, batch.mask)[:, 0])}
    for name, values in batch.conditions.items():
        values = np.asarray(values, dtype=float)
        if np.ptp(values) == 0 or any(np.array_equal(values, v) for v in variables.values()):
            continue
        variables[name] = values
    return variables


def selectivity_on_task(
    weights: LowRankWeights, task: Task, *, rng: np.random.Generator | int, trials: int = 400
) -> Selectivity:
    """Regress each neuron's rate tanh(x) on the task variables (see ``task_variables``) at every step."""
    rng = as_generator(rng, name="rng")
    batch = task.sample(check_int(trials, "trials", minimum=1), rng=rng)
    states = simulate(weights, batch.inputs, rng=rng, record="states").states
    return selectivity(np.tanh(states), task_variables(batch))


def selectivity_epairs(
    weights: LowRankWeights, task: Task, *, rng: np.random.Generator | int, draws: int = 500, trials: int = 400,
    procedure: str = "whitened",
) -> EpairsResult:
    """ePAIRS in selectivity space: each neuron's regression coefficients at each variable's peak; procedure: the
    null (see ``epairs``)."""
    rng = as_generator(rng, name="rng")
    space = selectivity_on_task(weights, task, rng=rng, trials=trials)
    return epairs(space.space, rng=rng, draws=draws, columns=space.variables, procedure=procedure)


def inactivate_populations(
    weights: LowRankWeights,
    task: Task,
    *,
    populations: int = 2,
    rng: np.random.Generator | int,
    trials: int = 500,
    gain: float = 0.0,
    group_by: str | None = None,
    progress: bool = True,
) -> Inactivation:
    """Fit P populations, then silence (or scale the gain of) each in turn; accuracy per condition group
    (``group_by``, default the task's context or modality condition). progress: as ``resample_network``."""
    rng = as_generator(rng, name="rng")
    labels, _ = population_labels_of(weights, populations, rng=rng, progress=progress)
    batch = task.sample(check_int(trials, "trials", minimum=1), rng=rng)
    if group_by is None:
        group_by = next((c for c in ("context", "modality") if c in batch.conditions), None)
        if group_by is None:
            raise RnnscopeError(f"group_by: task {task.name!r} has no context; name a condition ({', '.join(batch.conditions)})")
    return inactivate(weights, labels, batch, rng=rng, group_by=group_by, gain=gain)
