"""The main job on built-in data: the top heads recover the ground-truth attributes (real MiniLM)."""

import numpy as np
import pytest

from pluralrm.demo import run_demo

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
    ):
        assert (tmp_path / "demo" / name).exists(), name
    attributes = result.attribute_rows
    strongest = {}
    for row in attributes:
        strongest[row["attribute"]] = max(strongest.get(row["attribute"], 0.0), abs(row["correlation"]))
    # Measured with MiniLM: pc1 ~ refusal (|r| 0.70), pc2 ~ humour (0.70), formality and length later.
    assert abs(attributes[0]["correlation"]) > 0.5
    assert sum(c > 0.35 for c in strongest.values()) >= 3, strongest
    assert np.isclose(result.explained_variance_ratio[:16].sum(), sum(result.explained_variance_ratio[:16]))
