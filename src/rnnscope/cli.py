"""The ``rnnscope`` command: parse, call one API function, print text or JSON, save figures. Nothing else."""

from __future__ import annotations

import json
import signal
import sys
import threading
import warnings

import click

from rnnscope._cli_analysis import ANALYSIS_COMMANDS
from rnnscope._cli_common import (
    allow_task_option,
    emit,
    json_option,
    make_task,
    seed_option,
    task_option,
)
from rnnscope._cli_data import data_group
from rnnscope._cli_lineage import minimal_rank_command
from rnnscope._cli_perturb import perturb_command
from rnnscope.errors import RnnscopeError

__all__ = ["main", "cli"]



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
@click.option("--recipe", default=None,
              help="paper or fast (the task's built-in recipes; default: the paper's, or ours where the paper's was "
                   "not verified to train here: dms), or a recipe file FILE.json (any task). 'rnnscope tasks --json' "
                   "prints every recipe.")
@click.option("--rank", type=int, default=None, help="Rank of the connectivity [default: the recipe's].")
@click.option("--full-rank", is_flag=True, help="Train a full-rank network (learning rates / sqrt(size)).")
@click.option("--size", type=int, default=512, show_default=True, help="Number of neurons N.")
@click.option("--epochs", type=int, default=None, help="Epochs of every stage [default: the recipe's].")
@seed_option
@click.option("--lr", type=float, default=None, help="Adam learning rate of every stage [default: the recipe's].")
@click.option("--curriculum", default=None, metavar="OPTION=V1,V2,...",
              help="One stage per value of a task option, e.g. delay_max_ms=700,1000,3000 (replaces the recipe's "
                   "stages after full-rank pretraining).")
@click.option("--batch-size", type=int, default=None, help="[default: the recipe's]")
@click.option("--train-trials", type=int, default=None, help="Size of the training set [default: the recipe's].")
@click.option("--noise-std", type=float, default=None, help="Private noise of each neuron [default: the recipe's].")
@click.option("--target-accuracy", type=float, default=None,
              help="Stop once the kept network's validation accuracy reaches this (the last stage's only target).")
@click.option("--backend", type=click.Choice(["auto", "torch", "fast"]), default="auto", show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N] (cuda uses the PyTorch path).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--init-from", type=click.Path(file_okay=False), default=None,
              help="Start from this run's network (recorded in config.json's lineage); the architecture options "
                   "are then the parent's; the recipe's last stage gives the training settings.")
@click.option("--truncate-to", type=int, default=None,
              help="With --init-from: first truncate the full-rank network to this rank (SVD), then retrain.")
