"""ePAIRS on recordings: false-positive rate on one Gaussian cloud of selectivity, power on clustered clouds as a
function of cluster separation and number of neurons, through the whole pipeline (synthetic recordings ->
cross-validated selectivity -> ePAIRS). Prints markdown tables; both the rank-sum p-value of ``epairs`` and the
Monte-Carlo p-value of ``epairs_resampled_p`` are counted at p < 0.05.

    .venv/bin/python benchmarks/data_epairs_power.py [--datasets 50] [--null-datasets 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnnscope.data import clustered_selectivity, data_epairs, data_selectivity, epairs_resampled_p, synthetic_recordings


def rates(size: int, clusters: int, separation: float, datasets: int, seed: int) -> tuple[float, float]:
    ranksum, resampled = [], []
    for k in range(datasets):
        rng = np.random.default_rng(seed + k)
        space, _ = clustered_selectivity(size, variables=3, clusters=clusters, separation=separation, rng=rng)
        rec = synthetic_recordings(space, trials=120, steps=10, noise_std=2.0, rng=rng)
        result = data_epairs(data_selectivity(rec, rng=rng, splits=4), rng=rng, draws=100)
        ranksum.append(result.p_value < 0.05)
        resampled.append(epairs_resampled_p(result) < 0.05)
    return float(np.mean(ranksum)), float(np.mean(resampled))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=50, help="data sets per power cell")
    parser.add_argument("--null-datasets", type=int, default=200)
    args = parser.parse_args()
    start = time.perf_counter()
    fp = rates(150, 1, 0.0, args.null_datasets, 1000)
    print(f"false-positive rate, one Gaussian cloud, 150 neurons, {args.null_datasets} data sets: "
          f"rank-sum {fp[0]:.3f}, resampled {fp[1]:.3f} ({time.perf_counter() - start:.0f} s)\n")
    for clusters in (2, 3):
        print(f"power, {clusters} clusters (rank-sum / resampled), {args.datasets} data sets per cell")
        separations = (1.0, 1.5, 2.0, 3.0)
        print("| neurons | " + " | ".join(f"sep {s:g}" for s in separations) + " |")
        print("|---|" + "---|" * len(separations))
        for size in (50, 100, 200):
            cells = [rates(size, clusters, s, args.datasets, 7000 + 100 * clusters) for s in separations]
            print(f"| {size} | " + " | ".join(f"{a:.2f} / {b:.2f}" for a, b in cells) + " |")
        print()
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
