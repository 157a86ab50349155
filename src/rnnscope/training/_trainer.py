"""Training: Adam on the masked MSE, gradient clipping, validation, best-network keeping, early stopping,
per-epoch atomic checkpoints and exact resume, curricula."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnscope import io
from rnnscope._validation import check_int, check_positive, check_probability
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models import FullRankRNN, ModelConfig, RateRNN, build_model, draw_noise, model_from_weights, truncate
from rnnscope.tasks import Task, TrialBatch, correct_trials, task_spec
from rnnscope.training._loss import masked_mse_loss

__all__ = ["TrainingConfig", "TrainingResult", "Stage", "train", "train_curriculum", "estimate_training_memory",
           "check_memory", "check_device"]

BACKENDS = ("auto", "torch", "fast")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train. An epoch is ``train_trials // batch_size`` Adam steps on random batches of a fixed training
    set; the validation set scores every epoch with fixed noise, and the network with the lowest validation loss
    is kept. Training stops early once validation accuracy reaches ``target_accuracy``.

    epochs: >= 1. device: 'cpu' or 'cuda[:N]' (whether this machine has it is checked by ``train``)."""

    epochs: int = 20
    lr: float = 1e-2
    batch_size: int = 32
    train_trials: int = 800
    validation_trials: int = 200
    clip_gradient: float | None = 1.0
    target_accuracy: float | None = None
    keep_best: bool = True
    backend: str = "auto"
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", minimum=1)
        check_positive(self.lr, "lr")
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.train_trials, "train_trials", minimum=self.batch_size)
        check_int(self.validation_trials, "validation_trials", minimum=1)
        if self.clip_gradient is not None:
            check_positive(self.clip_gradient, "clip_gradient")
        if self.target_accuracy is not None:
            check_probability(self.target_accuracy, "target_accuracy")
        if self.backend not in BACKENDS:
            raise RnnscopeError(f"backend: must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:[0-9]+)?", self.device):
            raise RnnscopeError(f"device: must be 'cpu' or 'cuda[:N]', got {self.device!r}")

    @property
    def batches_per_epoch(self) -> int:
        return self.train_trials // self.batch_size


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """The trained network (the best one if ``keep_best``) and the learning curve: one row per epoch with
    loss, validation_loss, validation_accuracy and seconds."""

    model: RateRNN
    history: tuple[dict[str, float], ...]
    best_epoch: int
    stopped_early: bool
    path: Path | None = None

    @property
    def validation_accuracy(self) -> float:
        return float(self.history[self.best_epoch]["validation_accuracy"]) if self.history else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "validation_accuracy": self.validation_accuracy,
            "validation_loss": float(self.history[self.best_epoch]["validation_loss"]) if self.history else None,
            "history": list(self.history),
            "path": str(self.path) if self.path else None,
        }


@dataclass(frozen=True)
class Stage:
    """One stage of a curriculum: train on ``task`` for ``epochs``; if ``rank`` is given and the network is
    full-rank, it is first truncated to that rank (full-rank pretraining -> low rank)."""

    task: Task
    epochs: int
    rank: int | None = None


# -- helpers ------------------------------------------------------------------------------------------------------
def _tensors(batch: TrialBatch, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(batch.inputs).to(device),
        torch.from_numpy(batch.targets).to(device),
        torch.from_numpy(batch.mask).to(device),
    )


def _seed_of(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63 - 1))


def _resolve_backend(config: TrainingConfig, model: RateRNN) -> str:
    if config.backend != "auto":
        return config.backend
    if config.device != "cpu":
        return "torch"
    from rnnscope.models._fast import fast_path_supported

    return "fast" if fast_path_supported(model) else "torch"


def _loss_function(backend: str) -> Callable[..., torch.Tensor]:
    if backend == "fast":
        from rnnscope.models._fast import fast_loss

        def fast(model: RateRNN, inputs, targets, mask, seed: int) -> torch.Tensor:
            return fast_loss(model, inputs, targets, mask, seed=seed)

        return fast

    def plain(model: RateRNN, inputs, targets, mask, seed: int) -> torch.Tensor:
        noise = None
        if model.config.noise_std > 0:
            generator = torch.Generator(device=inputs.device).manual_seed(seed % (2**63))
            noise = draw_noise((inputs.shape[0], inputs.shape[1], model.size), generator=generator, device=inputs.device)
        return masked_mse_loss(model(inputs, noise=noise), targets, mask)

    return plain


