"""The state-space fixed-point finder and the Lyapunov spectrum: closed-form maps, the box, certification, and
the flip-flop test networks in tests/data/universality (see its make.py)."""

from __future__ import annotations

import itertools
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from rnnscope.analysis._lyapunov import lyapunov_spectrum
from rnnscope.analysis._state_fixedpoints import (
    StateFixedPointResult,
    certify_fixed_points,
    find_state_fixed_points,
    map_jacobians,
)
from rnnscope.errors import ConvergenceWarning, RnnscopeError

UNIVERSALITY = Path(__file__).resolve().parent / "data" / "universality"
CUBE = {"stable": 8, "saddle-1": 12, "saddle-2": 6, "source": 1}


def bistable(gain: float):
    """h_i -> tanh(gain h_i): for gain > 1 its fixed points are {-x, 0, x}^state with x = tanh(gain x)."""
    return lambda h, u: torch.tanh(gain * h)


def cube_points(gain: float, state: int = 3) -> np.ndarray:
    x = brentq(lambda v: np.tanh(gain * v) - v, 1e-3, 1.0, xtol=1e-15)
    return np.array(list(itertools.product((-x, 0.0, x), repeat=state)))


def find_cube(gain, seed, noise, tol, **kw) -> StateFixedPointResult:
    states = np.random.default_rng(100 + seed).uniform(-1, 1, (400, 3))
    return find_state_fixed_points(
        bistable(gain),
        np.zeros(1),
        states=states,
        rng=seed,
        starts=128,
        noise=noise,
        tol=tol,
        lower=-np.ones(3),
        upper=np.ones(3),
        **kw,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("noise", [0.01, 0.1])
@pytest.mark.parametrize("tol", [1e-8, 1e-10])
def test_cube_exact(seed, noise, tol):
    gain = 2.0
    result = find_cube(gain, seed, noise, tol)
    points = result.fixed_points
    assert points.counts() == CUBE
    truth = cube_points(gain)
    distance = np.linalg.norm(points.states[:, None] - truth[None], axis=2)
    assert sorted(np.argmin(distance, axis=1)) == list(range(27))  # one found point per true point
    assert np.all(np.min(distance, axis=1) <= 1e-6 * (1 + np.linalg.norm(truth[np.argmin(distance, axis=1)], axis=1)))
    assert np.all(points.converged)
    assert np.all(points.newton_distance < tol * (1 + np.linalg.norm(points.states, axis=1)))
    # classes agree with the closed form: unstable modes = number of zero coordinates
    zeros = np.sum(np.abs(points.states) < 1e-6, axis=1)
    assert np.array_equal(points.unstable, zeros)
    assert np.allclose(np.abs(points.eigenvalues[zeros == 3]), gain)
    assert result.converged_fraction("trajectory") == 1.0
    assert len(result.slow_points) == 0


def test_result_shapes_and_dict():
    result = find_cube(1.5, 0, 0.05, 1e-8)
    n = len(result.starts)
    assert result.endpoints.shape == (n, 3) and result.status.shape == (n,) and result.kind.shape == (n,)
    assert set(result.kind) == {"trajectory", "structured"} and np.sum(result.kind == "trajectory") == 128
    d = result.to_dict()
    assert d["counts"] == CUBE and d["status"]["fixed"] + d["status"]["stationary"] + d["status"]["moving"] == n
    assert len(d["fixed_points"]) == 27 and len(d["fixed_points"][0]["eigenvalues"]) == 3
    assert len(result.fixed_points[result.fixed_points.stability == "stable"]) == 8


def test_box_excludes_points_outside():
    """F(h) = 1.5 tanh(2 h) per coordinate has stable points at +-1.43 (outside [-1, 1]) and a source at 0: with
    the box only the source is reported; the starts pinned on the box are stationary slow points, not fixed."""
    fmap = lambda h, u: 1.5 * torch.tanh(2.0 * h)  # noqa: E731
    states = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = find_state_fixed_points(fmap, np.zeros(1), states=states, rng=0, starts=64, lower=-1.0, upper=1.0)
    assert len(result.fixed_points) == 1 and np.allclose(result.fixed_points.states, 0.0)
    assert result.fixed_points.stability.tolist() == ["source"]
    assert np.all(np.abs(result.endpoints) <= 1.0)
    assert len(result.slow_points) > 0 and not np.any(result.slow_points.converged)
    assert np.all(result.status[np.any(np.abs(result.endpoints) == 1.0, axis=1)] != "fixed")
    x = brentq(lambda v: 1.5 * np.tanh(2 * v) - v, 0.5, 2.0, xtol=1e-15)
    outside = np.array([[x, x], [-x, x]])
    assert not np.any(certify_fixed_points(fmap, np.zeros(1), outside, lower=-1.0, upper=1.0))
    assert np.all(certify_fixed_points(fmap, np.zeros(1), outside))  # without the box they are fixed points


def test_certification_rejects_slow_points():
    """h -> h + 1e-7 (1 + h^2) (per coordinate) has no fixed point; q is tiny everywhere, nothing is certified."""
    fmap = lambda h, u: h + 1e-7 * (1 + h**2)  # noqa: E731
    states = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = find_state_fixed_points(fmap, np.zeros(1), states=states, rng=0, starts=16, max_iter=30)
    assert len(result.fixed_points) == 0 and not np.any(result.converged)
    assert np.all(result.endpoint_speed < 1e-10)


def test_map_contract_errors():
    states = np.zeros((4, 2))
    with pytest.raises(RnnscopeError, match="float64"):
        find_state_fixed_points(lambda h, u: h.float(), np.zeros(1), states=states, rng=0)
    with pytest.raises(RnnscopeError, match="shape"):
        find_state_fixed_points(lambda h, u: h[:, :1], np.zeros(1), states=states, rng=0)
    with pytest.raises(RnnscopeError, match="lower"):
        find_state_fixed_points(bistable(2.0), np.zeros(1), states=states, rng=0, lower=np.ones(3))
    with pytest.raises(RnnscopeError, match="rng"):
        find_state_fixed_points(bistable(2.0), np.zeros(1), states=states, rng=None)


def test_jacobian_matches_closed_form():
    w = np.random.default_rng(0).standard_normal((5, 5))
    wt = torch.as_tensor(w)
    h = np.random.default_rng(1).standard_normal((7, 5))
    residual, jacobians = map_jacobians(lambda x, u: torch.tanh(x @ wt.T + u), np.full(5, 0.1), h)
    pre = h @ w.T + 0.1
    assert np.allclose(residual, np.tanh(pre) - h, atol=1e-14)
    assert np.allclose(jacobians, (1 - np.tanh(pre) ** 2)[:, :, None] * w[None], atol=1e-13)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lyapunov_linear_map(seed):
    rng = np.random.default_rng(seed)
    multipliers = np.array([1.2, -0.9, 0.5, 0.25])
    basis = np.eye(4) + 0.3 * rng.standard_normal((4, 4))
    a = torch.as_tensor(basis @ np.diag(multipliers) @ np.linalg.inv(basis))
    spectrum = lyapunov_spectrum(
        lambda h, u: h @ a.T, np.zeros((3, 300, 1)), rng.standard_normal((3, 4)), rng=seed, burn_in=50
    )
    assert spectrum.exponents.shape == (3, 4)
    assert np.allclose(spectrum.exponents, np.sort(np.log(np.abs(multipliers)))[::-1], atol=1e-6)


def test_lyapunov_contracting_map_negative():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 6))
    w = torch.as_tensor(0.8 * w / np.linalg.norm(w, 2))
    inputs = rng.standard_normal((4, 200, 6))
    spectrum = lyapunov_spectrum(lambda h, u: torch.tanh(h @ w.T + u), inputs, np.zeros((4, 6)), rng=0, modes=3)
    assert spectrum.exponents.shape == (4, 3)
    assert np.all(spectrum.exponents < np.log(0.8) + 1e-9)
    assert np.all(np.diff(spectrum.exponents, axis=1) <= 0)