@click.option("--truncate-delta", is_flag=True, help="With --truncate-to: truncate the learnt change J - J0, not J.")
@click.option("--ensemble", type=int, default=1, show_default=True,
              help="Train K networks (seeds SEED..SEED+K-1) into OUT/net00, OUT/net01, ...: at once (one batch "
                   "on the fused kernel) for a one-stage recipe, one after another for a curriculum.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def train_command(task, task_options, recipe, rank, full_rank, size, epochs, seed, lr, curriculum, batch_size,
                  train_trials, noise_std, target_accuracy, backend, device, out, resume, init_from, truncate_to,
                  truncate_delta, ensemble, quiet, as_json) -> None:
    """Train a network on a task by its recipe and write a run directory.

    \b
    The recipe (--recipe) sets the rank, which vectors train, the learning rate, epochs, clipping, targets and
    any curriculum or full-rank pretraining; a multi-stage recipe writes OUT/stage0, OUT/stage1, ... and the final
    network in OUT. Options given here override the recipe's. Early stopping keeps the network with the lowest
    validation loss and stops only once that network meets the target.
    """
    from pathlib import Path

    import numpy as np

    from rnnscope import io
    from rnnscope.tasks import load_recipe, parse_options, recipe_for
    from rnnscope.training import (
        TrainingConfig,
        adapt_recipe,
        recipe_plan,
        train_ensemble,
        train_from,
        train_recipe,
    )

    make_task(task, task_options)  # checks the task (a module:Class is imported: the user named it) and its options
    task_options = parse_options(task, task_options)
    base = load_recipe(recipe) if recipe is not None and recipe.endswith(".json") else recipe_for(task, recipe)
    the_recipe = adapt_recipe(base, full_rank=full_rank, rank=rank, lr=lr, epochs=epochs,
                              curriculum=_parse_curriculum(curriculum), target_accuracy=target_accuracy,
                              noise_std=noise_std, batch_size=batch_size, train_trials=train_trials)
    if ensemble != 1:
        if init_from is not None:
            raise RnnscopeError("--init-from: cannot be combined with --ensemble")
        if ensemble < 1 or resume:
            raise RnnscopeError(f"--ensemble: must be >= 1 and cannot be resumed, got {ensemble}")
        model, stages = recipe_plan(task, the_recipe, size=size, task_options=task_options, backend=backend,
                                    device=device)
        config = stages[0].config
        assert isinstance(config, TrainingConfig)
        if len(stages) == 1:
            summary = train_ensemble(stages[0].task, model, config, rng=list(range(seed, seed + ensemble)), out=out,
                                     progress=not quiet).to_dict()
        else:  # a curriculum: one network after another, into the same layout
            io.check_new_run_dir(out)
            results = [train_recipe(task, the_recipe, size=size, rng=seed + k, task_options=task_options,
                                    backend=backend, device=device, out=Path(out) / f"net{k:02d}", progress=not quiet)
                       for k in range(ensemble)]
            summary = {"networks": ensemble, "seeds": list(range(seed, seed + ensemble)),
                       "validation_accuracy": [r.validation_accuracy for r in results],
                       "best_epoch": [r.best_epoch for r in results], "epochs": [len(r.history) for r in results],
                       "converged_epoch": [r.converged_epoch for r in results],
                       "path": str(out), "runs": [str(r.path) for r in results]}
        emit(summary, as_json, lambda d: (
            f"trained {d['networks']} networks; validation accuracy min {min(d['validation_accuracy']):.3f}, "
            f"mean {np.mean(d['validation_accuracy']):.3f}\nrun directories: {d['path']}/net00 ..."))
        return
    if init_from is not None:
        model, stages = recipe_plan(task, the_recipe, size=size, task_options=task_options, backend=backend,
                                    device=device)
        result = train_from(init_from, stages[-1].task, stages[-1].config, rank=truncate_to,
                            truncate_delta=truncate_delta, rng=seed, out=out, resume=resume, progress=not quiet)
    elif truncate_to is not None or truncate_delta:
        raise RnnscopeError("--truncate-to/--truncate-delta: need --init-from RUN")
    else:
        result = train_recipe(task, the_recipe, size=size, rng=seed, task_options=task_options, backend=backend,
                              device=device, out=out, resume=resume, progress=not quiet)
    summary = {**result.to_dict(), "recipe": the_recipe.name, "stages": len(the_recipe.stages)}
    emit(summary, as_json, lambda d: (
        f"trained {d['epochs']} epochs (recipe {d['recipe']}, {d['stages']} stage(s)); best epoch {d['best_epoch']}: "
        f"validation accuracy {d['validation_accuracy']:.3f}, loss {d['validation_loss']:.4f}\n"
        f"run directory: {d['path']}"))


def _parse_curriculum(text: str | None) -> tuple[str, tuple[float, ...]] | None:
    """'delay_max_ms=700,1000,3000' -> ('delay_max_ms', (700.0, 1000.0, 3000.0))."""
    if text is None:
        return None
    name, sep, values = text.partition("=")
    try:
        parsed = tuple(float(v) for v in values.split(",") if v.strip())
    except ValueError:
        parsed = ()
    if not sep or not name.strip() or not parsed:
        raise RnnscopeError(f"--curriculum: expected OPTION=V1,V2,... (numbers), got {text!r}")
    return name.strip(), parsed


