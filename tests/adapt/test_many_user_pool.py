"""A pool of many labelled users as a first-class input: heads from the users' own heads, the choice
between those and PCA heads, one fit shared by new users, and kshot on many-user files."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

import pluralrm.adapt.kshot as kshot_module
from pluralrm.adapt.kshot import choose_heads, pool_users, resolve_heads, run_kshot
from pluralrm.cli import app
from pluralrm.config import DECOMPOSE
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.fitting import fit_pool, user_heads
from tests.conftest import NAMESPACE

D_FEATURES = 20
TASTE = (10, 11)  # the two dimensions users' tastes move in; dims 0-4 carry large content variance


def many_users(
    n_users: int = 40, n: int = 30, seed: int = 0, prefix: str = "u", offset: int = 0
) -> PairFeatures:
    """Users whose preferences span dims 10-11 while the pair differences vary most along dims 0-4
    (what the responses are about, which nobody prefers): PCA of the pooled differences finds the
    content, the users' own heads find the taste. Each user's prompts are their own (``offset`` shifts
    them, so two calls can be prompt-disjoint)."""
    rng = np.random.default_rng(seed)
    chosen, rejected, users, groups = [], [], [], []
    for u in range(n_users):
        angle = rng.uniform(0, 2 * np.pi)
        w = np.zeros(D_FEATURES)
        w[list(TASTE)] = 3.0 * np.array([np.cos(angle), np.sin(angle)])
        for i in range(n):
            a, b = rng.normal(size=D_FEATURES), rng.normal(size=D_FEATURES)
            a[:5] *= 6.0
            b[:5] *= 6.0
            first = rng.random() < 1 / (1 + np.exp(-(a - b) @ w))
            chosen.append(a if first else b)
            rejected.append(b if first else a)
            users.append(f"{prefix}{u:02d}")
            groups.append(f"{prefix}-q{offset + u * n + i}")
    return PairFeatures(
        chosen=np.array(chosen),
        rejected=np.array(rejected),
        ids=[f"{prefix}{i}" for i in range(len(chosen))],
        users=users,
        groups=groups,
        namespace=NAMESPACE,
    )


def taste_share(components: np.ndarray) -> float:
    """Mean share of each head's squared norm inside the users' taste plane."""
    return float(np.mean(np.sum(components[:, list(TASTE)] ** 2, axis=1)))


def test_user_heads_find_where_users_differ_and_pca_finds_where_pairs_vary():
    pool = many_users()
    users = user_heads(pool, 2)
    pca = fit_pool(pool, replace(DECOMPOSE, n_components=2)).model.decomposed
    assert taste_share(users.components_) > 0.8
    assert taste_share(pca.components_) < 0.1
    # measured on the pooled differences like any heads, so adapters treat both alike
    assert users.explained_variance_.shape == (2,) and np.all(users.explained_variance_ > 0)


def test_user_heads_need_labelled_users():
    unlabelled = replace(many_users(n_users=3), users=[None] * 90)
    with pytest.raises(ValueError, match="two or more users"):
        user_heads(unlabelled, 2)


def test_heads_choice_prefers_the_users_heads_when_only_they_hold_the_taste():
    pool = many_users()
    config = replace(DECOMPOSE, n_components=2, choice_users=6, choice_draws=3, choice_k=10)
    choice = choose_heads(pool, k=10, n_draws=3, decompose=config)
    assert choice.name == "users"
    assert choice.scores["users"] > choice.scores["pca"] + 0.03
    assert len(choice.users) == 6
    assert resolve_heads(pool, replace(config, heads="auto"), 0).heads == "users"
    unlabelled = replace(pool, users=[None] * len(pool))
    assert resolve_heads(unlabelled, replace(config, heads="auto"), 0).heads == "pca"


def test_choice_users_are_a_seeded_sample_of_the_eligible_users():
    pool = many_users()
    every = pool_users(pool, 5)
    sample = pool_users(pool, 5, at_most=7, seed=3)
    assert len(every) == 40 and len(sample) == 7
    assert set(sample) <= set(every)
    assert sample.keys() == pool_users(pool, 5, at_most=7, seed=3).keys()
    assert sample.keys() != pool_users(pool, 5, at_most=7, seed=4).keys()
    assert all(np.array_equal(sample[u], every[u]) for u in sample)


def test_new_users_who_share_a_seen_pool_share_one_fit_with_the_same_rows(monkeypatch):
    """Unseen users on prompts the pool never saw see the same pool: it is fitted once, and every
    user's rows are what a run for that user alone gives."""
    pool = many_users(n_users=20)
    new = many_users(n_users=3, seed=1, prefix="new", offset=10_000)
    targets = {}
    for user in ("new00", "new01", "new02"):
        mine = new.select([i for i, u in enumerate(new.users) if u == user])
        targets[user] = (mine.select(range(15)), mine.select(range(15, 30)))
    calls = []
    real = kshot_module.fit_pool

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(kshot_module, "fit_pool", counting)
    options = dict(ks=(3,), n_draws=2, methods=("general", "drm-map", "user-bt"))
    together = run_kshot(pool, targets, **options)
    assert len(calls) == 1
    alone = [row for user in targets for row in run_kshot(pool, {user: targets[user]}, **options)]
    assert len(calls) == 4
    assert [(r["user"], r["method"], r["mean"]) for r in together] == [
        (r["user"], r["method"], r["mean"]) for r in alone
    ]


