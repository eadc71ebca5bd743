"""Test-time personalization: a user's weights over reward heads from a few labelled pairs.

Every adapter is fitted on ``S`` of shape (n_pairs, n_heads): head ``j``'s score of the user's chosen
response minus their rejected one. No backbone is touched; fitting is a few vectorized numpy operations
(milliseconds for 1,000 heads × 1,000 pairs, see ``benchmarks/adapt.py``).
"""

from __future__ import annotations

import numpy as np

from pluralrm.config import ADAPT
from pluralrm.rewards.math import bradley_terry_loss, pair_correctness, sigmoid, softmax_weights
from pluralrm.validation import check_is_fitted, check_matrix, check_vector


class _Adapter:
    """Shared ``decision_function`` / ``score`` for adapters that learn ``weights_`` over heads."""

    weights_: np.ndarray  # set by each subclass's fit

    def decision_function(self, S: np.ndarray) -> np.ndarray:
        """The personal reward margin of each pair, ``S @ weights_``."""
        check_is_fitted(self, "weights_")
        return check_matrix(S, "S", n_features=len(self.weights_)) @ self.weights_

    def score(self, S: np.ndarray) -> float:
        """Pairwise accuracy of the personal reward (ties count one half)."""
        return float(pair_correctness(self.decision_function(S)).mean())

    def _prior(self, n_heads: int) -> np.ndarray:
        prior = getattr(self, "prior", None)
        if prior is None:
            return np.full(n_heads, 1.0 / n_heads)
        prior = check_vector(prior, "prior", length=n_heads)
        return prior


class HyReAdapter(_Adapter):
    """Ensemble reweighting (HyRe): each head a hypothesis, weighted by how well it explains the user.

    ``weights_ = softmax(log prior + Σ_i log σ(β · s_ij) / temperature)`` over heads ``j`` — the posterior
    of "the user's reward is head j" under a Bradley–Terry likelihood. With no pairs it returns the prior.
    A head only prefers what it prefers, so pass negated heads too (``scores(..., include_negated=True)``)
    when a user may want the opposite of a head.

    Parameters
    ----------
    beta : float
        Bradley–Terry inverse temperature applied to head scores (after z-scoring when enabled).
    temperature : float
        Softmax temperature over summed log-likelihoods; larger keeps weights closer to the prior.
    prior : array of shape (n_heads,), optional
        Prior weight of each head (normalized); uniform by default.
    zscore : bool
        Divide each head's scores by ``head_scale`` (or, if not given, by the std of its scores on the
        fit pairs) so that heads with large raw scales do not win by scale alone.
    head_scale : array of shape (n_heads,), optional
        Per-head score scale measured on reference data (e.g. ``sqrt(explained_variance_)``).

    Examples
    --------
    >>> S = np.array([[1.0, -1.0], [2.0, -0.5], [0.5, 0.2]])
    >>> HyReAdapter().fit(S).weights_.round(3)
    array([0.878, 0.122])
    """

    def __init__(
        self,
        *,
        beta: float = ADAPT.beta,
        temperature: float = ADAPT.temperature,
        prior: np.ndarray | None = None,
        zscore: bool = False,
        head_scale: np.ndarray | None = None,
    ) -> None:
        self.beta = beta
        self.temperature = temperature
        self.prior = prior
        self.zscore = zscore
        self.head_scale = head_scale

    def _scale(self, S: np.ndarray) -> np.ndarray:
        if not self.zscore:
            return np.ones(S.shape[1])
        if self.head_scale is not None:
            scale = check_vector(self.head_scale, "head_scale", length=S.shape[1])
        else:
            scale = np.sqrt(np.mean(S**2, axis=0)) if len(S) else np.ones(S.shape[1])
        return np.where(scale > 0, scale, 1.0)

    def fit(self, S: np.ndarray) -> HyReAdapter:
        S = check_matrix(S, "S")
        prior = self._prior(S.shape[1])
        scale = self._scale(S)
        loglik = -bradley_terry_loss(self.beta * S / scale).sum(axis=0)
        with np.errstate(divide="ignore"):
            log_prior = np.log(prior / prior.sum())
        posterior = softmax_weights(log_prior + loglik / self.temperature)
        # The reward is the posterior mixture of the (scaled) heads.
        self.weights_ = posterior / scale
        self.posterior_ = posterior
        self.n_features_in_ = S.shape[1]
        return self


