"""A tiny causal reward model (random Llama backbone with a chat template) and a wide file to rank."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def causal_model_dir(tmp_path_factory, tiny_model_dirs) -> Path:
    from pluralrm.backbone import Featurizer, featurize_pairs, load_backbone
    from pluralrm.data.synthetic import make_synthetic_preferences
    from pluralrm.rewards.fitting import fit_reward_model

    backbone_dir = str(tiny_model_dirs["llama"])
    pairs = make_synthetic_preferences(n_prompts=16, seed=3).pairs
    backbone = load_backbone(backbone_dir, dtype="float32")
    features = featurize_pairs(pairs, Featurizer(backbone))
    model = fit_reward_model(features, n_components=4, backbone_name=backbone_dir)
    return model.save_pretrained(tmp_path_factory.mktemp("select") / "model")
