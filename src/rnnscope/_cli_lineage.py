"""The ``minimal-rank`` command: truncate a full-rank run to ranks 1..R, retrain each, and report the smallest rank
that matches the network (of one run, or of each run of a group with the aggregate). Parse, call
``rnnscope.training.minimal_rank``, print."""

from __future__ import annotations

import click

from rnnscope._cli_common import allow_task_option, emit_runs, json_option, seed_option

__all__ = ["minimal_rank_command"]


@click.command("minimal-rank")
@click.argument("run")
@allow_task_option
@click.option("--max-rank", type=click.IntRange(1), default=5, show_default=True, help="Try ranks 1..R.")
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True,
              help="Most retraining epochs per rank (stopped once validation reaches the full network's accuracy); a "
                   "task whose recipe is a curriculum (dms) retrains through the recipe's stages instead.")
@click.option("--whole-j", is_flag=True,
              help="Truncate J itself instead of the learnt change J - J0 (for imported networks, which have no J0).")
@click.option("--trials", type=click.IntRange(1), default=500, show_default=True, help="Test trials.")
@click.option("--tolerance", type=float, default=0.02, show_default=True,
              help="A rank suffices within this much of the full network's accuracy.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N] for the retraining.")
@seed_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def minimal_rank_command(run, max_rank, epochs, whole_j, trials, tolerance, device, seed, quiet, as_json) -> None:
    """The smallest rank a full-rank network's task needs: truncate, retrain, compare (Dubreuil, Valente et al.)."""
    from rnnscope.training import minimal_rank

    def one(path: str) -> dict:
        return minimal_rank(path, max_rank=max_rank, epochs=epochs, truncate_delta=not whole_j, device=device,
                            trials=trials, tolerance=tolerance, rng=seed, progress=not (quiet or as_json)).to_dict()

    emit_runs(run, one, as_json, lambda d: "\n".join(
        [f"full network: {d['full_accuracy']:.3f}   (truncating {d['of']}, retrained up to {d['epochs']} epochs"
         + (f" in {len(d['retraining'])} stages)" if len(d["retraining"]) > 1 else ")")]
        + [f"rank {r}: retrained {a:.3f}  truncated {t:.3f}"
           for r, a, t in zip(d["ranks"], d["accuracy"], d["truncated_accuracy"], strict=True)]
        + [f"minimal rank (within {d['tolerance']}): {d['needed']}"]),
        lambda d: {"full_accuracy": d["full_accuracy"], "needed": d["needed"]})
