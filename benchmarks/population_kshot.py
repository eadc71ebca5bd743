"""Few-shot personalization on a population of many users on real texts (issue 22's protocol).

For alpha = 0.1 (concentrated tastes) and 1 (mixed), ``pluralrm.data.population`` draws 1,000 seen users
and 200 unseen users over the DSP domain set's five response styles (a user's utility of a response is
their weight on its style; labels are Bradley–Terry draws at the stated temperature). Every method reads
the same MiniLM features (the layer chosen from the pool's own users, as ``pluralrm kshot --layers``
chooses it); the unseen users are new users: their pairs and prompts never shape the heads.

Printed per alpha, for k = 1, 3, 5, 10, 15, 30, mean accuracy on the unseen users' test pairs with 95 %
intervals over users: the general head, the default path (``auto``: the adapter chosen on the pool's
users), each adapter over PCA heads (``drm-*``) and over the users' heads (``users-*``, heads from the
SVD of the seen users' own Bradley–Terry heads), per-user BT on the same k pairs (``user-bt``: the bar),
BT on all 50 adaptation pairs (``user-bt-all``), a *linear oracle* (a BT head fitted on 8,000 noise-free
labels of the user's true utility on pool pairs: the most a linear reward on these features reaches)
and the Bayes ceiling (the true utility itself). Then accuracy at k = 5 against the number of seen users
(50, 200, 1,000). Features are cached (``~/.cache/pluralrm``), so a rerun skips the backbone.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/population_kshot.py --out out/population-kshot [--draws 5]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from dsp_user_files import DOMAIN_SET  # the sibling benchmark (run from the repo root)
from pluralrm.adapt.choice import run_kshot_choosing
from pluralrm.adapt.kshot import over_users
from pluralrm.backbone import FeatureCache
from pluralrm.config import DECOMPOSE, FEATURIZE, POPULATION
from pluralrm.data import load_ranked
from pluralrm.data.features import PairFeatures
from pluralrm.data.population import make_population, queries_from_ranked
from pluralrm.pool import features_for_layers
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.math import pair_correctness
from pluralrm.rewards.reward_model import RewardModel

KS = (1, 3, 5, 10, 15, 30)
LAYERS = (1, 2, 3, 4, 5, 6)
METHODS = ("general", "auto", "drm-map", "drm-logistic", "drm-hyre", "user-bt", "user-bt-all")


def by_user(features: PairFeatures) -> dict[str, PairFeatures]:
    users = np.array(features.users, dtype=object)
    return {str(u): features.select(np.flatnonzero(users == u)) for u in dict.fromkeys(features.users)}


def oracle_heads(made, seen: PairFeatures, users) -> dict[str, np.ndarray]:
    """Per user: a BT head on 8,000 pool pairs labelled by the user's true utility (no label noise) —
    the most a linear reward on these features expresses of that user's taste."""
    index = {s: i for i, s in enumerate(made.signals)}
    styles = np.array([[index[s] for s in i.split("/")[-2].split(">")] for i in seen.ids])
    heads = {}
    for user in users:
        w = made.weights[user]
        gap = w[styles[:, 0]] - w[styles[:, 1]]
        keep = np.flatnonzero(np.abs(gap) > 1e-3)[:8000]
        heads[user] = (
            LinearRewardHead(alpha=1e-3).fit(seen.differences[keep] * np.sign(gap[keep])[:, None]).coef_
        )
    return heads


def head_accuracy(coef: np.ndarray, test: PairFeatures) -> float:
    """Accuracy on ``test`` of a linear head with weights ``coef``, scored by the product's one path."""
    model = RewardModel(namespace=test.namespace, backbone_name=test.backbone_name)
    model.general = LinearRewardHead.from_coef(coef)
    return float(pair_correctness(model.margins(test)).mean())


def linear_oracle(made, seen: PairFeatures, tests: dict[str, PairFeatures]) -> dict[str, float]:
    """Per unseen user: the accuracy of their :func:`oracle_heads` head on their test pairs."""
    heads = oracle_heads(made, seen, list(tests))
    return {user: head_accuracy(heads[user], tests[user]) for user in tests}


