"""Limits of the population fits behind ``resample`` (issue 11, item 7): a cap on P with a one-line error, a
single P-component fit when only P is used (the same labels as the P entry of the BIC sweep), progress that can be
turned off, and ``rng`` accepted as an int seed or a Generator by every function that draws randomness."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from conftest import reference_path

import rnnscope.analysis as _populations
from rnnscope.analysis import (
    MAX_POPULATIONS,
    PopulationModel,
    _evaluation,
    _inactivation,
    _loadings,
    _mixtures,
    _population_model,
    _population_run,
    _resampling,
    fit_populations,
    loadings,
    population_bound,
    population_labels_of,
    resample_network,
)
from rnnscope.analysis._loadings import relabel as _relabel
from rnnscope.errors import RnnscopeError
from rnnscope.io._reference import load_reference
from rnnscope.models import LowRankWeights
from rnnscope.tasks import make_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: simulate on one torch thread


def random_network(seed: int, size: int = 60, rank: int = 1, inputs: int = 4, outputs: int = 1) -> LowRankWeights:
    """A network with mante's inputs and outputs: loading space of inputs + 2 rank + outputs = 7 dimensions."""
    rng = np.random.default_rng(seed)
    return LowRankWeights(
        m=rng.standard_normal((size, rank)), n=rng.standard_normal((size, rank)) * 2,
        w_in=rng.standard_normal((size, inputs)), w_out=rng.standard_normal((size, outputs)) * 4,
        h0=np.zeros(size), noise_std=0.05,
    )


# -- the cap on P ------------------------------------------------------------------------------------------------
def test_bound_is_dims_plus_one_neurons_per_population_and_at_most_the_cap():
    assert population_bound(512, 7) == MAX_POPULATIONS == 20  # 512 // 8 = 64, capped
    assert population_bound(60, 7) == 7  # 60 // 8
    assert population_bound(7, 7) == 0


@pytest.mark.parametrize(("size", "populations", "words"), [
    (1000, MAX_POPULATIONS + 1, "cap of 20"),  # 1000 // 8 = 125 would allow it: the absolute cap binds
    (1000, 100, "cap of 20"),
    (60, 8, "60 neurons are too few for 8"),  # the per-population bound binds: 60 // 8 = 7
])
def test_too_many_populations_is_a_one_line_error_naming_populations(size, populations, words):
    weights, task = random_network(0, size=size), make_task("mante")
    with pytest.raises(RnnscopeError) as error:
        resample_network(weights, task, populations=populations, rng=0, networks=1, trials=4, progress=False)
    message = str(error.value)
    assert message.startswith("populations: ") and words in message and "\n" not in message
    with pytest.raises(RnnscopeError, match="^populations: "):
        population_labels_of(weights, populations, rng=0, progress=False)


def test_the_largest_allowed_p_fits():
    weights = random_network(1, size=60)
    labels, fit = population_labels_of(weights, population_bound(60, 7), rng=0, restarts=1, method="em",
                                       progress=False)
    assert fit.counts.tolist() == [7] and labels.shape == (60,)


def test_the_sweep_is_capped_too():
    points = loadings(random_network(0, size=1000))
    with pytest.raises(RnnscopeError, match="^max_populations: .*cap of 20"):
        fit_populations(points, rng=0, max_populations=MAX_POPULATIONS + 1, progress=False)


# -- one fit for one P -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("populations", [1, 2, 4])
def test_asking_for_p_fits_only_the_p_component_mixture(populations):
    weights = random_network(2, size=120)
    labels, fit = population_labels_of(weights, populations, rng=0, restarts=2, method="em", progress=False)
    assert fit.counts.tolist() == [populations] and fit.max_populations == populations
    assert fit.bic.shape == (1,) and fit.labels.shape == (1, 120) and len(fit.means) == 1
    assert fit.means[0].shape == (populations, 7) and fit.chosen == populations
    assert fit.restarts == (1 if populations == 1 else 2)
    assert labels.max() < populations and len(fit.to_dict()["fits"]) == 1
    with pytest.raises(RnnscopeError, match="no fit with 3 populations"):
        fit.labels_for(3)
    model = PopulationModel.from_fit(fit)
    assert model.populations == populations
    with pytest.raises(RnnscopeError, match="^populations: no fit with 3"):
        PopulationModel.from_fit(fit, 3)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method", ["em", "bayes"])
def test_a_single_fit_is_the_sweeps_entry_and_leaves_the_generator_where_the_sweep_does(seed, method):
    points = loadings(random_network(seed, size=150))
    sweep_rng, single_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    sweep = fit_populations(points, rng=sweep_rng, max_populations=3, restarts=2, method=method, progress=False)
    single = fit_populations(points, rng=single_rng, min_populations=3, max_populations=3, restarts=2, method=method,
                             progress=False)
    assert sweep.counts.tolist() == [1, 2, 3] and single.counts.tolist() == [3]
    np.testing.assert_array_equal(single.labels_for(3), sweep.labels_for(3))
    np.testing.assert_allclose(single.bic[0], sweep.bic[2])
    np.testing.assert_allclose(single.covariances[0], sweep.covariances[2])
    assert single.label_agreement[0] == sweep.label_agreement[2]
    assert single_rng.integers(2**31) == sweep_rng.integers(2**31)  # so what follows draws the same numbers


