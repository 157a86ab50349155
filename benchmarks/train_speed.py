"""Training speed: seconds per epoch (25 batches of 32 trials, N = 512) for rdm rank 1 and dms rank 2.

Runs, in one process, rnnscope's trainer (fast CPU path and plain PyTorch path) and a baseline that follows the
reference algorithm of Dubreuil, Valente et al. literally (Python loop over steps, ``r @ n @ m.T`` each step,
noise from ``torch.randn(batch, T, N)``, outputs written per step, ``loss.backward()``, Adam). Ratios are what to
compare: the machine is shared and noisy.

    python benchmarks/train_speed.py --json [--epochs 3] [--ensemble 32]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from rnnscope.models import ModelConfig
from rnnscope.tasks import make_task
from rnnscope.training import TrainingConfig, train

SIZE, BATCH, BATCHES = 512, 32, 25


def baseline_epoch_seconds(task_name: str, rank: int, epochs: int) -> float:
    """The reference algorithm, literally."""
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
    return float(np.median(times))


def ours_epoch_seconds(task_name: str, rank: int, epochs: int, backend: str) -> tuple[float, float]:
    """Median seconds per epoch of rnnscope's trainer (validation included), and the first epoch's seconds
    (which include compilation on the fast path)."""
    task = make_task(task_name)
    config = TrainingConfig(epochs=epochs + 1, batch_size=BATCH, train_trials=BATCH * BATCHES, backend=backend)
    result = train(task, ModelConfig(size=SIZE, inputs=len(task.input_names), rank=rank), config, seed=0, progress=False)
    seconds = [row["seconds"] for row in result.history]
    return float(np.median(seconds[1:])), float(seconds[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    report: dict[str, dict[str, float]] = {}
    for key, task, rank in (("rdm_rank1", "rdm", 1), ("dms_rank2", "dms", 2)):
        base = baseline_epoch_seconds(task, rank, args.epochs)
        row = {"baseline_s_per_epoch": base}
        for backend in ("torch", "fast"):
            try:
                seconds, first = ours_epoch_seconds(task, rank, args.epochs, backend)
            except Exception as exc:  # the fast path may be unavailable on this machine
                row[f"{backend}_error"] = str(exc)
                continue
            row[f"{backend}_s_per_epoch"] = seconds
            row[f"{backend}_first_epoch_s"] = first
            row[f"{backend}_speedup"] = base / seconds
        best = min((row[k] for k in ("fast_s_per_epoch", "torch_s_per_epoch") if k in row), default=float("nan"))
        row["ours_s_per_epoch"] = best
        row["speedup"] = base / best
        report[key] = row
    report["threads"] = {"torch": torch.get_num_threads()}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, row in report.items():
            print(key, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})


if __name__ == "__main__":
    main()
