"""Task-aware pieces of a report: the names of conditions and their values, choice tables (dms match accuracy per
sample/test pair, romo f1-f2 decision map), effective overlaps grouped by any condition, and which population
carries which input in which context. No matplotlib here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnscope.analysis import effective_overlaps
from rnnscope.tasks import Task, TrialBatch, correct_trials, decisions, epoch_mask

__all__ = [
    "value_name",
    "relevant_inputs",
    "ChoiceTable",
    "choice_tables",
    "ConditionOverlaps",
    "condition_overlaps",
    "Gating",
    "population_gating",
    "OVERLAP_CONDITIONS",
]

# conditions whose values split trials into a few regimes worth comparing effective overlaps across
OVERLAP_CONDITIONS = ("context", "modality", "sample", "test", "match", "f1")
# (rows, columns, what the table shows): a choice table for tasks whose decision depends on two conditions
_TABLES = (("sample", "test", "accuracy"), ("f1", "f2", "choices"))


def value_name(task: Task, condition: str, value: Any) -> str:
    """The name of one value of a condition ("colour" for mante's context 0), else the value as text."""
    declared = getattr(task, "condition_labels", None)  # a user task need not declare it
    table = (declared.get(condition) if isinstance(declared, Mapping) else None) or {}
    try:
        key = float(value)
    except (TypeError, ValueError):
        return str(value)
    for k, name in table.items():
        if float(k) == key:
            return str(name)
    return f"{key:g}"


def relevant_inputs(task: Task, condition: str, value: Any) -> tuple[str, ...]:
    """The inputs a context (or modality) value makes relevant, () when the task does not say."""
    declared = getattr(task, "relevant_inputs", None)
    table = (declared.get(condition) if isinstance(declared, Mapping) else None) or {}
    for k, names in table.items():
        if float(k) == float(value):
            return tuple(n for n in names if n in task.input_names)
    return ()


# -- choice tables ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChoiceTable:
    """Behaviour against two conditions. rows, columns: condition names; row_values: (rows,), column_values:
    (columns,); row_names, column_names: their names; choices: (rows, columns) fraction of +1 decisions;
    accuracy: (rows, columns) fraction correct; trials: (rows, columns) counts (NaN where no trial); shows:
    "accuracy" (dms: match / non-match per pair) or "choices" (romo: decision map)."""

    rows: str
    columns: str
    row_values: np.ndarray
    column_values: np.ndarray
    row_names: tuple[str, ...]
    column_names: tuple[str, ...]
    choices: np.ndarray
    accuracy: np.ndarray
    trials: np.ndarray
    shows: str

    def to_dict(self) -> dict[str, Any]:
        def clean(a: np.ndarray) -> list:
            return [[None if not np.isfinite(v) else float(v) for v in row] for row in np.asarray(a, dtype=float)]

        return {"rows": self.rows, "columns": self.columns, "row_values": self.row_values.tolist(),
                "column_values": self.column_values.tolist(), "row_names": list(self.row_names),
                "column_names": list(self.column_names), "choices": clean(self.choices),
                "accuracy": clean(self.accuracy), "trials": self.trials.astype(int).tolist(), "shows": self.shows}


def choice_tables(outputs: np.ndarray, batch: TrialBatch, task: Task) -> tuple[ChoiceTable, ...]:
    """Fraction of +1 choices and accuracy for every pair of values of (sample, test) or (f1, f2), where the task
    has those conditions. outputs: (trials, time, outputs)."""
    choice = decisions(outputs, batch.mask)[:, 0] > 0
    correct = correct_trials(outputs, batch)
    out = []
    for rows, columns, shows in _TABLES:
        if rows not in batch.conditions or columns not in batch.conditions:
            continue
        r, c = np.asarray(batch.conditions[rows]), np.asarray(batch.conditions[columns])
        rv, cv = np.unique(r), np.unique(c)
        counts = np.zeros((len(rv), len(cv)))
        frac = np.full((len(rv), len(cv)), np.nan)
        acc = np.full((len(rv), len(cv)), np.nan)
        for i, a in enumerate(rv):
            for j, b in enumerate(cv):
                keep = (r == a) & (c == b)
                counts[i, j] = keep.sum()
                if keep.any():
                    frac[i, j], acc[i, j] = choice[keep].mean(), correct[keep].mean()
        out.append(ChoiceTable(rows, columns, rv.astype(float), cv.astype(float),
                               tuple(value_name(task, rows, v) for v in rv),
                               tuple(value_name(task, columns, v) for v in cv), frac, acc, counts, shows))
    return tuple(out)


# -- effective overlaps by condition ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ConditionOverlaps:
    """Effective overlaps of trials grouped by one condition. condition: its name; values: (groups,) the values
    (bin indices for a binned condition); names: the values' names; per_group: one {epoch: EffectiveOverlaps} per value (``overlaps`` (rank, rank),
    ``input_overlaps`` (rank, inputs), ``gain`` (size,))."""

    condition: str
    values: np.ndarray
    names: tuple[str, ...]
    per_group: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "values": self.values.tolist(), "names": list(self.names),
                "groups": [{epoch: {"overlaps": np.asarray(e.overlaps).tolist(),
                                    "input_overlaps": np.asarray(e.input_overlaps).tolist()}
                            for epoch, e in group.items()} for group in self.per_group]}