def one_alpha(alpha: float, queries, args) -> list[dict]:
    made = make_population(queries, replace(POPULATION, alpha=alpha))
    paths = made.save(args.out / f"alpha-{alpha}")
    cache = FeatureCache.default()
    start = time.perf_counter()
    parts = {
        part: features_for_layers(paths[part], LAYERS, featurize=FEATURIZE, cache=cache)
        for part in ("seen", "unseen-adapt", "unseen-test")
    }
    print(
        f"alpha {alpha}: features of {sum(len(p) for p in made.pairs.values())} pairs in "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    decompose = replace(DECOMPOSE, choice_users=args.choice_users)
    rows: list[dict] = []

    def run(seen_users: list[str], methods, heads: str, rename: str | None = None) -> list[dict]:
        candidates = {}
        for layer in LAYERS:
            seen = parts["seen"][layer]
            keep = np.flatnonzero(np.isin(np.array(seen.users, dtype=object), seen_users))
            adapt, test = by_user(parts["unseen-adapt"][layer]), by_user(parts["unseen-test"][layer])
            candidates[f"layer {layer}"] = (seen.select(keep), {u: (adapt[u], test[u]) for u in adapt})
        out, choices = run_kshot_choosing(
            candidates,
            ks=args.ks,
            n_draws=args.draws,
            methods=methods,
            decompose=replace(decompose, heads=heads),
            choice_k=decompose.choice_k,
        )
        layer = next(iter(choices.values())).name
        if rename:
            out = [{**r, "method": r["method"].replace("drm-", rename)} for r in out]
        return [{**r, "layer": layer, "n_seen_users": len(seen_users)} for r in out]

    start = time.perf_counter()
    rows += run(made.seen_users, METHODS, "pca")
    rows += run(made.seen_users, ("drm-map", "drm-logistic"), "users", rename="users-")
    print(f"alpha {alpha}: k-shot in {time.perf_counter() - start:.0f} s ({rows[0]['features']})", flush=True)
    layer = int(rows[0]["features"].split()[-1])
    tests = by_user(parts["unseen-test"][layer])
    ceiling = made.bayes_ceiling()
    oracle = linear_oracle(made, parts["seen"][layer], tests)
    for name, values in (("linear-oracle", oracle), ("bayes-ceiling", ceiling)):
        rows += [{"user": u, "method": name, "k": k, "mean": values[u]} for u in tests for k in args.ks]
    curve = []
    for n in args.pool_sizes:
        users = made.seen_users[:n]
        for heads, rename in (("pca", None), ("users", "users-")):
            methods = ("auto", "user-bt") if heads == "pca" else ("drm-map",)
            curve += run(users, methods, heads, rename)
    curve = [r for r in curve if r["k"] == args.curve_k]
    return [{**r, "alpha": alpha} for r in rows], [{**r, "alpha": alpha} for r in curve]


def print_table(alpha: float, rows: list[dict], ks) -> None:
    summary = over_users(rows)
    print(
        f"\nalpha {alpha}: accuracy on unseen users' test pairs, mean ± 95% over users "
        f"({summary[0]['n_users']} users)"
    )
    print(f"{'method':16s}" + "".join(f"{'k=' + str(k):>15s}" for k in ks))
    for method in dict.fromkeys(r["method"] for r in summary):
        cells = {r["k"]: r for r in summary if r["method"] == method}
        print(
            f"{method:16s}"
            + "".join(
                f"{cells[k]['mean']:>9.3f}±{cells[k]['mean'] - cells[k]['ci_low']:.3f}"
                if k in cells
                else " " * 15
                for k in ks
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/population-kshot"))
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--ks", type=int, nargs="+", default=list(KS))
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--choice-users", type=int, default=10)
    parser.add_argument("--pool-sizes", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--curve-k", type=int, default=5)
    args = parser.parse_args()
    if not DOMAIN_SET.exists():
        sys.exit(f"skip: {DOMAIN_SET} is absent (the real data lives in ../shared/data beside the repo)")
    queries = queries_from_ranked(load_ranked(DOMAIN_SET, skip_invalid=True).records, str(DOMAIN_SET))
    args.out.mkdir(parents=True, exist_ok=True)
    all_rows, all_curve = [], []
    for alpha in args.alphas:
        rows, curve = one_alpha(alpha, queries, args)
        all_rows += rows
        all_curve += curve
        print_table(alpha, rows, args.ks)
        print(f"\nalpha {alpha}: accuracy at k={args.curve_k} against the number of seen users")
        for method in dict.fromkeys(r["method"] for r in curve):
            cells = []
            for n in args.pool_sizes:
                s = over_users([r for r in curve if r["method"] == method and r["n_seen_users"] == n])
                cells.append(f"{n}: {s[0]['mean']:.3f}±{s[0]['mean'] - s[0]['ci_low']:.3f}")
            print(f"  {method:14s} " + "   ".join(cells))
        sys.stdout.flush()
    for name, rows in (("kshot.csv", all_rows), ("pool-size.csv", all_curve)):
        keys = list(dict.fromkeys(key for row in rows for key in row))
        with open(args.out / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    print(f"\nwrote {args.out / 'kshot.csv'}, {args.out / 'pool-size.csv'}")


if __name__ == "__main__":
    main()
