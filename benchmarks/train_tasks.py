"""Train every task of the paper from the command line, with default options (its recipe), and report accuracy
on fresh trials, epochs and wall time.

    python benchmarks/train_tasks.py --json                       # rdm raposo mante romo dms, seed 0, N = 512
    python benchmarks/train_tasks.py --tasks mante --seeds 0 1 2 --extra=--full-rank --json
"""

from __future__ import annotations

import argparse
import contextlib
import io as io_text
import json
import tempfile
import time
from pathlib import Path

from rnnscope import io
from rnnscope.cli import main as cli_main
from rnnscope.training import evaluate


def run(task: str, seed: int, size: int, recipe: str, extra: list[str], directory: Path) -> dict:
    out = directory / f"{task}-{recipe}-{seed}"
    began = time.perf_counter()
    with contextlib.redirect_stdout(io_text.StringIO()):  # the command's own summary: the row below says it
        code = cli_main(["train", "--task", task, "--size", str(size), "--seed", str(seed), "--recipe", recipe,
                        "--out", str(out), "--quiet", "--json", *extra])
    seconds = time.perf_counter() - began
    if code != 0:
        return {"task": task, "seed": seed, "error": code, "train_s": seconds}
    loaded = io.load_run(out)
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    accuracy = evaluate(loaded.model, loaded.task, trials=1000, rng=seed + 1000).accuracy
    return {"task": task, "seed": seed, "recipe": recipe, "size": size, "extra": " ".join(extra),
            "epochs": len(history), "train_s": round(seconds, 1), "accuracy": accuracy,
            "validation_accuracy": max((r["validation_accuracy"] for r in history), default=None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["rdm", "raposo", "mante", "romo", "dms"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--recipe", default="paper")
    parser.add_argument("--extra", default="", help="more train options, e.g. --extra=--full-rank")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for task in args.tasks:
            for seed in args.seeds:
                row = run(task, seed, args.size, args.recipe, args.extra.split(), Path(directory))
                rows.append(row)
                print(json.dumps(row) if args.json else row, flush=True)


if __name__ == "__main__":
    main()
