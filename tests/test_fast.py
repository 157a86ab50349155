"""The fused numba kernels against the plain PyTorch path on the same noise, and the noise generator's statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from rnnscope.errors import RnnscopeError
from rnnscope.models import ModelConfig, _fast, _pool, build_model
from rnnscope.models._fast import (
    fast_loss,
    fast_loss_and_grad,
    fast_loss_and_grads_ensemble,
    fast_loss_ensemble,
    fast_noise,
    fast_outputs,
    fast_path_supported,
    fast_trajectories,
    stack_parameters,
)


def plain_masked_mse(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The reference loss, written independently: outputs, targets (trials, time, outputs); mask (trials, time)."""
    per_step = (targets - outputs).pow(2).mean(dim=-1)
    return ((mask * per_step).sum(dim=-1) / mask.sum(dim=-1)).mean()


def make_batch(trials, time, inputs, outputs, *, seed, partial_mask):
    rng = np.random.default_rng(seed)
    u = torch.from_numpy(rng.standard_normal((trials, time, inputs)).astype(np.float32))
    u[:, : time // 4] = 0.0  # a fixation period with no input
    y = torch.from_numpy(rng.uniform(-1, 1, (trials, time, outputs)).astype(np.float32))
    mask = torch.ones(trials, time)
    if partial_mask:  # romo-like: each trial scored on its own late window
        mask.zero_()
        for b in range(trials):
            start = int(rng.integers(time // 2, time - 2))
            mask[b, start : start + int(rng.integers(1, time - start + 1))] = 1.0
    return u, y, mask


def plain_loss_and_grads(model, u, y, mask, xi):
    model.zero_grad()
    loss = plain_masked_mse(model(u, noise=torch.from_numpy(xi)), y, mask)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    return float(loss.detach()), grads


def fast_loss_and_grads(model, u, y, mask, seed):
    model.zero_grad()
    loss = fast_loss(model, u, y, mask, seed=seed)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    return float(loss.detach()), grads, loss


CASES = [
    dict(rank=1, inputs=1, outputs=1, train_inputs=True, train_outputs=True, train_h0=True, partial_mask=True),
    dict(rank=2, inputs=2, outputs=1, train_inputs=False, train_outputs=False, train_h0=False, partial_mask=False),
    dict(rank=1, inputs=3, outputs=1, train_inputs=True, train_outputs=True, train_h0=False, partial_mask=False),
    dict(rank=2, inputs=2, outputs=3, train_inputs=False, train_outputs=True, train_h0=True, partial_mask=True),
    dict(rank=2, inputs=1, outputs=2, train_inputs=True, train_outputs=False, train_h0=True, partial_mask=False),
    dict(rank=3, inputs=2, outputs=1, train_inputs=True, train_outputs=True, train_h0=True, partial_mask=True),
    dict(rank=None, inputs=2, outputs=1, train_inputs=True, train_outputs=True, train_h0=True, partial_mask=True),
    dict(rank=None, inputs=1, outputs=2, train_inputs=False, train_outputs=False, train_h0=False, partial_mask=False),
]


@pytest.mark.parametrize("case", CASES)
def test_loss_and_gradients_equal_plain_path_on_same_noise(case):
    case = dict(case)
    partial = case.pop("partial_mask")
    size, trials, time = 37, 11, 23  # odd size, trials not a multiple of the full-rank block
    config = ModelConfig(size=size, noise_std=0.3, **case)
    model = build_model(config, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # a non-zero initial state, so h0 matters
        model.h0.copy_(0.5 * torch.randn(size, generator=torch.Generator().manual_seed(4)))
    u, y, mask = make_batch(trials, time, config.inputs, config.outputs, seed=5, partial_mask=partial)
    seed = 2**40 + 17
    xi = fast_noise((trials, time, size), seed)
    loss_ref, grads_ref = plain_loss_and_grads(model, u, y, mask, xi)
    loss_fast, grads_fast, tensor = fast_loss_and_grads(model, u, y, mask, seed)
    assert tensor.shape == () and tensor.grad_fn is not None
    assert loss_fast == pytest.approx(loss_ref, rel=1e-5)
    assert set(grads_fast) == set(grads_ref)
    expected = {"m", "n"} if case["rank"] else {"J"}
    expected |= {name for name, flag in (("w_in", "train_inputs"), ("w_out", "train_outputs"), ("h0", "train_h0"))
                 if case[flag]}
    assert set(grads_fast) == expected
    for name, ref in grads_ref.items():
        scale = float(ref.abs().max())
        assert scale > 0
        np.testing.assert_allclose(grads_fast[name].numpy(), ref.numpy(), rtol=0, atol=1e-5 * scale, err_msg=name)
    for p in model.parameters():
        if not p.requires_grad:
            assert p.grad is None


def test_ensemble_members_equal_single_networks_and_backward_scales():
    size, trials, time = 24, 5, 13
    models = [
        build_model(ModelConfig(size=size, inputs=2, outputs=1, rank=2, noise_std=0.1), generator=torch.Generator().manual_seed(k))
        for k in range(3)
    ]
    batches = [make_batch(trials, time, 2, 1, seed=10 + k, partial_mask=k == 1) for k in range(3)]
    params = stack_parameters(models)
    assert params["m"].shape == (3, size, 2) and params["w_in"].requires_grad and not params["h0"].requires_grad
    u, y, mask = (torch.stack([b[i] for b in batches]) for i in range(3))
    seeds = [7, 8, 9]
    losses = fast_loss_ensemble(params, u, y, mask, seeds=seeds, noise_std=0.1)
    assert losses.shape == (3,)
    (losses * torch.tensor([1.0, 2.0, 0.5])).sum().backward()
    for k, model in enumerate(models):
        single = fast_loss(model, *batches[k], seed=seeds[k])
        single.backward()
        assert float(losses[k].detach()) == pytest.approx(float(single.detach()), rel=1e-6)
        factor = [1.0, 2.0, 0.5][k]
        np.testing.assert_allclose(params["m"].grad[k].numpy(), factor * model.m.grad.numpy(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(params["w_out"].grad[k].numpy(), factor * model.w_out.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_outputs_and_trajectories_equal_plain_path():
    size, trials, time = 30, 4, 17
    models = [build_model(ModelConfig(size=size, inputs=2, outputs=2, rank=r), generator=torch.Generator().manual_seed(r or 0))
              for r in (1, None)]
    u, _, _ = make_batch(trials, time, 2, 2, seed=1, partial_mask=False)
    for model in models:
        params = {name: t.detach().numpy() for name, t in stack_parameters([model]).items()}
        xi = fast_noise((trials, time, size), 99)
        with torch.no_grad():
            z_ref = model(u, noise=torch.from_numpy(xi)).numpy()
            x_ref = model.trajectories(u, noise=torch.from_numpy(xi)).numpy()
        z = fast_outputs(params, u, seeds=[99], noise_std=model.config.noise_std)
        x = fast_trajectories(params, u.numpy(), seeds=[99], noise_std=model.config.noise_std)
        assert z.shape == (1, trials, time, 2) and x.shape == (1, trials, time, size)
        np.testing.assert_allclose(z[0], z_ref, rtol=0, atol=1e-5 * np.abs(z_ref).max())
        np.testing.assert_allclose(x[0], x_ref, rtol=0, atol=1e-5 * np.abs(x_ref).max())


def test_kernel_noise_is_bitwise_fast_noise_and_independent_of_threads(monkeypatch):
    """With alpha = 1, J = 0, W_in = 0 and noise_std = 1 the state after each step is exactly xi."""
    size, trials, time = 33, 9, 6
    zeros = np.zeros((2, size, 1), np.float32)
    for params in ({"m": zeros, "n": zeros}, {"m": np.zeros((2, size, 3), np.float32), "n": np.zeros((2, size, 3), np.float32)},
                   {"J": np.zeros((2, size, size), np.float32)}):
        params = dict(params, w_in=zeros, w_out=zeros, h0=np.zeros((2, size), np.float32))
        states = []
        for threads in (1, 2, 3):
            monkeypatch.setattr(_pool, "_threads", lambda threads=threads: threads)
            states.append(fast_trajectories(params, np.zeros((trials, time, 1)), seeds=[5, 2**63 + 5], alpha=1.0, noise_std=1.0))
        assert np.array_equal(states[0], states[1]) and np.array_equal(states[0], states[2])
        assert np.array_equal(states[0][0], fast_noise((trials, time, size), 5))
        assert np.array_equal(states[0][1], fast_noise((trials, time, size), 2**63 + 5))


def test_noise_is_standard_gaussian():
    xi = fast_noise((64, 50, 101), 12345).astype(np.float64)  # 323,200 draws
    flat = xi.ravel()
    count = flat.size
    assert abs(flat.mean()) < 5 / np.sqrt(count)
    assert abs(flat.var() - 1) < 5 * np.sqrt(2 / count)
    assert abs(stats.skew(flat)) < 5 * np.sqrt(6 / count)
    assert abs(stats.kurtosis(flat)) < 5 * np.sqrt(24 / count)
    for k in (1, 2, 3, 4):  # tails: two-sided fraction beyond k sigma, within 5 binomial standard errors
        p = 2 * stats.norm.sf(k)
        assert abs(np.mean(np.abs(flat) > k) - p) < 5 * np.sqrt(p * (1 - p) / count) + 1 / count
    assert stats.kstest(flat[:50000], "norm").pvalue > 1e-4
    # every neuron (cosine half, sine half, odd last neuron) has the same law
    per_neuron_std = xi.reshape(-1, 101).std(axis=0)
    assert np.all(np.abs(per_neuron_std - 1) < 6 * np.sqrt(2 / 3200))


def test_noise_is_independent_across_trials_steps_neurons_and_seeds():
    xi = fast_noise((200, 40, 64), 7).astype(np.float64)
    bound = 5 / np.sqrt(200 * 39 * 64)

    def corr(a, b):
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    assert abs(corr(xi[:, 1:], xi[:, :-1])) < bound  # consecutive steps
    assert abs(corr(xi[1:], xi[:-1])) < 5 / np.sqrt(199 * 40 * 64)  # neighbouring trials
    assert abs(corr(xi[..., :32], xi[..., 32:])) < 5 / np.sqrt(200 * 40 * 32)  # a Box-Muller pair (cos, sin)
    assert abs(corr(xi[..., 1:], xi[..., :-1])) < 5 / np.sqrt(200 * 40 * 63)  # neighbouring neurons
    # squares too: Box-Muller pairs share a radius, which would show up as correlated magnitudes
    assert abs(corr(xi[..., :32] ** 2, xi[..., 32:] ** 2)) < 5 / np.sqrt(200 * 40 * 32)
    other = fast_noise((200, 40, 64), 8).astype(np.float64)
    assert abs(corr(xi, other)) < 5 / np.sqrt(xi.size)
    # the same (seed, trial, step) gives the same vector whatever the batch shape
    assert np.array_equal(fast_noise((3, 5, 64), 7), xi[:3, :5])


def test_zero_mask_trial_contributes_zero_and_bad_input_is_rejected():
    model = build_model(ModelConfig(size=16, inputs=1, rank=1), generator=torch.Generator().manual_seed(0))
    u, y, mask = make_batch(4, 9, 1, 1, seed=0, partial_mask=False)
    full = fast_loss(model, u, y, mask, seed=1).detach()
    mask2 = mask.clone()
    mask2[0] = 0
    with torch.no_grad():  # the forward-only path
        part = fast_loss(model, u, y, mask2, seed=1)
        assert part.grad_fn is None
    assert float(fast_loss(model, u, y, mask2, seed=1).detach()) == pytest.approx(float(part), rel=1e-6)
    with torch.no_grad():
        xi = torch.from_numpy(fast_noise((4, 9, 16), 1))
        per_trial = ((y - model(u, noise=xi)) ** 2).mean(-1).mean(-1)
    assert float(full) == pytest.approx(float(per_trial.mean()), rel=1e-5)
    assert float(part) == pytest.approx(float(per_trial[1:].sum() / 4), rel=1e-5)
    assert fast_path_supported(model) and not fast_path_supported(model.double())
    with pytest.raises(RnnscopeError, match="mask"):
        fast_loss(model.float(), u, y, mask[:, :5], seed=1)
    with pytest.raises(RnnscopeError, match="seeds"):
        fast_loss(model, u, y, mask, seed=-1)
    with pytest.raises(RnnscopeError, match="inputs"):
        fast_loss(model, u[..., :0], y, mask, seed=1)
    params = {name: t.detach() for name, t in stack_parameters([model]).items()}
    with pytest.raises(RnnscopeError, match="alpha"):
        fast_outputs(params, u, seeds=[0], alpha=1.5)
    with pytest.raises(RnnscopeError, match="noise_std"):
        fast_outputs(params, u, seeds=[0], noise_std=[-0.1])
    with pytest.raises(RnnscopeError, match="params"):
        fast_outputs({"m": params["m"]}, u, seeds=[0])


@pytest.mark.parametrize("shape", [dict(rank=2, inputs=2, outputs=2), dict(rank=1, inputs=1, outputs=1)])
def test_results_do_not_depend_on_the_number_of_threads(shape, monkeypatch):
    model = build_model(ModelConfig(size=40, **shape), generator=torch.Generator().manual_seed(1))
    u, y, mask = make_batch(7, 12, shape["inputs"], shape["outputs"], seed=3, partial_mask=True)
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(_pool, "_threads", lambda threads=threads: threads)
        model.zero_grad()
        loss = fast_loss(model, u, y, mask, seed=11)
        loss.backward()
        results.append([loss.detach().clone()] + [p.grad.clone() for p in model.parameters() if p.grad is not None])
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.equal(a, b)


def test_thread_count_respects_the_caller():
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert _pool._threads() == 1
    finally:
        numba.set_num_threads(before)
    assert 1 <= _pool._threads() <= before


@pytest.mark.parametrize("rank", [1, 2, None])
def test_graph_free_gradients_equal_autograd_ones(rank):
    """The trainer's hot path (gradients written straight into .grad) gives fast_loss's loss and gradients."""
    config = ModelConfig(size=29, inputs=2, outputs=1, rank=rank, train_h0=True, noise_std=0.2)
    model = build_model(config, generator=torch.Generator().manual_seed(2))
    u, y, mask = make_batch(6, 15, 2, 1, seed=4, partial_mask=True)
    model.zero_grad()
    loss = fast_loss(model, u, y, mask, seed=9)
    loss.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    value = fast_loss_and_grad(model, u.numpy(), y.numpy(), mask.numpy(), seed=9)
    assert value == float(loss.detach())
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p.grad, expected[name]), name
    model.zero_grad()
    step = _fast.FusedTrainStep(model)  # the trainer's prepared version
    assert step(u.numpy(), y.numpy(), mask.numpy(), 9) == value
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p.grad, expected[name]), name
    params = stack_parameters([model, model])
    losses = fast_loss_and_grads_ensemble(params, u, y, mask, seeds=[9, 9], noise_std=0.2)
    assert losses.shape == (2,) and losses[0] == losses[1] == np.float32(value)
    for name, tensor in params.items():
        if tensor.requires_grad:
            assert torch.equal(tensor.grad[1], expected[name]), name


def test_kernels_leave_torch_thread_count_alone() -> None:
    """Starting numba's threading layer must not change the caller's torch setting."""
    import subprocess
    import sys

    code = (
        "import torch, numpy as np\n"
        "torch.set_num_threads(1)\n"
        "from rnnscope.models import fast_outputs\n"
        "p = {k: np.zeros((1, 4, 1), np.float32) for k in ('m', 'n', 'w_in', 'w_out')}\n"
        "p['h0'] = np.zeros((1, 4), np.float32)\n"
        "fast_outputs(p, np.zeros((2, 3, 1), np.float32), seeds=[0])\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
