"""Networks built by hand (rnnscope.design): specification checks, the gallery's claimed behaviour checked with the
analysis code, the mean-field prediction against sampled networks, and fitting a spec's free parameters."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from rnnscope.analysis import (
    PopulationModel,
    effective_overlaps,
    evaluate_networks,
    find_fixed_points,
    loadings,
    overlaps,
)
from rnnscope.design import (
    associative_memory_spec,
    design_network,
    fit_design,
    gallery_names,
    list_gallery,
    load_gallery,
    mean_field_agreement,
    population_labels,
    population_model,
    predict_fixed_points,
    resolve_spec,
    sample_network,
    sample_networks,
    stored_patterns,
)
from rnnscope.design._spec import load_spec, spec_from_dict
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models import model_from_weights, simulate
from rnnscope.tasks import TrialBatch, make_task
from rnnscope.training import evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: simulate on one torch thread


def _base(**changes):
    data = {
        "rank": 1, "inputs": 1, "outputs": 1,
        "populations": [{"fraction": 1.0, "overlaps": {"overlaps": [[2.0]], "input_std": [1.0]}}],
    }
    data.update(changes)
    return data


# ------------------------------------------------------------------------------------------- specification
def test_valente_construction_moments_match_closed_form():
    rho, a_n, a_m, w_o, s_n, s_m = 1.5, 0.7, 0.4, 2.0, 1.3, -0.6
    spec = spec_from_dict({"rank": 1, "inputs": 1, "outputs": 1, "populations": [{"fraction": 1.0, "valente": {
        "rho": rho, "n_private": a_n, "m_private": a_m, "w_o": w_o, "s_n": s_n, "s_m": s_m}}]})
    _, cov = spec.moments()
    c = {label: i for i, label in enumerate(spec.columns)}
    cov = cov[0]
    assert cov[c["n[0]"], c["m[0]"]] == pytest.approx(rho)
    assert cov[c["n[0]"], c["w_in[0]"]] == pytest.approx(s_n * a_n)
    assert cov[c["m[0]"], c["w_in[0]"]] == pytest.approx(s_m * a_m)
    assert cov[c["m[0]"], c["w_out[0]"]] == pytest.approx(w_o * (rho + a_m**2))
    assert cov[c["w_in[0]"], c["w_in[0]"]] == pytest.approx(1 + s_n**2 + s_m**2)
    # a large sampled network has these overlaps (independent plain computation)
    w = sample_network(spec, 40000, rng=0)
    assert np.mean(w.n[:, 0] * w.m[:, 0]) == pytest.approx(rho, abs=0.05)
    assert np.mean(w.n[:, 0] * w.w_in[:, 0]) == pytest.approx(s_n * a_n, abs=0.05)


def test_overlaps_form_imposes_overlap_matrix():
    sigma = [[2.5, -1.0], [1.0, 2.0]]
    spec = spec_from_dict({"rank": 2, "inputs": 1, "outputs": 1, "populations": [
        {"fraction": 1.0, "overlaps": {"overlaps": sigma, "n_std": 0.3}}]})
    w = sample_network(spec, 20000, rng=1)
    np.testing.assert_allclose(overlaps(w), sigma, atol=0.1)
    np.testing.assert_allclose(population_model(spec).overlaps(), sigma, atol=1e-12)


def test_same_sampler_as_resampling():
    """Building from a spec is PopulationModel.sample: same seed, same network."""
    spec = load_gallery("mante_gain_modulation")
    model = population_model(spec)
    assert isinstance(model, PopulationModel)
    a = sample_network(spec, 300, rng=5)
    b = model.sample(300, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(loadings(a).values, loadings(b).values)
    labels = population_labels(spec, 300)
    assert np.bincount(labels).tolist() == [150, 150]


@pytest.mark.parametrize(
    "data, message",
    [
        (_base(populations=[{"fraction": 0.6, "overlaps": {"overlaps": [[2.0]]}}]), "sum to 1"),
        (_base(populations=[{"fraction": 1.0, "means": 0.0, "covariance": [[1, 0, 0, 0], [0, 1, 2, 0],
                                                                           [0, 2, 1, 0], [0, 0, 0, 1]]}]),
         "not positive semidefinite"),
        (_base(populations=[{"fraction": 1.0, "means": 0.0, "covariance": [[1, 0], [0, 1]]}]), "expected shape (4, 4)"),
        (_base(populations=[{"fraction": 1.0, "overlaps": {"overlaps": [[1.0, 0.0]]}}]), "expected shape (1, 1)"),
        (_base(colour="red"), "unknown key 'colour'"),
        (_base(populations=[{"fraction": 1.0, "overlap": {}}]), "populations[0]: unknown key 'overlap'"),
        (_base(rank=0), "rank"),
        (_base(populations=[{"fraction": 1.0, "valente": {"rho": 1.0, "beta": 2}}]), "unknown key 'beta'"),
        (_base(rank=2, populations=[{"fraction": 1.0, "valente": {"rho": 1.0}}]), "rank 1"),
        (_base(populations=[{"fraction": 1.0, "means": {"q[0]": 1.0}, "covariance": {}}]), "'q[0]' is not a column"),
        (_base(task={"name": "mante"}), "4 inputs"),
        (_base(free=["nope"]), "'nope' is not a parameter"),
    ],
)
def test_spec_errors_name_file_and_field(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RnnscopeError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(RnnscopeError, match="missing.json: no such file"):
        load_spec(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(RnnscopeError, match="not valid JSON"):
        load_spec(tmp_path / "broken.json")
    with pytest.raises(RnnscopeError, match="gallery"):
        resolve_spec("no_such_spec")
    with pytest.raises(RnnscopeError, match="not in the design gallery"):
        load_gallery("no_such_spec")


def test_round_trip_and_listing(tmp_path):
    for name in gallery_names():
        spec = load_gallery(name)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(spec.to_dict()))
        again = load_spec(path)
        (m1, c1), (m2, c2) = spec.moments(), again.moments()
        np.testing.assert_allclose(m1, m2)
        np.testing.assert_allclose(c1, c2)
    listing = list_gallery()
    assert {e["name"] for e in listing} == set(gallery_names())
    json.dumps(listing)
    assert len(gallery_names()) >= 11


# ------------------------------------------------------------------------------------------- gallery: dynamics
_DYNAMICS = [(name, i) for name in gallery_names() for i, _ in enumerate(load_gallery(name).claims.get("dynamics", []))]


@pytest.mark.parametrize("name, index", _DYNAMICS)
def test_gallery_dynamics_claims(name, index):
    """Fixed-point classes, ring and limit cycle: in the mean field of the spec and in a sampled network."""
    spec = load_gallery(name)
    claim = spec.claims["dynamics"][index]
    inputs = np.asarray(claim["inputs"], dtype=float)
    size = 4000 if name == "rank2_switching" else 1000  # the switching cycle is near its Hopf point: larger N
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = {
            "mean field": predict_fixed_points(spec, rng=0, inputs=inputs, starts=60),
            "finite": find_fixed_points(sample_network(spec, size, rng=1), inputs=inputs, rng=2, starts=60),
        }
    for label, result in results.items():
        counts = result.fixed_points.counts()
        for key in ("stable", "saddle", "source"):
            if key in claim:
                assert counts[key] == claim[key], (label, counts)
        for key in ("ring", "limit_cycle"):
            if key in claim:
                assert getattr(result, key) == claim[key], (label, key)


def test_associative_memory_retrieves_each_pattern():
    spec = load_gallery("associative_memory")
    claim = spec.claims["retrieval"]
    count = claim["patterns"]
    assert spec.rank == count and len(spec.populations) == 2**count
    weights = sample_network(spec, claim["size"], rng=3)
    patterns = stored_patterns(weights)  # (size, patterns)
    # J = gain sum_mu r^mu r^mu^T / N (Hopfield 1982), checked on the full matrix
    np.testing.assert_allclose(weights.connectivity(), 2.0 * patterns @ patterns.T / weights.size)
    rng = np.random.default_rng(4)
    steps = 60
    batch = TrialBatch(np.zeros((1, steps, 1)), np.zeros((1, steps, 1)), np.ones((1, steps)), {})
    for mu in range(count):
        flips = rng.random(weights.size) < claim["flip"]
        cue = np.where(flips, -patterns[:, mu], patterns[:, mu])
        cued = dataclasses.replace(weights, h0=cue)
        states = simulate(cued, batch.inputs, rng=None, noise=False, record="states").states
        rates = np.tanh(states[0, -1])
        similarity = patterns.T @ rates / weights.size  # (patterns,)
        assert int(np.argmax(np.abs(similarity))) == mu
        assert similarity[mu] > 0.9
        assert np.mean(np.sign(rates) == patterns[:, mu]) == 1.0


def test_design_network_for_a_run_directory():
    designed = design_network(resolve_spec("rdm_integrator"), 300, seed=4)
    again = design_network(load_gallery("rdm_integrator"), 300, seed=4)
    np.testing.assert_array_equal(designed.weights.m, again.weights.m)
    assert designed.task == {"name": "rdm", "options": {}} and not designed.task_is_placeholder
    ring = design_network(load_gallery("rank2_ring"), 200, seed=0)
    assert ring.task_is_placeholder
    json.dumps(designed.to_dict())
    model = model_from_weights(designed.weights)
    assert evaluate(model, make_task(**designed.task), trials=50, rng=np.random.default_rng(0)).accuracy >= 0.9


def test_associative_memory_constructor_shapes():
    spec = associative_memory_spec(2, gain=3.0)
    assert spec.rank == 2 and len(spec.populations) == 4
    with pytest.raises(RnnscopeError, match="patterns"):
        associative_memory_spec(0)


# ------------------------------------------------------------------------------------------- gallery: tasks
def _task_accuracy(name: str, networks: int, trials: int, size: int) -> np.ndarray:
    spec = load_gallery(name)
    rng = np.random.default_rng(11)
    batch = sample_networks(spec, size, networks, rng=rng)
    return evaluate_networks(batch, spec.make_task().sample(trials, rng=rng), rng=rng).accuracy


def test_rdm_integrator_solves_rdm_ten_networks_few_trials():
    claim = load_gallery("rdm_integrator").claims["task"]
    accuracy = _task_accuracy("rdm_integrator", networks=claim["networks"], trials=100, size=claim["size"])
    assert np.all(accuracy >= claim["accuracy"]), accuracy


def test_rdm_integrator_solves_rdm_ten_networks():
    claim = load_gallery("rdm_integrator").claims["task"]
    accuracy = _task_accuracy("rdm_integrator", networks=claim["networks"], trials=1000, size=claim["size"])
    assert np.all(accuracy >= claim["accuracy"]), accuracy


def test_mante_gain_modulation_solves_mante_small():
    claim = load_gallery("mante_gain_modulation").claims["task"]
    accuracy = _task_accuracy("mante_gain_modulation", networks=2, trials=100, size=claim["size"])
    assert np.mean(accuracy) >= claim["accuracy"], accuracy


def test_mante_gain_modulation_solves_mante():
    claim = load_gallery("mante_gain_modulation").claims["task"]
    accuracy = _task_accuracy("mante_gain_modulation", networks=10, trials=500, size=claim["size"])
    assert np.mean(accuracy) >= claim["accuracy"] and np.min(accuracy) >= claim["accuracy"] - 0.05, accuracy


def test_mante_effective_overlaps_switch_with_context():
    """Theory (Dubreuil, Valente et al. 2022 Fig. 4): the cue saturates the population that reads the irrelevant
    stream, so the gain-weighted input overlap of that stream collapses in that context, the relevant one stays,
    and the recurrent (integrating) overlap stays about the same in both contexts."""
    spec = load_gallery("mante_gain_modulation")
    weights = sample_network(spec, 600, rng=6)
    labels = population_labels(spec, 600)
    task = spec.make_task()
    rng = np.random.default_rng(7)
    colour, motion = task.input_names.index("colour"), task.input_names.index("motion")
    result = {}
    for context in (0, 1):
        batch = task.sample(16, rng=rng, context=np.full(16, context))
        states = simulate(weights, batch.inputs, rng=rng, record="states").states
        start, stop = batch.epochs["cue"]  # cue alone: the context has set the gains, the stimulus is not on yet
        window = states[:, int(start[0]) + 5 : int(stop[0])]
        result[context] = effective_overlaps(weights, window, labels)
    plain = overlaps(weights)[0, 0]
    for context, relevant, irrelevant in ((0, colour, motion), (1, motion, colour)):
        eff = result[context]
        assert eff.input_overlaps[0, relevant] > 4 * abs(eff.input_overlaps[0, irrelevant]), eff.input_overlaps
        plain_relevant = float(np.mean(weights.n[:, 0] * weights.w_in[:, relevant]))
        assert eff.input_overlaps[0, relevant] > 0.6 * plain_relevant
        # the silenced population (0 reads motion and is cued by colour) has low gain in its context
        silenced = 0 if context == 0 else 1
        assert eff.gain[labels == silenced].mean() < 0.3 * eff.gain[labels != silenced].mean()
    recurrent = [result[c].overlaps[0, 0] for c in (0, 1)]
    assert abs(recurrent[0] - recurrent[1]) < 0.2 * plain
    assert 0.7 < np.mean(recurrent) < 1.3  # near 1: a slow line that integrates


# ------------------------------------------------------------------------------------------- mean field vs N
def test_mean_field_agreement_improves_with_size():
    spec = load_gallery("rank2_saddle")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        report = mean_field_agreement(spec, rng=0, sizes=(250, 4000), networks=3, starts=30, resolution=9)
    assert report.distance.shape == (2, 3)
    assert np.nanmean(report.distance[1]) < np.nanmean(report.distance[0])
    assert np.mean(report.flow_error[1]) < np.mean(report.flow_error[0])
    assert np.all(report.class_match[1])
    json.dumps(report.to_dict())


# ------------------------------------------------------------------------------------------- fitting
def test_fit_design_recovers_the_integrator():
    """Start the integrator with a readout of the wrong sign (accuracy ~ 0); fitting w_o and s_n alone brings it
    back (either sign flips), and freshly resampled networks solve the task."""
    spec = load_gallery("rdm_integrator")
    broken = spec.with_parameters({(0, "w_o"): -0.5, (0, "s_n"): 0.3})
    fit = fit_design(broken, free=("w_o", "s_n"), rng=0, epochs=20, trials=24, size=150, lr=0.1, networks=3,
                     eval_trials=100)
    assert fit.values["w_o"][0] * fit.values["s_n"][0] > 0  # the output's sign is that of w_o s_n
    assert fit.losses[-5:].mean() < fit.losses[:5].mean()
    assert fit.mean_accuracy >= 0.9, fit.accuracy
    assert fit.spec.populations[0].parameters["rho"] == spec.populations[0].parameters["rho"]  # not free: untouched
    assert fit.network.size == 150
    json.dumps(fit.to_dict())
    with pytest.raises(RnnscopeError, match="not a parameter"):
        fit_design(spec, free=("gamma",), rng=0, epochs=1)


def test_yaml_spec_when_pyyaml_is_installed(tmp_path):
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(load_gallery("rank2_saddle").to_dict()))
    np.testing.assert_allclose(load_spec(path).moments()[1], load_gallery("rank2_saddle").moments()[1])
