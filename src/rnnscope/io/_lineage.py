"""The ``lineage`` section of ``config.json``: where a run's network came from.

A run trained from another run (``rnnscope.training.train_from``) records::

    "lineage": {
      "initial": {"seed": 7, "model": {...}},             # J0 = build_model(model, generator=manual_seed(seed)),
                                                          # null when unknown (an imported or designed root)
      "parents": [{"path": "runs/full", "sha256": "..."}],  # oldest first; sha256 of each parent's weights file
      "stages": [{"kind": "scratch", ...}, {"kind": "truncate", "rank": 1, "of": "J - J0", ...}]
    }

Only this module reads and writes that section; ``rnnscope.training`` builds its content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rnnscope.errors import RnnscopeError
from rnnscope.io._atomic import write_json
from rnnscope.io._rundir import CONFIG, WEIGHTS, model_config_from_dict, read_config

__all__ = ["LINEAGE_KINDS", "weights_sha256", "read_lineage", "write_lineage"]

LINEAGE_KINDS = ("scratch", "continue", "truncate")  # what a stage did to the network it received


def weights_sha256(run_dir: str | Path) -> str:
    """The sha256 (hex) of a run's ``weights.safetensors``, read in 1 MiB blocks."""
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        raise RnnscopeError(f"{path}: missing")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise RnnscopeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return digest.hexdigest()


def _check_lineage(lineage: Any, path: Path) -> dict[str, Any]:
    where = f"{path}: field 'lineage"
    if not isinstance(lineage, dict):
        raise RnnscopeError(f"{where}' must be an object, got {lineage!r:.80}")
    initial = lineage.get("initial")
    if initial is not None:
        if not isinstance(initial, dict) or not isinstance(initial.get("model"), dict):
            raise RnnscopeError(f"{where}.initial' must be null or an object with 'seed' and 'model', got {initial!r:.80}")
        seed = initial.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise RnnscopeError(f"{where}.initial.seed' must be an integer in [0, 2**63), got {seed!r:.80}")
        model_config_from_dict(initial["model"], path)  # validated: the architecture J0 is rebuilt with
    parents = lineage.get("parents")
    if not isinstance(parents, list) or not all(
        isinstance(p, dict) and isinstance(p.get("path"), str) and isinstance(p.get("sha256"), str) for p in parents
    ):
        raise RnnscopeError(f"{where}.parents' must be a list of objects with 'path' and 'sha256', got {parents!r:.80}")
    stages = lineage.get("stages")
    if not isinstance(stages, list) or not all(isinstance(s, dict) and s.get("kind") in LINEAGE_KINDS for s in stages):
        raise RnnscopeError(f"{where}.stages' must be a list of objects whose 'kind' is one of "
                            f"{', '.join(LINEAGE_KINDS)}, got {stages!r:.80}")
    return lineage


def read_lineage(run_dir: str | Path) -> dict[str, Any] | None:
    """The validated ``lineage`` section of a run's ``config.json``; None when the run has none."""
    config = read_config(run_dir)
    if "lineage" not in config:
        return None
    return _check_lineage(config["lineage"], Path(run_dir) / CONFIG)


def write_lineage(run_dir: str | Path, lineage: dict[str, Any]) -> Path:
    """Add (or replace) the ``lineage`` section of ``config.json``, atomically; every other field is kept.

    For the writer of the run only (it holds the run's lock): ``train_from`` calls it on the run it has just
    written."""
    path = Path(run_dir) / CONFIG
    _check_lineage(lineage, path)
    config = read_config(run_dir)
    return write_json(path, {**config, "lineage": lineage})
