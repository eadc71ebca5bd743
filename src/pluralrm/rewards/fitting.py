"""Fit a :class:`RewardModel` (general head + PCA heads) on featurized pairs."""

from __future__ import annotations

import logging

from pluralrm.data.features import PairFeatures
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.linear_head import LinearRewardHead, fit_general_head
from pluralrm.rewards.reward_model import RewardModel, data_fingerprint

logger = logging.getLogger(__name__)


def fit_reward_model(
    train: PairFeatures,
    val: PairFeatures | None = None,
    *,
    n_components: int | None = 32,
    center: bool = True,
    alpha: float = 1e-2,
    backbone_name: str = "",
) -> RewardModel:
    """General Bradley–Terry head and PCA heads of ``train``'s pair differences.

    With ``val``, the general head's L2 penalty is chosen on it from a small grid; otherwise ``alpha``.
    ``n_components`` is capped at the feature dimension.
    """
    D = train.differences
    if val is not None:
        general, scores = fit_general_head(D, val.differences)
        logger.info("general head: validation accuracy by alpha %s → alpha=%g", scores, general.alpha)
    else:
        general = LinearRewardHead(alpha=alpha).fit(D)
    k = None if n_components is None else min(n_components, D.shape[1])
    decomposed = DecomposedRewardModel(n_components=k, center=center).fit(D)
    return RewardModel(
        namespace=train.namespace,
        backbone_name=backbone_name or train.backbone_name or _backbone_name(train.namespace),
        general=general,
        decomposed=decomposed,
        metadata={"fit_pairs": len(train), "fit_data_sha256": data_fingerprint(D), "source": train.source},
    )


def _backbone_name(namespace: dict) -> str:
    fingerprint = str(namespace.get("backbone", ""))
    if fingerprint.startswith("minilm:"):
        return "minilm"
    if fingerprint.startswith("smollm2-gguf:"):
        return "smollm2"
    if fingerprint.startswith("hub:"):
        return fingerprint[4:].split("@")[0]
    return fingerprint
