"""The study's figure: networks in an MDS embedding, coloured by architecture (plots-style: returns the Figure,
never saves or shows it, sets no global rcParams)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["plot_mds"]

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
