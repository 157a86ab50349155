"""Population analysis: loading space, mixture fits, the population sampler, batched evaluation, resampling of the
reference networks, minimal populations, inactivation and effective overlaps."""

from __future__ import annotations

import numpy as np
import pytest
from _population_tasks import mante_trials, raposo_trials, rdm_trials, romo_trials
from conftest import reference_path, shipped_run

from rnnscope.analysis import (
    Loadings,
    PopulationModel,
    evaluate_networks,
    fit_populations,
    inactivate,
    loading_columns,
    loadings,
    minimal_populations,
    overlaps_by_group,
    resample_model,
    scale_population,
)
from rnnscope.errors import RnnscopeError
from rnnscope.io import load_run
from rnnscope.io._reference import load_reference
from rnnscope.models import LowRankWeights, simulate, stack_weights

NOISE = {"romo_rank2_500": 0.005}
TRIALS = {"mante_lr_fig1": mante_trials, "rdm_lr_fig2": rdm_trials, "raposo_lr_fig1": raposo_trials,
          "romo_rank2_500": romo_trials}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: simulate on one torch thread


def reference(name: str) -> LowRankWeights:
    """An authors' network: only from tests marked ``reference``."""
    return load_reference(reference_path(f"{name}.pt"), noise_std=NOISE.get(name, 0.05))


def shipped_mante() -> LowRankWeights:
    """The shipped context-dependent network (rank 1, N = 256, trained by rnnscope)."""
    return load_run(shipped_run("mante_rank1_256")).model.weights()


def random_network(rng, size=40, rank=2, inputs=3, outputs=1, noise_std=0.0) -> LowRankWeights:
    return LowRankWeights(
        m=rng.standard_normal((size, rank)), n=rng.standard_normal((size, rank)) * 2,
        w_in=rng.standard_normal((size, inputs)), w_out=rng.standard_normal((size, outputs)) * 4,
        h0=0.1 * rng.standard_normal(size), noise_std=noise_std,
    )


def numpy_outputs(w: LowRankWeights, inputs: np.ndarray) -> np.ndarray:
    """Plain Euler loop of the README dynamics without noise: (trials, time, outputs)."""
    x = np.tile(w.h0, (inputs.shape[0], 1))
    outputs = []
    for t in range(inputs.shape[1]):
        rates = np.tanh(x)
        x = x + w.alpha * (-x + (rates @ w.n) @ w.m.T / w.size + inputs[:, t] @ w.w_in.T)
        outputs.append(np.tanh(x) @ w.w_out / w.size)
    return np.stack(outputs, axis=1)


# -- loading space ---------------------------------------------------------------------------------------------
def test_loadings_round_trip_and_columns():
    w = random_network(np.random.default_rng(0))
    points = loadings(w)
    assert points.columns == ("w_in[0]", "w_in[1]", "w_in[2]", "n[0]", "n[1]", "m[0]", "m[1]", "w_out[0]")
    assert points.columns == loading_columns(rank=2, inputs=3, outputs=1)
    np.testing.assert_array_equal(points.values[:, 3:5], w.n)
    back = points.to_weights(h0=w.h0)
    for name in ("m", "n", "w_in", "w_out", "h0"):
        np.testing.assert_array_equal(getattr(back, name), getattr(w, name))
    bigger = points.to_weights(np.vstack([points.values, points.values]))
    assert bigger.size == 80 and np.all(bigger.h0 == 0)
    values, labels = points.select(("m", "w_out"))
    assert labels == ("m[0]", "m[1]", "w_out[0]") and values.shape == (40, 3)
    with pytest.raises(RnnscopeError, match="columns"):
        Loadings(values=points.values, columns=("m[0]",) * 8)


# -- mixture fits ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["em", "bayes"])
def test_fit_finds_two_populations(method):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 3)) @ np.diag([3.0, 0.2, 0.2])
    b = rng.standard_normal((200, 3)) @ np.diag([0.2, 3.0, 0.2])
    fit = fit_populations(np.vstack([a, b]), rng=0, max_populations=3, restarts=3, method=method)
    assert fit.chosen == 2
    truth = np.repeat([0, 1], 200)
    labels = fit.labels_for(2)
    agreement = max(np.mean(labels == truth), np.mean(labels != truth))
    assert agreement > 0.9
    assert fit.label_agreement[1] > 0.9 and fit.label_agreement[0] == 1.0
    assert sorted(fit.sizes[1].tolist()) == sorted(np.bincount(labels).tolist())
    d = fit.to_dict()
    assert d["chosen"] == 2 and len(d["fits"]) == 3 and len(d["fits"][1]["covariances"]) == 2


