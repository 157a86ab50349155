"""The per-network analyses of a sweep: one flat row of JSON scalars per trained network.

Each analysis is the library's own public function, called as the matching command calls it with ``--seed rng``
(so a row can be checked against ``rnnscope evaluate|resample|epairs|minimal-rank|minimal-populations --json``):

| analysis | function (command) | columns |
|---|---|---|
| accuracy | ``rnnscope.training.evaluate`` (``evaluate``) | accuracy, accuracy_trials |
| resampled_accuracy | ``rnnscope.analysis.resample_network(populations=1)`` (``resample --populations 1``) | resampled_accuracy, resampled_trained_accuracy, resampled_networks, resampled_size, mixture_method |
| epairs_connectivity | ``rnnscope.analysis.connectivity_epairs`` (``epairs``) | epairs_connectivity_c, _p, _columns |
| epairs_selectivity | ``rnnscope.analysis.selectivity_epairs`` (``epairs --space selectivity``) | epairs_selectivity_c, _p, _columns |
| minimal_rank | ``rnnscope.training.minimal_rank`` (``minimal-rank``), full-rank networks only | minimal_rank, minimal_rank_full_accuracy, minimal_rank_max |
| minimal_populations | ``rnnscope.analysis.minimal_populations`` (``minimal-populations``), low-rank only | minimal_populations (None: no P up to the max), _max, _retrain, _accuracy (at that P, best of before/after retraining), _trained_accuracy |

An analysis that does not apply to the network (ePAIRS of a full-rank network, the minimal rank of a low-rank one)
fills its columns with None and says why in ``notes``; every row has every column of the analyses asked for, plus
``notes`` (None when there is nothing to say). A float that is not finite becomes None: rows never hold NaN.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnscope._validation import check_int, check_probability
from rnnscope.errors import RnnscopeError

__all__ = ["ANALYSES", "ANALYSIS_OPTIONS", "check_analyses", "check_analysis_options", "analyse_network"]

ANALYSES: tuple[str, ...] = (
    "accuracy", "resampled_accuracy", "epairs_connectivity", "epairs_selectivity", "minimal_rank",
    "minimal_populations",
)

# name: (default, kind, what it sets). kinds: "count" int >= 1, "size" int >= 1 or None, "probability" float in
# [0, 1], "flag" bool, "choice" one of _CHOICES[name].
ANALYSIS_OPTIONS: dict[str, tuple[Any, str, str]] = {
    "trials": (500, "count", "fresh trials of every analysis (test trials; regressions of epairs_selectivity)"),
    "networks": (20, "count", "networks drawn per resampling (resampled_accuracy, each P of minimal_populations)"),
    "size": (None, "size", "neurons of each resampled network (default: the trained network's)"),
    "draws": (500, "count", "Gaussian null clouds of each ePAIRS test"),
    "zero_mean": (False, "flag", "resample with zero-mean populations (the paper's convention)"),
    "method": ("bayes", "choice", "mixture fit that labels the neurons (bayes: the paper's; em)"),
    "epairs_procedure": ("whitened", "choice", "ePAIRS null clouds: whitened like the data (unbiased c), or the "
                                               "paper's (not whitened: c lower by 0.01-0.03 in 3-6 dimensions)"),
    "tolerance": (0.05, "probability", "accuracy gap a resampling may leave (resampled_accuracy advice, "
                                       "minimal_populations)"),
    "max_populations": (4, "count", "largest P tried by minimal_populations"),
    "min_populations": (1, "count", "first P tried by minimal_populations"),
    "retrain": (False, "flag", "minimal_populations also retrains each population model"),
    "retrain_epochs": (1000, "count", "retraining steps of each population model"),  # analysis.RETRAIN_EPOCHS
    "retrain_networks": (1, "count", "networks drawn at each retraining step"),
    "max_rank": (5, "count", "minimal_rank tries ranks 1..max_rank"),
    "rank_epochs": (30, "count", "most retraining epochs per rank (minimal_rank)"),
    "rank_tolerance": (0.02, "probability", "a rank suffices within this much of the full network (minimal_rank)"),
    "whole_j": (False, "flag", "minimal_rank truncates J itself, not J - J0 (imported networks)"),
}
_CHOICES: dict[str, tuple[str, ...]] = {"method": ("bayes", "em"), "epairs_procedure": ("whitened", "paper")}

_COLUMNS: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy", "accuracy_trials"),
    "resampled_accuracy": ("resampled_accuracy", "resampled_trained_accuracy", "resampled_networks", "resampled_size",
                           "mixture_method"),
    "epairs_connectivity": ("epairs_connectivity_c", "epairs_connectivity_p", "epairs_connectivity_columns"),
    "epairs_selectivity": ("epairs_selectivity_c", "epairs_selectivity_p", "epairs_selectivity_columns"),
    "minimal_rank": ("minimal_rank", "minimal_rank_full_accuracy", "minimal_rank_max"),
    "minimal_populations": ("minimal_populations", "minimal_populations_max", "minimal_populations_retrain",
                            "minimal_populations_accuracy", "minimal_populations_trained_accuracy"),
}


def check_analyses(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple without repeats, in the order given; an unknown name or a non-string is an error naming
    it and the known ones."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise RnnscopeError(f"analyses: expected a list of names from {', '.join(ANALYSES)}, got {names!r}")
    for name in names:
        if name not in ANALYSES:
            raise RnnscopeError(f"analyses: unknown analysis {name!r}; known: {', '.join(ANALYSES)}")
    return tuple(dict.fromkeys(names))


def check_analysis_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every option of ``ANALYSIS_OPTIONS``: the defaults, overridden by ``options`` after validation (an unknown
    name or a bad value is a one-line error naming the option)."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise RnnscopeError(f"analysis_options: expected a mapping, got {type(options).__name__}")
    out = {name: default for name, (default, _, _) in ANALYSIS_OPTIONS.items()}
    for name, value in options.items():
        if name not in ANALYSIS_OPTIONS:
            raise RnnscopeError(f"analysis_options.{name}: unknown option; known: {', '.join(ANALYSIS_OPTIONS)}")
        kind = ANALYSIS_OPTIONS[name][1]
        field = f"analysis_options.{name}"
        if kind == "count":
            out[name] = check_int(value, field, minimum=1)
        elif kind == "size":
            out[name] = None if value is None else check_int(value, field, minimum=1)
        elif kind == "probability":
            out[name] = check_probability(value, field)
        elif kind == "flag":
            if not isinstance(value, bool):
                raise RnnscopeError(f"{field}: expected true or false, got {value!r}")
            out[name] = value
        else:  # choice
            if value not in _CHOICES[name]:
                raise RnnscopeError(f"{field}: expected one of {', '.join(map(repr, _CHOICES[name]))}, got {value!r}")
            out[name] = value
    if out["min_populations"] > out["max_populations"]:
        raise RnnscopeError(f"analysis_options.min_populations: {out['min_populations']} is above max_populations "
                            f"{out['max_populations']}")
    return out


def _scalar(value: Any) -> Any:
    """A JSON scalar: numpy numbers become Python ones, non-finite floats None."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _accuracy(run, options, seed):
    from rnnscope.training import evaluate

    result = evaluate(run.model, run.task, trials=options["trials"], rng=seed)
    return {"accuracy": result.accuracy, "accuracy_trials": result.trials}


