"""Network specifications: populations and the statistics of their loadings, written by hand.

A specification describes a low-rank network of any size by the distribution of each neuron's loadings
``(w_in, n, m, w_out)`` (the columns of :func:`rnnscope.analysis.loading_columns`): a mixture of
Gaussian populations. Each population is given in one of three forms:

``gaussian``  its means and covariance directly (``"means"``, ``"covariance"``);
``valente``   the rank-1 construction of Valente 2019 (eqs 3.1-3.4), from independent standard Gaussians
              x1..x4 per neuron::

                  n = sqrt(rho) x1 + n_private x2      m = sqrt(rho) x1 + m_private x3
                  w_out = w_o m                        w_in = x4 + s_n x2 + s_m x3

              so that <n m> = rho, <n w_in> = s_n n_private, <m w_in> = s_m m_private, <m w_out> = w_o <m^2>
              (one input, one output). ``n_private`` / ``m_private`` are Valente's alpha_n / alpha_m (renamed:
              ``alpha`` is the Euler step); files may still use the old keys, read as the new ones;
``overlaps``  any rank: impose the overlap matrix ``sigma[r, s] = Cov(n_r, m_s)`` with m ~ N(m_mean, m_std^2 I)
              and ``n = n_mean + sigma (m - m_mean) / m_std^2 + n_std xi``; inputs independent,
              ``w_in[k] ~ N(0, input_std[k]^2)``; readout ``w_out = readout^T m`` (readout: (rank, outputs)).

Every form is stored as a flat mapping of named scalars (``parameters``), so that any of them can be named as a
free parameter of :func:`rnnscope.design.fit_design`: ``rho``, ``s_n`` (valente); ``overlaps:0,1``,
``input_std:0``, ``readout:0,0``, ``n_std``, ``m_std``, ``n_mean:0``, ``m_mean:0`` (overlaps);
``mean:n[0]``, ``cov:n[0],m[0]`` (gaussian; covariance entries are stored once, in column order).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from rnnscope import io
from rnnscope.analysis import loading_columns
from rnnscope.errors import RnnscopeError

__all__ = [
    "PopulationSpec",
    "DesignSpec",
    "TaskChoice",
    "load_spec",
    "spec_from_dict",
    "population_moments",
    "population_factor",
]

_FORMS = ("gaussian", "valente", "overlaps")
_VALENTE = ("rho", "n_private", "m_private", "w_o", "s_n", "s_m")
_VALENTE_DEFAULTS = {"rho": 1.0, "n_private": 1.0, "m_private": 1.0, "w_o": 1.0, "s_n": 0.0, "s_m": 0.0}
_VALENTE_RENAMED = {"alpha_n": "n_private", "alpha_m": "m_private"}  # deprecated keys of older spec files


def _renamed(name: str) -> str:
    """A free-parameter name with a deprecated valente key (``alpha_n``, ``alpha_m``) replaced by the new one."""
    head, dot, key = name.rpartition(".")
    return f"{head}{dot}{_VALENTE_RENAMED.get(key, key)}"
_SPEC_KEYS = ("name", "description", "reference", "rank", "inputs", "outputs", "noise_std", "task", "free",
              "populations", "claims")
_POPULATION_KEYS = ("name", "fraction", "means", "covariance", "valente", "overlaps")
_OVERLAP_KEYS = ("overlaps", "n_std", "m_std", "n_mean", "m_mean", "input_std", "readout")
_PSD_TOL = 1e-8


def _frozen_mapping(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows (write a finite number)")


def _real(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise RnnscopeError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class TaskChoice:
    """The task a designed network is meant to solve: a name for ``rnnscope.tasks.make_task`` and its options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise RnnscopeError(f"task.name: expected a task name, got {self.name!r}")
        if not isinstance(self.options, Mapping):
            raise RnnscopeError(f"task.options: expected a mapping, got {self.options!r}")
        object.__setattr__(self, "options", _frozen_mapping(self.options))

    def make(self):
        """The task (``rnnscope.tasks.make_task(name, options)``)."""
        from rnnscope.tasks import make_task

        return make_task(self.name, dict(self.options))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": {k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()}}


