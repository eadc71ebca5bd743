"""Personalize a :class:`RewardModel`: fit a user's weights over its PCA heads as a :class:`UserProfile`.

Adapters see z-scored head scores (each head divided by its RMS score on the fit data, so no head wins by
scale alone) and, for the logistic adapter, the general head expressed in those coordinates as the prior;
the weights kept in a profile are mapped back to raw head scores. The reward itself is computed in one
place only: ``model.rewards(H, user=profile)`` (see :mod:`pluralrm.rewards.reward_model`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pluralrm.adapt.adapters import ADAPTERS, weights_over_heads
from pluralrm.adapt.priors import GaussianPriorAdapter, prior_from_model
from pluralrm.adapt.profiles import UserProfile
from pluralrm.config import ADAPT, AdaptConfig
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.validation import check_matrix

FULL_METHODS = ("map", "bt")  # a full weight vector, split against the heads in the profile


def resolve_method(model: RewardModel, method: str, config: AdaptConfig = ADAPT) -> str:
    """``auto`` → the adapter ``decompose --adapters`` chose from the model's own users (kept in
    ``model.metadata['adapter']``), else ``config.auto_fallback``; any other name is returned as it is."""
    if method != "auto":
        return method
    recorded = (model.metadata or {}).get("adapter") or {}
    return recorded.get("chosen") or config.auto_fallback


def fit_user_weights(
    model: RewardModel, D: np.ndarray, *, config: AdaptConfig = ADAPT, **overrides
) -> np.ndarray:
    """Weights over raw head scores from the user's pair differences ``D`` (chosen − rejected features).

    ``logistic`` shrinks toward the general head's coordinates in the head basis (so few pairs give the
    general reward, many pairs a personal one); ``hyre`` weighs heads and their negations by how well each
    explains the user's pairs; ``best-head`` keeps the single best (±) head. Keyword ``overrides`` replace
    fields of ``config`` (``method="hyre"``, ``alpha=10``).
    """
    config = replace(config, **overrides)
    config = replace(config, method=resolve_method(model, config.method, config))
    if config.method not in ADAPTERS:  # checked before any work, with the same message as the adapters
        raise ValueError(f"unknown adapter {config.method!r}; choose auto or one of {ADAPTERS}")
    if config.method in FULL_METHODS:
        raise ValueError(
            f"adapter {config.method!r} fits a full weight vector, not weights over heads; "
            "use build_profile or fit_user_vector"
        )
    pca = model.require_heads("personalize")
    scale = (
        np.where(pca.head_scale_ > 0, pca.head_scale_, 1.0)
        if config.zscore
        else np.ones(len(pca.head_scale_))
    )
    S = pca.scores(check_matrix(D, "D", n_features=pca.n_features_in_)) / scale
    prior = None if model.general is None else (pca.components_ @ model.general.coef_) * scale
    weights_z = weights_over_heads(
        S, config.method, prior=prior, alpha=config.alpha, beta=config.beta, temperature=config.temperature
    )
    return weights_z / scale


def fit_user_vector(
    model: RewardModel, D: np.ndarray, *, config: AdaptConfig = ADAPT, **overrides
) -> GaussianPriorAdapter:
    """The ``map`` adapter fitted on the user's pair differences ``D`` (shape (n_pairs, n_features)).

    The prior is the model's own: its general head (mean, sign chosen by the pairs) and its heads (the
    pooled second moment they capture) plus an isotropic ridge — see :mod:`pluralrm.adapt.priors`.
    """
    config = replace(config, **overrides)
    D = check_matrix(D, "D", n_features=model.n_features)
    adapter = GaussianPriorAdapter(
        prior=prior_from_model(model),
        taus=tuple(config.map_taus),
        default_taus=tuple(config.map_default_taus),
        mean_signs=tuple(config.map_signs),
        n_sweeps=config.map_sweeps,
        min_gain=config.map_min_gain,
    )
    return adapter.fit(D)


def build_profile(
    model: RewardModel, user: str, D: np.ndarray, *, config: AdaptConfig = ADAPT, **overrides
) -> UserProfile:
    """A :class:`UserProfile` for ``user`` from their labelled pair differences (``config.method``).

    For ``map`` and ``bt`` the fitted vector ``w`` is split against the model's heads ``C`` (orthonormal
    rows): the weights are ``C w`` and the full-feature part ``w − Cᵀ C w``, so
    ``reward_vector(user=profile)`` is ``w`` again while the weights stay readable as a mix of heads.
    """
    config = replace(config, **overrides)
    config = replace(config, method=resolve_method(model, config.method, config))
    full = None
    if config.method == "bt":
        # The bar every pool-based adapter is measured against (kshot's user-bt), as a profile: on real
        # users with a pool-chosen layer it is the best measured (docs/reports/personalization.md).
        D = check_matrix(D, "D", n_features=model.n_features)
        if not len(D):
            raise ValueError("adapter 'bt' learns from the user's own pairs alone and needs at least one")
        w = LinearRewardHead(alpha=config.bt_alpha).fit(D).coef_
    elif config.method in FULL_METHODS:
        w = fit_user_vector(model, D, config=config).coef_
    if config.method in FULL_METHODS:
        components = model.require_heads("personalize").components_
        weights = components @ w
        full = w - components.T @ weights
    else:
        weights = fit_user_weights(model, D, config=config)
    return UserProfile(
        user=user,
        weights=weights,
        head_set=model.head_set,
        method=config.method,
        n_pairs=len(D),
        full=full,
    )
