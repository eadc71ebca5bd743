"""Featurize (prompt, response) pairs on a Ray cluster: Ray Data splits the rows, actors hold the backbone.

Why it is built this way:

* **The driver loads no backbone.** It deduplicates (prompt, response) rows, orders them and hands them to
  Ray Data; each :class:`FeaturizeWorker` actor of a fixed ``ActorPoolStrategy`` (``num_workers`` actors,
  one per GPU with ``num_gpus=1``) loads the backbone once and formats and encodes its batches with the
  ordinary :class:`~pluralrm.backbone.Featurizer` — the same code as one process, so the same vectors.
* **Length order.** Pairs are sorted by text length before they are split, so each batch an actor gets
  holds texts of similar length, and the featurizer length-sorts again by tokens inside it. Responses to
  one prompt (ranked files) keep their order instead, so a causal backbone shares the prompt's pass.
* **One content-addressed cache.** Workers write into the feature cache at ``recipe.cache_root`` (a
  shared filesystem on a cluster) and skip texts already there, so a re-run — on Ray or in one process —
  computes nothing twice, and a batch retried after a worker died recomputes only what was not flushed.
* **Exactly once.** Ray Data restarts a dead actor and retries its batch (``max_restarts`` and
  ``max_task_retries`` are -1 for actor pools); rows carry their index, and the driver fails loudly unless
  every row came back exactly once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pluralrm.config import ENGINE, EngineConfig
from pluralrm.data.features import PairFeatures, prompt_group
from pluralrm.data.records import Prompt
from pluralrm.scale.cluster import connect
from pluralrm.scale.recipe import FeaturizerRecipe

logger = logging.getLogger(__name__)


def _use_reserved_cpus() -> None:
    """Run torch on the CPUs Ray reserved for this actor.

    Ray reserves ``num_cpus`` for an actor but does not cap torch, which starts one thread per core of the
    node: two actors on a 2-core node measured 2 threads each (4 on 2 cores, oversubscribed).
    """
    import ray
    import torch

    if ray.is_initialized():
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0)
        if cpus >= 1:
            torch.set_num_threads(int(cpus))


class FeaturizeWorker:
    """A Ray Data actor: builds the featurizer once, then turns batches of rows into vectors.

    Parameters
    ----------
    recipe : FeaturizerRecipe
        The featurizer to build (backbone, spec, cache root).
    share_prompts : bool
        Encode with :meth:`Featurizer.encode_conversations` (a causal backbone runs a prompt shared by
        several responses once, as single-process scoring of ranked files does) instead of
        :meth:`Featurizer.encode` (as single-process pair featurization does).
    """

    def __init__(self, recipe: FeaturizerRecipe, share_prompts: bool = False) -> None:
        _use_reserved_cpus()
        self.featurizer = recipe.build()
        self.share_prompts = share_prompts
        self.namespace = json.dumps(self.featurizer.namespace(self.featurizer.spec), sort_keys=True)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rows ``index``, ``prompt`` (JSON), ``response`` → ``index``, ``features`` (n, d), ``computed``."""
        from pluralrm.backbone.feature_cache import text_key

        featurizer = self.featurizer
        prompts = [json.loads(p) for p in batch["prompt"]]
        responses = [str(r) for r in batch["response"]]
        texts = [featurizer.format(p, r) for p, r in zip(prompts, responses, strict=True)]
        if featurizer.cache is not None:
            cached = featurizer.cache.namespace(featurizer.namespace(featurizer.spec))
            computed = np.array([text_key(t) not in cached for t in texts], dtype=bool)
        else:
            computed = np.ones(len(texts), dtype=bool)
        if self.share_prompts:
            features = featurizer.encode_conversations(prompts, responses)
        else:
            features = featurizer.encode(texts)
        return {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "features": features,
            "computed": computed,
            "namespace": np.array([self.namespace] * len(texts)),
        }


@dataclass
class RayFeatures:
    """Vectors computed on Ray, in the caller's order.

    Attributes
    ----------
    features : ndarray of shape (n_texts, d)
    namespace : dict
        The featurizer's namespace (what the single-process featurizer would record).
    n_computed : int
        Distinct texts that went through the backbone; the rest came from the feature cache.
    n_unique : int
        Distinct (prompt, response) rows sent to the workers.
    """

    features: np.ndarray
    namespace: dict
    n_computed: int
    n_unique: int


