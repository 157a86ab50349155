"""Lineage (train_from, the lineage section, J0 rebuilt) and the minimal rank (truncate J or J - J0, retrain)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shipped_run

from rnnscope import io
from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.models import FullRankWeights, ModelConfig, build_model, truncate
from rnnscope.tasks import make_task, task_spec
from rnnscope.training import (
    Stage,
    TrainingConfig,
    initial_weights,
    lineage_of,
    minimal_rank,
    train,
    train_curriculum,
    train_ensemble,
    train_from,
    truncate_learnt,
)

TINY = TrainingConfig(epochs=1, batch_size=16, train_trials=16, validation_trials=8)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A full-rank rdm network of size 24 trained from scratch by ``train`` (seed 5), one short epoch."""
    out = tmp_path_factory.mktemp("lineage") / "root"
    task = make_task("rdm")
    model = ModelConfig(size=24, inputs=1, rank=None)
    train(task, model, TINY, rng=5, out=out, progress=False)
    return out


def _initial_J(config: dict, seed: int) -> np.ndarray:
    model = build_model(ModelConfig(**config), generator=torch.Generator().manual_seed(seed))
    return model.J.detach().numpy()


def test_initial_weights_rebuilt_bit_identically(root) -> None:
    stored = io.read_config(root)
    rebuilt = initial_weights(root)
    J0 = _initial_J(stored["model"], 5)
    assert isinstance(rebuilt, FullRankWeights)
    assert np.array_equal(rebuilt.J, J0.astype(np.float64))  # bit for bit, float32 values
    assert not np.array_equal(rebuilt.J, _initial_J(stored["model"], 6))


def test_every_run_from_scratch_records_its_lineage(root, tmp_path) -> None:
    """train and train_ensemble write the lineage section (J0's seed and model, the scratch stage); J0 is rebuilt
    from it alone, bit for bit; a run written before the section existed is still read (inferred as before)."""
    config = io.read_config(root)
    assert io.read_lineage(root) == {"initial": {"seed": 5, "model": config["model"]}, "parents": [],
                                     "stages": [{"kind": "scratch", "task": "rdm", "epochs": 1}]}
    moved = tmp_path / "moved"  # the section, not the run's own seed field, says where J0 came from
    shutil.copytree(root, moved)
    io.write_json(moved / io.CONFIG_NAME, {**config, "seed": 6})
    assert np.array_equal(initial_weights(moved).J, _initial_J(config["model"], 5).astype(np.float64))
    old = tmp_path / "old"
    shutil.copytree(root, old)
    io.write_json(old / io.CONFIG_NAME, {k: v for k, v in config.items() if k != "lineage"})
    assert io.read_lineage(old) is None and lineage_of(old) == lineage_of(root)
    assert np.array_equal(initial_weights(old).J, initial_weights(root).J)

    model = ModelConfig(size=16, inputs=1, rank=2)
    train_ensemble(make_task("rdm"), model, TINY, rng=[8, 9], out=tmp_path / "ens", progress=False)
    for k, seed in enumerate((8, 9)):
        member = tmp_path / "ens" / f"net{k:02d}"
        assert io.read_lineage(member)["initial"]["seed"] == seed
        fresh = build_model(model, generator=torch.Generator().manual_seed(seed))
        rebuilt = initial_weights(member)
        assert np.array_equal(rebuilt.m, fresh.m.detach().numpy().astype(np.float64))
        assert np.array_equal(rebuilt.n, fresh.n.detach().numpy().astype(np.float64))


def test_shipped_network_J0_is_its_seed(tmp_path) -> None:
    """rdm_full_64 was trained from seed 0: the learnt change from its rebuilt J0 is smaller than from any other
    seed's J0 (largest singular value 2.05 against 2.96 for seed 1)."""
    run = io.load_run(shipped_run("rdm_full_64"))
    J = run.model.weights().J
    own = np.linalg.norm(J - initial_weights(run).J, 2)
    others = [np.linalg.norm(J - _initial_J(run.config["model"], s), 2) for s in (1, 2, 3)]
    assert own < 0.8 * min(others)


