import json

import numpy as np
import pytest

from pluralrm.adapt import ProfileMismatchError, build_profile
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.fitting import fit_reward_model
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.reward_model import (
    IncompatibleBackboneError,
    RewardModel,
    RewardModelLoadError,
)
from tests.conftest import NAMESPACE, features


def test_save_then_load_round_trips_every_fitted_array_and_a_personal_reward(tmp_path):
    train = features()
    model = fit_reward_model(train, n_components=4)
    profile = build_profile(model, "alice", features(n=20, seed=3).differences)
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["namespace"] == NAMESPACE and config["backbone"] == "tiny"
    assert config["decomposed"]["n_components"] == 4 and config["decomposed"]["center"] is False
    assert config["metadata"]["fit_pairs"] == 300 and len(config["metadata"]["fit_data_sha256"]) == 64
    loaded = RewardModel.from_pretrained(tmp_path / "m", namespace=NAMESPACE)
    for ours, theirs in ((model.general, loaded.general), (model.decomposed, loaded.decomposed)):
        assert ours.get_params() == theirs.get_params()
        original, restored = ours.to_arrays(), theirs.to_arrays()
        assert original.keys() == restored.keys()
        for name in original:
            np.testing.assert_array_equal(restored[name], original[name], err_msg=name)
    assert loaded.decomposed.n_samples_seen_ == 300 and loaded.backbone_name == "tiny"
    H = features(seed=5).chosen
    for name, scores in model.head_scores(H).items():
        np.testing.assert_array_equal(loaded.head_scores(H)[name], scores)
    np.testing.assert_array_equal(loaded.rewards(H, user=profile), model.rewards(H, user=profile))
    assert not list((tmp_path / "m").glob("*.pkl")) and not list((tmp_path / "m").glob(".*.tmp"))


def test_rewards_are_the_general_head_a_named_head_or_the_users_mixture_of_heads():
    model = fit_reward_model(features(), n_components=4)
    H = features(seed=7).chosen.astype(np.float64)
    np.testing.assert_allclose(model.rewards(H), H @ model.general.coef_)
    np.testing.assert_allclose(model.rewards(H, head="general"), H @ model.general.coef_)
    np.testing.assert_allclose(model.rewards(H, head="pc2"), H @ model.decomposed.components_[1])
    profile = build_profile(model, "bob", features(n=30, seed=2).differences, method="logistic")
    per_head = model.head_scores(H)
    mixture = sum(w * per_head[f"pc{j + 1}"] for j, w in enumerate(profile.weights))
    np.testing.assert_allclose(model.rewards(H, user=profile), mixture, rtol=1e-10, atol=1e-12)
    pairs = features(seed=9)
    np.testing.assert_allclose(
        model.margins(pairs, user=profile), model.rewards(pairs.differences, user=profile), atol=1e-5
    )
    with pytest.raises(ValueError, match="either user= or head="):
        model.rewards(H, user=profile, head="pc1")
    with pytest.raises(KeyError, match=r"unknown head 'pc9'.*'general', 'pc1'"):
        model.rewards(H, head="pc9")
    with pytest.raises(ValueError, match="features has 3 features per row, expected 10"):
        model.rewards(H[:, :3])
    heads_only = RewardModel(namespace=NAMESPACE, backbone_name="", decomposed=model.decomposed)
    with pytest.raises(ValueError, match="no general head"):
        heads_only.rewards(H)


def test_a_profile_scores_only_with_the_heads_it_was_fitted_on():
    model = fit_reward_model(features(), n_components=3)
    other = fit_reward_model(features(seed=1), n_components=3)
    profile = build_profile(model, "alice", features(n=10, seed=4).differences)
    assert profile.head_set == model.head_set != other.head_set
    with pytest.raises(ProfileMismatchError, match="adapt the user again"):
        other.rewards(features(seed=5).chosen, user=profile)


class _Featurizer:
    """Stands in for the backbone: the feature of a response is (its length, its count of 'a')."""

    def encode_conversations(self, prompts, responses):
        return np.array([[len(r), r.count("a")] for r in responses], dtype=np.float64)


