"""Reward heads on feature vectors: Bradley–Terry heads and PCA-decomposed heads (numpy only).

``RewardModel`` (backbone + heads) is imported lazily from :mod:`pluralrm.rewards.reward_model`; this
package itself never imports torch.
"""

from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.linear_head import LinearRewardHead, fit_general_head
from pluralrm.rewards.math import bradley_terry_loss, pair_differences, sigmoid, softmax_weights

__all__ = [
    "DecomposedRewardModel",
    "LinearRewardHead",
    "bradley_terry_loss",
    "fit_general_head",
    "pair_differences",
    "sigmoid",
    "softmax_weights",
]
