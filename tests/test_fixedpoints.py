import json
import time

import numpy as np
import pytest
from _lowrank_nets import (
    bimodal_network,
    gaussian_network,
    network,
    simulate_network,
    two_population_network,
)
from conftest import reference_path, shipped_run
from scipy.integrate import quad
from scipy.optimize import brentq

from rnnscope.analysis import latent_summary
from rnnscope.analysis._fixedpoints import (
    FixedPoints,
    classify,
    find_fixed_points,
    origin_stability,
    potential,
    slow_directions,
)
from rnnscope.analysis._latent import flow_field, latent_bounds, reduced_flow
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.io import load_run
from rnnscope.io._reference import load_reference

SIZE = 2000


def _gaussian_gain(delta):
    return quad(lambda z: (1 - np.tanh(delta * z) ** 2) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi), -12, 12)[0]


def test_classify():
    eig = np.array([[-1, -2], [1, -2], [1, 2], [0.0, -1]], dtype=complex)
    assert classify(eig).tolist() == ["stable", "saddle", "source", "marginal"]


@pytest.mark.parametrize("seed", [0, 1])
def test_rank1_subcritical_overlap_has_one_stable_point_at_zero(seed):
    w = gaussian_network([[0.8]], SIZE, rng=np.random.default_rng(seed))
    result = find_fixed_points(w, rng=seed)
    assert result.fixed_points.stability.tolist() == ["stable"]
    assert abs(result.fixed_points.kappa[0, 0]) < 1e-6
    assert not result.ring and not result.limit_cycle


@pytest.mark.parametrize("seed", [0, 1])
def test_rank1_bistable_matches_mean_field_self_consistency(seed):
    w = gaussian_network([[2.0]], SIZE, rng=np.random.default_rng(seed))
    points = find_fixed_points(w, rng=seed).fixed_points
    assert sorted(points.stability.tolist()) == ["source", "stable", "stable"]
    origin = points[np.argmin(np.abs(points.kappa[:, 0]))]
    assert abs(origin.kappa[0, 0]) < 0.05 and origin.stability[0] == "source"
    # 1 = sigma_mn <phi'(kappa m)>, m ~ N(0, 1)  =>  kappa0 by root finding
    kappa0 = brentq(lambda k: 2.0 * _gaussian_gain(k) - 1.0, 0.1, 5.0)
    stable = np.sort(points.stable().kappa[:, 0])
    np.testing.assert_allclose(np.abs(stable), kappa0, rtol=0.05)
    assert stable[0] < 0 < stable[1]
    # the mean-field search finds the same points
    mf = find_fixed_points(w, rng=seed, mean_field=True).fixed_points
    np.testing.assert_allclose(np.sort(np.abs(mf.stable().kappa[:, 0])), kappa0, rtol=0.05)


VALENTE = {
    (2.5, 0.0, 0.5, 0.5): {"stable": 2, "saddle": 1, "source": 0},
    (2.5, 0.0, 0.5, 1.5): {"stable": 2, "saddle": 2, "source": 1},
}


@pytest.mark.parametrize("sigma", list(VALENTE))
def test_rank2_gaussian_fixed_point_structure(sigma):
    w = gaussian_network(np.reshape(sigma, (2, 2)), SIZE, rng=np.random.default_rng(0))
    result = find_fixed_points(w, rng=0)
    counts = result.fixed_points.counts()
    assert {k: counts[k] for k in ("stable", "saddle", "source")} == VALENTE[sigma]
    origin = result.fixed_points[np.argmin(np.linalg.norm(result.fixed_points.kappa, axis=1))]
    assert np.linalg.norm(origin.kappa) < 0.05
    assert origin.stability[0] == ("saddle" if sigma[3] < 1 else "source")
    assert not result.ring and not result.limit_cycle
    # the two stable points are mirror images (tanh is odd)
    stable = result.fixed_points.stable().kappa
    np.testing.assert_allclose(stable[0], -stable[1], atol=0.1 * np.linalg.norm(stable[0]))


