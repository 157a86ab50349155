"""Time and convergence of the state-space fixed-point finder on the flip-flop test networks
(tests/data/universality: GRU, LSTM, tanh RNN of 64 units; gru_128 when made with ``make.py gru_128``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fixedpoint_speed.py --json

Per network: seconds of ``find_state_fixed_points`` (256 trajectory starts + structured starts), the fraction of
trajectory starts and of all starts certified, the counts per class, and the status of the other starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from rnnscope.analysis._state_fixedpoints import find_state_fixed_points
from rnnscope.errors import ConvergenceWarning

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "universality"


def measure(name: str, starts: int, max_iter: int, seed: int) -> dict:
    sys.path.insert(0, str(DATA))
    from networks import load

    net = load(name)
    begin = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = find_state_fixed_points(
            net.map,
            np.zeros(3),
            states=net.states,
            rng=seed,
            starts=starts,
            max_iter=max_iter,
            lower=net.lower,
            upper=net.upper,
        )
    seconds = time.perf_counter() - begin
    return {
        "network": name,
        "seconds": round(seconds, 2),
        "starts": len(result.starts),
        "certified_fraction_trajectory": result.converged_fraction("trajectory"),
        "certified_fraction_all": result.converged_fraction(),
        "status": result.status_counts(),
        "counts": result.fixed_points.counts(),
        "slow_points": len(result.slow_points),
        "median_iterations": float(np.median(result.iterations)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    parser.add_argument("--networks", nargs="*", default=["gru_64", "lstm_64", "rnn_64", "gru_128"])
    parser.add_argument("--starts", type=int, default=256)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [
        measure(n, args.starts, args.max_iter, args.seed) for n in args.networks if (DATA / f"{n}.safetensors").exists()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(
                f"{row['network']:>8}  {row['seconds']:7.1f} s  certified {row['certified_fraction_trajectory']:.2f}"
                f" (all {row['certified_fraction_all']:.2f})  {row['counts']}  {row['status']}"
            )


if __name__ == "__main__":
    main()
