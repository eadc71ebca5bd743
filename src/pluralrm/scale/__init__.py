"""Engines: featurization, scoring and pool fits in this process or beyond it, on a Ray cluster.

:func:`make_engine` gives a :class:`LocalEngine` (the default and the reference) or a :class:`RayEngine`
(``--engine ray``) with the same interface; everything on Ray must give the same vectors and the same
heads as one process, only computed elsewhere. Ray is imported inside functions, so importing this
package costs nothing when Ray is not used.
"""

from pluralrm.scale.cluster import ENGINES, connect, uses_ray
from pluralrm.scale.engine import Engine, LocalEngine, RayEngine, make_engine
from pluralrm.scale.ray_featurize import (
    FeaturizeWorker,
    RayFeatures,
    ray_encode_conversations,
    ray_featurize_pairs,
    ray_featurize_ranked,
)
from pluralrm.scale.ray_pca import fit_pool_ray
from pluralrm.scale.recipe import FeaturizerRecipe

__all__ = [
    "ENGINES",
    "Engine",
    "FeaturizeWorker",
    "FeaturizerRecipe",
    "LocalEngine",
    "RayEngine",
    "RayFeatures",
    "connect",
    "fit_pool_ray",
    "make_engine",
    "ray_encode_conversations",
    "ray_featurize_pairs",
    "ray_featurize_ranked",
    "uses_ray",
]
