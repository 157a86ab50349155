"""The ``rnnscope`` command: parse, call one API function, print text or JSON, save figures. Nothing else."""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Callable
from typing import Any

import click

from rnnscope.errors import RnnscopeError

__all__ = ["main", "cli"]


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: JSON output never holds NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(_finite(data), indent=2, allow_nan=False) if as_json else text(data))


def _make_task(name: str, pairs: tuple[str, ...] = (), stored: dict[str, Any] | None = None):
    """The task the user named on the command line (``module:Class`` is imported: the user asked for it) with
    ``stored`` options overridden by ``--task-option`` pairs."""
    from rnnscope.tasks import import_task, make_task, parse_options

    if ":" in name and stored is None:
        import_task(name)
    return make_task(name, {**(stored or {}), **parse_options(name, pairs)})


def _allow_tasks(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> None:
    from rnnscope.tasks import import_task

    for value in values:
        import_task(value)


json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
seed_option = click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
                           help="Seed of every random draw.")
allow_task_option = click.option(
    "--allow-task", multiple=True, metavar="MODULE:CLASS", expose_value=False, is_eager=True, callback=_allow_tasks,
    help="Trust this user task: runs and specifications may name it (repeatable). Files never import code.",
)
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

    the_task = _make_task(task, task_options)
    model = ModelConfig(size=size, inputs=len(the_task.input_names), outputs=len(the_task.output_names),
                        rank=None if full_rank else rank, noise_std=noise_std)
    config = TrainingConfig(epochs=epochs, lr=lr, batch_size=batch_size, train_trials=train_trials,
                            target_accuracy=target_accuracy, backend=backend, device=device)
    if ensemble != 1:
        if ensemble < 1 or resume:
            raise RnnscopeError(f"--ensemble: must be >= 1 and cannot be resumed, got {ensemble}")
        trained = train_ensemble(the_task, model, config, seeds=range(seed, seed + ensemble), out=out, progress=not quiet)
        _emit(trained.to_dict(), as_json, lambda d: (
            f"trained {d['networks']} networks; validation accuracy min {min(d['validation_accuracy']):.3f}, "
            f"mean {np.mean(d['validation_accuracy']):.3f}\nrun directories: {d['path']}/net00 ..."))
        return
    result = train(the_task, model, config, seed=seed, out=out, resume=resume, progress=not quiet)
    summary = result.to_dict()
    _emit(summary, as_json, lambda d: (
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
        task = _make_task(stored["name"], task_options, stored=stored.get("options", {}))
    result = evaluate(loaded.model, task, trials=trials, rng=seed, noise=not no_noise)
    _emit(result.to_dict(), as_json, lambda d: f"accuracy {d['accuracy']:.4f}  loss {d['loss']:.5f}  ({d['trials']} trials)")


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

    imported = io.import_reference(file, _make_task(task, task_options), out=out, noise_std=noise_std)
    info = imported.to_dict()
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
@allow_task_option
@click.option("--trials", type=int, default=200, show_default=True, help="Trials simulated for epoch statistics.")
@seed_option
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
@allow_task_option
@input_option
@click.option("--mean-field", is_flag=True, help="Use the infinite-size (mean-field) dynamics.")
@click.option("--starts", type=int, default=100, show_default=True)
@seed_option
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
@allow_task_option
@input_option
@click.option("--mean-field", is_flag=True, help="Use the infinite-size (mean-field) dynamics.")
@click.option("--resolution", type=int, default=50, show_default=True)
@seed_option
@click.option("--out", required=True, help="Figure file (.png, .svg or .pdf).")
def flow_command(run, input_pairs, mean_field, resolution, seed, out) -> None:
    """Draw the latent flow field with its fixed points."""
    from rnnscope import io
    from rnnscope.analysis import find_fixed_points, flow_field
    from rnnscope.plots import plot_flow_field

    io.check_output(out, directory=False, suffixes=(".png", ".svg", ".pdf"))
    _, weights = _low_rank(run)
    inputs = _constant_inputs(input_pairs, weights.inputs)
    points = find_fixed_points(weights, inputs=inputs, mean_field=mean_field, rng=seed)
    field = flow_field(weights, inputs=inputs, mean_field=mean_field, resolution=resolution)
    io.save_figure(plot_flow_field(field, points), out)
    click.echo(f"flow field -> {out}")


@cli.command("truncate")
@click.argument("run")
@allow_task_option
@click.option("--ranks", default="1,2,3,4,5", show_default=True, help="Comma-separated ranks to try.")
@click.option("--trials", type=int, default=500, show_default=True)
@click.option("--tolerance", type=float, default=0.02, show_default=True)
@seed_option
@json_option
def truncate_command(run, ranks, trials, tolerance, seed, as_json) -> None:
    """What rank does a full-rank network need? Accuracy of its truncated-SVD versions."""
    from rnnscope import io
    from rnnscope.analysis import truncation_accuracy
    from rnnscope.models import FullRankWeights

    loaded = io.load_run(run)
    weights = loaded.model.weights()
    if not isinstance(weights, FullRankWeights):
        raise RnnscopeError(f"{run}: already a low-rank network (rank {weights.rank}); truncation needs a full-rank one")
    try:
        wanted = [int(r) for r in ranks.split(",") if r.strip()]
    except ValueError:
        raise RnnscopeError(f"--ranks: expected comma-separated integers, got {ranks!r}") from None
    result = truncation_accuracy(weights, loaded.task, ranks=wanted, trials=trials, tolerance=tolerance, rng=seed)
    _emit(result.to_dict(), as_json, lambda d: "\n".join(
        [f"full network: {d['full_accuracy']:.3f}"]
        + [f"rank {r}: {a:.3f}" for r, a in zip(d["ranks"], d["accuracy"], strict=True)]
        + [f"rank needed (within {d['tolerance']}): {d['needed']}"]))


@cli.command("populations")
@click.argument("run")
@allow_task_option
@click.option("--max-populations", type=int, default=5, show_default=True)
@click.option("--method", type=click.Choice(["em", "bayes"]), default="em", show_default=True,
              help="Maximum likelihood (em) or variational Bayesian mixtures.")
@click.option("--restarts", type=int, default=10, show_default=True)
@seed_option
@json_option
def populations_command(run, max_populations, method, restarts, seed, as_json) -> None:
    """Gaussian-mixture fits of the loadings for P = 1..max: BIC, chosen P, sizes, means, covariances, stability."""
    from rnnscope.analysis import fit_populations, loadings

    _, weights = _low_rank(run)
    fit = fit_populations(loadings(weights), rng=seed, max_populations=max_populations, restarts=restarts, method=method,
                          progress=not as_json)
    _emit(fit.to_dict(), as_json, lambda d: "\n".join(
        [f"chosen P = {d['chosen']} (lowest BIC)"]
        + [f"  P={f['populations']}: BIC {f['bic']:.1f}, sizes {f['sizes']}, stability {f['stability']:.2f}" for f in d["fits"]]))


@cli.command("resample")
@click.argument("run")
@allow_task_option
@click.option("--populations", type=int, required=True, help="1: one Gaussian; P: the network's P populations.")
@click.option("--networks", type=int, default=20, show_default=True)
@click.option("--size", type=int, default=None, help="Neurons of each resampled network (default: the run's).")
@click.option("--trials", type=int, default=500, show_default=True)
@click.option("--zero-mean", is_flag=True, help="Force each population's mean to zero (the paper's convention).")
@seed_option
@json_option
def resample_command(run, populations, networks, size, trials, zero_mean, seed, as_json) -> None:
    """Accuracy of networks resampled from the loading statistics, in one batched simulation."""
    from rnnscope.analysis import resample_network

    loaded, weights = _low_rank(run)
    result = resample_network(weights, loaded.task, populations=populations, rng=seed, networks=networks, size=size,
                              trials=trials, zero_mean=zero_mean, progress=not as_json)
    _emit(result.to_dict(), as_json, lambda d: (
        f"{d['populations']} population(s), N = {d['size']}: mean accuracy {d['mean']:.3f} over {len(d['accuracy'])} "
        f"networks (trained network: {d['trained_accuracy']:.3f})"))


@cli.command("minimal-populations")
@click.argument("run")
@allow_task_option
@click.option("--max-populations", type=int, default=3, show_default=True)
@click.option("--networks", type=int, default=10, show_default=True)
@click.option("--size", type=int, default=None, help="Neurons of each resampled network (default: the run's).")
@click.option("--trials", type=int, default=500, show_default=True)
@click.option("--tolerance", type=float, default=0.05, show_default=True)
@click.option("--zero-mean", is_flag=True, help="Force each population's mean to zero.")
@click.option("--retrain", is_flag=True,
              help="Also retrain each population model (means, covariances) by gradient descent, then resample.")
@click.option("--retrain-epochs", type=int, default=200, show_default=True)
@seed_option
@json_option
def minimal_populations_command(
    run, max_populations, networks, size, trials, tolerance, zero_mean, retrain, retrain_epochs, seed, as_json
) -> None:
    """Smallest number of populations whose resampled networks match the trained network."""
    from rnnscope.analysis import minimal_populations

    loaded, weights = _low_rank(run)
    from rnnscope._validation import as_generator

    rng = as_generator(seed)
    batch = loaded.task.sample(trials, rng=rng)
    result = minimal_populations(weights, batch, rng=rng, max_populations=max_populations, networks=networks,
                                 size=size, tolerance=tolerance, zero_mean=zero_mean, retrain=retrain,
                                 task=loaded.task, retrain_epochs=retrain_epochs, progress=not as_json)

    def text(d: dict) -> str:
        line = (f"minimal populations: {d['populations']} (trained accuracy {d['trained_accuracy']:.3f}; mean "
                f"resampled accuracy per P: {[None if a is None else round(a, 3) for a in d['mean_accuracy']]}")
        if d["retrain"]:
            line += f"; after retraining: {[None if a is None else round(a, 3) for a in d['mean_retrained_accuracy']]}"
        return line + ")"

    _emit(result.to_dict(), as_json, text)


@cli.command("epairs")
@click.argument("run")
@allow_task_option
@click.option("--space", type=click.Choice(["connectivity", "selectivity"]), default="connectivity", show_default=True)
@click.option("--null-draws", type=int, default=500, show_default=True)
@click.option("--trials", type=int, default=400, show_default=True, help="Trials for the selectivity space.")
@seed_option
@json_option
def epairs_command(run, space, null_draws, trials, seed, as_json) -> None:
    """ePAIRS test of non-random population structure (Raposo et al. 2014)."""
    from rnnscope.analysis import connectivity_epairs, selectivity_epairs

    loaded, weights = _low_rank(run)
    if space == "connectivity":
        result = connectivity_epairs(weights, rng=seed, draws=null_draws)
    else:
        result = selectivity_epairs(weights, loaded.task, rng=seed, draws=null_draws, trials=trials)
    _emit({"space": space, **result.to_dict()}, as_json, lambda d: f"ePAIRS ({space}): p = {d['p_value']:.3g}, c = {d['c']:.3f}")


@cli.command("selectivity")
@click.argument("run")
@allow_task_option
@click.option("--trials", type=int, default=400, show_default=True)
@seed_option
@json_option
def selectivity_command(run, trials, seed, as_json) -> None:
    """Linear regressions of each neuron's rate on the task variables over time (Mante et al. 2013)."""
    from rnnscope.analysis import selectivity_on_task

    loaded, weights = _low_rank(run)
    result = selectivity_on_task(weights, loaded.task, rng=seed, trials=trials)
    _emit(result.to_dict(), as_json, lambda d: "\n".join(
        f"{v:24s} strongest at step {s}" for v, s in zip(d["variables"], d["peak_steps"], strict=True)))


@cli.command("inactivate")
@click.argument("run")
@allow_task_option
@click.option("--population", type=int, default=None, help="Report only this population (0-based); default all.")
@click.option("--populations", type=int, default=2, show_default=True, help="Number of populations to fit.")
@click.option("--gain", type=float, default=0.0, show_default=True, help="0 silences; other values scale the gain.")
@click.option("--trials", type=int, default=500, show_default=True)
@click.option("--group-by", default=None, help="Condition to split accuracy by (default: context or modality).")
@seed_option
@json_option
def inactivate_command(run, population, populations, gain, trials, group_by, seed, as_json) -> None:
    """Silence (or scale) a population and report accuracy per context."""
    from rnnscope.analysis import inactivate_populations

    loaded, weights = _low_rank(run)
    result = inactivate_populations(weights, loaded.task, populations=populations, rng=seed, trials=trials, gain=gain,
                                    group_by=group_by).to_dict()
    if population is not None:
        if not 0 <= population < populations:
            raise RnnscopeError(f"--population: must be in 0..{populations - 1}, got {population}")
        result["scaled"] = [result["scaled"][population]]

    def text(d):
        lines = [f"intact: {d['intact']}"]
        lines += [f"population {s['population']} x{d['gain']:g}: {s['accuracy']}" for s in d["scaled"]]
        return "\n".join(lines)

    _emit(result, as_json, text)


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
    built = design.design_network(design.resolve_spec(spec), size, seed=seed)
    io.save_model_run(out, model_from_weights(built.weights), built.task, {"design": built.to_dict(), "seed": seed})
    info = {"path": str(out), **built.to_dict()}
    _emit(info, as_json, lambda d: f"designed network (size {size}, seed {seed}) -> {d['path']}")


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
    the_task = _make_task(task, task_options) if task else None
    io.check_new_run_dir(out)
    fit = design.fit_design(the_spec, the_task, rng=seed, epochs=epochs, size=size)
    stored_task = task_spec(the_task) if the_task is not None else the_spec.task.to_dict()
    io.save_model_run(out, model_from_weights(fit.network), stored_task, {"design_fit": fit.to_dict(), "seed": seed})
    _emit(fit.to_dict(), as_json, lambda d: (
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
        files = compare(list(runs), out=out or "rnnscope-comparison", quick=quick, seed=seed)
    else:
        if len(runs) != 1:
            raise RnnscopeError(f"runs: one run directory without --compare, got {len(runs)}")
        files = report(runs[0], out=out, quick=quick, seed=seed)
    _emit(files.to_dict(), as_json, lambda d: f"report -> {d['html']}")


@cli.command("demo")
@click.option("--out", default="rnnscope-demo", show_default=True, help="Directory for runs and reports.")
@click.option("--quick", is_flag=True, help="Small networks and few epochs (a smoke run, tens of seconds).")
@seed_option
@json_option
def demo_command(out, quick, seed, as_json) -> None:
    """Train a random-dots and a context-dependent network, analyse both and write their reports."""
    from rnnscope.report import demo

    result = demo(out, quick=quick, seed=seed, progress=not as_json)

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

    _emit(result.to_dict(), as_json, text)


from rnnscope._cli_data import data_group  # noqa: E402

cli.add_command(data_group)


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
