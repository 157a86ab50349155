import numpy as np
import pytest
from _lowrank_nets import gaussian_network, network, simulate_network
from conftest import reference_path
from scipy.integrate import quad

from rnnscope.analysis import PopulationModel, loading_columns
from rnnscope.analysis._latent import (
    effective_overlaps,
    flow_field,
    gaussian_tanh_averages,
    input_overlaps,
    latent_projection,
    mean_field_flow,
    mean_field_jacobian,
    overlaps,
    readout_overlaps,
    reduced_flow,
    reduced_jacobian,
)
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankWeights


def _random_network(rng, size=300, rank=2, inputs=2):
    return LowRankWeights(
        m=rng.standard_normal((size, rank)),
        n=rng.standard_normal((size, rank)) * 2,
        w_in=rng.standard_normal((size, inputs)),
        w_out=rng.standard_normal((size, 1)),
        h0=np.zeros(size),
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_overlaps_match_plain_sums(seed):
    rng = np.random.default_rng(seed)
    w = _random_network(rng)
    size = w.size
    for i in range(2):
        for j in range(2):
            assert overlaps(w)[i, j] == pytest.approx(sum(w.n[k, i] * w.m[k, j] for k in range(size)) / size)
    assert input_overlaps(w)[1, 0] == pytest.approx(np.dot(w.n[:, 1], w.w_in[:, 0]) / size)
    assert readout_overlaps(w)[0, 0] == pytest.approx(np.dot(w.m[:, 0], w.w_out[:, 0]) / size)


def test_gaussian_overlaps_recovered_at_large_size():
    sigma = np.array([[2.5, -1.0], [1.0, 2.0]])
    w = gaussian_network(sigma, 20000, rng=np.random.default_rng(3))
    np.testing.assert_allclose(overlaps(w), sigma, atol=0.05)


def test_reduced_flow_is_the_projected_full_dynamics():
    """At x = M kappa + W_in u (v = u settled), -x + J phi(x) + W_in u = M F(kappa, u) exactly."""
    rng = np.random.default_rng(0)
    w = _random_network(rng)
    kappa, u = rng.standard_normal((5, 2)), rng.standard_normal(2)
    x = kappa @ w.m.T + w.w_in @ u
    dx = -x + np.tanh(x) @ w.connectivity().T + w.w_in @ u
    # dx lies in span(M) with coordinates F (the W_in part cancels: -W_in u + W_in u)
    np.testing.assert_allclose(dx, reduced_flow(w, kappa, u) @ w.m.T, atol=1e-10)


def test_reduced_jacobian_matches_finite_differences():
    rng = np.random.default_rng(1)
    w = _random_network(rng)
    kappa, u = rng.standard_normal((4, 2)), rng.standard_normal(2)
    eps = 1e-6
    numeric = np.stack(
        [(reduced_flow(w, kappa + eps * e, u) - reduced_flow(w, kappa - eps * e, u)) / (2 * eps) for e in np.eye(2)],
        axis=-1,
    )
    np.testing.assert_allclose(reduced_jacobian(w, kappa, u), numeric, atol=1e-7)


def test_effective_overlaps_at_a_state_give_the_jacobian_and_population_average():
    rng = np.random.default_rng(2)
    w = _random_network(rng)
    kappa, u = rng.standard_normal(2), rng.standard_normal(2)
    x = w.m @ kappa + w.w_in @ u
    populations = rng.integers(0, 3, size=w.size)
    eff = effective_overlaps(w, x, populations)
    np.testing.assert_allclose(eff.overlaps - np.eye(2), reduced_jacobian(w, kappa, u), atol=1e-12)
    np.testing.assert_allclose(np.einsum("p,pij->ij", eff.fractions, eff.per_population), eff.overlaps, atol=1e-12)
    # per population, by a plain loop
    p = populations == 1
    g = 1 - np.tanh(x[p]) ** 2
    np.testing.assert_allclose(eff.per_population[1], (w.n[p] * g[:, None]).T @ w.m[p] / p.sum(), atol=1e-12)
    # gain averaged over states: linear in the gain, so the mean of per-state overlaps
    states = rng.standard_normal((3, 4, w.size))
    mean_sigma = np.mean([effective_overlaps(w, s).overlaps for s in states.reshape(-1, w.size)], axis=0)
    np.testing.assert_allclose(effective_overlaps(w, states).overlaps, mean_sigma, atol=1e-12)
    with pytest.raises(RnnscopeError, match="states"):
        effective_overlaps(w, np.zeros(7))


def test_projection_recovers_latent_coordinates_and_variance():
    rng = np.random.default_rng(4)
    w = _random_network(rng, size=200)
    kappa = rng.standard_normal((3, 10, 2))
    v = rng.standard_normal((3, 10, 2))
    x = kappa @ w.m.T + v @ w.w_in.T
    proj = latent_projection(w, x)
    np.testing.assert_allclose(proj.kappa, kappa, atol=1e-10)
    np.testing.assert_allclose(proj.input_kappa, v, atol=1e-10)
    assert proj.variance_explained == pytest.approx(1.0)
    assert np.abs(proj.remainder).max() < 1e-10
    # orthogonal noise lowers the explained variance by exactly its share
    q, _ = np.linalg.qr(np.concatenate([w.m, w.w_in], axis=1), mode="complete")
    noise = rng.standard_normal((3, 10, 196)) @ q[:, 4:].T
    proj = latent_projection(w, x + noise)
    signal = x.reshape(-1, 200) - x.reshape(-1, 200).mean(0)
    extra = noise.reshape(-1, 200) - noise.reshape(-1, 200).mean(0)
    expected = np.sum(signal**2) / (np.sum(signal**2) + np.sum(extra**2))
    assert proj.variance_explained == pytest.approx(expected, rel=1e-8)
    np.testing.assert_allclose(proj.remainder, noise, atol=1e-10)
    # orthogonal columns: kappa_r = m_r . x / |m_r|^2
    m = q[:, :2] * 3.0
    ortho = network(m, m)
    y = rng.standard_normal((5, 200))
    np.testing.assert_allclose(latent_projection(ortho, y).kappa, y @ m / np.sum(m**2, axis=0), atol=1e-10)


@pytest.mark.parametrize("std", [0.01, 0.5, 1.0, 1.5, 3.0, 10.0, 40.0])
@pytest.mark.parametrize("mean", [0.0, 0.7, -3.0, 20.0])
def test_gaussian_averages_match_adaptive_quadrature(mean, std):
    derivatives = [
        np.tanh,
        lambda a: 1 - np.tanh(a) ** 2,
        lambda a: -2 * np.tanh(a) * (1 - np.tanh(a) ** 2),
        lambda a: (1 - np.tanh(a) ** 2) * (6 * np.tanh(a) ** 2 - 2),
    ]
    got = gaussian_tanh_averages(np.array([mean]), np.array([std]), order=3)
    for f, value in zip(derivatives, got, strict=True):
        exact = quad(
            lambda z, f=f: f(mean + std * z) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi),
            -12,
            12,
            points=sorted({0.0, -mean / std}),
            limit=1000,
            epsabs=1e-13,
        )[0]
        assert value[0] == pytest.approx(exact, abs=2e-6)


