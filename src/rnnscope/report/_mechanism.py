"""The report's summary, generated from what the analysis measured: how the network was made (trained, imported,
designed), its rank and task family, fixed points whose classes add up, which inputs drive which latent
direction, which population carries which input in which context, and the population tests. Nothing is claimed
that was not measured. Also the number formats shared with the command line."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnscope.report._behaviour import value_name

__all__ = ["describe_mechanism", "format_p_value", "rounded", "provenance", "TASK_FAMILIES", "fixed_point_counts"]

# what kind of computation each built-in task asks for
TASK_FAMILIES = {
    "rdm": "evidence integration (perceptual decision)",
    "raposo": "multisensory evidence integration",
    "mante": "context-dependent evidence integration",
    "romo": "parametric working memory (compare f1 with f2)",
    "dms": "working memory (delayed match-to-sample)",
}
CLASSES = ("stable", "saddle", "source", "marginal")
SMALLEST_P = 1e-300


def format_p_value(p: float) -> str:
    """``"p = 0.043"``, ``"p = 2e-50"``, ``"p < 1e-300"`` (never ``"p = 0"``); ``"p = n/a"`` when not finite."""
    p = float(p)
    if not np.isfinite(p):
        return "p = n/a"
    if p < SMALLEST_P:
        return f"p < {SMALLEST_P:g}"
    return f"p = {p:.2g}"


def rounded(value: Any, digits: int = 3) -> Any:
    """Numbers (also in nested lists, tuples and dicts) rounded to ``digits`` significant digits for people."""
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    if isinstance(value, (bool, np.bool_)) or value is None:
        return value
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if not np.isfinite(v) or v == 0 else float(f"{v:.{digits}g}")
    if isinstance(value, np.integer):
        return int(value)
    return value


def provenance(config: dict[str, Any], task_name: str) -> tuple[str, str]:
    """(kind, phrase): kind is "designed", "imported" or "trained" (or "unknown"), read from the run's config
    (``design``, ``source``, ``training``); phrase says it in words."""
    design, source, training = config.get("design"), config.get("source"), config.get("training")
    if isinstance(design, dict):
        spec = design.get("spec") or {}
        name = spec.get("name") or "an unnamed specification"
        phrase = f"designed by hand from the specification {name!r}, not trained"
        if design.get("task_is_placeholder"):
            phrase += (f"; the specification names no task, so it is run on the one-input {task_name} placeholder and "
                       "its accuracy says nothing about what it was designed for")
        else:
            phrase += f", run on {task_name}"
        return "designed", phrase
    if source:
        where = source.get("file") if isinstance(source, dict) else str(source)
        kind = f"{source.get('kind')} " if isinstance(source, dict) and source.get("kind") else ""
        return "imported", f"imported from the {kind}file {_file_name(where)!r}, not trained here, run on {task_name}"
    if isinstance(training, dict):
        epochs = training.get("epochs")
        return "trained", f"trained on {task_name}" + (f" (at most {epochs} epoch{'s' if epochs != 1 else ''})" if epochs else "")
    return "unknown", f"of unknown origin (no design, source or training in its config), run on {task_name}"


def _file_name(where: Any) -> str:
    """The last part of a path, whatever the platform wrote."""
    return str(where).replace("\\", "/").rsplit("/", 1)[-1]


def fixed_point_counts(points: Any) -> dict[str, int]:
    """{class: count} over ``CLASSES`` for a ``FixedPoints`` (counts add up to ``len(points)``)."""
    classes = [str(s) for s in points.stability]
    return {c: classes.count(c) for c in CLASSES}


def _vector(k: np.ndarray) -> str:
    k = np.asarray(k, dtype=float)
    return f"{k[0]:+.2f}" if k.size == 1 else "(" + ", ".join(f"{v:+.2f}" for v in k) + ")"


def _fixed_points(result: Any, rank: int) -> str:
    points = result.fixed_points
    counts = fixed_point_counts(points)
    total = len(points.stability)
    if total == 0:
        text = "no fixed point was found without input"
    else:
        parts = [f"{v} {c}" for c, v in counts.items() if v]
        text = f"{total} fixed point{'s' if total != 1 else ''} without input ({', '.join(parts)})"
        kappa = np.asarray(points.kappa, dtype=float)
        stable = [k for k, c in zip(kappa, points.stability, strict=True) if str(c) == "stable"]
        if 0 < len(stable) <= 4:
            text += "; stable at kappa = " + ", ".join(_vector(k) for k in stable)
        if counts["stable"] == 1 and np.linalg.norm(stable[0]) < 1e-3:
            text += ": monostable, the activity relaxes to the origin without input"
        elif counts["stable"] == 2 and all(np.linalg.norm(k) > 1e-3 for k in stable):
            text += ": bistable, two attractors that can hold a binary choice"
        elif counts["stable"] == 0 and not (result.ring or result.limit_cycle):
            text += ": no attractor, the activity keeps moving or decays along a marginal direction"
    if result.ring:
        text += "; a ring of slow points (a continuous attractor) was found"
    if result.limit_cycle:
        period = float(result.period)
        text += "; the activity settles on a limit cycle" + (f" of period {period:.1f} tau" if np.isfinite(period) else "")
    return text + "."


def _input_drive(summary: Any, names: list[str]) -> str:
    inputs = np.asarray(summary.input_overlaps, dtype=float)  # (rank, inputs)
    largest = float(np.abs(inputs).max()) if inputs.size else 0.0
    if largest < 1e-3:
        return "No input overlaps a latent direction (every n_r.w_in/N below 0.001): inputs act only directly."
    parts = []
    for r in range(inputs.shape[0]):
        strong = [i for i in np.argsort(-np.abs(inputs[r])) if abs(inputs[r, i]) >= 0.3 * largest and abs(inputs[r, i]) >= 1e-3]
        direction = "kappa" if inputs.shape[0] == 1 else f"kappa_{r + 1}"
        if strong:
            parts.append(f"{direction} is driven by " + ", ".join(f"{names[i]} ({inputs[r, i]:+.2f})" for i in strong))
        else:
            parts.append(f"{direction} is driven by no input (all below {0.3 * largest:.2f})")
    return "Input overlaps n.w_in/N: " + "; ".join(parts) + "."


def _by_context(analysis: Any, names: list[str]) -> str:
    latent = analysis.latent
    groups = [g for g in getattr(latent, "by_condition", ()) if g.condition in ("context", "modality")]
    if not groups:
        return ""
    group = groups[0]
    if not all("stimulus" in e for e in group.per_group):
        return ""
    shown = [i for i, n in enumerate(names) if not n.endswith("_cue")] or list(range(len(names)))
    per = np.stack([np.linalg.norm(np.asarray(e["stimulus"].input_overlaps, dtype=float), axis=0) for e in group.per_group])
    parts = [f"{name} context: " + ", ".join(f"{names[i]} {per[g, i]:.2f}" for i in shown)
             for g, name in enumerate(group.names)]
    sub = per[:, shown]
    spread = float(np.max(sub.max(axis=0) - sub.min(axis=0)))
    verdict = ("the context changes which input reaches the latent variables through the neurons' gain"
               if spread > 0.5 * max(float(sub.max()), 1e-9) else "the inputs reach the latent variables alike in every context")
    return f"Effective input overlaps |n.phi'.w_in|/N during the stimulus, {'; '.join(parts)}: {verdict}."


def _gating(gating: Any) -> str:
    if gating is None:
        return ""
    found = gating.carriers()
    where = "its design's" if gating.source == "design" else "a two-population fit's"
    if not found:
        return (f"Split by {where} populations, no population carries a relevant input in one {gating.condition} "
                "and loses it in the others.")
    parts = [f"{gating.populations[p]} carries {name} in the {gating.names[g]} {gating.condition} "
             f"({here:.2f}, at most {other:.2f} elsewhere)" for p, g, name, here, other in found]
    return f"Split by {where} populations: " + "; ".join(parts) + " (gain modulation by the context cues)."


def _populations(pops: Any) -> str:
    if pops is None or not pops.resampling:
        return ""
    accs = {r.populations: r.mean for r in pops.resampling}
    trained = pops.resampling[0].trained_accuracy
    one = accs.get(1)
    text = f"Networks resampled from one Gaussian reach {one:.2f}"
    if 2 in accs:
        text += f", from two populations {accs[2]:.2f}"
    text += f" (this network {trained:.2f}): "
    tolerance = 0.1  # the paper's criterion: resampled networks within 10 points of the trained one
    if trained < 0.6:
        text += "the network is near chance, so resampling says little."
    elif one is not None and one >= trained - tolerance:
        text += "one Gaussian population suffices."
    elif 2 in accs and accs[2] >= trained - tolerance:
        text += "the computation needs two populations."
    elif 2 in accs and accs[2] > one + 0.1:
        text += "population structure matters, but two populations recover only part of the accuracy."
    else:
        text += "neither model recovers the accuracy at this size."
    if pops.fit is not None:
        text += f" BIC prefers {pops.fit.chosen} population{'s' if pops.fit.chosen > 1 else ''}"
        if pops.epairs is not None:
            text += (f"; ePAIRS {format_p_value(pops.epairs.p_value)} "
                     f"({'non-random clustering of' if pops.epairs.significant else 'no clustering detected in'}"
                     " the loadings)")
        text += "."
    return text


def _behaviour(analysis: Any) -> str:
    ev = analysis.evaluation
    text = f"Accuracy {ev.accuracy:.2f} on {ev.trials} fresh trials"
    for table in getattr(analysis, "tables", ()):
        if table.shows == "accuracy":
            cells = [f"{table.rows} {a}/{table.columns} {b} {table.accuracy[i, j]:.2f}"
                     for i, a in enumerate(table.row_names) for j, b in enumerate(table.column_names)
                     if np.isfinite(table.accuracy[i, j])]
            text += " (" + ", ".join(cells) + ")"
    per = ev.per_condition
    for name in ("context", "modality"):
        if name in per and len(per[name]) > 1:
            text += "; per " + name + ": " + ", ".join(
                f"{value_name(analysis.task, name, v)} {a:.2f}" for v, a in per[name].items())
    return text + "."


def describe_mechanism(analysis: Any) -> str:
    """A few sentences on what the network is and does, generated from ``analysis`` (a ``RunAnalysis``)."""
    model = analysis.config.get("model", {})
    task_name = analysis.config.get("task", {}).get("name", analysis.task.name)
    weights = getattr(analysis, "weights", None)
    rank = weights.rank if weights is not None else model.get("rank")
    size = weights.size if weights is not None else model.get("size", "?")
    kind = f"rank-{rank}" if rank else "full-rank"
    _, made = provenance(analysis.config, task_name)
    family = TASK_FAMILIES.get(task_name)
    description = getattr(analysis.task, "description", "") or task_name
    sentences = [f"A {kind} network of {size} neurons, {made}. {task_name} is "
                 + (f"{family}: {description}." if family else f"{description}.")]
    sentences.append(_behaviour(analysis))
    latent = analysis.latent
    if latent is not None:
        summary = latent.analysis.summary
        over = np.asarray(summary.overlaps, dtype=float)
        if over.shape[0] == 1:
            sentences.append(f"Overlap n.m/N = {over[0, 0]:.2f} ({'above' if over[0, 0] > 1 else 'below'} 1: the "
                             f"origin is {'stable' if summary.origin.stable else 'unstable'}).")
        else:
            eig = np.linalg.eigvals(over)
            sentences.append("Eigenvalues of the overlap matrix n_i.m_j/N: " + ", ".join(
                f"{v.real:.2f}" + (f"{v.imag:+.2f}i" if abs(v.imag) > 1e-6 else "") for v in eig)
                + f" (the origin is {'stable' if summary.origin.stable else 'unstable'}).")
        sentences.append(_fixed_points(summary.fixed_points, over.shape[0])[0].upper()
                         + _fixed_points(summary.fixed_points, over.shape[0])[1:])
        names = list(analysis.task.input_names)
        sentences.append(_input_drive(summary, names))
        sentences.append(_by_context(analysis, names))
        sentences.append(_gating(getattr(analysis, "gating", None)))
        sentences.append(f"span(m, w_in) holds {latent.analysis.projection.variance_explained:.0%} of the activity's "
                         "variance.")
    sentences.append(_populations(analysis.populations))
    return " ".join(s for s in sentences if s)
