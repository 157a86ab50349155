"""The topology of a network's fixed points: which attractors each saddle connects, and a signature to compare
networks (Maheswaranathan et al., NeurIPS 2019, "Universality and individuality").

Graph: the nodes are the certified fixed points; from every unstable point (saddle or source) probes start a small
displacement along its unstable manifold (:func:`unstable_directions`: ``+-v`` for one unstable mode, every sign
combination of the unstable modes for more), ``F`` is iterated, the end is polished by Levenberg-Marquardt, and an
edge joins the unstable point to the fixed point the probe reaches (normally a stable one). Edges are undirected
and unique. Node labels are the classes with their number of unstable modes (``stable``, ``saddle-1``, ...,
``source``).

Signature: the counts per label, and a Weisfeiler-Lehman hash of the labelled graph (``iterations`` rounds of
colour refinement, colours hashed with sha256; isomorphic graphs have equal hashes, equal hashes are necessary but
not in general sufficient for isomorphism). Distance between two signatures (:func:`topology_distance`):

    d = ( |counts_A - counts_B|_1 / (n_A + n_B)  +  |hist_A - hist_B|_1 / (m_A + m_B) ) / 2

where ``counts`` are the label counts (n points) and ``hist`` the histograms of the WL colours of every round
(m colours in all). ``d`` is in [0, 1], symmetric, satisfies the triangle inequality (sum of normalised L1
distances), and is 0 exactly when the label counts and every round's colour histogram agree; in particular 0 for
isomorphic graphs with equal classes. Pure numpy/hashlib, no graph library.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from rnnscope._validation import as_generator, check_array, check_int, check_positive
from rnnscope.analysis._state_fixedpoints import (
    _DTYPE,
    StateFixedPoints,
    StateMap,
    _box_tensors,
    _check_box,
    _levenberg_marquardt,
    _Map,
    follow_unstable_modes,
)
from rnnscope.errors import RnnscopeError

__all__ = ["FixedPointGraph", "TopologySignature", "fixed_point_graph", "topology_signature", "topology_distance"]


@dataclass(frozen=True, eq=False)
class FixedPointGraph:
    """points: the nodes (a StateFixedPoints, node i = point i); labels: (points,) str; edges: (edges, 2) int,
    ``[unstable point, point reached]``, unique; probe_owner: (probes,) int, the unstable point each probe left;
    probe_reached: (probes,) int, the point it reached (-1: none within ``match_tol``)."""

    points: StateFixedPoints
    labels: np.ndarray
    edges: np.ndarray
    probe_owner: np.ndarray
    probe_reached: np.ndarray

    def __post_init__(self) -> None:
        if np.shape(self.labels) != (len(self.points),):
            raise RnnscopeError(f"labels: expected shape {(len(self.points),)}, got {np.shape(self.labels)}")
        if np.ndim(self.edges) != 2 or np.shape(self.edges)[1] != 2:
            raise RnnscopeError(f"edges: expected (edges, 2), got shape {np.shape(self.edges)}")
        if np.shape(self.probe_owner) != np.shape(self.probe_reached):
            raise RnnscopeError("probe_owner, probe_reached: shapes differ")

    def neighbours(self, node: int) -> np.ndarray:
        """Indices of the points joined to ``node``."""
        edges = self.edges
        return np.unique(np.concatenate([edges[edges[:, 0] == node, 1], edges[edges[:, 1] == node, 0]]))

    def to_dict(self) -> dict:
        return {
            "labels": [str(x) for x in self.labels],
            "edges": self.edges.tolist(),
            "unreached_probes": int(np.sum(self.probe_reached < 0)),
            "signature": topology_signature(self).to_dict(),
        }


@dataclass(frozen=True, eq=False)
class TopologySignature:
    """counts: {label: points}; edges: number of edges; wl_hash: hex digest of the Weisfeiler-Lehman colours;
    histogram: {colour: count} over every round (for :func:`topology_distance`)."""

    counts: dict
    edges: int
    wl_hash: str
    histogram: dict = field(repr=False)

    def to_dict(self) -> dict:
        return {"counts": dict(self.counts), "edges": int(self.edges), "wl_hash": self.wl_hash}


def fixed_point_graph(
    map: StateMap,
    inputs: np.ndarray,
    points: StateFixedPoints,
    *,
    rng: int | np.random.Generator,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    displacement: float = 1e-3,
    steps: int = 400,
    max_modes: int = 6,
    directions: int = 64,
    max_iter: int = 100,
    match_tol: float = 1e-5,
    tol: float = 1e-8,
) -> FixedPointGraph:
    """The graph of ``points`` (the certified fixed points of ``F(., inputs)``, e.g.
    ``find_state_fixed_points(...).fixed_points``) joined by where their unstable manifolds lead.

    map: ``F(h, u)`` as for the finder; inputs: (inputs,); rng: for random directions when a point has more than
    ``max_modes`` unstable modes; lower, upper: (state,) box or None; displacement: probe offset relative to
    ``1 + |h|``; steps: iterations of F per probe before polishing with at most ``max_iter`` LM iterations;
    match_tol: a probe reaches a point when within ``match_tol (1 + |h|)`` of it.
    """
    rng = as_generator(rng, name="rng")
    inputs = check_array(inputs, "inputs", ndim=1)
    if not isinstance(points, StateFixedPoints):
        raise RnnscopeError(f"points: expected StateFixedPoints, got {type(points).__name__}")
    displacement = check_positive(displacement, "displacement")
    steps = check_int(steps, "steps", minimum=1)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    match_tol = check_positive(match_tol, "match_tol")
    lower, upper = _check_box(lower, upper, points.size)
    fmap = _Map(map, torch.as_tensor(inputs, dtype=_DTYPE), points.size, 65536)
    lo, hi = _box_tensors(lower, upper)
    unstable = np.flatnonzero(points.unstable > 0)
    owner, ends = follow_unstable_modes(
        fmap,
        points[unstable],
        lo,
        hi,
        rng=rng,
        displacement=displacement,
        steps=steps,
        max_modes=max_modes,
        directions=directions,
    )
    owner = unstable[owner] if len(owner) else owner
    reached = np.full(len(owner), -1, dtype=int)
    if len(owner):
        polished = _levenberg_marquardt(
            fmap, torch.as_tensor(ends, dtype=_DTYPE), lo, hi, tol=tol, max_iter=max_iter, max_step=0.5
        ).endpoints.numpy()
        distance = np.linalg.norm(polished[:, None, :] - points.states[None, :, :], axis=2)  # (probes, points)
        nearest = np.argmin(distance, axis=1)
        close = distance[np.arange(len(owner)), nearest] <= match_tol * (1.0 + np.linalg.norm(polished, axis=1))
        reached[close] = nearest[close]
    pairs = {tuple(sorted((int(a), int(b)))) for a, b in zip(owner, reached, strict=True) if b >= 0 and a != b}
    edges = np.array(sorted(pairs), dtype=int).reshape(-1, 2)
    return FixedPointGraph(points, points.labels(), edges, np.asarray(owner, int), reached)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def topology_signature(graph: FixedPointGraph, *, iterations: int = 3) -> TopologySignature:
    """Counts per label and the Weisfeiler-Lehman hash of ``graph`` after ``iterations`` refinement rounds."""
    iterations = check_int(iterations, "iterations", minimum=0)
    n = len(graph.labels)
    adjacency: list[list[int]] = [[] for _ in range(n)]
    for a, b in graph.edges:
        adjacency[a].append(int(b))
        adjacency[b].append(int(a))
    colours = [_digest(str(label)) for label in graph.labels]
    histogram: Counter = Counter(f"0:{c}" for c in colours)
    for round_ in range(1, iterations + 1):
        colours = [_digest(colours[i] + "|" + ",".join(sorted(colours[j] for j in adjacency[i]))) for i in range(n)]
        histogram.update(f"{round_}:{c}" for c in colours)
    counts = Counter(str(x) for x in graph.labels)
    wl_hash = _digest(";".join(f"{k}={v}" for k, v in sorted(histogram.items())))
    return TopologySignature(dict(sorted(counts.items())), int(len(graph.edges)), wl_hash, dict(histogram))


def topology_distance(a: TopologySignature | FixedPointGraph, b: TopologySignature | FixedPointGraph) -> float:
    """Distance in [0, 1] between two networks' topologies (module docstring): 0 when the label counts and the
    Weisfeiler-Lehman colour histograms agree (isomorphic graphs with equal classes), 1 when nothing is shared."""
    a, b = (x if isinstance(x, TopologySignature) else topology_signature(x) for x in (a, b))
    return 0.5 * (_l1(a.counts, b.counts) + _l1(a.histogram, b.histogram))


def _l1(x: dict, y: dict) -> float:
    total = sum(x.values()) + sum(y.values())
    if total == 0:
        return 0.0
    return sum(abs(x.get(k, 0) - y.get(k, 0)) for k in set(x) | set(y)) / total
