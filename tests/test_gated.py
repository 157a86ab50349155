"""Gated and vanilla cells: PyTorch's own equations to 1e-6, the UGRNN written out, the Cell contract, stacks,
config validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnscope.errors import RnnscopeError
from rnnscope.models import CELLS, Cell, GatedConfig, GatedRNN, run

TORCH_CELLS = [("gru", "tanh", torch.nn.GRU, {}), ("lstm", "tanh", torch.nn.LSTM, {}),
               ("vanilla", "tanh", torch.nn.RNN, {"nonlinearity": "tanh"}),
               ("vanilla", "relu", torch.nn.RNN, {"nonlinearity": "relu"})]


def _random_network(cell: str, activation: str, seed: int, size: int = 7, inputs: int = 3, outputs: int = 2):
    config = GatedConfig(cell=cell, size=size, inputs=inputs, outputs=outputs, activation=activation)
    model = GatedRNN(config, generator=torch.Generator().manual_seed(seed)).double()
    with torch.no_grad():  # larger than the default init, so the nonlinearities are exercised
        for p in model.parameters():
            p.mul_(3.0)
    return model


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cell, activation, module, kwargs", TORCH_CELLS)
def test_cells_equal_torch_nn(cell, activation, module, kwargs, seed) -> None:
    model = _random_network(cell, activation, seed)
    reference = module(3, 7, batch_first=True, **kwargs).double()
    with torch.no_grad():
        for name, p in reference.named_parameters():
            p.copy_(getattr(model, name))
    inputs = torch.randn(5, 30, 3, generator=torch.Generator().manual_seed(seed + 10), dtype=torch.float64)
    expected, _ = reference(inputs)
    loop = run(model, inputs, noise=None, emit=lambda s: s)[..., :7]  # the generic loop
    assert torch.allclose(loop, expected, atol=1e-6, rtol=0)
    assert model.uses_fused(inputs, None)
    fused = model.trajectories(inputs)[..., :7]
    assert torch.allclose(fused, expected, atol=1e-6, rtol=0)
    readout = expected @ model.w_out + model.b_out
    assert torch.allclose(model(inputs), readout, atol=1e-6, rtol=0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_ugrnn_matches_its_equations(activation) -> None:
    size = 6
    model = _random_network("ugrnn", activation, 3, size=size)
    act = np.tanh if activation == "tanh" else (lambda x: np.maximum(x, 0.0))
    sigma = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    a = model.arrays()
    W_gx, W_cx = a["weight_ih_l0"][:size], a["weight_ih_l0"][size:]
    W_gh, W_ch = a["weight_hh_l0"][:size], a["weight_hh_l0"][size:]
    b_g = a["bias_ih_l0"][:size] + a["bias_hh_l0"][:size]
    b_c = a["bias_ih_l0"][size:] + a["bias_hh_l0"][size:]
    inputs = np.random.default_rng(0).normal(size=(4, 20, 3))
    h = np.zeros((4, size))
    expected = []
    for t in range(20):  # Collins, Sohl-Dickstein & Sussillo 2017, the UGRNN
        x = inputs[:, t]
        c = act(h @ W_ch.T + x @ W_cx.T + b_c)
        g = sigma(h @ W_gh.T + x @ W_gx.T + b_g)
        h = g * h + (1 - g) * c
        expected.append(h)
    got = model.trajectories(torch.from_numpy(inputs)).detach().numpy()
    assert not model.uses_fused(torch.from_numpy(inputs), None)
    np.testing.assert_allclose(got, np.stack(expected, axis=1), atol=1e-10)


@pytest.mark.parametrize("cell", CELLS)
def test_cell_contract(cell) -> None:
    config = GatedConfig(cell=cell, size=5, inputs=2, outputs=3, l2=1e-3)
    model = GatedRNN(config, generator=torch.Generator().manual_seed(0))
    assert isinstance(model, Cell)
    arrays = model.arrays()
    assert {k: v.shape for k, v in arrays.items()} == config.parameter_shapes
    assert np.all(arrays["h0"] == 0) and not model.h0.requires_grad
    inputs = torch.randn(4, 9, 2, generator=torch.Generator().manual_seed(1))
    states = model.trajectories(inputs)
    assert states.shape == (4, 9, config.state_size)
    # F(h, u) of one step is the step of the loop
    assert torch.allclose(model.transition(states[:, 3], inputs[:, 4]), states[:, 4], atol=1e-6)
    penalty = model.l2_penalty()
    expected = 1e-3 * sum(float((arrays[n] ** 2).sum()) for n in ("weight_ih_l0", "weight_hh_l0", "w_out"))
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-5)
    # deterministic initialisation from the generator
    again = GatedRNN(config, generator=torch.Generator().manual_seed(0)).arrays()
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)


@pytest.mark.parametrize("cell", CELLS)
def test_stack_equals_its_networks(cell) -> None:
    config = GatedConfig(cell=cell, size=5, inputs=2, outputs=1, activation="relu", l2=1e-2)
    singles = [GatedRNN(config, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    stack = GatedRNN.stack(singles)
    inputs = torch.randn(4, 8, 2, generator=torch.Generator().manual_seed(1))
    outputs = stack(inputs)
    assert outputs.shape == (3, 4, 8, 1)
    for k, single in enumerate(singles):
        assert torch.allclose(outputs[k], single(inputs), atol=1e-6)
        assert float(stack.l2_penalty()[k].detach()) == pytest.approx(float(single.l2_penalty().detach()), rel=1e-5)
        assert np.array_equal(stack.unstack(k).arrays()["weight_hh_l0"], single.arrays()["weight_hh_l0"])


def test_noise_is_added_to_h() -> None:
    config = GatedConfig(cell="gru", size=4, inputs=1, noise_std=0.5)
    model = GatedRNN(config, generator=torch.Generator().manual_seed(0))
    inputs = torch.zeros(2, 3, 1)
    noise = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(2))
    clean, noisy = model.trajectories(inputs), model.trajectories(inputs, noise=noise)
    assert not model.uses_fused(inputs, None)
    first = model.transition(torch.zeros(2, 4), inputs[:, 0]) + 0.5 * noise[:, 0]
    assert torch.allclose(noisy[:, 0], first, atol=1e-6) and not torch.allclose(clean, noisy)
    with pytest.raises(RnnscopeError, match="noise"):
        model.trajectories(inputs, noise=torch.zeros(2, 3, 5))


@pytest.mark.parametrize("field, value", [("cell", "transformer"), ("activation", "gelu"), ("size", 0),
                                          ("inputs", -1), ("outputs", 1.5), ("l2", -1e-3), ("l2", float("nan")),
                                          ("train_h0", "yes"), ("noise_std", -0.1)])
def test_config_errors_name_the_field(field, value) -> None:
    kwargs = dict(cell="gru", size=4, inputs=2)
    kwargs[field] = value
    with pytest.raises(RnnscopeError, match=f"^{field}:"):
        GatedConfig(**kwargs)


def test_inputs_shape_is_checked() -> None:
    model = GatedRNN(GatedConfig(cell="lstm", size=3, inputs=2), generator=torch.Generator().manual_seed(0))
    with pytest.raises(RnnscopeError, match=r"inputs: expected shape \(trials, time, 2\)"):
        model(torch.zeros(4, 5, 3))


def test_training_step_reduces_the_loss_through_the_fused_module() -> None:
    config = GatedConfig(cell="gru", size=8, inputs=1, l2=1e-4)
    model = GatedRNN(config, generator=torch.Generator().manual_seed(0))
    inputs = torch.randn(8, 10, 1, generator=torch.Generator().manual_seed(1))
    targets = inputs.cumsum(dim=1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        loss = ((model(inputs) - targets) ** 2).mean() + model.l2_penalty()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]
