"""Commands that analyse one run, or each run of a group (an ensemble or a sweep directory, with the aggregate):
latent dynamics, fixed points, truncation, population structure."""

from __future__ import annotations

import click

from rnnscope._cli_common import (
    DEFAULT_MAX_POPULATIONS,
    allow_task_option,
    constant_inputs,
    emit_runs,
    figure_option,
    figure_targets,
    input_option,
    json_option,
    low_rank,
    out_option,
    seed_option,
)
from rnnscope.errors import RnnscopeError

__all__ = ["ANALYSIS_COMMANDS"]


@click.command("analyze")
@click.argument("run")
@allow_task_option
@click.option("--trials", type=int, default=200, show_default=True, help="Trials simulated for epoch statistics.")
@seed_option
@json_option
def analyze_command(run, trials, seed, as_json) -> None:
    """Overlaps, effective overlaps per task epoch, fixed points and variance explained by span(M, W_in)."""
    from rnnscope.analysis import analyze_on_task

    def one(path: str) -> dict:
        nonlocal loaded
        loaded, weights = low_rank(path)
        return analyze_on_task(weights, loaded.task, trials=trials, rng=seed).to_dict()

    loaded = None

    def text(d):
        from rnnscope.report import value_name

        names = loaded.task.input_names
        rank = d["rank"]
        lines = [f"rank {rank}, size {d['size']}  (full numbers: --json)", "overlaps n_i.m_j/N:"]
        lines += [f"  n{i + 1}: " + "  ".join(f"m{j + 1} {v:+.3f}" for j, v in enumerate(row))
                  for i, row in enumerate(d["overlaps"])]
        lines += ["input overlaps n_i.w_in/N:"]
        lines += [f"  n{i + 1}: " + "  ".join(f"{names[j]} {v:+.3f}" for j, v in enumerate(row))
                  for i, row in enumerate(d["input_overlaps"])]
        lines += [f"variance explained by span(M, W_in): {d['variance_explained']:.1%}"]
        classes = [p["class"] for p in d["fixed_points"]]
        counts = ", ".join(f"{classes.count(c)} {c}" for c in dict.fromkeys(classes))
        lines += [f"fixed points without input: {len(classes)}" + (f" ({counts})" if classes else "")]
        lines += [f"  {p['class']:8s} kappa = ({', '.join(f'{k:+.3f}' for k in p['kappa'])})" for p in d["fixed_points"]]

        def matrix(eff):
            recurrent = "  ".join(f"n{i + 1}.m{j + 1} {v:+.3f}" for i, row in enumerate(eff["overlaps"])
                                  for j, v in enumerate(row))
            inputs = "  ".join(f"n{i + 1}.{names[j]} {v:+.3f}" for i, row in enumerate(eff["input_overlaps"])
                               for j, v in enumerate(row))
            return f"{recurrent} | {inputs}"

        lines += ["effective overlaps (gain-weighted), all trials:"]
        lines += [f"  {name:10s} {matrix(eff)}" for name, eff in d["effective_overlaps"].items()]
        for group, per_epoch in d["effective_overlaps_by_condition"].items():
            condition, _, value = group.partition("=")
            lines += [f"effective overlaps, {condition} {value_name(loaded.task, condition, value)}:"]
            lines += [f"  {name:10s} {matrix(eff)}" for name, eff in per_epoch.items()]
        return "\n".join(lines)

    emit_runs(run, one, as_json, text, lambda d: {"variance_explained": d["variance_explained"],
                                                  "fixed points": len(d["fixed_points"])})


@click.command("fixed-points")
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

    def one(path: str) -> dict:
        loaded, weights = low_rank(path)
        return find_fixed_points(weights, inputs=constant_inputs(input_pairs, loaded.task.input_names),
                                 mean_field=mean_field, starts=starts, rng=seed).to_dict()

    def text(d):
        lines = [f"{p['class']:8s} kappa = {[round(k, 4) for k in p['kappa']]}" for p in d["fixed_points"]]
        return "\n".join(lines + [f"ring attractor: {d['ring']}", f"limit cycle: {d['limit_cycle']}"])

    def columns(d):
        classes = [p["class"] for p in d["fixed_points"]]
        return {"fixed points": len(classes), "stable": classes.count("stable"), "ring": d["ring"],
                "limit_cycle": d["limit_cycle"]}

    emit_runs(run, one, as_json, text, columns)


