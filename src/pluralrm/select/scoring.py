"""Rewards for many responses per prompt, through the one scoring path (:meth:`RewardModel.rewards`).

Responses are featurized once per file (so scoring with several rewards — the general head, a head, every
user's profile — costs one forward pass per text), in chunks of prompts so that a long run shows progress
and flushes the feature cache as it goes. Responses to one prompt go to the featurizer together, which lets
a causal backbone encode the shared prompt once (``FeaturizeConfig.share_prompts``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pluralrm.config import SELECT
from pluralrm.rewards.protocols import ConversationEncoder, Profile
from pluralrm.rewards.reward_model import RewardModel


def featurize_ranked(
    records: Sequence[dict],
    featurizer: ConversationEncoder,
    *,
    chunk_prompts: int = SELECT.chunk_prompts,
    progress: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Feature matrices, one ``(n_responses, d)`` array per record.

    Parameters
    ----------
    records : sequence of ranked-responses records (``prompt``, ``responses``)
    featurizer : ConversationEncoder (a :class:`pluralrm.backbone.Featurizer`)
        To score with a reward model, its own: ``model.featurizer()`` (backbone, pooling, layer and dtype
        the heads were fitted on).
    chunk_prompts : int
        Prompts featurized per call (a progress step; the featurizer batches by length inside).
    progress : callable, optional
        Called with the number of responses done after each chunk.
    """
    out: list[np.ndarray] = []
    for start in range(0, len(records), chunk_prompts):
        chunk = records[start : start + chunk_prompts]
        prompts = [r["prompt"] for r in chunk for _ in r["responses"]]
        responses = [text for r in chunk for text in r["responses"]]
        H = featurizer.encode_conversations(prompts, responses)
        out.extend(np.split(H, np.cumsum([len(r["responses"]) for r in chunk])[:-1]))
        if progress is not None:
            progress(len(responses))
    return out


def rewards_from_features(
    features: Sequence[np.ndarray],
    model: RewardModel,
    *,
    user: Profile | None = None,
    head: str | None = None,
) -> list[np.ndarray]:
    """Each record's rewards under one reward (general head, ``head=``, or ``user=``)."""
    if not features:
        return []
    stacked = model.rewards(np.concatenate(features), user=user, head=head)
    return np.split(stacked, np.cumsum([len(H) for H in features])[:-1])


def with_rewards(records: Sequence[dict], rewards: Sequence[np.ndarray], source: str) -> list[dict]:
    """Copies of ``records`` whose ``rewards`` are replaced, with ``reward_source`` saying by what."""
    out: list[dict[str, Any]] = []
    for record, values in zip(records, rewards, strict=True):
        out.append({**record, "rewards": [float(v) for v in values], "reward_source": source})
    return out


def describe_reward(model_name: str, *, user: str | None = None, head: str | None = None) -> str:
    """A short label of which reward made the scores (kept in each output row)."""
    if user is not None:
        return f"{model_name}:user={user}"
    return f"{model_name}:head={head or 'general'}"
