"""Checkpoints of a training run: the optimizer's state as tensors, and resuming a run exactly where it stopped,
after checking every stored value."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rnnscope import io
from rnnscope.errors import RnnscopeError
from rnnscope.models import RateRNN

if TYPE_CHECKING:
    from rnnscope.training._trainer import TrainingConfig

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