@cli.command("evaluate")
@click.argument("run")
@allow_task_option
@click.option("--trials", type=int, default=1000, show_default=True)
@seed_option
@task_option
@click.option("--no-noise", is_flag=True, help="Simulate without the private noise.")
@json_option
def evaluate_command(run, trials, seed, task_options, no_noise, as_json) -> None:
    """Accuracy and loss of a run's network (or of each network of an ensemble or sweep directory, with the
    aggregate) on fresh trials, overall and per condition."""
    from rnnscope import io
    from rnnscope._cli_common import emit_runs
    from rnnscope.training import evaluate

    def one(path: str) -> dict:
        nonlocal task
        loaded = io.load_run(path)
        task = loaded.task
        if task_options:
            stored = loaded.config["task"]
            task = make_task(stored["name"], task_options, stored=stored.get("options", {}))
        return evaluate(loaded.model, task, trials=trials, rng=seed, noise=not no_noise).to_dict()

    task = None

    def text(d):
        from rnnscope.report import value_name

        lines = [f"accuracy {d['accuracy']:.3f}  loss {d['loss']:.4f}  ({d['trials']} trials)"]
        for condition, per in d["per_condition"].items():
            if 1 < len(per) <= 12:
                lines.append(f"  by {condition}: " + ", ".join(
                    f"{value_name(task, condition, v)} {a:.2f}" for v, a in per.items()))
        return "\n".join(lines)

    emit_runs(run, one, as_json, text, lambda d: {"accuracy": d["accuracy"], "loss": d["loss"]})