def test_rank_orders_responses_best_first_and_keeps_the_top_k():
    model = RewardModel(
        namespace=NAMESPACE, backbone_name="", general=LinearRewardHead.from_coef(np.array([1.0, -2.0]))
    )
    model._featurizer = _Featurizer()
    responses = ["bbbb", "aaaa", "bb", "bbbb", "ab"]  # rewards 4, -4, 2, 4, 0
    ranked = model.rank("q", responses)
    assert [r.index for r in ranked] == [0, 3, 2, 4, 1]  # the tie 0/3 keeps input order
    assert [r.reward for r in ranked] == [4.0, 4.0, 2.0, 0.0, -4.0]
    assert [r.response for r in model.rank("q", responses, k=2)] == ["bbbb", "bbbb"]
    with pytest.raises(ValueError, match="at least one response"):
        model.rank("q", [])


def test_loading_against_another_backbone_or_dtype_is_refused(tmp_path):
    fit_reward_model(features(), n_components=2).save_pretrained(tmp_path / "m")
    other = {**NAMESPACE, "backbone": "dir:zzz"}
    with pytest.raises(IncompatibleBackboneError, match="fitted on features of backbone 'dir:abc'"):
        RewardModel.from_pretrained(tmp_path / "m", namespace=other)
    with pytest.raises(IncompatibleBackboneError, match=r"\(max_length differ\)"):
        RewardModel.from_pretrained(tmp_path / "m", namespace={**NAMESPACE, "max_length": 64})
    with pytest.raises(IncompatibleBackboneError, match=r"\(dtype differ\)"):
        RewardModel.from_pretrained(tmp_path / "m", namespace={**NAMESPACE, "dtype": "bfloat16"})
    legacy = {k: v for k, v in NAMESPACE.items() if k != "dtype"}  # features made before dtypes: fp32
    RewardModel.from_pretrained(tmp_path / "m", namespace=legacy)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a pluralrm reward model directory"):
        RewardModel.from_pretrained(tmp_path)


def _one_line_error(directory, match):
    with pytest.raises(RewardModelLoadError, match=match) as error:
        RewardModel.from_pretrained(directory)
    assert "\n" not in str(error.value) and str(directory) in str(error.value)


def test_a_truncated_heads_file_is_a_one_line_error(tmp_path):
    fit_reward_model(features(), n_components=2).save_pretrained(tmp_path / "m")
    heads = tmp_path / "m" / "heads.safetensors"
    heads.write_bytes(heads.read_bytes()[: heads.stat().st_size // 2])
    _one_line_error(tmp_path / "m", r"heads\.safetensors: not a readable safetensors file")


def test_a_config_that_disagrees_with_the_arrays_is_refused(tmp_path):
    fit_reward_model(features(), n_components=2).save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "n_features": 12}))
    _one_line_error(tmp_path / "m", r"config\.json: n_features is 12, but the general head .* have 10")
    path.write_text(json.dumps({k: v for k, v in config.items() if k != "namespace"}))
    _one_line_error(tmp_path / "m", r"config\.json: missing field 'namespace'")
    path.write_text("{not json")
    _one_line_error(tmp_path / "m", r"config\.json: not valid JSON")


def test_misshapen_or_non_finite_arrays_are_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    fit_reward_model(features(), n_components=3).save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "heads.safetensors"
    arrays = load_file(path)
    save_file({**arrays, "pca.head_scale": arrays["pca.head_scale"][:2]}, path)
    _one_line_error(tmp_path / "m", r"head_scale must have shape \(3,\), got \(2,\)")
    save_file({**arrays, "general.coef": arrays["general.coef"] * np.nan}, path)
    _one_line_error(tmp_path / "m", "coef contains NaN")
    save_file({k: v for k, v in arrays.items() if k != "pca.mean"}, path)
    _one_line_error(tmp_path / "m", r"missing arrays \['mean'\]")


