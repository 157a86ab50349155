"""Sweep specifications: a grid or list of configurations (task, recipe, architecture, seeds, analyses), validated
field by field, expanded into jobs whose identity is a stable hash of what they compute.

A specification is data (JSON, or YAML by suffix): task names are looked up in ``rnnscope.tasks``' registry, never
imported. The simplest one is one configuration whose list-valued fields expand to a grid::

    {"task": "rdm", "rank": 1, "size": [64, 128], "epochs": 2, "seeds": [0, 1, 2]}

or a list of configurations, each of which may expand, the fields beside ``configurations`` being their defaults::

    {"seeds": [0, 1], "recipe": "fast", "configurations": [{"task": "rdm"}, {"task": "mante", "size": 256}]}
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnscope.errors import RnnscopeError
from rnnscope.io import read_json_file, read_text

__all__ = ["CONFIGURATION_FIELDS", "Configuration", "SweepJob", "SweepSpec", "parse_spec", "load_spec",
           "canonical_json", "first_difference"]

MAX_SEED = 2**63 - 1
# field -> default; fields marked in _GRID may hold a list, which expands to one configuration per value
CONFIGURATION_FIELDS: Mapping[str, Any] = {
    "task": None, "task_options": {}, "recipe": None, "rank": None, "size": 512, "full_rank": False, "epochs": None,
    "lr": None, "noise_std": None, "batch_size": None, "train_trials": None, "target_accuracy": None,
    "seeds": [0], "analyses": ["accuracy"], "analysis_options": {}, "ensemble": 1,
}
_GRID = ("task", "recipe", "rank", "size", "full_rank", "epochs", "lr", "noise_std", "batch_size", "train_trials",
         "target_accuracy")
_RECIPE_OVERRIDES = ("rank", "full_rank", "epochs", "lr", "noise_std", "batch_size", "train_trials", "target_accuracy")


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` (sorted keys, no spaces, no NaN): what job ids are hashed from."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int(value: Any, where: str, minimum: int, maximum: int = MAX_SEED) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise RnnscopeError(f"{where}: expected an int >= {minimum}, got {_got(value)}")
    return int(value)


def _number(value: Any, where: str, *, positive: bool = False, probability: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RnnscopeError(f"{where}: expected a finite number, got {_got(value)}")
    if positive and value <= 0:
        raise RnnscopeError(f"{where}: expected a number > 0, got {_got(value)}")
    if probability and not 0 <= value <= 1:
        raise RnnscopeError(f"{where}: expected a number in [0, 1], got {_got(value)}")
    if not positive and value < 0:
        raise RnnscopeError(f"{where}: expected a number >= 0, got {_got(value)}")
    return float(value)


def _plain(value: Any, where: str) -> Any:
    """A JSON-like option value: strings, booleans, None, finite numbers, and lists/objects of them."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RnnscopeError(f"{where}: must be finite, got {_got(value)}")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {_key(k, where): _plain(v, f"{where}.{k}") for k, v in value.items()}
    raise RnnscopeError(f"{where}: expected a number, string, boolean, list or object, got {_got(value)}")


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key:
        raise RnnscopeError(f"{where}: keys must be non-empty strings, got {_got(key)}")
    return key


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise RnnscopeError(f"{where}: expected an object, got {_got(value)}")
    return _plain(dict(value), where)


def _check_scalar(field: str, value: Any, where: str) -> Any:
    """One value of a grid field."""
    if field == "task":
        if not isinstance(value, str) or not value:
            raise RnnscopeError(f"{where}: expected a task name (a string), got {_got(value)}")
        return value
    if field == "recipe":
        if value is not None and value not in ("paper", "fast", "default"):
            raise RnnscopeError(f"{where}: expected 'paper', 'fast' or null (the task's recommended recipe), "
                                f"got {_got(value)}")
        return value
    if field == "full_rank":
        if not isinstance(value, bool):
            raise RnnscopeError(f"{where}: expected true or false, got {_got(value)}")
        return value
    if value is None and field != "size":
        return None
    if field in ("rank", "size", "epochs", "batch_size", "train_trials"):
        return _int(value, where, 1)
    if field == "lr":
        return _number(value, where, positive=True)
    if field == "target_accuracy":
        return _number(value, where, probability=True)
    return _number(value, where)  # noise_std


