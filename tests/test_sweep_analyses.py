"""The per-network analyses of a sweep (rnnscope.sweep analyse_network) on the networks shipped in tests/data,
checked against the matching command's --json output with the same seed: the command is an independent path to the
same library function, so a wrong argument, seed or column in the sweep's row shows up as a mismatch."""

from __future__ import annotations

import json
import math

import pytest
from conftest import shipped_run

from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.sweep._analyses import ANALYSES, ANALYSIS_OPTIONS, analyse_network, check_analyses

LOW = "rdm_rank1_128"
FULL = "rdm_full_64"
SMALL = {"trials": 100, "networks": 3, "draws": 60}


def command(capsys, *arguments: str) -> dict:
    capsys.readouterr()
    assert main([*arguments, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def no_nan(row: dict) -> None:
    for column, value in row.items():
        assert value is None or isinstance(value, (bool, int, float, str)), (column, value)
        assert not (isinstance(value, float) and not math.isfinite(value)), column


@pytest.fixture(scope="module")
def low_row():
    return analyse_network(shipped_run(LOW), ANALYSES[:4], rng=7, options=SMALL)


def test_accuracy_matches_evaluate(low_row, capsys) -> None:
    d = command(capsys, "evaluate", str(shipped_run(LOW)), "--trials", "100", "--seed", "7")
    assert low_row["accuracy"] == pytest.approx(d["accuracy"], abs=1e-12)
    assert low_row["accuracy_trials"] == d["trials"] == 100


def test_resampled_accuracy_matches_resample_populations_1(low_row, capsys) -> None:
    d = command(capsys, "resample", str(shipped_run(LOW)), "--populations", "1", "--networks", "3",
                "--trials", "100", "--seed", "7")
    assert low_row["resampled_accuracy"] == pytest.approx(d["mean"], abs=1e-12)
    assert low_row["resampled_trained_accuracy"] == pytest.approx(d["trained_accuracy"], abs=1e-12)
    assert low_row["resampled_networks"] == len(d["accuracy"]) == 3
    assert low_row["resampled_size"] == d["size"] == 128
    assert low_row["mixture_method"] == d["method"] == "bayes"


@pytest.mark.parametrize("space", ["connectivity", "selectivity"])
def test_epairs_matches_the_command(low_row, capsys, space) -> None:
    d = command(capsys, "epairs", str(shipped_run(LOW)), "--space", space, "--draws", "60", "--trials", "100",
                "--seed", "7")
    assert low_row[f"epairs_{space}_c"] == pytest.approx(d["c"], abs=1e-12)
    assert low_row[f"epairs_{space}_p"] == pytest.approx(d["p_value"], rel=1e-12)
    assert low_row[f"epairs_{space}_columns"].split(",") == d["columns"]


def test_row_is_flat_without_nan_and_deterministic(low_row) -> None:
    no_nan(low_row)
    assert low_row["notes"] is None
    again = analyse_network(shipped_run(LOW), ANALYSES[:4], rng=7, options=SMALL)
    assert again == low_row
    other = analyse_network(shipped_run(LOW), ["epairs_connectivity"], rng=8, options=SMALL)
    assert other["epairs_connectivity_p"] != low_row["epairs_connectivity_p"]  # the seed reaches the null draws


def test_minimal_populations_matches_the_command(capsys) -> None:
    options = {"trials": 100, "networks": 2, "max_populations": 2}
    row = analyse_network(shipped_run(LOW), ["minimal_populations"], rng=3, options=options)
    d = command(capsys, "minimal-populations", str(shipped_run(LOW)), "--max-populations", "2", "--networks", "2",
                "--trials", "100", "--seed", "3")
    assert row["minimal_populations"] == d["populations"] == 1  # rdm: one Gaussian suffices
    assert row["minimal_populations_max"] == 2 and row["minimal_populations_retrain"] is False
    assert row["minimal_populations_accuracy"] == pytest.approx(d["mean_accuracy"][0], abs=1e-12)
    assert row["minimal_populations_trained_accuracy"] == pytest.approx(d["trained_accuracy"], abs=1e-12)
    no_nan(row)


def test_minimal_rank_matches_the_command_and_full_rank_skips_low_rank_analyses(capsys) -> None:
    options = {"trials": 100, "max_rank": 1, "rank_epochs": 1, "draws": 60, "networks": 2}
    row = analyse_network(shipped_run(FULL), ["accuracy", "minimal_rank", "epairs_connectivity",
                                              "resampled_accuracy"], rng=5, options=options)
    d = command(capsys, "minimal-rank", str(shipped_run(FULL)), "--max-rank", "1", "--epochs", "1",
                "--trials", "100", "--seed", "5")
    assert row["minimal_rank"] == d["needed"]
    assert row["minimal_rank_full_accuracy"] == pytest.approx(d["full_accuracy"], abs=1e-12)
    # the low-rank analyses do not apply: every column present, None, and the notes say why
    for column in ("epairs_connectivity_c", "epairs_connectivity_p", "resampled_accuracy", "resampled_size"):
        assert column in row and row[column] is None
    assert "epairs_connectivity: needs a low-rank network" in row["notes"]
    assert "resampled_accuracy: needs a low-rank network" in row["notes"]
    assert row["accuracy"] is not None
    no_nan(row)


def test_minimal_rank_of_a_low_rank_network_is_a_note() -> None:
    row = analyse_network(shipped_run(LOW), ["minimal_rank"], rng=0)
    assert row == {"minimal_rank": None, "minimal_rank_full_accuracy": None, "minimal_rank_max": None,
                   "notes": "minimal_rank: needs a full-rank network, this one is low-rank"}


@pytest.mark.parametrize(("analyses", "options", "message"), [
    (["accuracy", "clustering"], None, "analyses: unknown analysis 'clustering'"),
    ("accuracy", None, "analyses: expected a list"),
    (["accuracy"], {"trails": 10}, "analysis_options.trails: unknown option"),
    (["accuracy"], {"trials": 0}, "analysis_options.trials"),
    (["accuracy"], {"trials": 2.5}, "analysis_options.trials: expected an integer"),
    (["accuracy"], {"trials": True}, "analysis_options.trials: expected an integer"),
    (["accuracy"], {"tolerance": float("nan")}, "analysis_options.tolerance: expected a finite number"),
    (["accuracy"], {"retrain": "yes"}, "analysis_options.retrain: expected true or false"),
    (["accuracy"], {"method": "kmeans"}, "analysis_options.method"),
    (["accuracy"], {"size": -4}, "analysis_options.size"),
    (["accuracy"], {"min_populations": 3, "max_populations": 2}, "analysis_options.min_populations"),
    (["accuracy"], [("trials", 3)], "analysis_options: expected a mapping"),
])
def test_bad_analyses_and_options_are_one_line_errors(analyses, options, message) -> None:
    with pytest.raises(RnnscopeError) as caught:
        analyse_network(shipped_run(LOW), analyses, rng=0, options=options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_bad_run_directory_and_rng_are_errors(tmp_path) -> None:
    with pytest.raises(RnnscopeError, match="config.json"):
        analyse_network(tmp_path, ["accuracy"], rng=0)
    with pytest.raises(RnnscopeError, match="rng"):
        analyse_network(shipped_run(LOW), ["accuracy"], rng=-1)


def test_check_analyses_keeps_order_and_drops_repeats() -> None:
    assert check_analyses(["epairs_selectivity", "accuracy", "accuracy"]) == ("epairs_selectivity", "accuracy")
    assert set(ANALYSIS_OPTIONS) >= {"trials", "networks", "draws", "retrain", "retrain_epochs", "tolerance", "size"}


def test_minimal_populations_with_retraining_matches_the_command(capsys) -> None:
    # tolerance 0.25: on this network two populations resample to about 0.66 before retraining and 0.8 after, so
    # the answer depends on the retraining reaching the analysis
    options = {"trials": 60, "networks": 2, "min_populations": 2, "max_populations": 2, "retrain": True,
               "retrain_epochs": 2, "tolerance": 0.25}
    row = analyse_network(shipped_run("mante_rank1_256"), ["minimal_populations"], rng=4, options=options)
    d = command(capsys, "minimal-populations", str(shipped_run("mante_rank1_256")), "--min-populations", "2",
                "--max-populations", "2", "--networks", "2", "--trials", "60", "--retrain", "--retrain-epochs", "2",
                "--tolerance", "0.25", "--seed", "4")
    assert d["retrain"] is True and row["minimal_populations_retrain"] is True
    assert row["minimal_populations"] == d["populations"]
    assert row["minimal_populations_trained_accuracy"] == pytest.approx(d["trained_accuracy"], abs=1e-12)
    reached = [a for a in (d["mean_accuracy"][1], d["mean_retrained_accuracy"][1]) if a is not None]
    assert d["mean_retrained_accuracy"][1] is not None  # the retraining ran
    if d["populations"] == 2:
        assert row["minimal_populations_accuracy"] == pytest.approx(max(reached), abs=1e-12)
    else:
        assert row["minimal_populations_accuracy"] is None


def test_retraining_default_is_the_library_default():
    from rnnscope.analysis import RETRAIN_EPOCHS
    from rnnscope.sweep import ANALYSIS_OPTIONS

    assert ANALYSIS_OPTIONS["retrain_epochs"][0] == RETRAIN_EPOCHS
