"""A low-rank basis of preference directions learned jointly across the pool's users (LoRe-style).

PCA heads are the directions along which pair *differences* vary most; nothing makes them the directions
along which *users* differ. Low-rank personalized reward models (LoRe, Bose et al. 2025) instead fit every
pool user's Bradley–Terry head inside one shared rank-``r`` subspace::

    minimize  Σ_u Σ_i log(1 + exp(−D_ui · B c_u))  +  alpha/2 (‖B‖² + Σ_u ‖c_u‖²)

over the basis ``B`` (d × r) and each user's coordinates ``c_u`` (r,). The problem is bilinear; it is
solved by L-BFGS on (B, c) jointly from the rank-``r`` SVD of the users' own BT heads, then ``B`` is
orthonormalized so the columns can serve as heads (:meth:`DecomposedRewardModel.with_components`).
Each user's loss is a mean over their pairs, so a user with many pairs does not own the basis.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.math import bradley_terry_loss, sigmoid
from pluralrm.validation import check_matrix


def fit_lowrank_basis(
    D_by_user: list[np.ndarray], rank: int, *, alpha: float = 1e-2, max_iter: int = 200
) -> np.ndarray:
    """Orthonormal basis (rows) of the rank-``rank`` subspace shared by the users' BT heads.

    Parameters
    ----------
    D_by_user : list of ndarray of shape (n_u, n_features)
        Each pool user's pair differences (chosen − rejected).
    rank : int
        Dimension of the shared subspace (at most the number of users gives the span of their heads).
    alpha : float
        L2 penalty on the basis and coordinates (in units of pairs scaled to unit RMS norm).
    max_iter : int
        L-BFGS iterations of the joint fit.

    Returns
    -------
    ndarray of shape (rank, n_features)
        Orthonormal rows, signed so that each prefers chosen on the pooled pairs.
    """
    if not D_by_user:
        raise ValueError("fit_lowrank_basis needs at least one user's pairs")
    Ds = [check_matrix(D, f"D_by_user[{u}]").astype(np.float64) for u, D in enumerate(D_by_user)]
    d = Ds[0].shape[1]
    if not 1 <= rank <= d:
        raise ValueError(f"rank must be in [1, {d}], got {rank}")
    scale = float(np.sqrt(np.mean(np.concatenate([np.sum(D**2, axis=1) for D in Ds])))) or 1.0
    Zs = [D / scale for D in Ds]
    # Start: SVD of the users' own heads (padded with the pooled PCA directions when rank > n_users).
    heads = np.stack([LinearRewardHead(alpha=alpha).fit(Z).coef_ for Z in Zs], axis=1)  # (d, U)
    U_heads, s, _ = np.linalg.svd(heads, full_matrices=False)
    B0 = U_heads[:, :rank] * s[:rank].mean()
    if rank > B0.shape[1]:
        pooled = np.concatenate(Zs)
        _, _, Vt = np.linalg.svd(pooled - 0.0, full_matrices=False)
        extra = Vt[: rank - B0.shape[1]].T
        B0 = np.concatenate([B0, extra * s.mean()], axis=1)
    C0 = np.linalg.lstsq(B0, heads, rcond=None)[0].T  # (U, r)

    theta0 = np.concatenate([B0.ravel(), C0.ravel()])
    result = minimize(
        _objective, theta0, args=(Zs, rank, alpha), jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    B = result.x[: d * rank].reshape(d, rank)
    Q, _ = np.linalg.qr(B)
    basis = Q.T
    pooled_mean = np.concatenate(Zs).mean(axis=0)
    signs = np.where(basis @ pooled_mean < 0, -1.0, 1.0)
    return basis * signs[:, None]


def _objective(theta: np.ndarray, Zs: list[np.ndarray], rank: int, alpha: float) -> tuple[float, np.ndarray]:
    """The joint loss of (B, C) packed in ``theta`` and its gradient (module level, so a test can check
    the gradient against finite differences)."""
    d, n_users = Zs[0].shape[1], len(Zs)
    B = theta[: d * rank].reshape(d, rank)
    C = theta[d * rank :].reshape(n_users, rank)
    loss = 0.5 * alpha * (np.sum(B**2) + np.sum(C**2))
    gB = alpha * B
    gC = alpha * C
    for u, Z in enumerate(Zs):
        ZB = Z @ B  # (n_u, r)
        margins = ZB @ C[u]
        loss += float(bradley_terry_loss(margins).mean())
        g_m = -sigmoid(-margins) / len(Z)  # d/dm of the mean loss
        gC[u] += ZB.T @ g_m
        gB += np.outer(Z.T @ g_m, C[u])
    return loss, np.concatenate([gB.ravel(), gC.ravel()])