def test_fit_prefers_one_gaussian_for_a_gaussian_cloud():
    rng = np.random.default_rng(2)
    points = rng.standard_normal((400, 4)) @ rng.standard_normal((4, 4))
    assert fit_populations(points, rng=0, max_populations=3, restarts=2).chosen == 1
    with pytest.raises(RnnscopeError, match="too few"):
        fit_populations(points[:10], rng=0, max_populations=3)


# -- the population model ----------------------------------------------------------------------------------------
def test_population_model_validation():
    columns = loading_columns(rank=1, inputs=1, outputs=1)
    good = dict(fractions=np.array([0.5, 0.5]), means=np.zeros((2, 4)), covariances=np.stack([np.eye(4)] * 2),
                columns=columns)
    PopulationModel(**good)
    with pytest.raises(RnnscopeError, match="fractions"):
        PopulationModel(**{**good, "fractions": np.array([0.5, 0.6])})
    bad = np.stack([np.eye(4), np.diag([1.0, 1.0, 1.0, -1.0])])
    with pytest.raises(RnnscopeError, match="semidefinite"):
        PopulationModel(**{**good, "covariances": bad})
    with pytest.raises(RnnscopeError, match="means"):
        PopulationModel(**{**good, "means": np.zeros((3, 4))})


def test_sampler_moments_and_counts():
    rng = np.random.default_rng(3)
    columns = loading_columns(rank=1, inputs=1, outputs=1)
    factors = rng.standard_normal((2, 4, 4))
    covariances = factors @ factors.transpose(0, 2, 1)
    means = rng.standard_normal((2, 4))
    model = PopulationModel(fractions=np.array([0.3, 0.7]), means=means, covariances=covariances, columns=columns)
    values, labels = model.sample_loadings(20001, rng=rng)
    assert np.bincount(labels).tolist() == [6000, 14001]  # largest remainders of 6000.3 and 14000.7
    for p in range(2):
        members = values[labels == p]
        scale = np.sqrt(np.diag(covariances[p]))
        np.testing.assert_allclose(members.mean(axis=0), means[p], atol=0.05 * scale.max())
        np.testing.assert_allclose(np.cov(members, rowvar=False), covariances[p], atol=0.06 * scale.max() ** 2)
    zero, _ = model.sample_loadings(20000, rng=rng, zero_mean=True)
    np.testing.assert_allclose(zero.mean(axis=0), 0, atol=0.1)
    batch = model.sample_many(3, 50, rng=rng)
    assert batch.m.shape == (3, 50, 1) and batch.w_in.shape == (3, 50, 1) and batch.h0.shape == (3, 50)
    assert not np.allclose(batch.m[0], batch.m[1])
    one = batch.network(2)
    assert isinstance(one, LowRankWeights) and one.size == 50
    np.testing.assert_array_equal(model.sample(50, rng=7).m, model.sample(50, rng=7).m)


def test_from_weights_keeps_the_total_covariance():
    """With their means, the populations reproduce the cloud's covariance (law of total covariance)."""
    rng = np.random.default_rng(4)
    w = random_network(rng, size=300)
    labels = (loadings(w).values[:, 0] > 0.3).astype(int)
    model = PopulationModel.from_weights(w, labels)
    points = loadings(w).values
    for p in range(2):
        np.testing.assert_allclose(model.covariances[p], np.cov(points[labels == p], rowvar=False))
    f, mu, cov = model.fractions, model.means, model.covariances
    counts = np.bincount(labels)
    within = sum(cov[p] * (counts[p] - 1) for p in range(2))
    grand = points.mean(axis=0)
    between = sum(counts[p] * np.outer(mu[p] - grand, mu[p] - grand) for p in range(2))
    np.testing.assert_allclose((within + between) / (len(points) - 1), np.cov(points, rowvar=False), atol=1e-10)
    assert f.sum() == pytest.approx(1.0)
    single = PopulationModel.from_weights(w)
    np.testing.assert_allclose(single.covariances[0], np.cov(points, rowvar=False))


