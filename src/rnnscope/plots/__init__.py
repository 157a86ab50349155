"""Figures: each function takes result objects and an optional ``ax`` and returns a matplotlib Figure."""

from rnnscope.plots._latent import FIXED_POINT_GID, plot_flow_field, plot_loadings, plot_potential, plot_trajectories

__all__ = ["plot_flow_field", "plot_trajectories", "plot_potential", "plot_loadings", "FIXED_POINT_GID"]
