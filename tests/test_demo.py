"""The main job on built-in data: the top heads recover the ground-truth attributes (real MiniLM)."""

import numpy as np
import pytest

from pluralrm.demo import run_demo
from pluralrm.rewards.reward_model import RewardModel

pytestmark = pytest.mark.slow


def test_demo_heads_track_the_synthetic_attributes(tmp_path):
    result = run_demo(tmp_path / "demo")
    for name in (
        "model/config.json",
        "model/heads.safetensors",
        "accuracy.csv",
        "explained_variance.png",
        "head_accuracy.png",
        "head_attributes.csv",
        "summary.json",
        "report.html",
    ):
        assert (tmp_path / "demo" / name).exists(), name
    attributes = result.attribute_rows
    strongest = {}
    for row in attributes:
        strongest[row["attribute"]] = max(strongest.get(row["attribute"], 0.0), abs(row["correlation"]))
    # Measured with MiniLM: pc1 ~ refusal (|r| 0.70), pc2 ~ humour (0.70), formality and length later.
    assert abs(attributes[0]["correlation"]) > 0.5
    assert sum(c > 0.35 for c in strongest.values()) >= 3, strongest
    # The saved model is the one the demo reports on: its ratios are those of the result, strictly
    # decreasing (PCA order), positive, and their total is a share of the variance, never above 1.
    saved = RewardModel.from_pretrained(tmp_path / "demo" / "model")
    ratio = result.explained_variance_ratio
    np.testing.assert_allclose(saved.decomposed.explained_variance_ratio_, ratio, rtol=1e-6)
    assert np.all(ratio > 0) and np.all(np.diff(ratio) <= 0), ratio
    assert 0.2 < ratio.sum() <= 1.0 + 1e-9, ratio.sum()
    # The head table reports the same ratios for the heads it describes.
    np.testing.assert_allclose(
        [row["explained_variance_ratio"] for row in attributes], ratio[: len(attributes)]
    )
