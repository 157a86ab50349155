"""Property-based: malformed run directories and specification files (wrong types, missing and extra fields,
NaN/Inf, truncated files, other shapes, ``module:Class`` task names) given to every command that reads them. Each
gets exit 2 and one line naming the file, no traceback, no file of the run directory changes, and the marker file
that a ``module:Class`` payload would create never appears."""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import shipped_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from rnnscope.cli import main

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MARKER = "owned-by-payload"

# every command that loads a run, with options that keep a (wrongly) successful run cheap
RUN_COMMANDS = [
    ["evaluate", "{run}", "--trials", "20", "--json"],
    ["analyze", "{run}", "--trials", "10", "--json"],
    ["fixed-points", "{run}", "--starts", "4", "--json"],
    ["flow", "{run}", "--resolution", "5", "--figure", "{tmp}/flow.png"],
    ["populations", "{run}", "--max-populations", "1", "--json"],
    ["resample", "{run}", "--populations", "1", "--networks", "1", "--trials", "10", "--json"],
    ["minimal-populations", "{run}", "--max-populations", "1", "--networks", "1", "--trials", "10", "--json"],
    ["epairs", "{run}", "--null-draws", "10", "--json"],
    ["selectivity", "{run}", "--trials", "20", "--json"],
    ["inactivate", "{run}", "--trials", "20", "--json"],
    ["truncate", "{run}", "--ranks", "1", "--trials", "20", "--json"],
    ["report", "{run}", "--quick", "--out", "{tmp}/report", "--json"],
]


def _payload(tmp: Path) -> dict[str, Any]:
    return {"name": "os:system", "options": {"command": f"touch {tmp / MARKER}"}}


def _digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _check(args: list[str], tmp: Path, run: Path, named: tuple[str, ...], capsys) -> None:
    before = _digest(run)
    code = main([a.format(run=run, tmp=tmp) for a in args])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, (args, captured.out[-300:], captured.err[-300:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    assert any(name in lines[0] for name in named), lines[0]
    assert _digest(run) == before, "the run directory changed"
    assert not (tmp / MARKER).exists(), "a payload ran"


def _run_all(mutate: Callable[[Path, Path], tuple[str, ...]], capsys, commands=RUN_COMMANDS, base="rdm_rank1_128"):
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        run = tmp / "run"
        shutil.copytree(shipped_run(base), run)
        named = mutate(run, tmp)
        for args in commands:
            _check(args, tmp, run, named, capsys)


# -- config.json ----------------------------------------------------------------------------------------------------
not_object = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=3))
not_number = st.one_of(st.none(), st.booleans(), st.text(max_size=8), st.lists(st.floats(), max_size=2), st.just({}))
non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity"])
bad_int = st.one_of(not_number, st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)))
module_class = st.from_regex(r"[a-z_][a-z0-9_]{0,6}(\.[a-z_][a-z0-9_]{0,4})?:[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@st.composite
def config_defects(draw) -> Callable[[dict, Path], str | None]:
    """A change that makes config.json invalid: returns raw text to write instead of the JSON, or None."""
    kind = draw(st.sampled_from([
        "task", "task.name", "payload", "options", "option", "option-nan", "unknown-option", "model", "model.size",
        "model.rank", "model.noise_std", "unknown-model", "seed", "format", "missing", "truncate", "binary"]))
    if kind == "task":
        value = draw(not_object)
        return lambda c, tmp: c.update(task=value)
    if kind == "task.name":
        value = draw(st.one_of(not_number.filter(lambda v: not isinstance(v, str)), st.text(max_size=6).filter(
            lambda t: t not in ("rdm", "romo", "raposo", "mante", "dms", "neurogym"))))
        return lambda c, tmp: c["task"].update(name=value)
    if kind == "payload":
        name = draw(st.one_of(st.just("os:system"), module_class))
        return lambda c, tmp: c.update(task={"name": name, "options": _payload(tmp)["options"]})
    if kind == "options":
        value = draw(not_object.filter(lambda v: v is not None))
        return lambda c, tmp: c["task"].update(options=value)
    if kind == "option":
        key = draw(st.sampled_from(["stimulus_scale", "input_noise_std", "fixation_ms", "dt", "coherences"]))
        value = draw(not_number if key != "coherences" else st.one_of(st.text(max_size=4), st.lists(st.text(max_size=2), min_size=1)))
        return lambda c, tmp: c["task"]["options"].update({key: value})
    if kind == "option-nan":
        key, value = draw(st.sampled_from(["stimulus_scale", "input_noise_std", "delay_ms"])), draw(non_finite)
        return lambda c, tmp: json.dumps(c).replace(f'"{key}": {json.dumps(c["task"]["options"][key])}', f'"{key}": {value}')
    if kind == "unknown-option":
        key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in (
            "dt", "fixation_ms", "stimulus_ms", "delay_ms", "decision_ms", "coherences", "stimulus_scale",
            "input_noise_std")))
        return lambda c, tmp: c["task"]["options"].update({key: 1})
    if kind == "model":
        value = draw(not_object)
        return lambda c, tmp: c.update(model=value)
    if kind == "model.size":
        value = draw(st.one_of(bad_int, st.integers(max_value=2**40).filter(lambda n: n != 128)))
        return lambda c, tmp: c["model"].update(size=value)
    if kind == "model.rank":
        value = draw(st.one_of(bad_int, st.integers().filter(lambda n: n != 1)))
        return lambda c, tmp: c["model"].update(rank=value)
    if kind == "model.noise_std":
        value = draw(st.one_of(not_number, st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False)))
        return lambda c, tmp: c["model"].update(noise_std=value)
    if kind == "unknown-model":
        key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in (
            "size", "inputs", "outputs", "rank", "noise_std", "alpha", "train_inputs", "train_outputs", "train_h0",
            "init_std")))
        return lambda c, tmp: c["model"].update({key: 0})
    if kind == "seed":
        value = draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63), not_number))
        return lambda c, tmp: c.update(seed=value)
    if kind == "format":
        value = draw(st.one_of(not_number, st.integers().filter(lambda n: n != 1)))
        return lambda c, tmp: c.update(format=value)
    if kind == "missing":
        where = draw(st.sampled_from([("task",), ("model",), ("task", "name"), ("model", "size"), ("model", "inputs")]))
        return lambda c, tmp: (c if len(where) == 1 else c[where[0]]).pop(where[-1])
    if kind == "truncate":
        fraction = draw(st.floats(min_value=0.0, max_value=0.99))
        return lambda c, tmp: json.dumps(c, indent=2)[: int(fraction * len(json.dumps(c, indent=2)))]
    junk = draw(st.binary(min_size=1, max_size=64).filter(lambda b: not b.decode("utf-8", "ignore").strip().startswith("{")))
    return lambda c, tmp: junk


