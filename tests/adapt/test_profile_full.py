"""Profiles with a full-feature part: round trip through SQLite, identical scores, old stores migrate."""

import sqlite3

import numpy as np
import pytest

from pluralrm.adapt import ProfileStore, build_profile
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.fitting import fit_reward_model


def model_and_pairs():
    rng = np.random.default_rng(0)
    D = rng.normal(size=(300, 12)) + np.linspace(1, 0, 12)
    model = fit_reward_model(
        PairFeatures(chosen=D, rejected=np.zeros_like(D), ids=[None] * 300), n_components=3
    )
    w = rng.normal(size=12)
    user = rng.normal(size=(40, 12))
    return model, np.where((user @ w > 0)[:, None], user, -user)


def test_map_profile_round_trips_and_scores_identically(tmp_path):
    model, D = model_and_pairs()
    profile = build_profile(model, "carol", D[:20])
    assert profile.method == "map" and profile.full is not None
    # the full part is orthogonal to the heads; the two parts add up to the fitted vector
    np.testing.assert_allclose(model.decomposed.components_ @ profile.full, 0.0, atol=1e-10)
    H = np.random.default_rng(1).normal(size=(25, 12))
    stored = ProfileStore(tmp_path / "p.sqlite").put(profile)
    np.testing.assert_array_equal(stored.full, profile.full)
    np.testing.assert_array_equal(model.rewards(H, user=stored), model.rewards(H, user=profile))


def test_old_store_without_full_column_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE profiles (user TEXT PRIMARY KEY, weights TEXT NOT NULL, head_set TEXT NOT NULL, "
            "method TEXT NOT NULL, n_pairs INTEGER NOT NULL, created_at REAL NOT NULL, "
            "updated_at REAL NOT NULL)"
        )
        connection.execute("INSERT INTO profiles VALUES ('old', '[1.0, 2.0]', 'abc', 'hyre', 3, 1.0, 2.0)")
    store = ProfileStore(path)
    old = store.get("old")
    assert old.full is None and old.weights.tolist() == [1.0, 2.0]
    model, D = model_and_pairs()
    store.put(build_profile(model, "new", D[:10]))
    assert [p.user for p in store.list()] == ["new", "old"] and store.get("new").full is not None


def test_bt_profile_is_the_from_scratch_head_of_kshot_user_bt(tmp_path):
    """``adapt --method bt`` stores exactly the bar the k-shot tables call user-bt, and scores through the
    same path (heads part + full part = the BT head fitted on the user's pairs alone)."""
    from pluralrm.adapt.kshot import user_bt_margins
    from pluralrm.config import ADAPT
    from pluralrm.rewards.linear_head import LinearRewardHead

    model, D = model_and_pairs()
    profile = build_profile(model, "dan", D[:15], method="bt")
    assert profile.method == "bt" and profile.n_pairs == 15
    rng = np.random.default_rng(2)
    test = PairFeatures(chosen=rng.normal(size=(30, 12)), rejected=rng.normal(size=(30, 12)), ids=[None] * 30)
    stored = ProfileStore(tmp_path / "p.sqlite").put(profile)
    np.testing.assert_allclose(
        model.margins(test, user=stored), user_bt_margins(D[:15], test, model, ADAPT.bt_alpha), atol=1e-10
    )
    w = LinearRewardHead(alpha=ADAPT.bt_alpha).fit(D[:15]).coef_
    np.testing.assert_allclose(model.reward_vector(user=stored), w, atol=1e-12)
    with pytest.raises(ValueError, match="'bt' learns from the user's own pairs alone"):
        build_profile(model, "eve", D[:0], method="bt")
