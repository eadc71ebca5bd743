"""Metrics as tidy tables, head selection on validation data, analysis of many rewarded responses per
prompt, plots (numpy, scipy + matplotlib only)."""

from pluralrm.evaluate.attributes import attribute_correlations
from pluralrm.evaluate.many.curves import agreement, best_of_n_curve, expected_best_of_n
from pluralrm.evaluate.many.responses import generator_stats, length_correlation
from pluralrm.evaluate.many.rewardbench import rewardbench_accuracy
from pluralrm.evaluate.metrics import bootstrap_interval, pair_correctness, pairwise_metrics
from pluralrm.evaluate.tables import accuracy_rows, best_head, write_csv

__all__ = [
    "accuracy_rows",
    "agreement",
    "attribute_correlations",
    "best_head",
    "best_of_n_curve",
    "bootstrap_interval",
    "expected_best_of_n",
    "generator_stats",
    "length_correlation",
    "pair_correctness",
    "pairwise_metrics",
    "rewardbench_accuracy",
    "write_csv",
]
