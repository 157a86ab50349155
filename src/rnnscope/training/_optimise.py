"""The one optimisation core: Adam, one gradient clipper, validation each epoch, keep-best, early stop.

``train``, ``train_ensemble`` and every other fit in rnnscope (population-model retraining, design fits) run
this loop. The public entry is :func:`optimise` (a loss closure over any parameters); the trainers use the same
loop through :func:`run_epochs` with an objective that also writes gradients without an autograd graph (the fused
kernels) and, for an ensemble, parameters stacked on a leading network axis (one clipping, best epoch and early
stop per network).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnscope._validation import as_generator, check_int, check_positive, check_probability
from rnnscope.errors import RnnscopeError

__all__ = ["OptimisationConfig", "OptimisationResult", "optimise", "clip_gradients"]


@dataclass(frozen=True)
class OptimisationConfig:
    """How :func:`optimise` runs: ``epochs`` epochs of ``steps_per_epoch`` Adam steps (learning rate ``lr``),
    gradients clipped to a joint norm of ``clip_gradient`` (None: not clipped), validation after every epoch.
    keep_best: leave the parameters at the epoch with the lowest validation loss (the lowest mean training loss
    of an epoch when there is no validation). target_accuracy, target_loss: stop once the KEPT network (the best
    epoch's, with ``keep_best``) has a validation accuracy >= target_accuracy and a validation loss <= target_loss
    (those given), so a run never stops, and is never saved, below its target; an epoch that meets the target with a
    higher loss than the kept one does not stop training."""

    epochs: int = 20
    steps_per_epoch: int = 1
    lr: float = 1e-2
    clip_gradient: float | None = 1.0
    target_accuracy: float | None = None
    keep_best: bool = True
    target_loss: float | None = None

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", minimum=1)
        check_int(self.steps_per_epoch, "steps_per_epoch", minimum=1)
        if self.target_loss is not None:
            check_positive(self.target_loss, "target_loss")
        check_positive(self.lr, "lr")
        if self.clip_gradient is not None:
            check_positive(self.clip_gradient, "clip_gradient")
        if self.target_accuracy is not None:
            check_probability(self.target_accuracy, "target_accuracy")
        if not isinstance(self.keep_best, bool):
            raise RnnscopeError(f"keep_best: expected true or false, got {self.keep_best!r}")


@dataclass(frozen=True, eq=False)
class OptimisationResult:
    """The learning curve of :func:`optimise`: one row per epoch (``epoch``, ``loss`` = the mean training loss of
    its steps, ``seconds``, and ``validation_loss``, ``validation_accuracy`` when validated); best_epoch: the epoch
    whose parameters were kept (the last one without keep_best); stopped_early: the target accuracy was reached."""

    history: tuple[dict[str, float], ...]
    best_epoch: int
    stopped_early: bool

    @property
    def losses(self) -> np.ndarray:
        """(epochs,) the mean training loss of every epoch."""
        return np.array([row["loss"] for row in self.history], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": len(self.history), "best_epoch": self.best_epoch, "stopped_early": self.stopped_early,
                "history": [dict(row) for row in self.history]}


def clip_gradients(parameters: Sequence[torch.Tensor], max_norm: float, *, networks: int | None = None) -> None:
    """Scale the gradients (``.grad``) of ``parameters`` in place so that their joint L2 norm is at most
    ``max_norm``: ``g <- g * min(1, max_norm / (|g| + 1e-6))``, the rule of ``torch.nn.utils.clip_grad_norm_``.

    networks: None for one set of parameters; K for a stack of K networks (every parameter (K, ...)), each
    network's gradient (slice k of every parameter) clipped on its own. CPU gradients are scaled through NumPy
    views (microseconds for the few small tensors of a rate network), others with torch.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    count = 1 if networks is None else int(networks)
    if all(g.device.type == "cpu" and g.dtype == torch.float32 and g.is_contiguous() for g in grads):
        rows = [g.numpy().reshape(count, -1) for g in grads]
        squares = np.zeros(count, np.float32)
        for a in rows:
            for k in range(count):
                squares[k] += np.dot(a[k], a[k])
        factor = np.minimum(np.float32(max_norm) / (np.sqrt(squares) + np.float32(1e-6)), np.float32(1.0))
        for a in rows:
            for k in range(count):
                a[k] *= factor[k]
        return
    squares = torch.stack([g.pow(2).reshape(count, -1).sum(dim=1) for g in grads]).sum(dim=0)
    factor = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(factor.reshape((-1,) + (1,) * (g.dim() - 1)) if networks is not None else factor[0])


class Objective(Protocol):
    """What :func:`run_epochs` optimises. K = networks (1 for one set of parameters)."""

    def begin_epoch(self, epoch: int) -> None:
        """Prepare epoch ``epoch`` (e.g. draw its batch order)."""

    def step(self, index: int) -> np.ndarray:
        """Step ``index`` of the epoch: write the gradients to ``.grad``; returns the losses (K,)."""

    def validate(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(validation losses (K,), accuracies (K,)), or None when there is no validation."""


@dataclass
class State:
    """Where an optimisation stands: the next epoch, one learning curve per network, each network's best epoch,
    best score and best parameter values (``best``: clones of the parameters), and whether each has reached the
    target accuracy."""

    epoch: int
    histories: list[list[dict[str, float]]]
    best_epoch: np.ndarray  # (K,) int, -1 before the first epoch
    best_loss: np.ndarray  # (K,) float
    best: list[torch.Tensor]
    stopped_early: np.ndarray  # (K,) bool

    @classmethod
    def fresh(cls, parameters: Sequence[torch.Tensor], networks: int = 1) -> State:
        return cls(0, [[] for _ in range(networks)], np.full(networks, -1), np.full(networks, np.inf),
                   [p.detach().clone() for p in parameters], np.zeros(networks, dtype=bool))


def run_epochs(
    parameters: Sequence[torch.Tensor],
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    config: OptimisationConfig,
    state: State,
    *,
    stacked: bool = False,
    on_epoch: Callable[[State], None] | None = None,
    progress: bool = False,
    desc: str = "optimise",
    labels: Sequence[str] | None = None,
) -> State:
    """The loop, from ``state`` on (``state`` is updated and returned). stacked: every parameter has the network
    axis K first (an ensemble), so clipping, keep-best and early stopping are per network; training stops once
    every network has reached the target. on_epoch: called after each epoch (checkpoints). labels: one name per
    network for error messages. Parameters end at each network's best values with ``keep_best``. A non-finite
    loss raises RnnscopeError naming ``lr``."""
    params = list(parameters)
    networks = len(state.histories)
    labels = list(labels) if labels is not None else ["training"] * networks
    bar = tqdm(range(state.epoch, config.epochs), disable=not progress, desc=desc, unit="epoch",
               initial=state.epoch, total=config.epochs)
    for epoch in bar:
        if _has_target(config) and state.histories[0] and bool(state.stopped_early.all()):
            break
        began = time.perf_counter()
        objective.begin_epoch(epoch)
        losses = np.empty((config.steps_per_epoch, networks), dtype=np.float64)
        for index in range(config.steps_per_epoch):
            losses[index] = objective.step(index)
            if config.clip_gradient is not None:
                clip_gradients(params, config.clip_gradient, networks=networks if stacked else None)
            optimizer.step()
        validation = objective.validate()
        seconds = (time.perf_counter() - began) / networks
        train_loss = losses.mean(axis=0)
        for k in range(networks):
            row: dict[str, float] = {"epoch": epoch, "loss": float(train_loss[k])}
            score = float(train_loss[k])
            if validation is not None:
                score = float(validation[0][k])
                row["validation_loss"] = score
                row["validation_accuracy"] = float(validation[1][k])
            if not (np.isfinite(score) and np.all(np.isfinite(losses[:, k]))):
                shown = f"training loss {float(train_loss[k])}" + (f", validation loss {score}" if validation else "")
                raise RnnscopeError(f"lr: {labels[k]} diverged at epoch {epoch} ({shown}); try a learning rate "
                                    f"lower than {config.lr}")
            row["seconds"] = seconds
            state.histories[k].append(row)
            if score < state.best_loss[k] or not config.keep_best:
                state.best_loss[k], state.best_epoch[k] = score, epoch
                with torch.no_grad():
                    for best, p in zip(state.best, params, strict=True):
                        (best[k] if stacked else best).copy_(p[k] if stacked else p)
            state.stopped_early[k] = validation is not None and _meets_target(state.histories[k][state.best_epoch[k]],
                                                                              config)
        state.epoch = epoch + 1
        if validation is not None:
            accuracy = validation[1]
            bar.set_postfix(loss=f"{float(np.mean(train_loss)):.4f}", acc=f"{float(np.min(accuracy)):.3f}")
        else:
            bar.set_postfix(loss=f"{float(np.mean(train_loss)):.4f}")
        if on_epoch is not None:
            on_epoch(state)
    bar.close()
    if config.keep_best and state.histories[0]:
        with torch.no_grad():
            for best, p in zip(state.best, params, strict=True):
                p.copy_(best)
    return state


def _has_target(config: OptimisationConfig) -> bool:
    return config.target_accuracy is not None or config.target_loss is not None


def _meets_target(row: dict[str, float], config: OptimisationConfig) -> bool:
    """Whether the epoch ``row`` (the kept one) meets every target given (at least one)."""
    if not _has_target(config):
        return False
    accuracy_ok = config.target_accuracy is None or row["validation_accuracy"] >= config.target_accuracy
    return accuracy_ok and (config.target_loss is None or row["validation_loss"] <= config.target_loss)


@dataclass
class _Closure:
    """:class:`Objective` of :func:`optimise`: each step calls ``loss(rng)`` and back-propagates."""

    parameters: list[torch.Tensor]
    loss: Callable[[np.random.Generator], torch.Tensor]
    rng: np.random.Generator
    check: Callable[[], tuple[float, float]] | None = field(default=None)

    def begin_epoch(self, epoch: int) -> None:
        pass

    def step(self, index: int) -> np.ndarray:
        for p in self.parameters:
            p.grad = None
        value = self.loss(self.rng)
        if not isinstance(value, torch.Tensor) or value.dim() != 0 or value.grad_fn is None:
            raise RnnscopeError("loss: must return a scalar tensor that depends on the parameters (a grad_fn), "
                                f"got {type(value).__name__} {tuple(getattr(value, 'shape', ()))}")
        value.backward()
        return np.array([float(value.detach())])

    def validate(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.check is None:
            return None
        with torch.no_grad():
            loss, accuracy = self.check()
        return np.array([float(loss)]), np.array([float(accuracy)])


def optimise(
    parameters: Sequence[torch.Tensor],
    loss: Callable[[np.random.Generator], torch.Tensor],
    *,
    config: OptimisationConfig,
    rng: int | np.random.Generator,
    validate: Callable[[], tuple[float, float]] | None = None,
    progress: bool = False,
) -> OptimisationResult:
    """Minimise ``loss`` over ``parameters`` with Adam: the loop ``train`` runs, for any differentiable fit.

    parameters: leaf tensors with ``requires_grad`` (updated in place; left at the best epoch's values when
    ``config.keep_best``). loss: ``loss(rng) -> scalar tensor``, called once per step with the one Generator
    made from ``rng``, from which it draws whatever is random in a step (trials, noise, sampled loadings).
    validate: ``() -> (validation loss, validation accuracy)``, called after every epoch under ``torch.no_grad()``;
    it decides the best epoch and early stopping (``config.target_accuracy``); without it the best epoch is the
    one with the lowest mean training loss. Each step clears the gradients, back-propagates, clips the joint
    gradient norm to ``config.clip_gradient`` and takes one Adam step. A non-finite loss raises RnnscopeError.

    Example: fit the mean of a Gaussian to samples, one new batch per step::

        mean = torch.zeros(3, requires_grad=True)
        target = torch.tensor([1.0, -2.0, 0.5])

        def loss(rng):
            samples = torch.from_numpy(rng.normal(size=(64, 3)).astype("float32")) + target
            return ((samples - mean) ** 2).mean()

        result = optimise([mean], loss, config=OptimisationConfig(epochs=200, lr=0.05), rng=0)
        result.losses        # (200,) one mean training loss per epoch
        result.best_epoch    # mean holds that epoch's values
    """
    params = list(parameters)
    if not params:
        raise RnnscopeError("parameters: need at least one tensor to optimise")
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.requires_grad or not p.is_leaf:
            raise RnnscopeError(f"parameters[{i}]: expected a leaf tensor with requires_grad, got "
                                f"{type(p).__name__}{'' if isinstance(p, torch.Tensor) else ''}")
    if not isinstance(config, OptimisationConfig):
        raise RnnscopeError(f"config: expected an OptimisationConfig, got {type(config).__name__}")
    if _has_target(config) and validate is None:
        raise RnnscopeError("target_accuracy: early stopping needs a validate function")
    if not callable(loss) or (validate is not None and not callable(validate)):
        raise RnnscopeError("loss, validate: expected callables")
    objective = _Closure(params, loss, as_generator(rng, name="rng"), validate)
    optimizer = torch.optim.Adam(params, lr=config.lr)
    state = run_epochs(params, objective, optimizer, config, State.fresh(params), progress=progress)
    return OptimisationResult(tuple(state.histories[0]), max(int(state.best_epoch[0]), 0),
                              bool(state.stopped_early[0]))
