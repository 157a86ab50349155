"""The built-in tasks by name, user tasks the user allowed, and building a task from options.

Files are data, never code: a name read from a run directory or a specification is looked up in this registry and
never imported. A user's own task (``package.module:Class``) enters the registry only from the user's hands: named on
the command line (``--task module:Class``, ``--allow-task module:Class``, through ``import_task``) or passed in
Python (``register_task``).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from rnnscope.errors import RnnscopeError
from rnnscope.tasks._base import Task, TaskBase
from rnnscope.tasks._decision import ContextDependent, Multisensory, RandomDots
from rnnscope.tasks._memory import DelayedMatchToSample, ParametricWorkingMemory
from rnnscope.tasks._neurogym import NeurogymTask
from rnnscope.tasks._recipes import list_recipes
from rnnscope.tasks._universality import ContextIntegration, FlipFlop, SineWave

__all__ = ["TASKS", "make_task", "parse_options", "list_tasks", "task_spec", "register_task", "import_task", "task_path"]

TASKS: Mapping[str, type[TaskBase]] = types.MappingProxyType(
    {cls.name: cls for cls in (RandomDots, ParametricWorkingMemory, Multisensory, ContextDependent, DelayedMatchToSample,
                                FlipFlop, SineWave, ContextIntegration)}
)
# rnnscope's own adapters: trusted by name (and by the import path that runs of version 0.1 stored)
_ADAPTERS: Mapping[str, type] = types.MappingProxyType(
    {"neurogym": NeurogymTask, "rnnscope.tasks._neurogym:NeurogymTask": NeurogymTask}
)
# The one piece of process-wide state: the user tasks this process was allowed to rebuild (see module docstring).
_ALLOWED: dict[str, type] = {}
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def task_path(cls: type) -> str:
    """``package.module:Class``, the name under which a user task is stored and allowed."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _check_task_class(cls: Any, name: str) -> type:
    """``cls`` must be a class with the Task protocol's members; nothing of it is called here."""
    if not isinstance(cls, type):
        raise RnnscopeError(f"task: {name!r} is not a class (a task is a class with name, dt, input_names, "
                            f"output_names and sample)")
    missing = [member for member in ("name", "input_names", "output_names", "sample") if not hasattr(cls, member)]
    if missing or not callable(cls.sample):
        raise RnnscopeError(f"task: {name!r} does not follow the Task protocol (missing {', '.join(missing) or 'sample'})")
    return cls


def register_task(cls: type) -> str:
    """Allow run directories and specification files to name the user task ``cls`` (by ``task_path(cls)``) in
    this process; returns that name. Built-in tasks need no registration."""
    path = task_path(_check_task_class(cls, getattr(cls, "__qualname__", repr(cls))))
    _ALLOWED[path] = cls
    return path


def import_task(path: str) -> type:
    """Import the user task ``package.module:Class`` that the user named on the command line, check that it is a
    task class and register it. Never call this with a name read from a file."""
    if not isinstance(path, str) or not _PATH.match(path):
        raise RnnscopeError(f"task: expected a built-in task or 'package.module:Class', got {path!r}")
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise RnnscopeError(f"task: cannot import {path!r} ({exc})") from None
    register_task(_check_task_class(obj, path))
    _ALLOWED[path] = obj  # also under the name the user typed
    return obj


def _task_class(name: Any) -> type:
    if isinstance(name, type):
        return _check_task_class(name, task_path(name))
    if not isinstance(name, str):
        raise RnnscopeError(f"task: expected a task name (a string), got {name!r}")
    for registry in (TASKS, _ADAPTERS, _ALLOWED):
        if name in registry:
            return registry[name]
    if ":" in name:
        raise RnnscopeError(
            f"task: {name!r} is a user task, and a name read from a file is never imported; if you trust it, allow "
            f"it with --allow-task {name} (rnnscope.tasks.register_task in Python)"
        )
    raise RnnscopeError(f"task: unknown task {name!r} (known: {', '.join(TASKS)}, or an allowed 'module:Class')")


