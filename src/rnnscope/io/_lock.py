"""Exclusive writing of a run directory: an ``flock`` on ``DIR/.lock``, which the kernel releases when its process
ends (even by SIGKILL), so a lock is never stale. POSIX only, like the rest of the run-directory code."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rnnscope.errors import RnnscopeError
from rnnscope.io._rundir import CHECKPOINT, CONFIG, LOCK, METRICS, WEIGHTS

__all__ = ["LOCK_NAME", "RUN_FILES", "RunLock", "lock_run_dir"]

LOCK_NAME = LOCK
RUN_FILES = (CONFIG, WEIGHTS, METRICS, CHECKPOINT)  # what training writes into a run directory


class RunLock:
    """The held lock of one run directory (yielded by ``lock_run_dir``).

    path: the run directory. created: whether this holder created it (it is removed again on release if it is
    then empty). ``note_new(name)`` records that the holder is about to create the file ``name``;
    ``discard_new()`` removes every file so recorded, undoing a call that failed before it produced anything
    worth keeping, without touching any file it did not create."""

    def __init__(self, path: Path, created: tuple[Path, ...]) -> None:
        self.path = path
        self._created_dirs = created
        self._new: list[str] = []

    @property
    def created(self) -> bool:
        return bool(self._created_dirs)

    def note_new(self, name: str) -> None:
        if name not in self._new:
            self._new.append(name)

    def discard_new(self) -> None:
        for name in reversed(self._new):
            (self.path / name).unlink(missing_ok=True)
        self._new.clear()


def _holder(fd: int) -> str:
    """The pid the holding process wrote into the lock file ('unknown' in the instant before it has)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def _missing_ancestors(path: Path) -> tuple[Path, ...]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            break
        missing.append(candidate)
    return tuple(missing)


@contextmanager
def lock_run_dir(run_dir: str | Path) -> Iterator[RunLock]:
    """Hold the run directory ``run_dir`` (created if missing) exclusively for writing, or raise RnnscopeError
    "DIR: another rnnscope process (pid N) is writing this run" at once if another process holds it.

    On release the lock file is removed, and so is the directory if this call created it and it is empty."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RnnscopeError(f"{run_dir}: exists and is not a directory")
    created = _missing_ancestors(run_dir.absolute())
    path = run_dir / LOCK_NAME
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise RnnscopeError(f"{run_dir}: another rnnscope process (pid {holder}) is writing this run") from None
            # A releasing holder unlinks the file before unlocking it: if we locked that unlinked file, try again.
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
                break
            os.close(fd)
    except OSError as exc:
        for directory in created:
            try:
                directory.rmdir()
            except OSError:
                break
        raise RnnscopeError(f"{run_dir}: cannot be written ({exc.strerror or exc})") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield RunLock(run_dir, created)
    finally:
        path.unlink(missing_ok=True)  # while still locked; see the check above
        os.close(fd)  # releases the lock
        for directory in created:  # deepest first; stops at the first that is not empty
            try:
                directory.rmdir()
            except OSError:
                break

