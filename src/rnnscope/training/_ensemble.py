"""Train K networks at once on the fused CPU kernel, at about the cost per network of training one.

Network k follows exactly the recipe of ``train(..., rng=seeds[k], backend="fast")``: the same initialisation,
training and validation sets, batch order, noise, per-network gradient clipping and Adam; only the arithmetic of
the K networks is batched into one kernel call per step.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnscope import io
from rnnscope._validation import check_int
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models import (
    ModelConfig,
    RateRNN,
    build_model,
    choose_backend,
    fast_loss_and_grads_ensemble,
    fast_outputs,
    stack_parameters,
)
from rnnscope.tasks import Task, correct_trials
from rnnscope.training._loss import masked_mse_loss
from rnnscope.training._optimise import State, run_epochs
from rnnscope.training._trainer import (
    MAX_SEED,
    TrainingConfig,
    TrainingResult,
    _check_compatible,
    _run_config,
    _seed_of,
    _training_data,
    check_memory,
)

__all__ = ["EnsembleResult", "train_ensemble"]


@dataclass(frozen=True, eq=False)
class EnsembleResult:
    """One TrainingResult per network, in the order of ``seeds``; path: the ensemble directory (net00, net01, ...)."""

    results: tuple[TrainingResult, ...]
    seeds: tuple[int, ...]
    path: Path | None = None

    @property
    def models(self) -> tuple[RateRNN, ...]:
        return tuple(r.model for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "networks": len(self.results),
            "seeds": list(self.seeds),
            "validation_accuracy": [r.validation_accuracy for r in self.results],
            "best_epoch": [r.best_epoch for r in self.results],
            "epochs": [len(r.history) for r in self.results],
            "seconds": float(sum(row["seconds"] for row in self.results[0].history)) if self.results else 0.0,
            "path": str(self.path) if self.path else None,
            "runs": [str(r.path) if r.path else None for r in self.results],
        }


def train_ensemble(
    task: Task,
    model: ModelConfig,
    config: TrainingConfig = TrainingConfig(),
    *,
    rng: Sequence[int] | np.random.Generator | None = None,
    seeds: Sequence[int] | None = None,
    networks: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> EnsembleResult:
    """Train K networks of architecture ``model`` on ``task``, network k from seed k.

    rng: the K int seeds, recorded in each network's ``config.json`` (network k is exactly
    ``train(task, model, config, rng=seeds[k])``), or a Generator from which ``networks`` distinct seeds are drawn.
    ``seeds=`` is the deprecated name of a sequence ``rng``.

    With ``out`` (missing or empty; locked while it is written), network k's run directory is ``out/net{k:02d}``
    (a normal run directory). Early stopping ends training once every network has reached ``target_accuracy``;
    each network keeps its own best epoch. Seeds, the task's data and the memory needed are checked first.
    """
    if seeds is not None:
        if rng is not None:
            raise RnnscopeError("seeds: pass either rng or seeds (deprecated), not both")
        warnings.warn("seeds= is deprecated; pass rng= (the seeds are recorded as before)", DeprecationWarning,
                      stacklevel=2)
        rng = seeds
    if isinstance(rng, np.random.Generator):
        count = check_int(networks, "networks", minimum=1)
        drawn: list[int] = []
        while len(drawn) < count:  # distinct seeds
            value = int(rng.integers(0, MAX_SEED))
            drawn += [] if value in drawn else [value]
        rng = drawn
    if rng is None:
        raise RnnscopeError("seeds: an ensemble needs its seeds (rng= a sequence of ints, or a Generator and networks=)")
    seeds = tuple(check_int(s, "seeds", minimum=0, maximum=MAX_SEED) for s in rng)
    if not seeds:
        raise RnnscopeError("seeds: an ensemble needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise RnnscopeError(f"seeds: must be distinct, got {list(seeds)}")
    if not isinstance(model, ModelConfig):
        raise RnnscopeError(f"model: expected a ModelConfig, got {type(model).__name__}")
    if choose_backend(model, device=config.device, backend=config.backend, training=True) != "fast":
        raise RnnscopeError("backend: ensembles train on the fused CPU kernel (device cpu, backend auto or fast)")
    _check_compatible(task, model)
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        io.check_new_run_dir(out_path)  # before any work; again under the lock before writing
    data = [_training_data(task, config, seed) for seed in seeds]
    check_memory(model, config, steps=data[0][0].steps, networks=len(seeds))
    nets = [build_model(model, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    with io.lock_run_dir(out_path) if out_path is not None else contextlib.nullcontext():
        if out_path is not None:
            io.check_new_run_dir(out_path)
        return _train_ensemble(task, config, seeds, nets, data, out_path, progress)


class _EnsembleObjective:
    """K networks' epochs on the fused kernel (an ``Objective`` of the optimisation core, parameters stacked on a
    leading network axis): network k follows train()'s recipe for seeds[k] exactly."""

    def __init__(self, config: TrainingConfig, seeds: tuple[int, ...], params: dict[str, torch.Tensor],
                 net: RateRNN, data: list) -> None:
        self.config, self.seeds, self.params, self.data = config, seeds, params, data
        stack = lambda arrays: torch.from_numpy(np.stack(arrays))  # noqa: E731
        self.train = [stack([getattr(d[0], f) for d in data]) for f in ("inputs", "targets", "mask")]
        self.validation = [stack([getattr(d[1], f) for d in data]) for f in ("inputs", "targets", "mask")]
        self.validation_seeds = [d[2] for d in data]
        self.dynamics = dict(alpha=net.config.alpha, noise_std=net.config.noise_std, readout_scale=net.readout_scale)
        self.rows = torch.arange(len(seeds))[:, None]

    def begin_epoch(self, epoch: int) -> None:
        self.rngs = [np.random.default_rng([seed, 3, epoch]) for seed in self.seeds]
        self.orders = np.stack([rng.permutation(self.config.train_trials) for rng in self.rngs])

    def step(self, index: int) -> np.ndarray:
        size = self.config.batch_size
        chosen = torch.from_numpy(self.orders[:, index * size : (index + 1) * size])
        inputs, targets, mask = (t[self.rows, chosen] for t in self.train)
        # the kernel's gradients go straight into .grad (no autograd graph), as in train() on the fast path
        return fast_loss_and_grads_ensemble(self.params, inputs, targets, mask,
                                            seeds=[_seed_of(rng) for rng in self.rngs], **self.dynamics)

    def validate(self) -> tuple[np.ndarray, np.ndarray]:
        inputs, targets, mask = self.validation
        with torch.no_grad():
            outputs = torch.from_numpy(fast_outputs(self.params, inputs, seeds=self.validation_seeds, **self.dynamics))
        losses = np.array([float(masked_mse_loss(outputs[k], targets[k], mask[k])) for k in range(len(self.seeds))])
        accuracy = np.array([float(correct_trials(outputs[k].numpy(), self.data[k][1]).mean())
                             for k in range(len(self.seeds))])
        return losses, accuracy


