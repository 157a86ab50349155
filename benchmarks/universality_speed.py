"""Seconds per trained network of the universality study, ours against torch.nn's own cells trained one by one.

For each architecture at each size: the time of a fixed number of Adam steps (flip-flop, batch of ``--trials``
trials of ``--steps-per-trial`` steps) through ``rnnscope.sweep.train_network``'s model (GatedRNN: PyTorch's fused
module for GRU/LSTM/vanilla-tanh/relu, our loop for the UGRNN and relu gated cells) and through a bare
``torch.nn.GRU/LSTM/RNN`` + Linear with a hand-written loop (the reference; the UGRNN has none). Then the estimated
wall time of the reduced study (4 architectures x 2 activations x sizes 64, 128 x 5 seeds) and of the paper grid
(96 configurations x 5 seeds) on this machine with ``--workers`` processes, assuming ``--steps-to-criterion`` steps
per network.

    .venv/bin/python benchmarks/universality_speed.py --json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from rnnscope.models import GatedConfig, GatedRNN
from rnnscope.sweep import PAPER_L2, PAPER_SIZES
from rnnscope.tasks import make_task
from rnnscope.training import masked_mse_loss

TORCH = {"vanilla": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}


def _time_steps(step, repeats: int) -> float:
    step()  # warm-up
    began = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - began) / repeats


def measure(cell: str, activation: str, size: int, batch, repeats: int) -> dict:
    inputs, targets, mask = (torch.from_numpy(a) for a in (batch.inputs, batch.targets, batch.mask))
    config = GatedConfig(cell=cell, size=size, inputs=3, outputs=3, activation=activation, l2=1e-4)
    model = GatedRNN(config, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def ours() -> None:
        opt.zero_grad()
        (masked_mse_loss(model(inputs), targets, mask) + model.l2_penalty()).backward()
        opt.step()

    row = {"cell": cell, "activation": activation, "size": size, "fused": config.fused,
           "ours_step_s": _time_steps(ours, repeats)}
    if cell in TORCH and (cell == "vanilla" or activation == "tanh"):
        kwargs = {"nonlinearity": activation} if cell == "vanilla" else {}
        rnn = TORCH[cell](3, size, batch_first=True, **kwargs)
        readout = torch.nn.Linear(size, 3)
        params = list(rnn.parameters()) + list(readout.parameters())
        ref_opt = torch.optim.Adam(params, lr=1e-3)

        def reference() -> None:
            ref_opt.zero_grad()
            loss = masked_mse_loss(readout(rnn(inputs)[0]), targets, mask)
            (loss + 1e-4 * sum(p.pow(2).sum() for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, readout.weight))).backward()
            ref_opt.step()

        row["torch_step_s"] = _time_steps(reference, repeats)
        row["ratio"] = row["ours_step_s"] / row["torch_step_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64", help="comma-separated sizes (64,128)")
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--steps-per-trial", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps-to-criterion", type=int, default=1000,
                        help="Adam steps a network needs to reach criterion (for the estimates)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a worker process
    task = make_task("flipflop", {"trial_ms": 20.0 * args.steps_per_trial})
    batch = task.sample(args.trials, rng=np.random.default_rng(0))
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [measure(cell, activation, size, batch, args.repeats) for size in sizes
            for cell in ("vanilla", "ugrnn", "gru", "lstm") for activation in ("tanh", "relu")]
    for row in rows:
        row["seconds_per_network"] = row["ours_step_s"] * args.steps_to_criterion
    per = {(r["cell"], r["activation"], r["size"]): r["seconds_per_network"] for r in rows}
    reduced = sum(per[(c, a, n)] for (c, a, n) in per if n in (64, 128)) * 5 / args.workers
    # paper grid: sizes we did not measure are scaled by the measured cost of the largest size, x (n / n_max)^2
    largest = max(sizes)
    paper = sum(per[(c, a, largest)] * max(1.0, (n / largest) ** 2)
                for c in ("vanilla", "ugrnn", "gru", "lstm") for a in ("tanh", "relu") for n in PAPER_SIZES)
    paper *= len(PAPER_L2) * 5 / args.workers
    result = {"trials": args.trials, "steps_per_trial": args.steps_per_trial, "steps_to_criterion":
              args.steps_to_criterion, "workers": args.workers, "rows": rows,
              "reduced_study_hours": reduced / 3600 if all(n in sizes for n in (64, 128)) else None,
              "reduced_study_hours_sizes_measured": reduced / 3600, "paper_grid_hours": paper / 3600}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for r in rows:
            print(f"{r['cell']:<8} {r['activation']:<5} {r['size']:>4}  ours {r['ours_step_s'] * 1e3:7.1f} ms/step  "
                  f"torch {r.get('torch_step_s', float('nan')) * 1e3:7.1f}  ratio {r.get('ratio', float('nan')):.2f}")
        print(f"paper grid: {result['paper_grid_hours']:.1f} h on {args.workers} workers")


if __name__ == "__main__":
    main()
