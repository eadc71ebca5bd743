"""Backbones (named, local, hub), the cached featurizer, and pair featurization. Torch lives here."""

from pluralrm.backbone.build import build_featurizer
from pluralrm.backbone.device import resolve_device, resolve_dtype
from pluralrm.backbone.feature_cache import FeatureCache
from pluralrm.backbone.featurizer import Featurizer, pool_hidden
from pluralrm.backbone.loading import (
    NAMED_BACKBONES,
    Backbone,
    BackboneNotFoundError,
    load_backbone,
    resolve_backbone,
)
from pluralrm.backbone.pairs import featurize_pairs
from pluralrm.backbone.spec import FeatureSpec, default_spec

__all__ = [
    "NAMED_BACKBONES",
    "Backbone",
    "BackboneNotFoundError",
    "FeatureCache",
    "FeatureSpec",
    "Featurizer",
    "build_featurizer",
    "default_spec",
    "featurize_pairs",
    "load_backbone",
    "pool_hidden",
    "resolve_backbone",
    "resolve_device",
    "resolve_dtype",
]
