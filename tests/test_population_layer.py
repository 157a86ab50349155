"""Population statistics as one layer: design samples and trains through analysis's one sampler and one loop,
no package imports another's private module, and renamed spec keys still load."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import torch

import rnnscope.analysis as analysis
import rnnscope.design as design
from rnnscope.design import _build

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "rnnscope"
OWN = ("analysis", "design", "data", "plots", "report")


def test_design_uses_the_analysis_sampler_and_training_loop():
    assert _build.reparametrised_loadings is analysis.reparametrised_loadings
    assert _build.train_loadings is analysis.train_loadings
    assert _build.PopulationModel is analysis.PopulationModel
    names = {n.id for n in ast.walk(ast.parse((SRC / "design" / "_build.py").read_text())) if isinstance(n, ast.Name)}
    assert "_sample_torch" not in names and "_counts" not in names


def test_population_sampler_forward_is_reparametrised_loadings():
    model = design.population_model(design.load_gallery("rdm_integrator"))
    sampler = model.sampler()
    z = torch.randn((50, len(model.columns)), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    direct = analysis.reparametrised_loadings(sampler.means, sampler.factors(), model.fractions, z)
    torch.testing.assert_close(sampler(z), direct)
    np.testing.assert_array_equal(sampler.labels(50), model.labels(50))


def test_design_labels_are_the_model_labels():
    spec = design.load_gallery("rdm_integrator")
    np.testing.assert_array_equal(design.population_labels(spec, 37), design.population_model(spec).labels(37))


def test_design_network_takes_rng_and_the_deprecated_seed():
    spec = design.load_gallery("rdm_integrator")
    a = design.design_network(spec, 100, rng=3)
    b = design.design_network(spec, 100, seed=3)
    np.testing.assert_array_equal(a.weights.m, b.weights.m)
    assert a.seed == 3 and design.design_network(spec, 100, rng=np.random.default_rng(3)).seed is None


def test_old_valente_keys_load_as_the_new_ones():
    data = {"rank": 1, "inputs": 1, "outputs": 1, "free": ["alpha_n"],
            "populations": [{"fraction": 1.0, "valente": {"rho": 1.0, "alpha_n": 0.5, "alpha_m": 2.0}}]}
    spec = design.spec_from_dict(data)
    assert spec.populations[0].parameters["n_private"] == 0.5
    assert spec.populations[0].parameters["m_private"] == 2.0
    assert spec.free == ("n_private",)


def test_no_private_module_of_another_package_is_imported():
    for package in OWN:
        for path in (SRC / package).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnscope."):
                    parts = node.module.split(".")
                    if len(parts) > 2 and parts[2].startswith("_"):
                        assert parts[1] == package, f"{path.name} imports {node.module}"


def test_population_modules_are_small_and_analysis_has_no_import_cycle():
    for name in ("_loadings", "_mixtures", "_population_model", "_evaluation", "_retrain", "_resampling",
                 "_inactivation"):
        assert len((SRC / "analysis" / f"{name}.py").read_text().splitlines()) < 600, name
    assert not (SRC / "analysis" / "_populations.py").exists()
    graph = {}
    for path in (SRC / "analysis").glob("_*.py"):
        graph[path.stem] = {
            node.module.split(".")[2] for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnscope.analysis._")
        }
    done: set[str] = set()

    def visit(module: str, stack: tuple[str, ...]) -> None:
        assert module not in stack, " -> ".join(stack + (module,))
        if module not in done:
            for target in graph.get(module, ()):
                visit(target, stack + (module,))
            done.add(module)

    for module in graph:
        visit(module, ())
