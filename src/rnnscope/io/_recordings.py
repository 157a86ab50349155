"""Recordings files: ``.npz`` (written and read), long-format CSV and Parquet (read), NWB (read, extra ``nwb``).

``.npz`` layout (``np.load(..., allow_pickle=False)``; object arrays are refused):
``activity`` (trials, time, neurons) rates; ``time_ms`` (time,); optional ``averaged`` (bool: rows are conditions,
e.g. PSTHs), ``name``; ``condition_<name>`` (trials,) numbers or text; ``neuron_<name>`` (neurons,) numbers or text.

Long format (CSV, Parquet): one row per (neuron, trial, time) with columns ``neuron``, ``trial`` (or ``condition``
for condition-averaged rates), ``time`` (ms) and ``rate``. Every other column is a condition if it is constant
within each trial, else neuron metadata if constant within each neuron (area, session), else an error. Every
neuron needs a rate at every (trial, time).

NWB: the ``units`` table (spike times; its scalar columns become neuron metadata) and the ``trials`` table (its
scalar columns other than the times become conditions); spikes are counted in bins of ``bin_ms`` from each trial's
``align`` time over the shortest trial, and rates are counts / bin (Hz).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnscope._validation import check_positive
from rnnscope.errors import RnnscopeError
from rnnscope.io._atomic import atomic_write

__all__ = ["read_recordings", "write_recordings", "RECORDING_SUFFIXES"]

RECORDING_SUFFIXES = (".npz", ".csv", ".parquet", ".pq", ".nwb")
_LONG_KEYS = ("neuron", "time", "rate")


def write_recordings(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write the arrays of a recordings container (``rnnscope.data.Recordings.to_arrays()``) to exactly ``path`` (a
    new ``.npz`` file), atomically; never overwrites a file. ``rnnscope.data.save_recordings`` is the usual entry."""
    path = Path(path)
    if path.suffix != ".npz":
        raise RnnscopeError(f"{path}: recordings are written as .npz; name the file with the .npz suffix")
    if path.exists():
        raise RnnscopeError(f"{path}: already exists; rnnscope does not overwrite a file it did not create")
    arrays = dict(arrays)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    return atomic_write(path, write)


def read_recordings(path: str | Path, *, bin_ms: float = 50.0, align: str = "start_time") -> dict[str, Any]:
    """Read recordings from ``.npz``, ``.csv``, ``.parquet``/``.pq`` or ``.nwb`` (by suffix; see the module): the
    fields of ``rnnscope.data.Recordings`` as a dict, which ``rnnscope.data.load_recordings`` validates.

    bin_ms, align: binning of NWB spike times (ignored for other formats).
    """
    path = Path(path)
    if not path.is_file():
        raise RnnscopeError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _from_long(_read_csv(path), path)
    if suffix in (".parquet", ".pq"):
        return _from_long(_read_parquet(path), path)
    if suffix == ".nwb":
        return _load_nwb(path, bin_ms=check_positive(bin_ms, "bin_ms"), align=align)
    raise RnnscopeError(f"{path}: unknown recordings format {suffix!r}; expected one of {', '.join(RECORDING_SUFFIXES)}")


