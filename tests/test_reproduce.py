"""``rnnscope reproduce dubreuil2022``: the comparison with the paper computed from rows (checked against a plain
independent computation), the study's specification, and a real tiny study through the command line (trained
networks, the table, comparison.json/.md, figures, a resumed rerun)."""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import time

import pytest

from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.sweep._reproduce import (
    LOOSE_P,
    PAPER_TABLE,
    PAPER_TASKS,
    STRICT_P,
    compare_with_paper,
    reproduction_spec,
)

# hand-made rows: rdm with p values on both sides of both thresholds (and exactly at them), mante, and a task
# outside the paper; a None (analysis not applicable) and a failed value must be left out, never counted
ROWS = [
    {"task": "rdm", "seed": 0, "accuracy": 1.0, "resampled_accuracy": 0.9, "epairs_connectivity_c": 0.05,
     "epairs_connectivity_p": 1e-5},
    {"task": "rdm", "seed": 1, "accuracy": 0.98, "resampled_accuracy": 0.95, "epairs_connectivity_c": 0.11,
     "epairs_connectivity_p": 5e-4},  # not < 5e-4
    {"task": "mante", "seed": 0, "accuracy": 0.99, "resampled_accuracy": 0.6, "epairs_connectivity_c": 1.9,
     "epairs_connectivity_p": 1e-30, "minimal_populations": None, "minimal_populations_max": 3},
    {"task": "rdm", "seed": 2, "accuracy": 0.96, "resampled_accuracy": None, "epairs_connectivity_c": 0.31,
     "epairs_connectivity_p": 0.01},
    {"task": "rdm", "seed": 3, "accuracy": 0.9, "resampled_accuracy": 0.7, "epairs_connectivity_c": None,
     "epairs_connectivity_p": None, "notes": "not applicable"},
    {"task": "rdm", "seed": 4, "accuracy": 1.0, "resampled_accuracy": 1.0, "epairs_connectivity_c": 0.02,
     "epairs_connectivity_p": 0.05},  # not < 0.05
    {"task": "rdm", "seed": 5, "accuracy": 1.0, "resampled_accuracy": 0.8, "epairs_connectivity_c": 0.07,
     "epairs_connectivity_p": 0.3},
    {"task": "mante", "seed": 1, "accuracy": 1.0, "resampled_accuracy": 0.7, "epairs_connectivity_c": 1.7,
     "epairs_connectivity_p": 2e-4, "minimal_populations": 2, "minimal_populations_max": 3},
    {"task": "custom", "seed": 0, "accuracy": 0.5},
    # full-rank networks (with --full) give the minimal rank and enter nothing else
    {"task": "rdm", "seed": 0, "full_rank": True, "accuracy": 0.1, "minimal_rank": 1, "minimal_rank_max": 2,
     "epairs_connectivity_p": 1e-9},
    {"task": "rdm", "seed": 1, "full_rank": True, "accuracy": 0.2, "minimal_rank": None, "minimal_rank_max": 2},
    {"task": "rdm", "seed": 2, "full_rank": True, "accuracy": 0.3, "minimal_rank": 1, "minimal_rank_max": 2},
    {"task": "rdm", "seed": 3, "full_rank": True, "accuracy": 0.3, "minimal_rank": None, "minimal_rank_max": None},
]


def independent(rows: list[dict], task: str) -> dict:
    chosen = [r for r in rows if r["task"] == task and not r.get("full_rank")]
    accuracy = [r["accuracy"] for r in chosen if r.get("accuracy") is not None]
    resampled = [r["resampled_accuracy"] for r in chosen if r.get("resampled_accuracy") is not None]
    p = [r["epairs_connectivity_p"] for r in chosen if r.get("epairs_connectivity_p") is not None]
    c = [r["epairs_connectivity_c"] for r in chosen if r.get("epairs_connectivity_c") is not None]
    low, median, high = statistics.quantiles(c, n=4, method="inclusive") if len(c) > 1 else (c[0],) * 3
    return {"networks": len(chosen), "accuracy_mean": sum(accuracy) / len(accuracy),
            "resampled_accuracy_mean": sum(resampled) / len(resampled) if resampled else None,
            "epairs_tested": len(p), "significant_strict": sum(1 for v in p if v < 5e-4),
            "significant": sum(1 for v in p if v < 0.05), "c_median": median, "c_quartiles": [low, high]}


@pytest.mark.parametrize("task", ["rdm", "mante"])
def test_comparison_matches_an_independent_computation(task) -> None:
    got = compare_with_paper(ROWS).task(task).to_dict()
    want = independent(ROWS, task)
    for key, value in want.items():
        if isinstance(value, list):
            assert got[key] == pytest.approx(value, abs=1e-12), key
        elif isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-12), key
        else:
            assert got[key] == value, key
    assert got["paper"] == PAPER_TABLE[task].to_dict()


