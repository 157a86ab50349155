"""``rnnscope reproduce``: published studies as one resumable command. Parse, call
``rnnscope.sweep.reproduce_dubreuil2022``, save its figures, print."""

from __future__ import annotations

import json
from typing import Any

import click

from rnnscope._cli_common import emit, json_option
from rnnscope.errors import RnnscopeError

__all__ = ["reproduce_group"]


@click.group("reproduce")
def reproduce_group() -> None:
    """Reproduce a published study: train, analyse, and compare with the paper's values."""


def _tasks(value: str) -> tuple[str, ...]:
    tasks = tuple(t.strip() for t in value.split(",") if t.strip())
    if not tasks:
        raise RnnscopeError(f"--tasks: expected comma-separated task names, got {value!r}")
    return tasks


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("draws=200", "retrain=true")`` -> ``{"draws": 200, "retrain": True}`` (a value is JSON if it parses as
    JSON, else a string); the analyses check names and values."""
    options: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise RnnscopeError(f"--analysis-option: expected NAME=VALUE, got {pair!r}")
        try:
            value = json.loads(text, parse_constant=_no_constant)  # NaN/Infinity stay strings: refused later
        except ValueError:
            value = text
        options[name.strip()] = value
    return options


@reproduce_group.command("dubreuil2022")
@click.option("--networks", type=click.IntRange(1), default=100, show_default=True, help="Networks per task.")
@click.option("--tasks", default="rdm,romo,raposo,mante,dms", show_default=True, help="Comma-separated tasks.")
@click.option("--size", type=click.IntRange(1), default=512, show_default=True, help="Neurons per network.")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="Epochs of every training stage (default: the recipe's); small values for a quick check.")
@click.option("--full", is_flag=True, help="Also the minimal rank and minimal number of populations (expensive).")
@click.option("--analysis-option", "analysis_options", multiple=True, metavar="NAME=VALUE",
              help="An option of the analyses (repeatable), e.g. draws=200; names: rnnscope.sweep.ANALYSIS_OPTIONS.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler (default: a LocalCluster).")
@click.option("--workers", type=click.IntRange(1), default=None, help="Worker processes (default: the CPUs).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Study directory (resumable).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def dubreuil2022_command(networks, tasks, size, epochs, full, analysis_options, executor, scheduler, workers, out,
                         quiet, as_json) -> None:
    """Dubreuil, Valente et al. 2022: networks per task trained with the paper's recipes, resampled from one
    Gaussian, tested with ePAIRS; the table, comparison.json/.md and figures/ in OUT beside the paper's values.
    Re-running the same command continues the study."""
    from pathlib import Path

    from rnnscope import io
    from rnnscope.sweep import plot_accuracy_comparison, plot_epairs_c, reproduce_dubreuil2022

    result = reproduce_dubreuil2022(out, networks=networks, tasks=_tasks(tasks), size=size, epochs=epochs, full=full,
                                    analysis_options=_options(analysis_options), executor=executor, scheduler=scheduler, workers=workers,
                                    progress=not (quiet or as_json))
    figures = Path(out) / "figures"
    saved = []
    for task in result.comparison.tasks:
        saved.append(io.save_figure(plot_epairs_c(task), figures / f"epairs_c_{task.task}.png"))
    saved.append(io.save_figure(plot_accuracy_comparison(result.comparison), figures / "accuracy.png"))
    data = result.to_dict()
    data["files"] += [str(p) for p in saved]

    def text(d):
        sweep = d["sweep"]
        return "\n".join([
            result.comparison.to_markdown(result.notes).rstrip(),
            "",
            f"networks: {sweep['done']} done, {sweep['failed']} failed, {sweep['pending']} pending "
            f"({d['seconds']:.1f} s)",
            f"table, comparison and figures -> {d['directory']}",
        ])

    emit(data, as_json, text)
