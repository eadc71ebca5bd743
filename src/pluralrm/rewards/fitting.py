"""Fit a :class:`RewardModel` (general head + PCA heads) on featurized pairs."""

from __future__ import annotations

import logging
from dataclasses import replace

from pluralrm.config import DECOMPOSE, DecomposeConfig
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.linear_head import LinearRewardHead, fit_general_head
from pluralrm.rewards.reward_model import RewardModel, data_fingerprint

logger = logging.getLogger(__name__)


def fit_reward_model(
    train: PairFeatures,
    val: PairFeatures | None = None,
    *,
    config: DecomposeConfig = DECOMPOSE,
    backbone_name: str = "",
    **overrides,
) -> RewardModel:
    """General Bradley–Terry head and PCA heads of ``train``'s pair differences.

    With ``val``, the general head's L2 penalty is chosen on it from ``config.alphas``; otherwise
    ``config.alpha``. ``config.n_components`` is capped at the feature dimension. Keyword ``overrides``
    replace fields of ``config`` (``fit_reward_model(train, n_components=8)``).

    The backbone name comes from the features (``featurize`` records it) or ``backbone_name``; it is
    never guessed from the fingerprint.
    """
    config = replace(config, **overrides)
    D = train.differences
    if val is not None:
        general, scores = fit_general_head(D, val.differences, alphas=config.alphas)
        logger.info("general head: validation accuracy by alpha %s → alpha=%g", scores, general.alpha)
    else:
        general = LinearRewardHead(alpha=config.alpha).fit(D)
    k = None if config.n_components is None else min(config.n_components, D.shape[1])
    decomposed = DecomposedRewardModel(n_components=k, center=config.center, batch_size=config.batch_size)
    return RewardModel(
        namespace=train.namespace,
        backbone_name=backbone_name or train.backbone_name,
        general=general,
        decomposed=decomposed.fit(D),
        metadata={"fit_pairs": len(train), "fit_data_sha256": data_fingerprint(D), "source": train.source},
    )