@click.command("flow")
@click.argument("run")
@allow_task_option
@input_option
@click.option("--mean-field", is_flag=True, help="Use the infinite-size (mean-field) dynamics.")
@click.option("--resolution", type=int, default=50, show_default=True)
@seed_option
@out_option("flow.png and flow.svg")
@figure_option
def flow_command(run, input_pairs, mean_field, resolution, seed, out, figure) -> None:
    """Draw the latent flow field with its fixed points."""
    from rnnscope import io
    from rnnscope.analysis import find_fixed_points, flow_field
    from rnnscope.plots import plot_flow_field

    targets = figure_targets(out, figure, "flow")
    loaded, weights = low_rank(run)
    inputs = constant_inputs(input_pairs, loaded.task.input_names)
    points = find_fixed_points(weights, inputs=inputs, mean_field=mean_field, rng=seed)
    field = flow_field(weights, inputs=inputs, mean_field=mean_field, resolution=resolution)
    figure_object = plot_flow_field(field, points)
    for target in targets:
        io.save_figure(figure_object, target)
    click.echo(f"flow field -> {', '.join(map(str, targets))}")


@click.command("truncate")
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

    try:
        wanted = [int(r) for r in ranks.split(",") if r.strip()]
    except ValueError:
        raise RnnscopeError(f"--ranks: expected comma-separated integers, got {ranks!r}") from None

    def one(path: str) -> dict:
        loaded = io.load_run(path)
        weights = loaded.model.weights()
        if not isinstance(weights, FullRankWeights):
            raise RnnscopeError(f"{path}: already a low-rank network (rank {weights.rank}); truncation needs a "
                                f"full-rank one")
        return truncation_accuracy(weights, loaded.task, ranks=wanted, trials=trials, tolerance=tolerance,
                                   rng=seed).to_dict()

    emit_runs(run, one, as_json, lambda d: "\n".join(
        [f"full network: {d['full_accuracy']:.3f}"]
        + [f"rank {r}: {a:.3f}" for r, a in zip(d["ranks"], d["accuracy"], strict=True)]
        + [f"rank needed (within {d['tolerance']}): {d['needed']}"]),
        lambda d: {"full_accuracy": d["full_accuracy"], "needed": d["needed"]})


@click.command("populations")
@click.argument("run")
@allow_task_option
@click.option("--max-populations", type=int, default=DEFAULT_MAX_POPULATIONS, show_default=True)
@click.option("--method", type=click.Choice(["em", "bayes"]), default="bayes", show_default=True,
              help="Variational Bayesian mixtures (the paper's, used by every population command) or maximum "
                   "likelihood (em).")
@click.option("--restarts", type=int, default=10, show_default=True)
@seed_option
@json_option
def populations_command(run, max_populations, method, restarts, seed, as_json) -> None:
    """Gaussian-mixture fits of the loadings for P = 1..max: BIC, chosen P, sizes, means, covariances, stability."""
    from rnnscope.analysis import fit_populations, loadings

    def one(path: str) -> dict:
        _, weights = low_rank(path)
        return fit_populations(loadings(weights), rng=seed, max_populations=max_populations, restarts=restarts,
                               method=method, progress=not as_json).to_dict()

    emit_runs(run, one, as_json, lambda d: "\n".join(
        [f"chosen P = {d['chosen']} (lowest BIC)"]
        + [f"  P={f['populations']}: BIC {f['bic']:.1f}, sizes {f['sizes']}, label agreement {f['label_agreement']:.2f}" for f in d["fits"]]),
        lambda d: {"chosen": d["chosen"]})


@click.command("resample")
@click.argument("run")
@allow_task_option
@click.option("--populations", type=int, required=True, help="1: one Gaussian; P: the network's P populations.")
@click.option("--networks", type=int, default=20, show_default=True)
@click.option("--size", type=int, default=None, help="Neurons of each resampled network (default: the run's).")
@click.option("--trials", type=int, default=500, show_default=True)
@click.option("--zero-mean", is_flag=True, help="Force each population's mean to zero (the paper's convention).")
@click.option("--method", type=click.Choice(["em", "bayes"]), default="bayes", show_default=True,
              help="Mixture fit that labels the neurons (the same as every population command).")
@click.option("--tolerance", type=float, default=0.05, show_default=True,
              help="Accuracy gap to the trained network beyond which the output suggests --size or --retrain.")