def _as_model(means, covariances, fractions, rank, inputs):
    """A PopulationModel from moments over (m_1..m_R, n_1..n_R, w_in_1..w_in_I), reordered by hand to the loading
    columns (w_in, n, m, w_out) with an independent unit-variance w_out column."""
    populations, width = means.shape
    order = np.r_[2 * rank : 2 * rank + inputs, rank : 2 * rank, 0:rank]  # w_in, n, m
    full_means = np.zeros((populations, width + 1))
    full_covs = np.zeros((populations, width + 1, width + 1))
    full_means[:, :width] = means[:, order]
    full_covs[:, :width, :width] = covariances[:, order][:, :, order]
    full_covs[:, width, width] = 1.0
    return PopulationModel(
        fractions=fractions, means=full_means, covariances=full_covs,
        columns=loading_columns(rank=rank, inputs=inputs, outputs=1),
    )


def _mixture(rng, rank=2, inputs=1, populations=3):
    """(model, means, covariances, fractions): moments over (m, n, w_in) and the same mixture as a PopulationModel."""
    width = 2 * rank + inputs
    a = rng.standard_normal((populations, width, width)) * 0.6
    means, covariances = rng.standard_normal((populations, width)) * 0.5, a @ np.swapaxes(a, 1, 2)
    fractions = np.array([0.2, 0.3, 0.5])
    return _as_model(means, covariances, fractions, rank, inputs), means, covariances, fractions


def test_population_model_moments_and_overlaps():
    rng = np.random.default_rng(8)
    model, means, covariances, fractions = _mixture(rng)
    # moments restricted and reordered to the requested blocks give back the hand-ordered (m, n, w_in) moments
    got_means, got_covs = model.moments(("m", "n", "w_in"))
    np.testing.assert_array_equal(got_means, means)
    np.testing.assert_array_equal(got_covs, covariances)
    assert model.block("w_in").tolist() == [0] and model.block("m").tolist() == [3, 4]
    assert model.block("w_out").tolist() == [5]
    assert (model.rank, model.inputs, model.outputs) == (2, 1, 1)
    # <n_i m_j> = sum_p f_p (C_p[n_i, m_j] + mu_p[n_i] mu_p[m_j]), by a plain loop
    expected = np.zeros((2, 2))
    for p in range(3):
        for i in range(2):
            for j in range(2):
                expected[i, j] += fractions[p] * (covariances[p, 2 + i, j] + means[p, 2 + i] * means[p, j])
    np.testing.assert_allclose(model.overlaps(), expected, atol=1e-12)
    with pytest.raises(RnnscopeError, match="name"):
        model.block("q")


