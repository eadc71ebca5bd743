import json

import numpy as np
import pytest

from pluralrm.data.features import PairFeatures
from pluralrm.rewards.fitting import fit_reward_model
from pluralrm.rewards.reward_model import IncompatibleBackboneError, RewardModel

NAMESPACE = {
    "backbone": "dir:abc",
    "spec": {"pooling": "mean", "layer": 2, "normalize": False},
    "max_length": 128,
    "format_version": "1",
    "chat_template": False,
}


def features(n=300, d=10, seed=0, namespace=NAMESPACE):
    rng = np.random.default_rng(seed)
    chosen, rejected = rng.normal(size=(n, d)) + 0.3, rng.normal(size=(n, d))
    return PairFeatures(
        chosen=chosen.astype(np.float32),
        rejected=rejected.astype(np.float32),
        ids=[str(i) for i in range(n)],
        namespace=namespace,
    )


def test_save_then_load_gives_identical_scores(tmp_path):
    train = features()
    model = fit_reward_model(train, n_components=4)
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["namespace"] == NAMESPACE and config["n_components"] == 4
    assert config["metadata"]["fit_pairs"] == 300 and len(config["metadata"]["fit_data_sha256"]) == 64
    loaded = RewardModel.from_pretrained(tmp_path / "m", namespace=NAMESPACE)
    H = features(seed=5).chosen
    for name, scores in model.head_scores(H).items():
        np.testing.assert_array_equal(loaded.head_scores(H)[name], scores)
    assert not list((tmp_path / "m").glob("*.pkl")) and not list((tmp_path / "m").glob("*.tmp"))


def test_loading_against_another_backbone_is_refused(tmp_path):
    fit_reward_model(features(), n_components=2).save_pretrained(tmp_path / "m")
    other = {**NAMESPACE, "backbone": "dir:zzz"}
    with pytest.raises(IncompatibleBackboneError, match="fitted on features of backbone 'dir:abc'"):
        RewardModel.from_pretrained(tmp_path / "m", namespace=other)
    with pytest.raises(IncompatibleBackboneError, match="pooling, layer or max length differ"):
        RewardModel.from_pretrained(tmp_path / "m", namespace={**NAMESPACE, "max_length": 64})


def test_not_a_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a pluralrm reward model directory"):
        RewardModel.from_pretrained(tmp_path)


def test_reward_model_scores_text_with_its_backbone(tiny_model_dirs, tmp_path):
    from pluralrm.backbone import Featurizer, featurize_pairs, load_backbone

    backbone = load_backbone(str(tiny_model_dirs["gpt2"]))
    pairs = [
        {"prompt": f"question {i}", "chosen": f"a careful answer {i}", "rejected": f"no {i}"}
        for i in range(30)
    ]
    feats = featurize_pairs(pairs, Featurizer(backbone))
    model = fit_reward_model(feats, n_components=3, backbone_name=str(tiny_model_dirs["gpt2"]))
    model.save_pretrained(tmp_path / "m")
    loaded = RewardModel.from_pretrained(tmp_path / "m")
    one = loaded.score("question 3", "a careful answer 3")
    many = loaded.score(["question 3", "question 4"], ["a careful answer 3", "no 4"], head="pc1")
    assert np.isclose(one, model.general.reward(feats.chosen[3:4])[0], atol=1e-5)
    assert many.shape == (2,)
    with pytest.raises(KeyError, match="unknown head"):
        loaded.score("q", "a", head="pc99")
