"""The report as files: one self-contained HTML page (figures embedded as base64 PNG, inline CSS, no network
access needed), every figure also as PNG and SVG, and each section's numbers as JSON beside them."""

from __future__ import annotations

import base64
import datetime
import html
import io as _bytes_io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

import rnnscope
from rnnscope import io
from rnnscope.errors import RnnscopeError
from rnnscope.report._behaviour import value_name
from rnnscope.report._mechanism import format_p_value
from rnnscope.report._sections import RunAnalysis

__all__ = ["SECTIONS", "ReportFiles", "RenderedFigures", "render_figures", "write_report", "write_comparison"]

# (id, title) of every section, in page order; tests and the CLI rely on these ids
SECTIONS = (
    ("summary", "Mechanism in brief"),
    ("configuration", "Task and configuration"),
    ("learning", "Learning curves"),
    ("behaviour", "Accuracy and psychometric curves"),
    ("examples", "Example trials"),
    ("latent", "Latent dynamics: trajectories, flow field and fixed points"),
    ("overlaps", "Overlaps and effective overlaps"),
    ("populations", "Population structure"),
)
PAGE = "report.html"
DPI = 110


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written. html: the page; directory: the report directory; figures: every PNG and SVG;
    data: every JSON file (one per section plus ``report.json``)."""

    html: Path
    directory: Path
    figures: tuple[Path, ...]
    data: tuple[Path, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"html": str(self.html), "directory": str(self.directory),
                "figures": [str(p) for p in self.figures], "data": [str(p) for p in self.data]}


# -- figures ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Figure:
    name: str
    figure: Figure
    caption: str


def _figures(analysis: RunAnalysis) -> dict[str, list[_Figure]]:
    from rnnscope.analysis import loadings
    from rnnscope.plots import (
        PANEL_SIZE,
        plot_bic,
        plot_choice_table,
        plot_effective_overlaps,
        plot_epairs,
        plot_example_trials,
        plot_flow_field,
        plot_learning_curves,
        plot_loading_pairs,
        plot_potential,
        plot_psychometric,
        plot_resampling,
        plot_trajectories,
    )

    out: dict[str, list[_Figure]] = {sid: [] for sid, _ in SECTIONS}
    if analysis.history:
        out["learning"].append(_Figure("learning-curves", plot_learning_curves(analysis.history),
                                       "Training and validation loss and validation accuracy per epoch."))
    if analysis.psychometric.curves:
        out["behaviour"].append(_Figure("psychometric", plot_psychometric(analysis.psychometric),
                                        "Fraction of +1 choices against each stimulus coherence (binomial s.e.)."))
    for table in analysis.tables:
        if table.shows == "accuracy":
            out["behaviour"].append(_Figure("match-accuracy", plot_choice_table(table),
                                            f"Accuracy for every {table.rows} / {table.columns} pair (match cells on "
                                            "the diagonal)."))
        else:
            out["behaviour"].append(_Figure("decision-map", plot_choice_table(table),
                                            f"Decision map: fraction of +1 choices for every {table.rows} / "
                                            f"{table.columns} pair."))
    out["examples"].append(_Figure("example-trials", plot_example_trials(analysis.examples),
                                   "Inputs (top) and target / network output (bottom); the decision epoch is shaded."))
    latent = analysis.latent
    if latent is not None:
        result = latent.analysis
        projection, conditions = result.projection, result.conditions
        colour = conditions.get(latent.colour_by) if latent.colour_by else None
        groups = [(None, np.ones(len(next(iter(conditions.values()))), dtype=bool))] if conditions else []
        for name in ("context", "modality"):
            if name in conditions:
                groups = [(f"{name}={value_name(analysis.task, name, v)}", conditions[name] == v)
                          for v in np.unique(conditions[name])]
                break
        if groups:
            fig = Figure(figsize=(PANEL_SIZE[0] * 1.2 * len(groups), PANEL_SIZE[1]), layout="constrained")
            for k, (label, keep) in enumerate(groups):
                per_group = max(1, analysis.report_config.trajectory_trials // len(groups))
                index = np.flatnonzero(keep)[:per_group]
                if colour is not None:  # legend entries in the order of the condition's values
                    index = index[np.argsort(colour[index], kind="stable")]
                sub = _subset(projection, index)
                ax = fig.add_subplot(1, len(groups), k + 1)
                plot_trajectories(sub, None if colour is None else colour[index], dt_ms=analysis.task.dt, ax=ax,
                                  fixed_points=result.summary.fixed_points)
                if label:
                    ax.set_title(f"latent trajectories, {label}", fontsize=ax.title.get_fontsize())
                if colour is not None and ax.get_legend() is not None:
                    ax.get_legend().set_title(latent.colour_by.replace("_", " "))
            out["latent"].append(_Figure("trajectories", fig, "Latent variable kappa = m.x/|m|^2 on single trials"
                                         + (f", coloured by {latent.colour_by.replace('_', ' ')}." if colour is not None else ".")))
        out["latent"].append(_Figure("flow-field", plot_flow_field(latent.flow, result.summary.fixed_points),
                                     "Latent flow without input with the fixed points found (filled: attracting)."))
        if latent.potential is not None:
            out["latent"].append(_Figure("potential", plot_potential(latent.potential, result.summary.fixed_points),
                                         "Potential V(kappa) of the rank-1 dynamics without input."))
        contexts = [g for g in latent.by_condition if g.condition in ("context", "modality")]
        groups_eff = ({f"{contexts[0].condition} {n}": e for n, e in zip(contexts[0].names, contexts[0].per_group, strict=True)}
                      if contexts else {"all trials": result.epochs})
        if groups_eff and all(groups_eff.values()):
            out["overlaps"].append(_Figure("effective-overlaps", plot_effective_overlaps(groups_eff, analysis.task.input_names),
                                           "Gain-weighted overlaps per task epoch and condition group."))
    pops = analysis.populations
    if pops is not None and pops.fit is not None:
        weights = analysis.weights
        out["populations"].append(_Figure("bic", plot_bic(pops.fit), "BIC of Gaussian mixtures."))
        if weights is not None:
            points = loadings(weights)
            columns = [c for c in points.columns if not (len(points.columns) > 6 and c.startswith("w_out"))][:6]
            out["populations"].append(_Figure("loading-pairs", plot_loading_pairs(points, pops.labels, columns=columns),
                                              "Loadings of every neuron, pair by pair, coloured by population."))
        if pops.resampling:
            out["populations"].append(_Figure("resampling", plot_resampling(pops.resampling),
                                              "Accuracy of networks resampled from one Gaussian and from two populations."))
        if pops.epairs is not None:
            out["populations"].append(_Figure("epairs", plot_epairs(pops.epairs), "ePAIRS angles."))
    return out


def _subset(projection: Any, index: np.ndarray) -> Any:
    import dataclasses

    return dataclasses.replace(projection, kappa=projection.kappa[index], input_kappa=projection.input_kappa[index],
                               remainder=projection.remainder[index])


def _render(fig: Figure, fmt: str) -> bytes:
    if fmt == "svg":  # thousands of neurons as vector markers make huge files: rasterise big point clouds
        for ax in fig.axes:
            for artist in [*ax.collections, *ax.lines]:
                count = len(artist.get_offsets()) if hasattr(artist, "get_offsets") else len(artist.get_xdata())
                if count > 2000:
                    artist.set_rasterized(True)
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI)  # constrained layout already fits the labels
    return buffer.getvalue()


# -- numbers ------------------------------------------------------------------------------------------------------
def _section_data(analysis: RunAnalysis) -> dict[str, Any]:
    full = analysis.to_dict()
    latent = full["latent"] or {}
    return {
        "summary": {"summary": analysis.summary, "notes": list(analysis.notes), "seconds": dict(analysis.seconds)},
        "configuration": {"config": analysis.config,
                          "task": analysis.task.describe() if hasattr(analysis.task, "describe") else {"name": analysis.task.name}},
        "learning": {"history": full["history"]},
        "behaviour": {"evaluation": full["evaluation"], "psychometric": full["psychometric"], "tables": full["tables"]},
        "examples": analysis.examples.to_dict(),
        "latent": {k: latent.get(k) for k in ("fixed_points", "ring", "limit_cycle", "origin", "variance_explained",
                                               "recurrent_variance_explained", "colour_by")} if latent else None,
        "overlaps": {**{k: latent.get(k) for k in ("overlaps", "input_overlaps", "readout_overlaps", "effective_overlaps",
                                                    "effective_overlaps_by_condition", "effective_overlaps_grouped")},
                     "gating": full["gating"]} if latent else None,
        "populations": full["populations"],
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return html.escape(str(value))


def _table(rows: Sequence[tuple[str, Any]], head: tuple[str, str] | None = None) -> str:
    header = f"<tr><th>{html.escape(head[0])}</th><th>{html.escape(head[1])}</th></tr>" if head else ""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in rows)
    return f'<table class="numbers">{header}{body}</table>'


def _matrix(values: Any, rows: Sequence[str], cols: Sequence[str]) -> str:
    values = np.atleast_2d(np.asarray(values, dtype=float))
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
    body = "".join("<tr><th>" + html.escape(r) + "</th>" + "".join(f"<td>{v:.3f}</td>" if np.isfinite(v) else "<td>-</td>" for v in row) + "</tr>"
                   for r, row in zip(rows, values, strict=True))
    return f'<table class="numbers">{head}{body}</table>'


def _section_html(sid: str, analysis: RunAnalysis) -> str:
    """The numbers shown as text/tables in section ``sid``."""
    parts: list[str] = []
    if sid == "summary":
        parts.append(f'<p class="mechanism">{html.escape(analysis.summary)}</p>')
        for note in analysis.notes:
            parts.append(f'<p class="note">Note: {html.escape(note)}</p>')
    elif sid == "configuration":
        cfg = analysis.config
        model, training, task = cfg.get("model", {}), cfg.get("training") or {}, cfg.get("task", {})
        def joined(mapping: dict) -> str:
            return ", ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in mapping.items())

        rows = [("task", f"{task.get('name')}: {getattr(analysis.task, 'description', '')}"),
                ("task options", joined(task.get("options", {}))),
                ("inputs", ", ".join(analysis.task.input_names)), ("model", joined(model)),
                ("training", joined(training) if training else "not trained here (imported or designed)"),
                ("seed", cfg.get("seed")), ("rnnscope version", cfg.get("rnnscope_version"))]
        parts.append(_table(rows))
    elif sid == "learning":
        if analysis.history:
            last = analysis.history[-1]
            best = min(analysis.history, key=lambda r: r["validation_loss"])
            parts.append(_table([("epochs", len(analysis.history)), ("best epoch", best.get("epoch")),
                                 ("best validation loss", float(best["validation_loss"])),
                                 ("final validation accuracy", float(last["validation_accuracy"])),
                                 ("training time (s)", float(sum(r.get("seconds", 0.0) for r in analysis.history)))]))
        else:
            parts.append('<p class="note">No learning curve: this run has no metrics.jsonl.</p>')
    elif sid == "behaviour":
        ev = analysis.evaluation
        rows = [("accuracy", ev.accuracy), ("loss (masked MSE)", ev.loss), ("trials", ev.trials)]
        for cond, per in ev.per_condition.items():
            if len(per) <= 12:
                rows += [(f"accuracy, {cond} = {value_name(analysis.task, cond, v)}", a) for v, a in per.items()]
        parts.append(_table(rows))
        for table in analysis.tables:
            shown = table.accuracy if table.shows == "accuracy" else table.choices
            what = "accuracy" if table.shows == "accuracy" else "fraction of +1 choices"
            parts.append(f"<h3>{html.escape(what)}: {html.escape(table.rows)} (rows) x {html.escape(table.columns)} "
                         "(columns)</h3>" + _matrix(shown, list(table.row_names), list(table.column_names)))
    elif sid == "latent" and analysis.latent is not None:
        res = analysis.latent.analysis
        points = res.summary.fixed_points.fixed_points
        rows = [(f"{s} fixed point", [float(k) for k in kap]) for s, kap in zip(points.stability, points.kappa, strict=True)]
        rows += [("origin stable", bool(res.summary.origin.stable)),
                 ("variance explained by span(m, w_in)", float(res.projection.variance_explained))]
        parts.append(_table(rows))
    elif sid == "overlaps" and analysis.latent is not None:
        s = analysis.latent.analysis.summary
        rank = s.rank
        rn = [f"n{r + 1}" for r in range(rank)]
        parts.append("<h3>Overlaps n.m/N</h3>" + _matrix(s.overlaps, rn, [f"m{r + 1}" for r in range(rank)]))
        parts.append("<h3>Input overlaps n.w_in/N</h3>" + _matrix(s.input_overlaps, rn, list(analysis.task.input_names)))
        parts.append("<h3>Readout overlaps m.w_out/N</h3>" + _matrix(s.readout_overlaps, [f"m{r + 1}" for r in range(rank)],
                                                                   list(analysis.task.output_names)))
        parts.append(_grouped_overlaps(analysis))
    elif sid == "populations":
        pops = analysis.populations
        if pops is None or pops.fit is None:
            parts.append('<p class="note">No population analysis for this network'
                         + (f" ({html.escape('; '.join(pops.notes))})" if pops is not None and pops.notes else "") + ".</p>")
        else:
            fit = pops.fit
            parts.append("<h3>Gaussian mixtures (BIC, lower is better)</h3>" + _table(
                [(f"P = {p + 1}", [float(fit.bic[p]), f"label agreement {fit.label_agreement[p]:.2f}"]) for p in range(fit.max_populations)]
                + [("chosen P", fit.chosen)]))
            parts.append("<h3>Resampling</h3>" + _table(
                [(f"{r.populations} population{'s' if r.populations > 1 else ''} (N = {r.size}, {len(r.accuracy)} networks)",
                  [r.mean, f"min {np.min(r.accuracy):.2f}", f"max {np.max(r.accuracy):.2f}"]) for r in pops.resampling]
                + [("trained network", float(pops.resampling[0].trained_accuracy))]))
            if pops.epairs is not None:
                e = pops.epairs
                parts.append("<h3>ePAIRS (loading space)</h3>" + _table(
                    [("rank-sum test", format_p_value(e.p_value)), ("effect size c", e.c), ("neurons", pops.epairs_neurons),
                     ("null draws", int(e.null_angles.shape[0])), ("significant (p < 5e-4)", bool(e.significant))]))
            for note in pops.notes:
                parts.append(f'<p class="note">Note: {html.escape(note)}</p>')
    if sid in ("latent", "overlaps") and analysis.latent is None:
        parts.append('<p class="note">Latent analysis needs a low-rank network.</p>')
    return "\n".join(parts)


def _grouped_overlaps(analysis: RunAnalysis) -> str:
    """Effective overlaps in full (every n_i.phi'.m_j/N and every n_i.phi'.w_in/N) per epoch, for all trials and
    for the trials of each value of each grouping condition, then each population's part per context."""
    latent = analysis.latent
    rank = latent.analysis.summary.rank
    names = list(analysis.task.input_names)
    cols = [f"n{i + 1}.m{j + 1}" for i in range(rank) for j in range(rank)]
    cols += [f"n{i + 1}.{name}" for i in range(rank) for name in names]

    def row(eff: Any) -> list[float]:
        return list(np.asarray(eff.overlaps, dtype=float).ravel()) + list(np.asarray(eff.input_overlaps, dtype=float).ravel())

    parts = ["<h3>Effective overlaps (gain-weighted, /N), all trials</h3>" + _matrix(
        [row(e) for e in latent.analysis.epochs.values()], list(latent.analysis.epochs), cols)]
    for group in latent.by_condition:
        labels, values = [], []
        for name, per_epoch in zip(group.names, group.per_group, strict=True):
            for epoch, eff in per_epoch.items():
                labels.append(f"{group.condition} {name}, {epoch}")
                values.append(row(eff))
        parts.append(f"<h3>Effective overlaps by {html.escape(group.condition)}</h3>" + _matrix(values, labels, cols))
    gating = analysis.gating
    if gating is not None:
        labels, values = [], []
        for p, pop in enumerate(gating.populations):
            for g, ctx in enumerate(gating.names):
                labels.append(f"{pop}, {gating.condition} {ctx}")
                values.append(list(gating.drive[p, g].ravel()))
        source = "the design's populations" if gating.source == "design" else "the two-population fit"
        parts.append(f"<h3>Each population's part of the effective input overlaps during the {html.escape(gating.epoch)} "
                     f"({html.escape(source)}; parts add up to the whole)</h3>"
                     + _matrix(values, labels, [f"n{i + 1}.{name}" for i in range(rank) for name in names]))
    return "\n".join(parts)


