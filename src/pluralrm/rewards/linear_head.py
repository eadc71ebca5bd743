"""A single linear reward head fitted by Bradley–Terry on feature differences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from pluralrm.config import DECOMPOSE
from pluralrm.rewards.math import bradley_terry_sums, pair_correctness, rms_row_norm, sigmoid
from pluralrm.validation import check_is_fitted, check_matrix, check_vector


class LinearRewardHead:
    """``r(x, y) = w · h(x, y)``, fitted so that ``σ(w · (h_chosen − h_rejected))`` is the preference.

    Minimizes ``mean(log(1 + exp(−D w))) + alpha / 2 · ‖w‖²`` with L-BFGS. There is no bias: it cancels in
    every pair difference. ``D`` is divided by its root-mean-square row norm inside ``fit`` (and ``w``
    mapped back), so ``alpha`` means the same for backbones whose hidden states differ in scale.

    Parameters
    ----------
    alpha : float
        L2 penalty on the (scale-normalized) weights.
    max_iter : int
        L-BFGS iterations.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> D = rng.normal(size=(200, 5)) + np.array([1.0, 0, 0, 0, 0])
    >>> head = LinearRewardHead(alpha=1e-3).fit(D)
    >>> bool(head.coef_[0] > np.abs(head.coef_[1:]).max())
    True
    """

    def __init__(self, *, alpha: float = DECOMPOSE.alpha, max_iter: int = 500) -> None:
        self.alpha = alpha
        self.max_iter = max_iter

    def get_params(self) -> dict:
        """The constructor's parameters (what a saved model's config records)."""
        return {"alpha": self.alpha, "max_iter": self.max_iter}

    @classmethod
    def from_coef(cls, coef: np.ndarray, **params) -> LinearRewardHead:
        """A head with given weights (e.g. a combination of PCA heads)."""
        head = cls(**params)
        head.coef_ = check_vector(coef, "coef")
        head.n_features_in_ = head.coef_.shape[0]
        return head

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted weights by name (float64), for ``save_pretrained``."""
        check_is_fitted(self, "coef_")
        return {"coef": np.asarray(self.coef_, dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], **params) -> LinearRewardHead:
        """Rebuild a fitted head from :meth:`to_arrays`' output (``ValueError`` if ``coef`` is bad)."""
        if "coef" not in arrays:
            raise ValueError("missing array 'coef' (a linear head's weights)")
        return cls.from_coef(arrays["coef"], **params)

    def fit(self, D: np.ndarray) -> LinearRewardHead:
        """Fit on pair differences ``D`` of shape (n_pairs, n_features) (chosen minus rejected)."""
        D = check_matrix(D, "D").astype(np.float64)
        # Row-norm sum as mean(Σ d²) had it (bit-for-bit): scale = sqrt(mean ‖d‖²).
        scale = rms_row_norm(float(np.sum(D**2, axis=1).sum()), len(D))
        Z = D / scale
        sums = lambda w: bradley_terry_sums(Z, w)  # noqa: E731
        result = minimize_bradley_terry(sums, len(Z), D.shape[1], alpha=self.alpha, max_iter=self.max_iter)
        self._set_fit(result, scale)
        return self

    def _set_fit(self, result, scale: float) -> None:
        """Weights of the scale-normalized fit ``result`` mapped back to the features' own scale."""
        self.coef_ = result.x / scale
        self.n_features_in_ = len(result.x)
        self.n_iter_ = int(result.nit)

    @classmethod
    def fit_from_sums(
        cls, sums: Callable[[np.ndarray], tuple[float, np.ndarray]], n: int, d: int, scale: float, **params
    ) -> LinearRewardHead:
        """Fit from a function giving :func:`~pluralrm.rewards.math.bradley_terry_sums` of ``D / scale``
        over ``n`` pairs (e.g. added over Ray shards): the same L-BFGS and penalty as :meth:`fit`."""
        head = cls(**params)
        head._set_fit(minimize_bradley_terry(sums, n, d, alpha=head.alpha, max_iter=head.max_iter), scale)
        return head

    def reward(self, H: np.ndarray) -> np.ndarray:
        """Reward of each response: ``H @ coef_``, shape (n_responses,)."""
        check_is_fitted(self, "coef_")
        return check_matrix(H, "H", n_features=self.n_features_in_) @ self.coef_

    def decision_function(self, D: np.ndarray) -> np.ndarray:
        """Reward margin of each pair, ``D @ coef_``; positive means the chosen response wins."""
        check_is_fitted(self, "coef_")
        return check_matrix(D, "D", n_features=self.n_features_in_) @ self.coef_

    def predict_proba(self, D: np.ndarray) -> np.ndarray:
        """Bradley–Terry probability that the chosen response is preferred."""
        return sigmoid(self.decision_function(D))

    def score(self, D: np.ndarray) -> float:
        """Pairwise accuracy on ``D`` (a tie counts one half, as in every pluralrm metric)."""
        return float(pair_correctness(self.decision_function(D)).mean())


def minimize_bradley_terry(
    sums: Callable[[np.ndarray], tuple[float, np.ndarray]],
    n: int,
    d: int,
    *,
    alpha: float = DECOMPOSE.alpha,
    max_iter: int = 500,
) -> OptimizeResult:
    """L-BFGS on ``mean(log(1 + exp(−Z w))) + alpha / 2 · ‖w‖²`` from ``w = 0``.

    ``sums(w)`` gives the loss and gradient *summed* over the ``n`` pairs (:func:`bradley_terry_sums`,
    computed in one array or added over shards); this is the one place that averages and penalizes them.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be non-negative, got {alpha}")
    if n < 1:
        raise ValueError("need at least one pair to fit a Bradley–Terry head")

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = sums(w)
        return float(loss / n + 0.5 * alpha * w @ w), grad / n + alpha * w

    return minimize(objective, np.zeros(d), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})


def fit_general_head(
    D_train: np.ndarray, D_val: np.ndarray, alphas: tuple[float, ...] = DECOMPOSE.alphas
) -> tuple[LinearRewardHead, dict[float, float]]:
    """Fit one head per ``alpha`` and keep the best on the validation pairs (never on test pairs)."""
    return choose_penalty(
        lambda alpha: LinearRewardHead(alpha=alpha).fit(D_train), lambda head: head.score(D_val), alphas
    )


def choose_penalty(
    fit: Callable[[float], LinearRewardHead],
    accuracy: Callable[[LinearRewardHead], float],
    alphas: tuple[float, ...] = DECOMPOSE.alphas,
) -> tuple[LinearRewardHead, dict[float, float]]:
    """``fit(alpha)`` for each penalty, kept by ``accuracy`` on held-out pairs (ties: the first listed).

    The one selection rule, whether the pairs are in one array (:func:`fit_general_head`) or spread over
    Ray shards (:mod:`pluralrm.scale.ray_pca`). Returns the best head and the accuracy of every penalty.
    """
    if not alphas:
        raise ValueError("alphas must name at least one L2 penalty")
    scores: dict[float, float] = {}
    best: LinearRewardHead | None = None
    for alpha in alphas:
        head = fit(alpha)
        scores[alpha] = accuracy(head)
        if best is None or scores[alpha] > scores[best.alpha]:
            best = head
    assert best is not None  # alphas is not empty
    return best, scores
