"""The neurogym adapter, run when the optional extra is installed (CI runs it in a separate environment)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnscope.errors import RnnscopeError
from rnnscope.tasks import NeurogymTask, Task


def test_missing_extra_is_one_clear_error() -> None:
    try:
        import neurogym  # noqa: F401
    except ImportError:
        with pytest.raises(RnnscopeError, match="neurogym"):
            NeurogymTask("PerceptualDecisionMaking-v0").sample(2, rng=np.random.default_rng(0))
    else:
        with pytest.raises(RnnscopeError, match="env_id"):
            NeurogymTask("NoSuchTask-v0").sample(2, rng=np.random.default_rng(0))


def test_trains_on_a_neurogym_environment() -> None:
    pytest.importorskip("neurogym")
    from rnnscope.models import ModelConfig
    from rnnscope.training import TrainingConfig, evaluate, train

    task = NeurogymTask("PerceptualDecisionMaking-v0", dt=100.0)
    assert isinstance(task, Task)
    batch = task.sample(16, rng=np.random.default_rng(0))
    assert batch.inputs.shape[-1] == len(task.input_names) and batch.targets.shape[-1] == len(task.output_names)
    assert np.all(batch.mask.sum(axis=1) > 0)
    again = task.sample(16, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(batch.inputs, again.inputs)
    config = ModelConfig(size=64, inputs=len(task.input_names), outputs=len(task.output_names), rank=2)
    result = train(task, config, TrainingConfig(epochs=6, train_trials=256, validation_trials=64), seed=0, progress=False)
    assert evaluate(result.model, task, trials=200, rng=np.random.default_rng(1)).accuracy > 0.7
