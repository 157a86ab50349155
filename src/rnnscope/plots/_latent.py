"""Figures of latent dynamics: flow fields, latent trajectories, rank-1 potentials and loading scatters.

Every function takes result objects (and an optional ``ax``), draws, and returns the Figure; none computes
dynamics, shows or saves.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rnnscope.analysis import FixedPointResult, FixedPoints, FlowField, LatentProjection, Potential
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankWeights
from rnnscope.plots._style import (
    CONDITION_CMAP,
    FIGURE_SIZE,
    FIXED_POINT_COLORS,
    FIXED_POINT_FILLED,
    FIXED_POINT_MARKERS,
    LABEL_SIZE,
    LINE_WIDTH,
    MARKER_SIZE,
    PANEL_SIZE,
    POPULATION_COLORS,
    SPEED_CMAP,
    TITLE_SIZE,
)

__all__ = ["plot_flow_field", "plot_trajectories", "plot_potential", "plot_loadings", "FIXED_POINT_GID"]

FIXED_POINT_GID = "fixed-point"  # gid of each fixed-point marker (one Line2D per point)


def _axes(ax: Axes | None, size=FIGURE_SIZE) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _points(fixed_points: FixedPointResult | FixedPoints | None) -> FixedPoints | None:
    if isinstance(fixed_points, FixedPointResult):
        return fixed_points.fixed_points
    if fixed_points is None or isinstance(fixed_points, FixedPoints):
        return fixed_points
    raise RnnscopeError(f"fixed_points: expected FixedPointResult or FixedPoints, got {type(fixed_points).__name__}")


def _mark_fixed_points(ax: Axes, points: FixedPoints, xy) -> None:
    seen: set[str] = set()
    for kappa, stability in zip(points.kappa, points.stability, strict=True):
        stability = str(stability)
        color = FIXED_POINT_COLORS[stability]
        x, y = xy(kappa)
        ax.plot(
            [x],
            [y],
            linestyle="none",
            marker=FIXED_POINT_MARKERS[stability],
            markersize=MARKER_SIZE,
            markerfacecolor=color if FIXED_POINT_FILLED[stability] else "white",
            markeredgecolor=color,
            markeredgewidth=1.5,
            zorder=5,
            gid=FIXED_POINT_GID,
            label=stability if stability not in seen else None,
        )
        seen.add(stability)
    if seen:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.8)


def plot_flow_field(
    flow: FlowField, fixed_points: FixedPointResult | FixedPoints | None = None, *, ax: Axes | None = None
) -> Figure:
    """Speed |dkappa/dt| as a colour map with streamlines over (kappa_1, kappa_2) and one marker per fixed
    point (stable, saddle, source, marginal). Rank 1: dkappa/dt against kappa. Higher ranks: the kappa_3.. = 0
    slice, with fixed points projected on it."""
    if not isinstance(flow, FlowField):
        raise RnnscopeError(f"flow: expected FlowField, got {type(flow).__name__}")
    points = _points(fixed_points)
    fig, ax = _axes(ax)
    if flow.rank == 1:
        kappa, velocity = flow.kappa[0, :, 0], flow.velocity[0, :, 0]
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.plot(kappa, velocity, color="k", linewidth=LINE_WIDTH)
        ax.set_xlabel(r"$\kappa$", fontsize=LABEL_SIZE)
        ax.set_ylabel(r"$d\kappa/dt$ (1/$\tau$)", fontsize=LABEL_SIZE)
        if points is not None:
            _mark_fixed_points(ax, points, lambda k: (k[0], 0.0))
    else:
        k1, k2 = flow.kappa[0, :, 0], flow.kappa[:, 0, 1]
        mesh = ax.pcolormesh(k1, k2, flow.speed, cmap=SPEED_CMAP, shading="auto", rasterized=True)
        fig.colorbar(mesh, ax=ax, label=r"speed $|d\kappa/dt|$ (1/$\tau$)")
        ax.streamplot(
            k1,
            k2,
            flow.velocity[..., 0],
            flow.velocity[..., 1],
            color="tab:blue",
            density=1.0,
            linewidth=0.7,
            arrowsize=0.8,
        )
        ax.set_xlim(k1[0], k1[-1])
        ax.set_ylim(k2[0], k2[-1])
        ax.set_xlabel(r"$\kappa_1$", fontsize=LABEL_SIZE)
        ax.set_ylabel(r"$\kappa_2$", fontsize=LABEL_SIZE)
        ax.set_aspect("equal", adjustable="box")
        if points is not None:
            _mark_fixed_points(ax, points, lambda k: (k[0], k[1]))
    title = "mean-field flow" if flow.mean_field else "flow"
    if np.any(flow.inputs != 0):
        title += " (input " + ", ".join(f"{v:g}" for v in flow.inputs) + ")"
    ax.set_title(title, fontsize=TITLE_SIZE)
    return fig


def plot_trajectories(
    projection: LatentProjection,
    conditions: np.ndarray | None = None,
    *,
    dt_ms: float = 20.0,
    ax: Axes | None = None,
    fixed_points: FixedPointResult | FixedPoints | None = None,
) -> Figure:
    """Latent trajectories, one line per trial (projection.kappa: (trials, time, rank)), coloured by
    ``conditions``: (trials,) values (e.g. coherence; same value, same colour). Rank >= 2: kappa_2 against
    kappa_1 (start marked by a dot); rank 1: kappa against time in ms."""
    if not isinstance(projection, LatentProjection):
        raise RnnscopeError(f"projection: expected LatentProjection, got {type(projection).__name__}")
    kappa = projection.kappa
    if kappa.ndim != 3:
        raise RnnscopeError(f"projection.kappa: expected (trials, time, rank), got shape {kappa.shape}")
    trials = kappa.shape[0]
    if conditions is None:
        conditions = np.zeros(trials)
    conditions = np.asarray(conditions)
    if conditions.shape != (trials,):
        raise RnnscopeError(f"conditions: expected shape ({trials},), got {conditions.shape}")
    values = np.unique(conditions)
    import matplotlib

    cmap = matplotlib.colormaps[CONDITION_CMAP]
    colors = {v: cmap(i / max(len(values) - 1, 1)) if len(values) > 1 else "k" for i, v in enumerate(values)}
    fig, ax = _axes(ax)
    labelled: set = set()
    for trial in range(trials):
        value = conditions[trial]
        label = None if value in labelled or len(values) == 1 else f"{value:g}" if np.isreal(value) else str(value)
        labelled.add(value)
        if kappa.shape[2] == 1:
            time_ms = np.arange(kappa.shape[1]) * dt_ms
            ax.plot(
                time_ms, kappa[trial, :, 0], color=colors[value], linewidth=LINE_WIDTH, label=label, gid="trajectory"
            )
        else:
            ax.plot(
                kappa[trial, :, 0],
                kappa[trial, :, 1],
                color=colors[value],
                linewidth=LINE_WIDTH,
                label=label,
                gid="trajectory",
            )
            ax.plot(kappa[trial, :1, 0], kappa[trial, :1, 1], "o", color=colors[value], markersize=3)
    if kappa.shape[2] == 1:
        ax.set_xlabel("time (ms)", fontsize=LABEL_SIZE)
        ax.set_ylabel(r"$\kappa$", fontsize=LABEL_SIZE)
    else:
        ax.set_xlabel(r"$\kappa_1$", fontsize=LABEL_SIZE)
        ax.set_ylabel(r"$\kappa_2$", fontsize=LABEL_SIZE)
        points = _points(fixed_points)
        if points is not None:
            _mark_fixed_points(ax, points, lambda k: (k[0], k[1]))
    if len(values) > 1:
        ax.legend(title="condition", fontsize="small", loc="best")
    ax.set_title("latent trajectories", fontsize=TITLE_SIZE)
    return fig


def plot_potential(
    potential: Potential, fixed_points: FixedPointResult | FixedPoints | None = None, *, ax: Axes | None = None
) -> Figure:
    """Rank-1 potential V(kappa) (dkappa/dt = -dV/dkappa) with the fixed points marked on the curve."""
    if not isinstance(potential, Potential):
        raise RnnscopeError(f"potential: expected Potential, got {type(potential).__name__}")
    fig, ax = _axes(ax)
    ax.plot(potential.kappa, potential.value, color="k", linewidth=LINE_WIDTH, gid="potential")
    points = _points(fixed_points)
    if points is not None:
        _mark_fixed_points(ax, points, lambda k: (k[0], float(np.interp(k[0], potential.kappa, potential.value))))
    ax.set_xlabel(r"$\kappa$", fontsize=LABEL_SIZE)
    ax.set_ylabel(r"potential $V(\kappa)$", fontsize=LABEL_SIZE)
    ax.set_title("mean-field potential" if potential.mean_field else "potential", fontsize=TITLE_SIZE)
    return fig


def plot_loadings(
    weights: LowRankWeights,
    populations: np.ndarray | None = None,
    *,
    ax: Axes | None = None,
    component: int | None = None,
) -> Figure:
    """Scatter of each neuron's n_r against m_r, coloured by population (populations: (size,) labels).

    With ``ax``, one panel for ``component`` (default 0); without, one panel per rank component."""
    if not isinstance(weights, LowRankWeights):
        raise RnnscopeError(f"weights: expected LowRankWeights, got {type(weights).__name__}")
    if populations is None:
        populations = np.zeros(weights.size, dtype=int)
    populations = np.asarray(populations)
    if populations.shape != (weights.size,):
        raise RnnscopeError(f"populations: expected shape ({weights.size},), got {populations.shape}")
    components = range(weights.rank) if (ax is None and component is None) else [0 if component is None else component]
    for r in components:
        if not 0 <= r < weights.rank:
            raise RnnscopeError(f"component: must be in [0, {weights.rank - 1}], got {r}")
    components = list(components)
    if ax is None:
        fig = Figure(figsize=(PANEL_SIZE[0] * len(components), PANEL_SIZE[1]), layout="constrained")
        axes = [fig.add_subplot(1, len(components), i + 1) for i in range(len(components))]
    else:
        fig, axes = ax.figure, [ax]
    labels = np.unique(populations)
    for panel, r in zip(axes, components, strict=True):
        for i, label in enumerate(labels):
            rows = populations == label
            panel.scatter(
                weights.m[rows, r],
                weights.n[rows, r],
                s=6,
                alpha=0.6,
                color=POPULATION_COLORS[i % len(POPULATION_COLORS)],
                label=str(label) if len(labels) > 1 else None,
                gid="loadings",
            )
        panel.axhline(0.0, color="0.7", linewidth=0.6)
        panel.axvline(0.0, color="0.7", linewidth=0.6)
        panel.set_xlabel(f"$m_{r + 1}$", fontsize=LABEL_SIZE)
        panel.set_ylabel(f"$n_{r + 1}$", fontsize=LABEL_SIZE)
        if len(labels) > 1:
            panel.legend(title="population", fontsize="small", markerscale=2)
    return fig
