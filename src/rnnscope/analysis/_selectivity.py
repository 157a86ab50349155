"""Selectivity: linear regression of each neuron's activity on task variables (Mante et al. 2013 style).

At every time step, each neuron's activity across trials is regressed on the task variables with an intercept::

    activity[trial, t, i] = intercept[t, i] + sum_v betas[t, v, i] * variables[v][trial] + residual

A neuron's *selectivity* to variable v is its beta at the time when the population's betas for v are largest
(the time of maximal norm over neurons); stacking them gives the selectivity space (size, variables), a cloud of
one point per neuron on which ePAIRS and mixture fits run like on connectivity loadings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rnnscope._validation import check_array
from rnnscope.errors import RnnscopeError

__all__ = ["Selectivity", "selectivity"]


@dataclass(frozen=True, eq=False)
class Selectivity:
    """Regression of activity on task variables.

    variables: names, in the order of the variables axis; betas: (time, variables, size); intercept: (time, size);
    r_squared: (time, size) fraction of variance explained; peak_steps: (variables,) step of maximal
    ``norm(betas[t, v, :])``; space: (size, variables) betas at each variable's peak step.
    """

    variables: tuple[str, ...]
    betas: np.ndarray
    intercept: np.ndarray
    r_squared: np.ndarray
    peak_steps: np.ndarray
    space: np.ndarray

    def to_dict(self) -> dict:
        return {
            "variables": list(self.variables),
            "peak_steps": [int(s) for s in self.peak_steps],
            "space": self.space.tolist(),
            "beta_norms": np.linalg.norm(self.betas, axis=-1).T.tolist(),  # (variables, time)
            "mean_r_squared": np.nanmean(self.r_squared, axis=1).tolist(),
        }


def selectivity(
    activity: np.ndarray,
    variables: Mapping[str, np.ndarray],
    *,
    steps: np.ndarray | None = None,
) -> Selectivity:
    """Regress activity (trials, time, size) on variables {name: (trials,)} (plus an intercept) at every step.

    steps: optional (time,) bool mask of the steps allowed for each variable's peak (e.g. the stimulus epoch);
    by default every step. Raises if the variables are collinear (with the intercept).
    """
    activity = check_array(activity, "activity", ndim=3)
    trials, time, size = activity.shape
    if not variables:
        raise RnnscopeError("variables: need at least one task variable")
    names = tuple(variables)
    columns = [np.ones(trials)]
    for name in names:
        column = check_array(variables[name], f"variables[{name!r}]", ndim=1)
        if column.shape[0] != trials:
            raise RnnscopeError(f"variables[{name!r}]: expected {trials} trials, got {column.shape[0]}")
        columns.append(column)
    design = np.stack(columns, axis=1)  # (trials, 1 + variables)
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise RnnscopeError(f"variables: {names} are collinear (with the intercept) over these trials")
    solver = np.linalg.pinv(design)  # (1 + variables, trials)
    coefficients = np.einsum("vk,kts->tvs", solver, activity)  # (time, 1 + variables, size)
    fitted = np.einsum("kv,tvs->kts", design, coefficients)
    residual = ((activity - fitted) ** 2).sum(axis=0)
    total = ((activity - activity.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_squared = np.where(total > 0, 1.0 - residual / total, np.nan)
    betas = coefficients[:, 1:]
    norms = np.linalg.norm(betas, axis=-1)  # (time, variables)
    if steps is not None:
        allowed = check_array(steps, "steps", shape=(time,), dtype=bool)
        if not allowed.any():
            raise RnnscopeError("steps: selects no step")
        norms = np.where(allowed[:, None], norms, -np.inf)
    peak_steps = np.argmax(norms, axis=0)
    space = betas[peak_steps, np.arange(len(names))].T  # (size, variables)
    return Selectivity(
        variables=names, betas=betas, intercept=coefficients[:, 0], r_squared=r_squared, peak_steps=peak_steps,
        space=space,
    )