@dataclass(frozen=True)
class Configuration:
    """One point of the grid: every field a scalar except ``seeds`` (distinct ints), ``analyses`` (names) and the
    option mappings. recipe: resolved to the name of the recipe used ('paper', 'fast' or 'default'). The other
    overrides (None: the recipe's) are applied with ``rnnscope.training.adapt_recipe``. ensemble: networks of one
    configuration trained together on the fused kernel, in groups of this many seeds (1: one job per seed)."""

    task: str
    task_options: Mapping[str, Any]
    recipe: str
    rank: int | None
    size: int
    full_rank: bool
    epochs: int | None
    lr: float | None
    noise_std: float | None
    batch_size: int | None
    train_trials: int | None
    target_accuracy: float | None
    seeds: tuple[int, ...]
    analyses: tuple[str, ...]
    analysis_options: Mapping[str, Any]
    ensemble: int

    def overrides(self) -> dict[str, Any]:
        """The keyword arguments of ``adapt_recipe``."""
        return {name: getattr(self, name) for name in _RECIPE_OVERRIDES}

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in CONFIGURATION_FIELDS}
        data.update(task_options=dict(self.task_options), seeds=list(self.seeds), analyses=list(self.analyses),
                    analysis_options=dict(self.analysis_options))
        return data


@dataclass(frozen=True)
class SweepJob:
    """One network of a sweep: configuration ``index`` trained with ``seed``. id: a readable name plus a short
    hash of the canonical JSON of the configuration (without its seed list) and the seed, so the same network
    always has the same id and a retried job computes the same thing."""

    id: str
    index: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "configuration": self.index, "seed": self.seed}


@dataclass(frozen=True)
class SweepSpec:
    """A normalised sweep specification: the expanded configurations. ``jobs()``: every network, in order."""

    configurations: tuple[Configuration, ...]

    def jobs(self) -> tuple[SweepJob, ...]:
        out = []
        for index, configuration in enumerate(self.configurations):
            body = {k: v for k, v in configuration.to_dict().items() if k != "seeds"}
            rank = "full" if configuration.full_rank else configuration.rank
            label = re.sub(r"[^A-Za-z0-9_.]+", "_", configuration.task)
            for seed in configuration.seeds:
                digest = hashlib.sha256(canonical_json({**body, "seed": seed}).encode()).hexdigest()[:8]
                out.append(SweepJob(f"{label}-r{rank}-n{configuration.size}-s{seed}-{digest}", index, seed))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {"configurations": [c.to_dict() for c in self.configurations]}


def _resolve(raw: dict[str, Any], where: str) -> Configuration:
    """A grid point (scalars checked) -> a Configuration, the task, its options and the recipe checked."""
    from rnnscope.sweep._analyses import check_analyses, check_analysis_options
    from rnnscope.tasks import make_task, recipe_for
    from rnnscope.training import adapt_recipe

    def fail(field: str, exc: RnnscopeError) -> RnnscopeError:
        message = str(exc)
        if message.startswith(where):
            return RnnscopeError(message)
        if message.startswith(field):
            return RnnscopeError(f"{where}.{message}")
        return RnnscopeError(f"{where}.{field}: {message}")

    try:
        make_task(raw["task"], raw["task_options"])
    except RnnscopeError as exc:
        message = str(exc)
        if message.startswith("task"):
            raise fail("task", exc) from None
        raise RnnscopeError(f"{where}.task_options.{message}") from None
    try:
        recipe = recipe_for(raw["task"], raw["recipe"])
    except RnnscopeError as exc:
        raise fail("recipe", exc) from None
    overrides = {name: raw[name] for name in _RECIPE_OVERRIDES}
    try:
        adapted = adapt_recipe(recipe, **overrides)
    except RnnscopeError as exc:
        raise fail(str(exc).split(":", 1)[0] if str(exc).split(":", 1)[0] in overrides else "recipe", exc) from None
    try:
        analyses = tuple(check_analyses(raw["analyses"]))
    except RnnscopeError as exc:
        raise fail("analyses", exc) from None
    try:
        check_analysis_options(raw["analysis_options"])
    except RnnscopeError as exc:
        raise fail("analysis_options", exc) from None
    if raw["ensemble"] > 1 and len(adapted.stages) > 1:
        raise RnnscopeError(f"{where}.ensemble: recipe {recipe.name!r} of {raw['task']!r} has "
                            f"{len(adapted.stages)} stages; only a one-stage recipe trains networks as an ensemble; "
                            f"use ensemble 1")
    rank = None if raw["full_rank"] else adapted.rank  # the rank used, explicit, so that the same network is one job
    return Configuration(**{**raw, "recipe": recipe.name, "rank": rank, "seeds": tuple(raw["seeds"]),
                            "analyses": analyses})


