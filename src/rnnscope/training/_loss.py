"""The training loss (masked mean squared error) in PyTorch."""

from __future__ import annotations

import torch

__all__ = ["masked_mse_loss"]


def masked_mse_loss(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """outputs, targets: (..., trials, time, outputs); mask: (..., trials, time).

    Per trial: the mean over its masked steps of the mean over outputs of the squared error; then the mean over
    trials (and over any leading axes). Trials with different numbers of masked steps weigh the same.
    """
    err = (outputs - targets).pow(2).mean(dim=-1)
    per_trial = (err * mask).sum(dim=-1) / mask.sum(dim=-1)
    return per_trial.mean()