def _clip_in_numpy(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """clip_grad_norm_ (the formula of train_ensemble's per-network clipping) on CPU gradients through NumPy views:
    a few microseconds instead of 50, for the fast path's small parameter sets."""
    grads = [p.grad.numpy() for p in params if p.grad is not None]
    squares = np.float32(sum(np.dot(g.ravel(), g.ravel()) for g in grads))
    factor = min(np.float32(max_norm) / (np.sqrt(squares) + np.float32(1e-6)), np.float32(1.0))
    for g in grads:
        g *= factor


@torch.no_grad()
def _validate(model: RateRNN, batch: TrialBatch, tensors, seed: int, backend: str) -> tuple[float, float]:
    """Validation loss and accuracy with the noise of ``seed``, drawn as the training path draws it."""
    inputs, targets, mask = tensors
    if backend == "fast":
        from rnnscope.models._fast import fast_outputs, stack_parameters

        outputs = torch.from_numpy(fast_outputs(stack_parameters([model]), inputs, seeds=[seed], alpha=model.config.alpha,
                                                noise_std=model.config.noise_std, readout_scale=model.readout_scale)[0])
    else:
        noise = None
        if model.config.noise_std > 0:
            generator = torch.Generator(device=inputs.device).manual_seed(seed)
            noise = draw_noise((inputs.shape[0], inputs.shape[1], model.size), generator=generator, device=inputs.device)
        outputs = model(inputs, noise=noise)
    loss = float(masked_mse_loss(outputs, targets, mask))
    return loss, float(correct_trials(outputs.cpu().numpy(), batch).mean())


def _training_data(task: Task, config: TrainingConfig, seed: int) -> tuple[TrialBatch, TrialBatch, int]:
    """The fixed training and validation sets of a run and the seed of its validation noise; refuses trials with
    NaN or infinite values (a task's option, not the learning rate, is then to blame)."""
    data_rng = np.random.default_rng([seed, 1])
    train_batch = task.sample(config.train_trials, rng=data_rng)
    validation_batch = task.sample(config.validation_trials, rng=data_rng)
    for batch in (train_batch, validation_batch):
        for field in ("inputs", "targets", "mask"):
            if not np.all(np.isfinite(getattr(batch, field))):
                raise RnnscopeError(
                    f"task: {task.name!r} produced trials whose {field} contain NaN or infinite values "
                    f"(options {task_spec(task)['options']}); check the task's parameters"
                )
    return train_batch, validation_batch, _seed_of(np.random.default_rng([seed, 2]))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value)
    return tensors, {"param_groups": state["param_groups"]}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _prefixed(prefix: str, model: RateRNN) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in model.state_dict().items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _run_config(task: Task, model: RateRNN, config: TrainingConfig, seed: int) -> dict[str, Any]:
    return {
        "task": task_spec(task),
        "model": dataclasses.asdict(model.config),
        "training": dataclasses.asdict(config),
        "seed": seed,
    }


# -- checks before training ----------------------------------------------------------------------------------------
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed and the run's derived seeds need a seed in [0, 2**63 - 1]