@seed_option
@json_option
def resample_command(run, populations, networks, size, trials, zero_mean, method, tolerance, seed, as_json) -> None:
    """Accuracy of networks resampled from the loading statistics, in one batched simulation."""
    from rnnscope.analysis import resample_network

    def one(path: str) -> dict:
        loaded, weights = low_rank(path)
        return resample_network(weights, loaded.task, populations=populations, rng=seed, networks=networks, size=size,
                                trials=trials, zero_mean=zero_mean, method=method, tolerance=tolerance,
                                progress=not as_json).to_dict()

    emit_runs(run, one, as_json, lambda d: (
        f"{d['populations']} population(s), N = {d['size']}: mean accuracy {d['mean']:.3f} over {len(d['accuracy'])} "
        f"networks (trained network: {d['trained_accuracy']:.3f})"
        f"\n{d['method']} fit, population sizes {d['population_sizes']}"
        + (f"\n{d['advice']}" if d["advice"] else "")),
        lambda d: {"trained_accuracy": d["trained_accuracy"], "mean": d["mean"]})


@click.command("minimal-populations")
@click.argument("run")
@allow_task_option
@click.option("--max-populations", type=int, default=DEFAULT_MAX_POPULATIONS, show_default=True)
@click.option("--min-populations", type=int, default=1, show_default=True, help="First P tried.")
@click.option("--networks", type=int, default=10, show_default=True)
@click.option("--size", type=int, default=None, help="Neurons of each resampled network (default: the run's).")
@click.option("--trials", type=int, default=500, show_default=True)
@click.option("--tolerance", type=float, default=0.05, show_default=True)
@click.option("--zero-mean", is_flag=True, help="Force each population's mean to zero.")
@click.option("--retrain", is_flag=True,
              help="Also retrain each population model (means, covariances) by gradient descent, then resample.")
@click.option("--retrain-epochs", type=int, default=None, help="Adam steps of each retraining [default: 1000].")
@click.option("--retrain-lr", type=float, default=None, help="Learning rate of the retraining [default: 0.01].")
@click.option("--retrain-networks", type=int, default=1, show_default=True,
              help="Networks drawn from the population model at each retraining step.")
@click.option("--method", type=click.Choice(["em", "bayes"]), default="bayes", show_default=True,
              help="Mixture fit that labels the neurons (the same as every population command).")
@seed_option
@json_option
def minimal_populations_command(
    run, max_populations, min_populations, networks, size, trials, tolerance, zero_mean, retrain, retrain_epochs,
    retrain_lr, retrain_networks, method, seed, as_json
) -> None:
    """Smallest number of populations whose resampled networks match the trained network."""
    from rnnscope._validation import as_generator
    from rnnscope.analysis import minimal_populations

    def one(path: str) -> dict:
        loaded, weights = low_rank(path)
        rng = as_generator(seed)
        batch = loaded.task.sample(trials, rng=rng)
        return minimal_populations(weights, batch, rng=rng, max_populations=max_populations,
                                   min_populations=min_populations, networks=networks, size=size, tolerance=tolerance,
                                   zero_mean=zero_mean, method=method, retrain=retrain, task=loaded.task,
                                   retrain_networks=retrain_networks, progress=not as_json,
                                   **({} if retrain_epochs is None else {"retrain_epochs": retrain_epochs}),
                                   **({} if retrain_lr is None else {"retrain_lr": retrain_lr})).to_dict()

    def text(d: dict) -> str:
        line = (f"minimal populations: {d['populations']} (trained accuracy {d['trained_accuracy']:.3f}; mean "
                f"resampled accuracy per P: {[None if a is None else round(a, 3) for a in d['mean_accuracy']]}")
        if d["retrain"]:
            line += f"; after retraining: {[None if a is None else round(a, 3) for a in d['mean_retrained_accuracy']]}"
        return line + ")"

    emit_runs(run, one, as_json, text, lambda d: {"populations": d["populations"],
                                                  "trained_accuracy": d["trained_accuracy"]})


@click.command("epairs")
@click.argument("run")
@allow_task_option
@click.option("--space", type=click.Choice(["connectivity", "selectivity"]), default="connectivity", show_default=True)
@click.option("--draws", "--null-draws", "null_draws", type=int, default=500, show_default=True,
              help="Gaussian null clouds drawn.")
