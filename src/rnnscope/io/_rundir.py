"""Run directories: ``config.json``, ``weights.safetensors``, ``metrics.jsonl`` and ``checkpoint.safetensors``.

No pickle anywhere: tensors go in safetensors files, everything else in JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import rnnscope
from rnnscope.errors import RnnscopeError
from rnnscope.io._atomic import write_bytes, write_json, write_text
from rnnscope.models import ModelConfig, RateRNN, build_model
from rnnscope.tasks import Task, make_task

__all__ = [
    "FORMAT",
    "Run",
    "write_config",
    "read_config",
    "save_weights",
    "load_weights",
    "write_metrics",
    "read_metrics",
    "save_checkpoint",
    "load_checkpoint",
    "load_run",
    "save_model_run",
]

FORMAT = 1  # run-directory format; bumped when the layout changes incompatibly
CONFIG, WEIGHTS, METRICS, CHECKPOINT = "config.json", "weights.safetensors", "metrics.jsonl", "checkpoint.safetensors"


def write_config(run_dir: str | Path, config: Mapping[str, Any]) -> Path:
    """Write ``config.json`` (adds the format and package version)."""
    body = {"format": FORMAT, "rnnscope_version": rnnscope.__version__, **config}
    return write_json(Path(run_dir) / CONFIG, body)


def read_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise RnnscopeError(f"{run_dir}: not a run directory (no such directory)")
    if not path.is_file():
        raise RnnscopeError(f"{path}: missing; not a run directory")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RnnscopeError(f"{path}: corrupt JSON ({exc})") from None
    if not isinstance(config, dict):
        raise RnnscopeError(f"{path}: expected a JSON object")
    if config.get("format") != FORMAT:
        raise RnnscopeError(
            f"{path}: run-directory format {config.get('format')!r} (rnnscope {config.get('rnnscope_version', '?')}) "
            f"is not this version's format {FORMAT} (rnnscope {rnnscope.__version__})"
        )
    for key in ("task", "model"):
        if key not in config:
            raise RnnscopeError(f"{path}: missing field {key!r}")
    return config


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise RnnscopeError(f"{path}: missing")
    try:
        return st_load(path.read_bytes())
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise RnnscopeError(f"{path}: corrupt safetensors file ({str(exc).splitlines()[0][:120]})") from None


def save_weights(run_dir: str | Path, model: RateRNN) -> Path:
    tensors = {k: v.detach().cpu().contiguous().float() for k, v in model.state_dict().items()}
    return write_bytes(Path(run_dir) / WEIGHTS, st_save(tensors))


def load_weights(run_dir: str | Path, model: RateRNN, *, name: str = WEIGHTS) -> RateRNN:
    """Fill ``model`` (whose architecture matches) with the weights stored in the run directory."""
    path = Path(run_dir) / name
    tensors = _read_safetensors(path)
    _load_state(model, tensors, path)
    return model


def _load_state(model: RateRNN, tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in tensors:
            raise RnnscopeError(f"{path}: missing tensor {key!r}")
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise RnnscopeError(f"{path}: tensor {key!r} has shape {tuple(tensors[key].shape)}, expected {tuple(value.shape)}")
    model.load_state_dict({k: tensors[k] for k in expected}, strict=True)


def write_metrics(run_dir: str | Path, rows: list[Mapping[str, Any]]) -> Path:
    """Rewrite ``metrics.jsonl`` atomically with one JSON object per epoch."""
    return write_text(Path(run_dir) / METRICS, "".join(json.dumps(dict(row)) + "\n" for row in rows))


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise RnnscopeError(f"{path}: line {number} is not JSON") from None
    return rows


def save_checkpoint(run_dir: str | Path, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> Path:
    """One atomic file with every tensor needed to resume (model, best model, optimizer) and a JSON state."""
    payload = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return write_bytes(Path(run_dir) / CHECKPOINT, st_save(payload, metadata={"state": json.dumps(dict(state))}))


def load_checkpoint(run_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The tensors and state of the last checkpoint, or None if the run has none."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        return None
    data = path.read_bytes()
    tensors = _read_safetensors(path)
    try:
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        state = json.loads(header["__metadata__"]["state"])
    except (KeyError, ValueError) as exc:
        raise RnnscopeError(f"{path}: checkpoint without a readable state ({exc})") from None
    return tensors, state


def model_config_from_dict(data: Mapping[str, Any], path: Path) -> ModelConfig:
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RnnscopeError(f"{path}: unknown model field {unknown[0]!r}")
    try:
        return ModelConfig(**data)
    except TypeError as exc:
        raise RnnscopeError(f"{path}: model: {exc}") from None


@dataclass(frozen=True, eq=False)
class Run:
    """A loaded run directory: its config, task and trained model."""

    path: Path
    config: dict[str, Any]
    task: Task
    model: RateRNN

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory written by ``train``, ``import-reference`` or ``design``."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    model_config = model_config_from_dict(config["model"], run_dir / CONFIG)
    task_info = config["task"]
    task = make_task(task_info["name"], task_info.get("options", {}))
    model = build_model(model_config, generator=torch.Generator().manual_seed(0))
    load_weights(run_dir, model)
    if len(task.input_names) != model_config.inputs:
        raise RnnscopeError(
            f"{run_dir / CONFIG}: task {task_info['name']!r} has {len(task.input_names)} inputs, the model {model_config.inputs}"
        )
    return Run(run_dir, config, task, model)


def save_model_run(run_dir: str | Path, model: RateRNN, task_spec: Mapping[str, Any], extra: Mapping[str, Any]) -> Path:
    """Write a complete run directory for an existing model (import, design): config then weights."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_weights(run_dir, model)
    write_config(run_dir, {"task": dict(task_spec), "model": dataclasses.asdict(model.config), **extra})
    return run_dir


