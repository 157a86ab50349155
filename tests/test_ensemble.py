"""An ensemble trained at once equals its networks trained one by one, and writes normal run directories."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rnnscope import io
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models import ModelConfig, build_model
from rnnscope.tasks import make_task
from rnnscope.training import TrainingConfig, evaluate, train, train_ensemble


@pytest.mark.parametrize("rank", [1, None])
def test_ensemble_equals_separate_runs(rank, tmp_path) -> None:
    task = make_task("rdm")
    model = ModelConfig(size=48, inputs=1, rank=rank)
    config = TrainingConfig(epochs=3, train_trials=96, validation_trials=64, backend="fast", lr=5e-3)
    ensemble = train_ensemble(task, model, config, seeds=[11, 12, 13], out=tmp_path / "ens", progress=False)
    for k, seed in enumerate((11, 12, 13)):
        alone = train(task, model, config, seed=seed, progress=False)
        assert [r["loss"] for r in alone.history] == pytest.approx([r["loss"] for r in ensemble.results[k].history], rel=1e-6)
        assert alone.best_epoch == ensemble.results[k].best_epoch
        for name, tensor in alone.model.state_dict().items():
            torch.testing.assert_close(ensemble.models[k].state_dict()[name], tensor, rtol=1e-5, atol=1e-6)
        stored = io.load_run(tmp_path / "ens" / f"net{k:02d}")
        assert stored.config["seed"] == seed
        torch.testing.assert_close(stored.model.state_dict()["w_out"], ensemble.models[k].state_dict()["w_out"])


def test_ensemble_learns_and_validates_input() -> None:
    task = make_task("rdm")
    result = train_ensemble(task, ModelConfig(size=128, inputs=1), TrainingConfig(epochs=6, target_accuracy=0.99),
                            seeds=range(4), progress=False)
    accuracies = [evaluate(m, task, trials=400, rng=np.random.default_rng(0)).accuracy for m in result.models]
    assert min(accuracies) >= 0.95
    with pytest.raises(RnnscopeError, match="seeds"):
        train_ensemble(task, ModelConfig(size=8, inputs=1), seeds=[1, 1], progress=False)
    with pytest.raises(RnnscopeError, match="backend"):
        train_ensemble(task, ModelConfig(size=8, inputs=1), TrainingConfig(backend="torch"), seeds=[1], progress=False)


def _first_converged(rows: list[dict], target: float) -> int | None:
    """Recomputed from the recorded validation numbers: the first epoch after which the network with the lowest
    validation loss so far has validation accuracy >= target."""
    best = None
    for epoch, row in enumerate(rows):
        if best is None or row["validation_loss"] < rows[best]["validation_loss"]:
            best = epoch
        if rows[best]["validation_accuracy"] >= target:
            return epoch
    return None


def test_members_record_their_own_epoch_of_convergence(tmp_path) -> None:
    task = make_task("rdm")
    model = ModelConfig(size=32, inputs=1, rank=1)
    config = TrainingConfig(epochs=6, train_trials=128, validation_trials=64, lr=2e-2, target_accuracy=0.9)
    result = train_ensemble(task, model, config, rng=[0, 1], out=tmp_path / "ens", progress=False)
    epochs = result.to_dict()["converged_epoch"]
    assert epochs[0] is not None and epochs[1] is not None and epochs[0] < epochs[1]  # seed 0 converges earlier
    for k, seed in enumerate((0, 1)):
        run = tmp_path / "ens" / f"net{k:02d}"
        rows = io.read_metrics(run)
        assert len(rows) == epochs[1] + 1  # the ensemble trained on until its last member converged
        assert epochs[k] == _first_converged(rows, 0.9) == io.read_config(run)["result"]["converged_epoch"]
        alone = train(task, model, config, rng=seed, progress=False)  # stops after the same epoch
        assert alone.stopped_early and len(alone.history) == epochs[k] + 1
        assert alone.converged_epoch == alone.to_dict()["converged_epoch"] == epochs[k]
    with pytest.warns(ConvergenceWarning):
        never = train(task, model, dataclasses.replace(config, epochs=1, target_accuracy=1.0), rng=0, progress=False)
    assert never.converged_epoch is None and train(task, model, dataclasses.replace(config, epochs=1,
                                                   target_accuracy=None), rng=0, progress=False).converged_epoch is None


def test_ensemble_trains_input_and_output_scales_as_train(tmp_path) -> None:
    """The paper's rdm recipe: w_in and w_out fixed, their scales trained. Each member equals train() alone."""
    task = make_task("rdm")
    model = ModelConfig(size=24, inputs=1, rank=1, train_inputs=False, train_outputs=False, train_input_scale=True,
                        train_output_scale=True)
    config = TrainingConfig(epochs=3, train_trials=64, validation_trials=32, lr=5e-3)
    ensemble = train_ensemble(task, model, config, rng=[3, 4], out=tmp_path / "ens", progress=False)
    for k, seed in enumerate((3, 4)):
        alone = train(task, model, config, rng=seed, progress=False)
        assert [r["loss"] for r in alone.history] == pytest.approx([r["loss"] for r in ensemble.results[k].history],
                                                                   rel=1e-6)
        for name, tensor in alone.model.state_dict().items():
            torch.testing.assert_close(ensemble.models[k].state_dict()[name], tensor, rtol=1e-5, atol=1e-6)
        trained = io.load_run(tmp_path / "ens" / f"net{k:02d}").model
        initial = build_model(model, generator=torch.Generator().manual_seed(seed))
        assert not torch.equal(trained.s_in, initial.s_in) and not torch.equal(trained.s_out, initial.s_out)
        assert torch.equal(trained.w_in, initial.w_in) and torch.equal(trained.w_out, initial.w_out)  # fixed
