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


def bradley_terry_sums(Z: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """Sum over pairs of the Bradley–Terry loss of ``w`` and of its gradient, for rows ``Z`` of differences.

    Sums, not means, so that shards of the pairs (Ray actors) add theirs and the caller divides once;
    :class:`~pluralrm.rewards.LinearRewardHead` and the Ray shards both call this, so the objective is one.

    Examples
    --------
    >>> loss, grad = bradley_terry_sums(np.array([[2.0, 0.0]]), np.zeros(2))
    >>> bool(np.isclose(loss, np.log(2))), float(grad[0])
    (True, -1.0)
    """
    margins = Z @ w
    # d/dw log(1 + e^{-m}) = -σ(-m) · z
    return float(bradley_terry_loss(margins).sum()), -(Z.T @ sigmoid(-margins))


def rms_row_norm(squared_norm_sum: float, n: int) -> float:
    """``sqrt(Σ‖d‖² / n)``, the scale a Bradley–Terry fit divides ``D`` by (1 for an all-zero ``D``)."""
    scale = float(np.sqrt(squared_norm_sum / n)) if n else 0.0
    return scale or 1.0


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