def _configuration(entry: Any, defaults: Mapping[str, Any], where: str) -> list[Configuration]:
    """One entry of the spec (defaults applied) -> its grid of Configurations."""
    if not isinstance(entry, Mapping):
        raise RnnscopeError(f"{where}: expected an object (a configuration), got {_got(entry)}")
    unknown = sorted(str(k) for k in entry if k not in CONFIGURATION_FIELDS)
    if unknown:
        raise RnnscopeError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(CONFIGURATION_FIELDS)})")
    values = {**CONFIGURATION_FIELDS, **defaults, **entry}
    if values["task"] is None:
        raise RnnscopeError(f"{where}.task: missing (a task name, e.g. 'rdm')")
    seeds = values["seeds"]
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise RnnscopeError(f"{where}.seeds: expected a non-empty list of distinct ints >= 0, got {_got(seeds)}")
    seeds = [_int(s, f"{where}.seeds[{i}]", 0) for i, s in enumerate(seeds)]
    if len(set(seeds)) != len(seeds):
        raise RnnscopeError(f"{where}.seeds: must be distinct, got {_got(seeds)}")
    analyses = values["analyses"]
    if not isinstance(analyses, (list, tuple)) or not analyses or not all(isinstance(a, str) for a in analyses):
        raise RnnscopeError(f"{where}.analyses: expected a non-empty list of analysis names, got {_got(analyses)}")
    base = {"task_options": _mapping(values["task_options"], f"{where}.task_options"),
            "analysis_options": _mapping(values["analysis_options"], f"{where}.analysis_options"),
            "seeds": seeds, "analyses": list(analyses),
            "ensemble": _int(values["ensemble"], f"{where}.ensemble", 1)}
    axes = []
    for field in _GRID:
        value = values[field]
        if isinstance(value, (list, tuple)):
            if not value:
                raise RnnscopeError(f"{where}.{field}: an empty list gives no configuration")
            axes.append([_check_scalar(field, v, f"{where}.{field}[{i}]") for i, v in enumerate(value)])
        else:
            axes.append([_check_scalar(field, value, f"{where}.{field}")])
    return [_resolve({**base, **dict(zip(_GRID, point, strict=True))}, where) for point in itertools.product(*axes)]


def parse_spec(mapping: Mapping[str, Any] | SweepSpec, *, source: str = "spec") -> SweepSpec:
    """Validate and expand a specification (see the module docstring); every error is one line naming ``source``,
    the configuration and the field, e.g. ``spec.json: configurations[2].size: expected an int >= 1, got 'x'``."""
    if isinstance(mapping, SweepSpec):
        return mapping
    if not isinstance(mapping, Mapping):
        raise RnnscopeError(f"{source}: expected an object (a configuration, or 'configurations': [...]), got "
                            f"{_got(mapping)}")
    try:
        if "configurations" in mapping:
            entries = mapping["configurations"]
            defaults = {k: v for k, v in mapping.items() if k != "configurations"}
            unknown = sorted(str(k) for k in defaults if k not in CONFIGURATION_FIELDS)
            if unknown:
                raise RnnscopeError(f"unknown field {unknown[0]!r} (fields: configurations, "
                                    f"{', '.join(CONFIGURATION_FIELDS)})")
            if not isinstance(entries, (list, tuple)) or not entries:
                raise RnnscopeError(f"configurations: expected a non-empty list of objects, got {_got(entries)}")
            configurations = [c for i, entry in enumerate(entries)
                              for c in _configuration(entry, defaults, f"configurations[{i}]")]
        else:
            configurations = _configuration(mapping, {}, "configurations[0]")
        spec = SweepSpec(tuple(configurations))
        seen: dict[str, int] = {}
        for job in spec.jobs():
            if job.id in seen:
                raise RnnscopeError(f"configurations[{job.index}]: the network of seed {job.seed} is already in "
                                    f"configuration {seen[job.id]} (expanded grid); each network may appear once")
            seen[job.id] = job.index
    except RnnscopeError as exc:
        raise RnnscopeError(f"{source}: {exc}") from None
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    """The specification in a JSON file, or YAML (``.yaml``/``.yml``, needs pyyaml); NaN is refused."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise RnnscopeError(f"{path}: reading YAML needs pyyaml (pip install pyyaml, or 'rnnscope[yaml]'); "
                                f"or write the spec as JSON") from None
        text = read_text(path, expected="a YAML sweep specification")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RnnscopeError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:120]})") from None
    else:
        data = read_json_file(path, expected="a JSON sweep specification")
    return parse_spec(data, source=str(path))


def first_difference(stored: Any, given: Any, where: str = "") -> str | None:
    """The path of the first field where two JSON-like values differ (None: equal)."""
    if isinstance(stored, Mapping) and isinstance(given, Mapping):
        for key in [*stored, *(k for k in given if k not in stored)]:
            found = first_difference(stored.get(key), given.get(key), f"{where}.{key}" if where else str(key))
            if found is not None:
                return found
        return None
    if isinstance(stored, Sequence) and isinstance(given, Sequence) and not isinstance(stored, str) \
            and not isinstance(given, str):
        if len(stored) != len(given):
            return f"{where} ({len(stored)} entries in the stored spec, {len(given)} in this one)"
        for i, (a, b) in enumerate(zip(stored, given, strict=True)):
            found = first_difference(a, b, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    if stored != given or type(stored) is not type(given):
        return f"{where} (stored {_got(stored)}, given {_got(given)})"
    return None
