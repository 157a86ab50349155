"""The universality study of Maheswaranathan, Williams, Golub, Ganguli & Sussillo (NeurIPS 2019): train a population
of vanilla/UGRNN/GRU/LSTM networks on one task, then compare them by geometry (SVCCA distance between their
condition-aligned hidden-state trajectories) and by topology (the fixed points of their dynamics).

Geometry: ``rnnscope.analysis.SVCCADistance`` (99 % of the variance) between hidden states on the same trials,
``pairwise_distances`` and ``mds_embedding``. Topology: the certified fixed points of ``F(h, 0)`` in each cell's
reachable box (``find_state_fixed_points``), the graph of where each saddle's unstable modes lead
(``fixed_point_graph``), its signature (class counts and Weisfeiler-Lehman hash) and ``topology_distance``.
"""

from __future__ import annotations

import copy
import csv
import io as _stdio
import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rnnscope.io as io
from rnnscope._validation import as_generator, check_int
from rnnscope.analysis import (
    SVCCADistance,
    find_state_fixed_points,
    fixed_point_graph,
    mds_embedding,
    pairwise_distances,
    topology_distance,
    topology_signature,
)
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models import ACTIVATIONS, CELLS, GatedConfig
from rnnscope.sweep._train import Population, SweepTraining, train_population
from rnnscope.tasks import Task

__all__ = ["PAPER_SIZES", "PAPER_L2", "StudyAnalysis", "UniversalityStudy", "grid_configs", "paper_grid",
           "analyse_population", "universality_study", "TABLE_COLUMNS"]

PAPER_SIZES = (64, 128, 256)
PAPER_L2 = (1e-5, 1e-4, 1e-3, 1e-2)
CLASSES = ("stable", "saddle", "source")
TABLE_COLUMNS = ("architecture", "activation", "size", "l2", "seed", "accuracy", "stable", "saddle", "source",
                 "signature", "path")


def grid_configs(task: Task, *, architectures: Sequence[str] = CELLS, activations: Sequence[str] = ACTIVATIONS,
                 sizes: Sequence[int] = (64, 128), l2: Sequence[float] = (1e-4,)) -> list[GatedConfig]:
    """Every combination (architecture x activation x size x l2) as configs with ``task``'s inputs and outputs."""
    for name, values in (("architectures", architectures), ("activations", activations), ("sizes", sizes),
                         ("l2", l2)):
        if len(values) == 0 or len(set(values)) != len(values):
            raise RnnscopeError(f"{name}: expected a non-empty list without repeats, got {list(values)}")
    return [GatedConfig(cell=c, size=n, inputs=len(task.input_names), outputs=len(task.output_names), activation=a,
                        l2=float(w)) for c, a, n, w in itertools.product(architectures, activations, sizes, l2)]


def paper_grid(task: Task) -> list[GatedConfig]:
    """The paper's 96 configurations: 4 cells x 2 activations x sizes 64, 128, 256 x L2 1e-5 .. 1e-2."""
    return grid_configs(task, sizes=PAPER_SIZES, l2=PAPER_L2)


@dataclass(frozen=True, eq=False)
class StudyAnalysis:
    """Geometry and topology of a population (axis 0 = networks in population order).

    fixed_points: per network, counts of certified fixed points per class {stable, saddle, source}; signatures: per
    network, its ``TopologySignature``; geometry_distance, topology_distance: (networks, networks); geometry_mds,
    topology_mds: 2-D MDS embeddings (None for a single network); converged: per network, the fraction of the
    finder's starts that ended on a certified fixed point (a diagnostic, not a promise).
    """

    fixed_points: tuple[dict[str, int], ...]
    signatures: tuple[Any, ...]
    geometry_distance: np.ndarray
    topology_distance: np.ndarray
    geometry_mds: Any
    topology_mds: Any
    converged: tuple[float, ...]


