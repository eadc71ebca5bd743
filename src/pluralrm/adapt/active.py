"""Active pair selection: which pair a new user should label next, so that few labels make their reward.

A user's k-shot reward is learned from pairs drawn at random (:mod:`pluralrm.adapt.kshot`); here the pair
to ask is *chosen*, from what the model already believes about the user. Every rule reads one Gaussian
belief over the user's weight vector ``w`` (feature units) — the posterior of the adapter that will fit the
user (:func:`posterior`):

* ``map``: the Laplace posterior of :class:`~pluralrm.adapt.priors.GaussianPriorAdapter` at its chosen
  hyperparameters (prior ``N(s·g, Σ_m τ_m C_m + τ_0 I/d)`` from the pool, Bradley–Terry likelihood);
* ``bt``: the Laplace posterior of the from-scratch Bradley–Terry head (its L2 penalty is an isotropic
  Gaussian prior; :class:`~pluralrm.rewards.linear_head.LinearRewardHead` minimizes the *mean* loss, so
  the prior precision is ``m · alpha`` on the scale-normalized features of ``m`` labelled pairs);
* any adapter with **no labels yet** (cold start, k = 0): the pool's prior itself — the general head as
  the mean, the heads' share of the pool's preference variance (plus a ridge) as the covariance, at the
  ``map`` adapter's default strengths. A ``bt`` user therefore gets their first pair from the pool.
* ``logistic``, ``hyre``, ``best-head`` (adapters over heads): the ``map`` posterior (they have no
  posterior of their own over the full weight vector).

For a candidate pair with difference ``x`` (first minus second response) the belief gives the margin
``f = w·x ~ N(μ, v)``. The rules (:data:`STRATEGIES`):

==================  ======================================================================================
``random``          a seeded uniform draw (the baseline every figure compares with)
``uncertainty``     the smallest ``|μ|``: the pair the current personal reward is least sure about
``vote_entropy``    the largest binary entropy of ``P(f > 0) = Φ(μ/√v)``: the vote entropy of an
                    unlimited committee of posterior samples (computed exactly, no sampling noise)
``margin_variance`` the largest ``v``: the variance of the margin over posterior samples
``bald``            the largest mutual information between the label and ``w`` (Houlsby et al. 2011):
                    ``H[E σ(f)] − E H[σ(f)]``, by Gauss–Hermite quadrature over ``f ~ N(μ, v)``
``logdet``          a batch: greedy maximization of ``log det(I + Λ^½ X Σ Xᵀ Λ^½)`` (D-optimal design
                    for the Bradley–Terry likelihood, ``Λ`` the Fisher weight ``σ(μ)(1 − σ(μ))`` of each
                    pair): each pick conditions the belief on the pairs already in the batch, so a near
                    duplicate of a picked pair adds almost nothing and is not picked
==================  ======================================================================================

Orientation: a candidate's label is unknown, so it is an unordered pair; pass its difference vector in
*either* orientation. Every rule is invariant to flipping the sign of a candidate row (``|μ|``, ``v``,
the entropies and the log-determinant all are), which ``tests/adapt/test_active.py`` checks. Labelled
pairs are oriented as everywhere else in pluralrm: chosen minus rejected (the preferred response first).

Ties (equal scores) are broken by a seeded random order, so a call is deterministic for a seed. Cost: one
pick among 10,000 candidates is a few matrix products of the candidates with the belief's low-rank factors
(``benchmarks/active_selection.py --speed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pluralrm.adapt.personalize import fit_user_vector, resolve_method
from pluralrm.adapt.priors import GaussianPrior, prior_from_model
from pluralrm.config import ACTIVE, ADAPT, AdaptConfig
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.math import rms_row_norm, sigmoid
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.validation import check_matrix

STRATEGIES: tuple[str, ...] = ("random", "uncertainty", "vote_entropy", "margin_variance", "bald", "logdet")
DEFAULT_STRATEGY: str = ACTIVE.strategy

# Gauss–Hermite nodes for E over f ~ N(μ, v) (probabilists' form: weight exp(−t²/2)); 32 nodes make the
# entropy integrals exact to ~1e-6 for the margins a Bradley–Terry posterior gives.
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(32)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


@dataclass(frozen=True)
class Belief:
    """A Gaussian belief over a user's weight vector, in units where the data are ``X / scale``.

    ``w_z ~ N(mean · scale, Σ)`` with ``Σ = (Σ₀⁻¹ + Zᵀ Λ Z)⁻¹`` (Laplace), ``Σ₀ = F Fᵀ + ridge · I`` and ``Z``
    the labelled pairs' scaled differences with curvatures ``Λ`` at the mode. Everything is kept in the
    dual (``m × m``), so a candidate costs ``O(d · (r + m))`` and ``Σ`` (d × d) is never formed.

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
        The mode in raw feature units: the personal reward vector the adapter fits.
    factor : ndarray of shape (n_features, r)
        Low-rank part of the prior covariance (the pool's components times ``sqrt(τ_m)``).
    ridge : float
        Isotropic prior variance per coordinate.
    scale : float
        Raw features are divided by this before the covariance applies.
    Z : ndarray of shape (m, n_features)
        Labelled pairs, scaled (chosen minus rejected).
    curvature : ndarray of shape (m,)
        ``σ(f)(1 − σ(f))`` at the mode's margins.
    """

    mean: np.ndarray
    factor: np.ndarray
    ridge: float
    scale: float
    Z: np.ndarray
    curvature: np.ndarray

    def terms(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What every rule needs of candidates ``X`` (n × d, raw): ``μ``, ``v`` and the two factors of
        their posterior covariance, ``Cov(i, j) = ridge·z_i·z_j + P_i·P_j − G_i·G_j`` (``G`` is (m × n))."""
        mu = X @ self.mean
        Xz = X / self.scale
        P = Xz @ self.factor  # (n, r)
        v = self.ridge * np.einsum("ij,ij->i", Xz, Xz) + np.einsum("ij,ij->i", P, P)
        G = np.zeros((0, len(X)))
        if len(self.Z):
            # v −= bᵀ Λ^½ B⁻¹ Λ^½ b, b = Z Σ₀ x, B = I + Λ^½ K Λ^½ (Rasmussen & Williams Alg. 3.2: B is
            # well conditioned for any K), through the Cholesky factor L of B: G = L⁻¹ Λ^½ b
            sw = np.sqrt(self.curvature)
            ZF = self.Z @ self.factor
            K = self.ridge * (self.Z @ self.Z.T) + ZF @ ZF.T
            L = np.linalg.cholesky(np.eye(len(sw)) + sw[:, None] * K * sw[None, :])
            b = self.ridge * (self.Z @ Xz.T) + ZF @ P.T  # (m, n)
            G = np.linalg.solve(L, sw[:, None] * b)
            v = v - np.einsum("ij,ij->j", G, G)
        return mu, np.clip(v, 0.0, None), P, G

    def margins(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the margin ``w · x`` of each row of ``X`` (raw units, shape (n, d))."""
        mu, v, _, _ = self.terms(X)
        return mu, v


def posterior(
    model: RewardModel,
    labelled: np.ndarray | None = None,
    *,
    adapter: str | None = None,
    config: AdaptConfig = ADAPT,
) -> Belief:
    """The belief about a user after their ``labelled`` pairs (chosen − rejected, shape (m, d)).

    ``adapter`` (default: what ``adapt --method auto`` uses for ``model``) names whose posterior; with no
    labelled pairs it is the pool's prior whatever the adapter (cold start).
    """
    d = model.n_features
    D = np.zeros((0, d)) if labelled is None else check_matrix(labelled, "labelled", n_features=d)
    D = D.astype(np.float64)
    method = resolve_method(model, adapter or "auto", config)
    pool = prior_from_model(model)
    if not len(D):
        return _prior_belief(pool, config)
    if method == "bt":
        head = LinearRewardHead(alpha=config.bt_alpha).fit(D)
        scale = rms_row_norm(float(np.sum(D**2)), len(D))
        Z = D / scale
        f = D @ head.coef_
        p = sigmoid(f)
        # mean(loss) + α/2‖w‖² = (Σ loss + m·α/2 ‖w‖²)/m: prior N(0, I/(m·α)) on the scaled weights
        no_factor = np.zeros((d, 0))
        return Belief(head.coef_, no_factor, 1.0 / (len(D) * config.bt_alpha), scale, Z, p * (1 - p))
    fitted = fit_user_vector(model, D, config=config)
    taus = list(fitted.taus_.values())
    f = D @ fitted.coef_
    p = sigmoid(f)
    return _belief(fitted.coef_, pool, taus, D / pool.scale, p * (1 - p))


def _prior_belief(pool: GaussianPrior, config: AdaptConfig) -> Belief:
    """The pool's prior at the ``map`` adapter's default strengths and sign: the cold-start belief."""
    mean = float(config.map_signs[0]) * pool.mean
    return _belief(mean, pool, list(config.map_default_taus), np.zeros((0, len(pool.mean))), np.zeros(0))


def _belief(mean: np.ndarray, pool: GaussianPrior, taus: list[float], Z: np.ndarray, W: np.ndarray) -> Belief:
    """A belief with the pool's covariance components at strengths ``taus`` (the ridge last)."""
    d = len(pool.mean)
    parts = [np.sqrt(t) * F for t, F in zip(taus, pool.factors, strict=False) if t > 0]
    factor = np.concatenate(parts, axis=1) if parts else np.zeros((d, 0))
    return Belief(np.asarray(mean, dtype=np.float64), factor, taus[-1] / d, pool.scale, Z, W)


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def scores(belief: Belief, candidates: np.ndarray, strategy: str) -> np.ndarray:
    """Each candidate's score under ``strategy`` (higher = asked first); not for ``random``/``logdet``."""
    mu, v = belief.margins(candidates)
    if strategy == "uncertainty":
        return -np.abs(mu)
    if strategy == "margin_variance":
        return v
    if strategy == "vote_entropy":
        from scipy.special import ndtr

        return _binary_entropy(ndtr(np.abs(mu) / np.sqrt(np.maximum(v, 1e-300))))
    if strategy == "bald":
        f = np.abs(mu)[:, None] + np.sqrt(v)[:, None] * _GH_NODES[None, :]  # (n, nodes)
        p = sigmoid(f)
        return _binary_entropy(p @ _GH_WEIGHTS) - _binary_entropy(p) @ _GH_WEIGHTS
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")


def next_pairs(
    model: RewardModel,
    candidates: np.ndarray,
    labelled: np.ndarray | None = None,
    *,
    strategy: str = DEFAULT_STRATEGY,
    n: int = 1,
    seed: int = 0,
    adapter: str | None = None,
    config: AdaptConfig = ADAPT,
) -> list[int]:
    """Indices into ``candidates`` of the next ``n`` pairs to ask a user (best first; seeded, deterministic).

    Parameters
    ----------
    model : RewardModel
        Its general head and heads are the pool's prior; ``candidates`` must be in its feature space (the
        model's own layer).
    candidates : ndarray of shape (n_candidates, n_features)
        Difference vectors of the *unlabelled* candidate pairs, one response's features minus the other's,
        in either orientation (every rule ignores a row's sign).
    labelled : ndarray of shape (m, n_features), optional
        The user's labelled pairs so far, chosen minus rejected (preferred response first).
    strategy : str
        One of :data:`STRATEGIES`.
    n : int
        Pairs to return (at most ``n_candidates``). ``logdet`` chooses them jointly (diverse); the other
        rules return their ``n`` best scores.
    seed : int
        Seeds ``random`` and the tie-breaking order.
    adapter : str, optional
        Whose posterior the rules read (default: ``auto``, as ``pluralrm adapt`` resolves it for ``model``).
    config : AdaptConfig
        The adapters' settings (the ``bt`` penalty, the ``map`` grids and default strengths).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    X = check_matrix(candidates, "candidates", n_features=model.n_features).astype(np.float64)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    n = min(n, len(X))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))  # the tie-breaking order, and random's draw
    if strategy == "random" or n == 0:
        return [int(i) for i in order[:n]]
    belief = posterior(model, labelled, adapter=adapter, config=config)
    if strategy == "logdet":
        return _logdet_batch(belief, X, n, order)
    values = scores(belief, X, strategy)
    # stable sort of the permuted scores: equal scores keep the seeded order
    ranked = order[np.argsort(-values[order], kind="stable")]
    return [int(i) for i in ranked[:n]]


def _logdet_batch(belief: Belief, X: np.ndarray, n: int, order: np.ndarray) -> list[int]:
    """Greedy D-optimal batch: each step the pair with the largest ``log(1 + λ_j v_j)``, then condition.

    The gain of adding pair ``j`` to a batch is ``log(1 + λ_j v_j)`` with ``v_j`` its margin variance given
    the pairs already in the batch (matrix determinant lemma), so greedy selection needs one rank-one
    update of every candidate's covariance with the pick per step:
    ``c_i ← c_i − Σ_{earlier} s_e c_{e,i} c_{e,j}``, ``v_i ← v_i − s_j c_i²``, ``s_j = λ_j / (1 + λ_j v_j)``.
    Greedy log-det is within ``1 − 1/e`` of the best batch (the objective is monotone submodular).
    """
    mu, v, P, G = belief.terms(X)
    p = sigmoid(mu)
    weight = p * (1 - p)  # Fisher information of a Bradley–Terry label at the current margin
    Xz = X / belief.scale
    columns: list[np.ndarray] = []  # each pick's conditioned covariance with every candidate
    shrink: list[float] = []
    picked: list[int] = []
    for _ in range(n):
        gain = np.log1p(weight * v)
        gain[picked] = -np.inf
        j = int(order[np.argmax(gain[order])])  # first maximum in the seeded order
        cov = belief.ridge * (Xz @ Xz[j]) + P @ P[j] - G.T @ G[:, j]
        for col, s in zip(columns, shrink, strict=True):
            cov = cov - s * col * col[j]
        s_j = weight[j] / (1.0 + weight[j] * v[j])
        v = np.clip(v - s_j * cov**2, 0.0, None)
        columns.append(cov)
        shrink.append(s_j)
        picked.append(j)
    return picked
