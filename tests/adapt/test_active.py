"""Active pair selection: each rule picks what its maths says, deterministically, and the protocol runs."""

import csv
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from pluralrm.adapt.active import STRATEGIES, Belief, next_pairs, posterior, scores
from pluralrm.adapt.kshot_active import run_kshot_active, selection_order
from pluralrm.config import DECOMPOSE
from pluralrm.rewards.fitting import fit_pool
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.reward_model import RewardModel
from tests.conftest import low_rank_users


@pytest.fixture(scope="module")
def model_and_user():
    pool, users = low_rank_users()
    model = fit_pool(pool, replace(DECOMPOSE, n_components=4), seed=0).model
    return model, users["u0"][0].differences


def _belief(d, *, mean, cov_diag):
    """A belief with a diagonal prior covariance and no labels (factor columns = sqrt(diag) e_i)."""
    return Belief(
        mean=np.asarray(mean, float),
        factor=np.diag(np.sqrt(cov_diag)),
        ridge=0.0,
        scale=1.0,
        Z=np.zeros((0, d)),
        curvature=np.zeros(0),
    )


def _dense_posterior(belief):
    """Σ = (Σ₀⁻¹ + Zᵀ Λ Z)⁻¹ formed densely: what the dual computation must equal."""
    d = len(belief.mean)
    prior = belief.factor @ belief.factor.T + belief.ridge * np.eye(d)
    return np.linalg.inv(np.linalg.inv(prior) + (belief.Z.T * belief.curvature) @ belief.Z)


def test_margin_variance_matches_the_dense_laplace_posterior(model_and_user):
    model, D = model_and_user
    for adapter in ("map", "bt"):
        belief = posterior(model, D[:6], adapter=adapter)
        mu, v = belief.margins(D)
        Xz = D / belief.scale
        np.testing.assert_allclose(v, np.einsum("ij,jk,ik->i", Xz, _dense_posterior(belief), Xz), rtol=1e-8)
        np.testing.assert_allclose(mu, D @ belief.mean)


def test_bt_posterior_mode_is_the_bt_adapters_head(model_and_user):
    """The dual Newton mode is the optimum LinearRewardHead's L-BFGS finds (the profile kshot scores)."""
    model, D = model_and_user
    belief = posterior(model, D[:8], adapter="bt")
    head = LinearRewardHead(alpha=1e-2).fit(D[:8]).coef_
    np.testing.assert_allclose(belief.mean, head, rtol=1e-3, atol=1e-4 * np.abs(head).max())


def test_cold_start_is_the_pools_prior(model_and_user):
    """No labels: the belief is the pool's general head with the heads' covariance, for bt as for map."""
    model, _ = model_and_user
    for adapter in ("map", "bt"):
        belief = posterior(model, None, adapter=adapter)
        np.testing.assert_allclose(belief.mean, model.general.coef_)
        assert belief.factor.shape[1] == 1 + len(model.decomposed.components_) and len(belief.Z) == 0


def test_uncertainty_picks_the_margin_nearest_zero(model_and_user):
    model, D = model_and_user
    belief = posterior(model, D[:5], adapter="map")
    margins = D @ belief.mean
    expected = int(np.argmin(np.abs(margins)))
    assert next_pairs(model, D, D[:5], strategy="uncertainty", adapter="map") == [expected]
    # a constructed case: three candidates along the mode, margins 2, -0.1, 1
    unit = belief.mean / (belief.mean @ belief.mean)
    X = np.stack([2.0 * unit, -0.1 * unit, 1.0 * unit])
    assert next_pairs(model, X, D[:5], strategy="uncertainty", adapter="map", n=3) == [1, 2, 0]


def test_bald_prefers_the_posteriors_widest_direction():
    """Zero mean: every candidate's margin is uncertain in sign, and BALD grows with its variance."""
    belief = _belief(3, mean=[0.0, 0.0, 0.0], cov_diag=[9.0, 1.0, 0.1])
    X = np.eye(3)[[2, 0, 1]]  # narrowest, widest, middle
    ranked = np.argsort(-scores(belief, X, "bald"))
    assert ranked.tolist() == [1, 2, 0]
    # and a pair along a narrow direction with a confident mean is worth less than an uncertain one
    sure = _belief(2, mean=[5.0, 0.0], cov_diag=[0.01, 4.0])
    assert np.argmax(scores(sure, np.eye(2), "bald")) == 1


