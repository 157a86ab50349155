"""What every command module shares: options, JSON output without NaN, task and input parsing."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rnnscope.errors import RnnscopeError

DEFAULT_MAX_POPULATIONS = 4  # populations and minimal-populations sweep the same range

__all__ = [
    "DEFAULT_MAX_POPULATIONS",
    "emit", "make_task", "json_option", "seed_option", "allow_task_option", "task_option", "input_option",
    "figure_option", "out_option", "figure_targets", "low_rank", "constant_inputs", "FIGURE_SUFFIXES",
]


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: JSON output never holds NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(finite(data), indent=2, allow_nan=False) if as_json else text(data))


def make_task(name: str, pairs: tuple[str, ...] = (), stored: dict[str, Any] | None = None):
    """The task the user named on the command line (``module:Class`` is imported: the user asked for it) with
    ``stored`` options overridden by ``--task-option`` pairs."""
    from rnnscope.tasks import import_task, make_task, parse_options

    if ":" in name and stored is None:
        import_task(name)
    return make_task(name, {**(stored or {}), **parse_options(name, pairs)})


def _allow_tasks(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> None:
    from rnnscope.tasks import import_task

    for value in values:
        import_task(value)


json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
figure_option = click.option("--figure", type=click.Path(dir_okay=False), default=None,
                             help="Write the figure to this file instead (.png, .svg or .pdf).")


def out_option(what: str):
    """--out is always a directory; figures are named inside it."""
    return click.option("--out", type=click.Path(file_okay=False), default=None,
                        help=f"Directory to write {what} into (or give --figure FILE).")


FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def figure_targets(out: str | None, figure: str | None, name: str) -> list[Path]:
    """Where a command's figure goes: ``--figure FILE``, or ``OUT/name.png`` and ``OUT/name.svg``; checked first."""
    from rnnscope import io

    if (out is None) == (figure is None):
        raise RnnscopeError("--out/--figure: give one of --out DIR (figures named inside it) or --figure FILE")
    if figure is not None:
        return [io.check_output(figure, directory=False, suffixes=FIGURE_SUFFIXES)]
    if Path(out).suffix.lower() in FIGURE_SUFFIXES:
        raise RnnscopeError(f"--out: {out} is a directory name here; to write one file give --figure {out}")
    io.check_output(out, directory=True)
    return [Path(out) / f"{name}.png", Path(out) / f"{name}.svg"]
seed_option = click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
                           help="Seed of every random draw.")
allow_task_option = click.option(
    "--allow-task", multiple=True, metavar="MODULE:CLASS", expose_value=False, is_eager=True, callback=_allow_tasks,
    help="Trust this user task: runs and specifications may name it (repeatable). Files never import code.",
)
task_option = click.option(
    "--task-option", "task_options", multiple=True, metavar="NAME=VALUE",
    help="A task parameter (repeatable); names as listed by 'rnnscope tasks --json'.",
)


def low_rank(run_dir: str):
    from rnnscope import io
    from rnnscope.models import LowRankWeights

    run = io.load_run(run_dir)
    weights = run.model.weights()
    if not isinstance(weights, LowRankWeights):
        raise RnnscopeError(f"{run_dir}: a full-rank network; latent analysis needs a low-rank one")
    return run, weights


def constant_inputs(pairs: tuple[str, ...], names: tuple[str, ...]):
    """``("motion=0.5", "1=0.2")`` -> a dense (inputs,) array; an input is named as the task names it, or by index."""
    import numpy as np

    values = np.zeros(len(names))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        index = names.index(key) if key in names else int(key) if key.isdigit() else None
        if not sep or index is None or not 0 <= index < len(names):
            raise RnnscopeError(f"--input: expected NAME=VALUE with NAME one of {', '.join(names)} (or an index "
                                f"0..{len(names) - 1}), got {pair!r}")
        try:
            values[index] = float(value)
        except ValueError:
            raise RnnscopeError(f"--input: {value!r} is not a number in {pair!r}") from None
        if not math.isfinite(values[index]):
            raise RnnscopeError(f"--input: must be finite, got {pair!r}")
    return values


input_option = click.option("--input", "input_pairs", multiple=True, metavar="NAME=VALUE",
                            help="A constant input, named as the task names it (or by index); repeatable; others are 0.")
