"""The MAP adapter checked by value (docs/reports/mutation.md): the Laplace evidence against its formula, the
prior built from a model, and the coordinate search ending where no single grid move gains ``min_gain``."""

import numpy as np
import pytest

from pluralrm.adapt.priors import GaussianPrior, GaussianPriorAdapter, _laplace, prior_from_model
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.fitting import fit_reward_model
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.math import sigmoid
from pluralrm.rewards.reward_model import RewardModel
from tests.conftest import NAMESPACE, features


@pytest.mark.parametrize("n", [1, 4, 12])
def test_laplace_returns_the_mode_and_the_evidence_formula(n):
    rng = np.random.default_rng(n)
    A = rng.normal(size=(n, n))
    K = A @ A.T + 0.5 * np.eye(n)
    m = rng.normal(size=n)
    evidence, a = _laplace(K, m)
    f = K @ a + m
    np.testing.assert_allclose(a, 1.0 - sigmoid(f), atol=1e-6)  # the mode: a = ∇ log p(y | f)
    W = sigmoid(f) * (1.0 - sigmoid(f))
    _, logdet = np.linalg.slogdet(np.eye(n) + np.sqrt(W)[:, None] * K * np.sqrt(W)[None, :])
    expected = -np.logaddexp(0.0, -f).sum() - 0.5 * a @ (f - m) - 0.5 * logdet
    np.testing.assert_allclose(evidence, expected, rtol=1e-8)
    assert evidence < 0.0
    assert _laplace(np.zeros((0, 0)), np.zeros(0)) == (0.0, pytest.approx(np.zeros(0)))


def test_prior_from_model_uses_the_general_head_and_the_pool_scale():
    train = features(n=150, d=5)
    model = fit_reward_model(train, n_components=2)
    prior = prior_from_model(model)
    np.testing.assert_array_equal(prior.mean, model.general.coef_)
    D = train.differences.astype(np.float64)
    np.testing.assert_allclose(prior.scale, np.sqrt(np.mean(np.sum(D**2, axis=1))), rtol=1e-6)
    assert prior.names == ("general", "heads", "ridge")
    assert prior.factors[0].shape == (5, 1) and prior.factors[1].shape == (5, 2)
    share = model.decomposed.explained_variance_ / model.decomposed.explained_variance_.sum()
    np.testing.assert_allclose(
        prior.factors[1] @ prior.factors[1].T,
        (model.decomposed.components_.T * share) @ model.decomposed.components_,
    )
    heads_only = RewardModel(namespace=NAMESPACE, backbone_name="", decomposed=model.decomposed)
    assert np.all(prior_from_model(heads_only).mean == 0) and prior_from_model(heads_only).factors[
        0
    ].shape == (5, 0)
    general_only = RewardModel(namespace=NAMESPACE, backbone_name="", general=model.general)
    assert prior_from_model(general_only).scale == 1.0 and prior_from_model(general_only).factors[
        1
    ].shape == (5, 0)
    flat = DecomposedRewardModel.from_arrays(
        model.decomposed.to_arrays() | {"explained_variance_ratio": np.zeros(2)}
    )
    flat_model = RewardModel(namespace=NAMESPACE, backbone_name="", general=model.general, decomposed=flat)
    assert prior_from_model(flat_model).scale == 1.0  # no ratio: no unit to recover
    with pytest.raises(ValueError, match="needs a general head or heads"):
        GaussianPrior.from_heads(None, None, None, 1.0)


def _evidence(prior, D, sign, taus):
    adapter = GaussianPriorAdapter(prior=prior, default_taus=tuple(taus), mean_signs=(sign,), n_sweeps=0)
    return adapter.fit(D).log_evidence_


@pytest.mark.parametrize("min_gain", [0.0, 1.0])
def test_the_search_stops_where_no_single_move_gains_min_gain(min_gain):
    rng = np.random.default_rng(4)
    g = np.array([1.0, 0.5, 0.0, 0.0])
    heads = np.array([[0.0, 0.0, 1.0, 0.0]])
    prior = GaussianPrior.from_heads(g, heads, np.array([1.0]), scale=2.0)
    D = rng.normal(size=(25, 4)) + np.array([-0.8, 0.0, 1.0, 0.0])
    grid = (0.0, 1.0, 10.0, 100.0)
    fitted = GaussianPriorAdapter(prior=prior, taus=grid, min_gain=min_gain, n_sweeps=20).fit(D)
    taus = [fitted.taus_[name] for name in prior.names]
    assert list(fitted.taus_) == ["general", "heads", "ridge"]
    best = fitted.log_evidence_
    assert best == pytest.approx(_evidence(prior, D, fitted.mean_sign_, taus), abs=1e-9)
    assert best >= _evidence(prior, D, 1.0, [10.0, 10.0, 10.0]) - 1e-9  # never worse than the start
    for sign in (1.0, 0.0, -1.0):
        assert _evidence(prior, D, sign, taus) <= best + min_gain + 1e-9
    for m in range(3):
        for tau in grid:
            trial = [*taus[:m], tau, *taus[m + 1 :]]
            if sum(trial) > 0:
                assert _evidence(prior, D, fitted.mean_sign_, trial) <= best + min_gain + 1e-9
    if min_gain == 0.0:
        assert fitted.mean_sign_ == -1.0  # the pairs contradict the general head's first feature
    assert fitted.n_features_in_ == 4
    np.testing.assert_allclose(fitted.decision_function(D[:3]), D[:3] @ fitted.coef_)
    with pytest.raises(ValueError, match="D has 3 features per row, expected 4"):
        fitted.decision_function(D[:3, :3])
    with pytest.raises(
        ValueError, match=r"^default_taus needs 3 strengths \(general, heads, ridge\), got 2$"
    ):
        GaussianPriorAdapter(prior=prior, default_taus=(1.0, 1.0)).fit(D)
    defaults = GaussianPriorAdapter(prior=prior)
    assert (defaults.n_sweeps, defaults.min_gain) == (2, 1.0)


def test_the_map_coefficients_are_the_posterior_mode():
    """With a fixed prior (no search), coef_ minimizes BT loss + ½ (w − s·g)ᵀ Σ⁻¹ (w − s·g)."""
    rng = np.random.default_rng(5)
    g = np.array([0.5, -0.5, 0.2])
    prior = GaussianPrior.from_heads(g, np.array([[0.0, 1.0, 0.0]]), np.array([1.0]), scale=1.5)
    D = rng.normal(size=(15, 3)) + np.array([0.3, 0.4, 0.0])
    taus = (2.0, 3.0, 4.0)
    fitted = GaussianPriorAdapter(prior=prior, default_taus=taus, mean_signs=(1.0,), n_sweeps=0).fit(D)
    # Σ in raw units: components are trace-1 in pool units (scale), the ridge is I/d.
    covariance = sum(t * F @ F.T for t, F in zip(taus, prior.factors, strict=False)) + taus[2] * np.eye(3) / 3
    covariance /= prior.scale**2
    w = fitted.coef_
    gradient = -(D.T @ sigmoid(-(D @ w))) + np.linalg.solve(covariance, w - g)
    np.testing.assert_allclose(gradient, 0.0, atol=1e-5)
    head = LinearRewardHead.from_coef(w)
    assert fitted.score(D) == head.score(D)
