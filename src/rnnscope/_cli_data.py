"""``rnnscope data ...``: the population-structure analyses on recorded neurons (thin commands: parse, call one
public function, print text or ``--json``, write files through ``rnnscope.io``)."""

from __future__ import annotations

from pathlib import Path

import click

from rnnscope._cli_common import emit, json_option, seed_option

__all__ = ["data_group"]

_bin = click.option("--bin-ms", type=float, default=50.0, show_default=True, help="Bin of NWB spike times (ms).")


def _emit(data: dict, as_json: bool, text: str) -> None:
    emit(data, as_json, lambda _: text)


def _load(path: str, bin_ms: float):
    from rnnscope.data import load_recordings

    return load_recordings(path, bin_ms=bin_ms)


@click.group("data")
def data_group() -> None:
    """Population structure in recorded data (.npz, long-format CSV/Parquet, NWB): the analyses of networks."""


@data_group.command("selectivity")
@click.argument("file")
@click.option("--variable", "variables", multiple=True, help="Condition column to regress on (repeatable; default: all).")
@click.option("--window-steps", type=int, default=1, show_default=True, help="Steps averaged around each peak.")
@click.option("--denoise", type=int, default=None, help="Keep this many principal components (Mante et al. 2013).")
@_bin
@seed_option
@json_option
def selectivity_command(file, variables, window_steps, denoise, bin_ms, seed, as_json) -> None:
    """Regression of each neuron's rate on the task variables over time, peaks chosen on held-out trials."""
    from rnnscope.data import data_selectivity

    result = data_selectivity(_load(file, bin_ms), rng=seed, variables=variables or None, window_steps=window_steps,
                              denoise=denoise)
    d = result.to_dict()
    _emit(d, as_json, "\n".join(f"{v:24s} strongest at {t:g} ms (step {s})"
                                for v, t, s in zip(d["variables"], d["peak_time_ms"], d["peak_steps"], strict=True)))


@data_group.command("epairs")
@click.argument("file")
@click.option("--null-draws", type=int, default=500, show_default=True)
@_bin
@seed_option
@json_option
def epairs_command(file, null_draws, bin_ms, seed, as_json) -> None:
    """ePAIRS in selectivity space (same keys as 'rnnscope epairs', plus a Monte-Carlo p-value)."""
    from rnnscope.data import data_epairs

    result = data_epairs(_load(file, bin_ms), rng=seed, draws=null_draws)
    d = {"space": "selectivity", **result.to_dict()}
    _emit(d, as_json, f"ePAIRS (selectivity): p = {d['p_value']:.3g} (resampled {d['p_value_resampled']:.3g}), "
                      f"c = {d['c']:.3f}")


@data_group.command("populations")
@click.argument("file")
@click.option("--max-populations", type=int, default=4, show_default=True)
@click.option("--method", type=click.Choice(["em", "bayes"]), default="em", show_default=True)
@click.option("--restarts", type=int, default=10, show_default=True)
@_bin
@seed_option
@json_option
def populations_command(file, max_populations, method, restarts, bin_ms, seed, as_json) -> None:
    """Gaussian-mixture fits of the selectivity profiles: BIC per P, chosen P, label agreement."""
    from rnnscope.data import data_populations

    fit = data_populations(_load(file, bin_ms), rng=seed, max_populations=max_populations, restarts=restarts,
                           method=method)
    d = fit.to_dict()
    _emit(d, as_json, "\n".join([f"chosen P = {d['chosen']} (lowest BIC)"] + [
        f"  P={f['populations']}: BIC {f['bic']:.1f}, sizes {f['sizes']}, label agreement {f['label_agreement']:.2f}" for f in d["fits"]]))


@data_group.command("report")
@click.argument("files", nargs=-1, required=True)
@click.option("--out", default="rnnscope-data-report", show_default=True, type=click.Path(file_okay=False))
@click.option("--null-draws", type=int, default=500, show_default=True)
@click.option("--restarts", type=int, default=10, show_default=True, help="Restarts of each mixture fit.")
@_bin
@seed_option
@json_option
def report_command(files, out, null_draws, restarts, bin_ms, seed, as_json) -> None:
    """HTML report of one or several recordings files, side by side."""
    from rnnscope.report import data_report

    files_written = data_report([_load(f, bin_ms) for f in files], out=out, rng=seed, draws=null_draws,
                                restarts=restarts)
    _emit(files_written.to_dict(), as_json, f"report: {files_written.html}")


@data_group.command("from-run")
@click.argument("run")
@click.option("--neurons", type=int, default=200, show_default=True)
@click.option("--trials", type=int, default=400, show_default=True)
@click.option("--noise", type=click.Choice(["poisson", "gaussian", "none"]), default="poisson", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .npz file to write (must not exist).")
@seed_option
@json_option
def from_run_command(run, neurons, trials, noise, out, seed, as_json) -> None:
    """Export a run's network activity as recordings: N sampled neurons, noise, the trials' condition table."""
    from rnnscope import io
    from rnnscope.data import recordings_from_network, save_recordings
    from rnnscope.errors import RnnscopeError

    if Path(out).exists():
        raise RnnscopeError(f"{out}: already exists; rnnscope does not overwrite a file it did not create")
    loaded = io.load_run(run)
    recordings = recordings_from_network(loaded.model.weights(), loaded.task, rng=seed, neurons=neurons, trials=trials,
                                         noise=noise, name=Path(run).name)
    path = save_recordings(out, recordings)
    _emit({"path": str(path), **recordings.to_dict()}, as_json,
          f"wrote {recordings.trials} trials x {recordings.steps} steps x {recordings.size} neurons to {path}")


@data_group.command("compare")
@click.argument("run")
@click.argument("data")
@click.option("--out", default="rnnscope-data-comparison", show_default=True, type=click.Path(file_okay=False))
@click.option("--neurons", type=int, default=200, show_default=True)
@click.option("--noise", type=click.Choice(["poisson", "gaussian", "none"]), default="poisson", show_default=True)
@click.option("--null-draws", type=int, default=500, show_default=True)
@_bin
@seed_option
@json_option
def compare_command(run, data, out, neurons, noise, null_draws, bin_ms, seed, as_json) -> None:
    """A run's network (exported as recordings) and recorded data through the same analyses, side by side."""
    from rnnscope.report import compare_run_with_data

    files_written = compare_run_with_data(run, _load(data, bin_ms), out=out, neurons=neurons, noise=noise, rng=seed,
                                          draws=null_draws)
    _emit(files_written.to_dict(), as_json, f"report: {files_written.html}")
