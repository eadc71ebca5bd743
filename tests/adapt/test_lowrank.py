import numpy as np

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
