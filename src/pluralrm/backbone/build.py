"""A featurizer from a `FeaturizeConfig`: the one way the CLI and the demo make one."""

from __future__ import annotations

from pluralrm.backbone.feature_cache import FeatureCache
from pluralrm.backbone.featurizer import Featurizer
from pluralrm.backbone.loading import load_backbone
from pluralrm.backbone.spec import FeatureSpec, as_pooling, default_spec
from pluralrm.config import FEATURIZE, FeaturizeConfig


def build_featurizer(
    config: FeaturizeConfig = FEATURIZE, *, cache: FeatureCache | None = None, show_progress: bool = False
) -> Featurizer:
    """Load ``config.backbone`` on its device and dtype and wrap it in a :class:`Featurizer`.

    ``config.pooling=None`` takes the backbone kind's default (last token for causal LMs, mean for
    encoders).
    """
    backbone = load_backbone(config.backbone, device=config.device, dtype=config.dtype)
    pooling = config.pooling or default_spec(backbone.kind).pooling
    return Featurizer(
        backbone,
        spec=FeatureSpec(pooling=as_pooling(pooling), layer=config.layer),
        max_length=config.max_length,
        batch_size=config.batch_size,
        max_batch_tokens=config.max_batch_tokens,
        cache=cache,
        flush_every=config.flush_every,
        show_progress=show_progress,
    )
