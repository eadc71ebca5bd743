"""One pool recipe: `pluralrm decompose`, the k-shot protocol's pool fit, the demo and the local engine fit
the same model on the same pool and seed (arrays to 1e-10). The Ray engine is held to the same model in
tests/scale/test_ray.py (it needs a local Ray cluster)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from pluralrm.adapt import kshot
from pluralrm.atomic import write_jsonl
from pluralrm.cli import app
from pluralrm.config import DECOMPOSE, DEMO, DEMO_DECOMPOSE, FeaturizeConfig
from pluralrm.data.features import PairFeatures
from pluralrm.data.splits import group_split
from pluralrm.data.synthetic import make_synthetic_preferences
from pluralrm.pool import features_for
from pluralrm.rewards.fitting import fit_pool, split_pool
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.scale import LocalEngine

runner = CliRunner()


def _invoke(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _assert_same_model(model: RewardModel, want: RewardModel) -> None:
    for name in ("components_", "explained_variance_", "explained_variance_ratio_", "head_scale_", "mean_"):
        np.testing.assert_allclose(
            getattr(model.decomposed, name), getattr(want.decomposed, name), atol=1e-10, rtol=0, err_msg=name
        )
    assert model.general.alpha == want.general.alpha
    np.testing.assert_allclose(model.general.coef_, want.general.coef_, atol=1e-10, rtol=0)
    assert model.namespace == want.namespace


@pytest.fixture
def all_pairs(tmp_path):
    records = make_synthetic_preferences(n_prompts=20, seed=5).pairs[:160]
    path = tmp_path / "all.jsonl"
    write_jsonl(path, records)
    return records, path


def test_decompose_kshot_demo_and_engine_fit_a_pool_alike(tmp_path, tiny_model_dirs, all_pairs):
    records, all_file = all_pairs
    backbone = ("--backbone", tiny_model_dirs["gpt2"], "--device", "cpu", "--dtype", "float32")
    featurize = FeaturizeConfig(backbone=str(tiny_model_dirs["gpt2"]), device="cpu", dtype="float32")
    # One featurization of every pair, into the cache: each caller below reads the same vectors.
    _invoke("featurize", all_file, *backbone, "--out", tmp_path / "f-all")
    features = PairFeatures.load(tmp_path / "f-all")
    # The demo's pool: what is left when it holds out its test prompts.
    pool_idx, _ = group_split(features.groups, [1 - DEMO.test_fraction, DEMO.test_fraction], seed=DEMO.seed)
    pool = features.select(pool_idx)
    write_jsonl(tmp_path / "pool.jsonl", [records[i] for i in pool_idx])
    config = replace(DEMO_DECOMPOSE, n_components=4)

    # pluralrm decompose on the pool's pairs file (featurized from the cache).
    output = _invoke(
        "decompose", tmp_path / "pool.jsonl", *backbone, "--components", 4, "--out", tmp_path / "m"
    )
    cli = RewardModel.from_pretrained(tmp_path / "m")
    train, val = split_pool(pool.groups, config)
    assert f"from {len(train)} pairs ({len(val)} held out)" in output
    assert cli.metadata["fit_pairs"] == len(train) and cli.metadata["val_pairs"] == len(val) > 0

    # The recipe called directly, and through the local engine.
    _assert_same_model(fit_pool(pool, config).model, cli)
    _assert_same_model(LocalEngine().fit_pool([pool], config).model, cli)

    # The demo on every pair: its model is fitted on the same pool by the same recipe.
    from pluralrm.demo import run_demo

    result = run_demo(tmp_path / "demo", data=str(all_file), featurize=featurize, decompose=config)
    assert result.n_pairs == {"train": len(train), "val": len(val), "test": len(features) - len(pool)}
    _assert_same_model(RewardModel.from_pretrained(tmp_path / "demo" / "model"), cli)

    # kshot: a newcomer on prompts the pool never saw, so the pool seen for them is the whole pool.
    newcomer = [{**r, "prompt": f"{r['prompt']} (asked anew)", "user": "newcomer"} for r in records[:24]]
    write_jsonl(tmp_path / "newcomer.jsonl", newcomer)
    target = features_for(tmp_path / "newcomer.jsonl", featurize)
    adapt_idx, test_idx = group_split(target.groups, [0.5, 0.5], seed=0)
    fitted = []

    def spy(seen, decompose, *, seed):
        fitted.append(fit_pool(seen, decompose, seed=seed))
        return fitted[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kshot, "fit_pool", spy)
        kshot.run_kshot(
            pool,
            {"newcomer": (target.select(adapt_idx), target.select(test_idx))},
            ks=(0,),
            n_draws=1,
            methods=("general",),
            decompose=config,
            random_seed=config.seed,
        )
    assert len(fitted) == 1 and len(fitted[0].train) + len(fitted[0].val) == len(pool)
    _assert_same_model(fitted[0].model, cli)


def test_the_split_is_by_prompt_and_seeded():
    rng = np.random.default_rng(0)
    D = rng.normal(size=(120, 5)) + 0.5
    groups = [f"prompt-{i // 4}" for i in range(120)]  # four pairs per prompt
    pool = PairFeatures(chosen=D, rejected=np.zeros_like(D), ids=[str(i) for i in range(120)], groups=groups)
    fit = fit_pool(pool, replace(DECOMPOSE, n_components=3))
    train_prompts = {groups[i] for i in fit.train}
    assert not train_prompts & {groups[i] for i in fit.val}  # no prompt on both sides
    assert len(fit.val) == round(DECOMPOSE.val_fraction * 30) * 4
    again, other = fit_pool(pool, replace(DECOMPOSE, n_components=3)), fit_pool(pool, seed=1)
    np.testing.assert_array_equal(again.val, fit.val)
    assert set(other.val) != set(fit.val)
    # The heads are those of the fitting part only: the held-out part is never refitted on.
    from pluralrm.rewards.decomposed import DecomposedRewardModel

    heads = DecomposedRewardModel(n_components=3).fit(pool.differences[fit.train])
    np.testing.assert_allclose(fit.model.decomposed.components_, heads.components_, atol=1e-12)