def test_comparison_counts_thresholds_and_order() -> None:
    comparison = compare_with_paper(ROWS)
    assert [t.task for t in comparison.tasks] == ["rdm", "mante", "custom"]  # the paper's order, then the rest
    rdm = comparison.task("rdm")
    # p: 1e-5, 5e-4, 0.01, 0.05, 0.3 (one None): strictly below 5e-4 -> 1; strictly below 0.05 -> 3
    assert (rdm.significant_strict, rdm.significant, rdm.epairs_tested, rdm.networks) == (1, 3, 5, 6)
    assert rdm.c_quartiles == pytest.approx((0.05, 0.07, 0.11))
    assert (STRICT_P, LOOSE_P) == (5e-4, 0.05)
    custom = comparison.task("custom").to_dict()
    assert custom["paper"] is None and custom["c_median"] is None and custom["epairs_tested"] == 0
    assert comparison.task("mante").to_dict()["minimal_populations_counts"] == {"2": 1, "None": 1}
    assert comparison.task("mante").to_dict()["minimal_rank_counts"] is None
    assert rdm.full_rank_networks == 4 and rdm.to_dict()["minimal_rank_counts"] == {"1": 2, "None": 1}
    text = json.dumps(comparison.to_dict(), allow_nan=False)  # no NaN anywhere
    assert "NaN" not in text
    markdown = comparison.to_markdown(["a note"])
    assert "| rdm | 6 | 0.973 (1.000) | 0.870 (1.000) | 1 / 3 of 5 (5 / 36 of 100) | 0.07 [0.05, 0.11] " \
           "(0.07 [0.03, 0.13]) |" in markdown
    assert "Note: a note" in markdown and "Nature Neuroscience" in markdown
    assert "| rdm | 1: 2, not found: 1 | - |" in markdown and "| mante | - | 2: 1, not found: 1 |" in markdown
    with pytest.raises(RnnscopeError, match="'dms' is not in the comparison"):
        comparison.task("dms")


def test_comparison_refuses_rows_without_a_task() -> None:
    with pytest.raises(RnnscopeError, match=r"rows\[1\]"):
        compare_with_paper([{"task": "rdm"}, {"seed": 0}])


def test_paper_table_is_the_issue_table() -> None:
    assert tuple(PAPER_TABLE) == PAPER_TASKS
    assert PAPER_TABLE["mante"].resampled_accuracy == 0.70 and PAPER_TABLE["dms"].c_median == 0.86
    assert all(v.significant_strict <= v.significant <= v.networks == 100 for v in PAPER_TABLE.values())
    assert all(v.c_low <= v.c_median <= v.c_high for v in PAPER_TABLE.values())


def test_reproduction_spec_uses_the_paper_recipes_except_dms() -> None:
    spec = reproduction_spec(networks=3, tasks=["rdm", "dms"], size=64, epochs=2)
    assert [(c.task, c.recipe, c.size, c.epochs, c.seeds) for c in spec.configurations] == [
        ("rdm", "paper", 64, 2, (0, 1, 2)), ("dms", "fast", 64, 2, (0, 1, 2))]
    assert spec.configurations[0].analyses == ("accuracy", "resampled_accuracy", "epairs_connectivity",
                                               "epairs_selectivity")
    full = reproduction_spec(networks=2, tasks=["mante"], full=True)
    low, full_rank = full.configurations
    assert low.analyses[-1] == "minimal_populations" and not low.full_rank
    assert full_rank.full_rank and full_rank.analyses == ("accuracy", "minimal_rank") and full_rank.seeds == (0, 1)
    assert low.epochs is None and low.size == 512 and len(full.jobs()) == 4
    with pytest.raises(RnnscopeError, match="tasks: 'flipflop' is not a task of the study"):
        reproduction_spec(tasks=["rdm", "flipflop"])
    with pytest.raises(RnnscopeError, match="networks"):
        reproduction_spec(networks=0)


