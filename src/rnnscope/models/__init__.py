"""Rate networks: low-rank and full-rank, their weights as NumPy snapshots, and the shared time loop."""

from rnnscope.models._core import draw_noise, input_drive, integrate
from rnnscope.models._rate import (
    FullRankRNN,
    LowRankRNN,
    ModelConfig,
    RateRNN,
    build_model,
    model_from_weights,
    truncate,
)
from rnnscope.models._weights import FullRankWeights, LowRankWeights, RateWeights

__all__ = [
    "ModelConfig",
    "RateRNN",
    "LowRankRNN",
    "FullRankRNN",
    "LowRankWeights",
    "FullRankWeights",
    "RateWeights",
    "build_model",
    "model_from_weights",
    "truncate",
    "integrate",
    "input_drive",
    "draw_noise",
]
