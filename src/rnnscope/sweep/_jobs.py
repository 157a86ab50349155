"""What a sweep job does, in whichever process runs it (a local worker, a Dask worker, this process): train the
networks of one unit of work (one seed, or a group of seeds trained as one ensemble), publish each run directory
atomically, analyse each network and write its row.

Layout of a sweep directory ``DIR``::

    DIR/spec.json            the normalised specification and its job ids
    DIR/runs/<job>/          one finished run directory per network (with sweep_job.json: its training summary)
    DIR/runs/.<job>.*.partial  a run being trained (moved to runs/<job> by one rename once complete)
    DIR/rows/<job>.json      the network's row: configuration, training results, analyse_network's columns
    DIR/failed/<job>.json    the one-line error of a job that failed (removed once it succeeds)
    DIR/table.parquet, DIR/table.csv   every row, rebuilt from rows/ at the end of a sweep

A job is done when its row is valid and its run directory holds a network; anything else is redone.
"""

from __future__ import annotations

import math
import os
import secrets
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnscope import io
from rnnscope._validation import json_ready
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.sweep._spec import Configuration, SweepJob, canonical_json

__all__ = ["SPEC_NAME", "SWEEP_JOB", "Unit", "read_row", "run_unit", "write_failure", "partial_name", "one_line"]

SPEC_NAME = "spec.json"
SWEEP_JOB = "sweep_job.json"  # inside each published run directory: the job id and its training summary
_PARTIAL = ".partial"


@dataclass(frozen=True)
class Unit:
    """The networks one worker call handles: ``jobs`` of one configuration, trained one by one, or all together
    as one ensemble (``ensemble=True``: the group is fixed by the spec, so each member's result is too).
    allowed: the user tasks (``module:Class``) the sweep's user allowed, imported again in the worker."""

    configuration: Configuration
    jobs: tuple[SweepJob, ...]
    ensemble: bool = False
    allowed: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.jobs[0].id + (f"+{len(self.jobs) - 1}" if len(self.jobs) > 1 else "")


def one_line(exc: BaseException) -> str:
    """An exception as one line: RnnscopeError's message, else ``Type: message``."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, RnnscopeError) else f"{type(exc).__name__}: {text}"[:500]


def partial_name(job_id: str) -> str:
    """A fresh temporary name for a run being trained (unique per attempt, so two attempts never share one)."""
    return f".{job_id}.{os.getpid()}-{secrets.token_hex(4)}{_PARTIAL}"


def is_partial(name: str) -> bool:
    return name.startswith(".") and name.endswith(_PARTIAL)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value))


def read_row(root: Path, job_id: str) -> dict[str, Any] | None:
    """The row of a finished job, or None when it must be (re)done: no row, a corrupt or foreign one, or no
    network in its run directory."""
    path = root / "rows" / f"{job_id}.json"
    if not path.is_file():
        return None
    try:
        row = io.read_json_file(path, expected="a sweep row")
    except RnnscopeError:
        return None
    if not isinstance(row, dict) or row.get("job") != job_id or not all(_scalar(v) for v in row.values()):
        return None
    run = root / "runs" / job_id
    if not ((run / io.CONFIG_NAME).is_file() and (run / io.WEIGHTS_NAME).is_file() and (run / SWEEP_JOB).is_file()):
        return None
    return row


def write_failure(root: Path, job: SweepJob, message: str) -> None:
    io.write_json(root / "failed" / f"{job.id}.json", {"job": job.id, "seed": job.seed, "error": message})


def _summary(job: SweepJob, result: Any, seconds: float) -> dict[str, Any]:
    """What a row keeps of a TrainingResult (converged_epoch: the epoch where ``train`` alone stops, None if the
    target was never met)."""
    history, best = result.history, result.best_epoch
    accuracy = float(history[best]["validation_accuracy"]) if history else None
    return {"job": job.id, "seed": job.seed, "validation_accuracy": json_ready(accuracy), "best_epoch": best,
            "epochs": len(history), "converged_epoch": result.converged_epoch, "train_seconds": seconds}


def _reusable(root: Path, job: SweepJob) -> dict[str, Any] | None:
    """The training summary of a published run directory that holds this job's network; an invalid one (half
    written by hand, corrupt weights, another seed) is removed and None returned."""
    run_dir = root / "runs" / job.id
    if not run_dir.exists():
        return None
    try:
        summary = io.read_json_file(run_dir / SWEEP_JOB, expected="a sweep job summary")
        run = io.load_run(run_dir)
        if not isinstance(summary, dict) or summary.get("job") != job.id or run.seed != job.seed:
            raise RnnscopeError(f"{run_dir}: not this job's network")
        return summary
    except RnnscopeError:
        io.remove_tree(run_dir)
        return None


def _recipe(configuration: Configuration):
    from rnnscope.tasks import recipe_for
    from rnnscope.training import adapt_recipe

    return adapt_recipe(recipe_for(configuration.task, configuration.recipe), **configuration.overrides())


def _train_one(root: Path, configuration: Configuration, job: SweepJob) -> dict[str, Any]:
    from rnnscope.training import train_recipe

    recipe = _recipe(configuration)
    tmp = root / "runs" / partial_name(job.id)
    began = time.perf_counter()
    try:
        result = train_recipe(configuration.task, recipe, size=configuration.size, rng=job.seed,
                              task_options=dict(configuration.task_options), out=tmp, progress=False)
        summary = _summary(job, result, time.perf_counter() - began)
        io.write_json(tmp / SWEEP_JOB, summary)
        io.publish_directory(tmp, root / "runs" / job.id)
    finally:
        io.remove_tree(tmp)
    return summary


def _train_group(root: Path, configuration: Configuration, jobs: Sequence[SweepJob],
                 publish: set[str]) -> dict[str, dict[str, Any]]:
    """The whole group as one ensemble on the fused kernel (the same result whichever members are missing);
    only the members in ``publish`` are moved into place."""
    from rnnscope.training import TrainingConfig, recipe_plan, train_ensemble

    recipe = _recipe(configuration)
    model, stages = recipe_plan(configuration.task, recipe, size=configuration.size,
                                task_options=dict(configuration.task_options))
    config = stages[0].config
    assert isinstance(config, TrainingConfig)
    tmp = root / "runs" / partial_name(jobs[0].id)
    began = time.perf_counter()
    summaries = {}
    try:
        result = train_ensemble(stages[0].task, model, config, rng=[job.seed for job in jobs], out=tmp,
                                progress=False)
        seconds = (time.perf_counter() - began) / len(jobs)
        for k, (job, member) in enumerate(zip(jobs, result.results, strict=True)):
            if job.id not in publish:
                continue
            summaries[job.id] = _summary(job, member, seconds)
            io.write_json(tmp / f"net{k:02d}" / SWEEP_JOB, summaries[job.id])
            io.publish_directory(tmp / f"net{k:02d}", root / "runs" / job.id)
    finally:
        io.remove_tree(tmp)
    return summaries


def _row(configuration: Configuration, job: SweepJob, summary: dict[str, Any], recipe: Any) -> dict[str, Any]:
    """The configuration's columns (effective values of the recipe used), then the training results."""
    last = recipe.stages[-1]
    return {
        "job": job.id, "configuration": job.index, "task": configuration.task,
        "task_options": canonical_json(dict(configuration.task_options)), "recipe": configuration.recipe,
        "rank": recipe.rank, "size": configuration.size, "full_rank": configuration.full_rank, "seed": job.seed,
        "lr": last.learning_rate(configuration.size), "max_epochs": recipe.epochs, "noise_std": recipe.noise_std,
        "batch_size": recipe.batch_size, "train_trials": recipe.train_trials, "target_accuracy": last.target_accuracy,
        "ensemble": configuration.ensemble, "analyses": ",".join(configuration.analyses),
        "analysis_options": canonical_json(dict(configuration.analysis_options)),
        **{k: summary.get(k) for k in ("validation_accuracy", "best_epoch", "epochs", "converged_epoch",
                                       "train_seconds")},
    }