def run_cli(capsys, arguments: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(arguments)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_tiny_study_through_the_command_line(tmp_path, capsys) -> None:
    out = tmp_path / "study"
    arguments = ["reproduce", "dubreuil2022", "--networks", "2", "--epochs", "1", "--size", "32", "--tasks", "rdm",
                 "--out", str(out), "--json"]
    start = time.perf_counter()
    code, stdout, stderr = run_cli(capsys, arguments)
    first_seconds = time.perf_counter() - start
    assert code == 0, stderr
    data = json.loads(stdout, parse_constant=lambda name: pytest.fail(f"{name} in --json"))
    assert data["sweep"]["done"] == 2 and data["sweep"]["failed"] == 0 and data["sweep"]["pending"] == 0
    rdm = data["comparison"]["tasks"][0]
    assert rdm["task"] == "rdm" and rdm["networks"] == 2 and rdm["epairs_tested"] == 2
    assert all(0.0 <= a <= 1.0 for a in rdm["per_network"]["accuracy"])
    assert all(isinstance(c, float) for c in rdm["per_network"]["epairs_c"])
    assert rdm["paper"]["significant"] == 36
    # the table, the comparison and the figures lie in the study directory
    stored = json.loads((out / "comparison.json").read_text())
    assert stored["comparison"] == data["comparison"]
    assert "| rdm | 2 |" in (out / "comparison.md").read_text()
    for name in ("epairs_c_rdm.png", "accuracy.png"):
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    parquet = importlib.util.find_spec("pyarrow") is not None  # an extra: without it the table is CSV only
    assert any(p.name == "table.csv" for p in out.rglob("*"))
    assert any(p.suffix == ".parquet" for p in out.rglob("*")) == parquet
    # a rerun skips the finished networks: nothing retrained or re-analysed, the same comparison
    finished = {p: p.stat().st_mtime_ns for p in [*out.glob("runs/*/weights.safetensors"), *out.glob("rows/*.json")]}
    assert len(finished) == 4  # two networks, two rows
    stored_before = (out / "comparison.json").read_text()
    start = time.perf_counter()
    code, stdout, stderr = run_cli(capsys, arguments[:-1] + ["--quiet"])  # and the text output
    assert code == 0, stderr
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())
    assert time.perf_counter() - start < first_seconds
    assert json.loads((out / "comparison.json").read_text())["comparison"] == json.loads(stored_before)["comparison"]
    # the table beside the paper's values
    assert "| rdm | 2 |" in stdout and "(5 / 36 of 100)" in stdout and "2 done, 0 failed, 0 pending" in stdout


def test_bad_arguments_are_one_line_errors(tmp_path, capsys) -> None:
    code, _, stderr = run_cli(capsys, ["reproduce", "dubreuil2022", "--tasks", "rdm,flipflop", "--out",
                                       str(tmp_path / "x")])
    assert code == 2 and stderr.startswith("error: tasks: 'flipflop'") and stderr.count("\n") == 1
    assert not (tmp_path / "x").exists()
    code, _, stderr = run_cli(capsys, ["reproduce", "dubreuil2022", "--tasks", ",", "--out", str(tmp_path / "x")])
    assert code == 2 and "--tasks" in stderr
    for option, message in (("trails=3", "analysis_options.trails: unknown option"),
                            ("draws=NaN", "analysis_options.draws: expected an integer"),
                            ("tolerance=2", "analysis_options.tolerance"), ("draws", "--analysis-option")):
        code, _, stderr = run_cli(capsys, ["reproduce", "dubreuil2022", "--analysis-option", option, "--out",
                                           str(tmp_path / "x")])
        assert code == 2 and message in stderr and stderr.count("\n") == 1, stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_full_study_adds_full_rank_networks_and_their_minimal_rank(tmp_path, capsys) -> None:
    out = tmp_path / "full"
    options = ["max_rank=1", "rank_epochs=1", "max_populations=2", "networks=2", "trials=50", "draws=50"]
    code, stdout, stderr = run_cli(capsys, [
        "reproduce", "dubreuil2022", "--full", "--networks", "1", "--epochs", "1", "--size", "32", "--tasks", "rdm",
        *[x for o in options for x in ("--analysis-option", o)], "--out", str(out), "--json"])
    assert code == 0, stderr
    data = json.loads(stdout)
    rdm = data["comparison"]["tasks"][0]
    assert data["sweep"]["done"] == 2 and rdm["networks"] == 1 and rdm["full_rank_networks"] == 1
    assert sum(rdm["minimal_rank_counts"].values()) == 1 and sum(rdm["minimal_populations_counts"].values()) == 1
    assert "minimal rank (full-rank networks)" in (out / "comparison.md").read_text()


def test_no_nan_in_paper_values() -> None:
    for values in PAPER_TABLE.values():
        assert all(math.isfinite(v) for v in values.to_dict().values() if isinstance(v, float))


def test_figures_show_the_networks_and_the_paper_values() -> None:
    import numpy as np

    from rnnscope.sweep._plots import plot_accuracy_comparison, plot_epairs_c

    comparison = compare_with_paper(ROWS)
    ax = plot_epairs_c(comparison.task("rdm")).axes[0]
    assert sum(bar.get_height() for bar in ax.containers[0]) == 5  # the five networks with a c
    vertical = [line.get_xdata()[0] for line in ax.lines]
    assert PAPER_TABLE["rdm"].c_median in vertical and pytest.approx(0.07) in vertical  # paper's and ours
    assert "1/5" in ax.get_title() and "5/100" in ax.get_title()
    assert plot_epairs_c(comparison.task("custom")).axes[0].texts  # no ePAIRS value: says so, no crash
    ax = plot_accuracy_comparison(comparison).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["rdm", "mante", "custom"]
    points = np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])
    for x, y in ((-0.17, 1.0), (0.17, 1.0), (1 - 0.17, 0.998), (1 + 0.17, 0.70)):  # the paper's means
        assert np.isclose(points, [x, y]).all(axis=1).any(), (x, y)
    trained_rdm = points[(points[:, 0] > -0.3) & (points[:, 0] < -0.05)]
    assert len(trained_rdm) == 6 + 1  # six networks and the paper's star
