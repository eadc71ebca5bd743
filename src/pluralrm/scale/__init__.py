"""Featurization, scoring and PCA sums beyond one process, on a Ray cluster (``--engine ray``).

The single-process path (:mod:`pluralrm.backbone`, :mod:`pluralrm.rewards`) stays the default and the
reference: everything here must give the same vectors and the same heads, only computed elsewhere.
Ray is imported inside functions, so importing this package costs nothing when Ray is not used.
"""

from pluralrm.scale.engine import ENGINES, connect, uses_ray
from pluralrm.scale.ray_featurize import (
    FeaturizeWorker,
    RayFeatures,
    ray_encode_conversations,
    ray_featurize_pairs,
    ray_featurize_ranked,
)
from pluralrm.scale.ray_pca import fit_reward_model_ray
from pluralrm.scale.recipe import FeaturizerRecipe

__all__ = [
    "ENGINES",
    "FeaturizeWorker",
    "FeaturizerRecipe",
    "RayFeatures",
    "connect",
    "fit_reward_model_ray",
    "ray_encode_conversations",
    "ray_featurize_pairs",
    "ray_featurize_ranked",
    "uses_ray",
]
