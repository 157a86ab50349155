"""Checks that a place can receive output before any work is done for it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rnnscope.errors import RnnscopeError

__all__ = ["check_output"]


def check_output(path: str | Path, *, directory: bool, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` can be written: a directory of outputs (``directory=True``) or a file. Nothing may stand in the way
    (a file where a directory is needed, a directory where a file goes) and the nearest existing directory must take
    new entries (probed by creating and removing a temporary directory in it); a file's name must end in one of
    ``suffixes`` when given. Leaves nothing behind."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise RnnscopeError(f"{path}: expected a name ending in {', '.join(suffixes)}")
    if directory and path.exists() and not path.is_dir():
        raise RnnscopeError(f"{path}: is a file, expected a directory for the output")
    if not directory and path.is_dir():
        raise RnnscopeError(f"{path}: is a directory, expected a file name (e.g. {path / 'figure.png'})")
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise RnnscopeError(f"{path}: cannot be written: {existing} is a file, not a directory")
    try:
        with tempfile.TemporaryDirectory(dir=existing, prefix=".rnnscope-probe-"):
            pass
    except OSError as exc:
        raise RnnscopeError(f"{path}: cannot be written ({exc.strerror or exc} in {existing})") from None
    return path
