"""What each head means: correlation of head scores with known attributes (e.g. synthetic ground truth)."""

from __future__ import annotations

import numpy as np


def attribute_correlations(head_scores: np.ndarray, attributes: np.ndarray) -> np.ndarray:
    """Pearson correlation of each head (columns of ``head_scores``) with each attribute.

    Parameters
    ----------
    head_scores : ndarray of shape (n, k)
    attributes : ndarray of shape (n, a)

    Returns
    -------
    ndarray of shape (k, a); 0 where a column is constant.
    """
    S = head_scores - head_scores.mean(axis=0)
    A = attributes - attributes.mean(axis=0)
    norms = np.outer(np.linalg.norm(S, axis=0), np.linalg.norm(A, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (S.T @ A) / norms
    return np.nan_to_num(corr)