def _prompt_json(prompt: Prompt) -> str:
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def ray_encode_conversations(
    prompts: Sequence[Prompt],
    responses: Sequence[str],
    recipe: FeaturizerRecipe,
    *,
    engine: EngineConfig = ENGINE,
    share_prompts: bool = False,
    worker_class: type[FeaturizeWorker] = FeaturizeWorker,
    show_progress: bool = False,
) -> RayFeatures:
    """Features of ``responses[i]`` given ``prompts[i]``, computed by ``engine.num_workers`` Ray actors.

    Parameters
    ----------
    prompts, responses : sequences of equal length
    recipe : FeaturizerRecipe
        The featurizer every actor builds.
    engine : EngineConfig
        Cluster address, actors, GPUs and CPUs per actor, rows per batch.
    share_prompts : bool
        Keep the rows' order (responses to one prompt together) and let a causal backbone share a
        prompt's pass, as single-process scoring of ranked files does; otherwise rows are sorted by length.
    worker_class : type
        The actor class (a subclass may add instrumentation; the tests kill one mid-run).
    show_progress : bool
        Show Ray Data's progress bars.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts for {len(responses)} responses")
    rows: dict[tuple[str, str], int] = {}
    where = [
        rows.setdefault((_prompt_json(p), r), len(rows)) for p, r in zip(prompts, responses, strict=True)
    ]
    unique = list(rows)
    order = (
        range(len(unique))
        if share_prompts
        else sorted(range(len(unique)), key=lambda i: -sum(map(len, unique[i])))
    )
    items = [{"index": i, "prompt": unique[i][0], "response": unique[i][1]} for i in order]
    features, namespace, n_computed = _run(items, recipe, engine, share_prompts, worker_class, show_progress)
    return RayFeatures(
        features=features[where], namespace=namespace, n_computed=n_computed, n_unique=len(unique)
    )


def _run(items, recipe, engine, share_prompts, worker_class, show_progress) -> tuple[np.ndarray, dict, int]:
    """Map ``items`` through the actor pool; vectors by row index, the namespace, texts computed."""
    import ray.data

    if not items:
        raise ValueError("nothing to featurize: no (prompt, response) rows")
    connect(engine)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = show_progress
    n_blocks = max(engine.num_workers, -(-len(items) // engine.rows_per_batch))
    dataset = ray.data.from_items(items, override_num_blocks=n_blocks).map_batches(
        worker_class,
        fn_constructor_kwargs={"recipe": recipe, "share_prompts": share_prompts},
        batch_size=engine.rows_per_batch,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=engine.num_workers),  # a fixed pool: one backbone each
        num_cpus=engine.cpus_per_worker,
        num_gpus=engine.gpus_per_worker or None,
    )
    out: np.ndarray | None = None
    returned = np.zeros(len(items), dtype=np.int64)
    namespaces: set[str] = set()
    n_computed = 0
    for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
        index = batch["index"]
        if out is None:
            out = np.zeros((len(items), batch["features"].shape[1]), dtype=np.float32)
        out[index] = batch["features"]
        np.add.at(returned, index, 1)
        namespaces.update(str(n) for n in set(batch["namespace"].tolist()))
        n_computed += int(batch["computed"].sum())
    wrong = np.flatnonzero(returned != 1)
    if len(wrong) or out is None:
        first = int(wrong[0]) if len(wrong) else 0
        raise RuntimeError(
            f"{len(wrong)} of {len(items)} rows came back other than once from the Ray workers "
            f"(row {first}: {int(returned[first])} times)"
        )
    if len(namespaces) != 1:
        raise RuntimeError(
            f"Ray workers featurized with {len(namespaces)} different namespaces: {namespaces}"
        )
    logger.info(
        "ray: %d rows, %d computed, %d from the feature cache",
        len(items),
        n_computed,
        len(items) - n_computed,
    )
    return out, json.loads(namespaces.pop()), n_computed


def ray_featurize_pairs(
    pairs: Sequence[dict],
    recipe: FeaturizerRecipe,
    *,
    engine: EngineConfig = ENGINE,
    source: str = "",
    show_progress: bool = False,
) -> tuple[PairFeatures, RayFeatures]:
    """:func:`pluralrm.backbone.featurize_pairs` on Ray: chosen and rejected of every pair, deduplicated.

    Returns the :class:`PairFeatures` (as one process would make them) and the run's counts.
    """
    prompts = [p["prompt"] for p in pairs] * 2
    responses = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    result = ray_encode_conversations(prompts, responses, recipe, engine=engine, show_progress=show_progress)
    n = len(pairs)
    features = PairFeatures(
        chosen=result.features[:n],
        rejected=result.features[n:],
        ids=[p.get("id") for p in pairs],
        subsets=[p.get("subset") for p in pairs],
        users=[p.get("user") for p in pairs],
        namespace=result.namespace,
        source=source,
        groups=[prompt_group(p["prompt"]) for p in pairs],
        backbone_name=recipe.config.backbone,
    )
    return features, result


def ray_featurize_ranked(
    records: Sequence[dict],
    recipe: FeaturizerRecipe,
    *,
    engine: EngineConfig = ENGINE,
    show_progress: bool = False,
) -> tuple[list[np.ndarray], RayFeatures]:
    """:func:`pluralrm.select.featurize_ranked` on Ray: one ``(n_responses, d)`` matrix per record."""
    prompts = [r["prompt"] for r in records for _ in r["responses"]]
    responses = [text for r in records for text in r["responses"]]
    result = ray_encode_conversations(
        prompts,
        responses,
        recipe,
        engine=engine,
        share_prompts=recipe.config.share_prompts,
        show_progress=show_progress,
    )
    split = np.split(result.features, np.cumsum([len(r["responses"]) for r in records])[:-1])
    return split, result
