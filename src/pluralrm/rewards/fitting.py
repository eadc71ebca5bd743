"""Fit a :class:`RewardModel` (general head + PCA heads) on featurized pairs: the one pool recipe.

Every caller that fits heads on a pool of pairs — ``pluralrm decompose``, the k-shot protocol's pool for
each target user, the adapter choice, the demo, and the Ray engine — goes through :func:`fit_pool`:

1. the pool's *prompts* are split, seeded (``DecomposeConfig.seed``), into a fitting part and a held-out
   ``DecomposeConfig.val_fraction`` (:func:`split_pool`; a prompt is never on both sides, so the penalty is
   chosen on prompts the head has not seen);
2. the general Bradley–Terry head is fitted on the fitting part once per L2 penalty in
   ``DecomposeConfig.alphas``, and the one most accurate on the held-out part is kept;
3. the PCA heads are fitted on the same fitting part.

Nothing is refitted on the held-out part afterwards: it stays held out, so what a model records as its
fit data (``metadata["fit_pairs"]``) is what it saw, a validation figure read on those pairs (``evaluate
--val``, the demo's best-head pick) is honest, and the Ray engine needs one pass of sums.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from pluralrm.config import DECOMPOSE, DecomposeConfig
from pluralrm.data.features import PairFeatures
from pluralrm.data.splits import group_split
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.linear_head import LinearRewardHead, fit_general_head
from pluralrm.rewards.reward_model import RewardModel, data_fingerprint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolFit:
    """A reward model fitted on a pool by :func:`fit_pool`, and which of the pool's pairs did what.

    Attributes
    ----------
    model : RewardModel
    train : ndarray of int
        Pool indices the general head and the PCA heads were fitted on.
    val : ndarray of int
        Pool indices held out (whole prompts) to choose the general head's L2 penalty.
    """

    model: RewardModel
    train: np.ndarray
    val: np.ndarray


def split_pool(
    groups: Sequence[str], config: DecomposeConfig = DECOMPOSE, *, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pair indices (fitting part, held-out part): ``config.val_fraction`` of the prompts held out.

    ``seed`` defaults to ``config.seed``. Only the pairs' prompt groups are needed, so the Ray engine
    splits a pool it never loads.
    """
    train, val = group_split(
        groups, [1 - config.val_fraction, config.val_fraction], seed=config.seed if seed is None else seed
    )
    return train, val


def fit_pool(
    features: PairFeatures,
    config: DecomposeConfig = DECOMPOSE,
    *,
    seed: int | None = None,
    backbone_name: str = "",
) -> PoolFit:
    """The one pool recipe (module docstring): prompt-grouped split, penalty chosen on the held-out part,
    general head and PCA heads on the fitting part.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> D = rng.normal(size=(200, 4)) + np.array([1.0, 0, 0, 0])
    >>> pool = PairFeatures(chosen=D, rejected=np.zeros_like(D), ids=[str(i) for i in range(200)])
    >>> fit = fit_pool(pool, replace(DECOMPOSE, n_components=2))
    >>> len(fit.train), len(fit.val), fit.model.metadata["fit_pairs"]
    (160, 40, 160)
    """
    train, val = split_pool(features.groups, config, seed=seed)
    model = fit_reward_model(
        features.select(train), features.select(val), config=config, backbone_name=backbone_name
    )
    model.metadata = {**model.metadata, "val_pairs": len(val)}
    return PoolFit(model=model, train=train, val=val)


def fit_reward_model(
    train: PairFeatures,
    val: PairFeatures | None = None,
    *,
    config: DecomposeConfig = DECOMPOSE,
    backbone_name: str = "",
    **overrides,
) -> RewardModel:
    """General Bradley–Terry head and PCA heads of ``train``'s pair differences (the inner step of
    :func:`fit_pool`, for callers that made their own split).

    With ``val``, the general head's L2 penalty is chosen on it from ``config.alphas``; otherwise
    ``config.alpha``. ``config.n_components`` is capped at the feature dimension. Keyword ``overrides``
    replace fields of ``config`` (``fit_reward_model(train, n_components=8)``).

    The backbone name comes from the features (``featurize`` records it) or ``backbone_name``; it is
    never guessed from the fingerprint.
    """
    config = replace(config, **overrides)
    D = train.differences
    if val is not None:
        general, scores = fit_general_head(D, val.differences, alphas=config.alphas)
        logger.info("general head: validation accuracy by alpha %s → alpha=%g", scores, general.alpha)
    else:
        general = LinearRewardHead(alpha=config.alpha).fit(D)
    if config.heads == "pca":
        decomposed = DecomposedRewardModel(**pca_params(config, D.shape[1])).fit(D)
    elif config.heads == "users":
        decomposed = user_heads(train, config.n_components)
    else:
        raise ValueError(f"heads must be 'pca' or 'users' to fit (got {config.heads!r}; 'auto' is a choice)")
    return RewardModel(
        namespace=train.namespace,
        backbone_name=backbone_name or train.backbone_name,
        general=general,
        decomposed=decomposed,
        metadata={
            "fit_pairs": len(train),
            "fit_data_sha256": data_fingerprint(D),
            "source": train.source,
            "heads": config.heads,
        },
    )


def user_heads(
    features: PairFeatures, n_components: int | None, *, alpha: float = DECOMPOSE.alpha
) -> DecomposedRewardModel:
    """Heads along which the pool's *users* differ: the top right singular vectors of the matrix of
    every labelled user's own Bradley–Terry head (unlabelled pairs form one more "user").

    PCA of pooled differences finds where pairs vary, which in a pool of many users is mostly what the
    responses are about, not whom they please; a user's head, however noisy from ~50 pairs, points where
    that user's taste does, and the shared directions of a thousand such heads are the subspace users
    move in (the SVD start of LoRe, Bose et al. 2025). Each head is fitted on scale-normalized pairs so
    that users count alike; the directions are then measured on the pooled differences as any heads are.
    """
    labels = [user or "" for user in features.users]
    names = sorted(set(labels) - {""}) + ([""] if "" in labels else [])
    if len(names) < 2:
        raise ValueError(
            "heads='users' needs pairs labelled with two or more users (the pairs' 'user' field, or "
            f"NAME=PATH inputs); found {len(set(labels) - {''})}"
        )
    D = features.differences.astype(np.float64)
    scale = float(np.sqrt(np.mean(np.sum(D**2, axis=1)))) or 1.0
    rows: dict[str, list[int]] = {}
    for i, label in enumerate(labels):  # one pass, not a mask per user: 1,000 users × 50,000 pairs
        rows.setdefault(label, []).append(i)
    heads = np.stack([LinearRewardHead(alpha=alpha).fit(D[rows[name]] / scale).coef_ for name in names])
    rank = min(n_components or len(names), len(names), D.shape[1])
    _, _, vt = np.linalg.svd(heads, full_matrices=False)
    return DecomposedRewardModel.with_components(vt[:rank], D)


def pca_params(config: DecomposeConfig, n_features: int) -> dict:
    """The PCA heads' constructor parameters for ``config`` (``n_components`` capped at ``n_features``)."""
    k = None if config.n_components is None else min(config.n_components, n_features)
    return {"n_components": k, "center": config.center, "batch_size": config.batch_size}
