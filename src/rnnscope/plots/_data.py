"""Figures of recorded-data analyses: selectivity signal over time and task projections. ePAIRS and BIC figures
are those of networks (``plot_epairs``, ``plot_bic``). Every function draws and returns the Figure."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rnnscope.data import DataSelectivity, TaskProjection
from rnnscope.plots._style import (
    CONDITION_CMAP,
    FIGURE_SIZE,
    GROUP_COLORS,
    LABEL_SIZE,
    LINE_WIDTH,
    PANEL_SIZE,
    TITLE_SIZE,
)

__all__ = ["plot_selectivity_signal", "plot_task_projection"]


def plot_selectivity_signal(result: DataSelectivity, *, ax: Axes | None = None) -> Figure:
    """Each variable's (cross-validated) selectivity signal over time, its chosen peak marked."""
    if ax is None:
        fig = Figure(figsize=FIGURE_SIZE, layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    for v, name in enumerate(result.variables):
        color = GROUP_COLORS[v % len(GROUP_COLORS)]
        ax.plot(result.time_ms, result.signal[:, v], color=color, linewidth=LINE_WIDTH, label=name, gid="signal")
        step = result.peak_steps[v]
        ax.plot([result.time_ms[step]], [result.signal[step, v]], "o", color=color, gid="peak")
    ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel("time (ms)", fontsize=LABEL_SIZE)
    ax.set_ylabel("|beta|^2" + (" (cross-validated)" if result.cross_validated else ""), fontsize=LABEL_SIZE)
    ax.set_title("selectivity over time", fontsize=TITLE_SIZE)
    ax.legend(fontsize=7, frameon=False)
    return fig


def plot_task_projection(result: TaskProjection, *, x: int = 0, y: int = 1, colour: int | None = None) -> Figure:
    """Condition-averaged trajectories on task axes ``x`` against ``y`` (indices into ``result.variables``),
    coloured by the value of variable ``colour`` (default ``x``)."""
    count = len(result.variables)
    x, y = min(x, count - 1), min(y, count - 1)
    colour = x if colour is None else colour
    fig = Figure(figsize=(PANEL_SIZE[0] * 1.3, PANEL_SIZE[1] * 1.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    values = result.values[:, colour]
    span = np.ptp(values) or 1.0
    import matplotlib

    cmap = matplotlib.colormaps[CONDITION_CMAP]
    for c in range(result.projections.shape[0]):
        ax.plot(result.projections[c, :, x], result.projections[c, :, y], color=cmap((values[c] - values.min()) / span),
                linewidth=LINE_WIDTH * 0.8, alpha=0.8, gid="trajectory")
    ax.set_xlabel(f"{result.variables[x]} axis", fontsize=LABEL_SIZE)
    ax.set_ylabel(f"{result.variables[y]} axis", fontsize=LABEL_SIZE)
    ax.set_title(f"task axes, coloured by {result.variables[colour]}", fontsize=TITLE_SIZE)
    return fig
