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
``epig``            the largest expected information about the labels of the pairs still to predict
                    (EPIG, Bickford-Smith et al. 2023) rather than about ``w``: the mean over target pairs
                    ``x*`` (a seeded sample of the candidates themselves, ``ACTIVE.targets`` of them) of
                    ``I(ỹ; ỹ*) = −½ log(1 − c²/((v + 1/λ)(v* + 1/λ*)))``, each label replaced by its Laplace
                    pseudo-observation ``f + ε``, ``ε ~ N(0, 1/λ)``, ``λ = σ(μ)(1 − σ(μ))``, ``c`` the
                    posterior covariance of the two margins. In d = 384 BALD's information about ``w``
                    rewards rare, long difference vectors; EPIG rewards the pairs that inform many others
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
from functools import cached_property

import numpy as np

from pluralrm.adapt.personalize import fit_user_vector, resolve_method
from pluralrm.adapt.priors import GaussianPrior, _laplace, prior_from_model
from pluralrm.config import ACTIVE, ADAPT, AdaptConfig
from pluralrm.rewards.math import rms_row_norm, sigmoid
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.validation import check_matrix

STRATEGIES: tuple[str, ...] = (
    "random",
    "uncertainty",
    "vote_entropy",
    "margin_variance",
    "bald",
    "epig",
    "logdet",
)
DEFAULT_STRATEGY: str = ACTIVE.strategy

