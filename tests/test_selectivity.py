"""Selectivity regressions recover known coefficients; the selectivity space of a trained network."""

from __future__ import annotations

import numpy as np
import pytest

from rnnscope.analysis._selectivity import selectivity
from rnnscope.errors import RnnscopeError


def synthetic(rng, trials=300, time=8, size=20, noise=0.0):
    variables = {"choice": rng.choice([-1.0, 1.0], trials), "coherence": rng.choice([-4.0, -1, 1, 4], trials),
                 "context": rng.choice([0.0, 1.0], trials)}
    betas = rng.standard_normal((time, 3, size))
    intercept = rng.standard_normal((time, size))
    design = np.stack(list(variables.values()), axis=1)
    activity = intercept[None] + np.einsum("kv,tvs->kts", design, betas)
    activity += noise * rng.standard_normal(activity.shape)
    return activity, variables, betas, intercept


def test_recovers_exact_coefficients():
    rng = np.random.default_rng(0)
    activity, variables, betas, intercept = synthetic(rng)
    result = selectivity(activity, variables)
    np.testing.assert_allclose(result.betas, betas, atol=1e-10)
    np.testing.assert_allclose(result.intercept, intercept, atol=1e-10)
    np.testing.assert_allclose(result.r_squared, 1.0, atol=1e-10)
    peaks = np.argmax(np.linalg.norm(betas, axis=-1), axis=0)
    np.testing.assert_array_equal(result.peak_steps, peaks)
    np.testing.assert_allclose(result.space[:, 1], betas[peaks[1], 1])
    assert result.space.shape == (20, 3) and result.variables == ("choice", "coherence", "context")
    assert len(result.to_dict()["beta_norms"]) == 3


def test_matches_per_neuron_least_squares_with_noise():
    rng = np.random.default_rng(1)
    activity, variables, _, _ = synthetic(rng, noise=0.5, time=3, size=4)
    result = selectivity(activity, variables)
    design = np.column_stack([np.ones(300)] + list(variables.values()))
    for t in range(3):
        for i in range(4):
            coef, *_ = np.linalg.lstsq(design, activity[:, t, i], rcond=None)
            np.testing.assert_allclose(result.betas[t, :, i], coef[1:], atol=1e-10)
    allowed = np.array([False, True, True])
    assert np.all(selectivity(activity, variables, steps=allowed).peak_steps >= 1)


def test_rejects_collinear_variables():
    rng = np.random.default_rng(2)
    activity, variables, _, _ = synthetic(rng, time=2, size=3)
    with pytest.raises(RnnscopeError, match="collinear"):
        selectivity(activity, {**variables, "twice": 2 * variables["choice"]})
    with pytest.raises(RnnscopeError, match="trials"):
        selectivity(activity, {"choice": np.ones(5)})
