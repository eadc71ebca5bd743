"""Input checks at the boundary of every numpy estimator: one place, one message style.

Messages name the argument, the shape received and the shape expected, as scikit-learn's do.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


class NotFittedError(RuntimeError):
    """An estimator method that needs ``fit`` was called before it."""


def check_matrix(X: ArrayLike, name: str = "X", *, n_features: int | None = None) -> np.ndarray:
    """A finite 2-D float array (float64 kept, everything else converted to float32 or float64)."""
    array = np.asarray(X)
    if array.ndim != 2:
        expected = f"(n, {n_features})" if n_features is not None else "(n, n_features)"
        raise ValueError(f"{name} must be 2-D of shape {expected}, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
        array = array.astype(np.float64)
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(
            f"{name} has {array.shape[1]} features per row, expected {n_features} (shape "
            f"(n, {n_features})); was it made with another backbone or layer?"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def check_vector(x: ArrayLike, name: str, *, length: int | None = None) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 1 or (length is not None and array.shape[0] != length):
        raise ValueError(
            f"{name} must have shape ({length if length is not None else 'n'},), got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def check_is_fitted(estimator: object, attribute: str) -> None:
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call fit(...) before using it"
        )
