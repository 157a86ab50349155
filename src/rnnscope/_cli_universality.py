"""Commands of the universality study: ``universality`` (train and compare a population of vanilla/gated networks)
and ``import-torch`` (a network trained in plain PyTorch as a run directory). Parse, call, print."""

from __future__ import annotations

import click

from rnnscope._cli_common import emit, json_option, make_task, seed_option, task_option
from rnnscope.errors import RnnscopeError

__all__ = ["universality_command", "import_torch_command"]


def _names(value: str, option: str, allowed: tuple[str, ...]) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if not items or bad:
        raise RnnscopeError(f"{option}: expected a comma-separated list of {', '.join(allowed)}, got {value!r}")
    return items


def _numbers(value: str, option: str, kind: type) -> list:
    try:
        items = [kind(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise RnnscopeError(f"{option}: expected comma-separated numbers, got {value!r}") from None
    if not items:
        raise RnnscopeError(f"{option}: expected comma-separated numbers, got {value!r}")
    return items


@click.command("universality")
@click.option("--task", required=True, help="The task every network is trained on (e.g. flipflop).")
@task_option
@click.option("--architectures", default="vanilla,ugrnn,gru,lstm", show_default=True,
              help="Cells: vanilla, ugrnn, gru, lstm.")
@click.option("--activations", default="tanh,relu", show_default=True, help="Nonlinearities: tanh, relu.")
@click.option("--sizes", default="64,128", show_default=True, help="Network sizes N.")
@click.option("--l2", "l2", default="1e-4", show_default=True, help="L2 penalties on the weights.")
@click.option("--grid", type=click.Choice(["paper"]), default=None,
              help="paper: 4 cells x 2 activations x sizes 64, 128, 256 x L2 1e-5..1e-2 (96 configurations); "
                   "overrides --architectures/--activations/--sizes/--l2.")
@click.option("--seeds", type=click.IntRange(1, 10_000), default=5, show_default=True,
              help="Networks per configuration (seeds SEED, SEED+1, ...).")
@seed_option
@click.option("--epochs", type=click.IntRange(1), default=40, show_default=True, help="Most epochs per network.")
@click.option("--steps", type=click.IntRange(1), default=25, show_default=True, help="Adam steps per epoch.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Trials per step.")
@click.option("--lr", type=float, default=1e-2, show_default=True, help="Adam learning rate.")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes training networks in parallel (CPU).")
@click.option("--device", default="cpu", show_default=True, help="cpu, or cuda[:N] to train stacks of networks.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory of the study (networks/, table.csv, figures); rerun to resume.")
@json_option
def universality_command(task, task_options, architectures, activations, sizes, l2, grid, seeds, seed, epochs, steps,
                         batch_size, lr, workers, device, out, as_json) -> None:
    """Train a population of vanilla/UGRNN/GRU/LSTM networks and compare their geometry and topology
    (Maheswaranathan et al. 2019)."""
    from rnnscope.models import ACTIVATIONS, CELLS
    from rnnscope.sweep import SweepTraining, grid_configs, paper_grid, universality_study

    the_task = make_task(task, task_options)
    if grid == "paper":
        configs = paper_grid(the_task)
    else:
        configs = grid_configs(the_task, architectures=_names(architectures, "--architectures", CELLS),
                               activations=_names(activations, "--activations", ACTIVATIONS),
                               sizes=_numbers(sizes, "--sizes", int), l2=_numbers(l2, "--l2", float))
    training = SweepTraining(epochs=epochs, steps_per_epoch=steps, trials=batch_size, lr=lr)
    study = universality_study(configs, the_task, [seed + k for k in range(seeds)], out=out, training=training,
                               workers=workers, device=device, rng=seed, progress=not as_json)

    def text(d) -> str:
        lines = [f"{'architecture':<12} {'act':<5} {'size':>5} {'l2':>8} {'seed':>5} {'accuracy':>9}  signature"]
        for n in d["networks"]:
            lines.append(f"{n['architecture']:<12} {n['activation']:<5} {n['size']:>5} {n['l2']:>8.0e} {n['seed']:>5} "
                         f"{n['accuracy']:>9.4f}  {n['signature']}")
        lines.append(f"wrote {', '.join(d['files'])}")
        return "\n".join(lines)

    emit(study.to_dict(), as_json, text)


@click.command("import-torch")
@click.argument("file")
@click.option("--cell", required=True, type=click.Choice(["gru", "lstm", "rnn"]), help="The torch.nn module.")
@click.option("--activation", type=click.Choice(["tanh", "relu"]), default="tanh", show_default=True,
              help="The nonlinearity of a torch.nn.RNN (GRU and LSTM are tanh).")
@click.option("--task", required=True, help="The task the network solves.")
@task_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@json_option
def import_torch_command(file, cell, activation, task, task_options, out, as_json) -> None:
    """Convert a PyTorch state_dict (one-layer torch.nn.GRU/LSTM/RNN + Linear readout) into a run directory.

    The file is read with torch.load(weights_only=True): tensors only, never pickled objects."""
    from rnnscope import io

    run = io.import_torch(file, cell=cell, task=make_task(task, task_options), out=out, activation=activation)
    emit(run.to_dict(), as_json, lambda d: f"imported {d['kind']} network (size {d['size']}) -> {d['path']}")
