"""Train on any neurogym environment (optional extra ``rnnscope[neurogym]``).

neurogym gives, per step, an observation and an integer ground-truth action (0 = fixate). rnnscope's convention
is a continuous target read where the mask is 1: the adapter writes one output per non-fixation action, +1 for
the correct action and -1 for the others, and sets the mask on the steps whose ground truth is a choice (> 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnnscope._validation import as_generator, check_int
from rnnscope.errors import RnnscopeError
from rnnscope.tasks._base import TrialBatch

__all__ = ["NeurogymTask"]


def _import_neurogym() -> Any:
    try:
        import neurogym  # noqa: F401
    except ImportError:
        raise RnnscopeError("neurogym: not installed; install the extra with pip install 'rnnscope[neurogym]'") from None
    return neurogym


@dataclass(frozen=True)
class NeurogymTask:
    """A neurogym environment as an rnnscope Task. ``env_id`` e.g. ``"PerceptualDecisionMaking-v0"``;
    ``kwargs`` are passed to ``neurogym.make`` (``dt`` always is)."""

    name: ClassVar[str] = "neurogym"
    env_id: str
    dt: float = 20.0
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # gymnasium imports the module of an id written "module:Env": an id from a file must never choose code
        if not isinstance(self.env_id, str) or not re.fullmatch(r"[A-Za-z0-9_./-]+", self.env_id):
            raise RnnscopeError(f"env_id: expected a neurogym environment id such as 'PerceptualDecisionMaking-v0', "
                                f"got {self.env_id!r}")
        if not all(isinstance(kv, tuple) and len(kv) == 2 and isinstance(kv[0], str) for kv in self.kwargs):
            raise RnnscopeError(f"kwargs: expected (name, value) pairs, got {self.kwargs!r}")

    def _env(self, seed: int) -> Any:
        ngym = _import_neurogym()
        try:
            env = ngym.make(self.env_id, dt=self.dt, **dict(self.kwargs))
        except Exception as exc:  # neurogym raises assorted errors for a bad id
            raise RnnscopeError(f"env_id: neurogym cannot make {self.env_id!r} ({exc})") from None
        env = env.unwrapped  # the TrialEnv itself: new_trial, ob and gt live there
        if hasattr(env, "seed"):
            env.seed(seed)  # neurogym draws trials from its own RandomState, which reset(seed=...) leaves alone
        env.reset(seed=seed)
        return env

    @property
    def input_names(self) -> tuple[str, ...]:
        env = self._env(0)
        return tuple(f"obs{i}" for i in range(env.observation_space.shape[0]))

    @property
    def output_names(self) -> tuple[str, ...]:
        env = self._env(0)
        return tuple(f"action{i}" for i in range(1, env.action_space.n))

    def options(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "dt": self.dt, "kwargs": [list(kv) for kv in self.kwargs]}

    def sample(self, trials: int, *, rng: np.random.Generator | int, **conditions: Any) -> TrialBatch:
        check_int(trials, "trials", minimum=1)
        rng = as_generator(rng, name="rng")
        if conditions:
            raise RnnscopeError(f"{sorted(conditions)[0]}: neurogym tasks take no pinned conditions")
        env = self._env(int(rng.integers(0, 2**31 - 1)))
        obs, gts, infos = [], [], []
        for _ in range(trials):
            info = env.new_trial()
            obs.append(np.asarray(env.ob, dtype=np.float32))
            gts.append(np.asarray(env.gt, dtype=np.int64))
            infos.append({k: v for k, v in info.items() if np.isscalar(v)})
        steps = max(len(o) for o in obs)
        actions = env.action_space.n
        inputs = np.zeros((trials, steps, obs[0].shape[1]), dtype=np.float32)
        targets = np.zeros((trials, steps, actions - 1), dtype=np.float32)
        mask = np.zeros((trials, steps), dtype=np.float32)
        for i, (o, g) in enumerate(zip(obs, gts, strict=True)):
            inputs[i, : len(o)] = o
            choice = g > 0
            mask[i, : len(g)] = choice
            targets[i, : len(g)][choice] = -1.0
            targets[i, np.flatnonzero(choice), g[choice] - 1] = 1.0
        keys = sorted(set.intersection(*(set(info) for info in infos))) if infos else []
        conds = {}
        for key in keys:
            try:
                conds[key] = np.array([float(info[key]) for info in infos])
            except (TypeError, ValueError):
                continue
        if np.any(mask.sum(axis=1) == 0):
            raise RnnscopeError(f"env_id: {self.env_id!r} produced a trial with no decision step (ground truth > 0)")
        return TrialBatch(inputs, targets, mask, conds, {}, self.dt)
