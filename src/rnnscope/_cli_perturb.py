"""``rnnscope perturb``: silence, scale, clamp or pulse in an epoch or a window; accuracy intact against perturbed
(of one run, or of each run of a group with the aggregate)."""

from __future__ import annotations

import math

import click

from rnnscope._cli_common import allow_task_option, constant_inputs, emit_runs, json_option, seed_option
from rnnscope.errors import RnnscopeError

__all__ = ["perturb_command"]


def _window_ms(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise RnnscopeError(f"--window-ms: expected START,STOP in ms, got {text!r}")
    return values  # type: ignore[return-value]


def _neurons(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise RnnscopeError(f"--neurons: expected comma-separated neuron indices, got {text!r}") from None


def _clamp(pair: str) -> tuple[int, float]:
    key, _, value = pair.partition("=")
    try:
        r, value = int(key), float(value)
    except ValueError:
        r = value = None
    if r is None or r < 0 or not math.isfinite(value):
        raise RnnscopeError(f"--clamp-kappa: expected R=VALUE (R a latent index, VALUE finite), got {pair!r}")
    return r, value


@click.command("perturb")
@click.argument("run")
@allow_task_option
@click.option("--silence", is_flag=True, help="Silence the chosen neurons (their rates set to 0) in the window.")
@click.option("--gain", type=float, default=None, help="Multiply the chosen neurons' rates by G in the window.")
@click.option("--clamp-kappa", "clamps", multiple=True, metavar="R=VALUE",
              help="Hold kappa_R (x . m_R / |m_R|^2) at VALUE in the window (repeatable).")
@click.option("--pulse", "pulses", multiple=True, metavar="NAME=VALUE",
              help="Add VALUE to input NAME (through W_in, to every neuron) in the window (repeatable).")
@click.option("--neurons", default=None, metavar="I,J,...", help="The neurons to silence or scale, by index.")
@click.option("--population", type=int, default=None,
              help="The population to silence or scale (labels of 'rnnscope inactivate' for the same --seed).")
@click.option("--populations", type=int, default=2, show_default=True, help="Number of populations to fit.")
@click.option("--epoch", default=None, help="Act during this epoch of each trial (e.g. delay).")
@click.option("--window-ms", default=None, metavar="START,STOP",
              help="Act from START to STOP ms (from the epoch's onset with --epoch, else from the trial's start).")
@click.option("--trials", type=int, default=1000, show_default=True)
@seed_option
@json_option
def perturb_command(run, silence, gain, clamps, pulses, neurons, population, populations, epoch, window_ms, trials,
                    seed, as_json) -> None:
    """Perturb a trained network in time; accuracy and answers intact and perturbed on the same trials and noise."""
    from rnnscope import io
    from rnnscope.models import LowRankWeights, Perturbation
    from rnnscope.training import perturbation_effect

    if silence and gain is not None:
        raise RnnscopeError("--gain: give --silence or --gain G, not both")
    scaled = silence or gain is not None
    if not scaled and not clamps and not pulses:
        raise RnnscopeError("--silence: give what to do: --silence, --gain G, --clamp-kappa R=VALUE or --pulse NAME=VALUE")
    if neurons is not None and population is not None:
        raise RnnscopeError("--neurons: give --neurons or --population, not both")
    if scaled and neurons is None and population is None:
        raise RnnscopeError("--population: --silence and --gain need --population P or --neurons I,J,...")
    if not scaled and (neurons is not None or population is not None):
        raise RnnscopeError("--population: selects neurons for --silence or --gain only")
    if population is not None and not 0 <= population < populations:
        raise RnnscopeError(f"--population: must be in 0..{populations - 1}, got {population}")
    when = {"epoch": epoch, "window_ms": _window_ms(window_ms)}
    chosen = _neurons(neurons) if neurons is not None else None
    kappas = [_clamp(pair) for pair in clamps]

    def one(path: str) -> dict:
        loaded = io.load_run(path)
        weights = loaded.model.weights()
        selection: dict = {}
        if chosen is not None:
            selection = {"neurons": chosen}
        elif population is not None:
            from rnnscope.analysis import population_labels_of

            if not isinstance(weights, LowRankWeights):
                raise RnnscopeError(f"{path}: a full-rank network; --population needs a low-rank one (or give "
                                    f"--neurons)")
            labels, _ = population_labels_of(weights, populations, rng=seed, progress=False)
            selection = {"labels": labels, "population": population}
        perturbations = []
        if silence:
            perturbations.append(Perturbation("silence", **selection, **when))
        elif gain is not None:
            perturbations.append(Perturbation("scale_gain", value=gain, **selection, **when))
        for r, value in kappas:
            perturbations.append(Perturbation("clamp_kappa", kappa=r, value=value, **when))
        if pulses:
            try:
                values = constant_inputs(pulses, tuple(loaded.task.input_names))
            except RnnscopeError as exc:
                raise RnnscopeError(str(exc).replace("--input:", "--pulse:", 1)) from None
            perturbations.append(Perturbation.pulse(weights.w_in, values, **when))
        return perturbation_effect(loaded.model, loaded.task, tuple(perturbations), trials=trials, rng=seed).to_dict()

    def text(d):
        lines = [f"{p['kind']}: {', '.join(f'{k}={v}' for k, v in p.items() if k != 'kind')}" for p in d["perturbations"]]
        for name in ("intact", "perturbed"):
            part = d[name]
            answers = "; ".join(f"{o} " + " ".join(f"{s}:{f:.2f}" for s, f in a.items()) for o, a in part["answers"].items())
            lines.append(f"{name:9s} accuracy {part['accuracy']:.3f}  answers {answers}")
            lines += [f"  {c}: " + ", ".join(f"{v}={a:.2f}" for v, a in acc.items())
                      for c, acc in part["per_condition"].items()]
        lines.append(f"answer changed on {d['changed']:.1%} of {d['trials']} trials")
        return "\n".join(lines)

    emit_runs(run, one, as_json, text, lambda d: {"intact.accuracy": d["intact"]["accuracy"],
                                                  "perturbed.accuracy": d["perturbed"]["accuracy"],
                                                  "changed": d["changed"]})
