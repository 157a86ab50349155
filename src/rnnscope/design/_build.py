"""From a specification to networks: sampling (through the one population sampler), the mean-field prediction
next to finite-size networks, and fitting a specification's few free parameters on a task.

Every network is drawn by :class:`rnnscope.analysis.PopulationModel`, the sampler the resampling analysis uses: a
specification compiles to that model (``population_model``) and nothing else draws loadings. Fitting a
specification samples through the same differentiable sampler as retraining a population model
(:func:`rnnscope.analysis.reparametrised_loadings`) and trains with the same loop
(:func:`rnnscope.analysis.train_loadings`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnnscope._validation import as_generator, check_int, check_positive
from rnnscope.analysis import (
    FixedPointResult,
    PopulationModel,
    evaluate_networks,
    find_fixed_points,
    flow_field,
    reparametrised_loadings,
    train_loadings,
)
from rnnscope.design._spec import DesignSpec, population_factor
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models import LowRankBatch, LowRankWeights
from rnnscope.tasks import Task

__all__ = [
    "population_model",
    "sample_network",
    "sample_networks",
    "predict_fixed_points",
    "MeanFieldAgreement",
    "mean_field_agreement",
    "DesignFit",
    "fit_design",
]


def _check_spec(spec: Any) -> DesignSpec:
    if not isinstance(spec, DesignSpec):
        raise RnnscopeError(f"spec: expected a DesignSpec (see rnnscope.design.load_spec), got {type(spec).__name__}")
    return spec


# -------------------------------------------------------------------------------------------------- sampling
def population_model(spec: DesignSpec, *, alpha: float = 0.2) -> PopulationModel:
    """The spec as a PopulationModel: fractions (P,), means (P, columns), covariances (P, columns, columns) over
    the loading columns (w_in, n, m, w_out)."""
    spec = _check_spec(spec)
    means, covariances = spec.moments()
    return PopulationModel(
        fractions=spec.fractions, means=means, covariances=covariances, columns=spec.columns,
        noise_std=spec.noise_std, alpha=alpha,
    )


def sample_network(spec: DesignSpec, size: int, *, rng: np.random.Generator | int) -> LowRankWeights:
    """One network of ``size`` neurons drawn from ``spec`` (h0 = 0): m, n (size, rank), w_in (size, inputs),
    w_out (size, outputs). Population p holds neurons ``round(fraction_p * size)`` in order (largest remainders).
    The weights only; ``design_network`` adds what a run directory needs."""
    size = check_int(size, "size", minimum=1)
    return population_model(spec).sample(size, rng=as_generator(rng, name="rng"))


def sample_networks(spec: DesignSpec, size: int, networks: int, *, rng: np.random.Generator | int) -> LowRankBatch:
    """``networks`` independent networks of ``size`` neurons, stacked for one batched simulation."""
    size = check_int(size, "size", minimum=1)
    return population_model(spec).sample_many(networks, size, rng=as_generator(rng, name="rng"))


def population_labels(spec: DesignSpec, size: int) -> np.ndarray:
    """(size,) population of each neuron of a network built from ``spec`` (the sampler's order)."""
    return population_model(spec).labels(size)


__all__.append("population_labels")


@dataclass(frozen=True, eq=False)
class DesignedNetwork:
    """A network built from a specification, with what a run directory needs.

    weights: the sampled network; spec: its specification; size, seed: how it was drawn (seed None when drawn from
    a Generator); task: {"name", "options"}
    of the spec's task, or, for a spec that names none, the one-input placeholder ``rdm`` (``task_is_placeholder``
    True: a run directory needs a task with the network's inputs; the spec claims nothing about it).
    """

    weights: LowRankWeights
    spec: DesignSpec
    size: int
    seed: int | None
    task: dict[str, Any]
    task_is_placeholder: bool

    def to_dict(self) -> dict[str, Any]:
        """The metadata a run directory stores next to the weights (``config.json``'s ``design`` entry)."""
        return {"spec": self.spec.to_dict(), "size": self.size, "seed": self.seed, "task": self.task,
                "task_is_placeholder": self.task_is_placeholder}


def design_network(
    spec: DesignSpec, size: int, *, rng: np.random.Generator | int | None = None, seed: int | None = None
) -> DesignedNetwork:
    """Draw ``spec`` at ``size`` neurons (``sample_network``) and check it fits a run directory (float32 weights, a
    task for its inputs): what ``rnnscope design SPEC --size --seed`` does. rng: an int seed (recorded in the
    result) or a Generator; ``seed=`` is a deprecated alias of an int ``rng``."""
    spec = _check_spec(spec)
    if seed is not None:
        if rng is not None:
            raise RnnscopeError("seed: give rng only (seed= is its deprecated alias)")
        warnings.warn("design_network(seed=...) is deprecated; pass rng=", DeprecationWarning, stacklevel=2)
        rng = seed
    recorded = None if isinstance(rng, np.random.Generator) else rng
    weights = sample_network(spec, size, rng=as_generator(rng, name="rng"))
    limit = float(np.finfo(np.float32).max)  # run directories store float32
    for name in ("m", "n", "w_in", "w_out"):
        largest = float(np.abs(getattr(weights, name)).max())
        if not largest < limit:
            raise RnnscopeError(
                f"spec {spec.name or '(unnamed)'!r}: the drawn {name} reaches {largest:.3g}, beyond float32; "
                "the means or covariance entries of its columns are too large"
            )
    if spec.task is not None:
        task, placeholder = spec.task.to_dict(), False
    elif spec.inputs == 1:
        task, placeholder = {"name": "rdm", "options": {}}, True
    else:
        raise RnnscopeError(
            f"task: specification {spec.name or '(unnamed)'!r} names no task and has {spec.inputs} inputs; add a "
            "'task' entry so the run directory knows what the inputs mean"
        )
    return DesignedNetwork(weights, spec, int(size), None if recorded is None else int(recorded), task, placeholder)


__all__ += ["DesignedNetwork", "design_network"]


# -------------------------------------------------------------------------------------------------- mean field
def predict_fixed_points(
    spec: DesignSpec, *, rng: np.random.Generator | int, inputs: np.ndarray | None = None, starts: int = 100
) -> FixedPointResult:
    """Fixed points (classes, ring, limit cycle) of the mean-field flow of ``spec`` at the constant input
    ``inputs`` (inputs,). A small network drawn from the spec only carries the shapes; the flow is the spec's."""
    rng = as_generator(rng, name="rng")
    carrier = sample_network(spec, 4 * (spec.rank + spec.inputs + 1), rng=rng)
    return find_fixed_points(
        carrier, inputs=inputs, mean_field=True, population_model=population_model(spec), starts=starts, rng=rng
    )


@dataclass(frozen=True, eq=False)
class MeanFieldAgreement:
    """How finite networks drawn from a spec approach its mean-field prediction as the size grows.

    sizes: (sizes,); distance: (sizes, networks), mean over the finite network's fixed points of the distance (in
    kappa) to the nearest mean-field fixed point, NaN when either has none; class_match: (sizes, networks) bool,
    the finite network has as many fixed points of each class as the mean field (stable, saddle, source) and the
    same ring / limit-cycle flags; flow_error: (sizes, networks), RMS difference between the finite and the
    mean-field flow on a grid, relative to the RMS mean-field flow; mean_field: the prediction itself;
    inputs: (inputs,) the constant input.
    """

    sizes: np.ndarray
    distance: np.ndarray
    class_match: np.ndarray
    flow_error: np.ndarray
    mean_field: FixedPointResult
    inputs: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        nan_free = lambda a: [[None if math.isnan(v) else float(v) for v in row] for row in a]  # noqa: E731
        return {
            "sizes": self.sizes.tolist(),
            "inputs": self.inputs.tolist(),
            "mean_field": self.mean_field.to_dict(),
            "distance": nan_free(self.distance),
            "class_match": self.class_match.tolist(),
            "flow_error": nan_free(self.flow_error),
            "mean_distance": [None if np.all(np.isnan(r)) else float(np.nanmean(r)) for r in self.distance],
            "mean_flow_error": [float(np.mean(r)) for r in self.flow_error],
            "class_match_rate": [float(np.mean(r)) for r in self.class_match],
        }


def _signature(result: FixedPointResult) -> tuple:
    counts = result.fixed_points.counts()
    return counts["stable"], counts["saddle"], counts["source"], result.ring, result.limit_cycle


def mean_field_agreement(
    spec: DesignSpec,
    *,
    rng: np.random.Generator | int,
    sizes: Sequence[int] = (250, 1000, 4000),
    networks: int = 3,
    inputs: np.ndarray | None = None,
    starts: int = 60,
    resolution: int = 15,
) -> MeanFieldAgreement:
    """Fixed points and flow of ``networks`` sampled networks of each size next to the mean-field prediction."""
    spec = _check_spec(spec)
    rng = as_generator(rng, name="rng")
    sizes = np.array([check_int(s, "sizes", minimum=2) for s in sizes])
    networks = check_int(networks, "networks", minimum=1)
    model = population_model(spec)
    predicted = predict_fixed_points(spec, rng=rng, inputs=inputs, starts=starts)
    wanted = _signature(predicted)
    reference = predicted.fixed_points.kappa
    distance = np.full((len(sizes), networks), np.nan)
    match = np.zeros((len(sizes), networks), dtype=bool)
    flow_error = np.zeros((len(sizes), networks))
    bounds = None
    for i, size in enumerate(sizes):
        for j in range(networks):
            weights = sample_network(spec, int(size), rng=rng)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                found = find_fixed_points(weights, inputs=inputs, starts=starts, rng=rng)
            kappa = found.fixed_points.kappa
            if len(kappa) and len(reference):
                gaps = np.linalg.norm(kappa[:, None, :] - reference[None, :, :], axis=-1)
                distance[i, j] = float(gaps.min(axis=1).mean())
            match[i, j] = _signature(found) == wanted
            if bounds is None:
                mf_grid = flow_field(
                    weights, inputs=inputs, mean_field=True, population_model=model, resolution=resolution
                )
                bounds = np.abs(mf_grid.kappa.reshape(-1, spec.rank)).max(axis=0)[: 2]
            mf = flow_field(weights, inputs=inputs, mean_field=True, population_model=model, resolution=resolution,
                            bounds=bounds)
            finite = flow_field(weights, inputs=inputs, resolution=resolution, bounds=bounds)
            scale = math.sqrt(float(np.mean(mf.velocity**2))) or 1.0
            flow_error[i, j] = math.sqrt(float(np.mean((finite.velocity - mf.velocity) ** 2))) / scale
    u = predicted.inputs
    return MeanFieldAgreement(sizes, distance, match, flow_error, predicted, u)


# -------------------------------------------------------------------------------------------------- fitting
@dataclass(frozen=True, eq=False)
class DesignFit:
    """The result of fitting a specification's free parameters on a task.

    spec: the fitted specification; initial: the starting one; free: the trained parameter names;
    values: {name: [value per population it names]} after fitting; losses: (epochs,) training loss per epoch;
    accuracy: (networks,) accuracy of freshly resampled networks of ``size`` neurons on new trials;
    network: the first of those networks (what a run directory stores).
    """

    spec: DesignSpec
    initial: DesignSpec
    free: tuple[str, ...]
    values: dict[str, list[float]]
    losses: np.ndarray
    accuracy: np.ndarray
    size: int
    network: LowRankWeights

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.accuracy))

    def to_dict(self) -> dict[str, Any]:
        return {
            "free": list(self.free),
            "values": {k: list(v) for k, v in self.values.items()},
            "losses": self.losses.tolist(),
            "size": self.size,
            "accuracy": self.accuracy.tolist(),
            "mean_accuracy": self.mean_accuracy,
            "spec": self.spec.to_dict(),
        }


