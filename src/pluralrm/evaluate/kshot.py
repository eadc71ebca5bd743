"""Accuracy versus the number of a user's labelled pairs (k-shot curves), per user and method.

For each user, ``k`` adaptation pairs are drawn (seeded, ``n_draws`` times) from the user's *pool* and the
adapted reward is scored on the user's *test* pairs, which share no prompt with the pool; the heads and the
general head must have been fitted on data that excludes the test pairs too (the caller guarantees it).

Methods
-------
general        the general Bradley–Terry head alone (no adaptation; the same for every k)
drm-hyre       HyRe reweighting over the PCA heads and their negations
drm-logistic   logistic fit over PCA-head scores, shrunk toward the general head's coordinates
drm-best-head  the single (±) PCA head most accurate on the k pairs
random-hyre, random-logistic   the same adapters over random orthonormal heads
user-bt        a Bradley–Terry head trained from scratch on the user's k pairs (full features)
user-bt-all    the same on the user's whole pool: a ceiling, not a k-shot method
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pluralrm.adapt.adapters import random_unit_heads, weights_over_heads
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.math import pair_correctness

DEFAULT_KS = (0, 1, 3, 5, 10, 15, 20, 50, 100)
METHODS = (
    "general",
    "drm-hyre",
    "drm-logistic",
    "drm-best-head",
    "random-hyre",
    "random-logistic",
    "user-bt",
    "user-bt-all",
)


@dataclass
class HeadSet:
    """Heads as rows of ``components`` with the score scale each had on its fit data."""

    components: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_fit_data(cls, components: np.ndarray, D_fit: np.ndarray) -> HeadSet:
        scale = np.sqrt(np.mean((D_fit @ components.T) ** 2, axis=0))
        return cls(components=components, scale=np.where(scale > 0, scale, 1.0))

    def scores(self, D: np.ndarray) -> np.ndarray:
        """Z-scored head margins, shape (n_pairs, n_heads)."""
        return (D @ self.components.T) / self.scale


def _adapter_margins(
    method: str, S_train: np.ndarray, S_test: np.ndarray, prior: np.ndarray | None, hyre: dict, logistic: dict
) -> np.ndarray:
    adapter = method.partition("-")[2]  # "drm-hyre" -> "hyre", "drm-best-head" -> "best-head"
    params = hyre if adapter == "hyre" else logistic if adapter == "logistic" else {}
    return S_test @ weights_over_heads(S_train, adapter, prior=prior, **params)


def kshot_rows(
    users: dict[str, tuple[PairFeatures, PairFeatures]],
    heads: HeadSet,
    general: LinearRewardHead,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    n_draws: int = 20,
    methods: Sequence[str] = METHODS,
    random_seed: int = 0,
    hyre: dict | None = None,
    logistic: dict | None = None,
    user_bt_alpha: float = 1e-2,
    extra: dict | None = None,
) -> list[dict]:
    """Tidy rows ``{user, method, k, mean, ci_low, ci_high, n_draws, n_test}`` (95 % interval of the mean
    over draws, normal approximation)."""
    hyre = {"beta": 1.0, "temperature": 1.0} | (hyre or {})
    logistic = {"alpha": 1.0} | (logistic or {})
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    n_features = heads.components.shape[1]
    random_components = random_unit_heads(len(heads.components), n_features, seed=random_seed)
    # The general head in z-scored head coordinates: the logistic adapter's prior.
    prior = (heads.components @ general.coef_) * heads.scale
    rows = []
    for user, (pool, test) in users.items():
        D_pool, D_test = pool.differences, test.differences
        S = {"drm": (heads.scores(D_pool), heads.scores(D_test))}
        if any(m.startswith("random") for m in methods):
            # Random heads are z-scored on the user's pool (they have no fit data of their own).
            random_heads = HeadSet.from_fit_data(random_components, D_pool)
            S["random"] = (random_heads.scores(D_pool), random_heads.scores(D_test))
        fixed = {"general": general.decision_function(D_test)}
        if "user-bt-all" in methods:
            fixed["user-bt-all"] = LinearRewardHead(alpha=user_bt_alpha).fit(D_pool).decision_function(D_test)
        for method in methods:
            for k in ks:
                k_eff = min(k, len(D_pool))
                accuracies = []
                for draw in range(n_draws if method not in fixed else 1):
                    idx = np.random.default_rng([draw, k]).choice(len(D_pool), size=k_eff, replace=False)
                    if method in fixed:
                        margins = fixed[method]
                    elif method == "user-bt":
                        margins = (
                            np.zeros(len(D_test))
                            if k_eff == 0
                            else LinearRewardHead(alpha=user_bt_alpha)
                            .fit(D_pool[idx])
                            .decision_function(D_test)
                        )
                    else:
                        family, _, _ = method.partition("-")
                        S_pool, S_test = S[family]
                        margins = _adapter_margins(
                            method, S_pool[idx], S_test, prior if family == "drm" else None, hyre, logistic
                        )
                    accuracies.append(float(pair_correctness(margins).mean()))
                mean = float(np.mean(accuracies))
                half = (
                    1.96 * float(np.std(accuracies, ddof=1)) / np.sqrt(len(accuracies))
                    if len(accuracies) > 1
                    else 0.0
                )
                rows.append(
                    {
                        **(extra or {}),
                        "user": user,
                        "method": method,
                        "k": k,
                        "mean": mean,
                        "ci_low": mean - half,
                        "ci_high": mean + half,
                        "n_draws": len(accuracies),
                        "n_test": len(D_test),
                        "n_pool": len(D_pool),
                    }
                )
    return rows


def plot_kshot(rows: list[dict], path, *, title: str = "") -> None:
    """One panel per user: accuracy vs k (log-ish x axis) per method, with 95 % bands."""
    from pluralrm.atomic import atomic_path
    from pluralrm.evaluate.plots import _pyplot

    plt = _pyplot()
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
