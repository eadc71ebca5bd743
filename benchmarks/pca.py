"""Streaming PCA heads vs scikit-learn PCA on the same difference matrix, in one run.

Fits :class:`DecomposedRewardModel` (exact eigendecomposition of a covariance accumulated in batches) and
``sklearn.decomposition.PCA`` (full SVD, its default for this shape) on one 100,000 × 576 float32 matrix
with a decaying spectrum like real pair differences, and prints fit time, peak memory allocated during
the fit (tracemalloc; the input matrix is allocated before and not counted), and the principal angles
between the two top-k subspaces.

Usage::

    python benchmarks/pca.py                 # n=100000, d=576, k=32
    python benchmarks/pca.py --n 20000 --d 384
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from pluralrm.rewards import DecomposedRewardModel


def make_differences(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Rows with a power-law spectrum (as hidden-state differences have) plus a mean direction."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    scales = 1.0 / np.sqrt(np.arange(1, d + 1))
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 10_000):  # build in chunks to keep the generator itself small
        block = rng.normal(size=(min(10_000, n - start), d)) * scales
        out[start : start + len(block)] = block @ basis.T + 0.1 * basis[:, 0]
    return out


def measure(fn) -> tuple[object, float, float]:
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=576)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8192)
    args = parser.parse_args()

    D = make_differences(args.n, args.d)
    print(f"D: {args.n} × {args.d} float32 ({D.nbytes / 2**20:.0f} MiB, allocated before timing), k={args.k}")
    ours, t_ours, m_ours = measure(
        lambda: DecomposedRewardModel(n_components=args.k, center=True, batch_size=args.batch_size).fit(D)
    )
    theirs, t_sk, m_sk = measure(lambda: PCA(n_components=args.k, svd_solver="full").fit(D))
    angles = np.degrees(subspace_angles(ours.components_.T, theirs.components_.T))
    per_head = np.degrees(
        np.arccos(np.clip(np.abs(np.sum(ours.components_ * theirs.components_, axis=1)), 0, 1))
    )
    ratio_err = np.abs(ours.explained_variance_ratio_ - theirs.explained_variance_ratio_).max()

    print(f"\n{'method':34s} {'fit s':>8s} {'peak MiB':>9s}")
    print(f"{'pluralrm DecomposedRewardModel':34s} {t_ours:8.2f} {m_ours:9.1f}")
    print(f"{'scikit-learn PCA (full SVD)':34s} {t_sk:8.2f} {m_sk:9.1f}")
    print(f"\nspeed-up {t_sk / t_ours:.1f}×, memory {m_sk / max(m_ours, 1e-9):.0f}× less")
    print(
        f"principal angles between the top-{args.k} subspaces: "
        f"max {angles.max():.2e}°, mean {angles.mean():.2e}°"
    )
    print(
        f"per-head angle (same index): max {per_head.max():.2e}°; "
        f"explained-variance-ratio max |diff| {ratio_err:.1e}"
    )


if __name__ == "__main__":
    main()
