"""Property tests (hypothesis): the NumPy and PyTorch losses agree, epochs tile the trial, options round-trip."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnscope.tasks import TASKS, TrialBatch, epoch_mask, make_task, masked_mse, timeline
from rnnscope.training import masked_mse_loss


@settings(max_examples=40, deadline=None)
@given(trials=st.integers(1, 6), steps=st.integers(1, 12), outputs=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_numpy_and_torch_losses_agree(trials, steps, outputs, seed) -> None:
    rng = np.random.default_rng(seed)
    mask = (rng.random((trials, steps)) < 0.5).astype(float)
    mask[np.arange(trials), rng.integers(0, steps, trials)] = 1.0  # every trial scores at least one step
    targets = rng.normal(size=(trials, steps, outputs))
    outputs_ = rng.normal(size=(trials, steps, outputs))
    batch = TrialBatch(np.zeros((trials, steps, 1)), targets, mask, {})
    expected = np.mean([
        np.mean([np.mean((outputs_[i, t] - targets[i, t]) ** 2) for t in range(steps) if mask[i, t]]) for i in range(trials)
    ])  # the definition, literally
    torch_loss = masked_mse_loss(torch.from_numpy(outputs_), torch.from_numpy(batch.targets.astype(float)),
                                 torch.from_numpy(mask))
    assert np.isclose(masked_mse(outputs_, batch), expected, rtol=1e-5)
    assert np.isclose(float(torch_loss), expected, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(durations=st.lists(st.lists(st.integers(0, 5), min_size=3, max_size=3), min_size=1, max_size=4))
def test_epochs_tile_each_trial(durations) -> None:
    per_epoch = np.array(durations).T  # (epochs, trials)
    epochs, total = timeline({f"e{k}": per_epoch[k] for k in range(len(per_epoch))}, per_epoch.shape[1])
    covered = sum(epoch_mask(start, stop, total).astype(int) for start, stop in epochs.values())
    lengths = per_epoch.sum(axis=0)
    for i, length in enumerate(lengths):
        assert covered[i, :length].tolist() == [1] * length and covered[i, length:].sum() == 0


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(TASKS)), seed=st.integers(0, 2**16))
def test_options_round_trip_through_json_types(name, seed) -> None:
    task = make_task(name)
    again = make_task(name, task.options())  # lists (as JSON gives them) back to tuples
    a = task.sample(3, rng=np.random.default_rng(seed))
    b = again.sample(3, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(a.inputs, b.inputs)
