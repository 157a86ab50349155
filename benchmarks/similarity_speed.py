"""Time of the pairwise distance matrix of 100 networks (sizes 64..256, 500 conditions x time points) per metric,
with the per-network preprocessing (centring, SVD, whitening) done once and only the alignment per pair.

The networks are synthetic trajectories: 10 latent dimensions mixed into each network's units through tanh plus
private noise, so SVCCA has a meaningful 99 % cut. Also reports the preprocessing's share and, for a few pairs,
the time of the naive route (``metric.fit_score`` per pair) extrapolated to all pairs.

    python benchmarks/similarity_speed.py --json              # BLAS limited to one thread (the default)
    python benchmarks/similarity_speed.py --json --threads 0  # BLAS as configured

Per-pair matrices are small (at most 256 x 256), and multithreaded BLAS on them is slower than one thread on a
shared machine (we measured a 256 x 256 singular-value decomposition at 6 ms on one thread and 460 ms with the
default threads on 2 busy cores), so the benchmark limits BLAS to ``--threads`` through threadpoolctl.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

from rnnscope.analysis._similarity import (
    CCADistance,
    LinearCKADistance,
    ProcrustesDistance,
    PWCCADistance,
    ShapeMetric,
    SVCCADistance,
    pairwise_distances,
)

METRICS = {
    "cca": CCADistance(),
    "svcca": SVCCADistance(),
    "pwcca": PWCCADistance(),
    "shape_alpha0.5_angular": ShapeMetric(alpha=0.5),
    "procrustes_euclidean": ProcrustesDistance(),
    "linear_cka": LinearCKADistance(),
}


def make_networks(count: int, conditions: int, *, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` arrays (conditions, size) with size uniform in 64..256."""
    latent = rng.standard_normal((conditions, 10))
    networks = []
    for _ in range(count):
        size = int(rng.integers(64, 257))
        mixing = rng.standard_normal((10, size)) / np.sqrt(10)
        networks.append(np.tanh(latent @ mixing) + 0.1 * rng.standard_normal((conditions, size)))
    return networks


def time_metric(metric, networks: list[np.ndarray], naive_pairs: int) -> dict:
    start = time.perf_counter()
    for i, X in enumerate(networks):
        metric._prepare(X, f"networks[{i}]")
    prepare = time.perf_counter() - start
    start = time.perf_counter()
    distances = pairwise_distances(networks, metric)
    total = time.perf_counter() - start
    n = len(networks)
    pairs = n * (n - 1) // 2
    start = time.perf_counter()
    for k in range(naive_pairs):
        metric.fit_score(networks[k], networks[k + 1])
    naive = (time.perf_counter() - start) / naive_pairs * pairs
    return {
        "seconds": total,
        "seconds_preprocessing": prepare,
        "pairs": pairs,
        "ms_per_pair": 1000 * (total - prepare) / pairs,
        "naive_seconds_estimate": naive,
        "mean_distance": float(distances[np.triu_indices(n, 1)].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the timings as JSON")
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--conditions", type=int, default=500)
    parser.add_argument("--metrics", nargs="*", default=list(METRICS), choices=list(METRICS))
    parser.add_argument("--naive-pairs", type=int, default=5, help="pairs timed through fit_score for the estimate")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (0: leave as configured)")
    args = parser.parse_args()
    networks = make_networks(args.networks, args.conditions, rng=np.random.default_rng(0))
    with threadpool_limits(limits=args.threads if args.threads > 0 else None):
        timings = {name: time_metric(METRICS[name], networks, args.naive_pairs) for name in args.metrics}
    results = {
        "networks": args.networks,
        "conditions": args.conditions,
        "sizes": [int(X.shape[1]) for X in networks],
        "blas_threads": args.threads if args.threads > 0 else "default",
        "metrics": timings,
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, entry in results["metrics"].items():
            print(f"{name:24s} {entry['seconds']:7.2f} s ({entry['ms_per_pair']:.2f} ms/pair; naive about "
                  f"{entry['naive_seconds_estimate']:.0f} s)")


if __name__ == "__main__":
    main()
