"""Reports of recorded data: one HTML page with the analyses of one or several sets of recordings side by side
(e.g. an animal's and a network's exported as recordings), figures as PNG + SVG and numbers as JSON beside it."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnscope import io
from rnnscope.data import DataAnalysis, Recordings, analyze_recordings, load_recordings, recordings_from_network
from rnnscope.errors import RnnscopeError
from rnnscope.report._api import resolve_rng
from rnnscope.report._html import PAGE, ReportFiles, _figure_html, _jsonable, _page, _render, _slug, _stamp, _table

__all__ = ["DATA_SECTIONS", "write_data_report", "data_report", "compare_run_with_data"]

DATA_SECTIONS = (
    ("recordings", "Recordings"),
    ("selectivity", "Selectivity over time"),
    ("epairs", "ePAIRS in selectivity space"),
    ("populations", "Gaussian mixtures of selectivity profiles"),
    ("projection", "Task axes (targeted dimensionality reduction)"),
)


def _section(sid: str, a: DataAnalysis) -> tuple[str, list[tuple[str, str, object]]]:
    """(html of the numbers, [(figure name, caption, Figure)]) of section ``sid``."""
    from rnnscope.plots import plot_bic, plot_epairs, plot_selectivity_signal, plot_task_projection

    s = a.summary
    if sid == "recordings":
        rows = [("source", s["source"] or s["name"]), ("rows", f"{s['trials']} {'conditions' if s['averaged'] else 'trials'}"),
                ("steps", f"{s['steps']} ({s['time_ms'][0]:g} to {s['time_ms'][1]:g} ms)"), ("neurons", s["size"])]
        rows += [(f"condition {k}", ", ".join(map(str, v))) for k, v in s["conditions"].items()]
        return _table(rows), []
    if sid == "selectivity":
        sel = a.selectivity
        rows = [(v, f"peak at {sel.time_ms[p]:g} ms (step {p})") for v, p in zip(sel.variables, sel.peak_steps, strict=True)]
        rows += [("peak chosen on held-out trials", sel.cross_validated), ("window (steps)", sel.window_steps),
                 ("denoising components", sel.denoise or "none")]
        return _table(rows), [("selectivity", "Selectivity signal over time (sum over neurons of the product of two "
                                              "halves' coefficients); dots: chosen peaks.", plot_selectivity_signal(sel))]
    if sid == "epairs":
        e = a.epairs
        rows = [("p-value", e.p_value), ("effect size c", e.c), ("neurons", int(e.data_angles.shape[0])),
                ("dimensions", ", ".join(e.columns)), ("null draws", int(e.null_angles.shape[0])),
                ("significant (p < 5e-4)", bool(e.significant))]
        if a.connectivity_epairs is not None:
            c = a.connectivity_epairs
            rows += [("connectivity-space p-value (all neurons)", c.p_value), ("connectivity-space c", c.c)]
        return _table(rows), [("epairs", "Angles to the 3 nearest neighbours in whitened selectivity space, against "
                                         "Gaussian clouds.", plot_epairs(e))]
    if sid == "populations":
        fit = a.populations
        rows = [(f"P = {p + 1}", [float(fit.bic[p]), f"label agreement {fit.label_agreement[p]:.2f}"]) for p in range(len(fit.bic))]
        rows.append(("chosen P (lowest BIC)", fit.chosen))
        return _table(rows), [("bic", "BIC of Gaussian mixtures of the selectivity profiles.", plot_bic(fit))]
    proj = a.projection
    figs = [("projection", "Condition-averaged activity on the first two task axes.", plot_task_projection(proj))]
    if len(proj.variables) > 2:
        figs.append(("projection-last", "The same on the last two task axes.",
                     plot_task_projection(proj, x=len(proj.variables) - 2, y=len(proj.variables) - 1)))
    return _table([("axes (QR order)", ", ".join(proj.variables)), ("conditions", int(proj.values.shape[0]))]), figs


def write_data_report(analyses: Sequence[DataAnalysis], out: str | Path) -> ReportFiles:
    """Write ``out/report.html`` with one column per analysis, ``out/figures/*.png|svg``, ``out/data/*.json``."""
    analyses = list(analyses)
    if not analyses:
        raise RnnscopeError("analyses: need at least one set of recordings")
    out = Path(out)
    names = [_slug(a.name) for a in analyses]
    if len(set(names)) != len(names):
        names = [f"{i + 1}-{n}" for i, n in enumerate(names)]
    figures: list[Path] = []
    data: list[Path] = []
    cells: dict[str, list[str]] = {sid: [] for sid, _ in DATA_SECTIONS}
    for a, name in zip(analyses, names, strict=True):
        for sid, _ in DATA_SECTIONS:
            numbers, figs = _section(sid, a)
            blocks = [numbers]
            for fig_name, caption, fig in figs:
                png = _render(fig, "png")
                stem = out / "figures" / f"{name}-{fig_name}"
                figures += [io.write_bytes(stem.with_suffix(".png"), png),
                            io.write_bytes(stem.with_suffix(".svg"), _render(fig, "svg"))]
                blocks.append(_figure_html(fig_name, caption, png, f"{name}-"))
            cells[sid].append(f'<div class="run" data-run="{html.escape(name)}"><h3 class="runname">'
                              f"{html.escape(a.name)}</h3>{''.join(blocks)}</div>")
        data.append(io.write_json(out / "data" / f"{name}.json", _jsonable(a.to_dict())))
    sections = [(sid, title, f'<div class="runs">{"".join(cells[sid])}</div>') for sid, title in DATA_SECTIONS]
    page = _page("rnnscope data report: " + ", ".join(a.name for a in analyses), _stamp(), sections, runs=len(analyses))
    return ReportFiles(io.write_text(out / PAGE, page), out, tuple(figures), tuple(data))


def data_report(
    recordings: Sequence[Recordings | str | Path], *, out: str | Path, rng: int | np.random.Generator | None = None,
    seed: int | None = None, draws: int = 500, restarts: int = 10,
) -> ReportFiles:
    """Analyse each set of recordings (objects or files) with the same settings and write one report. rng: an
    int seed (each set analysed from it) or one Generator shared in turn (``seed=``: deprecated alias)."""
    rng = resolve_rng(rng, seed, "data_report")
    loaded = [r if isinstance(r, Recordings) else load_recordings(r) for r in recordings]
    analyses = [analyze_recordings(r, rng=rng, draws=draws, restarts=restarts) for r in loaded]
    return write_data_report(analyses, out)


def compare_run_with_data(
    run: str | Path,
    data: Recordings | str | Path,
    *,
    out: str | Path,
    neurons: int = 200,
    noise: str = "poisson",
    trials: int = 400,
    rng: int | np.random.Generator | None = None,
    seed: int | None = None,
    draws: int = 500,
) -> ReportFiles:
    """A run's network exported as recordings (``recordings_from_network``) beside recorded data, same analyses;
    the network's column also shows its connectivity-space ePAIRS. rng: seed or Generator (``seed=``: deprecated
    alias)."""
    from rnnscope._validation import as_generator
    from rnnscope.analysis import connectivity_epairs
    from rnnscope.models import LowRankWeights

    rng = as_generator(resolve_rng(rng, seed, "compare_run_with_data"), name="rng")
    loaded = io.load_run(run)
    weights = loaded.model.weights()
    recorded = data if isinstance(data, Recordings) else load_recordings(data)
    network = recordings_from_network(weights, loaded.task, rng=rng, neurons=neurons, noise=noise, trials=trials,
                                      name=f"{Path(run).name} (network)")
    conn = connectivity_epairs(weights, rng=rng, draws=draws) if isinstance(weights, LowRankWeights) else None
    analyses = [analyze_recordings(network, rng=rng, draws=draws, connectivity_epairs=conn),
                analyze_recordings(recorded, rng=rng, draws=draws)]
    return write_data_report(analyses, out)
