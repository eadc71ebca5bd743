"""The small pure functions every reward and adaptation module shares."""

from __future__ import annotations

import numpy as np


def pair_differences(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """``D = H_chosen − H_rejected``: a linear reward ranks a pair right iff ``w · D > 0``."""
    if chosen.shape != rejected.shape:
        raise ValueError(f"chosen {chosen.shape} and rejected {rejected.shape} must have the same shape")
    return chosen - rejected


def bradley_terry_loss(margins: np.ndarray) -> np.ndarray:
    """``−log σ(z) = log(1 + e^{−z})`` per pair, computed stably with ``logaddexp``.

    Examples
    --------
    >>> float(bradley_terry_loss(np.array([0.0]))[0]) == float(np.log(2))
    True
    """
    return np.logaddexp(0.0, -margins)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function without overflow warnings for large |z|."""
    return np.exp(-np.logaddexp(0.0, -z))


def softmax_weights(loglik: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(loglik / temperature)`` along the last axis, shifted by the max for stability."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = np.asarray(loglik, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    weights = np.exp(z)
    return weights / weights.sum(axis=-1, keepdims=True)


def pair_correctness(margins: np.ndarray) -> np.ndarray:
    """1 for a pair ranked right (margin > 0), 0 for wrong, 0.5 for a tie (a coin flip's expectation)."""
    margins = np.asarray(margins, dtype=np.float64)
    return (margins > 0) + 0.5 * (margins == 0)
