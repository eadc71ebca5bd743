"""Repeatable held-out experiments on featurized pairs: within one set (seeded splits) and across sets.

Every number in docs/reports/results.md comes from these two functions through
``benchmarks/evaluate_real.py``.
Splits keep prompts whole; the L2 penalty of the general head and the best PCA head are picked on the
validation part; accuracy is read on the test part only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pluralrm.data.features import PairFeatures
from pluralrm.data.splits import group_split
from pluralrm.evaluate.metrics import bootstrap_interval
from pluralrm.evaluate.tables import best_head
from pluralrm.rewards.fitting import fit_reward_model
from pluralrm.rewards.math import pair_correctness


def _scores(
    train: PairFeatures, val: PairFeatures, test: PairFeatures, n_components: int
) -> tuple[dict[str, np.ndarray], str]:
    """Each method's per-pair correctness on ``test``, and the heads picked (``"centred/uncentred"``)."""
    out: dict[str, np.ndarray] = {}
    picked: list[str] = []
    for center in (True, False):
        model = fit_reward_model(train, val, n_components=n_components, center=center)
        margins = model.head_scores(test.differences)
        if center:  # the general head does not depend on centring
            out["general"] = pair_correctness(margins["general"])
        name, _ = best_head(model, val.differences)
        key = "centred" if center else "uncentred"
        out[f"best_pc_{key}"] = pair_correctness(margins[name])
        picked.append(name)
        out[f"pc1_{key}"] = pair_correctness(margins["pc1"])
    return out, "/".join(picked)


METHODS = ("general", "best_pc_centred", "best_pc_uncentred", "pc1_centred", "pc1_uncentred")


def within_set(
    features: PairFeatures,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_components: int = 32,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> dict[str, Any]:
    """Mean test accuracy over seeded train/val/test splits, per method, with the spread across seeds.

    Returns ``{method: {"mean", "std", "ci_low", "ci_high", "n_test"}}``; the interval is a bootstrap over
    the test pairs of all seeds pooled.
    """
    per_seed: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    picked: list[str] = []
    for seed in seeds:
        train_idx, val_idx, test_idx = group_split(features.groups, list(fractions), seed=seed)
        train, val, test = (features.select(i) for i in (train_idx, val_idx, test_idx))
        result, heads = _scores(train, val, test, n_components)
        for method in METHODS:
            per_seed[method].append(result[method])
        picked.append(heads)
    return _summarize(per_seed) | {"picked_heads": picked}


def cross_set(
    train_set: PairFeatures,
    test_set: PairFeatures,
    *,
    n_components: int = 32,
    seed: int = 0,
    fractions: tuple[float, float] = (0.8, 0.2),
) -> dict[str, Any]:
    """Fit on one set (its own validation split picks the head), test on all pairs of another set."""
    train_idx, val_idx = group_split(train_set.groups, list(fractions), seed=seed)
    result, heads = _scores(train_set.select(train_idx), train_set.select(val_idx), test_set, n_components)
    return _summarize({m: [result[m]] for m in METHODS}) | {"picked_heads": [heads]}


def _summarize(per_seed: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for method, runs in per_seed.items():
        means = [float(r.mean()) for r in runs]
        low, high = bootstrap_interval(np.concatenate(runs))
        summary[method] = {
            "mean": float(np.mean(means)),
            "std": float(np.std(means)),
            "ci_low": low,
            "ci_high": high,
            "n_test": int(np.mean([len(r) for r in runs])),
        }
    return summary
