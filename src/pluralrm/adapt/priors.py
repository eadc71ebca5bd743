"""A user's full weight vector by MAP under a Gaussian prior built from the pool (the ``map`` adapter).

The heads of a decomposed model are a *hard* basis: a user whose preference leaves their span cannot be
represented, and a prior mean equal to the general head pulls a user who disagrees with the majority the
wrong way (issue 8). Here the pool is a *prior* on the user's weights ``w ∈ R^d`` instead::

    w ~ N(s · g,  τ_g ĝĝᵀ + τ_h Σ_j p_j v_j v_jᵀ + τ_0 I / d)

with ``g`` the general head, ``ĝ`` its direction, ``v_j`` the heads (PCA or learned), ``p_j`` their share of
the pool's second moment (so the prior covariance is the pooled second moment of preference directions,
truncated to the stored heads) and ``I / d`` an isotropic ridge, which keeps the from-scratch Bradley–Terry
head as a limit: with many pairs the likelihood wins and ``w`` tends to the user's own BT head whatever
the prior. Each component has trace 1 in units of the pool's pair differences, so the ``τ`` compare.

The user's labelled pairs choose the hyperparameters — the sign ``s ∈ {+1, 0, −1}`` of the prior mean
(a user who disagrees with the general head flips it rather than being shrunk toward it) and the three
strengths — by maximizing the Laplace approximation of the marginal likelihood (type-II maximum
likelihood, Rasmussen & Williams 2006, §3.4 and Algorithm 3.1/5.1 with a prior mean). With no pairs every
setting has evidence 0 and the defaults stand: the general head itself.

Everything is computed in the dual, on ``n × n`` Gram matrices of the ``n`` labelled pairs, so a fit costs
O(n²d + n³) per setting: milliseconds for few-shot users whatever ``d`` (see ``benchmarks/adapt.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pluralrm.config import ADAPT
from pluralrm.rewards.math import bradley_terry_loss, pair_correctness, sigmoid
from pluralrm.validation import check_is_fitted, check_matrix


@dataclass(frozen=True)
class GaussianPrior:
    """The pool's prior on a user's weight vector, in raw feature units.

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
        The general head ``g`` (the prior mean is ``s · g``).
    factors : tuple of ndarray of shape (n_features, r_m)
        One low-rank factor per covariance component, ``C_m = F_m F_mᵀ`` with trace 1 in the units of
        ``scale``; the isotropic component ``I / d`` is implicit and always last.
    names : tuple of str
        A name per component in ``factors``, then ``"ridge"``.
    scale : float
        Root-mean-square norm of the pool's pair differences: the unit the trace-1 components live in.
    """

    mean: np.ndarray
    factors: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    scale: float

    @classmethod
    def from_heads(
        cls,
        general: np.ndarray | None,
        components: np.ndarray | None,
        explained_variance: np.ndarray | None,
        scale: float,
    ) -> GaussianPrior:
        """Components ``ĝĝᵀ`` (when a general head exists) and ``Σ_j p_j v_j v_jᵀ`` (when heads exist).

        Parameters
        ----------
        general : ndarray of shape (n_features,) or None
        components : ndarray of shape (n_heads, n_features) or None
            Orthonormal heads (PCA or learned); weighted by their share ``p_j`` of ``explained_variance``.
        explained_variance : ndarray of shape (n_heads,) or None
        scale : float
            Root-mean-square row norm of the pool's pair differences.
        """
        if general is None and (components is None or not len(components)):
            raise ValueError("a Gaussian prior needs a general head or heads (the model has neither)")
        d = len(general) if general is not None else np.asarray(components).shape[1]
        # Always three components (general, heads, ridge), so strengths line up by position; a missing
        # general head or head set is an empty (d × 0) factor.
        g_factor = np.zeros((d, 0))
        if general is not None:
            general = np.asarray(general, dtype=np.float64)
            norm = np.linalg.norm(general)
            if norm > 0:
                g_factor = (general / norm)[:, None]
        h_factor = np.zeros((d, 0))
        if components is not None and len(components):
            components = np.asarray(components, dtype=np.float64)
            variance = np.clip(np.asarray(explained_variance, dtype=np.float64), 0.0, None)
            total = variance.sum()
            share = variance / total if total > 0 else np.full(len(variance), 1.0 / len(variance))
            h_factor = components.T * np.sqrt(share)  # (d, n_heads): Σ_j p_j v_j v_jᵀ = F Fᵀ
        factors, names = [g_factor, h_factor], ["general", "heads"]
        mean = np.zeros(d) if general is None else general
        return cls(mean=mean, factors=tuple(factors), names=(*names, "ridge"), scale=float(scale) or 1.0)


class GaussianPriorAdapter:
    """MAP Bradley–Terry fit of a user's full weight vector under a :class:`GaussianPrior`.

    Minimizes ``Σ_i log(1 + exp(−D_i · w)) + ½ (w − s·g)ᵀ Σ⁻¹ (w − s·g)`` with ``Σ = Σ_m τ_m C_m``, for
    the ``(s, τ)`` that maximize the Laplace marginal likelihood of the user's pairs (coordinate ascent over
    the grids, starting from the defaults; a setting replaces the current one only when its evidence is
    higher, so with no pairs the defaults stand).

    Parameters
    ----------
    prior : GaussianPrior
    taus : tuple of float
        Grid of each component's strength (prior variance, trace-1 units).
    default_taus : tuple of float
        Starting strengths, one per component including the ridge.
    mean_signs : tuple of float
        Grid of the prior mean's multiplier ``s`` (the first is the default).
    n_sweeps : int
        Coordinate-ascent sweeps over (s, τ_1, …, τ_M).
    min_gain : float
        Log-evidence (nats) a setting must gain to replace the current one. A Bayes factor of e or more
        ("positive" evidence, Kass & Raftery 1995) keeps one or two pairs from flipping the general head.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The user's reward vector (raw feature units): ``reward = h · coef_``.
    mean_sign_ : float
    taus_ : dict of str -> float
    log_evidence_ : float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> D = rng.normal(size=(40, 5)) + np.array([0.0, -1.0, 0, 0, 0])
    >>> prior = GaussianPrior.from_heads(np.array([0.0, 1.0, 0, 0, 0]), None, None, scale=1.0)
    >>> adapter = GaussianPriorAdapter(prior=prior).fit(D)
    >>> adapter.mean_sign_, bool(adapter.coef_[1] < 0)  # the pairs outweigh the wrong prior mean
    (1.0, True)
    >>> GaussianPriorAdapter(prior=prior, min_gain=0.0).fit(D).mean_sign_  # any evidence gain flips it
    -1.0
    """

    def __init__(
        self,
        *,
        prior: GaussianPrior,
        taus: tuple[float, ...] = ADAPT.map_taus,
        default_taus: tuple[float, ...] = ADAPT.map_default_taus,
        mean_signs: tuple[float, ...] = ADAPT.map_signs,
        n_sweeps: int = ADAPT.map_sweeps,
        min_gain: float = ADAPT.map_min_gain,
    ) -> None:
        self.prior = prior
        self.taus = taus
        self.default_taus = default_taus
        self.mean_signs = mean_signs
        self.n_sweeps = n_sweeps
        self.min_gain = min_gain

    def fit(self, D: np.ndarray) -> GaussianPriorAdapter:
        """Fit on the user's pair differences ``D`` of shape (n_pairs, n_features)."""
        prior = self.prior
        d = len(prior.mean)
        D = check_matrix(D, "D", n_features=d).astype(np.float64)
        Z = D / prior.scale  # pool units: the trace-1 components and the τ grid mean the same everywhere
        mean_z = prior.mean * prior.scale  # margins are invariant: D·g = Z·(g·scale)
        # Per-component Gram matrices Z C_m Zᵀ (n × n), computed once per fit.
        projected = [Z @ F for F in prior.factors]
        grams = [P @ P.T for P in projected] + [Z @ Z.T / d]
        offsets = Z @ mean_z
        n_comp = len(grams)
        taus = list(self.default_taus)
        if len(taus) != n_comp:
            names = ", ".join(prior.names)
            raise ValueError(f"default_taus needs {n_comp} strengths ({names}), got {len(taus)}")
        sign = float(self.mean_signs[0])

        def evaluate(sign: float, taus: list[float]) -> tuple[float, np.ndarray]:
            K = sum(t * G for t, G in zip(taus, grams, strict=True))
            return _laplace(K, sign * offsets)

        best, alpha = evaluate(sign, taus)
        if len(D):
            for _ in range(self.n_sweeps):
                improved = False
                for candidate in self.mean_signs:
                    value, a = evaluate(candidate, taus)
                    if value > best + self.min_gain:
                        best, alpha, sign, improved = value, a, float(candidate), True
                for m in range(n_comp):
                    for tau in self.taus:
                        trial = [*taus[:m], tau, *taus[m + 1 :]]
                        if sum(trial) <= 0:
                            continue
                        value, a = evaluate(sign, trial)
                        if value > best + self.min_gain:
                            best, alpha, taus, improved = value, a, trial, True
                if not improved:
                    break
        # w = μ + Σ Zᵀ a  (the representer form of the posterior mode)
        Za = Z.T @ alpha
        w_z = sign * mean_z + taus[-1] * Za / d
        for t, F in zip(taus, prior.factors, strict=False):
            w_z = w_z + t * (F @ (F.T @ Za))
        self.coef_ = w_z / prior.scale
        self.mean_sign_ = sign
        self.taus_ = dict(zip(prior.names, taus, strict=True))
        self.log_evidence_ = float(best)
        self.n_features_in_ = d
        return self

    def decision_function(self, D: np.ndarray) -> np.ndarray:
        """Personal reward margin of each pair, ``D @ coef_``."""
        check_is_fitted(self, "coef_")
        return check_matrix(D, "D", n_features=self.n_features_in_) @ self.coef_

    def score(self, D: np.ndarray) -> float:
        """Pairwise accuracy (ties count one half)."""
        return float(pair_correctness(self.decision_function(D)).mean())


