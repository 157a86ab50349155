"""The training loss (masked mean squared error) in PyTorch: a thin wrapper over the one definition in
``rnnscope._loss``."""

from __future__ import annotations

import torch

from rnnscope._loss import masked_mse

__all__ = ["masked_mse_loss"]


def masked_mse_loss(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """outputs, targets: (..., trials, time, outputs); mask: (..., trials, time). Returns a scalar tensor.

    Per trial: the mean over its masked steps of the mean over outputs of the squared error (0 for a trial whose
    mask is all zero); then the mean over all trials (and over any leading axes). Trials with different numbers of
    masked steps weigh the same.
    """
    return masked_mse(outputs, targets, mask)
