"""The PyTorch dynamics against an independent plain-NumPy simulation of the same equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnscope.errors import RnnscopeError
from rnnscope.models import (
    FullRankRNN,
    FullRankWeights,
    LowRankRNN,
    LowRankWeights,
    ModelConfig,
    build_model,
    model_from_weights,
    truncate,
)


def numpy_simulation(J, w_in, w_out, h0, inputs, noise, noise_std, alpha, readout_scale):
    """Literal loop: x <- x + noise_std xi + alpha (-x + J tanh x + W_in u); z = tanh(x) w_out * scale."""
    trials, steps, _ = inputs.shape
    states = np.zeros((trials, steps, J.shape[0]))
    outputs = np.zeros((trials, steps, w_out.shape[1]))
    for i in range(trials):
        x = h0.copy()
        for t in range(steps):
            x = x + noise_std * noise[i, t] + alpha * (-x + J @ np.tanh(x) + w_in @ inputs[i, t])
            states[i, t] = x
            outputs[i, t] = np.tanh(x) @ w_out * readout_scale
    return states, outputs


@pytest.mark.parametrize("rank", [1, 3, None])
def test_dynamics_match_plain_numpy(rank, rng) -> None:
    size, inputs_dim = 40, 3
    config = ModelConfig(size=size, inputs=inputs_dim, outputs=2, rank=rank, noise_std=0.1, train_h0=True)
    model = build_model(config, generator=torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        model.h0.copy_(torch.from_numpy(rng.normal(size=size)))
        if rank is not None:
            model.m.mul_(2.0)  # strong recurrence so that the nonlinearity matters
    w = model.weights()
    inputs = rng.normal(size=(4, 17, inputs_dim))
    noise = rng.normal(size=(4, 17, size))
    states, outputs = numpy_simulation(w.connectivity(), w.w_in, w.w_out, w.h0, inputs, noise, 0.1, 0.2,
                                       1 / size if rank else 1.0)
    got_states = model.trajectories(torch.from_numpy(inputs), noise=torch.from_numpy(noise)).detach().numpy()
    got_outputs = model(torch.from_numpy(inputs), noise=torch.from_numpy(noise)).detach().numpy()
    np.testing.assert_allclose(got_states, states, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_outputs, outputs, rtol=1e-10, atol=1e-10)
    assert np.abs(states).max() > 0.5


def test_low_rank_never_builds_the_full_matrix(rng) -> None:
    model = build_model(ModelConfig(size=2000, inputs=1, rank=2), generator=torch.Generator().manual_seed(1))
    seen = []

    def hook(_, args, __):
        seen.extend(a.shape for a in args if isinstance(a, torch.Tensor))

    handle = model.register_forward_hook(hook)
    model(torch.zeros(2, 3, 1), noise=None)
    handle.remove()
    assert tuple(model.connectivity().shape) == (2000, 2000)  # on demand only
    assert all(p.numel() < 2000 * 2000 for p in model.parameters())


def test_truncation_recovers_a_low_rank_network_exactly(rng) -> None:
    size, rank = 60, 2
    m, n = rng.normal(size=(size, rank)), rng.normal(size=(size, rank))
    full = FullRankWeights(J=m @ n.T / size, w_in=rng.normal(size=(size, 1)), w_out=rng.normal(size=(size, 1)),
                           h0=np.zeros(size))
    low = truncate(full, rank)
    np.testing.assert_allclose(low.connectivity(), full.J, atol=1e-12)
    inputs = torch.from_numpy(rng.normal(size=(3, 10, 1)))
    a = model_from_weights(full).double()(inputs, noise=None)
    b = LowRankRNN.from_full_rank(model_from_weights(full).double(), rank).double()(inputs, noise=None)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-5)
    singular = np.linalg.svd(truncate(full, 5).connectivity(), compute_uv=False)
    assert singular[2] < 1e-10  # "what rank does this network need": the third singular value vanishes


def test_weights_round_trip_and_validation(rng) -> None:
    w = LowRankWeights(m=rng.normal(size=(10, 2)), n=rng.normal(size=(10, 2)), w_in=rng.normal(size=(10, 3)),
                       w_out=rng.normal(size=(10, 1)), h0=np.zeros(10))
    back = model_from_weights(w).weights()
    np.testing.assert_allclose(back.m, w.m, rtol=1e-6)
    np.testing.assert_allclose(w.recurrent(np.ones(10)), w.connectivity() @ np.ones(10))
    assert isinstance(model_from_weights(w), LowRankRNN)
    with pytest.raises(RnnscopeError, match="n: expected the shape of m"):
        LowRankWeights(m=np.zeros((10, 2)), n=np.zeros((10, 1)), w_in=np.zeros((10, 1)), w_out=np.zeros((10, 1)), h0=np.zeros(10))
    with pytest.raises(RnnscopeError, match="w_in"):
        LowRankWeights(m=np.zeros((10, 2)), n=np.zeros((10, 2)), w_in=np.zeros((9, 1)), w_out=np.zeros((10, 1)), h0=np.zeros(10))
    with pytest.raises(RnnscopeError, match="rank"):
        ModelConfig(size=4, inputs=1, rank=5)
    with pytest.raises(RnnscopeError, match="inputs"):
        build_model(ModelConfig(size=4, inputs=2), generator=torch.Generator())(torch.zeros(1, 2, 3), noise=None)
    assert isinstance(build_model(ModelConfig(size=4, inputs=1, rank=None), generator=torch.Generator()), FullRankRNN)
