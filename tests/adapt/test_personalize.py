import numpy as np
import pytest

from pluralrm.adapt import ProfileMismatchError, build_profile, fit_user_weights, personal_rewards
from pluralrm.data.features import PairFeatures
from pluralrm.evaluate.kshot import HeadSet, kshot_rows
from pluralrm.rewards import DecomposedRewardModel, LinearRewardHead
from pluralrm.rewards.fitting import fit_reward_model


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
            weights = fit_user_weights(model, feats.differences[300:330], method=method)
            D_test = feats.differences[400:]
            accuracy = ((model.decomposed.scores(D_test) @ weights) > 0).mean()
            assert accuracy > 0.8, (method, name, accuracy)


def test_profile_weights_apply_only_to_their_head_set():
    users = users_on_shared_axes()
    D = users["u0"].differences
    fake = PairFeatures(chosen=D, rejected=np.zeros_like(D), ids=[None] * len(D))
    model = fit_reward_model(fake, n_components=3)
    profile = build_profile(model, "alice", D[:20])
    assert profile.head_set and profile.n_pairs == 20 and len(profile.weights) == 3
    assert personal_rewards(model, users["u0"].chosen[:5], profile).shape == (5,)
    other = fit_reward_model(
        PairFeatures(chosen=D[::-1], rejected=np.zeros_like(D), ids=[None] * len(D)), n_components=3
    )
    with pytest.raises(ProfileMismatchError):
        personal_rewards(other, users["u0"].chosen[:5], profile)
    with pytest.raises(ValueError, match="unknown adapter"):
        fit_user_weights(model, D[:5], method="magic")


def test_kshot_adapting_over_heads_beats_learning_from_scratch_with_few_pairs():
    users = users_on_shared_axes(n=500)
    split = {name: (f.select(range(250)), f.select(range(250, 500))) for name, f in users.items()}
    D_fit = np.concatenate([pool.differences for pool, _ in split.values()])
    decomposed = DecomposedRewardModel(n_components=4, center=False).fit(D_fit)
    heads = HeadSet.from_fit_data(decomposed.components_, D_fit)
    general = LinearRewardHead().fit(D_fit)
    methods = (
        "general",
        "drm-hyre",
        "drm-logistic",
        "drm-best-head",
        "random-logistic",
        "user-bt",
        "user-bt-all",
    )
    rows = kshot_rows(split, heads, general, ks=(0, 10), n_draws=5, methods=methods)

    def at(method, k):
        return np.mean([r["mean"] for r in rows if r["method"] == method and r["k"] == k])

    for method in ("drm-hyre", "drm-logistic", "drm-best-head"):
        assert at(method, 10) > at("user-bt", 10) + 0.05, method  # 4 weights are easier than 64
    assert at("drm-hyre", 0) == pytest.approx(0.5, abs=0.02)  # uniform over ± heads: a coin flip
    assert at("drm-logistic", 0) == pytest.approx(at("general", 0), abs=0.02)  # k=0 is the prior
    assert at("user-bt-all", 0) > 0.9 and at("random-logistic", 0) == 0.5
    assert {r["n_draws"] for r in rows if r["method"] == "general"} == {1}
    assert {r["n_draws"] for r in rows if r["method"] == "drm-hyre"} == {5}
