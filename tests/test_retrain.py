"""Retraining a population model through reparametrised sampling: the differentiable sampler, the loss it
trains, recovery of damaged models of the rdm reference network, and the retraining option of the
minimal-population search (Python and CLI)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import reference_path, shipped_run

from rnnscope.analysis import (
    PopulationModel,
    loadings,
    loadings_loss,
    minimal_populations,
    resample_model,
    retrain_population_model,
)
from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.io import load_run
from rnnscope.io._reference import load_reference
from rnnscope.tasks import make_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: simulate on one torch thread


@pytest.fixture(scope="module")
def rdm() -> PopulationModel:
    """The single Gaussian of the rdm reference network's neurons (tests marked ``reference`` only)."""
    return PopulationModel.from_weights(load_reference(reference_path("rdm_lr_fig2.pt")))


@pytest.fixture(scope="module")
def shipped_rdm() -> PopulationModel:
    """The single Gaussian of the neurons of the shipped random-dots network (rank 1, N = 128, trained by rnnscope)."""
    return PopulationModel.from_weights(load_run(shipped_run("rdm_rank1_128")).model.weights())


def _with(model: PopulationModel, *, means: np.ndarray, covariances: np.ndarray) -> PopulationModel:
    return PopulationModel(fractions=model.fractions, means=means, covariances=covariances, columns=model.columns,
                           noise_std=model.noise_std, alpha=model.alpha)


def _two_populations() -> PopulationModel:
    """Two populations, unequal fractions and means, one covariance singular (rank 3 of 4)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    b = rng.normal(size=(4, 3))
    return PopulationModel(
        fractions=np.array([0.3, 0.7]), means=np.array([[1.0, -0.5, 0.0, 2.0], [0.0, 0.5, -1.0, 0.0]]),
        covariances=np.stack([a @ a.T, b @ b.T]), columns=("w_in[0]", "n[0]", "m[0]", "w_out[0]"),
    )


# ------------------------------------------------------------------------------------------------ the sampler
def test_sampler_draws_the_model_distribution():
    """Per population, many reparametrised draws have the model's means and covariances (as do the NumPy
    sampler's draws), neurons in the same order, and the sampler starts at the model."""
    model = _two_populations()
    sampler = model.sampler()
    size, networks = 100, 2000
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        draws = sampler(sampler.normals(size, generator=generator, networks=networks)).numpy()
    values, labels = model.sample_loadings(size, rng=0)
    np.testing.assert_array_equal(sampler.labels(size), labels)  # same neurons in the same populations
    reference = model.sample_many(networks, size, rng=2)
    numpy_draws = np.concatenate([reference.w_in, reference.n, reference.m, reference.w_out], axis=-1)
    for p in range(2):
        for sample in (draws, numpy_draws):
            points = sample[:, labels == p].reshape(-1, 4)
            scale = np.sqrt(np.diag(model.covariances[p]))
            np.testing.assert_allclose(points.mean(axis=0), model.means[p], atol=0.02 * scale.max())
            np.testing.assert_allclose(np.cov(points, rowvar=False), model.covariances[p],
                                       atol=0.03 * scale.max() ** 2)
    start = sampler.to_model()
    np.testing.assert_allclose(start.means, model.means)
    np.testing.assert_allclose(start.covariances, model.covariances, atol=1e-6)
    factors = sampler.factors().detach().numpy()
    assert np.allclose(factors, np.tril(factors)) and np.all(np.diagonal(factors, axis1=1, axis2=2) > 0)


def test_zero_mean_sampler_keeps_means_at_zero():
    sampler = _two_populations().sampler(zero_mean=True)
    assert not sampler.means.requires_grad
    assert [name for name, p in sampler.named_parameters() if p.requires_grad] == ["lower", "log_diagonal"]
    np.testing.assert_array_equal(sampler.to_model().means, 0.0)


def test_loss_matches_a_plain_simulation_and_has_gradients(shipped_rdm):
    """The loss of a trained network's own loadings (no noise) equals the masked MSE of a plain NumPy Euler
    loop; through the sampler, the loss has finite, non-zero gradients on every parameter."""
    weights = load_run(shipped_run("rdm_rank1_128")).model.weights()
    batch = make_task("rdm").sample(12, rng=np.random.default_rng(3))
    points = loadings(weights)
    loss = loadings_loss(torch.tensor(points.values), points.columns, batch, noise_std=0.0, alpha=0.2,
                         generator=torch.Generator().manual_seed(0))
    size = weights.size
    x = np.zeros((batch.trials, size))
    outputs = []
    for t in range(batch.steps):
        r = np.tanh(x)
        x = x + 0.2 * (-x + (r @ weights.n) @ weights.m.T / size + batch.inputs[:, t] @ weights.w_in.T)
        outputs.append(np.tanh(x) @ weights.w_out / size)
    outputs = np.stack(outputs, axis=1)
    mask = batch.mask.astype(float)
    per_trial = (((outputs - batch.targets) ** 2).mean(axis=-1) * mask).sum(axis=-1) / mask.sum(axis=-1)
    assert float(loss) == pytest.approx(per_trial.mean(), rel=1e-4)

    sampler = shipped_rdm.sampler()
    generator = torch.Generator().manual_seed(0)
    loadings_loss(sampler(sampler.normals(64, generator=generator)), shipped_rdm.columns, batch, noise_std=0.05,
                  alpha=0.2, generator=generator).backward()
    for name, parameter in sampler.named_parameters():
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().max() > 0, name