@SETTINGS
@given(change=config_defects())
def test_malformed_config(change, capsys) -> None:
    def mutate(run: Path, tmp: Path) -> tuple[str, ...]:
        config = json.loads((run / "config.json").read_text())
        raw = change(config, tmp)
        if isinstance(raw, bytes):
            (run / "config.json").write_bytes(raw)
        else:
            (run / "config.json").write_text(raw if isinstance(raw, str) else json.dumps(config))
        return ("config.json", "weights.safetensors")  # a size or rank that disagrees with the weights names both

    _run_all(mutate, capsys)


# -- weights.safetensors --------------------------------------------------------------------------------------------
@st.composite
def weight_defects(draw) -> Callable[[dict[str, torch.Tensor], bytes], bytes]:
    kind = draw(st.sampled_from(["truncate", "nan", "dtype", "shape", "missing", "extra", "garbage"]))
    key = draw(st.sampled_from(["m", "n", "w_in", "w_out", "h0"]))
    if kind == "truncate":
        fraction = draw(st.floats(min_value=0.0, max_value=0.99))
        return lambda tensors, data: data[: int(fraction * len(data))]
    if kind == "garbage":
        junk = draw(st.binary(min_size=0, max_size=64))
        return lambda tensors, data: junk
    if kind == "nan":
        value = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
        index = draw(st.integers(min_value=0, max_value=127))

        def put(tensors, data):
            tensors[key].view(-1)[index % tensors[key].numel()] = value
            return st_save(tensors)
        return put
    if kind == "dtype":
        dtype = draw(st.sampled_from([torch.int32, torch.int64, torch.int8, torch.bool, torch.uint8]))
        return lambda tensors, data: st_save({**tensors, key: tensors[key].to(dtype)})
    if kind == "shape":
        shape = draw(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=3))
        return lambda tensors, data: st_save({**tensors, key: torch.zeros(shape)})
    if kind == "missing":
        return lambda tensors, data: st_save({k: v for k, v in tensors.items() if k != key})
    extra = draw(st.text(alphabet="abcdefghijXYZ_.", min_size=1, max_size=6).filter(
        lambda k: k not in ("m", "n", "w_in", "w_out", "h0")))
    return lambda tensors, data: st_save({**tensors, extra: torch.zeros(3)})