def _resampled(run, weights, options, seed):
    from rnnscope.analysis import resample_network

    result = resample_network(weights, run.task, populations=1, rng=seed, networks=options["networks"],
                              size=options["size"], trials=options["trials"], zero_mean=options["zero_mean"],
                              method=options["method"], tolerance=options["tolerance"], progress=False)
    return {"resampled_accuracy": result.mean, "resampled_trained_accuracy": result.trained_accuracy,
            "resampled_networks": len(result.accuracy), "resampled_size": result.size,
            "mixture_method": result.method}


def _epairs(space: str) -> Callable:
    def analysis(run, weights, options, seed):
        from rnnscope.analysis import connectivity_epairs, selectivity_epairs

        if space == "connectivity":
            result = connectivity_epairs(weights, rng=seed, draws=options["draws"],
                                         procedure=options["epairs_procedure"])
        else:
            result = selectivity_epairs(weights, run.task, rng=seed, draws=options["draws"], trials=options["trials"],
                                        procedure=options["epairs_procedure"])
        return {f"epairs_{space}_c": result.c, f"epairs_{space}_p": result.p_value,
                f"epairs_{space}_columns": ",".join(result.columns)}

    return analysis


def _minimal_populations(run, weights, options, seed):
    from rnnscope._validation import as_generator
    from rnnscope.analysis import minimal_populations

    rng = as_generator(seed)  # as the command: the test trials first, then the rest from the same generator
    batch = run.task.sample(options["trials"], rng=rng)
    result = minimal_populations(
        weights, batch, rng=rng, max_populations=options["max_populations"],
        min_populations=options["min_populations"], networks=options["networks"], size=options["size"],
        tolerance=options["tolerance"], zero_mean=options["zero_mean"], method=options["method"],
        retrain=options["retrain"], task=run.task, retrain_epochs=options["retrain_epochs"],
        retrain_networks=options["retrain_networks"], progress=False)
    found = result.to_dict()
    accuracy = None
    if result.populations is not None:  # the chosen P's mean resampled accuracy, before or after retraining
        index = result.populations - 1  # the per-P lists start at P = 1
        reached = [a for a in (found["mean_accuracy"][index], found["mean_retrained_accuracy"][index]) if a is not None]
        accuracy = max(reached) if reached else None
    return {"minimal_populations": result.populations, "minimal_populations_max": options["max_populations"],
            "minimal_populations_retrain": options["retrain"], "minimal_populations_accuracy": accuracy,
            "minimal_populations_trained_accuracy": result.trained_accuracy}