def _analyse(root: Path, configuration: Configuration, job: SweepJob, summary: dict[str, Any], recipe: Any) -> None:
    from rnnscope.sweep._analyses import analyse_network

    began = time.perf_counter()
    columns = analyse_network(root / "runs" / job.id, configuration.analyses, rng=job.seed,
                              options=dict(configuration.analysis_options))
    row = {**_row(configuration, job, summary, recipe), **columns,
           "analysis_seconds": time.perf_counter() - began}
    row = {k: json_ready(v) for k, v in row.items()}
    io.write_json(root / "rows" / f"{job.id}.json", row)
    (root / "failed" / f"{job.id}.json").unlink(missing_ok=True)


def run_unit(root: str, unit: Unit, threads: int = 1) -> dict[str, str]:
    """Do the unfinished jobs of ``unit`` in sweep directory ``root``: job id -> 'done' or 'failed' (the error
    is in ``root/failed/<job>.json``). A job's failure does not stop the others. Torch runs ``threads`` threads.
    A network that misses its recipe's target is no failure (its row says so: ``converged_epoch`` None)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _run_unit(root, unit, threads)


def _run_unit(root: str, unit: Unit, threads: int) -> dict[str, str]:
    import torch

    from rnnscope.tasks import import_task

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    root_path = Path(root)
    for name in unit.allowed:  # the sweep's user allowed these tasks (checked by the driver) before submitting
        import_task(name)
    outcome = {job.id: "done" for job in unit.jobs if read_row(root_path, job.id) is not None}
    todo = [job for job in unit.jobs if job.id not in outcome]
    if not todo:
        return outcome
    configuration = unit.configuration
    summaries: dict[str, dict[str, Any]] = {}
    for job in todo:
        found = _reusable(root_path, job)
        if found is not None:
            summaries[job.id] = found
    missing = [job for job in todo if job.id not in summaries]
    try:
        recipe = _recipe(configuration)
    except Exception as exc:  # noqa: BLE001 -- one job's failure is recorded, the sweep goes on
        for job in todo:
            write_failure(root_path, job, one_line(exc))
            outcome[job.id] = "failed"
        return outcome
    if missing and unit.ensemble:
        try:
            summaries.update(_train_group(root_path, configuration, unit.jobs, {job.id for job in missing}))
        except Exception as exc:  # noqa: BLE001
            for job in missing:
                write_failure(root_path, job, one_line(exc))
                outcome[job.id] = "failed"
    elif missing:
        for job in missing:
            try:
                summaries[job.id] = _train_one(root_path, configuration, job)
            except Exception as exc:  # noqa: BLE001
                write_failure(root_path, job, one_line(exc))
                outcome[job.id] = "failed"
    for job in todo:
        if job.id not in summaries:
            continue
        try:
            _analyse(root_path, configuration, job, summaries[job.id], recipe)
            outcome[job.id] = "done"
        except Exception as exc:  # noqa: BLE001
            write_failure(root_path, job, one_line(exc))
            outcome[job.id] = "failed"
    return outcome
