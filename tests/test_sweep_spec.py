"""Sweep specifications (rnnscope.sweep parse_spec / load_spec): grid expansion, stable job ids, and malformed
specifications refused with one line naming the configuration and the field, through the API and the command line,
with nothing written into the sweep directory."""

from __future__ import annotations

import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.sweep import CONFIGURATION_FIELDS, load_spec, parse_spec, sweep_status

BASE = {"task": "rdm", "recipe": "fast", "size": 16, "epochs": 1, "seeds": [0]}


def test_simplest_spec_expands_its_lists_into_a_grid() -> None:
    spec = parse_spec({"task": "rdm", "rank": 1, "size": [64, 32], "epochs": 2, "seeds": [0, 1, 2]})
    assert [c.size for c in spec.configurations] == [64, 32]
    jobs = spec.jobs()
    assert len(jobs) == 6 and len({j.id for j in jobs}) == 6
    assert [(j.index, j.seed) for j in jobs] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert jobs[0].id.startswith("rdm-r1-n64-s0-") and len(jobs[0].id.rsplit("-", 1)[1]) == 8
    c = spec.configurations[0]
    assert c.recipe == "paper" and c.analyses == ("accuracy",) and c.ensemble == 1  # the task's recommended recipe
    two = parse_spec({"task": ["rdm", "mante"], "size": [16, 32], "lr": [1e-2, 5e-3], "seeds": [3]})
    assert len(two.configurations) == 8
    assert {(c.task, c.size, c.lr) for c in two.configurations} == {
        (t, n, lr) for t in ("rdm", "mante") for n in (16, 32) for lr in (1e-2, 5e-3)}


def test_job_ids_are_stable_and_depend_on_what_is_computed() -> None:
    a = parse_spec(BASE).jobs()[0].id
    assert parse_spec(dict(reversed(list(BASE.items())))).jobs()[0].id == a  # key order does not matter
    assert parse_spec({**BASE, "rank": 1}).jobs()[0].id == a  # the recipe's rank made explicit: the same network
    assert parse_spec({**BASE, "seeds": [0, 5]}).jobs()[0].id == a  # other seeds do not change this network's id
    for change in ({"size": 17}, {"epochs": 2}, {"lr": 0.02}, {"analyses": ["accuracy", "epairs_connectivity"]},
                   {"task_options": {"stimulus_scale": 0.2}}, {"analysis_options": {"trials": 10}}):
        assert parse_spec({**BASE, **change}).jobs()[0].id != a, change


def test_configurations_list_with_shared_defaults() -> None:
    spec = parse_spec({"seeds": [0, 1], "recipe": "fast", "size": 16,
                       "configurations": [{"task": "rdm"}, {"task": "mante", "size": [32, 48], "seeds": [7]}]})
    assert [(c.task, c.size, c.seeds) for c in spec.configurations] == [
        ("rdm", 16, (0, 1)), ("mante", 32, (7,)), ("mante", 48, (7,))]
    assert len(spec.jobs()) == 4
    assert parse_spec(spec.to_dict()).to_dict() == spec.to_dict()  # the normalised form parses to itself


def test_yaml_and_json_files(tmp_path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "s.yaml").write_text("task: rdm\nrecipe: fast\nsize: [16, 32]\nseeds: [0, 1]\n")
    (tmp_path / "s.json").write_text(json.dumps({"task": "rdm", "recipe": "fast", "size": [16, 32], "seeds": [0, 1]}))
    assert load_spec(tmp_path / "s.yaml").to_dict() == load_spec(tmp_path / "s.json").to_dict()
    (tmp_path / "nan.yaml").write_text("task: rdm\nlr: .nan\n")
    with pytest.raises(RnnscopeError, match=r"nan.yaml: configurations\[0\]\.lr: expected a finite number"):
        load_spec(tmp_path / "nan.yaml")


