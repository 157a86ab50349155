"""Training speed: seconds per epoch (25 batches of 32 trials, N = 512) for rdm rank 1 and dms rank 2, and per
network for an ensemble of 32 rdm networks, against the reference algorithm written literally.

Runs, in one process, rnnscope's trainer (``train`` / ``train_ensemble`` on the default backend, whole epochs with
validation) and a baseline that follows the reference algorithm of Dubreuil, Valente et al. literally (Python loop
over steps, ``r @ n @ m.T`` each step, noise from ``torch.randn(batch, T, N)``, outputs written per step,
``loss.backward()``, Adam). Ratios are what to compare: the machine is shared and noisy, so each figure is a median
over several epochs, and ours and the baseline alternate in rounds. Compilation (or numba cache loading) is timed
separately by ``warm_up`` before anything else.

    python benchmarks/train_speed.py --json [--rounds 3] [--epochs 2] [--ensemble 32] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numba
import numpy as np
import torch

from rnnscope.models import ModelConfig
from rnnscope.tasks import make_task
from rnnscope.training import TrainingConfig, train, train_ensemble

SIZE, BATCH, BATCHES = 512, 32, 25


def baseline_epoch_seconds(task_name: str, rank: int, epochs: int) -> list[float]:
    """Seconds of each of ``epochs`` epochs of the reference algorithm, literally."""
    task = make_task(task_name)
    batch = task.sample(BATCH * BATCHES, rng=np.random.default_rng(0))
    inputs, targets = torch.from_numpy(batch.inputs), torch.from_numpy(batch.targets)
    mask = torch.from_numpy(batch.mask)[..., None]
    g = torch.Generator().manual_seed(0)
    n_in = inputs.shape[-1]
    wi = torch.nn.Parameter(torch.randn(n_in, SIZE, generator=g))
    si = torch.nn.Parameter(torch.ones(n_in))
    m = torch.nn.Parameter(torch.randn(SIZE, rank, generator=g))
    n = torch.nn.Parameter(torch.randn(SIZE, rank, generator=g))
    wo = torch.nn.Parameter(4 * torch.randn(SIZE, 1, generator=g))
    so = torch.nn.Parameter(torch.ones(1))
    h0 = torch.zeros(SIZE)
    params = [wi, m, n, wo]
    optimizer = torch.optim.Adam(params, lr=1e-2)

    def forward(x: torch.Tensor) -> torch.Tensor:
        batch_size, seq_len = x.shape[0], x.shape[1]
        h = h0
        r = torch.tanh(h)
        wi_full = (wi.t() * si).t()
        wo_full = wo * so
        noise = torch.randn(batch_size, seq_len, SIZE)
        output = torch.zeros(batch_size, seq_len, 1)
        for i in range(seq_len):
            h = h + 0.05 * noise[:, i, :] + 0.2 * (-h + r.matmul(n).matmul(m.t()) / SIZE + x[:, i, :].matmul(wi_full))
            r = torch.tanh(h)
            output[:, i, :] = r.matmul(wo_full) / SIZE
        return output

    def loss_mse(output, target, mask):
        loss_tensor = (mask * (target - output)).pow(2).mean(dim=-1)
        return (loss_tensor.sum(dim=-1) / mask[:, :, 0].sum(dim=-1)).mean()

    times = []
    rng = np.random.default_rng(1)
    for _ in range(epochs):
        began = time.perf_counter()
        for _ in range(BATCHES):
            optimizer.zero_grad()
            idx = torch.from_numpy(rng.choice(BATCH * BATCHES, BATCH, replace=False))
            loss = loss_mse(forward(inputs[idx]), targets[idx], mask[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        times.append(time.perf_counter() - began)
    return times


def ours_epoch_seconds(task_name: str, rank: int, epochs: int, backend: str = "auto") -> list[float]:
    """Seconds of each epoch after the first of rnnscope's trainer (validation included)."""
    task = make_task(task_name)
    config = TrainingConfig(epochs=epochs + 1, batch_size=BATCH, train_trials=BATCH * BATCHES, backend=backend)
    result = train(task, ModelConfig(size=SIZE, inputs=len(task.input_names), rank=rank), config, rng=0, progress=False)
    return [row["seconds"] for row in result.history][1:]


def ensemble_network_seconds(networks: int, epochs: int) -> list[float]:
    """Seconds per network of each epoch after the first of ``train_ensemble`` on rdm rank 1 (validation included)."""
    task = make_task("rdm")
    config = TrainingConfig(epochs=epochs + 1, batch_size=BATCH, train_trials=BATCH * BATCHES)
    result = train_ensemble(task, ModelConfig(size=SIZE, inputs=len(task.input_names), rank=1), config,
                            rng=list(range(networks)), progress=False)
    return [row["seconds"] for row in result.results[0].history][1:]  # already divided by the number of networks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which ours and the baseline alternate")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per round and path")
    parser.add_argument("--ensemble", type=int, default=32, help="networks in the ensemble run (0: skip)")
    parser.add_argument("--threads", type=int, default=None,
                        help="kernel threads (default: the cores not busy with other work, see models._pool._threads)")
    parser.add_argument("--torch-backend", action="store_true", help="also time the trainer's plain PyTorch path")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads (default 1: the baseline is as fast with 2, and far slower on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    if args.threads:
        numba.set_num_threads(args.threads)
        os.environ["NUMBA_NUM_THREADS"] = str(args.threads)  # marks the count as the caller's choice (models._pool._threads)
    from rnnscope.models import warm_up
    from rnnscope.models._pool import _threads

    compile_s = warm_up()
    report: dict = {"compile_or_cache_load_s": compile_s, "kernel_threads_at_start": _threads(),
                    "numba_threads": numba.get_num_threads(), "torch_threads": torch.get_num_threads(),
                    "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    baselines = {}
    for key, task, rank in (("rdm_rank1", "rdm", 1), ("dms_rank2", "dms", 2)):
        base, ours, plain = [], [], []
        for _ in range(args.rounds):
            base += baseline_epoch_seconds(task, rank, args.epochs)
            ours += ours_epoch_seconds(task, rank, args.epochs)
            if args.torch_backend:
                plain += ours_epoch_seconds(task, rank, args.epochs, backend="torch")
        row = {"ours_s_per_epoch": float(np.median(ours)), "baseline_s_per_epoch": float(np.median(base))}
        row["speedup"] = row["baseline_s_per_epoch"] / row["ours_s_per_epoch"]
        row["ours_epochs_s"] = [round(v, 4) for v in ours]
        row["baseline_epochs_s"] = [round(v, 4) for v in base]
        if plain:
            row["torch_backend_s_per_epoch"] = float(np.median(plain))
        baselines[key] = base
        report[key] = row
    if args.ensemble > 0:
        per_net, base = [], []
        for _ in range(args.rounds):
            per_net += ensemble_network_seconds(args.ensemble, 1)
            base += baseline_epoch_seconds("rdm", 1, 1)
        base += baselines["rdm_rank1"]
        report[f"ensemble_{args.ensemble}"] = {
            "ours_s_per_network": float(np.median(per_net)), "baseline_s_per_epoch": float(np.median(base)),
            "speedup": float(np.median(base)) / float(np.median(per_net)),
            "ours_epochs_s_per_network": [round(v, 4) for v in per_net],
        }
    if torch.cuda.is_available():
        report["cuda"] = {"device": torch.cuda.get_device_name(0)}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, row in report.items():
            print(key, row)


if __name__ == "__main__":
    main()
