"""Many responses per prompt: score them with any pluralrm reward, then select (best-of-N, RAFT, pairs)."""

from pluralrm.select.exports import (
    EXPORTS,
    Selection,
    SelectionError,
    best_of_n,
    best_vs_random,
    best_vs_worst,
    per_user_best_of_n,
    top_fraction,
    top_k_per_prompt,
)
from pluralrm.select.scoring import describe_reward, featurize_ranked, rewards_from_features, with_rewards

__all__ = [
    "EXPORTS",
    "Selection",
    "SelectionError",
    "best_of_n",
    "best_vs_random",
    "best_vs_worst",
    "describe_reward",
    "featurize_ranked",
    "per_user_best_of_n",
    "rewards_from_features",
    "top_fraction",
    "top_k_per_prompt",
    "with_rewards",
]
