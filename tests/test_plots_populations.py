"""Population figures: return Figures, draw the given data, honour a passed ax, never touch global state."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from rnnscope.analysis import Inactivation, MinimalPopulations, epairs, fit_populations, loadings
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankWeights
from rnnscope.plots._populations import (
    plot_bic,
    plot_epairs,
    plot_inactivation,
    plot_loading_pairs,
    plot_resampled_accuracy,
)


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(0)
    return LowRankWeights(m=rng.standard_normal((120, 1)), n=rng.standard_normal((120, 1)),
                          w_in=rng.standard_normal((120, 2)), w_out=rng.standard_normal((120, 1)), h0=np.zeros(120))


@pytest.fixture(scope="module")
def fit(network):
    return fit_populations(loadings(network), rng=0, max_populations=2, restarts=2)


def test_loading_pairs(network):
    rc = dict(matplotlib.rcParams)
    points = loadings(network)
    labels = np.arange(120) % 2
    fig = plot_loading_pairs(points, labels, columns=("n[0]", "m[0]", "w_out[0]"))
    assert isinstance(fig, Figure) and len(fig.axes) == 9
    dots = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "loadings"]
    assert sum(len(c.get_offsets()) for c in dots) == 6 * 120  # 6 off-diagonal panels, every neuron once
    np.testing.assert_allclose(
        np.sort(fig.axes[1].collections[0].get_offsets()[:, 0]), np.sort(points.values[labels == 0, points.columns.index("m[0]")])
    )
    with pytest.raises(RnnscopeError, match="columns"):
        plot_loading_pairs(points, columns=("q[0]",))
    assert dict(matplotlib.rcParams) == rc


def test_bic_and_resampled_accuracy(fit):
    fig = plot_bic(fit)
    line = next(line for line in fig.axes[0].lines if line.get_gid() == "bic")
    np.testing.assert_allclose(line.get_ydata(), fit.bic)
    result = MinimalPopulations(
        accuracy=np.array([[0.6, 0.7, 0.65], [0.95, 0.97, 0.96]]), trained_accuracy=0.98, tolerance=0.05,
        populations=2, zero_mean=False, size=120, fit=fit,
    )
    other = Figure()
    ax = other.add_subplot()
    assert plot_resampled_accuracy(result, ax=ax) is other
    dots = [c for c in ax.collections if c.get_gid() == "networks"]
    assert sum(len(c.get_offsets()) for c in dots) == 6
    assert not [c for c in ax.collections if c.get_gid() == "retrained"]
    retrained = MinimalPopulations(
        accuracy=result.accuracy, trained_accuracy=0.98, tolerance=0.05, populations=2, zero_mean=False, size=120,
        fit=fit, retrain=True, retrained_accuracy=np.array([[0.8, 0.85, 0.9], [0.99, 0.98, 1.0]]),
        retrain_losses=np.zeros((2, 3)), retrained_models=(None, None),
    )
    fig = plot_resampled_accuracy(retrained)
    after = [c for c in fig.axes[0].collections if c.get_gid() == "retrained"]
    np.testing.assert_allclose(np.concatenate([c.get_offsets()[:, 1] for c in after]), [0.8, 0.85, 0.9, 0.99, 0.98, 1.0])


def test_epairs_and_inactivation():
    rng = np.random.default_rng(1)
    result = epairs(rng.standard_normal((60, 3)), rng=0, draws=10)
    fig = plot_epairs(result)
    data = [p for p in fig.axes[0].patches if p.get_gid() == "data"]
    assert sum(p.get_height() * p.get_width() for p in data) == pytest.approx(1.0)
    silenced = Inactivation(group_by="context", groups=np.array([0, 1]),
                            accuracy=np.array([[1.0, 0.99], [0.6, 0.98], [0.97, 0.55]]), gain=0.0)
    fig = plot_inactivation(silenced)
    heights = sorted(p.get_height() for p in fig.axes[0].patches if p.get_gid() == "accuracy")
    np.testing.assert_allclose(heights, np.sort(silenced.accuracy.ravel()))
