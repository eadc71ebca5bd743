"""Ray engine: the same vectors and heads as one process, one shared cache, and a killed worker retried.

A local Ray cluster (two CPUs) is started once for the module; the backbones are the tiny random models of
tests/conftest.py.
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from pluralrm.backbone import FeatureCache, featurize_pairs  # noqa: E402
from pluralrm.config import DECOMPOSE, ENGINE, FEATURIZE  # noqa: E402
from pluralrm.data.features import PairFeatures  # noqa: E402
from pluralrm.data.synthetic import make_synthetic_preferences  # noqa: E402
from pluralrm.scale import (  # noqa: E402
    FeaturizerRecipe,
    FeaturizeWorker,
    LocalEngine,
    RayEngine,
    make_engine,
    ray_featurize_pairs,
    ray_featurize_ranked,
    uses_ray,
)

TWO_WORKERS = replace(ENGINE, engine="ray", num_workers=2, rows_per_batch=16)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    from ray import cloudpickle

    # The killing worker below is defined here; workers cannot import a test module, so ship it by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pairs() -> list[dict]:
    return make_synthetic_preferences(n_prompts=8, seed=3).pairs[:40]


def _recipe(model_dir: Path, cache_root: Path | None) -> FeaturizerRecipe:
    config = replace(FEATURIZE, backbone=str(model_dir), device="cpu", dtype="float32", batch_size=8)
    return FeaturizerRecipe(config=config, cache_root=None if cache_root is None else str(cache_root))


def _shards(cache_root: Path) -> set[Path]:
    return set(cache_root.rglob("shard-*.safetensors"))


def test_ray_features_equal_one_process(tiny_model_dirs, pairs):
    # llama: causal with a chat template (the encoder, BERT, is checked in the killed-worker test).
    recipe = _recipe(tiny_model_dirs["llama"], None)
    local = featurize_pairs(pairs, recipe.build())
    features, run = ray_featurize_pairs(pairs, recipe, engine=TWO_WORKERS)
    assert run.n_unique == len({(p["prompt"], p[side]) for p in pairs for side in ("chosen", "rejected")})
    assert run.n_computed == run.n_unique  # no cache: every distinct text went through a backbone
    assert np.abs(features.chosen - local.chosen).max() <= 1e-5
    assert np.abs(features.rejected - local.rejected).max() <= 1e-5
    assert features.namespace == local.namespace
    assert features.groups == local.groups and features.ids == local.ids
    # Not all equal by accident: chosen and rejected differ, and the vectors are not constant.
    assert np.abs(features.chosen - features.rejected).max() > 1e-3


def test_ray_ranked_scoring_equals_one_process(tiny_model_dirs):
    from pluralrm.select import featurize_ranked

    records = [
        {
            "prompt": f"Question {i}: which colour is the sky?",
            "responses": [f"Blue {j}" * (j + 1) for j in range(4)],
        }
        for i in range(6)
    ]
    recipe = _recipe(tiny_model_dirs["llama"], None)  # causal: a prompt's responses share its pass
    local = featurize_ranked(records, recipe.build())
    remote, run = ray_featurize_ranked(records, recipe, engine=TWO_WORKERS)
    assert [H.shape for H in remote] == [H.shape for H in local]
    assert max(np.abs(a - b).max() for a, b in zip(remote, local, strict=True)) <= 1e-5
    assert run.n_unique == 24


def test_cache_is_shared_across_engines(tiny_model_dirs, pairs, tmp_path, monkeypatch):
    from pluralrm.backbone import Featurizer

    forwards = []
    original = Featurizer._forward
    monkeypatch.setattr(Featurizer, "_forward", lambda self, *a: forwards.append(1) or original(self, *a))
    cache_root = tmp_path / "features"
    recipe = _recipe(tiny_model_dirs["gpt2"], cache_root)
    # A single process featurizes the first half of the pairs into the cache.
    half = pairs[:20]
    featurize_pairs(half, recipe.build())
    assert forwards
    texts_of_half = {(p["prompt"], p[side]) for p in half for side in ("chosen", "rejected")}

    # Ray computes only the other half, and writes it into the same cache.
    first, run = ray_featurize_pairs(pairs, recipe, engine=TWO_WORKERS)
    assert run.n_computed == run.n_unique - len(texts_of_half) > 0
    shards = _shards(cache_root)

    # A re-run on Ray computes nothing and writes nothing.
    again, rerun = ray_featurize_pairs(pairs, recipe, engine=TWO_WORKERS)
    assert rerun.n_computed == 0 and _shards(cache_root) == shards
    np.testing.assert_array_equal(again.chosen, first.chosen)

    # Nor does a single process: it reads the vectors Ray wrote (no forward pass at all).
    forwards.clear()
    local = featurize_pairs(pairs, recipe.build())
    assert forwards == [] and _shards(cache_root) == shards
    np.testing.assert_array_equal(local.chosen, first.chosen)
    np.testing.assert_array_equal(local.rejected, first.rejected)


class DyingWorker(FeaturizeWorker):
    """Exits its process on its first batch, once per test (a marker file says it already died)."""

    def __init__(self, recipe: FeaturizerRecipe, share_prompts: bool = False) -> None:
        super().__init__(recipe, share_prompts)
        self.marks = Path(recipe.cache_root).parent
        (self.marks / f"started-{uuid.uuid4().hex}").touch()

    def __call__(self, batch):
        marker = self.marks / "died"
        if not marker.exists():
            marker.touch()
            os._exit(1)  # as a node lost mid-run: no exception, no cleanup
        return super().__call__(batch)


def test_killed_worker_is_retried_and_every_vector_arrives_once(tiny_model_dirs, pairs, tmp_path):
    from pluralrm.scale import ray_encode_conversations

    recipe = _recipe(tiny_model_dirs["bert"], tmp_path / "features")
    prompts = [p["prompt"] for p in pairs] * 2
    responses = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    result = ray_encode_conversations(
        prompts, responses, recipe, engine=TWO_WORKERS, worker_class=DyingWorker
    )
    assert (tmp_path / "died").exists()
    assert len(list(tmp_path.glob("started-*"))) >= 3  # two actors, and at least one restarted
    # Every row came back exactly once (ray_encode_conversations raises otherwise), and equals one process.
    local = _recipe(tiny_model_dirs["bert"], None).build().encode_conversations(prompts, responses)
    assert result.features.shape == local.shape
    assert np.abs(result.features - local).max() <= 1e-5
    # The cache's shards hold each text exactly once: the retried batch wrote nothing twice.
    from safetensors import safe_open

    cache = FeatureCache(tmp_path / "features").namespace(result.namespace)
    rows = 0
    for shard in _shards(tmp_path / "features"):
        with safe_open(shard, framework="numpy") as handle:
            rows += handle.get_slice("keys").get_shape()[0]
    assert rows == len(cache) == result.n_unique


def _synthetic_features(rng: np.random.Generator, n: int, d: int, start: int) -> PairFeatures:
    scales = np.linspace(3.0, 0.3, d)  # distinct variances: the heads are well defined
    chosen = rng.normal(size=(n, d)) * scales + 0.5
    rejected = rng.normal(size=(n, d)) * scales
    ids = [f"p{start + i}" for i in range(n)]
    return PairFeatures(
        chosen=chosen.astype(np.float32),
        rejected=rejected.astype(np.float32),
        ids=ids,
        namespace={"backbone": "synthetic", "spec": {"pooling": "mean", "layer": 1}},
        groups=[f"g{(start + i) // 3}" for i in range(n)],
        backbone_name="synthetic",
    )


def _assert_same_fit(fit, reference, atol: float, rtol: float, general_tol=None) -> None:
    model, want = fit.model, reference.model
    for name in ("components_", "explained_variance_", "head_scale_", "mean_"):
        np.testing.assert_allclose(
            getattr(model.decomposed, name),
            getattr(want.decomposed, name),
            atol=atol,
            rtol=rtol,
            err_msg=name,
        )
    assert model.general.alpha == want.general.alpha
    g_rtol, g_atol = general_tol or (rtol, atol)
    np.testing.assert_allclose(model.general.coef_, want.general.coef_, rtol=g_rtol, atol=g_atol)
    np.testing.assert_array_equal(fit.train, reference.train)
    np.testing.assert_array_equal(fit.val, reference.val)
    assert model.namespace == want.namespace
    assert model.metadata["fit_pairs"] == len(reference.train)
    assert model.metadata["val_pairs"] == len(reference.val)


def test_ray_engine_fits_the_pool_as_one_process(tmp_path):
    """The one pool recipe on Ray: one shard gives the single-process model to 1e-10 (the same sums in
    the same order), five shards over two files the same up to float64 summation order."""
    rng = np.random.default_rng(0)
    parts = [_synthetic_features(rng, 300, 12, 0), _synthetic_features(rng, 170, 12, 300)]
    dirs = [part.save(tmp_path / f"part{i}") for i, part in enumerate(parts)]
    config = replace(DECOMPOSE, n_components=6)
    local = LocalEngine().fit_pool(dirs, config)
    assert isinstance(make_engine(replace(ENGINE, engine="ray")), RayEngine)

    one_shard = RayEngine(replace(ENGINE, engine="ray", shard_rows=1000)).fit_pool(dirs[:1], config)
    _assert_same_fit(one_shard, LocalEngine().fit_pool(dirs[:1], config), atol=1e-10, rtol=0)
    # ... and `pluralrm decompose` on that directory saved the same model.
    from typer.testing import CliRunner

    from pluralrm.cli import app
    from pluralrm.rewards.reward_model import RewardModel

    args = ["decompose", str(dirs[0]), "--components", "6", "--out", str(tmp_path / "m")]
    assert CliRunner().invoke(app, args).exit_code == 0
    saved = RewardModel.from_pretrained(tmp_path / "m")
    np.testing.assert_allclose(
        one_shard.model.decomposed.components_, saved.decomposed.components_, atol=1e-10
    )
    np.testing.assert_allclose(one_shard.model.general.coef_, saved.general.coef_, atol=1e-10)

    sharded = RayEngine(replace(ENGINE, engine="ray", shard_rows=128)).fit_pool(dirs, config)  # 5 shards
    _assert_same_fit(sharded, local, atol=1e-9, rtol=1e-9, general_tol=(1e-4, 1e-6))
    with pytest.raises(ValueError, match="outputs on disk"):
        RayEngine(replace(ENGINE, engine="ray")).fit_pool([parts[0]], config)


def test_engine_choice_is_checked():
    assert not uses_ray(ENGINE)
    with pytest.raises(ValueError, match="engine must be one of local, ray"):
        uses_ray(replace(ENGINE, engine="spark"))
    with pytest.raises(ValueError, match="num_workers"):
        uses_ray(replace(ENGINE, engine="ray", num_workers=0))
