"""Microbenchmark: one training epoch (loss, gradients, Adam step) with the fused numba kernel against the plain
PyTorch path and a literal reference-style loop, on random data of the rdm / dms sizes.

    python benchmarks/kernel_speed.py --json [--epochs 2] [--threads 2] [--quick]

Prints seconds per epoch for each path (wall and process CPU time, minimum over rounds in which the paths take
turns), the speedups, and the kernels' compile (or cache-load) time separately.
The data are random (only the cost is measured); the task modules are not needed.
"""

from __future__ import annotations

import argparse
import json
import time

import numba
import numpy as np
import torch

from rnnscope.models import ModelConfig, build_model
from rnnscope.models._fast import fast_loss, fast_loss_ensemble, stack_parameters, warm_up

SETTINGS = {
    "rdm_rank1": dict(size=512, rank=1, inputs=1, time=51, batches=25, trials=32),
    "dms_rank2": dict(size=512, rank=2, inputs=2, time=255, batches=25, trials=32),
}


def make_data(setting: dict, *, seed: int):
    rng = np.random.default_rng(seed)
    shape = (setting["batches"], setting["trials"], setting["time"])
    u = torch.from_numpy(rng.standard_normal(shape + (setting["inputs"],)).astype(np.float32) * 0.1)
    y = torch.from_numpy(rng.uniform(-1, 1, shape + (1,)).astype(np.float32))
    mask = torch.zeros(shape)
    mask[..., -max(1, setting["time"] // 5):] = 1.0
    return u, y, mask


def literal_epoch(model, u, y, mask, optimizer, generator):
    """The reference algorithm written literally: Python loop over steps, ``r @ n @ m.T`` each step, noise drawn
    with ``torch.randn(batch, T, N)``, outputs written per step, masked MSE, backward, Adam."""
    size, alpha, noise_std = model.size, model.config.alpha, model.config.noise_std
    for b in range(u.shape[0]):
        inputs, targets, mask3 = u[b], y[b], mask[b].unsqueeze(-1)
        trials, steps, _ = inputs.shape
        noise = torch.randn(trials, steps, size, generator=generator)
        h = model.h0
        r = h.tanh()
        output = torch.zeros(trials, steps, 1)
        for i in range(steps):
            h = h + noise_std * noise[:, i, :] + alpha * (
                -h + r.matmul(model.n).matmul(model.m.t()) / size + inputs[:, i, :].matmul(model.w_in.t())
            )
            r = h.tanh()
            output[:, i, :] = r.matmul(model.w_out) / size
        loss = (mask3 * (targets - output)).pow(2).mean(dim=-1).sum(dim=-1) / mask3[:, :, 0].sum(dim=-1)
        optimizer.zero_grad()
        loss.mean().backward()
        optimizer.step()


def plain_epoch(model, u, y, mask, optimizer, generator):
    """The library's plain PyTorch path: ``model.forward`` on drawn noise, masked MSE, backward, Adam."""
    for b in range(u.shape[0]):
        noise = torch.randn(u.shape[1], u.shape[2], model.size, generator=generator)
        out = model(u[b], noise=noise)
        loss = ((mask[b] * (y[b] - out).pow(2).mean(-1)).sum(-1) / mask[b].sum(-1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def fast_epoch(model, u, y, mask, optimizer, rng):
    for b in range(u.shape[0]):
        loss = fast_loss(model, u[b], y[b], mask[b], seed=int(rng.integers(2**63)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def ensemble_epoch(params, u, y, mask, optimizer, rng, networks):
    for b in range(u.shape[0]):
        seeds = [int(s) for s in rng.integers(2**63, size=networks)]
        losses = fast_loss_ensemble(params, u[b], y[b], mask[b], seeds=seeds)
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()


def timed_min(calls: dict, epochs: int) -> dict:
    """{name: (wall, process CPU)} minimum seconds per call over ``epochs`` rounds; the paths take turns within each
    round, so on a shared, noisy machine they see the same conditions and the minimum discards interruptions.
    calls: {name: (fn, args)}; each is called once first as a warm-up."""
    for fn, args in calls.values():
        fn(*args)
    best = {name: (np.inf, np.inf) for name in calls}
    for _ in range(epochs):
        for name, (fn, args) in calls.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn(*args)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def run(epochs: int, quick: bool, ensemble: int) -> dict:
    results: dict = {"threads": numba.get_num_threads(), "torch_threads": torch.get_num_threads()}
    start = time.perf_counter()
    results["compile_or_cache_load_s"] = warm_up()
    results["warm_up_wall_s"] = time.perf_counter() - start
    for name, setting in SETTINGS.items():
        if quick:
            setting = dict(setting, batches=3)
        config = ModelConfig(size=setting["size"], inputs=setting["inputs"], rank=setting["rank"])
        u, y, mask = make_data(setting, seed=0)
        scale = SETTINGS[name]["batches"] / setting["batches"]
        calls = {}
        for path, epoch in (("literal", literal_epoch), ("plain", plain_epoch), ("fast", fast_epoch)):
            model = build_model(config, generator=torch.Generator().manual_seed(0))
            optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
            source = np.random.default_rng(1) if path == "fast" else torch.Generator().manual_seed(1)
            calls[path] = (epoch, (model, u, y, mask, optimizer, source))
        if name == "rdm_rank1" and ensemble > 0:
            models = [build_model(config, generator=torch.Generator().manual_seed(k)) for k in range(ensemble)]
            params = stack_parameters(models)
            optimizer = torch.optim.Adam([p for p in params.values() if p.requires_grad], lr=1e-3)
            u_k = u.unsqueeze(1).expand(-1, ensemble, -1, -1, -1)  # (batches, K, trials, time, inputs)
            y_k = y.unsqueeze(1).expand(-1, ensemble, -1, -1, -1)
            m_k = mask.unsqueeze(1).expand(-1, ensemble, -1, -1)
            calls["ensemble"] = (ensemble_epoch, (params, u_k, y_k, m_k, optimizer, np.random.default_rng(2), ensemble))
        best = timed_min(calls, epochs)
        row = {}
        for path in ("literal", "plain", "fast"):
            row[f"{path}_s_per_epoch"] = best[path][0] * scale
            row[f"{path}_cpu_s_per_epoch"] = best[path][1] * scale
        row["speedup_vs_literal"] = row["literal_s_per_epoch"] / row["fast_s_per_epoch"]
        row["speedup_vs_plain"] = row["plain_s_per_epoch"] / row["fast_s_per_epoch"]
        row["cpu_speedup_vs_literal"] = row["literal_cpu_s_per_epoch"] / row["fast_cpu_s_per_epoch"]
        results[name] = row
        if "ensemble" in best:
            per_net, per_net_cpu = (value * scale / ensemble for value in best["ensemble"])
            results[f"ensemble_{ensemble}"] = {
                "fast_s_per_network_epoch": per_net,
                "fast_cpu_s_per_network_epoch": per_net_cpu,
                "speedup_vs_literal": row["literal_s_per_epoch"] / per_net,
                "cpu_speedup_vs_literal": row["literal_cpu_s_per_epoch"] / per_net_cpu,
                "speedup_vs_single_fast": row["fast_s_per_epoch"] / per_net,
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--epochs", type=int, default=3, help="timed rounds (the minimum is kept), after a warm-up")
    parser.add_argument("--threads", type=int, default=None, help="threads of the fast kernels (default: numba's)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (default 1: as fast as 2 here)")
    parser.add_argument("--ensemble", type=int, default=32, help="networks in the ensemble run (0: skip)")
    parser.add_argument("--quick", action="store_true", help="3 batches per epoch, scaled to 25")
    args = parser.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    torch.set_num_threads(args.torch_threads)
    results = run(args.epochs, args.quick, args.ensemble)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(key, value)


if __name__ == "__main__":
    main()
