"""Figures of population structure: loading pair plots, BIC curves, resampled accuracy per P, ePAIRS histograms,
inactivation per condition group.

Every function takes result objects (and an optional ``ax``/``axes``), draws, and returns the Figure; none
computes, shows or saves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rnnscope.analysis import EpairsResult, Inactivation, Loadings, MinimalPopulations, PopulationFit
from rnnscope.errors import RnnscopeError
from rnnscope.plots._style import (
    FIGURE_SIZE,
    GROUP_COLORS,
    LABEL_SIZE,
    LINE_WIDTH,
    MARKER_SIZE,
    POPULATION_COLORS,
    REFERENCE_LINE,
    TITLE_SIZE,
)

__all__ = [
    "plot_loading_pairs",
    "plot_bic",
    "plot_resampled_accuracy",
    "plot_epairs",
    "plot_inactivation",
]


def _figure_and_ax(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=FIGURE_SIZE, layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def plot_loading_pairs(
    points: Loadings,
    populations: np.ndarray | None = None,
    *,
    columns: Sequence[str] | None = None,
    axes: np.ndarray | None = None,
) -> Figure:
    """Pair plot of loading columns, one dot per neuron coloured by population: histograms on the diagonal,
    scatters elsewhere. columns: which labels (default: all); axes: an optional (k, k) array of Axes."""
    columns = tuple(points.columns if columns is None else columns)
    unknown = [c for c in columns if c not in points.columns]
    if unknown:
        raise RnnscopeError(f"columns: {unknown[0]!r} is not a loading column ({', '.join(points.columns)})")
    labels = np.zeros(points.size, dtype=int) if populations is None else np.asarray(populations)
    if labels.shape != (points.size,):
        raise RnnscopeError(f"populations: expected shape ({points.size},), got {labels.shape}")
    k = len(columns)
    if axes is None:
        fig = Figure(figsize=(1.6 * k + 0.6, 1.6 * k + 0.4), layout="constrained")
        axes = np.asarray(fig.subplots(k, k, squeeze=False))
    else:
        axes = np.asarray(axes)
        if axes.shape != (k, k):
            raise RnnscopeError(f"axes: expected a ({k}, {k}) array of Axes, got shape {axes.shape}")
        fig = axes[0, 0].figure
    index = [points.columns.index(c) for c in columns]
    groups = np.unique(labels)
    for row, a in enumerate(index):
        for col, b in enumerate(index):
            panel = axes[row, col]
            for g, label in enumerate(groups):
                color = POPULATION_COLORS[g % len(POPULATION_COLORS)]
                members = labels == label
                if row == col:
                    panel.hist(points.values[members, a], bins=30, color=color, alpha=0.5, histtype="stepfilled")
                else:
                    panel.scatter(
                        points.values[members, b], points.values[members, a], s=3, alpha=0.5, color=color,
                        label=f"population {label}" if (row, col) == (0, 1) else None, gid="loadings",
                    )
            if row == k - 1:
                panel.set_xlabel(columns[col], fontsize=LABEL_SIZE)
            if col == 0:
                panel.set_ylabel(columns[row], fontsize=LABEL_SIZE)
            panel.tick_params(labelsize=7)
    if len(groups) > 1 and k > 1:
        axes[0, 1].legend(fontsize=7, frameon=False, markerscale=3)
    return fig


def plot_bic(fit: PopulationFit, *, ax: Axes | None = None) -> Figure:
    """BIC against the number of populations, the chosen P marked, label agreement of the restarts (ARI) on a twin axis."""
    fig, ax = _figure_and_ax(ax)
    counts = np.arange(1, fit.max_populations + 1)
    ax.plot(counts, fit.bic, "o-", color=GROUP_COLORS[0], linewidth=LINE_WIDTH, markersize=MARKER_SIZE / 2, gid="bic")
    ax.plot([fit.chosen], [fit.bic[fit.chosen - 1]], "*", color=GROUP_COLORS[1], markersize=MARKER_SIZE * 1.5,
            gid="chosen")
    ax.set_xlabel("populations P", fontsize=LABEL_SIZE)
    ax.set_ylabel("BIC", fontsize=LABEL_SIZE)
    ax.set_xticks(counts)
    twin = ax.twinx()
    twin.plot(counts, fit.label_agreement, "s--", color="0.5", linewidth=LINE_WIDTH * 0.8, markersize=MARKER_SIZE / 2.5,
              gid="label_agreement")
    twin.set_ylim(-0.05, 1.05)
    twin.set_ylabel("label agreement (ARI)", fontsize=LABEL_SIZE, color="0.4")
    ax.set_title(f"{fit.method} mixture: P = {fit.chosen}", fontsize=TITLE_SIZE)
    return fig


def plot_resampled_accuracy(result: MinimalPopulations, *, ax: Axes | None = None) -> Figure:
    """Accuracy of each resampled network per number of populations (and after retraining, when the search
    retrained), the trained accuracy and its tolerance."""
    fig, ax = _figure_and_ax(ax)
    for p, row in enumerate(result.accuracy):
        values = row[~np.isnan(row)]
        if values.size == 0:
            continue
        jitter = np.linspace(-0.1, 0.1, values.size) if values.size > 1 else np.zeros(1)  # spread, not random
        ax.scatter(np.full(values.size, p + 1) + jitter, values, s=MARKER_SIZE * 1.5, alpha=0.6,
                   color=GROUP_COLORS[0], gid="networks")
        ax.plot([p + 0.75, p + 1.25], [values.mean()] * 2, color="k", linewidth=LINE_WIDTH * 1.5, gid="mean")
    if result.retrain:  # accuracies after retraining the mixture, beside those before
        for p, row in enumerate(result.retrained_accuracy):
            values = row[~np.isnan(row)]
            if values.size == 0:
                continue
            jitter = np.linspace(-0.1, 0.1, values.size) if values.size > 1 else np.zeros(1)  # spread, not random
            ax.scatter(np.full(values.size, p + 1.3) + jitter, values, s=MARKER_SIZE * 1.5, alpha=0.6, marker="^",
                       color=GROUP_COLORS[2], gid="retrained", label="after retraining" if p == 0 else None)
    ax.axhline(result.trained_accuracy, color=GROUP_COLORS[1], linewidth=LINE_WIDTH, label="trained", gid="trained")
    ax.axhline(result.trained_accuracy - result.tolerance, **REFERENCE_LINE)
    ax.axhline(0.5, **REFERENCE_LINE)
    ax.set_xticks(np.arange(1, result.accuracy.shape[0] + 1))
    ax.set_xlabel("populations P", fontsize=LABEL_SIZE)
    ax.set_ylabel("accuracy of resampled networks", fontsize=LABEL_SIZE)
    ax.set_ylim(0.0, 1.02)
    found = "none" if result.populations is None else str(result.populations)
    ax.set_title(f"minimal P: {found}", fontsize=TITLE_SIZE)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return fig


def plot_epairs(result: EpairsResult, *, ax: Axes | None = None, bins: int = 40) -> Figure:
    """Histogram of the data's nearest-neighbour angles against the null's (densities), with both medians."""
    fig, ax = _figure_and_ax(ax)
    edges = np.linspace(0.0, max(result.null_angles.max(), result.data_angles.max()), bins + 1)
    ax.hist(result.null_angles.ravel(), bins=edges, density=True, histtype="step", color="k",
            linewidth=LINE_WIDTH, label="Gaussian null", gid="null")
    ax.hist(result.data_angles, bins=edges, density=True, color=GROUP_COLORS[0], alpha=0.6, label="data", gid="data")
    ax.axvline(np.median(result.null_angles), color="k", linestyle="--", linewidth=LINE_WIDTH * 0.8)
    ax.axvline(np.median(result.data_angles), color=GROUP_COLORS[0], linestyle="--", linewidth=LINE_WIDTH * 0.8)
    ax.set_xlabel(f"angle to {result.neighbours} nearest neighbours (rad)", fontsize=LABEL_SIZE)
    ax.set_ylabel("density", fontsize=LABEL_SIZE)
    ax.set_title(f"ePAIRS: c = {result.c:.2f}, p = {result.p_value:.1e}", fontsize=TITLE_SIZE)
    ax.legend(fontsize=8, frameon=False)
    return fig


def plot_inactivation(result: Inactivation, *, ax: Axes | None = None) -> Figure:
    """Grouped bars: accuracy per condition group for the intact network and each scaled population."""
    fig, ax = _figure_and_ax(ax)
    variants = ["intact"] + [f"population {p}" for p in range(result.populations)]
    width = 0.8 / len(result.groups)
    x = np.arange(len(variants))
    for g, group in enumerate(result.groups):
        ax.bar(x + (g - (len(result.groups) - 1) / 2) * width, result.accuracy[:, g], width=width,
               color=GROUP_COLORS[g % len(GROUP_COLORS)], label=f"{result.group_by} = {group}", gid="accuracy")
    ax.axhline(0.5, **REFERENCE_LINE)
    ax.set_xticks(x, variants, fontsize=8)
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("accuracy", fontsize=LABEL_SIZE)
    ax.set_title("silenced" if result.gain == 0 else f"gain {result.gain:g}", fontsize=TITLE_SIZE)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return fig
