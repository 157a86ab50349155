"""Issue 13: the population-model retraining runs on the fused kernel's gradients (equal to the PyTorch path's on
the same noise), the minimal-population search starts at any P, one mixture method (bayes) is the default
everywhere, every resampling result names its method and population sizes, and a gap to the trained network is
explained (finite size: --size, or --retrain)."""

from __future__ import annotations

import inspect
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import shipped_run

from rnnscope.analysis import (
    PopulationModel,
    Resampling,
    fit_populations,
    fused_loadings_loss,
    loadings_loss,
    loadings_loss_and_grads,
    minimal_populations,
    population_labels_of,
    resample_network,
    retrain_population_model,
)
from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.io import load_run
from rnnscope.models import LowRankWeights, fast_noise
from rnnscope.tasks import make_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: simulate on one torch thread


@pytest.fixture(scope="module")
def mante() -> LowRankWeights:
    """The shipped mante network (rank 1, N = 256, trained by rnnscope)."""
    return load_run(shipped_run("mante_rank1_256")).model.weights()


def _two_population_model(weights: LowRankWeights) -> PopulationModel:
    return PopulationModel.from_weights(weights, np.arange(weights.size) % 2)


# ------------------------------------------------------------------------------------------------ fused gradients
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_gradient_equals_the_pytorch_paths_on_the_same_noise(mante, seed):
    """Through the sampler, the fused loss of K networks has the value and the gradient (means, Cholesky factors)
    of the mean of the PyTorch loop's losses on the noise fast_noise gives for each network's seed."""
    model = _two_population_model(mante)
    batch = make_task("mante").sample(6, rng=np.random.default_rng(seed))
    generator = torch.Generator().manual_seed(seed)
    sampler = model.sampler()
    z = sampler.normals(48, generator=generator, networks=3)
    seeds = [seed * 10 + k for k in range(3)]

    fused = fused_loadings_loss(sampler(z), model.columns, batch, noise_std=model.noise_std, alpha=model.alpha,
                                seeds=seeds)
    fused.backward()
    fused_grads = {name: p.grad.clone() for name, p in sampler.named_parameters()}
    sampler.zero_grad()

    values = sampler(z)
    plain = sum(
        loadings_loss(values[k], model.columns, batch, noise_std=model.noise_std, alpha=model.alpha,
                      generator=generator, noise=torch.from_numpy(fast_noise((batch.trials, batch.steps, 48), s)))
        for k, s in enumerate(seeds)
    ) / 3
    plain.backward()
    assert float(fused.detach()) == pytest.approx(float(plain.detach()), rel=1e-5)
    for name, parameter in sampler.named_parameters():
        assert parameter.grad.abs().max() > 0, name
        np.testing.assert_allclose(fused_grads[name].numpy(), parameter.grad.numpy(), atol=1e-5, rtol=0, err_msg=name)


def test_loss_and_grads_per_network_and_bad_shapes(mante):
    model = _two_population_model(mante)
    values = model.sample_many(2, 32, rng=0)
    stacked = np.concatenate([values.w_in, values.n, values.m, values.w_out], axis=-1)
    batch = make_task("mante").sample(4, rng=np.random.default_rng(0))
    losses, grads = loadings_loss_and_grads(stacked, model.columns, batch, noise_std=0.05, alpha=0.2, seeds=[1, 2])
    assert losses.shape == (2,) and grads.shape == stacked.shape and np.isfinite(grads).all()
    alone, alone_grads = loadings_loss_and_grads(stacked[1:], model.columns, batch, noise_std=0.05, alpha=0.2,
                                                 seeds=[2])
    np.testing.assert_allclose(alone, losses[1:], rtol=1e-6)  # each network its own loss, its own noise
    np.testing.assert_allclose(alone_grads, grads[1:], rtol=1e-5, atol=1e-7)
    with pytest.raises(RnnscopeError, match="values"):
        loadings_loss_and_grads(stacked[0], model.columns, batch, noise_std=0.05, alpha=0.2, seeds=[1])


