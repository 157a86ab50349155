"""``rnnscope sweep`` and ``rnnscope sweep-status``: parse, call ``rnnscope.sweep``, print text or JSON."""

from __future__ import annotations

import click

from rnnscope._cli_common import allow_task_option, emit, json_option

__all__ = ["sweep_command", "sweep_status_command", "SWEEP_COMMANDS"]


@click.command("sweep")
@click.argument("spec", type=click.Path(dir_okay=False))
@allow_task_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Sweep directory (created, or resumed).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: worker processes on this machine; dask: a Dask cluster.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="With --executor dask: the scheduler to use (e.g. tcp://host:8786); default: a LocalCluster.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (local, or the LocalCluster's) [default: the number of CPUs].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def sweep_command(spec, out, executor, scheduler, workers, quiet, as_json) -> None:
    """Train and analyse every network of a sweep SPEC (JSON or YAML) into --out, one row each, and write
    OUT/table.parquet (and table.csv).

    \b
    The simplest SPEC is one configuration whose list-valued fields expand to a grid:
      {"task": "rdm", "recipe": "fast", "size": [64, 128], "seeds": [0, 1, 2], "analyses": ["accuracy"]}
    Re-running the same command skips finished networks and redoes failed or interrupted ones.
    """
    from rnnscope.sweep import load_spec, run_sweep

    result = run_sweep(load_spec(spec), out, executor=executor, scheduler=scheduler, workers=workers,
                       progress=not quiet)

    def text(d):
        lines = [f"sweep: {d['done']} done, {d['failed']} failed, {d['pending']} pending in {d['seconds']:.1f} s",
                 f"table: {d['table']}"]
        if d["failed"]:
            lines.append(f"errors in {d['directory']}/failed/; re-run the same command to retry them")
        return "\n".join(lines)

    emit(result.to_dict(), as_json, text)


@click.command("sweep-status")
@click.argument("directory", type=click.Path(file_okay=False))
@json_option
def sweep_status_command(directory, as_json) -> None:
    """How far the sweep in DIRECTORY is: networks done, failed, pending (reads its files only)."""
    from rnnscope.sweep import sweep_status

    status = sweep_status(directory)
    emit(status.to_dict(), as_json, lambda d: (
        f"{d['done']} done, {d['failed']} failed, {d['pending']} pending of {d['total']} networks"))


SWEEP_COMMANDS = (sweep_command, sweep_status_command)
