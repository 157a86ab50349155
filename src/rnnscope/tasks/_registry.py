"""The built-in tasks by name, building a task from string options, and user tasks from ``module:Class``."""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Mapping
from typing import Any

from rnnscope.errors import RnnscopeError
from rnnscope.tasks._base import Task, TaskBase
from rnnscope.tasks._decision import ContextDependent, Multisensory, RandomDots
from rnnscope.tasks._memory import DelayedMatchToSample, ParametricWorkingMemory

__all__ = ["TASKS", "make_task", "parse_options", "list_tasks", "task_spec"]

TASKS: Mapping[str, type[TaskBase]] = types.MappingProxyType(
    {cls.name: cls for cls in (RandomDots, ParametricWorkingMemory, Multisensory, ContextDependent, DelayedMatchToSample)}
)


def _task_class(name: str) -> type:
    if name in TASKS:
        return TASKS[name]
    if ":" in name:  # a user's task: "package.module:ClassName"
        module_name, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise RnnscopeError(f"task: cannot import {name!r} ({exc})") from None
        return cls
    raise RnnscopeError(f"task: unknown task {name!r} (known: {', '.join(TASKS)}, or 'module:Class')")


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


def make_task(name: str, options: Mapping[str, Any] | None = None) -> Task:
    """The task called ``name`` (built-in, or ``module:Class`` for a user's task) with ``options``."""
    cls = _task_class(name)
    options = dict(options or {})
    if dataclasses.is_dataclass(cls):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise RnnscopeError(f"{unknown[0]}: not an option of task {name!r} (options: {', '.join(sorted(known))})")
        for key, value in options.items():  # JSON turns tuples into lists
            if isinstance(value, list):
                options[key] = tuple(value)
    try:
        task = cls(**options)
    except TypeError as exc:
        raise RnnscopeError(f"task {name!r}: {exc}") from None
    if not isinstance(task, Task):
        raise RnnscopeError(f"task: {name!r} does not follow the Task protocol (name, dt, input_names, output_names, sample)")
    return task


def task_spec(task: Task) -> dict[str, Any]:
    """What a run directory stores to rebuild ``task``: its name (or import path) and options."""
    name = task.name if task.name in TASKS and type(task) is TASKS[task.name] else f"{type(task).__module__}:{type(task).__qualname__}"
    options = task.options() if hasattr(task, "options") else {}
    return {"name": name, "options": options}


def list_tasks() -> list[dict[str, Any]]:
    """Every built-in task with its inputs, outputs and parameters (defaults), JSON-ready."""
    return [cls().describe() for cls in TASKS.values()]
