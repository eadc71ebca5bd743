"""A single linear reward head fitted by Bradley–Terry on feature differences."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from pluralrm.config import DECOMPOSE
from pluralrm.rewards.math import bradley_terry_loss, pair_correctness, sigmoid
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
        if self.alpha < 0:
            raise ValueError(f"alpha must be non-negative, got {self.alpha}")
        scale = float(np.sqrt(np.mean(np.sum(D**2, axis=1)))) or 1.0
        Z = D / scale
        n = len(Z)

        def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
            margins = Z @ w
            loss = bradley_terry_loss(margins).mean() + 0.5 * self.alpha * w @ w
            # d/dw log(1 + e^{-m}) = -σ(-m) · z
            grad = -(Z.T @ sigmoid(-margins)) / n + self.alpha * w
            return float(loss), grad

        result = minimize(
            objective, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter}
        )
        self.coef_ = result.x / scale
        self.n_features_in_ = D.shape[1]
        self.n_iter_ = int(result.nit)
        return self

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


def fit_general_head(
    D_train: np.ndarray, D_val: np.ndarray, alphas: tuple[float, ...] = DECOMPOSE.alphas
) -> tuple[LinearRewardHead, dict[float, float]]:
    """Fit one head per ``alpha`` and keep the best on the validation pairs (never on test pairs)."""
    if not alphas:
        raise ValueError("alphas must name at least one L2 penalty")
    scores: dict[float, float] = {}
    best: LinearRewardHead | None = None
    for alpha in alphas:
        head = LinearRewardHead(alpha=alpha).fit(D_train)
        scores[alpha] = head.score(D_val)
        if best is None or scores[alpha] > scores[best.alpha]:
            best = head
    assert best is not None  # alphas is not empty
    return best, scores