def test_rank2_degenerate_overlaps_give_a_ring():
    w = gaussian_network(np.diag([2.0, 2.0]), SIZE, rng=np.random.default_rng(0))
    result = find_fixed_points(w, rng=0)
    assert result.ring and not result.limit_cycle
    # all nonzero points sit on a circle of the mean-field radius: 1 = 2 <phi'(kappa z)>
    radius = brentq(lambda k: 2.0 * _gaussian_gain(k) - 1.0, 0.1, 5.0)
    points = result.fixed_points.kappa
    ring_points = points[np.linalg.norm(points, axis=1) > 0.1]
    assert len(ring_points) >= 2
    np.testing.assert_allclose(np.linalg.norm(ring_points, axis=1), radius, rtol=0.05)


def test_rank2_rotating_overlaps_give_a_limit_cycle():
    sigma = np.array([[2.5, -1.0], [1.0, 2.0]])
    eig = np.linalg.eigvals(sigma)
    np.testing.assert_allclose(sorted(eig.imag), [-np.sqrt(15) / 4, np.sqrt(15) / 4])  # 2.25 +- 0.97i
    w = gaussian_network(sigma, SIZE, rng=np.random.default_rng(0))
    result = find_fixed_points(w, rng=0)
    assert result.limit_cycle and not result.ring
    assert result.fixed_points.stability.tolist() == ["source"]
    # the orbit really is periodic under the exact flow: integrating it for one period returns to its start
    orbit = result.orbit
    assert orbit.shape[1] == 2 and np.ptp(orbit[:, 0]) > 0.5
    k = orbit[:1].copy()
    dt = result.period / 2000
    for _ in range(2000):
        k1 = reduced_flow(w, k)
        k2 = reduced_flow(w, k + dt * k1)
        k = k + 0.5 * dt * (k1 + k2)
    assert np.linalg.norm(k - orbit[0]) < 0.05 * np.ptp(orbit[:, 0])


def test_bimodal_loadings_break_the_ring_into_four_attractors():
    w, populations = bimodal_network(2.0, SIZE, rng=np.random.default_rng(0))
    for mean_field in (False, True):
        result = find_fixed_points(w, rng=0, mean_field=mean_field, labels=populations)
        counts = result.fixed_points.counts()
        assert (counts["stable"], counts["saddle"]) == (4, 4)
        assert not result.ring
        stable = result.fixed_points.stable().kappa
        # attractors on the axes (+-k e_1, +-k e_2), saddles between them on the diagonals
        small, large = np.sort(np.abs(stable), axis=1).T
        assert np.all(small < 0.1 * large)
        assert {(int(np.argmax(np.abs(p))), int(np.sign(p[np.argmax(np.abs(p))]))) for p in stable} == {
            (0, 1),
            (0, -1),
            (1, 1),
            (1, -1),
        }
        saddles = result.fixed_points.of_class("saddle").kappa
        np.testing.assert_allclose(np.abs(saddles[:, 0]), np.abs(saddles[:, 1]), rtol=0.15)


def test_two_populations_bistable_without_input_limit_cycle_with_saturating_input():
    w, populations = two_population_network(SIZE, rng=np.random.default_rng(0))
    for mean_field in (False, True):
        rest = find_fixed_points(w, rng=0, mean_field=mean_field, labels=populations)
        assert rest.fixed_points.counts()["stable"] == 2 and not rest.limit_cycle
        driven = find_fixed_points(w, rng=0, inputs=np.array([1.0]), mean_field=mean_field, labels=populations)
        assert driven.limit_cycle
        assert driven.fixed_points.counts()["stable"] == 0
    # the input silences population 0's gain: the effective overlaps become population 1's, rotating
    origin = origin_stability(w, inputs=np.array([1.0]))
    assert not origin.stable and np.all(np.abs(origin.eigenvalues.imag) > 0.3)


