"""Train K networks at once on the fused CPU kernel, at about the cost per network of training one.

Network k follows exactly the recipe of ``train(..., rng=seeds[k], backend="fast")``: the same initialisation,
training and validation sets, batch order, noise, per-network gradient clipping and Adam (trained input and output
scales included: the kernel's gradients of the vectors used, w * s, are chained to w and s as on the single-network
fused path); only the arithmetic of the K networks is batched into one kernel call per step.
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
    _result_record,
    _run_config,
    _seed_of,
    _training_data,
    check_memory,
    converged_epoch,
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
            "converged_epoch": [r.converged_epoch for r in self.results],
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
    each network keeps its own best epoch and records its own ``converged_epoch``: the epoch after which its kept
    network first met the target, where ``train`` alone would have stopped (in its result and in the ``result``
    section of its ``config.json``). Seeds, the task's data and the memory needed are checked first.
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


_SCALED = {"s_in": "w_in", "s_out": "w_out"}  # a trained scale and the vectors it multiplies


def _stack(nets: list[RateRNN]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[torch.Tensor]]:
    """The K networks' parameters stacked on a leading axis: the kernel's (m, n or J, w_in, w_out, h0), the trained
    scales (s_in, s_out), and the trainable tensors in the order of a network's ``parameters()`` (as ``train``)."""
    params = stack_parameters(nets)  # the vectors used (w * s) under w_in / w_out: replaced by w itself below
    scales = {}
    for name, key in _SCALED.items():
        if hasattr(nets[0], name):
            params[key] = torch.stack([getattr(n, key).detach() for n in nets]).clone().requires_grad_(
                getattr(nets[0], key).requires_grad)
            scales[name] = torch.stack([getattr(n, name).detach() for n in nets]).clone().requires_grad_(
                getattr(nets[0], name).requires_grad)
    every = {**params, **scales}
    return params, scales, [every[name] for name, p in nets[0].named_parameters() if p.requires_grad]


class _EnsembleObjective:
    """K networks' epochs on the fused kernel (an ``Objective`` of the optimisation core, parameters stacked on a
    leading network axis): network k follows train()'s recipe for seeds[k] exactly."""

    def __init__(self, config: TrainingConfig, seeds: tuple[int, ...], params: dict[str, torch.Tensor],
                 scales: dict[str, torch.Tensor], net: RateRNN, data: list) -> None:
        self.config, self.seeds, self.params, self.scales, self.data = config, seeds, params, scales, data
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
        used = self.used(grad=True)
        losses = fast_loss_and_grads_ensemble(used, inputs, targets, mask,
                                              seeds=[_seed_of(rng) for rng in self.rngs], **self.dynamics)
        for name, scale in self.scales.items():  # chain rule, w_used = w * s: dL/ds = sum_i dL/dw_used * w
            vectors, grad = self.params[_SCALED[name]], used[_SCALED[name]].grad
            scale.grad = (grad * vectors.detach()).sum(dim=1)
            if vectors.requires_grad:
                vectors.grad = grad * scale.detach()[:, None, :]
        return losses

    def used(self, *, grad: bool = False) -> dict[str, torch.Tensor]:
        """The K networks' parameters as the kernel takes them: the vectors used, w * s, for a trained scale s (new
        leaves that receive the kernel's gradients when ``grad``)."""
        if not self.scales:
            return self.params
        used = dict(self.params)
        for name, scale in self.scales.items():
            key = _SCALED[name]
            used[key] = (self.params[key].detach() * scale.detach()[:, None, :]).requires_grad_(grad)
        return used

    def validate(self) -> tuple[np.ndarray, np.ndarray]:
        inputs, targets, mask = self.validation
        with torch.no_grad():
            outputs = torch.from_numpy(fast_outputs(self.used(), inputs, seeds=self.validation_seeds, **self.dynamics))
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
    params, scales, trainable = _stack(nets)
    optimizer = torch.optim.Adam(trainable, lr=config.lr, fused=True)  # as train() on the fast path
    K = len(seeds)
    state = State.fresh(trainable, networks=K)
    run_epochs(trainable, _EnsembleObjective(config, seeds, params, scales, nets[0], data), optimizer,
               config.optimisation, state, stacked=True, progress=progress, desc=f"train {K} x {task.name}",
               labels=[f"network {k} (seed {seed})" for k, seed in enumerate(seeds)])
    results = []
    for k, seed in enumerate(seeds):
        net = nets[k]
        with torch.no_grad():
            for name, value in {**params, **scales}.items():
                getattr(net, name).copy_(value.detach()[k])
        stopped = bool(state.stopped_early[k])
        run = out_path / f"net{k:02d}" if out_path is not None else None
        result = TrainingResult(net, tuple(state.histories[k]), int(max(state.best_epoch[k], 0)), stopped, run,
                                converged_epoch(state.histories[k], config))
        if run is not None:
            io.write_config(run, {**_run_config(task, net, config, seed, scratch=True), "result": _result_record(result)})
            io.write_metrics(run, state.histories[k])
            io.save_weights(run, net)
        results.append(result)
    if config.target_accuracy is not None and not all(r.stopped_early for r in results):
        warnings.warn(f"{sum(not r.stopped_early for r in results)} of {K} networks never reached target_accuracy "
                      f"{config.target_accuracy}", ConvergenceWarning, stacklevel=3)
    return EnsembleResult(tuple(results), seeds, out_path)
