"""Seeded splits that keep every prompt on one side (no test prompt is ever seen while fitting)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def group_split(groups: Sequence[str], fractions: Sequence[float], *, seed: int = 0) -> list[np.ndarray]:
    """Split pair indices into parts of roughly ``fractions`` of the pairs, whole groups at a time.

    Examples
    --------
    >>> train, test = group_split(["a", "a", "b", "c", "d", "d"], [0.5, 0.5], seed=0)
    >>> sorted(np.concatenate([train, test]).tolist())
    [0, 1, 2, 3, 4, 5]
    """
    shares = np.asarray(fractions, dtype=float)
    if (shares <= 0).any() or not np.isclose(shares.sum(), 1.0):
        raise ValueError(f"fractions must be positive and sum to 1, got {shares.tolist()}")
    unique = sorted(set(groups))
    if len(unique) < len(fractions):
        raise ValueError(f"{len(unique)} distinct prompts cannot fill {len(fractions)} splits")
    order = np.random.default_rng(seed).permutation(len(unique))
    bounds = np.round(np.cumsum(shares) * len(unique)).astype(int)
    part_of_group = {}
    start = 0
    for part, end in enumerate(bounds):
        for g in order[start:end]:
            part_of_group[unique[g]] = part
        start = end
    labels = np.array([part_of_group[g] for g in groups])
    return [np.flatnonzero(labels == part) for part in range(len(fractions))]