def check_device(device: str) -> str:
    """``device`` when this machine has it, else RnnscopeError naming ``device`` (checked before any work)."""
    if device == "cpu":
        return device
    if not torch.cuda.is_available():
        raise RnnscopeError(f"device: {device!r} requested, but CUDA is not available on this machine; use 'cpu'")
    index = int(device.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise RnnscopeError(f"device: {device!r} requested, but this machine has {count} CUDA device(s) "
                            f"(cuda:0 to cuda:{count - 1})")
    return device


def _parameter_count(model: ModelConfig) -> int:
    recurrent = model.size * model.size if model.rank is None else 2 * model.size * model.rank
    return recurrent + model.size * (model.inputs + model.outputs + 1)


def estimate_training_memory(model: ModelConfig, config: TrainingConfig, *, steps: int, networks: int = 1) -> int:
    """Bytes that training ``networks`` networks of architecture ``model`` needs, roughly (an upper estimate).

    Per parameter (float32): the parameter, its gradient, Adam's two moments, the best copy and the checkpoint
    being serialised (model, best and moments again): 9 x 4 bytes. Per network, the larger of the activations
    autograd keeps for a batch (about 6 float32 arrays of (batch_size, steps, size)) and those of a validation
    pass (noise and states, 2 arrays of (validation_trials, steps, size)). Plus the training and validation sets
    (float32 inputs, targets, mask)."""
    parameters = 9 * 4 * _parameter_count(model)
    activations = 4 * steps * model.size * max(6 * config.batch_size, 2 * config.validation_trials)
    data = 4 * (config.train_trials + config.validation_trials) * steps * (model.inputs + model.outputs + 1)
    return networks * (parameters + activations + data)


def available_memory(device: str = "cpu") -> int | None:
    """Bytes free for a new allocation on ``device``: CUDA's free memory, or on the CPU the kernel's MemAvailable
    (bounded by the cgroup's limit when there is one); None when it cannot be read."""
    if device != "cpu":
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:  # cgroup v2: a container's own limit
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            available = min(available, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return available


def check_memory(model: ModelConfig, config: TrainingConfig, *, steps: int, networks: int = 1) -> None:
    """Refuse, with both figures in GiB, a training whose memory estimate exceeds the memory available."""
    needed = estimate_training_memory(model, config, steps=steps, networks=networks)
    available = available_memory(config.device)
    if available is not None and needed > available:
        what = f"{networks} networks" if networks > 1 else "a network"
        raise RnnscopeError(
            f"size: training {what} of size {model.size} ({model.kind}, batch_size {config.batch_size}, {steps} steps) "
            f"needs about {needed / 2**30:.1f} GiB, but only {available / 2**30:.1f} GiB of memory is available "
            f"on {config.device}"
        )


def _check_compatible(task: Task, model: ModelConfig) -> None:
    if len(task.input_names) != model.inputs or len(task.output_names) != model.outputs:
        raise RnnscopeError(
            f"model: task {task.name!r} has {len(task.input_names)} inputs and {len(task.output_names)} outputs, "
            f"the network {model.inputs} and {model.outputs}"
        )


# -- resuming -----------------------------------------------------------------------------------------------------
_MISSING = object()


def _same(stored: Any, now: Any) -> bool:
    """JSON values equal, a bool never equal to a number."""
    if isinstance(stored, bool) or isinstance(now, bool):
        return type(stored) is type(now) and stored == now
    if isinstance(stored, list) and isinstance(now, list):
        return len(stored) == len(now) and all(_same(a, b) for a, b in zip(stored, now, strict=True))
    if isinstance(stored, dict) and isinstance(now, dict):
        return stored.keys() == now.keys() and all(_same(stored[k], now[k]) for k in stored)
    return stored == now


def _differences(stored: Any, now: Any, name: str) -> list[tuple[str, Any, Any]]:
    """(field, stored value, value now) for every leaf where the two configurations differ."""
    if isinstance(stored, dict) and isinstance(now, dict):
        found = []
        for key in list(stored) + [k for k in now if k not in stored]:
            found += _differences(stored.get(key, _MISSING), now.get(key, _MISSING), f"{name}.{key}")
        return found
    return [] if _same(stored, now) else [(name, stored, now)]


def _check_same_run(stored: dict[str, Any], run_config: dict[str, Any], path: Path) -> None:
    """Resume continues the stored run only: every field of the task, model, training configuration and seed must
    equal the stored one, except ``training.epochs``, which may be raised (train longer)."""
    now = json.loads(json.dumps(run_config))  # as stored: tuples become lists
    for key in ("task", "model", "training", "seed"):
        for name, old, new in _differences(stored.get(key, _MISSING), now[key], key):
            if name == "training.epochs" and _is_int(old) and _is_int(new) and new >= old:
                continue
            shown = lambda v: "missing" if v is _MISSING else repr(v)  # noqa: E731
            rule = " (epochs may only be raised)" if name == "training.epochs" else ""
            raise RnnscopeError(f"{path}: cannot resume: {name} is {shown(old)} in the stored run but {shown(new)} "
                                f"now{rule}; use the stored value or choose another --out")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


_HISTORY_KEYS = ("epoch", "loss", "validation_loss", "validation_accuracy", "seconds")


@dataclass
class _Progress:
    """Where a run stands: the epoch to train next, the learning curve, the best network so far."""

    epoch: int
    history: list[dict[str, float]]
    best_epoch: int
    best_loss: float
    best_state: dict[str, torch.Tensor]
    stopped_early: bool

    @classmethod
    def fresh(cls, net: RateRNN) -> _Progress:
        return cls(0, [], -1, float("inf"), {k: v.detach().clone() for k, v in net.state_dict().items()}, False)


def _checked_state(state: Any, config: TrainingConfig, path: Path) -> dict[str, Any]:
    """The JSON state of a checkpoint, each field checked (type, range, consistency) before use."""
    def bad(field: str, why: str) -> RnnscopeError:
        return RnnscopeError(f"{path}: state field {field!r} {why}")

    if not isinstance(state, dict):
        raise RnnscopeError(f"{path}: checkpoint state must be a JSON object")
    for key in ("epoch", "history", "best_epoch", "best_loss", "stopped_early"):
        if key not in state:
            raise bad(key, "is missing")
    epoch = state["epoch"]
    if not _is_int(epoch) or not 1 <= epoch <= config.epochs:
        raise bad("epoch", f"must be an integer in [1, {config.epochs}], got {epoch!r:.80}")
    history = state["history"]
    if not isinstance(history, list) or len(history) != epoch:
        raise bad("history", f"must be a list of {epoch} epochs, got {history!r:.80}")
    for index, row in enumerate(history):
        if not isinstance(row, dict) or sorted(row) != sorted(_HISTORY_KEYS):
            raise bad(f"history[{index}]", f"must be an object with {', '.join(_HISTORY_KEYS)}, got {row!r:.80}")
        if row["epoch"] != index or not _is_int(row["epoch"]):
            raise bad(f"history[{index}].epoch", f"must be {index}, got {row['epoch']!r:.80}")
        for key in _HISTORY_KEYS[1:]:
            if not _is_real(row[key]) or row[key] < 0 or (key == "validation_accuracy" and row[key] > 1):
                raise bad(f"history[{index}].{key}", f"must be a finite number >= 0, got {row[key]!r:.80}")
    best_epoch = state["best_epoch"]
    if not _is_int(best_epoch) or not 0 <= best_epoch < epoch:
        raise bad("best_epoch", f"must be an integer in [0, {epoch - 1}], got {best_epoch!r:.80}")
    best_loss = state["best_loss"]
    if not _is_real(best_loss) or best_loss != history[best_epoch]["validation_loss"]:
        raise bad("best_loss", f"must be the validation loss of epoch {best_epoch}, got {best_loss!r:.80}")
    if not isinstance(state["stopped_early"], bool):
        raise bad("stopped_early", f"must be true or false, got {state['stopped_early']!r:.80}")
    return state


def _checkpoint_shapes(net: RateRNN, optimizer: torch.optim.Optimizer) -> dict[str, tuple[int, ...]]:
    """Every tensor a checkpoint of this network holds, with its shape: the network, the best network and Adam's
    state of each trainable parameter (its step and two moments)."""
    shapes = {}
    for prefix in ("model", "best"):
        shapes.update({f"{prefix}.{k}": tuple(v.shape) for k, v in net.state_dict().items()})
    for index, param in enumerate(optimizer.param_groups[0]["params"]):
        shapes[f"optimizer.{index}.step"] = ()
        shapes[f"optimizer.{index}.exp_avg"] = tuple(param.shape)
        shapes[f"optimizer.{index}.exp_avg_sq"] = tuple(param.shape)
    return shapes


def _resume(out_path: Path, run_config: dict[str, Any], config: TrainingConfig, net: RateRNN,
            optimizer: torch.optim.Optimizer) -> _Progress | None:
    """The progress stored in ``out_path`` (restored into ``net`` and ``optimizer``), None if the run must start
    from the beginning; refuses anything but a run of ``train`` with this configuration."""
    config_path = out_path / io.CONFIG_NAME
    if (out_path / io.WEIGHTS_NAME).exists() and not (out_path / io.CHECKPOINT_NAME).exists():
        raise RnnscopeError(
            f"{out_path}: holds a network without {io.CHECKPOINT_NAME} (imported, designed or written by a curriculum), "
            f"not a checkpointed training run; cannot resume: choose another --out"
        )
    _check_same_run(io.read_config(out_path), run_config, config_path)
    checkpoint = io.load_checkpoint(out_path)
    if checkpoint is None:  # a run of ours killed before its first checkpoint: start it again
        return None
    path = out_path / io.CHECKPOINT_NAME
    tensors, state = checkpoint
    state = _checked_state(state, config, path)
    io.check_tensors(tensors, _checkpoint_shapes(net, optimizer), path)
    for name, value in tensors.items():
        if name.endswith(".exp_avg_sq") and bool((value < 0).any()):
            raise RnnscopeError(f"{path}: tensor {name!r} has negative values (a second moment is >= 0)")
        if name.endswith(".step") and float(value) < 0:
            raise RnnscopeError(f"{path}: tensor {name!r} must be >= 0, got {float(value)}")
    dtype = next(iter(net.state_dict().values())).dtype
    tensors = {k: v.to(dtype) for k, v in tensors.items()}
    net.load_state_dict(_unprefixed("model", tensors))
    # param_groups (lr, betas, ...) come from this run's configuration, which equals the stored one
    _restore_optimizer(optimizer, tensors, optimizer.state_dict()["param_groups"])
    progress = _Progress(state["epoch"], list(state["history"]), state["best_epoch"], float(state["best_loss"]),
                         _unprefixed("best", tensors), state["stopped_early"])
    if progress.stopped_early:
        progress.epoch = config.epochs
    return progress


# -- training -----------------------------------------------------------------------------------------------------
def train(
    task: Task,
    model: ModelConfig | RateRNN,
    config: TrainingConfig = TrainingConfig(),
    *,
    seed: int,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainingResult:
    """Train a network on ``task``; returns the trained network and its learning curve.

    model: a ModelConfig (a fresh network initialised from ``seed``) or a network to start from (not modified:
    a copy is trained). seed: an integer in [0, 2**63 - 1]; every random draw derives from it.

    With ``out``, the run directory (missing or empty, unless resuming) is locked against other processes while
    it is written; it gets ``config.json`` at once, a checkpoint every epoch, ``metrics.jsonl`` and finally
    ``weights.safetensors``. A call that fails before its first checkpoint removes what it created.
    ``resume=True`` continues an interrupted (or finished) run of ``train`` to the same result as an
    uninterrupted one, and starts one if ``out`` holds none, so a command can simply be rerun. It refuses a
    directory holding a network without a checkpoint (imported, designed) and any difference from the stored
    configuration (task, model, seed and every TrainingConfig field), except that ``epochs`` may be raised to
    train longer.

    Checked before anything is built or written: the seed, the device, finite training data and the memory the
    training needs.
    """
    check_int(seed, "seed", minimum=0, maximum=MAX_SEED)
    if not isinstance(model, (ModelConfig, RateRNN)):
        raise RnnscopeError(f"model: expected a ModelConfig or a RateRNN, got {type(model).__name__}")
    model_config = model if isinstance(model, ModelConfig) else model.config
    _check_compatible(task, model_config)
    check_device(config.device)
    data = _training_data(task, config, seed)
    check_memory(model_config, config, steps=data[0].steps)
    if isinstance(model, ModelConfig):
        net = build_model(model, generator=torch.Generator().manual_seed(seed))
    else:
        net = model_from_weights(
            model.weights(), train_inputs=model.config.train_inputs, train_outputs=model.config.train_outputs,
            train_h0=model.config.train_h0,
        )
    net = net.to(config.device)
    run_config = _run_config(task, net, config, seed)
    backend = _resolve_backend(config, net)
    # fused Adam: one kernel for all parameters (0.04 ms a step instead of 0.12 on the fast path)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=config.lr,
                                 fused=True if backend == "fast" else None)
    if out is None:
        return _fit(task, net, optimizer, config, seed, data, backend, _Progress.fresh(net), None, progress)

    out_path = Path(out)
    with io.lock_run_dir(out_path) as lock:
        io.clean_stale_temporaries(out_path, targets=io.RUN_FILES)
        stored = (out_path / io.CONFIG_NAME).exists()
        if stored and not resume:
            raise RnnscopeError(f"{out_path}: already holds a run; pass resume=True (--resume) or choose another --out")
        if not stored:
            io.check_new_run_dir(out_path)
            lock.note_new(io.CONFIG_NAME)
        state = _resume(out_path, run_config, config, net, optimizer) if stored else None
        try:
            io.write_config(out_path, run_config)
            return _fit(task, net, optimizer, config, seed, data, backend, state or _Progress.fresh(net), out_path,
                        progress)
        except BaseException:
            if not (out_path / io.CHECKPOINT_NAME).exists():
                lock.discard_new()  # nothing worth keeping: leave the directory as this call found it
            raise


def _fit(
    task: Task,
    net: RateRNN,
    optimizer: torch.optim.Optimizer,
    config: TrainingConfig,
    seed: int,
    data: tuple[TrialBatch, TrialBatch, int],
    backend: str,
    state: _Progress,
    out_path: Path | None,
    progress: bool,
) -> TrainingResult:
    """The training loop, from ``state`` on; checkpoints into ``out_path`` (locked by the caller) if given."""
    train_batch, validation_batch, validation_seed = data
    train_tensors = _tensors(train_batch, config.device)
    validation_tensors = _tensors(validation_batch, config.device)
    loss_fn = _loss_function(backend)
    if backend == "fast":
        from rnnscope.models._fast import _TrainStep

        fast_step = _TrainStep(net)
        train_arrays = tuple(np.ascontiguousarray(a, dtype=np.float32)
                             for a in (train_batch.inputs, train_batch.targets, train_batch.mask))
    params = [p for p in net.parameters() if p.requires_grad]
    history, best_state, best_loss, best_epoch = state.history, state.best_state, state.best_loss, state.best_epoch
    stopped_early = bool(history) and config.target_accuracy is not None and (
        history[-1]["validation_accuracy"] >= config.target_accuracy
    )

    bar = tqdm(range(state.epoch, config.epochs), disable=not progress, desc=f"train {task.name}", unit="epoch",
               initial=state.epoch, total=config.epochs)
    for epoch in bar:
        if stopped_early:
            break
        began = time.perf_counter()
        epoch_rng = np.random.default_rng([seed, 3, epoch])
        order = epoch_rng.permutation(config.train_trials)
        losses = []
        net.train()
        for b in range(config.batches_per_epoch):
            if backend == "fast":  # no autograd graph: the kernel writes the gradients into .grad
                rows = order[b * config.batch_size : (b + 1) * config.batch_size]
                inputs, targets, mask = (a[rows] for a in train_arrays)
                losses.append(fast_step(inputs, targets, mask, _seed_of(epoch_rng)))
            else:
                index = torch.from_numpy(order[b * config.batch_size : (b + 1) * config.batch_size]).to(config.device)
                inputs, targets, mask = (t.index_select(0, index) for t in train_tensors)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(net, inputs, targets, mask, _seed_of(epoch_rng))
                loss.backward()
                losses.append(float(loss.detach()))
            if config.clip_gradient is not None:
                if backend == "fast":
                    _clip_in_numpy(params, config.clip_gradient)
                else:
                    torch.nn.utils.clip_grad_norm_(params, config.clip_gradient)
            optimizer.step()
        net.eval()
        val_loss, val_acc = _validate(net, validation_batch, validation_tensors, validation_seed, backend)
        if not (np.isfinite(val_loss) and np.all(np.isfinite(losses))):
            # the data were checked finite before training, so the optimisation itself blew up
            raise RnnscopeError(f"lr: training diverged at epoch {epoch} (training loss {float(np.mean(losses))}, "
                                f"validation loss {val_loss}); try a learning rate lower than {config.lr}")
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "validation_loss": val_loss,
               "validation_accuracy": val_acc, "seconds": time.perf_counter() - began}
        history.append(row)
        if val_loss < best_loss or not config.keep_best:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        stopped_early = config.target_accuracy is not None and val_acc >= config.target_accuracy
        bar.set_postfix(loss=f"{row['loss']:.4f}", acc=f"{val_acc:.3f}")
        if out_path is not None:
            opt_tensors, opt_state = _optimizer_tensors(optimizer)
            tensors = {**_prefixed("model", net), **{f"best.{k}": v for k, v in best_state.items()}, **opt_tensors}
            checkpoint = {"epoch": epoch + 1, "history": history, "best_epoch": best_epoch, "best_loss": best_loss,
                          "stopped_early": stopped_early, **opt_state}
            io.save_checkpoint(out_path, tensors, checkpoint)
            io.write_metrics(out_path, history)
    bar.close()

    if config.keep_best and history:
        net.load_state_dict(best_state)
    net = net.cpu()
    if history and config.target_accuracy is not None and not stopped_early:
        warnings.warn(
            f"validation accuracy {max(r['validation_accuracy'] for r in history):.3f} never reached "
            f"target_accuracy {config.target_accuracy} in {config.epochs} epochs", ConvergenceWarning, stacklevel=3,
        )
    if out_path is not None:
        io.write_metrics(out_path, history)  # again: a run killed after its last checkpoint resumes here
        io.save_weights(out_path, net)
    return TrainingResult(net, tuple(history), max(best_epoch, 0), stopped_early, out_path)


def train_curriculum(
    stages: Sequence[Stage],
    model: ModelConfig | RateRNN,
    config: TrainingConfig = TrainingConfig(),
    *,
    seed: int,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainingResult:
    """Train through ``stages`` in order (e.g. DMS delays 700 -> 1000 -> 4000 ms, or full-rank pretraining then
    rank 2), each stage starting from the previous stage's network. With ``out``, stage k lives in
    ``out/stage{k}`` and the final network is also written to ``out`` itself. Returns the last stage's result,
    with the history of every stage concatenated."""
    if not stages:
        raise RnnscopeError("stages: a curriculum needs at least one stage")
    check_int(seed, "seed", minimum=0, maximum=MAX_SEED - (len(stages) - 1))  # stage k trains from seed + k
    if out is not None and not resume:
        io.check_new_run_dir(out)
    current: ModelConfig | RateRNN = model
    history: list[dict[str, float]] = []
    result = None
    for k, stage in enumerate(stages):
        if stage.rank is not None:
            if not isinstance(current, FullRankRNN):
                raise RnnscopeError(f"stages[{k}].rank: only a full-rank network can be truncated to a rank")
            current = model_from_weights(truncate(current.weights(), stage.rank))
        stage_out = Path(out) / f"stage{k}" if out is not None else None
        stage_config = dataclasses.replace(config, epochs=stage.epochs)
        if stage_out is not None and resume and (stage_out / io.WEIGHTS_NAME).is_file():
            run = io.load_run(stage_out)
            result = TrainingResult(run.model, tuple(io.read_metrics(stage_out)), 0, False, stage_out)
        else:
            result = train(stage.task, current, stage_config, seed=seed + k, out=stage_out,
                           resume=resume and stage_out is not None and (stage_out / io.CONFIG_NAME).is_file(),
                           progress=progress)
        history.extend({**row, "stage": k} for row in result.history)
        current = result.model
    assert result is not None
    if out is not None:
        final = io.read_config(Path(out) / f"stage{len(stages) - 1}")
        with io.lock_run_dir(out):
            io.save_model_run(out, result.model, final["task"], {"training": final.get("training"), "seed": seed,
                                                                  "curriculum": [s.epochs for s in stages]},
                              exist_ok=True)
            io.write_metrics(out, history)
    return TrainingResult(result.model, tuple(history), result.best_epoch, result.stopped_early,
                          Path(out) if out is not None else None)


