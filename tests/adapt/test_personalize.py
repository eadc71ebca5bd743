import numpy as np
import pytest

from pluralrm.adapt import ProfileMismatchError, build_profile, fit_user_weights
from pluralrm.adapt.adapters import weights_over_heads
from pluralrm.adapt.kshot import adapted_margins, kshot_rows
from pluralrm.data.features import PairFeatures
from pluralrm.rewards import DecomposedRewardModel, LinearRewardHead
from pluralrm.rewards.fitting import fit_reward_model
from pluralrm.rewards.reward_model import RewardModel


def users_on_shared_axes(d=64, n_axes=4, n=600, seed=0):
    """Several users, each preferring one of a few shared feature directions, in isotropic noise that
    fills every other direction (so random directions see mostly noise, PCA directions the signal)."""
    rng = np.random.default_rng(seed)
    axes = np.linalg.qr(rng.normal(size=(d, n_axes)))[0].T
    # Distinct variances per axis, so that PCA can tell the axes apart (not just their span).
    scales = np.linspace(2.5, 1.5, n_axes)[:, None]
    users = {}
    for u in range(n_axes):
        a = rng.normal(size=(n, n_axes)) @ (axes * scales) + 1.0 * rng.normal(size=(n, d))
        b = rng.normal(size=(n, n_axes)) @ (axes * scales) + 1.0 * rng.normal(size=(n, d))
        first = (a - b) @ axes[u] > 0
        chosen, rejected = np.where(first[:, None], a, b), np.where(first[:, None], b, a)
        users[f"u{u}"] = PairFeatures(
            chosen=chosen, rejected=rejected, ids=[f"{u}-{i}" for i in range(n)], users=[f"u{u}"] * n
        )
    return users


def test_each_user_recovers_their_direction_from_few_pairs():
    users = users_on_shared_axes()
    pool = np.concatenate([f.differences[:300] for f in users.values()])
    model = fit_reward_model(
        PairFeatures(chosen=pool, rejected=np.zeros_like(pool), ids=[None] * len(pool)),
        n_components=4,
        center=False,
    )
    for method in ("logistic", "hyre", "best-head"):
        for name, feats in users.items():
            profile = build_profile(model, name, feats.differences[300:330], method=method)
            accuracy = (model.rewards(feats.differences[400:], user=profile) > 0).mean()
            assert accuracy > 0.8, (method, name, accuracy)
            # The personal reward of the chosen response beats the rejected one's: the sign is right.
            margins = model.rewards(feats.chosen[400:], user=profile) - model.rewards(
                feats.rejected[400:], user=profile
            )
            assert (margins > 0).mean() == accuracy


def test_profile_weights_apply_only_to_their_head_set():
    users = users_on_shared_axes()
    D = users["u0"].differences
    fake = PairFeatures(chosen=D, rejected=np.zeros_like(D), ids=[None] * len(D))
    model = fit_reward_model(fake, n_components=3)
    profile = build_profile(model, "alice", D[:20])
    assert profile.head_set == model.head_set and profile.n_pairs == 20 and len(profile.weights) == 3
    other = fit_reward_model(
        PairFeatures(chosen=D[::-1][:400], rejected=np.zeros_like(D[:400]), ids=[None] * 400), n_components=3
    )
    with pytest.raises(ProfileMismatchError):
        other.rewards(users["u0"].chosen[:5], user=profile)
    with pytest.raises(ValueError, match="unknown adapter"):
        fit_user_weights(model, D[:5], method="magic")


def _model_and_pairs():
    users = users_on_shared_axes(d=16, n=200)
    pool = np.concatenate([f.differences[:100] for f in users.values()])
    model = fit_reward_model(
        PairFeatures(chosen=pool, rejected=np.zeros_like(pool), ids=[None] * len(pool)), n_components=5
    )
    return model, users["u1"].differences[100:130]


def test_without_pairs_the_logistic_profile_is_the_general_head_seen_through_the_heads():
    model, _ = _model_and_pairs()
    C, g = model.decomposed.components_, model.general.coef_
    profile = build_profile(model, "new", np.zeros((0, C.shape[1])), method="logistic")
    H = np.random.default_rng(0).normal(size=(50, C.shape[1]))
    # The prior is the general head projected onto the heads' span, whatever the z-scoring does.
    np.testing.assert_allclose(model.rewards(H, user=profile), H @ C.T @ (C @ g), rtol=1e-9, atol=1e-12)


