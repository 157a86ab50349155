"""Resampling: networks drawn from a population model and evaluated on a task, and the minimal number of
populations whose resampled (optionally retrained) networks keep the trained network's accuracy."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnscope._validation import as_generator, check_int, check_probability
from rnnscope.analysis._evaluation import evaluate_networks
from rnnscope.analysis._loadings import loadings, relabel
from rnnscope.analysis._mixtures import PopulationFit, fit_populations
from rnnscope.analysis._population_model import PopulationModel, population_counts
from rnnscope.analysis._retrain import retrain_population_model
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankWeights
from rnnscope.tasks import Task, TrialBatch

__all__ = ["Resampling", "resample_model", "MinimalPopulations", "minimal_populations", "RETRAIN_EPOCHS"]

RETRAIN_EPOCHS = 1000  # default retraining steps of each population model (minimal_populations, the CLI, sweeps)


@dataclass(frozen=True, eq=False)
class Resampling:
    """Networks resampled from a population model and their accuracy.

    accuracy: (networks,); trained_accuracy: the original network on the same trials (NaN if not evaluated);
    populations: P of the model; size: neurons of each resampled network; zero_mean: whether means were dropped;
    population_sizes: (P,) neurons of each population in every resampled network; method: the mixture fit that
    labelled the trained network's neurons ("bayes" or "em"; None when the model was given, not fitted);
    trained_population_sizes: (P,) neurons of each population in the trained network (None when not fitted);
    tolerance: the accuracy gap below the trained network beyond which ``advice`` explains it.
    """

    accuracy: np.ndarray
    trained_accuracy: float
    populations: int
    size: int
    zero_mean: bool
    population_sizes: tuple[int, ...] = ()
    method: str | None = None
    trained_population_sizes: tuple[int, ...] | None = None
    tolerance: float = 0.05

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))

    @property
    def gap(self) -> float:
        """trained_accuracy - mean (NaN when the trained network was not evaluated)."""
        return float(self.trained_accuracy) - self.mean

    @property
    def advice(self) -> str | None:
        """What to try when the resampled networks fall more than ``tolerance`` below the trained network, else None."""
        if math.isnan(self.gap) or self.gap <= self.tolerance:
            return None
        return (f"resampled networks of {self.size} neurons are {self.gap:.3f} below the trained network (tolerance "
                f"{self.tolerance:g}): part of the gap is finite size (each network draws {self.size} neurons from "
                f"the {self.populations}-population statistics); resample larger networks (--size {4 * self.size}), "
                "or train the population statistics themselves (minimal-populations --retrain)")

    def to_dict(self) -> dict:
        return {
            "populations": self.populations,
            "size": self.size,
            "zero_mean": self.zero_mean,
            "method": self.method,
            "population_sizes": [int(c) for c in self.population_sizes],
            "trained_population_sizes": (None if self.trained_population_sizes is None
                                         else [int(c) for c in self.trained_population_sizes]),
            "accuracy": self.accuracy.tolist(),
            "mean": self.mean,
            "trained_accuracy": None if math.isnan(self.trained_accuracy) else float(self.trained_accuracy),
            "tolerance": float(self.tolerance),
            "gap": None if math.isnan(self.gap) else self.gap,
            "advice": self.advice,
        }


def resample_model(
    model: PopulationModel,
    batch: TrialBatch,
    *,
    rng: np.random.Generator | int,
    networks: int = 20,
    size: int = 512,
    zero_mean: bool = False,
    trained: LowRankWeights | None = None,
    tolerance: float = 0.05,
    memory_mb: float = 128.0,
    device: str | torch.device = "cpu",
) -> Resampling:
    """Draw ``networks`` networks of ``size`` neurons from ``model`` and evaluate them on the trials of ``batch`` in
    one batched simulation (with ``trained`` evaluated in a separate run on the same trials, if given; a gap larger
    than ``tolerance`` gets ``Resampling.advice``). To resample a trained network from its own populations, see
    ``resample_network``."""
    rng = as_generator(rng, name="rng")
    tolerance = check_probability(tolerance, "tolerance")
    drawn = model.sample_many(networks, size, rng=rng, zero_mean=zero_mean)
    result = evaluate_networks(drawn, batch, rng=rng, memory_mb=memory_mb, device=device)
    trained_accuracy = math.nan
    if trained is not None:
        trained_accuracy = evaluate_networks(trained, batch, rng=rng, memory_mb=memory_mb, device=device).mean
    return Resampling(
        accuracy=result.accuracy, trained_accuracy=trained_accuracy, populations=model.populations,
        size=drawn.size, zero_mean=zero_mean, tolerance=tolerance,
        population_sizes=tuple(int(c) for c in population_counts(model.fractions, drawn.size)),
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
    populations: the minimal P, or None when no P in min_populations..max_populations succeeds; fit: the mixture
    fits the models came from (its ``method``); retrained_models: the retrained PopulationModel per P (None where
    not retrained); min_populations: the first P tried (rows for smaller P are NaN); population_sizes: per P, the
    neurons of each population in the trained network (the labels of the fit; None where P was not evaluated).
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
    min_populations: int = 1
    population_sizes: tuple[tuple[int, ...] | None, ...] = ()

    def __post_init__(self) -> None:
        rows = self.accuracy.shape[0]
        if self.retrained_accuracy is None:
            object.__setattr__(self, "retrained_accuracy", np.full(self.accuracy.shape, np.nan))
        if self.retrain_losses is None:
            object.__setattr__(self, "retrain_losses", np.full((rows, 0), np.nan))
        if not self.retrained_models:
            object.__setattr__(self, "retrained_models", (None,) * rows)
        if not self.population_sizes:
            object.__setattr__(self, "population_sizes", (None,) * rows)

    @property
    def method(self) -> str:
        """The mixture fit that labelled the neurons ("bayes" or "em")."""
        return self.fit.method

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
            "min_populations": self.min_populations,
            "method": self.method,
            "population_sizes": [None if s is None else [int(c) for c in s] for s in self.population_sizes],
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
    batch: TrialBatch,
    *,
    rng: np.random.Generator | int,
    max_populations: int = 3,
    min_populations: int = 1,
    networks: int = 10,
    size: int | None = None,
    tolerance: float = 0.05,
    zero_mean: bool = False,
    method: str = "bayes",
    restarts: int = 5,
    stop_early: bool = True,
    retrain: bool = False,
    task: Task | None = None,
    retrain_epochs: int = RETRAIN_EPOCHS,
    retrain_size: int | None = None,
    retrain_trials: int = 32,
    retrain_lr: float = 0.01,
    retrain_clip: float | None = 1.0,
    retrain_networks: int = 1,
    memory_mb: float = 128.0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> MinimalPopulations:
    """Smallest P in min_populations..max_populations whose resampled networks reach the trained accuracy within
    ``tolerance`` (the mixtures are fitted only for those P, by ``method``: "bayes", the paper's, or "em").

    For each P the population model is built from the network's own neurons, labelled by the mixture fit
    (empirical fractions, means and covariances, as the paper). By default each population keeps its mean
    (``zero_mean=False``): the mixture then reproduces the whole cloud's covariance (within plus between
    populations), so splitting a unimodal cloud in two cannot lose a covariance that the single Gaussian keeps
    (with zero means, the dropped between-population term can flip the sign of an overlap such as the readout's
    and give accuracy near 0). P = 1 uses one Gaussian of all neurons.

    With ``retrain`` (needs ``task``, which draws the training trials), each P's model is also retrained by
    gradient descent on its means and Cholesky factors (``retrain_population_model``, gradients from the fused
    kernel), then resampled at ``size`` and evaluated on ``batch``; P succeeds if its networks reach the target
    before or after retraining. Retraining takes ``retrain_epochs`` Adam steps at learning rate ``retrain_lr``, the
    gradient norm clipped to ``retrain_clip`` (as the paper's retraining of its dms population model), each on
    ``retrain_trials`` new trials and ``retrain_networks`` fresh networks of ``retrain_size`` neurons (default
    ``min(size, 512)``: the parameters do not depend on the size, and finite-size effects only shrink at larger
    sizes). Measured on networks trained by rnnscope (N = 512; 1000 steps, 15-60 s on 2 cores): two retrained
    populations reach 0.98 (mante); on dms, one network of 13 reached 1.00 (one Gaussian 0.62), the others stay at
    chance: their resampled models start above loss 1 and retraining does not leave the silent-readout plateau.
    Without clipping and at lr 0.05 (the earlier default) every dms model collapsed to that plateau (loss 1,
    accuracy 0.5): the gradients through its long delays are large and the memory states fragile. With its mean free, one Gaussian gains context
    dependence slowly on mante (0.95 after 1000 steps at lr 0.05), so the answer depends on the budget.

    progress: tqdm bars for the mixture fits and for the P evaluated, once a stage takes more than a second.
    """
    rng = as_generator(rng, name="rng")
    max_populations = check_int(max_populations, "max_populations", minimum=1)
    min_populations = check_int(min_populations, "min_populations", minimum=1)
    if min_populations > max_populations:
        raise RnnscopeError(f"min_populations: {min_populations} is above max_populations {max_populations}")
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
    fit = fit_populations(
        loadings(weights), rng=rng, min_populations=min_populations, max_populations=max_populations,
        restarts=restarts, method=method, progress=progress,
    )
    trained_accuracy = evaluate_networks(weights, batch, rng=rng, memory_mb=memory_mb, device=device).mean
    accuracy = np.full((max_populations, networks), np.nan)
    retrained_accuracy = np.full((max_populations, networks), np.nan)
    losses = np.full((max_populations, retrain_epochs if retrain else 0), np.nan)
    models: list[PopulationModel | None] = [None] * max_populations
    sizes: list[tuple[int, ...] | None] = [None] * max_populations
    found = None
    bar = tqdm(range(min_populations, max_populations + 1), desc="minimal populations", unit="P", disable=not progress, delay=1.0,
               leave=False)
    for count in bar:
        labels = relabel(fit.labels_for(count))
        labels = labels if count > 1 else np.zeros(weights.size, dtype=int)
        sizes[count - 1] = tuple(int(c) for c in np.bincount(labels, minlength=count))
        model = PopulationModel.from_weights(weights, labels if count > 1 else None)
        result = resample_model(
            model, batch, rng=rng, networks=networks, size=size, zero_mean=zero_mean,
            memory_mb=memory_mb, device=device,
        )
        accuracy[count - 1] = result.accuracy
        success = result.mean >= trained_accuracy - tolerance
        if retrain:
            retraining = retrain_population_model(
                model, task, rng=rng, epochs=retrain_epochs, size=retrain_size, trials=retrain_trials,
                lr=retrain_lr, networks=retrain_networks, zero_mean=zero_mean, clip_gradient=retrain_clip,
            )
            retrained, losses[count - 1] = retraining.model, retraining.losses
            models[count - 1] = retrained
            again = resample_model(
                retrained, batch, rng=rng, networks=networks, size=size, zero_mean=zero_mean,
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
        retrain_losses=losses, retrained_models=tuple(models), min_populations=min_populations,
        population_sizes=tuple(sizes),
    )
