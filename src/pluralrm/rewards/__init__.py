"""Reward heads on feature vectors: Bradley–Terry heads, PCA-decomposed heads, the reward model that joins
them to a backbone, and the one recipe that fits a pool (numpy only).

:class:`RewardModel` loads its backbone only when asked to featurize texts: importing this package never
imports torch.
"""

from pluralrm.rewards.decomposed import DecomposedRewardModel, PairMoments
from pluralrm.rewards.fitting import PoolFit, fit_pool, fit_reward_model
from pluralrm.rewards.linear_head import LinearRewardHead, fit_general_head
from pluralrm.rewards.math import bradley_terry_loss, pair_differences, sigmoid, softmax_weights
from pluralrm.rewards.reward_model import RewardModel

__all__ = [
    "DecomposedRewardModel",
    "LinearRewardHead",
    "PairMoments",
    "PoolFit",
    "RewardModel",
    "bradley_terry_loss",
    "fit_general_head",
    "fit_pool",
    "fit_reward_model",
    "pair_differences",
    "sigmoid",
    "softmax_weights",
]