@SETTINGS
@given(change=weight_defects())
def test_malformed_weights(change, capsys) -> None:
    def mutate(run: Path, tmp: Path) -> tuple[str, ...]:
        data = (run / "weights.safetensors").read_bytes()
        (run / "weights.safetensors").write_bytes(change(dict(st_load(data)), data))
        return ("weights.safetensors",)

    _run_all(mutate, capsys)


# -- metrics.jsonl (the report reads it) ---------------------------------------------------------------------------
@SETTINGS
@given(junk=st.one_of(
    st.binary(min_size=1, max_size=80).filter(lambda b: b.strip() and not _is_json_object_lines(b)),
    st.sampled_from([b"[1, 2]\n", b"3\n", b'"row"\n', b'{"epoch": NaN}\n', b'{"loss": 0.5}\n{"loss"\n'])))
def test_malformed_metrics(junk, capsys) -> None:
    def mutate(run: Path, tmp: Path) -> tuple[str, ...]:
        (run / "metrics.jsonl").write_bytes(junk)
        return ("metrics.jsonl",)

    _run_all(mutate, capsys, commands=[RUN_COMMANDS[-1]])


def _is_json_object_lines(data: bytes) -> bool:
    try:
        rows = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, ValueError):
        return False
    return all(isinstance(r, dict) for r in rows)


# -- checkpoint.safetensors (train --resume reads it) -------------------------------------------------------------
TRAIN = ["train", "--task", "rdm", "--size", "16", "--epochs", "2", "--train-trials", "32", "--batch-size", "16",
         "--quiet", "--resume", "--out", "{run}"]


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory) -> Path:
    """A run killed after its first epoch: config.json, checkpoint.safetensors and metrics.jsonl, no weights."""
    run = tmp_path_factory.mktemp("checkpointed") / "run"
    args = [a.format(run=run) for a in TRAIN if a != "--resume"]
    args[args.index("--epochs") + 1] = "1"
    assert main(args) == 0
    (run / "weights.safetensors").unlink()  # as if killed before the end; the checkpoint says epoch 1 of 1
    config = json.loads((run / "config.json").read_text())
    config["training"]["epochs"] = 2
    (run / "config.json").write_text(json.dumps(config))
    return run


def _with_state(data: bytes, change: Callable[[dict], Any]) -> bytes:
    from safetensors import safe_open

    with tempfile.NamedTemporaryFile(suffix=".safetensors") as handle:
        handle.write(data)
        handle.flush()
        with safe_open(handle.name, framework="pt") as opened:
            metadata = dict(opened.metadata() or {})
    state = json.loads(metadata["state"])
    replaced = change(state)
    metadata["state"] = replaced if isinstance(replaced, str) else json.dumps(state)
    return st_save(dict(st_load(data)), metadata=metadata)


@st.composite
def checkpoint_defects(draw) -> Callable[[bytes], bytes]:
    kind = draw(st.sampled_from(["truncate", "garbage", "nan", "dtype", "shape", "missing", "extra", "no-state",
                                 "state-junk", "state-key", "state-type"]))
    if kind == "truncate":
        fraction = draw(st.floats(min_value=0.0, max_value=0.99))
        return lambda data: data[: int(fraction * len(data))]
    if kind == "garbage":
        junk = draw(st.binary(max_size=64))
        return lambda data: junk
    names = sorted(st_load((Path(__file__).parent / "data" / "rdm_rank1_128" / "weights.safetensors").read_bytes()))
    key = draw(st.sampled_from([f"{prefix}.{name}" for prefix in ("model", "best") for name in names]))
    if kind == "nan":
        return lambda data: st_save({**st_load(data), key: st_load(data)[key] * float("nan")},
                                    metadata=_metadata(data))
    if kind == "dtype":
        return lambda data: st_save({**st_load(data), key: st_load(data)[key].to(torch.int32)}, metadata=_metadata(data))
    if kind == "shape":
        shape = draw(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=3))
        return lambda data: st_save({**st_load(data), key: torch.zeros(shape)}, metadata=_metadata(data))
    if kind == "missing":
        return lambda data: st_save({k: v for k, v in st_load(data).items() if k != key}, metadata=_metadata(data))
    if kind == "extra":
        return lambda data: st_save({**st_load(data), "evil.tensor": torch.zeros(2)}, metadata=_metadata(data))
    if kind == "no-state":
        return lambda data: st_save(dict(st_load(data)))
    if kind == "state-junk":
        junk = draw(st.text(max_size=20).filter(lambda t: not t.strip().startswith("{")))
        return lambda data: _with_state(data, lambda state: junk)
    field = draw(st.sampled_from(["epoch", "history", "best_epoch", "best_loss", "stopped_early"]))
    if kind == "state-key":
        return lambda data: _with_state(data, lambda state: state.pop(field))
    value = draw(st.one_of(st.text(max_size=4), st.lists(st.integers(), max_size=2), st.just({}), st.just(-1)))
    return lambda data: _with_state(data, lambda state: state.update({field: value}))


