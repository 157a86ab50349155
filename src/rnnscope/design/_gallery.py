"""The gallery: ready specifications shipped with the package (``rnnscope/design/gallery/*.json``)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from rnnscope._validation import check_int, check_positive
from rnnscope.design._spec import DesignSpec, load_spec, spec_from_dict
from rnnscope.errors import RnnscopeError

__all__ = ["GALLERY_DIR", "gallery_names", "list_gallery", "load_gallery", "resolve_spec", "associative_memory_spec"]

GALLERY_DIR = Path(__file__).resolve().parent / "gallery"


def gallery_names() -> tuple[str, ...]:
    """Names of the shipped specifications, sorted."""
    return tuple(sorted(p.stem for p in GALLERY_DIR.glob("*.json")))


def load_gallery(name: str) -> DesignSpec:
    """The gallery specification called ``name``."""
    names = gallery_names()
    if name not in names:
        raise RnnscopeError(f"name: {name!r} is not in the design gallery (known: {', '.join(names)})")
    return load_spec(GALLERY_DIR / f"{name}.json")


def resolve_spec(spec: str | Path | DesignSpec) -> DesignSpec:
    """A DesignSpec from itself, a gallery name, or a path to a JSON/YAML file (what the CLI's SPEC|NAME means)."""
    if isinstance(spec, DesignSpec):
        return spec
    text = str(spec)
    if text in gallery_names():
        return load_gallery(text)
    path = Path(text)
    if path.exists():
        return load_spec(path)
    raise RnnscopeError(f"spec: {text!r} is neither a file nor a gallery name (gallery: {', '.join(gallery_names())})")


def list_gallery() -> list[dict[str, Any]]:
    """One JSON-ready entry per gallery specification: name, description, reference, rank, inputs, outputs,
    populations, task (or None) and the claimed behaviour."""
    out = []
    for name in gallery_names():
        spec = load_gallery(name)
        out.append({
            "name": name, "description": spec.description, "reference": spec.reference, "rank": spec.rank,
            "inputs": spec.inputs, "outputs": spec.outputs, "populations": len(spec.populations),
            "task": None if spec.task is None else spec.task.to_dict(), "free": list(spec.free),
            "claims": spec.to_dict().get("claims", {}),
        })
    return out


def associative_memory_spec(patterns: int = 3, *, gain: float = 2.0, name: str | None = None) -> DesignSpec:
    """A Hopfield (1982) memory of ``patterns`` random binary patterns as a specification.

    ``J = gain * sum_mu r^mu r^mu^T / size`` is the rank-P network with ``n = r`` and ``m = gain * r``
    (r: (size, patterns) of +-1). Each of the 2^P sign combinations is one population (fraction 2^-P, zero
    covariance), so the sampler draws balanced patterns; the readout is ``w_out = m[0]``. gain > 1 makes each
    pattern a stable state (``k = tanh(gain k)``, k = 0.96 for gain 2).
    """
    patterns = check_int(patterns, "patterns", minimum=1, maximum=8)
    gain = check_positive(gain, "gain")
    populations = []
    for signs in itertools.product((1.0, -1.0), repeat=patterns):
        means = {f"n[{k}]": s for k, s in enumerate(signs)}
        means.update({f"m[{k}]": gain * s for k, s in enumerate(signs)})
        means["w_out[0]"] = gain * signs[0]
        populations.append({"name": "".join("+" if s > 0 else "-" for s in signs), "fraction": 2.0**-patterns,
                            "means": means, "covariance": {}})
    data = {
        "name": name or f"associative_memory_{patterns}",
        "description": f"Hopfield associative memory of {patterns} binary patterns, J = {gain:g} sum_mu r^mu r^mu^T / N: "
                       "each pattern is a stable state retrieved from a corrupted cue",
        "reference": "Hopfield 1982",
        "rank": patterns, "inputs": 1, "outputs": 1, "noise_std": 0.0,
        "populations": populations,
        "claims": {"retrieval": {"patterns": patterns, "flip": 0.2, "size": 1000}},
    }
    return spec_from_dict(data, source=data["name"])


def stored_patterns(weights: Any) -> np.ndarray:
    """(size, patterns) the +-1 patterns of a network built from :func:`associative_memory_spec` (sign of n)."""
    n = np.asarray(getattr(weights, "n", None), dtype=float)
    if n.ndim != 2:
        raise RnnscopeError("weights: expected LowRankWeights with n (size, rank)")
    return np.sign(n)


__all__.append("stored_patterns")
