"""Personalized best-of-N on users whose true reward is known: picks, gains and the methods compared."""

from __future__ import annotations

import numpy as np
import pytest

from pluralrm.evaluate.many.personal import (
    draw_labelled_pairs,
    mixture_users,
    pick_quality,
    summarize,
    user_rows,
)
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.reward_model import RewardModel

D_FEATURES = 8


def _pool_model(majority: np.ndarray, seed: int = 0) -> RewardModel:
    """General head = the majority's direction; PCA heads from pairs of users spread over the space."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, D_FEATURES))
    users = rng.normal(size=(6, D_FEATURES))
    w = users[rng.integers(0, 6, size=600)]
    D = X * np.sign(np.sum(X * w, axis=1))[:, None]
    heads = DecomposedRewardModel(n_components=D_FEATURES).fit(D)
    return RewardModel(
        namespace={}, backbone_name="", general=LinearRewardHead.from_coef(majority), decomposed=heads
    )


def _prompts(n_prompts: int, n: int, w_true: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    H = [rng.normal(size=(n, D_FEATURES)) for _ in range(n_prompts)]
    return H, [h @ w_true for h in H]


def test_pick_quality_gain_and_top1():
    true = [np.array([0.0, 3.0, 0.0]), np.array([2.0, -2.0]), np.array([5.0, 5.0])]
    gain, top1 = pick_quality(true, np.array([1, 1, 0]))
    np.testing.assert_allclose(gain[:2], [1.0, -1.0])
    assert np.isnan(gain[2]) and top1.tolist() == [True, False, True]


def test_labelled_pairs_agree_with_the_true_reward():
    w = np.arange(1.0, D_FEATURES + 1)
    H, true = _prompts(10, 5, w, seed=1)
    D = draw_labelled_pairs(H, true, 40, np.random.default_rng(0))
    assert D.shape == (40, D_FEATURES) and np.all(D @ w > 0)


def test_a_contrarian_user_is_served_by_their_profile_not_the_general_head():
    majority = np.zeros(D_FEATURES)
    majority[0] = 1.0
    model = _pool_model(majority)
    contrarian = -majority + 0.3 * np.eye(D_FEATURES)[1]
    adapt, test = _prompts(40, 6, contrarian, seed=2), _prompts(60, 6, contrarian, seed=3)
    rows = {(r["method"], r["k"]): r for r in user_rows("c", model, adapt, test, ks=(0, 50), n_draws=3)}
    assert rows[("oracle", 50)]["gain"] == pytest.approx(1.0) and rows[("oracle", 50)]["top1"] == 1.0
    assert rows[("general", 0)]["gain"] < -0.5  # the majority's pick is this user's worst
    assert rows[("general", 0)]["differs"] == 0.0
    assert rows[("profile", 0)]["differs"] < 0.05  # no pairs: the profile is the prior
    assert rows[("profile", 50)]["gain"] > 0.8 and rows[("profile", 50)]["differs"] > 0.8
    assert rows[("user-bt", 50)]["gain"] > 0.8


def test_mixture_users_are_convex_combinations_of_scaled_heads():
    model = _pool_model(np.eye(D_FEATURES)[0])
    H = np.random.default_rng(4).normal(size=(200, D_FEATURES)) * 3.0
    users = mixture_users(model, H, n_users=4, n_heads=3, concentration=0.5, seed=0)
    heads = model.decomposed.components_[:3]
    scale = np.sqrt(np.mean((H @ heads.T) ** 2, axis=0))
    for w in users.values():
        mix = np.linalg.lstsq(heads.T, w, rcond=None)[0] * scale  # weights over the scaled heads
        assert mix.sum() == pytest.approx(1.0) and np.all(mix >= 0)
    assert len({tuple(np.round(w, 6)) for w in users.values()}) == 4


def test_summarize_averages_over_users():
    rows = [
        {"user": u, "method": "profile", "k": 5, "gain": g, "top1": t, "differs": 0.5}
        for u, g, t in (("a", 0.2, 0.5), ("b", 0.6, 1.0))
    ]
    (row,) = summarize(rows)
    assert row["gain"] == pytest.approx(0.4) and row["top1"] == 0.75
    assert (row["gain_min_user"], row["gain_max_user"], row["n_users"]) == (0.2, 0.6, 2)


def test_user_bt_is_not_reported_without_pairs():
    majority = np.eye(D_FEATURES)[0]
    model = _pool_model(majority)
    data = _prompts(10, 4, majority, seed=5)
    rows = user_rows("u", model, data, data, ks=(0, 3), n_draws=2)
    assert {(r["method"], r["k"]) for r in rows if r["method"] == "user-bt"} == {("user-bt", 3)}
