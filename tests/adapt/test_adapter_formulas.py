"""Adapters checked against their formulas by hand (values, not shapes): the z-scoring, the prior,
the sign of the best head, the fitted attributes. Written against the survivors of a mutation run
(docs/reports/mutation.md)."""

import warnings

import numpy as np
import pytest

from pluralrm.adapt.adapters import BestHeadAdapter, HyReAdapter, random_unit_heads
from pluralrm.rewards.math import softmax_weights

S = np.array([[2.0, -0.1, 0.0], [4.0, 0.3, 0.0], [-1.0, 0.2, 0.0], [3.0, 0.1, 0.0]])


def hyre_by_hand(S, scale, prior, beta=1.0, temperature=1.0):
    loglik = -np.logaddexp(0.0, -beta * S / scale).sum(axis=0)
    logits = np.log(prior / prior.sum()) + loglik / temperature
    posterior = np.exp(logits - logits.max())
    posterior /= posterior.sum()
    return posterior, posterior / scale


def test_hyre_without_zscore_uses_raw_scores():
    posterior, weights = hyre_by_hand(S, np.ones(3), np.ones(3))
    fitted = HyReAdapter().fit(S)  # z-scoring is off by default
    np.testing.assert_allclose(fitted.posterior_, posterior)
    np.testing.assert_allclose(fitted.weights_, weights)
    assert fitted.n_features_in_ == 3


def test_hyre_zscore_divides_by_each_heads_rms_and_leaves_silent_heads_alone():
    rms = np.sqrt(np.mean(S**2, axis=0))
    scale = np.where(rms > 0, rms, 1.0)  # the third head never moves: its scale stays 1
    posterior, weights = hyre_by_hand(S, scale, np.ones(3), beta=2.0, temperature=0.5)
    fitted = HyReAdapter(zscore=True, beta=2.0, temperature=0.5).fit(S)
    np.testing.assert_allclose(fitted.posterior_, posterior)
    np.testing.assert_allclose(fitted.weights_, weights)  # the mixture of the *scaled* heads


def test_hyre_zscore_with_given_head_scale_and_a_prior():
    head_scale = np.array([0.5, 2.0, 0.0])  # a zero scale is replaced by 1, never divided by
    prior = np.array([1.0, 3.0, 0.0])  # a head with prior 0 gets weight 0, without a warning
    posterior, weights = hyre_by_hand(S, np.array([0.5, 2.0, 1.0]), np.array([1.0, 3.0, 1e-300]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = HyReAdapter(zscore=True, head_scale=head_scale, prior=prior).fit(S)
    assert fitted.posterior_[2] == 0.0
    np.testing.assert_allclose(fitted.posterior_, posterior, atol=1e-12)
    np.testing.assert_allclose(fitted.weights_, weights, atol=1e-12)
    with pytest.raises(ValueError, match=r"head_scale must have shape \(3,\)"):
        HyReAdapter(zscore=True, head_scale=np.ones(2)).fit(S)


def test_hyre_with_no_pairs_returns_the_prior():
    fitted = HyReAdapter(zscore=True, prior=np.array([1.0, 3.0])).fit(np.zeros((0, 2)))
    np.testing.assert_allclose(fitted.posterior_, [0.25, 0.75])


def test_adapters_name_the_matrix_they_refuse():
    with pytest.raises(ValueError, match=r"^S must be 2-D"):
        HyReAdapter().fit(np.ones(3))
    with pytest.raises(ValueError, match=r"^S must be 2-D"):
        BestHeadAdapter().fit(np.ones(3))


def test_best_head_takes_a_negated_head_only_when_allowed():
    S = np.array([[-1.0, 0.5], [-2.0, -0.5], [-1.0, 0.2]])  # head 0 is always wrong: its negation is right
    fitted = BestHeadAdapter().fit(S)
    np.testing.assert_array_equal(fitted.weights_, [-1.0, 0.0])
    assert fitted.n_features_in_ == 2
    np.testing.assert_array_equal(BestHeadAdapter(allow_negated=False).fit(S).weights_, [0.0, 1.0])
    # The last head negated is candidate 2k-1.
    np.testing.assert_array_equal(BestHeadAdapter().fit(S[:, ::-1]).weights_, [0.0, -1.0])


def test_random_unit_heads_are_orthonormal_reproducible_and_may_fill_the_space():
    heads = random_unit_heads(4, 4)  # as many heads as dimensions is allowed
    np.testing.assert_allclose(heads @ heads.T, np.eye(4), atol=1e-12)
    np.testing.assert_array_equal(random_unit_heads(3, 5), random_unit_heads(3, 5, seed=0))
    assert not np.allclose(random_unit_heads(3, 5, seed=1), random_unit_heads(3, 5, seed=0))
    with pytest.raises(ValueError, match="cannot draw 5 orthonormal heads in 4 dimensions"):
        random_unit_heads(5, 4)


def test_softmax_weights_by_hand():
    loglik = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])  # rows independent; no overflow
    by_hand = np.exp(loglik[0] / 2) / np.exp(loglik[0] / 2).sum()
    got = softmax_weights(loglik, temperature=2.0)
    np.testing.assert_allclose(got[0], by_hand)
    np.testing.assert_allclose(got[1], [0.5, 0.5, 0.0], atol=1e-12)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"temperature must be positive, got {bad}"):
            softmax_weights(loglik, temperature=bad)
