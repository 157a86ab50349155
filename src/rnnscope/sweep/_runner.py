"""Run a sweep: every network of a specification trained, analysed and written as one row, resumably, in local
worker processes or on a Dask cluster; then one table of all rows.

Re-running the same sweep skips the jobs whose row is there and valid and redoes the others (failed, killed,
corrupt). The sweep directory is locked while a sweep runs. A local worker process that dies takes its pool down:
the jobs it was running are retried, alone, and given up after ``RETRIES`` retries with a failed row; on Dask the
scheduler reschedules the work of a dead worker and each job is also retried ``RETRIES`` times on an error.
"""

from __future__ import annotations

import contextlib
import csv
import io as text_io
import json
import multiprocessing
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rnnscope import io
from rnnscope.errors import RnnscopeError
from rnnscope.sweep._jobs import SPEC_NAME, Unit, is_partial, one_line, read_row, run_unit, write_failure
from rnnscope.sweep._spec import SweepJob, SweepSpec, first_difference, parse_spec

__all__ = ["EXECUTORS", "RETRIES", "SweepResult", "SweepStatus", "run_sweep", "sweep_status", "read_table"]

EXECUTORS = ("local", "dask")
RETRIES = 2  # retries of a job whose worker died (local) or that raised on a Dask worker
FORMAT = 1
TABLE, CSV_TABLE = "table.parquet", "table.csv"
TIMING_COLUMNS = ("train_seconds", "analysis_seconds")


@dataclass(frozen=True)
class SweepStatus:
    """How far a sweep directory is: networks done (valid row), failed (error recorded, no row), pending, total."""

    done: int
    failed: int
    pending: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "failed": self.failed, "pending": self.pending, "total": self.total}


@dataclass(frozen=True)
class SweepResult:
    """A finished (or partly failed) sweep: counts, the table (``table.parquet``, or ``table.csv`` without
    pyarrow), every row sorted by job id, and the wall time of this call."""

    directory: Path
    done: int
    failed: int
    pending: int
    table_path: Path | None
    rows: tuple[dict[str, Any], ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "done": self.done, "failed": self.failed, "pending": self.pending,
                "table": str(self.table_path) if self.table_path else None, "seconds": self.seconds}


# -- the sweep directory -------------------------------------------------------------------------------------------
def _stored(root: Path) -> dict[str, Any]:
    """spec.json of a sweep directory, its job list checked (read without importing or building anything)."""
    path = root / SPEC_NAME
    if not root.is_dir():
        raise RnnscopeError(f"{root}: no such directory")
    if not path.is_file():
        raise RnnscopeError(f"{root}: not a sweep directory ({SPEC_NAME} missing)")
    data = io.read_json_file(path, expected="a sweep spec.json")
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, list) or not all(isinstance(j, dict) and isinstance(j.get("id"), str) and
                                             "/" not in j["id"] and not j["id"].startswith(".") for j in jobs):
        raise RnnscopeError(f"{path}: expected an object with 'spec' and 'jobs' (a list of {{'id': ...}})")
    return data


def _prepare(root: Path, spec: SweepSpec) -> None:
    """Under the lock: refuse a directory of another spec or of other files; write spec.json; remove what killed
    jobs left (temporary run directories, temporaries of atomic writes)."""
    body = {"format": FORMAT, "spec": spec.to_dict(), "jobs": [job.to_dict() for job in spec.jobs()]}
    if (root / SPEC_NAME).exists():
        stored = _stored(root)
        difference = first_difference(stored.get("spec"), body["spec"])
        if difference is not None:
            raise RnnscopeError(f"{root}: holds a sweep of another spec (first difference: {difference}); rerun it "
                                f"with its own spec or choose another --out")
    else:
        others = [e.name for e in root.iterdir()
                  if e.name != io.LOCK_NAME and not (e.name.startswith(".") and e.name.endswith(".tmp"))]
        if others:
            raise RnnscopeError(f"{root}: is not empty and holds no sweep ({others[0]!r}); choose another --out")
        io.write_json(root / SPEC_NAME, body)
    io.clean_stale_temporaries(root, targets=(SPEC_NAME, TABLE, CSV_TABLE))
    for sub in ("rows", "failed"):
        io.clean_stale_temporaries(root / sub)
    runs = root / "runs"
    if runs.is_dir():
        for entry in runs.iterdir():
            if is_partial(entry.name):
                io.remove_tree(entry)


def _counts(root: Path, ids: list[str]) -> tuple[dict[str, dict[str, Any]], int]:
    rows = {job_id: row for job_id in ids if (row := read_row(root, job_id)) is not None}
    failed = sum(1 for job_id in ids if job_id not in rows and (root / "failed" / f"{job_id}.json").is_file())
    return rows, failed


