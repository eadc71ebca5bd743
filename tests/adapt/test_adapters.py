import numpy as np
import pytest

from pluralrm.adapt import BestHeadAdapter, HyReAdapter, LogisticAdapter, random_unit_heads
from pluralrm.validation import NotFittedError


def head_scores(n=200, n_heads=6, true=2, seed=0, noise=0.3):
    """Scores where the user's labels follow head ``true`` (plus noise)."""
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(n, n_heads))
    flip = S[:, true] + noise * rng.normal(size=n) < 0
    S[flip] *= -1  # orient every pair so that "chosen" is what the user chose
    return S


def test_hyre_concentrates_on_the_users_head():
    adapter = HyReAdapter().fit(head_scores(n=30))
    assert int(np.argmax(adapter.posterior_)) == 2 and adapter.posterior_[2] > 0.9
    assert np.isclose(adapter.posterior_.sum(), 1.0)


def test_hyre_with_no_pairs_returns_the_prior():
    prior = np.array([0.5, 0.25, 0.25])
    adapter = HyReAdapter(prior=prior).fit(np.zeros((0, 3)))
    np.testing.assert_allclose(adapter.posterior_, prior)


def test_hyre_temperature_and_zscore():
    S = head_scores(n=10)
    sharp = HyReAdapter(temperature=0.5).fit(S).posterior_.max()
    soft = HyReAdapter(temperature=5.0).fit(S).posterior_.max()
    assert sharp > soft
    # A head with a huge raw scale would dominate without z-scoring.
    scaled = S.copy()
    scaled[:, 0] *= 100
    assert int(np.argmax(HyReAdapter(zscore=True).fit(scaled).posterior_)) == 2


def test_logistic_recovers_a_mixture_and_shrinks_to_the_prior():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(500, 4))
    w_true = np.array([1.0, -2.0, 0.0, 0.5])
    labels = S @ w_true + 0.1 * rng.normal(size=500) > 0
    S[~labels] *= -1
    adapter = LogisticAdapter(alpha=0.1).fit(S)
    cosine = adapter.weights_ @ w_true / np.linalg.norm(adapter.weights_) / np.linalg.norm(w_true)
    assert cosine > 0.98
    prior = np.array([0.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(LogisticAdapter(alpha=1.0, prior=prior).fit(np.zeros((0, 4))).weights_, prior)
    strongly_shrunk = LogisticAdapter(alpha=1e6, prior=prior).fit(S[:5]).weights_
    np.testing.assert_allclose(strongly_shrunk, prior, atol=1e-3)


def test_best_head_can_pick_a_negated_head():
    S = -head_scores(n=50)  # the user wants the opposite of head 2
    weights = BestHeadAdapter().fit(S).weights_
    assert weights[2] == -1.0 and np.count_nonzero(weights) == 1
    assert BestHeadAdapter().fit(S).score(S) > 0.8


def test_random_unit_heads_are_orthonormal():
    R = random_unit_heads(5, 12, seed=3)
    np.testing.assert_allclose(R @ R.T, np.eye(5), atol=1e-12)
    with pytest.raises(ValueError, match="cannot draw"):
        random_unit_heads(13, 12)


def test_adapter_errors():
    with pytest.raises(NotFittedError):
        HyReAdapter().decision_function(np.ones((1, 2)))
    with pytest.raises(ValueError, match="S has 3 features per row, expected 2"):
        LogisticAdapter().fit(np.ones((4, 2))).decision_function(np.ones((1, 3)))
    with pytest.raises(ValueError, match="prior must have shape"):
        HyReAdapter(prior=np.ones(5)).fit(np.ones((2, 3)))
