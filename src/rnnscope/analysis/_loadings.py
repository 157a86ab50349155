"""Loading space: each neuron of a low-rank network as one point, its row of ``(w_in, n, m, w_out)``.

Because rnnscope scales ``J = m n^T / size`` and ``z = tanh(x) @ w_out / size``, loadings do not depend on the
network size, so a distribution of loadings defines networks of any size (see ``PopulationModel``). Per-neuron
population labels are ``labels`` (size,), integers 0..P-1; ``populations`` is always a count P.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnscope._validation import check_array
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankWeights

__all__ = ["Loadings", "loadings", "loading_columns"]

BLOCKS = ("w_in", "n", "m", "w_out")
_LABEL = re.compile(r"^(w_in|n|m|w_out)\[(\d+)\]$")


def loading_columns(*, rank: int, inputs: int, outputs: int) -> tuple[str, ...]:
    """Column labels in the order (w_in, n, m, w_out): ``("w_in[0]", ..., "n[0]", ..., "m[0]", ..., "w_out[0]")``."""
    counts = {"w_in": inputs, "n": rank, "m": rank, "w_out": outputs}
    return tuple(f"{block}[{i}]" for block in BLOCKS for i in range(counts[block]))


def loading_layout(columns: Sequence[str]) -> dict[str, int]:
    """{block: count} parsed from labels, checking they are exactly ``loading_columns`` of those counts."""
    counts = dict.fromkeys(BLOCKS, 0)
    for label in columns:
        match = _LABEL.match(label)
        if match is None:
            raise RnnscopeError(f"columns: {label!r} is not a loading label like 'w_in[0]', 'n[0]', 'm[0]', 'w_out[0]'")
        counts[match.group(1)] += 1
    expected = loading_columns(rank=counts["m"], inputs=counts["w_in"], outputs=counts["w_out"])
    if tuple(columns) != expected or counts["m"] != counts["n"] or counts["m"] < 1 or counts["w_out"] < 1:
        raise RnnscopeError(f"columns: expected labels in the order {expected}, got {tuple(columns)}")
    return counts


def weights_from_values(
    values: np.ndarray, columns: Sequence[str], *, noise_std: float, alpha: float, h0: np.ndarray | None
) -> LowRankWeights:
    """The inverse of ``loadings``: LowRankWeights from a (size, columns) matrix (any size)."""
    counts = loading_layout(columns)
    values = check_array(values, "values", ndim=2)
    if values.shape[1] != len(columns):
        raise RnnscopeError(f"values: expected {len(columns)} columns, got shape {values.shape}")
    blocks, start = {}, 0
    for block in BLOCKS:
        blocks[block] = values[:, start : start + counts[block]]
        start += counts[block]
    size = values.shape[0]
    h0 = np.zeros(size) if h0 is None else h0
    return LowRankWeights(
        m=blocks["m"], n=blocks["n"], w_in=blocks["w_in"], w_out=blocks["w_out"], h0=h0,
        noise_std=noise_std, alpha=alpha,
    )


@dataclass(frozen=True, eq=False)
class Loadings:
    """One point per neuron in loading space.

    values: (size, columns), neuron i's row of (w_in, n, m, w_out); columns: labels (see ``loading_columns``);
    noise_std, alpha: the network's dynamics, kept so ``to_weights`` rebuilds a network.
    """

    values: np.ndarray
    columns: tuple[str, ...]
    noise_std: float = 0.05
    alpha: float = 0.2

    def __post_init__(self) -> None:
        loading_layout(self.columns)
        values = check_array(self.values, "values", ndim=2)
        if values.shape[1] != len(self.columns):
            raise RnnscopeError(f"values: expected {len(self.columns)} columns, got shape {values.shape}")
        values = values.copy()
        values.setflags(write=False)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "columns", tuple(self.columns))

    @property
    def size(self) -> int:
        return int(self.values.shape[0])

    def select(self, blocks: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
        """The columns of the given blocks (e.g. ``("m", "n", "w_in")``): values (size, k) and their labels."""
        unknown = [b for b in blocks if b not in BLOCKS]
        if unknown:
            raise RnnscopeError(f"blocks: {unknown[0]!r} is not one of {BLOCKS}")
        keep = [i for b in blocks for i, c in enumerate(self.columns) if c.startswith(b + "[")]
        return self.values[:, keep], tuple(self.columns[i] for i in keep)

    def to_weights(self, values: np.ndarray | None = None, *, h0: np.ndarray | None = None) -> LowRankWeights:
        """A network from a loading matrix with these columns: values (size', columns), any size'
        (default: these loadings); h0 (size',) defaults to zeros."""
        return weights_from_values(
            self.values if values is None else values, self.columns, noise_std=self.noise_std, alpha=self.alpha, h0=h0
        )


def loadings(weights: LowRankWeights) -> Loadings:
    """The loading space of a low-rank network: (size, inputs + 2 rank + outputs), columns (w_in, n, m, w_out)."""
    if not isinstance(weights, LowRankWeights):
        raise RnnscopeError(f"weights: population analysis needs a low-rank network, got {type(weights).__name__}")
    columns = loading_columns(rank=weights.rank, inputs=weights.inputs, outputs=weights.outputs)
    values = np.hstack([weights.w_in, weights.n, weights.m, weights.w_out])
    return Loadings(values=values, columns=columns, noise_std=weights.noise_std, alpha=weights.alpha)


def check_labels(labels: Any, size: int) -> np.ndarray:
    """``labels`` (size,) as integers 0..P-1 with none missing, else an error naming ``labels``."""
    labels = np.asarray(labels)
    if labels.shape != (size,):
        raise RnnscopeError(f"labels: expected shape ({size},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise RnnscopeError("labels: expected non-negative integer labels")
    present = np.unique(labels)
    if not np.array_equal(present, np.arange(present.shape[0])):
        raise RnnscopeError(f"labels: must be 0..P-1 with none missing, got {present.tolist()}")
    return labels.astype(int)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..P'-1 over the populations actually present (a fit may leave components empty),
    dropping nothing; populations of fewer than 2 neurons are merged into the largest."""
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    largest = int(np.argmax(counts))
    inverse = np.where(counts[inverse] < 2, largest, inverse)
    _, inverse = np.unique(inverse, return_inverse=True)
    return inverse.astype(int)