# ----------------------------------------------------------------------------------------------- test networks


def load_network(name: str):
    sys.path.insert(0, str(UNIVERSALITY))
    try:
        from networks import load  # tests/data/universality/networks.py
    finally:
        sys.path.remove(str(UNIVERSALITY))
    return load(name)


_FOUND: dict = {}
# iterations of F before the search (iterate_steps): the GRU's attractors have multipliers within 3.2e-4 of 1 (see
# networks.json), so its trajectory states reach them only after ~20000 steps (after 500 they are still 1-40 Newton
# distances away on a curved slow manifold, where the search crawls)
ITERATE = {"gru_64": 20000, "lstm_64": 2000, "rnn_64": 2000}


def flipflop_fixed_points(name: str):
    if name not in _FOUND:
        net = load_network(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = find_state_fixed_points(
                net.map,
                np.zeros(3),
                states=net.states,
                rng=0,
                starts=128,
                lower=net.lower,
                upper=net.upper,
                iterate_steps=ITERATE[name],
                edge_steps=300,
            )
        _FOUND[name] = (net, result)
    return _FOUND[name]


FLIPFLOP_CUBE = {"stable": 8, "saddle-1": 12, "saddle-2": 6, "saddle-3": 1}


def readout_codes(net, states: np.ndarray) -> np.ndarray:
    """Signs (points, 3) of the readout at states (points, state)."""
    readout = net.net.readout(torch.as_tensor(states[:, : net.net.size])).detach().numpy()
    return np.sign(readout).astype(int), np.abs(readout)


def assert_only_certified(net, result) -> None:
    points = result.fixed_points
    assert np.all(points.converged)
    assert np.all(certify_fixed_points(net.map, np.zeros(3), points.states, lower=net.lower, upper=net.upper))
    assert np.all((points.states >= net.lower) & (points.states <= net.upper))
    assert not np.any(result.slow_points.converged)
    assert np.all(
        result.status[result.endpoint_newton_distance >= result.tol * (1 + np.linalg.norm(result.endpoints, axis=1))]
        != "fixed"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rnn_64"])
def test_flipflop_networks_have_the_cube(name):
    net, result = flipflop_fixed_points(name)
    assert net.meta["attractors"]["passed"]  # make.py's check: 8 memories held at 8 certified attractors
    points = result.fixed_points
    assert points.counts() == FLIPFLOP_CUBE
    assert_only_certified(net, result)
    # the 8 attractors read out as the 8 corners of the flip-flop: signs of the readout are all distinct
    codes, size = readout_codes(net, points.stable().states)
    assert len({tuple(row) for row in codes}) == 8
    assert np.all(size > 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    pytest.param("gru_64", marks=pytest.mark.xfail(strict=True, reason=(
        "measured: the shipped GRU's memories are slow points that drift (residual 1.9e-7 after 20000 steps); only "
        "5 of the 8 codes sit at certified attractors: the network needs retraining, the finder reports it right"))),
    "lstm_64",
])
def test_flipflop_memories_at_certified_attractors(name):
    """The retrained GRU and LSTM hold their 8 memories at certified attractors (make.py's check), but at u = 0 they
    have more than the cube (measured with ITERATE and edge_steps=300: GRU 11 stable points and 16 / 8 / 2 saddles
    with 1 / 2 / 3 unstable modes, extra attractors on its slow manifold, multipliers within 3.2e-4 of 1; LSTM 27
    stable points and 51 / 36 / 8 saddles: the 3 x 3 x 3 grid, each channel also holding its "no pulse yet" 0,
    which the long trials of the hold stage ask for). What the finder must do on them: report only certified
    points, among whose stable ones every memory's code appears."""
    net, result = flipflop_fixed_points(name)
    assert net.meta["attractors"]["passed"]
    assert_only_certified(net, result)
    assert result.fixed_points.counts()["stable"] > 8
    codes, size = readout_codes(net, result.fixed_points.stable().states)
    assert len({tuple(row) for row in codes[np.all(size > 0.5, axis=1)]}) == 8
