"""Import networks trained by other code: the state_dict files of Dubreuil, Valente et al. 2022."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnscope.errors import RnnscopeError
from rnnscope.io._rundir import Run, check_new_run_dir, load_run, save_model_run
from rnnscope.models import FullRankWeights, LowRankWeights, model_from_weights
from rnnscope.tasks import Task, task_spec

__all__ = ["load_reference", "import_reference"]

_COMMON_KEYS = ("wi", "wo", "h0")


def _read_state_dict(path: Path) -> dict[str, np.ndarray]:
    if path.is_dir():
        raise RnnscopeError(f"{path}: is a directory, expected a PyTorch state_dict file (.pt)")
    if not path.is_file():
        raise RnnscopeError(f"{path}: no such file")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise RnnscopeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message goes on to suggest weights_only=False: never repeat that advice
        raise RnnscopeError(f"{path}: refused: the file holds Python objects besides tensors, and rnnscope never "
                            "unpickles code; save the network's state_dict (a dict of tensors) instead") from None
    except Exception as exc:  # torch.load raises assorted types for a file that is not a checkpoint
        lines = [line for line in str(exc).strip().splitlines() if "weights_only" not in line]
        first = lines[0] if lines else type(exc).__name__
        raise RnnscopeError(f"{path}: not a readable PyTorch state_dict ({first[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise RnnscopeError(f"{path}: expected a state_dict (a dict of named tensors)")
    for key, value in state.items():
        if not value.dtype.is_floating_point:
            raise RnnscopeError(f"{path}: tensor {key!r} has dtype {str(value.dtype).removeprefix('torch.')}, "
                                "expected floating point")
        if not bool(torch.isfinite(value).all()):
            raise RnnscopeError(f"{path}: tensor {key!r} contains NaN or infinite values")
    return {key: value.detach().double().numpy() for key, value in state.items()}


def load_reference(path: str | Path, *, noise_std: float = 0.05, alpha: float = 0.2) -> LowRankWeights | FullRankWeights:
    """Read a reference network (keys ``wi (inputs, N)``, ``si``, ``wo (N, outputs)``, ``so``, ``h0``, and
    ``m, n (N, rank)`` or ``wrec (N, N)``), folding the scalings into ``w_in = (wi * si).T`` and
    ``w_out = wo * so``. The model type, size, rank and inputs are inferred from the keys and shapes.
    """
    path = Path(path)
    state = _read_state_dict(path)
    missing = [key for key in _COMMON_KEYS if key not in state]
    if missing:
        raise RnnscopeError(f"{path}: missing key(s) {', '.join(missing)}; found {', '.join(sorted(state))}")
    wi = state["wi"]
    if wi.ndim != 2:
        raise RnnscopeError(f"{path}: wi must be (inputs, N), got shape {wi.shape}")
    si = state.get("si", np.ones(wi.shape[0]))
    wo = state["wo"]
    so = state.get("so", np.ones(wo.shape[1] if wo.ndim == 2 else 1))
    if "wrec" in state and ("m" in state or "n" in state):
        raise RnnscopeError(f"{path}: holds both low-rank keys (m, n) and a full-rank key (wrec); which network it "
                            "is cannot be told: keep only one of them")
    try:
        w_in = (wi * si[:, None]).T
        w_out = wo * so
        common = dict(w_in=w_in, w_out=w_out, h0=state["h0"], noise_std=noise_std, alpha=alpha)
        if "m" in state and "n" in state:
            return LowRankWeights(m=state["m"], n=state["n"], **common)
        if "wrec" in state:
            return FullRankWeights(J=state["wrec"], **common)
    except (ValueError, IndexError, RnnscopeError) as exc:
        raise RnnscopeError(f"{path}: inconsistent shapes ({exc})") from None
    raise RnnscopeError(f"{path}: neither low-rank keys (m, n) nor a full-rank key (wrec) found")


def import_reference(path: str | Path, task: Task, *, out: str | Path, noise_std: float = 0.05) -> Run:
    """Convert the state_dict file ``path`` (see ``load_reference``) into a run directory ``out`` for ``task``,
    recording the file's name and SHA-256; returns the run as loaded back. ``out`` must be new or empty."""
    path = Path(path)
    check_new_run_dir(out)
    weights = load_reference(path, noise_std=noise_std)
    if weights.inputs != len(task.input_names):
        raise RnnscopeError(f"{path}: the network has {weights.inputs} inputs, task {task.name!r} has "
                            f"{len(task.input_names)} ({', '.join(task.input_names)})")
    if weights.outputs != len(task.output_names):
        raise RnnscopeError(f"{path}: the network has {weights.outputs} outputs, task {task.name!r} has "
                            f"{len(task.output_names)}")
    source: dict[str, Any] = {"file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    save_model_run(out, model_from_weights(weights), task_spec(task), {"source": source, "seed": 0})
    return load_run(out)
