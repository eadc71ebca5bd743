"""What a Ray worker needs to build the same :class:`~pluralrm.backbone.Featurizer` as one process would.

A worker cannot receive a loaded backbone (gigabytes, and tied to the driver's device), so the driver
sends this small picklable description and each actor loads the backbone once from it. The feature cache
is named by its root directory: on a cluster it must be shared by every node (docs/guides/scale.md),
which is what lets a re-run, or a batch retried after a worker died, find vectors already computed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pluralrm.config import FEATURIZE, FeaturizeConfig


@dataclass(frozen=True)
class FeaturizerRecipe:
    """A featurizer's settings, without its weights.

    Attributes
    ----------
    config : FeaturizeConfig
        Backbone name or path, pooling, layer, lengths, batch sizes, device and dtype, as for
        :func:`pluralrm.backbone.build_featurizer`.
    cache_root : str or None
        Root of the :class:`~pluralrm.backbone.FeatureCache` (``$PLURALRM_CACHE/features``); ``None``: no
        cache, every text is computed.
    normalize : bool
        L2-normalize each vector (``FeatureSpec.normalize``, which ``FeaturizeConfig`` does not carry).
    """

    config: FeaturizeConfig = FEATURIZE
    cache_root: str | None = None
    normalize: bool = False

    @classmethod
    def for_model(cls, model: Any, *, device: str = "auto", cache_root: str | Path | None = None):
        """The featurizer a :class:`~pluralrm.rewards.RewardModel`'s heads read (as ``model.featurizer()``).

        Backbone, pooling, layer, max length and dtype come from the features the heads were fitted on,
        so workers on GPUs still produce the dtype the heads expect.
        """
        from pluralrm.rewards.reward_model import comparable_namespace

        if not model.backbone_name:
            raise ValueError("this reward model does not record which backbone made its features")
        namespace = comparable_namespace(model.namespace)
        spec = namespace["spec"]
        config = replace(
            FEATURIZE,
            backbone=model.backbone_name,
            pooling=spec["pooling"],
            layer=spec["layer"],
            max_length=namespace["max_length"],
            device=device,
            dtype=namespace["dtype"],
        )
        root = None if cache_root is None else str(cache_root)
        return cls(config=config, cache_root=root, normalize=bool(spec.get("normalize", False)))

    def build(self):
        """Load the backbone and wrap it in a :class:`~pluralrm.backbone.Featurizer` (torch from here)."""
        from pluralrm.backbone import FeatureCache, FeatureSpec, Featurizer, default_spec, load_backbone

        config = self.config
        backbone = load_backbone(config.backbone, device=config.device, dtype=config.dtype)
        pooling = config.pooling or default_spec(backbone.kind).pooling
        return Featurizer(
            backbone,
            spec=FeatureSpec(pooling=pooling, layer=config.layer, normalize=self.normalize),  # type: ignore[arg-type]
            max_length=config.max_length,
            batch_size=config.batch_size,
            max_batch_tokens=config.max_batch_tokens,
            cache=None if self.cache_root is None else FeatureCache(self.cache_root),
            flush_every=config.flush_every,
            share_prompts=config.share_prompts,
        )
