"""Import a network trained in plain PyTorch: a one-layer ``torch.nn.GRU``/``LSTM``/``RNN`` and a ``torch.nn.Linear``
readout saved as a ``state_dict``, into a run directory of a :class:`rnnscope.models.GatedRNN`.

The file is read with ``torch.load(path, map_location="cpu", weights_only=True)``: never unpickled as code, and
anything but a flat mapping of names to tensors is refused. The recurrent tensors are found by their PyTorch names
(``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``) under any common prefix (``rnn.``,
``model.gru.``, none); the two remaining tensors must be the readout's ``weight`` (outputs, size) and ``bias``
(outputs,). Names, shapes, dtypes and finiteness are checked before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rnnscope.errors import RnnscopeError
from rnnscope.io._rundir import Run, check_new_run_dir, load_run, save_model_run
from rnnscope.models import GatedConfig, GatedRNN
from rnnscope.tasks import Task, task_spec

__all__ = ["TORCH_CELLS", "read_torch_state_dict", "gated_from_state_dict", "import_torch"]

TORCH_CELLS = {"gru": "gru", "lstm": "lstm", "rnn": "vanilla"}  # torch.nn name -> rnnscope cell
_RECURRENT = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def read_torch_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch ``state_dict`` file, loaded without unpickling code; every failure is one line
    naming ``path`` (and the entry)."""
    path = Path(path)
    if path.is_dir():
        raise RnnscopeError(f"{path}: is a directory, expected a PyTorch state_dict file")
    if not path.is_file():
        raise RnnscopeError(f"{path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (a pickled object), RuntimeError/EOFError (not a torch file)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise RnnscopeError(f"{path}: not a state_dict of tensors readable with weights_only=True ({first})") from None
    if not isinstance(data, Mapping):
        raise RnnscopeError(f"{path}: expected a state_dict (a mapping of names to tensors), got {type(data).__name__}")
    out = {}
    for name, value in data.items():
        if not isinstance(name, str):
            raise RnnscopeError(f"{path}: entry {name!r} has a non-string name")
        if not isinstance(value, torch.Tensor):
            raise RnnscopeError(f"{path}: entry {name!r} is a {type(value).__name__}, expected a tensor")
        out[name] = value
    return out


def _check_tensor(path: Path, name: str, value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    if not value.dtype.is_floating_point:
        raise RnnscopeError(f"{path}: tensor {name!r} has dtype {str(value.dtype).removeprefix('torch.')}, "
                            f"expected floating point")
    if tuple(value.shape) != shape:
        raise RnnscopeError(f"{path}: tensor {name!r} has shape {tuple(value.shape)}, expected {shape}")
    if not bool(torch.isfinite(value).all()):
        raise RnnscopeError(f"{path}: tensor {name!r} contains NaN or infinite values")
    return value.detach().to(torch.float32)


def _find(path: Path, tensors: Mapping[str, torch.Tensor], suffix: str) -> str:
    found = [name for name in tensors if name == suffix or name.endswith("." + suffix)]
    if not found:
        raise RnnscopeError(f"{path}: missing tensor {suffix!r} (expected a one-layer torch.nn RNN's "
                            f"{', '.join(_RECURRENT)})")
    if len(found) > 1:
        raise RnnscopeError(f"{path}: more than one tensor named {suffix!r}: {', '.join(sorted(found))}")
    return found[0]


def gated_from_state_dict(tensors: Mapping[str, torch.Tensor], *, cell: str, activation: str = "tanh",
                          path: str | Path = "state_dict") -> GatedRNN:
    """A GatedRNN holding ``tensors`` (a one-layer torch.nn ``cell`` and a Linear readout; see the module
    docstring). cell: ``gru``, ``lstm`` or ``rnn``; activation: the nonlinearity of a ``torch.nn.RNN`` (tanh or
    relu; GRU and LSTM are tanh). path names the source in error messages."""
    path = Path(path)
    if cell not in TORCH_CELLS:
        raise RnnscopeError(f"cell: must be one of {', '.join(TORCH_CELLS)}, got {cell!r}")
    if cell != "rnn" and activation != "tanh":
        raise RnnscopeError(f"activation: torch.nn.{cell.upper()} is tanh only, got {activation!r}")
    names = {suffix: _find(path, tensors, suffix) for suffix in _RECURRENT}
    prefixes = {name[: -len(suffix)] for suffix, name in names.items()}
    if len(prefixes) != 1:
        raise RnnscopeError(f"{path}: the recurrent tensors have different prefixes: {', '.join(sorted(names.values()))}")
    rest = sorted(set(tensors) - set(names.values()))
    weight = [n for n in rest if n == "weight" or n.endswith(".weight")]
    bias = [n for n in rest if n == "bias" or n.endswith(".bias")]
    extra = sorted(set(rest) - set(weight[:1]) - set(bias[:1]))
    if len(weight) != 1 or len(bias) != 1 or extra:
        missing = "weight" if not weight else "bias" if not bias else None
        if missing:
            raise RnnscopeError(f"{path}: missing tensor {missing!r} of the Linear readout")
        raise RnnscopeError(f"{path}: unexpected tensor {extra[0]!r} (expected {', '.join(names.values())} and a "
                            f"Linear readout's weight and bias)")
    gates = {"gru": 3, "lstm": 4, "rnn": 1}[cell]
    w_hh = tensors[names["weight_hh_l0"]]
    if w_hh.dim() != 2 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise RnnscopeError(f"{path}: tensor {names['weight_hh_l0']!r} has shape {tuple(w_hh.shape)}, expected "
                            f"({gates} * size, size) for torch.nn.{cell.upper()}")
    size = int(w_hh.shape[1])
    w_ih, w_out = tensors[names["weight_ih_l0"]], tensors[weight[0]]
    if w_ih.dim() != 2 or w_out.dim() != 2:
        bad = names["weight_ih_l0"] if w_ih.dim() != 2 else weight[0]
        raise RnnscopeError(f"{path}: tensor {bad!r} has shape {tuple(tensors[bad].shape)}, expected a matrix")
    inputs, outputs = int(w_ih.shape[1]), int(w_out.shape[0])
    config = GatedConfig(cell=TORCH_CELLS[cell], size=size, inputs=inputs, outputs=outputs, activation=activation)
    shapes = {"weight_ih_l0": (gates * size, inputs), "weight_hh_l0": (gates * size, size),
              "bias_ih_l0": (gates * size,), "bias_hh_l0": (gates * size,)}
    values = {key: _check_tensor(path, names[key], tensors[names[key]], shape) for key, shape in shapes.items()}
    values["w_out"] = _check_tensor(path, weight[0], w_out, (outputs, size)).T.contiguous()
    values["b_out"] = _check_tensor(path, bias[0], tensors[bias[0]], (outputs,))
    model = GatedRNN(config, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for key, value in values.items():
            getattr(model, key).copy_(value)
    return model


def import_torch(path: str | Path, *, cell: str, task: Task, out: str | Path, activation: str = "tanh") -> Run:
    """Write a run directory ``out`` for the PyTorch network in ``path`` (module docstring) on ``task``; the
    network's inputs and outputs must match the task's channels. Returns the run, read back with ``load_run``."""
    path, out = Path(path), Path(out)
    check_new_run_dir(out)
    model = gated_from_state_dict(read_torch_state_dict(path), cell=cell, activation=activation, path=path)
    config = model.config
    if config.inputs != len(task.input_names) or config.outputs != len(task.output_names):
        raise RnnscopeError(f"{path}: the network has {config.inputs} inputs and {config.outputs} outputs, task "
                            f"{task.name!r} has {len(task.input_names)} and {len(task.output_names)}")
    extra: dict[str, Any] = {"seed": 0, "source": {"kind": "torch", "file": path.name, "cell": cell}}
    save_model_run(out, model, task_spec(task), extra)  # type: ignore[arg-type]
    return load_run(out)

