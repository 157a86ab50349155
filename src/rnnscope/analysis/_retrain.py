"""Training the parameters of a loading distribution directly (reparametrised sampling).

A network whose loadings are ``mean + factor z`` (z standard normal) is a differentiable function of the mean
and the factor, so the distribution itself can be trained on a task by gradient descent: sample the loadings,
take the masked MSE and its gradient with respect to every neuron's loadings from the fused CPU kernel
(``rnnscope.models.fast_loss_and_grads_ensemble``, the kernel and noise convention training uses), chain-rule it
into the distribution's parameters through the sampler (torch autograd on the sampler only), and step with
``rnnscope.training.optimise`` (the loop every fit in rnnscope runs). ``loadings_loss`` is the same loss on the
plain PyTorch time loop (``rnnscope.models.integrate``): the reference the fused gradients are tested against. ``train_loadings`` is that fit, used both
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
from rnnscope.models import draw_noise, fast_loss_and_grads_ensemble, input_drive, integrate
from rnnscope.tasks import Task, TrialBatch
from rnnscope.training import OptimisationConfig, masked_mse_loss, optimise

__all__ = [
    "loadings_loss",
    "loadings_loss_and_grads",
    "fused_loadings_loss",
    "train_loadings",
    "Retraining",
    "retrain_population_model",
]


def loadings_loss(
    values: torch.Tensor,
    columns: Sequence[str],
    batch: TrialBatch,
    *,
    noise_std: float,
    alpha: float,
    generator: torch.Generator,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Masked MSE on ``batch`` of the network whose loadings are ``values`` (size, columns) (h0 = 0, float32), on
    the plain PyTorch time loop.

    Columns are in block order (w_in, n, m, w_out) (see ``loading_columns``); J = m n^T / size and
    z = tanh(x) @ w_out / size. Private noise xi (trials, time, size) is ``noise`` when given (e.g.
    ``rnnscope.models.fast_noise((trials, time, size), seed)``, the fused kernel's noise for that seed), else drawn
    from ``generator`` when noise_std > 0. Differentiable in ``values``.
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
    if noise is not None:
        noise = torch.as_tensor(noise, dtype=torch.float32)
        if tuple(noise.shape) != tuple(drive.shape):
            raise RnnscopeError(f"noise: expected shape {tuple(drive.shape)}, got {tuple(noise.shape)}")
    elif noise_std > 0:
        noise = draw_noise(tuple(drive.shape), generator=generator)
    outputs = integrate(
        drive, torch.zeros(size), lambda r: (r @ n) @ m.T / size, lambda x: torch.tanh(x) @ w_out / size,
        alpha=alpha, noise_std=noise_std, noise=noise,
    )
    targets = torch.from_numpy(np.asarray(batch.targets, dtype=np.float32))
    mask = torch.from_numpy(np.asarray(batch.mask, dtype=np.float32))
    return masked_mse_loss(outputs, targets, mask)


def _split(values: np.ndarray, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """(networks, size, columns) in block order (w_in, n, m, w_out) -> the four blocks (networks, size, count)."""
    counts = loading_layout(columns)
    blocks, start = {}, 0
    for name in ("w_in", "n", "m", "w_out"):
        blocks[name] = values[..., start : start + counts[name]]
        start += counts[name]
    return blocks


def loadings_loss_and_grads(
    values: np.ndarray | torch.Tensor,
    columns: Sequence[str],
    batch: TrialBatch,
    *,
    noise_std: float,
    alpha: float,
    seeds: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """The masked MSE of ``networks`` networks on ``batch`` and its gradient with respect to every loading, from the
    fused CPU kernel (``rnnscope.models.fast_loss_and_grads_ensemble``, float32).

    values: (networks, size, columns) loadings in block order (w_in, n, m, w_out), h0 = 0, J = m n^T / size,
    z = tanh(x) @ w_out / size; seeds: one per network, its private noise (``rnnscope.models.fast_noise``).
    Returns losses (networks,) and gradients (networks, size, columns) float64, network k's row the gradient of
    its own loss: what ``loadings_loss(values[k], ..., noise=fast_noise(shape, seeds[k]))`` gives.
    """
    values = np.asarray(values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values)
    loading_layout(columns)
    if values.ndim != 3 or values.shape[2] != len(columns):
        raise RnnscopeError(f"values: expected shape (networks, size, {len(columns)}), got {values.shape}")
    networks, size = int(values.shape[0]), int(values.shape[1])
    blocks = _split(values.astype(np.float32), columns)
    params = {name: torch.from_numpy(np.ascontiguousarray(block)).requires_grad_(True) for name, block in blocks.items()}
    params["h0"] = torch.zeros(networks, size)
    losses = fast_loss_and_grads_ensemble(
        params, batch.inputs, batch.targets, batch.mask, seeds=[int(s) for s in seeds], alpha=alpha,
        noise_std=noise_std, readout_scale=1.0 / size,
    )
    grads = np.concatenate([params[name].grad.numpy() for name in ("w_in", "n", "m", "w_out")], axis=-1)
    return np.asarray(losses, dtype=np.float64), grads.astype(np.float64)


def fused_loadings_loss(
    values: torch.Tensor,
    columns: Sequence[str],
    batch: TrialBatch,
    *,
    noise_std: float,
    alpha: float,
    seeds: Sequence[int],
) -> torch.Tensor:
    """The mean over networks of the masked MSE of the networks whose loadings are ``values`` (size, columns) or
    (networks, size, columns), as a scalar tensor whose gradient is the fused kernel's
    (``loadings_loss_and_grads``) back-propagated through whatever made ``values`` (the sampler): no autograd graph
    through time. seeds: one per network (its private noise, ``rnnscope.models.fast_noise``). Its value and
    gradient equal the mean of ``loadings_loss(values[k], ..., noise=fast_noise(shape, seeds[k]))`` (float32)."""
    stacked = values if values.dim() == 3 else values.unsqueeze(0)
    losses, grads = loadings_loss_and_grads(stacked, columns, batch, noise_std=noise_std, alpha=alpha, seeds=seeds)
    # value: the mean loss; gradient: sum_k dL_k/dvalues_k . dvalues_k/dparameters / networks
    surrogate = (stacked * torch.from_numpy(grads).to(stacked.dtype)).sum() / stacked.shape[0]
    return surrogate - surrogate.detach() + float(losses.mean())


def train_loadings(
    draw: Callable[[], torch.Tensor],
    parameters: Sequence[torch.Tensor],
    task: Task,
    *,
    rng: np.random.Generator | int,
    columns: Sequence[str],
    noise_std: float,
    alpha: float,
    epochs: int,
    trials: int,
    lr: float,
    clip_gradient: float | None = None,
) -> np.ndarray:
    """Train a loading distribution on ``task`` with ``rnnscope.training.optimise`` (the one training loop):
    ``epochs`` Adam steps at learning rate ``lr`` on ``parameters``, gradients unclipped, the parameters left at
    the last step. Each step samples ``trials`` trials of ``task`` (from ``rng``) and calls ``draw()`` for the
    loadings of one network (size, columns) or of several (networks, size, columns), differentiable in
    ``parameters``; the loss is the mean over those networks of each one's masked MSE on the trials, with private
    noise from seeds drawn from ``rng``. Its gradient with respect to the loadings comes from the fused kernel
    (``loadings_loss_and_grads``) and reaches ``parameters`` by back-propagating through ``draw`` alone.
    Updates ``parameters`` in place; returns the loss of every step, (epochs,)."""

    def loss(step_rng: np.random.Generator) -> torch.Tensor:
        batch = task.sample(trials, rng=step_rng)
        values = draw()
        seeds = step_rng.integers(0, 2**63 - 1, size=values.shape[0] if values.dim() == 3 else 1)
        return fused_loadings_loss(values, columns, batch, noise_std=noise_std, alpha=alpha, seeds=seeds)

    config = OptimisationConfig(epochs=epochs, steps_per_epoch=1, lr=lr, clip_gradient=clip_gradient, keep_best=False)
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
    networks: int = 1,
    zero_mean: bool = False,
    redraw: bool = True,
    clip_gradient: float | None = None,
) -> Retraining:
    """Train a population model's means and covariances on ``task`` (the paper's retraining of the mixture).

    The model becomes a ``PopulationSampler`` (loadings = mean_p + z L_p^T, L_p Cholesky with a positive
    diagonal); each epoch draws ``networks`` networks of ``size`` neurons from it (fresh z every epoch with
    ``redraw``, so the loss is the expected loss over networks; one fixed z otherwise) and takes one Adam step on
    the mean over those networks of the masked MSE over ``trials`` new trials (shared by the networks, each with its
    own private noise), the gradients from the fused kernel (``train_loadings``). Fractions and dynamics stay
    fixed; with ``zero_mean`` the means stay at zero (resample the result with ``zero_mean=True``).
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
    networks = check_int(networks, "networks", minimum=1)
    lr = check_positive(lr, "lr")
    check_nonnegative(model.noise_std, "noise_std")
    sampler = model.sampler(zero_mean=zero_mean)
    generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    fixed = sampler.normals(size, generator=generator, networks=networks)

    def draw() -> torch.Tensor:
        return sampler(sampler.normals(size, generator=generator, networks=networks) if redraw else fixed)

    parameters = [p for p in sampler.parameters() if p.requires_grad]
    losses = train_loadings(
        draw, parameters, task, rng=rng, columns=model.columns, noise_std=model.noise_std,
        alpha=model.alpha, epochs=epochs, trials=trials, lr=lr, clip_gradient=clip_gradient,
    )
    return Retraining(sampler.to_model(), model, np.asarray(losses))