@click.option("--trials", type=int, default=400, show_default=True, help="Trials for the selectivity space.")
@click.option("--procedure", type=click.Choice(["whitened", "paper"]), default="whitened", show_default=True,
              help="Null clouds whitened like the data (unbiased c), or the paper's (not whitened; c lower by "
                   "0.01-0.03 in 3-6 dimensions): use paper to compare with Dubreuil, Valente et al.")
@seed_option
@json_option
def epairs_command(run, space, null_draws, trials, procedure, seed, as_json) -> None:
    """ePAIRS test of non-random population structure (Raposo et al. 2014)."""
    from rnnscope.analysis import connectivity_epairs, selectivity_epairs

    def one(path: str) -> dict:
        loaded, weights = low_rank(path)
        if space == "connectivity":
            result = connectivity_epairs(weights, rng=seed, draws=null_draws, procedure=procedure)
        else:
            result = selectivity_epairs(weights, loaded.task, rng=seed, draws=null_draws, trials=trials,
                                        procedure=procedure)
        return {"space": space, **result.to_dict()}

    def text(d):
        from rnnscope.report import format_p_value

        return f"ePAIRS ({space}, {procedure} null): {format_p_value(d['p_value'])}, c = {d['c']:.3f}"

    emit_runs(run, one, as_json, text, lambda d: {"c": d["c"], "p_value": d["p_value"]})


@click.command("selectivity")
@click.argument("run")
@allow_task_option
@click.option("--trials", type=int, default=400, show_default=True)
@seed_option
@json_option
def selectivity_command(run, trials, seed, as_json) -> None:
    """Linear regressions of each neuron's rate on the task variables over time (Mante et al. 2013)."""
    from rnnscope.analysis import selectivity_on_task

    def one(path: str) -> dict:
        nonlocal dt
        loaded, weights = low_rank(path)
        dt = loaded.task.dt
        return selectivity_on_task(weights, loaded.task, rng=seed, trials=trials).to_dict()

    dt = 1.0

    def text(d):
        norms = [max(row) if row else 0.0 for row in d["beta_norms"]]
        lines = [f"{'variable':24s} {'peak':>12s}  {'|beta| at peak':>14s}"]
        lines += [f"{v:24s} {s * dt:9.0f} ms  {n:14.3f}"
                  for v, s, n in zip(d["variables"], d["peak_steps"], norms, strict=True)]
        return "\n".join(lines + ["(per-neuron betas and the time courses: --json)"])

    emit_runs(run, one, as_json, text, lambda d: {
        f"peak |beta| {v}": max(row) if row else 0.0 for v, row in zip(d["variables"], d["beta_norms"], strict=True)})


@click.command("inactivate")
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

    if population is not None and not 0 <= population < populations:
        raise RnnscopeError(f"--population: must be in 0..{populations - 1}, got {population}")

    def one(path: str) -> dict:
        nonlocal loaded
        loaded, weights = low_rank(path)
        result = inactivate_populations(weights, loaded.task, populations=populations, rng=seed, trials=trials,
                                        gain=gain, group_by=group_by, progress=not as_json).to_dict()
        if population is not None:
            result["scaled"] = [result["scaled"][population]]
        return result

    loaded = None

    def text(d):
        from rnnscope.report import value_name

        groups = list(d["intact"])
        condition = d["group_by"]
        heads = [value_name(loaded.task, condition, g) if condition else str(g) for g in groups]
        rows = [("intact", d["intact"])]
        rows += [(f"population {s['population']} x{d['gain']:g}", s["accuracy"]) for s in d["scaled"]]
        label = max(len(r[0]) for r in rows)
        width = max([6, *map(len, heads)])
        lines = [f"{'accuracy by ' + str(condition or 'group'):{label}s}" + "".join(f"  {h:>{width}s}" for h in heads)]
        lines += [f"{name:{label}s}" + "".join(f"  {acc[g]:>{width}.2f}" for g in groups) for name, acc in rows]
        return "\n".join(lines)

    def columns(d):  # accuracy averaged over the groups (per group: --json)
        mean = lambda accuracy: sum(accuracy.values()) / max(len(accuracy), 1)  # noqa: E731
        return {"intact": mean(d["intact"]),
                **{f"population {s['population']} x{d['gain']:g}": mean(s["accuracy"]) for s in d["scaled"]}}

    emit_runs(run, one, as_json, text, columns)


ANALYSIS_COMMANDS = (analyze_command, fixed_points_command, flow_command, truncate_command, populations_command,
                     resample_command, minimal_populations_command, epairs_command, selectivity_command,
                     inactivate_command)
