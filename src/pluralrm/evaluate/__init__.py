"""Metrics as tidy tables, head selection on validation data, plots (numpy + matplotlib only)."""

from pluralrm.evaluate.attributes import attribute_correlations
from pluralrm.evaluate.metrics import bootstrap_interval, pair_correctness, pairwise_metrics
from pluralrm.evaluate.tables import accuracy_rows, best_head, write_csv

__all__ = [
    "accuracy_rows",
    "attribute_correlations",
    "best_head",
    "bootstrap_interval",
    "pair_correctness",
    "pairwise_metrics",
    "write_csv",
]
