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
from dataclasses import replace

import numpy as np

from pluralrm.adapt.adapters import random_unit_heads
from pluralrm.adapt.personalize import build_profile
from pluralrm.config import ADAPT, AdaptConfig
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.math import pair_correctness
from pluralrm.rewards.reward_model import RewardModel

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


def adapted_margins(
    model: RewardModel, method: str, D_train: np.ndarray, test: PairFeatures, *, config: AdaptConfig = ADAPT
) -> np.ndarray:
    """Test margins of ``model`` adapted to a user's pairs ``D_train`` by ``method`` (``drm-hyre``, …).

    Exactly what ``pluralrm adapt`` + ``pluralrm score`` compute: :func:`build_profile` then
    ``model.margins(test, user=profile)`` — the k-shot figures go through the product's own path.
    """
    adapter = method.partition("-")[2]  # "drm-hyre" -> "hyre", "random-best-head" -> "best-head"
    profile = build_profile(model, "k-shot", D_train, config=replace(config, method=adapter))
    return model.margins(test, user=profile)


def user_bt_margins(D_train: np.ndarray, test: PairFeatures, model: RewardModel, alpha: float) -> np.ndarray:
    """Margins of a Bradley–Terry head trained from scratch on the user's pairs (zeros for no pairs)."""
    if len(D_train) == 0:
        return np.zeros(len(test))
    head = LinearRewardHead(alpha=alpha).fit(D_train)
    user_model = RewardModel(namespace=model.namespace, backbone_name=model.backbone_name, general=head)
    return user_model.margins(test)


def kshot_rows(
    users: dict[str, tuple[PairFeatures, PairFeatures]],
    model: RewardModel,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    n_draws: int = 20,
    methods: Sequence[str] = METHODS,
    random_seed: int = 0,
    config: AdaptConfig = ADAPT,
    user_bt_alpha: float = 1e-2,
    extra: dict | None = None,
) -> list[dict]:
    """Tidy rows ``{user, method, k, mean, ci_low, ci_high, n_draws, n_test, n_pool}`` (95 % interval of
    the mean over draws, normal approximation).

    ``model`` holds the general head and the PCA heads (fitted on data without any test pair); the
    adapters read their parameters from ``config``. Random heads are z-scored on each user's pool (they
    have no fit data of their own) and, like a model without a general head, adapt from a zero prior.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    heads = model.require_heads("adapt")
    random_components = random_unit_heads(len(heads.components_), heads.n_features_in_, seed=random_seed)
    rows = []
    for user, (pool, test) in users.items():
        D_pool = pool.differences
        models = {"drm": model}
        if any(m.startswith("random") for m in methods):
            models["random"] = RewardModel(
                namespace=model.namespace,
                backbone_name=model.backbone_name,
                decomposed=DecomposedRewardModel.with_components(random_components, D_pool),
            )
        for method in methods:
            fixed_margins = None  # methods that do not depend on k
            if method == "general":
                fixed_margins = model.margins(test, head="general")
            elif method == "user-bt-all":
                fixed_margins = user_bt_margins(D_pool, test, model, user_bt_alpha)
            for k in ks:
                k_eff = min(k, len(D_pool))
                accuracies = []
                for draw in range(n_draws if fixed_margins is None else 1):
                    idx = np.random.default_rng([draw, k]).choice(len(D_pool), size=k_eff, replace=False)
                    if fixed_margins is not None:
                        margins = fixed_margins
                    elif method == "user-bt":
                        margins = user_bt_margins(D_pool[idx], test, model, user_bt_alpha)
                    else:
                        family = method.partition("-")[0]
                        margins = adapted_margins(models[family], method, D_pool[idx], test, config=config)
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
                        "n_test": len(test),
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