def _metadata(data: bytes) -> dict[str, str]:
    from safetensors import safe_open

    with tempfile.NamedTemporaryFile(suffix=".safetensors") as handle:
        handle.write(data)
        handle.flush()
        with safe_open(handle.name, framework="pt") as opened:
            return dict(opened.metadata() or {})


@SETTINGS
@given(change=checkpoint_defects())
def test_malformed_checkpoint(change, checkpointed_run, capsys) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        run = tmp / "run"
        shutil.copytree(checkpointed_run, run)
        data = (run / "checkpoint.safetensors").read_bytes()
        (run / "checkpoint.safetensors").write_bytes(change(data))
        _check(TRAIN, tmp, run, ("checkpoint.safetensors",), capsys)


def test_the_unmutated_checkpoint_resumes(checkpointed_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(checkpointed_run, run)
    assert main([a.format(run=run) for a in TRAIN]) == 0 and (run / "weights.safetensors").is_file()


# -- specification files ---------------------------------------------------------------------------------------------
def _gallery(name: str) -> dict[str, Any]:
    from rnnscope.design import resolve_spec

    return resolve_spec(name).to_dict()


@st.composite
def spec_defects(draw) -> Callable[[dict, Path], Any]:
    kind = draw(st.sampled_from(["payload", "rank", "populations", "population", "valente", "fraction", "task",
                                 "unknown", "nan", "truncate", "noise"]))
    if kind == "payload":
        name = draw(st.one_of(st.just("os:system"), module_class))
        return lambda s, tmp: s.update(task={"name": name, "options": _payload(tmp)["options"]})
    if kind == "rank":
        value = draw(st.one_of(bad_int, st.integers(max_value=0)))
        return lambda s, tmp: s.update(rank=value)
    if kind == "populations":
        value = draw(st.one_of(not_object.filter(lambda v: not isinstance(v, list)), st.just([])))
        return lambda s, tmp: s.update(populations=value)
    if kind == "population":
        value = draw(not_object)
        return lambda s, tmp: s["populations"].__setitem__(0, value)
    if kind == "valente":
        key, value = draw(st.sampled_from(["rho", "alpha_n", "s_n"])), draw(not_number)
        return lambda s, tmp: s["populations"][0]["valente"].update({key: value})
    if kind == "fraction":
        value = draw(st.one_of(not_number, st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False)))
        return lambda s, tmp: s["populations"][0].update(fraction=value)
    if kind == "task":
        value = draw(not_object.filter(lambda v: v is not None))  # null: a spec without a task, which is valid
        return lambda s, tmp: s.update(task=value)
    if kind == "unknown":
        key = draw(st.text(min_size=1, max_size=6).filter(lambda k: k not in (
            "name", "description", "reference", "rank", "inputs", "outputs", "noise_std", "task", "free", "claims",
            "populations")))
        return lambda s, tmp: s.update({key: 1})
    if kind == "nan":
        value = draw(non_finite)
        return lambda s, tmp: json.dumps(s).replace('"rho": 1.0', f'"rho": {value}', 1)
    if kind == "noise":
        value = draw(st.one_of(not_number, st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False)))
        return lambda s, tmp: s.update(noise_std=value)
    fraction = draw(st.floats(min_value=0.0, max_value=0.99))
    return lambda s, tmp: json.dumps(s)[: int(fraction * len(json.dumps(s)))]


@SETTINGS
@given(change=spec_defects(), command=st.sampled_from(["design", "fit-design"]))
def test_malformed_spec(change, command, capsys) -> None:
    base = _gallery("rdm_integrator")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        spec = copy.deepcopy(base)
        raw = change(spec, tmp)
        path = tmp / "spec.json"
        path.write_text(raw if isinstance(raw, str) else json.dumps(spec))
        args = [command, str(path), "--size", "50", "--out", str(tmp / "out")]
        if command == "fit-design":
            args[2:2] = ["--epochs", "1"]
        code = main(args)
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "spec.json" in lines[0], captured
        assert not (tmp / "out").exists() and not (tmp / MARKER).exists()


@pytest.mark.parametrize("name", ["rdm_rank1_128", "rdm_full_64"])
def test_the_unmutated_runs_load(name, capsys) -> None:
    """The base of the properties is valid: each failure above comes from its mutation."""
    assert main(["evaluate", str(shipped_run(name)), "--trials", "20", "--json"]) == 0
