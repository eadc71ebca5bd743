"""Decomposed reward models: orthogonal reward directions from the principal axes of ``D``.

Each principal direction ``v_j`` of the pair differences ``D = H_chosen − H_rejected`` is a reward head
``r_j(x, y) = v_j · h(x, y)``; a user is a weight vector over heads. The covariance is accumulated in
streaming batches (float64 d×d sums), so memory is O(d²) whatever the number of pairs, and the exact
eigendecomposition makes the result deterministic (no randomized SVD).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pluralrm.config import DECOMPOSE
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.validation import check_is_fitted, check_matrix, check_vector

# Fitted arrays, as written by ``to_arrays`` and read back by ``from_arrays`` (in this order).
_ARRAYS = ("components", "explained_variance", "explained_variance_ratio", "mean", "head_scale")


def head_set_fingerprint(components: np.ndarray) -> str:
    """sha256 of the heads' float64 bytes: what a user's weights over heads are tied to."""
    return hashlib.sha256(np.ascontiguousarray(components, dtype=np.float64).tobytes()).hexdigest()


@dataclass(frozen=True)
class PairMoments:
    """The sums PCA heads are made from: ``Σ D``, ``DᵀD`` (float64), the number of rows, and ``Σ ‖d‖²``
    (the scale a Bradley–Terry fit divides ``D`` by, summed as :meth:`LinearRewardHead.fit` sums it).

    Sums over disjoint sets of pairs add (:meth:`merge`), so pairs beyond one machine's memory are fitted
    from per-shard moments (:mod:`pluralrm.scale.ray_pca`) exactly as from one array, and
    :meth:`DecomposedRewardModel.from_moments` turns them into heads.

    Examples
    --------
    >>> D = np.arange(12.0).reshape(4, 3)
    >>> halves = PairMoments.of(D[:2]).merge(PairMoments.of(D[2:]))
    >>> bool(np.array_equal(halves.outer, PairMoments.of(D).outer)), halves.n
    (True, 4)
    """

    total: np.ndarray
    outer: np.ndarray
    n: int
    squared_norm_sum: float = 0.0

    @classmethod
    def zeros(cls, n_features: int) -> PairMoments:
        return cls(np.zeros(n_features), np.zeros((n_features, n_features)), 0)

    @classmethod
    def of(cls, D: np.ndarray, *, batch_size: int = DECOMPOSE.batch_size) -> PairMoments:
        """Moments of ``D`` (n_pairs, n_features), accumulated ``batch_size`` rows at a time."""
        D = check_matrix(D, "D")
        moments = cls.zeros(D.shape[1])
        for start in range(0, len(D), batch_size):
            moments = moments.merge(cls.of_batch(D[start : start + batch_size]))
        return moments

    @classmethod
    def of_batch(cls, batch: np.ndarray) -> PairMoments:
        batch = np.asarray(batch, dtype=np.float64)
        return cls(batch.sum(axis=0), batch.T @ batch, len(batch), float(np.sum(batch**2, axis=1).sum()))

    @property
    def n_features(self) -> int:
        return self.total.shape[0]

    def merge(self, other: PairMoments) -> PairMoments:
        """The moments of both sets of pairs (``ValueError`` if their feature counts differ)."""
        if other.n_features != self.n_features:
            raise ValueError(f"cannot merge moments of {self.n_features} and {other.n_features} features")
        return PairMoments(
            self.total + other.total,
            self.outer + other.outer,
            self.n + other.n,
            self.squared_norm_sum + other.squared_norm_sum,
        )

    __add__ = merge


class DecomposedRewardModel:
    """PCA reward heads of pair differences.

    Parameters
    ----------
    n_components : int or None
        Heads to keep (at most ``n_features``); ``None`` keeps all.
    center : bool
        ``True`` (as the reference DRM code, scikit-learn PCA's default): principal axes of the
        *covariance* of ``D`` — the mean preference direction is removed first. ``False`` (pluralrm's
        default, :class:`pluralrm.config.DecomposeConfig`): axes of the uncentred second moment
        ``DᵀD / n``, so the mean preference direction can itself be a head.
    batch_size : int
        Rows per accumulation step in :meth:`fit`.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Orthonormal heads, sorted by explained variance. Each sign is fixed so that the head prefers the
        chosen response on average over the fit data (``mean(D @ v) ≥ 0``); the reference's "negated
        heads" are ``-components_`` (see :meth:`scores` with ``include_negated``), never stored twice.
    explained_variance_, explained_variance_ratio_ : ndarray of shape (n_components,)
    mean_ : ndarray of shape (n_features,)
        Mean of ``D`` (the consensus preference direction, unnormalized).
    head_scale_ : ndarray of shape (n_components,)
        Root-mean-square score ``sqrt(mean((D @ v_j)²))`` of each head on the fit data.
    n_samples_seen_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> D = rng.normal(size=(500, 4)) * np.array([3.0, 1.0, 0.5, 0.1])
    >>> model = DecomposedRewardModel(n_components=2).fit(D)
    >>> np.round(np.abs(model.components_), 1)
    array([[1., 0., 0., 0.],
           [0., 1., 0., 0.]])
    """

    # Learned state, set by fit / from_arrays / with_components (declared for the type checker only:
    # an unfitted model has none of these attributes, which is what check_is_fitted looks for).
    components_: np.ndarray
    explained_variance_: np.ndarray
    explained_variance_ratio_: np.ndarray
    mean_: np.ndarray
    head_scale_: np.ndarray
    n_samples_seen_: int
    n_features_in_: int
    _sum: np.ndarray  # running Σ D and Σ DᵀD while fitting
    _outer: np.ndarray

    def __init__(
        self,
        *,
        n_components: int | None = None,
        center: bool = DECOMPOSE.center,
        batch_size: int = DECOMPOSE.batch_size,
    ) -> None:
        self.n_components = n_components
        self.center = center
        self.batch_size = batch_size

    def get_params(self) -> dict:
        """The constructor's parameters (what a saved model's config records)."""
        return {"n_components": self.n_components, "center": self.center, "batch_size": self.batch_size}

    # --- persistence: the estimator owns its saved state ---------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every fitted array by name (float64), plus ``n_samples_seen`` as a one-element array."""
        check_is_fitted(self, "components_")
        arrays = {name: np.asarray(getattr(self, f"{name}_"), dtype=np.float64) for name in _ARRAYS}
        return arrays | {"n_samples_seen": np.array([self.n_samples_seen_], dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], **params) -> DecomposedRewardModel:
        """Rebuild a fitted model from :meth:`to_arrays`' output, checking names, shapes and values.

        Raises ``ValueError`` naming the array that is missing, misshapen or not finite.
        """
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"missing arrays {missing} (PCA heads need {list(_ARRAYS)})")
        model = cls(**params)
        components = check_matrix(arrays["components"], "components").astype(np.float64)
        k, d = components.shape
        expected = {"explained_variance": k, "explained_variance_ratio": k, "mean": d, "head_scale": k}
        for name, length in expected.items():
            setattr(model, f"{name}_", check_vector(arrays[name], name, length=length))
        model.components_ = components
        seen = np.asarray(arrays.get("n_samples_seen", [0])).reshape(-1)
        model.n_samples_seen_ = int(seen[0]) if seen.size == 1 else 0
        model.n_features_in_ = d
        return model

    @classmethod
    def with_components(cls, components: np.ndarray, D: np.ndarray) -> DecomposedRewardModel:
        """Heads given from outside (e.g. random directions), measured on differences ``D``.

        The heads are normalized, signed to prefer chosen on ``D`` and given the same ``head_scale_``,
        ``mean_`` and explained variance (uncentred) as fitted heads, so adapters treat both alike.
        """
        components = check_matrix(components, "components").astype(np.float64)
        D = check_matrix(D, "D", n_features=components.shape[1]).astype(np.float64)
        components = components / np.linalg.norm(components, axis=1, keepdims=True)
        mean = D.mean(axis=0)
        projected_mean = components @ mean
        components = components * np.where(projected_mean < 0, -1.0, 1.0)[:, None]
        second = np.mean((D @ components.T) ** 2, axis=0)
        model = cls(n_components=len(components), center=False)
        model.components_ = components
        model.explained_variance_ = second
        model.explained_variance_ratio_ = second / max(float(np.mean(np.sum(D**2, axis=1))), 1e-300)
        model.mean_ = mean
        model.head_scale_ = np.sqrt(second)
        model.n_samples_seen_ = len(D)
        model.n_features_in_ = components.shape[1]
        return model

    @classmethod
    def from_moments(cls, moments: PairMoments, **params) -> DecomposedRewardModel:
        """Heads from moment sums (e.g. merged from shards), as :meth:`fit` on the pairs they sum.

        ``params`` are the constructor's (``n_components``, ``center``, ``batch_size``).
        """
        model = cls(**params)
        model._moments = moments
        return model._finalize()

    # --- fitting ------------------------------------------------------------------------------------

    def fit(self, D: np.ndarray | Iterable[np.ndarray]) -> DecomposedRewardModel:
        """Fit on ``D`` of shape (n_pairs, n_features), or on an iterable of such batches (N > RAM)."""
        self._reset()
        batches = (
            (D[i : i + self.batch_size] for i in range(0, len(D), self.batch_size))
            if isinstance(D, np.ndarray)
            else D
        )
        for batch in batches:
            self._accumulate(batch)
        if not getattr(self, "n_samples_seen_", 0):
            raise ValueError("D has no rows; need at least 2 pairs to fit")
        return self._finalize()

    def partial_fit(self, D: np.ndarray) -> DecomposedRewardModel:
        """Add a batch of differences and refresh the heads (streaming use)."""
        self._accumulate(D)
        return self._finalize()

    def _reset(self) -> None:
        for name in ("_moments", "n_samples_seen_"):
            if hasattr(self, name):
                delattr(self, name)

    def _accumulate(self, batch: np.ndarray) -> None:
        previous = getattr(self, "_moments", None)
        n_features = None if previous is None else previous.n_features
        batch = check_matrix(batch, "D", n_features=n_features)
        moments = PairMoments.of_batch(batch)
        self._moments = moments if previous is None else previous.merge(moments)
        self.n_samples_seen_ = self._moments.n

    def _finalize(self) -> DecomposedRewardModel:
        moments = self._moments
        n, d = moments.n, moments.n_features
        if n < 2:
            raise ValueError(f"need at least 2 pairs to fit, got {n}")
        k = d if self.n_components is None else self.n_components
        if not 1 <= k <= d:
            raise ValueError(f"n_components must be in [1, {d}] for {d} features, got {self.n_components}")
        mean = moments.total / n
        if self.center:
            moment = (moments.outer - n * np.outer(mean, mean)) / (n - 1)
        else:
            moment = moments.outer / n
        eigenvalues, eigenvectors = np.linalg.eigh((moment + moment.T) / 2)
        order = np.argsort(eigenvalues)[::-1][:k]
        components = eigenvectors[:, order].T  # (k, d)
        # Sign: prefer chosen on the fit data; ties (mean projection 0) fall back to the largest |entry|.
        projected_mean = components @ mean
        fallback = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
        signs = np.where(projected_mean != 0, np.sign(projected_mean), fallback)
        self.components_ = components * signs[:, None]
        total = max(float(np.trace(moment)), np.finfo(float).tiny)
        self.explained_variance_ = np.clip(eigenvalues[order], 0.0, None)
        self.explained_variance_ratio_ = self.explained_variance_ / total
        self.mean_ = mean
        # Root-mean-square score of each head on the fit pairs, the scale adapters z-score by.
        second_moment = moments.outer / n
        self.head_scale_ = np.sqrt(
            np.maximum(np.einsum("kd,de,ke->k", self.components_, second_moment, self.components_), 0.0)
        )
        self.n_features_in_ = d
        self.n_samples_seen_ = n
        return self

    # --- using the heads ----------------------------------------------------------------------------

    def scores(self, H: np.ndarray, *, include_negated: bool = False) -> np.ndarray:
        """Each head's reward of each row of ``H`` (responses or pair differences), shape (n, k).

        With ``include_negated`` the reference DRM convention of 2k heads ``[v_1..v_k, −v_1..−v_k]``.
        """
        check_is_fitted(self, "components_")
        s = check_matrix(H, "H", n_features=self.n_features_in_) @ self.components_.T
        return np.concatenate([s, -s], axis=1) if include_negated else s

    def fingerprint(self) -> str:
        """:func:`head_set_fingerprint` of these heads."""
        check_is_fitted(self, "components_")
        return head_set_fingerprint(self.components_)

    def combine(self, weights: np.ndarray) -> LinearRewardHead:
        """The reward ``Σ_j w_j r_j`` as one :class:`LinearRewardHead`."""
        check_is_fitted(self, "components_")
        w = check_vector(weights, "weights", length=len(self.components_))
        return LinearRewardHead.from_coef(w @ self.components_)

    def head(self, j: int) -> LinearRewardHead:
        """Head ``j`` alone (0-based; ``-components_[j]`` is its negation)."""
        check_is_fitted(self, "components_")
        return LinearRewardHead.from_coef(self.components_[j])
