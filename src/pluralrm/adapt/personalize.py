"""Personalize a :class:`RewardModel`: fit a user's weights over its PCA heads, store and apply them.

Adapters see z-scored head scores (each head divided by its RMS score on the fit data, so no head wins by
scale alone); the weights kept in a :class:`UserProfile` are mapped back to raw head scores, so a user's
reward is simply ``(H @ components_.T) @ weights``.
"""

from __future__ import annotations

import numpy as np

from pluralrm.adapt.adapters import ADAPTERS, weights_over_heads
from pluralrm.adapt.profiles import UserProfile, head_set_fingerprint
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.validation import check_matrix


def _decomposed(model: RewardModel):
    if model.decomposed is None:
        raise ValueError(
            "this reward model has no PCA heads to personalize; fit it with `pluralrm decompose`"
        )
    return model.decomposed


def model_head_set(model: RewardModel) -> str:
    """Fingerprint of the heads a profile's weights refer to."""
    return head_set_fingerprint(_decomposed(model).components_)


def fit_user_weights(
    model: RewardModel,
    D: np.ndarray,
    *,
    method: str = "logistic",
    alpha: float = 1.0,
    beta: float = 1.0,
    temperature: float = 1.0,
) -> np.ndarray:
    """Weights over raw head scores from the user's pair differences ``D`` (chosen − rejected features).

    ``logistic`` shrinks toward the general head's coordinates in the head basis (so few pairs give the
    general reward, many pairs a personal one); ``hyre`` weighs heads and their negations by how well each
    explains the user's pairs; ``best-head`` keeps the single best (±) head.
    """
    if method not in ADAPTERS:  # checked before any work, with the same message as the adapters
        raise ValueError(f"unknown adapter {method!r}; choose one of {ADAPTERS}")
    decomposed = _decomposed(model)
    scale = np.where(decomposed.head_scale_ > 0, decomposed.head_scale_, 1.0)
    S = decomposed.scores(check_matrix(D, "D", n_features=decomposed.n_features_in_)) / scale
    prior = None if model.general is None else (decomposed.components_ @ model.general.coef_) * scale
    weights_z = weights_over_heads(S, method, prior=prior, alpha=alpha, beta=beta, temperature=temperature)
    return weights_z / scale


def build_profile(
    model: RewardModel, user: str, D: np.ndarray, *, method: str = "logistic", **params
) -> UserProfile:
    """A :class:`UserProfile` for ``user`` from their labelled pair differences."""
    weights = fit_user_weights(model, D, method=method, **params)
    return UserProfile(
        user=user, weights=weights, head_set=model_head_set(model), method=method, n_pairs=len(D)
    )


def personal_rewards(model: RewardModel, H: np.ndarray, profile: UserProfile) -> np.ndarray:
    """The user's reward of each feature row (responses, or pair differences for margins)."""
    profile.check_head_set(model_head_set(model))
    return _decomposed(model).scores(H) @ profile.weights
