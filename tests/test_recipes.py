"""Training recipes (issue 13): validation, the paper's values, CLI overrides, the target rule, trained scales."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnscope import io
from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.models import FusedTrainStep, ModelConfig, build_model, fast_noise, simulate
from rnnscope.tasks import RECIPES, Recipe, RecipeStage, list_tasks, load_recipe, recipe_for
from rnnscope.training import adapt_recipe, recipe_plan, train_recipe
from rnnscope.training._loss import masked_mse_loss
from rnnscope.training._optimise import OptimisationConfig, State, run_epochs


# -- recipes as values ----------------------------------------------------------------------------------------------
def test_every_paper_task_has_a_paper_and_a_fast_recipe():
    assert set(RECIPES) == {"rdm", "raposo", "mante", "romo", "dms"}
    for task, recipes in RECIPES.items():
        assert set(recipes) == {"paper", "fast"}
        for recipe in recipes.values():
            assert recipe.task == task
            assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


def test_paper_recipes_hold_the_papers_values():
    rdm = recipe_for("rdm")
    assert (rdm.train_inputs, rdm.train_outputs, rdm.train_input_scale, rdm.train_output_scale) == (False, False, True, True)
    assert (rdm.stages[0].lr, rdm.stages[0].epochs, rdm.stages[0].clip_gradient) == (5e-3, 20, None)
    for name, epochs in (("raposo", 30), ("mante", 100)):
        stage = recipe_for(name).stages[0]
        assert (stage.lr, stage.epochs, stage.clip_gradient, stage.target_loss) == (1e-2, epochs, 0.1, 0.01)
        assert recipe_for(name).train_inputs and not recipe_for(name).train_outputs
    romo = recipe_for("romo")
    assert romo.stages[0].full_rank and romo.stages[0].learning_rate(512) == pytest.approx(1e-2 / 512**0.5)
    assert (romo.rank, romo.noise_std, romo.stages[1].clip_gradient) == (2, 5e-3, 1.0)
    dms = recipe_for("dms", "paper")
    assert dms.stages[0].full_rank and dms.stages[1].clip_gradient == 0.01 and dms.stages[1].epochs == 300
    assert [dict(s.task_options).get("delay_max_ms") for s in dms.stages] == [2000.0, 700.0, 1000.0, None]


@pytest.mark.parametrize("bad, match", [
    (dict(stages=()), "at least one stage"),
    (dict(stages=(RecipeStage(epochs=1, lr=1e-2, full_rank=True),)), "last stage"),
    (dict(batch_size=64, train_trials=32), "train_trials"),
    (dict(train_inputs=1), "train_inputs"),
    (dict(rank=0), "rank"),
])
def test_recipe_rejects_bad_values(bad, match):
    values = dict(name="x", task="rdm", stages=(RecipeStage(epochs=1, lr=1e-2),))
    with pytest.raises(RnnscopeError, match=match):
        Recipe(**{**values, **bad})


@pytest.mark.parametrize("stage, match", [
    (dict(epochs=0, lr=1e-2), "epochs"), (dict(epochs=1, lr=-1.0), "lr"),
    (dict(epochs=1, lr=1e-2, clip_gradient=0.0), "clip_gradient"),
    (dict(epochs=1, lr=1e-2, target_accuracy=1.5), "target_accuracy"),
    (dict(epochs=1, lr=1e-2, task_options=(("delay_max_ms", float("nan")),)), "finite"),
])
def test_recipe_stage_rejects_bad_values(stage, match):
    with pytest.raises(RnnscopeError, match=match):
        RecipeStage(**stage)


def test_recipe_file_is_validated(tmp_path):
    good = {"name": "mine", "rank": 2, "stages": [{"epochs": 3, "lr": 0.01, "task_options": {"delay_max_ms": 700}}]}
    (tmp_path / "good.json").write_text(json.dumps(good))
    recipe = load_recipe(tmp_path / "good.json")
    assert recipe.rank == 2 and recipe.stages[0].task_options == (("delay_max_ms", 700),)
    for bad, match in (({**good, "code": "import os"}, "unknown field 'code'"),
                       ({**good, "stages": [{"epochs": "3", "lr": 0.01}]}, "epochs"),
                       ({**good, "stages": [{"epochs": 3, "lr": 0.01, "shell": 1}]}, "unknown field 'shell'")):
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(RnnscopeError, match=match):
            load_recipe(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(RnnscopeError, match="not a JSON recipe"):
        load_recipe(tmp_path / "broken.json")


def test_tasks_listing_prints_the_recipes():
    listing = {task["name"]: task for task in list_tasks()}
    assert listing["dms"]["recipes"]["paper"]["stages"][1]["clip_gradient"] == 0.01
    assert list(listing["flipflop"]["recipes"]) == ["default"]


# -- overrides -------------------------------------------------------------------------------------------------------
def test_overrides_curriculum_lr_epochs_full_rank():
    dms = recipe_for("dms", "fast")
    custom = adapt_recipe(dms, curriculum=("delay_max_ms", (500.0, 2000.0)), lr=3e-3, epochs=7)
    assert [dict(s.task_options)["delay_max_ms"] for s in custom.stages] == [500.0, 2000.0]
    assert {(s.lr, s.epochs) for s in custom.stages} == {(3e-3, 7)}
    paper = adapt_recipe(recipe_for("dms", "paper"), curriculum=("delay_max_ms", (700.0, 3000.0)))
    assert paper.stages[0].full_rank and len(paper.stages) == 3  # pretraining kept
    full = adapt_recipe(recipe_for("romo"), full_rank=True)
    assert full.rank is None and len(full.stages) == 1 and full.stages[0].learning_rate(400) == pytest.approx(5e-4)
    with pytest.raises(RnnscopeError, match="full-rank network has no rank"):
        adapt_recipe(recipe_for("mante"), full_rank=True, rank=2)
    target = adapt_recipe(recipe_for("mante"), target_accuracy=0.9).stages[-1]
    assert (target.target_accuracy, target.target_loss) == (0.9, None)


def test_plan_truncates_after_pretraining():
    model, stages = recipe_plan("romo", recipe_for("romo"), size=32)
    assert model.rank is None and model.noise_std == 5e-3
    assert stages[0].rank is None and stages[1].rank == 2 and stages[1].model.train_input_scale
    assert stages[0].config.lr == pytest.approx(1e-2 / 32**0.5) and stages[1].config.clip_gradient == 1.0


def test_cli_refuses_rank_with_full_rank(tmp_path, capsys):
    assert main(["train", "--task", "mante", "--full-rank", "--rank", "2", "--out", str(tmp_path / "r")]) == 2
    assert "full-rank network has no rank" in capsys.readouterr().err
    assert main(["train", "--task", "dms", "--curriculum", "delay_max_ms", "--out", str(tmp_path / "r")]) == 2
    assert main(["train", "--task", "flipflop", "--recipe", "quick", "--out", str(tmp_path / "r")]) == 2
    assert "not a built-in recipe" in capsys.readouterr().err


def test_cli_trains_by_recipe_with_overrides(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "rdm", "--size", "16", "--epochs", "1", "--lr", "0.02", "--out", str(out),
                 "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["recipe"] == "paper" and summary["epochs"] == 1
    config = io.read_config(out)
    assert config["training"]["lr"] == 0.02 and config["training"]["clip_gradient"] is None
    assert config["model"]["train_input_scale"] and not config["model"]["train_inputs"]
    run = io.load_run(out)
    assert np.allclose(run.model.weights().w_in, (run.model.w_in * run.model.s_in).detach().numpy())
    recipe = {"name": "two", "rank": 1, "stages": [{"epochs": 1, "lr": 0.01, "task_options": {"delay_ms": 200}},
                                                    {"epochs": 1, "lr": 0.01}]}
    (tmp_path / "two.json").write_text(json.dumps(recipe))
    out = tmp_path / "curr"
    assert main(["train", "--task", "rdm", "--size", "16", "--recipe", str(tmp_path / "two.json"), "--out", str(out),
                 "--quiet"]) == 0
    assert io.read_config(out / "stage0")["task"]["options"]["delay_ms"] == 200.0
    assert io.load_run(out).model.config.rank == 1
    result = train_recipe("rdm", load_recipe(tmp_path / "two.json"), size=16, rng=0, progress=False)
    assert result.history[result.best_epoch]["stage"] == 1  # the kept epoch is the last stage's


# -- the target rule ------------------------------------------------------------------------------------------------
class _Scripted:
    """Validation (loss, accuracy) per epoch as given; no gradients."""

    def __init__(self, rows):
        self.rows, self.epoch = rows, 0

    def begin_epoch(self, epoch):
        self.epoch = epoch

    def step(self, index):
        return np.array([0.0])

    def validate(self):
        loss, accuracy = self.rows[self.epoch]
        return np.array([loss]), np.array([accuracy])


def test_training_stops_only_once_the_kept_network_meets_the_target():
    p = torch.zeros(1, requires_grad=True)
    rows = [(0.3, 0.5), (0.4, 0.95), (0.2, 0.95), (0.1, 1.0)]  # epoch 1 meets the target but is not the kept one
    config = OptimisationConfig(epochs=4, target_accuracy=0.9)
    state = run_epochs([p], _Scripted(rows), torch.optim.Adam([p]), config, State.fresh([p]))
    assert state.epoch == 3 and int(state.best_epoch[0]) == 2 and bool(state.stopped_early[0])
    loss_target = OptimisationConfig(epochs=4, target_loss=0.15)
    state = run_epochs([p], _Scripted(rows), torch.optim.Adam([p]), loss_target, State.fresh([p]))
    assert state.epoch == 4 and int(state.best_epoch[0]) == 3


# -- trained input / output scales ----------------------------------------------------------------------------------
@pytest.mark.parametrize("rank", [1, 2, None])
def test_scales_give_the_same_loss_and_gradients_on_both_backends(rank):
    config = ModelConfig(size=12, inputs=2, rank=rank, train_inputs=rank == 2, train_outputs=False,
                         train_input_scale=True, train_output_scale=True)
    net = build_model(config, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        net.s_in.copy_(torch.tensor([0.7, 1.3]))
        net.s_out.fill_(0.5)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((4, 6, 2)).astype(np.float32)
    y = rng.standard_normal((4, 6, 1)).astype(np.float32)
    mask = np.ones((4, 6), np.float32)
    fused_loss = FusedTrainStep(net)(u, y, mask, 7)
    fused = {name: p.grad.clone() for name, p in net.named_parameters() if p.requires_grad}
    for p in net.parameters():
        p.grad = None
    noise = torch.from_numpy(fast_noise((4, 6, 12), 7))
    loss = masked_mse_loss(net(torch.from_numpy(u), noise=noise), torch.from_numpy(y), torch.from_numpy(mask))
    loss.backward()
    assert fused_loss == pytest.approx(float(loss.detach()), rel=1e-5)
    assert set(fused) >= {"s_in", "s_out"}
    for name, p in net.named_parameters():
        if p.requires_grad:
            assert torch.allclose(fused[name], p.grad, rtol=1e-4, atol=1e-6), name
    fast = simulate(net, u, rng=3, backend="fast").outputs
    plain = simulate(net, u, rng=3, backend="torch").outputs
    assert np.allclose(fast, plain, atol=1e-5)


def test_recipe_trains_scales_only_where_it_says():
    result = train_recipe("rdm", adapt_recipe(recipe_for("rdm"), epochs=1), size=16, rng=0, progress=False)
    net = result.model
    assert not net.w_in.requires_grad and net.s_in.requires_grad and net.s_out.requires_grad
    fresh = build_model(net.config, generator=torch.Generator().manual_seed(0))
    assert torch.equal(net.w_in, fresh.w_in) and not torch.equal(net.s_in, fresh.s_in)


# -- long: the paper's accuracy from default options ----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("task", ["rdm", "raposo", "mante"])
def test_paper_recipe_reaches_the_papers_accuracy(task, tmp_path):
    from rnnscope.tasks import make_task
    from rnnscope.training import evaluate

    result = train_recipe(task, recipe_for(task), size=512, rng=0, progress=False)
    assert evaluate(result.model, make_task(task), trials=500, rng=1).accuracy >= 0.98


def test_the_default_recipe_is_the_papers_except_where_it_was_not_verified() -> None:
    from rnnscope.tasks import RECOMMENDED

    assert dict(RECOMMENDED) == {"dms": "fast"}
    assert recipe_for("dms").name == "fast" and recipe_for("mante").name == "paper"