@dataclass(frozen=True)
class PopulationSpec:
    """One population: its ``fraction`` of the neurons, a ``form`` (gaussian, valente or overlaps, see the module
    docstring) and the form's named scalar ``parameters``."""

    fraction: float
    form: str
    parameters: Mapping[str, float]
    name: str = ""

    def __post_init__(self) -> None:
        if self.form not in _FORMS:
            raise RnnscopeError(f"form: expected one of {', '.join(_FORMS)}, got {self.form!r}")
        _real(self.fraction, "fraction")
        object.__setattr__(self, "fraction", float(self.fraction))
        params = {str(k): _real(v, f"parameters[{k!r}]") for k, v in dict(self.parameters).items()}
        object.__setattr__(self, "parameters", _frozen_mapping(params))

    def with_parameters(self, updates: Mapping[str, float]) -> PopulationSpec:
        """A copy with some parameters replaced (names must exist)."""
        unknown = [k for k in updates if k not in self.parameters]
        if unknown:
            raise RnnscopeError(f"parameters: {unknown[0]!r} is not a parameter of this population")
        return replace(self, parameters={**self.parameters, **{k: float(v) for k, v in updates.items()}})


@dataclass(frozen=True)
class DesignSpec:
    """A network written down as populations of loadings (see the module docstring).

    rank, inputs (>= 1), outputs: the network's shape; populations: their fractions sum to 1;
    noise_std: private noise of the networks built from it; task: what it is meant to solve (or None);
    free: the parameter names :func:`fit_design` trains by default; claims: free-form description of the
    expected behaviour (kept for the gallery listing).
    """

    rank: int
    inputs: int
    outputs: int
    populations: tuple[PopulationSpec, ...]
    noise_std: float = 0.05
    task: TaskChoice | None = None
    name: str = ""
    description: str = ""
    reference: str = ""
    free: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, minimum in (("rank", 1), ("inputs", 1), ("outputs", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise RnnscopeError(f"{key}: expected an integer >= {minimum}, got {value!r}")
        noise = _real(self.noise_std, "noise_std")
        if noise < 0:
            raise RnnscopeError(f"noise_std: must be >= 0, got {noise}")
        object.__setattr__(self, "noise_std", noise)
        populations = tuple(self.populations)
        if not populations:
            raise RnnscopeError("populations: need at least one population")
        object.__setattr__(self, "populations", populations)
        fractions = np.array([p.fraction for p in populations])
        if np.any(fractions < 0) or abs(fractions.sum() - 1.0) > 1e-6:
            raise RnnscopeError(f"populations: fractions must be >= 0 and sum to 1, got {fractions.tolist()} "
                                f"(sum {fractions.sum():.6g})")
        if self.task is not None and not isinstance(self.task, TaskChoice):
            raise RnnscopeError(f"task: expected a TaskChoice, got {type(self.task).__name__}")
        object.__setattr__(self, "free", tuple(self.free))
        object.__setattr__(self, "claims", _frozen_mapping(self.claims))
        for index, population in enumerate(populations):
            _check_population(self, population, f"populations[{index}]")
        for name in self.free:
            self.parameter_paths(name)

    # -- derived ----------------------------------------------------------------------------------------------------
    @property
    def columns(self) -> tuple[str, ...]:
        """Loading labels in the order (w_in, n, m, w_out)."""
        return loading_columns(rank=self.rank, inputs=self.inputs, outputs=self.outputs)

    @property
    def fractions(self) -> np.ndarray:
        """(populations,)"""
        return np.array([p.fraction for p in self.populations])

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """means (populations, columns) and covariances (populations, columns, columns) of the loadings."""
        pairs = [population_moments(self, p) for p in self.populations]
        means = np.stack([m.detach().numpy() for m, _ in pairs]).astype(np.float64)
        covs = np.stack([c.detach().numpy() for _, c in pairs]).astype(np.float64)
        return means, covs

    def parameter_paths(self, name: str) -> list[tuple[int, str]]:
        """Where a free-parameter name points: ``"populations[i].NAME"`` (one population) or ``"NAME"``
        (that parameter in every population that has it). Returns [(population index, parameter name)]."""
        name = _renamed(name)
        match = re.match(r"^populations\[(\d+)\]\.(.+)$", name)
        if match:
            index, key = int(match.group(1)), match.group(2)
            if index >= len(self.populations):
                raise RnnscopeError(f"free: {name!r} names population {index}, the spec has {len(self.populations)}")
            if key not in self.populations[index].parameters:
                raise RnnscopeError(
                    f"free: {key!r} is not a parameter of populations[{index}] "
                    f"(parameters: {', '.join(self.populations[index].parameters)})"
                )
            return [(index, key)]
        paths = [(i, name) for i, p in enumerate(self.populations) if name in p.parameters]
        if not paths:
            known = sorted({k for p in self.populations for k in p.parameters})
            raise RnnscopeError(f"free: {name!r} is not a parameter of any population (parameters: {', '.join(known)})")
        return paths

    def with_parameters(self, values: Mapping[tuple[int, str], float]) -> DesignSpec:
        """A copy with parameters replaced: {(population index, name): value}. Validated again."""
        populations = list(self.populations)
        grouped: dict[int, dict[str, float]] = {}
        for (index, key), value in values.items():
            grouped.setdefault(index, {})[key] = value
        for index, updates in grouped.items():
            populations[index] = populations[index].with_parameters(updates)
        return replace(self, populations=tuple(populations))

    def make_task(self):
        """The spec's task, or an error when it has none."""
        if self.task is None:
            raise RnnscopeError(f"task: specification {self.name or '(unnamed)'!r} names no task")
        return self.task.make()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what :func:`spec_from_dict` reads)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description, "reference": self.reference,
                               "rank": self.rank, "inputs": self.inputs, "outputs": self.outputs,
                               "noise_std": self.noise_std}
        if self.task is not None:
            out["task"] = self.task.to_dict()
        if self.free:
            out["free"] = list(self.free)
        if self.claims:
            out["claims"] = json.loads(json.dumps(dict(self.claims)))
        out["populations"] = [_population_to_dict(self, p) for p in self.populations]
        return out