# Gauss–Hermite nodes for E over f ~ N(μ, v) (probabilists' form: weight exp(−t²/2)); 20 nodes give BALD
# to ~1e-4 nats against a 200-node rule over the margins a Bradley–Terry posterior gives (tested).
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(20)
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

    @cached_property
    def _dual_cholesky(self) -> np.ndarray:
        """The Cholesky factor ``L`` of ``B = I + Λ^½ Z Σ₀ Zᵀ Λ^½`` (m × m; Rasmussen & Williams Alg. 3.2:
        well conditioned for any prior): one factorization per belief, shared by :meth:`terms` and
        :meth:`covariance_columns`, which EPIG's greedy batch calls once per pick."""
        sw = np.sqrt(self.curvature)
        ZF = self.Z @ self.factor
        K = self.ridge * (self.Z @ self.Z.T) + ZF @ ZF.T  # Z Σ₀ Zᵀ
        return np.linalg.cholesky(np.eye(len(self.Z)) + sw[:, None] * K * sw[None, :])

    def terms(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What every rule needs of candidates ``X`` (n × d, raw): ``μ``, ``v`` and the two factors of
        their posterior covariance, ``Cov(i, j) = ridge·z_i·z_j + P_i·P_j − G_i·G_j`` (``G`` is (m × n)).

        One product of ``X`` with the ``d × (1 + r + m)`` matrix ``[mean, F, Zᵀ]`` (in ``X``'s own dtype:
        float32 features stay float32) carries everything that scales with the number of candidates.
        """
        m, r = len(self.Z), self.factor.shape[1]
        A = np.concatenate([self.mean[:, None] * self.scale, self.factor, self.Z.T], axis=1) / self.scale
        Q = (X @ A.astype(X.dtype, copy=False)).astype(np.float64)  # (n, 1 + r + m)
        mu, P, XZ = Q[:, 0], Q[:, 1 : 1 + r], Q[:, 1 + r :]
        v = self.ridge * np.einsum("ij,ij->i", X, X).astype(np.float64) / self.scale**2
        v = v + np.einsum("ij,ij->i", P, P)
        G = np.zeros((0, len(X)))
        if m:
            # v −= bᵀ Λ^½ B⁻¹ Λ^½ b, b = Z Σ₀ x, B = I + Λ^½ K Λ^½ (Rasmussen & Williams Alg. 3.2: B is
            # well conditioned for any K), through the Cholesky factor L of B: G = L⁻¹ Λ^½ b
            sw = np.sqrt(self.curvature)
            b = self.ridge * XZ.T + (self.Z @ self.factor) @ P.T  # (m, n)
            G = np.linalg.solve(self._dual_cholesky, sw[:, None] * b)
            v = v - np.einsum("ij,ij->j", G, G)
        return mu, np.clip(v, 0.0, None), P, G

    def covariance_columns(self, T: np.ndarray) -> np.ndarray:
        """``Σ tᵀ`` in raw units for the rows ``t`` of ``T``, shape (n_features, len(T)): ``X @`` it is the
        posterior covariance of ``X``'s margins with ``T``'s (the same dual as :meth:`terms`)."""
        Tz = T.astype(np.float64).T / self.scale  # (d, T)
        prior_T = self.ridge * Tz + self.factor @ (self.factor.T @ Tz)  # Σ₀ Tᵀ
        if len(self.Z):
            prior_Z = self.ridge * self.Z.T + self.factor @ (self.factor.T @ self.Z.T)  # Σ₀ Zᵀ, (d, m)
            sw = np.sqrt(self.curvature)
            L = self._dual_cholesky
            right = np.linalg.solve(L, sw[:, None] * (self.Z @ prior_T))  # (m, T)
            left = np.linalg.solve(L, sw[:, None] * prior_Z.T)  # (m, d)
            prior_T = prior_T - left.T @ right
        return prior_T / self.scale

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
        # The from-scratch head's objective, mean(loss) + α/2‖w‖² on Z = D / scale, is Σ loss + (m·α)/2‖w‖²
        # up to a factor: a Gaussian prior N(0, I/(m·α)) on the scaled weights. Its mode is solved in the
        # dual (m × m Newton, as the map adapter's Laplace step) — the optimum LinearRewardHead's L-BFGS
        # finds in d dimensions, without its cost.
        scale = rms_row_norm(float(np.sum(D**2)), len(D))
        Z = D / scale
        ridge = 1.0 / (len(D) * config.bt_alpha)
        _, a = _laplace(ridge * (Z @ Z.T), np.zeros(len(D)))
        coef = ridge * (Z.T @ a) / scale
        p = sigmoid(D @ coef)
        return Belief(coef, np.zeros((d, 0)), ridge, scale, Z, p * (1 - p))
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


def _logistic_entropy(f: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``H(σ(f))`` in nats without overflow, given ``e = exp(−|f|)``: ``log(1 + e) + |f| · e / (1 + e)``."""
    return np.log1p(e) + np.abs(f) * e / (1.0 + e)


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def scores(
    belief: Belief,
    candidates: np.ndarray,
    strategy: str,
    *,
    order: np.ndarray | None = None,
    targets: int = ACTIVE.targets,
) -> np.ndarray:
    """Each candidate's score under ``strategy`` (higher = asked first); not for ``random``/``logdet``.

    ``epig`` predicts the first ``targets`` candidates of ``order`` (a permutation of the candidates; the
    first ones without it).
    """
    if strategy == "uncertainty":  # the mean margin alone: one product with the mode
        return -np.abs((candidates @ belief.mean.astype(candidates.dtype, copy=False)).astype(np.float64))
    if strategy == "epig":
        return _epig(
            belief, candidates, np.arange(min(len(candidates), targets)) if order is None else order[:targets]
        )
    if strategy not in ("margin_variance", "vote_entropy", "bald"):
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    mu, v = belief.margins(candidates)
    if strategy == "margin_variance":
        return v
    if strategy == "vote_entropy":
        from scipy.special import ndtr

        return _binary_entropy(ndtr(np.abs(mu) / np.sqrt(np.maximum(v, 1e-300))))
    # BALD = H[E σ(f)] − E H[σ(f)] over f ~ N(μ, v); both symmetric in μ's sign
    f = np.abs(mu)[:, None] + np.sqrt(v)[:, None] * _GH_NODES[None, :]  # (n, nodes)
    e = np.exp(-np.abs(f))
    p = np.where(f >= 0, 1.0, e) / (1.0 + e)  # σ(f), stably
    expected_entropy = _logistic_entropy(f, e) @ _GH_WEIGHTS
    return _binary_entropy(p @ _GH_WEIGHTS) - expected_entropy


def next_pairs(
    model: RewardModel,
    candidates: np.ndarray,
    labelled: np.ndarray | None = None,
    *,
    strategy: str = DEFAULT_STRATEGY,
    n: int = 1,
    seed: int = 0,
    adapter: str | None = None,
    cold_start: str = ACTIVE.cold_start,
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
        Pairs to return (at most ``n_candidates``). ``logdet`` and ``epig`` choose them jointly (each pick
        conditions the belief before the next, so a page of pairs is diverse); the other rules return
        their ``n`` best scores.
    seed : int
        Seeds ``random`` and the tie-breaking order.
    adapter : str, optional
        Whose posterior the rules read (default: ``auto``, as ``pluralrm adapt`` resolves it for ``model``).
    cold_start : str
        With no labelled pairs: ``random`` returns random's draw (measured better on the DSP users: under
        the pool's prior every rule asks first about the pool's main direction, which these users disagree
        on), ``pool`` applies the rule to the pool's prior belief.
    config : AdaptConfig
        The adapters' settings (the ``bt`` penalty, the ``map`` grids and default strengths).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    X = check_matrix(candidates, "candidates", n_features=model.n_features)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    n = min(n, len(X))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))  # the tie-breaking order, and random's draw
    if cold_start not in ("random", "pool"):
        raise ValueError(f"cold_start must be 'random' or 'pool', got {cold_start!r}")
    no_labels = labelled is None or not len(labelled)
    if strategy == "random" or (no_labels and cold_start == "random"):
        return [int(i) for i in order[:n]]
    belief = posterior(model, labelled, adapter=adapter, config=config)
    if strategy == "logdet":
        return _logdet_batch(belief, X, n, order)
    if strategy == "epig":
        return _epig_picks(belief, X, n, order)
    values = scores(belief, X, strategy, order=order)
    if n == 1:  # the first maximum in the seeded order (what the stable sort below puts first)
        return [int(order[np.argmax(values[order])])]
    # stable sort of the permuted scores: equal scores keep the seeded order
    ranked = order[np.argsort(-values[order], kind="stable")]
    return [int(i) for i in ranked[:n]]


def _epig(belief: Belief, X: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """EPIG of every row of ``X`` about the labels of ``X[targets]`` (Gaussian pseudo-observations).

    Two labels' pseudo-observations ``f_i + ε_i`` and ``f_t + ε_t`` are jointly Gaussian with correlation
    ``ρ = c_it / √((v_i + 1/λ_i)(v_t + 1/λ_t))``, so their mutual information is ``−½ log(1 − ρ²)``; the
    score is its mean over the targets. The covariances are one product of the candidates with
    ``Σ Tᵀ`` (``d × T``, :meth:`Belief.covariance_columns`), in ``X``'s dtype: ``O(n · d · T)``.
    """
    noise = _pseudo_label_variance(belief, X)
    cov = X @ belief.covariance_columns(X[targets]).astype(X.dtype, copy=False)
    return _epig_values(cov, noise, noise[targets])


def _pseudo_label_variance(belief: Belief, X: np.ndarray) -> np.ndarray:
    """``v + 1/λ``: a margin's posterior variance plus its label's Laplace noise, ``λ = σ(μ)(1 − σ(μ))``."""
    mu, v = belief.margins(X)
    p = sigmoid(mu)
    return v + 1.0 / np.maximum(p * (1 - p), 1e-12)


def _epig_values(cov: np.ndarray, noise: np.ndarray, target_noise: np.ndarray) -> np.ndarray:
    """Mean over targets of ``−½ log(1 − ρ²)``, ``ρ² = c² / (noise_i · noise_t)``, computed in place."""
    rho2 = np.square(cov)
    rho2 *= (1.0 / noise).astype(cov.dtype)[:, None]
    rho2 *= (1.0 / target_noise).astype(cov.dtype)[None, :]
    np.minimum(rho2, 1.0 - 1e-6, out=rho2)
    np.negative(rho2, out=rho2)
    np.log1p(rho2, out=rho2)
    return -0.5 * rho2.mean(axis=1, dtype=np.float64)


def _epig_shortlist(
    X: np.ndarray, columns: np.ndarray, noise: np.ndarray, target_noise: np.ndarray, size: int, rank: int
) -> np.ndarray:
    """The ``size`` candidates of largest first-order EPIG, ``½ mean_t ρ²_it``, from a rank-``rank`` sketch.

    ``mean_t ρ²_it = ‖x_iᵀ B‖² / noise_i`` with ``B = Σ Tᵀ diag(noise_t)^-½ / √T`` (``d × T``). A randomized
    range finder (Halko et al. 2011; fixed seed) gives an orthonormal ``Q`` (``d × rank``) for B's leading
    column space, so ``‖x_iᵀ Q Qᵀ B‖²`` costs ``O(n · d · rank)`` for every candidate instead of
    ``O(n · d · T)``. The exact score is then computed on the shortlist only.
    """
    B = columns / np.sqrt(target_noise[None, :] * columns.shape[1])
    probe = np.random.default_rng(0).standard_normal((B.shape[1], rank))
    Q, _ = np.linalg.qr(B @ probe)  # (d, rank)
    M = Q.T @ B
    projected = X @ Q.astype(X.dtype, copy=False)  # (n, rank)
    first_order = np.einsum("ij,ij->i", projected @ (M @ M.T).astype(X.dtype), projected, dtype=np.float64)
    return np.argpartition(-first_order / noise, size)[:size]


def _epig_picks(
    belief: Belief,
    X: np.ndarray,
    n: int,
    order: np.ndarray,
    *,
    targets: int = ACTIVE.targets,
    shortlist: int = ACTIVE.shortlist,
    sketch_rank: int = 32,
) -> list[int]:
    """Greedy EPIG: the best pair, then (for a page of ``n``) each next pick after conditioning on the last.

    The targets are the first ``targets`` candidates of the seeded ``order``. Beyond ``shortlist``
    candidates the exact score is computed only for the ``shortlist`` best by a low-rank first-order
    sketch (:func:`_epig_shortlist`); that is what keeps one pick among 10,000 within tens of ms.
    Conditioning on pick ``j`` (pseudo-label variance ``s⁻¹ = v_j + 1/λ_j``) is a rank-one update:
    ``c_it ← c_it − s c_ij c_jt``, ``v_i ← v_i − s c_ij²`` (targets too), so a near copy of a picked pair
    informs little afterwards.
    """
    t_index = order[:targets]
    noise = _pseudo_label_variance(belief, X)
    columns = belief.covariance_columns(X[t_index])  # (d, T)
    rows = np.arange(len(X))
    if len(X) > shortlist:
        rows = _epig_shortlist(X, columns, noise, noise[t_index], shortlist, sketch_rank)
    rows = rows[np.argsort(np.argsort(order)[rows])]  # the shortlist in the seeded (tie-breaking) order
    Xr = X[rows]
    cov = Xr @ columns.astype(X.dtype, copy=False)  # (rows, T)
    noise_r, noise_t = noise[rows].copy(), noise[t_index].copy()
    picked: list[int] = []  # positions in rows
    earlier: list[tuple[np.ndarray, float]] = []  # each pick's conditioned covariance with the rows, and s
    for _ in range(n):
        values = _epig_values(cov, noise_r, noise_t)
        values[picked] = -np.inf
        j = int(np.argmax(values))  # the first maximum in the seeded order
        picked.append(j)
        if len(picked) == n:
            break
        col = (Xr @ belief.covariance_columns(Xr[j : j + 1]).astype(X.dtype, copy=False))[:, 0]
        col = col.astype(np.float64)
        for c, s in earlier:
            col = col - s * c * c[j]
        s_j = 1.0 / noise_r[j]
        row_j = cov[j].astype(np.float64)
        noise_r = noise_r - s_j * col**2
        noise_t = noise_t - s_j * row_j**2
        cov = cov - (s_j * col)[:, None].astype(cov.dtype) * row_j[None, :].astype(cov.dtype)
        earlier.append((col, s_j))
    return [int(rows[j]) for j in picked]


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
    columns: list[np.ndarray] = []  # each pick's conditioned covariance with every candidate
    shrink: list[float] = []
    picked: list[int] = []
    for _ in range(n):
        gain = np.log1p(weight * v)
        gain[picked] = -np.inf
        j = int(order[np.argmax(gain[order])])  # first maximum in the seeded order
        cov = belief.ridge * (X @ X[j]).astype(np.float64) / belief.scale**2 + P @ P[j] - G.T @ G[:, j]
        for col, s in zip(columns, shrink, strict=True):
            cov = cov - s * col * col[j]
        s_j = weight[j] / (1.0 + weight[j] * v[j])
        v = np.clip(v - s_j * cov**2, 0.0, None)
        columns.append(cov)
        shrink.append(s_j)
        picked.append(j)
    return picked