@cli.command("import-reference")
@click.argument("file")
@click.option("--task", required=True, help="The task the network solves.")
@task_option
@click.option("--noise-std", type=float, default=0.05, show_default=True, help="Private noise of the network.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@json_option
def import_reference_command(file, task, task_options, noise_std, out, as_json) -> None:
    """Convert a PyTorch state_dict of Dubreuil, Valente et al. 2022 into a run directory.

    \b
    The authors' files are in github.com/adrian-valente/populations_paper_code, folder models/. Give each the
    task and options it was trained with:
      rdm_lr_fig2.pt       --task rdm
      raposo_lr_fig1.pt    --task raposo
      mante_lr_fig1.pt     --task mante
      mante_fr_fig1.pt     --task mante            (full rank)
      romo_rank2_500.pt    --task romo --noise-std 0.005
      mante_rank1_4096.pt  --task mante --task-option cue_amplitude=0.5
    With other options a network still imports but fails its task.
    """
    from rnnscope import io

    imported = io.import_reference(file, make_task(task, task_options), out=out, noise_std=noise_std)
    info = imported.to_dict()
    emit(info, as_json, lambda d: f"imported {d['kind']} network (size {d['size']}, rank {d['rank']}) -> {d['path']}")


@cli.command("design")
@click.argument("spec", required=False)
@allow_task_option
@click.option("--list", "list_gallery", is_flag=True, help="List the gallery of ready specifications.")
@click.option("--size", type=int, default=1000, show_default=True, help="Number of neurons N.")
@seed_option
@click.option("--out", type=click.Path(file_okay=False), help="Run directory to write.")
@json_option
def design_command(spec, list_gallery, size, seed, out, as_json) -> None:
    """Build a network from a specification file or a gallery name, without training."""
    from rnnscope import design, io
    from rnnscope.models import model_from_weights

    if list_gallery:
        listing = design.list_gallery()
        if as_json:
            click.echo(json.dumps(listing, indent=2))
        else:
            for entry in listing:
                click.echo(f"{entry['name']:24s} {entry.get('description', '')}")
        return
    if spec is None or out is None:
        raise RnnscopeError("design: give a SPEC (file or gallery name) and --out, or --list")
    io.check_new_run_dir(out)
    built = design.design_network(design.resolve_spec(spec), size, rng=seed)
    io.save_model_run(out, model_from_weights(built.weights), built.task, {"design": built.to_dict(), "seed": seed})
    info = {"path": str(out), **built.to_dict()}
    emit(info, as_json, lambda d: f"designed network (size {size}, seed {seed}) -> {d['path']}")


@cli.command("fit-design")
@click.argument("spec")
@allow_task_option
@click.option("--task", default=None, help="Task to fit on (default: the specification's).")
@task_option
@click.option("--epochs", type=int, default=60, show_default=True)
@click.option("--size", type=int, default=500, show_default=True, help="Size of the resampled networks.")
@seed_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@json_option
def fit_design_command(spec, task, task_options, epochs, size, seed, out, as_json) -> None:
    """Fit the free parameters of a specification on a task, then resample networks from it."""
    from rnnscope import design, io
    from rnnscope.models import model_from_weights
    from rnnscope.tasks import task_spec

    the_spec = design.resolve_spec(spec)
    the_task = make_task(task, task_options) if task else None
    io.check_new_run_dir(out)
    fit = design.fit_design(the_spec, the_task, rng=seed, epochs=epochs, size=size)
    stored_task = task_spec(the_task) if the_task is not None else the_spec.task.to_dict()
    io.save_model_run(out, model_from_weights(fit.network), stored_task, {"design_fit": fit.to_dict(), "seed": seed})
    emit(fit.to_dict(), as_json, lambda d: (
        f"fitted {', '.join(d['free'])}: resampled accuracy {d['mean_accuracy']:.3f} over {len(d['accuracy'])} networks"))


@cli.command("report")
@click.argument("runs", nargs=-1, required=True)
@allow_task_option
@click.option("--compare", "compare_runs", is_flag=True, help="Put several runs side by side in one page.")
@click.option("--out", default=None, help="Report directory (default RUN/report, or rnnscope-comparison).")
@click.option("--quick", is_flag=True, help="Fewer trials and networks: a fast, rougher report.")
@seed_option
@json_option
def report_command(runs, compare_runs, out, quick, seed, as_json) -> None:
    """Write a self-contained HTML report (figures as PNG and SVG, numbers as JSON) for a run, or compare runs."""
    from rnnscope.report import compare, report

    if compare_runs:
        files = compare(list(runs), out=out or "rnnscope-comparison", quick=quick, rng=seed)
    else:
        if len(runs) != 1:
            raise RnnscopeError(f"runs: one run directory without --compare, got {len(runs)}")
        files = report(runs[0], out=out, quick=quick, rng=seed)
    emit(files.to_dict(), as_json, lambda d: f"report -> {d['html']}")


@cli.command("demo")
@click.option("--out", default="rnnscope-demo", show_default=True, help="Directory for runs and reports.")
@click.option("--quick", is_flag=True, help="Small networks and few epochs (a smoke run, tens of seconds).")
@seed_option
@json_option
def demo_command(out, quick, seed, as_json) -> None:
    """Train a random-dots and a context-dependent network, analyse both and write their reports."""
    from rnnscope.report import demo

    result = demo(out, quick=quick, rng=seed, progress=not as_json)

    def text(d):
        lines = [f"reports written under {d['directory']}:"]
        lines += [f"  {name}: {path}" for name, path in d["reports"].items()]
        lines.append(f"  side by side: {d['comparison']}")
        for name, pops in d["populations"].items():
            if pops.get("one_gaussian") is not None:
                two = pops.get("two_populations")
                lines.append(f"  {name}: resampled from one Gaussian {pops['one_gaussian']:.2f}, from two populations "
                             f"{'-' if two is None else f'{two:.2f}'} (trained {pops['trained']:.2f})")
        return "\n".join(lines)

    emit(result.to_dict(), as_json, text)


for command in (*ANALYSIS_COMMANDS, data_group, minimal_rank_command, perturb_command):
    cli.add_command(command)

from rnnscope._cli_universality import import_torch_command, universality_command  # noqa: E402

cli.add_command(universality_command)
from rnnscope._cli_sweep import SWEEP_COMMANDS  # noqa: E402

for command in SWEEP_COMMANDS:
    cli.add_command(command)
from rnnscope._cli_reproduce import reproduce_group  # noqa: E402

cli.add_command(reproduce_group)
cli.add_command(import_torch_command)



def main(argv: list[str] | None = None) -> int:
    """Entry point: every bad input ends with one line on stderr and exit code 2."""
    _interrupt_on_sigterm()
    with warnings.catch_warnings(record=True) as caught:  # shown after a success, dropped before an error line
        warnings.simplefilter("default")
        try:
            cli.main(args=argv, prog_name="rnnscope", standalone_mode=False)
        except RnnscopeError as exc:
            click.echo(f"error: {_one_line(str(exc))}", err=True)
            return 2
        except (click.exceptions.Abort, KeyboardInterrupt):  # Ctrl-C or SIGTERM (click turns either into Abort)
            click.echo(INTERRUPTED, err=True)
            return 130
        except click.ClickException as exc:
            click.echo(f"error: {_one_line(exc.format_message())}", err=True)
            return 2
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            click.echo(f"warning: {_one_line(str(warning.message))}", err=True)
    return 0


INTERRUPTED = "error: interrupted (finished work is kept: rerun the same command to continue; train: add --resume)"


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a scheduler's or `kill`'s) ends a command as Ctrl-C does: locks released, worker processes stopped,
    the one-line message; only in the main thread, where Python delivers signals."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
