"""How a user's weights are fitted, checked by value (docs/reports/mutation.md): the logistic adapter
solves its own objective by Newton's method in both of its linear-algebra forms, overrides reach the MAP
adapter, the z-scoring of heads, and every field of a stored profile."""

import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from pluralrm.adapt import ProfileStore, UserProfile, build_profile, fit_user_weights
from pluralrm.adapt.adapters import LogisticAdapter, weights_over_heads
from pluralrm.adapt.personalize import fit_user_vector
from pluralrm.adapt.profiles import default_store_path
from pluralrm.rewards.fitting import fit_reward_model
from pluralrm.rewards.math import sigmoid
from tests.conftest import features


@pytest.mark.parametrize(
    ("n", "k"), [(6, 20), (80, 5)]
)  # fewer pairs than heads (push-through form), and more
def test_logistic_adapter_reaches_the_stationary_point_in_few_newton_steps(n, k):
    rng = np.random.default_rng(n)
    S = rng.normal(size=(n, k)) + 0.3
    prior = rng.normal(size=k)
    for alpha in (0.5, 3.0):
        adapter = LogisticAdapter(alpha=alpha, prior=prior).fit(S)
        w = adapter.weights_
        gradient = -(S.T @ sigmoid(-(S @ w))) + alpha * (w - prior)
        np.testing.assert_allclose(gradient, 0.0, atol=1e-7)
        assert 2 <= adapter.n_iter_ <= 8  # Newton: quadratic convergence from the prior
        assert adapter.n_features_in_ == k
    one_step = LogisticAdapter(alpha=1.0, prior=prior, max_iter=1).fit(S)
    assert one_step.n_iter_ == 1 and not np.allclose(one_step.weights_, prior)
    assert LogisticAdapter().max_iter == 50 and LogisticAdapter().tol == 1e-8


def test_logistic_adapter_refuses_a_non_positive_alpha_and_a_wrong_prior():
    S = np.ones((3, 2))
    with pytest.raises(
        ValueError, match=r"^alpha must be positive \(it makes the problem strictly convex\), got 0"
    ):
        LogisticAdapter(alpha=0.0).fit(S)
    with pytest.raises(ValueError, match="prior"):
        LogisticAdapter(prior=np.ones(3)).fit(S)


def test_weights_over_heads_names_what_it_refuses():
    with pytest.raises(
        ValueError, match=r"^the map adapter fits a full weight vector, not weights over heads"
    ):
        weights_over_heads(np.ones((2, 2)), "map")
    with pytest.raises(ValueError, match=r"^unknown adapter 'nope'; choose one of"):
        weights_over_heads(np.ones((2, 2)), "nope")
    assert weights_over_heads(np.ones((2, 2)), "hyre").shape == (2,)


@pytest.fixture(scope="module")
def model():
    return fit_reward_model(features(n=200, d=6), n_components=3)


def test_fit_user_vector_uses_the_config_and_its_overrides(model):
    D = features(n=30, d=6, seed=7).differences
    default = fit_user_vector(model, D).coef_
    strong_prior = fit_user_vector(model, D, map_taus=(0.01,), map_default_taus=(0.01, 0.01, 0.01)).coef_
    assert not np.allclose(default, strong_prior)
    # a tiny prior variance keeps the fit at the prior mean: the general head (sign +1)
    np.testing.assert_allclose(
        strong_prior, model.general.coef_, atol=0.05 * np.abs(model.general.coef_).max()
    )
    one_sign = fit_user_vector(
        model, D, map_signs=(-1.0,), map_taus=(0.01,), map_default_taus=(0.01,) * 3
    ).coef_
    assert one_sign @ model.general.coef_ < 0
    with pytest.raises(ValueError, match="D has 5 features per row, expected 6"):
        fit_user_vector(model, D[:, :5])
    profile = build_profile(model, "u", D, map_signs=(-1.0,), map_taus=(0.01,), map_default_taus=(0.01,) * 3)
    np.testing.assert_allclose(model.reward_vector(user=profile), one_sign, rtol=1e-9, atol=1e-12)
    with pytest.raises(
        ValueError, match=r"^adapter 'map' fits a full weight vector, not weights over heads; use"
    ):
        fit_user_weights(model, D, method="map")


def test_zscoring_divides_by_head_scale_and_leaves_dead_heads_alone(model):
    D = features(n=30, d=6, seed=8).differences
    pca = model.decomposed
    dead = replace_scale(model, np.array([pca.head_scale_[0], 0.0, 0.5]))
    w = fit_user_weights(dead, D, method="hyre")
    S = dead.decomposed.scores(D) / np.array([dead.decomposed.head_scale_[0], 1.0, 0.5])
    expected = weights_over_heads(S, "hyre") / np.array([dead.decomposed.head_scale_[0], 1.0, 0.5])
    np.testing.assert_allclose(w, expected, rtol=1e-10)
    raw = fit_user_weights(model, D, method="hyre", zscore=False)
    np.testing.assert_allclose(raw, weights_over_heads(pca.scores(D), "hyre"), rtol=1e-10)


def replace_scale(model, scale):
    from pluralrm.rewards.decomposed import DecomposedRewardModel
    from pluralrm.rewards.reward_model import RewardModel

    arrays = model.decomposed.to_arrays() | {"head_scale": scale}
    heads = DecomposedRewardModel.from_arrays(arrays, **model.decomposed.get_params())
    return RewardModel(namespace=model.namespace, backbone_name="", general=model.general, decomposed=heads)


def test_every_profile_field_round_trips_and_weights_become_floats(tmp_path, isolated_cache):
    store = ProfileStore(tmp_path / "deep" / "er" / "p.sqlite")  # parents are created
    profile = UserProfile(
        "ann", [1, 2, 3], "hs", "hyre", 7, created_at=100.0, updated_at=100.0, full=[0, 1, 0]
    )
    stored = store.put(profile)
    assert stored.weights.dtype == np.float64 and stored.weights.tolist() == [1.0, 2.0, 3.0]
    assert stored.full.dtype == np.float64 and stored.full.tolist() == [0.0, 1.0, 0.0]
    assert (stored.user, stored.head_set, stored.method, stored.n_pairs) == ("ann", "hs", "hyre", 7)
    assert stored.created_at == 100.0 and stored.updated_at > 100.0
    again = store.put(replace(profile, n_pairs=9, created_at=500.0))
    assert again.created_at == 100.0 and again.n_pairs == 9 and again.updated_at >= stored.updated_at
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT weights FROM profiles").fetchone()[0] == "[1.0, 2.0, 3.0]"
    assert default_store_path() == isolated_cache / "profiles.sqlite"
    assert ProfileStore().path == isolated_cache / "profiles.sqlite"
    assert ProfileStore(tmp_path / "x.sqlite").timeout == 30.0
