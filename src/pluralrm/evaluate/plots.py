"""PNG plots people look at: explained variance of the heads, accuracy per head."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pluralrm.atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_explained_variance(ratio: np.ndarray, path: str | Path, *, top: int = 20, title: str = "") -> Path:
    plt = _pyplot()
    ratio = np.asarray(ratio)[:top]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(np.arange(1, len(ratio) + 1), ratio, color="#4c72b0", label="per head")
    ax.plot(np.arange(1, len(ratio) + 1), np.cumsum(ratio), color="#dd8452", marker="o", label="cumulative")
    ax.set_xlabel("PCA head")
    ax.set_ylabel("explained variance ratio")
    ax.set_title(title or "Explained variance of reward heads")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def plot_head_accuracy(rows: list[dict], path: str | Path, *, title: str = "") -> Path:
    """Bar chart of test accuracy (with 95 % intervals) per head, from :func:`accuracy_rows` rows."""
    plt = _pyplot()
    rows = [r for r in rows if r["subset"] == "all"]
    names = [r["head"] for r in rows]
    acc = np.array([r["accuracy"] for r in rows])
    err = np.array(
        [[r["accuracy"] - r["ci_low"] for r in rows], [r["ci_high"] - r["accuracy"] for r in rows]]
    )
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(rows)), 3.5))
    colors = ["#55a868" if n == "general" else "#4c72b0" for n in names]
    ax.bar(np.arange(len(rows)), acc, yerr=err, color=colors, capsize=2)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(np.arange(len(rows)), names, rotation=90)
    ax.set_ylabel("pairwise accuracy (test)")
    ax.set_ylim(0, 1)
    ax.set_title(title or "Accuracy per head")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)
