"""HTML reports and the demo: every section and figure present, the page renders in headless Chromium without a
console error (screenshot kept at artifacts/report.png), numbers beside figures, summary generated from numbers."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import reference_path

from rnnscope import io
from rnnscope.errors import RnnscopeError
from rnnscope.models import ModelConfig, model_from_weights
from rnnscope.report._api import compare, report
from rnnscope.report._demo import DemoConfig, demo
from rnnscope.report._html import SECTIONS, render_figures, write_comparison, write_report
from rnnscope.report._sections import ReportConfig, analyze_for_report, psychometric
from rnnscope.tasks import TrialBatch, make_task, task_spec
from rnnscope.training import TrainingConfig, train

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
)
SECTION_IDS = [sid for sid, _ in SECTIONS]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium); the CI script installs it")
    return subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def _console_errors(stderr: str) -> list[str]:
    """Lines of Chromium's log that report a page console error or an uncaught exception."""
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line or "error" in line.split("CONSOLE", 1)[1][:40])]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "rdm"
    config = TrainingConfig(epochs=2, train_trials=64, batch_size=32, validation_trials=64, backend="torch")
    train(make_task("rdm"), ModelConfig(size=48, inputs=1, rank=1), config, seed=0, out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """The authors' random-dots network (N = 512) as a run directory."""
    weights = io.load_reference(reference_path("rdm_lr_fig2.pt"), noise_std=0.05)
    out = tmp_path_factory.mktemp("runs") / "reference-rdm"
    io.save_model_run(out, model_from_weights(weights), task_spec(make_task("rdm")), {"seed": 0})
    return out


@pytest.fixture(scope="module")
def trained_analysis(trained_run):
    analysis = analyze_for_report(trained_run, config=ReportConfig.quick(), rng=0)
    return analysis, render_figures(analysis)


@pytest.fixture(scope="module")
def single_report(trained_analysis, tmp_path_factory):
    analysis, rendered = trained_analysis
    return write_report(analysis, tmp_path_factory.mktemp("report"), rendered=rendered)


def test_report_renders_in_chromium(single_report, tmp_path):
    files = single_report
    pngs = sorted(p for p in files.figures if p.suffix == ".png")
    result = _browse(files.html, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    for sid in SECTION_IDS:
        assert re.search(rf'<section id="{sid}"', dom), f"section {sid} missing"
    assert dom.count("<img") == len(pngs) >= 8
    images = re.search(r'data-images="(\d+)"', dom)
    broken = re.search(r'data-broken-images="(\d+)"', dom)
    assert images and broken, "the page's load script did not run"
    assert int(images.group(1)) == len(pngs) and int(broken.group(1)) == 0
    assert _console_errors(result.stderr) == []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = _browse(files.html, tmp_path / "profile2", "--window-size=1280,4000", "--hide-scrollbars",
                   f"--screenshot={ARTIFACTS / 'report.png'}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_every_figure_as_png_and_svg_with_numbers(single_report):
    files = single_report
    stems = {p.with_suffix("") for p in files.figures}
    for stem in stems:
        assert stem.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in stem.with_suffix(".svg").read_bytes()[:2000]
    names = {s.name for s in stems}
    assert {"learning-curves", "psychometric", "example-trials", "trajectories", "flow-field",
            "effective-overlaps", "resampling"} <= names
    data = {p.stem: json.loads(p.read_text()) for p in files.data}
    assert set(SECTION_IDS) <= set(data)
    history = data["learning"]["history"]
    assert [row["epoch"] for row in history] == [0, 1]  # the run's metrics.jsonl, two epochs
    assert data["behaviour"]["evaluation"]["trials"] == ReportConfig.quick().trials
    page = files.html.read_text()
    assert "http://" not in page and "https://" not in page  # nothing fetched: self-contained


@pytest.mark.reference
def test_summary_is_generated_from_the_numbers(reference_run, tmp_path):
    """On the authors' rdm network: the printed overlap is n.m/N of the raw weights, and the network behaves
    as in the paper (accuracy > 0.9, psychometric curve rising from ~0 to ~1)."""
    state = torch.load(reference_path("rdm_lr_fig2.pt"), map_location="cpu", weights_only=True)
    m, n = state["m"].numpy()[:, 0], state["n"].numpy()[:, 0]
    overlap = float(m @ n / m.size)
    config = ReportConfig(trials=600, analysis_trials=40, trajectory_trials=8, example_trials=2, fixed_point_starts=30,
                          flow_resolution=25, max_populations=2, restarts=1, resample_networks=3,
                          resample_trials=100, epairs_draws=10, epairs_neurons=150)
    files = report(reference_run, out=tmp_path, config=config, rng=1)
    summary = json.loads((tmp_path / "data" / "summary.json").read_text())["summary"]
    assert f"n.m/N = {overlap:.2f}" in summary
    assert summary.startswith("A rank-1 network of 512 neurons")
    behaviour = json.loads((tmp_path / "data" / "behaviour.json").read_text())
    assert behaviour["evaluation"]["accuracy"] > 0.9
    (curve,) = behaviour["psychometric"]["curves"]
    assert curve["values"] == [-4.0, -2.0, -1.0, 1.0, 2.0, 4.0]
    assert curve["choices"][0] < 0.1 and curve["choices"][-1] > 0.9
    assert np.all(np.diff(curve["choices"]) >= -0.1)
    assert "learning curve" not in files.html.read_text() or "no metrics.jsonl" in files.html.read_text()


def test_psychometric_matches_a_plain_count():
    rng = np.random.default_rng(3)
    trials, steps = 400, 5
    coherence = rng.choice([-2.0, -1.0, 1.0, 2.0], size=trials)
    context = rng.integers(0, 2, size=trials)
    mask = np.zeros((trials, steps))
    mask[:, 3:] = 1
    outputs = rng.standard_normal((trials, steps, 1))
    batch = TrialBatch(np.zeros((trials, steps, 1)), np.zeros((trials, steps, 1)), mask,
                       {"coherence": coherence, "context": context})
    result = psychometric(outputs, batch)
    assert [(c.stimulus, c.group) for c in result.curves] == [("coherence", "context=0"), ("coherence", "context=1")]
    for curve, k in zip(result.curves, (0, 1), strict=True):
        for value, fraction, count in zip(curve.values, curve.choices, curve.trials, strict=True):
            rows = [i for i in range(trials) if coherence[i] == value and context[i] == k]
            plain = sum(1 for i in rows if outputs[i, 3:, 0].sum() / 2 > 0) / len(rows)
            assert fraction == pytest.approx(plain) and count == len(rows)


def test_comparison_side_by_side(trained_analysis, tmp_path):
    analysis, rendered = trained_analysis
    twin = dataclasses.replace(analysis, name="twin")
    files = write_comparison([analysis, twin], tmp_path / "cmp", rendered=[rendered, rendered])
    page = files.html.read_text()
    for sid in SECTION_IDS:
        block = page.split(f'<section id="{sid}"', 1)[1].split("</section>", 1)[0]
        assert block.count('class="run"') == 2
    assert {p.name for p in files.figures} >= {"rdm-psychometric.png", "twin-psychometric.svg"}
    with pytest.raises(RnnscopeError, match="at least 2 run"):
        compare([analysis.path], out=tmp_path / "one")
    result = _browse(files.html, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom")
    assert 'data-broken-images="0"' in result.stdout
    assert _console_errors(result.stderr) == []


@pytest.mark.filterwarnings("ignore:validation accuracy:rnnscope.errors.ConvergenceWarning")  # 1-2 epochs, on purpose
def test_demo_pipeline_small(tmp_path):
    """The demo's whole pipeline on tiny networks (the CLI's --quick and the benchmark run the same code)."""
    config = DemoConfig(rdm_size=32, mante_size=40, rdm_epochs=1, mante_epochs=1, train_trials=64, backend="torch",
                        report=ReportConfig.quick())
    result = demo(tmp_path, config=config, rng=0, progress=False)
    for name in ("rdm", "mante"):
        assert (tmp_path / name / "report.html").is_file()
        assert (result.runs[name] / "weights.safetensors").is_file()
    assert result.comparison.html == tmp_path / "comparison" / "report.html"
    assert set(result.populations) == {"rdm", "mante"}
    assert json.loads(json.dumps(result.to_dict()))["backends"] == {"rdm": "torch", "mante": "torch"}


@pytest.mark.slow
@pytest.mark.reference
def test_mante_4096_report_shows_population_finding(tmp_path):
    """The authors' N = 4096 context-dependent network (cues 0.5): one Gaussian fails, two populations succeed."""
    weights = io.load_reference(reference_path("mante_rank1_4096.pt"), noise_std=0.05)
    run = tmp_path / "mante4096"
    io.save_model_run(run, model_from_weights(weights), task_spec(make_task("mante", {"cue_amplitude": 0.5})),
                      {"seed": 0})
    config = ReportConfig(trials=400, analysis_trials=60, max_populations=2, restarts=2, resample_networks=6,
                          resample_trials=200, epairs_draws=20, epairs_neurons=500)
    report(run, out=tmp_path / "report", config=config, rng=0)
    pops = json.loads((tmp_path / "report" / "data" / "populations.json").read_text())
    one, two = (r["mean"] for r in pops["resampling"])
    assert one < 0.85 and two >= 0.9
    summary = json.loads((tmp_path / "report" / "data" / "summary.json").read_text())["summary"]
    assert "needs two populations" in summary
