"""Choosing a new user's feature space from the pool: the pool's users decide, never the target."""

from dataclasses import replace

import numpy as np
import pytest

from pluralrm.adapt.choice import choose_features, pool_learnability, run_kshot_choosing
from pluralrm.adapt.kshot import run_kshot
from pluralrm.data.features import PairFeatures
from tests.conftest import shared_taste_pool


def user_pairs(name: str, n: int, learnable: bool, seed: int, d: int = 8) -> PairFeatures:
    """``n`` pairs of one user; with ``learnable`` the label is the sign along the user's own direction,
    otherwise the differences carry no information about the label (independent noise)."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(n, d))
    if learnable:
        w = rng.normal(size=d)
        D = np.where((D @ w > 0)[:, None], D, -D)
    return PairFeatures(
        chosen=D,
        rejected=np.zeros_like(D),
        ids=[f"{name}-{i}" for i in range(n)],
        users=[name] * n,
        groups=[f"{name}-prompt-{i}" for i in range(n)],
    )


def candidate(pool_learnable: bool, target_learnable: bool, n: int = 120):
    """A feature space: three pool users and one target ``t`` (adaptation and test halves), as run_kshot
    takes them; the same ids and prompts in every candidate, the features differ."""
    parts = [user_pairs(f"p{u}", n, pool_learnable, seed=u) for u in range(3)]
    target = user_pairs("t", n, target_learnable, seed=10)
    general = replace(user_pairs("", n, True, seed=20), users=[None] * n)  # general data: nobody's
    pool = PairFeatures.concatenate([*parts, general, target.select(range(n // 2))])
    return pool, {"t": (target.select(range(n // 2)), target.select(range(n // 2, n)))}


def test_learnability_separates_signal_from_noise():
    signal, _ = candidate(True, True)
    noise, _ = candidate(False, True)
    learned = pool_learnability(signal, k=15, n_draws=5)
    unlearned = pool_learnability(noise, k=15, n_draws=5)
    assert set(learned) == {"p0", "p1", "p2", "t"}  # labelled users only: the general data is nobody's
    assert min(learned.values()) > 0.75
    assert max(abs(unlearned[u] - 0.5) for u in ("p0", "p1", "p2")) < 0.12
    assert unlearned["t"] > 0.75  # t is learnable in both candidates here


def test_choice_is_the_space_where_the_pool_is_learned_best_first_of_equals():
    signal, _ = candidate(True, True)
    noise, _ = candidate(False, True)
    choice = choose_features({"noise": noise, "signal": signal}, k=10, n_draws=3)
    assert choice.name == "signal"
    assert choice.scores["signal"] > choice.scores["noise"] + 0.2
    tie = choose_features({"first": signal, "second": signal}, k=10, n_draws=3)
    assert tie.name == "first" and tie.scores["first"] == tie.scores["second"]


def test_the_target_never_takes_part_in_its_own_choice():
    # The pool's users are learnable only in A, the target only in B: choosing by the target would pick B.
    a = candidate(pool_learnable=True, target_learnable=False)
    b = candidate(pool_learnable=False, target_learnable=True)
    rows, choices = run_kshot_choosing(
        {"A": a, "B": b}, ks=(15,), n_draws=3, methods=("user-bt",), choice_k=15, choice_draws=3
    )
    assert choices["t"].name == "A" and "t" not in choices["t"].users
    assert [r["features"] for r in rows] == ["A"]
    expected = run_kshot(a[0], a[1], ks=(15,), n_draws=3, methods=("user-bt",))
    assert rows[0]["mean"] == expected[0]["mean"]
    assert abs(rows[0]["mean"] - 0.5) < 0.15  # the target is noise in A: the choice was not theirs


def test_candidates_must_hold_the_same_pairs():
    signal, _ = candidate(True, True)
    fewer = signal.select(range(len(signal) - 1))
    with pytest.raises(ValueError, match="candidate 'short' holds other pairs"):
        choose_features({"full": signal, "short": fewer})


def test_a_pool_without_labelled_users_is_refused_with_the_reason():
    signal, _ = candidate(True, True)
    unlabelled = replace(signal, users=[None] * len(signal))
    with pytest.raises(ValueError, match="labelled users in the pool with at least 30 pairs"):
        pool_learnability(unlabelled, k=15)


def test_adapter_choice_is_run_kshot_on_the_pools_own_users_and_prefers_the_prior_when_tastes_are_shared():
    from pluralrm.adapt.kshot import choose_adapter
    from pluralrm.data.splits import group_split

    pool = shared_taste_pool()
    choice = choose_adapter(pool, methods=("bt", "map"), k=5, n_draws=4)
    # 5 pairs in 24 dimensions: from scratch is noisy, the pool's general head is nearly every user's taste
    assert choice.name == "map" and choice.scores["map"] > choice.scores["bt"] + 0.05
    assert choice.users == ("u0", "u1", "u2", "u3")
    targets = {}
    for user in choice.users:
        idx = np.array([i for i, u in enumerate(pool.users) if u == user])
        first, second = group_split([pool.groups[i] for i in idx], [0.5, 0.5], seed=0)
        targets[user] = (pool.select(idx[first]), pool.select(idx[second]))
    rows = run_kshot(pool, targets, ks=(5,), n_draws=4, methods=("drm-map", "user-bt"))
    for method, name in (("map", "drm-map"), ("bt", "user-bt")):
        assert choice.scores[method] == pytest.approx(
            np.mean([r["mean"] for r in rows if r["method"] == name])
        )


def test_adapter_choice_refuses_unknown_adapters_and_unlabelled_pools():
    from pluralrm.adapt.kshot import choose_adapter

    pool = shared_taste_pool()
    with pytest.raises(ValueError, match="adapters to choose from: \\['map', 'nope'\\]"):
        choose_adapter(pool, methods=("map", "nope"))
    with pytest.raises(ValueError, match="choosing an adapter needs labelled users"):
        choose_adapter(replace(pool, users=[None] * len(pool)), k=5)


def test_kshot_auto_rows_are_the_rows_of_the_adapter_chosen_on_the_targets_seen_pool():
    pool = shared_taste_pool(n_users=5)
    target = pool.select([i for i, u in enumerate(pool.users) if u == "u4"])
    users = {"u4": (target.select(range(40)), target.select(range(40, 80)))}
    auto = run_kshot(pool, users, ks=(5,), n_draws=3, methods=("auto",))
    direct = run_kshot(pool, users, ks=(5,), n_draws=3, methods=("drm-map",))
    assert [r["method"] for r in auto] == ["auto"] and auto[0]["adapter"] == "map"
    assert auto[0]["mean"] == direct[0]["mean"]
    # no labelled pool user with enough pairs: auto is what adapt does for a model without a choice (map)
    unlabelled = replace(pool, users=[None if u != "u4" else u for u in pool.users])
    fallback = run_kshot(unlabelled, users, ks=(5,), n_draws=3, methods=("auto", "user-bt"))
    assert {r["adapter"] for r in fallback if r["method"] == "auto"} == {"map"}
    assert [r["method"] for r in fallback] == ["user-bt", "auto"]
