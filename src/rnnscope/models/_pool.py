"""The thread pool the GIL-free kernels run on, and how many threads they get."""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import torch


@functools.cache
def _executor(workers: int, pid: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads for process ``pid``, made on first use (the kernels release the GIL).
    Keyed by pid because a forked child inherits the pool object but not its threads."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnnscope-fast")


def _threads() -> int:
    """Threads for the kernels: numba's setting when the caller chose one (``numba.set_num_threads`` or the
    ``NUMBA_NUM_THREADS`` variable); by default the cores not busy with other work when the kernels first run in
    this process, ``cores + 1.5 - load`` rounded down by the one-minute load average (which counts this process's
    own thread: on a shared machine a second thread that has to share a core slows a run down)."""
    torch_threads = torch.get_num_threads()
    threads = numba.get_num_threads()  # the first call starts numba's OpenMP layer, which resets torch's thread count
    if torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)  # leave the caller's torch setting as it was
    if threads <= 1 or "NUMBA_NUM_THREADS" in os.environ or threads != numba.config.NUMBA_DEFAULT_NUM_THREADS:
        return threads
    return _default_threads(threads, os.getpid())


@functools.cache
def _default_threads(cores: int, pid: int) -> int:
    """The default of :func:`_threads`, decided once per process (the load average lags by a minute and counts
    the kernels' own threads, so deciding again would oscillate)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return cores
    return max(1, min(cores, int(cores + 1.5 - load)))


def _run_items(kernel, items: int, *args) -> None:
    """Run ``kernel(lo, hi, *args)`` over items 0..items-1 split into :func:`_threads` contiguous ranges.

    Each item writes only its own outputs, so the result does not depend on the split. (Plain threads around
    GIL-free kernels instead of ``prange``: a cold compile of all kernels took 26 s instead of 63 s.)
    """
    workers = min(_threads(), items)
    if workers <= 1:
        kernel(0, items, *args)
        return
    bounds = [items * w // workers for w in range(workers + 1)]
    pool = _executor(workers, os.getpid())
    futures = [pool.submit(kernel, bounds[w], bounds[w + 1], *args) for w in range(1, workers)]
    kernel(bounds[0], bounds[1], *args)  # the calling thread takes the first range
    for future in futures:
        future.result()
