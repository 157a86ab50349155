"""What every command module shares: options, JSON output without NaN, task and input parsing."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rnnscope._validation import json_ready as finite  # JSON output never holds NaN
from rnnscope.errors import RnnscopeError

DEFAULT_MAX_POPULATIONS = 4  # populations and minimal-populations sweep the same range

__all__ = [
    "DEFAULT_MAX_POPULATIONS",
    "emit", "make_task", "json_option", "seed_option", "allow_task_option", "task_option", "input_option",
    "figure_option", "out_option", "figure_targets", "low_rank", "constant_inputs", "FIGURE_SUFFIXES",
    "P_THRESHOLDS", "aggregate", "for_each_run", "emit_runs",
]


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


# -- groups of networks: one row per run directory of an ensemble or a sweep, and the aggregate -------------------
P_THRESHOLDS = {"0.05": 0.05, "5e-4": 5e-4}  # fractions of networks below these p-values (5e-4 = 0.05 / 100, the paper's threshold)


def _is_p_value(name: str) -> bool:
    return name.rsplit(".", 1)[-1].endswith("p_value")


def _scalars(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric scalar fields of ``row`` (nested objects flattened as ``a.b``; lists and strings left out;
    booleans as 0 / 1; NaN and None left out)."""
    found: dict[str, float] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found.update(_scalars(value, f"{name}."))
        elif isinstance(value, (bool, int, float)) and math.isfinite(float(value)):
            found[name] = float(value)
    return found


def aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """Per numeric scalar field of the successful ``rows`` (those without ``error``): mean, std (population, ddof
    0), min, max and n (the rows that have the field, finite); p-value fields (named ``*p_value``) also get
    ``fraction_below_0.05`` and ``fraction_below_5e-4``. Fields in first-seen order."""
    import numpy as np

    values: dict[str, list[float]] = {}
    for row in rows:
        if "error" not in row:
            for name, value in _scalars({k: v for k, v in row.items() if k != "run"}).items():
                values.setdefault(name, []).append(value)
    result: dict[str, dict[str, float | int]] = {}
    for name, found in values.items():
        array = np.asarray(found, dtype=np.float64)
        stats: dict[str, float | int] = {"mean": float(array.mean()), "std": float(array.std()),
                                         "min": float(array.min()), "max": float(array.max()), "n": len(found)}
        if _is_p_value(name):
            stats.update({f"fraction_below_{t}": float((array < value).mean()) for t, value in P_THRESHOLDS.items()})
        result[name] = stats
    return result


def for_each_run(path: str, one_run: Callable[[str], dict[str, Any]], *, progress: bool = True,
                 desc: str = "networks") -> dict[str, Any]:
    """``one_run`` on every run directory of the group ``path`` (``rnnscope.io.run_directories``), each with the
    same options (and so the same seed: differences are the networks'). A member that fails with RnnscopeError
    gets ``{"run": path, "error": one line}`` and the others still run; when every member fails, the error is
    raised (theirs when they all give the same, else the first member's, named). Returns ``{"group", "networks": [{"run", ...}], "aggregate"}``."""
    from tqdm.auto import tqdm

    from rnnscope import io

    rows: list[dict[str, Any]] = []
    for run in tqdm(io.run_directories(path), desc=desc, unit="network", disable=not progress):
        try:
            rows.append({"run": str(run), **one_run(str(run))})
        except RnnscopeError as exc:
            rows.append({"run": str(run), "error": " ".join(str(exc).split())})
    errors = [row["error"] for row in rows if "error" in row]
    if len(errors) == len(rows):  # one cause (an option every member refuses) is said as is
        raise RnnscopeError(errors[0] if len(set(errors)) == 1 else
                            f"{path}: all {len(rows)} networks failed; the first: {errors[0]}")
    return {"group": str(path), "networks": rows, "aggregate": aggregate(rows)}


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}" if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4) else f"{value:.3f}"
    return str(value)


def group_text(data: dict[str, Any], columns: Callable[[dict[str, Any]], dict[str, Any]]) -> str:
    """A group's table: one line per network with ``columns(row)`` (its key numbers), then their aggregate across
    networks: mean +- std [min, max] and, for p-values, the numbers of networks below the thresholds."""
    rows, base = data["networks"], Path(data["group"])
    names = [str(Path(r["run"]).relative_to(base)) if Path(r["run"]) != base else str(base) for r in rows]
    shown_values = [None if "error" in r else columns(r) for r in rows]
    cells = [None if c is None else {k: _cell(v) for k, v in c.items()} for c in shown_values]
    headers = list(dict.fromkeys(k for c in cells if c for k in c))
    width = max(len("network"), *map(len, names))
    widths = {h: max(len(h), *(len(c.get(h, "")) for c in cells if c)) for h in headers}
    failed = sum("error" in r for r in rows)
    lines = [f"{data['group']}: {len(rows)} networks" + (f" ({failed} failed)" if failed else ""),
             f"{'network':{width}s}" + "".join(f"  {h:>{widths[h]}s}" for h in headers)]
    for name, row, cell in zip(names, rows, cells, strict=True):
        lines.append(f"{name:{width}s}  error: {row['error']}" if cell is None else
                     f"{name:{width}s}" + "".join(f"  {cell.get(h, '-'):>{widths[h]}s}" for h in headers))
    shown, stats_of = [], aggregate([c for c in shown_values if c is not None])
    for header in headers:
        stats = stats_of.get(header)
        if stats is not None:
            part = f"{header} {stats['mean']:.3g} +- {stats['std']:.2g} [{stats['min']:.3g}, {stats['max']:.3g}]"
            part += "".join(f", p < {t} in {round(stats[f'fraction_below_{t}'] * stats['n'])}/{stats['n']}"
                            for t in P_THRESHOLDS if f"fraction_below_{t}" in stats)
            shown.append(part)
    lines.append("aggregate: " + ("; ".join(shown) if shown else "-") + "  (every field: --json)")
    return "\n".join(lines)


def emit_runs(run: str, one_run: Callable[[str], dict[str, Any]], as_json: bool, text: Callable[[Any], str],
              columns: Callable[[dict[str, Any]], dict[str, Any]], *, desc: str = "networks") -> None:
    """Print a command's result for ``run``: a run directory as before (``one_run(run)`` through ``text``), a group
    (an ensemble or a sweep directory) as ``for_each_run``'s rows and aggregate (table: ``columns`` of each row).
    A path that is neither is ``one_run``'s own error (e.g. "config.json: missing")."""
    from rnnscope import io

    path = Path(run)
    if io.is_run_directory(path) or not path.is_dir():
        emit(one_run(run), as_json, text)
        return
    emit(for_each_run(run, one_run, progress=not as_json, desc=desc), as_json, lambda d: group_text(d, columns))