class LogisticAdapter(_Adapter):
    """L2-regularized logistic (Bradley–Terry) fit of head weights, shrunk toward prior weights.

    Minimizes ``Σ_i log(1 + exp(−s_i · w)) + alpha/2 · ‖w − prior‖²`` (a sum, not a mean: with few pairs
    the prior dominates, with many the data does). Solved by Newton's method with a backtracking line
    search: the problem is strictly convex for ``alpha > 0`` and has at most ~1,000 weights, so a handful
    of exact Newton steps beats hundreds of quasi-Newton ones (see ``benchmarks/adapt.py``).

    Parameters
    ----------
    alpha : float
        Strength of the pull toward ``prior`` (must be positive).
    prior : array of shape (n_heads,), optional
        Prior weights (e.g. the general head expressed in the head basis); zeros by default.
    max_iter : int
        Newton iterations.
    tol : float
        Stop when the largest step is below ``tol``.
    """

    def __init__(
        self,
        *,
        alpha: float = ADAPT.alpha,
        prior: np.ndarray | None = None,
        max_iter: int = 50,
        tol: float = 1e-8,
    ) -> None:
        self.alpha = alpha
        self.prior = prior
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, S: np.ndarray) -> LogisticAdapter:
        S = check_matrix(S, "S").astype(np.float64)
        if self.alpha <= 0:
            raise ValueError(
                f"alpha must be positive (it makes the problem strictly convex), got {self.alpha}"
            )
        k = S.shape[1]
        prior = np.zeros(k) if self.prior is None else check_vector(self.prior, "prior", length=k)

        def loss(w: np.ndarray) -> float:
            delta = w - prior
            return float(bradley_terry_loss(S @ w).sum() + 0.5 * self.alpha * delta @ delta)

        w = prior.copy()
        current = loss(w)
        iteration = 0
        for iteration in range(1, self.max_iter + 1):  # noqa: B007 - read after the loop
            margins = S @ w
            p = sigmoid(-margins)  # d/dm log(1 + e^{-m}) = -σ(-m)
            grad = -(S.T @ p) + self.alpha * (w - prior)
            step = _newton_step(S, p * (1.0 - p), grad, self.alpha)
            t = 1.0
            while t > 1e-10:
                candidate = w - t * step
                value = loss(candidate)
                if value <= current - 1e-4 * t * grad @ step:  # Armijo condition
                    break
                t /= 2
            w, current = candidate, value
            if np.abs(t * step).max() < self.tol:
                break
        self.n_iter_ = iteration
        self.weights_ = w
        self.n_features_in_ = k
        return self


def _newton_step(S: np.ndarray, curvature: np.ndarray, grad: np.ndarray, alpha: float) -> np.ndarray:
    """Solve ``(Sᵀ C S + αI) x = grad`` in whichever of the k×k or n×n forms is smaller.

    With fewer pairs than heads (the usual few-shot case) the push-through identity
    ``(αI + BᵀB)⁻¹ = (I − Bᵀ(αI + BBᵀ)⁻¹B) / α`` with ``B = C^{1/2} S`` costs O(n²k) instead of O(k³).
    """
    from scipy.linalg import solve

    n, k = S.shape
    if n < k:
        B = S * np.sqrt(curvature)[:, None]
        inner = alpha * np.eye(n) + B @ B.T
        return (grad - B.T @ solve(inner, B @ grad, assume_a="pos")) / alpha
    hessian = (S.T * curvature) @ S + alpha * np.eye(k)
    return solve(hessian, grad, assume_a="pos")


class BestHeadAdapter(_Adapter):
    """Baseline: the single head (or negated head) with the best accuracy on the user's pairs.

    Ties go to the earlier head (larger explained variance).
    """

    def __init__(self, *, allow_negated: bool = True) -> None:
        self.allow_negated = allow_negated

    def fit(self, S: np.ndarray) -> BestHeadAdapter:
        S = check_matrix(S, "S")
        accuracy = pair_correctness(S).mean(axis=0) if len(S) else np.full(S.shape[1], 0.5)
        candidates = np.concatenate([accuracy, 1 - accuracy]) if self.allow_negated else accuracy
        best = int(np.argmax(candidates))
        weights = np.zeros(S.shape[1])
        weights[best % S.shape[1]] = -1.0 if best >= S.shape[1] else 1.0
        self.weights_ = weights
        self.n_features_in_ = S.shape[1]
        return self


# map (pluralrm.adapt.priors) and bt (a from-scratch Bradley–Terry head) fit a full weight vector
ADAPTERS = ("map", "bt", "logistic", "hyre", "best-head")


def weights_over_heads(
    S: np.ndarray,
    method: str,
    *,
    prior: np.ndarray | None = None,
    alpha: float = ADAPT.alpha,
    beta: float = ADAPT.beta,
    temperature: float = ADAPT.temperature,
) -> np.ndarray:
    """One weight per head (column of ``S``) from the named adapter.

    ``hyre`` weighs each head *and its negation* as hypotheses and folds the two posteriors back into one
    signed weight per head; ``logistic`` shrinks toward ``prior``; ``best-head`` keeps the single best ± head.
    """
    if method == "logistic":
        return LogisticAdapter(alpha=alpha, prior=prior).fit(S).weights_
    if method == "hyre":
        k = S.shape[1]
        both = HyReAdapter(beta=beta, temperature=temperature).fit(np.concatenate([S, -S], axis=1)).weights_
        return both[:k] - both[k:]
    if method == "best-head":
        return BestHeadAdapter().fit(S).weights_
    if method in ("map", "bt"):
        raise ValueError(
            f"the {method} adapter fits a full weight vector, not weights over heads; use build_profile"
        )
    raise ValueError(f"unknown adapter {method!r}; choose one of {ADAPTERS}")


def random_unit_heads(n_heads: int, n_features: int, *, seed: int = 0) -> np.ndarray:
    """``n_heads`` random orthonormal directions (rows): the random-heads baseline of the DRM paper."""
    if n_heads > n_features:
        raise ValueError(f"cannot draw {n_heads} orthonormal heads in {n_features} dimensions")
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n_features, n_heads)))
    return q.T
