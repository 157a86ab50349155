"""Figures of the HTML report: learning curves, psychometric curves, example trials, effective overlaps per
condition group and resampling accuracy.

Every function takes result objects (and an optional ``ax``), draws, and returns the Figure; none computes
dynamics, shows or saves. Result types are duck-typed (attributes documented per function) so this module
does not import :mod:`rnnscope.report`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rnnscope.errors import RnnscopeError
from rnnscope.plots._style import (
    FIGURE_SIZE,
    FONT_SIZE,
    GROUP_COLORS,
    LABEL_SIZE,
    LINE_WIDTH,
    MARKER_SIZE,
    PANEL_SIZE,
    REFERENCE_LINE,
    TITLE_SIZE,
)

__all__ = [
    "plot_learning_curves",
    "plot_psychometric",
    "plot_example_trials",
    "plot_effective_overlaps",
    "plot_resampling",
]


def _new(panels: int = 1, size: tuple[float, float] = FIGURE_SIZE, rows: int = 1) -> tuple[Figure, list[Axes]]:
    cols = -(-panels // rows)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), layout="constrained")
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(panels)]


def _require(obj: Any, name: str, attributes: Sequence[str]) -> None:
    missing = [a for a in attributes if not hasattr(obj, a)]
    if missing:
        raise RnnscopeError(f"{name}: expected an object with {', '.join(attributes)} (missing {missing[0]!r})")


def _style(ax: Axes, xlabel: str, ylabel: str, title: str | None = None) -> None:
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE)
    ax.spines[["top", "right"]].set_visible(False)


def plot_learning_curves(history: Sequence[Mapping[str, float]], *, ax: Axes | None = None) -> Figure:
    """Training and validation loss (masked MSE, log scale when it spans a decade) and validation accuracy against epoch.

    history: one mapping per epoch with ``loss``, ``validation_loss`` and ``validation_accuracy`` (as in
    ``TrainingResult.history`` or ``metrics.jsonl``). Without ``ax``: two panels (loss, accuracy); with ``ax``:
    the loss on ``ax`` and the accuracy on a twin axis."""
    rows = list(history)
    if not rows:
        raise RnnscopeError("history: no epochs to plot")
    for key in ("loss", "validation_loss", "validation_accuracy"):
        if key not in rows[0]:
            raise RnnscopeError(f"history: rows need {key!r} (got {', '.join(rows[0])})")
    epochs = np.arange(1, len(rows) + 1)
    loss = np.array([r["loss"] for r in rows], dtype=float)
    val_loss = np.array([r["validation_loss"] for r in rows], dtype=float)
    val_acc = np.array([r["validation_accuracy"] for r in rows], dtype=float)
    if ax is None:
        fig, (loss_ax, acc_ax) = _new(2, PANEL_SIZE)
    else:
        fig, loss_ax = ax.figure, ax
        acc_ax = ax.twinx()
    marker = "o" if len(rows) <= 30 else None
    loss_ax.plot(epochs, loss, color=GROUP_COLORS[0], linewidth=LINE_WIDTH, marker=marker, markersize=3, label="training")
    loss_ax.plot(epochs, val_loss, color=GROUP_COLORS[1], linewidth=LINE_WIDTH, marker=marker, markersize=3,
                 label="validation")
    both = np.concatenate([loss, val_loss])
    if np.all(both > 0) and both.max() / both.min() > 10:  # log scale only where it spans a decade
        loss_ax.set_yscale("log")
    _style(loss_ax, "epoch", "loss (masked MSE)", "learning curve")
    loss_ax.legend(fontsize="small", frameon=False)
    acc_ax.plot(epochs, val_acc, color=GROUP_COLORS[2], linewidth=LINE_WIDTH, marker=marker, markersize=3,
                label="validation accuracy")
    acc_ax.axhline(0.5, **REFERENCE_LINE)
    acc_ax.set_ylim(0.0, 1.02)
    _style(acc_ax, "epoch", "validation accuracy (fraction correct)", None if ax is not None else "accuracy")
    for a in (loss_ax, acc_ax):
        a.xaxis.get_major_locator().set_params(integer=True)
    return fig


def plot_psychometric(psychometric: Any, *, ax: Axes | None = None) -> Figure:
    """Fraction of +1 choices against each stimulus condition, one line per group (e.g. context).

    psychometric: an object with ``curves``, each curve having ``stimulus`` (condition name on the x axis),
    ``group`` (label, "" for all trials), ``values`` (points,), ``choices`` (points,) fraction of +1 decisions
    and ``trials`` (points,). One panel per stimulus condition (with ``ax``: every curve on ``ax``)."""
    _require(psychometric, "psychometric", ("curves",))
    curves = list(psychometric.curves)
    if not curves:
        raise RnnscopeError("psychometric: no curves to plot")
    stimuli = list(dict.fromkeys(c.stimulus for c in curves))
    if ax is None:
        fig, axes = _new(len(stimuli), PANEL_SIZE)
        panel_of = dict(zip(stimuli, axes, strict=True))
    else:
        fig, axes = ax.figure, [ax]
        panel_of = {s: ax for s in stimuli}
    groups = list(dict.fromkeys(c.group for c in curves))
    for curve in curves:
        panel = panel_of[curve.stimulus]
        color = GROUP_COLORS[groups.index(curve.group) % len(GROUP_COLORS)]
        values = np.asarray(curve.values, dtype=float)
        choices = np.asarray(curve.choices, dtype=float)
        trials = np.maximum(np.asarray(curve.trials, dtype=float), 1)
        error = np.sqrt(choices * (1 - choices) / trials)  # binomial standard error
        panel.errorbar(values, choices, yerr=error, color=color, marker="o", markersize=MARKER_SIZE / 2,
                       linewidth=LINE_WIDTH, capsize=2, label=curve.group or None, gid="psychometric")
    for stimulus in stimuli:
        panel = panel_of[stimulus]
        panel.axhline(0.5, **REFERENCE_LINE)
        panel.axvline(0.0, **REFERENCE_LINE)
        panel.set_ylim(-0.03, 1.03)
        _style(panel, f"{stimulus.replace('_', ' ')} (a.u.)", "P(choice = +1)", "psychometric curve")
        if any(g for g in groups):
            panel.legend(fontsize="small", frameon=False, loc="upper left")
    return fig


def plot_example_trials(examples: Any, *, dt_ms: float | None = None) -> Figure:
    """Inputs (top row) and target / network output (bottom row) of a few trials, one column per trial; the
    decision epoch (mask) is shaded.

    examples: an object with ``inputs`` (trials, time, inputs), ``targets`` and ``outputs`` (trials, time,
    outputs), ``mask`` (trials, time), ``input_names``, ``output_names``, ``labels`` (trials,) str and ``dt``
    (ms)."""
    _require(examples, "examples", ("inputs", "targets", "outputs", "mask", "input_names", "output_names", "labels", "dt"))
    inputs, targets, outputs = (np.asarray(a, dtype=float) for a in (examples.inputs, examples.targets, examples.outputs))
    mask = np.asarray(examples.mask, dtype=float)
    if inputs.ndim != 3 or targets.shape != outputs.shape or mask.shape != inputs.shape[:2]:
        raise RnnscopeError(f"examples: shapes inputs {inputs.shape}, targets {targets.shape}, outputs {outputs.shape}, "
                            f"mask {mask.shape} do not match")
    trials, steps = inputs.shape[:2]
    dt = float(examples.dt if dt_ms is None else dt_ms)
    time_ms = np.arange(steps) * dt
    fig = Figure(figsize=(PANEL_SIZE[0] * trials, PANEL_SIZE[1] * 1.4), layout="constrained")
    grid = fig.add_gridspec(2, trials, height_ratios=(1, 1))
    cmap = matplotlib.colormaps["tab10"]
    for k in range(trials):
        top = fig.add_subplot(grid[0, k])
        bottom = fig.add_subplot(grid[1, k], sharex=top)
        for i, name in enumerate(examples.input_names):
            top.plot(time_ms, inputs[k, :, i], color=cmap(i % 10), linewidth=0.8, label=name, gid="input")
        for o, name in enumerate(examples.output_names):
            bottom.plot(time_ms, targets[k, :, o], color="0.3", linewidth=LINE_WIDTH, linestyle="--",
                        label=f"target {name}" if len(examples.output_names) > 1 else "target")
            bottom.plot(time_ms, outputs[k, :, o], color=GROUP_COLORS[0], linewidth=LINE_WIDTH,
                        label=f"output {name}" if len(examples.output_names) > 1 else "output", gid="output")
        decision = np.flatnonzero(mask[k] > 0)
        if decision.size:
            for a in (top, bottom):
                a.axvspan(time_ms[decision[0]], time_ms[decision[-1]] + dt, color="0.85", zorder=0)
        bottom.axhline(0.0, **REFERENCE_LINE)
        bottom.set_ylim(-1.5, 1.5)
        _style(top, "time (ms)", "input (a.u.)" if k == 0 else "")
        top.set_title(str(examples.labels[k]).replace(", ", "\n"), fontsize=FONT_SIZE)
        _style(bottom, "time (ms)", "output (a.u.)" if k == 0 else "")
        if k == 0:
            top.legend(fontsize="x-small", frameon=False, loc="upper left")
            bottom.legend(fontsize="x-small", frameon=False, loc="lower left")
    return fig


def plot_effective_overlaps(
    groups: Mapping[str, Mapping[str, Any]], input_names: Sequence[str], *, epoch: str = "stimulus"
) -> Figure:
    """Gain-weighted overlaps per condition group (e.g. context) and task epoch.

    groups: {group label: {epoch: EffectiveOverlaps}} (``TaskAnalysis.groups``, or {"all trials": epochs}).
    Left: the leading eigenvalue of the effective recurrent overlap matrix per epoch (1 = the edge of
    instability, where the latent variable integrates); right: the effective input overlaps
    ``n_r . phi' w_in / size`` of every latent direction r during ``epoch``, one bar per (input, direction) and
    group."""
    labels = list(groups)
    if not labels:
        raise RnnscopeError("groups: nothing to plot")
    epochs = list(dict.fromkeys(e for g in labels for e in groups[g]))
    fig, (rec_ax, in_ax) = _new(2, (PANEL_SIZE[0] * 1.25, PANEL_SIZE[1]))
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        color = GROUP_COLORS[j % len(GROUP_COLORS)]
        values = [
            float(np.max(np.linalg.eigvals(groups[label][e].overlaps).real)) if e in groups[label] else np.nan
            for e in epochs
        ]
        rec_ax.bar(np.arange(len(epochs)) + (j - (len(labels) - 1) / 2) * width, values, width, color=color,
                   label=label, gid="effective-overlap")
        chosen = groups[label].get(epoch) or next(iter(groups[label].values()))
        matrix = np.atleast_2d(np.asarray(chosen.input_overlaps, dtype=float))  # (rank, inputs)
        inputs = matrix.T.ravel()  # every (input, latent direction) pair, grouped by input
        in_ax.bar(np.arange(len(inputs)) + (j - (len(labels) - 1) / 2) * width, inputs, width, color=color,
                  label=label, gid="effective-input-overlap")
        rank = matrix.shape[0]
    rec_ax.axhline(1.0, **REFERENCE_LINE)
    rec_ax.set_xticks(np.arange(len(epochs)), epochs, rotation=30, fontsize=FONT_SIZE)
    _style(rec_ax, "task epoch", r"effective overlap $\lambda_{max}(n\,\phi'\,m/N)$", "recurrent feedback")
    in_ax.axhline(0.0, color="0.6", linewidth=0.6)
    ticks = [n.replace("_", " ") if rank == 1 else f"n{r + 1}.{n.replace('_', ' ')}"
             for n in input_names for r in range(rank)]
    in_ax.set_xticks(np.arange(len(ticks)), ticks, rotation=30 if rank == 1 else 60, fontsize=FONT_SIZE)
    _style(in_ax, "input" if rank == 1 else "latent direction . input",
           r"effective input overlap $n_r\,\phi'\,w_{in}/N$", f"input drive ({epoch})")
    if len(labels) > 1:
        rec_ax.legend(fontsize="small", frameon=False)
        in_ax.legend(fontsize="small", frameon=False)
    return fig


def plot_resampling(resamplings: Sequence[Any], *, trained_accuracy: float | None = None,
                    ax: Axes | None = None) -> Figure:
    """Accuracy of networks resampled from population models: one column of points (one per network) and its
    mean for each model, the trained network's accuracy as a dashed line and chance (0.5) dotted.

    resamplings: objects with ``accuracy`` (networks,), ``populations`` (P), ``size`` and ``trained_accuracy``."""
    items = list(resamplings)
    if not items:
        raise RnnscopeError("resamplings: nothing to plot")
    for item in items:
        _require(item, "resamplings", ("accuracy", "populations", "size"))
    fig, ax = (ax.figure, ax) if ax is not None else (lambda f: (f[0], f[1][0]))(_new(1, FIGURE_SIZE))
    for i, item in enumerate(items):
        acc = np.asarray(item.accuracy, dtype=float)
        color = GROUP_COLORS[i % len(GROUP_COLORS)]
        ax.bar(i, float(np.mean(acc)), 0.6, color=color, alpha=0.35, gid="resampling-mean")
        ax.plot(i + np.linspace(-0.15, 0.15, acc.size), acc, "o", color=color, markersize=4, gid="resampling")
    if trained_accuracy is None:
        trained_accuracy = next((float(it.trained_accuracy) for it in items
                                 if np.isfinite(getattr(it, "trained_accuracy", np.nan))), None)
    if trained_accuracy is not None:
        ax.axhline(trained_accuracy, color="k", linestyle="--", linewidth=1.0, label="trained network")
        ax.legend(fontsize="small", frameon=False, loc="lower right")
    ax.axhline(0.5, **REFERENCE_LINE)
    names = [f"{it.populations} Gaussian" if it.populations == 1 else f"{it.populations} populations" for it in items]
    ax.set_xticks(np.arange(len(items)), names, fontsize=FONT_SIZE)
    ax.set_ylim(0.0, 1.02)
    _style(ax, f"population model (resampled networks, N = {items[0].size})", "accuracy (fraction correct)",
           "resampled networks")
    return fig
