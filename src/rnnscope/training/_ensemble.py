"""Train K networks at once on the fused CPU kernel, at about the cost per network of training one.

Network k follows exactly the recipe of ``train(..., seed=seeds[k], backend="fast")``: the same initialisation,
training and validation sets, batch order, noise, per-network gradient clipping and Adam; only the arithmetic of
the K networks is batched into one kernel call per step.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnscope import io
from rnnscope._validation import check_int
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models import ModelConfig, RateRNN, build_model
from rnnscope.tasks import Task, correct_trials
from rnnscope.training._loss import masked_mse_loss
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


def _clip_per_network(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """Scale each network's gradient (slice k of every parameter) to norm <= max_norm, as clip_grad_norm_ does for
    one network."""
    grads = [p.grad for p in params if p.grad is not None]
    squares = torch.stack([g.pow(2).reshape(g.shape[0], -1).sum(dim=1) for g in grads]).sum(dim=0)
    factor = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(factor.reshape((-1,) + (1,) * (g.dim() - 1)))


def train_ensemble(
    task: Task,
    model: ModelConfig,
    config: TrainingConfig = TrainingConfig(),
    *,
    seeds: Sequence[int],
    out: str | Path | None = None,
    progress: bool = True,
) -> EnsembleResult:
    """Train ``len(seeds)`` networks of architecture ``model`` on ``task``, network k from ``seeds[k]``.

    With ``out`` (missing or empty; locked while it is written), network k's run directory is ``out/net{k:02d}``
    (a normal run directory). Early stopping ends training once every network has reached ``target_accuracy``;
    each network keeps its own best epoch. Seeds, the task's data and the memory needed are checked first.
    """
    from rnnscope.models._fast import fast_path_supported

    seeds = tuple(check_int(s, "seeds", minimum=0, maximum=MAX_SEED) for s in seeds)
    if not seeds:
        raise RnnscopeError("seeds: an ensemble needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise RnnscopeError(f"seeds: must be distinct, got {list(seeds)}")
    if config.device != "cpu" or config.backend == "torch":
        raise RnnscopeError("backend: ensembles train on the fused CPU kernel (device cpu, backend auto or fast)")
    if not isinstance(model, ModelConfig):
        raise RnnscopeError(f"model: expected a ModelConfig, got {type(model).__name__}")
    _check_compatible(task, model)
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        io.check_new_run_dir(out_path)  # before any work; again under the lock before writing
    data = [_training_data(task, config, seed) for seed in seeds]
    check_memory(model, config, steps=data[0][0].steps, networks=len(seeds))
    nets = [build_model(model, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    if not fast_path_supported(nets[0]):
        raise RnnscopeError(f"model: the fused kernel cannot train a {model.kind} network of this configuration")
    with io.lock_run_dir(out_path) if out_path is not None else contextlib.nullcontext():
        if out_path is not None:
            io.check_new_run_dir(out_path)
        return _train_ensemble(task, config, seeds, nets, data, out_path, progress)


def _train_ensemble(
    task: Task,
    config: TrainingConfig,
    seeds: tuple[int, ...],
    nets: list[RateRNN],
    data: list,
    out_path: Path | None,
    progress: bool,
) -> EnsembleResult:
    """The loop of ``train_ensemble``; writes the run directories into ``out_path`` (locked by the caller)."""
    from rnnscope.models._fast import fast_loss_and_grads_ensemble, fast_outputs, stack_parameters

    stack = lambda arrays: torch.from_numpy(np.stack(arrays))  # noqa: E731
    train_in, train_tg, train_mk = (stack([getattr(d[0], f) for d in data]) for f in ("inputs", "targets", "mask"))
    val_in, val_tg, val_mk = (stack([getattr(d[1], f) for d in data]) for f in ("inputs", "targets", "mask"))
    validation_seeds = [d[2] for d in data]
    params = stack_parameters(nets)
    trainable = [p for p in params.values() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr, fused=True)  # as train() on the fast path
    K, cfg = len(seeds), nets[0].config
    readout_scale = nets[0].readout_scale
    histories: list[list[dict[str, float]]] = [[] for _ in range(K)]
    best_loss = np.full(K, np.inf)
    best_epoch = np.zeros(K, dtype=int)
    best = {name: value.detach().clone() for name, value in params.items()}
    rows = torch.arange(K)[:, None]

    bar = tqdm(range(config.epochs), disable=not progress, desc=f"train {K} x {task.name}", unit="epoch")
    for epoch in bar:
        began = time.perf_counter()
        rngs = [np.random.default_rng([seed, 3, epoch]) for seed in seeds]
        orders = np.stack([rng.permutation(config.train_trials) for rng in rngs])
        losses = []
        for b in range(config.batches_per_epoch):
            index = torch.from_numpy(orders[:, b * config.batch_size : (b + 1) * config.batch_size])
            # the kernel's gradients go straight into .grad (no autograd graph), as in train() on the fast path
            batch_losses = fast_loss_and_grads_ensemble(
                params, train_in[rows, index], train_tg[rows, index], train_mk[rows, index],
                seeds=[_seed_of(rng) for rng in rngs], alpha=cfg.alpha, noise_std=cfg.noise_std,
                readout_scale=readout_scale,
            )
            if config.clip_gradient is not None:
                _clip_per_network(trainable, config.clip_gradient)
            optimizer.step()
            losses.append(batch_losses)
        with torch.no_grad():
            outputs = torch.from_numpy(fast_outputs(params, val_in, seeds=validation_seeds, alpha=cfg.alpha,
                                                    noise_std=cfg.noise_std, readout_scale=readout_scale))
        seconds = (time.perf_counter() - began) / K
        for k in range(K):
            val_loss = float(masked_mse_loss(outputs[k], val_tg[k], val_mk[k]))
            if not np.isfinite(val_loss):  # the data were checked finite before training
                raise RnnscopeError(f"lr: network {k} (seed {seeds[k]}) diverged at epoch {epoch} (validation loss "
                                    f"{val_loss}); try a learning rate lower than {config.lr}")
            val_acc = float(correct_trials(outputs[k].numpy(), data[k][1]).mean())
            histories[k].append({"epoch": epoch, "loss": float(np.mean([batch[k] for batch in losses])),
                                 "validation_loss": val_loss, "validation_accuracy": val_acc, "seconds": seconds})
            if val_loss < best_loss[k] or not config.keep_best:
                best_loss[k], best_epoch[k] = val_loss, epoch
                for name, value in params.items():
                    best[name][k] = value.detach()[k]
        accuracies = [h[-1]["validation_accuracy"] for h in histories]
        bar.set_postfix(min_acc=f"{min(accuracies):.3f}", mean_acc=f"{np.mean(accuracies):.3f}")
        if config.target_accuracy is not None and min(accuracies) >= config.target_accuracy:
            break
    bar.close()

    final = best if config.keep_best else {name: value.detach() for name, value in params.items()}
    results = []
    for k, seed in enumerate(seeds):
        net = nets[k]
        with torch.no_grad():
            for name, value in final.items():
                getattr(net, name).copy_(value[k] if name != "h0" else value[k])
        stopped = config.target_accuracy is not None and histories[k][-1]["validation_accuracy"] >= config.target_accuracy
        run = None
        if out_path is not None:
            run = out_path / f"net{k:02d}"
            io.write_config(run, _run_config(task, net, config, seed))
            io.write_metrics(run, histories[k])
            io.save_weights(run, net)
        results.append(TrainingResult(net, tuple(histories[k]), int(best_epoch[k]), stopped, run))
    if config.target_accuracy is not None and not all(r.stopped_early for r in results):
        warnings.warn(f"{sum(not r.stopped_early for r in results)} of {K} networks never reached target_accuracy "
                      f"{config.target_accuracy}", ConvergenceWarning, stacklevel=3)
    return EnsembleResult(tuple(results), seeds, out_path)
