"""Cognitive tasks as batches of trials: inputs (trials, time, inputs), targets (trials, time, outputs),
mask (trials, time) and conditions {name: (trials,)}.

A new task needs no change to the package: any object with ``name``, ``dt``, ``input_names``,
``output_names`` and ``sample(trials, *, rng, **conditions) -> TrialBatch`` is a Task (see ``Task``);
subclass the frozen dataclass ``TaskBase`` to get timing validation and option parsing for free.
"""

from rnnscope.tasks._base import (
    Task,
    TaskBase,
    TrialBatch,
    accuracy,
    correct_trials,
    decisions,
    epoch_mask,
    masked_mse,
    timeline,
)
from rnnscope.tasks._decision import ContextDependent, Multisensory, RandomDots
from rnnscope.tasks._memory import DelayedMatchToSample, ParametricWorkingMemory
from rnnscope.tasks._neurogym import NeurogymTask
from rnnscope.tasks._recipes import (
    RECIPES,
    RECOMMENDED,
    Recipe,
    RecipeStage,
    default_recipe,
    list_recipes,
    load_recipe,
    recipe_for,
)
from rnnscope.tasks._registry import (
    TASKS,
    import_task,
    list_tasks,
    make_task,
    parse_options,
    register_task,
    task_path,
    task_spec,
)
from rnnscope.tasks._universality import ContextIntegration, FlipFlop, SineWave

__all__ = [
    "Task",
    "TaskBase",
    "TrialBatch",
    "RandomDots",
    "Multisensory",
    "ContextDependent",
    "ParametricWorkingMemory",
    "DelayedMatchToSample",
    "NeurogymTask",
    "FlipFlop",
    "SineWave",
    "ContextIntegration",
    "TASKS",
    "make_task",
    "parse_options",
    "list_tasks",
    "task_spec",
    "register_task",
    "import_task",
    "task_path",
    "accuracy",
    "correct_trials",
    "decisions",
    "masked_mse",
    "epoch_mask",
    "timeline",
]

__all__ += ["Recipe", "RecipeStage", "RECIPES", "RECOMMENDED", "recipe_for", "default_recipe", "load_recipe", "list_recipes"]
