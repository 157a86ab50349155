"""import-torch (round trip and refusals), populations (resumable run directories) and the universality study."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from rnnscope import io
from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.models import GatedConfig, GatedRNN
from rnnscope.sweep import SweepTraining, grid_configs, paper_grid, train_population, universality_study
from rnnscope.tasks import make_task


def _torch_network(cell=torch.nn.GRU, seed=0, prefix=("rnn.", "readout.")):
    torch.manual_seed(seed)  # the reference network only; rnnscope itself never draws from the global generator
    rnn, linear = cell(3, 6, batch_first=True), torch.nn.Linear(6, 3)
    state = {prefix[0] + k: v for k, v in rnn.state_dict().items()}
    state.update({prefix[1] + k: v for k, v in linear.state_dict().items()})
    return rnn, linear, state


@pytest.mark.parametrize("cell, module", [("gru", torch.nn.GRU), ("lstm", torch.nn.LSTM), ("rnn", torch.nn.RNN)])
def test_import_torch_round_trip(tmp_path, cell, module) -> None:
    rnn, linear, state = _torch_network(module, prefix=("model.core.", "head."))
    torch.save(state, tmp_path / "net.pt")
    code = main(["import-torch", str(tmp_path / "net.pt"), "--cell", cell, "--task", "flipflop", "--out",
                 str(tmp_path / "run")])
    assert code == 0
    run = io.load_run(tmp_path / "run")
    assert isinstance(run.model, GatedRNN) and run.model.config.size == 6
    inputs = torch.from_numpy(run.task.sample(4, rng=np.random.default_rng(0)).inputs)
    with torch.no_grad():
        expected = linear(rnn(inputs)[0])
        assert torch.allclose(run.model(inputs), expected, atol=1e-6)


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def _refusal(tmp_path, payload, match, cell="gru") -> None:
    path = tmp_path / "bad.pt"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    with pytest.raises(RnnscopeError, match=match):
        io.import_torch(path, cell=cell, task=make_task("flipflop"), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_import_torch_refuses_a_pickled_object(tmp_path, capsys) -> None:
    _refusal(tmp_path, pickle.dumps({"weight": _Payload()}), "weights_only")
    assert "pickled code ran" not in capsys.readouterr().out


def test_import_torch_refusals(tmp_path) -> None:
    _, _, state = _torch_network()
    missing = {k: v for k, v in state.items() if not k.endswith("bias_hh_l0")}
    _refusal(tmp_path, missing, "missing tensor 'bias_hh_l0'")
    _refusal(tmp_path, {**state, "rnn.weight_ih_l1": state["rnn.weight_ih_l0"]}, "unexpected tensor 'rnn.weight_ih_l1'")
    _refusal(tmp_path, {**state, "readout.weight": torch.zeros(3, 5)}, r"'readout.weight' has shape \(3, 5\)")
    nan = state["rnn.weight_hh_l0"].clone()
    nan[0, 0] = float("nan")
    _refusal(tmp_path, {**state, "rnn.weight_hh_l0": nan}, "'rnn.weight_hh_l0' contains NaN")
    _refusal(tmp_path, {**state, "rnn.bias_ih_l0": state["rnn.bias_ih_l0"].int()}, "'rnn.bias_ih_l0' has dtype int32")
    _refusal(tmp_path, {**state, "note": "hello"}, "entry 'note' is a str")
    _refusal(tmp_path, state, r"expected \(4 \* size, size\) for torch.nn.LSTM", cell="lstm")
    _refusal(tmp_path, b"not a torch file", "bad.pt: not a state_dict")


def test_import_torch_cli_error_is_one_line(tmp_path, capsys) -> None:
    code = main(["import-torch", str(tmp_path / "absent.pt"), "--cell", "gru", "--task", "flipflop", "--out",
                 str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "no such file" in err and len(err.splitlines()) == 1


def test_grids() -> None:
    task = make_task("flipflop")
    assert len(paper_grid(task)) == 96
    configs = grid_configs(task, architectures=("gru", "lstm"), sizes=(8,), l2=(1e-3,))
    assert [c.label for c in configs] == ["gru-tanh-8", "gru-relu-8", "lstm-tanh-8", "lstm-relu-8"]
    with pytest.raises(RnnscopeError, match="^sizes:"):
        grid_configs(task, sizes=())


def test_population_is_resumable(tmp_path) -> None:
    task = make_task("flipflop", {"trial_ms": 200.0})
    configs = [GatedConfig(cell="ugrnn", size=4, inputs=3, outputs=3, l2=1e-3)]
    training = SweepTraining(epochs=1, steps_per_epoch=2, trials=4, validation_trials=4)
    first = train_population(configs, task, [0, 1], out=tmp_path, training=training)
    assert [n.resumed for n in first.networks] == [False, False]
    run = io.load_run(first.networks[1].path)
    assert run.model.config == configs[0] and run.seed == 1
    again = train_population(configs, task, [0, 1, 2], out=tmp_path, training=training)
    assert [n.resumed for n in again.networks] == [True, True, False]
    assert again.networks[0].score == first.networks[0].score
    with pytest.raises(RnnscopeError, match="holds another network"):
        other = [GatedConfig(cell="ugrnn", size=4, inputs=3, outputs=3, l2=1e-3, train_h0=True)]
        train_population(other, task, [0], out=tmp_path, training=training)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the stacked path trains on CUDA only; no CUDA here")
def test_stacked_cuda_population(tmp_path) -> None:
    task = make_task("flipflop", {"trial_ms": 200.0})
    configs = [GatedConfig(cell="gru", size=8, inputs=3, outputs=3, l2=1e-4)]
    training = SweepTraining(epochs=2, steps_per_epoch=5, trials=8, validation_trials=8)
    population = train_population(configs, task, [0, 1, 2], out=tmp_path, training=training, device="cuda")
    assert population.mode == "stacked" and len(population) == 3
    assert all(np.isfinite(n.score) for n in population.networks)
    assert io.load_run(population.networks[2].path).seed == 2


@pytest.mark.slow
def test_reduced_study_end_to_end(tmp_path) -> None:
    task = make_task("flipflop", {"trial_ms": 400.0})
    out = tmp_path / "study"
    code = main(["universality", "--task", "flipflop", "--task-option", "trial_ms=400", "--architectures",
                 "gru,vanilla", "--activations", "tanh", "--sizes", "8", "--seeds", "2", "--epochs", "2", "--steps",
                 "5", "--batch-size", "8", "--workers", "2", "--out", str(out), "--json"])
    assert code == 0
    study = universality_study(grid_configs(task, architectures=("gru", "vanilla"), activations=("tanh",),
                                            sizes=(8,)), task, [0, 1], out=out,
                               training=SweepTraining(epochs=2, steps_per_epoch=5, trials=8), starts=16)
    assert all(n.resumed for n in study.population.networks)  # the CLI's networks, not trained again
    data = json.loads((out / "analysis.json").read_text())
    assert [n["architecture"] for n in data["networks"]] == ["gru", "gru", "vanilla", "vanilla"]
    geometry = np.array(data["geometry_distance"])
    assert geometry.shape == (4, 4) and np.allclose(np.diag(geometry), 0) and np.allclose(geometry, geometry.T)
    assert all(set(n["fixed_points"]) == {"stable", "saddle", "source"} for n in data["networks"])
    topology = np.array(data["topology_distance"])
    assert topology.shape == (4, 4) and np.allclose(np.diag(topology), 0) and np.all((topology >= 0) & (topology <= 1))
    assert all(0.0 <= n["converged"] <= 1.0 for n in data["networks"])
    for name in ("table.csv", "table.parquet", "mds_geometry.png", "mds_topology.png"):
        assert (out / name).is_file()
    assert (out / "table.csv").read_text().splitlines()[0].startswith("architecture,activation,size,l2,seed,accuracy")


def test_stacked_training_loop_runs_on_cpu() -> None:
    # the loop of the CUDA path, run here on the CPU so it is exercised without a GPU
    from rnnscope.sweep._train import _train_stack

    task = make_task("flipflop", {"trial_ms": 200.0})
    config = GatedConfig(cell="lstm", size=6, inputs=3, outputs=3, l2=1e-4)
    training = SweepTraining(epochs=2, steps_per_epoch=3, trials=4, validation_trials=4)
    trained = _train_stack(config, task, training=training, seeds=[0, 1], device="cpu")
    assert [t.seed for t in trained] == [0, 1] and all(len(t.history) == 2 for t in trained)
    assert all(np.isfinite(t.score) for t in trained)
    a, b = (t.model.arrays()["weight_hh_l0"] for t in trained)
    assert not np.array_equal(a, b) and trained[0].model.networks is None
