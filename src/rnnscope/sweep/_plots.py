"""The study's figure: networks in an MDS embedding, coloured by architecture (plots-style: returns the Figure,
never saves or shows it, sets no global rcParams)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["plot_mds", "plot_epairs_c", "plot_accuracy_comparison"]

_COLOURS = {"vanilla": "#4c72b0", "ugrnn": "#dd8452", "gru": "#55a868", "lstm": "#c44e52"}


def plot_mds(coordinates: np.ndarray, labels: Sequence[str], *, title: str = "", ax=None):
    """coordinates: (networks, 2) MDS coordinates; labels: (networks,) architecture of each network. Returns the
    Figure (of ``ax`` when given)."""
    import matplotlib.pyplot as plt

    coordinates = np.asarray(coordinates, dtype=np.float64)
    if ax is None:
        figure, ax = plt.subplots(figsize=(4.5, 4))
    else:
        figure = ax.figure
    for label in dict.fromkeys(labels):
        chosen = np.array([lab == label for lab in labels])
        ys = coordinates[chosen, 1] if coordinates.shape[1] > 1 else np.zeros(int(chosen.sum()))
        ax.scatter(coordinates[chosen, 0], ys, s=30, label=label, color=_COLOURS.get(label), alpha=0.8)
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    return figure


# --- Dubreuil, Valente et al. 2022 reproduction (rnnscope.sweep reproduce_dubreuil2022) ---------------------------

_OURS = "#4c72b0"
_RESAMPLED = "#dd8452"
_PAPER = "#1b1b1b"


def _kept(values) -> np.ndarray:
    return np.asarray([float(v) for v in values if v is not None and np.isfinite(float(v))], dtype=np.float64)


def plot_epairs_c(comparison, *, ax=None):
    """The distribution of the connectivity-space ePAIRS effect size c across one task's networks (a
    ``TaskComparison``): a histogram, this study's median (dashed), and the paper's median (solid) with its
    quartiles (band). Returns the Figure."""
    from matplotlib.figure import Figure

    if ax is None:  # outside pyplot: nothing global to close
        figure = Figure(figsize=(4.2, 3.2))
        ax = figure.subplots()
    else:
        figure = ax.figure
    values = _kept(comparison.epairs_c)
    paper = comparison.paper
    if values.size:
        low = min(values.min(), 0.0)  # c is negative when the data are less clustered than the null median
        high = max(values.max(), paper.c_high if paper is not None else 0.0)
        pad = 0.05 * (high - low) + 1e-9
        ax.hist(values, bins=np.linspace(low - pad, high + pad, 25), color=_OURS, alpha=0.75, edgecolor="white",
                label=f"this study ({values.size} networks)")
        ax.axvline(float(np.median(values)), color=_OURS, linestyle="--", linewidth=1.5,
                   label=f"median {np.median(values):.2f}")
    else:
        ax.text(0.5, 0.5, "no ePAIRS result", transform=ax.transAxes, ha="center", va="center")
    if paper is not None:
        ax.axvspan(paper.c_low, paper.c_high, color=_PAPER, alpha=0.12, label="paper quartiles")
        ax.axvline(paper.c_median, color=_PAPER, linewidth=1.5, label=f"paper median {paper.c_median:.2f}")
    ax.set_xlabel("ePAIRS effect size c (connectivity)")
    ax.set_ylabel("networks")
    counts = (f"p < 5e-4: {comparison.significant_strict}/{comparison.epairs_tested}, p < 0.05: "
              f"{comparison.significant}/{comparison.epairs_tested}")
    if paper is not None:
        counts += f"\npaper: {paper.significant_strict}/{paper.networks}, {paper.significant}/{paper.networks}"
    ax.set_title(f"{comparison.task}\n{counts}", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=7)
    return figure


def plot_accuracy_comparison(comparison, *, ax=None):
    """Trained and single-Gaussian resampled accuracy of every network, per task (a ``Comparison``): dots per
    network, bars at this study's means, and the paper's means as black markers. Returns the Figure."""
    from matplotlib.figure import Figure

    tasks = comparison.tasks
    if ax is None:
        figure = Figure(figsize=(1.3 * len(tasks) + 2.0, 3.4))
        ax = figure.subplots()
    else:
        figure = ax.figure
    for index, task in enumerate(tasks):
        for offset, values, colour, name in ((-0.17, task.accuracy, _OURS, "trained"),
                                             (0.17, task.resampled_accuracy, _RESAMPLED, "single-Gaussian resampled")):
            kept = _kept(values)
            x = index + offset
            if kept.size:
                ax.scatter(x + np.linspace(-0.06, 0.06, kept.size), kept, s=10, color=colour, alpha=0.6,
                           label=name if index == 0 else None)
                ax.hlines(kept.mean(), x - 0.12, x + 0.12, color=colour, linewidth=2.0)
        if task.paper is not None:
            ax.scatter([index - 0.17, index + 0.17], [task.paper.accuracy, task.paper.resampled_accuracy], marker="*",
                       s=70, color=_PAPER, zorder=3, label="paper" if index == 0 else None)
    ax.set_xticks(range(len(tasks)), [t.task for t in tasks])
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.0, 1.05)
    ax.axhline(0.5, color="#999999", linewidth=0.8, linestyle=":")
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    ax.set_title("trained vs single-Gaussian resampled networks", fontsize=9)
    return figure