def _moments_torch(
    spec: DesignSpec, overrides: list[dict[str, torch.Tensor]]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per population: mean (columns,) and factor (columns, k) with covariance factor factor^T (the construction's,
    or the Cholesky factor of the covariance), differentiable in the ``overrides`` tensors."""
    means, factors = [], []
    for population, params in zip(spec.populations, overrides, strict=True):
        mean, factor, cov = population_factor(spec, population, params)
        if factor is None:
            jitter = 1e-8 * max(1.0, float(cov.detach().abs().max()))
            factor = torch.linalg.cholesky(cov + jitter * torch.eye(cov.shape[0], dtype=cov.dtype))
        means.append(mean)
        factors.append(factor)
    return means, factors


def fit_design(
    spec: DesignSpec,
    task: Task | None = None,
    *,
    rng: np.random.Generator | int,
    free: Sequence[str] | None = None,
    epochs: int = 60,
    trials: int = 64,
    size: int = 500,
    lr: float = 0.05,
    networks: int = 10,
    eval_trials: int = 400,
) -> DesignFit:
    """Train only the free parameters of ``spec`` (default ``spec.free``) on ``task`` (default the spec's) by Adam
    on the masked MSE, with a fixed draw of standard normals z per neuron (loadings = mean + factor z, factor
    the construction's or the Cholesky factor of the covariance), then resample ``networks`` networks of
    ``size`` neurons through the population sampler and report their accuracy on ``eval_trials`` new trials."""
    spec = _check_spec(spec)
    rng = as_generator(rng, name="rng")
    task = spec.make_task() if task is None else task
    if len(task.input_names) != spec.inputs:
        raise RnnscopeError(f"task: {task.name!r} has {len(task.input_names)} inputs, the spec {spec.inputs}")
    free = tuple(spec.free if free is None else free)
    if not free:
        raise RnnscopeError("free: name at least one parameter to fit (the spec lists none)")
    epochs = check_int(epochs, "epochs", minimum=1)
    trials = check_int(trials, "trials", minimum=1)
    size = check_int(size, "size", minimum=2)
    lr = check_positive(lr, "lr")
    paths = {name: spec.parameter_paths(name) for name in free}
    dtype = torch.float64
    tensors = {
        (i, key): torch.tensor(spec.populations[i].parameters[key], dtype=dtype, requires_grad=True)
        for name in free for i, key in paths[name]
    }
    overrides: list[dict[str, torch.Tensor]] = [{} for _ in spec.populations]
    for (i, key), tensor in tensors.items():
        overrides[i][key] = tensor
    generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    width = len(spec.columns) + 2 * spec.rank + spec.inputs
    z = torch.randn((size, width), generator=generator, dtype=dtype)

    def draw() -> torch.Tensor:
        return reparametrised_loadings(*_moments_torch(spec, overrides), spec.fractions, z)

    losses = train_loadings(
        draw, list(tensors.values()), task, rng=rng,
        columns=spec.columns, noise_std=spec.noise_std, alpha=0.2, epochs=epochs, trials=trials, lr=lr,
    )
    fitted = spec.with_parameters({key: float(t.detach()) for key, t in tensors.items()})
    values_out = {name: [float(tensors[p].detach()) for p in paths[name]] for name in free}
    batch_networks = sample_networks(fitted, size, networks, rng=rng)
    result = evaluate_networks(batch_networks, task.sample(eval_trials, rng=rng), rng=rng)
    return DesignFit(
        spec=fitted, initial=spec, free=free, values=values_out, losses=losses,
        accuracy=result.accuracy, size=size, network=batch_networks.network(0),
    )