# -- batched simulation --------------------------------------------------------------------------------------------
def test_batched_simulation_matches_plain_loop():
    rng = np.random.default_rng(5)
    nets = [random_network(rng) for _ in range(3)]
    inputs = 0.5 * rng.standard_normal((4, 12, 3))
    outputs = simulate(stack_weights(nets), inputs, rng=0, memory_mb=0.01, backend="torch").outputs  # forces chunks of 1 trial
    for k, w in enumerate(nets):
        np.testing.assert_allclose(outputs[k], numpy_outputs(w, inputs), atol=1e-4)


def test_noise_is_private_and_reproducible():
    rng = np.random.default_rng(6)
    w = random_network(rng, noise_std=0.5)
    inputs = np.zeros((2, 10, 3))
    first = simulate([w, w], inputs, rng=1, shared_noise=False).outputs
    again = simulate([w, w], inputs, rng=1, shared_noise=False).outputs
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[0], first[1])
    shared = simulate([w, w], inputs, rng=1).outputs
    np.testing.assert_allclose(shared[0], shared[1])


def test_accuracy_rule():
    rng = np.random.default_rng(7)
    trials = mante_trials(64, rng=rng)
    w = shipped_mante()
    result = evaluate_networks(w, trials, rng=0)
    outputs = simulate(w, trials.inputs, rng=0).outputs
    c = trials.conditions
    wanted = np.sign(np.where(c["context"] == 0, c["colour_coherence"], c["motion_coherence"]))  # the cued stream
    np.testing.assert_array_equal(result.correct[0], np.sign(outputs[:, -1, 0]) == wanted)  # decision = last step
    values, by_context = result.by_condition(trials.conditions["context"])
    assert values.tolist() == [0, 1] and by_context.shape == (1, 2)


# -- the reference networks ---------------------------------------------------------------------------------------
@pytest.mark.reference
def test_mante_needs_populations():
    """mante_lr_fig1: trained >= 0.95, one zero-mean Gaussian fails (the paper: 0.70)."""
    rng = np.random.default_rng(8)
    w = reference("mante_lr_fig1")
    trials = mante_trials(200, rng=rng)
    result = resample_model(PopulationModel.from_weights(w), trials, rng=rng, networks=8, zero_mean=True, trained=w)
    assert result.trained_accuracy >= 0.95
    assert result.mean < 0.85
    assert result.to_dict()["populations"] == 1


@pytest.mark.reference
@pytest.mark.parametrize("name", ["rdm_lr_fig2", "raposo_lr_fig1", "romo_rank2_500"])
def test_single_gaussian_suffices(name):
    rng = np.random.default_rng(9)
    w = reference(name)
    trials = TRIALS[name](200, rng=rng)
    result = resample_model(PopulationModel.from_weights(w), trials, rng=rng, networks=6, zero_mean=True)
    assert result.mean >= 0.95


@pytest.mark.reference
def test_minimal_populations_is_one_for_rdm():
    rng = np.random.default_rng(10)
    w = reference("rdm_lr_fig2")
    result = minimal_populations(
        w, rdm_trials(150, rng=rng), rng=rng, max_populations=2, networks=4, restarts=2, method="em"
    )
    assert result.populations == 1
    assert result.trained_accuracy >= 0.95
    assert np.isnan(result.accuracy[1]).all()  # stopped at the first success
    assert result.to_dict()["populations"] == 1


@pytest.mark.reference
def test_two_populations_with_means_do_not_flip_a_unimodal_cloud():
    """Splitting rdm's unimodal cloud in two keeps accuracy when each population keeps its mean."""
    rng = np.random.default_rng(11)
    w = reference("rdm_lr_fig2")
    labels = fit_populations(loadings(w), rng=0, max_populations=2, restarts=2, method="em").labels_for(2)
    result = resample_model(PopulationModel.from_weights(w, labels), rdm_trials(150, rng=rng), rng=rng, networks=4)
    assert result.mean >= 0.95


@pytest.mark.reference
def test_two_populations_at_512_run_through_the_same_code():
    """mante_lr_fig1 with two populations (finite size: the README reports about 0.75, far below 4096's 0.96)."""
    rng = np.random.default_rng(12)
    w = reference("mante_lr_fig1")
    fit = fit_populations(loadings(w), rng=0, max_populations=2, restarts=3, method="bayes")
    labels = fit.labels_for(2)
    trials = mante_trials(150, rng=rng)
    two = resample_model(PopulationModel.from_weights(w, labels), trials, rng=rng, networks=6, zero_mean=True)
    assert 0.5 < two.mean < 0.99
    silenced = inactivate(w, labels, trials, rng=rng)
    assert silenced.accuracy.shape == (3, 2) and silenced.accuracy[0].min() >= 0.9
    assert silenced.to_dict()["scaled"][1]["population"] == 1


