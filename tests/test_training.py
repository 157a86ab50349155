"""Training reaches the task, checkpoints are exact, and a killed run resumes to the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from rnnscope import io
from rnnscope.errors import RnnscopeError
from rnnscope.models import FullRankRNN, LowRankRNN, ModelConfig
from rnnscope.tasks import make_task
from rnnscope.training import Stage, TrainingConfig, evaluate, train, train_curriculum


def test_rdm_rank1_learns(tmp_path) -> None:
    task = make_task("rdm")
    result = train(task, ModelConfig(size=128, inputs=1, rank=1), TrainingConfig(epochs=6, target_accuracy=0.99),
                   seed=0, out=tmp_path / "run", progress=False)
    assert evaluate(result.model, task, trials=1000, rng=np.random.default_rng(1)).accuracy >= 0.95
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    run = io.load_run(tmp_path / "run")
    assert isinstance(run.model, LowRankRNN)
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(run.model.state_dict()[name], tensor)
    assert len(io.read_metrics(tmp_path / "run")) == len(result.history)
    config = io.read_config(tmp_path / "run")
    assert config["seed"] == 0 and config["task"]["name"] == "rdm" and config["rnnscope_version"]


def test_same_seed_same_network(tmp_path) -> None:
    task = make_task("rdm")
    runs = [train(task, ModelConfig(size=32, inputs=1), TrainingConfig(epochs=2, train_trials=64), seed=3, progress=False)
            for _ in range(2)]
    torch.testing.assert_close(runs[0].model.m, runs[1].model.m, rtol=0, atol=0)


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path) -> None:
    task = make_task("rdm")
    model = ModelConfig(size=48, inputs=1, rank=1)
    full = train(task, model, TrainingConfig(epochs=4, train_trials=128, keep_best=False), seed=5, out=tmp_path / "a",
                 progress=False)
    train(task, model, TrainingConfig(epochs=2, train_trials=128, keep_best=False), seed=5, out=tmp_path / "b", progress=False)
    resumed = train(task, model, TrainingConfig(epochs=4, train_trials=128, keep_best=False), seed=5, out=tmp_path / "b",
                    resume=True, progress=False)
    for name, tensor in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, rtol=0, atol=0)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]
    with pytest.raises(RnnscopeError, match="already holds a run"):
        train(task, model, TrainingConfig(epochs=1), seed=5, out=tmp_path / "b", progress=False)


def test_killed_process_resumes_to_the_same_weights(tmp_path) -> None:
    """A real SIGKILL in the middle of training, then --resume: same weights as a run never interrupted."""
    args = ["--task", "rdm", "--size", "64", "--epochs", "6", "--seed", "2", "--train-trials", "256", "--quiet", "--backend", "torch"]
    cli = [sys.executable, "-m", "rnnscope.cli", "train"]
    subprocess.run(cli + args + ["--out", str(tmp_path / "whole")], check=True, capture_output=True)
    proc = subprocess.Popen(cli + args + ["--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / io.CHECKPOINT_NAME
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / io.WEIGHTS_NAME).exists(), "killed before the end"
    subprocess.run(cli + args + ["--out", str(tmp_path / "killed"), "--resume"], check=True, capture_output=True)
    a, b = io.load_run(tmp_path / "whole").model, io.load_run(tmp_path / "killed").model
    for name, tensor in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[name], tensor, rtol=0, atol=0)


def test_curriculum_full_rank_then_rank_one(tmp_path) -> None:
    rdm = make_task("rdm")
    short = make_task("rdm", {"stimulus_ms": 400.0})
    result = train_curriculum([Stage(short, 2), Stage(rdm, 3, rank=1)], ModelConfig(size=64, inputs=1, rank=None),
                              TrainingConfig(train_trials=256), seed=0, out=tmp_path / "cur", progress=False)
    assert isinstance(result.model, LowRankRNN) and result.model.rank == 1
    assert [row["stage"] for row in result.history] == [0, 0, 1, 1, 1]
    assert isinstance(io.load_run(tmp_path / "cur" / "stage0").model, FullRankRNN)
    assert io.load_run(tmp_path / "cur").model.rank == 1
    assert evaluate(result.model, rdm, trials=300, rng=np.random.default_rng(0)).accuracy > 0.9


def test_validation_of_training_config() -> None:
    with pytest.raises(RnnscopeError, match="lr"):
        TrainingConfig(lr=-1)
    with pytest.raises(RnnscopeError, match="backend"):
        TrainingConfig(backend="gpu")
    with pytest.raises(RnnscopeError, match="inputs"):
        train(make_task("mante"), ModelConfig(size=8, inputs=1), seed=0, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("task,rank,epochs", [("mante", 1, 40), ("romo", 2, 40)])
def test_harder_tasks_train(task, rank, epochs) -> None:
    the_task = make_task(task)
    result = train(the_task, ModelConfig(size=512, inputs=len(the_task.input_names), rank=rank),
                   TrainingConfig(epochs=epochs, train_trials=1600, lr=5e-3, target_accuracy=0.97), seed=0, progress=False)
    assert evaluate(result.model, the_task, trials=1000, rng=np.random.default_rng(1)).accuracy >= 0.9
