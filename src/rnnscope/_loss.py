"""The one definition of the training loss (masked mean squared error), for NumPy arrays and torch tensors alike.

Per trial: the mean over its masked steps of the mean over outputs of the squared error, each step weighted by
its mask value; a trial whose mask is all zero contributes 0 (no NaN, no gradient); then the mean over ALL trials,
empty ones included, so the loss and its gradients stay linear in the trials (a batch split in halves gives the
mean of the halves' losses)::

    L = mean_b [ sum_t mask[b, t] * mean_o (outputs[b, t, o] - targets[b, t, o])^2 / max(sum_t mask[b, t], [= 0]) ]

Written once with operations NumPy and torch share; the fused kernels (``rnnscope.models``) compute the same sum
with the per-trial weights of :func:`trial_weights`. ``rnnscope.tasks.masked_mse`` (NumPy, on a TrialBatch) and
``rnnscope.training.masked_mse_loss`` (torch) are thin wrappers over :func:`masked_mse`.
"""

from __future__ import annotations

from typing import TypeVar

Array = TypeVar("Array")  # a numpy.ndarray or a torch.Tensor: both support every operation used here

__all__ = ["masked_mse_per_trial", "masked_mse", "trial_weights"]


def masked_mse_per_trial(outputs: Array, targets: Array, mask: Array) -> Array:
    """Each trial's loss. outputs, targets: (..., trials, time, outputs); mask: (..., trials, time).
    Returns (..., trials): 0 for a trial whose mask is all zero."""
    err = ((outputs - targets) ** 2).mean(-1)
    counts = mask.sum(-1)
    return (err * mask).sum(-1) / (counts + (counts == 0))


def masked_mse(outputs: Array, targets: Array, mask: Array) -> Array:
    """The loss: the mean over all trials (and any leading axes) of :func:`masked_mse_per_trial`; a 0-d array or
    scalar tensor (differentiable for tensors)."""
    return masked_mse_per_trial(outputs, targets, mask).mean()


def trial_weights(mask: Array) -> Array:
    """The factor of each trial's masked sum of squared errors in the loss: mask (..., trials, time) ->
    (..., trials), ``1 / (trials * sum_t mask)``, 0 for an all-zero mask (what the kernels multiply by)."""
    counts = mask.sum(-1)
    return (counts != 0) / (mask.shape[-2] * (counts + (counts == 0)))
