"""Pairwise metrics: the one function the CLI, the service and the tests all call."""

from __future__ import annotations

import numpy as np

from pluralrm.rewards.math import pair_correctness


def pairwise_metrics(margins: np.ndarray) -> dict[str, float]:
    """Accuracy and margin statistics of reward margins ``r(chosen) − r(rejected)``.

    A tie (margin exactly 0) counts one half: a reward model that cannot separate a pair is right by a
    coin flip, and ``n_ties`` says how often that happened.

    Examples
    --------
    >>> pairwise_metrics(np.array([1.0, -1.0, 0.0, 2.0]))["accuracy"]
    0.625
    """
    margins = np.asarray(margins, dtype=np.float64)
    if margins.ndim != 1 or margins.size == 0:
        raise ValueError(f"margins must be a non-empty 1-D array, got shape {margins.shape}")
    correct = pair_correctness(margins)
    return {
        "accuracy": float(correct.mean()),
        "n": int(margins.size),
        "n_ties": int((margins == 0).sum()),
        "mean_margin": float(margins.mean()),
        "reward_gap_std": float(margins.std()),
    }


def bootstrap_interval(
    correct: np.ndarray, *, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-pair correctness."""
    correct = np.asarray(correct, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), size=(n_resamples, len(correct)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
