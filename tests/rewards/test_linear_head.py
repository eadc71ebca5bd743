import numpy as np
import pytest

from pluralrm.rewards import LinearRewardHead, fit_general_head
from pluralrm.validation import NotFittedError


def pairs_from_direction(n=400, d=12, seed=0, noise=0.5):
    """Pairs labelled by a known direction w*: chosen is the response with the higher w*·h."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=d)
    w_true /= np.linalg.norm(w_true)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    prefer_a = (a - b) @ w_true + noise * rng.normal(size=n) > 0
    chosen = np.where(prefer_a[:, None], a, b)
    rejected = np.where(prefer_a[:, None], b, a)
    return chosen - rejected, w_true


def test_head_recovers_the_labelling_direction():
    D, w_true = pairs_from_direction()
    head = LinearRewardHead(alpha=1e-3).fit(D)
    cosine = head.coef_ @ w_true / np.linalg.norm(head.coef_)
    assert cosine > 0.95


def test_head_generalizes_on_held_out_pairs_of_the_same_direction():
    rng = np.random.default_rng(0)
    w = rng.normal(size=8)
    H1, H2 = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    D = np.where(((H1 - H2) @ w > 0)[:, None], H1 - H2, H2 - H1)
    head = LinearRewardHead().fit(D[:400])
    assert head.score(D[400:]) > 0.9


def test_scale_invariance_of_alpha():
    D, _ = pairs_from_direction()
    small = LinearRewardHead(alpha=1e-2).fit(D)
    large = LinearRewardHead(alpha=1e-2).fit(D * 1000)
    np.testing.assert_allclose(small.coef_, large.coef_ * 1000, rtol=1e-4, atol=1e-6)


def test_errors_name_the_problem():
    with pytest.raises(NotFittedError, match="call fit"):
        LinearRewardHead().decision_function(np.ones((2, 3)))
    head = LinearRewardHead().fit(pairs_from_direction(d=4)[0])
    with pytest.raises(ValueError, match=r"D has 5 features per row, expected 4"):
        head.decision_function(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"must be 2-D"):
        LinearRewardHead().fit(np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        LinearRewardHead().fit(np.array([[np.nan, 1.0]]))


def test_general_head_alpha_is_picked_on_validation():
    D, _ = pairs_from_direction(n=600)
    head, scores = fit_general_head(D[:400], D[400:], alphas=(1e-3, 10.0))
    assert set(scores) == {1e-3, 10.0} and head.alpha == max(scores, key=scores.get)
