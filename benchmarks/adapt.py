"""Adapter fit time for up to 1,000 heads × 1,000 pairs (target: milliseconds), one run.

Usage::

    python benchmarks/adapt.py
"""

from __future__ import annotations

import time

import numpy as np

from pluralrm.adapt import BestHeadAdapter, HyReAdapter, LogisticAdapter
from pluralrm.adapt.priors import GaussianPrior, GaussianPriorAdapter
from pluralrm.config import ADAPT
from pluralrm.rewards.linear_head import LinearRewardHead


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'heads':>6s} {'pairs':>6s} {'HyRe ms':>9s} {'logistic ms':>12s} {'best-head ms':>13s}")
    for n_heads, n_pairs in ((32, 15), (32, 1000), (256, 100), (1000, 15), (1000, 1000)):
        S = rng.normal(size=(n_pairs, n_heads))
        hyre = best_of(lambda S=S: HyReAdapter().fit(np.concatenate([S, -S], axis=1)))
        logistic = best_of(lambda S=S: LogisticAdapter(alpha=1.0).fit(S))
        best = best_of(lambda S=S: BestHeadAdapter().fit(S))
        print(f"{n_heads:6d} {n_pairs:6d} {1e3 * hyre:9.2f} {1e3 * logistic:12.2f} {1e3 * best:13.2f}")
    print(f"\n{'d':>6s} {'heads':>6s} {'pairs':>6s} {'map ms (evidence search)':>26s} {'bt ms':>8s}")
    for d, n_heads, n_pairs in (
        (384, 32, 15),
        (384, 384, 15),
        (1024, 64, 15),
        (1024, 64, 100),
        (1024, 1000, 15),
    ):
        components = np.linalg.qr(rng.normal(size=(d, n_heads)))[0].T
        prior = GaussianPrior.from_heads(rng.normal(size=d), components, np.ones(n_heads), scale=np.sqrt(d))
        D = rng.normal(size=(n_pairs, d))
        fit = best_of(lambda D=D, prior=prior: GaussianPriorAdapter(prior=prior).fit(D))
        bt = best_of(lambda D=D: LinearRewardHead(alpha=ADAPT.bt_alpha).fit(D))  # the bt adapter (no heads)
        print(f"{d:6d} {n_heads:6d} {n_pairs:6d} {1e3 * fit:26.2f} {1e3 * bt:8.2f}")


if __name__ == "__main__":
    main()
