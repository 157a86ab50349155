"""The ``rnnscope`` command: parse, call one API function, print text or JSON, save figures. Nothing else."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from rnnscope.errors import RnnscopeError

__all__ = ["main", "cli"]


def _emit(data: dict[str, Any], as_json: bool, text: Callable[[dict[str, Any]], str]) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text(data))


def _task_options(task: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    from rnnscope.tasks import parse_options

    return parse_options(task, pairs)


json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
task_option = click.option(
    "--task-option", "task_options", multiple=True, metavar="NAME=VALUE",
    help="A task parameter (repeatable); names as listed by 'rnnscope tasks --json'.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnscope")
def cli() -> None:
    """Train recurrent networks on cognitive tasks and reverse-engineer how they compute."""


@cli.command("tasks")
@json_option
def tasks_command(as_json: bool) -> None:
    """List the built-in tasks with their inputs, outputs and parameters."""
    from rnnscope.tasks import list_tasks

    listing = list_tasks()
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for task in listing:
        click.echo(f"{task['name']:8s} {task['description']} (inputs: {', '.join(task['inputs'])})")


@cli.command("train")
@click.option("--task", required=True, help="Task name (see 'rnnscope tasks') or module:Class.")
@task_option
@click.option("--rank", type=int, default=1, show_default=True, help="Rank of the connectivity.")
@click.option("--full-rank", is_flag=True, help="Train a full-rank network instead.")
@click.option("--size", type=int, default=512, show_default=True, help="Number of neurons N.")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lr", type=float, default=1e-2, show_default=True, help="Adam learning rate.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--train-trials", type=int, default=800, show_default=True, help="Size of the training set.")
@click.option("--noise-std", type=float, default=0.05, show_default=True, help="Private noise of each neuron.")
@click.option("--target-accuracy", type=float, default=None, help="Stop once validation accuracy reaches this.")
@click.option("--backend", type=click.Choice(["auto", "torch", "fast"]), default="auto", show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N] (cuda uses the PyTorch path).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def train_command(task, task_options, rank, full_rank, size, epochs, seed, lr, batch_size, train_trials, noise_std,
                  target_accuracy, backend, device, out, resume, quiet, as_json) -> None:
    """Train a network on a task and write a run directory."""
    from rnnscope.models import ModelConfig
    from rnnscope.tasks import make_task
    from rnnscope.training import TrainingConfig, train

    the_task = make_task(task, _task_options(task, task_options))
    model = ModelConfig(size=size, inputs=len(the_task.input_names), outputs=len(the_task.output_names),
                        rank=None if full_rank else rank, noise_std=noise_std)
    config = TrainingConfig(epochs=epochs, lr=lr, batch_size=batch_size, train_trials=train_trials,
                            target_accuracy=target_accuracy, backend=backend, device=device)
    result = train(the_task, model, config, seed=seed, out=out, resume=resume, progress=not quiet)
    summary = result.to_dict()
    _emit(summary, as_json, lambda d: (
        f"trained {d['epochs']} epochs; best epoch {d['best_epoch']}: validation accuracy "
        f"{d['validation_accuracy']:.3f}, loss {d['validation_loss']:.4f}\nrun directory: {d['path']}"))


@cli.command("evaluate")
@click.argument("run")
@click.option("--trials", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@task_option
@click.option("--no-noise", is_flag=True, help="Simulate without the private noise.")
@json_option
def evaluate_command(run, trials, seed, task_options, no_noise, as_json) -> None:
    """Accuracy and loss of a run's network on fresh trials, overall and per condition."""
    from rnnscope import io
    from rnnscope._validation import as_generator
    from rnnscope.tasks import make_task
    from rnnscope.training import evaluate

    loaded = io.load_run(run)
    task = loaded.task
    if task_options:
        stored = loaded.config["task"]
        task = make_task(stored["name"], {**stored.get("options", {}), **_task_options(stored["name"], task_options)})
    result = evaluate(loaded.model, task, trials=trials, rng=as_generator(seed), noise=not no_noise)
    _emit(result.to_dict(), as_json, lambda d: f"accuracy {d['accuracy']:.4f}  loss {d['loss']:.5f}  ({d['trials']} trials)")