def _laplace(K: np.ndarray, m: np.ndarray, max_iter: int = 50, tol: float = 1e-8) -> tuple[float, np.ndarray]:
    """Laplace log marginal likelihood and dual coefficients of a BT model with latent prior N(m, K).

    All labels are "chosen wins" (``D`` is chosen − rejected), so the likelihood is ``Π σ(f_i)``.
    Newton's method on the latent margins ``f`` in the numerically stable form of Rasmussen & Williams'
    Algorithm 3.1 (``B = I + W^½ K W^½`` is well conditioned for any ``K``), with step halving on the
    objective ``Ψ(f) = log p(y|f) − ½ (f − m)ᵀ K⁻¹ (f − m)``.

    Returns
    -------
    log_evidence : float
    a : ndarray of shape (n,)
        ``K⁻¹ (f̂ − m)`` at the mode, so that the weight vector is ``μ + Σ Zᵀ a``.
    """
    n = len(m)
    if n == 0:
        return 0.0, np.zeros(0)
    f = m.copy()
    a = np.zeros(n)
    psi = -float(bradley_terry_loss(f).sum())
    for _ in range(max_iter):
        pi = sigmoid(f)
        W = pi * (1.0 - pi)
        sw = np.sqrt(W)
        L = np.linalg.cholesky(np.eye(n) + sw[:, None] * K * sw[None, :])
        b = W * (f - m) + (1.0 - pi)  # d/df log σ(f) = 1 − σ(f)
        c = np.linalg.solve(L.T, np.linalg.solve(L, sw * (K @ b)))
        a_new = b - sw * c
        step = a_new - a
        t = 1.0
        while True:
            a_try = a + t * step
            f_try = K @ a_try + m
            psi_try = -float(bradley_terry_loss(f_try).sum()) - 0.5 * float(a_try @ (f_try - m))
            if psi_try >= psi - 1e-12 or t < 1e-6:
                break
            t /= 2
        converged = abs(psi_try - psi) < tol
        a, f, psi = a_try, f_try, psi_try
        if converged:
            break
    pi = sigmoid(f)
    sw = np.sqrt(pi * (1.0 - pi))
    L = np.linalg.cholesky(np.eye(n) + sw[:, None] * K * sw[None, :])
    return psi - float(np.log(np.diag(L)).sum()), a


def prior_from_model(model) -> GaussianPrior:
    """The :class:`GaussianPrior` of a :class:`~pluralrm.rewards.reward_model.RewardModel`.

    Its general head and heads, in the units of the pool they were fitted on: the pool's mean squared
    pair-difference norm is ``Σ explained_variance_ / Σ explained_variance_ratio_`` (the moment's trace).
    """
    general = None if model.general is None else model.general.coef_
    heads = model.decomposed
    components = variance = None
    scale = 1.0
    if heads is not None:
        components, variance = heads.components_, heads.explained_variance_
        ratio = float(np.sum(heads.explained_variance_ratio_))
        if ratio > 0 and float(np.sum(variance)) > 0:
            # explained_variance_ratio_ = variance / trace(moment): trace = mean squared row norm of the pool.
            scale = float(np.sqrt(np.sum(variance) / ratio))
    return GaussianPrior.from_heads(general, components, variance, scale)
