"""The CLI contract: JSON shapes, and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import shipped_run

from rnnscope.cli import main
from rnnscope.io import load_run


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_tasks_json(capsys) -> None:
    code, out, _ = run_cli(capsys, "tasks", "--json")
    listing = json.loads(out)
    assert code == 0 and {t["name"] for t in listing} >= {"rdm", "romo", "raposo", "mante", "dms"}
    mante = next(t for t in listing if t["name"] == "mante")
    assert mante["parameters"]["cue_amplitude"] == 0.1 and mante["inputs"][2] == "colour_cue"


def test_train_then_evaluate(tmp_path, capsys) -> None:
    run = str(tmp_path / "run")
    code, out, _ = run_cli(capsys, "train", "--task", "rdm", "--rank", "1", "--size", "64", "--epochs", "3", "--seed", "0",
                           "--out", run, "--quiet", "--json")
    assert code == 0 and json.loads(out)["epochs"] == 3
    code, out, _ = run_cli(capsys, "evaluate", run, "--trials", "300", "--seed", "0", "--json")
    result = json.loads(out)
    assert code == 0 and set(result) >= {"accuracy", "loss", "per_condition"}
    assert set(result["per_condition"]["coherence"]) == {"-4", "-2", "-1", "1", "2", "4"}
    code, out2, _ = run_cli(capsys, "evaluate", run, "--trials", "300", "--seed", "0", "--json")
    assert json.loads(out2) == result  # seeded


def test_import_reference_stores_task_options(tmp_path, capsys) -> None:
    """A state_dict in the authors' format (keys wi, si, wo, so, h0, m, n), written here from the shipped
    context-dependent network with its input scalings split off, imports with its task option and still solves
    the task."""
    weights = load_run(shipped_run("mante_rank1_256")).model.weights()
    state = {"wi": torch.tensor(2.0 * weights.w_in.T), "si": torch.full((weights.inputs,), 0.5),
             "wo": torch.tensor(weights.w_out), "so": torch.ones(1), "h0": torch.tensor(weights.h0),
             "m": torch.tensor(weights.m), "n": torch.tensor(weights.n)}
    torch.save({k: v.float() for k, v in state.items()}, tmp_path / "mante.pt")
    run = str(tmp_path / "ref")
    code, out, _ = run_cli(capsys, "import-reference", str(tmp_path / "mante.pt"), "--task", "mante",
                           "--task-option", "cue_amplitude=0.1", "--out", run, "--json")
    info = json.loads(out)
    assert code == 0 and info["size"] == 256 and info["rank"] == 1 and info["inputs"] == 4
    assert json.loads((tmp_path / "ref" / "config.json").read_text())["task"]["options"]["cue_amplitude"] == 0.1
    code, out, _ = run_cli(capsys, "evaluate", run, "--trials", "300", "--json")
    assert json.loads(out)["accuracy"] >= 0.98  # the shipped network: 0.999 on 1000 trials


BAD = [
    (["train", "--task", "nope", "--out", "{tmp}/x"], "task"),
    (["train", "--task", "rdm", "--size", "-3", "--out", "{tmp}/x"], "size"),
    (["train", "--task", "rdm", "--size", "4", "--rank", "9", "--out", "{tmp}/x"], "rank"),
    (["train", "--task", "rdm", "--task-option", "bogus=1", "--out", "{tmp}/x"], "bogus"),
    (["train", "--task", "rdm", "--task-option", "input_noise_std=abc", "--out", "{tmp}/x"], "input_noise_std"),
    (["evaluate", "{tmp}/missing"], "missing"),
    (["import-reference", "{tmp}/none.pt", "--task", "rdm", "--out", "{tmp}/x"], "none.pt"),
    (["import-reference", "{tmp}/corrupt.pt", "--task", "rdm", "--out", "{tmp}/x"], "corrupt.pt"),
    (["evaluate", "{tmp}/oldrun"], "format"),
    (["evaluate", "{tmp}/brokenrun"], "weights.safetensors"),
]


@pytest.mark.parametrize("args,named", BAD, ids=[" ".join(a[:2]) + f" ({n})" for a, n in BAD])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys, args, named) -> None:
    (tmp_path / "corrupt.pt").write_bytes(b"\x80\x02not a checkpoint")
    (tmp_path / "oldrun").mkdir()
    (tmp_path / "oldrun" / "config.json").write_text(json.dumps({"format": 0, "task": {}, "model": {}}))
    (tmp_path / "brokenrun").mkdir()
    (tmp_path / "brokenrun" / "config.json").write_text(json.dumps(
        {"format": 1, "task": {"name": "rdm", "options": {}}, "model": {"size": 8, "inputs": 1, "rank": 1}}))
    (tmp_path / "brokenrun" / "weights.safetensors").write_bytes(b"garbage")
    code, out, err = run_cli(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], err
    assert "Traceback" not in err and not (tmp_path / "x").exists()


def test_console_script_exit_code(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rnnscope.cli", "train", "--task", "nope", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
