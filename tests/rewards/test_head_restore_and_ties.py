"""Reward heads checked by value: orientation and scale of outside heads, restored parameters, tie
rules, fingerprints, and errors that name what they refuse. Written against the survivors of a
mutation run (docs/reports/mutation.md)."""

import numpy as np
import pytest

from pluralrm.adapt import build_profile
from pluralrm.rewards.decomposed import DecomposedRewardModel, head_set_fingerprint
from pluralrm.rewards.fitting import fit_reward_model
from pluralrm.rewards.linear_head import LinearRewardHead, fit_general_head
from pluralrm.rewards.reward_model import IncompatibleBackboneError, RewardModel
from tests.conftest import NAMESPACE, features


def test_outside_heads_are_unit_signed_toward_chosen_and_measured_on_d():
    rng = np.random.default_rng(0)
    D = rng.normal(size=(200, 4)) * 0.1 + np.array([0.05, -0.05, 0.0, 0.02])  # small: ‖d‖² ≪ 1
    components = np.array([[3.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, -5.0]])
    model = DecomposedRewardModel.with_components(components, D)
    # Unit rows, each flipped so the mean difference projects positively onto it.
    np.testing.assert_allclose(model.components_, [[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]])
    projected = D @ model.components_.T
    np.testing.assert_allclose(model.explained_variance_, np.mean(projected**2, axis=0))
    np.testing.assert_allclose(
        model.explained_variance_ratio_, model.explained_variance_ / np.mean(np.sum(D**2, axis=1))
    )
    np.testing.assert_allclose(model.head_scale_, np.sqrt(model.explained_variance_))
    np.testing.assert_allclose(model.mean_, D.mean(axis=0))
    assert model.n_samples_seen_ == 200 and model.n_features_in_ == 4
    assert model.get_params()["n_components"] == 3 and model.get_params()["center"] is False
    with pytest.raises(ValueError, match=r"^components must be 2-D"):
        DecomposedRewardModel.with_components(np.ones(4), D)
    with pytest.raises(ValueError, match=r"^D has 4 features per row, expected 5"):
        DecomposedRewardModel.with_components(np.ones((2, 5)), D)


def test_from_arrays_restores_samples_seen_and_names_bad_components():
    fitted = fit_reward_model(features(n=120), n_components=2).decomposed
    arrays = fitted.to_arrays()
    assert DecomposedRewardModel.from_arrays(arrays).n_samples_seen_ == fitted.n_samples_seen_ > 0
    older = {k: v for k, v in arrays.items() if k != "n_samples_seen"}  # saved before it was recorded
    assert DecomposedRewardModel.from_arrays(older).n_samples_seen_ == 0
    with pytest.raises(ValueError, match=r"^components must be 2-D"):
        DecomposedRewardModel.from_arrays(arrays | {"components": arrays["components"][0]})


def test_linear_head_from_arrays_keeps_its_parameters():
    head = LinearRewardHead.from_arrays({"coef": np.array([1.0, 2.0])}, alpha=3.5)
    assert head.get_params()["alpha"] == 3.5
    with pytest.raises(ValueError, match=r"^missing array 'coef'"):
        LinearRewardHead.from_arrays({})


def test_general_head_ties_on_validation_go_to_the_first_alpha():
    D = features(n=200, d=1).differences  # one feature: every penalty ranks the pairs identically
    _, scores = fit_general_head(D[:150], D[150:], alphas=(0.1, 0.2))
    assert scores[0.1] == scores[0.2]
    best, _ = fit_general_head(D[:150], D[150:], alphas=(0.2, 0.1))
    assert best.alpha == 0.2
    best, _ = fit_general_head(D[:150], D[150:], alphas=(0.1, 0.2))
    assert best.alpha == 0.1
    with pytest.raises(ValueError, match="alphas must name at least one L2 penalty"):
        fit_general_head(D, D, alphas=())


def test_head_set_fingerprint_reads_values_not_dtype():
    components = np.array([[0.5, 0.25], [1.0, -2.0]])
    assert head_set_fingerprint(components.astype(np.float32)) == head_set_fingerprint(components)
    assert head_set_fingerprint(components) != head_set_fingerprint(components[::-1])


class _LengthFeaturizer:
    def encode_conversations(self, prompts, responses):
        return np.array([[len(r), r.count("a")] for r in responses], dtype=np.float64)


def _two_feature_model(**kwargs):
    decomposed = DecomposedRewardModel.with_components(
        np.eye(2), np.random.default_rng(0).normal(size=(50, 2)) + 1
    )
    general = LinearRewardHead.from_coef(np.array([1.0, -2.0]))
    model = RewardModel(namespace=NAMESPACE, backbone_name="", general=general, decomposed=decomposed)
    model._featurizer = _LengthFeaturizer()
    return model


def test_rank_scores_with_the_named_head_or_user_and_keeps_input_order_among_many_ties():
    model = _two_feature_model()
    responses = ["aaaa", "b", "bbbbbb"]  # pc1 = length (after orientation), general = len − 2·count(a)
    sign = np.sign(model.decomposed.components_[0, 0])
    by_head = [r.response for r in model.rank("q", responses, head="pc1")]
    assert by_head == (["bbbbbb", "aaaa", "b"] if sign > 0 else ["b", "aaaa", "bbbbbb"])
    profile = build_profile(model, "u", np.array([[0.0, -1.0]] * 5), method="best-head")
    expected = model.rewards([("q", r) for r in responses], user=profile)
    assert [r.reward for r in model.rank("q", responses, user=profile)] == sorted(expected, reverse=True)
    many = ["same"] * 40  # enough ties that an unstable sort would reorder them
    assert [r.index for r in model.rank("q", many)] == list(range(40))


def test_margins_use_the_named_head_on_both_sides_and_name_the_model_on_a_mismatch():
    pairs = features(n=40, d=2)
    model = fit_reward_model(features(n=300, d=2), n_components=2)
    expected = (
        pairs.chosen @ model.decomposed.components_[1] - pairs.rejected @ model.decomposed.components_[1]
    )
    np.testing.assert_allclose(model.margins(pairs, head="pc2"), expected, rtol=1e-5, atol=1e-6)
    other = features(n=40, d=2, namespace=NAMESPACE | {"max_length": 64})
    with pytest.raises(IncompatibleBackboneError, match=r"^the reward model was fitted on features"):
        model.margins(other)


def test_build_profile_records_the_user_and_the_adapter():
    model = fit_reward_model(features(), n_components=3)
    profile = build_profile(model, "carol", features(n=20, seed=1).differences, method="hyre")
    assert (profile.user, profile.method, profile.n_pairs) == ("carol", "hyre", 20)
