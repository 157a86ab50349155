"""Groups of networks are first-class: every analysis command takes an ensemble or a sweep directory and reports
one row per network (equal to the command run on that network alone) plus the aggregate across networks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shipped_run

from rnnscope import io
from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.models import ModelConfig
from rnnscope.tasks import make_task
from rnnscope.training import TrainingConfig, train_ensemble


@pytest.fixture(scope="module")
def groups(tmp_path_factory) -> dict[str, Path]:
    """A real ensemble (2 low-rank rdm networks trained here) and a sweep layout: runs/<job>/ run directories, one
    of them full-rank and one a multi-stage run (stage0/ inside it is not a member)."""
    root = tmp_path_factory.mktemp("groups")
    train_ensemble(make_task("rdm"), ModelConfig(size=24, inputs=1, rank=1),
                   TrainingConfig(epochs=2, train_trials=64, validation_trials=32), rng=[5, 6], out=root / "ens",
                   progress=False)
    sweep = root / "sweep"
    shutil.copytree(root / "ens" / "net01", sweep / "runs" / "b_low")
    shutil.copytree(shipped_run("rdm_full_64"), sweep / "runs" / "a_full")
    shutil.copytree(root / "ens" / "net00", sweep / "runs" / "c_stages")
    shutil.copytree(root / "ens" / "net00", sweep / "runs" / "c_stages" / "stage0")
    (sweep / "notes").mkdir()  # a directory without runs: skipped
    full = root / "full"
    shutil.copytree(shipped_run("rdm_full_64"), full / "net00")
    return {"ens": root / "ens", "sweep": sweep, "full": full, "empty": root / "empty"}


def _json(args: list[str], capsys) -> dict:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_run_directories(groups) -> None:
    ens, sweep = groups["ens"], groups["sweep"]
    assert io.run_directories(ens / "net00") == (ens / "net00",)
    assert io.run_directories(ens) == (ens / "net00", ens / "net01")
    runs = sweep / "runs"
    assert io.run_directories(sweep) == (runs / "a_full", runs / "b_low", runs / "c_stages")  # stage0 not a member
    assert io.is_run_directory(ens / "net00") and not io.is_run_directory(ens) and not io.is_run_directory(sweep / "x")
    groups["empty"].mkdir(exist_ok=True)
    (groups["empty"] / "sub").mkdir(exist_ok=True)
    with pytest.raises(RnnscopeError, match=r"empty: no run directory \(config.json\) in it or in its sub-directories"):
        io.run_directories(groups["empty"])
    with pytest.raises(RnnscopeError, match="no such directory"):
        io.run_directories(groups["empty"] / "missing")


# command, options (small), the fields shown in the text table
LOW_RANK_COMMANDS = [
    ("evaluate", ["--trials", "60"]),
    ("analyze", ["--trials", "20"]),
    ("fixed-points", ["--starts", "8"]),
    ("populations", ["--max-populations", "2", "--restarts", "1"]),
    ("resample", ["--populations", "1", "--networks", "2", "--trials", "40"]),
    ("minimal-populations", ["--max-populations", "1", "--networks", "2", "--trials", "40"]),
    ("epairs", ["--draws", "30"]),
    ("selectivity", ["--trials", "40"]),
    ("inactivate", ["--populations", "1", "--trials", "40", "--group-by", "coherence"]),
    ("perturb", ["--clamp-kappa", "0=0", "--trials", "40"]),
]


def _numbers(row: dict, prefix: str = "") -> dict[str, float]:
    """The numeric scalars of a result, nested objects as a.b (what the aggregate covers)."""
    found = {}
    for key, value in row.items():
        if isinstance(value, dict):
            found.update(_numbers(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and value is not None:
            found[f"{prefix}{key}"] = float(value)
    return found


@pytest.mark.parametrize(("command", "options"), LOW_RANK_COMMANDS, ids=[c for c, _ in LOW_RANK_COMMANDS])
def test_command_on_ensemble_equals_each_member(command, options, groups, capsys) -> None:
    ens = groups["ens"]
    group = _json([command, str(ens), *options], capsys)
    assert group["group"] == str(ens)
    members = [ens / "net00", ens / "net01"]
    assert [row["run"] for row in group["networks"]] == [str(m) for m in members]
    alone = [_json([command, str(m), *options], capsys) for m in members]
    for row, single in zip(group["networks"], alone, strict=True):
        assert {k: v for k, v in row.items() if k != "run"} == single  # same seed, same draws: the network's numbers
    # the aggregate, against numpy on the members' own results
    aggregate = group["aggregate"]
    top = [k for k, v in alone[0].items() if isinstance(v, (int, float)) and v is not None]
    assert set(top) <= set(aggregate) and (bool(top) or command == "selectivity")  # selectivity: arrays only
    numbers = [_numbers(s) for s in alone]
    assert set(aggregate) == set(numbers[0]) | set(numbers[1])
    for name, stats in aggregate.items():
        values = np.array([n[name] for n in numbers if name in n])
        assert stats["n"] == len(values) == 2
        assert stats["mean"] == pytest.approx(values.mean())
        assert stats["std"] == pytest.approx(values.std())
        assert (stats["min"], stats["max"]) == (pytest.approx(values.min()), pytest.approx(values.max()))
    if command == "epairs":
        p = np.array([s["p_value"] for s in alone])
        assert aggregate["p_value"]["fraction_below_0.05"] == pytest.approx(float((p < 0.05).mean()))
        assert aggregate["p_value"]["fraction_below_5e-4"] == pytest.approx(float((p < 5e-4).mean()))
    # text: one line per network and the aggregate
    capsys.readouterr()
    assert main([command, str(ens), *options]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == f"{ens}: 2 networks"
    assert [line.split()[0] for line in text[2:4]] == ["net00", "net01"]
    assert text[-1].startswith("aggregate: ")


def test_failing_member_gets_an_error_row(groups, capsys) -> None:
    sweep = groups["sweep"]
    result = _json(["epairs", str(sweep), "--draws", "20"], capsys)
    rows = {Path(r["run"]).name: r for r in result["networks"]}
    assert list(rows) == ["a_full", "b_low", "c_stages"]
    assert "full-rank" in rows["a_full"]["error"] and "\n" not in rows["a_full"]["error"]
    assert "error" not in rows["b_low"] and "error" not in rows["c_stages"]
    assert result["aggregate"]["c"]["n"] == 2
    alone = _json(["epairs", str(sweep / "runs" / "b_low"), "--draws", "20"], capsys)
    assert {k: v for k, v in rows["b_low"].items() if k != "run"} == alone
    # truncate and minimal-rank need full-rank networks: the low-rank members fail, the full-rank one runs
    truncated = _json(["truncate", str(sweep), "--ranks", "1", "--trials", "60"], capsys)
    assert ["error" in r for r in truncated["networks"]] == [False, True, True]
    assert truncated["networks"][0]["full_accuracy"] == _json(
        ["truncate", str(sweep / "runs" / "a_full"), "--ranks", "1", "--trials", "60"], capsys)["full_accuracy"]
    minimal = _json(["minimal-rank", str(groups["full"]), "--max-rank", "1", "--epochs", "1", "--trials", "60"],
                    capsys)
    assert minimal["networks"][0]["needed"] == _json(
        ["minimal-rank", str(groups["full"] / "net00"), "--max-rank", "1", "--epochs", "1", "--trials", "60"],
        capsys)["needed"]
    capsys.readouterr()
    assert main(["epairs", str(sweep)]) == 0
    assert "runs/a_full    error: " in capsys.readouterr().out


def test_group_errors_are_one_line(groups, capsys) -> None:
    capsys.readouterr()
    assert main(["epairs", str(groups["full"]), "--json"]) == 2  # every member fails: the error itself
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "full-rank" in err and err.count("\n") == 1
    assert main(["evaluate", str(groups["empty"])]) == 2
    assert "no run directory (config.json)" in capsys.readouterr().err
    assert main(["evaluate", str(groups["ens"] / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
