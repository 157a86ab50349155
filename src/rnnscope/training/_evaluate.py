"""Run a network on trials and score it: outputs, accuracy, loss, accuracy per condition; and the effect of a
perturbation in time (the same trials and noise with and without it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rnnscope._validation import as_generator, check_int
from rnnscope.errors import RnnscopeError
from rnnscope.models import FullRankWeights, LowRankWeights, Perturbation, RateRNN, choose_backend, simulate
from rnnscope.tasks import Task, correct_trials, decisions, masked_mse

__all__ = ["Evaluation", "evaluate", "PerturbationEffect", "perturbation_effect"]


@dataclass(frozen=True)
class Evaluation:
    """accuracy and loss over ``trials`` fresh trials; per_condition: {condition: {value: accuracy}};
    correct: (trials,) bool per trial; conditions: {name: (trials,)}."""

    accuracy: float
    loss: float
    trials: int
    per_condition: dict[str, dict[str, float]]
    correct: np.ndarray = field(repr=False)
    conditions: dict[str, np.ndarray] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "loss": self.loss, "trials": self.trials, "per_condition": self.per_condition}


def _per_condition(correct: np.ndarray, conditions: dict[str, np.ndarray], max_values: int = 50) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, values in conditions.items():
        unique = np.unique(values)
        if len(unique) > max_values:
            continue
        out[name] = {f"{v:g}" if isinstance(v, (float, np.floating)) else str(v): float(correct[values == v].mean()) for v in unique}
    return out


def evaluate(
    model: RateRNN | LowRankWeights | FullRankWeights,
    task: Task,
    *,
    trials: int = 1000,
    rng: np.random.Generator | int,
    noise: bool = True,
    chunk: int = 256,
    perturbation: Perturbation | tuple[Perturbation, ...] | None = None,
) -> Evaluation:
    """Accuracy and loss on ``trials`` fresh trials of ``task`` (with the network's private noise unless
    ``noise=False``), run by ``rnnscope.models.simulate`` on the backend it chooses; with ``perturbation`` (one or
    a sequence, windows placed by the trials' epochs and dt), under that perturbation (on the PyTorch loop)."""
    check_int(trials, "trials", minimum=1)
    rng = as_generator(rng, name="rng")
    check_int(chunk, "chunk", minimum=1)
    batch = task.sample(trials, rng=rng)
    outputs = simulate(model, batch.inputs, rng=rng, noise=noise, memory_mb=max(1.0, chunk / 2),
                        perturbation=perturbation, epochs=batch.epochs, dt=batch.dt).outputs
    correct = correct_trials(outputs, batch)
    return Evaluation(
        accuracy=float(correct.mean()),
        loss=masked_mse(outputs, batch),
        trials=trials,
        per_condition=_per_condition(correct, dict(batch.conditions)),
        correct=correct,
        conditions=dict(batch.conditions),
    )


def _answer_fractions(answers: np.ndarray, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    return {name: {label: float(np.mean(answers[:, o] == sign)) for label, sign in (("+", 1), ("-", -1), ("0", 0))}
            for o, name in enumerate(names)}


@dataclass(frozen=True, eq=False)
class PerturbationEffect:
    """The same trials and private noise run intact and perturbed (on the same backend).

    perturbations: what was applied (``Perturbation.to_dict`` in ``to_dict``); accuracy / loss intact and perturbed;
    per_condition_*: {condition: {value: accuracy}}; correct_*: (trials,) bool; answers_*: (trials, outputs) the
    sign (+1, -1, 0) of the mean output over the decision epoch (in dms, +1 is "match"); output_names: (outputs,);
    conditions: {name: (trials,)}; backend: the backend that ran both.
    """

    perturbations: tuple[Perturbation, ...]
    trials: int
    accuracy_intact: float
    accuracy_perturbed: float
    loss_intact: float
    loss_perturbed: float
    per_condition_intact: dict[str, dict[str, float]]
    per_condition_perturbed: dict[str, dict[str, float]]
    output_names: tuple[str, ...]
    backend: str
    correct_intact: np.ndarray = field(repr=False)
    correct_perturbed: np.ndarray = field(repr=False)
    answers_intact: np.ndarray = field(repr=False)
    answers_perturbed: np.ndarray = field(repr=False)
    conditions: dict[str, np.ndarray] = field(repr=False)

    @property
    def changed(self) -> float:
        """Fraction of trials whose answer (on any output) the perturbation changed."""
        return float(np.mean(np.any(self.answers_intact != self.answers_perturbed, axis=-1)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "perturbations": [p.to_dict() for p in self.perturbations],
            "trials": self.trials,
            "backend": self.backend,
            "intact": {"accuracy": self.accuracy_intact, "loss": self.loss_intact,
                       "per_condition": self.per_condition_intact,
                       "answers": _answer_fractions(self.answers_intact, self.output_names)},
            "perturbed": {"accuracy": self.accuracy_perturbed, "loss": self.loss_perturbed,
                          "per_condition": self.per_condition_perturbed,
                          "answers": _answer_fractions(self.answers_perturbed, self.output_names)},
            "changed": self.changed,
        }


def perturbation_effect(
    model: RateRNN | LowRankWeights | FullRankWeights,
    task: Task,
    perturbation: Perturbation | tuple[Perturbation, ...],
    *,
    trials: int = 1000,
    rng: np.random.Generator | int,
    noise: bool = True,
    device: str | torch.device | None = None,
    memory_mb: float = 128.0,
) -> PerturbationEffect:
    """Accuracy, per-condition accuracy and answers of ``model`` on ``trials`` fresh trials of ``task``, intact and
    under ``perturbation`` (a Perturbation or a sequence; windows by the trials' epochs and dt), on the same trials
    and the same private noise, both on the backend a perturbed run needs (``choose_backend(perturbed=True)``)."""
    check_int(trials, "trials", minimum=1)
    rng = as_generator(rng, name="rng")
    perturbations = (perturbation,) if isinstance(perturbation, Perturbation) else tuple(perturbation)
    if not perturbations:
        raise RnnscopeError("perturbation: give at least one Perturbation")
    batch = task.sample(trials, rng=rng)
    seed = int(rng.integers(2**63 - 1))
    backend = choose_backend(model, device=device, perturbed=True)
    runs = [simulate(model, batch.inputs, rng=seed, noise=noise, device=device, backend=backend, memory_mb=memory_mb,
                      perturbation=p, epochs=batch.epochs, dt=batch.dt).outputs for p in (None, perturbations)]
    correct = [correct_trials(outputs, batch) for outputs in runs]
    answers = [np.sign(decisions(outputs, batch.mask)).astype(np.int8) for outputs in runs]
    conditions = dict(batch.conditions)
    names = tuple(getattr(task, "output_names", ())) or tuple(f"output{o}" for o in range(runs[0].shape[-1]))
    return PerturbationEffect(
        perturbations=perturbations, trials=trials,
        accuracy_intact=float(correct[0].mean()), accuracy_perturbed=float(correct[1].mean()),
        loss_intact=masked_mse(runs[0], batch), loss_perturbed=masked_mse(runs[1], batch),
        per_condition_intact=_per_condition(correct[0], conditions),
        per_condition_perturbed=_per_condition(correct[1], conditions),
        output_names=names, backend=backend, correct_intact=correct[0], correct_perturbed=correct[1],
        answers_intact=answers[0], answers_perturbed=answers[1], conditions=conditions,
    )