def _train_ensemble(
    task: Task,
    config: TrainingConfig,
    seeds: tuple[int, ...],
    nets: list[RateRNN],
    data: list,
    out_path: Path | None,
    progress: bool,
) -> EnsembleResult:
    """The optimisation core on the stack of ``nets``; writes the run directories into ``out_path`` (locked by
    the caller)."""
    params = stack_parameters(nets)
    trainable = [p for p in params.values() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr, fused=True)  # as train() on the fast path
    K = len(seeds)
    state = State.fresh(trainable, networks=K)
    run_epochs(trainable, _EnsembleObjective(config, seeds, params, nets[0], data), optimizer, config.optimisation,
               state, stacked=True, progress=progress, desc=f"train {K} x {task.name}",
               labels=[f"network {k} (seed {seed})" for k, seed in enumerate(seeds)])
    results = []
    for k, seed in enumerate(seeds):
        net = nets[k]
        with torch.no_grad():
            for name, value in params.items():
                getattr(net, name).copy_(value.detach()[k])
        stopped = bool(state.stopped_early[k])
        run = None
        if out_path is not None:
            run = out_path / f"net{k:02d}"
            io.write_config(run, _run_config(task, net, config, seed))
            io.write_metrics(run, state.histories[k])
            io.save_weights(run, net)
        results.append(TrainingResult(net, tuple(state.histories[k]), int(max(state.best_epoch[k], 0)), stopped, run))
    if config.target_accuracy is not None and not all(r.stopped_early for r in results):
        warnings.warn(f"{sum(not r.stopped_early for r in results)} of {K} networks never reached target_accuracy "
                      f"{config.target_accuracy}", ConvergenceWarning, stacklevel=3)
    return EnsembleResult(tuple(results), seeds, out_path)
