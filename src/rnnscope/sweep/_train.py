"""Training many vanilla/gated networks: one network to criterion (through ``rnnscope.training.optimise``), and a
population of them in parallel worker processes (CPU) or stacked on a leading network axis (CUDA).

Measured on a 2-core CPU (issue notes): an eager stack of 16 GRU-64 costs the same per batch as 16 networks trained
one by one with ``torch.nn.GRU`` (411 vs 435 ms forward + backward, B = 128, T = 100), so on the CPU networks are
trained one by one, each with PyTorch's fused module where the cell has one, in ``workers`` processes with one
torch thread each. On CUDA the networks of one config (one per seed) are stacked and trained as one batch of
matmuls with one Adam step.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import rnnscope.io as io
from rnnscope._validation import as_generator, check_int, check_positive
from rnnscope.errors import RnnscopeError
from rnnscope.models import GatedConfig, GatedRNN
from rnnscope.tasks import Task, TrialBatch, accuracy, task_spec
from rnnscope.training import OptimisationConfig, clip_gradients, masked_mse_loss, optimise

__all__ = ["SweepTraining", "TrainedNetwork", "NetworkRecord", "Population", "score_outputs", "train_network",
           "train_population", "run_name"]


@dataclass(frozen=True)
class SweepTraining:
    """How every network of a population is trained: ``epochs`` epochs of ``steps_per_epoch`` Adam steps
    (learning rate ``lr``) on fresh batches of ``trials`` trials, the gradient norm clipped to ``clip_gradient``
    (None: not clipped); after each epoch the score on ``validation_trials`` fixed trials is measured, training
    stops once it reaches ``target_score`` (None: the task's ``criterion`` when it has one) and the parameters of
    the epoch with the lowest validation loss are kept."""

    epochs: int = 40
    steps_per_epoch: int = 25
    trials: int = 64
    lr: float = 1e-2
    clip_gradient: float | None = 1.0
    validation_trials: int = 128
    target_score: float | None = None

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", minimum=1)
        check_int(self.steps_per_epoch, "steps_per_epoch", minimum=1)
        check_int(self.trials, "trials", minimum=1)
        check_positive(self.lr, "lr")
        if self.clip_gradient is not None:
            check_positive(self.clip_gradient, "clip_gradient")
        check_int(self.validation_trials, "validation_trials", minimum=1)
        if self.target_score is not None and not (isinstance(self.target_score, (int, float))
                                                  and np.isfinite(self.target_score)):
            raise RnnscopeError(f"target_score: expected a finite number or None, got {self.target_score!r}")

    def target(self, task: Task) -> float | None:
        """The score to stop at on ``task``."""
        return self.target_score if self.target_score is not None else getattr(task, "criterion", None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def score_outputs(task: Task, outputs: np.ndarray, batch: TrialBatch) -> float:
    """The task's own ``score`` (continuous tasks: fraction right, R^2) or else rnnscope's decision accuracy.
    outputs: (trials, time, outputs)."""
    score = getattr(task, "score", None)
    return float(score(outputs, batch)) if callable(score) else accuracy(outputs, batch)


def _tensors(batch: TrialBatch, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(a).to(device) for a in (batch.inputs, batch.targets, batch.mask))


def _initial(config: GatedConfig, task: Task, training: SweepTraining, seed: int):
    """(model, rng, validation batch) of network ``seed``: the one Generator made from the seed draws the
    initialisation seed, then the validation trials; training batches follow from the same Generator."""
    if len(task.input_names) != config.inputs or len(task.output_names) != config.outputs:
        raise RnnscopeError(f"config: {config.label} has {config.inputs} inputs and {config.outputs} outputs, task "
                            f"{task.name!r} has {len(task.input_names)} and {len(task.output_names)}")
    rng = as_generator(seed, name="seed")
    generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    model = GatedRNN(config, generator=generator)
    return model, rng, task.sample(training.validation_trials, rng=rng)


@dataclass(frozen=True, eq=False)
class TrainedNetwork:
    """One trained network: its config and seed, the model (best epoch), its validation score and loss, and the
    learning curve (``history``: one row per epoch, as ``OptimisationResult.history``)."""

    config: GatedConfig
    seed: int
    model: GatedRNN
    score: float
    loss: float
    history: tuple[dict[str, float], ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"config": dataclasses.asdict(self.config), "seed": self.seed, "score": self.score, "loss": self.loss,
                "epochs": len(self.history), "seconds": self.seconds}


def train_network(config: GatedConfig, task: Task, *, training: SweepTraining, seed: int) -> TrainedNetwork:
    """Train one network of ``config`` on ``task`` to criterion (``training.target``) with
    ``rnnscope.training.optimise``: loss = masked MSE + ``config.l2 * sum w^2``. seed: the network's seed (its
    initialisation, validation trials and training batches)."""
    began = time.perf_counter()
    model, rng, validation = _initial(config, task, training, seed)
    v_inputs, v_targets, v_mask = _tensors(validation)

    def loss(generator: np.random.Generator) -> torch.Tensor:
        inputs, targets, mask = _tensors(task.sample(training.trials, rng=generator))
        return masked_mse_loss(model(inputs), targets, mask) + model.l2_penalty()

    def validate() -> tuple[float, float]:
        outputs = model(v_inputs)
        return float(masked_mse_loss(outputs, v_targets, v_mask)), score_outputs(task, outputs.numpy(), validation)

    parameters = [p for p in model.parameters() if p.requires_grad]
    target = training.target(task)
    optimisation = OptimisationConfig(epochs=training.epochs, steps_per_epoch=training.steps_per_epoch,
                                      lr=training.lr, clip_gradient=training.clip_gradient,
                                      target_accuracy=None if target is None else float(min(max(target, 0.0), 1.0)))
    result = optimise(parameters, loss, config=optimisation, rng=rng, validate=validate)
    with torch.no_grad():
        final_loss, score = validate()
    return TrainedNetwork(config, int(seed), model, score, final_loss, result.history, time.perf_counter() - began)


def _train_stack(config: GatedConfig, task: Task, *, training: SweepTraining, seeds: Sequence[int],
                 device: str) -> list[TrainedNetwork]:
    """K = len(seeds) networks of one config stacked on ``device``: each initialised and validated as
    :func:`train_network` does for its seed; every step draws one batch (from the first seed's Generator) for all
    of them; one Adam step, gradients clipped per network; each keeps its best epoch; stops when all reach the
    target."""
    began = time.perf_counter()
    starts = [_initial(config, task, training, seed) for seed in seeds]
    stack = GatedRNN.stack([model for model, _, _ in starts]).to(device)
    rng = starts[0][1]
    K = len(seeds)
    v = [_tensors(batch, device) for _, _, batch in starts]
    v_inputs = torch.stack([t[0] for t in v])
    params = [p for p in stack.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=training.lr)
    best = [p.detach().clone() for p in params]
    best_loss = np.full(K, np.inf)
    histories: list[list[dict[str, float]]] = [[] for _ in range(K)]
    target = training.target(task)
    for epoch in range(training.epochs):
        losses = np.zeros(K)
        for _ in range(training.steps_per_epoch):
            inputs, targets, mask = _tensors(task.sample(training.trials, rng=rng), device)
            outputs = stack(inputs)
            per = torch.stack([masked_mse_loss(outputs[k], targets, mask) for k in range(K)]) + stack.l2_penalty()
            optimizer.zero_grad()
            per.sum().backward()  # each network's gradient is its own loss's
            if training.clip_gradient is not None:
                clip_gradients(params, training.clip_gradient, networks=K)
            optimizer.step()
            losses += per.detach().cpu().numpy() / training.steps_per_epoch
        with torch.no_grad():
            outputs = stack(v_inputs)
        reached = np.zeros(K, dtype=bool)
        for k, (_, _, batch) in enumerate(starts):
            out = outputs[k].cpu()
            val_loss = float(masked_mse_loss(out, *_tensors(batch)[1:]))
            score = score_outputs(task, out.numpy(), batch)
            if not np.isfinite(val_loss):
                raise RnnscopeError(f"lr: {config.label} seed {seeds[k]} diverged at epoch {epoch}; try a learning "
                                    f"rate lower than {training.lr}")
            histories[k].append({"epoch": epoch, "loss": float(losses[k]), "validation_loss": val_loss,
                                 "validation_accuracy": score})
            reached[k] = target is not None and score >= target
            if val_loss < best_loss[k]:
                best_loss[k] = val_loss
                with torch.no_grad():
                    for b, p in zip(best, params, strict=True):
                        b[k].copy_(p[k])
        if reached.all():
            break
    with torch.no_grad():
        for b, p in zip(best, params, strict=True):
            p.copy_(b)
    stack = stack.cpu()
    seconds = (time.perf_counter() - began) / K
    out = []
    for k, seed in enumerate(seeds):
        model = stack.unstack(k)
        _, _, batch = starts[k]
        with torch.no_grad():
            outputs = model(torch.from_numpy(batch.inputs))
        out.append(TrainedNetwork(config, int(seed), model, score_outputs(task, outputs.numpy(), batch),
                                  float(masked_mse_loss(outputs, *_tensors(batch)[1:])), tuple(histories[k]), seconds))
    return out


# -- populations ---------------------------------------------------------------------------------------------------
def run_name(config: GatedConfig, seed: int) -> str:
    """The run directory of one network in a population: ``gru-tanh-n64-l2_0.001-seed0``."""
    return f"{config.cell}-{config.activation}-n{config.size}-l2_{config.l2:g}-seed{seed}"


@dataclass(frozen=True)
class NetworkRecord:
    """One network of a population: config, seed, run directory, validation score, epochs trained, seconds of
    training, and whether it was already finished (``resumed``: read back, not trained again)."""

    config: GatedConfig
    seed: int
    path: Path
    score: float
    epochs: int
    seconds: float
    resumed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": self.config.cell, "activation": self.config.activation, "size": self.config.size,
                "l2": self.config.l2, "seed": self.seed, "path": str(self.path), "accuracy": self.score,
                "epochs": self.epochs, "seconds": self.seconds, "resumed": self.resumed}


@dataclass(frozen=True)
class Population:
    """Every network of :func:`train_population`, in the order of (configs x seeds); ``mode``: ``processes``
    (CPU workers) or ``stacked`` (CUDA)."""

    networks: tuple[NetworkRecord, ...]
    mode: str

    def __len__(self) -> int:
        return len(self.networks)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "networks": [n.to_dict() for n in self.networks]}


def _finished(run_dir: Path, config: GatedConfig, seed: int) -> NetworkRecord | None:
    """The record of a finished network (config.json is written last), None when it must be trained."""
    if not (run_dir / io.CONFIG_NAME).exists():
        leftovers = {io.WEIGHTS_NAME, io.METRICS_NAME, io.LOCK_NAME}
        if run_dir.is_dir() and any(e.name not in leftovers and not e.name.startswith(".") for e in run_dir.iterdir()):
            raise RnnscopeError(f"{run_dir}: holds files that are not a run; move them or choose another --out")
        return None
    stored = io.read_config(run_dir)
    if stored.get("model") != dataclasses.asdict(config) or stored.get("seed") != seed:
        raise RnnscopeError(f"{run_dir / io.CONFIG_NAME}: holds another network (model or seed differ); choose "
                            f"another --out")
    summary = stored.get("sweep", {})
    return NetworkRecord(config, seed, run_dir, float(summary.get("score", np.nan)), int(summary.get("epochs", 0)),
                         float(summary.get("seconds", 0.0)), True)


def _save(run_dir: Path, trained: TrainedNetwork, task: Task, training: SweepTraining) -> NetworkRecord:
    """Metrics, weights, then config.json (the mark of a finished network), each file atomic."""
    run_dir.mkdir(parents=True, exist_ok=True)
    io.write_metrics(run_dir, list(trained.history))
    summary = {"score": trained.score, "loss": trained.loss, "epochs": len(trained.history), "seconds": trained.seconds}
    io.save_model_run(run_dir, trained.model, task_spec(task),  # type: ignore[arg-type]
                      {"seed": trained.seed, "training": training.to_dict(), "sweep": summary}, exist_ok=True)
    return NetworkRecord(trained.config, trained.seed, run_dir, trained.score, len(trained.history), trained.seconds,
                         False)


def _train_and_save(config: GatedConfig, task: Task, training: SweepTraining, seed: int, run_dir: str) -> NetworkRecord:
    """What a worker process runs for one network."""
    return _save(Path(run_dir), train_network(config, task, training=training, seed=seed), task, training)


def _one_thread() -> None:
    torch.set_num_threads(1)


def train_population(
    configs: Sequence[GatedConfig],
    task: Task,
    seeds: Sequence[int],
    *,
    out: str | Path,
    training: SweepTraining,
    workers: int = 1,
    device: str = "cpu",
    progress: bool = False,
) -> Population:
    """Train every config with every seed on ``task``; network (config, seed) goes to ``out/networks/<run_name>``.

    Resumable: a network whose run directory is finished (``config.json`` present, same model and seed) is read
    back, not trained again. device ``cpu``: networks trained one by one (:func:`train_network`) in ``workers``
    spawned processes with one torch thread each (``workers=1``: in this process). device ``cuda[:N]``: the seeds
    of each config stacked and trained together (same initialisation per seed; one batch of trials shared by the
    stack at each step, so results differ from the CPU path's)."""
    configs, seeds = list(configs), [check_int(s, "seeds", minimum=0, maximum=2**63 - 1) for s in seeds]
    if not configs or not seeds:
        raise RnnscopeError("configs, seeds: need at least one config and one seed")
    if any(not isinstance(c, GatedConfig) for c in configs):
        raise RnnscopeError("configs: expected GatedConfig objects")
    if len(set(configs)) != len(configs) or len(set(seeds)) != len(seeds):
        raise RnnscopeError("configs, seeds: each config and each seed may appear only once")
    workers = check_int(workers, "workers", minimum=1)
    name = str(torch.device(device))
    if name != "cpu" and not name.startswith("cuda"):
        raise RnnscopeError(f"device: must be 'cpu' or 'cuda[:N]', got {device!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RnnscopeError(f"device: {device!r} requested but CUDA is not available")
    root = io.check_output(out, directory=True) / "networks"
    jobs = [(c, s, root / run_name(c, s)) for c in configs for s in seeds]
    records: dict[int, NetworkRecord] = {}
    todo = []
    for index, (config, seed, run_dir) in enumerate(jobs):
        done = _finished(run_dir, config, seed)
        if done is not None:
            records[index] = done
        else:
            todo.append(index)
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), disable=not progress, desc="networks", unit="net")
    if name.startswith("cuda"):
        by_config: dict[GatedConfig, list[int]] = {}
        for index in todo:
            by_config.setdefault(jobs[index][0], []).append(index)
        for config, indices in by_config.items():
            trained = _train_stack(config, task, training=training, seeds=[jobs[i][1] for i in indices], device=name)
            for index, network in zip(indices, trained, strict=True):
                records[index] = _save(jobs[index][2], network, task, training)
                bar.update(1)
    elif workers == 1 or len(todo) <= 1:
        for index in todo:
            config, seed, run_dir = jobs[index]
            records[index] = _train_and_save(config, task, training, seed, str(run_dir))
            bar.update(1)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context,
                                 initializer=_one_thread) as pool:
            futures = {pool.submit(_train_and_save, jobs[i][0], task, training, jobs[i][1], str(jobs[i][2])): i
                       for i in todo}
            for future in as_completed(futures):
                records[futures[future]] = future.result()
                bar.update(1)
    bar.close()
    mode = "stacked" if name.startswith("cuda") else "processes"
    return Population(tuple(records[i] for i in range(len(jobs))), mode)