def test_fixed_points_are_fixed_points_of_the_full_network():
    """Simulating the full N-dimensional network from near each stable point stays there."""
    w = gaussian_network(np.array([[2.5, 0.0], [0.5, 1.5]]), 500, rng=np.random.default_rng(2))
    stable = find_fixed_points(w, rng=0).fixed_points.stable()
    x0 = stable.kappa @ w.m.T + 0.05 * np.random.default_rng(3).standard_normal((len(stable), w.size))
    x = simulate_network(w, x0, np.zeros(1), 300)
    np.testing.assert_allclose(x, stable.kappa @ w.m.T, atol=1e-4)


def test_rank1_potential_is_minus_the_integral_of_the_flow():
    w = gaussian_network([[2.0]], 500, rng=np.random.default_rng(0))
    for mean_field in (False, True):
        pot = potential(w, inputs=np.array([0.2]), mean_field=mean_field, resolution=801)
        from rnnscope.analysis._latent import _system

        flow = _system(w, np.array([0.2]), mean_field).velocity(pot.kappa[:, None])[:, 0]
        np.testing.assert_allclose(-np.gradient(pot.value, pot.kappa)[5:-5], flow[5:-5], atol=2e-3)
    pot = potential(w)
    stable = find_fixed_points(w, rng=0).fixed_points.stable().kappa[:, 0]
    for k in stable:  # minima of V at the stable points
        i = np.argmin(np.abs(pot.kappa - k))
        assert pot.value[i] <= pot.value[max(i - 5, 0)] and pot.value[i] <= pot.value[i + 5]
    with pytest.raises(RnnscopeError, match="rank 1"):
        potential(gaussian_network(np.eye(2), 100, rng=np.random.default_rng(0)))


def test_every_start_is_kept_and_failures_warn():
    w = gaussian_network([[2.0]], 300, rng=np.random.default_rng(0))
    result = find_fixed_points(w, rng=0, starts=17)
    assert result.starts.shape == (17, 1) and len(result.endpoints) == 17
    assert np.all(result.starts[0] == 0)
    assert np.all(np.abs(result.starts[1:]) <= latent_bounds(w))
    driven = network(w.m, w.n, np.random.default_rng(1).standard_normal((w.size, 1)))
    with pytest.warns(ConvergenceWarning):  # kappa = 0 is not a fixed point under input; one step cannot converge
        find_fixed_points(driven, inputs=np.ones(1), rng=0, starts=3, max_iter=1, tol=1e-14)
    with pytest.raises(RnnscopeError, match="inputs"):
        find_fixed_points(w, rng=0, inputs=np.zeros(2))


def test_to_dict_contract():
    w = gaussian_network(np.array([[2.5, 0.0], [0.5, 1.5]]), 300, rng=np.random.default_rng(0))
    out = json.loads(json.dumps(find_fixed_points(w, rng=0).to_dict()))
    assert set(out) == {"fixed_points", "ring", "limit_cycle"}
    for point in out["fixed_points"]:
        assert set(point) == {"kappa", "class", "eigenvalues"}
        assert point["class"] in {"stable", "saddle", "source", "marginal"}
        assert len(point["kappa"]) == 2 and all(len(pair) == 2 for pair in point["eigenvalues"])
    fp = find_fixed_points(w, rng=0).fixed_points
    assert isinstance(fp[:2], FixedPoints) and len(fp[:2]) == 2


def test_origin_stability_and_slow_directions():
    w = gaussian_network(np.array([[0.9, 0.0], [0.0, 0.3]]), 4000, rng=np.random.default_rng(0))
    origin = origin_stability(w)
    assert origin.stable
    np.testing.assert_allclose(np.sort(origin.overlap_eigenvalues.real), [0.3, 0.9], atol=0.05)
    slow = slow_directions(w, np.zeros((1, 2)))
    assert slow.time_constants[0, 0] == pytest.approx(1 / 0.1, rel=0.3)
    assert abs(slow.directions[0, 0, 0]) > 0.95  # slowest along kappa_1