def test_lineage_record(root, tmp_path) -> None:
    child = tmp_path / "child"
    train_from(root, None, TINY, rank=2, truncate_delta=True, rng=1, out=child, progress=False)
    lineage = io.read_config(child)["lineage"]
    stored = io.read_config(root)
    assert lineage["initial"] == {"seed": 5, "model": stored["model"]}
    sha = hashlib.sha256((root / io.WEIGHTS_NAME).read_bytes()).hexdigest()
    assert lineage["parents"] == [{"path": str(root.resolve()), "sha256": sha}]
    assert [s["kind"] for s in lineage["stages"]] == ["scratch", "truncate"]
    assert lineage["stages"][1] == {"kind": "truncate", "rank": 2, "of": "J - J0", "task": "rdm", "epochs": 1}
    assert io.load_run(child).model.config.rank == 2

    grandchild = tmp_path / "grandchild"
    train_from(child, None, TINY, rng=2, out=grandchild, progress=False)
    lineage2 = lineage_of(grandchild)
    assert [p["path"] for p in lineage2["parents"]] == [str(root.resolve()), str(child.resolve())]
    assert [s["kind"] for s in lineage2["stages"]] == ["scratch", "truncate", "continue"]
    assert np.array_equal(initial_weights(grandchild).J, initial_weights(root).J)  # the root's J0, inherited

    before = io.read_config(child)["lineage"]
    train_from(root, None, TINY, rank=2, truncate_delta=True, rng=1, out=child, resume=True, progress=False)
    assert io.read_config(child)["lineage"] == before  # the same parent and stage: resumed (here: already done)
    with pytest.raises(RnnscopeError, match="cannot resume"):  # another parent into the same run
        train_from(root, None, TINY, rank=1, truncate_delta=True, rng=1, out=child, resume=True, progress=False)


def test_truncation_of_J_versus_learnt_change() -> None:
    """J = J0 + u v^T (rank 2 change): truncating J - J0 recovers the change exactly; truncating J does not."""
    rng = np.random.default_rng(0)
    size = 40
    J0 = rng.normal(0, 1 / np.sqrt(size), (size, size))
    u, v = rng.normal(size=(size, 2)), rng.normal(size=(size, 2))
    change = u @ v.T / size
    common = dict(w_in=rng.normal(size=(size, 1)), w_out=rng.normal(size=(size, 1)), h0=np.zeros(size))
    weights, initial = FullRankWeights(J=J0 + change, **common), FullRankWeights(J=J0, **common)

    low = truncate_learnt(weights, initial, 2)
    assert low.rank == 2
    np.testing.assert_allclose(low.m @ low.n.T / size, change, atol=1e-12)
    np.testing.assert_allclose(low.w_out, common["w_out"] * size)
    assert np.linalg.svd(weights.J - initial.J, compute_uv=False)[2] < 1e-12  # the change has rank 2
    whole = truncate(weights, 2)
    assert np.linalg.norm(whole.m @ whole.n.T / size - change) > 0.3 * np.linalg.norm(change)
    one = truncate_learnt(weights, initial, 1)  # best rank-1 part of the change
    s = np.linalg.svd(change, compute_uv=False)
    assert np.linalg.norm(one.m @ one.n.T / size - change, 2) == pytest.approx(s[1], rel=1e-9)


@pytest.fixture
def imported(tmp_path) -> Path:
    out = tmp_path / "imported"
    model = build_model(ModelConfig(size=16, inputs=1, rank=None), generator=torch.Generator().manual_seed(0))
    io.save_model_run(out, model, task_spec(make_task("rdm")), {"source": {"file": "x.pt", "sha256": "0"}, "seed": 0})
    return out


