"""``rnnscope reproduce dubreuil2022``: the population study of Dubreuil, Valente et al. 2022 as one resumable sweep
(networks per task trained with the paper's recipes, each resampled from one Gaussian and tested with ePAIRS), and
its table set beside the paper's published values.

The study is a ``SweepSpec`` run by ``run_sweep`` (re-running the same call continues where it stopped); the
comparison is computed from the sweep's rows only (``compare_with_paper``), so it can be recomputed from any table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from rnnscope._validation import json_ready
from rnnscope.errors import RnnscopeError

__all__ = [
    "PAPER_SOURCE", "PAPER_TABLE", "PAPER_TASKS", "STRICT_P", "LOOSE_P", "REPRODUCE_ANALYSES", "FULL_ANALYSES",
    "FULL_RANK_ANALYSES", "recipe_notes",
    "PaperValues", "TaskComparison", "Comparison", "Reproduction", "reproduction_spec", "compare_with_paper",
    "reproduce_dubreuil2022",
]

PAPER_SOURCE = ("Dubreuil, Valente, Beiran, Mastrogiuseppe & Ostojic 2022, 'The role of population structure in "
                "computations through neural dynamics', Nature Neuroscience 25:783-794 (100 networks per task; values "
                "as tabulated in rnnscope issue 15)")
STRICT_P = 5e-4  # 0.05 / 100: the paper's threshold
LOOSE_P = 0.05
PAPER_TASKS: tuple[str, ...] = ("rdm", "romo", "raposo", "mante", "dms")
REPRODUCE_ANALYSES: tuple[str, ...] = ("accuracy", "resampled_accuracy", "epairs_connectivity", "epairs_selectivity")
FULL_ANALYSES: tuple[str, ...] = (*REPRODUCE_ANALYSES, "minimal_populations")  # of the low-rank networks
FULL_RANK_ANALYSES: tuple[str, ...] = ("accuracy", "minimal_rank")  # of the full-rank networks (``full``)


@dataclass(frozen=True)
class PaperValues:
    """One task's published numbers: mean trained accuracy, mean accuracy of single-Gaussian resampled networks,
    networks (of ``networks``) whose connectivity-space ePAIRS p is below 5e-4 and below 0.05, and the median of the
    ePAIRS effect size c with its quartiles."""

    accuracy: float
    resampled_accuracy: float
    significant_strict: int
    significant: int
    networks: int
    c_median: float
    c_low: float
    c_high: float

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "resampled_accuracy": self.resampled_accuracy,
                "significant_strict": self.significant_strict, "significant": self.significant,
                "networks": self.networks, "c_median": self.c_median, "c_quartiles": [self.c_low, self.c_high]}


PAPER_TABLE: Mapping[str, PaperValues] = MappingProxyType({
    "rdm": PaperValues(1.00, 1.00, 5, 36, 100, 0.07, 0.03, 0.13),
    "romo": PaperValues(0.996, 0.958, 5, 35, 100, 0.07, 0.02, 0.11),
    "raposo": PaperValues(1.00, 1.00, 9, 51, 100, 0.08, 0.02, 0.13),
    "mante": PaperValues(0.998, 0.70, 100, 100, 100, 1.84, 1.78, 1.93),
    "dms": PaperValues(0.961, 0.54, 100, 100, 100, 0.86, 0.59, 1.02),
})


def _finite(values: Sequence[Any]) -> np.ndarray:
    """The finite numbers among ``values`` (None and NaN dropped): (n,)."""
    kept = [float(v) for v in values if v is not None and not isinstance(v, (str, bool)) and math.isfinite(float(v))]
    return np.asarray(kept, dtype=np.float64)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _quartiles(values: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """25th, 50th, 75th percentiles (numpy's linear interpolation); Nones for no value."""
    if not values.size:
        return None, None, None
    low, median, high = np.percentile(values, [25, 50, 75])
    return float(low), float(median), float(high)


def _counts(values: Sequence[Any]) -> dict[str, int]:
    """How many networks have each value (None: not found / not applicable), keys as strings for JSON."""
    out: dict[str, int] = {}
    for value in values:
        out[str(value)] = out.get(str(value), 0) + 1
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class TaskComparison:
    """One task's networks summarised, with the raw per-network values kept (axis 0: low-rank networks with a row,
    in the table's order; None where an analysis gave no value). ``epairs_tested``: networks with a connectivity p.
    minimal_rank: of the full-rank networks whose minimal rank was sought (the paper's procedure: truncate,
    retrain); minimal_populations: of the low-rank networks whose minimal number was sought (None: none suffices
    up to the largest number tried)."""

    task: str
    networks: int
    accuracy: tuple[float | None, ...]
    resampled_accuracy: tuple[float | None, ...]
    epairs_c: tuple[float | None, ...]
    epairs_p: tuple[float | None, ...]
    selectivity_c: tuple[float | None, ...]
    selectivity_p: tuple[float | None, ...]
    minimal_rank: tuple[int | None, ...]
    minimal_populations: tuple[int | None, ...]
    paper: PaperValues | None
    full_rank_networks: int = 0

    @property
    def accuracy_mean(self) -> float | None:
        return _mean(_finite(self.accuracy))

    @property
    def resampled_mean(self) -> float | None:
        return _mean(_finite(self.resampled_accuracy))

    @property
    def epairs_tested(self) -> int:
        return int(_finite(self.epairs_p).size)

    @property
    def significant_strict(self) -> int:
        return int((_finite(self.epairs_p) < STRICT_P).sum())

    @property
    def significant(self) -> int:
        return int((_finite(self.epairs_p) < LOOSE_P).sum())

    @property
    def c_quartiles(self) -> tuple[float | None, float | None, float | None]:
        """(25th percentile, median, 75th percentile) of the connectivity-space c."""
        return _quartiles(_finite(self.epairs_c))

    def to_dict(self) -> dict[str, Any]:
        low, median, high = self.c_quartiles
        s_low, s_median, s_high = _quartiles(_finite(self.selectivity_c))
        selectivity = _finite(self.selectivity_p)
        return {
            "task": self.task, "networks": self.networks, "full_rank_networks": self.full_rank_networks,
            "accuracy_mean": self.accuracy_mean, "resampled_accuracy_mean": self.resampled_mean,
            "epairs_tested": self.epairs_tested, "significant_strict": self.significant_strict,
            "significant": self.significant, "c_median": median, "c_quartiles": [low, high],
            "selectivity_tested": int(selectivity.size), "selectivity_significant_strict":
                int((selectivity < STRICT_P).sum()), "selectivity_significant": int((selectivity < LOOSE_P).sum()),
            "selectivity_c_median": s_median, "selectivity_c_quartiles": [s_low, s_high],
            "minimal_rank_counts": _counts(self.minimal_rank) if self.minimal_rank else None,
            "minimal_populations_counts": _counts(self.minimal_populations) if self.minimal_populations else None,
            "paper": None if self.paper is None else self.paper.to_dict(),
            "per_network": {"accuracy": list(self.accuracy), "resampled_accuracy": list(self.resampled_accuracy),
                            "epairs_c": list(self.epairs_c), "epairs_p": list(self.epairs_p),
                            "selectivity_c": list(self.selectivity_c), "selectivity_p": list(self.selectivity_p)},
        }


def _number(row: Mapping[str, Any], column: str) -> float | None:
    value = row.get(column)
    if value is None or isinstance(value, (str, bool)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _integer(row: Mapping[str, Any], column: str) -> int | None:
    value = row.get(column)
    return None if value is None or isinstance(value, (str, bool)) or not math.isfinite(float(value)) else int(value)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{'not found' if k == 'None' else k}: {n}" for k, n in counts.items()) or "-"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Comparison:
    """The study's table beside the paper's: one ``TaskComparison`` per task (the paper's order first), the
    thresholds of the ePAIRS counts, and the source of the published values."""

    tasks: tuple[TaskComparison, ...]
    strict_p: float = STRICT_P
    loose_p: float = LOOSE_P
    source: str = PAPER_SOURCE

    def task(self, name: str) -> TaskComparison:
        for entry in self.tasks:
            if entry.task == name:
                return entry
        raise RnnscopeError(f"task: {name!r} is not in the comparison (tasks: {', '.join(t.task for t in self.tasks)})")

    def to_dict(self) -> dict[str, Any]:
        return {"thresholds": [self.strict_p, self.loose_p], "source": self.source,
                "tasks": [t.to_dict() for t in self.tasks]}

    def to_markdown(self, notes: Sequence[str] = ()) -> str:
        """The table as Markdown: each cell 'ours (paper)'; ePAIRS in connectivity space."""
        lines = ["| task | networks | trained accuracy | single-Gaussian resampled | ePAIRS p < 5e-4 / p < 0.05 | "
                 "median c [quartiles] |", "|---|---|---|---|---|---|"]
        for t in self.tasks:
            low, median, high = t.c_quartiles
            paper = t.paper
            ours_c = "-" if median is None else f"{median:.2f} [{low:.2f}, {high:.2f}]"
            cells = [f"{_fmt(t.accuracy_mean)}", f"{_fmt(t.resampled_mean)}",
                     f"{t.significant_strict} / {t.significant} of {t.epairs_tested}", ours_c]
            if paper is not None:
                cells[0] += f" ({paper.accuracy:.3f})"
                cells[1] += f" ({paper.resampled_accuracy:.3f})"
                cells[2] += f" ({paper.significant_strict} / {paper.significant} of {paper.networks})"
                cells[3] += f" ({paper.c_median:.2f} [{paper.c_low:.2f}, {paper.c_high:.2f}])"
            lines.append(f"| {t.task} | {t.networks} | " + " | ".join(cells) + " |")
        lines += ["", "Each cell: this study (the paper's value). ePAIRS in connectivity space; c quartiles are the 25th "
                  "and 75th percentiles.", f"Paper: {self.source}."]
        extra = [(t.task, _counts(t.minimal_rank), _counts(t.minimal_populations)) for t in self.tasks
                 if t.minimal_rank or t.minimal_populations]
        if extra:
            lines += ["", "| task | minimal rank (full-rank networks): networks per value | minimal populations "
                          "(low-rank networks): networks per value |", "|---|---|---|"]
            lines += [f"| {task} | {_counts_text(ranks)} | {_counts_text(populations)} |"
                      for task, ranks, populations in extra]
        lines += [f"Note: {note}" for note in notes]
        return "\n".join(lines) + "\n"


def compare_with_paper(rows: Sequence[Mapping[str, Any]], *, tasks: Sequence[str] | None = None) -> Comparison:
    """The comparison of a sweep's rows (one per network, with a ``task`` column and the columns of
    ``analyse_network``) with ``PAPER_TABLE``: per task, over its low-rank networks, the mean trained accuracy
    (``accuracy``), the mean single-Gaussian resampled accuracy (``resampled_accuracy``), how many networks have a
    connectivity-space ePAIRS ``p < STRICT_P`` and ``p < LOOSE_P`` (of those with a p), and the median and quartiles
    of c; the minimal ranks come from the full-rank networks (rows whose ``full_rank`` is true), which enter nothing
    else. tasks: the tasks to report, in this order (default: the paper's tasks present in the rows, then any other
    task in the rows)."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    full_rank: dict[str, list[Mapping[str, Any]]] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping) or not isinstance(row.get("task"), str):
            raise RnnscopeError(f"rows[{index}]: expected a row with a 'task' name, got {row!r:.80}")
        (full_rank if row.get("full_rank") is True else by_task).setdefault(row["task"], []).append(row)
    if tasks is None:
        present = [*by_task, *full_rank]
        tasks = [t for t in PAPER_TASKS if t in present] + [t for t in dict.fromkeys(present) if t not in PAPER_TASKS]
    out = []
    for name in tasks:
        chosen = by_task.get(name, [])
        full = full_rank.get(name, [])
        out.append(TaskComparison(
            task=name, networks=len(chosen),
            accuracy=tuple(_number(r, "accuracy") for r in chosen),
            resampled_accuracy=tuple(_number(r, "resampled_accuracy") for r in chosen),
            epairs_c=tuple(_number(r, "epairs_connectivity_c") for r in chosen),
            epairs_p=tuple(_number(r, "epairs_connectivity_p") for r in chosen),
            selectivity_c=tuple(_number(r, "epairs_selectivity_c") for r in chosen),
            selectivity_p=tuple(_number(r, "epairs_selectivity_p") for r in chosen),
            minimal_rank=tuple(_integer(r, "minimal_rank") for r in full if r.get("minimal_rank_max") is not None),
            minimal_populations=tuple(_integer(r, "minimal_populations") for r in chosen
                                      if r.get("minimal_populations_max") is not None),
            paper=PAPER_TABLE.get(name), full_rank_networks=len(full)))
    return Comparison(tuple(out))


def _check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tasks, str) or not isinstance(tasks, Sequence) or not tasks:
        raise RnnscopeError(f"tasks: expected a non-empty list from {', '.join(PAPER_TASKS)}, got {tasks!r}")
    for task in tasks:
        if task not in PAPER_TASKS:
            raise RnnscopeError(f"tasks: {task!r} is not a task of the study; tasks: {', '.join(PAPER_TASKS)}")
    return tuple(dict.fromkeys(tasks))


def _recipe(task: str) -> str:
    """The recipe a task trains with: the paper's, except where a recommended one replaces it (dms)."""
    from rnnscope.tasks import RECOMMENDED

    return "paper" if task not in RECOMMENDED else RECOMMENDED[task]


def recipe_notes(tasks: Sequence[str]) -> tuple[str, ...]:
    """What the study does differently from the paper, one sentence per difference."""
    notes = []
    for task in tasks:
        recipe = _recipe(task)
        if recipe != "paper":
            notes.append(f"{task} trains with rnnscope's recommended recipe {recipe!r}, not the paper's: the paper's "
                         f"{task} recipe was not verified to train here")
    return tuple(notes)


def reproduction_spec(
    *, networks: int = 100, tasks: Sequence[str] = PAPER_TASKS, size: int = 512, epochs: int | None = None,
    full: bool = False, analysis_options: Mapping[str, Any] | None = None,
):
    """The study as a ``SweepSpec`` (built by ``parse_spec``): one configuration per task with its paper recipe
    (the recommended one for dms, see ``recipe_notes``), seeds 0..networks-1, networks of ``size`` neurons,
    ``epochs`` (None: the recipe's) per stage, and the analyses ``REPRODUCE_ANALYSES``. With ``full`` (expensive),
    the low-rank networks also get the minimal number of populations (``FULL_ANALYSES``), and each task gets as many
    full-rank networks (the same recipe made full-rank by ``adapt_recipe``), whose minimal rank is found by
    truncating and retraining them (``FULL_RANK_ANALYSES``), as the paper did."""
    from rnnscope._validation import check_int
    from rnnscope.sweep._analyses import check_analysis_options
    from rnnscope.sweep._spec import parse_spec

    check_int(networks, "networks", minimum=1)
    tasks = _check_tasks(tasks)
    check_analysis_options(analysis_options)  # before any job: a bad option would fail every one
    configurations: list[dict[str, Any]] = [{"task": task, "recipe": _recipe(task)} for task in tasks]
    if full:
        configurations += [{"task": task, "recipe": _recipe(task), "full_rank": True,
                            "analyses": list(FULL_RANK_ANALYSES)} for task in tasks]
    defaults: dict[str, Any] = {"size": size, "seeds": list(range(networks)),
                                "analyses": list(FULL_ANALYSES if full else REPRODUCE_ANALYSES)}
    if epochs is not None:
        defaults["epochs"] = epochs
    # ePAIRS as the paper computed it (null clouds not whitened; ``rnnscope.analysis.epairs``), so the c column is
    # comparable with the paper's: rdm networks trained here by the paper's recipe (75, N = 512) then give median c
    # 0.085 (0.038-0.140), 5/75 at p < 5e-4 and 28/75 at p < 0.05, against the paper's 0.072 (0.028-0.126), 5/100
    # and 36/100 (Mann-Whitney p = 0.24); rnnscope's whitened null gives c 0.01-0.03 higher in 3-6 dimensions.
    defaults["analysis_options"] = {"epairs_procedure": "paper", **dict(analysis_options or {})}
    return parse_spec({**defaults, "configurations": configurations}, source="dubreuil2022")


@dataclass(frozen=True)
class Reproduction:
    """A run of the study: where it is (``directory``: the sweep's table, ``comparison.json``, ``comparison.md``),
    the sweep's outcome (``sweep``: a ``SweepResult``), the comparison with the paper, what differs from the paper's
    procedure (``notes``) and the wall time of this call (``seconds``)."""

    directory: Path
    tasks: tuple[str, ...]
    networks: int
    size: int
    epochs: int | None
    full: bool
    sweep: Any
    comparison: Comparison
    notes: tuple[str, ...]
    seconds: float
    files: tuple[Path, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        sweep = self.sweep.to_dict()
        sweep.pop("rows", None)  # the table holds them; the comparison keeps the per-network values
        return {"directory": str(self.directory), "tasks": list(self.tasks), "networks": self.networks,
                "size": self.size, "epochs": self.epochs, "full": self.full, "sweep": sweep,
                "comparison": self.comparison.to_dict(), "notes": list(self.notes), "seconds": self.seconds,
                "files": [str(p) for p in self.files]}


def reproduce_dubreuil2022(
    out: str | Path, *, networks: int = 100, tasks: Sequence[str] = PAPER_TASKS, size: int = 512,
    epochs: int | None = None, full: bool = False, analysis_options: Mapping[str, Any] | None = None,
    executor: str = "local", scheduler: str | None = None, workers: int | None = None, progress: bool = True,
) -> Reproduction:
    """Train and analyse the study's networks (``reproduction_spec``) with ``run_sweep`` into ``out`` (re-running
    the same call skips finished networks), compare them with the paper (``compare_with_paper``) and write
    ``out/comparison.json`` and ``out/comparison.md`` (recomputed from the table at every call). Figures:
    ``rnnscope.sweep`` plot functions of ``Reproduction.comparison`` (the command saves them in ``out/figures``)."""
    from rnnscope import io
    from rnnscope.sweep._runner import run_sweep

    start = time.perf_counter()
    tasks = _check_tasks(tasks)
    spec = reproduction_spec(networks=networks, tasks=tasks, size=size, epochs=epochs, full=full,
                             analysis_options=analysis_options)
    result = run_sweep(spec, out, executor=executor, scheduler=scheduler, workers=workers, progress=progress)
    comparison = compare_with_paper(result.rows, tasks=tasks)
    notes = recipe_notes(tasks)
    if result.failed or result.pending:
        notes += (f"{result.failed} network(s) failed and {result.pending} are pending: the comparison holds the "
                  f"{result.done} finished ones; re-run the same command to retry",)
    directory = Path(out)
    reproduction = Reproduction(directory, tasks, networks, size, epochs, full, result, comparison, notes,
                                time.perf_counter() - start,
                                (directory / "comparison.json", directory / "comparison.md"))
    io.write_json(directory / "comparison.json", json_ready(reproduction.to_dict()))
    io.write_text(directory / "comparison.md", comparison.to_markdown(notes))
    return reproduction