def _convert(name: str, text: str, annotation: Any) -> Any:
    """Parse the string ``text`` as a value of type ``annotation`` (float, int, bool, str, tuple[float, ...])."""
    origin = typing.get_origin(annotation)
    try:
        if origin is tuple:
            (item_type, *_rest) = typing.get_args(annotation) or (float,)
            return tuple(item_type(part) for part in text.split(",") if part.strip())
        if annotation is bool:
            if text.lower() in ("1", "true", "yes"):
                return True
            if text.lower() in ("0", "false", "no"):
                return False
            raise ValueError(text)
        if annotation in (int, float, str):
            return annotation(text)
    except ValueError:
        raise RnnscopeError(f"{name}: cannot read {text!r} as {getattr(annotation, '__name__', annotation)}") from None
    return text


def parse_options(task: str, pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["cue_amplitude=0.5", ...]`` -> typed options for ``task``; unknown names are an error."""
    cls = _task_class(task)
    options: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise RnnscopeError(f"task option: expected NAME=VALUE, got {pair!r}")
        annotation = cls.option_type(name) if hasattr(cls, "option_type") else str
        options[name] = _convert(name, text.strip(), annotation)
    return options


def _json_value(name: str, value: Any) -> Any:
    """A JSON-like option value of unknown type: scalars and lists of them, numbers finite."""
    if isinstance(value, (list, tuple)):
        return tuple(_json_value(f"{name}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
        raise RnnscopeError(f"{name}: must be finite, got {value!r}")
    if value is None or isinstance(value, (str, bool, numbers.Real)):
        return value
    raise RnnscopeError(f"{name}: expected a number, string, boolean or list, got {type(value).__name__}")


def _typed_value(name: str, value: Any, annotation: Any) -> Any:
    """``value`` (from JSON or Python) checked against the field's annotation: float, int, bool, str, tuples of
    these, ``X | None``. Numbers must be finite."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _typed_value(name, value, inner[0]) if len(inner) == 1 else _json_value(name, value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise RnnscopeError(f"{name}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed_value(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise RnnscopeError(f"{name}: expected {len(args)} values, got {len(value)}")
        return tuple(_typed_value(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args or [Any] * len(value), strict=True)))
    if annotation is bool:
        if not isinstance(value, bool):
            raise RnnscopeError(f"{name}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise RnnscopeError(f"{name}: expected an integer, got {value!r}")
        return int(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise RnnscopeError(f"{name}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise RnnscopeError(f"{name}: must be finite, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise RnnscopeError(f"{name}: expected a string, got {value!r}")
        return value
    return _json_value(name, value)


def make_task(name: str | type, options: Mapping[str, Any] | None = None) -> Task:
    """The task ``name`` with ``options``: a built-in name, an allowed user task's ``module:Class`` (see
    ``register_task`` and ``import_task``), or a task class itself. Options are checked against the task's
    parameters (names, types, finite numbers) before the task is built; a name is never imported here."""
    cls = _task_class(name)
    label = name if isinstance(name, str) else task_path(cls)
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise RnnscopeError(f"task.options: expected a mapping of option names to values, got {type(options).__name__}")
    if dataclasses.is_dataclass(cls):
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(str(k) for k in set(options) - set(fields))
        if unknown:
            raise RnnscopeError(f"{unknown[0]}: not an option of task {label!r} (options: {', '.join(sorted(fields))})")
        hints = typing.get_type_hints(cls)
        checked = {key: _typed_value(key, value, hints.get(key, Any)) for key, value in options.items()}
    else:
        checked = {str(key): _json_value(str(key), value) for key, value in options.items()}
    try:
        task = cls(**checked)
    except TypeError as exc:
        raise RnnscopeError(f"task {label!r}: {exc}") from None
    if not isinstance(task, Task):
        raise RnnscopeError(f"task: {label!r} does not follow the Task protocol (name, dt, input_names, output_names, sample)")
    return task


def task_spec(task: Task) -> dict[str, Any]:
    """What a run directory stores to rebuild ``task``: its registry name and options (a user task is stored as
    ``module:Class`` and must be allowed again to be rebuilt)."""
    cls = type(task)
    if task.name in TASKS and cls is TASKS[task.name]:
        name = task.name
    elif cls is NeurogymTask:
        name = "neurogym"
    else:
        name = task_path(cls)
    options = task.options() if hasattr(task, "options") else {}
    return {"name": name, "options": options}


def list_tasks() -> list[dict[str, Any]]:
    """Every built-in task with its inputs, outputs, parameters (defaults) and training recipes, JSON-ready."""
    return [{**cls().describe(), "recipes": list_recipes(name)} for name, cls in TASKS.items()]