@pytest.mark.parametrize("spec, message", [
    ({**BASE, "size": "x"}, r"configurations\[0\]\.size: expected an int >= 1, got 'x'"),
    ({"configurations": [BASE, BASE, {**BASE, "size": 0}]}, r"configurations\[2\]\.size: expected an int >= 1"),
    ({"configurations": [{**BASE, "size": [16, True]}]}, r"configurations\[0\]\.size\[1\]: expected an int"),
    ({"size": 16}, r"configurations\[0\]\.task: missing"),
    ({**BASE, "task": "nope"}, r"configurations\[0\]\.task: unknown task 'nope'"),
    ({**BASE, "task": "os:system"}, r"configurations\[0\]\.task: .*never imported"),
    ({**BASE, "bogus": 1}, r"configurations\[0\]: unknown field 'bogus'"),
    ({"bogus": 1, "configurations": [BASE]}, r"spec.json: unknown field 'bogus'"),
    ({**BASE, "lr": math.nan}, r"configurations\[0\]\.lr: expected a finite number, got nan"),
    ({**BASE, "task_options": {"stimulus_scale": math.inf}}, r"task_options\.stimulus_scale: must be finite"),
    ({**BASE, "task_options": {"nope": 1}}, r"configurations\[0\]\.task_options\.nope: not an option"),
    ({**BASE, "seeds": [1, 1]}, r"configurations\[0\]\.seeds: must be distinct"),
    ({**BASE, "seeds": [-1]}, r"configurations\[0\]\.seeds\[0\]: expected an int >= 0"),
    ({**BASE, "seeds": 3}, r"configurations\[0\]\.seeds: expected a non-empty list"),
    ({**BASE, "seeds": []}, r"configurations\[0\]\.seeds: expected a non-empty list"),
    ({**BASE, "recipe": "slow"}, r"configurations\[0\]\.recipe: expected 'paper', 'fast' or null"),
    ({**BASE, "analyses": ["nope"]}, r"configurations\[0\]\.analyses: unknown analysis 'nope'"),
    ({**BASE, "analysis_options": {"trials": 0}}, r"configurations\[0\]\.analysis_options\.trials"),
    ({**BASE, "full_rank": True, "rank": 2}, r"configurations\[0\]\.rank: a full-rank network has no rank"),
    ({**BASE, "task": "dms", "recipe": "fast", "ensemble": 2}, r"configurations\[0\]\.ensemble: recipe 'fast' of 'dms' has 4"),
    ({**BASE, "size": []}, r"configurations\[0\]\.size: an empty list"),
    ({"configurations": []}, r"configurations: expected a non-empty list"),
    ({"configurations": [BASE, BASE]}, r"configurations\[1\]: the network of seed 0 is already in configuration 0"),
    ([BASE], r"spec.json: expected an object"),
])
def test_malformed_specs_name_the_configuration_and_field(spec, message) -> None:
    with pytest.raises(RnnscopeError, match=message) as caught:
        parse_spec(spec, source="spec.json")
    assert str(caught.value).startswith("spec.json: ") and "\n" not in str(caught.value)


def _run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _snapshot(directory) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=5), st.lists(st.integers(-2, 3), max_size=3),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from([*CONFIGURATION_FIELDS, "unknown_field"]), value=_values,
       truncate=st.integers(0, 60), mode=st.sampled_from(["field", "truncated", "drop_task"]))
def test_malformed_spec_files_are_one_line_errors_and_leave_the_sweep_untouched(
        tmp_path_factory, capsys, field, value, truncate, mode) -> None:
    """A valid spec with one field replaced by an arbitrary value, the task removed, or the file cut short: the
    command either accepts it or fails with exit 2 and one stderr line; the existing sweep directory is unchanged."""
    root = tmp_path_factory.mktemp("sweep")
    out = root / "out"
    out.mkdir()
    (out / "spec.json").write_text(json.dumps({"format": 1, "spec": {}, "jobs": [{"id": "a"}]}))
    (out / "rows").mkdir()
    (out / "rows" / "a.json").write_text('{"job": "a"}')
    before = _snapshot(out)
    spec = dict(BASE)
    if mode == "field":
        spec[field] = value
    elif mode == "drop_task":
        spec.pop("task")
    text = json.dumps(spec)  # NaN and Infinity become the non-JSON constants NaN / Infinity, refused on reading
    if mode == "truncated":
        text = text[:truncate]
    path = root / "spec.json"
    path.write_text(text)
    try:
        parse_spec(json.loads(text)) if mode != "truncated" else None
        valid = mode != "truncated" and not any(isinstance(v, float) and not math.isfinite(v)
                                                for v in [value] if mode == "field")
    except (RnnscopeError, ValueError):
        valid = False
    if valid:
        return  # a spec this replacement left valid (e.g. a seed list of ints) is not the subject here
    code, stdout, stderr = _run_cli(capsys, "sweep", str(path), "--out", str(out), "--quiet")
    assert code == 2, (text, stdout)
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert _snapshot(out) == before