def test_mean_field_flow_matches_a_large_sampled_network():
    rng = np.random.default_rng(5)
    model, means, covariances, fractions = _mixture(rng)
    size = 200_000
    labels = rng.choice(3, size=size, p=fractions)
    loadings = np.empty((size, 5))
    for p in range(3):
        rows = labels == p
        loadings[rows] = rng.multivariate_normal(means[p], covariances[p], size=rows.sum())
    w = network(loadings[:, :2], loadings[:, 2:4], loadings[:, 4:])
    kappa, u = rng.standard_normal((6, 2)), np.array([0.8])
    scale = np.abs(reduced_flow(w, kappa, u)).max()
    np.testing.assert_allclose(mean_field_flow(model, kappa, u), reduced_flow(w, kappa, u), atol=0.03 * scale)
    # and the model fitted to that network reproduces the mixture's overlaps
    np.testing.assert_allclose(PopulationModel.from_weights(w, labels).overlaps(), model.overlaps(), atol=0.03)


def test_mean_field_jacobian_matches_finite_differences():
    rng = np.random.default_rng(6)
    model, *_ = _mixture(rng)
    kappa, u = rng.standard_normal((5, 2)) * 2, np.array([-1.3])
    eps = 1e-6
    numeric = np.stack(
        [
            (mean_field_flow(model, kappa + eps * e, u) - mean_field_flow(model, kappa - eps * e, u)) / (2 * eps)
            for e in np.eye(2)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(mean_field_jacobian(model, kappa, u), numeric, atol=1e-6)


def test_mean_field_gaussian_closed_form():
    """One zero-mean Gaussian, no input: F = -kappa + sigma <phi'(Delta z)> kappa, Delta^2 = kappa^T C_mm kappa."""
    sigma = np.array([[2.0, 0.3], [-0.4, 1.5]])
    cov = np.eye(4)
    cov[2:, :2] = sigma
    cov[:2, 2:] = sigma.T
    cov[2:, 2:] = sigma @ sigma.T + np.eye(2)
    model = _as_model(np.zeros((1, 4)), cov[None], np.ones(1), rank=2, inputs=0)
    kappa = np.array([0.7, -1.1])
    delta = np.linalg.norm(kappa)
    gain = quad(lambda z: (1 - np.tanh(delta * z) ** 2) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi), -12, 12)[0]
    np.testing.assert_allclose(mean_field_flow(model, kappa), -kappa + sigma @ kappa * gain, atol=1e-7)


def test_default_mean_field_model_is_one_gaussian_per_labelled_population():
    """Without a model, the mean field of a network uses the per-population moments of its loadings (ddof = 1);
    labels of any kind (here strings) are mapped to populations in sorted order."""
    rng = np.random.default_rng(9)
    w = _random_network(rng, size=120, rank=2, inputs=2)
    labels = np.where(rng.random(w.size) < 0.4, "b", "a")
    field = flow_field(w, mean_field=True, labels=labels, resolution=5, inputs=np.array([0.3, -0.2]))
    loadings = np.concatenate([w.m, w.n, w.w_in], axis=1)  # plain moments over (m, n, w_in)
    means = np.stack([loadings[labels == p].mean(axis=0) for p in ("a", "b")])
    covariances = np.stack([np.cov(loadings[labels == p], rowvar=False) for p in ("a", "b")])
    fractions = np.array([np.mean(labels == "a"), np.mean(labels == "b")])
    plain = _as_model(means, covariances, fractions, rank=2, inputs=2)
    np.testing.assert_allclose(
        field.velocity, mean_field_flow(plain, field.kappa, np.array([0.3, -0.2])), atol=1e-12
    )
    model, *_ = _mixture(rng)  # rank 2, one input: does not match the network's two inputs
    with pytest.raises(RnnscopeError, match="population_model"):
        flow_field(w, mean_field=True, population_model=model)
    with pytest.raises(RnnscopeError, match="population_model"):
        mean_field_flow(object(), np.zeros(2))


def test_flow_field_shapes_and_values():
    rng = np.random.default_rng(7)
    w = gaussian_network([[2.0, 0.0], [0.0, 2.0]], 300, rng=rng)
    field = flow_field(w, resolution=11)
    assert field.kappa.shape == field.velocity.shape == (11, 11, 2)
    assert field.speed.shape == (11, 11)
    np.testing.assert_allclose(field.velocity, reduced_flow(w, field.kappa), atol=1e-12)
    one = gaussian_network([[2.0]], 300, rng=rng)
    assert flow_field(one, resolution=9).velocity.shape == (1, 9, 1)
    with pytest.raises(RnnscopeError, match="inputs"):
        flow_field(w, inputs=np.zeros(3))


@pytest.mark.reference
def test_reference_rdm_network_simulation_stays_in_latent_span():
    from rnnscope.io._reference import load_reference

    w = load_reference(reference_path("rdm_lr_fig2.pt"))
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, w.size)) * 0.5
    x = simulate_network(w, x0, np.array([0.3]), 200)
    # after 200 steps (40 tau) the part outside span(M, W_in) has decayed by exp(-40)
    assert latent_projection(w, x).variance_explained > 0.999
