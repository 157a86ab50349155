"""The sweep engine (rnnscope.sweep run_sweep, ``rnnscope sweep``) with real worker processes and tiny networks:
a sweep writes one row per network and a table, a rerun skips everything, a killed sweep (SIGKILL of the whole
process group, at random moments, several times) resumes to the table of an uninterrupted run, corrupt or
half-written work is redone, a worker process that dies is retried (local pool and Dask), and the Dask executor on a
real LocalCluster gives the local executor's table."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from rnnscope import io
from rnnscope.errors import RnnscopeError
from rnnscope.sweep import read_table, run_sweep, sweep_status
from rnnscope.tasks import RandomDots, register_task

REPO = Path(__file__).resolve().parents[1]
TABLE_FILE = "table.parquet" if importlib.util.find_spec("pyarrow") else "table.csv"  # Parquet is an extra
TIMING = ("train_seconds", "analysis_seconds")
TINY = {"task": "rdm", "recipe": "fast", "size": 16, "epochs": 1, "seeds": [0, 1, 2],
        "analyses": ["accuracy"], "analysis_options": {"trials": 100}}
GROUP = {**TINY, "epochs": 2, "seeds": [10, 11], "ensemble": 2}  # two networks trained as one ensemble, one job


@dataclass(frozen=True)
class KillOnce(RandomDots):
    """rdm whose first draw of trials kills the process drawing them, once: the marker file remembers."""

    name: ClassVar[str] = "kill_once"
    marker: str = ""

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any):
        if self.marker and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._sample(trials, rng=rng, **conditions)


KILL_ONCE = register_task(KillOnce)  # 'test_sweep_runner:KillOnce': the worker processes import it again


@dataclass(frozen=True)
class Broken(RandomDots):
    """rdm whose trials cannot be drawn: every job of it fails."""

    name: ClassVar[str] = "broken"

    def _sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any):
        raise ValueError("no trials today\n(second line)")


BROKEN = register_task(Broken)


def killer(marker: Path) -> dict[str, Any]:
    return {**TINY, "task": KILL_ONCE, "recipe": "default", "seeds": [5], "task_options": {"marker": str(marker)}}


def strip(rows) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def temporaries(directory: Path) -> list[str]:
    """Leftovers of killed work: temporary run directories, atomic-write temporaries, locks."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if p.name.endswith((".partial", ".tmp")) or p.name == io.LOCK_NAME)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """An uninterrupted local sweep of three rdm networks, a group of two trained as one ensemble, and one network
    that kills its worker process once (retried in a new pool): (directory, spec, result)."""
    root = tmp_path_factory.mktemp("baseline")
    spec = {"configurations": [TINY, GROUP, killer(root / "marker")]}
    result = run_sweep(spec, root / "sweep", workers=2, progress=False)
    return root / "sweep", spec, result


def test_sweep_writes_one_row_per_network_and_a_table(baseline) -> None:
    directory, spec, result = baseline
    assert (result.done, result.failed, result.pending) == (6, 0, 0)
    assert sorted(row["seed"] for row in result.rows) == [0, 1, 2, 5, 10, 11]
    assert [row["job"] for row in result.rows] == sorted(row["job"] for row in result.rows)
    for row in result.rows:
        assert io.load_run(directory / "runs" / row["job"]).seed == row["seed"]
        assert 0.0 <= row["accuracy"] <= 1.0 and row["accuracy_trials"] == 100
        assert row["epochs"] == (2 if row["ensemble"] == 2 else 1) and row["max_epochs"] == row["epochs"]
        assert row["size"] == 16 and row["rank"] == 1 and row["validation_accuracy"] is not None
        assert all(not (isinstance(v, float) and v != v) for v in row.values())
    assert [row["task"] for row in result.rows].count(KILL_ONCE) == 1
    assert (directory.parent / "marker").exists()  # it did kill its worker
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(result.table_path).to_pylist()
    assert table == list(result.rows) == read_table(directory)
    assert (directory / "table.csv").read_text().count("\n") == 7
    assert temporaries(directory) == [] and not (directory / "failed").exists()


def test_rerun_skips_every_finished_network_and_status_counts(baseline, capsys, tmp_path) -> None:
    from rnnscope.cli import main

    directory, spec, result = baseline
    rows = {p.name: p.read_bytes() for p in (directory / "rows").iterdir()}
    began = time.perf_counter()
    again = run_sweep(spec, directory, workers=2, progress=False)
    assert time.perf_counter() - began < 5  # no worker started, nothing trained
    assert again.rows == result.rows and {p.name: p.read_bytes() for p in (directory / "rows").iterdir()} == rows
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    capsys.readouterr()
    assert main(["sweep", str(tmp_path / "spec.json"), "--out", str(directory), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["done"], summary["failed"], summary["pending"]) == (6, 0, 0)
    assert summary["table"] == str(directory / TABLE_FILE) and summary["seconds"] < 5
    assert main(["sweep-status", str(directory), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"done": 6, "failed": 0, "pending": 0, "total": 6}


def test_a_locked_sweep_directory_is_one_line(baseline) -> None:
    directory, spec, _ = baseline
    with io.lock_run_dir(directory):
        with pytest.raises(RnnscopeError, match="another rnnscope process .* is writing"):
            run_sweep(spec, directory, workers=1, progress=False)


def _sweep_process(spec_path: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "rnnscope.cli", "sweep", str(spec_path), "--out", str(out),
                             "--workers", "2", "--quiet", "--allow-task", KILL_ONCE, "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _kill_and_resume(baseline, tmp_path, kills: int) -> None:
    directory, spec, result = baseline
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))  # the same networks (the killer's marker exists: it no longer kills)
    out = tmp_path / "sweep"
    chance = random.Random()
    delays = []
    for _ in range(kills):
        process = _sweep_process(spec_path, out)
        delays.append(round(chance.uniform(3.0, 12.0), 1))
        try:
            process.wait(timeout=delays[-1])
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the command and its worker processes
            process.wait()
        process.stdout.close()
        process.stderr.close()
    if (out / "rows").is_dir() and any((out / "rows").iterdir()):  # a finished network's row, corrupted
        victim = sorted((out / "rows").iterdir())[0]
        victim.write_text(victim.read_text()[: len(victim.read_text()) // 2])
    resumed = run_sweep(spec, out, workers=2, progress=False)  # the same sweep, resumed from Python
    assert (resumed.done, resumed.failed, resumed.pending) == (6, 0, 0), delays
    assert strip(resumed.rows) == strip(read_table(out)) == strip(result.rows), delays
    assert sorted(p.name for p in (out / "rows").iterdir()) == sorted(f"{r['job']}.json" for r in result.rows)
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(r["job"] for r in result.rows)
    assert temporaries(out) == [], delays


def test_killed_sweeps_resume_to_the_uninterrupted_table(baseline, tmp_path) -> None:
    _kill_and_resume(baseline, tmp_path, kills=2)


@pytest.mark.slow
def test_many_kills_at_random_moments(baseline, tmp_path) -> None:
    _kill_and_resume(baseline, tmp_path, kills=6)


def test_sigterm_stops_the_sweep_and_its_workers(baseline, tmp_path) -> None:
    """SIGTERM to the command alone (what a scheduler or `kill` sends) ends it like Ctrl-C: the one line, exit 130,
    no traceback, and no worker process left running in its process group."""
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({**TINY, "epochs": 50, "seeds": [20, 21]}))
    out = tmp_path / "sweep"
    process = _sweep_process(spec_path, out)
    deadline = time.monotonic() + 60
    while not (out / "runs").is_dir() or not any((out / "runs").iterdir()):  # workers are training
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    lines = stderr.decode().splitlines()  # (multiprocessing's resource tracker may add its own warning after it)
    assert process.returncode == 130 and any(line.startswith("error: interrupted") for line in lines), lines
    assert not any("Traceback" in line for line in lines), lines
    deadline = time.monotonic() + 15
    while True:
        try:
            os.killpg(process.pid, 0)  # the group (the command and every worker it started) still has a process
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "worker processes outlived the interrupted sweep"
        time.sleep(0.2)


def test_corrupt_rows_half_written_runs_and_lost_group_members_are_redone(baseline, tmp_path) -> None:
    directory, spec, result = baseline
    out = tmp_path / "sweep"
    shutil.copytree(directory, out)
    by_seed = {row["seed"]: row["job"] for row in result.rows}
    first, second, member = by_seed[0], by_seed[1], by_seed[11]
    (out / "rows" / f"{first}.json").write_text('{"job": "' + first + '", "accuracy": NaN}')  # NaN: not trusted
    weights = out / "runs" / second / io.WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:40])  # a half-written network, and its row gone
    (out / "rows" / f"{second}.json").unlink()
    shutil.rmtree(out / "runs" / member)  # a member of the ensemble group: the group is trained again, whole
    (out / "rows" / f"{member}.json").unlink()
    (out / "runs" / f".{second}.123-abcdef01.partial").mkdir()  # what a killed job leaves
    (out / "rows" / f".{first}.json.abcdefgh.tmp").write_text("{")
    kept = (out / "rows" / f"{by_seed[10]}.json").read_bytes()
    assert sweep_status(out).to_dict() == {"done": 3, "failed": 0, "pending": 3, "total": 6}
    again = run_sweep(spec, out, workers=2, progress=False)
    assert (again.done, again.failed) == (6, 0)
    assert strip(again.rows) == strip(result.rows)
    assert (out / "rows" / f"{by_seed[10]}.json").read_bytes() == kept  # the finished member was not rewritten
    assert temporaries(out) == []


def test_dask_local_cluster_gives_the_local_table_and_retries_a_killed_worker(baseline, tmp_path) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install 'rnnscope[dask]')")
    directory, _, result = baseline
    marker = tmp_path / "dask-marker"
    spec = {"configurations": [TINY, GROUP, killer(marker)]}
    dask = run_sweep(spec, tmp_path / "sweep", executor="dask", workers=2, progress=False)
    assert (dask.done, dask.failed) == (6, 0)
    assert marker.exists()  # the killer's first attempt killed its Dask worker; the rescheduled one finished
    assert strip(row for row in dask.rows if row["task"] == "rdm") == strip(
        row for row in result.rows if row["task"] == "rdm")
    assert temporaries(tmp_path / "sweep") == []


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path, capsys) -> None:
    from rnnscope.cli import main

    spec = {"configurations": [{**TINY, "task": BROKEN, "recipe": "default", "seeds": [0]}, {**TINY, "seeds": [0]}]}
    result = run_sweep(spec, tmp_path / "sweep", workers=1, progress=False)
    assert (result.done, result.failed, result.pending) == (1, 1, 0)
    assert [row["task"] for row in result.rows] == ["rdm"]
    (failed,) = (tmp_path / "sweep" / "failed").iterdir()
    record = json.loads(failed.read_text())
    assert record["error"] == "ValueError: no trials today (second line)" and record["seed"] == 0
    assert not (tmp_path / "sweep" / "runs" / failed.stem).exists() and temporaries(tmp_path / "sweep") == []
    capsys.readouterr()
    assert main(["sweep-status", str(tmp_path / "sweep"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"done": 1, "failed": 1, "pending": 0, "total": 2}


def test_executor_errors_are_one_line(tmp_path) -> None:
    with pytest.raises(RnnscopeError, match="executor: expected one of local, dask"):
        run_sweep(TINY, tmp_path / "a", executor="slurm")
    with pytest.raises(RnnscopeError, match="--scheduler: only with --executor dask"):
        run_sweep(TINY, tmp_path / "a", scheduler="tcp://localhost:1")
    with pytest.raises(RnnscopeError, match="workers: expected an int >= 1"):
        run_sweep(TINY, tmp_path / "a", workers=0)
    assert not (tmp_path / "a").exists()

