"""What rank does a network need: truncated-SVD versions of full-rank networks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import reference_path, shipped_run

from rnnscope.analysis import truncation_accuracy
from rnnscope.cli import main
from rnnscope.errors import RnnscopeError
from rnnscope.io import load_reference, load_run
from rnnscope.models import FullRankWeights
from rnnscope.tasks import make_task


def test_a_rank_one_network_written_in_full_needs_rank_one() -> None:
    low = load_run(shipped_run("rdm_rank1_128")).model.weights()  # trained by rnnscope
    full = FullRankWeights(J=low.connectivity(), w_in=low.w_in, w_out=low.w_out / low.size, h0=low.h0,
                           noise_std=low.noise_std)
    result = truncation_accuracy(full, make_task("rdm"), ranks=(1, 2), trials=300, rng=0)
    assert result.full_accuracy >= 0.98
    np.testing.assert_allclose(result.accuracy, result.full_accuracy, atol=0.01)
    assert result.needed == 1 and result.singular_values[1] < 1e-6 * result.singular_values[0]


@pytest.mark.reference
def test_the_trained_full_rank_network_needs_many_ranks() -> None:
    """mante_fr_fig1's J carries its random initial bulk: a few dominant ranks of J alone do not solve the task,
    while the full rank does (and equals the full network exactly on the same noise)."""
    full = load_reference(reference_path("mante_fr_fig1.pt"))
    result = truncation_accuracy(full, make_task("mante"), ranks=(2, 512), trials=300, rng=0)
    assert result.accuracy[0] < 0.8 and result.accuracy[1] == pytest.approx(result.full_accuracy, abs=0.01)
    with pytest.raises(RnnscopeError, match="full-rank"):
        truncation_accuracy(load_reference(reference_path("rdm_lr_fig2.pt")), make_task("rdm"), rng=0)


def test_truncate_command(tmp_path, capsys) -> None:
    """On the shipped full-rank random-dots network (N = 64, trained by rnnscope): rank 1 suffices."""
    run = str(tmp_path / "fr")
    shutil.copytree(shipped_run("rdm_full_64"), run)
    capsys.readouterr()
    assert main(["truncate", run, "--ranks", "1,3", "--trials", "100", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ranks"] == [1, 3] and len(result["accuracy"]) == 2
    assert result["full_accuracy"] >= 0.98 and result["needed"] == 1  # measured: 1.0 at full rank and at rank 1
    assert main(["truncate", run, "--ranks", "a,b"]) == 2
