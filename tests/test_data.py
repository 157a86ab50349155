"""rnnscope.data: recordings files, the analyses on synthetic ground truth, networks as recordings, the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import reference_path, shipped_run
from sklearn.metrics import adjusted_rand_score

from rnnscope import io
from rnnscope.analysis import epairs
from rnnscope.cli import main
from rnnscope.data import (
    Recordings,
    clustered_selectivity,
    data_epairs,
    data_populations,
    data_selectivity,
    load_recordings,
    recordings_from_network,
    save_recordings,
    synthetic_recordings,
    task_projection,
)
from rnnscope.errors import RnnscopeError


def _recordings(seed: int = 0, clusters: int = 1, separation: float = 0.0, size: int = 120) -> Recordings:
    space, _ = clustered_selectivity(size, variables=3, clusters=clusters, separation=separation, rng=seed)
    return synthetic_recordings(space, trials=100, steps=8, rng=seed + 1)


# -- the container and its files ------------------------------------------------------------------------------------
def test_recordings_validation_names_the_problem():
    activity = np.random.default_rng(0).random((10, 4, 3))
    with pytest.raises(RnnscopeError, match="conditions\\['x'\\].*10"):
        Recordings(activity=activity, conditions={"x": np.ones(9)}, time_ms=np.arange(4.0))
    bad = activity.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(RnnscopeError, match="NaN.*row 2, step 1, neuron 0"):
        Recordings(activity=bad, conditions={}, time_ms=np.arange(4.0))
    flat = activity.copy()
    flat[:, :, 1] = 3.0
    with pytest.raises(RnnscopeError, match="no variance.*neuron 1"):
        Recordings(activity=flat, conditions={}, time_ms=np.arange(4.0))
    with pytest.raises(RnnscopeError, match="time_ms"):
        Recordings(activity=activity, conditions={}, time_ms=np.arange(3.0))
    with pytest.raises(RnnscopeError, match="activity: expected"):
        Recordings(activity=activity[0], conditions={}, time_ms=np.arange(4.0))


def test_variables_code_two_level_text_and_skip_constants():
    rec = Recordings(activity=np.random.default_rng(0).random((6, 2, 2)),
                     conditions={"context": np.array(["motion", "colour"] * 3), "same": np.ones(6),
                                 "stim": np.arange(6.0), "copy": np.arange(6.0)}, time_ms=[0.0, 1.0])
    variables = rec.variables()
    assert list(variables) == ["context", "stim"]
    np.testing.assert_array_equal(variables["context"], [1, -1, 1, -1, 1, -1])
    with pytest.raises(RnnscopeError, match="'nope' is not a condition"):
        rec.variables(["nope"])


def test_npz_round_trip_and_no_overwrite(tmp_path):
    rec = _recordings()
    path = save_recordings(tmp_path / "rec.npz", rec)
    assert path == tmp_path / "rec.npz" and sorted(p.name for p in tmp_path.iterdir()) == ["rec.npz"]
    back = load_recordings(path)
    np.testing.assert_array_equal(back.activity, rec.activity)
    np.testing.assert_array_equal(back.conditions["v1"], rec.conditions["v1"])
    assert back.neurons["area"][0] == "synthetic"
    with pytest.raises(RnnscopeError, match="already exists"):
        save_recordings(path, rec)
    with pytest.raises(RnnscopeError, match=".npz suffix"):
        save_recordings(tmp_path / "rec.csv", rec)


def test_npz_refuses_pickle_and_unknown_keys(tmp_path):
    np.savez(tmp_path / "obj.npz", activity=np.array([object()], dtype=object), time_ms=np.arange(1.0))
    with pytest.raises(RnnscopeError, match="pickle"):
        load_recordings(tmp_path / "obj.npz")
    np.savez(tmp_path / "odd.npz", activity=np.ones((2, 1, 1)), time_ms=np.arange(1.0), extra=np.ones(2))
    with pytest.raises(RnnscopeError, match="unknown array.*extra"):
        load_recordings(tmp_path / "odd.npz")
    np.savez(tmp_path / "none.npz", rates=np.ones(2))
    with pytest.raises(RnnscopeError, match="missing array 'activity'"):
        load_recordings(tmp_path / "none.npz")


def _long_rows(rec: Recordings) -> list[tuple]:
    rows = []
    for n in range(rec.size):
        for t in range(rec.trials):
            for s in range(rec.steps):
                rows.append((n, t, float(rec.time_ms[s]), float(rec.activity[t, s, n]), float(rec.conditions["v0"][t]),
                             ["A1", "PPC"][n % 2]))
    return rows


def test_csv_long_format_matches_npz(tmp_path):
    rec = _recordings(size=10)
    lines = ["neuron,trial,time,rate,v0,area"] + [",".join(map(repr, r[:5])) + f",{r[5]}" for r in _long_rows(rec)]
    (tmp_path / "rec.csv").write_text("\n".join(lines) + "\n")
    back = load_recordings(tmp_path / "rec.csv")
    np.testing.assert_allclose(back.activity, rec.activity)
    np.testing.assert_array_equal(back.conditions["v0"], rec.conditions["v0"])
    assert list(back.neurons["area"][:2]) == ["A1", "PPC"]
    (tmp_path / "short.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(RnnscopeError, match="1 missing rate"):
        load_recordings(tmp_path / "short.csv")
    (tmp_path / "cols.csv").write_text("neuron,time,rate\n0,1,2\n")
    with pytest.raises(RnnscopeError, match="missing column.*trial"):
        load_recordings(tmp_path / "cols.csv")
    (tmp_path / "nan.csv").write_text("neuron,trial,time,rate\n0,0,1,nan\n")
    with pytest.raises(RnnscopeError, match="'rate' has 1 NaN"):
        load_recordings(tmp_path / "nan.csv")


def test_parquet_long_format_matches_npz(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet needs the optional pyarrow")
    import pyarrow.parquet as pq

    rec = _recordings(size=6)
    rows = _long_rows(rec)
    names = ["neuron", "trial", "time", "rate", "v0", "area"]
    pq.write_table(pa.table({k: [r[i] for r in rows] for i, k in enumerate(names)}), tmp_path / "rec.parquet")
    back = load_recordings(tmp_path / "rec.parquet")
    np.testing.assert_allclose(back.activity, rec.activity)
    np.testing.assert_array_equal(back.conditions["v0"], rec.conditions["v0"])


def test_nwb_round_trip_gives_the_npz_rates(tmp_path):
    pynwb = pytest.importorskip("pynwb", reason="NWB files need the optional pynwb (extra rnnscope[nwb])")
    import datetime

    rng = np.random.default_rng(3)
    nwb = pynwb.NWBFile(session_description="test", identifier="session-1",
                        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    nwb.add_trial_column("coherence", "signed coherence")
    nwb.add_trial_column("context", "context")
    starts = np.arange(12) * 2.0
    for k, start in enumerate(starts):
        nwb.add_trial(start_time=start, stop_time=start + 1.0 + 0.05 * (k % 3), coherence=float(k % 4 - 1.5),
                      context=["motion", "colour"][k % 2])
    nwb.add_unit_column("area", "brain area")
    spikes = [np.sort(rng.uniform(0, 25, size=200 + 50 * u)) for u in range(5)]
    for u, times in enumerate(spikes):
        nwb.add_unit(spike_times=times, area=["FEF", "PFC"][u % 2])
    with pynwb.NWBHDF5IO(str(tmp_path / "rec.nwb"), "w") as writer:
        writer.write(nwb)
    got = load_recordings(tmp_path / "rec.nwb", bin_ms=100.0)
    edges = starts[:, None] + np.arange(11)[None, :] * 0.1  # the shortest trial lasts 1 s: 10 bins of 100 ms
    expected = np.stack([np.stack([np.histogram(t, bins=e)[0] for e in edges]) for t in spikes], axis=-1) / 0.1
    save_recordings(tmp_path / "rec.npz", Recordings(activity=expected, conditions=dict(got.conditions),
                                                        time_ms=got.time_ms))
    np.testing.assert_allclose(got.activity, load_recordings(tmp_path / "rec.npz").activity)
    assert list(got.neurons["area"][:2]) == ["FEF", "PFC"] and got.neurons["session"][0] == "session-1"
    assert set(got.conditions) == {"coherence", "context"} and got.conditions["context"][1] == "colour"


# -- analyses on ground truth ----------------------------------------------------------------------------------------
def test_selectivity_recovers_the_true_space():
    space, _ = clustered_selectivity(150, variables=3, rng=0)
    rec = synthetic_recordings(space, trials=200, steps=9, noise_std=0.5, rng=1)
    result = data_selectivity(rec, rng=2)
    assert result.cross_validated and list(result.peak_steps) == [4, 4, 4]  # the bump peaks mid-trial
    for v in range(3):
        assert np.corrcoef(result.space[:, v], space[:, v])[0, 1] > 0.98
    assert json.dumps(result.to_dict(), allow_nan=False)
    projection = task_projection(rec, result)
    np.testing.assert_allclose(projection.axes.T @ projection.axes, np.eye(3), atol=1e-10)
    conditions = np.unique(np.stack([rec.conditions[f"v{v}"] for v in range(3)], axis=1), axis=0)
    assert projection.projections.shape == (conditions.shape[0], 9, 3)
    np.testing.assert_array_equal(projection.values, conditions)


def test_cross_validated_signal_is_unbiased_where_the_norm_is_not():
    """Pure noise: the squared norm of the betas is positive at every step, the cross-validated signal is ~0."""
    rng = np.random.default_rng(0)
    rec = Recordings(activity=rng.standard_normal((200, 6, 50)), conditions={"x": rng.choice([-1.0, 1.0], 200)},
                     time_ms=np.arange(6.0))
    result = data_selectivity(rec, rng=1, splits=20)
    plain = np.linalg.norm(result.regression.betas, axis=-1) ** 2
    assert np.all(plain > 0.1) and np.all(np.abs(result.signal) < 0.5 * plain.mean())


def test_mixture_recovers_well_separated_clusters():
    for clusters in (2, 3):
        space, labels = clustered_selectivity(120, variables=3, clusters=clusters, separation=4.0, rng=clusters)
        rec = synthetic_recordings(space, trials=120, steps=5, noise_std=0.5, rng=10 + clusters)
        fit = data_populations(data_selectivity(rec, rng=0), rng=0, max_populations=clusters + 1, restarts=3)
        assert fit.chosen == clusters
        assert adjusted_rand_score(labels, fit.labels_for(clusters)) >= 0.9
        assert data_epairs(rec, rng=1, draws=100).p_value < 1e-3


def test_resampled_p_value_is_uniformish_on_gaussian_clouds():
    """60 Gaussian clouds (the slow test runs 200): rank-sum and resampled p-values at 0.05."""
    resampled = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        result = epairs(rng.standard_normal((150, 3)), rng=rng, draws=100)
        resampled.append(result.p_value_resampled)
    assert np.mean(np.asarray(resampled) < 0.05) <= 0.1


@pytest.mark.slow
def test_epairs_false_positive_rate_on_one_gaussian_cloud_of_selectivity():
    """200 synthetic data sets through the whole pipeline (recordings -> selectivity -> ePAIRS)."""
    ranksum, resampled = [], []
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        space, _ = clustered_selectivity(150, variables=3, clusters=1, rng=rng)
        rec = synthetic_recordings(space, trials=120, steps=10, noise_std=2.0, rng=rng)
        result = data_epairs(data_selectivity(rec, rng=rng, splits=4), rng=rng, draws=100)
        ranksum.append(result.p_value)
        resampled.append(result.p_value_resampled)
    assert abs(np.mean(np.asarray(resampled) < 0.05) - 0.05) <= 0.02
    assert np.mean(np.asarray(ranksum) < 0.05) <= 0.15  # the rank-sum test is liberal (measured 0.10): see docs/data.md


# -- networks as recordings ------------------------------------------------------------------------------------------
@pytest.mark.reference
@pytest.mark.slow  # about 20 s on 2 cores
def test_mante_network_as_recordings_is_structured():
    from rnnscope.tasks import make_task

    weights = io.load_reference(reference_path("mante_lr_fig1.pt"))
    rec = recordings_from_network(weights, make_task("mante"), rng=0, neurons=200, noise="poisson")
    assert rec.activity.shape == (400, 68, 200) and set(rec.conditions) >= {"context", "choice"}
    assert np.all(rec.activity >= 0) and np.all(np.isclose(rec.activity * 0.02, np.round(rec.activity * 0.02)))
    # 100 ms windows (5 steps) average out the Poisson noise of 20 ms bins: p = 3e-4, 2e-10, 7e-14 for seeds 0-2
    result = data_epairs(data_selectivity(rec, rng=0, window_steps=5), rng=0, draws=500)
    assert result.p_value < 1e-3 and result.c > 0


# -- the CLI ---------------------------------------------------------------------------------------------------------
def test_cli_commands(tmp_path, capsys):
    path = save_recordings(tmp_path / "rec.npz", _recordings(clusters=2, separation=4.0))
    assert main(["data", "epairs", str(path), "--json", "--null-draws", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"p_value", "c", "neighbours", "space", "p_value_resampled"} <= set(out) and out["space"] == "selectivity"
    assert main(["data", "selectivity", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["variables"] == ["v0", "v1", "v2"]
    assert main(["data", "populations", str(path), "--json", "--restarts", "2", "--max-populations", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["chosen"] == 2
    assert main(["data", "epairs", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.npz: no such file" in err


def test_cli_report(tmp_path, capsys):
    a = save_recordings(tmp_path / "a.npz", _recordings(clusters=2, separation=4.0, size=60))
    b = save_recordings(tmp_path / "b.npz", _recordings(seed=5, size=60))
    assert main(["data", "report", str(a), str(b), "--out", str(tmp_path / "rep"), "--null-draws", "50",
                 "--restarts", "2"]) == 0
    page = (tmp_path / "rep" / "report.html").read_text()
    assert 'data-run="1-synthetic"' in page and 'data-run="2-synthetic"' in page and "ePAIRS in selectivity space" in page
    data = json.loads((tmp_path / "rep" / "data" / "1-synthetic.json").read_text())
    assert data["epairs"]["space"] == "selectivity"


def test_cli_from_run_writes_exactly_the_file_once(tmp_path, capsys):
    run = tmp_path / "rdm"
    shutil.copytree(shipped_run("rdm_rank1_128"), run)
    out = tmp_path / "rdm.npz"
    args = ["data", "from-run", str(run), "--neurons", "30", "--trials", "60", "--out", str(out), "--json"]
    capsys.readouterr()
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["size"] == 30 and summary["trials"] == 60 and sorted(p.name for p in tmp_path.iterdir()) == ["rdm", "rdm.npz"]
    assert load_recordings(out).conditions["choice"].shape == (60,)
    assert main(args) == 2 and "already exists" in capsys.readouterr().err
