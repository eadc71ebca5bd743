"""Choices a product makes for a new user from the pool's own users: the feature space and the adapter.

Why this exists: on the DSP domain users, under leave-one-user-out, *which hidden layer* a user's linear
head reads moves their 15-pair accuracy far more than any adapter over heads does (MiniLM's final layer
0.65, its layer 3 0.73; docs/reports/personalization.md). The final layer of a sentence encoder is trained to
forget the wording and style that these users' preferences are about. And which adapter wins depends on
the users: the pool-prior ``map`` adapter wins by 15 points on users who share a low-rank taste, the
from-scratch ``bt`` head wins on the real domain users. Both are measured, not fixed — but without looking
at the target user, or an evaluation would be tuned to its own test.

The pool is what a product has before it meets a new user: other users' labelled pairs. A candidate
feature space is scored by how *learnable* the pool's users are in it at ``k`` pairs — each labelled pool
user's pairs split by prompt into two halves, a Bradley–Terry head fitted on ``k`` pairs of one half and
scored on the other, averaged over seeded draws and then over users (each user counts once, however many
pairs they have). A candidate adapter is scored the same way, with each pool user in turn left out of the
pool as a new user (:func:`pluralrm.adapt.kshot.run_kshot` on the pool's own users).

:func:`run_kshot_choosing` runs the leave-one-user-out protocol with the feature choice made per target user,
on the pool that target may see (their own pairs and their test prompts removed first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from pluralrm.adapt.kshot import PoolChoice, pool_user_halves, run_kshot, seen_indices, user_bt_margins
from pluralrm.config import ADAPT, DECOMPOSE
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.math import pair_correctness

logger = logging.getLogger(__name__)


def pool_learnability(
    pool: PairFeatures,
    *,
    k: int = DECOMPOSE.choice_k,
    n_draws: int = DECOMPOSE.choice_draws,
    seed: int = DECOMPOSE.seed,
    alpha: float = ADAPT.bt_alpha,
    at_most: int | None = DECOMPOSE.choice_users,
) -> dict[str, float]:
    """Per labelled pool user: mean accuracy of a BT head fitted on ``k`` of their pairs, on their others.

    Each user's pairs are split 50/50 by prompt (seeded), so inner test prompts are never adapted on.
    ``ValueError`` if no pool user has the ≥ 2·k pairs this needs (label the pool's pairs with users).
    """
    from pluralrm.rewards.reward_model import RewardModel

    # kshot's user-bt, scored through RewardModel.margins like every other figure
    space = RewardModel(namespace=pool.namespace, backbone_name=pool.backbone_name)
    scores = {}
    D = pool.differences
    for user, (fit_idx, test_idx) in pool_user_halves(
        pool, k, seed, "choosing features", at_most=at_most
    ).items():
        D_fit, test = D[fit_idx], pool.select(test_idx)
        k_eff = min(k, len(D_fit))
        accuracies = []
        for draw in range(n_draws):
            pick = np.random.default_rng([seed, draw, k]).choice(len(D_fit), size=k_eff, replace=False)
            margins = user_bt_margins(D_fit[pick], test, space, alpha)
            accuracies.append(float(pair_correctness(margins).mean()))
        scores[user] = float(np.mean(accuracies))
    return scores


def choose_features(
    pools: Mapping[str, PairFeatures],
    *,
    k: int = DECOMPOSE.choice_k,
    n_draws: int = DECOMPOSE.choice_draws,
    seed: int = DECOMPOSE.seed,
    alpha: float = ADAPT.bt_alpha,
    at_most: int | None = DECOMPOSE.choice_users,
) -> PoolChoice:
    """The candidate whose pool users are learned best from ``k`` pairs (ties: the first listed).

    ``pools`` maps a candidate name (e.g. ``minilm-mean-L3``) to the *same* pool pairs featurized in that
    space; ``ValueError`` if they are not the same pairs (ids, prompts and users must agree).
    """
    if not pools:
        raise ValueError("no candidate feature spaces to choose from")
    names = list(pools)
    reference = pools[names[0]]
    for name in names[1:]:
        other = pools[name]
        if len(other) != len(reference) or other.groups != reference.groups or other.users != reference.users:
            raise ValueError(
                f"candidate {name!r} holds other pairs than {names[0]!r} "
                f"({len(other)} vs {len(reference)} pairs, or different prompts/users): featurize the same "
                "pool files for every candidate"
            )
    per_user = {
        name: pool_learnability(pools[name], k=k, n_draws=n_draws, seed=seed, alpha=alpha, at_most=at_most)
        for name in names
    }
    scores = {name: float(np.mean(list(values.values()))) for name, values in per_user.items()}
    best = max(names, key=lambda name: scores[name])  # max keeps the first of equals
    return PoolChoice(name=best, scores=scores, users=tuple(per_user[best]))


def run_kshot_choosing(
    candidates: Mapping[str, tuple[PairFeatures, dict[str, tuple[PairFeatures, PairFeatures]]]],
    /,  # positional only: the active protocol takes a ``candidates`` option of its own
    *,
    choice_k: int = DECOMPOSE.choice_k,
    choice_draws: int = DECOMPOSE.choice_draws,
    user_bt_alpha: float = ADAPT.bt_alpha,
    random_seed: int = DECOMPOSE.seed,
    protocol: Callable[..., list[dict]] = run_kshot,
    **kshot_options,
) -> tuple[list[dict], dict[str, PoolChoice]]:
    """Leave-one-user-out k-shot rows with each target's feature space chosen on their seen pool.

    ``candidates`` maps a candidate name to ``(pool, users)`` as :func:`run_kshot` takes them — the same
    pairs in every candidate, featurized differently. For each target user the pool they may see
    (:func:`seen_pool`) is scored in every candidate by :func:`choose_features`; every method then runs
    in the chosen space (rows carry ``features``). The target's own pairs never take part in the choice.
    ``protocol`` is what runs there (:func:`run_kshot`, or
    :func:`pluralrm.adapt.kshot_active.run_kshot_active` for chosen pairs), with ``kshot_options``.
    Returns the rows and each user's :class:`PoolChoice`.
    """

    if not candidates:
        raise ValueError("no candidate feature spaces to choose from")
    names = list(candidates)
    targets = list(candidates[names[0]][1])
    for name in names[1:]:
        if list(candidates[name][1]) != targets:
            raise ValueError(f"candidate {name!r} has users {list(candidates[name][1])}, expected {targets}")
    base_extra = kshot_options.pop("extra", None) or {}
    at_most = kshot_options.get("decompose", DECOMPOSE).choice_users
    choices: dict[str, PoolChoice] = {}
    made: dict[bytes, PoolChoice] = {}  # targets with the same seen pool (new users) share one choice
    for user in targets:
        pool0, users0 = candidates[names[0]]
        keep = seen_indices(pool0, user, users0[user][1])
        key = np.packbits(np.isin(np.arange(len(pool0)), keep)).tobytes()
        if key not in made:
            pools = {name: pool.select(keep) for name, (pool, _) in candidates.items()}
            made[key] = choose_features(
                pools,
                k=choice_k,
                n_draws=choice_draws,
                seed=random_seed,
                alpha=user_bt_alpha,
                at_most=at_most,
            )
        choice = choices[user] = made[key]
        logger.info(
            "%s: features %s (pool users %s; %s)",
            user,
            choice.name,
            ", ".join(choice.users),
            ", ".join(f"{n} {s:.3f}" for n, s in choice.scores.items()),
        )
    # One run per chosen space, so targets that share a seen pool share its fit too. The user-bt rows'
    # penalty is run_kshot's; the active protocol's adapters read theirs from the AdaptConfig.
    if protocol is run_kshot:
        kshot_options["user_bt_alpha"] = user_bt_alpha
    rows: list[dict] = []
    for name in dict.fromkeys(choice.name for choice in choices.values()):
        pool, users = candidates[name]
        group = {user: users[user] for user in targets if choices[user].name == name}
        rows += protocol(
            pool,
            group,
            random_seed=random_seed,
            extra={**base_extra, "features": name},
            **kshot_options,
        )
    order = {user: i for i, user in enumerate(targets)}
    rows.sort(key=lambda row: order[row["user"]])  # stable: each user's rows keep their order
    return rows, choices