def test_kshot_reads_many_users_from_one_file_and_summarizes_over_users(tmp_path):
    pool = many_users(n_users=12)
    new = many_users(n_users=14, seed=1, prefix="new", offset=10_000)
    first = [i for i in range(len(new)) if int(new.groups[i].rsplit("q", 1)[1]) % 30 < 15]
    second = sorted(set(range(len(new))) - set(first))
    pool.save(tmp_path / "pool")
    new.select(first).save(tmp_path / "adapt")
    new.select(second).save(tmp_path / "test")
    out = tmp_path / "out"
    args = ["kshot", "--pool", str(tmp_path / "pool"), "--adapt", str(tmp_path / "adapt")]
    args += ["--test", str(tmp_path / "test"), "--out", str(out), "--ks", "3", "--draws", "2"]
    args += ["--methods", "general,drm-map,user-bt", "--components", "2", "--heads", "users"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "kshot.csv").read_text().splitlines()))
    assert {r["user"] for r in rows} == {f"new{u:02d}" for u in range(14)}
    summary = list(csv.DictReader((out / "kshot-over-users.csv").read_text().splitlines()))
    for method in ("general", "drm-map", "user-bt"):
        mine = [float(r["mean"]) for r in rows if r["method"] == method]
        (row,) = [r for r in summary if r["method"] == method]
        assert float(row["mean"]) == pytest.approx(np.mean(mine), abs=1e-4)  # the csv keeps 4 decimals
        assert int(row["n_users"]) == 14
        assert float(row["ci_low"]) < float(row["mean"]) < float(row["ci_high"])
    # A many-user file whose pairs name no user is refused with the reason.
    replace(new.select(first), users=[None] * len(first)).save(tmp_path / "anonymous")
    args[args.index("--adapt") + 1] = str(tmp_path / "anonymous")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "name their 'user'" in result.output


def test_decompose_fits_the_users_heads_of_a_many_user_pool(tmp_path):
    from pluralrm.rewards.reward_model import RewardModel

    many_users().save(tmp_path / "pool")
    args = ["decompose", str(tmp_path / "pool"), "--components", "2", "--heads", "users"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    model = RewardModel.from_pretrained(tmp_path / "m")
    assert model.metadata["heads"] == "users"
    assert taste_share(model.decomposed.components_) > 0.8