def test_adapters_see_z_scored_head_scores_and_profiles_keep_raw_weights():
    model, D = _model_and_pairs()
    pca = model.decomposed
    scale = pca.head_scale_
    assert not np.allclose(scale, scale[0])  # distinct scales, so a missing z-score would show
    S_z = (D @ pca.components_.T) / scale
    for method in ("logistic", "hyre"):
        prior = (pca.components_ @ model.general.coef_) * scale
        expected = weights_over_heads(S_z, method, prior=prior, alpha=1.0) / scale
        np.testing.assert_allclose(fit_user_weights(model, D, method=method), expected, rtol=1e-10)
    raw = weights_over_heads(D @ pca.components_.T, "logistic", prior=pca.components_ @ model.general.coef_)
    np.testing.assert_allclose(fit_user_weights(model, D, method="logistic", zscore=False), raw, rtol=1e-10)
    assert not np.allclose(
        fit_user_weights(model, D, method="logistic", zscore=False),
        fit_user_weights(model, D, method="logistic"),
        rtol=1e-3,
    )


def test_adapter_parameters_reach_the_adapter():
    model, D = _model_and_pairs()
    weak = fit_user_weights(model, D, method="logistic", alpha=1e3)  # a strong pull toward the prior
    prior = fit_user_weights(model, D[:0], method="logistic")
    strong = fit_user_weights(model, D, method="logistic", alpha=1e-2)
    assert np.linalg.norm(weak - prior) < 0.05 * np.linalg.norm(strong - prior)
    sharp = fit_user_weights(model, D, method="hyre", beta=5.0)
    flat = fit_user_weights(model, D, method="hyre", temperature=1e6)
    assert not np.allclose(sharp, fit_user_weights(model, D, method="hyre"))
    np.testing.assert_allclose(flat, 0.0, atol=1e-5)  # huge temperature: ± heads cancel


def test_kshot_adapting_over_heads_beats_learning_from_scratch_with_few_pairs():
    users = users_on_shared_axes(n=500)
    split = {name: (f.select(range(250)), f.select(range(250, 500))) for name, f in users.items()}
    D_fit = np.concatenate([pool.differences for pool, _ in split.values()])
    model = RewardModel(
        namespace={},
        backbone_name="",
        general=LinearRewardHead().fit(D_fit),
        decomposed=DecomposedRewardModel(n_components=4, center=False).fit(D_fit),
    )
    methods = (
        "general",
        "drm-hyre",
        "drm-logistic",
        "drm-best-head",
        "random-logistic",
        "user-bt",
        "user-bt-all",
    )
    rows = kshot_rows(split, model, ks=(0, 10), n_draws=5, methods=methods)

    def at(method, k):
        return np.mean([r["mean"] for r in rows if r["method"] == method and r["k"] == k])

    for method in ("drm-hyre", "drm-logistic", "drm-best-head"):
        assert at(method, 10) > at("user-bt", 10) + 0.05, method  # 4 weights are easier than 64
    assert at("drm-hyre", 0) == pytest.approx(0.5, abs=0.02)  # uniform over ± heads: a coin flip
    assert at("drm-logistic", 0) == pytest.approx(at("general", 0), abs=0.02)  # k=0 is the prior
    assert at("user-bt-all", 0) > 0.9 and at("random-logistic", 0) == 0.5
    assert {r["n_draws"] for r in rows if r["method"] == "general"} == {1}
    assert {r["n_draws"] for r in rows if r["method"] == "drm-hyre"} == {5}


def test_kshot_margins_are_the_profiles_rewards():
    model, D = _model_and_pairs()
    test = users_on_shared_axes(d=16, n=200)["u1"].select(range(150, 200))
    profile = build_profile(model, "u1", D, method="hyre")
    np.testing.assert_array_equal(
        adapted_margins(model, "drm-hyre", D, test),
        model.rewards(test.chosen, user=profile) - model.rewards(test.rejected, user=profile),
    )
