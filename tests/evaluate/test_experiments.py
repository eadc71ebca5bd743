import numpy as np

from pluralrm.data.features import PairFeatures
from pluralrm.evaluate.experiments import METHODS, cross_set, within_set


def preference_features(sign: float, n=400, d=8, seed=0):
    """Pairs preferring a high feature 0 (sign=+1) or a low one (sign=-1)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    first = sign * (a[:, 0] - b[:, 0]) > 0
    chosen, rejected = np.where(first[:, None], a, b), np.where(first[:, None], b, a)
    return PairFeatures(chosen=chosen, rejected=rejected, ids=[f"{seed}-{i}" for i in range(n)])


def test_within_set_reports_every_method_over_seeds():
    result = within_set(preference_features(+1), seeds=(0, 1, 2), n_components=4)
    assert set(METHODS) <= set(result)
    assert result["general"]["mean"] > 0.9 and result["general"]["n_test"] == 80
    assert result["general"]["ci_low"] <= result["general"]["mean"] <= result["general"]["ci_high"]
    assert len(result["picked_heads"]) == 3


def test_cross_set_exposes_conflicting_preferences():
    agree = cross_set(preference_features(+1), preference_features(+1, seed=1), n_components=4)
    conflict = cross_set(preference_features(+1), preference_features(-1, seed=1), n_components=4)
    assert agree["general"]["mean"] > 0.9
    assert conflict["general"]["mean"] < 0.1
