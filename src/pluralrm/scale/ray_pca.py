"""Fit PCA heads and the general head on pair features bigger than one machine's memory, on Ray.

Each :class:`DifferenceShard` actor reads a slice of rows of one ``featurize`` output (safetensors reads
only those rows) and keeps its ``D = H_chosen − H_rejected``. Everything the fit needs is a sum over rows:

* PCA heads: each shard returns the :class:`~pluralrm.rewards.decomposed.PairMoments` of its fit rows
  (``Σ D``, ``DᵀD``, float64); the driver merges them and builds the heads with
  :meth:`~pluralrm.rewards.DecomposedRewardModel.from_moments` (eigendecomposition, signs, explained
  variance). Only sums cross the network, d×d per shard.
* General head: the Bradley–Terry loss and gradient are sums over pairs
  (:func:`~pluralrm.rewards.math.bradley_terry_sums`), so each L-BFGS step of
  :meth:`~pluralrm.rewards.LinearRewardHead.fit_from_sums` asks every shard for its sums (a distributed
  gradient), and the validation accuracy that picks the L2 penalty is a count summed over shards.

The recipe is :func:`pluralrm.rewards.fitting.fit_pool`'s: the split is :func:`split_pool` on each pair's
prompt group (read from ``features.json``), so the heads are those of one process up to float64
summation order.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pluralrm.config import DECOMPOSE, ENGINE, DecomposeConfig, EngineConfig
from pluralrm.data.features import FEATURES_FILE, META_FILE
from pluralrm.rewards.decomposed import DecomposedRewardModel, PairMoments
from pluralrm.rewards.fitting import PoolFit, pca_params, split_pool
from pluralrm.rewards.linear_head import LinearRewardHead, choose_penalty
from pluralrm.rewards.math import bradley_terry_sums, pair_correctness, rms_row_norm
from pluralrm.scale.cluster import connect

logger = logging.getLogger(__name__)


class DifferenceShard:
    """Rows ``start:stop`` of one features file as pair differences, split into train and validation.

    Parameters
    ----------
    path : str
        A ``features.safetensors`` file (on a filesystem every node can read).
    start, stop : int
        The rows this shard holds.
    is_train : ndarray of bool, shape (stop - start,)
        Which of them are fit pairs (the others are validation pairs).
    batch_size : int
        Rows per accumulation step, as :class:`DecomposedRewardModel` uses.
    """

    def __init__(self, path: str, start: int, stop: int, is_train: np.ndarray, batch_size: int) -> None:
        from safetensors import safe_open

        with safe_open(path, framework="numpy") as handle:
            chosen = handle.get_slice("chosen")[start:stop]
            rejected = handle.get_slice("rejected")[start:stop]
        D = (chosen - rejected).astype(np.float32)  # as PairFeatures.differences
        self.train = D[is_train]
        self.val = D[~is_train]
        self.batch_size = batch_size

    def moments(self) -> tuple[PairMoments, bytes]:
        """The fit rows' :class:`PairMoments`, and their float32 bytes' digest (the driver chains the
        digests into one data fingerprint)."""
        if not len(self.train):
            return PairMoments.zeros(self.train.shape[1]), b""
        digest = hashlib.sha256(np.ascontiguousarray(self.train).tobytes()).digest()
        return PairMoments.of(self.train, batch_size=self.batch_size), digest

    def bradley_terry(self, w: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
        """:func:`bradley_terry_sums` of ``w`` over the fit rows divided by ``scale``."""
        return bradley_terry_sums(self.train.astype(np.float64) / scale, w)

    def val_correct(self, coef: np.ndarray) -> tuple[float, int]:
        """Correct validation pairs (a tie counts one half) and their number."""
        if not len(self.val):
            return 0.0, 0
        return float(pair_correctness(self.val.astype(np.float64) @ coef).sum()), len(self.val)


def _read_meta(directory: Path) -> dict:
    for name in (FEATURES_FILE, META_FILE):
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory}: missing {name}; is this a `pluralrm featurize` output?")
    meta = json.loads((directory / META_FILE).read_text())
    ids = meta["ids"]
    # As PairFeatures does when a file has no groups: each pair its own group.
    meta["groups"] = meta.get("groups") or [str(i if i is not None else k) for k, i in enumerate(ids)]
    return meta


def fit_pool_ray(
    inputs: Sequence[str | Path],
    config: DecomposeConfig = DECOMPOSE,
    *,
    engine: EngineConfig = ENGINE,
    seed: int | None = None,
) -> PoolFit:
    """:func:`pluralrm.rewards.fitting.fit_pool` on Ray shard actors: the same recipe, split and heads.

    Parameters
    ----------
    inputs : sequence of paths
        ``pluralrm featurize`` output directories made the same way (pooled, in order).
    config : DecomposeConfig
        Heads, centring, validation share, L2 penalties, seed: as ``pluralrm decompose``.
    engine : EngineConfig
        Cluster address and ``shard_rows`` (pairs per actor).
    seed : int, optional
        The split's seed (default ``config.seed``).
    """
    import ray

    directories = [Path(item) for item in inputs]
    metas = [_read_meta(d) for d in directories]
    for directory, meta in zip(directories[1:], metas[1:], strict=True):
        if meta["namespace"] != metas[0]["namespace"]:
            raise ValueError(
                f"cannot pool features made differently: {directories[0]} has {metas[0]['namespace']}, "
                f"{directory} has {meta['namespace']}"
            )
    groups = [g for meta in metas for g in meta["groups"]]
    train_idx, val_idx = split_pool(groups, config, seed=seed)
    is_train = np.zeros(len(groups), dtype=bool)
    is_train[train_idx] = True
    connect(engine)
    # A shard mostly holds memory: reserving CPUs would cap the shards at the cluster's CPU count (and
    # deadlock when there are more), so they reserve none and are spread over the nodes.
    actor = ray.remote(num_cpus=0, scheduling_strategy="SPREAD")(DifferenceShard)
    shards: list = []  # ray.actor.ActorHandle; ray types remote(**options)(cls) as a union with cls
    offset = 0
    for directory, meta in zip(directories, metas, strict=True):
        n = meta["n_pairs"]
        for start in range(0, n, engine.shard_rows):
            stop = min(n, start + engine.shard_rows)
            mask = is_train[offset + start : offset + stop]
            path = str((directory / FEATURES_FILE).resolve())
            shards.append(actor.remote(path, start, stop, mask, config.batch_size))
        offset += n
    logger.info("ray decompose: %d pairs in %d shards", len(groups), len(shards))
    try:
        moments, fingerprint = _moments(shards)
        decomposed = DecomposedRewardModel.from_moments(moments, **pca_params(config, moments.n_features))
        general = _general_head(shards, moments, config)
    finally:
        for shard in shards:
            ray.kill(shard)
    from pluralrm.rewards.reward_model import RewardModel

    model = RewardModel(
        namespace=metas[0]["namespace"],
        backbone_name=metas[0].get("backbone_name", ""),
        general=general,
        decomposed=decomposed,
        metadata={
            "fit_pairs": len(train_idx),
            "fit_data_sha256_of_shards": fingerprint,
            "source": " + ".join(m.get("source", "") for m in metas if m.get("source")),
            "val_pairs": len(val_idx),
        },
    )
    return PoolFit(model=model, train=train_idx, val=val_idx)


def _moments(shards: list) -> tuple[PairMoments, str]:
    """The shards' fit-row moments merged, and their digests chained into one fingerprint."""
    import ray

    parts = ray.get([shard.moments.remote() for shard in shards])
    moments = PairMoments.zeros(parts[0][0].n_features)
    chained = hashlib.sha256()
    for part, digest in parts:
        moments = moments.merge(part)
        chained.update(digest)
    return moments, chained.hexdigest()


def _general_head(shards: list, moments: PairMoments, config: DecomposeConfig) -> LinearRewardHead:
    """Bradley–Terry L-BFGS with distributed loss and gradient, one fit per penalty, best on validation."""
    import ray

    # LinearRewardHead.fit divides D by its RMS row norm, sqrt(Σ ‖d‖² / n).
    scale = rms_row_norm(moments.squared_norm_sum, moments.n)

    def sums(w: np.ndarray) -> tuple[float, np.ndarray]:
        parts = ray.get([shard.bradley_terry.remote(w, scale) for shard in shards])
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    def fit(alpha: float) -> LinearRewardHead:
        return LinearRewardHead.fit_from_sums(sums, moments.n, moments.n_features, scale, alpha=alpha)

    def accuracy(head: LinearRewardHead) -> float:
        counts = ray.get([shard.val_correct.remote(head.coef_) for shard in shards])
        total = sum(c[1] for c in counts)
        return sum(c[0] for c in counts) / total if total else 0.0

    general, scores = choose_penalty(fit, accuracy, config.alphas)
    logger.info("general head: validation accuracy by alpha %s → alpha=%g", scores, general.alpha)
    return general
