"""Regenerate the small networks the tests ship with: run from the repository root,

    .venv/bin/python tests/data/make.py

Each network is trained by rnnscope's own CLI with a fixed seed (about a minute in all on 2 cores), and only
config.json and weights.safetensors are kept. Existing directories are replaced. The tests assert facts measured
on these files (see tests/data/README.md): after regenerating, run the tests that use them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RNNSCOPE = Path(sys.executable).with_name("rnnscope")

# name: arguments of `rnnscope train`
NETWORKS = {
    "rdm_rank1_128": ["--task", "rdm", "--rank", "1", "--size", "128", "--epochs", "20", "--seed", "0"],
    "mante_rank1_256": ["--task", "mante", "--rank", "1", "--size", "256", "--epochs", "40", "--seed", "0"],
    "rdm_full_64": ["--task", "rdm", "--full-rank", "--size", "64", "--epochs", "20", "--seed", "0"],
}
KEEP = {"config.json", "weights.safetensors"}


def make(name: str, arguments: list[str]) -> None:
    out = HERE / name
    if out.exists():
        shutil.rmtree(out)
    subprocess.run([str(RNNSCOPE), "train", *arguments, "--quiet", "--out", str(out)], check=True)
    for path in out.iterdir():
        if path.name not in KEEP:
            path.unlink()


def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(NETWORKS))
    if unknown:
        raise SystemExit(f"unknown network(s) {', '.join(unknown)}; known: {', '.join(NETWORKS)}")
    for name in names or NETWORKS:
        make(name, NETWORKS[name])


if __name__ == "__main__":
    main(sys.argv[1:])