def sweep_status(out: str | Path) -> SweepStatus:
    """Done, failed and pending networks of the sweep directory ``out`` (reads spec.json and the rows only)."""
    root = Path(out)
    ids = [job["id"] for job in _stored(root)["jobs"]]
    rows, failed = _counts(root, ids)
    return SweepStatus(len(rows), failed, len(ids) - len(rows) - failed, len(ids))


def _column(values: list[Any]):
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep each value's JSON text
        return pa.array([None if v is None else json.dumps(v) for v in values], type=pa.string())


def _write_table(root: Path, rows: list[dict[str, Any]]) -> Path:
    """table.csv and (with pyarrow) table.parquet, each atomically; columns in order of first appearance."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    csv_path = io.write_text(root / CSV_TABLE, buffer.getvalue())
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        warnings.warn("pyarrow is not installed: the table is written as table.csv only (pip install "
                      "'rnnscope[parquet]')", UserWarning, stacklevel=3)
        return csv_path
    table = pa.table({c: _column([row.get(c) for row in rows]) for c in columns}) if columns else pa.table({})
    return io.atomic_write(root / TABLE, lambda tmp: pq.write_table(table, tmp))


def read_table(out: str | Path) -> list[dict[str, Any]]:
    """Every valid row of the sweep directory ``out``, sorted by job id; rebuilds its table files from them."""
    root = Path(out)
    ids = [job["id"] for job in _stored(root)["jobs"]]
    rows, _ = _counts(root, ids)
    ordered = [rows[k] for k in sorted(rows)]
    _write_table(root, ordered)
    return ordered


# -- executors -----------------------------------------------------------------------------------------------------
def _units(spec: SweepSpec, jobs: tuple[SweepJob, ...], done: set[str]) -> list[Unit]:
    """The work to do: one unit per unfinished network, or per group of ``ensemble`` seeds of a configuration
    (a group with any unfinished member is trained again whole, so every member's result is the same)."""
    allowed = tuple(sorted({c.task for c in spec.configurations if ":" in c.task}))
    units = []
    for index, configuration in enumerate(spec.configurations):
        mine = [job for job in jobs if job.index == index]
        size = configuration.ensemble
        for start in range(0, len(mine), size):
            group = mine[start:start + size]
            if any(job.id not in done for job in group):
                units.append(Unit(configuration, tuple(group), ensemble=size > 1, allowed=allowed))
    return units


def _give_up(root: Path, unit: Unit, message: str) -> dict[str, str]:
    outcome = {}
    for job in unit.jobs:
        if read_row(root, job.id) is None:
            write_failure(root, job, message)
            outcome[job.id] = "failed"
        else:
            outcome[job.id] = "done"
    return outcome


def _run_local(root: Path, units: list[Unit], workers: int, report: Callable[[Unit, dict[str, str] | None], None]):
    """A spawned process pool, one torch thread per worker, at most ``workers`` units in flight. When a worker
    dies the pool breaks: the units then in flight are retried in a new pool, each alone (so a unit that kills
    its worker again is known), and given up after RETRIES retries."""
    context = multiprocessing.get_context("spawn")
    queue = deque(range(len(units)))
    attempts = [0] * len(units)
    pool: ProcessPoolExecutor | None = None
    in_flight: dict[Any, int] = {}
    others = set(multiprocessing.active_children())  # the caller's own child processes are not ours to stop
    try:
        while queue or in_flight:
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=min(workers, len(units)), mp_context=context)
            while queue and len(in_flight) < workers:
                suspect = attempts[queue[0]] > 0
                if suspect and in_flight:
                    break
                index = queue.popleft()
                in_flight[pool.submit(run_unit, str(root), units[index])] = index
                report(units[index], None)
                if suspect:
                    break
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            lost = []
            for future in finished:
                index = in_flight.pop(future)
                try:
                    report(units[index], future.result())
                except BrokenProcessPool:
                    lost.append(index)
                except Exception as exc:  # noqa: BLE001 -- e.g. a unit that cannot be sent to a worker
                    report(units[index], _give_up(root, units[index], one_line(exc)))
            if not lost:
                continue
            for future in list(in_flight):  # a broken pool fails every call in flight
                index = in_flight.pop(future)
                try:
                    report(units[index], future.result())
                except Exception:  # noqa: BLE001
                    lost.append(index)
            pool.shutdown(wait=True)
            pool = None
            for index in sorted(lost, reverse=True):
                attempts[index] += 1
                if attempts[index] > RETRIES:
                    report(units[index], _give_up(root, units[index], f"a worker process died running this job "
                                                                      f"{attempts[index]} times"))
                else:
                    queue.appendleft(index)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM through the CLI): stop the workers now, not after their
        if pool is not None:  # jobs; what they leave half-written is cleaned and redone on the next run
            workers = [child for child in multiprocessing.active_children() if child not in others]
            for child in workers:
                child.terminate()
            for child in workers:
                child.join(timeout=5)
            pool.shutdown(wait=True, cancel_futures=True)  # its workers are gone: returns at once, queues released
            pool = None
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _import_dask():
    try:
        import distributed
    except ImportError:
        raise RnnscopeError("--executor dask: needs dask.distributed (pip install 'rnnscope[dask]')") from None
    return distributed