@cli.command("import-reference")
@click.argument("file")
@click.option("--task", required=True, help="The task the network solves.")
@task_option
@click.option("--noise-std", type=float, default=0.05, show_default=True, help="Private noise of the network.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@json_option
def import_reference_command(file, task, task_options, noise_std, out, as_json) -> None:
    """Convert a PyTorch state_dict of Dubreuil, Valente et al. 2022 into a run directory."""
    from rnnscope import io
    from rnnscope.models import model_from_weights
    from rnnscope.tasks import make_task, task_spec

    the_task = make_task(task, _task_options(task, task_options))
    weights = io.load_reference(file, noise_std=noise_std)
    if weights.inputs != len(the_task.input_names):
        raise RnnscopeError(f"{file}: the network has {weights.inputs} inputs, task {task!r} has {len(the_task.input_names)}")
    if Path(out, io.CONFIG_NAME).exists():
        raise RnnscopeError(f"{out}: already holds a run; choose another --out")
    digest = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    model = model_from_weights(weights)
    io.save_model_run(out, model, task_spec(the_task), {"source": {"file": str(file), "sha256": digest}, "seed": 0})
    info = {"path": str(out), "kind": model.config.kind, "size": model.config.size, "rank": model.config.rank,
            "inputs": model.config.inputs, "outputs": model.config.outputs, "noise_std": noise_std, "task": task}
    _emit(info, as_json, lambda d: f"imported {d['kind']} network (size {d['size']}, rank {d['rank']}) -> {d['path']}")


def _low_rank(run_dir: str):
    from rnnscope import io
    from rnnscope.models import LowRankWeights

    run = io.load_run(run_dir)
    weights = run.model.weights()
    if not isinstance(weights, LowRankWeights):
        raise RnnscopeError(f"{run_dir}: a full-rank network; latent analysis needs a low-rank one")
    return run, weights


def _constant_inputs(pairs: tuple[str, ...], inputs: int):
    """``("0=0.5", ...)`` -> a dense (inputs,) array."""
    import numpy as np

    values = np.zeros(inputs)
    for pair in pairs:
        index, sep, value = pair.partition("=")
        try:
            i, v = int(index), float(value)
        except ValueError:
            raise RnnscopeError(f"--input: expected INDEX=VALUE, got {pair!r}") from None
        if not sep or not 0 <= i < inputs:
            raise RnnscopeError(f"--input: index must be in 0..{inputs - 1}, got {pair!r}")
        values[i] = v
    return values


input_option = click.option("--input", "input_pairs", multiple=True, metavar="INDEX=VALUE",
                            help="A constant input on channel INDEX (repeatable); others are 0.")


@cli.command("analyze")
@click.argument("run")
@click.option("--trials", type=int, default=200, show_default=True, help="Trials simulated for epoch statistics.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def analyze_command(run, trials, seed, as_json) -> None:
    """Overlaps, effective overlaps per task epoch, fixed points and variance explained by span(M, W_in)."""
    from rnnscope.analysis import analyze_on_task

    loaded, weights = _low_rank(run)
    result = analyze_on_task(weights, loaded.task, trials=trials, rng=seed).to_dict()

    def text(d):
        lines = [f"rank {d['rank']}, size {d['size']}", f"overlaps n.m/N: {d['overlaps']}",
                 f"input overlaps n.w_in/N: {d['input_overlaps']}",
                 f"variance explained by span(M, W_in): {d['variance_explained']:.3f}",
                 "fixed points without input:"]
        lines += [f"  {p['class']:8s} kappa = {[round(k, 4) for k in p['kappa']]}" for p in d["fixed_points"]]
        lines += [f"effective overlaps, {name}: {eff['overlaps']}" for name, eff in d["effective_overlaps"].items()]
        return "\n".join(lines)

    _emit(result, as_json, text)


@cli.command("fixed-points")
@click.argument("run")
@input_option
@click.option("--mean-field", is_flag=True, help="Use the infinite-size (mean-field) dynamics.")
@click.option("--starts", type=int, default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def fixed_points_command(run, input_pairs, mean_field, starts, seed, as_json) -> None:
    """Fixed points of the latent dynamics with their stability, and ring / limit-cycle flags."""
    from rnnscope.analysis import find_fixed_points

    _, weights = _low_rank(run)
    result = find_fixed_points(weights, inputs=_constant_inputs(input_pairs, weights.inputs), mean_field=mean_field,
                               starts=starts, rng=seed).to_dict()

    def text(d):
        lines = [f"{p['class']:8s} kappa = {[round(k, 4) for k in p['kappa']]}" for p in d["fixed_points"]]
        return "\n".join(lines + [f"ring attractor: {d['ring']}", f"limit cycle: {d['limit_cycle']}"])

    _emit(result, as_json, text)


@cli.command("flow")
@click.argument("run")
@input_option
@click.option("--mean-field", is_flag=True, help="Use the infinite-size (mean-field) dynamics.")
@click.option("--resolution", type=int, default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", required=True, help="Figure file (.png, .svg or .pdf).")
def flow_command(run, input_pairs, mean_field, resolution, seed, out) -> None:
    """Draw the latent flow field with its fixed points."""
    from rnnscope import io
    from rnnscope.analysis import find_fixed_points, flow_field
    from rnnscope.plots import plot_flow_field

    _, weights = _low_rank(run)
    inputs = _constant_inputs(input_pairs, weights.inputs)
    points = find_fixed_points(weights, inputs=inputs, mean_field=mean_field, rng=seed)
    field = flow_field(weights, inputs=inputs, mean_field=mean_field, resolution=resolution)
    io.save_figure(plot_flow_field(field, points), out)
    click.echo(f"flow field -> {out}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: every bad input ends with one line on stderr and exit code 2."""
    try:
        cli.main(args=argv, prog_name="rnnscope", standalone_mode=False)
    except RnnscopeError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("error: interrupted (completed epochs are checkpointed; rerun with --resume)", err=True)
        return 130
    return 0


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
