"""The result objects of the state-space fixed-point finder (``_state_fixedpoints.py``): points on axis 0."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnscope.errors import RnnscopeError

__all__ = ["StateFixedPoints", "StateFixedPointResult"]

_CLASSES = ("stable", "saddle", "source")
_STATUSES = ("fixed", "stationary", "moving")
_KINDS = ("trajectory", "structured")




@dataclass(frozen=True, eq=False)
class StateFixedPoints:
    """Points of a map in state space; every array has points on axis 0.

    states: (points, state); speed: (points,), ``q = |F(h) - h|^2 / 2``; newton_distance: (points,), ``|J^+ r|``
    in float64 (``J = dF/dh - I``); jacobians: (points, state, state), ``dF/dh``; eigenvalues: (points, state)
    complex multipliers of ``dF/dh`` sorted by decreasing modulus; unstable: (points,) int, how many have
    ``|lambda| > 1``; stability: (points,) str, stable / saddle / source; converged: (points,) bool, certified.
    """

    states: np.ndarray
    speed: np.ndarray
    newton_distance: np.ndarray
    jacobians: np.ndarray
    eigenvalues: np.ndarray
    unstable: np.ndarray
    stability: np.ndarray
    converged: np.ndarray

    def __post_init__(self) -> None:
        states = np.asarray(self.states)
        if states.ndim != 2:
            raise RnnscopeError(f"states: expected (points, state), got shape {states.shape}")
        points, state = states.shape
        expected = {
            "speed": (points,),
            "newton_distance": (points,),
            "jacobians": (points, state, state),
            "eigenvalues": (points, state),
            "unstable": (points,),
            "stability": (points,),
            "converged": (points,),
        }
        for name, shape in expected.items():
            if np.shape(getattr(self, name)) != shape:
                raise RnnscopeError(f"{name}: expected shape {shape}, got {np.shape(getattr(self, name))}")

    def __len__(self) -> int:
        return int(self.states.shape[0])

    @property
    def size(self) -> int:
        """Dimension of the state."""
        return int(self.states.shape[1])

    def __getitem__(self, index) -> StateFixedPoints:
        index = np.atleast_1d(np.arange(len(self))[index])
        return StateFixedPoints(
            self.states[index],
            self.speed[index],
            self.newton_distance[index],
            self.jacobians[index],
            self.eigenvalues[index],
            self.unstable[index],
            self.stability[index],
            self.converged[index],
        )

    def of_class(self, stability: str) -> StateFixedPoints:
        """The points of one class (stable, saddle or source)."""
        if stability not in _CLASSES:
            raise RnnscopeError(f"stability: expected one of {', '.join(_CLASSES)}, got {stability!r}")
        return self[self.stability == stability]

    def stable(self) -> StateFixedPoints:
        return self.of_class("stable")

    def labels(self) -> np.ndarray:
        """(points,) str: ``stable``, ``saddle-k`` (k unstable modes) or ``source``."""
        return np.array(
            [c if c != "saddle" else f"saddle-{k}" for c, k in zip(self.stability, self.unstable, strict=True)],
            dtype=object,
        ).astype(str)

    def counts(self) -> dict[str, int]:
        """Number of points per label (``stable``, ``saddle-1``, ``saddle-2``, ..., ``source``), sorted."""
        labels, numbers = np.unique(self.labels(), return_counts=True)
        return {str(label): int(n) for label, n in sorted(zip(labels, numbers, strict=True), key=_label_order)}

    def to_list(self) -> list[dict]:
        """One dict per point: state, class, unstable, eigenvalues as [re, im] pairs, speed, newton_distance,
        converged."""
        return [
            {
                "state": self.states[i].tolist(),
                "class": str(self.stability[i]),
                "unstable": int(self.unstable[i]),
                "eigenvalues": [[float(v.real), float(v.imag)] for v in self.eigenvalues[i]],
                "speed": float(self.speed[i]),
                "newton_distance": float(self.newton_distance[i]),
                "converged": bool(self.converged[i]),
            }
            for i in range(len(self))
        ]

    def to_dict(self) -> dict:
        return {"points": self.to_list(), "counts": self.counts()}


def _label_order(item) -> tuple:
    label = item[0]
    if label == "stable":
        return (0, 0)
    if label == "source":
        return (2, 0)
    return (1, int(label.split("-")[1]))


@dataclass(frozen=True, eq=False)
class StateFixedPointResult:
    """Everything the search found at one constant input; per-start arrays have starts on axis 0.

    fixed_points: the unique certified points, sorted by (unstable, |h|); slow_points: the unique ``stationary``
    endpoints that failed certification (``converged`` False), with their speed; starts: (starts, state), where
    each search began (trajectory starts first, then structured ones); kind: (starts,) str, ``trajectory`` or
    ``structured``; endpoints: (starts, state), where it ended; endpoint_speed: (starts,), q there;
    endpoint_newton_distance: (starts,); status: (starts,) str, ``fixed`` (certified), ``stationary`` or
    ``moving``; iterations: (starts,) int, Levenberg-Marquardt iterations used; inputs: (inputs,);
    lower, upper: (state,), the box (``inf`` where unbounded); tol: the certification tolerance.
    """

    fixed_points: StateFixedPoints
    slow_points: StateFixedPoints
    starts: np.ndarray
    kind: np.ndarray
    endpoints: np.ndarray
    endpoint_speed: np.ndarray
    endpoint_newton_distance: np.ndarray
    status: np.ndarray
    iterations: np.ndarray
    inputs: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    tol: float

    def __post_init__(self) -> None:
        starts = np.asarray(self.starts)
        if starts.ndim != 2:
            raise RnnscopeError(f"starts: expected (starts, state), got shape {starts.shape}")
        n, state = starts.shape
        for name in ("kind", "endpoint_speed", "endpoint_newton_distance", "status", "iterations"):
            if np.shape(getattr(self, name)) != (n,):
                raise RnnscopeError(f"{name}: expected shape {(n,)}, got {np.shape(getattr(self, name))}")
        for name in ("lower", "upper"):
            if np.shape(getattr(self, name)) != (state,):
                raise RnnscopeError(f"{name}: expected shape {(state,)}, got {np.shape(getattr(self, name))}")
        if np.shape(self.endpoints) != starts.shape:
            raise RnnscopeError(f"endpoints: expected shape {starts.shape}, got {np.shape(self.endpoints)}")

    @property
    def converged(self) -> np.ndarray:
        """(starts,) bool: the start ended on a certified fixed point."""
        return self.status == "fixed"

    def converged_fraction(self, kind: str | None = None) -> float:
        """Fraction of starts (of one ``kind``, or all) that ended on a certified fixed point."""
        if kind is not None and kind not in _KINDS:
            raise RnnscopeError(f"kind: expected one of {', '.join(_KINDS)} or None, got {kind!r}")
        mask = np.ones(len(self.status), bool) if kind is None else self.kind == kind
        return float(np.mean(self.converged[mask])) if np.any(mask) else float("nan")

    def status_counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.status == name)) for name in _STATUSES}

    def to_dict(self) -> dict:
        """JSON-ready summary: the certified points, the slow points, counts and convergence per kind of start."""
        return {
            "fixed_points": self.fixed_points.to_list(),
            "slow_points": self.slow_points.to_list(),
            "counts": self.fixed_points.counts(),
            "starts": int(len(self.starts)),
            "status": self.status_counts(),
            "converged_fraction": self.converged_fraction(),
            "converged_fraction_trajectory": self.converged_fraction("trajectory"),
            "converged_fraction_structured": self.converged_fraction("structured"),
            "inputs": self.inputs.tolist(),
            "tol": float(self.tol),
        }


