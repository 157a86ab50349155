"""Wall time of the full ``rnnscope demo`` (or ``--quick``), with the population finding it shows.

    .venv/bin/python benchmarks/demo_time.py [--quick] [--out DIR] [--json]

Records the seconds of each stage (training each network, analysing and writing each report, the comparison),
the training path used, and the mean accuracy of networks resampled from one Gaussian and from two populations.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the reduced CI demo")
    parser.add_argument("--out", default=None, help="demo directory (default: a fresh temporary directory)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = parser.parse_args(argv)

    from rnnscope.report._demo import demo

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="rnnscope-demo-"))
    began = time.perf_counter()
    result = demo(out, quick=args.quick, rng=args.seed, progress=not args.json)
    wall = time.perf_counter() - began
    record = {
        "wall_seconds": wall,
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        **result.to_dict(),
    }
    mante = result.populations.get("mante", {})
    one, two = mante.get("one_gaussian"), mante.get("two_populations")
    record["finding_shown"] = bool(one is not None and two is not None and one < 0.85 and two >= 0.9)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(f"demo ({'quick' if args.quick else 'full'}): {wall:.1f} s wall in {out}")
        for stage, seconds in result.seconds.items():
            print(f"  {stage:16s} {seconds:7.1f} s")
        for name, accs in result.populations.items():
            print(f"  {name}: trained {accs['trained']}, one Gaussian {accs['one_gaussian']}, "
                  f"two populations {accs['two_populations']}")
        print(f"  paper's finding shown (mante: one Gaussian < 0.85, two populations >= 0.9): {record['finding_shown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
