"""Train the harder tasks to criterion and report accuracy on fresh trials and wall time.

mante rank 1 and romo rank 2 (N = 512), as the slow test does; also rdm rank 1 (N = 128).

    python benchmarks/train_tasks.py --json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from rnnscope.models import ModelConfig
from rnnscope.tasks import make_task
from rnnscope.training import TrainingConfig, evaluate, train

CASES = (  # name, task, rank, size, epochs, train_trials, lr
    ("rdm_rank1", "rdm", 1, 128, 10, 800, 1e-2),
    ("mante_rank1", "mante", 1, 512, 40, 1600, 5e-3),
    ("romo_rank2", "romo", 2, 512, 40, 1600, 5e-3),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = {}
    for name, task_name, rank, size, epochs, trials, lr in CASES:
        task = make_task(task_name)
        began = time.perf_counter()
        result = train(task, ModelConfig(size=size, inputs=len(task.input_names), rank=rank),
                       TrainingConfig(epochs=epochs, train_trials=trials, lr=lr, target_accuracy=0.97),
                       rng=args.seed, progress=False)
        seconds = time.perf_counter() - began
        accuracy = evaluate(result.model, task, trials=1000, rng=np.random.default_rng(args.seed + 1)).accuracy
        report[name] = {"size": size, "rank": rank, "epochs": len(result.history), "train_s": seconds,
                        "accuracy": accuracy, "validation_accuracy": result.validation_accuracy}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, row in report.items():
            print(f"{name}: accuracy {row['accuracy']:.3f} after {row['epochs']} epochs ({row['train_s']:.1f} s)")


if __name__ == "__main__":
    main()
