"""Sequential k-shot curves with chosen pairs: ask, reveal the label, update, ask again (``kshot --select``).

The protocol of :func:`pluralrm.adapt.kshot.run_kshot` (leave-one-user-out: the pool is refitted without
the target's pairs and test prompts), except that the target's ``k`` adaptation pairs are *chosen* one by
one by a rule of :mod:`pluralrm.adapt.active` instead of drawn at random:

1. a draw takes a seeded subset of ``candidates`` of the user's adaptation pairs as the unlabelled pool
   (all of them for ``candidates=0``) and hides each pair's label by flipping its difference vector with a
   seeded coin (the rules never see which response was preferred);
2. the rule picks one pair from those not yet asked, given the labelled pairs so far; its label (the
   stored orientation, chosen minus rejected) is revealed and the pair joins the labelled set;
3. at every ``k`` in ``ks`` the user's profile is fitted on the ``k`` labelled pairs by ``adapter`` —
   :func:`~pluralrm.adapt.personalize.build_profile` then ``RewardModel.margins``, the product's own path —
   and scored on the user's test pairs (no prompt shared with the adaptation pairs; checked).

``random`` runs through the same loop (a seeded uniform pick among the pairs not yet asked), from the same
candidate subset and with the same adapter, so a rule's curve and random's differ only by the rule.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from pluralrm.adapt.active import STRATEGIES, next_pairs
from pluralrm.adapt.kshot import SeenPools, check_disjoint
from pluralrm.adapt.personalize import build_profile
from pluralrm.config import ACTIVE, ADAPT, DECOMPOSE, KSHOT, AdaptConfig, DecomposeConfig
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.math import pair_correctness
from pluralrm.rewards.reward_model import RewardModel

logger = logging.getLogger(__name__)


def run_kshot_active(
    pool: PairFeatures,
    users: dict[str, tuple[PairFeatures, PairFeatures]],
    *,
    strategies: Sequence[str] = ("random", ACTIVE.strategy),
    ks: Sequence[int] = KSHOT.ks,
    n_draws: int = KSHOT.draws,
    adapter: str = "auto",
    candidates: int = ACTIVE.candidates,
    config: AdaptConfig = ADAPT,
    decompose: DecomposeConfig = DECOMPOSE,
    random_seed: int = 0,
    extra: dict | None = None,
) -> list[dict]:
    """Leave-one-user-out rows ``{user, method, select, adapter, k, mean, ci_low, ci_high, n_draws,
    n_test, n_pool, n_fit}``: ``method`` is ``select-<strategy>``; 95 % intervals over draws.

    ``adapter`` ``auto`` is chosen on each target's seen pool as :func:`~pluralrm.adapt.kshot.run_kshot`
    chooses it (:func:`~pluralrm.adapt.kshot.auto_adapter`); the rules read that adapter's posterior.
    ``ks`` of 0 are left out (nothing is picked at k = 0: every rule gives the adapter's zero-pair reward).
    """
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise ValueError(f"unknown selection strategies {unknown}; choose from {STRATEGIES}")
    ks = sorted({int(k) for k in ks if k > 0})
    if not ks:
        raise ValueError("kshot --select needs at least one k > 0")
    rows = []
    seen_pools = SeenPools(pool, decompose=decompose, config=config, seed=random_seed)
    for user, (adapt, test) in users.items():
        check_disjoint(user, adapt, test)
        start = time.perf_counter()
        seen, model, auto = seen_pools.fit(user, test, auto=adapter == "auto")
        chosen = auto or adapter
        for strategy in strategies:
            accuracies = active_curves(
                model,
                adapt,
                test,
                strategy,
                ks,
                n_draws=n_draws,
                adapter=chosen,
                candidates=candidates,
                config=config,
                seed=random_seed,
            )
            for i, k in enumerate(ks):
                values = accuracies[:, i]
                mean = float(values.mean())
                half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
                rows.append(
                    {
                        **(extra or {}),
                        "user": user,
                        "method": f"select-{strategy}",
                        "select": strategy,
                        "adapter": chosen,
                        "k": k,
                        "mean": mean,
                        "ci_low": mean - half,
                        "ci_high": mean + half,
                        "n_draws": len(values),
                        "n_test": len(test),
                        "n_pool": len(adapt),
                        "n_fit": len(seen),
                    }
                )
        logger.info(
            "%s: %s, %d strategies in %.1f s", user, chosen, len(strategies), time.perf_counter() - start
        )
    return rows


def selection_order(
    model: RewardModel,
    adapt: PairFeatures,
    strategy: str,
    n: int,
    *,
    draw: int = 0,
    adapter: str | None = None,
    candidates: int = ACTIVE.candidates,
    config: AdaptConfig = ADAPT,
    seed: int = 0,
) -> list[int]:
    """Indices into ``adapt`` of the first ``n`` pairs ``strategy`` asks, one at a time, labels revealed
    from ``adapt``'s orientation (chosen minus rejected) after each pick."""
    D = adapt.differences.astype(np.float64)
    rng = np.random.default_rng([seed, draw])
    subset = rng.permutation(len(D))
    if candidates:
        subset = np.sort(subset[:candidates])
    # hide the labels: a candidate's orientation is a coin flip, so its sign says nothing
    hidden = D[subset] * rng.choice([-1.0, 1.0], size=len(subset))[:, None]
    remaining = list(range(len(subset)))
    asked: list[int] = []
    for step in range(min(n, len(subset))):
        pick = next_pairs(
            model,
            hidden[remaining],
            D[[int(subset[i]) for i in asked]] if asked else None,
            strategy=strategy,
            seed=int(rng.integers(2**31)) + step,
            adapter=adapter,
            config=config,
        )[0]
        asked.append(remaining.pop(pick))
    return [int(subset[i]) for i in asked]


def active_curves(
    model: RewardModel,
    adapt: PairFeatures,
    test: PairFeatures,
    strategy: str,
    ks: Sequence[int],
    *,
    n_draws: int = KSHOT.draws,
    adapter: str = "map",
    candidates: int = ACTIVE.candidates,
    config: AdaptConfig = ADAPT,
    seed: int = 0,
) -> np.ndarray:
    """Test accuracy after the first ``k`` picks of ``strategy``, shape (n_draws, len(ks)).

    Draw ``i`` of every strategy asks from the same candidate subset (seeded by ``seed`` and ``i``), so the
    differences between two strategies' rows are paired.
    """
    D = adapt.differences
    profile_config = replace(config, method=adapter)
    out = np.zeros((n_draws, len(ks)))
    for draw in range(n_draws):
        order = selection_order(
            model,
            adapt,
            strategy,
            max(ks),
            draw=draw,
            adapter=adapter,
            candidates=candidates,
            config=config,
            seed=seed,
        )
        for i, k in enumerate(ks):
            profile = build_profile(model, "k-shot", D[order[:k]], config=profile_config)
            out[draw, i] = float(pair_correctness(model.margins(test, user=profile)).mean())
    return out
