"""Run directories, specifications and state_dict files are data, never code (issue 11): one regression test per
defect found by trying the commands as a careless or malicious user would."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shipped_run
from safetensors.torch import load_file, save_file

from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.tasks import make_task
from rnnscope.training import evaluate

PAYLOAD_COMMANDS = [  # every command that rebuilds a run's task, with cheap options
    ["evaluate", "{run}", "--trials", "20"],
    ["analyze", "{run}", "--trials", "10"],
    ["fixed-points", "{run}", "--starts", "4"],
    ["flow", "{run}", "--figure", "{tmp}/flow.png"],
    ["populations", "{run}", "--max-populations", "1"],
    ["resample", "{run}", "--populations", "1", "--networks", "1", "--trials", "10"],
    ["epairs", "{run}", "--null-draws", "10"],
    ["selectivity", "{run}", "--trials", "20"],
    ["inactivate", "{run}", "--trials", "20"],
    ["report", "{run}", "--quick", "--out", "{tmp}/report"],
    ["train", "--task", "rdm", "--size", "128", "--epochs", "1", "--resume", "--out", "{run}"],
]


def cli(capsys, args: list[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def copy_run(tmp_path: Path, name: str = "rdm_rank1_128") -> Path:
    run = tmp_path / "run"
    shutil.copytree(shipped_run(name), run)
    return run


def edit_config(run: Path, change) -> None:
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))


def digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1. code execution ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", PAYLOAD_COMMANDS, ids=[c[0] for c in PAYLOAD_COMMANDS])
def test_a_run_naming_module_class_never_runs_code(tmp_path, capsys, command) -> None:
    run = copy_run(tmp_path)
    marker = tmp_path / "owned"
    edit_config(run, lambda c: c.update(task={"name": "os:system", "options": {"command": f"touch {marker}"}}))
    before = digest(run)
    code, _, err = cli(capsys, [a.format(run=run, tmp=tmp_path) for a in command])
    line = one_error_line(err)
    assert code == 2 and not marker.exists() and digest(run) == before
    if command[0] != "train":  # train --resume refuses a run without a checkpoint first
        assert "os:system" in line and "--allow-task" in line


def test_a_spec_naming_module_class_never_runs_code(tmp_path, capsys) -> None:
    marker = tmp_path / "owned"
    spec = {"rank": 1, "inputs": 1, "outputs": 1, "task": {"name": "os:system", "options": {"command": f"touch {marker}"}},
            "populations": [{"fraction": 1.0, "valente": {"rho": 1.0}}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    for args in (["design", tmp_path / "spec.json", "--size", "50", "--out", tmp_path / "d"],
                 ["fit-design", tmp_path / "spec.json", "--epochs", "1", "--size", "50", "--out", tmp_path / "f"]):
        code, _, err = cli(capsys, args)
        assert code == 2 and "os:system" in one_error_line(err)
    assert not marker.exists() and not (tmp_path / "d").exists() and not (tmp_path / "f").exists()


def test_allow_task_accepts_only_task_classes(tmp_path, capsys) -> None:
    run = copy_run(tmp_path)
    marker = tmp_path / "owned"
    edit_config(run, lambda c: c.update(task={"name": "os:system", "options": {"command": f"touch {marker}"}}))
    code, _, err = cli(capsys, ["--help"])  # the group itself stays usable
    assert code == 0
    code, _, err = cli(capsys, ["evaluate", run, "--allow-task", "os:system"])
    assert code == 2 and "not a class" in one_error_line(err) and not marker.exists()
    code, _, err = cli(capsys, ["evaluate", run, "--allow-task", "os;rm -rf:x"])
    assert code == 2 and "module:Class" in one_error_line(err)


USER_TASK = '''
from dataclasses import dataclass
from typing import ClassVar
import numpy as np
from rnnscope.tasks import TaskBase, TrialBatch

@dataclass(frozen=True)
class Sign(TaskBase):
    """Answer the sign of a constant input."""
    name: ClassVar[str] = "sign"
    input_names: ClassVar[tuple[str, ...]] = ("u",)
    dt: float = 20.0
    amplitude: float = 0.5

    def _sample(self, trials, *, rng, **conditions):
        sign = rng.choice([-1.0, 1.0], size=trials)
        inputs = np.zeros((trials, 10, 1)); inputs[:, :5, 0] = self.amplitude * sign[:, None]
        targets = np.zeros((trials, 10, 1)); targets[:, 8:, 0] = sign[:, None]
        mask = np.zeros((trials, 10)); mask[:, 8:] = 1.0
        return TrialBatch(inputs, targets, mask, {"sign": sign}, {}, self.dt)
'''


def test_a_user_task_named_on_the_command_line_trains_and_must_be_allowed_to_load(tmp_path, capsys, monkeypatch) -> None:
    module = f"user_tasks_{tmp_path.name}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(USER_TASK))
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    code, out, err = cli(capsys, ["train", "--task", f"{module}:Sign", "--task-option", "amplitude=0.7", "--size", "32",
                                  "--epochs", "2", "--train-trials", "64", "--quiet", "--out", run, "--json"])
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["task"] == {"name": f"{module}:Sign", "options": {
        "dt": 20.0, "amplitude": 0.7}}
    from rnnscope.tasks import _registry

    monkeypatch.setattr(_registry, "_ALLOWED", {})  # a new process: nothing allowed yet
    code, _, err = cli(capsys, ["evaluate", run, "--trials", "50"])
    assert code == 2 and f"--allow-task {module}:Sign" in one_error_line(err)
    code, out, err = cli(capsys, ["evaluate", run, "--trials", "50", "--allow-task", f"{module}:Sign", "--json"])
    assert code == 0 and json.loads(out)["trials"] == 50


# -- 5. silent NaN, wrong dtypes, unexpected tensors -------------------------------------------------------------
def _weights_with(run: Path, change) -> None:
    tensors = load_file(run / "weights.safetensors")
    change(tensors)
    save_file(tensors, run / "weights.safetensors")


WEIGHT_DEFECTS = {
    "nan": (lambda t: t["m"].__setitem__((3, 0), float("nan")), "'m' contains NaN"),
    "inf": (lambda t: t["w_out"].__setitem__((0, 0), float("inf")), "'w_out' contains NaN"),
    "integer": (lambda t: t.__setitem__("n", (t["n"] * 10).to(torch.int32)), "'n' has dtype int32"),
    "unexpected": (lambda t: t.__setitem__("J", torch.zeros(2, 2)), "unexpected tensor 'J'"),
    "missing": (lambda t: t.pop("h0"), "missing tensor 'h0'"),
    "shape": (lambda t: t.__setitem__("w_in", torch.zeros(128, 2)), "'w_in' has shape (128, 2)"),
}


@pytest.mark.parametrize("defect", WEIGHT_DEFECTS)
def test_weights_are_validated_on_load(tmp_path, capsys, defect) -> None:
    run = copy_run(tmp_path)
    change, named = WEIGHT_DEFECTS[defect]
    _weights_with(run, change)
    code, out, err = cli(capsys, ["evaluate", run, "--json"])
    line = one_error_line(err)
    assert code == 2 and out == "" and "weights.safetensors" in line and named in line


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_nan_task_option_is_refused(tmp_path, capsys, value) -> None:
    run = copy_run(tmp_path)
    text = (run / "config.json").read_text().replace('"stimulus_scale": 0.1', f'"stimulus_scale": {value}')
    (run / "config.json").write_text(text)
    code, _, err = cli(capsys, ["evaluate", run, "--json"])
    assert code == 2 and "config.json" in one_error_line(err)
    code, _, err = cli(capsys, ["evaluate", copy_run(tmp_path / "b"), "--task-option", "stimulus_scale=nan"])
    assert code == 2 and "stimulus_scale: must be finite" in one_error_line(err)


def test_json_output_never_holds_nan(tmp_path, capsys) -> None:
    """resample's trained accuracy is NaN in the result object when not evaluated; JSON says null."""
    from rnnscope._cli_common import emit

    emit({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": float("-inf")}}, True, str)
    out = capsys.readouterr().out
    assert json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON output")) == {
        "a": None, "b": [1.0, None], "c": {"d": None}}


def test_a_spec_whose_weights_overflow_is_refused_before_anything_is_written(tmp_path, capsys) -> None:
    spec = {"rank": 1, "inputs": 1, "outputs": 1, "task": {"name": "rdm"}, "populations": [{"fraction": 1.0, "covariance": {
        "m[0]": 1e300, "n[0]": 1.0, "w_in[0]": 1.0, "w_out[0]": 1.0}}]}
    (tmp_path / "big.json").write_text(json.dumps(spec))
    code, _, err = cli(capsys, ["design", tmp_path / "big.json", "--size", "100", "--out", tmp_path / "big"])
    line = one_error_line(err)
    assert code == 2 and "beyond float32" in line and "m" in line and not (tmp_path / "big").exists()


# -- 6. tracebacks instead of one line ----------------------------------------------------------------------------
CONFIG_DEFECTS = {
    "directory": (lambda run: ((run / "config.json").unlink(), (run / "config.json").mkdir()), "is a directory"),
    "binary": (lambda run: (run / "config.json").write_bytes(b"\xff\xfe\x00binary"), "not a text file"),
    "truncated": (lambda run: (run / "config.json").write_text((run / "config.json").read_text()[:50]), "not valid JSON"),
    "task string": (lambda run: edit_config(run, lambda c: c.update(task="rdm")), "'task' must be an object"),
    "options list": (lambda run: edit_config(run, lambda c: c["task"].update(options=[1, 2])), "'task.options' must be"),
    "no name": (lambda run: edit_config(run, lambda c: c["task"].pop("name")), "'task.name' must be a string"),
    "model list": (lambda run: edit_config(run, lambda c: c.update(model=[128])), "'model' must be an object"),
    "size string": (lambda run: edit_config(run, lambda c: c["model"].update(size="128")), "model.size"),
    "rank bool": (lambda run: edit_config(run, lambda c: c["model"].update(train_inputs="yes")), "train_inputs"),
    "huge size": (lambda run: edit_config(run, lambda c: c["model"].update(size=10**9)), "expected (1000000000, 1)"),
    "seed": (lambda run: edit_config(run, lambda c: c.update(seed=2**64)), "'seed'"),
    "option type": (lambda run: edit_config(run, lambda c: c["task"]["options"].update(coherences="abc")), "coherences"),
    "unknown option": (lambda run: edit_config(run, lambda c: c["task"]["options"].update(evil=1)), "evil"),
}


@pytest.mark.parametrize("defect", CONFIG_DEFECTS)
def test_a_malformed_config_gives_one_line(tmp_path, capsys, defect) -> None:
    run = copy_run(tmp_path)
    change, named = CONFIG_DEFECTS[defect]
    change(run)
    code, out, err = cli(capsys, ["evaluate", run, "--json"])
    line = one_error_line(err)
    assert code == 2 and out == "" and named in line and str(run) in line


def test_seed_out_of_range_gives_one_line(tmp_path, capsys) -> None:
    code, _, err = cli(capsys, ["evaluate", shipped_run("rdm_rank1_128"), "--seed", str(2**63)])
    assert code == 2 and "--seed" in one_error_line(err)


@pytest.mark.parametrize("where", ["directory", "under a file", "read-only place"])
def test_figure_and_report_outputs_that_cannot_be_written(tmp_path, capsys, where) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("mine")
    target = {"directory": tmp_path / "adir", "under a file": tmp_path / "afile" / "x.png",
              "read-only place": Path("/proc/rnnscope-test/x.png")}[where]
    code, _, err = cli(capsys, ["flow", shipped_run("rdm_rank1_128"), "--resolution", "5", "--figure", target])
    assert code == 2 and str(target) in one_error_line(err)
    assert (tmp_path / "afile").read_text() == "mine"
    report_target = {"directory": tmp_path / "afile", "under a file": tmp_path / "afile" / "r",
                     "read-only place": Path("/proc/rnnscope-test/r")}[where]
    code, _, err = cli(capsys, ["report", shipped_run("rdm_rank1_128"), "--quick", "--out", report_target])
    assert code == 2 and str(report_target) in one_error_line(err)


def test_binary_metrics_give_one_line(tmp_path, capsys) -> None:
    run = copy_run(tmp_path)
    (run / "metrics.jsonl").write_bytes(bytes(range(256)))
    code, _, err = cli(capsys, ["report", run, "--quick", "--out", tmp_path / "r"])
    assert code == 2 and "metrics.jsonl" in one_error_line(err)


def test_randomness_accepts_an_int_seed_everywhere() -> None:
    task = make_task("rdm")
    first, again = task.sample(5, rng=3), task.sample(5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(first.inputs, again.inputs)
    from rnnscope.io import load_run

    model = load_run(shipped_run("rdm_rank1_128")).model
    assert evaluate(model, task, trials=50, rng=0).to_dict() == evaluate(model, task, trials=50, rng=0).to_dict()
    with pytest.raises(RnnscopeError, match="rng"):
        task.sample(5, rng="seed")


# -- 8. messages ----------------------------------------------------------------------------------------------------
def test_a_directory_given_as_a_file_and_a_file_as_a_directory(tmp_path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    code, _, err = cli(capsys, ["evaluate", tmp_path / "afile"])
    assert code == 2 and "is a file, expected a run directory" in one_error_line(err)
    code, _, err = cli(capsys, ["import-reference", tmp_path, "--task", "rdm", "--out", tmp_path / "x"])
    assert code == 2 and "is a directory" in one_error_line(err)


def test_a_malicious_pt_is_refused_without_suggesting_to_unpickle(tmp_path, capsys) -> None:
    marker = tmp_path / "owned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"wi": torch.zeros(1, 8), "evil": Payload()}, tmp_path / "evil.pt")
    code, _, err = cli(capsys, ["import-reference", tmp_path / "evil.pt", "--task", "rdm", "--out", tmp_path / "x"])
    line = one_error_line(err)
    assert code == 2 and "refused" in line and "weights_only" not in line and not marker.exists()


def test_a_pt_with_both_low_rank_and_full_rank_keys_is_refused(tmp_path, capsys) -> None:
    size = 8
    state = {"wi": torch.ones(1, size), "wo": torch.ones(size, 1), "h0": torch.zeros(size), "m": torch.ones(size, 1),
             "n": torch.ones(size, 1), "wrec": torch.eye(size)}
    torch.save(state, tmp_path / "both.pt")
    code, _, err = cli(capsys, ["import-reference", tmp_path / "both.pt", "--task", "rdm", "--out", tmp_path / "x"])
    assert code == 2 and "both" in one_error_line(err) and not (tmp_path / "x").exists()


def test_the_mask_error_names_decision_ms(capsys) -> None:
    code, _, err = cli(capsys, ["train", "--task", "rdm", "--task-option", "decision_ms=10", "--out", "/nonexistent/x"])
    assert code == 2 and "decision_ms" in one_error_line(err)


def test_warnings_never_precede_the_error_line(tmp_path, capsys) -> None:
    """fit-design warns about convergence after a short fit; a failing save must end with the error line alone."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("user's file")
    code, _, err = cli(capsys, ["fit-design", "rdm_integrator", "--epochs", "1", "--size", "50", "--out", tmp_path / "out"])
    assert code == 2 and "not empty" in one_error_line(err)
    assert (tmp_path / "out" / "mine.txt").read_text() == "user's file"


def test_import_reference_refuses_a_non_empty_out(tmp_path, capsys) -> None:
    from rnnscope.io import load_run

    weights = load_run(shipped_run("rdm_rank1_128")).model.weights()
    state = {"wi": torch.tensor(weights.w_in.T).float(), "wo": torch.tensor(weights.w_out).float(),
             "h0": torch.tensor(weights.h0).float(), "m": torch.tensor(weights.m).float(),
             "n": torch.tensor(weights.n).float()}
    torch.save(state, tmp_path / "net.pt")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.jsonl").write_text("user's\n")
    code, _, err = cli(capsys, ["import-reference", tmp_path / "net.pt", "--task", "rdm", "--out", tmp_path / "out"])
    assert code == 2 and "not empty" in one_error_line(err)
    assert (tmp_path / "out" / "metrics.jsonl").read_text() == "user's\n"
    code, out, err = cli(capsys, ["import-reference", tmp_path / "net.pt", "--task", "rdm", "--out", tmp_path / "new",
                                  "--json"])
    assert code == 0 and json.loads(out)["size"] == 128, err


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