# -- page ---------------------------------------------------------------------------------------------------------
_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1400px;padding:1.5em;
color:#1b1b1b;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1em;margin:.8em 0 .3em}.meta{color:#555;font-size:.9em}
nav a{margin-right:1em;font-size:.9em}
.mechanism{font-size:1.05em;background:#f3f6fa;border-left:4px solid #1f77b4;padding:.6em .9em}
.note{color:#8a4b00;font-size:.9em}
figure{display:inline-block;margin:.4em .8em .8em 0;vertical-align:top}figure img{max-width:100%;height:auto}
figcaption{font-size:.85em;color:#444;max-width:48em}
table.numbers{border-collapse:collapse;font-size:.85em;margin:.3em 0}
table.numbers th,table.numbers td{border:1px solid #ddd;padding:.15em .5em;text-align:left;font-weight:normal}
table.numbers th{background:#fafafa}
.runs{display:grid;grid-template-columns:repeat(var(--runs),minmax(0,1fr));gap:1.2em}
.run h3.runname{margin-top:0;color:#1f77b4}
@media print{nav{display:none}section{break-inside:avoid-page}}
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.querySelectorAll("img"), broken = 0;
  images.forEach(function (img) { if (!img.complete || img.naturalWidth === 0) { broken += 1; } });
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-broken-images", String(broken));
  if (broken > 0) { console.error("rnnscope report: " + broken + " figure(s) failed to load"); }
});
"""


def _figure_html(name: str, caption: str, png: bytes, prefix: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="fig-{prefix}{name}"><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _page(title: str, subtitle: str, sections: list[tuple[str, str, str]], runs: int = 1) -> str:
    nav = "".join(f'<a href="#{sid}">{html.escape(t)}</a>' for sid, t, _ in sections)
    body = "\n".join(f'<section id="{sid}" class="section"><h2>{html.escape(t)}</h2>\n{content}\n</section>'
                     for sid, t, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title><style>{_CSS}</style></head>\n'
            f'<body style="--runs:{runs}"><h1>{html.escape(title)}</h1><p class="meta">{html.escape(subtitle)}</p>'
            f"<nav>{nav}</nav>\n{body}\n<script>{_SCRIPT}</script></body></html>\n")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


@dataclass(frozen=True, eq=False)
class RenderedFigures:
    """The figures of one run's report, drawn once: {section id: ((name, caption, png bytes, svg bytes), ...)}."""

    sections: dict[str, tuple[tuple[str, str, bytes, bytes], ...]]


def render_figures(analysis: RunAnalysis) -> RenderedFigures:
    """Draw every figure of ``analysis`` as PNG and SVG bytes (the slow part of writing a report)."""
    out = {}
    for sid, figures in _figures(analysis).items():
        out[sid] = tuple((f.name, f.caption, _render(f.figure, "png"), _render(f.figure, "svg")) for f in figures)
    return RenderedFigures(out)


def _write_run_files(
    analysis: RunAnalysis, out: Path, prefix: str, rendered: RenderedFigures | None
) -> tuple[dict[str, str], list[Path], list[Path]]:
    """Write one run's PNG/SVG/JSON files; returns ({section: html}, figure paths, data paths)."""
    rendered = rendered if rendered is not None else render_figures(analysis)
    data = _section_data(analysis)
    html_parts: dict[str, str] = {}
    figure_paths: list[Path] = []
    data_paths: list[Path] = []
    for sid, _title in SECTIONS:
        blocks = [_section_html(sid, analysis)]
        for name, caption, png, svg in rendered.sections.get(sid, ()):
            stem = out / "figures" / f"{prefix}{name}"
            figure_paths += [io.write_bytes(stem.with_suffix(".png"), png), io.write_bytes(stem.with_suffix(".svg"), svg)]
            blocks.append(_figure_html(name, caption, png, prefix))
        html_parts[sid] = "\n".join(blocks)
        data_paths.append(io.write_json(out / "data" / f"{prefix}{sid}.json", _jsonable(data[sid])))
    data_paths.append(io.write_json(out / f"{prefix}report.json", _jsonable(analysis.to_dict())))
    return html_parts, figure_paths, data_paths


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _stamp() -> str:
    return f"rnnscope {rnnscope.__version__}, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}"


def write_report(analysis: RunAnalysis, out: str | Path, *, rendered: RenderedFigures | None = None) -> ReportFiles:
    """Write ``out/report.html`` (self-contained), ``out/figures/*.png|svg``, ``out/data/<section>.json`` and
    ``out/report.json`` for one run. rendered: figures already drawn by :func:`render_figures`."""
    out = Path(out)
    parts, figures, data = _write_run_files(analysis, out, "", rendered)
    sections = [(sid, title, parts[sid]) for sid, title in SECTIONS]
    page = _page(f"rnnscope report: {analysis.name}", f"{analysis.path or ''} · {_stamp()}", sections)
    path = io.write_text(out / PAGE, page)
    return ReportFiles(path, out, tuple(figures), tuple(data))


def write_comparison(
    analyses: Sequence[RunAnalysis], out: str | Path, *, rendered: Sequence[RenderedFigures] | None = None
) -> ReportFiles:
    """The same sections side by side, one column per run, in ``out/report.html`` (files prefixed by run).
    rendered: each run's figures already drawn by :func:`render_figures` (same order as ``analyses``)."""
    analyses = list(analyses)
    drawn = list(rendered) if rendered is not None else [None] * len(analyses)
    if len(drawn) != len(analyses):
        raise RnnscopeError(f"rendered: expected {len(analyses)} entries, got {len(drawn)}")
    if len(analyses) < 2:
        raise RnnscopeError(f"runs: a comparison needs at least 2 runs, got {len(analyses)}")
    out = Path(out)
    names = [_slug(a.name) for a in analyses]
    if len(set(names)) != len(names):
        names = [f"{i + 1}-{n}" for i, n in enumerate(names)]
    figures: list[Path] = []
    data: list[Path] = []
    columns: list[dict[str, str]] = []
    for analysis, name, pictures in zip(analyses, names, drawn, strict=True):
        parts, f, d = _write_run_files(analysis, out, f"{name}-", pictures)
        figures += f
        data += d
        columns.append(parts)
    sections = []
    for sid, title in SECTIONS:
        cells = "".join(f'<div class="run" data-run="{html.escape(n)}"><h3 class="runname">{html.escape(a.name)}</h3>'
                        f"{col[sid]}</div>" for a, n, col in zip(analyses, names, columns, strict=True))
        sections.append((sid, title, f'<div class="runs">{cells}</div>'))
    page = _page("rnnscope comparison: " + ", ".join(a.name for a in analyses), _stamp(), sections, runs=len(analyses))
    path = io.write_text(out / PAGE, page)
    data.append(io.write_json(out / "comparison.json", _jsonable({"runs": [a.name for a in analyses],
                                                                    "summaries": [a.summary for a in analyses]})))
    return ReportFiles(path, out, tuple(figures), tuple(data))
