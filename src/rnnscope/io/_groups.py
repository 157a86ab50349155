"""Groups of networks: the run directories of an ensemble (``net00``, ``net01``, ...) or a sweep (``runs/<job>/``).

A run directory is one that holds ``config.json``; a group is any directory above run directories. The search
never descends into a run directory (a multi-stage run holds its stages, ``stage0/`` ..., which are not members).
"""

from __future__ import annotations

from pathlib import Path

from rnnscope.errors import RnnscopeError
from rnnscope.io._rundir import CONFIG

__all__ = ["is_run_directory", "run_directories"]


def is_run_directory(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding ``config.json`` (a run, whatever wrote it; a broken one too, whose
    ``config.json`` reading it then names)."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG).exists()


def _members(directory: Path) -> list[Path]:
    found: list[Path] = []
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise RnnscopeError(f"{directory}: cannot list ({exc.strerror or exc})") from None
    for entry in entries:
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue  # hidden (temporaries, locks), links (never followed: no cycles) and files
        found += [entry] if is_run_directory(entry) else _members(entry)
    return found


def run_directories(path: str | Path) -> tuple[Path, ...]:
    """The run directories of ``path``: itself when it is a run directory, else every run directory below it
    (an ensemble's ``net00``, ``net01``, ..., a sweep's ``runs/<job>/``), sorted by path, without descending into
    any run directory. A missing path, a file or a directory without any run is one line naming ``path``."""
    path = Path(path)
    if not path.exists():
        raise RnnscopeError(f"{path}: no such directory")
    if not path.is_dir():
        raise RnnscopeError(f"{path}: is a file, expected a run directory or a directory of runs")
    if is_run_directory(path):
        return (path,)
    found = _members(path)
    if not found:
        raise RnnscopeError(f"{path}: no run directory ({CONFIG}) in it or in its sub-directories")
    return tuple(sorted(found))