def test_models_saved_in_the_first_format_still_load(tmp_path):
    from safetensors.numpy import save_file

    model = fit_reward_model(features(), n_components=2)
    directory = tmp_path / "v1"
    directory.mkdir()
    pca = model.decomposed
    save_file(
        {
            "general": model.general.coef_,
            "components": pca.components_,
            "explained_variance": pca.explained_variance_,
            "explained_variance_ratio": pca.explained_variance_ratio_,
            "mean": pca.mean_,
            "head_scale": pca.head_scale_,
        },
        directory / "heads.safetensors",
    )
    v1 = {
        "format": "pluralrm-reward-model/1",
        "backbone": "tiny",
        "namespace": {k: v for k, v in NAMESPACE.items() if k != "dtype"},
        "n_features": 10,
        "n_components": 2,
        "center": False,
        "general_alpha": 0.01,
    }
    (directory / "config.json").write_text(json.dumps(v1))
    loaded = RewardModel.from_pretrained(directory, namespace=NAMESPACE)
    H = features(seed=5).chosen
    np.testing.assert_array_equal(loaded.rewards(H, head="pc2"), model.rewards(H, head="pc2"))
    np.testing.assert_array_equal(loaded.decomposed.head_scale_, pca.head_scale_)
    assert loaded.general.alpha == 0.01


def test_heads_given_from_outside_are_measured_like_fitted_heads():
    D = features().differences.astype(np.float64)
    fitted = DecomposedRewardModel(n_components=3).fit(D)
    given = DecomposedRewardModel.with_components(-2.0 * fitted.components_, D)
    np.testing.assert_allclose(given.components_, fitted.components_, atol=1e-12)  # unit norm, signs
    np.testing.assert_allclose(given.head_scale_, fitted.head_scale_, rtol=1e-10)
    np.testing.assert_allclose(given.explained_variance_ratio_, fitted.explained_variance_ratio_, rtol=1e-8)
    np.testing.assert_allclose(given.mean_, fitted.mean_)


def test_reward_model_scores_text_with_its_backbone(tiny_model_dirs, tmp_path, monkeypatch):
    import pluralrm.backbone as backbone_module
    from pluralrm.backbone import FeatureCache, FeatureSpec, Featurizer, featurize_pairs, load_backbone

    backbone = load_backbone(str(tiny_model_dirs["gpt2"]), dtype="float32")
    pairs = [
        {"prompt": f"question {i}", "chosen": f"a careful answer {i}", "rejected": f"no {i}"}
        for i in range(30)
    ]
    feats = featurize_pairs(pairs, Featurizer(backbone))
    model = fit_reward_model(feats, n_components=3)
    assert model.backbone_name == str(tiny_model_dirs["gpt2"])  # recorded by featurize, not parsed
    model.save_pretrained(tmp_path / "m")
    loaded = RewardModel.from_pretrained(tmp_path / "m")
    texts = [("question 3", "a careful answer 3"), ("question 4", "no 4")]
    H = np.stack([feats.chosen[3], feats.rejected[4]]).astype(np.float64)
    np.testing.assert_allclose(loaded.rewards(texts), H @ model.general.coef_, atol=1e-5)
    np.testing.assert_allclose(
        loaded.rewards(texts, head="pc1"), H @ model.decomposed.components_[0], atol=1e-5
    )
    best = loaded.rank("question 3", ["no 3", "a careful answer 3"], k=1)[0]
    assert best.reward == pytest.approx(float(loaded.rewards([("question 3", best.response)])[0]))
    # The featurizer reads the heads' spec, max length and dtype; device and cache are the caller's.
    calls = []
    monkeypatch.setattr(
        backbone_module, "load_backbone", lambda name, **kw: calls.append((name, kw)) or backbone
    )
    cache = FeatureCache(tmp_path / "cache")
    featurizer = RewardModel.from_pretrained(tmp_path / "m").featurizer(device="cpu", cache=cache)
    assert calls == [(str(tiny_model_dirs["gpt2"]), {"device": "cpu", "dtype": "float32"})]
    assert featurizer.spec == FeatureSpec(**model.namespace["spec"])
    assert featurizer.max_length == model.namespace["max_length"] and featurizer.cache is cache
    # A model that does not record its backbone scores text only with one passed in.
    anonymous = RewardModel(namespace=model.namespace, backbone_name="", general=model.general)
    with pytest.raises(ValueError, match="does not record which backbone made its features"):
        anonymous.featurizer()
    assert anonymous.featurizer(backbone=backbone).spec == featurizer.spec
    # Heads fitted on other features are refused by name.
    elsewhere = model.namespace | {"backbone": "dir:another"}
    other = RewardModel(namespace=elsewhere, backbone_name="x", general=model.general)
    with pytest.raises(IncompatibleBackboneError, match=r"^reward model for 'x' was fitted on features of"):
        other.featurizer(backbone=backbone)
