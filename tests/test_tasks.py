"""Task generators against their specification (shared/reference/README.md), and one contract for all tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from rnnscope.errors import RnnscopeError
from rnnscope.tasks import TASKS, Task, TaskBase, TrialBatch, accuracy, make_task, parse_options, timeline


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_follows_the_contract(name: str) -> None:
    task = make_task(name)
    assert isinstance(task, Task)
    batch = task.sample(64, rng=np.random.default_rng(0))
    trials, steps = batch.trials, batch.steps
    assert batch.inputs.shape == (trials, steps, len(task.input_names)) and batch.inputs.dtype == np.float32
    assert batch.targets.shape == (trials, steps, len(task.output_names))
    assert batch.mask.shape == (trials, steps)
    assert np.all(batch.mask.sum(axis=1) >= 1)
    assert np.all(batch.targets[batch.mask == 0] == 0), "targets live in the decision epoch only"
    assert all(v.shape == (trials,) for v in batch.conditions.values())
    # reproducible from the generator alone
    again = task.sample(64, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(batch.inputs, again.inputs)
    # a perfect output scores 1, its negation 0
    assert accuracy(batch.targets, batch) == 1.0
    assert accuracy(-batch.targets, batch) == 0.0
    # the mask is the decision epoch
    start, stop = batch.epochs["decision"]
    for i in range(trials):
        assert np.flatnonzero(batch.mask[i]).tolist() == list(range(start[i], stop[i]))
    assert set(task.describe()["parameters"]) >= {"dt"}


def test_rdm_matches_specification() -> None:
    task = make_task("rdm")
    batch = task.sample(4000, rng=np.random.default_rng(1), coherence=2.0)
    assert batch.steps == 51  # 5 fixation + 40 stimulus + 5 delay + 1 decision
    x = batch.inputs[..., 0]
    assert abs(x[:, 5:45].mean() - 0.2) < 0.002 and abs(x[:, :5].mean()) < 0.003 and abs(x[:, 45:].mean()) < 0.003
    assert abs(x[:, :5].std() - 0.1) < 0.002
    assert np.all(batch.mask[:, 50] == 1) and batch.mask.sum() == 4000
    assert np.all(batch.targets[:, 50, 0] == 1)
    drawn = task.sample(6000, rng=np.random.default_rng(2)).conditions["coherence"]
    values, counts = np.unique(drawn, return_counts=True)
    assert values.tolist() == [-4, -2, -1, 1, 2, 4] and counts.min() > 900


def test_romo_matches_specification() -> None:
    task = make_task("romo")
    batch = task.sample(3000, rng=np.random.default_rng(3))
    assert batch.steps == 70  # 5 + 5 + 50 (longest delay) + 5 + 5, padded at the end
    f1, f2, delay = batch.conditions["f1"], batch.conditions["f2"], batch.conditions["delay_ms"]
    assert set(np.unique(f2 - f1)) == {-24, -16, -8, 8, 16, 24}
    assert f1.min() >= 10 and f2.max() <= 34 and f1.max() <= 34 and f2.min() >= 10
    assert delay.min() == 500 and delay.max() == 1000 and np.all(delay % 20 == 0)
    i = 0
    d = int(delay[i] // 20)
    expected = np.zeros(70)
    expected[5:10] = (f1[i] - 22) / 24
    expected[10 + d : 15 + d] = (f2[i] - 22) / 24
    assert np.abs(batch.inputs[i, :, 0] - expected).max() < 0.06  # noise N(0, 0.01)
    assert np.flatnonzero(batch.mask[i]).tolist() == list(range(15 + d, 20 + d))
    np.testing.assert_allclose(batch.targets[i, 15 + d : 20 + d, 0], (f1[i] - f2[i]) / 24)
    assert abs(batch.inputs[:, :5, 0].std() - 0.01) < 0.001


def test_raposo_matches_specification() -> None:
    task = make_task("raposo")
    rng = np.random.default_rng(4)
    for modality, present in ((0, (1, 0)), (1, (0, 1)), (2, (1, 1))):
        batch = task.sample(2000, rng=rng, modality=modality, coherence=-4.0)
        assert batch.steps == 68  # 5 + 17 (350 ms floored to whole steps, as the reference code) + 40 + 5 + 1
        stim = batch.inputs[:, 22:62, :2].mean(axis=(0, 1))
        np.testing.assert_allclose(stim, -0.4 * np.array(present), atol=0.005)
        cues = batch.inputs[0, :, 2:]
        for channel in (0, 1):
            on = np.flatnonzero(cues[:, channel])
            assert on.tolist() == (list(range(5, 62)) if present[channel] else [])
        assert np.all(cues[np.nonzero(cues)] == pytest.approx(0.1))
        assert np.all(batch.targets[:, 67, 0] == -1)
        assert batch.inputs[:, :, :2].std() > 0.09  # both channels always noisy


def test_mante_matches_specification() -> None:
    task = make_task("mante", {"cue_amplitude": 0.5})
    batch = task.sample(3000, rng=np.random.default_rng(5), context=1, colour_coherence=4.0, motion_coherence=-1.0)
    np.testing.assert_allclose(batch.inputs[:, 22:62, :2].mean(axis=(0, 1)), [0.4, -0.1], atol=0.004)
    assert np.flatnonzero(batch.inputs[0, :, 3]).tolist() == list(range(5, 67))  # to the start of the decision
    assert np.all(batch.inputs[:, :, 2] == 0) and np.all(batch.inputs[0, 5:67, 3] == 0.5)
    assert np.all(batch.targets[:, 67, 0] == -1)  # sign of the cued (motion) coherence
    free = task.sample(4000, rng=np.random.default_rng(6))
    c = free.conditions
    cued = np.where(c["context"] == 0, c["colour_coherence"], c["motion_coherence"])
    np.testing.assert_array_equal(free.targets[:, -1, 0], np.sign(cued))
    assert abs(np.corrcoef(c["colour_coherence"], c["motion_coherence"])[0, 1]) < 0.05  # drawn independently


def test_dms_matches_specification() -> None:
    task = make_task("dms")
    batch = task.sample(2000, rng=np.random.default_rng(7))
    assert batch.steps == 255  # 5 + 25 + 150 + 25 + 50
    c = batch.conditions
    assert c["delay_ms"].min() == 500 and c["delay_ms"].max() == 3000
    np.testing.assert_array_equal(batch.targets[np.arange(2000), batch.epochs["decision"][0], 0],
                                  np.where(c["sample"] == c["test"], 1, -1))
    i = int(np.argmax(c["sample"] == 1))
    d = int(c["delay_ms"][i] // 20)
    assert batch.inputs[i, 5:30, 1].mean() == pytest.approx(1.0, abs=0.02)
    assert np.flatnonzero(batch.mask[i]).tolist() == list(range(30 + d + 25, 30 + d + 75))
    assert abs(batch.inputs[:, :5].std() - 0.03) < 0.002


def test_options_are_validated_and_parsed() -> None:
    assert parse_options("mante", ["cue_amplitude=0.5", "coherences=1,2"]) == {"cue_amplitude": 0.5, "coherences": (1.0, 2.0)}
    with pytest.raises(RnnscopeError, match="cue_amplitud"):
        parse_options("mante", ["cue_amplitud=0.5"])
    with pytest.raises(RnnscopeError, match="input_noise_std"):
        make_task("rdm", {"input_noise_std": -1.0})
    with pytest.raises(RnnscopeError, match="delay_min_ms"):
        make_task("romo", {"delay_min_ms": 2000.0})
    with pytest.raises(RnnscopeError, match="unknown task"):
        make_task("nope")
    with pytest.raises(RnnscopeError, match="colour"):
        make_task("rdm").sample(3, rng=np.random.default_rng(0), colour=1)


@dataclass(frozen=True)
class Flip(TaskBase):
    """A user's task defined outside the package: report the sign of a brief pulse."""

    name: ClassVar[str] = "flip"
    input_names: ClassVar[tuple[str, ...]] = ("pulse",)
    dt: float = 20.0
    pulse_ms: float = 100.0
    wait_ms: float = 200.0

    def sample(self, trials: int, *, rng: np.random.Generator, **conditions: Any) -> TrialBatch:
        sign = self.draw("sign", conditions.get("sign"), np.array([-1.0, 1.0]), trials, rng)
        epochs, steps = timeline({"pulse": self.steps(self.pulse_ms), "wait": self.steps(self.wait_ms), "decision": 1}, trials)
        inputs = np.zeros((trials, steps, 1))
        inputs[:, : self.steps(self.pulse_ms), 0] = sign[:, None]
        mask = np.zeros((trials, steps))
        mask[:, -1] = 1
        return TrialBatch(inputs, (mask * sign[:, None])[..., None], mask, {"sign": sign}, epochs, self.dt)


def test_a_user_task_needs_no_package_change() -> None:
    from rnnscope.models import ModelConfig
    from rnnscope.training import TrainingConfig, evaluate, train

    task = make_task(Flip)  # a class passed in Python
    assert isinstance(task, Flip) and task.steps(task.wait_ms) == 10
    result = train(task, ModelConfig(size=32, inputs=1, rank=1), TrainingConfig(epochs=3, train_trials=128, validation_trials=64),
                   seed=0, progress=False)
    assert evaluate(result.model, task, trials=200, rng=np.random.default_rng(0)).accuracy > 0.9
