"""Every error and warning class rnnscope raises, in one module."""

from __future__ import annotations

__all__ = ["RnnscopeError", "NotFittedError", "RnnscopeWarning", "ConvergenceWarning"]


class RnnscopeError(ValueError):
    """Bad input: the message names the field or file and the bad value."""


class NotFittedError(RnnscopeError):
    """An estimator was used before ``fit``."""


class RnnscopeWarning(UserWarning):
    """Base class of rnnscope's warnings."""


class ConvergenceWarning(RnnscopeWarning):
    """An optimisation (training, mixture fit, fixed-point search) did not converge."""
