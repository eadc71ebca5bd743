"""Why the pool does not lift the population's new users on MiniLM features: where their taste lies.

For each unseen user of ``benchmarks/population_kshot.py``'s population (same seed, same prompts) this
fits the *linear oracle* (a BT head on 8,000 noise-free labels of their true utility, on pool pairs) and
prints, per alpha:

* the oracle's accuracy next to the Bayes ceiling: how much of the taste a linear reward on these features
  can express at all;
* the cosine between the oracle head and the span of the pool model's heads (PCA of the pooled
  differences, and the users' own heads, ``--heads users``), in the metric of the pair differences (so a
  direction no pair moves along does not count): how much of that taste the pool's heads hold;
* the accuracy of the oracle head projected onto each span: the most an adapter over those heads reaches.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/population_spans.py [--layer 3]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from pluralrm.backbone import FeatureCache
from pluralrm.config import DECOMPOSE, FEATURIZE, POPULATION
from pluralrm.data import load_ranked
from pluralrm.data.population import make_population, queries_from_ranked
from pluralrm.pool import features_for_layers
from pluralrm.rewards.fitting import fit_pool
from population_kshot import (  # the sibling benchmark (run from the repo root)
    DOMAIN_SET,
    by_user,
    head_accuracy,
    oracle_heads,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--out", default="out/population-spans")
    args = parser.parse_args()
    if not DOMAIN_SET.exists():
        sys.exit(f"skip: {DOMAIN_SET} is absent (the real data lives in ../shared/data beside the repo)")
    queries = queries_from_ranked(load_ranked(DOMAIN_SET, skip_invalid=True).records, str(DOMAIN_SET))
    for alpha in args.alphas:
        made = make_population(queries, replace(POPULATION, alpha=alpha))
        paths = made.save(f"{args.out}/alpha-{alpha}")
        cache = FeatureCache.default()
        seen = features_for_layers(paths["seen"], (args.layer,), featurize=FEATURIZE, cache=cache)[args.layer]
        tests = by_user(
            features_for_layers(paths["unseen-test"], (args.layer,), featurize=FEATURIZE, cache=cache)[
                args.layer
            ]
        )
        heads = oracle_heads(made, seen, list(tests))
        D = seen.differences.astype(np.float64)
        metric = D.T @ D / len(D)  # cosines in the geometry of the pair differences
        ceiling = made.bayes_ceiling()
        oracle = [head_accuracy(h, tests[u]) for u, h in heads.items()]
        print(f"\nalpha {alpha}, layer {args.layer}: {len(heads)} unseen users")
        print(
            f"  Bayes ceiling {np.mean([ceiling[u] for u in heads]):.3f}; linear oracle {np.mean(oracle):.3f}"
        )
        for kind in ("pca", "users"):
            for rank in (4, 8, 32):
                model = fit_pool(seen, replace(DECOMPOSE, heads=kind, n_components=rank)).model
                V = model.decomposed.components_.T  # (d, r)
                cosines, accuracies = [], []
                for user, h in heads.items():
                    # the metric-orthogonal projection of h onto span(V)
                    coef = np.linalg.lstsq(V.T @ metric @ V, V.T @ metric @ h, rcond=None)[0]
                    p = V @ coef
                    cosines.append(float(p @ metric @ h / np.sqrt((h @ metric @ h) * (p @ metric @ p))))
                    accuracies.append(head_accuracy(p, tests[user]))
                print(
                    f"  {kind:5s} heads, rank {rank:2d}: cosine with the oracle {np.mean(cosines):.2f}; "
                    f"oracle projected onto them {np.mean(accuracies):.3f}"
                )


if __name__ == "__main__":
    main()