# -- npz ----------------------------------------------------------------------------------------------------------
def _load_npz(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise RnnscopeError(f"{path}: holds object (pickled) arrays; rnnscope never unpickles, store numbers "
                                "or text arrays") from None
        raise RnnscopeError(f"{path}: not a readable .npz file ({exc})") from None
    except OSError as exc:
        raise RnnscopeError(f"{path}: not a readable .npz file ({exc})") from None
    for key in ("activity", "time_ms"):
        if key not in arrays:
            raise RnnscopeError(f"{path}: missing array {key!r}; found {', '.join(sorted(arrays)) or 'none'}")
    unknown = [k for k in arrays if k not in ("activity", "time_ms", "averaged", "name")
               and not k.startswith(("condition_", "neuron_"))]
    if unknown:
        raise RnnscopeError(f"{path}: unknown array(s) {', '.join(sorted(unknown))}; expected activity, time_ms, "
                            "averaged, name, condition_<name>, neuron_<name>")
    averaged = arrays.get("averaged", np.asarray(False))
    if averaged.shape != () or averaged.dtype != bool:
        raise RnnscopeError(f"{path}: 'averaged' must be a single bool, got {averaged.dtype} of shape {averaged.shape}")
    name = str(arrays["name"]) if "name" in arrays else path.stem
    return dict(
        activity=arrays["activity"], time_ms=arrays["time_ms"], averaged=bool(averaged), name=name, source=str(path),
        conditions={k[len("condition_"):]: v for k, v in arrays.items() if k.startswith("condition_")},
        neurons={k[len("neuron_"):]: v for k, v in arrays.items() if k.startswith("neuron_")},
    )


# -- long format --------------------------------------------------------------------------------------------------
def _typed(values: list[str]) -> np.ndarray:
    """Text cells as float64 when every cell is a number, else as str."""
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return np.asarray(values, dtype=str)


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise RnnscopeError(f"{path}: empty file")
            header = [h.strip() for h in header]
            cells: list[list[str]] = [[] for _ in header]
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise RnnscopeError(f"{path}: line {line} has {len(row)} fields, the header {len(header)}")
                for column, cell in zip(cells, row, strict=True):
                    column.append(cell.strip())
    except UnicodeDecodeError as exc:
        raise RnnscopeError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    if len(set(header)) != len(header):
        raise RnnscopeError(f"{path}: duplicate column names in the header")
    return {name: _typed(column) for name, column in zip(header, cells, strict=True)}


def _read_parquet(path: Path) -> dict[str, np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise RnnscopeError(f"{path}: reading Parquet needs pyarrow (pip install 'rnnscope[parquet]')") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises assorted types for a file that is not Parquet
        raise RnnscopeError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    out = {}
    for name in table.column_names:
        values = table.column(name).to_numpy(zero_copy_only=False)
        out[name] = values.astype(np.float64) if values.dtype.kind in "biuf" else values.astype(str)
    return out


def _ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique ids (numeric order when numbers) and each row's index into them."""
    unique, inverse = np.unique(values, return_inverse=True)
    return unique, inverse.reshape(-1)


def _from_long(columns: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
    row_key = "trial" if "trial" in columns else "condition"
    missing = [k for k in (*_LONG_KEYS, row_key) if k not in columns]
    if missing:
        raise RnnscopeError(f"{path}: missing column(s) {', '.join(missing)} (long format needs neuron, trial or "
                            f"condition, time, rate); found {', '.join(columns) or 'none'}")
    rate, time = columns["rate"], columns["time"]
    for key, values in (("rate", rate), ("time", time)):
        if values.dtype.kind != "f":
            raise RnnscopeError(f"{path}: column {key!r} must hold numbers")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise RnnscopeError(f"{path}: column {key!r} has {bad.size} NaN or empty value(s), first at data row {int(bad[0]) + 1}")
    neuron_ids, neuron = _ids(columns["neuron"])
    row_ids, row = _ids(columns[row_key])
    times, step = _ids(time)
    shape = (row_ids.size, times.size, neuron_ids.size)
    flat = np.ravel_multi_index((row, step, neuron), shape)
    counts = np.bincount(flat, minlength=int(np.prod(shape)))
    if counts.max() > 1:
        first = int(np.flatnonzero(counts > 1)[0])
        r, t, n = np.unravel_index(first, shape)
        raise RnnscopeError(f"{path}: duplicate rows for neuron {neuron_ids[n]}, {row_key} {row_ids[r]}, time {times[t]}")
    if counts.min() == 0:
        first = int(np.flatnonzero(counts == 0)[0])
        r, t, n = np.unravel_index(first, shape)
        raise RnnscopeError(f"{path}: {int(np.sum(counts == 0))} missing rate(s): every neuron needs a rate at every "
                            f"{row_key} and time; first missing: neuron {neuron_ids[n]}, {row_key} {row_ids[r]}, time {times[t]}")
    activity = np.empty(int(np.prod(shape)))
    activity[flat] = rate
    conditions: dict[str, np.ndarray] = {}
    neurons: dict[str, Any] = {"id": neuron_ids}
    for name, values in columns.items():
        if name in (*_LONG_KEYS, row_key):
            continue
        per_row = _constant_within(values, row, row_ids.size)
        if per_row is not None:
            conditions[name] = per_row
            continue
        per_neuron = _constant_within(values, neuron, neuron_ids.size)
        if per_neuron is None:
            raise RnnscopeError(f"{path}: column {name!r} is neither constant within each {row_key} (a condition) "
                                "nor within each neuron (neuron metadata)")
        neurons[name] = per_neuron
    return dict(activity=activity.reshape(shape), conditions=conditions, time_ms=times, neurons=neurons,
                      averaged=row_key == "condition", name=path.stem, source=str(path))


def _constant_within(values: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray | None:
    """(count,) the value of each group, or None when some group holds two values."""
    first = np.empty(count, dtype=values.dtype)
    first[groups[::-1]] = values[::-1]  # the first row of each group wins
    return first if np.array_equal(first[groups], values) else None


# -- NWB ----------------------------------------------------------------------------------------------------------
def _scalar_columns(table: Any, skip: tuple[str, ...]) -> dict[str, np.ndarray]:
    out = {}
    for name in table.colnames:
        if name in skip:
            continue
        try:
            values = np.asarray(table[name].data[:])
        except Exception:  # ragged or reference columns (spike times, electrodes): not scalar metadata
            continue
        if values.ndim == 1 and values.dtype.kind in "biufUSO":
            if values.dtype.kind in "SO":
                try:
                    values = values.astype(str)
                except (TypeError, ValueError):
                    continue
            out[name] = values
    return out


def _load_nwb(path: Path, *, bin_ms: float, align: str) -> dict[str, Any]:
    try:
        from pynwb import NWBHDF5IO
    except ImportError:
        raise RnnscopeError(f"{path}: reading NWB needs pynwb (pip install 'rnnscope[nwb]')") from None
    try:
        with NWBHDF5IO(str(path), "r") as reader:
            nwb = reader.read()
            if nwb.units is None or len(nwb.units) == 0:
                raise RnnscopeError(f"{path}: no units table (spike times) in this NWB file")
            if nwb.trials is None or len(nwb.trials) == 0:
                raise RnnscopeError(f"{path}: no trials table in this NWB file")
            trials = nwb.trials
            if align not in trials.colnames and align not in ("start_time", "stop_time"):
                raise RnnscopeError(f"{path}: trials table has no column {align!r} to align on "
                                    f"({', '.join(trials.colnames)})")
            start = np.asarray(trials[align].data[:], dtype=np.float64)
            stop = np.asarray(trials["stop_time"].data[:], dtype=np.float64)
            spikes = [np.sort(np.asarray(nwb.units.get_unit_spike_times(i), dtype=np.float64))
                      for i in range(len(nwb.units))]
            conditions = _scalar_columns(trials, ("start_time", "stop_time", align, "timeseries", "tags"))
            neurons = _scalar_columns(nwb.units, ("spike_times", "obs_intervals", "electrodes", "waveform_mean",
                                                  "waveform_sd", "waveforms"))
            neurons.setdefault("session", np.full(len(spikes), str(nwb.session_id or nwb.identifier)))
    except RnnscopeError:
        raise
    except Exception as exc:  # h5py / hdmf raise assorted types for unreadable files
        raise RnnscopeError(f"{path}: not a readable NWB file ({str(exc).splitlines()[0][:200]})") from None
    duration_s = float(np.min(stop - start))
    bin_s = bin_ms / 1000.0
    steps = int(np.floor(duration_s / bin_s + 1e-9))
    if steps < 1:
        raise RnnscopeError(f"{path}: the shortest trial ({duration_s * 1000:.1f} ms after {align}) is shorter than "
                            f"one bin of {bin_ms} ms")
    edges = start[:, None] + np.arange(steps + 1)[None, :] * bin_s  # (trials, steps + 1)
    counts = np.stack([np.diff(np.searchsorted(times, edges, side="left"), axis=1) for times in spikes], axis=-1)
    return dict(activity=counts / bin_s, conditions=conditions, time_ms=(np.arange(steps) + 0.5) * bin_ms,
                      neurons=neurons, name=path.stem, source=str(path))
