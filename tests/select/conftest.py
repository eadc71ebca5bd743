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


def wide_rows(n_prompts: int = 5, n: int = 4) -> list[dict]:
    """Rows of the wide format, with a conversation prompt among them and uneven response lengths."""
    rows = []
    for p in range(n_prompts):
        prompt = (
            [{"role": "system", "content": "Be kind."}, {"role": "user", "content": f"Question {p}?"}]
            if p == 0
            else f"What is {p} plus {p}?"
        )
        row = {"id": f"q{p}", "prompt": prompt}
        for i in range(1, n + 1):
            row[f"response_{i}"] = " ".join(["The answer is", str(2 * p), "indeed"] * i)
            row[f"response_{i}_model"] = f"gen{i % 2}"
        rows.append(row)
    return rows
