"""The loop in one process: a label given on the mounted labelling page becomes the labeller's profile.

:class:`LabelLoop` is what ``pluralrm serve MODEL --label PROJECT`` lends the labelling routes
(:class:`pluralrm.label.app.PersonalLoop`):

* **pick** — the pairs to ask a labeller next under personal assignment: the active rule
  (:func:`pluralrm.adapt.active.next_pairs`) on the model's heads and prior and on the labeller's own
  labelled pairs (everything their profile was fitted on, labels and ``/v1/users/NAME/comparisons`` alike);
* **apply** — the bridge between the two stores. The label store keeps the answer; the profile store keeps,
  keyed by ``label:PROJECT_ID:PAIR_ID``, the comparison it stands for (none for a tie or a skip) and refits
  the profile in the same transaction (:meth:`pluralrm.adapt.ProfileStore.set_comparison`). The reply to
  the label comes after both commits, so the next ``/v1/score``, ``/get_reward`` or best-of-N for that user
  already uses it. The pair is featurized *before* the label is stored (:meth:`prepare`), so a backbone
  failure stores nothing; what remains between the two commits (the process dying) is repaired by
  :meth:`sync` at the next start, which also applies labels given while no model served the project
  (``pluralrm label serve``). Setting a keyed comparison is idempotent, so replaying is safe.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from pluralrm.adapt.active import DEFAULT_STRATEGY, STRATEGIES, next_pairs
from pluralrm.adapt.personalize import build_profile
from pluralrm.adapt.profiles import Comparison, ProfileStore, UserProfile
from pluralrm.label.io import prompt_messages
from pluralrm.label.store import LabelStore, PairToLabel
from pluralrm.rewards.reward_model import RewardModel

# (prompt, response) conversations → their feature rows (the server's feature service, once started).
Featurize = Callable[[list[tuple[Any, str]]], Awaitable[np.ndarray]]

logger = logging.getLogger(__name__)


def pair_prompt(pair: PairToLabel) -> Any:
    """The prompt as the scoring path takes it: the conversation a pair came with, else its string."""
    return prompt_messages(pair) if pair.provenance.get("conversation") else pair.prompt


def comparison_of(pair: PairToLabel, choice: str) -> Comparison | None:
    """The comparison a label stands for (``a`` or ``b`` preferred), or ``None`` for a tie or a skip."""
    if choice == "a":
        return Comparison(pair_prompt(pair), pair.response_a, pair.response_b)
    if choice == "b":
        return Comparison(pair_prompt(pair), pair.response_b, pair.response_a)
    return None


class LabelLoop:
    """Personal assignment and the label → profile bridge for one labelling project on one server."""

    def __init__(
        self,
        model: RewardModel,
        profiles: ProfileStore,
        store: LabelStore,
        featurize: Featurize,
        *,
        features: str,
        strategy: str | None = None,
    ) -> None:
        strategy = strategy or DEFAULT_STRATEGY
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        self.model, self.profiles, self.store, self.featurize = model, profiles, store, featurize
        self.strategy = strategy
        self.features = features  # the feature namespace's fingerprint the comparisons are stored under
        self.source_prefix = f"label:{store.project_id}:"
        self._diffs: dict[str, np.ndarray] = {}  # pair id → h(response_a) − h(response_b)

    async def diffs(self, pairs: Sequence[PairToLabel]) -> np.ndarray:
        """``h(a) − h(b)`` of each pair, featurized once per pair by the server's feature service."""
        missing = list({p.pair_id: p for p in pairs if p.pair_id not in self._diffs}.values())
        if missing:
            conversations = [(pair_prompt(p), p.response_a) for p in missing]
            H = await self.featurize(conversations + [(pair_prompt(p), p.response_b) for p in missing])
            for i, pair in enumerate(missing):
                self._diffs[pair.pair_id] = H[i] - H[len(missing) + i]
        return np.stack([self._diffs[p.pair_id] for p in pairs]) if pairs else np.zeros((0, 0))

    async def pick(self, user: str, candidates: Sequence[PairToLabel], n: int) -> list[str]:
        X = await self.diffs(candidates)
        model = self.model
        labelled = self.profiles.comparison_diffs(user, features=self.features, n_features=model.n_features)
        # Seeded per user and per label count: reproducible, and two users' random baselines differ.
        seed = zlib.crc32(f"{user}:{len(labelled)}".encode())
        picked = await asyncio.to_thread(
            next_pairs, model, X, labelled if len(labelled) else None, strategy=self.strategy, n=n, seed=seed
        )
        return [candidates[i].pair_id for i in picked]

    async def prepare(self, pair: PairToLabel) -> None:
        await self.diffs([pair])

    async def apply(self, user: str, pair: PairToLabel, choice: str) -> UserProfile | None:
        comparison = comparison_of(pair, choice)
        diff = None
        if comparison is not None:
            d = (await self.diffs([pair]))[0]
            diff = d if choice == "a" else -d
        model = self.model

        def refit(D: np.ndarray) -> UserProfile:
            return build_profile(model, user, D.astype(np.float64))

        return await asyncio.to_thread(
            self.profiles.set_comparison,
            user,
            self.source_prefix + pair.pair_id,
            comparison,
            diff,
            features=self.features,
            refit=refit,
        )

    async def sync(self) -> int:
        """Apply every label of the project whose comparison in the profile store is missing or differs
        (and remove comparisons whose label is gone); returns how many were changed."""
        stored = self.profiles.sourced(self.source_prefix)
        pairs = {pair.pair_id: pair for pair in self.store.pairs()}
        wanted: dict[tuple[str, str], tuple[PairToLabel, str]] = {}
        for label in self.store.labels():
            pair = pairs[label.pair_id]
            wanted[(label.labeller, self.source_prefix + pair.pair_id)] = (pair, label.choice)
        changed = 0
        for (user, source), (pair, choice) in wanted.items():
            comparison = comparison_of(pair, choice)
            have = stored.get((user, source))
            if (None if comparison is None else (comparison.chosen, comparison.rejected)) != have:
                await self.apply(user, pair, choice)
                changed += 1
        for user, source in set(stored) - set(wanted):
            pair_id = source.removeprefix(self.source_prefix)
            if pair_id in pairs:
                await self.apply(user, pairs[pair_id], "skip")
                changed += 1
        return changed