@pytest.mark.reference
def test_resample_labels_equal_the_old_sweeps_p2_entry():
    """What resample used before (the sweep 1..P with 5 bayes restarts, its P = 2 entry), on the same seed."""
    weights = load_reference(reference_path("mante_lr_fig1.pt"))
    sweep = fit_populations(loadings(weights), rng=np.random.default_rng(0), max_populations=2, restarts=5,
                            method="bayes", progress=False)
    labels, fit = population_labels_of(weights, 2, rng=np.random.default_rng(0), progress=False)
    np.testing.assert_array_equal(labels, _relabel(sweep.labels_for(2)))
    assert fit.counts.tolist() == [2]
    assert np.bincount(labels).tolist() == [279, 233]  # the sizes the sweep gave before this change


# -- progress ----------------------------------------------------------------------------------------------------
def test_progress_can_be_turned_off(capfd):
    weights, task = random_network(3), make_task("mante")
    trials = task.sample(8, rng=np.random.default_rng(0))
    capfd.readouterr()
    fit_populations(loadings(weights), rng=0, max_populations=2, restarts=1, progress=False)
    _populations.minimal_populations(weights, trials, rng=0, max_populations=2, networks=1, restarts=1,
                                     method="em", progress=False)
    resample_network(weights, task, populations=2, rng=0, networks=1, trials=8, method="em", progress=False)
    assert capfd.readouterr().err == ""


# -- rng: an int seed or a Generator, everywhere -----------------------------------------------------------------
def _same(a, b) -> bool:
    """Equal results: through to_dict when there is one, then containers, dataclasses and arrays."""
    if hasattr(a, "to_dict"):
        return _same(a.to_dict(), b.to_dict())
    if dataclasses.is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (np.ndarray, float, int, np.generic)) and not isinstance(a, (bool, np.bool_)):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=np.issubdtype(a.dtype, np.floating))
    return a == b


def _calls() -> dict:
    """Every public function (or method) of the population modules that draws randomness, as name -> call(rng)."""
    weights, task = random_network(4), make_task("mante")
    trials = task.sample(12, rng=np.random.default_rng(1))
    labels = np.repeat([0, 1], 30)
    model = PopulationModel.from_weights(weights, labels)
    small = dict(networks=2, progress=False)
    return {
        "fit_populations": lambda rng: _populations.fit_populations(
            loadings(weights), rng=rng, max_populations=2, restarts=2, progress=False),
        "PopulationModel.sample_loadings": lambda rng: model.sample_loadings(20, rng=rng),
        "PopulationModel.sample": lambda rng: model.sample(20, rng=rng),
        "PopulationModel.sample_many": lambda rng: model.sample_many(2, 20, rng=rng),
        "evaluate_networks": lambda rng: _populations.evaluate_networks(weights, trials, rng=rng),
        "resample_model": lambda rng: _populations.resample_model(model, trials, rng=rng, networks=2, size=20),
        "minimal_populations": lambda rng: _populations.minimal_populations(
            weights, trials, rng=rng, max_populations=2, restarts=1, method="em", stop_early=False, **small),
        "inactivate": lambda rng: _populations.inactivate(weights, labels, trials, rng=rng),
        "overlaps_by_group": lambda rng: _populations.overlaps_by_group(weights, labels, trials, rng=rng),
        "population_labels_of": lambda rng: _population_run.population_labels_of(
            weights, 2, rng=rng, restarts=2, method="em", progress=False),
        "resample_network": lambda rng: _population_run.resample_network(
            weights, task, populations=2, rng=rng, trials=12, method="em", **small),
        "connectivity_epairs": lambda rng: _population_run.connectivity_epairs(weights, rng=rng, draws=20),
        "selectivity_on_task": lambda rng: _population_run.selectivity_on_task(weights, task, rng=rng, trials=12),
        "selectivity_epairs": lambda rng: _population_run.selectivity_epairs(
            weights, task, rng=rng, draws=20, trials=12),
        "inactivate_populations": lambda rng: _population_run.inactivate_populations(
            weights, task, populations=2, rng=rng, trials=12, progress=False),
    }


def _functions_taking_rng() -> set[str]:
    """Names in the population modules' ``__all__`` (methods as Class.method) with an ``rng`` parameter."""
    found = set()
    for module in (_loadings, _mixtures, _population_model, _evaluation, _resampling, _inactivation, _population_run):
        for name in module.__all__:
            value = getattr(module, name)
            if not callable(value):
                continue
            members = [(name, value)] if not inspect.isclass(value) else [
                (f"{name}.{attr}", getattr(value, attr)) for attr in vars(value)
                if not attr.startswith("_") and callable(getattr(value, attr))]
            for label, function in members:
                parameter = inspect.signature(function).parameters.get("rng")
                if parameter is not None:
                    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, label
                    assert "int" in str(parameter.annotation) and "Generator" in str(parameter.annotation), label
                    found.add(label)
    return found


def test_every_function_that_draws_randomness_accepts_an_int_seed_or_a_generator():
    calls = _calls()
    assert set(calls) == _functions_taking_rng()  # the loop below covers every one of them
    for name, call in calls.items():
        from_int = call(0)
        again = call(0)
        from_generator = call(np.random.default_rng(0))
        assert _same(from_int, again), f"{name}: rng=0 twice gives different results"
        assert _same(from_int, from_generator), f"{name}: rng=0 differs from rng=np.random.default_rng(0)"
        for bad in (None, -1, 1.5):
            with pytest.raises(RnnscopeError, match="rng"):
                call(bad)
