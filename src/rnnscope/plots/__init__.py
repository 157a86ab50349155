"""Figures: each function takes result objects and an optional ``ax`` and returns a matplotlib Figure."""

from rnnscope.plots._behaviour import plot_choice_table
from rnnscope.plots._data import plot_selectivity_signal, plot_task_projection
from rnnscope.plots._latent import FIXED_POINT_GID, plot_flow_field, plot_loadings, plot_potential, plot_trajectories
from rnnscope.plots._populations import (
    plot_bic,
    plot_epairs,
    plot_inactivation,
    plot_loading_pairs,
    plot_resampled_accuracy,
)
from rnnscope.plots._report import (
    plot_effective_overlaps,
    plot_example_trials,
    plot_learning_curves,
    plot_psychometric,
    plot_resampling,
)
from rnnscope.plots._style import PANEL_SIZE

__all__ = [
    "plot_selectivity_signal",
    "plot_task_projection",
    "plot_flow_field",
    "plot_trajectories",
    "plot_potential",
    "plot_loadings",
    "FIXED_POINT_GID",
    "plot_loading_pairs",
    "plot_bic",
    "plot_resampled_accuracy",
    "plot_epairs",
    "plot_inactivation",
    "plot_learning_curves",
    "plot_psychometric",
    "plot_example_trials",
    "plot_effective_overlaps",
    "plot_resampling",
    "plot_choice_table",
    "PANEL_SIZE",
]
