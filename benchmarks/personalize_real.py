"""k-shot personalization on real users: DSP domain users and helpful-vs-harmless users.

Users
-----
* academy, business, entertainment, literature — a D-user prefers the D response over the other domains'
  and the original answer (DSP domain set). Queries are split 50/50 (seeded): the first half gives each
  user's adaptation pool (and the pluralistic head pool), the second half their test pairs.
* helpful, harmless — the HH helpful and harmless sets, each split 50/50 by prompt the same way.

Head sources (heads never see a test pair)
------------------------------------------
* consensus   — PCA heads + general head fit on helpful(train) + harmless(train) + webgpt
* pluralistic — PCA heads + general head fit on all four domain users' train-query pairs

Usage::

    python benchmarks/real_features.py --backbone minilm --out out/features      # once
    python benchmarks/personalize_real.py --features out/features --candidate minilm-mean-L6 --out out/kshot
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pluralrm.adapt.kshot import kshot_rows
from pluralrm.config import ADAPT, KSHOT, replace
from pluralrm.data.features import PairFeatures
from pluralrm.data.splits import group_split
from pluralrm.evaluate.plots import plot_kshot
from pluralrm.evaluate.tables import write_csv
from pluralrm.rewards import DecomposedRewardModel, fit_general_head
from pluralrm.rewards.reward_model import RewardModel

DOMAINS = ("academy", "business", "entertainment", "literature")


def halves(features: PairFeatures, seed: int) -> tuple[PairFeatures, PairFeatures]:
    train, test = group_split(features.groups, [0.5, 0.5], seed=seed)
    return features.select(train), features.select(test)


def head_source(fit: PairFeatures, n_components: int, center: bool, seed: int) -> RewardModel:
    """General head (L2 picked on a random 20 % of the pairs) + PCA heads on all of ``fit``."""
    D = fit.differences
    order = np.random.default_rng(seed).permutation(len(D))
    cut = int(0.8 * len(D))
    general, _ = fit_general_head(D[order[:cut]], D[order[cut:]])
    decomposed = DecomposedRewardModel(n_components=n_components, center=center).fit(D)
    return RewardModel(
        namespace=fit.namespace, backbone_name=fit.backbone_name, general=general, decomposed=decomposed
    )


def domain_users(train: PairFeatures, test: PairFeatures) -> dict[str, tuple[PairFeatures, PairFeatures]]:
    def pick(features: PairFeatures, domain: str) -> PairFeatures:
        return features.select([i for i, s in enumerate(features.subsets) if s == domain])

    return {domain: (pick(train, domain), pick(test, domain)) for domain in DOMAINS}


def tune(
    domain_train: PairFeatures, center: bool, seed: int, draws: int = 10
) -> tuple[int, float, list[dict]]:
    """Pick (number of heads, logistic alpha) on an inner split of the *training* queries only.

    The criterion is the mean drm-logistic accuracy at k=15 over the four domain users; the outer test
    queries are never looked at.
    """
    pool, inner_test = halves(domain_train, seed + 1)
    users = domain_users(pool, inner_test)
    trials = []
    for n_components in (8, 16, 32, 64):
        model = head_source(pool, n_components, center, seed)
        for alpha in (1.0, 10.0):
            rows = kshot_rows(
                users,
                model,
                ks=(15,),
                n_draws=draws,
                methods=("drm-logistic",),
                config=replace(ADAPT, alpha=alpha),
            )
            trials.append(
                {
                    "components": n_components,
                    "alpha": alpha,
                    "inner_accuracy": round(float(np.mean([r["mean"] for r in rows])), 4),
                }
            )
    best = max(trials, key=lambda t: t["inner_accuracy"])
    return best["components"], best["alpha"], trials


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, default=Path("out/features"))
    parser.add_argument("--candidate", default="minilm-mean-L6")
    parser.add_argument(
        "--components",
        type=int,
        default=None,
        help="PCA heads; default: tuned with --alpha on an inner split of the training queries",
    )
    parser.add_argument("--alpha", type=float, default=None, help="logistic adapter L2 (default: tuned)")
    parser.add_argument("--center", action="store_true", help="centred PCA heads (default: uncentred)")
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--no-zscore", action="store_true", help="adapters see raw head scores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/kshot"))
    parser.add_argument(
        "--same-pairs-as",
        default=None,
        help="restrict every set to the pairs featurized for this candidate (fair comparisons)",
    )
    args = parser.parse_args()

    def load(name: str) -> PairFeatures:
        features = PairFeatures.load(args.features / name / args.candidate)
        if args.same_pairs_as:
            keep = set(PairFeatures.load(args.features / name / args.same_pairs_as).ids)
            features = features.select([i for i, pair_id in enumerate(features.ids) if pair_id in keep])
        return features

    domain_train, domain_test = halves(load("domain"), args.seed)
    if args.components is None or args.alpha is None:
        components, alpha, trials = tune(domain_train, args.center, args.seed)
        args.components = args.components or components
        args.alpha = args.alpha or alpha
        print("tuning on an inner split of the training queries:", trials)
    print(f"using {args.components} heads, logistic alpha {args.alpha}", flush=True)
    users = domain_users(domain_train, domain_test)
    helpful_train, helpful_test = halves(load("helpful"), args.seed)
    harmless_train, harmless_test = halves(load("harmless"), args.seed)
    users["helpful"] = (helpful_train, helpful_test)
    users["harmless"] = (harmless_train, harmless_test)

    sources = {
        "consensus": PairFeatures.concatenate([helpful_train, harmless_train, load("webgpt")]),
        "pluralistic": domain_train,
    }
    config = replace(ADAPT, alpha=args.alpha, zscore=not args.no_zscore)
    rows = []
    for source, fit in sources.items():
        start = time.perf_counter()
        model = head_source(fit, args.components, args.center, args.seed)
        rows += kshot_rows(
            users,
            model,
            n_draws=args.draws,
            config=config,
            extra={
                "heads": source,
                "candidate": args.candidate,
                "components": args.components,
                "center": args.center,
                "alpha": args.alpha,
                "zscore": not args.no_zscore,
            },
        )
        print(
            f"{source} heads ({len(fit)} fit pairs): k-shot table in {time.perf_counter() - start:.0f} s",
            flush=True,
        )

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "kshot.csv")
    for source in sources:
        plot_kshot(
            [r for r in rows if r["heads"] == source],
            args.out / f"kshot-{source}.png",
            title=f"{args.candidate}, {source} heads ({args.components})",
        )
    print_summary(rows)
    (args.out / "kshot.json").write_text(json.dumps(rows, indent=1))


def print_summary(rows: list[dict], k: int = 15) -> None:
    for source in dict.fromkeys(r["heads"] for r in rows):
        sel = [r for r in rows if r["heads"] == source]
        users = list(dict.fromkeys(r["user"] for r in sel))
        methods = list(dict.fromkeys(r["method"] for r in sel))
        print(f"\n#### {source} heads — accuracy at k = {k} (user-bt-all: whole pool)\n")
        print("| method | " + " | ".join(users) + " | mean of 4 domain users |")
        print("|---|" + "---|" * (len(users) + 1))
        cell = {(r["user"], r["method"]): r for r in sel if r["k"] == k}
        for method in methods:
            values = [cell[(u, method)]["mean"] for u in users]
            domain_mean = np.mean([cell[(u, method)]["mean"] for u in DOMAINS])
            print(f"| {method} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {domain_mean:.3f} |")
        ceiling = np.mean([cell[(u, "user-bt-all")]["mean"] for u in DOMAINS])
        for adapter in ("hyre", "logistic"):
            drm = np.mean([cell[(u, f"drm-{adapter}")]["mean"] for u in DOMAINS])
            rnd = np.mean([cell[(u, f"random-{adapter}")]["mean"] for u in DOMAINS])
            print(
                f"\n{adapter}: DRM {drm:.3f} = {drm / ceiling:.0%} of per-user BT ({ceiling:.3f}); "
                f"DRM − random heads = {100 * (drm - rnd):+.1f} points"
            )
        curve = "| k | " + " | ".join(str(kk) for kk in KSHOT.ks) + " |"
        print(f"\nDomain-user mean by k:\n\n{curve}\n|---|" + "---|" * len(KSHOT.ks))
        for method in methods:
            by_k = [
                np.mean(
                    [
                        r["mean"]
                        for r in sel
                        if r["method"] == method and r["k"] == kk and r["user"] in DOMAINS
                    ]
                )
                for kk in KSHOT.ks
            ]
            print(f"| {method} | " + " | ".join(f"{v:.3f}" for v in by_k) + " |")


if __name__ == "__main__":
    main()
