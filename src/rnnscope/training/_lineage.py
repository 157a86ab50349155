"""Lineage: train a network from another run's network (continued, or truncated to a rank first), record where
every network came from, rebuild a run's initial connectivity J0, and find the minimal rank a task needs.

How J0's bulk is handled (``truncate_delta=True``). The authors truncate the *learnt* connectivity of a full-rank
network, Delta J = J - J0 (``training_scripts/*_fr_fig1.py`` of populations_paper_code: ``delta_w = wrec - w0``,
``u, s, v = svd(delta_w)``). They use the truncation two ways: evaluated without retraining as the full-rank
``J0 + U_r S_r V_r^T`` (their truncation accuracies: the random bulk J0 kept, frozen), and as the low-rank network
``m = U_r S_r sqrt(N)``, ``n = V_r sqrt(N)``, readout ``w_out * N`` (the bulk dropped), whose statistics they resample.
rnnscope does both: ``minimal_rank`` reports the first as ``truncated_accuracy`` (no retraining, exactly the
authors' number), and the network it retrains -- what ``train_from(rank=r, truncate_delta=True)`` returns -- is the
second, a rank-r ``LowRankRNN`` ``m n^T / N`` of Delta J_r, without J0. So the minimal rank is the rank of a
network that solves the task with no random bulk at all; retraining lets it absorb what the bulk contributed.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnscope import io
from rnnscope._validation import as_generator, check_int, check_probability
from rnnscope.errors import ConvergenceWarning, RnnscopeError
from rnnscope.models import (
    FullRankRNN,
    FullRankWeights,
    LowRankRNN,
    LowRankWeights,
    ModelConfig,
    RateWeights,
    build_model,
    model_from_weights,
    simulate,
    truncate,
)
from rnnscope.tasks import Task, TrialBatch, correct_trials, task_spec
from rnnscope.training._trainer import MAX_SEED, Stage, TrainingConfig, TrainingResult, check_device, train

__all__ = ["MINIMAL_RANK_EPOCHS", "MinimalRank", "initial_weights", "lineage_of", "minimal_rank", "train_from",
           "truncate_learnt", "retraining_stages"]

MINIMAL_RANK_EPOCHS = 30  # most retraining epochs per rank in minimal_rank, stopped early at the full accuracy:
# a rank-1 context-dependent (mante) network truncated from a full-rank one (N = 256) needs about 25 of them

# config.json fields that say a network was not trained from a seed by ``train`` (imported, designed, curriculum)
_NOT_FROM_SCRATCH = {"source": "imported", "design": "designed by hand", "design_fit": "fitted from a design",
                     "curriculum": "the final network of a curriculum (its stage0 has the J0)"}


def _load(run: str | Path | io.Run) -> io.Run:
    return run if isinstance(run, io.Run) else io.load_run(run)


def lineage_of(run: str | Path | io.Run) -> dict[str, Any]:
    """A run's lineage: its ``config.json`` section when recorded (every run ``train`` or ``train_ensemble``
    trains from a seed records it, and ``train_from`` its own), else the one implied by its other fields.

    A run without the section (written before it was recorded) that holds ``training`` and ``seed`` and nothing that marks another origin is taken
    to be trained from scratch by ``train`` (its J0 is ``build_model(model, generator=manual_seed(seed))``); any
    other (imported, designed) has ``initial`` None: its J0 is unknown."""
    run = _load(run)
    recorded = io.read_lineage(run.path)
    if recorded is not None:
        return recorded
    config = run.config
    if "training" in config and "seed" in config and not set(config) & set(_NOT_FROM_SCRATCH):
        epochs = config["training"].get("epochs")
        return {"initial": {"seed": run.seed, "model": config["model"]}, "parents": [],
                "stages": [{"kind": "scratch", "task": config["task"]["name"], "epochs": epochs}]}
    return {"initial": None, "parents": [], "stages": []}


def _origin(run: io.Run) -> str:
    found = [text for key, text in _NOT_FROM_SCRATCH.items() if key in run.config]
    return found[0] if found else "not trained from a seed by rnnscope"


def initial_weights(run: str | Path | io.Run) -> FullRankWeights | LowRankWeights:
    """The network a run's lineage started from, rebuilt bit-identically from its recorded seed and model
    configuration: ``build_model(model, generator=torch.Generator().manual_seed(seed)).weights()``. Its ``J``
    (full-rank) is the run's J0. For a run truncated from a full-rank parent, it is the full-rank root's.

    Refuses, in one line, a run whose J0 is unknown (imported from a file, designed, a curriculum's final network)."""
    run = _load(run)
    initial = lineage_of(run)["initial"]
    if initial is None:
        raise RnnscopeError(f"{run.path}: has no initial connectivity J0 to rebuild: the network is {_origin(run)}; "
                            f"truncate J itself instead (truncate_delta=False, --whole-j)")
    if "cell" in initial["model"]:
        raise RnnscopeError(f"{run.path}: lineage.initial.model is a gated cell, not a rate network")
    config = ModelConfig(**initial["model"])
    return build_model(config, generator=torch.Generator().manual_seed(int(initial["seed"]))).weights()


def truncate_learnt(weights: FullRankWeights, initial: FullRankWeights, rank: int) -> LowRankWeights:
    """The rank-``rank`` network of the learnt connectivity Delta J = J - J0 (truncated SVD U_r S_r V_r^T):
    ``m = sqrt(size) U_r sqrt(s_r)``, ``n = sqrt(size) V_r sqrt(s_r)``, so ``m n^T / size = U_r S_r V_r^T``;
    w_in, h0 kept, readout rescaled by size (``rnnscope.models.truncate`` applied to Delta J). J0's bulk is not
    part of the result (see the module's docstring)."""
    for name, value in (("weights", weights), ("initial", initial)):
        if not isinstance(value, FullRankWeights):
            raise RnnscopeError(f"{name}: truncating J - J0 needs a full-rank network, got {type(value).__name__}")
    if initial.J.shape != weights.J.shape:
        raise RnnscopeError(f"initial: J0 has shape {initial.J.shape}, J {weights.J.shape}")
    return truncate(dataclasses.replace(weights, J=weights.J - initial.J), rank)


def _start(run: io.Run, rank: int | None, truncate_delta: bool) -> tuple[Any, dict[str, Any]]:
    """The network training starts from, and the lineage stage that describes how it was made."""
    model = run.model
    if not isinstance(model, (FullRankRNN, LowRankRNN)):
        raise RnnscopeError(f"{run.path}: holds a {type(model).__name__}, not a rate network")
    if rank is None:
        if truncate_delta:
            raise RnnscopeError("truncate_delta: truncating J - J0 needs a rank (--truncate-to)")
        return model, {"kind": "continue"}
    if not isinstance(model, FullRankRNN):
        raise RnnscopeError(f"rank: only a full-rank network can be truncated; {run.path} holds a rank-"
                            f"{model.config.rank} network")
    check_int(rank, "rank", minimum=1, maximum=model.size)
    weights = model.weights()
    initial = initial_weights(run) if truncate_delta else None
    low = truncate_learnt(weights, initial, rank) if initial is not None else truncate(weights, rank)
    flags = model.config
    start = model_from_weights(low, train_inputs=flags.train_inputs, train_outputs=flags.train_outputs,
                               train_h0=flags.train_h0)
    return start, {"kind": "truncate", "rank": rank, "of": "J - J0" if truncate_delta else "J"}


def _differs(stored: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether a stored lineage comes from another parent or stage than ``record`` (epochs may be raised)."""
    last = lambda lineage: {k: v for k, v in lineage["stages"][-1].items() if k != "epochs"}  # noqa: E731
    return (stored["parents"] != record["parents"] or stored["stages"][:-1] != record["stages"][:-1]
            or not stored["stages"] or last(stored) != last(record))


def train_from(
    parent: str | Path | io.Run,
    task: Task | None = None,
    config: TrainingConfig = TrainingConfig(),
    *,
    rank: int | None = None,
    truncate_delta: bool = False,
    rng: int | np.random.Generator | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainingResult:
    """Train a network starting from a run's network (``parent``, a run directory or a loaded run) on ``task``
    (default: the parent's); returns ``train``'s result.

    rank None: continue training the parent's network. rank r (a full-rank parent): first truncate it to rank r,
    by SVD of J (``truncate_delta=False``) or of the learnt change J - J0 (``truncate_delta=True``; J0 rebuilt by
    ``initial_weights``, so the parent must descend from a network trained from a seed by rnnscope: an imported
    one is refused), then train the rank-r ``LowRankRNN``. rng, out, resume, progress: as in ``train``.

    With ``out``, ``config.json`` also gets a ``lineage`` section: ``initial`` (J0's seed and model configuration,
    inherited from the parent), ``parents`` (the parent's, then the parent itself: path and sha256 of its weights
    file) and ``stages`` (the parent's, then this one: kind continue or truncate, rank, of "J" or "J - J0", task,
    epochs). Resuming refuses a different parent or stage (``epochs`` may be raised, as in ``train``)."""
    run = _load(parent)
    task = run.task if task is None else task
    start, stage = _start(run, rank, truncate_delta)
    stage = {**stage, "task": task.name, "epochs": config.epochs}
    lineage = lineage_of(run)
    record = {"initial": lineage["initial"],
              "parents": [*lineage["parents"], {"path": str(Path(run.path).resolve()),
                                                "sha256": io.weights_sha256(run.path)}],
              "stages": [*lineage["stages"], stage]}
    if out is not None and resume and (Path(out) / io.CONFIG_NAME).is_file():
        stored = io.read_lineage(out)  # None or without parents: train's own config, before this call's lineage
        if stored and stored["parents"] and _differs(stored, record):
            raise RnnscopeError(f"{Path(out) / io.CONFIG_NAME}: cannot resume: the stored run was trained from "
                                f"{stored['parents'][-1]['path']} ({stored['stages'][-1]}), not from {run.path} "
                                f"({stage}); choose another --out")
    result = train(task, start, config, rng=rng, out=out, resume=resume, progress=progress)
    if out is not None:
        with io.lock_run_dir(out):
            io.write_lineage(out, record)
    return result


# -- the minimal rank ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MinimalRank:
    """The minimal rank of a full-rank network's task: truncate to each rank, retrain, compare with the network.

    ranks: (ranks,) 1..max_rank. accuracy: (ranks,) of the rank-r network after retraining (``train_from``, at most
    ``epochs`` epochs). truncated_accuracy: (ranks,) before retraining, the authors' measure: J0 + Delta J_r
    (full-rank, J0's bulk kept) when ``of`` is "J - J0", the rank-r SVD of J when "J". full_accuracy: the
    network's own. All on the same ``trials`` trials and private noise. singular_values: (size,) of the truncated
    matrix. needed: the smallest rank whose accuracy is >= full_accuracy - tolerance (None if none is).
    histories: per rank, the retraining's learning curve (rows of ``TrainingResult.history``, every stage's).
    retraining: the retraining stages (task options, most epochs of each)."""

    ranks: np.ndarray
    accuracy: np.ndarray
    truncated_accuracy: np.ndarray
    full_accuracy: float
    singular_values: np.ndarray
    of: str
    epochs: int
    trials: int
    tolerance: float
    needed: int | None
    histories: tuple[tuple[dict[str, float], ...], ...]
    retraining: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        count = len(self.ranks)
        for name in ("accuracy", "truncated_accuracy"):
            if getattr(self, name).shape != (count,):
                raise RnnscopeError(f"{name}: expected shape ({count},), got {getattr(self, name).shape}")
        if len(self.histories) != count:
            raise RnnscopeError(f"histories: expected {count} learning curves, got {len(self.histories)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranks": self.ranks.tolist(),
            "accuracy": self.accuracy.tolist(),
            "truncated_accuracy": self.truncated_accuracy.tolist(),
            "full_accuracy": self.full_accuracy,
            "needed": self.needed,
            "of": self.of,
            "epochs": self.epochs,
            "trials": self.trials,
            "tolerance": self.tolerance,
            "singular_values": self.singular_values[: max(10, len(self.ranks))].tolist(),
            "epochs_trained": [len(h) for h in self.histories],
            "retraining": [dict(stage) for stage in self.retraining],
        }


def _accuracy(weights: RateWeights, batch: TrialBatch, seed: int) -> float:
    return float(correct_trials(simulate(weights, batch.inputs, rng=seed).outputs, batch).mean())


def minimal_rank(
    run: str | Path | io.Run,
    *,
    max_rank: int = 5,
    epochs: int = MINIMAL_RANK_EPOCHS,
    truncate_delta: bool = True,
    config: TrainingConfig | None = None,
    device: str = "cpu",
    trials: int = 500,
    tolerance: float = 0.02,
    rng: int | np.random.Generator,
    stages: Sequence[Stage] | None = None,
    progress: bool = True,
) -> MinimalRank:
    """The authors' procedure for a full-rank run: for r = 1..max_rank, truncate the learnt connectivity J - J0
    (``truncate_delta=True``; ``False`` truncates J itself, the only choice for an imported network) to rank r,
    retrain the rank-r network (``train_from``) and score it; the minimal rank is the smallest r within
    ``tolerance`` of the full network's accuracy.

    Retraining: ``stages`` (each a ``Stage``: task, epochs, config; the first retrains the truncated network, the
    others continue it), by default ``retraining_stages(run, config)``: the curriculum of the task's recommended
    recipe when it has one after any full-rank pretraining (dms: a short task, then delays 700 -> 1000 -> the run's; the authors
    also retrain their truncated dms networks through delays 700 -> 1000), else one stage of ``config`` (default
    ``TrainingConfig(epochs=epochs, target_accuracy=full accuracy)``: Adam at lr 1e-2 on 800 trials, on
    ``device``, stopped at the first epoch whose validation accuracy reaches the full network's). Measured: a
    full-rank dms network (N = 256) truncated and retrained for 30 epochs on 3000 ms delays stays at chance at
    ranks 1 and 2.
    Everything is drawn from ``rng``: the test trials and their noise, then one seed per rank's retraining."""
    run = _load(run)
    if not isinstance(run.model, FullRankRNN):
        raise RnnscopeError(f"{run.path}: the minimal rank is found for a full-rank network; this one has rank "
                            f"{getattr(run.model.config, 'rank', None)}")
    check_int(max_rank, "max_rank", minimum=1, maximum=run.model.size)
    check_int(epochs, "epochs", minimum=1)
    check_int(trials, "trials", minimum=1)
    tolerance = check_probability(tolerance, "tolerance")
    check_device(device)
    weights = run.model.weights()
    initial = initial_weights(run) if truncate_delta else None  # refuses an imported run before any work
    rng = as_generator(rng, name="rng")
    batch = run.task.sample(trials, rng=rng)
    noise_seed = int(rng.integers(0, MAX_SEED))
    full = _accuracy(weights, batch, noise_seed)
    if config is None:
        config = TrainingConfig(epochs=epochs, target_accuracy=full, device=device)
    plan = list(stages) if stages is not None else retraining_stages(run, config)
    if not plan or not all(isinstance(stage, Stage) for stage in plan):
        raise RnnscopeError("stages: expected a non-empty sequence of rnnscope.training.Stage")
    matrix = weights.J - initial.J if initial is not None else weights.J
    ranks = np.arange(1, max_rank + 1)
    accuracy, truncated, histories = [], [], []
    for rank in tqdm(ranks.tolist(), desc=f"minimal rank of {run.path.name}", unit="rank", disable=not progress):
        if initial is not None:
            low = truncate_learnt(weights, initial, rank)
            bulk_kept = dataclasses.replace(weights, J=initial.J + low.m @ low.n.T / weights.size)
            truncated.append(_accuracy(bulk_kept, batch, noise_seed))
        else:
            truncated.append(_accuracy(truncate(weights, rank), batch, noise_seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # low ranks are expected to miss the target
            result = train_from(run, plan[0].task, _stage_config(plan[0], config), rank=rank,
                                truncate_delta=truncate_delta, rng=int(rng.integers(0, MAX_SEED)), progress=False)
            history = [{**row, "stage": 0} for row in result.history]
            for k, stage in enumerate(plan[1:], start=1):  # the rest of a curriculum continues the network
                result = train(stage.task, result.model, _stage_config(stage, config),
                               rng=int(rng.integers(0, MAX_SEED)), progress=False)
                history.extend({**row, "stage": k} for row in result.history)
        accuracy.append(_accuracy(result.model.weights(), batch, noise_seed))
        histories.append(tuple(history))
    accuracy_a = np.array(accuracy)
    ok = [int(r) for r, a in zip(ranks, accuracy_a, strict=True) if a >= full - tolerance]
    described = tuple({"task": stage.task.name, "task_options": _options(stage.task), "epochs": stage.epochs}
                      for stage in plan)
    return MinimalRank(ranks, accuracy_a, np.array(truncated), full, np.linalg.svd(matrix, compute_uv=False),
                       "J - J0" if truncate_delta else "J", sum(stage.epochs for stage in plan), trials, tolerance,
                       min(ok) if ok else None, tuple(histories), described)


def _options(task: Task) -> dict[str, Any]:
    return dict(task_spec(task).get("options", {}))


def _stage_config(stage: Stage, config: TrainingConfig) -> TrainingConfig:
    return dataclasses.replace(stage.config or config, epochs=stage.epochs)


def retraining_stages(run: str | Path | io.Run, config: TrainingConfig) -> list[Stage]:
    """How ``minimal_rank`` retrains a truncated network of ``run`` by default: the low-rank stages of the
    recommended recipe of the run's task when there are several (a curriculum; each with its own settings on
    ``config.device``, the last on the run's own task), else one stage of ``config`` on the run's task."""
    from rnnscope.tasks import RECIPES, recipe_for
    from rnnscope.training._recipes import recipe_plan

    run = _load(run)
    name = run.config["task"]["name"]
    if name in RECIPES:
        recipe = recipe_for(name)
        low = [k for k, stage in enumerate(recipe.stages) if not stage.full_rank]
        if len(low) > 1:
            _, planned = recipe_plan(name, recipe, size=run.model.size, task_options=_options(run.task),
                                     device=config.device)
            stages = [dataclasses.replace(planned[k], rank=None, model=None) for k in low]
            return stages[:-1] + [dataclasses.replace(stages[-1], task=run.task)]
    return [Stage(run.task, config.epochs, config=config)]
