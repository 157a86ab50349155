"""Training the parameters of a loading distribution directly (reparametrised sampling).

A network whose loadings are ``mean + factor z`` (z standard normal) is a differentiable function of the mean
and the factor, so the distribution itself can be trained on a task by gradient descent: sample the loadings,
run the shared time loop (``rnnscope.models.integrate``), take the masked MSE, step with
``rnnscope.training.optimise`` (the loop every fit in rnnscope runs). ``train_loadings`` is that fit, used both
to retrain a population model (``retrain_population_model``, the retraining option of the minimal-population
search) and to fit a design specification's few named parameters (``rnnscope.design.fit_design``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rnnscope._validation import as_generator, check_int, check_nonnegative, check_positive
from rnnscope.analysis._loadings import loading_layout
from rnnscope.analysis._population_model import PopulationModel
from rnnscope.errors import RnnscopeError
from rnnscope.models import draw_noise, input_drive, integrate
from rnnscope.tasks import Task, TrialBatch
from rnnscope.training import OptimisationConfig, masked_mse_loss, optimise

__all__ = ["loadings_loss", "train_loadings", "Retraining", "retrain_population_model"]


def loadings_loss(
    values: torch.Tensor,
    columns: Sequence[str],
    batch: TrialBatch,
    *,
    noise_std: float,
    alpha: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Masked MSE on ``batch`` of the network whose loadings are ``values`` (size, columns) (h0 = 0, float32).

    Columns are in block order (w_in, n, m, w_out) (see ``loading_columns``); J = m n^T / size and
    z = tanh(x) @ w_out / size. Private noise xi (trials, time, size) is drawn from ``generator`` when
    noise_std > 0. Differentiable in ``values``.
    """
    counts = loading_layout(columns)
    if values.dim() != 2 or values.shape[1] != len(columns):
        raise RnnscopeError(f"values: expected shape (size, {len(columns)}), got {tuple(values.shape)}")
    size = int(values.shape[0])
    n_in, rank = counts["w_in"], counts["m"]
    values = values.to(torch.float32)
    w_in = values[:, :n_in]
    n = values[:, n_in : n_in + rank]
    m = values[:, n_in + rank : n_in + 2 * rank]
    w_out = values[:, n_in + 2 * rank :]
    drive = input_drive(torch.from_numpy(np.asarray(batch.inputs, dtype=np.float32)), w_in)
    noise = draw_noise(tuple(drive.shape), generator=generator) if noise_std > 0 else None
    outputs = integrate(
        drive, torch.zeros(size), lambda r: (r @ n) @ m.T / size, lambda x: torch.tanh(x) @ w_out / size,
        alpha=alpha, noise_std=noise_std, noise=noise,
    )
    targets = torch.from_numpy(np.asarray(batch.targets, dtype=np.float32))
    mask = torch.from_numpy(np.asarray(batch.mask, dtype=np.float32))
    return masked_mse_loss(outputs, targets, mask)


def train_loadings(
    draw: Callable[[], torch.Tensor],
    parameters: Sequence[torch.Tensor],
    task: Task,
    *,
    rng: np.random.Generator | int,
    generator: torch.Generator,
    columns: Sequence[str],
    noise_std: float,
    alpha: float,
    epochs: int,
    trials: int,
    lr: float,
) -> np.ndarray:
    """Train a loading distribution on ``task`` with ``rnnscope.training.optimise`` (the one training loop):
    ``epochs`` Adam steps at learning rate ``lr`` on ``parameters``, gradients unclipped, the parameters left at
    the last step. Each step samples ``trials`` trials of ``task`` (from ``rng``), calls ``draw()`` for the
    loadings (size, columns) (differentiable in ``parameters``) and takes the ``loadings_loss`` (noise from
    ``generator``). Updates ``parameters`` in place; returns the loss of every step, (epochs,)."""

    def loss(step_rng: np.random.Generator) -> torch.Tensor:
        batch = task.sample(trials, rng=step_rng)
        return loadings_loss(draw(), columns, batch, noise_std=noise_std, alpha=alpha, generator=generator)

    config = OptimisationConfig(epochs=epochs, steps_per_epoch=1, lr=lr, clip_gradient=None, keep_best=False)
    return optimise(list(parameters), loss, config=config, rng=rng).losses


@dataclass(frozen=True, eq=False)
class Retraining:
    """model: the retrained PopulationModel; initial: the one training started from; losses: (epochs,) the loss
    of every epoch."""

    model: PopulationModel
    initial: PopulationModel
    losses: np.ndarray

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "losses": self.losses.tolist()}


def retrain_population_model(
    model: PopulationModel,
    task: Task,
    *,
    rng: np.random.Generator | int,
    epochs: int = 50,
    size: int = 256,
    trials: int = 32,
    lr: float = 0.02,
    zero_mean: bool = False,
    redraw: bool = True,
) -> Retraining:
    """Train a population model's means and covariances on ``task`` (the paper's retraining of the mixture).

    The model becomes a ``PopulationSampler`` (loadings = mean_p + z L_p^T, L_p Cholesky with a positive
    diagonal); each epoch draws a network of ``size`` neurons from it (fresh z every epoch with ``redraw``,
    so the loss is the expected loss over networks; one fixed z otherwise) and takes one Adam step on the
    masked MSE over ``trials`` new trials, with the model's private noise. Fractions and dynamics stay fixed;
    with ``zero_mean`` the means stay at zero (resample the result with ``zero_mean=True``).
    Returns the retrained PopulationModel with the loss of every epoch.
    """
    if not isinstance(model, PopulationModel):
        raise RnnscopeError(f"model: expected a PopulationModel, got {type(model).__name__}")
    if len(task.input_names) != model.inputs:
        raise RnnscopeError(f"task: {task.name!r} has {len(task.input_names)} inputs, the model {model.inputs}")
    rng = as_generator(rng, name="rng")
    epochs = check_int(epochs, "epochs", minimum=1)
    size = check_int(size, "size", minimum=2)
    trials = check_int(trials, "trials", minimum=1)
    lr = check_positive(lr, "lr")
    check_nonnegative(model.noise_std, "noise_std")
    sampler = model.sampler(zero_mean=zero_mean)
    generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    fixed = sampler.normals(size, generator=generator)

    def draw() -> torch.Tensor:
        return sampler(sampler.normals(size, generator=generator) if redraw else fixed)

    parameters = [p for p in sampler.parameters() if p.requires_grad]
    losses = train_loadings(
        draw, parameters, task, rng=rng, generator=generator, columns=model.columns, noise_std=model.noise_std,
        alpha=model.alpha, epochs=epochs, trials=trials, lr=lr,
    )
    return Retraining(sampler.to_model(), model, np.asarray(losses))
