"""Import networks trained by other code: the state_dict files of Dubreuil, Valente et al. 2022."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rnnscope.errors import RnnscopeError
from rnnscope.models import FullRankWeights, LowRankWeights

__all__ = ["load_reference"]

_COMMON_KEYS = ("wi", "wo", "h0")


def _read_state_dict(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise RnnscopeError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises assorted types for a file that is not a checkpoint
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RnnscopeError(f"{path}: not a readable PyTorch state_dict ({first[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RnnscopeError(f"{path}: expected a state_dict (a dict of tensors)")
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
    try:
        w_in = (wi * si[:, None]).T
        w_out = wo * so
        common = dict(w_in=w_in, w_out=w_out, h0=state["h0"], noise_std=noise_std, alpha=alpha)
        if "m" in state and "n" in state:
            return LowRankWeights(m=state["m"], n=state["n"], **common)
        if "wrec" in state:
            return FullRankWeights(J=state["wrec"], **common)
    except (ValueError, IndexError) as exc:
        raise RnnscopeError(f"{path}: inconsistent shapes ({exc})") from None
    raise RnnscopeError(f"{path}: neither low-rank keys (m, n) nor a full-rank key (wrec) found")