def test_sweep_status_reads_a_sweep_directory_without_building_anything(tmp_path, capsys) -> None:
    ids = ["rdm-r1-n16-s0-00000000", "rdm-r1-n16-s1-11111111", "rdm-r1-n16-s2-22222222"]
    out = tmp_path / "sweep"
    (out / "rows").mkdir(parents=True)
    (out / "failed").mkdir()
    (out / "runs" / ids[0]).mkdir(parents=True)
    # a user task that this process never allowed: status still reads the files
    (out / "spec.json").write_text(json.dumps({"format": 1, "spec": {"configurations": [{"task": "mod:Task"}]},
                                               "jobs": [{"id": i} for i in ids]}))
    for name in ("config.json", "weights.safetensors", "sweep_job.json"):
        (out / "runs" / ids[0] / name).write_text("{}")
    (out / "rows" / f"{ids[0]}.json").write_text(json.dumps({"job": ids[0], "accuracy": 1.0}))
    (out / "rows" / f"{ids[1]}.json").write_text('{"job": "' + ids[1])  # cut short: not done
    (out / "failed" / f"{ids[2]}.json").write_text(json.dumps({"job": ids[2], "error": "boom"}))
    assert sweep_status(out).to_dict() == {"done": 1, "failed": 1, "pending": 1, "total": 3}
    code, stdout, _ = _run_cli(capsys, "sweep-status", str(out), "--json")
    assert code == 0 and json.loads(stdout) == {"done": 1, "failed": 1, "pending": 1, "total": 3}
    code, _, stderr = _run_cli(capsys, "sweep-status", str(tmp_path), "--json")
    assert code == 2 and "not a sweep directory" in stderr and stderr.count("\n") == 1


def test_a_directory_of_other_files_or_another_spec_is_refused(tmp_path, capsys) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(BASE))
    code, _, stderr = _run_cli(capsys, "sweep", str(path), "--out", str(other), "--quiet")
    assert code == 2 and "is not empty and holds no sweep" in stderr
    assert sorted(os.listdir(other)) == ["notes.txt"]
    stored = tmp_path / "stored"
    stored.mkdir()
    spec = parse_spec({**BASE, "epochs": 2})
    (stored / "spec.json").write_text(json.dumps({"format": 1, "spec": spec.to_dict(),
                                                  "jobs": [j.to_dict() for j in spec.jobs()]}))
    before = _snapshot(stored)
    code, _, stderr = _run_cli(capsys, "sweep", str(path), "--out", str(stored), "--quiet")
    assert code == 2 and "configurations[0].epochs (stored 2, given 1)" in stderr
    assert _snapshot(stored) == before


def test_yaml_without_pyyaml_is_one_line(tmp_path, capsys) -> None:
    import sys

    path = tmp_path / "spec.yaml"
    path.write_text("task: rdm\n")
    saved = sys.modules.get("yaml")
    sys.modules["yaml"] = None  # type: ignore[assignment]  # import yaml now raises ImportError
    try:
        code, _, stderr = _run_cli(capsys, "sweep", str(path), "--out", str(tmp_path / "out"))
    finally:
        if saved is not None:
            sys.modules["yaml"] = saved
        else:
            sys.modules.pop("yaml")
    assert code == 2 and "reading YAML needs pyyaml" in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
