"""The scoring path, saving and loading, checked by value: what a user's full-feature part adds, which head
names exist, stable ranking, fingerprints, old formats, and each load error's message. Written against the
survivors of the second mutation run (docs/reports/mutation.md)."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from pluralrm.adapt import UserProfile, build_profile
from pluralrm.adapt.personalize import fit_user_vector
from pluralrm.rewards.fitting import fit_reward_model
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.math import pair_correctness, pair_differences, softmax_weights
from pluralrm.rewards.reward_model import (
    IncompatibleBackboneError,
    RewardModel,
    RewardModelLoadError,
    data_fingerprint,
)
from tests.conftest import NAMESPACE, features


@pytest.fixture(scope="module")
def model() -> RewardModel:
    return fit_reward_model(features(n=200, d=6), n_components=3)


def test_a_map_profile_scores_with_its_fitted_vector_including_the_part_outside_the_heads(model):
    D = features(n=40, d=6, seed=5).differences
    profile = build_profile(model, "u", D)
    assert profile.full is not None and np.abs(profile.full).max() > 1e-3
    w = fit_user_vector(model, D).coef_
    np.testing.assert_allclose(model.reward_vector(user=profile), w, rtol=1e-10, atol=1e-12)
    H = np.eye(6)
    np.testing.assert_allclose(model.rewards(H, user=profile), w, rtol=1e-10, atol=1e-12)
    # weights stored as float32-like lists still score in float64
    as_list = UserProfile("u", list(profile.weights), profile.head_set, "map", 40, full=list(profile.full))
    np.testing.assert_allclose(model.reward_vector(user=as_list), w, rtol=1e-10, atol=1e-12)


def test_head_names_outside_the_model_are_key_errors(model):
    np.testing.assert_array_equal(model.reward_vector(head="pc3"), model.decomposed.components_[2])
    for name in ("pc0", "pc4", "xx1", "pc", "pcx", "p1"):
        with pytest.raises(KeyError, match=r"unknown head .*'general', 'pc1', 'pc2', 'pc3'"):
            model.reward_vector(head=name)
    only_general = RewardModel(namespace=NAMESPACE, backbone_name="tiny", general=model.general)
    with pytest.raises(KeyError, match="unknown head 'pc1'; this model has \\['general'\\]"):
        only_general.reward_vector(head="pc1")
    with pytest.raises(ValueError, match=r"^this reward model has no PCA heads to personalize; fit it with"):
        only_general.reward_vector(user=build_profile(model, "u", features(n=10, d=6).differences))
    only_heads = RewardModel(namespace=NAMESPACE, backbone_name="tiny", decomposed=model.decomposed)
    with pytest.raises(ValueError, match=r"^this reward model has no general head; pass head='pcJ' or user="):
        only_heads.reward_vector()
    with pytest.raises(ValueError, match=r"^pass either user= or head=, not both$"):
        model.reward_vector(user=build_profile(model, "u", features(n=10, d=6).differences), head="pc1")


def test_rank_is_stable_on_ties_and_k_keeps_the_top(model):
    w = model.reward_vector()
    H = np.stack([w, -w, w, 2 * w])  # ties between responses 0 and 2
    model = RewardModel(namespace=NAMESPACE, backbone_name="", general=model.general)
    model._features = lambda items: H[: len(list(items))]  # texts → fixed features for this test
    ranked = model.rank("p", ["a", "b", "c", "d"])
    assert [r.index for r in ranked] == [3, 0, 2, 1]
    assert [r.response for r in model.rank("p", ["a", "b", "c", "d"], k=2)] == ["d", "a"]
    with pytest.raises(ValueError, match="at least one response"):
        model.rank("p", [])


def test_texts_must_be_prompt_response_tuples(model):
    with pytest.raises(
        TypeError, match=r"^inputs must be a feature matrix or a sequence of \(prompt, response\)"
    ):
        model.rewards(["just a string"])
    with pytest.raises(TypeError):
        model.rewards([("p", "r", "extra")])
    with pytest.raises(TypeError):
        model.rewards([["p", "r"]])


def test_namespace_mismatch_names_every_differing_key(model):
    other = {k: v for k, v in NAMESPACE.items() if k != "max_length"} | {"extra": 1}
    with pytest.raises(IncompatibleBackboneError, match=r"\(extra, max_length differ\)"):
        model.check_namespace(other, what="m")
    with pytest.raises(IncompatibleBackboneError, match=r"^m was fitted on features of backbone 'dir:abc'"):
        model.check_namespace(NAMESPACE | {"backbone": "dir:zzz"}, what="m")


def test_save_creates_parents_overwrites_and_keeps_metadata_and_parameters(model, tmp_path):
    model.metadata = {"source": "unit", "fit_pairs": 200}
    target = tmp_path / "a" / "b" / "model"
    model.save_pretrained(target)
    model.save_pretrained(target)  # saving again into the same directory is fine
    loaded = RewardModel.from_pretrained(target)
    assert loaded.metadata == {"source": "unit", "fit_pairs": 200}
    assert loaded.general.get_params() == model.general.get_params()
    assert loaded.decomposed.get_params() == model.decomposed.get_params()
    np.testing.assert_array_equal(loaded.general.coef_, model.general.coef_)
    with pytest.raises(
        ValueError, match=r"^nothing to save: the model has neither a general head nor PCA heads"
    ):
        RewardModel(namespace=NAMESPACE, backbone_name="").save_pretrained(tmp_path / "empty")
    with pytest.raises(IncompatibleBackboneError, match=f"^{target}"):
        RewardModel.from_pretrained(target, namespace=NAMESPACE | {"dtype": "bfloat16"})


@pytest.mark.parametrize("which", ["general", "decomposed"])
def test_a_model_with_only_one_kind_of_head_round_trips(model, tmp_path, which):
    part = {which: getattr(model, which)}
    RewardModel(namespace=NAMESPACE, backbone_name="tiny", **part).save_pretrained(tmp_path / which)
    loaded = RewardModel.from_pretrained(tmp_path / which)
    assert (loaded.general is None) == (which != "general")
    assert (loaded.decomposed is None) == (which != "decomposed")


def test_config_errors_name_the_file_and_the_problem(model, tmp_path):
    directory = model.save_pretrained(tmp_path / "m")
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())

    def load_with(value) -> str:
        config_path.write_text(value if isinstance(value, str) else json.dumps(value))
        with pytest.raises(RewardModelLoadError) as error:
            RewardModel.from_pretrained(directory)
        return str(error.value)

    assert load_with([1, 2]) == f"{config_path}: expected a JSON object, got list"
    assert load_with(config | {"format": "x/9"}).startswith(f"{config_path}: format 'x/9', expected ")
    assert (
        load_with(config | {"n_features": 0})
        == f"{config_path}: n_features must be a positive integer, got 0"
    )
    assert "positive integer, got '6'" in load_with(config | {"n_features": "6"})
    assert (
        load_with({k: v for k, v in config.items() if k != "namespace"})
        == f"{config_path}: missing field 'namespace'"
    )
    assert load_with("{not json").startswith(f"{config_path}: not valid JSON (")


def test_a_one_feature_model_loads(tmp_path):
    head = LinearRewardHead.from_coef(np.array([2.0]))
    RewardModel(namespace=NAMESPACE, backbone_name="t", general=head).save_pretrained(tmp_path / "m")
    assert RewardModel.from_pretrained(tmp_path / "m").n_features == 1


def test_heads_file_with_neither_head_or_damaged_says_so(model, tmp_path):
    directory = model.save_pretrained(tmp_path / "m")
    save_file({"other.x": np.zeros(3)}, directory / "heads.safetensors")
    with pytest.raises(
        RewardModelLoadError, match=r"heads.safetensors: holds neither a general head nor PCA heads$"
    ):
        RewardModel.from_pretrained(directory)
    (directory / "heads.safetensors").write_bytes(b"")
    with pytest.raises(
        RewardModelLoadError, match=r"heads.safetensors: not a readable safetensors file \(\w"
    ):
        RewardModel.from_pretrained(directory)


def test_version_1_directories_still_load_with_their_parameters(model, tmp_path):
    directory = tmp_path / "v1"
    directory.mkdir()
    arrays = model.decomposed.to_arrays()
    save_file(
        {
            "general": model.general.coef_,
            "components": arrays["components"],
            "explained_variance": arrays["explained_variance"],
            "explained_variance_ratio": arrays["explained_variance_ratio"],
            "mean": arrays["mean"],
            "head_scale": arrays["head_scale"],
        },
        directory / "heads.safetensors",
    )
    config = {
        "format": "pluralrm-reward-model/1",
        "backbone": "tiny",
        "namespace": NAMESPACE,
        "n_features": 6,
        "general_alpha": 0.25,
        "n_components": 3,
        "center": True,
    }
    (directory / "config.json").write_text(json.dumps(config))
    loaded = RewardModel.from_pretrained(directory)
    assert loaded.general.get_params()["alpha"] == 0.25
    assert (
        loaded.decomposed.get_params()["center"] is True
        and loaded.decomposed.get_params()["n_components"] == 3
    )
    np.testing.assert_array_equal(loaded.decomposed.components_, model.decomposed.components_)
    np.testing.assert_array_equal(loaded.decomposed.head_scale_, model.decomposed.head_scale_)
    (directory / "config.json").write_text(
        json.dumps({k: v for k, v in config.items() if k != "general_alpha"})
    )
    assert RewardModel.from_pretrained(directory).general.get_params()["alpha"] == LinearRewardHead().alpha


def test_fingerprint_reads_float32_whatever_the_input_dtype():
    D = np.random.default_rng(0).normal(size=(5, 3))
    assert data_fingerprint(D) == data_fingerprint(D.astype(np.float32))
    assert data_fingerprint(D) != data_fingerprint(D[::-1])


def test_linear_head_solves_its_own_objective_and_allows_alpha_zero():
    rng = np.random.default_rng(0)
    D = rng.normal(size=(300, 4)) + np.array([0.5, -0.2, 0.0, 0.1])
    for alpha in (0.0, 0.1, 1.0):
        head = LinearRewardHead(alpha=alpha).fit(D)
        scale = np.sqrt(np.mean(np.sum(D**2, axis=1)))
        Z, w = D / scale, head.coef_ * scale
        gradient = -(Z.T @ (1 / (1 + np.exp(Z @ w)))) / len(Z) + alpha * w
        np.testing.assert_allclose(gradient, 0.0, atol=1e-4)
        assert head.n_iter_ >= 1
    assert LinearRewardHead().get_params() == {"alpha": 1e-2, "max_iter": 500}
    with pytest.raises(ValueError, match=r"^alpha must be non-negative, got -1"):
        LinearRewardHead(alpha=-1.0).fit(D)
    head = LinearRewardHead(alpha=0.1).fit(D)
    np.testing.assert_allclose(head.predict_proba(D[:3]), 1 / (1 + np.exp(-(D[:3] @ head.coef_))))
    np.testing.assert_array_equal(head.reward(D[:3]), D[:3] @ head.coef_)
    with pytest.raises(ValueError, match="H has 3 features per row, expected 4"):
        head.reward(D[:3, :3])
    assert head.to_arrays()["coef"].dtype == np.float64


def test_small_math_functions_by_value():
    np.testing.assert_array_equal(
        pair_differences(np.array([[3.0, 1.0]]), np.array([[1.0, 2.0]])), [[2.0, -1.0]]
    )
    with pytest.raises(ValueError, match=r"^chosen \(1, 2\) and rejected \(2, 2\) must have the same shape"):
        pair_differences(np.ones((1, 2)), np.ones((2, 2)))
    rows = softmax_weights(np.array([[0.0, np.log(3.0)], [1000.0, 1000.0]]))
    np.testing.assert_allclose(rows, [[0.25, 0.75], [0.5, 0.5]])
    assert softmax_weights(np.array([1, 2], dtype=np.int64), temperature=2.0).dtype == np.float64
    assert pair_correctness([1, 0, -1]).tolist() == [1.0, 0.5, 0.0]


def test_pca_heads_by_value_streaming_refit_and_small_inputs():
    from pluralrm.rewards.decomposed import DecomposedRewardModel

    rng = np.random.default_rng(3)
    D = rng.normal(size=(90, 4)) * np.array([3.0, 1.0, 0.5, 0.1]) + np.array([0.4, 0.0, -0.2, 0.0])
    for center in (False, True):
        model = DecomposedRewardModel(n_components=2, center=center, batch_size=7).fit(D)
        moment = np.cov(D, rowvar=False) if center else D.T @ D / len(D)
        values, vectors = np.linalg.eigh(moment)
        np.testing.assert_allclose(model.explained_variance_, values[::-1][:2], rtol=1e-10)
        np.testing.assert_allclose(np.abs(model.components_ @ vectors[:, ::-1][:, :2]), np.eye(2), atol=1e-8)
        np.testing.assert_allclose(
            model.explained_variance_ratio_, values[::-1][:2] / np.trace(moment), rtol=1e-10
        )
        assert np.all(model.components_ @ D.mean(axis=0) > 0)  # each head prefers chosen on average
        np.testing.assert_allclose(
            model.head_scale_, np.sqrt(np.mean((D @ model.components_.T) ** 2, axis=0))
        )
        np.testing.assert_allclose(model.mean_, D.mean(axis=0))
    streamed = DecomposedRewardModel(n_components=2).partial_fit(D[:40]).partial_fit(D[40:])
    whole = DecomposedRewardModel(n_components=2).fit(D)
    np.testing.assert_allclose(streamed.components_, whole.components_, atol=1e-10)
    assert streamed.n_samples_seen_ == 90
    whole.fit(D[:50])  # a refit forgets the earlier data
    np.testing.assert_allclose(
        whole.components_, DecomposedRewardModel(n_components=2).fit(D[:50]).components_
    )
    assert whole.n_samples_seen_ == 50
    whole.fit(D[:, :3])  # and may change the number of features
    assert whole.n_features_in_ == 3
    batches = DecomposedRewardModel(n_components=2).fit(iter([D[:30], D[30:]]))
    np.testing.assert_allclose(
        batches.components_, DecomposedRewardModel(n_components=2).fit(D).components_, atol=1e-10
    )
    with pytest.raises(ValueError, match="D has 3 features per row, expected 4"):
        DecomposedRewardModel(n_components=2).partial_fit(D[:5]).partial_fit(D[:5, :3])
    assert DecomposedRewardModel(n_components=1).fit(D[:2]).n_samples_seen_ == 2  # two pairs are enough
    with pytest.raises(ValueError, match=r"^need at least 2 pairs to fit, got 1$"):
        DecomposedRewardModel(n_components=1).fit(D[:1])
    with pytest.raises(ValueError, match=r"^D has no rows; need at least 2 pairs to fit$"):
        DecomposedRewardModel(n_components=1).fit(iter([]))
    assert DecomposedRewardModel(n_components=None).fit(D).components_.shape == (4, 4)
    head = DecomposedRewardModel(n_components=2).fit(D).head(1)
    np.testing.assert_array_equal(head.coef_, DecomposedRewardModel(n_components=2).fit(D).components_[1])
    arrays = whole.to_arrays()
    assert all(v.dtype == np.float64 for v in arrays.values()) and arrays["n_samples_seen"].tolist() == [90.0]


def test_outside_components_keep_their_orientation_when_it_already_prefers_chosen():
    from pluralrm.rewards.decomposed import DecomposedRewardModel

    D = np.array([[1.0, 2.0], [3.0, 1.0], [2.0, 2.0]])
    model = DecomposedRewardModel.with_components(np.array([[0.0, 2.0], [-1.0, 0.0]]), D)
    np.testing.assert_array_equal(model.components_, [[0.0, 1.0], [1.0, 0.0]])
    assert model.get_params()["center"] is False
