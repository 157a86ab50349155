"""Rate networks and how they run: low-rank and full-rank networks, their weights as NumPy snapshots, the cell
interface and the one PyTorch time loop, the fused CPU kernels (numba), and :func:`simulate`, which runs one
network or a stack on whichever backend :func:`choose_backend` picks.

The cell interface (:class:`Cell`, shapes in ``rnnscope.models._core``): ``state_size``, ``inputs``, ``outputs``,
``noise_size``, ``initial_state(batch) -> (*batch, state_size)``, ``forcing(inputs, noise)`` (the
state-independent part of every step, all steps at once), ``step(state, forcing_t) -> state``,
``readout(state) -> (..., outputs)``, ``arrays() -> {name: np.ndarray}``. Rate networks implement it; so can a
gated cell, and :func:`run` drives any of them.

``DEFAULT_ALPHA = 0.2`` is the Euler step ``dt / tau`` (20 ms / 100 ms) every rate network uses by default.
"""

from rnnscope.models._core import DEFAULT_ALPHA, Cell, draw_noise, input_drive, integrate, run
from rnnscope.models._fast import (
    FusedTrainStep,
    fast_loss,
    fast_loss_and_grad,
    fast_loss_and_grads_ensemble,
    fast_loss_ensemble,
    fast_noise,
    fast_outputs,
    fast_path_supported,
    fast_trajectories,
    stack_parameters,
    warm_up,
)
from rnnscope.models._rate import (
    FullRankRNN,
    LowRankRNN,
    ModelConfig,
    RateRNN,
    build_model,
    model_from_weights,
    truncate,
)
from rnnscope.models._simulate import BACKENDS, Simulation, choose_backend, simulate
from rnnscope.models._weights import FullRankWeights, LowRankBatch, LowRankWeights, RateWeights, stack_weights

__all__ = [
    "DEFAULT_ALPHA",
    "ModelConfig",
    "Cell",
    "RateRNN",
    "LowRankRNN",
    "FullRankRNN",
    "LowRankWeights",
    "FullRankWeights",
    "RateWeights",
    "LowRankBatch",
    "stack_weights",
    "build_model",
    "model_from_weights",
    "truncate",
    "BACKENDS",
    "choose_backend",
    "Simulation",
    "simulate",
    "run",
    "integrate",
    "input_drive",
    "draw_noise",
    "fast_loss",
    "fast_loss_ensemble",
    "fast_loss_and_grad",
    "fast_loss_and_grads_ensemble",
    "FusedTrainStep",
    "fast_noise",
    "fast_outputs",
    "fast_trajectories",
    "fast_path_supported",
    "stack_parameters",
    "warm_up",
]

# Gated and vanilla cells (universality sweep; appended by the cells/sweep engineer)
from rnnscope.models._gated import ACTIVATIONS, CELLS, GatedConfig, GatedRNN  # noqa: E402

__all__ += ["CELLS", "ACTIVATIONS", "GatedConfig", "GatedRNN"]

# Perturbations in time (silence, gain, clamp of kappa, pulses in an epoch or window; issue 13)
from rnnscope.models._perturb import KINDS as PERTURBATION_KINDS  # noqa: E402
from rnnscope.models._perturb import Perturbation  # noqa: E402

__all__ += ["Perturbation", "PERTURBATION_KINDS"]
