"""Per-task behaviour figures beyond psychometric curves: dms match / non-match accuracy per sample-test pair and
the romo f1-f2 decision map, both from a ``ChoiceTable``. Nothing computed, nothing saved."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rnnscope.errors import RnnscopeError
from rnnscope.plots._style import FIGURE_SIZE, FONT_SIZE, LABEL_SIZE, TITLE_SIZE

__all__ = ["plot_choice_table"]


def plot_choice_table(table: Any, *, ax: Axes | None = None) -> Figure:
    """A heat map of a ``ChoiceTable``: accuracy per (row, column) pair when ``table.shows == "accuracy"`` (dms:
    sample x test, match cells on the diagonal), else the fraction of +1 choices (romo: f1 x f2, the decision map),
    each cell annotated with its value.

    table: an object with ``rows``, ``columns`` (condition names), ``row_names``, ``column_names``, ``choices``
    and ``accuracy`` (rows, columns), ``trials`` (rows, columns) and ``shows``."""
    for name in ("rows", "columns", "row_names", "column_names", "choices", "accuracy", "shows"):
        if not hasattr(table, name):
            raise RnnscopeError(f"table: expected a ChoiceTable-like object (missing {name!r})")
    values = np.asarray(table.accuracy if table.shows == "accuracy" else table.choices, dtype=float)
    if values.ndim != 2 or values.shape != (len(table.row_names), len(table.column_names)):
        raise RnnscopeError(f"table: values of shape {values.shape} do not match {len(table.row_names)} rows and "
                            f"{len(table.column_names)} columns")
    if ax is None:
        fig = Figure(figsize=FIGURE_SIZE, layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    cmap = "viridis" if table.shows == "accuracy" else "coolwarm"
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, origin="lower", aspect="auto",
                      gid=f"choice-table-{table.shows}")
    if values.size <= 144:
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=FONT_SIZE - 2,
                            color="white" if (values[i, j] < 0.5) == (table.shows == "accuracy") else "black")
    ax.set_xticks(np.arange(len(table.column_names)), list(table.column_names), fontsize=FONT_SIZE)
    ax.set_yticks(np.arange(len(table.row_names)), list(table.row_names), fontsize=FONT_SIZE)
    ax.set_xlabel(table.columns.replace("_", " "), fontsize=LABEL_SIZE)
    ax.set_ylabel(table.rows.replace("_", " "), fontsize=LABEL_SIZE)
    title = "accuracy per pair" if table.shows == "accuracy" else "decision map: P(choice = +1)"
    ax.set_title(title, fontsize=TITLE_SIZE)
    fig.colorbar(image, ax=ax, label="fraction correct" if table.shows == "accuracy" else "P(choice = +1)")
    return fig
