"""The report's generated summary against the analysis it was generated from, for the five tasks of Dubreuil,
Valente et al. 2022 and two gallery designs: how the network was made, rank, task family, fixed points counted
class by class, which inputs drive which latent direction, named contexts and which population carries which
input, the per-task behaviour (psychometric curves, dms match accuracy, romo decision map), full effective-overlap
tables, and p-values never printed as 0."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from rnnscope import io
from rnnscope.design import design_network, resolve_spec
from rnnscope.models import ModelConfig, model_from_weights
from rnnscope.report._html import _section_html
from rnnscope.report._mechanism import TASK_FAMILIES, fixed_point_counts, format_p_value, rounded
from rnnscope.report._sections import ReportConfig, analyze_for_report
from rnnscope.tasks import make_task
from rnnscope.training import TrainingConfig, train

REPO = Path(__file__).resolve().parents[1]
CONFIG = ReportConfig(trials=120, analysis_trials=40, trajectory_trials=8, example_trials=2, fixed_point_starts=20,
                      flow_resolution=15, max_populations=2, restarts=1, resample_networks=2, resample_trials=40,
                      epairs_draws=10, epairs_neurons=150)
INPUTS = {"rdm": 1, "romo": 1, "raposo": 4, "mante": 4, "dms": 2}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("summary-runs")
    out = {"rdm": REPO / "tests" / "data" / "rdm_rank1_128", "mante": REPO / "tests" / "data" / "mante_rank1_256"}
    tiny = TrainingConfig(epochs=1, train_trials=32, batch_size=32, validation_trials=32, backend="torch")
    for name, rank in (("romo", 2), ("raposo", 1), ("dms", 2)):
        with warnings.catch_warnings():  # one epoch on purpose: the summary must be right even when inaccurate
            warnings.simplefilter("ignore")
            train(make_task(name), ModelConfig(size=40, inputs=INPUTS[name], rank=rank), tiny, seed=0,
                  out=root / name, progress=False)
        out[name] = root / name
    for spec, size in (("rank2_ring", 200), ("mante_gain_modulation", 400)):
        built = design_network(resolve_spec(spec), size, rng=0)
        io.save_model_run(root / spec, model_from_weights(built.weights), built.task, {"design": built.to_dict(), "seed": 0})
        out[spec] = root / spec
    return out


@pytest.fixture(scope="module")
def analyses(runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: analyze_for_report(path, config=CONFIG, rng=0) for name, path in runs.items()}


NAMES = ["rdm", "romo", "raposo", "mante", "dms", "rank2_ring", "mante_gain_modulation"]


@pytest.mark.parametrize("name", NAMES)
def test_summary_follows_the_analysis(analyses, name):
    analysis = analyses[name]
    text = analysis.summary
    summary = analysis.latent.analysis.summary
    # how it was made, rank and size
    designed = name in ("rank2_ring", "mante_gain_modulation")
    assert text.startswith(f"A rank-{summary.rank} network of {summary.size} neurons, ")
    if designed:
        assert f"designed by hand from the specification {name!r}, not trained" in text
        assert "trained on" not in text
    else:
        assert f"trained on {analysis.task.name}" in text and "designed" not in text
    if name == "rank2_ring":  # no task in the spec: the placeholder is named as such
        assert "placeholder" in text
    task = analysis.config["task"]["name"]
    if not (designed and "placeholder" in text):
        assert TASK_FAMILIES[task] in text
    # fixed points: every class counted, and the counts add up to the points found
    points = summary.fixed_points.fixed_points
    counts = fixed_point_counts(points)
    assert sum(counts.values()) == len(points.stability)
    listed = ", ".join(f"{v} {c}" for c, v in counts.items() if v)
    total = len(points.stability)
    assert (f"{total} fixed point{'s' if total != 1 else ''} without input ({listed})" in text) or (
        total == 0 and "no fixed point" in text)
    if summary.fixed_points.ring:
        assert "ring" in text
    # inputs per latent direction: the strongest input of each direction is named with its overlap
    inputs = np.asarray(summary.input_overlaps)
    names = list(analysis.task.input_names)
    assert "integrated along n" not in text
    if np.abs(inputs).max() >= 1e-3:
        for r in range(summary.rank):
            direction = "kappa" if summary.rank == 1 else f"kappa_{r + 1}"
            assert f"{direction} is driven by" in text
            i = int(np.argmax(np.abs(inputs[r])))
            if abs(inputs[r, i]) >= 0.3 * np.abs(inputs).max():
                assert f"{names[i]} ({inputs[r, i]:+.2f})" in text
    else:
        assert "No input overlaps a latent direction" in text
    # accuracy as measured, p-values never 0, contexts by name
    assert f"Accuracy {analysis.evaluation.accuracy:.2f} on {analysis.evaluation.trials} fresh trials" in text
    assert not re.search(r"p = 0(?![.\d])", text)
    assert "context=0" not in text and "context 0" not in text


def test_behaviour_per_task(analyses):
    for name in ("rdm", "raposo", "mante"):
        curves = analyses[name].psychometric.curves
        assert curves and all("coherence" in c.stimulus for c in curves)
    assert {c.group for c in analyses["mante"].psychometric.curves} == {"context=colour", "context=motion"}
    assert {c.group for c in analyses["raposo"].psychometric.curves} == {
        "modality=visual", "modality=auditory", "modality=multisensory"}
    for name in ("dms", "romo"):
        assert analyses[name].psychometric.curves == ()
    (dms,) = analyses["dms"].tables
    assert (dms.rows, dms.columns, dms.shows) == ("sample", "test", "accuracy")
    assert dms.row_names == ("A", "B") and dms.column_names == ("A", "B")
    batch_trials = int(np.nansum(dms.trials))
    assert batch_trials == CONFIG.trials
    (romo,) = analyses["romo"].tables
    assert (romo.rows, romo.columns, romo.shows) == ("f1", "f2", "choices")
    assert np.all((romo.choices[np.isfinite(romo.choices)] >= 0) & (romo.choices[np.isfinite(romo.choices)] <= 1))
    for name in ("rdm", "mante", "raposo"):
        assert analyses[name].tables == ()


def test_effective_overlaps_in_full_by_condition(analyses):
    dms = analyses["dms"]
    conditions = [g.condition for g in dms.latent.by_condition]
    assert "sample" in conditions and "test" in conditions
    sample = next(g for g in dms.latent.by_condition if g.condition == "sample")
    assert sample.names == ("A", "B")
    eff = sample.per_group[0]["delay"]
    assert np.asarray(eff.overlaps).shape == (2, 2) and np.asarray(eff.input_overlaps).shape == (2, 2)
    page = _section_html("overlaps", dms)
    for column in ("n1.m2", "n2.m1", "n2.m2", "n2.stimulus_b"):
        assert f"<th>{column}</th>" in page
    assert "sample B, delay" in page
    romo = analyses["romo"]
    (f1,) = [g for g in romo.latent.by_condition if g.condition == "f1"]
    assert len(f1.names) == 3 and all("-" in n for n in f1.names)  # binned by value
    mante = _section_html("overlaps", analyses["mante"])
    assert "context colour, stimulus" in mante and "context motion, stimulus" in mante


def test_designed_gain_modulation_names_its_populations(analyses):
    analysis = analyses["mante_gain_modulation"]
    gating = analysis.gating
    assert gating is not None and gating.source == "design"
    spec = resolve_spec("mante_gain_modulation")
    assert gating.populations == tuple(f'population {p} "{pop.name}"' for p, pop in enumerate(spec.populations))
    # the parts of each population add up to the whole effective input overlap of each context
    contexts = next(g for g in analysis.latent.by_condition if g.condition == "context")
    for g, per_epoch in enumerate(contexts.per_group):
        assert np.allclose(gating.drive[:, g].sum(axis=0), per_epoch["stimulus"].input_overlaps, atol=1e-6)
    carriers = gating.carriers()
    assert carriers, "the design's populations should each carry one input in one context"
    text = analysis.summary
    for p, g, name, _, _ in carriers:
        assert f"{gating.populations[p]} carries {name} in the {gating.names[g]} context" in text
    # the design says: population 0 reads motion, population 1 reads colour
    assert {(p, name) for p, _, name, _, _ in carriers} <= {(0, "motion"), (1, "colour")}


def test_ring_design_is_described_as_a_ring(analyses):
    analysis = analyses["rank2_ring"]
    result = analysis.latent.analysis.summary.fixed_points
    assert ("ring of slow points" in analysis.summary) == bool(result.ring)
    eigenvalues = np.sort(np.linalg.eigvals(analysis.latent.analysis.summary.overlaps).real)[::-1]
    assert "Eigenvalues of the overlap matrix n_i.m_j/N: " in analysis.summary
    assert np.allclose(eigenvalues, 2.0, atol=0.4)  # the spec's overlaps (2, 0, 0, 2), drawn at N = 200


def test_number_formats():
    assert format_p_value(0.0) == "p < 1e-300"
    assert format_p_value(1e-320) == "p < 1e-300"
    assert format_p_value(2.5e-54) == "p = 2.5e-54"
    assert format_p_value(0.0431) == "p = 0.043"
    assert format_p_value(float("nan")) == "p = n/a"
    assert rounded({"a": [0.123456, 2], "b": np.float64(12345.678), "c": True}) == {"a": [0.123, 2], "b": 12300.0, "c": True}


def test_cli_text_is_rounded_and_named():
    from click.testing import CliRunner

    from rnnscope.cli import cli

    run = str(REPO / "tests" / "data" / "mante_rank1_256")
    result = CliRunner().invoke(cli, ["evaluate", run, "--trials", "60", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^accuracy \d\.\d{3}  loss \d\.\d{4}  \(60 trials\)$", result.output.splitlines()[0])
    assert "by context: colour" in result.output and "motion" in result.output
    result = CliRunner().invoke(cli, ["analyze", run, "--trials", "20", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert "effective overlaps, context colour:" in result.output and "fixed points without input: 3" in result.output
    assert not re.search(r"\d\.\d{5}", result.output)  # rounded for people; --json keeps every digit
