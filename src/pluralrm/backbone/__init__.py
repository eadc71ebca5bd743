"""Backbones (named, local, hub), the cached featurizer, and pair featurization. Torch lives here."""

from pluralrm.backbone.featurizer import FeatureSpec, Featurizer, default_spec, pool_hidden
from pluralrm.backbone.loading import (
    NAMED_BACKBONES,
    Backbone,
    BackboneNotFoundError,
    load_backbone,
)
from pluralrm.backbone.pairs import featurize_pairs

__all__ = [
    "NAMED_BACKBONES",
    "Backbone",
    "BackboneNotFoundError",
    "FeatureSpec",
    "Featurizer",
    "default_spec",
    "featurize_pairs",
    "load_backbone",
    "pool_hidden",
]
