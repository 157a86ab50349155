"""Populations of networks and the universality study (Maheswaranathan et al. 2019): train many vanilla/gated
networks (worker processes on CPU, stacked on CUDA), resumably, then compare their geometry and topology."""

from rnnscope.sweep._plots import plot_mds
from rnnscope.sweep._train import (
    NetworkRecord,
    Population,
    SweepTraining,
    TrainedNetwork,
    run_name,
    score_outputs,
    train_network,
    train_population,
)
from rnnscope.sweep._universality import (
    PAPER_L2,
    PAPER_SIZES,
    TABLE_COLUMNS,
    StudyAnalysis,
    UniversalityStudy,
    analyse_population,
    grid_configs,
    paper_grid,
    universality_study,
)

__all__ = [
    "SweepTraining",
    "TrainedNetwork",
    "NetworkRecord",
    "Population",
    "score_outputs",
    "train_network",
    "train_population",
    "run_name",
    "PAPER_SIZES",
    "PAPER_L2",
    "TABLE_COLUMNS",
    "StudyAnalysis",
    "UniversalityStudy",
    "grid_configs",
    "paper_grid",
    "analyse_population",
    "universality_study",
    "plot_mds",
]
