"""The tasks of Maheswaranathan et al. 2019 (flip-flop, sine, context-dependent integration) against their
definitions, written out again here as plain loops."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnscope.errors import RnnscopeError
from rnnscope.tasks import ContextIntegration, FlipFlop, SineWave, list_tasks, make_task, parse_options

NAMES = ("flipflop", "sine", "context_integration")


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_whole_trial_mask(name: str) -> None:
    task = make_task(name)
    batch = task.sample(7, rng=np.random.default_rng(0))
    steps = {"flipflop": 100, "sine": 200, "context_integration": 25}[name]  # trial_ms / dt at the defaults
    assert batch.inputs.shape == (7, steps, len(task.input_names)) and batch.inputs.dtype == np.float32
    assert batch.targets.shape == (7, steps, len(task.output_names))
    assert np.all(batch.mask == 1)
    start, stop = batch.epochs["decision"]
    assert np.all(start == 0) and np.all(stop == steps)
    assert all(np.shape(v) == (7,) for v in batch.conditions.values())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 17])
def test_deterministic_per_seed(name: str, seed: int) -> None:
    task = make_task(name)
    a = task.sample(20, rng=seed)
    b = task.sample(20, rng=np.random.default_rng(seed))
    c = task.sample(20, rng=seed + 1000)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    for key in a.conditions:
        np.testing.assert_array_equal(a.conditions[key], b.conditions[key])
    assert not np.array_equal(a.inputs, c.inputs) or not np.array_equal(a.targets, c.targets)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("probability", [0.05, 0.2])
def test_flipflop_pulse_statistics(seed: int, probability: float) -> None:
    task = FlipFlop(pulse_probability=probability)
    batch = task.sample(400, rng=seed)
    pulses = batch.inputs != 0  # (trials, time, 3)
    n = pulses.size
    sigma = np.sqrt(probability * (1 - probability) / n)
    assert abs(pulses.mean() - probability) < 4 * sigma
    for channel in range(3):  # each channel at the rate, within binomial error
        per = pulses[..., channel]
        assert abs(per.mean() - probability) < 4 * np.sqrt(probability * (1 - probability) / per.size)
    values = batch.inputs[pulses]
    assert set(np.unique(values)) == {-1.0, 1.0}
    k = pulses.sum()
    assert abs((values > 0).mean() - 0.5) < 4 * np.sqrt(0.25 / k)  # signs balanced
    # channels independent: the chance of two pulses on one step is the product of the rates
    both = (pulses[..., 0] & pulses[..., 1]).mean()
    assert abs(both - probability**2) < 4 * np.sqrt(probability**2 * (1 - probability**2) / pulses[..., 0].size)
    np.testing.assert_array_equal(batch.conditions["pulses"], pulses.sum(axis=(1, 2)))


@pytest.mark.parametrize("seed", [0, 5, 9])
def test_flipflop_targets_hold_the_last_pulse(seed: int) -> None:
    task = FlipFlop(pulse_amplitude=0.5)
    batch = task.sample(30, rng=seed)
    for i in range(batch.trials):
        for k in range(3):
            state = 0.0
            for t in range(batch.steps):
                if batch.inputs[i, t, k] != 0:
                    state = float(np.sign(batch.inputs[i, t, k]))
                assert batch.targets[i, t, k] == state
            assert batch.conditions[f"final_bit_{k + 1}"][i] == state
    assert set(np.unique(np.abs(batch.inputs))) == {0.0, 0.5}


@pytest.mark.parametrize("seed", [0, 3])
def test_sine_targets_follow_the_definition(seed: int) -> None:
    task = SineWave()
    batch = task.sample(40, rng=seed)
    c = batch.conditions
    for i in range(batch.trials):
        j = int(c["frequency_index"][i])
        assert 1 <= j <= 51
        omega = 0.1 + 0.5 * (j - 1) / 50  # 51 evenly spaced frequencies, 0.1 .. 0.6 radians per step
        level = j / 51 + 0.25
        assert c["omega"][i] == pytest.approx(omega) and c["level"][i] == pytest.approx(level)
        for t in range(batch.steps):
            assert batch.inputs[i, t, 0] == pytest.approx(level, abs=1e-6)
            assert batch.targets[i, t, 0] == pytest.approx(np.sin(omega * t), abs=1e-6)
    drawn = task.sample(5100, rng=seed).conditions["frequency_index"]
    values, counts = np.unique(drawn, return_counts=True)
    assert values.tolist() == list(range(1, 52)) and counts.min() > 50  # all 51 frequencies, about 100 each


@pytest.mark.parametrize("seed", [0, 4])
def test_context_integration_targets_follow_the_definition(seed: int) -> None:
    task = ContextIntegration()
    batch = task.sample(40, rng=seed)
    c = batch.conditions
    for i in range(batch.trials):
        ctx = int(c["context"][i])
        np.testing.assert_array_equal(batch.inputs[i, :, 2:], np.tile(np.eye(2)[ctx], (batch.steps, 1)))
        total = 0.0
        for t in range(batch.steps):
            total += float(batch.inputs[i, t, ctx])
            assert batch.targets[i, t, 0] == pytest.approx(total, abs=1e-5)
    big = task.sample(4000, rng=seed + 1)
    noise = big.inputs[..., :2] - np.stack([big.conditions["mean_a"], big.conditions["mean_b"]], axis=1)[:, None, :]
    assert abs(noise.std() - 0.125) < 0.002 and abs(noise.mean()) < 0.002
    assert abs(big.conditions["mean_a"].std() - 0.02) < 0.001 and abs(big.conditions["mean_a"].mean()) < 0.001
    assert abs(np.corrcoef(big.conditions["mean_a"], big.conditions["mean_b"])[0, 1]) < 0.05
    assert abs(big.conditions["context"].mean() - 0.5) < 0.03


def test_pinned_conditions() -> None:
    sine = SineWave()
    batch = sine.sample(6, rng=0, frequency_index=7)
    assert np.all(batch.conditions["omega"] == pytest.approx(0.1 + 0.5 * 6 / 50))
    pinned = np.array([1, 2, 3, 49, 50, 51])
    np.testing.assert_array_equal(sine.sample(6, rng=0, frequency_index=pinned).conditions["frequency_index"], pinned)
    for bad in (0, 52, 2.5):
        with pytest.raises(RnnscopeError, match="frequency_index"):
            sine.sample(3, rng=0, frequency_index=bad)
    cdi = ContextIntegration(input_noise_std=0.0)
    batch = cdi.sample(5, rng=1, context=1, mean_a=0.3, mean_b=np.array([-0.1, 0.0, 0.1, 0.2, 0.3]))
    assert np.all(batch.conditions["context"] == 1)
    np.testing.assert_allclose(batch.inputs[:, :, 0], 0.3)
    np.testing.assert_allclose(batch.targets[:, -1, 0], 25 * np.array([-0.1, 0.0, 0.1, 0.2, 0.3]), atol=1e-5)
    with pytest.raises(RnnscopeError, match="context"):
        cdi.sample(3, rng=0, context=2)
    with pytest.raises(RnnscopeError, match="mean_b"):
        cdi.sample(3, rng=0, mean_b=np.zeros(4))
    with pytest.raises(RnnscopeError, match="frequency"):  # the flip-flop has no pinnable condition
        FlipFlop().sample(3, rng=0, frequency=2)


@pytest.mark.parametrize(
    ("name", "options", "field"),
    [
        ("flipflop", {"pulse_probability": 0.0}, "pulse_probability"),
        ("flipflop", {"pulse_probability": 1.5}, "pulse_probability"),
        ("flipflop", {"pulse_amplitude": 0.0}, "pulse_amplitude"),
        ("flipflop", {"trial_ms": 10.0}, "trial_ms"),
        ("flipflop", {"trial_ms": -1.0}, "trial_ms"),
        ("sine", {"frequencies": 0}, "frequencies"),
        ("sine", {"omega_min": 0.0}, "omega_min"),
        ("sine", {"omega_max": 0.05}, "omega_max"),
        ("sine", {"omega_max": 4.0}, "omega_max"),
        ("sine", {"amplitude": -1.0}, "amplitude"),
        ("sine", {"dt": 0.0}, "dt"),
        ("context_integration", {"input_noise_std": -0.1}, "input_noise_std"),
        ("context_integration", {"mean_std": -0.1}, "mean_std"),
        ("context_integration", {"context_amplitude": 0.0}, "context_amplitude"),
        ("context_integration", {"input_noise_std": 0.0, "mean_std": 0.0}, "input_noise_std"),
    ],
)
def test_validation_errors_name_the_field(name: str, options: dict, field: str) -> None:
    with pytest.raises(RnnscopeError, match=field):
        make_task(name, options)


def test_scores_and_criteria() -> None:
    rng = np.random.default_rng(0)
    flip = FlipFlop()
    batch = flip.sample(50, rng=rng)
    assert flip.score(batch.targets, batch) == 1.0 and flip.meets_criterion(batch.targets, batch)
    assert flip.score(0.3 * batch.targets, batch) == 1.0  # signs are what count
    assert flip.score(-batch.targets, batch) < 0.1
    # flip one output's sign on 2 % of steps: 98 % of steps are right, below the 99 % criterion
    wrong = batch.targets.copy()
    index = rng.choice(wrong.shape[0] * wrong.shape[1], size=int(0.02 * wrong.shape[0] * wrong.shape[1]), replace=False)
    trial, step = np.unravel_index(index, wrong.shape[:2])
    wrong[trial, step, 0] = np.where(wrong[trial, step, 0] == 0, 1.0, -wrong[trial, step, 0])
    assert flip.score(wrong, batch) == pytest.approx(0.98) and not flip.meets_criterion(wrong, batch)
    for task in (SineWave(), ContextIntegration()):
        batch = task.sample(30, rng=1)
        assert task.score(batch.targets, batch) == pytest.approx(1.0)
        mean_only = np.full(batch.targets.shape, batch.targets.mean())
        assert task.score(mean_only, batch) == pytest.approx(0.0, abs=1e-6)  # R^2 of the mean is 0
        assert not task.meets_criterion(mean_only, batch)
        with pytest.raises(RnnscopeError, match="outputs"):
            task.score(batch.targets[:, :-1], batch)


def test_options_parse_and_describe() -> None:
    assert parse_options("sine", ["frequencies=11", "omega_max=0.5"]) == {"frequencies": 11, "omega_max": 0.5}
    task = make_task("sine", {"frequencies": 11})
    assert task.sample(200, rng=0).conditions["frequency_index"].max() == 11
    listing = {t["name"]: t for t in list_tasks()}
    for name in NAMES:
        entry = listing[name]
        assert entry["criterion"] > 0.9 and entry["score"] and "Maheswaranathan" in entry["reference"]
        assert entry["parameters"]["dt"] == 20.0
        json.dumps(entry)
    assert listing["sine"]["parameters"]["frequencies"] == 51


def test_cli_lists_the_tasks(capsys) -> None:
    from rnnscope.cli import main

    assert main(["tasks", "--json"]) == 0
    names = {t["name"] for t in json.loads(capsys.readouterr().out)}
    assert set(NAMES) <= names
