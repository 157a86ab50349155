"""Rate networks: low-rank and full-rank, their weights as NumPy snapshots, the shared time loop (PyTorch) and
the fused CPU kernels (numba) that train and simulate them fast."""

from rnnscope.models._core import draw_noise, input_drive, integrate
from rnnscope.models._fast import (
    fast_loss,
    fast_loss_ensemble,
    fast_noise,
    fast_outputs,
    fast_path_supported,
    fast_trajectories,
    stack_parameters,
    warm_up,
)
from rnnscope.models._rate import (
    FullRankRNN,
    LowRankRNN,
    ModelConfig,
    RateRNN,
    build_model,
    model_from_weights,
    truncate,
)
from rnnscope.models._weights import FullRankWeights, LowRankBatch, LowRankWeights, RateWeights, stack_weights

__all__ = [
    "ModelConfig",
    "RateRNN",
    "LowRankRNN",
    "FullRankRNN",
    "LowRankWeights",
    "FullRankWeights",
    "RateWeights",
    "LowRankBatch",
    "stack_weights",
    "build_model",
    "model_from_weights",
    "truncate",
    "integrate",
    "input_drive",
    "draw_noise",
    "fast_loss",
    "fast_loss_ensemble",
    "fast_noise",
    "fast_outputs",
    "fast_trajectories",
    "fast_path_supported",
    "stack_parameters",
    "warm_up",
]