# -------------------------------------------------------------------------------------------------- moments
def _param(parameters: Mapping[str, Any], key: str, default: float, dtype) -> torch.Tensor:
    value = parameters.get(key, default)
    return value if isinstance(value, torch.Tensor) else torch.tensor(float(value), dtype=dtype)


def population_factor(
    spec: DesignSpec, population: PopulationSpec, parameters: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """mean (columns,), factor (columns, k) with covariance = factor factor^T (None for the gaussian form),
    covariance (columns, columns), as torch tensors (differentiable in ``parameters``, which override the
    population's own; values may be tensors)."""
    params: dict[str, Any] = dict(population.parameters)
    if parameters:
        params.update(parameters)
    R, n_in, n_out = spec.rank, spec.inputs, spec.outputs
    D = n_in + 2 * R + n_out
    get = lambda key, default=0.0: _param(params, key, default, dtype)  # noqa: E731
    if population.form == "gaussian":
        columns = spec.columns
        mean = torch.stack([get(f"mean:{c}") for c in columns])
        rows = []
        for i, a in enumerate(columns):
            row = []
            for j, b in enumerate(columns):
                key = f"cov:{a},{b}" if i <= j else f"cov:{b},{a}"
                row.append(get(key))
            rows.append(torch.stack(row))
        cov = torch.stack(rows)
        return mean, None, cov
    if population.form == "valente":
        rho, a_n, a_m = get("rho"), get("n_private"), get("m_private")
        w_o, sn, sm = get("w_o"), get("s_n"), get("s_m")
        root = torch.sqrt(torch.clamp(rho, min=0.0))
        zero, one = torch.zeros((), dtype=dtype), torch.ones((), dtype=dtype)
        # rows (w_in, n, m, w_out) over factors (x1, x2, x3, x4)
        w_in = torch.stack([zero, sn, sm, one])
        n = torch.stack([root, a_n, zero, zero])
        m = torch.stack([root, zero, a_m, zero])
        factor = torch.stack([w_in, n, m, w_o * m])
        return torch.zeros(D, dtype=dtype), factor, factor @ factor.T
    # overlaps: factors (zeta (R), xi (R), eta (n_in))
    m_std, n_std = get("m_std", 1.0), get("n_std")
    sigma = torch.stack([torch.stack([get(f"overlaps:{r},{s}") for s in range(R)]) for r in range(R)])
    readout = torch.stack([torch.stack([get(f"readout:{r},{o}", 1.0 if r == o else 0.0) for o in range(n_out)])
                           for r in range(R)])
    input_std = torch.stack([get(f"input_std:{k}") for k in range(n_in)])
    m_mean = torch.stack([get(f"m_mean:{r}") for r in range(R)])
    n_mean = torch.stack([get(f"n_mean:{r}") for r in range(R)])
    eye = torch.eye(R, dtype=dtype)
    factor = torch.cat([
        torch.cat([torch.zeros((n_in, R), dtype=dtype), torch.zeros((n_in, R), dtype=dtype), torch.diag(input_std)], 1),
        torch.cat([sigma / m_std, n_std * eye, torch.zeros((R, n_in), dtype=dtype)], 1),
        torch.cat([m_std * eye, torch.zeros((R, R + n_in), dtype=dtype)], 1),
        torch.cat([m_std * readout.T, torch.zeros((n_out, R + n_in), dtype=dtype)], 1),
    ], 0)
    mean = torch.cat([torch.zeros(n_in, dtype=dtype), n_mean, m_mean, readout.T @ m_mean])
    return mean, factor, factor @ factor.T


def population_moments(
    spec: DesignSpec, population: PopulationSpec, parameters: Mapping[str, Any] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """mean (columns,) and covariance (columns, columns) of one population's loadings (torch, float64)."""
    mean, _, cov = population_factor(spec, population, parameters)
    return mean, cov


def _check_population(spec: DesignSpec, population: PopulationSpec, where: str) -> None:
    if not isinstance(population, PopulationSpec):
        raise RnnscopeError(f"{where}: expected a PopulationSpec, got {type(population).__name__}")
    known = _known_parameters(spec, population.form)
    unknown = [k for k in population.parameters if k not in known]
    if unknown:
        raise RnnscopeError(f"{where}: {unknown[0]!r} is not a parameter of a {population.form} population of this shape")
    if population.form == "valente" and (spec.rank, spec.inputs, spec.outputs) != (1, 1, 1):
        raise RnnscopeError(
            f"{where}.valente: the Valente 2019 construction is for rank 1, one input and one output; the spec has "
            f"rank {spec.rank}, {spec.inputs} inputs, {spec.outputs} outputs"
        )
    if population.form == "valente" and population.parameters.get("rho", 1.0) < 0:
        raise RnnscopeError(f"{where}.valente.rho: must be >= 0, got {population.parameters['rho']}")
    _, cov = population_moments(spec, population)
    cov = cov.numpy()
    scale = max(1.0, float(np.abs(cov).max()))
    smallest = float(np.linalg.eigvalsh(cov).min())
    if smallest < -_PSD_TOL * scale:
        raise RnnscopeError(
            f"{where}.covariance: not positive semidefinite (smallest eigenvalue {smallest:.4g})"
        )


def _known_parameters(spec: DesignSpec, form: str) -> set[str]:
    if form == "valente":
        return set(_VALENTE)
    if form == "gaussian":
        columns = spec.columns
        return {f"mean:{c}" for c in columns} | {
            f"cov:{a},{b}" for i, a in enumerate(columns) for b in columns[i:]
        }
    R, n_in, n_out = spec.rank, spec.inputs, spec.outputs
    return (
        {f"overlaps:{r},{s}" for r in range(R) for s in range(R)}
        | {f"readout:{r},{o}" for r in range(R) for o in range(n_out)}
        | {f"input_std:{k}" for k in range(n_in)}
        | {f"m_mean:{r}" for r in range(R)}
        | {f"n_mean:{r}" for r in range(R)}
        | {"m_std", "n_std"}
    )


# -------------------------------------------------------------------------------------------------- JSON
def _matrix(value: Any, shape: tuple[int, int], where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise RnnscopeError(f"{where}: expected a {shape[0]} x {shape[1]} matrix of numbers, got {value!r}") from None
    if array.ndim == 1 and shape[1] == 1 and array.shape[0] == shape[0]:
        array = array[:, None]
    if array.shape != shape:
        raise RnnscopeError(f"{where}: expected shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise RnnscopeError(f"{where}: contains NaN or infinite values")
    return array


def _vector(value: Any, length: int, where: str) -> np.ndarray:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return np.full(length, float(value))
    return _matrix(value, (length, 1), where)[:, 0]


def _check_keys(data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    if not isinstance(data, Mapping):
        raise RnnscopeError(f"{where}: expected an object, got {type(data).__name__}")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise RnnscopeError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")


def _gaussian_parameters(data: Mapping[str, Any], columns: tuple[str, ...], where: str) -> dict[str, float]:
    params: dict[str, float] = {}
    D = len(columns)
    means = data.get("means", 0.0)
    if isinstance(means, Mapping):
        for label, value in means.items():
            if label not in columns:
                raise RnnscopeError(f"{where}.means: {label!r} is not a column ({', '.join(columns)})")
            params[f"mean:{label}"] = _real(value, f"{where}.means[{label!r}]")
    else:
        for label, value in zip(columns, _vector(means, D, f"{where}.means"), strict=True):
            params[f"mean:{label}"] = float(value)
    if "covariance" not in data:
        raise RnnscopeError(f"{where}: a gaussian population needs 'covariance' (a matrix or {{'a,b': value}})")
    cov_data = data["covariance"]
    if isinstance(cov_data, Mapping):
        cov = np.zeros((D, D))
        for key, value in cov_data.items():
            parts = [p.strip() for p in str(key).split(",")]
            if len(parts) == 1:
                parts = parts * 2
            if len(parts) != 2 or any(p not in columns for p in parts):
                raise RnnscopeError(
                    f"{where}.covariance: key {key!r} must be 'a,b' or 'a' with a, b columns ({', '.join(columns)})"
                )
            i, j = columns.index(parts[0]), columns.index(parts[1])
            cov[i, j] = cov[j, i] = _real(value, f"{where}.covariance[{key!r}]")
    else:
        cov = _matrix(cov_data, (D, D), f"{where}.covariance")
        if not np.allclose(cov, cov.T, atol=1e-10 * max(1.0, float(np.abs(cov).max()))):
            raise RnnscopeError(f"{where}.covariance: not symmetric")
    for i, a in enumerate(columns):
        for j in range(i, D):
            if cov[i, j] != 0.0:
                params[f"cov:{a},{columns[j]}"] = float(cov[i, j])
    return params


def _overlap_parameters(data: Mapping[str, Any], rank: int, inputs: int, outputs: int, where: str) -> dict[str, float]:
    _check_keys(data, _OVERLAP_KEYS, where)
    if "overlaps" not in data:
        raise RnnscopeError(f"{where}: needs 'overlaps', the {rank} x {rank} matrix Cov(n_r, m_s)")
    params: dict[str, float] = {}
    sigma = _matrix(data["overlaps"], (rank, rank), f"{where}.overlaps")
    for r in range(rank):
        for s in range(rank):
            params[f"overlaps:{r},{s}"] = float(sigma[r, s])
    for key in ("n_std", "m_std"):
        if key in data:
            params[key] = _real(data[key], f"{where}.{key}")
    if params.get("m_std", 1.0) <= 0:
        raise RnnscopeError(f"{where}.m_std: must be > 0, got {params['m_std']}")
    for key, length in (("n_mean", rank), ("m_mean", rank), ("input_std", inputs)):
        if key in data:
            for k, value in enumerate(_vector(data[key], length, f"{where}.{key}")):
                params[f"{key}:{k}"] = float(value)
    if "readout" in data:
        readout = _matrix(data["readout"], (rank, outputs), f"{where}.readout")
        for r in range(rank):
            for o in range(outputs):
                params[f"readout:{r},{o}"] = float(readout[r, o])
    return params


def _population_from_dict(data: Any, rank: int, inputs: int, outputs: int, where: str) -> PopulationSpec:
    _check_keys(data, _POPULATION_KEYS, where)
    if "fraction" not in data:
        raise RnnscopeError(f"{where}: needs 'fraction'")
    fraction = _real(data["fraction"], f"{where}.fraction")
    forms = [key for key in ("valente", "overlaps") if key in data]
    if "means" in data or "covariance" in data:
        forms.append("gaussian")
    if len(forms) != 1:
        raise RnnscopeError(
            f"{where}: give exactly one of 'means'/'covariance', 'valente' or 'overlaps', got {forms or 'none'}"
        )
    form = forms[0]
    if form == "gaussian":
        columns = loading_columns(rank=rank, inputs=inputs, outputs=outputs)
        params = _gaussian_parameters(data, columns, where)
    elif form == "valente":
        given = data["valente"]
        if isinstance(given, Mapping):
            given = {_VALENTE_RENAMED.get(k, k): v for k, v in given.items()}
        _check_keys(given, _VALENTE, f"{where}.valente")
        params = {**_VALENTE_DEFAULTS, **{k: _real(v, f"{where}.valente.{k}") for k, v in given.items()}}
    else:
        params = _overlap_parameters(data["overlaps"], rank, inputs, outputs, f"{where}.overlaps")
    return PopulationSpec(fraction=fraction, form=form, parameters=params, name=str(data.get("name", "")))


def _population_to_dict(spec: DesignSpec, population: PopulationSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"fraction": population.fraction}
    if population.name:
        out = {"name": population.name, **out}
    p = population.parameters
    if population.form == "valente":
        out["valente"] = {k: p[k] for k in _VALENTE if k in p}
    elif population.form == "gaussian":
        mean, cov = population_moments(spec, population)
        out["means"] = mean.numpy().tolist()
        out["covariance"] = cov.numpy().tolist()
    else:
        R, n_in, n_out = spec.rank, spec.inputs, spec.outputs
        block: dict[str, Any] = {"overlaps": [[p.get(f"overlaps:{r},{s}", 0.0) for s in range(R)] for r in range(R)]}
        for key in ("n_std", "m_std"):
            if key in p:
                block[key] = p[key]
        for key, length in (("n_mean", R), ("m_mean", R), ("input_std", n_in)):
            if any(f"{key}:{k}" in p for k in range(length)):
                block[key] = [p.get(f"{key}:{k}", 0.0) for k in range(length)]
        if any(k.startswith("readout:") for k in p):
            block["readout"] = [[p.get(f"readout:{r},{o}", 1.0 if r == o else 0.0) for o in range(n_out)] for r in range(R)]
        out["overlaps"] = block
    return out


def spec_from_dict(data: Any, *, source: str = "spec") -> DesignSpec:
    """A DesignSpec from its JSON form (see the module docstring and the gallery files).

    Every error is an RnnscopeError naming ``source`` (the file) and the field.
    """
    try:
        _check_keys(data, _SPEC_KEYS, "spec")
        for key in ("rank", "inputs", "outputs", "populations"):
            if key not in data:
                raise RnnscopeError(f"{key}: missing")
        rank, inputs, outputs = data["rank"], data["inputs"], data["outputs"]
        for key, value in (("rank", rank), ("inputs", inputs), ("outputs", outputs)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise RnnscopeError(f"{key}: expected an integer >= 1, got {value!r}")
        pops = data["populations"]
        if not isinstance(pops, list) or not pops:
            raise RnnscopeError("populations: expected a non-empty list")
        populations = tuple(
            _population_from_dict(p, rank, inputs, outputs, f"populations[{i}]") for i, p in enumerate(pops)
        )
        task = None
        if data.get("task") is not None:
            _check_keys(data["task"], ("name", "options"), "task")
            task = TaskChoice(name=data["task"].get("name"), options=data["task"].get("options", {}))
            task_inputs = len(task.make().input_names)
            if task_inputs != inputs:
                raise RnnscopeError(f"task: {task.name!r} has {task_inputs} inputs, the spec {inputs}")
        free = data.get("free", [])
        if not isinstance(free, list) or not all(isinstance(f, str) for f in free):
            raise RnnscopeError(f"free: expected a list of parameter names, got {free!r}")
        claims = data.get("claims", {})
        if not isinstance(claims, Mapping):
            raise RnnscopeError(f"claims: expected an object, got {claims!r}")
        return DesignSpec(
            rank=rank, inputs=inputs, outputs=outputs, populations=populations,
            noise_std=data.get("noise_std", 0.05), task=task, name=str(data.get("name", "")),
            description=str(data.get("description", "")), reference=str(data.get("reference", "")),
            free=tuple(_renamed(f) for f in free), claims=claims,
        )
    except RnnscopeError as exc:
        if str(exc).startswith(f"{source}: "):
            raise
        raise RnnscopeError(f"{source}: {exc}") from None


def load_spec(path: str | Path) -> DesignSpec:
    """Read a specification from a JSON file (or YAML, when PyYAML is installed and the name ends in .yaml/.yml)."""
    path = Path(path)
    text = io.read_text(path, expected="a JSON or YAML specification (or a gallery name)")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise RnnscopeError(f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write the spec as JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RnnscopeError(f"{path}: not valid YAML ({exc})") from None
    else:
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise RnnscopeError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        except ValueError as exc:
            raise RnnscopeError(f"{path}: not valid JSON ({exc})") from None
    return spec_from_dict(data, source=str(path))
