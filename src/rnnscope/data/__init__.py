"""Recorded neural data: the population-structure analyses of networks (selectivity, ePAIRS, mixtures, task
projections) on neurons that no network produced, and networks exported as recordings for side-by-side
comparison. Files: ``load_recordings`` and ``save_recordings`` (the formats live in ``rnnscope.io``)."""

from rnnscope.data._analysis import (
    DataAnalysis,
    DataSelectivity,
    TaskProjection,
    analyze_recordings,
    data_epairs,
    data_populations,
    data_selectivity,
    task_projection,
)
from rnnscope.data._network import NOISE_MODELS, recordings_from_network
from rnnscope.data._recordings import Recordings, load_recordings, save_recordings
from rnnscope.data._synthetic import clustered_selectivity, synthetic_recordings

__all__ = [
    "Recordings",
    "load_recordings",
    "save_recordings",
    "DataSelectivity",
    "data_selectivity",
    "data_epairs",
    "data_populations",
    "TaskProjection",
    "task_projection",
    "DataAnalysis",
    "analyze_recordings",
    "NOISE_MODELS",
    "recordings_from_network",
    "clustered_selectivity",
    "synthetic_recordings",
]
