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


KSHOT_PANELS = 12  # most users drawn a panel each; a population is drawn as one panel of their mean


def plot_kshot(rows: list[dict], path, *, title: str = "") -> None:
    """One panel per user: accuracy vs k (log-ish x axis) per method, with 95 % bands. More than
    :data:`KSHOT_PANELS` users (a population) are one panel: their mean, with 95 % bands over users."""
    from pluralrm.adapt.kshot import over_users

    plt = _pyplot()
    users = list(dict.fromkeys(r["user"] for r in rows))
    if len(users) > KSHOT_PANELS:
        rows = over_users(rows)
        users = list(dict.fromkeys(r["user"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    n_cols = min(3, len(users))
    n_rows = -(-len(users) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.4 * n_rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(users) :]:
        ax.set_visible(False)
    for ax, user in zip(axes.flat, users, strict=False):
        for method in methods:
            sel = sorted(
                (r for r in rows if r["user"] == user and r["method"] == method), key=lambda r: r["k"]
            )
            x = np.arange(len(sel))
            ax.plot(x, [r["mean"] for r in sel], marker="o", markersize=3, label=method)
            ax.fill_between(x, [r["ci_low"] for r in sel], [r["ci_high"] for r in sel], alpha=0.15)
            ax.set_xticks(x, [str(r["k"]) for r in sel])
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(user)
        ax.set_xlabel("k (user's labelled pairs)")
    for row in axes:
        row[0].set_ylabel("test accuracy")
    axes.flat[len(users) - 1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
