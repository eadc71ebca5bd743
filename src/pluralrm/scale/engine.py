"""Engines: where featurization and pool fits run — this process (:class:`LocalEngine`, the default and
the reference) or a Ray cluster (:class:`RayEngine`).

Both have the same small interface, so a caller picks one with :func:`make_engine` and never branches on
it again:

* :meth:`featurize_pairs` — preference pairs → :class:`~pluralrm.data.features.PairFeatures`, with a
  featurizer's settings or a reward model's own featurizer;
* :meth:`featurize_ranked` — ranked responses → one ``(n_responses, d)`` matrix per record, with a reward
  model's featurizer;
* :meth:`fit_pool` — the one pool recipe (:func:`pluralrm.rewards.fitting.fit_pool`) on a pool;
* :meth:`check_pool` — refuses, before any work, a pool the engine cannot fit.

Each ``featurize_*`` returns its result and a line saying where it ran. Ray is imported only inside
:class:`RayEngine`'s methods (through :mod:`pluralrm.scale.ray_featurize` / :mod:`~pluralrm.scale.ray_pca`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pluralrm.config import (
    DECOMPOSE,
    ENGINE,
    FEATURIZE,
    SELECT,
    DecomposeConfig,
    EngineConfig,
    FeaturizeConfig,
)
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.fitting import PoolFit, fit_pool
from pluralrm.scale.cluster import uses_ray

if TYPE_CHECKING:
    from pluralrm.backbone import FeatureCache
    from pluralrm.rewards.reward_model import RewardModel

# A part of a pool: features in memory, or a `pluralrm featurize` output directory.
PoolPart = PairFeatures | str | Path


def load_part(part: PoolPart) -> PairFeatures:
    """A pool part as features: in-memory features as they are, a `featurize` output directory loaded."""
    return part if isinstance(part, PairFeatures) else PairFeatures.load(part)


class Engine(Protocol):
    """What :class:`LocalEngine` and :class:`RayEngine` both offer."""

    config: EngineConfig

    def featurize_pairs(
        self,
        records: Sequence[dict],
        *,
        featurize: FeaturizeConfig = FEATURIZE,
        model: RewardModel | None = None,
        cache: FeatureCache | None = None,
        source: str = "",
        show_progress: bool = False,
    ) -> tuple[PairFeatures, str]: ...

    def featurize_ranked(
        self,
        records: Sequence[dict],
        model: RewardModel,
        *,
        device: str = FEATURIZE.device,
        cache: FeatureCache | None = None,
        chunk_prompts: int = SELECT.chunk_prompts,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[list[np.ndarray], str]: ...

    def check_pool(self, inputs: Sequence[str], *, choices: bool = False) -> None: ...

    def fit_pool(
        self, parts: Sequence[PoolPart], config: DecomposeConfig = DECOMPOSE, *, seed: int | None = None
    ) -> PoolFit: ...


def make_engine(config: EngineConfig = ENGINE) -> LocalEngine | RayEngine:
    """The engine ``config.engine`` names; a bad choice or worker count fails here, before any work.

    Examples
    --------
    >>> type(make_engine()).__name__
    'LocalEngine'
    """
    return RayEngine(config) if uses_ray(config) else LocalEngine(config)


class LocalEngine:
    """This process: the single-process path, the default and the one every other engine must match."""

    def __init__(self, config: EngineConfig = ENGINE) -> None:
        self.config = config

    def featurize_pairs(
        self,
        records: Sequence[dict],
        *,
        featurize: FeaturizeConfig = FEATURIZE,
        model: RewardModel | None = None,
        cache: FeatureCache | None = None,
        source: str = "",
        show_progress: bool = False,
    ) -> tuple[PairFeatures, str]:
        """Features of every pair, with ``featurize``'s backbone, or ``model``'s own featurizer on
        ``featurize.device`` when a model is given; and the device they were computed on."""
        from pluralrm.backbone import build_featurizer
        from pluralrm.backbone.pairs import featurize_pairs

        if model is not None:
            featurizer = model.featurizer(device=featurize.device, cache=cache)
        else:
            featurizer = build_featurizer(featurize, cache=cache)
        featurizer.show_progress = show_progress
        features = featurize_pairs(list(records), featurizer, source=source)
        return features, str(featurizer.backbone.device)

    def featurize_ranked(
        self,
        records: Sequence[dict],
        model: RewardModel,
        *,
        device: str = FEATURIZE.device,
        cache: FeatureCache | None = None,
        chunk_prompts: int = SELECT.chunk_prompts,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[list[np.ndarray], str]:
        """One feature matrix per ranked record, with ``model``'s featurizer (``progress`` is called with
        the responses done after each chunk of ``chunk_prompts`` prompts)."""
        from pluralrm.select import featurize_ranked

        featurizer = model.featurizer(device=device, cache=cache)
        features = featurize_ranked(records, featurizer, chunk_prompts=chunk_prompts, progress=progress)
        return features, str(featurizer.backbone.device)

    def check_pool(self, inputs: Sequence[str], *, choices: bool = False) -> None:
        """Every pool can be fitted in this process."""

    def fit_pool(
        self, parts: Sequence[PoolPart], config: DecomposeConfig = DECOMPOSE, *, seed: int | None = None
    ) -> PoolFit:
        """:func:`~pluralrm.rewards.fitting.fit_pool` on the parts pooled in order (directories loaded)."""
        return fit_pool(PairFeatures.concatenate([load_part(part) for part in parts]), config, seed=seed)


class RayEngine:
    """A Ray cluster: Ray Data actors holding the backbone featurize, shard actors sum a pool's moments
    (docs/guides/scale.md). Gives the vectors and heads of :class:`LocalEngine`, computed elsewhere."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def featurize_pairs(
        self,
        records: Sequence[dict],
        *,
        featurize: FeaturizeConfig = FEATURIZE,
        model: RewardModel | None = None,
        cache: FeatureCache | None = None,
        source: str = "",
        show_progress: bool = False,
    ) -> tuple[PairFeatures, str]:
        """As :meth:`LocalEngine.featurize_pairs`, on the workers (the driver loads no backbone)."""
        from pluralrm.scale.ray_featurize import ray_featurize_pairs

        recipe = self._recipe(featurize, model, cache, featurize.device)
        features, run = ray_featurize_pairs(
            list(records), recipe, engine=self.config, source=source, show_progress=show_progress
        )
        if model is not None:
            model.check_namespace(features.namespace, what="the reward model")
        return features, self._where(run)

    def featurize_ranked(
        self,
        records: Sequence[dict],
        model: RewardModel,
        *,
        device: str = FEATURIZE.device,
        cache: FeatureCache | None = None,
        chunk_prompts: int = SELECT.chunk_prompts,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[list[np.ndarray], str]:
        """As :meth:`LocalEngine.featurize_ranked`, on the workers (Ray Data shows its own progress)."""
        from pluralrm.scale.ray_featurize import ray_featurize_ranked

        recipe = self._recipe(FEATURIZE, model, cache, device)
        features, run = ray_featurize_ranked(list(records), recipe, engine=self.config, show_progress=True)
        model.check_namespace(run.namespace, what="the reward model")
        return features, self._where(run)

    def check_pool(self, inputs: Sequence[str], *, choices: bool = False) -> None:
        """Ray fits `featurize` outputs on disk, any size; choosing layers or adapters runs in one process."""
        if choices:
            raise ValueError(
                "--layers, --adapters and --heads users/auto run in one process; drop --engine ray"
            )
        raw = [item for item in inputs if not Path(item).is_dir()]
        if raw:
            raise ValueError(
                f"--engine ray decomposes featurize outputs; featurize {raw[0]} first "
                "(featurize --engine ray)"
            )

    def fit_pool(
        self, parts: Sequence[PoolPart], config: DecomposeConfig = DECOMPOSE, *, seed: int | None = None
    ) -> PoolFit:
        """:func:`~pluralrm.scale.ray_pca.fit_pool_ray`: shards read the directories' rows themselves."""
        from pluralrm.scale.ray_pca import fit_pool_ray

        if config.heads != "pca":
            # Shards sum the moments PCA needs; per-user heads need every user's pairs in one place.
            raise ValueError(f"--heads {config.heads} runs on the local engine; Ray fits PCA heads")

        paths = [part for part in parts if not isinstance(part, PairFeatures)]
        if len(paths) < len(parts):
            raise ValueError("the Ray engine fits `featurize` outputs on disk; save in-memory features first")
        self.check_pool([str(path) for path in paths])
        return fit_pool_ray(paths, config, engine=self.config, seed=seed)

    @staticmethod
    def _recipe(featurize: FeaturizeConfig, model, cache, device: str):
        from pluralrm.scale.recipe import FeaturizerRecipe

        root = (
            None if cache is None else str(cache.root)
        )  # workers write the same cache (shared on a cluster)
        if model is not None:
            return FeaturizerRecipe.for_model(model, device=device, cache_root=root)
        return FeaturizerRecipe(config=featurize, cache_root=root)

    def _where(self, run) -> str:
        return (
            f"Ray ({self.config.num_workers} workers; {run.n_computed} of {run.n_unique} texts computed, "
            "rest cached)"
        )