def test_bald_quadrature_matches_a_fine_integral():
    belief = _belief(2, mean=[0.7, 0.0], cov_diag=[2.5, 0.0])
    value = scores(belief, np.array([[1.0, 0.0]]), "bald")[0]
    f = np.linspace(0.7 - 12 * np.sqrt(2.5), 0.7 + 12 * np.sqrt(2.5), 200_001)
    density = np.exp(-((f - 0.7) ** 2) / 5.0)
    density /= density.sum()
    p = 1 / (1 + np.exp(-f))
    h = lambda q: -(q * np.log(q) + (1 - q) * np.log(1 - q))  # noqa: E731
    assert value == pytest.approx(h(p @ density) - h(p) @ density, abs=2e-4)


def test_vote_entropy_and_margin_variance_read_the_posterior():
    belief = _belief(2, mean=[1.0, 0.0], cov_diag=[1.0, 9.0])
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(scores(belief, X, "margin_variance"), [1.0, 9.0])
    # P(f > 0): Φ(1) for the first, 1/2 for the second (zero mean): the second is the committee's split
    entropy = scores(belief, X, "vote_entropy")
    assert entropy[1] == pytest.approx(np.log(2)) and entropy[0] < entropy[1]


def test_epig_is_the_gaussian_mutual_information_with_the_targets_labels(model_and_user):
    """Against the dense posterior: mean over targets of −½ log(1 − ρ²), ρ the pseudo-labels' correlation."""
    model, D = model_and_user
    belief = posterior(model, D[:6], adapter="bt")
    X, order = D[6:60], np.random.default_rng(1).permutation(54)
    value = scores(belief, X, "epig", order=order, targets=20)
    Xz = X / belief.scale
    cov = Xz @ _dense_posterior(belief) @ Xz.T
    p = 1 / (1 + np.exp(-(X @ belief.mean)))
    noise = np.diag(cov) + 1 / (p * (1 - p))
    t = order[:20]
    rho2 = cov[:, t] ** 2 / (noise[:, None] * noise[None, t])
    np.testing.assert_allclose(value, (-0.5 * np.log(1 - rho2)).mean(axis=1), rtol=1e-6)


def test_epig_asks_the_pair_that_informs_the_others_not_the_widest():
    """Twenty pairs along one direction and a long outlier: BALD asks the outlier (largest variance),
    EPIG a pair of the crowd (what most pairs' labels depend on)."""
    rng = np.random.default_rng(0)
    crowd = np.array([1.0, 0.0, 0.0]) + 0.05 * rng.normal(size=(20, 3))
    X = np.vstack([crowd, [[0.0, 0.0, 3.0]]])
    belief = Belief(np.zeros(3), np.zeros((3, 0)), 1.0, 1.0, np.zeros((0, 3)), np.zeros(0))
    assert int(np.argmax(scores(belief, X, "bald"))) == 20
    assert int(np.argmax(scores(belief, X, "epig"))) < 20


def test_epig_batch_conditions_each_pick_so_a_page_is_diverse(model_and_user):
    """Its first pick is the one-pair pick; a near copy of it is not the second, which top-2 would take."""
    model, D = model_and_user
    X = D[5:]
    first = next_pairs(model, X, D[:5], strategy="epig", seed=2)[0]
    copy = len(X)
    X = np.vstack([X, X[first] + 1e-6])
    values = scores(posterior(model, D[:5]), X, "epig", order=np.random.default_rng(2).permutation(len(X)))
    assert sorted(np.argsort(-values)[:2].tolist()) == sorted([first, copy])  # unconditioned: both on top
    batch = next_pairs(model, X, D[:5], strategy="epig", n=2, seed=2)
    assert batch[0] in (first, copy) and batch[1] not in (first, copy)


