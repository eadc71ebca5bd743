"""``--engine ray`` for the verbs that featurize, score or fit (featurize, decompose, score, rank): the
options, read from :class:`pluralrm.config.EngineConfig`, and thin calls into :mod:`pluralrm.scale`.

No verb lives here; each verb keeps its single-process path and hands over to these when Ray is asked for.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated

from pluralrm.cli.common import config_option, fail, feature_cache
from pluralrm.config import ENGINE, DecomposeConfig, EngineConfig, FeaturizeConfig

engine_option = partial(config_option, EngineConfig)
EngineOption = Annotated[str, engine_option("engine")]
AddressOption = Annotated[str | None, engine_option("address")]
WorkersOption = Annotated[int, engine_option("num_workers")]
GpusOption = Annotated[float, engine_option("gpus_per_worker")]


def engine_config(
    engine: str, address: str | None, num_workers: int, gpus_per_worker: float
) -> EngineConfig | None:
    """The checked EngineConfig when Ray is asked for, else None (the single-process path)."""
    from pluralrm.scale import uses_ray

    config = replace(
        ENGINE, engine=engine, address=address, num_workers=num_workers, gpus_per_worker=gpus_per_worker
    )
    try:
        return config if uses_ray(config) else None
    except ValueError as error:
        raise fail(str(error)) from None


def _recipe(featurize: FeaturizeConfig, cache: bool, model=None):
    from pluralrm.scale import FeaturizerRecipe

    root = feature_cache(cache).root if cache else None  # workers write the same cache (shared on a cluster)
    if model is not None:
        return FeaturizerRecipe.for_model(model, device=featurize.device, cache_root=root)
    return FeaturizerRecipe(config=featurize, cache_root=None if root is None else str(root))


def _where(engine: EngineConfig, run) -> str:
    return (
        f"Ray ({engine.num_workers} workers; {run.n_computed} of {run.n_unique} texts computed, rest cached)"
    )


def featurize_on_ray(
    records: list[dict],
    featurize: FeaturizeConfig,
    engine: EngineConfig,
    cache: bool,
    source: str,
    model=None,
):
    """PairFeatures made by Ray workers (with the model's featurizer when given), and where they ran."""
    from pluralrm.scale import ray_featurize_pairs

    recipe = _recipe(featurize, cache, model)
    features, run = ray_featurize_pairs(records, recipe, engine=engine, source=source, show_progress=True)
    if model is not None:
        model.check_namespace(features.namespace, what="the reward model")
    return features, _where(engine, run)


def featurize_ranked_on_ray(records: list[dict], model, device: str, cache: bool, engine: EngineConfig):
    """One feature matrix per ranked record, made by Ray workers with the model's featurizer."""
    from pluralrm.scale import ray_featurize_ranked

    recipe = _recipe(replace(FeaturizeConfig(), device=device), cache, model)
    features, run = ray_featurize_ranked(records, recipe, engine=engine, show_progress=True)
    model.check_namespace(run.namespace, what="the reward model")
    return features, _where(engine, run)


def decompose_on_ray(inputs: list[str], out: Path, config: DecomposeConfig, engine: EngineConfig):
    """Fit from per-shard sums on Ray and save; the inputs must be featurize outputs (any size)."""
    from pluralrm.scale import fit_reward_model_ray

    raw = [item for item in inputs if not Path(item).is_dir()]
    if raw:
        raise fail(
            f"--engine ray decomposes featurize outputs; featurize {raw[0]} first (featurize --engine ray)"
        )
    try:
        model, n_train, n_val = fit_reward_model_ray(inputs, config=config, engine=engine)
    except (FileNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    model.save_pretrained(out)
    return model, n_train, n_val