# -- inactivation and gain --------------------------------------------------------------------------------------
def test_scale_population():
    rng = np.random.default_rng(13)
    w = random_network(rng)
    labels = np.arange(40) % 2
    same = scale_population(w, labels, 0, gain=1.0)
    np.testing.assert_array_equal(same.n, w.n)
    off = scale_population(w, labels, 1)
    assert np.all(off.n[1::2] == 0) and np.all(off.m[1::2] == 0) and np.all(off.w_out[1::2] == 0)
    np.testing.assert_array_equal(off.n[::2], w.n[::2])
    half = scale_population(w, labels, 1, gain=0.5)
    np.testing.assert_allclose(half.w_out[1::2], 0.5 * w.w_out[1::2])
    np.testing.assert_array_equal(half.m, w.m)
    with pytest.raises(RnnscopeError, match="population"):
        scale_population(w, labels, 2)


def test_effective_overlaps_match_a_direct_computation():
    rng = np.random.default_rng(14)
    w = shipped_mante()
    quiet = LowRankWeights(m=w.m, n=w.n, w_in=w.w_in, w_out=w.w_out, h0=w.h0, noise_std=0.0)
    trials = mante_trials(16, rng=rng)
    labels = (w.n[:, 0] > 0).astype(int)
    result = overlaps_by_group(quiet, labels, trials, rng=0)
    # direct: states from the plain loop, phi' averaged over the stimulus epoch per context
    x = np.tile(quiet.h0, (16, 1))
    states = []
    for t in range(trials.steps):
        x = x + 0.2 * (-x + (np.tanh(x) @ quiet.n) @ quiet.m.T / quiet.size + trials.inputs[:, t] @ quiet.w_in.T)
        states.append(x)
    slopes = 1 - np.tanh(np.stack(states, axis=1)) ** 2
    start, stop = trials.epochs["stimulus"]
    context = trials.conditions["context"]
    gains = np.stack([slopes[context == c][:, start[0]:stop[0]].mean(axis=(0, 1)) for c in (0, 1)])
    np.testing.assert_allclose(result.gains, gains, atol=1e-4)
    col = result.columns.index("w_in[0]")
    expected = (quiet.n[labels == 1, 0] * quiet.w_in[labels == 1, 0] * gains[1][labels == 1]).mean()
    assert result.values[1, 1, 0, col] == pytest.approx(expected, abs=1e-4)
    np.testing.assert_allclose(np.einsum("p,gprc->grc", result.fractions, result.values), result.total, atol=1e-10)
    # the (n, m) block agrees with the latent analysis at the group's states
    from rnnscope.analysis import effective_overlaps

    group_states = np.stack(states, axis=1)[context == 0][:, start[0]:stop[0]]
    latent = effective_overlaps(quiet, group_states, labels)
    m_col = result.columns.index("m[0]")
    np.testing.assert_allclose(result.values[0, :, :, m_col], latent.per_population[:, :, 0], atol=1e-4)


# -- the large network (N = 4096) -------------------------------------------------------------------------------------
@pytest.mark.reference
def test_mante_4096_needs_two_populations():
    """README: one Gaussian about 0.74, two populations (zero means) about 0.96; silencing a population impairs one
    context much more than the other."""
    rng = np.random.default_rng(15)
    w = reference("mante_rank1_4096")
    trials = mante_trials(200, rng=rng, cue_amplitude=0.5)
    fit = fit_populations(loadings(w), rng=0, max_populations=2, restarts=3, method="bayes")
    labels = fit.labels_for(2)
    one = resample_model(PopulationModel.from_weights(w), trials, rng=rng, networks=8, size=4096, zero_mean=True)
    two = resample_model(PopulationModel.from_weights(w, labels), trials, rng=rng, networks=8, size=4096, zero_mean=True)
    assert one.mean < 0.85
    assert two.mean >= 0.9
    silenced = inactivate(w, labels, trials, rng=rng)
    drops = silenced.accuracy[0] - silenced.accuracy[1:]  # (populations, contexts)
    for p in range(2):
        assert abs(drops[p, 0] - drops[p, 1]) > 0.2
