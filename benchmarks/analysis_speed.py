"""Time of the latent analysis: a 50 x 50 flow field plus fixed points from 100 starts (ring and limit-cycle
checks included), for a Gaussian rank-2 network of N = 512 and for the reference network romo_rank2_500.pt.

Target (issue 4): <= 1 s each on one core. Run with ``OMP_NUM_THREADS=1`` for a one-core number:

    OMP_NUM_THREADS=1 python benchmarks/analysis_speed.py --json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rnnscope.analysis._fixedpoints import find_fixed_points
from rnnscope.analysis._latent import flow_field
from rnnscope.io._reference import load_reference
from rnnscope.models import LowRankWeights

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def gaussian_rank2(size: int, *, rng: np.random.Generator) -> LowRankWeights:
    sigma = np.array([[2.5, 0.0], [0.5, 1.5]])
    m = rng.standard_normal((size, 2))
    n = m @ sigma.T + rng.standard_normal((size, 2))
    return LowRankWeights(m=m, n=n, w_in=np.zeros((size, 1)), w_out=np.ones((size, 1)), h0=np.zeros(size))


def time_analysis(weights: LowRankWeights, repeats: int) -> dict:
    times = []
    for repeat in range(repeats):
        start = time.perf_counter()
        flow_field(weights, resolution=50)
        result = find_fixed_points(weights, starts=100, rng=repeat)
        times.append(time.perf_counter() - start)
    return {
        "seconds_min": min(times),
        "seconds_median": float(np.median(times)),
        "fixed_points": len(result.fixed_points),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the timings as JSON")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {"gaussian_rank2_512": time_analysis(gaussian_rank2(512, rng=np.random.default_rng(0)), args.repeats)}
    romo = REFERENCE / "romo_rank2_500.pt"
    if romo.is_file():
        results["romo_rank2_500"] = time_analysis(load_reference(romo, noise_std=0.005), args.repeats)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, entry in results.items():
            print(f"{name}: {entry['seconds_min']:.3f} s (min of {args.repeats}), {entry['fixed_points']} fixed points")


if __name__ == "__main__":
    main()
