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
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import rnnscope
from rnnscope.errors import RnnscopeError
from rnnscope.io._atomic import is_temporary, write_bytes, write_json, write_text
from rnnscope.models import GatedConfig, GatedRNN, ModelConfig, RateRNN, build_model
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
    "check_tensors",
    "check_new_run_dir",
    "read_json_file",
    "read_text",
]

FORMAT = 1  # run-directory format; bumped when the layout changes incompatibly
CONFIG, WEIGHTS, METRICS, CHECKPOINT = "config.json", "weights.safetensors", "metrics.jsonl", "checkpoint.safetensors"
LOCK = ".lock"  # held (flock) by the process writing the run; see io/_lock.py (train-safety, issue 11)


def write_config(run_dir: str | Path, config: Mapping[str, Any]) -> Path:
    """Write ``config.json`` (adds the format and package version)."""
    body = {"format": FORMAT, "rnnscope_version": rnnscope.__version__, **config}
    return write_json(Path(run_dir) / CONFIG, body)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_text(path: str | Path, *, expected: str) -> str:
    """The UTF-8 text of the file ``path``; a directory, a missing, unreadable or binary file is one line naming
    ``path`` and what was ``expected`` there (e.g. "a JSON file")."""
    path = Path(path)
    if path.is_dir():
        raise RnnscopeError(f"{path}: is a directory, expected {expected}")
    if not path.is_file():
        raise RnnscopeError(f"{path}: no such file")
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise RnnscopeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise RnnscopeError(f"{path}: not a text file (expected {expected})") from None


def read_json_file(path: str | Path, *, expected: str = "a UTF-8 JSON file") -> Any:
    """Parse a JSON file, refusing NaN and Infinity; every failure is one line naming ``path`` (and what was
    ``expected`` there)."""
    path = Path(path)
    text = read_text(path, expected=expected)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise RnnscopeError(f"{path}: not valid JSON ({str(exc).splitlines()[0][:120]})") from None


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.exists():
        raise RnnscopeError(f"{run_dir}: no such directory")
    if not run_dir.is_dir():
        raise RnnscopeError(f"{run_dir}: is a file, expected a run directory")


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """``config.json`` of a run directory, with the types of the fields every command relies on checked."""
    run_dir = Path(run_dir)
    _check_run_dir(run_dir)
    path = run_dir / CONFIG
    if not path.exists():
        raise RnnscopeError(f"{path}: missing; not a run directory")
    config = read_json_file(path)
    if not isinstance(config, dict):
        raise RnnscopeError(f"{path}: expected a JSON object, got {type(config).__name__}")
    if isinstance(config.get("format"), bool) or config.get("format") != FORMAT:
        raise RnnscopeError(
            f"{path}: run-directory format {config.get('format')!r} (rnnscope {config.get('rnnscope_version', '?')}) "
            f"is not this version's format {FORMAT} (rnnscope {rnnscope.__version__})"
        )
    for key in ("task", "model"):
        if key not in config:
            raise RnnscopeError(f"{path}: missing field {key!r}")
    task = config["task"]
    if not isinstance(task, dict):
        raise RnnscopeError(f"{path}: field 'task' must be an object with 'name' and 'options', got {task!r:.80}")
    if not isinstance(task.get("name"), str):
        raise RnnscopeError(f"{path}: field 'task.name' must be a string, got {task.get('name')!r:.80}")
    if not isinstance(task.get("options", {}), dict):
        raise RnnscopeError(f"{path}: field 'task.options' must be an object, got {task.get('options')!r:.80}")
    for key in ("model", "training"):
        if key in config and not isinstance(config[key], dict):
            raise RnnscopeError(f"{path}: field {key!r} must be an object, got {config[key]!r:.80}")
    seed = config.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise RnnscopeError(f"{path}: field 'seed' must be an integer in [0, 2**63), got {seed!r:.80}")
    return config


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if path.is_dir():
        raise RnnscopeError(f"{path}: is a directory, expected a safetensors file")
    if not path.is_file():
        raise RnnscopeError(f"{path}: missing")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RnnscopeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise RnnscopeError(f"{path}: corrupt safetensors file ({str(exc).splitlines()[0][:120]})") from None


def check_tensors(tensors: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]], path: Path) -> None:
    """The tensors read from ``path`` are exactly ``shapes``: the same names, floating point, finite."""
    unexpected = sorted(set(tensors) - set(shapes))
    if unexpected:
        raise RnnscopeError(f"{path}: unexpected tensor {unexpected[0]!r} (expected {', '.join(shapes)})")
    for key, shape in shapes.items():
        if key not in tensors:
            raise RnnscopeError(f"{path}: missing tensor {key!r}")
        value = tensors[key]
        if not value.dtype.is_floating_point:
            raise RnnscopeError(f"{path}: tensor {key!r} has dtype {str(value.dtype).removeprefix('torch.')}, "
                                f"expected floating point")
        if tuple(value.shape) != tuple(shape):
            raise RnnscopeError(f"{path}: tensor {key!r} has shape {tuple(value.shape)}, expected {tuple(shape)}")
        if not bool(torch.isfinite(value).all()):
            raise RnnscopeError(f"{path}: tensor {key!r} contains NaN or infinite values")


def save_weights(run_dir: str | Path, model: RateRNN) -> Path:
    path = Path(run_dir) / WEIGHTS
    tensors = {k: v.detach().cpu().contiguous().float() for k, v in model.state_dict().items()}
    check_tensors(tensors, model.config.parameter_shapes, path)  # never write NaN weights
    return write_bytes(path, st_save(tensors))


