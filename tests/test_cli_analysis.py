"""CLI contract of the latent analysis: analyze, fixed-points, flow, on the shipped random-dots network
(rank 1, N = 128, trained by rnnscope: tests/data/rdm_rank1_128)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import shipped_run

from rnnscope.cli import main


@pytest.fixture(scope="module")
def rdm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "rdm"
    shutil.copytree(shipped_run("rdm_rank1_128"), run)
    return run


def test_fixed_points_json(rdm_run, capsys) -> None:
    capsys.readouterr()
    assert main(["fixed-points", str(rdm_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"fixed_points", "ring", "limit_cycle"}
    classes = sorted(p["class"] for p in result["fixed_points"])
    assert classes == ["source", "stable", "stable"]  # rank 1: the unstable point near 0 (a saddle of the full network)
    stable = [p["kappa"][0] for p in result["fixed_points"] if p["class"] == "stable"]
    assert min(stable) < 0 < max(stable)
    # a strong input removes the bistability
    assert main(["fixed-points", str(rdm_run), "--input", "0=1.0", "--json"]) == 0
    assert [p["class"] for p in json.loads(capsys.readouterr().out)["fixed_points"]] == ["stable"]


def test_analyze_json(rdm_run, capsys) -> None:
    capsys.readouterr()
    assert main(["analyze", str(rdm_run), "--trials", "60", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rank"] == 1 and result["overlaps"][0][0] > 1
    assert set(result["effective_overlaps"]) == {"fixation", "stimulus", "delay", "decision"}
    assert 0.9 < result["variance_explained"] <= 1.0
    # the stimulus lowers the gain, so the effective overlap during it is below the plain overlap
    assert result["effective_overlaps"]["stimulus"]["overlaps"][0][0] < result["overlaps"][0][0]


def test_flow_figure(rdm_run, tmp_path, capsys) -> None:
    out = tmp_path / "flow.png"
    assert main(["flow", str(rdm_run), "--figure", str(out), "--resolution", "10"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["flow", str(rdm_run), "--out", str(tmp_path / "figs"), "--resolution", "10"]) == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["flow.png", "flow.svg"]
    assert main(["flow", str(rdm_run), "--out", str(tmp_path / "x.png")]) == 2  # --out is always a directory
    assert "--figure" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_inputs_are_named_as_the_task_names_them(rdm_run, capsys) -> None:
    assert main(["fixed-points", str(rdm_run), "--input", "stimulus=1.0", "--json"]) == 0
    named = json.loads(capsys.readouterr().out)
    assert main(["fixed-points", str(rdm_run), "--input", "0=1.0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == named
    assert main(["fixed-points", str(rdm_run), "--input", "motion=1"]) == 2
    assert "stimulus" in capsys.readouterr().err


def test_bad_input_index(rdm_run, capsys) -> None:
    assert main(["fixed-points", str(rdm_run), "--input", "3=1"]) == 2
    assert "--input" in capsys.readouterr().err
