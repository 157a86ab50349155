"""Atomic writes: a file is either its old version or its complete new one, never half-written."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rnnscope.errors import RnnscopeError

__all__ = ["atomic_write", "write_json", "write_text", "write_bytes", "save_figure", "clean_stale_temporaries",
           "is_temporary", "publish_directory", "remove_tree"]

# ``atomic_write`` names its temporary ``.{name}.{8 random characters}.tmp`` (tempfile.mkstemp's alphabet) beside the
# target; a process killed between creating and renaming it leaves one behind.
_TEMPORARY = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``. A place that
    cannot be written (a directory at ``path``, a file in the way, no permission) is one RnnscopeError naming it."""
    path = Path(path)
    if path.is_dir():
        raise RnnscopeError(f"{path}: is a directory, cannot write a file there")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # see _TEMPORARY
    except OSError as exc:
        raise RnnscopeError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RnnscopeError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_figure(figure: Any, path: str | Path, *, dpi: int = 150) -> Path:
    """Save a matplotlib Figure atomically; the format follows the suffix (.png, .svg, .pdf)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight"))


def is_temporary(name: str, targets: Iterable[str] | None = None) -> bool:
    """Whether ``name`` is a temporary of ``atomic_write`` (of one of ``targets``, if given)."""
    match = _TEMPORARY.fullmatch(name)
    return match is not None and (targets is None or match["target"] in set(targets))


def clean_stale_temporaries(run_dir: str | Path, *, targets: Iterable[str] | None = None) -> list[Path]:
    """Remove the temporaries ``atomic_write`` left in ``run_dir`` when its process was killed (of ``targets`` only,
    if given); returns the removed paths. Call it only while holding the directory's lock (``lock_run_dir``), so
    that no live writer's temporary is removed. Subdirectories are not visited."""
    run_dir = Path(run_dir)
    targets = None if targets is None else frozenset(targets)
    removed = []
    if not run_dir.is_dir():
        return removed
    for entry in sorted(run_dir.iterdir()):
        if is_temporary(entry.name, targets) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def publish_directory(source: str | Path, target: str | Path) -> Path:
    """Move the complete directory ``source`` to ``target`` by one rename (same file system), so ``target`` is
    either absent or whole; what was at ``target`` (a leftover of a killed writer) is removed first."""
    source, target = Path(source), Path(target)
    try:
        if target.exists():
            shutil.rmtree(target)
        os.replace(source, target)
    except OSError as exc:
        raise RnnscopeError(f"{target}: cannot move {source.name} into place ({exc.strerror or exc})") from None
    return target


def remove_tree(path: str | Path) -> None:
    """Remove a directory this process (or a killed writer before it) created, if it is there."""
    shutil.rmtree(path, ignore_errors=True)
