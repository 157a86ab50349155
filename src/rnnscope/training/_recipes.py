"""Run a task's recipe (``rnnscope.tasks.Recipe``): turn it into a ModelConfig, TrainingConfigs and curriculum
stages, with the command line's overrides, and train."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnscope._validation import check_int, check_positive
from rnnscope.errors import RnnscopeError
from rnnscope.models import ModelConfig
from rnnscope.tasks import Recipe, RecipeStage, make_task
from rnnscope.training._trainer import Stage, TrainingConfig, TrainingResult, train, train_curriculum

__all__ = ["adapt_recipe", "recipe_plan", "train_recipe"]


def adapt_recipe(
    recipe: Recipe,
    *,
    full_rank: bool = False,
    rank: int | None = None,
    lr: float | None = None,
    epochs: int | None = None,
    curriculum: tuple[str, Sequence[Any]] | None = None,
    target_accuracy: float | None = None,
    noise_std: float | None = None,
    batch_size: int | None = None,
    train_trials: int | None = None,
) -> Recipe:
    """``recipe`` with the command line's overrides (None: the recipe's).

    full_rank: train a full-rank network: pretraining stages are dropped and every stage's learning rate is divided
    by sqrt(size) (the paper's full-rank rate), unless ``lr`` is given. rank: the final network's rank (refused
    with ``full_rank``). lr, epochs: of every stage. curriculum: ``(option, values)``, one stage per value with that
    task option, replacing the recipe's stages after pretraining (stage k copies the settings of the recipe's stage
    k, or of its last). target_accuracy: the last stage's only target (replacing its target loss)."""
    if full_rank and rank is not None:
        raise RnnscopeError(f"rank: a full-rank network has no rank; drop --rank {rank} or --full-rank")
    stages = list(recipe.stages)
    if curriculum is not None:
        option, values = curriculum
        if not isinstance(option, str) or not option or not values:
            raise RnnscopeError(f"curriculum: expected an option name and at least one value, got {curriculum!r}")
        pretraining = [s for s in stages if s.full_rank]
        main = [s for s in stages if not s.full_rank]
        stages = pretraining + [
            dataclasses.replace(main[min(k, len(main) - 1)], task_options=tuple(
                (name, v) for name, v in main[min(k, len(main) - 1)].task_options if name != option) + ((option, value),))
            for k, value in enumerate(values)
        ]
    if full_rank:
        stages = [dataclasses.replace(s, lr_per_sqrt_size=True) for s in stages if not s.full_rank]
    if lr is not None:
        check_positive(lr, "lr")
        stages = [dataclasses.replace(s, lr=lr, lr_per_sqrt_size=False) for s in stages]
    if epochs is not None:
        check_int(epochs, "epochs", minimum=1)
        stages = [dataclasses.replace(s, epochs=epochs) for s in stages]
    if target_accuracy is not None:
        stages[-1] = dataclasses.replace(stages[-1], target_accuracy=target_accuracy, target_loss=None)
    changes: dict[str, Any] = {"stages": tuple(stages)}
    if full_rank:
        changes["rank"] = None
    elif rank is not None:
        changes["rank"] = rank
    for name, value in (("noise_std", noise_std), ("batch_size", batch_size), ("train_trials", train_trials)):
        if value is not None:
            changes[name] = value
    return dataclasses.replace(recipe, **changes)


def _training_config(recipe: Recipe, stage: RecipeStage, size: int, backend: str, device: str) -> TrainingConfig:
    return TrainingConfig(epochs=stage.epochs, lr=stage.learning_rate(size), batch_size=recipe.batch_size,
                          train_trials=recipe.train_trials, validation_trials=recipe.validation_trials,
                          clip_gradient=stage.clip_gradient, target_accuracy=stage.target_accuracy,
                          target_loss=stage.target_loss, backend=backend, device=device)


def recipe_plan(
    task: str | type,
    recipe: Recipe,
    *,
    size: int,
    task_options: Mapping[str, Any] | None = None,
    backend: str = "auto",
    device: str = "cpu",
) -> tuple[ModelConfig, list[Stage]]:
    """The architecture the recipe starts from and its stages (each with its own task and TrainingConfig; the
    first low-rank stage after full-rank pretraining truncates to the recipe's rank)."""
    check_int(size, "size", minimum=1)
    options = dict(task_options or {})
    base_task = make_task(task, options)
    flags = {name: getattr(recipe, name)
             for name in ("train_inputs", "train_outputs", "train_input_scale", "train_output_scale")}
    final = ModelConfig(size=size, inputs=len(base_task.input_names), outputs=len(base_task.output_names),
                        rank=recipe.rank, noise_std=recipe.noise_std, **flags)
    first = dataclasses.replace(final, rank=None) if recipe.stages[0].full_rank else final
    stages = []
    for k, stage in enumerate(recipe.stages):
        stage_task = make_task(task, {**options, **dict(stage.task_options)}) if stage.task_options else base_task
        truncate_here = not stage.full_rank and k > 0 and recipe.stages[k - 1].full_rank
        stages.append(Stage(stage_task, stage.epochs, rank=recipe.rank if truncate_here else None,
                            config=_training_config(recipe, stage, size, backend, device),
                            model=final if truncate_here else None))
    return first, stages


def train_recipe(
    task: str | type,
    recipe: Recipe,
    *,
    size: int,
    rng: int | np.random.Generator,
    task_options: Mapping[str, Any] | None = None,
    backend: str = "auto",
    device: str = "cpu",
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainingResult:
    """Train a network of ``size`` neurons on ``task`` (a task name or class, with ``task_options``) by
    ``recipe`` (e.g. ``rnnscope.tasks.recipe_for('dms')``; adapt it with :func:`adapt_recipe`).

    One stage: exactly ``train`` (``out`` is a run directory). Several: ``train_curriculum`` (stage k in
    ``out/stage{k}``, the final network in ``out``). Returns the final network and the whole learning curve."""
    if not isinstance(recipe, Recipe):
        raise RnnscopeError(f"recipe: expected a Recipe, got {type(recipe).__name__}")
    model, stages = recipe_plan(task, recipe, size=size, task_options=task_options, backend=backend, device=device)
    if len(stages) == 1:
        stage = stages[0]
        return train(stage.task, model, stage.config, rng=rng, out=out, resume=resume, progress=progress)
    return train_curriculum(stages, model, stages[-1].config, rng=rng, out=out, resume=resume, progress=progress)
