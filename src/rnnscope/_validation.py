"""Shared checkers: random state, numbers, arrays. Every public function validates through these."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from rnnscope.errors import RnnscopeError

__all__ = ["as_generator", "check_positive", "check_nonnegative", "check_int", "check_array", "check_probability",
           "json_ready"]


def as_generator(seed: int | np.random.Generator | None, *, name: str = "seed") -> np.random.Generator:
    """The one place an int seed becomes a ``np.random.Generator`` (house rule 3)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise RnnscopeError(f"{name}: a seed or np.random.Generator is required (rnnscope never draws hidden randomness)")
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and int(seed) >= 0:
        return np.random.default_rng(int(seed))
    raise RnnscopeError(f"{name}: expected a non-negative int or np.random.Generator, got {seed!r}")


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within ``[minimum, maximum]``, else an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise RnnscopeError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise RnnscopeError(f"{name}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise RnnscopeError(f"{name}: must be <= {maximum}, got {value}")
    return value


def _check_real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise RnnscopeError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def check_positive(value: Any, name: str) -> float:
    value = _check_real(value, name)
    if value <= 0:
        raise RnnscopeError(f"{name}: must be > 0, got {value}")
    return value


def check_nonnegative(value: Any, name: str) -> float:
    value = _check_real(value, name)
    if value < 0:
        raise RnnscopeError(f"{name}: must be >= 0, got {value}")
    return value


def check_probability(value: Any, name: str) -> float:
    value = _check_real(value, name)
    if not 0.0 <= value <= 1.0:
        raise RnnscopeError(f"{name}: must be in [0, 1], got {value}")
    return value


def check_array(
    value: Any, name: str, *, ndim: int | None = None, shape: tuple[int | None, ...] | None = None, dtype: Any = np.float64
) -> np.ndarray:
    """``value`` as a finite array of ``dtype``; ``shape`` entries of ``None`` match any length."""
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise RnnscopeError(f"{name}: cannot be read as an array of {np.dtype(dtype).name} ({exc})") from None
    if ndim is not None and array.ndim != ndim:
        raise RnnscopeError(f"{name}: expected {ndim} dimensions, got shape {array.shape}")
    if shape is not None:
        if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape, strict=True)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise RnnscopeError(f"{name}: expected shape {want}, got {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise RnnscopeError(f"{name}: contains NaN or infinite values")
    return array


def json_ready(value: Any) -> Any:
    """``value`` with every non-finite float (nested in dicts, lists, tuples) replaced by None: what rnnscope writes
    or prints as JSON never holds NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value
