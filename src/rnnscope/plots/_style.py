"""Style constants shared by every rnnscope figure (passed to matplotlib calls; global rcParams are never set)."""

from __future__ import annotations

from types import MappingProxyType

__all__ = [
    "FIXED_POINT_COLORS",
    "FIXED_POINT_MARKERS",
    "FIXED_POINT_FILLED",
    "SPEED_CMAP",
    "CONDITION_CMAP",
    "POPULATION_COLORS",
    "FONT_SIZE",
    "LABEL_SIZE",
    "TITLE_SIZE",
    "FIGURE_SIZE",
    "PANEL_SIZE",
    "MARKER_SIZE",
    "LINE_WIDTH",
    "GROUP_COLORS",
    "REFERENCE_LINE",
]

# fixed-point classes: filled = attracting, open = repelling in at least one direction
FIXED_POINT_COLORS = {"stable": "#1b1b1b", "saddle": "#d95f02", "source": "#7570b3", "marginal": "#1b9e77"}
FIXED_POINT_MARKERS = {"stable": "o", "saddle": "X", "source": "s", "marginal": "D"}
FIXED_POINT_FILLED = {"stable": True, "saddle": True, "source": False, "marginal": True}

SPEED_CMAP = "Greys"  # |dkappa/dt|, light = slow
CONDITION_CMAP = "coolwarm"  # ordered task conditions (e.g. coherence)
POPULATION_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")

FONT_SIZE = 9
LABEL_SIZE = 10
TITLE_SIZE = 11
FIGURE_SIZE = (4.2, 3.6)  # inches, one panel
PANEL_SIZE = (3.2, 3.0)  # inches per panel in multi-panel figures
MARKER_SIZE = 8
LINE_WIDTH = 1.2

# unordered groups in one panel (training / validation, contexts, population models)
GROUP_COLORS = ("#1f77b4", "#d95f02", "#2ca02c", "#7570b3", "#e7298a", "#66a61e")
# chance level, zero, edge of instability
REFERENCE_LINE = MappingProxyType({"color": "0.55", "linestyle": ":", "linewidth": 0.9})
