"""Adapter fit time for up to 1,000 heads × 1,000 pairs (target: milliseconds), one run.

Usage::

    python benchmarks/adapt.py
"""

from __future__ import annotations

import time

import numpy as np

from pluralrm.adapt import BestHeadAdapter, HyReAdapter, LogisticAdapter


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


if __name__ == "__main__":
    main()
