"""Shared fixtures, and the one place that knows where the authors' reference networks are.

The networks of Dubreuil, Valente et al. 2022 are not shipped with rnnscope (see README, "The authors' networks").
Tests that read them carry ``@pytest.mark.reference`` and get them through ``reference_path(name)`` (at test time,
never at import time) or the ``reference_dir`` fixture. The directory is ``$RNNSCOPE_REFERENCE_DIR``, by default
``../shared/reference`` beside the repository. When it is absent, marked tests are skipped with one line that says
so; with ``RNNSCOPE_REQUIRE_REFERENCE=1`` (set by CI) an absent directory or file fails them instead.

Everything else the suite needs is made by the tests or shipped in ``tests/data/`` (small networks trained by
rnnscope; see tests/data/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
DIR_VARIABLE = "RNNSCOPE_REFERENCE_DIR"
REQUIRE_VARIABLE = "RNNSCOPE_REQUIRE_REFERENCE"

_current_item: pytest.Item | None = None  # the test being set up or run; reference_path checks its marker


def reference_root() -> Path:
    """``$RNNSCOPE_REFERENCE_DIR`` (relative to the current directory), else ``../shared/reference`` beside the
    repository. Only a path: nothing is read."""
    value = os.environ.get(DIR_VARIABLE, "").strip()
    return Path(value).expanduser().resolve() if value else REPO.parent / "shared" / "reference"


def reference_required() -> bool:
    value = os.environ.get(REQUIRE_VARIABLE, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise pytest.UsageError(f"{REQUIRE_VARIABLE}={value!r}: expected 1 or 0")


def _absent(what: str) -> str:
    return f"{what} (set {DIR_VARIABLE}; see README, 'The authors' networks')"


def _check_marked(where: str) -> None:
    if _current_item is None:
        raise RuntimeError(f"{where} called outside a test (at import time?): read reference files at test time")
    if _current_item.get_closest_marker("reference") is None:
        pytest.fail(f"{_current_item.nodeid} reads the reference networks but lacks @pytest.mark.reference",
                    pytrace=False)


def _reference_directory(where: str) -> Path:
    _check_marked(where)
    root = reference_root()
    if not root.is_dir():
        message = _absent(f"reference networks not found at {root}")
        if reference_required():
            pytest.fail(f"{REQUIRE_VARIABLE}=1: {message}", pytrace=False)
        pytest.skip(message)
    return root


def reference_path(name: str) -> Path:
    """The path of one reference file, e.g. ``reference_path("rdm_lr_fig2.pt")``; call it at test time from a test
    marked ``reference``. Skips (fails under RNNSCOPE_REQUIRE_REFERENCE=1) when the file is absent."""
    path = _reference_directory("reference_path()") / name
    if not path.is_file():
        message = _absent(f"reference network {name} not found in {path.parent}")
        if reference_required():
            pytest.fail(f"{REQUIRE_VARIABLE}=1: {message}", pytrace=False)
        pytest.skip(message)
    return path


def shipped_run(name: str) -> Path:
    """A run directory shipped in tests/data (read-only: copy it to tmp_path before a command writes beside it)."""
    path = DATA / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: shipped test network missing (regenerate with tests/data/make.py)")
    return path


def pytest_configure(config: pytest.Config) -> None:
    reference_required()  # a bad value is a usage error before anything runs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the reference-marked tests, with one reason, when the directory is absent (unless it is required:
    then they run and fail on their first read)."""
    root = reference_root()
    if root.is_dir() or reference_required():
        return
    skip = pytest.mark.skip(reason=_absent(f"reference networks not found at {root}"))
    for item in items:
        if item.get_closest_marker("reference") is not None:
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _current_item
    _current_item = item


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    global _current_item
    _current_item = None


@pytest.fixture
def reference_dir() -> Path:
    """The reference directory, for tests marked ``reference`` (skips or fails when absent). Prefer
    ``reference_path(name)``, which also skips or fails when one file is missing."""
    return _reference_directory("the reference_dir fixture")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def one_torch_thread():
    """The test machine is shared: OpenMP threads spin against other processes, so simulate on one torch thread
    (restored afterwards). Modules that simulate much use it with ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