def test_epig_shortlist_keeps_the_exact_picks(model_and_user):
    """Beyond ACTIVE.shortlist candidates the exact score is computed on a sketch's shortlist only: the
    pairs asked are still those the exact score over every candidate asks."""
    from pluralrm.adapt.active import _epig_picks
    from pluralrm.config import ACTIVE

    model, D = model_and_user
    rng = np.random.default_rng(4)
    X = D[rng.integers(len(D), size=3 * ACTIVE.shortlist)] + 0.5 * rng.normal(
        size=(3 * ACTIVE.shortlist, D.shape[1])
    )
    for adapter in ("bt", "map"):
        belief = posterior(model, D[:5], adapter=adapter)
        for seed in range(3):
            order = np.random.default_rng(seed).permutation(len(X))
            exact = _epig_picks(belief, X, 3, order, shortlist=len(X))
            assert next_pairs(model, X, D[:5], strategy="epig", n=3, seed=seed, adapter=adapter) == exact
            values = scores(belief, X, "epig", order=order)
            assert exact[0] == int(order[np.argmax(values[order])])


def test_logdet_batch_avoids_near_duplicates(model_and_user):
    """A batch of 2 from {x, x + tiny, y}: never the two near-copies, whatever x's variance."""
    model, D = model_and_user
    belief = posterior(model, D[:5], adapter="map")
    _, v = belief.margins(D)
    x = D[int(np.argmax(v))]
    y = D[int(np.argsort(v)[len(v) // 2])]
    X = np.stack([x, x + 1e-6 * np.ones_like(x), y])
    batch = next_pairs(model, X, D[:5], strategy="logdet", adapter="map", n=2)
    assert sorted(batch) in ([0, 2], [1, 2])
    # the top-2 of the per-pair rule takes both near-copies: diversity is the batch rule's doing
    assert sorted(next_pairs(model, X, D[:5], strategy="margin_variance", adapter="map", n=2)) == [0, 1]


def test_logdet_gain_is_the_exact_log_determinant(model_and_user):
    """Greedy picks maximize the exact log det(I + Λ^½ X Σ Xᵀ Λ^½) increment at each step."""
    model, D = model_and_user
    belief = posterior(model, D[:4], adapter="bt")
    X = D[10:40]
    batch = next_pairs(model, X, D[:4], strategy="logdet", adapter="bt", n=3)
    Xz = X / belief.scale
    cov = Xz @ _dense_posterior(belief) @ Xz.T
    p = 1 / (1 + np.exp(-(X @ belief.mean)))
    lam = np.sqrt(p * (1 - p))

    def logdet(idx):
        M = lam[idx, None] * cov[np.ix_(idx, idx)] * lam[None, idx]
        return np.linalg.slogdet(np.eye(len(idx)) + M)[1]

    for step in range(3):
        chosen = batch[:step]
        gains = [logdet([*chosen, j]) if j not in chosen else -np.inf for j in range(len(X))]
        assert batch[step] == int(np.argmax(gains))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_rule_is_deterministic_for_a_seed_and_ignores_orientation(model_and_user, strategy):
    model, D = model_and_user
    first = next_pairs(model, D[5:], D[:5], strategy=strategy, n=4, seed=3)
    assert first == next_pairs(model, D[5:], D[:5], strategy=strategy, n=4, seed=3)
    flips = np.where(np.arange(len(D) - 5) % 2 == 0, 1.0, -1.0)[:, None]
    assert next_pairs(model, D[5:] * flips, D[:5], strategy=strategy, n=4, seed=3) == first
    assert len(set(first)) == 4


def test_random_changes_with_the_seed(model_and_user):
    model, D = model_and_user
    picks = {tuple(next_pairs(model, D, strategy="random", n=3, seed=s)) for s in range(5)}
    assert len(picks) > 1


def test_bad_input_is_refused(model_and_user):
    model, D = model_and_user
    with pytest.raises(ValueError, match="unknown strategy"):
        next_pairs(model, D, strategy="greedy")
    with pytest.raises(ValueError, match="candidates has 3 features"):
        next_pairs(model, D[:, :3])
    with pytest.raises(ValueError, match="n must be at least 1"):
        next_pairs(model, D, n=0)


def test_selection_never_asks_twice_and_beats_nothing_else_by_peeking(model_and_user):
    """The protocol's order: distinct pairs, and labels hidden (the same order whatever the stored sign)."""
    from pluralrm.data.features import PairFeatures

    model, _ = model_and_user
    _, users = low_rank_users()
    adapt = users["u0"][0]
    order = selection_order(model, adapt, "bald", 12, adapter="map", candidates=40)
    assert len(order) == len(set(order)) == 12
    swapped = PairFeatures(chosen=adapt.rejected, rejected=adapt.chosen, ids=adapt.ids, users=adapt.users)
    assert selection_order(model, swapped, "bald", 1, adapter="map", candidates=40) == order[:1]


def test_active_rule_learns_a_low_rank_user_faster_than_random():
    """On users of a shared rank-2 taste, BALD under the map posterior reaches higher accuracy at k = 3."""
    pool, users = low_rank_users(n=200)
    rows = run_kshot_active(
        pool,
        {u: users[u] for u in ("u0", "u1")},
        strategies=("random", "bald"),
        ks=(0, 3),
        n_draws=4,
        adapter="map",
        candidates=60,
        decompose=replace(DECOMPOSE, n_components=4),
    )
    assert {r["k"] for r in rows} == {3}  # k = 0 has nothing to pick
    mean = {s: np.mean([r["mean"] for r in rows if r["select"] == s]) for s in ("random", "bald")}
    assert mean["bald"] > mean["random"]
    assert all(r["adapter"] == "map" and r["method"] == f"select-{r['select']}" for r in rows)


def test_kshot_select_cli_runs_end_to_end(tmp_path):
    from pluralrm.cli import app

    pool, per_user = low_rank_users()
    pool.save(tmp_path / "pool")
    args = ["kshot", "--pool", str(tmp_path / "pool"), "--out", str(tmp_path / "out")]
    for name in ("u0", "u1"):
        adapt, test = per_user[name]
        adapt.save(tmp_path / f"{name}-adapt")
        replace(test, users=[None] * len(test)).save(tmp_path / f"{name}-test")
        args += [
            "--adapt",
            f"{name}={tmp_path / f'{name}-adapt'}",
            "--test",
            f"{name}={tmp_path / f'{name}-test'}",
        ]
    result = CliRunner().invoke(
        app,
        [
            *args,
            "--ks",
            "1,3",
            "--draws",
            "2",
            "--select",
            "bald,logdet",
            "--components",
            "4",
            "--candidates",
            "30",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "kshot.csv").open()))
    assert {(r["user"], r["select"], r["k"]) for r in rows} == {
        (u, s, k) for u in ("u0", "u1") for s in ("random", "bald", "logdet") for k in ("1", "3")
    }
    assert "select-bald" in result.output
    bad = CliRunner().invoke(app, [*args, "--select", "greedy"])
    assert bad.exit_code != 0 and "greedy" in bad.output


def test_select_runs_in_the_layer_chosen_from_the_pool():
    """--select with --layers: the active protocol's own ``candidates`` option reaches it."""
    from pluralrm.adapt.choice import run_kshot_choosing
    from pluralrm.adapt.kshot_active import run_kshot_active

    pool, per_user = low_rank_users()
    users = {"u0": per_user["u0"]}
    rows, choices = run_kshot_choosing(
        {"layer a": (pool, users), "layer b": (pool, users)},
        choice_k=5,
        protocol=run_kshot_active,
        ks=(1, 3),
        n_draws=2,
        strategies=["random", "bald"],
        candidates=30,
        decompose=replace(DECOMPOSE, n_components=4),
    )
    assert choices["u0"].name == "layer a"  # equal candidates: the first listed
    assert {(r["select"], r["k"], r["features"]) for r in rows} == {
        (s, k, "layer a") for s in ("random", "bald") for k in (1, 3)
    }


def test_a_model_is_needed_in_the_candidates_space():
    model = RewardModel(namespace={}, backbone_name="", general=LinearRewardHead.from_coef(np.ones(3)))
    with pytest.raises(ValueError, match="candidates"):
        next_pairs(model, np.ones((2, 4)))


def test_cold_start_random_is_randoms_draw_and_pool_reads_the_prior(model_and_user):
    model, D = model_and_user
    random = next_pairs(model, D, None, strategy="random", n=2, seed=4)
    assert next_pairs(model, D, None, strategy="bald", n=2, seed=4, cold_start="random") == random
    pool_pick = next_pairs(model, D, None, strategy="uncertainty", seed=4, cold_start="pool")
    assert pool_pick == [int(np.argmin(np.abs(D @ model.general.coef_)))]
    with pytest.raises(ValueError, match="cold_start"):
        next_pairs(model, D, None, strategy="bald", cold_start="warm")
