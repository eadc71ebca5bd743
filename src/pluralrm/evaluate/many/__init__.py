"""Many rewarded responses per prompt: agreement between rewards, best-of-n curves, reward vs length and
generator, RewardBench accuracy, personalized best-of-N, and the ``analyze`` report that ties them together.

Means are over prompts with bootstrap intervals over prompts (:mod:`pluralrm.evaluate.many.curves`).
"""

from pluralrm.evaluate.many.curves import agreement, best_of_n_curve, expected_best_of_n
from pluralrm.evaluate.many.responses import generator_stats, length_correlation
from pluralrm.evaluate.many.rewardbench import rewardbench_accuracy

__all__ = [
    "agreement",
    "best_of_n_curve",
    "expected_best_of_n",
    "generator_stats",
    "length_correlation",
    "rewardbench_accuracy",
]