def test_refusals(root, imported, tmp_path) -> None:
    assert lineage_of(imported)["initial"] is None
    with pytest.raises(RnnscopeError, match="no initial connectivity J0.*imported"):
        initial_weights(imported)
    with pytest.raises(RnnscopeError, match="no initial connectivity J0"):
        train_from(imported, None, TINY, rank=1, truncate_delta=True, rng=0, out=tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
    with pytest.raises(RnnscopeError, match="no initial connectivity J0"):
        minimal_rank(imported, rng=0, progress=False)
    with pytest.raises(RnnscopeError, match="truncate_delta: .*needs a rank"):
        train_from(root, None, TINY, truncate_delta=True, rng=0, progress=False)
    low = shipped_run("rdm_rank1_128")
    with pytest.raises(RnnscopeError, match="only a full-rank network can be truncated"):
        train_from(low, None, TINY, rank=1, rng=0, progress=False)
    with pytest.raises(RnnscopeError, match="full-rank network"):
        minimal_rank(low, rng=0, progress=False)
    J = FullRankWeights(J=np.eye(4), w_in=np.ones((4, 1)), w_out=np.ones((4, 1)), h0=np.zeros(4))
    with pytest.raises(RnnscopeError, match="shape"):
        truncate_learnt(J, dataclasses.replace(J, J=np.eye(3)[:3]), 1)


def test_imported_run_can_truncate_whole_J(imported) -> None:
    result = train_from(imported, None, TINY, rank=1, rng=0, progress=False)
    assert result.model.config.rank == 1


def test_cli_minimal_rank(tmp_path, imported, capsys) -> None:
    """rdm_full_64 needs rank 1 (the learnt change truncated to rank 1, retrained: accuracy 1.0)."""
    run = tmp_path / "rdm"
    shutil.copytree(shipped_run("rdm_full_64"), run)
    capsys.readouterr()
    assert main(["minimal-rank", str(run), "--max-rank", "1", "--trials", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["needed"] == 1 and result["of"] == "J - J0"
    assert result["accuracy"][0] >= result["full_accuracy"] - 0.02
    assert main(["minimal-rank", str(imported), "--max-rank", "1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and "--whole-j" in error and len(error.strip().splitlines()) == 1


@pytest.mark.slow
def test_minimal_rank_of_trained_full_rank_networks(tmp_path) -> None:
    """Paper: minimal rank 1 for rdm and mante. rdm: the shipped full-rank network (N = 64); mante: a full-rank
    network (N = 256, lr 1e-3, 15 epochs) trained here."""
    rdm = minimal_rank(shipped_run("rdm_full_64"), max_rank=3, rng=0, progress=False)
    assert rdm.needed == 1
    mante = tmp_path / "mante"
    trained = train(make_task("mante"), ModelConfig(size=256, inputs=4, rank=None),
                    TrainingConfig(epochs=15, lr=1e-3), rng=0, out=mante, progress=False)
    assert trained.validation_accuracy >= 0.95
    result = minimal_rank(mante, max_rank=2, rng=0, progress=False)
    assert result.full_accuracy >= 0.95
    assert result.needed == 1


def test_train_init_from_truncates_the_learnt_change_from_the_cli(tmp_path) -> None:
    """`rnnscope train --init-from RUN --truncate-to 1 --truncate-delta` records its parent and stage."""
    import json
    import shutil

    from conftest import shipped_run

    from rnnscope.cli import main

    shutil.copytree(shipped_run("rdm_full_64"), tmp_path / "parent")
    out = tmp_path / "child"
    assert main(["train", "--task", "rdm", "--init-from", str(tmp_path / "parent"), "--truncate-to", "1",
                 "--truncate-delta", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    lineage = json.loads((out / "config.json").read_text())["lineage"]
    assert lineage["parents"][0]["path"].endswith("parent") and lineage["stages"][-1]["of"] == "J - J0"
    assert json.loads((out / "config.json").read_text())["model"]["rank"] == 1
    assert main(["train", "--task", "rdm", "--truncate-to", "1", "--out", str(tmp_path / "x")]) == 2


def test_final_network_of_a_full_rank_curriculum_has_stage0s_J0(tmp_path) -> None:
    """The final run of a curriculum records stage 0's J0 (built from the run's seed) and each stage, so its
    learnt change J - J0 can be truncated (minimal-rank) without pointing at stage0 by hand."""
    rdm, short = make_task("rdm"), make_task("rdm", {"stimulus_ms": 400.0})
    out = tmp_path / "cur"
    train_curriculum([Stage(short, 1), Stage(rdm, 1)], ModelConfig(size=32, inputs=1, rank=None),
                     dataclasses.replace(TINY, train_trials=64), seed=5, out=out, progress=False)
    lineage = lineage_of(out)
    assert lineage["initial"] == lineage_of(out / "stage0")["initial"]
    assert [s["kind"] for s in lineage["stages"]] == ["scratch", "continue"]
    np.testing.assert_array_equal(initial_weights(out).J, _initial_J(io.read_config(out / "stage0")["model"], 5))
    learnt = io.load_run(out).model.weights().J - initial_weights(out).J
    assert np.abs(learnt).max() > 0  # the two stages moved J away from J0


def test_retraining_follows_the_recipe_curriculum(root, tmp_path) -> None:
    """dms retrains a truncated network through its recipe's stages (300 -> 700 -> 1000 -> the run's own task); a task
    with a one-stage recipe retrains in one stage of the given config."""
    from rnnscope.training import retraining_stages

    dms_run = tmp_path / "dms"
    train(make_task("dms"), ModelConfig(size=16, inputs=2, rank=None), TINY, rng=1, out=dms_run, progress=False)
    stages = retraining_stages(dms_run, TINY)
    assert [s.task.delay_max_ms for s in stages] == [300.0, 700.0, 1000.0, io.load_run(dms_run).task.delay_max_ms]
    assert stages[0].task.test_ms == 100.0 and stages[-1].task == io.load_run(dms_run).task
    assert all(s.rank is None and s.config is not None for s in stages)
    (one,) = retraining_stages(root, TINY)
    assert one.task.name == "rdm" and one.epochs == TINY.epochs and one.config == TINY

    short = make_task("rdm", {"stimulus_ms": 400.0})
    result = minimal_rank(root, max_rank=1, trials=20, rng=0, progress=False,
                          stages=[Stage(short, 1, config=TINY), Stage(make_task("rdm"), 2, config=TINY)])
    assert [row["stage"] for row in result.histories[0]] == [0, 1, 1]
    d = result.to_dict()
    assert d["epochs"] == 3 and [s["epochs"] for s in d["retraining"]] == [1, 2]
    assert d["retraining"][0]["task_options"]["stimulus_ms"] == 400.0
    with pytest.raises(RnnscopeError, match="stages"):
        minimal_rank(root, max_rank=1, trials=20, rng=0, progress=False, stages=[])
