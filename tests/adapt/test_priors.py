"""The map adapter: a correct prior helps, a sign-flipped one does no harm, many pairs give user-bt."""

import numpy as np

from pluralrm.adapt.priors import GaussianPrior, GaussianPriorAdapter
from pluralrm.rewards import LinearRewardHead


def planted(d=40, n=2000, seed=0):
    """A user with weights ``w`` inside a rank-3 subspace; BT-labelled pairs of isotropic differences."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, 3)))[0]
    w = basis @ np.array([2.0, 1.0, -0.5])
    D = rng.normal(size=(n, d))
    flip = rng.random(n) >= 1 / (1 + np.exp(-D @ w))
    return np.where(flip[:, None], -D, D), w, basis


def accuracy(D, coef):
    return float((D @ coef > 0).mean())


def test_correct_prior_beats_from_scratch_bt_with_few_pairs():
    D, w, basis = planted()
    test = D[1000:]
    prior = GaussianPrior.from_heads(w * 0.3, basis.T, np.array([3.0, 2.0, 1.0]), scale=np.sqrt(40))
    gains = []
    for draw in range(5):
        idx = np.random.default_rng(draw).choice(1000, 10, replace=False)
        mapped = accuracy(test, GaussianPriorAdapter(prior=prior).fit(D[idx]).coef_)
        scratch = accuracy(test, LinearRewardHead(alpha=1e-2).fit(D[idx]).coef_)
        gains.append(mapped - scratch)
    assert np.mean(gains) > 0.1


def test_sign_flipped_prior_does_no_worse_than_from_scratch():
    D, w, basis = planted(seed=1)
    test = D[1000:]
    prior = GaussianPrior.from_heads(-w, basis.T, np.array([3.0, 2.0, 1.0]), scale=np.sqrt(40))
    for k in (10, 30):
        mapped, scratch = [], []
        for draw in range(5):
            idx = np.random.default_rng(draw).choice(1000, k, replace=False)
            adapter = GaussianPriorAdapter(prior=prior).fit(D[idx])
            mapped.append(accuracy(test, adapter.coef_))
            scratch.append(accuracy(test, LinearRewardHead(alpha=1e-2).fit(D[idx]).coef_))
        assert np.mean(mapped) >= np.mean(scratch) - 0.01, (k, mapped, scratch)
    assert adapter.mean_sign_ <= 0  # the user who disagrees is not shrunk toward the general head


def test_with_many_pairs_map_approaches_the_from_scratch_head():
    D, _, _ = planted(seed=2)
    rng = np.random.default_rng(3)
    wrong = np.linalg.qr(rng.normal(size=(40, 3)))[0]  # a prior about unrelated directions
    prior = GaussianPrior.from_heads(rng.normal(size=40), wrong.T, np.ones(3), scale=np.sqrt(40))
    coef = GaussianPriorAdapter(prior=prior).fit(D[:400]).coef_
    scratch = LinearRewardHead(alpha=1e-3).fit(D[:400]).coef_
    cosine = coef @ scratch / np.linalg.norm(coef) / np.linalg.norm(scratch)
    assert cosine > 0.97
    assert abs(accuracy(D[1000:], coef) - accuracy(D[1000:], scratch)) < 0.02


def test_without_pairs_the_prior_mean_stands():
    _, w, basis = planted()
    prior = GaussianPrior.from_heads(w, basis.T, np.ones(3), scale=1.0)
    adapter = GaussianPriorAdapter(prior=prior).fit(np.zeros((0, 40)))
    np.testing.assert_allclose(adapter.coef_, w)
    assert adapter.log_evidence_ == 0.0


def test_laplace_mode_is_the_primal_map_solution():
    """The dual (representer) solution satisfies the primal MAP gradient condition."""
    D, w, basis = planted(n=30)
    prior = GaussianPrior.from_heads(w, basis.T, np.ones(3), scale=2.0)
    adapter = GaussianPriorAdapter(prior=prior, n_sweeps=0, default_taus=(1.0, 5.0, 2.0)).fit(D)
    Z = D / 2.0
    Sigma = 1.0 * np.outer(w, w) / (w @ w) + 5.0 * basis @ basis.T / 3 + 2.0 * np.eye(40) / 40
    wz = adapter.coef_ * 2.0
    mean = w * 2.0
    grad = -Z.T @ (1 / (1 + np.exp(Z @ wz))) + np.linalg.solve(Sigma, wz - mean)
    assert np.abs(grad).max() < 1e-6
