"""Fit PCA heads and the general head on pair features bigger than one machine's memory, on Ray.

Each :class:`DifferenceShard` actor reads a slice of rows of one ``featurize`` output (safetensors reads
only those rows) and keeps its ``D = H_chosen − H_rejected``. Everything the fit needs is a sum over rows:

* PCA heads: the streaming PCA of :class:`~pluralrm.rewards.DecomposedRewardModel` keeps ``Σ D`` and
  ``DᵀD`` (float64); shards compute these with the estimator's own accumulation step, the driver adds them
  and runs the estimator's own finish step (eigendecomposition, signs, explained variance). Only sums
  cross the network, d×d per shard.
* General head: the Bradley–Terry loss and gradient of :class:`~pluralrm.rewards.LinearRewardHead` are
  means over pairs, so each L-BFGS step asks every shard for its sums (a distributed gradient), and the
  validation accuracy that picks the L2 penalty is a count summed over shards.

The train/validation split is the one :func:`pluralrm.data.splits.group_split` makes in one process (it
needs only each pair's prompt group, read from ``features.json``), so the heads are those of one process
up to float64 summation order.
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
from pluralrm.scale.engine import connect

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

    def sums(self) -> tuple[np.ndarray, np.ndarray, int, bytes]:
        """``Σ D``, ``DᵀD`` and n over train rows (the streaming PCA's sums), and their float32 bytes' digest.

        The bytes are hashed here so the driver can chain the digests into one data fingerprint.
        """
        from pluralrm.rewards.decomposed import DecomposedRewardModel

        if not len(self.train):
            d = self.train.shape[1]
            return np.zeros(d), np.zeros((d, d)), 0, b""
        pca = DecomposedRewardModel(batch_size=self.batch_size)
        for i in range(0, len(self.train), self.batch_size):
            pca._accumulate(self.train[i : i + self.batch_size])  # the estimator's own accumulation step
        digest = hashlib.sha256(np.ascontiguousarray(self.train).tobytes()).digest()
        return pca._sum, pca._outer, pca.n_samples_seen_, digest

    def bradley_terry(self, w: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
        """Sums over train rows of ``log(1 + e^{−z·w})`` and of its gradient, ``z = d / scale``."""
        from pluralrm.rewards.math import bradley_terry_loss, sigmoid

        Z = self.train.astype(np.float64) / scale
        margins = Z @ w
        return float(bradley_terry_loss(margins).sum()), -(Z.T @ sigmoid(-margins))

    def val_correct(self, coef: np.ndarray) -> tuple[float, int]:
        """Correct validation pairs (a tie counts one half) and their number."""
        from pluralrm.rewards.math import pair_correctness

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


def fit_reward_model_ray(
    inputs: Sequence[str | Path],
    *,
    config: DecomposeConfig = DECOMPOSE,
    engine: EngineConfig = ENGINE,
):
    """:func:`pluralrm.rewards.fitting.fit_reward_model` with a validation split, on Ray shard actors.

    Parameters
    ----------
    inputs : sequence of paths
        ``pluralrm featurize`` output directories made the same way (pooled, in order).
    config : DecomposeConfig
        Heads, centring, validation share, L2 penalties, seed: as ``pluralrm decompose``.
    engine : EngineConfig
        Cluster address and ``shard_rows`` (pairs per actor).

    Returns
    -------
    model : RewardModel
    n_train, n_val : int
        Pairs the heads were fitted on and pairs held out to pick the general head's penalty.
    """
    import ray

    from pluralrm.data.splits import group_split
    from pluralrm.rewards.reward_model import RewardModel

    directories = [Path(item) for item in inputs]
    metas = [_read_meta(d) for d in directories]
    for directory, meta in zip(directories[1:], metas[1:], strict=True):
        if meta["namespace"] != metas[0]["namespace"]:
            raise ValueError(
                f"cannot pool features made differently: {directories[0]} has {metas[0]['namespace']}, "
                f"{directory} has {meta['namespace']}"
            )
    groups = [g for meta in metas for g in meta["groups"]]
    train_idx, val_idx = group_split(groups, [1 - config.val_fraction, config.val_fraction], seed=config.seed)
    is_train = np.zeros(len(groups), dtype=bool)
    is_train[train_idx] = True
    connect(engine)
    # A shard mostly holds memory: reserving CPUs would cap the shards at the cluster's CPU count (and
    # deadlock when there are more), so they reserve none and are spread over the nodes.
    actor = ray.remote(num_cpus=0, scheduling_strategy="SPREAD")(DifferenceShard)
    shards, offset = [], 0
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
        decomposed, fingerprint, scale = _pca(shards, config)
        general = _general_head(shards, scale, decomposed.n_samples_seen_, decomposed.n_features_in_, config)
    finally:
        for shard in shards:
            ray.kill(shard)
    model = RewardModel(
        namespace=metas[0]["namespace"],
        backbone_name=metas[0].get("backbone_name", ""),
        general=general,
        decomposed=decomposed,
        metadata={
            "fit_pairs": len(train_idx),
            "fit_data_sha256_of_shards": fingerprint,
            "source": " + ".join(m.get("source", "") for m in metas if m.get("source")),
        },
    )
    return model, len(train_idx), len(val_idx)


def _pca(shards: list, config: DecomposeConfig):
    """Add the shards' sums into one estimator and finish it; the chained digest; the BT scale."""
    import ray

    from pluralrm.rewards.decomposed import DecomposedRewardModel

    parts = ray.get([shard.sums.remote() for shard in shards])
    d = parts[0][0].shape[0]
    k = None if config.n_components is None else min(config.n_components, d)
    pca = DecomposedRewardModel(n_components=k, center=config.center, batch_size=config.batch_size)
    pca._sum, pca._outer = np.zeros(d), np.zeros((d, d))
    pca.n_samples_seen_ = 0
    chained = hashlib.sha256()
    for total, outer, n, digest in parts:
        pca._sum += total
        pca._outer += outer
        pca.n_samples_seen_ += n
        chained.update(digest)
    pca._finalize()  # the estimator's own finish step: eigendecomposition, signs, variance
    # LinearRewardHead.fit divides D by its RMS row norm: sqrt(mean ‖d‖²) = sqrt(trace(DᵀD) / n).
    scale = float(np.sqrt(np.trace(pca._outer) / pca.n_samples_seen_)) or 1.0
    return pca, chained.hexdigest(), scale


def _general_head(shards: list, scale: float, n: int, d: int, config: DecomposeConfig):
    """Bradley–Terry L-BFGS with distributed loss and gradient, one fit per penalty, best on validation."""
    import ray
    from scipy.optimize import minimize

    from pluralrm.rewards.linear_head import LinearRewardHead

    best, best_accuracy = None, -1.0
    for alpha in config.alphas:

        def objective(w: np.ndarray, alpha: float = alpha) -> tuple[float, np.ndarray]:
            parts = ray.get([shard.bradley_terry.remote(w, scale) for shard in shards])
            loss = sum(p[0] for p in parts) / n + 0.5 * alpha * w @ w
            grad = sum(p[1] for p in parts) / n + alpha * w
            return float(loss), grad

        head = LinearRewardHead(alpha=alpha)  # its max_iter, as LinearRewardHead.fit uses
        options = {"maxiter": head.max_iter}
        result = minimize(objective, np.zeros(d), jac=True, method="L-BFGS-B", options=options)
        head = LinearRewardHead.from_coef(result.x / scale, alpha=alpha)
        head.n_iter_ = int(result.nit)
        counts = ray.get([shard.val_correct.remote(head.coef_) for shard in shards])
        total = sum(c[1] for c in counts)
        accuracy = sum(c[0] for c in counts) / total if total else 0.0
        logger.info("general head: alpha %g → validation accuracy %.4f", alpha, accuracy)
        if best is None or accuracy > best_accuracy:
            best, best_accuracy = head, accuracy
    return best
