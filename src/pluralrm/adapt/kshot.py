"""Accuracy versus the number of a user's labelled pairs (k-shot curves), per user and method.

Two protocols:

* **leave-one-user-out** (:func:`run_kshot`, the headline): for each target user the general head, the
  heads and every prior are fitted on a *pool* from which that user's own pairs and every pair on one of
  their test prompts have been removed; the user is then adapted from ``k`` of their adaptation pairs and
  scored on their test pairs. This is a new user, as a product meets one.
* **in-pool** (:func:`kshot_rows`): one model, fitted by the caller on data that may contain the users'
  other queries (the protocol of issue 4).

For each user, ``k`` adaptation pairs are drawn (seeded, ``n_draws`` times) and the adapted reward is scored
on the user's *test* pairs, which share no prompt with the adaptation pairs.

Methods (``<heads>-<adapter>``, or a baseline)
----------------------------------------------
general        the general Bradley–Terry head alone (no adaptation; the same for every k)
drm-map        MAP fit of the full weight vector under the pool's Gaussian prior (adapt.priors)
drm-hyre       HyRe reweighting over the PCA heads and their negations
drm-logistic   logistic fit over PCA-head scores, shrunk toward the general head's coordinates
drm-best-head  the single (±) PCA head most accurate on the k pairs
random-*       the same adapters over random orthonormal heads (a new seed per draw, cycling over
               ``n_random_seeds`` seeds)
lore-*         the same adapters over a low-rank basis learned jointly across the pool's users
               (:mod:`pluralrm.adapt.lowrank`; :func:`run_kshot` only)
auto           what ``pluralrm adapt`` does by default: the adapter among ``AdaptConfig.auto_candidates``
               that learns the target's *seen* pool's own users best as new users
               (:func:`pluralrm.adapt.kshot.choose_adapter`; :func:`run_kshot` only)
user-bt        a Bradley–Terry head trained from scratch on the user's k pairs (full features)
user-bt-all    the same on all the user's adaptation pairs: a ceiling, not a k-shot method
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from pluralrm.adapt.adapters import random_unit_heads
from pluralrm.adapt.personalize import build_profile
from pluralrm.config import ADAPT, DECOMPOSE, KSHOT, AdaptConfig, DecomposeConfig
from pluralrm.data.features import PairFeatures
from pluralrm.data.splits import group_split
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.fitting import fit_pool
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.math import pair_correctness
from pluralrm.rewards.reward_model import RewardModel

logger = logging.getLogger(__name__)

METHODS = (
    "general",
    "drm-map",
    "drm-hyre",
    "drm-logistic",
    "drm-best-head",
    "random-map",
    "random-hyre",
    "random-logistic",
    "user-bt",
    "user-bt-all",
)
LOO_METHODS = (*METHODS[:-2], "lore-map", "lore-logistic", "lore-hyre", "auto", "user-bt", "user-bt-all")


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
    ks: Sequence[int] = KSHOT.ks,
    n_draws: int = KSHOT.draws,
    methods: Sequence[str] = METHODS,
    random_seed: int = 0,
    n_random_seeds: int = KSHOT.random_seeds,
    config: AdaptConfig = ADAPT,
    user_bt_alpha: float = ADAPT.bt_alpha,
    extra: dict | None = None,
) -> list[dict]:
    """In-pool k-shot rows ``{user, method, k, mean, ci_low, ci_high, n_draws, n_test, n_pool}`` (95 %
    interval of the mean over draws, normal approximation).

    ``model`` holds the general head and the PCA heads (fitted by the caller on data without any test
    pair; it may contain the users' other queries); the adapters read their parameters from ``config``.
    Random heads are z-scored on each user's adaptation pairs (they have no fit data of their own) and,
    like a model without a general head, adapt from a zero prior; draw ``i`` uses random seed
    ``random_seed + i % n_random_seeds``.
    """
    _check_methods(methods, METHODS)
    rows = []
    for user, (pool, test) in users.items():
        rows += _user_rows(
            user,
            pool,
            test,
            {"drm": model},
            methods=methods,
            ks=ks,
            n_draws=n_draws,
            random_seeds=[random_seed + s for s in range(n_random_seeds)],
            config=config,
            user_bt_alpha=user_bt_alpha,
            extra=extra,
        )
    return rows


def run_kshot(
    pool: PairFeatures,
    users: dict[str, tuple[PairFeatures, PairFeatures]],
    *,
    ks: Sequence[int] = KSHOT.ks,
    n_draws: int = KSHOT.draws,
    methods: Sequence[str] = LOO_METHODS,
    config: AdaptConfig = ADAPT,
    decompose: DecomposeConfig = DECOMPOSE,
    lore_rank: int | None = None,
    random_seed: int = 0,
    n_random_seeds: int = KSHOT.random_seeds,
    user_bt_alpha: float = ADAPT.bt_alpha,
    extra: dict | None = None,
) -> list[dict]:
    """Leave-one-user-out k-shot curves from featurized files: what ``pluralrm kshot`` runs.

    Who sees what
    -------------
    For each target user ``u`` with ``users[u] = (adapt, test)``:

    * the **pool** seen for ``u`` is ``pool`` minus every pair whose ``users`` label is ``u`` and minus every
      pair whose prompt group occurs in ``u``'s test pairs. The general head and the PCA heads are fitted
      on it by the one pool recipe, as ``pluralrm decompose`` fits them
      (:func:`pluralrm.rewards.fitting.fit_pool`: ``decompose.val_fraction`` of its prompts, split with
      ``random_seed``, held out to choose the general head's L2 penalty; both fitted on the rest); the
      learned low-rank basis (one BT head per other pool user, ``users`` labels; unlabelled pairs form one
      "general" user) and every prior are fitted on it too, and on nothing else;
    * the **adapters** see only ``k`` pairs drawn from ``adapt`` (``n_draws`` seeded draws per k) and choose
      their own hyperparameters from those pairs (the ``map`` adapter by marginal likelihood);
    * ``user-bt`` sees the same ``k`` pairs; ``user-bt-all`` all of ``adapt`` (a ceiling);
    * ``test`` is only scored, through ``build_profile`` + ``RewardModel.margins`` (the product's path).
      It must share no prompt with ``adapt``; this function checks that and raises otherwise.

    Parameters
    ----------
    pool : PairFeatures
        Other users' pairs plus general data (``users`` labels name whose pairs they are).
    users : dict of str -> (PairFeatures, PairFeatures)
        Each target user's adaptation pairs and test pairs, given separately.
    ks, n_draws, methods, config
        As :func:`kshot_rows`; methods from :data:`LOO_METHODS`.
    decompose : DecomposeConfig
        The pool recipe's settings: PCA heads (capped at the feature dimension), centring, held-out share
        and penalties of the general head (its split is seeded by ``random_seed``).
    lore_rank : int, optional
        Rank of the learned basis (default: ``decompose.n_components`` capped at the number of pool users
        times two — a user's head spans one direction, so a larger rank is left to the pooled PCA).

    Returns
    -------
    list of dict
        Tidy rows as :func:`kshot_rows`, plus ``n_fit`` (pool pairs the model for this user saw).
    """
    _check_methods(methods, LOO_METHODS)
    rows = []
    seen_pools = SeenPools(pool, decompose=decompose, config=config, seed=random_seed)
    for user, (adapt, test) in users.items():
        check_disjoint(user, adapt, test)
        seen, model, chosen = seen_pools.fit(user, test, auto="auto" in methods)
        models = {"drm": model}
        if any(m.startswith("lore-") for m in methods):
            models["lore"] = seen_pools.lore(user, test, lore_rank)
        wanted, adapter = list(methods), None
        if "auto" in wanted:
            assert chosen is not None  # computed with the fit whenever "auto" is asked for
            adapter = chosen
            wanted = [m for m in wanted if m != "auto"]
            auto_method = kshot_name(adapter)
            if auto_method not in wanted:
                wanted.append(auto_method)
        user_rows = _user_rows(
            user,
            adapt,
            test,
            models,
            methods=wanted,
            ks=ks,
            n_draws=n_draws,
            random_seeds=[random_seed + s for s in range(n_random_seeds)],
            config=config,
            user_bt_alpha=user_bt_alpha,
            extra={**(extra or {}), "n_fit": len(seen)},
        )
        if adapter is not None:
            auto = [
                {**r, "method": "auto", "adapter": adapter} for r in user_rows if r["method"] == auto_method
            ]
            user_rows = [r for r in user_rows if r["method"] in methods] + auto
        rows += user_rows
    return rows


def check_disjoint(user: str, adapt: PairFeatures, test: PairFeatures) -> None:
    """``ValueError`` if a target's adaptation and test pairs share a prompt."""
    shared = set(adapt.groups) & set(test.groups)
    if shared:
        raise ValueError(f"user {user!r}: {len(shared)} prompts occur in both adaptation and test pairs")


class SeenPools:
    """The pool each target may see (:func:`seen_pool`), fitted by the one recipe, with what ``auto``
    chooses on it — once per distinct set of pairs.

    Targets whose seen pool is the same set of pairs (new users on prompts the pool never saw) share one
    fit: the same pairs, recipe and seed give the same model, so 200 new users cost one fit, not 200.
    ``decompose.heads='auto'`` is made concrete on each seen pool (:func:`resolve_heads`).
    """

    def __init__(
        self, pool: PairFeatures, *, decompose: DecomposeConfig, config: AdaptConfig, seed: int
    ) -> None:
        self.pool, self.decompose, self.config, self.seed = pool, decompose, config, seed
        self._fits: dict[bytes, tuple[PairFeatures, RewardModel]] = {}
        self._auto: dict[bytes, str] = {}
        self._lore: dict[bytes, RewardModel] = {}

    def _key(self, user: str, test: PairFeatures) -> tuple[bytes, np.ndarray]:
        keep = seen_indices(self.pool, user, test)
        return np.packbits(np.isin(np.arange(len(self.pool)), keep)).tobytes(), keep

    def fit(
        self, user: str, test: PairFeatures, *, auto: bool = False
    ) -> tuple[PairFeatures, RewardModel, str | None]:
        """(seen pool, model fitted on it, the adapter ``auto`` chooses there — or ``None`` if not asked)."""
        key, keep = self._key(user, test)
        if key not in self._fits:
            seen = self.pool.select(keep)
            start = time.perf_counter()
            recipe = resolve_heads(seen, self.decompose, self.seed)
            self._fits[key] = (seen, fit_pool(seen, recipe, seed=self.seed).model)
            logger.info("%s: pool of %d pairs fitted in %.1f s", user, len(seen), time.perf_counter() - start)
        seen, model = self._fits[key]
        if auto and key not in self._auto:
            self._auto[key] = auto_adapter(seen, config=self.config, decompose=self.decompose, seed=self.seed)
        return seen, model, self._auto.get(key) if auto else None

    def lore(self, user: str, test: PairFeatures, rank: int | None) -> RewardModel:
        """The model of :meth:`fit` with a learned low-rank basis of the seen pool's users as heads."""
        key, _ = self._key(user, test)
        if key not in self._lore:
            seen, model, _ = self.fit(user, test)
            self._lore[key] = _lore_model(seen, model, self.decompose, rank)
        return self._lore[key]


def over_users(rows: Sequence[dict]) -> list[dict]:
    """Rows ``{user, method, k, mean, ci_low, ci_high, n_users}`` averaged over users: each user's mean
    over draws counts once, and the 95 % interval is over users (normal approximation) — the interval a
    population's figures carry, where a user is the unit drawn."""
    grouped: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        grouped.setdefault((row["method"], row["k"]), []).append(row["mean"])
    n_users = len({row["user"] for row in rows})
    out = []
    for (method, k), values in grouped.items():
        mean = float(np.mean(values))
        half = 1.96 * float(np.std(values, ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
        out.append(
            {
                "user": f"mean over {n_users} users",
                "method": method,
                "k": k,
                "mean": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "n_users": len(values),
            }
        )
    return out


def kshot_name(adapter: str) -> str:
    """The k-shot row an adapter's profile gives: ``user-bt`` for ``bt``, ``drm-<adapter>`` otherwise."""
    return "user-bt" if adapter == "bt" else f"drm-{adapter}"


def auto_adapter(seen: PairFeatures, *, config: AdaptConfig, decompose: DecomposeConfig, seed: int) -> str:
    """What ``adapt --method auto`` would use with a model decomposed on ``seen`` with ``--adapters``:
    the candidate that learns ``seen``'s own labelled users best as new users; ``config.auto_fallback``
    when it has none with enough pairs (a model decomposed without the choice)."""
    if not pool_users(seen, decompose.choice_k):
        logger.info(
            "auto: no labelled pool user with %d pairs; %s", 2 * decompose.choice_k, config.auto_fallback
        )
        return config.auto_fallback
    choice = choose_adapter(
        seen,
        methods=tuple(config.auto_candidates),
        k=decompose.choice_k,
        n_draws=decompose.choice_draws,
        seed=seed,
        decompose=decompose,
    )
    logger.info("auto: %s (%s)", choice.name, ", ".join(f"{m} {v:.3f}" for m, v in choice.scores.items()))
    return choice.name


def seen_pool(pool: PairFeatures, user: str, test: PairFeatures) -> PairFeatures:
    """What the pool may show when ``user`` is the target: every pair except those labelled ``user`` and
    those on one of the prompts of the user's ``test`` pairs."""
    return pool.select(seen_indices(pool, user, test))


def seen_indices(pool: PairFeatures, user: str, test: PairFeatures) -> np.ndarray:
    """Indices of the pairs of :func:`seen_pool`."""
    labels = np.array([u if u is not None else "" for u in pool.users], dtype=object)
    groups = np.array(pool.groups, dtype=object)
    return np.flatnonzero((labels != user) & ~np.isin(groups, list(set(test.groups))))


def _check_methods(methods: Sequence[str], known: Sequence[str]) -> None:
    unknown = set(methods) - set(known)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {tuple(known)}")


def _lore_model(
    seen: PairFeatures, model: RewardModel, decompose: DecomposeConfig, rank: int | None
) -> RewardModel:
    from pluralrm.adapt.lowrank import fit_lowrank_basis

    labels = [u if u is not None else "" for u in seen.users]
    names = sorted(set(labels))
    D = seen.differences
    by_user = [D[[i for i, u in enumerate(labels) if u == name]] for name in names]
    rank = rank or min(decompose.n_components or D.shape[1], 2 * len(names), D.shape[1])
    basis = fit_lowrank_basis(by_user, rank)
    return replace(model, decomposed=DecomposedRewardModel.with_components(basis, D))


def _user_rows(
    user: str,
    adapt: PairFeatures,
    test: PairFeatures,
    models: dict[str, RewardModel],
    *,
    methods: Sequence[str],
    ks: Sequence[int],
    n_draws: int,
    random_seeds: Sequence[int],
    config: AdaptConfig,
    user_bt_alpha: float,
    extra: dict | None,
) -> list[dict]:
    model = models["drm"]
    D_pool = adapt.differences
    random_models: dict[int, RewardModel] = {}

    def random_model(seed: int) -> RewardModel:
        if seed not in random_models:
            heads = model.require_heads("adapt")
            components = random_unit_heads(len(heads.components_), heads.n_features_in_, seed=seed)
            random_models[seed] = RewardModel(
                namespace=model.namespace,
                backbone_name=model.backbone_name,
                decomposed=DecomposedRewardModel.with_components(components, D_pool),
            )
        return random_models[seed]

    rows = []
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
                    heads = (
                        random_model(random_seeds[draw % len(random_seeds)])
                        if family == "random"
                        else (models[family])
                    )
                    margins = adapted_margins(heads, method, D_pool[idx], test, config=config)
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


@dataclass(frozen=True)
class PoolChoice:
    """The chosen candidate (a feature space or an adapter), every candidate's score on the pool's users
    (mean k-shot accuracy) and the users it was measured on."""

    name: str
    scores: dict[str, float]
    users: tuple[str, ...]


def pool_users(
    pool: PairFeatures, k: int, *, at_most: int | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Indices of each labelled pool user with enough pairs to be split (≥ 2·k pairs, ≥ 2 prompts).

    Unlabelled pairs (general data) are nobody's preferences and do not count. With ``at_most``, a
    seeded sample of that many of them (sorted by name): a pool of 1,000 users measures a choice on a
    sample, since each measured user is left out of the pool in turn (one pool fit each).
    """
    by_user: dict[str, list[int]] = {}
    for i, user in enumerate(pool.users):
        if user:
            by_user.setdefault(user, []).append(i)
    eligible = {
        user: np.array(idx)
        for user, idx in sorted(by_user.items())
        if len(idx) >= 2 * k and len({pool.groups[i] for i in idx}) >= 2
    }
    if at_most is None or len(eligible) <= at_most:
        return eligible
    names = list(eligible)
    picked = np.random.default_rng(seed).choice(len(names), size=at_most, replace=False)
    return {names[i]: eligible[names[i]] for i in sorted(picked)}


def pool_user_halves(
    pool: PairFeatures, k: int, seed: int, what: str, *, at_most: int | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each labelled pool user's pair indices split 50/50 by prompt (seeded): (adaptation, test).

    ``ValueError`` naming ``what`` needed them if no pool user has the ≥ 2·k pairs this needs.
    """
    users = pool_users(pool, k, at_most=at_most, seed=seed)
    if not users:
        raise ValueError(
            f"{what} needs labelled users in the pool with at least {2 * k} pairs each "
            "(pairs' 'user' field, or NAME=PATH inputs); the pool has none"
        )
    halves = {}
    for user, idx in users.items():
        first, second = group_split([pool.groups[i] for i in idx], [0.5, 0.5], seed=seed)
        halves[user] = (idx[first], idx[second])
    return halves


def choose_adapter(
    pool: PairFeatures,
    *,
    methods: tuple[str, ...] = ("map", "bt"),
    k: int = DECOMPOSE.choice_k,
    n_draws: int = DECOMPOSE.choice_draws,
    seed: int = 0,
    decompose=DECOMPOSE,
) -> PoolChoice:
    """The adapter that learns the pool's own users best from ``k`` pairs (ties: the first listed).

    Each labelled pool user (≥ 2·k pairs) is split by prompt into adaptation and test halves and treated as
    a new user: :func:`run_kshot` refits the general head and the heads without their pairs and without
    their test prompts, adapts each method on ``k`` of their pairs and scores their test half.
    """
    from pluralrm.adapt.adapters import ADAPTERS

    if not methods or any(m not in ADAPTERS for m in methods):
        raise ValueError(f"adapters to choose from: {list(methods)}; known {list(ADAPTERS)}")
    names = {m: kshot_name(m) for m in methods}
    scores, users = _pool_users_scores(
        pool,
        {m: (decompose, name) for m, name in names.items()},
        k=k,
        n_draws=n_draws,
        seed=seed,
        what="choosing an adapter",
    )
    best = max(methods, key=lambda m: scores[m])
    return PoolChoice(name=best, scores=scores, users=users)


HEADS = ("pca", "users")  # what DecomposeConfig.heads may fit; "auto" chooses among them


def choose_heads(
    pool: PairFeatures,
    *,
    kinds: tuple[str, ...] = HEADS,
    method: str = "drm-map",
    k: int = DECOMPOSE.choice_k,
    n_draws: int = DECOMPOSE.choice_draws,
    seed: int = 0,
    decompose: DecomposeConfig = DECOMPOSE,
) -> PoolChoice:
    """Where the heads come from (``pca`` of the pooled differences, or the ``users``' own heads): the
    kind whose heads let ``method`` learn the pool's own users best from ``k`` pairs, each measured user
    left out of the pool as :func:`choose_adapter` leaves them (ties: the first listed)."""
    unknown = sorted(set(kinds) - set(HEADS))
    if not kinds or unknown:
        raise ValueError(f"heads to choose from: {list(kinds)}; known {list(HEADS)}")
    recipes = {kind: (replace(decompose, heads=kind), method) for kind in kinds}
    scores, users = _pool_users_scores(pool, recipes, k=k, n_draws=n_draws, seed=seed, what="choosing heads")
    best = max(kinds, key=lambda kind: scores[kind])
    return PoolChoice(name=best, scores=scores, users=users)


def resolve_heads(pool: PairFeatures, decompose: DecomposeConfig, seed: int) -> DecomposeConfig:
    """``decompose`` with ``heads='auto'`` made concrete on ``pool`` (:func:`choose_heads`; ``pca`` when
    the pool has no labelled users to choose on); other settings unchanged."""
    if decompose.heads != "auto":
        return decompose
    if len(pool_users(pool, decompose.choice_k)) < 2:
        logger.info(
            "heads auto: fewer than two labelled pool users with %d pairs; pca", 2 * decompose.choice_k
        )
        return replace(decompose, heads="pca")
    choice = choose_heads(
        pool, k=decompose.choice_k, n_draws=decompose.choice_draws, seed=seed, decompose=decompose
    )
    logger.info(
        "heads auto: %s (%s)", choice.name, ", ".join(f"{h} {v:.3f}" for h, v in choice.scores.items())
    )
    return replace(decompose, heads=choice.name)


def _pool_users_scores(
    pool: PairFeatures,
    recipes: dict[str, tuple[DecomposeConfig, str]],
    *,
    k: int,
    n_draws: int,
    seed: int,
    what: str,
) -> tuple[dict[str, float], tuple[str, ...]]:
    """Each candidate's mean accuracy at ``k`` pairs on the pool's own labelled users (a seeded sample
    of ``choice_users``), each split by prompt and left out of the pool: ``recipes`` maps a candidate to
    the pool recipe and the k-shot method it is measured with."""
    first = next(iter(recipes.values()))[0]
    halves = pool_user_halves(pool, k, seed, what, at_most=first.choice_users)
    targets = {user: (pool.select(a), pool.select(t)) for user, (a, t) in halves.items()}
    scores = {}
    by_recipe: dict[DecomposeConfig, dict[str, str]] = {}
    for candidate, (recipe, method) in recipes.items():
        by_recipe.setdefault(recipe, {})[candidate] = method
    for recipe, candidates in by_recipe.items():
        rows = run_kshot(
            pool,
            targets,
            ks=(k,),
            n_draws=n_draws,
            methods=list(dict.fromkeys(candidates.values())),
            decompose=recipe,
            random_seed=seed,
        )
        for candidate, method in candidates.items():
            scores[candidate] = float(np.mean([r["mean"] for r in rows if r["method"] == method]))
    return scores, tuple(halves)
