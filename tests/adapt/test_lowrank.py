import numpy as np
import pytest

from pluralrm.adapt.lowrank import fit_lowrank_basis


def test_lowrank_basis_recovers_a_planted_subspace():
    rng = np.random.default_rng(0)
    d, r = 30, 2
    subspace = np.linalg.qr(rng.normal(size=(d, r)))[0]
    by_user = []
    for _ in range(6):
        w = 3.0 * subspace @ rng.normal(size=r)
        D = rng.normal(size=(400, d))
        by_user.append(np.where((D @ w > 0)[:, None], D, -D))
    basis = fit_lowrank_basis(by_user, r)
    np.testing.assert_allclose(basis @ basis.T, np.eye(r), atol=1e-10)
    # principal angles between the planted and learned subspaces are small
    cosines = np.linalg.svd(subspace.T @ basis.T, compute_uv=False)
    assert cosines.min() > 0.95


def test_lowrank_objective_gradient_matches_finite_differences():
    from scipy.optimize import approx_fprime

    from pluralrm.adapt.lowrank import _objective

    rng = np.random.default_rng(1)
    Zs = [rng.normal(size=(n, 5)) + 0.2 for n in (7, 3, 11)]
    theta = rng.normal(size=5 * 2 + 3 * 2)
    loss, gradient = _objective(theta, Zs, 2, 0.3)
    numeric = approx_fprime(theta, lambda t: _objective(t, Zs, 2, 0.3)[0], 1e-7)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-6)
    B, C = theta[:10].reshape(5, 2), theta[10:].reshape(3, 2)
    expected = 0.15 * (np.sum(B**2) + np.sum(C**2))
    expected += sum(np.mean(np.logaddexp(0.0, -(Z @ B @ C[u]))) for u, Z in enumerate(Zs))
    assert loss == pytest.approx(expected, rel=1e-12)


def test_lowrank_basis_is_signed_toward_chosen_padded_past_the_users_and_checked():
    rng = np.random.default_rng(2)
    v = np.array([0.0, 0.0, 1.0, 0.0])
    by_user = []
    for _ in range(2):
        D = rng.normal(size=(300, 4))
        by_user.append(np.where((D @ v > 0)[:, None], D, -D))
    basis = fit_lowrank_basis(by_user, 1)
    assert basis[0] @ v > 0.95  # the shared direction, pointing toward the chosen side
    wide = fit_lowrank_basis(by_user, 3)  # more directions than users: padded from the pooled pairs
    np.testing.assert_allclose(wide @ wide.T, np.eye(3), atol=1e-10)
    assert np.all(wide @ np.concatenate(by_user).mean(axis=0) >= 0)
    with pytest.raises(ValueError, match=r"^rank must be in \[1, 4\], got 5$"):
        fit_lowrank_basis(by_user, 5)
    with pytest.raises(ValueError, match="needs at least one user's pairs"):
        fit_lowrank_basis([], 1)
    with pytest.raises(ValueError, match=r"D_by_user\[1\]"):
        fit_lowrank_basis([by_user[0], np.ones(4)], 1)
