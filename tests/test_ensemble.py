"""An ensemble trained at once equals its networks trained one by one, and writes normal run directories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnscope import io
from rnnscope.errors import RnnscopeError
from rnnscope.models import ModelConfig
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
