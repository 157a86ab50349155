"""Property tests (hypothesis): the NumPy, PyTorch and fused-kernel losses agree (trials with an all-zero mask
included), epochs tile the trial, options round-trip."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnscope.models import ModelConfig, build_model, fast_loss, fast_outputs, stack_parameters
from rnnscope.tasks import TASKS, TrialBatch, epoch_mask, make_task, masked_mse, timeline
from rnnscope.training import masked_mse_loss


@settings(max_examples=40, deadline=None)
@given(trials=st.integers(1, 6), steps=st.integers(1, 12), outputs=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_numpy_and_torch_losses_agree(trials, steps, outputs, seed) -> None:
    rng = np.random.default_rng(seed)
    mask = (rng.random((trials, steps)) < 0.5).astype(float)
    scored = rng.random(trials) < 0.7  # some trials score no step at all
    mask[np.arange(trials)[scored], rng.integers(0, steps, trials)[scored]] = 1.0
    mask[~scored] = 0.0
    targets = rng.normal(size=(trials, steps, outputs))
    outputs_ = rng.normal(size=(trials, steps, outputs))
    batch = TrialBatch(np.zeros((trials, steps, 1)), targets, mask, {})
    expected = np.mean([
        np.mean([np.mean((outputs_[i, t] - targets[i, t]) ** 2) for t in range(steps) if mask[i, t]]) if mask[i].any()
        else 0.0 for i in range(trials)
    ])  # the definition, literally: an empty trial contributes 0 and still counts in the mean
    torch_loss = masked_mse_loss(torch.from_numpy(outputs_), torch.from_numpy(batch.targets.astype(float)),
                                 torch.from_numpy(mask))
    assert np.isclose(masked_mse(outputs_, batch), expected, rtol=1e-5)
    assert np.isclose(float(torch_loss), expected, rtol=1e-5)
    # the fused kernel's loss of a network on the same trials equals the NumPy loss of its outputs
    model = build_model(ModelConfig(size=8, inputs=1, outputs=outputs), generator=torch.Generator().manual_seed(seed))
    inputs = rng.normal(size=(trials, steps, 1)).astype(np.float32)
    z = fast_outputs(stack_parameters([model]), inputs, seeds=[seed], noise_std=model.config.noise_std)[0]
    fused = fast_loss(model, torch.from_numpy(inputs), torch.from_numpy(targets.astype(np.float32)),
                      torch.from_numpy(mask.astype(np.float32)), seed=seed)
    assert np.isclose(float(fused.detach()), masked_mse(z, batch), rtol=1e-4, atol=1e-7)


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
