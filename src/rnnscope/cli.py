"""The ``rnnscope`` command: parse, call one API function, print text or JSON, save figures. Nothing else."""

from __future__ import annotations

import json
import sys
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
@click.option("--rank", type=int, default=1, show_default=True, help="Rank of the connectivity.")
@click.option("--full-rank", is_flag=True, help="Train a full-rank network instead.")
@click.option("--size", type=int, default=512, show_default=True, help="Number of neurons N.")
@click.option("--epochs", type=int, default=20, show_default=True)
@seed_option
@click.option("--lr", type=float, default=1e-2, show_default=True, help="Adam learning rate.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--train-trials", type=int, default=800, show_default=True, help="Size of the training set.")
@click.option("--noise-std", type=float, default=0.05, show_default=True, help="Private noise of each neuron.")
@click.option("--target-accuracy", type=float, default=None, help="Stop once validation accuracy reaches this.")
@click.option("--backend", type=click.Choice(["auto", "torch", "fast"]), default="auto", show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N] (cuda uses the PyTorch path).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--ensemble", type=int, default=1, show_default=True,
              help="Train K networks at once (seeds SEED..SEED+K-1) into OUT/net00, OUT/net01, ...")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def train_command(task, task_options, rank, full_rank, size, epochs, seed, lr, batch_size, train_trials, noise_std,
                  target_accuracy, backend, device, out, resume, ensemble, quiet, as_json) -> None:
    """Train a network on a task and write a run directory."""
    import numpy as np

    from rnnscope.models import ModelConfig
    from rnnscope.training import TrainingConfig, train, train_ensemble

    the_task = make_task(task, task_options)
    model = ModelConfig(size=size, inputs=len(the_task.input_names), outputs=len(the_task.output_names),
                        rank=None if full_rank else rank, noise_std=noise_std)
    config = TrainingConfig(epochs=epochs, lr=lr, batch_size=batch_size, train_trials=train_trials,
                            target_accuracy=target_accuracy, backend=backend, device=device)
    if ensemble != 1:
        if ensemble < 1 or resume:
            raise RnnscopeError(f"--ensemble: must be >= 1 and cannot be resumed, got {ensemble}")
        trained = train_ensemble(the_task, model, config, rng=list(range(seed, seed + ensemble)), out=out,
                                 progress=not quiet)
        emit(trained.to_dict(), as_json, lambda d: (
            f"trained {d['networks']} networks; validation accuracy min {min(d['validation_accuracy']):.3f}, "
            f"mean {np.mean(d['validation_accuracy']):.3f}\nrun directories: {d['path']}/net00 ..."))
        return
    result = train(the_task, model, config, rng=seed, out=out, resume=resume, progress=not quiet)
    summary = result.to_dict()
    emit(summary, as_json, lambda d: (
        f"trained {d['epochs']} epochs; best epoch {d['best_epoch']}: validation accuracy "
        f"{d['validation_accuracy']:.3f}, loss {d['validation_loss']:.4f}\nrun directory: {d['path']}"))


@cli.command("evaluate")
@click.argument("run")
@allow_task_option
@click.option("--trials", type=int, default=1000, show_default=True)
@seed_option
@task_option
@click.option("--no-noise", is_flag=True, help="Simulate without the private noise.")
@json_option
def evaluate_command(run, trials, seed, task_options, no_noise, as_json) -> None:
    """Accuracy and loss of a run's network on fresh trials, overall and per condition."""
    from rnnscope import io
    from rnnscope.training import evaluate

    loaded = io.load_run(run)
    task = loaded.task
    if task_options:
        stored = loaded.config["task"]
        task = make_task(stored["name"], task_options, stored=stored.get("options", {}))
    result = evaluate(loaded.model, task, trials=trials, rng=seed, noise=not no_noise)
    emit(result.to_dict(), as_json, lambda d: f"accuracy {d['accuracy']:.4f}  loss {d['loss']:.5f}  ({d['trials']} trials)")


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


for command in (*ANALYSIS_COMMANDS, data_group):
    cli.add_command(command)

from rnnscope._cli_universality import import_torch_command, universality_command  # noqa: E402

cli.add_command(universality_command)
cli.add_command(import_torch_command)



def main(argv: list[str] | None = None) -> int:
    """Entry point: every bad input ends with one line on stderr and exit code 2."""
    with warnings.catch_warnings(record=True) as caught:  # shown after a success, dropped before an error line
        warnings.simplefilter("default")
        try:
            cli.main(args=argv, prog_name="rnnscope", standalone_mode=False)
        except RnnscopeError as exc:
            click.echo(f"error: {_one_line(str(exc))}", err=True)
            return 2
        except click.exceptions.Abort:
            click.echo("error: aborted", err=True)
            return 130
        except click.ClickException as exc:
            click.echo(f"error: {_one_line(exc.format_message())}", err=True)
            return 2
        except KeyboardInterrupt:
            click.echo("error: interrupted (completed epochs are checkpointed; rerun with --resume)", err=True)
            return 130
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            click.echo(f"warning: {_one_line(str(warning.message))}", err=True)
    return 0


def _one_line(message: str) -> str:
    return " ".join(message.split())


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