def test_retraining_draws_several_networks_per_step_and_lowers_the_loss(mante):
    task = make_task("mante")
    model = PopulationModel.from_weights(mante)
    retraining = retrain_population_model(model, task, rng=0, epochs=30, size=128, trials=16, lr=0.05, networks=2)
    assert retraining.losses.shape == (30,) and np.isfinite(retraining.losses).all()
    assert retraining.losses[-5:].mean() < retraining.losses[:5].mean()
    again = retrain_population_model(model, task, rng=0, epochs=30, size=128, trials=16, lr=0.05, networks=2)
    np.testing.assert_array_equal(again.losses, retraining.losses)  # rng decides trials, z and noise
    with pytest.raises(RnnscopeError, match="networks"):
        retrain_population_model(model, task, rng=0, epochs=1, networks=0)


def test_retraining_clips_the_gradient_norm(mante):
    """clip_gradient reaches the optimiser: same draws, same first loss, then other steps (Adam normalises a
    uniformly scaled gradient, so clipping acts through the steps whose norms differ)."""
    task = make_task("mante")
    model = PopulationModel.from_weights(mante)
    kwargs = dict(rng=3, epochs=6, size=64, trials=8, lr=0.05)
    free = retrain_population_model(model, task, **kwargs)
    clipped = retrain_population_model(model, task, clip_gradient=1e-4, **kwargs)
    assert free.losses[0] == clipped.losses[0] and not np.array_equal(free.losses, clipped.losses)
    assert not np.array_equal(free.model.covariances, clipped.model.covariances)
    with pytest.raises(RnnscopeError, match="clip_gradient"):
        retrain_population_model(model, task, clip_gradient=0.0, **kwargs)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "measured: of 13 dms networks trained here (N = 512), one (the earlier recipe, seed 0) reached 1.00 from two "
    "retrained populations (one Gaussian: 0.62); for the 12 others the resampled 2-population models start above "
    "loss 1 and retraining stays at the silent-readout plateau (0.47-0.53; 0.73 with 4 networks per step, 0.70 "
    "through the delay curriculum). The paper's retraining (SupportLowRankRNN, Gaussian basis) is not reproduced."))