# ------------------------------------------------------------------------------------------------ retraining
@pytest.mark.reference
def test_retraining_recovers_a_flipped_readout(rdm):
    """Flipping the sign of w_out (means and covariances) makes every resampled network answer the opposite
    choice; retraining the mixture parameters alone brings resampled networks back above 0.9."""
    task = make_task("rdm")
    trials = task.sample(200, rng=np.random.default_rng(4))
    sign = np.array([1.0, 1.0, 1.0, -1.0])
    flipped = _with(rdm, means=rdm.means * sign, covariances=rdm.covariances * np.outer(sign, sign))
    assert resample_model(flipped, trials, rng=5, networks=5, size=256).mean < 0.1
    retraining = retrain_population_model(flipped, task, rng=6, epochs=40, size=256, trials=32, lr=0.05)
    retrained, losses = retraining.model, retraining.losses
    assert retraining.initial is flipped and len(retraining.to_dict()["losses"]) == 40
    assert losses.shape == (40,) and losses[-5:].mean() < 0.5 * losses[:5].mean()
    after = resample_model(retrained, trials, rng=5, networks=5, size=256)
    assert after.mean >= 0.9, after.accuracy
    np.testing.assert_array_equal(retrained.fractions, flipped.fractions)


@pytest.mark.reference
def test_retraining_restores_a_shrunk_covariance(rdm):
    """Shrinking every loading by 0.4 divides the n-m overlap by 6 (no more decision attractors) and lowers the
    accuracy; retraining grows the overlap back and the accuracy with it."""
    task = make_task("rdm")
    trials = task.sample(200, rng=np.random.default_rng(7))
    shrunk = _with(rdm, means=rdm.means * 0.4, covariances=rdm.covariances * 0.16)
    before = resample_model(shrunk, trials, rng=8, networks=5, size=256).mean
    assert before < 0.9
    retrained = retrain_population_model(shrunk, task, rng=9, epochs=30, size=256, trials=32, lr=0.05).model
    assert retrained.overlaps()[0, 0] > 2 * shrunk.overlaps()[0, 0]
    assert resample_model(retrained, trials, rng=8, networks=5, size=256).mean >= max(0.9, before + 0.1)


def test_retraining_rejects_bad_input(shipped_rdm):
    with pytest.raises(RnnscopeError, match="inputs"):
        retrain_population_model(shipped_rdm, make_task("mante"), rng=0, epochs=1)
    with pytest.raises(RnnscopeError, match="epochs"):
        retrain_population_model(shipped_rdm, make_task("rdm"), rng=0, epochs=0)


# ------------------------------------------------------------------------------------------------ minimal P
@pytest.mark.reference
def test_minimal_populations_reports_accuracy_before_and_after_retraining():
    weights = load_reference(reference_path("rdm_lr_fig2.pt"))
    task = make_task("rdm")
    rng = np.random.default_rng(10)
    trials = task.sample(150, rng=rng)
    result = minimal_populations(weights, trials, rng=rng, max_populations=1, networks=3, restarts=1, method="em",
                                 retrain=True, task=task, retrain_epochs=8, retrain_size=128)
    assert result.populations == 1 and result.retrain
    assert result.accuracy.shape == result.retrained_accuracy.shape == (1, 3)
    assert result.retrain_losses.shape == (1, 8) and np.isfinite(result.retrain_losses).all()
    assert result.mean_accuracy[0] >= 0.95 and result.mean_retrained_accuracy[0] >= 0.9
    assert isinstance(result.retrained_models[0], PopulationModel)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["retrain"] and len(d["retrained_accuracy"][0]) == 3 and d["mean_retrained_accuracy"][0] >= 0.9
    assert d["retrained_models"][0]["columns"] == list(loadings(weights).columns)

    plain = minimal_populations(weights, trials, rng=0, max_populations=1, networks=2, restarts=1, method="em")
    assert not plain.retrain and np.isnan(plain.retrained_accuracy).all() and plain.retrain_losses.shape == (1, 0)
    assert plain.to_dict()["mean_retrained_accuracy"] == [None] and plain.to_dict()["retrained_models"] == [None]
    with pytest.raises(RnnscopeError, match="task"):
        minimal_populations(weights, trials, rng=0, max_populations=1, retrain=True)


def test_cli_minimal_populations_retrain(tmp_path, capsys):
    run = tmp_path / "rdm"
    shutil.copytree(shipped_run("rdm_rank1_128"), run)  # a random-dots network trained by rnnscope
    capsys.readouterr()
    assert main(["minimal-populations", str(run), "--max-populations", "1", "--networks", "2", "--trials", "100",
                 "--size", "128", "--retrain", "--retrain-epochs", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["populations"] == 1 and result["retrain"]
    assert len(result["retrained_accuracy"][0]) == 2 and len(result["retrain_losses"][0]) == 3
    assert main(["minimal-populations", str(run), "--max-populations", "1", "--networks", "2", "--trials", "100",
                 "--size", "128", "--retrain", "--retrain-epochs", "3"]) == 0
    assert "after retraining" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.reference
def test_two_retrained_populations_solve_mante_at_512():
    """mante_lr_fig1 (N = 512): resampling fails with one or two populations (finite size), and retraining the
    mixture parameters rescues two populations (>= 0.95) but not one (< 0.85), as Dubreuil, Valente et al. find."""
    weights = load_reference(reference_path("mante_lr_fig1.pt"))
    task = make_task("mante")
    trials = task.sample(300, rng=np.random.default_rng(0))
    result = minimal_populations(weights, trials, rng=1, max_populations=2, networks=6, restarts=2, retrain=True,
                                 task=task, retrain_epochs=200, stop_early=False)
    assert result.trained_accuracy >= 0.97
    assert (result.mean_accuracy < 0.85).all(), result.mean_accuracy
    assert result.mean_retrained_accuracy[0] < 0.85 and result.mean_retrained_accuracy[1] >= 0.95
    assert result.populations == 2
