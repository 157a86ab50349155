"""Training (masked MSE, Adam, checkpoints, curricula) and evaluation of rate networks."""

from rnnscope.training._ensemble import EnsembleResult, train_ensemble
from rnnscope.training._evaluate import Evaluation, evaluate, simulate, torch_generator
from rnnscope.training._loss import masked_mse_loss
from rnnscope.training._optimise import OptimisationConfig, OptimisationResult, clip_gradients, optimise
from rnnscope.training._trainer import (
    Stage,
    TrainingConfig,
    TrainingResult,
    check_device,
    check_memory,
    estimate_training_memory,
    train,
    train_curriculum,
)

__all__ = [
    "OptimisationConfig",
    "OptimisationResult",
    "optimise",
    "clip_gradients",
    "TrainingConfig",
    "TrainingResult",
    "Stage",
    "train",
    "train_curriculum",
    "EnsembleResult",
    "train_ensemble",
    "Evaluation",
    "evaluate",
    "simulate",
    "masked_mse_loss",
    "torch_generator",
    "check_device",
    "check_memory",
    "estimate_training_memory",
]
