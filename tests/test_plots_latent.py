import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _lowrank_nets import bimodal_network, gaussian_network  # noqa: E402

from rnnscope.analysis._fixedpoints import find_fixed_points, potential  # noqa: E402
from rnnscope.analysis._latent import flow_field, latent_projection  # noqa: E402
from rnnscope.errors import RnnscopeError  # noqa: E402
from rnnscope.plots._latent import (  # noqa: E402
    FIXED_POINT_GID,
    plot_flow_field,
    plot_loadings,
    plot_potential,
    plot_trajectories,
)


def _markers(ax):
    return [line for line in ax.get_lines() if line.get_gid() == FIXED_POINT_GID]


@pytest.fixture(scope="module")
def rank2():
    w = gaussian_network(np.array([[2.5, 0.0], [0.5, 1.5]]), 400, rng=np.random.default_rng(0))
    return w, find_fixed_points(w, rng=0), flow_field(w, resolution=20)


def test_flow_field_has_one_marker_per_fixed_point(rank2):
    w, result, flow = rank2
    fig = plot_flow_field(flow, result)
    ax = fig.axes[0]
    markers = _markers(ax)
    assert len(markers) == len(result.fixed_points) == 5
    positions = np.array([[m.get_xdata()[0], m.get_ydata()[0]] for m in markers])
    np.testing.assert_allclose(positions, result.fixed_points.kappa)
    assert len(ax.collections) >= 2  # speed mesh + streamlines
    assert "kappa" in ax.get_xlabel() and len(fig.axes) == 2  # plus colour bar
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"stable", "saddle", "source"}


def test_flow_field_on_given_axes_and_rank1():
    from matplotlib.figure import Figure

    w = gaussian_network([[2.0]], 300, rng=np.random.default_rng(0))
    result = find_fixed_points(w, rng=0)
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_flow_field(flow_field(w, resolution=30), result, ax=ax) is fig
    assert len(_markers(ax)) == 3
    pfig = plot_potential(potential(w), result)
    assert len(_markers(pfig.axes[0])) == 3
    assert [line.get_gid() for line in pfig.axes[0].get_lines()].count("potential") == 1
    with pytest.raises(RnnscopeError, match="flow"):
        plot_flow_field(result)


def test_trajectories_one_line_per_trial(rank2):
    w, result, _ = rank2
    rng = np.random.default_rng(1)
    kappa = np.cumsum(rng.standard_normal((6, 15, 2)), axis=1) * 0.1
    projection = latent_projection(w, kappa @ w.m.T)
    fig = plot_trajectories(projection, np.array([-1, -1, 0, 0, 1, 1.0]), fixed_points=result)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_gid() == "trajectory"]
    assert len(lines) == 6
    np.testing.assert_allclose(lines[2].get_xydata(), kappa[2], atol=1e-10)
    assert len(ax.get_legend().get_texts()) == 3 + 3  # three conditions and three fixed-point classes
    with pytest.raises(RnnscopeError, match="conditions"):
        plot_trajectories(projection, np.zeros(2))


def test_loadings_scatter_colours_populations():
    w, populations = bimodal_network(2.0, 400, rng=np.random.default_rng(0))
    fig = plot_loadings(w, populations)
    assert len(fig.axes) == 2
    collections = [c for c in fig.axes[1].collections if c.get_gid() == "loadings"]
    assert len(collections) == 4
    assert sum(len(c.get_offsets()) for c in collections) == 400
    assert fig.axes[1].get_xlabel() == "$m_2$"
