import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from pluralrm.rewards import DecomposedRewardModel


def structured_differences(n=3000, d=20, k=3, seed=0):
    """D = attribute differences × k orthonormal directions + small noise, plus a mean preference."""
    rng = np.random.default_rng(seed)
    directions = np.linalg.qr(rng.normal(size=(d, k)))[0].T  # (k, d) orthonormal
    scales = np.array([3.0, 2.0, 1.0])[:k]
    A = rng.normal(size=(n, k)) * scales + np.array([0.5, 0.0, 0.0])[:k]
    return A @ directions + 0.05 * rng.normal(size=(n, d)), directions


def test_components_are_orthonormal_and_span_the_true_directions():
    D, directions = structured_differences()
    model = DecomposedRewardModel(n_components=3).fit(D)
    np.testing.assert_allclose(model.components_ @ model.components_.T, np.eye(3), atol=1e-10)
    assert np.degrees(subspace_angles(model.components_.T, directions.T)).max() < 2.0
    assert (
        model.explained_variance_ratio_[0]
        > model.explained_variance_ratio_[1]
        > model.explained_variance_ratio_[2]
    )


def test_matches_scikit_learn_pca_when_centred():
    D, _ = structured_differences()
    ours = DecomposedRewardModel(n_components=5, center=True).fit(D)
    theirs = PCA(n_components=5, svd_solver="full").fit(D)
    np.testing.assert_allclose(np.abs(ours.components_ @ theirs.components_.T), np.eye(5), atol=1e-6)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol=1e-8)


def test_uncentred_keeps_the_mean_preference_direction():
    rng = np.random.default_rng(0)
    mean_direction = np.zeros(6)
    mean_direction[2] = 1.0
    D = 3.0 * mean_direction + 0.3 * rng.normal(size=(2000, 6))  # one strong consensus direction
    uncentred = DecomposedRewardModel(n_components=1, center=False).fit(D)
    assert abs(uncentred.components_[0] @ mean_direction) > 0.99
    centred = DecomposedRewardModel(n_components=1, center=True).fit(D)
    assert abs(centred.components_[0] @ mean_direction) < 0.9


def test_signs_prefer_chosen_and_are_stable_across_batching_and_row_order():
    D, _ = structured_differences()
    one = DecomposedRewardModel(n_components=3, batch_size=100_000).fit(D)
    streamed = DecomposedRewardModel(n_components=3, batch_size=97).fit(D)
    shuffled = DecomposedRewardModel(n_components=3).fit(D[np.random.default_rng(1).permutation(len(D))])
    np.testing.assert_allclose(streamed.components_, one.components_, atol=1e-9)
    np.testing.assert_allclose(shuffled.components_, one.components_, atol=1e-9)
    assert (D @ one.components_.T).mean(axis=0).min() >= 0  # every head prefers chosen on average


def test_fit_on_an_iterable_of_batches_and_partial_fit_agree():
    D, _ = structured_differences()
    from_iter = DecomposedRewardModel(n_components=3).fit(D[i : i + 500] for i in range(0, len(D), 500))
    partial = DecomposedRewardModel(n_components=3)
    for i in range(0, len(D), 700):
        partial.partial_fit(D[i : i + 700])
    np.testing.assert_allclose(from_iter.components_, partial.components_, atol=1e-9)
    assert partial.n_samples_seen_ == len(D)


def test_scores_negated_heads_and_combine():
    D, _ = structured_differences()
    model = DecomposedRewardModel(n_components=3).fit(D)
    scores = model.scores(D[:10], include_negated=True)
    np.testing.assert_allclose(scores[:, 3:], -scores[:, :3])
    weights = np.array([0.5, -1.0, 2.0])
    combined = model.combine(weights)
    np.testing.assert_allclose(combined.decision_function(D[:10]), model.scores(D[:10]) @ weights, atol=1e-10)


def test_bad_arguments():
    D, _ = structured_differences(d=5)
    with pytest.raises(ValueError, match=r"n_components must be in \[1, 5\]"):
        DecomposedRewardModel(n_components=9).fit(D)
    with pytest.raises(ValueError, match="need at least 2 pairs"):
        DecomposedRewardModel().fit(D[:1])
    model = DecomposedRewardModel(n_components=2).fit(D)
    with pytest.raises(ValueError, match="weights must have shape"):
        model.combine(np.ones(3))
