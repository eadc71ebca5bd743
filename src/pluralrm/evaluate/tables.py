"""Accuracy tables, tidy (one row per head × subset), with bootstrap intervals.

The best single PCA head is chosen on a *validation* split and only then reported on the test split; a
head picked on the test pairs would report an optimistic accuracy.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pluralrm.atomic import atomic_path
from pluralrm.evaluate.metrics import bootstrap_interval, pair_correctness
from pluralrm.rewards.reward_model import RewardModel


def best_head(model: RewardModel, D_val: np.ndarray) -> tuple[str, float]:
    """The PCA head with the highest accuracy on validation pairs, and that accuracy."""
    margins = {k: v for k, v in model.head_scores(D_val).items() if k.startswith("pc")}
    if not margins:
        raise ValueError("the model has no PCA heads to choose from")
    accuracy = {name: float(pair_correctness(m).mean()) for name, m in margins.items()}
    name = max(accuracy, key=lambda k: (accuracy[k], -int(k[2:])))
    return name, accuracy[name]


def accuracy_rows(
    margins: dict[str, np.ndarray],
    subsets: Sequence[str | None] | None = None,
    *,
    extra: dict | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """One row per (head, subset) plus an ``all`` subset: accuracy, 95 % interval, n, ties."""
    rows = []
    n = len(next(iter(margins.values())))
    labels = np.array([s or "-" for s in subsets] if subsets is not None else ["-"] * n, dtype=object)
    groups = {"all": np.ones(n, dtype=bool)}
    if len(set(labels)) > 1:
        groups |= {str(s): labels == s for s in sorted(set(labels))}
    for head, m in margins.items():
        for subset, mask in groups.items():
            correct = pair_correctness(m[mask])
            low, high = bootstrap_interval(correct, n_resamples=n_resamples, seed=seed)
            rows.append(
                {
                    **(extra or {}),
                    "head": head,
                    "subset": subset,
                    "accuracy": float(correct.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "n": int(mask.sum()),
                    "ties": int((m[mask] == 0).sum()),
                }
            )
    return rows


def write_csv(rows: list[dict], path: str | Path) -> Path:
    """Write tidy rows as CSV (atomically); columns are the union of keys, in first-seen order."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return Path(path)