def condition_overlaps(weights: Any, states: np.ndarray, batch: TrialBatch, task: Task,
                       *, max_values: int = 12) -> tuple[ConditionOverlaps, ...]:
    """Effective overlaps per task epoch for the trials of each value of every condition in
    ``OVERLAP_CONDITIONS`` the batch has; a condition of more than ``max_values`` values is split into three
    bins of about equal counts, named by their range ("10-15"). states: (trials, time, size)."""
    out = []
    steps = states.shape[1]
    for name in OVERLAP_CONDITIONS:
        if name not in batch.conditions:
            continue
        raw = np.asarray(batch.conditions[name])
        values = np.unique(raw)
        names = [value_name(task, name, v) for v in values]
        if len(values) > max_values:  # many numeric values (romo's f1): three bins of about equal counts
            edges = np.quantile(raw, [1 / 3, 2 / 3])
            raw = np.searchsorted(edges, raw, side="right")
            names = [f"{batch.conditions[name][raw == b].min():g}-{batch.conditions[name][raw == b].max():g}"
                     for b in np.unique(raw)]
            values = np.unique(raw)
        if len(values) < 2:
            continue
        groups = []
        for value in values:
            keep = raw == value
            per_epoch = {}
            for epoch, (start, stop) in batch.epochs.items():
                selected = states[keep][epoch_mask(np.asarray(start)[keep], np.asarray(stop)[keep], steps)]
                if len(selected):
                    per_epoch[epoch] = effective_overlaps(weights, selected)
            groups.append(per_epoch)
        out.append(ConditionOverlaps(name, values, tuple(names), tuple(groups)))
    return tuple(out)


# -- populations and contexts -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gating:
    """Which population carries which input in which context, during ``epoch``. condition: "context" or
    "modality"; names: (groups,) the context names; populations: (populations,) their names; source: where the
    labels come from ("design" or "two-population fit"); drive: (populations, groups, rank, inputs), each
    population's part ``sum_{k in p} n_k phi'_k w_in_k / size`` of the effective input overlaps (the parts add up to
    the whole); relevant: (groups,) the inputs each context makes relevant."""

    condition: str
    epoch: str
    names: tuple[str, ...]
    populations: tuple[str, ...]
    source: str
    input_names: tuple[str, ...]
    drive: np.ndarray
    relevant: tuple[tuple[str, ...], ...]

    def carriers(self, min_ratio: float = 2.0) -> list[tuple[int, int, str, float, float]]:
        """(population, context, input, drive there, largest drive of that input by that population in the other
        contexts) wherever a population carries most of a relevant input in its context and at least
        ``min_ratio`` times less of it elsewhere (drive: norm over latent directions)."""
        size = np.linalg.norm(self.drive, axis=2)  # (populations, groups, inputs)
        out = []
        for g, inputs in enumerate(self.relevant):
            for name in inputs:
                i = self.input_names.index(name)
                p = int(np.argmax(size[:, g, i]))
                here = float(size[p, g, i])
                total = float(size[:, g, i].sum())
                others = [float(size[p, h, i]) for h in range(len(self.names)) if h != g and name not in self.relevant[h]]
                if here <= 1e-6 or here < 0.5 * total or not others:
                    continue
                if max(others) * min_ratio <= here:
                    out.append((p, g, name, here, max(others)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "epoch": self.epoch, "names": list(self.names),
                "populations": list(self.populations), "source": self.source, "input_names": list(self.input_names),
                "drive": self.drive.tolist(), "relevant": [list(r) for r in self.relevant],
                "carriers": [{"population": p, "context": self.names[g], "input": i, "drive": d, "elsewhere": o}
                             for p, g, i, d, o in self.carriers()]}


def population_gating(weights: Any, groups: ConditionOverlaps, labels: np.ndarray, task: Task, *,
                      population_names: tuple[str, ...] = (), source: str = "", epoch: str = "stimulus") -> Gating | None:
    """Split the effective input overlaps of each context group (``groups``, from ``condition_overlaps``) by
    population. labels: (size,) integers 0..P-1. None when an epoch is missing or there is one population."""
    labels = np.asarray(labels)
    count = int(labels.max()) + 1 if labels.size else 0
    if count < 2 or not all(epoch in g for g in groups.per_group):
        return None
    n, w_in = np.asarray(weights.n, dtype=float), np.asarray(weights.w_in, dtype=float)  # (size, rank), (size, inputs)
    size = n.shape[0]
    drive = np.zeros((count, len(groups.per_group), n.shape[1], w_in.shape[1]))
    for g, per_epoch in enumerate(groups.per_group):
        gain = np.asarray(per_epoch[epoch].gain, dtype=float)
        for p in range(count):
            keep = labels == p
            drive[p, g] = (n[keep] * gain[keep, None]).T @ w_in[keep] / size
    names = (tuple(f'population {p} "{n}"' for p, n in enumerate(population_names)) if len(population_names) == count
             else tuple(f"population {p}" for p in range(count)))
    relevant = tuple(relevant_inputs(task, groups.condition, v) for v in groups.values)
    return Gating(groups.condition, epoch, groups.names, names, source, tuple(task.input_names), drive, relevant)