@contextmanager
def _dask_client(workers: int, scheduler: str | None) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a LocalCluster of ``workers`` processes with one thread
    each, started here and closed on exit."""
    import logging

    distributed = _import_dask()
    cluster = None
    try:
        if scheduler is None:
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(scheduler, timeout=30)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        where = scheduler if scheduler is not None else "a LocalCluster"
        raise RnnscopeError(f"--scheduler: cannot connect to {where} ({one_line(exc)})") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_dask(client: Any, root: Path, units: list[Unit],
              report: Callable[[Unit, dict[str, str] | None], None]) -> None:
    """Every unit submitted to the Dask cluster of ``client``; a killed worker's units are rescheduled by Dask, an
    error retried RETRIES times. The sweep directory must be on a file system every worker sees."""
    distributed = _import_dask()
    futures = {}
    for unit in units:
        future = client.submit(run_unit, str(root.resolve()), unit, key=f"rnnscope-sweep-{unit.key}-{os.getpid()}",
                               pure=False, retries=RETRIES)
        futures[future] = unit
        report(unit, None)
    for future in distributed.as_completed(list(futures)):
        unit = futures[future]
        try:
            report(unit, future.result())
        except Exception as exc:  # noqa: BLE001 -- KilledWorker (died too often), or an error after retries
            report(unit, _give_up(root, unit, f"dask: {one_line(exc)}"))


# -- the sweep -----------------------------------------------------------------------------------------------------
def run_sweep(
    spec: SweepSpec | Mapping[str, Any],
    out: str | Path,
    *,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> SweepResult:
    """Train and analyse every network of ``spec`` into the sweep directory ``out``, then write its table.

    executor: ``local`` (``workers`` spawned processes, default ``os.cpu_count()``) or ``dask`` (the cluster at
    ``scheduler``, e.g. ``tcp://host:8786``, or a LocalCluster of ``workers`` processes). Resumable: finished
    networks are skipped; failed, killed or corrupt ones redone. A spec other than the one ``out`` was started
    with is refused, naming the first differing field. Returns counts, the table's path and every row."""
    began = time.perf_counter()
    spec = parse_spec(spec) if not isinstance(spec, SweepSpec) else spec
    if executor not in EXECUTORS:
        raise RnnscopeError(f"executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    if scheduler is not None and executor != "dask":
        raise RnnscopeError("--scheduler: only with --executor dask")
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise RnnscopeError(f"workers: expected an int >= 1, got {workers!r}")
    if executor == "dask":
        _import_dask()
    root = io.check_output(out, directory=True)
    jobs = spec.jobs()
    ids = [job.id for job in jobs]
    with contextlib.ExitStack() as stack:
        # a given scheduler is reached before anything is written; a LocalCluster starts only if there is work
        client = stack.enter_context(_dask_client(workers, scheduler)) if scheduler is not None else None
        stack.enter_context(io.lock_run_dir(root))
        _prepare(root, spec)
        done = {job_id for job_id in ids if read_row(root, job_id) is not None}
        units = _units(spec, jobs, done)
        failed_ids: set[str] = set()
        running: set[str] = set()
        bar = tqdm(total=len(ids), initial=len(done), disable=not progress, desc="sweep", unit="net",
                   dynamic_ncols=True)

        def report(unit: Unit, outcome: dict[str, str] | None) -> None:
            """A unit sent to a worker (outcome None) or back from one: the bar counts networks."""
            finished = 0
            if outcome is None:
                running.update(job.id for job in unit.jobs if job.id not in done)
            else:
                for job_id, state in outcome.items():
                    running.discard(job_id)
                    if job_id not in done and job_id not in failed_ids:
                        (done if state == "done" else failed_ids).add(job_id)
                        finished += 1
            bar.set_postfix(failed=len(failed_ids), running=len(running), refresh=False)
            if finished:
                bar.update(finished)
            else:
                bar.refresh()

        try:
            if units and executor == "local":
                _run_local(root, units, workers, report)
            elif units:
                if client is None:
                    client = stack.enter_context(_dask_client(workers, None))
                _run_dask(client, root, units, report)
        finally:
            bar.close()
        rows, failed = _counts(root, ids)
        ordered = [rows[k] for k in sorted(rows)]
        table = _write_table(root, ordered)
        _prepare(root, spec)  # no temporaries left behind by the workers
    return SweepResult(root, len(rows), failed, len(ids) - len(rows) - failed, table, tuple(ordered),
                       time.perf_counter() - began)