def _minimal_rank(run, options, seed):
    from rnnscope.training import minimal_rank

    result = minimal_rank(run, max_rank=options["max_rank"], epochs=options["rank_epochs"],
                          truncate_delta=not options["whole_j"], trials=options["trials"],
                          tolerance=options["rank_tolerance"], rng=seed, progress=False)
    return {"minimal_rank": result.needed, "minimal_rank_full_accuracy": result.full_accuracy,
            "minimal_rank_max": options["max_rank"]}


def _seed(rng: Any) -> int:
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63 - 1))
    return check_int(rng, "rng", minimum=0, maximum=2**63 - 1)


def analyse_network(
    run_dir: str | Path, analyses: Sequence[str], *, rng: int, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One flat row (column -> float, int, str, bool or None; never NaN) of ``analyses`` on the network of
    ``run_dir``. Every analysis draws from ``rng`` as its command does with ``--seed rng`` (an int; a Generator gives
    one int first), so the row is a function of the network, ``rng`` and ``options`` (``ANALYSIS_OPTIONS``: name ->
    (default, kind, meaning)). Columns: see the module's table; plus ``notes``."""
    from rnnscope import io
    from rnnscope.models import FullRankWeights, LowRankWeights

    names = check_analyses(analyses)
    options = check_analysis_options(options)
    seed = _seed(rng)
    run = io.load_run(run_dir)
    weights = run.model.weights()
    low_rank = isinstance(weights, LowRankWeights)
    full_rank = isinstance(weights, FullRankWeights)
    kind = "full-rank" if full_rank else "low-rank" if low_rank else type(weights).__name__
    row: dict[str, Any] = {}
    notes: list[str] = []
    for name in names:
        if name == "accuracy":
            values = _accuracy(run, options, seed)
        elif name == "minimal_rank":
            values = _minimal_rank(run, options, seed) if full_rank else None
            if values is None:
                notes.append(f"minimal_rank: needs a full-rank network, this one is {kind}")
        elif not low_rank:
            values = None
            notes.append(f"{name}: needs a low-rank network, this one is {kind}")
        elif name == "resampled_accuracy":
            values = _resampled(run, weights, options, seed)
        elif name == "epairs_connectivity":
            values = _epairs("connectivity")(run, weights, options, seed)
        elif name == "epairs_selectivity":
            values = _epairs("selectivity")(run, weights, options, seed)
        else:
            values = _minimal_populations(run, weights, options, seed)
        for column in _COLUMNS[name]:
            row[column] = None if values is None else _scalar(values[column])
    row["notes"] = "; ".join(notes) if notes else None
    return row
