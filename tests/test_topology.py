"""Fixed-point topology: saddle-to-attractor graphs, Weisfeiler-Lehman signatures and the topology distance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rnnscope.analysis._state_fixedpoints import find_state_fixed_points
from rnnscope.analysis._topology import (
    FixedPointGraph,
    fixed_point_graph,
    topology_distance,
    topology_signature,
)


def cube_graph(state: int, seed: int, gain: float = 2.0) -> FixedPointGraph:
    fmap = lambda h, u: torch.tanh(gain * h)  # noqa: E731
    states = np.random.default_rng(seed).uniform(-1, 1, (300, state))
    result = find_state_fixed_points(fmap, np.zeros(1), states=states, rng=seed, starts=96, lower=-1.0, upper=1.0)
    return fixed_point_graph(fmap, np.zeros(1), result.fixed_points, rng=seed, lower=-1.0, upper=1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_saddles_lead_to_the_attractors_they_separate(seed):
    graph = cube_graph(3, seed)
    states, unstable = graph.points.states, graph.points.unstable
    assert np.all(graph.probe_reached >= 0)
    for node in range(len(states)):
        neighbours = graph.neighbours(node)
        if unstable[node] == 0:
            assert np.all(unstable[neighbours] > 0)  # attractors are joined only to unstable points
            continue
        # a point with k zero coordinates (k unstable modes) reaches the 2^k corners that agree on the others
        assert len(neighbours) == 2 ** unstable[node]
        assert np.all(unstable[neighbours] == 0)
        fixed = np.abs(states[node]) > 1e-6
        assert np.allclose(states[neighbours][:, fixed], states[node][fixed], atol=1e-7)
        assert np.allclose(states[neighbours].mean(axis=0), states[node], atol=1e-7)
    assert topology_signature(graph).counts == {"saddle-1": 12, "saddle-2": 6, "source": 1, "stable": 8}
    assert len(graph.edges) == 12 * 2 + 6 * 4 + 8


def test_signature_invariant_and_distance():
    a, b = cube_graph(3, 0), cube_graph(3, 1)
    assert topology_signature(a).wl_hash == topology_signature(b).wl_hash
    assert topology_distance(a, b) == 0.0
    # a relabelled copy (nodes permuted) has the same signature
    order = np.random.default_rng(0).permutation(len(a.labels))
    inverse = np.argsort(order)
    permuted = FixedPointGraph(a.points[order], a.labels[order], inverse[a.edges], a.probe_owner, a.probe_reached)
    assert topology_signature(permuted).wl_hash == topology_signature(a).wl_hash
    # the square (2-D) differs from the cube; a cube with one edge removed differs from both
    square = cube_graph(2, 0)
    cut = FixedPointGraph(a.points, a.labels, a.edges[1:], a.probe_owner, a.probe_reached)
    graphs = [a, square, cut]
    distances = {(i, j): topology_distance(graphs[i], graphs[j]) for i, j in itertools.product(range(3), repeat=2)}
    assert distances[(0, 1)] > 0 and distances[(0, 2)] > 0 and distances[(1, 2)] > 0
    for i, j, k in itertools.permutations(range(3), 3):
        assert distances[(i, j)] == distances[(j, i)]
        assert distances[(i, k)] <= distances[(i, j)] + distances[(j, k)] + 1e-12
    assert all(0.0 <= d <= 1.0 for d in distances.values())
    assert topology_signature(a).to_dict()["edges"] == 56


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "measured: the RNN has the cube's counts (8/12/6/1) but its graph has 43 edges against the cube's 56 "
    "(distance 0.32): the probes from its 2- and 3-mode saddles do not reach every corner yet"))
def test_flipflop_rnn_has_the_cube_topology():
    """The trained flip-flop tanh RNN has the topology of the closed-form cube h -> tanh(2 h): distance 0. (The
    retrained GRU and LSTM have extra attractors at u = 0, see test_flipflop_memories_at_certified_attractors.)"""
    from test_state_fixedpoints import flipflop_fixed_points

    net, result = flipflop_fixed_points("rnn_64")
    graph = fixed_point_graph(net.map, np.zeros(3), result.fixed_points, rng=0, lower=net.lower, upper=net.upper)
    signature = topology_signature(graph)
    assert signature.counts == {"saddle-1": 12, "saddle-2": 6, "saddle-3": 1, "stable": 8}
    cube = cube_graph(3, 0)  # its top point is a source (3 of 3 modes), the network's a saddle-3 (3 of 64)
    labels = np.where(cube.labels == "source", "saddle-3", cube.labels)
    cube = FixedPointGraph(cube.points, labels, cube.edges, cube.probe_owner, cube.probe_reached)
    assert topology_distance(signature, topology_signature(cube)) == 0.0
