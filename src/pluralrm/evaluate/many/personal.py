"""Personalized best-of-N: does a user's own profile pick *their* best response better than the general head?

For every user we know a *true* reward of each response (a simulated user's mixture of heads, or a real
DSP domain user's "my domain's answer is the one I want"). From ``k`` of the user's labelled pairs on
adaptation prompts we build their profile with the product's own path (:func:`build_profile`), then on
*test* prompts every method picks one response per prompt (the argmax of its reward, the earlier response on
ties) and we read the pick's true reward:

* ``gain``: ``(r(pick) − mean r) / (max r − mean r)`` per prompt — 1 for the user's own best, 0 for what a
  random response gets on average, negative below that (prompts whose true rewards all tie are skipped);
* ``top1``: the pick is the user's own best;
* ``differs``: the pick is not the general head's pick (how often personalization changes the answer).

Methods: ``general`` (the general head, the same for every user), ``profile`` (the default adapter on the
k pairs), ``user-bt`` (a Bradley–Terry head fitted from scratch on the same k pairs: the bar a profile has
to beat; undefined at k = 0) and ``oracle`` (the true reward; gain 1 by definition, reported as a check).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pluralrm.adapt.personalize import build_profile
from pluralrm.config import ADAPT, AdaptConfig
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.reward_model import RewardModel

METHODS = ("general", "profile", "user-bt", "oracle")


def picks(features: Sequence[np.ndarray], scores_of) -> np.ndarray:
    """Index of the best response per prompt under ``scores_of(H) -> rewards`` (earliest on ties)."""
    return np.array([int(np.argmax(scores_of(H))) for H in features])


def pick_quality(true: Sequence[np.ndarray], chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt ``gain`` and ``top1`` of the picked responses (NaN gain where all true rewards tie).

    Examples
    --------
    >>> gain, top1 = pick_quality([np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0])], np.array([1, 0]))
    >>> gain.tolist(), top1.tolist()
    ([0.0, nan], [False, True])
    """
    gain = np.full(len(true), np.nan)
    top1 = np.zeros(len(true), dtype=bool)
    for p, (r, i) in enumerate(zip(true, chosen, strict=True)):
        spread = r.max() - r.mean()
        if spread > 0:
            gain[p] = (r[i] - r.mean()) / spread
        top1[p] = r[i] == r.max()
    return gain, top1


def draw_labelled_pairs(
    features: Sequence[np.ndarray], true: Sequence[np.ndarray], k: int, rng: np.random.Generator
) -> np.ndarray:
    """``k`` pair differences ``h(chosen) − h(rejected)``: a random prompt, two responses with different
    true rewards, the higher one chosen (a user who labels without noise)."""
    candidates = [p for p, r in enumerate(true) if np.ptp(r) > 0]
    rows: list[np.ndarray] = []
    while len(rows) < k:
        p = candidates[rng.integers(len(candidates))]
        i, j = rng.choice(len(true[p]), size=2, replace=False)
        if true[p][i] == true[p][j]:
            continue
        better, worse = (i, j) if true[p][i] > true[p][j] else (j, i)
        rows.append(features[p][better] - features[p][worse])
    return np.array(rows).reshape(k, features[0].shape[1])


def user_rows(
    user: str,
    model: RewardModel,
    adapt: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
    test: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
    *,
    ks: Sequence[int] = (0, 5, 15, 50),
    n_draws: int = 5,
    seed: int = 0,
    config: AdaptConfig = ADAPT,
    user_bt_alpha: float = ADAPT.bt_alpha,
) -> list[dict]:
    """Rows ``{user, method, k, gain, top1, differs, n_prompts}`` (means over draws and test prompts).

    ``adapt`` / ``test`` are ``(features per prompt, true rewards per prompt)``; ``model`` must not have
    seen this user's pairs (leave-one-user-out is the caller's job: it decides what the pool holds).
    """
    H_test, true_test = test
    general = picks(H_test, lambda H: model.rewards(H))
    oracle_gain, oracle_top1 = pick_quality(true_test, picks(true_test, lambda r: r))
    rows = []
    for k in ks:
        by_method: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {m: [] for m in METHODS}
        for draw in range(n_draws if k else 1):
            rng = np.random.default_rng([seed, k, draw])
            D = draw_labelled_pairs(*adapt, k, rng)
            profile = build_profile(model, user, D, config=config)
            chosen = {
                "general": general,
                "profile": picks(H_test, lambda H, p=profile: model.rewards(H, user=p)),
            }
            if k:  # a head fitted on no pairs prefers nothing: its "pick" would be an artefact of order
                chosen["user-bt"] = _user_bt_picks(model, H_test, D, user_bt_alpha)
            for method, pick in chosen.items():
                gain, top1 = pick_quality(true_test, pick)
                by_method[method].append((gain, top1, pick != general))
            by_method["oracle"].append((oracle_gain, oracle_top1, np.zeros(len(H_test), dtype=bool)))
        for method, results in by_method.items():
            if not results:
                continue
            rows.append(
                {
                    "user": user,
                    "method": method,
                    "k": k,
                    "gain": float(np.mean([np.nanmean(g) for g, _, _ in results])),
                    "top1": float(np.mean([t.mean() for _, t, _ in results])),
                    "differs": float(np.mean([d.mean() for _, _, d in results])),
                    "n_prompts": len(H_test),
                    "n_draws": len(results),
                }
            )
    return rows


def _user_bt_picks(
    model: RewardModel, H_test: Sequence[np.ndarray], D: np.ndarray, alpha: float
) -> np.ndarray:
    """Picks of a Bradley–Terry head fitted from scratch on the ``k ≥ 1`` pairs ``D``."""
    head = LinearRewardHead(alpha=alpha).fit(D)
    user_model = RewardModel(namespace=model.namespace, backbone_name=model.backbone_name, general=head)
    return picks(H_test, user_model.rewards)


def mixture_users(
    model: RewardModel,
    H_reference: np.ndarray,
    *,
    n_users: int,
    n_heads: int,
    concentration: float,
    seed: int,
) -> dict[str, np.ndarray]:
    """Simulated users as Dirichlet-weighted mixtures of the model's first ``n_heads`` heads
    (PersonalLLM's construction, with PCA heads in place of separate reward models).

    Each head is divided by the RMS of its scores on ``H_reference`` so that weights mix comparable
    scales. Returns ``{name: reward vector in feature space}``.
    """
    heads = model.require_heads("simulate users").components_[:n_heads]
    scale = np.sqrt(np.mean((H_reference @ heads.T) ** 2, axis=0))
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(len(heads), concentration), size=n_users)
    return {f"mix{u}": (weights[u] / scale) @ heads for u in range(n_users)}


def summarize(rows: list[dict]) -> list[dict]:
    """Mean over users per (method, k), with the spread over users (min, max) of the gain."""
    out = []
    for method in METHODS:
        for k in sorted({r["k"] for r in rows}):
            group = [r for r in rows if r["method"] == method and r["k"] == k]
            if not group:
                continue
            gains = [r["gain"] for r in group]
            out.append(
                {
                    "method": method,
                    "k": k,
                    "gain": float(np.mean(gains)),
                    "gain_min_user": float(np.min(gains)),
                    "gain_max_user": float(np.max(gains)),
                    "top1": float(np.mean([r["top1"] for r in group])),
                    "differs": float(np.mean([r["differs"] for r in group])),
                    "n_users": len(group),
                }
            )
    return out
