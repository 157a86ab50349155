"""Every backend runs the same network to the same states, outputs, loss and gradients on the same noise; the one
loss definition on empty-mask trials; the generic optimisation core."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnscope._loss import masked_mse as formula
from rnnscope.errors import RnnscopeError
from rnnscope.models import (
    Cell,
    ModelConfig,
    build_model,
    choose_backend,
    fast_loss,
    fast_loss_and_grads_ensemble,
    fast_noise,
    simulate,
    stack_parameters,
)
from rnnscope.tasks import TrialBatch, masked_mse
from rnnscope.training import OptimisationConfig, masked_mse_loss, optimise

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]
SIZE, TRIALS, TIME = 31, 6, 14


def _batch(inputs: int, outputs: int, seed: int):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((TRIALS, TIME, inputs)).astype(np.float32)
    y = rng.uniform(-1, 1, (TRIALS, TIME, outputs)).astype(np.float32)
    mask = (rng.random((TRIALS, TIME)) < 0.4).astype(np.float32)
    mask[0] = 0.0  # a trial with nothing to score
    mask[1, -1] = 1.0
    return u, y, mask


def _model(rank, seed=0):
    config = ModelConfig(size=SIZE, inputs=2, outputs=1, rank=rank, noise_std=0.2, train_h0=True)
    return build_model(config, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rank", [1, 2, None])
def test_every_backend_gives_the_same_states_outputs_loss_and_gradients(rank, device):
    model = _model(rank)
    u, y, mask = _batch(2, 1, seed=rank or 7)
    results = {}
    for backend in ("fast", "torch"):
        if backend == "fast" and device != "cpu":
            continue
        results[backend] = simulate(model, u, rng=3, record="both", backend=backend, device=device)
        assert results[backend].backend == backend and not results[backend].stacked
    fast, plain = results.get("fast", results["torch"]), results["torch"]
    assert fast.outputs.shape == (TRIALS, TIME, 1) and fast.states.shape == (TRIALS, TIME, SIZE)
    np.testing.assert_allclose(plain.states, fast.states, atol=2e-5 * np.abs(fast.states).max())
    np.testing.assert_allclose(plain.outputs, fast.outputs, atol=2e-5 * np.abs(fast.outputs).max() + 1e-7)
    # loss and gradients: the fused kernel against autograd through the torch loop on the kernel's noise
    seed = 12345
    model.zero_grad()
    fused = fast_loss(model, torch.from_numpy(u), torch.from_numpy(y), torch.from_numpy(mask), seed=seed)
    fused.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    net = model.to(device)
    net.zero_grad()
    xi = torch.from_numpy(fast_noise((TRIALS, TIME, SIZE), seed)).to(device)
    loss = masked_mse_loss(net(torch.from_numpy(u).to(device), noise=xi), torch.from_numpy(y).to(device),
                           torch.from_numpy(mask).to(device))
    loss.backward()
    assert np.isfinite(float(loss.detach())) and float(loss.detach()) == pytest.approx(float(fused.detach()), rel=1e-5)
    for name, grad in expected.items():
        got = dict(net.named_parameters())[name].grad.cpu()
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, grad, rtol=0, atol=2e-5 * float(grad.abs().max()))
    model.cpu()


@pytest.mark.parametrize("device", DEVICES)
def test_a_stack_of_three_networks_runs_the_same_on_every_backend(device):
    models = [_model(2, seed=k) for k in range(3)]
    weights = [m.weights() for m in models]
    u, y, mask = _batch(2, 1, seed=1)
    for shared in (True, False):
        plain = simulate(weights, u, rng=5, record="both", backend="torch", device=device, shared_noise=shared,
                         memory_mb=0.01)  # chunks of a few trials
        assert plain.stacked and plain.outputs.shape == (3, TRIALS, TIME, 1) and plain.states.shape == (3, TRIALS, TIME, SIZE)
        if device == "cpu":
            fast = simulate(weights, u, rng=5, record="both", backend="fast", shared_noise=shared)
            np.testing.assert_allclose(plain.states, fast.states, atol=2e-5 * np.abs(fast.states).max())
            np.testing.assert_allclose(plain.outputs, fast.outputs, atol=2e-5 * np.abs(fast.outputs).max())
        for k in range(3):  # each network of the stack is that network alone, on the stack's noise
            alone = simulate(weights[k], u, rng=5, record="outputs", backend="torch", device=device) if shared else None
            if alone is not None:
                np.testing.assert_allclose(alone.outputs, plain.outputs[k], atol=1e-5 * np.abs(plain.outputs).max())
    # losses and gradients of the stack on the ensemble kernel equal the torch loop on the same noise
    params = stack_parameters(models)
    seeds = [3, 4, 5]
    losses = fast_loss_and_grads_ensemble(params, u, y, mask, seeds=seeds, noise_std=0.2)
    for k, model in enumerate(models):
        model.zero_grad()
        xi = torch.from_numpy(fast_noise((TRIALS, TIME, SIZE), seeds[k]))
        loss = masked_mse_loss(model(torch.from_numpy(u), noise=xi), torch.from_numpy(y), torch.from_numpy(mask))
        loss.backward()
        assert float(losses[k]) == pytest.approx(float(loss.detach()), rel=1e-5)
        torch.testing.assert_close(params["m"].grad[k], model.m.grad, rtol=0, atol=2e-5 * float(model.m.grad.abs().max()))


def test_empty_mask_trials_contribute_zero_everywhere():
    rng = np.random.default_rng(0)
    outputs, targets = rng.normal(size=(4, 5, 2)), rng.normal(size=(4, 5, 2))
    mask = np.ones((4, 5))
    mask[2] = 0.0
    per_trial = [np.mean((outputs[b] - targets[b]) ** 2) for b in range(4)]
    expected = (per_trial[0] + per_trial[1] + per_trial[3]) / 4  # zero for trial 2, still counted
    batch = TrialBatch(np.zeros((4, 5, 1)), targets, mask, {})
    assert masked_mse(outputs, batch) == pytest.approx(expected)
    out = torch.tensor(outputs, requires_grad=True)
    loss = masked_mse_loss(out, torch.from_numpy(targets), torch.from_numpy(mask))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(expected) and torch.isfinite(out.grad).all() and not out.grad[2].any()
    assert float(formula(outputs, targets, mask)) == pytest.approx(expected)
    model = _model(1)
    u, y, m = _batch(2, 1, seed=2)
    m[:] = 0.0
    assert float(fast_loss(model, torch.from_numpy(u), torch.from_numpy(y), torch.from_numpy(m), seed=1).detach()) == 0.0


def test_choose_backend_is_the_one_decision():
    model = _model(1)
    assert choose_backend(model) == "fast" and choose_backend(model.double()) == "torch"
    assert choose_backend(ModelConfig(size=8, inputs=1), training=True) == "fast"
    assert choose_backend(model.float().weights()) == "fast"
    assert choose_backend(model.weights(), training=True) == "torch"
    assert choose_backend(model, backend="torch") == "torch"
    assert choose_backend(model, device="cuda") == "torch"
    with pytest.raises(RnnscopeError, match="backend"):
        choose_backend(model, device="cuda", backend="fast")
    with pytest.raises(RnnscopeError, match="backend"):
        choose_backend(model, backend="gpu")
    assert isinstance(model, Cell)


def test_optimise_fits_and_keeps_the_best_epoch():
    mean = torch.zeros(3, requires_grad=True)
    target = torch.tensor([1.0, -2.0, 0.5])

    def loss(rng):
        samples = torch.from_numpy(rng.normal(size=(64, 3)).astype(np.float32)) + target
        return ((samples - mean) ** 2).mean()

    def validate():
        error = float(((mean - target) ** 2).sum())
        return error, float(error < 0.01)

    result = optimise([mean], loss, config=OptimisationConfig(epochs=300, lr=0.05, target_accuracy=1.0), rng=0,
                      validate=validate)
    assert result.stopped_early and len(result.history) < 300
    assert result.best_epoch == int(np.argmin([r["validation_loss"] for r in result.history]))
    assert float(((mean.detach() - target) ** 2).sum()) == pytest.approx(result.history[result.best_epoch]["validation_loss"])
    again = torch.zeros(3, requires_grad=True)
    same = optimise([again], lambda rng: ((again - target) ** 2).sum(),
                    config=OptimisationConfig(epochs=3), rng=0)
    assert same.losses.shape == (3,)
    with pytest.raises(RnnscopeError, match="parameters"):
        optimise([torch.zeros(2)], loss, config=OptimisationConfig(epochs=1), rng=0)
    with pytest.raises(RnnscopeError, match="lr"):
        optimise([again], lambda rng: (again * float("nan")).sum(), config=OptimisationConfig(epochs=1), rng=0)