def test_dms_needs_two_retrained_populations(tmp_path, capsys):
    """Issue 13: a rank-2 dms network trained here (N = 512, seed 0) retrained from one Gaussian stays near chance,
    from its two populations it matches the trained network (the paper's result)."""
    run = tmp_path / "dms"
    assert main(["train", "--task", "dms", "--size", "512", "--seed", "0", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["minimal-populations", str(run), "--retrain", "--max-populations", "2", "--networks", "5",
                 "--trials", "300", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["populations"] == 2, result
    assert max(result["mean_retrained_accuracy"][0], result["mean_accuracy"][0]) < 0.8
    assert result["mean_retrained_accuracy"][1] >= result["trained_accuracy"] - 0.05


# ------------------------------------------------------------------------------------------------ minimal P
def test_minimal_populations_starts_at_min_populations(mante):
    batch = make_task("mante").sample(40, rng=np.random.default_rng(0))
    result = minimal_populations(mante, batch, rng=0, min_populations=2, max_populations=3, networks=2, restarts=1,
                                 stop_early=False, progress=False)
    assert result.fit.counts.tolist() == [2, 3] and result.method == "bayes"
    assert np.isnan(result.accuracy[0]).all() and np.isfinite(result.accuracy[1:]).all()
    d = json.loads(json.dumps(result.to_dict()))
    assert d["min_populations"] == 2 and d["method"] == "bayes" and d["population_sizes"][0] is None
    for count in (2, 3):
        sizes = d["population_sizes"][count - 1]
        assert sum(sizes) == mante.size and len(sizes) <= count
    with pytest.raises(RnnscopeError, match="min_populations"):
        minimal_populations(mante, batch, rng=0, min_populations=3, max_populations=2, progress=False)


def test_minimal_populations_retrains_from_min_populations(mante):
    task = make_task("mante")
    batch = task.sample(40, rng=np.random.default_rng(1))
    result = minimal_populations(mante, batch, rng=0, min_populations=2, max_populations=2, networks=2, restarts=1,
                                 retrain=True, task=task, retrain_epochs=3, retrain_size=64, progress=False)
    assert result.retrain_losses.shape == (2, 3)
    assert np.isnan(result.retrain_losses[0]).all() and np.isfinite(result.retrain_losses[1]).all()
    assert result.retrained_models[0] is None and isinstance(result.retrained_models[1], PopulationModel)


# ------------------------------------------------------------------------------------------------ one method
@pytest.mark.parametrize("function", [fit_populations, population_labels_of, resample_network, minimal_populations])
def test_bayes_is_the_default_method_of_every_network_population_function(function):
    """Loading space only: recorded data (``data_populations``) keeps "em", whose component means are free, as
    selectivity clusters differ by their means (bayes pins them to the cloud's mean)."""
    assert inspect.signature(function).parameters["method"].default == "bayes"


def test_cli_population_commands_default_to_bayes():
    from rnnscope._cli_analysis import ANALYSIS_COMMANDS

    for command in ANALYSIS_COMMANDS:
        for option in command.params:
            if option.name == "method":
                assert option.default == "bayes", command.name


# ------------------------------------------------------------------------------------------------ JSON and advice
def _resampling(mean: float, trained: float) -> Resampling:
    return Resampling(accuracy=np.array([mean, mean]), trained_accuracy=trained, populations=2, size=512,
                      zero_mean=False, population_sizes=(284, 228), method="bayes",
                      trained_population_sizes=(284, 228), tolerance=0.05)


def test_advice_appears_only_beyond_the_tolerance():
    far = _resampling(0.7, 0.99)
    assert far.gap == pytest.approx(0.29)
    assert "--size 2048" in far.advice and "--retrain" in far.advice and "512 neurons" in far.advice
    assert _resampling(0.96, 0.99).advice is None
    unknown = _resampling(0.7, float("nan"))
    assert unknown.advice is None and unknown.to_dict()["gap"] is None
    d = json.loads(json.dumps(far.to_dict()))
    assert d["method"] == "bayes" and d["population_sizes"] == [284, 228] and d["advice"] == far.advice


def test_resample_network_names_its_fit_and_population_sizes(mante):
    result = resample_network(mante, make_task("mante"), populations=2, rng=0, networks=2, size=100, trials=20,
                              progress=False)
    d = result.to_dict()
    assert d["method"] == "bayes" and d["size"] == 100 and sum(d["population_sizes"]) == 100
    assert sum(d["trained_population_sizes"]) == mante.size and len(d["trained_population_sizes"]) == 2
    assert "gap" in d and "advice" in d and d["tolerance"] == 0.05


def test_cli_resample_prints_size_method_and_advice(tmp_path, capsys):
    run = tmp_path / "mante"
    shutil.copytree(shipped_run("mante_rank1_256"), run)
    capsys.readouterr()
    # 12 neurons are far too few to keep the trained accuracy: the advice line appears
    assert main(["resample", str(run), "--populations", "1", "--networks", "2", "--trials", "60", "--size", "12",
                 "--tolerance", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "N = 12" in out and "bayes fit" in out and "--size 48" in out and "--retrain" in out
    assert main(["resample", str(run), "--populations", "1", "--networks", "2", "--trials", "60", "--size", "12",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["method"] == "bayes" and d["population_sizes"] == [12] and "advice" in d


def test_cli_minimal_populations_min_populations(tmp_path, capsys):
    run = tmp_path / "mante"
    shutil.copytree(shipped_run("mante_rank1_256"), run)
    capsys.readouterr()
    assert main(["minimal-populations", str(run), "--min-populations", "2", "--max-populations", "2", "--networks",
                 "2", "--trials", "60", "--retrain", "--retrain-epochs", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["min_populations"] == 2 and d["method"] == "bayes" and d["population_sizes"][0] is None
    assert len(d["retrain_losses"][1]) == 2