def _trajectories(model, inputs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.trajectories(inputs).double().numpy()  # (trials, time, state_size)


def _topology(model, states: np.ndarray, *, starts: int, rng: np.random.Generator):
    """The certified fixed points of ``F(h, 0)`` (the input at rest; the flip-flop's between pulses), their graph
    and its signature."""
    double = copy.deepcopy(model).double()
    for p in double.parameters():
        p.requires_grad_(False)
    lower, upper = model.config.state_bounds
    u = np.zeros(model.inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the fraction converged is reported, not warned
        result = find_state_fixed_points(double.transition, u, states=states, rng=rng, starts=starts,
                                         structured=starts, lower=lower, upper=upper)
        graph = fixed_point_graph(double.transition, u, result.fixed_points, rng=rng, lower=lower, upper=upper)
    points = result.fixed_points
    counts = {c: int(np.sum(points.stability == c)) for c in CLASSES}
    return counts, topology_signature(graph), result


def analyse_population(
    population: Population, task: Task, *, rng: int | np.random.Generator, trials: int = 32,
    conditions: int = 1000, starts: int = 64,
) -> StudyAnalysis:
    """Geometry and topology of every network of ``population`` on ``trials`` trials of ``task`` (one batch,
    the same for every network). Geometry: hidden states h (trials x time, subsampled to at most ``conditions``
    rows) compared by SVCCA (99 % of the variance). Topology: the fixed points of ``F(h, 0)`` found from ``starts``
    states of each network's trajectories."""
    rng = as_generator(rng, name="rng")
    trials = check_int(trials, "trials", minimum=1)
    conditions = check_int(conditions, "conditions", minimum=2)
    starts = check_int(starts, "starts", minimum=1)
    batch = task.sample(trials, rng=rng)
    inputs = torch.from_numpy(batch.inputs)
    rows = batch.trials * batch.steps
    keep = np.linspace(0, rows - 1, min(rows, conditions)).round().astype(int)
    hidden, counts, signatures, converged = [], [], [], []
    for record in population.networks:
        model = io.load_run(record.path).model
        states = _trajectories(model, inputs)
        hidden.append(states[..., : model.size].reshape(rows, model.size)[keep])
        c, signature, result = _topology(model, states.reshape(rows, -1)[keep], starts=starts, rng=rng)
        counts.append(c)
        signatures.append(signature)
        converged.append(float(np.mean(result.status == "fixed")))
    geometry_distance = pairwise_distances(hidden, SVCCADistance(variance=0.99))
    topology = np.array([[topology_distance(a, b) for b in signatures] for a in signatures])
    geometry_mds = mds_embedding(geometry_distance, dims=2) if len(hidden) >= 2 else None
    topology_mds = mds_embedding(topology, dims=2) if len(hidden) >= 2 else None
    return StudyAnalysis(tuple(counts), tuple(signatures), geometry_distance, topology, geometry_mds,
                         topology_mds, tuple(converged))


@dataclass(frozen=True, eq=False)
class UniversalityStudy:
    """A trained population and its analysis; ``files``: what was written (table, figures)."""

    population: Population
    analysis: StudyAnalysis
    files: tuple[Path, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One row per network (``TABLE_COLUMNS``)."""
        out = []
        for record, counts, signature in zip(self.population.networks, self.analysis.fixed_points,
                                             self.analysis.signatures, strict=True):
            c = record.config
            out.append({"architecture": c.cell, "activation": c.activation, "size": c.size, "l2": c.l2,
                        "seed": record.seed, "accuracy": record.score, "stable": counts.get("stable"),
                        "saddle": counts.get("saddle"), "source": counts.get("source"), "signature": signature.wl_hash,
                        "path": str(record.path)})
        return out

    def to_dict(self) -> dict[str, Any]:
        matrix = lambda a: None if a is None else np.asarray(a).tolist()  # noqa: E731
        networks = []
        for row, counts, converged in zip(self.rows(), self.analysis.fixed_points, self.analysis.converged,
                                          strict=True):
            networks.append({"architecture": row["architecture"], "activation": row["activation"], "size": row["size"],
                             "l2": row["l2"], "seed": row["seed"], "accuracy": row["accuracy"],
                             "fixed_points": counts, "signature": row["signature"], "converged": converged})
        return {"networks": networks, "geometry_distance": matrix(self.analysis.geometry_distance),
                "topology_distance": matrix(self.analysis.topology_distance),
                "files": [str(p) for p in self.files]}


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = _stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TABLE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _parquet(rows: list[dict[str, Any]]) -> bytes | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    table = pa.table({name: [row[name] for row in rows] for name in TABLE_COLUMNS})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def universality_study(
    configs: Sequence[GatedConfig], task: Task, seeds: Sequence[int], *, out: str | Path, training: SweepTraining,
    workers: int = 1, device: str = "cpu", rng: int = 0, trials: int = 32, starts: int = 64, progress: bool = False,
) -> UniversalityStudy:
    """Train (resumably) and analyse a population; write ``out/table.csv`` (and ``table.parquet`` with pyarrow),
    ``out/analysis.json`` and the MDS figures ``out/mds_geometry.png``, ``out/mds_topology.png`` (coloured by
    architecture). ``rng`` seeds the analysis (trials, fixed-point starts)."""
    from rnnscope.sweep._plots import plot_mds  # matplotlib only when figures are drawn

    out = io.check_output(out, directory=True)
    if out.is_dir() and any(out.iterdir()) and not (out / "networks").is_dir():
        raise RnnscopeError(f"{out}: is not empty and holds no study (no networks/); choose another --out")
    population = train_population(configs, task, seeds, out=out, training=training, workers=workers, device=device,
                                  progress=progress)
    result = analyse_population(population, task, rng=rng, trials=trials, starts=starts)
    study = UniversalityStudy(population, result, ())
    rows = study.rows()
    files = [io.write_text(out / "table.csv", _csv(rows))]
    parquet = _parquet(rows)
    if parquet is not None:
        files.append(io.write_bytes(out / "table.parquet", parquet))
    labels = [r["architecture"] for r in rows]
    for name, embedding in (("geometry", result.geometry_mds), ("topology", result.topology_mds)):
        if embedding is not None:
            figure = plot_mds(embedding.coordinates, labels, title=f"{name} (MDS)")
            files.append(io.save_figure(figure, out / f"mds_{name}.png"))
            import matplotlib.pyplot as plt

            plt.close(figure)
    study = UniversalityStudy(population, result, tuple(files))
    files.append(io.write_json(out / "analysis.json", study.to_dict()))
    return UniversalityStudy(population, result, tuple(files))