def load_weights(run_dir: str | Path, model: RateRNN, *, name: str = WEIGHTS) -> RateRNN:
    """Fill ``model`` (whose architecture matches) with the weights stored in the run directory, after checking
    them (names, shapes, floating point, finite)."""
    path = Path(run_dir) / name
    tensors = _read_safetensors(path)
    check_tensors(tensors, model.config.parameter_shapes, path)
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True)
    return model


def write_metrics(run_dir: str | Path, rows: list[Mapping[str, Any]]) -> Path:
    """Rewrite ``metrics.jsonl`` atomically with one JSON object per epoch."""
    return write_text(Path(run_dir) / METRICS, "".join(json.dumps(dict(row)) + "\n" for row in rows))


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` ([] when the run has none)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    text = read_text(path, expected="one JSON object per line")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line, parse_constant=_reject_constant)
            except ValueError:
                raise RnnscopeError(f"{path}: line {number} is not JSON") from None
            if not isinstance(row, dict):
                raise RnnscopeError(f"{path}: line {number} is not a JSON object")
            rows.append(row)
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
    tensors = _read_safetensors(path)
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = json.loads(metadata["state"], parse_constant=_reject_constant)
    except (KeyError, ValueError, TypeError, SafetensorError, OSError) as exc:
        raise RnnscopeError(f"{path}: checkpoint without a readable state ({str(exc)[:120]})") from None
    if not isinstance(state, dict):
        raise RnnscopeError(f"{path}: checkpoint state must be a JSON object")
    return tensors, state


def model_config_from_dict(data: Mapping[str, Any], path: Path) -> ModelConfig | GatedConfig:
    # gated/vanilla cells (universality sweep): their model section names its "cell"; rate networks have none
    config_class = GatedConfig if "cell" in data else ModelConfig
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RnnscopeError(f"{path}: unknown model field {unknown[0]!r}")
    try:
        return config_class(**data)
    except TypeError as exc:
        raise RnnscopeError(f"{path}: model: {exc}") from None
    except RnnscopeError as exc:
        raise RnnscopeError(f"{path}: model.{exc}") from None


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

    def to_dict(self) -> dict[str, Any]:
        """Where the run is and what it holds, JSON-ready."""
        model = self.model.config
        return {"path": str(self.path), "task": self.config["task"]["name"], "kind": model.kind, "size": model.size,
                "rank": model.rank, "inputs": model.inputs, "outputs": model.outputs, "noise_std": model.noise_std}


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory written by ``train``, ``import-reference`` or ``design``."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    model_config = model_config_from_dict(config["model"], run_dir / CONFIG)
    task_info = config["task"]
    try:
        task = make_task(task_info["name"], task_info.get("options", {}))
    except RnnscopeError as exc:
        raise RnnscopeError(f"{run_dir / CONFIG}: {exc}") from None
    # the weights are checked against the config before a model of the config's size is built
    tensors = _read_safetensors(run_dir / WEIGHTS)
    check_tensors(tensors, model_config.parameter_shapes, run_dir / WEIGHTS)
    if isinstance(model_config, GatedConfig):  # a gated/vanilla cell (universality sweep)
        model = GatedRNN(model_config, generator=torch.Generator().manual_seed(0))
    else:
        model = build_model(model_config, generator=torch.Generator().manual_seed(0))
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True)
    if len(task.input_names) != model_config.inputs:
        raise RnnscopeError(
            f"{run_dir / CONFIG}: task {task_info['name']!r} has {len(task.input_names)} inputs, the model {model_config.inputs}"
        )
    return Run(run_dir, config, task, model)


def check_new_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` can receive a new run: absent, or an empty directory (never a user's files or another run)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RnnscopeError(f"{run_dir}: is a file, expected a directory to write the run into")
    # (train-safety, issue 11) a killed rnnscope writer's leftovers -- the lock file and temporaries of run files,
    # which lock_run_dir and clean_stale_temporaries deal with -- do not make a directory "not empty"
    leftover = lambda name: name == LOCK or is_temporary(name, (CONFIG, WEIGHTS, METRICS, CHECKPOINT))  # noqa: E731
    if run_dir.is_dir() and any(not leftover(entry.name) for entry in run_dir.iterdir()):
        held = "holds a run" if (run_dir / CONFIG).exists() else "is not empty"
        raise RnnscopeError(f"{run_dir}: already {held}; choose another --out")
    for parent in run_dir.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise RnnscopeError(f"{run_dir}: {parent} is a file, not a directory")
            break
    return run_dir


def save_model_run(
    run_dir: str | Path, model: RateRNN, task_spec: Mapping[str, Any], extra: Mapping[str, Any], *, exist_ok: bool = False
) -> Path:
    """Write a complete run directory for an existing model (import, design): weights, then config.

    Refuses a directory that already holds files (``exist_ok`` lets a curriculum write its final network beside
    its stage directories) and weights that are not finite in float32, before anything is written.
    """
    run_dir = Path(run_dir)
    if not exist_ok:
        check_new_run_dir(run_dir)
    tensors = {k: v.detach().cpu().contiguous().float() for k, v in model.state_dict().items()}
    check_tensors(tensors, model.config.parameter_shapes, run_dir / WEIGHTS)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_weights(run_dir, model)
    write_config(run_dir, {"task": dict(task_spec), "model": dataclasses.asdict(model.config), **extra})
    return run_dir


