"""Training (masked MSE, Adam, checkpoints, curricula) and evaluation of rate networks."""

from rnnscope.training._ensemble import EnsembleResult, train_ensemble
from rnnscope.training._evaluate import (
    Evaluation,
    PerturbationEffect,
    evaluate,
    perturbation_effect,
)
from rnnscope.training._loss import masked_mse_loss
from rnnscope.training._optimise import OptimisationConfig, OptimisationResult, clip_gradients, optimise
from rnnscope.training._trainer import (
    Stage,
    TrainingConfig,
    TrainingResult,
    check_device,
    check_memory,
    converged_epoch,
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
    "PerturbationEffect",
    "perturbation_effect",
    "masked_mse_loss",
    "check_device",
    "check_memory",
    "converged_epoch",
    "estimate_training_memory",
]

# Lineage and the minimal rank (issue 13, appended by the lineage engineer)
from rnnscope.training._lineage import (  # noqa: E402
    MINIMAL_RANK_EPOCHS,
    MinimalRank,
    initial_weights,
    lineage_of,
    minimal_rank,
    retraining_stages,
    train_from,
    truncate_learnt,
)

__all__ += ["train_from", "initial_weights", "lineage_of", "truncate_learnt", "minimal_rank", "MinimalRank",
            "retraining_stages",
            "MINIMAL_RANK_EPOCHS"]

# Recipes: each task's training procedure (issue 13)
from rnnscope.training._recipes import adapt_recipe, recipe_plan, train_recipe  # noqa: E402

__all__ += ["adapt_recipe", "recipe_plan", "train_recipe"]
