"""CLI contract of the population analyses, on the shipped context-dependent network (rank 1, N = 256, trained by
rnnscope: tests/data/mante_rank1_256). Like the authors' networks, it needs two populations."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import shipped_run

from rnnscope.cli import main


@pytest.fixture(scope="module")
def mante_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "mante"
    shutil.copytree(shipped_run("mante_rank1_256"), run)
    return str(run)


def _json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(list(args) + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_populations(mante_run, capsys) -> None:
    result = _json(capsys, "populations", mante_run, "--max-populations", "3", "--restarts", "2", "--method", "em")
    assert len(result["bic"]) == 3 and result["chosen"] == 2  # the paper's two populations
    assert sum(result["fits"][1]["sizes"]) == 256


def test_resample_single_gaussian_fails_on_mante(mante_run, capsys) -> None:
    result = _json(capsys, "resample", mante_run, "--populations", "1", "--networks", "4", "--trials", "200")
    assert len(result["accuracy"]) == 4 and result["trained_accuracy"] >= 0.97
    assert result["mean"] < 0.85  # this network: 0.61 over 4 networks; the paper: 0.70 over 100


def test_epairs_connectivity_is_significant(mante_run, capsys) -> None:
    result = _json(capsys, "epairs", mante_run, "--draws", "100")
    assert result["p_value"] < 1e-3 and result["c"] > 1 and result["space"] == "connectivity"


def test_inactivate_one_population(mante_run, capsys) -> None:
    result = _json(capsys, "inactivate", mante_run, "--population", "0", "--trials", "200")
    assert result["group_by"] == "context" and len(result["scaled"]) == 1
    assert min(result["intact"].values()) > 0.95


def test_selectivity(mante_run, capsys) -> None:
    result = _json(capsys, "selectivity", mante_run, "--trials", "100")
    assert result["variables"][0] == "choice" and "context" in result["variables"]