def test_rank3_fixed_points():
    sigma = np.diag([2.0, 1.6, 0.5])
    w = gaussian_network(sigma, 1000, rng=np.random.default_rng(0))
    result = find_fixed_points(w, rng=0)
    assert result.fixed_points.counts()["stable"] == 2
    assert result.fixed_points.rank == 3


@pytest.mark.reference
def test_reference_rdm_two_choices():
    w = load_reference(reference_path("rdm_lr_fig2.pt"))
    sigma = float((w.n.T @ w.m / w.size)[0, 0])
    assert sigma > 1
    points = find_fixed_points(w, rng=0).fixed_points
    stable = points.stable()
    assert len(stable) == 2 and np.sign(stable.kappa[0, 0]) == -np.sign(stable.kappa[1, 0])
    unstable = points[points.stability != "stable"]
    # the unstable point near 0 is a source of the reduced system, i.e. a saddle of the full network
    assert len(unstable) == 1 and abs(unstable.kappa[0, 0]) < 0.05 * np.abs(stable.kappa).max()
    readout = np.tanh(stable.kappa @ w.m.T) @ w.w_out[:, 0] / w.size
    assert np.sign(readout[0]) == -np.sign(readout[1]) and np.all(np.abs(readout) > 0.5)
    # the choice: strong positive / negative evidence drives the network to the point whose readout has its sign
    u = np.zeros(1)
    x = np.zeros((2, w.size)) + w.h0
    for coherence, row in ((4.0, 0), (-4.0, 1)):
        xs = x[row : row + 1]
        for _ in range(40):  # 800 ms of stimulus, 0.1 x coherence
            xs = xs + w.alpha * (-xs + np.tanh(xs) @ w.n @ w.m.T / w.size + w.w_in @ (u + 0.1 * coherence))
        xs = simulate_network(w, xs, u, 300)  # let it settle without input
        z = np.tanh(xs) @ w.w_out[:, 0] / w.size
        end = stable.kappa[np.argmin(np.linalg.norm(stable.kappa @ w.m.T - xs, axis=1))]
        assert np.sign(z[0]) == np.sign(coherence)
        assert np.sign(np.tanh(end @ w.m.T) @ w.w_out[:, 0]) == np.sign(coherence)


@pytest.mark.reference
def test_reference_romo_fast_and_mean_field_agrees():
    w = load_reference(reference_path("romo_rank2_500.pt"), noise_std=0.005)
    t0 = time.perf_counter()
    result = find_fixed_points(w, rng=0)
    flow_field(w, resolution=50)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0  # the target is < 1 s on an idle core; the margin absorbs a loaded CI machine
    mf = find_fixed_points(w, rng=0, mean_field=True)
    assert result.fixed_points.counts() == mf.fixed_points.counts()
    for a, b in zip(result.fixed_points.kappa, mf.fixed_points.kappa, strict=True):
        assert np.linalg.norm(a - b) < 0.25 * max(np.linalg.norm(a), 0.1)
    bounds = latent_bounds(w)
    finite = flow_field(w, bounds=bounds, resolution=30)
    mean = flow_field(w, bounds=bounds, resolution=30, mean_field=True)
    error = np.sqrt(np.mean((finite.velocity - mean.velocity) ** 2) / np.mean(finite.velocity**2))
    assert error < 0.15


def test_analyze_summary_is_json_ready():
    w = load_run(shipped_run("rdm_rank1_128")).model.weights()  # a random-dots network trained by rnnscope
    out = json.loads(json.dumps(latent_summary(w, rng=0, starts=30).to_dict()))
    assert out["rank"] == 1 and out["overlaps"][0][0] > 1
    assert len(out["fixed_points"]) == 3 and out["origin"]["stable"] is False
