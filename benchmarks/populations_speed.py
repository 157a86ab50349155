"""Speed of the population analyses (issue 5).

1. ePAIRS on N = 512 points (mante_lr_fig1's (m, n, w_in), 6 dimensions) with 500 null draws; target <= 0.5 s on
   one core. The first call compiles the kernel (cached on disk afterwards) and is reported separately.
2. Resampling 20 networks of N = 4096 from mante_rank1_4096's single Gaussian and evaluating them on 500
   context-dependent trials (cue amplitude 0.5) in one batched simulation; target <= 10 s.

    OMP_NUM_THREADS=1 python benchmarks/populations_speed.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from rnnscope.analysis import PopulationModel, evaluate_networks, loadings
from rnnscope.analysis._epairs import epairs
from rnnscope.io._reference import load_reference
from rnnscope.tasks import ContextDependent

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def bench_epairs(repeats: int) -> dict:
    points, _ = loadings(load_reference(REFERENCE / "mante_lr_fig1.pt")).select(("m", "n", "w_in"))
    start = time.perf_counter()
    epairs(points[:20], rng=0, draws=2)  # compile (or load the cached kernel)
    first = time.perf_counter() - start
    times = []
    for repeat in range(repeats):
        start = time.perf_counter()
        result = epairs(points, rng=repeat, draws=500)
        times.append(time.perf_counter() - start)
    return {"size": int(points.shape[0]), "dims": int(points.shape[1]), "draws": 500, "first_call_s": first,
            "seconds": times, "best_s": min(times), "c": result.c, "p_value": result.p_value, "target_s": 0.5}


def bench_resampling(networks: int, trials: int, size: int, device: str) -> dict:
    weights = load_reference(REFERENCE / "mante_rank1_4096.pt")
    rng = np.random.default_rng(0)
    batch_trials = ContextDependent(cue_amplitude=0.5).sample(trials, rng=rng)
    start = time.perf_counter()
    model = PopulationModel.from_weights(weights)
    batch = model.sample_many(networks, size, rng=rng, zero_mean=True)
    sampled = time.perf_counter()
    result = evaluate_networks(batch, batch_trials, rng=rng, device=device)
    done = time.perf_counter()
    return {"networks": networks, "size": size, "trials": trials, "steps": int(batch_trials.steps), "device": device,
            "sample_s": sampled - start, "simulate_s": done - sampled, "total_s": done - start,
            "mean_accuracy": result.mean, "target_s": 10.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--networks", type=int, default=20)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    out = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "load_average": list(os.getloadavg())},
        "epairs": bench_epairs(args.repeats),
        "resampling": bench_resampling(args.networks, args.trials, args.size, args.device),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        e, r = out["epairs"], out["resampling"]
        print(f"ePAIRS N={e['size']} x {e['draws']} draws: {e['best_s']:.3f} s (target {e['target_s']} s)")
        print(f"resampling {r['networks']} x N={r['size']} on {r['trials']} trials: {r['total_s']:.1f} s "
              f"(target {r['target_s']} s), mean accuracy {r['mean_accuracy']:.3f}")


if __name__ == "__main__":
    main()
