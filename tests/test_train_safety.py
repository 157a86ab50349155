"""Training never destroys what it did not create, refuses bad runs up front with one line, and survives kills
(issue 11): resume checks, the run-directory lock, cleanup after failures, checkpoint validation, kills inside
an atomic write, the memory estimate."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnscope import io
from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.models import ModelConfig, build_model
from rnnscope.tasks import make_task, task_spec
from rnnscope.tasks._decision import RandomDots
from rnnscope.training import TrainingConfig, train, train_ensemble
from rnnscope.training._trainer import estimate_training_memory

MODEL = ModelConfig(size=32, inputs=1, rank=1)
TINY = TrainingConfig(epochs=2, train_trials=64, validation_trials=32, batch_size=32)
CLI_TINY = ["--task", "rdm", "--size", "32", "--epochs", "2", "--train-trials", "64", "--seed", "4", "--quiet"]
RUN_FILES = {io.CONFIG_NAME, io.WEIGHTS_NAME, io.METRICS_NAME, io.CHECKPOINT_NAME}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str, *named: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for name in named:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def contents(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for name, tensor in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[name], tensor, rtol=0, atol=0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted CLI run of CLI_TINY (two epochs, the fast path)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(["train", *CLI_TINY, "--out", str(out)]) == 0
    return out


# -- 1. resume only a checkpointed run of ours --------------------------------------------------------------------
def test_resume_refuses_a_network_without_checkpoint(tmp_path, capsys) -> None:
    task = make_task("rdm")
    imported = tmp_path / "imported"
    io.save_model_run(imported, build_model(MODEL, generator=torch.Generator().manual_seed(9)), task_spec(task), {})
    before = contents(imported)
    with pytest.raises(RnnscopeError, match=f"{imported}.*without {io.CHECKPOINT_NAME}"):
        train(task, MODEL, TINY, seed=0, out=imported, resume=True, progress=False)
    code, _, err = run_cli(capsys, "train", *CLI_TINY, "--out", imported, "--resume")
    assert code == 2 and "cannot resume" in one_error_line(err, str(imported), io.CHECKPOINT_NAME)
    assert contents(imported) == before  # weights and provenance untouched, no lock file left


def test_resume_of_a_run_killed_before_its_first_checkpoint_restarts(tmp_path, capsys, reference) -> None:
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(reference / io.CONFIG_NAME, out / io.CONFIG_NAME)  # what a run killed in epoch 0 leaves
    assert run_cli(capsys, "train", *CLI_TINY, "--out", out, "--resume")[0] == 0
    assert_same_weights(io.load_run(reference).model, io.load_run(out).model)


# -- 2. never write into a directory that is not a run ------------------------------------------------------------
def test_train_refuses_a_non_empty_directory_that_is_not_a_run(tmp_path, capsys) -> None:
    users = tmp_path / "mine"
    users.mkdir()
    (users / io.METRICS_NAME).write_text("my own notes\n")
    for resume in ([], ["--resume"]):
        code, _, err = run_cli(capsys, "train", *CLI_TINY, "--out", users, *resume)
        assert code == 2 and "not empty" in one_error_line(err, str(users))
    code, _, err = run_cli(capsys, "train", *CLI_TINY, "--out", users, "--ensemble", "2")
    assert code == 2 and "not empty" in one_error_line(err, str(users))  # the same check
    assert contents(users) == {io.METRICS_NAME: b"my own notes\n"}


# -- 3. resume compares the whole configuration ---------------------------------------------------------------------
def test_resume_compares_the_whole_configuration(tmp_path) -> None:
    task = make_task("rdm")
    out = tmp_path / "run"
    train(task, MODEL, TINY, seed=1, out=out, progress=False)
    stored = contents(out)
    changes = [
        ("training.lr", dict(config=dataclasses.replace(TINY, lr=1e-3)), "0.01", "0.001"),
        ("training.batch_size", dict(config=dataclasses.replace(TINY, batch_size=16)), "32", "16"),
        ("training.keep_best", dict(config=dataclasses.replace(TINY, keep_best=False)), "True", "False"),
        ("training.epochs", dict(config=dataclasses.replace(TINY, epochs=1)), "2", "1"),
        ("seed", dict(seed=2), "1", "2"),
        ("model.noise_std", dict(model=dataclasses.replace(MODEL, noise_std=0.1)), "0.05", "0.1"),
        ("task.options.stimulus_ms", dict(task=make_task("rdm", {"stimulus_ms": 400.0})), "800.0", "400.0"),
    ]
    for field, change, old, new in changes:
        args = {"task": task, "model": MODEL, "config": TINY, "seed": 1, **change}
        with pytest.raises(RnnscopeError) as raised:
            train(args["task"], args["model"], args["config"], seed=args["seed"], out=out, resume=True, progress=False)
        message = str(raised.value)
        assert "cannot resume" in message and field in message and old in message and new in message, message
    assert contents(out) == stored
    # epochs may be raised: continue training, to what an uninterrupted longer run gives
    longer = dataclasses.replace(TINY, epochs=3)
    resumed = train(task, MODEL, longer, seed=1, out=out, resume=True, progress=False)
    whole = train(task, MODEL, longer, seed=1, progress=False)
    assert_same_weights(whole.model, resumed.model)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]
    assert io.read_config(out)["training"]["epochs"] == 3


# -- 4. one writer per run directory -------------------------------------------------------------------------------
HOLDER = """
import sys
from rnnscope import io
with io.lock_run_dir(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_process_is_refused_while_the_first_writes(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = run_cli(capsys, "train", *CLI_TINY, "--out", out, "--resume")
        assert code == 2
        one_error_line(err, f"{out}: another rnnscope process (pid {holder.pid}) is writing this run")
        with pytest.raises(RnnscopeError, match="another rnnscope process"):
            train_ensemble(make_task("rdm"), MODEL, TINY, seeds=[0, 1], out=out, progress=False)
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # the kernel releases the lock: nothing stale is left
        holder.wait()
    assert run_cli(capsys, "train", *CLI_TINY, "--out", out, "--resume")[0] == 0
    assert {p.name for p in out.iterdir()} == RUN_FILES


# -- 5, 6, 7. bad options refused before anything is written ------------------------------------------------------
@pytest.mark.parametrize("option,value,named", [
    ("--epochs", "0", "epochs"),
    ("--seed", str(2**63), "seed"),
    ("--seed", str(2**64), "seed"),
    ("--device", "cuda:x", "device"),
])
def test_bad_option_is_refused_up_front(tmp_path, capsys, option, value, named) -> None:
    code, _, err = run_cli(capsys, "train", *CLI_TINY, option, value, "--out", tmp_path / "run")
    assert code == 2
    one_error_line(err, named)
    assert not (tmp_path / "run").exists()


def test_seed_range() -> None:
    with pytest.raises(RnnscopeError, match="seed"):
        train(make_task("rdm"), MODEL, TINY, seed=2**63, progress=False)
    with pytest.raises(RnnscopeError, match="seeds"):
        train_ensemble(make_task("rdm"), MODEL, TINY, seeds=[2**63], progress=False)
    assert len(train(make_task("rdm"), MODEL, dataclasses.replace(TINY, epochs=1), seed=2**63 - 1,
                     progress=False).history) == 1


def test_cuda_requested_without_cuda(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli(capsys, "train", *CLI_TINY, "--device", "cuda", "--out", tmp_path / "run")
    assert code == 2 and "CUDA is not available" in one_error_line(err, "device")
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RnnscopeError, match="device: 'cuda:3'.* 1 CUDA device"):
        train(make_task("rdm"), MODEL, dataclasses.replace(TINY, device="cuda:3"), seed=0, progress=False)


# -- 8, 9. failures leave nothing behind, and are blamed on the right thing -----------------------------------------
def test_a_failed_run_leaves_nothing_and_can_be_rerun(tmp_path, capsys) -> None:
    out = tmp_path / "new" / "run"
    code, _, err = run_cli(capsys, "train", *CLI_TINY, "--lr", "1e6", "--out", out)
    assert code == 2 and "diverged at epoch 0" in one_error_line(err, "lr")
    assert not (tmp_path / "new").exists()  # every directory this call created is gone again
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(capsys, "train", *CLI_TINY, "--lr", "1e6", "--out", empty)[0] == 2
    assert empty.is_dir() and not any(empty.iterdir())  # the user's directory stays, empty
    assert run_cli(capsys, "train", *CLI_TINY, "--out", out)[0] == 0
    assert {p.name for p in out.iterdir()} == RUN_FILES


@dataclasses.dataclass(frozen=True)
class PoisonedDots(RandomDots):
    """Random dots whose every stimulus is NaN: a task that produces bad data."""

    def sample(self, trials, *, rng, **conditions):
        batch = super().sample(trials, rng=rng, **conditions)
        return dataclasses.replace(batch, inputs=np.full_like(batch.inputs, np.nan))


def test_non_finite_data_are_blamed_on_the_task_not_the_learning_rate(tmp_path) -> None:
    with pytest.raises(RnnscopeError, match=r"^task: .*inputs contain NaN") as raised:
        train(PoisonedDots(), MODEL, TINY, seed=0, out=tmp_path / "run", progress=False)
    assert "lr" not in str(raised.value)
    with pytest.raises(RnnscopeError, match=r"^task: "):
        train_ensemble(PoisonedDots(), MODEL, TINY, seeds=[0, 1], progress=False)
    assert not (tmp_path / "run").exists()


# -- 10. every value read from a checkpoint is checked ------------------------------------------------------------
def _tamper_tensor(tensors, state, key, value):
    tensors = dict(tensors)
    if value is None:
        del tensors[key]
    else:
        tensors[key] = value(tensors[key])
    return tensors, state


def _tamper_state(tensors, state, key, value):
    state = dict(state)
    if value is None:
        del state[key]
    else:
        state[key] = value
    return tensors, state


TAMPERING = [
    ("missing model tensor", _tamper_tensor, "model.m", None, "model.m"),
    ("missing optimizer tensor", _tamper_tensor, "optimizer.0.exp_avg", None, "optimizer.0.exp_avg"),
    ("wrong shape", _tamper_tensor, "best.n", lambda t: t[:5], "best.n"),
    ("NaN weights", _tamper_tensor, "model.w_out", lambda t: torch.full_like(t, float("nan")), "model.w_out"),
    ("integer tensor", _tamper_tensor, "model.w_in", lambda t: t.to(torch.int32), "model.w_in"),
    ("negative second moment", _tamper_tensor, "optimizer.1.exp_avg_sq", lambda t: -1 - t, "optimizer.1.exp_avg_sq"),
    ("missing epoch", _tamper_state, "epoch", None, "epoch"),
    ("epoch as text", _tamper_state, "epoch", "2", "epoch"),
    ("epoch out of range", _tamper_state, "epoch", 99, "epoch"),
    ("short history", _tamper_state, "history", [], "history"),
    ("history rows", _tamper_state, "history", [1, 2], "history[0]"),
    ("best_epoch out of range", _tamper_state, "best_epoch", 5, "best_epoch"),
    ("best_loss wrong type", _tamper_state, "best_loss", "low", "best_loss"),
    ("stopped_early not a bool", _tamper_state, "stopped_early", 0, "stopped_early"),
]


@pytest.mark.parametrize("what,tamper,key,value,named", TAMPERING, ids=[t[0] for t in TAMPERING])
def test_a_bad_checkpoint_gives_one_line(tmp_path, capsys, reference, what, tamper, key, value, named) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    tensors, state = io.load_checkpoint(out)
    io.save_checkpoint(out, *tamper(tensors, state, key, value))
    (out / io.WEIGHTS_NAME).unlink()  # as if killed in the middle
    code, _, err = run_cli(capsys, "train", *CLI_TINY, "--out", out, "--resume")
    assert code == 2, what
    one_error_line(err, str(out / io.CHECKPOINT_NAME), repr(named))
    assert not (out / io.WEIGHTS_NAME).exists()


# -- 11. kills inside an atomic write ---------------------------------------------------------------------------------
KILLER = """
import os, signal, sys
import rnnscope.io._atomic as atomic

when, nth = sys.argv[1], int(sys.argv[2])
real, calls = os.replace, 0

def replace(src, dst):
    global calls
    calls += 1
    if calls == nth and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
    if calls == nth and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)

atomic.os.replace = replace
from rnnscope.cli import main
sys.exit(main(sys.argv[3:]))
"""


# os.replace calls of a 2-epoch run: 1 config, 2 checkpoint 0, 3 metrics 0, 4 checkpoint 1, 5 metrics 1,
# 6 metrics (final), 7 weights
@pytest.mark.parametrize("when,nth", [("before", 4), ("after", 4)])
def test_killed_inside_an_atomic_write_resumes_to_the_same_run(tmp_path, capsys, reference, when, nth) -> None:
    out = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", KILLER, when, str(nth), "train", *CLI_TINY, "--out", str(out)],
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = {p.name for p in out.iterdir()}
    assert io.WEIGHTS_NAME not in left and (when == "after" or any(name.endswith(".tmp") for name in left)), left
    assert run_cli(capsys, "train", *CLI_TINY, "--out", out, "--resume")[0] == 0
    assert {p.name for p in out.iterdir()} == RUN_FILES  # no stray temporary, no lock file
    assert_same_weights(io.load_run(reference).model, io.load_run(out).model)
    strip = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert strip(io.read_metrics(out)) == strip(io.read_metrics(reference))


def test_leftovers_of_a_process_killed_before_its_config_do_not_block(tmp_path, capsys, reference) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / io.LOCK_NAME).write_text("12345\n")  # a dead process's lock file: the kernel released its flock
    (out / f".{io.CONFIG_NAME}.abc_1234.tmp").write_text("{half")
    assert run_cli(capsys, "train", *CLI_TINY, "--out", out)[0] == 0
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert_same_weights(io.load_run(reference).model, io.load_run(out).model)


def test_clean_stale_temporaries_removes_only_temporaries(tmp_path) -> None:
    for name in (".config.json.abcd_123.tmp", ".figure.png.zz99zz99.tmp", "config.json", ".hidden.tmp", "x.tmp"):
        (tmp_path / name).write_text("x")
    removed = io.clean_stale_temporaries(tmp_path, targets=io.RUN_FILES)
    assert [p.name for p in removed] == [".config.json.abcd_123.tmp"]
    io.clean_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.tmp", "config.json", "x.tmp"]


# -- 12. memory ---------------------------------------------------------------------------------------------------------
def test_a_network_too_large_for_memory_is_refused_before_it_is_built(tmp_path, capsys) -> None:
    code, _, err = run_cli(capsys, "train", *CLI_TINY, "--size", str(10**9), "--out", tmp_path / "run")
    assert code == 2 and "GiB" in one_error_line(err, "size", "available")
    assert not (tmp_path / "run").exists()
    with pytest.raises(RnnscopeError, match=r"needs about [0-9.]+ GiB, but only [0-9.]+ GiB"):
        train(make_task("rdm"), ModelConfig(size=10**6, inputs=1, rank=None), TINY, seed=0, progress=False)
    with pytest.raises(RnnscopeError, match="3 networks"):
        train_ensemble(make_task("rdm"), ModelConfig(size=10**8, inputs=1), TINY, seeds=[0, 1, 2], progress=False)


def test_memory_estimate() -> None:
    config = TrainingConfig()
    low = estimate_training_memory(ModelConfig(size=512, inputs=1), config, steps=51)
    full = estimate_training_memory(ModelConfig(size=512, inputs=1, rank=None), config, steps=51)
    assert 10 * 2**20 < low < full < 2**30  # the paper's networks: far below a GiB
    # N x N parameters for full rank: 9 float32 copies each
    assert full - low == 9 * 4 * (512 * 512 - 2 * 512)
    assert estimate_training_memory(ModelConfig(size=512, inputs=1), config, steps=51, networks=4) == 4 * low
    assert estimate_training_memory(ModelConfig(size=10**9, inputs=1), config, steps=51) > 100 * 2**30


def test_run_config_is_json(tmp_path) -> None:
    """The stored configuration round-trips (what resume compares against)."""
    out = tmp_path / "run"
    train(make_task("rdm", {"coherences": (-1.0, 1.0)}), MODEL, dataclasses.replace(TINY, epochs=1), seed=0, out=out,
          progress=False)
    stored = json.loads((out / io.CONFIG_NAME).read_text())
    assert stored["training"] == dataclasses.asdict(dataclasses.replace(TINY, epochs=1))
    train(make_task("rdm", {"coherences": (-1.0, 1.0)}), MODEL, TINY, seed=0, out=out, resume=True, progress=False)
