"""ePAIRS: agreement with a plain loop implementation, invariances, calibration and the reference networks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import reference_path
from scipy import linalg, stats

from rnnscope.analysis import loadings
from rnnscope.analysis._epairs import epairs, neighbour_angles, whiten
from rnnscope.errors import RnnscopeError
from rnnscope.io._reference import load_reference


def loop_angles(points: np.ndarray, k: int = 3) -> np.ndarray:
    """The definition, one point at a time: ZCA-whiten, cosines to every other point, mean of the k largest, arccos."""
    centred = points - points.mean(axis=0)
    cov = centred.T @ centred / len(points)
    white = centred @ np.linalg.inv(linalg.sqrtm(cov).real)
    angles = []
    for i in range(len(white)):
        cosines = []
        for j in range(len(white)):
            if j != i:
                a, b = white[i], white[j]
                cosines.append(a @ b / np.sqrt((a @ a) * (b @ b)))
        angles.append(np.arccos(np.mean(sorted(cosines)[-k:])))
    return np.array(angles)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_implementation(seed):
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((60, 4)) @ rng.standard_normal((4, 4)) + rng.standard_normal(4)
    result = epairs(points, rng=seed, draws=20)
    np.testing.assert_allclose(result.data_angles, loop_angles(points), atol=1e-9)
    # the null angles of one draw follow the same definition (no whitening: the draw is already Gaussian)
    cloud = rng.standard_normal((60, 4))
    direct = np.array([
        np.arccos(np.mean(np.sort(np.delete(cloud @ cloud[i] / np.linalg.norm(cloud, axis=1) / np.linalg.norm(cloud[i]), i))[-3:]))
        for i in range(60)
    ])
    np.testing.assert_allclose(neighbour_angles(cloud), direct, atol=1e-9)
    # p and c from the kept raw material
    assert result.null_angles.shape == (20, 60)
    c = (np.median(result.null_angles) - np.median(result.data_angles)) / np.std(result.null_angles)
    assert result.c == pytest.approx(c)
    assert result.p_value == pytest.approx(stats.ranksums(result.null_angles.ravel(), result.data_angles).pvalue)


def test_invariant_to_linear_maps():
    rng = np.random.default_rng(3)
    points = rng.standard_normal((80, 5))
    mixed = points @ rng.standard_normal((5, 5)) + 3.0
    np.testing.assert_allclose(whiten(points).T @ whiten(points) / 80, np.eye(5), atol=1e-10)
    a = epairs(points, rng=0, draws=10).data_angles
    b = epairs(mixed, rng=0, draws=10).data_angles
    np.testing.assert_allclose(a, b, atol=1e-8)


def test_null_is_calibrated_on_gaussian_data():
    rng = np.random.default_rng(4)
    p_values = [epairs(rng.standard_normal((150, 4)) * [1, 2, 3, 4], rng=rng, draws=30).p_value for _ in range(100)]
    assert np.mean(np.array(p_values) < 0.05) < 0.10


def test_detects_directional_clusters():
    rng = np.random.default_rng(5)
    scale_a = np.array([5.0, 0.3, 0.3, 0.3])
    scale_b = np.array([0.3, 5.0, 0.3, 0.3])
    points = np.vstack([rng.standard_normal((200, 4)) * scale_a, rng.standard_normal((200, 4)) * scale_b])
    result = epairs(points, rng=0, draws=50)
    assert result.p_value < 1e-6 and result.c > 0.5 and result.significant


def test_rejects_degenerate_input():
    rng = np.random.default_rng(6)
    points = rng.standard_normal((50, 2))
    with pytest.raises(RnnscopeError, match="degenerate"):
        epairs(np.hstack([points, points[:, :1]]), rng=0, draws=5)
    with pytest.raises(RnnscopeError, match="neighbours"):
        epairs(points, rng=0, draws=5, neighbours=0)
    with pytest.raises(RnnscopeError, match="seed"):
        epairs(points, rng=None, draws=5)


def _connectivity(name: str, noise_std: float = 0.05) -> np.ndarray:
    values, _ = loadings(load_reference(reference_path(f"{name}.pt"), noise_std=noise_std)).select(("m", "n", "w_in"))
    return values


@pytest.mark.reference
def test_reference_mante_is_clustered():
    result = epairs(_connectivity("mante_lr_fig1"), rng=0, draws=200)
    assert result.p_value < 1e-100
    assert 1.5 < result.c < 2.3  # the paper: 1.84; README: about 1.9
    assert result.to_dict()["p_value"] == result.p_value


@pytest.mark.reference
@pytest.mark.parametrize("name", ["rdm_lr_fig2", "raposo_lr_fig1", "romo_rank2_500"])
def test_reference_without_structure(name):
    result = epairs(_connectivity(name), rng=0, draws=200)
    assert result.p_value > 1e-3
    assert abs(result.c) < 0.4
