"""Leave-one-user-out k-shot personalization (issue 8): a user nobody in the pool has seen.

Pool = the other users' pairs + general data; for each target the general head, heads, low-rank basis and
priors are refitted without the target's pairs and without any pair on the target's test prompts
(:func:`pluralrm.adapt.kshot.run_kshot`). Users:

* real (``--features``): the four DSP domain users and the HH helpful / harmless users; each set's prompts
  are split 50/50 (seeded) into adaptation and test halves; the pool holds the other users' adaptation
  halves plus all of WebGPT (general data, no user);
* simulated (``--synthetic``): users made directly in feature space (no backbone): ``w_u = A c_u`` in a
  shared rank-4 subspace ``A`` of R^64, plus one contrarian user who wants the opposite of the majority;
  pair differences are isotropic Gaussians labelled by a Bradley–Terry draw with inverse temperature 2.

With ``--choose`` (comma-separated feature candidates, e.g. MiniLM's layers 1–6 from
``benchmarks/real_features.py``), each target's feature space is chosen on its own pool by
:func:`pluralrm.adapt.choice.run_kshot_choosing` (how well the pool's users are learned
from 15 pairs in each candidate), every method runs there, and ``user-bt`` on ``--candidate`` (the
backbone's default layer) is added as ``user-bt@default`` for comparison.

Usage::

    python benchmarks/personalize_loo.py --features /path/to/features --out out/loo
    python benchmarks/personalize_loo.py --synthetic --out out/loo-synthetic
    python benchmarks/personalize_loo.py --features /path/to/features --out out/loo-choose \
        --choose minilm-mean-L1,minilm-mean-L2,minilm-mean-L3,minilm-mean-L4,minilm-mean-L5,minilm-mean-L6
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pluralrm.adapt.choice import run_kshot_choosing
from pluralrm.adapt.kshot import LOO_METHODS, run_kshot
from pluralrm.config import DECOMPOSE, KSHOT
from pluralrm.data.features import PairFeatures
from pluralrm.data.splits import group_split
from pluralrm.evaluate.plots import plot_kshot
from pluralrm.evaluate.tables import write_csv

DOMAINS = ("academy", "business", "entertainment", "literature")


def halves(features: PairFeatures, seed: int) -> tuple[PairFeatures, PairFeatures]:
    first, second = group_split(features.groups, [0.5, 0.5], seed=seed)
    return features.select(first), features.select(second)


def labelled(features: PairFeatures, user: str | None) -> PairFeatures:
    from dataclasses import replace

    return replace(features, users=[user] * len(features))


def real_users(root: Path, candidate: str, seed: int, domain_pool: bool = False):
    load = lambda name: PairFeatures.load(root / name / candidate)  # noqa: E731
    domain_adapt, domain_test = halves(load("domain"), seed)
    users, parts = {}, []
    for d in DOMAINS:
        pick = lambda f, d=d: f.select([i for i, s in enumerate(f.subsets) if s == d])  # noqa: E731
        users[d] = (labelled(pick(domain_adapt), d), labelled(pick(domain_test), d))
        parts.append(users[d][0])
    if domain_pool:  # the other domain users only: what the choices see changes with what the pool holds
        return PairFeatures.concatenate(parts), users
    for name in ("helpful", "harmless"):
        adapt, test = halves(load(name), seed)
        users[name] = (labelled(adapt, name), labelled(test, name))
        parts.append(users[name][0])
    parts.append(labelled(load("webgpt"), None))
    return PairFeatures.concatenate(parts), users


def synthetic_users(seed: int, d: int = 64, rank: int = 4, n_users: int = 8, n_pairs: int = 600):
    rng = np.random.default_rng(seed)
    A = np.linalg.qr(rng.normal(size=(d, rank)))[0]
    shared = rng.normal(size=rank)  # the majority's taste: users scatter around it
    weights = {f"sim{u}": A @ (shared + 0.8 * rng.normal(size=rank)) for u in range(n_users - 1)}
    weights["contrarian"] = -A @ shared
    users, parts = {}, []
    for name, w in weights.items():
        w = 2.0 * w / np.linalg.norm(w)
        H1, H2 = rng.normal(size=(n_pairs, d)), rng.normal(size=(n_pairs, d))
        first = rng.random(n_pairs) < 1 / (1 + np.exp(-(H1 - H2) @ w))
        chosen, rejected = np.where(first[:, None], H1, H2), np.where(first[:, None], H2, H1)
        ids = [f"{name}-{i}" for i in range(n_pairs)]
        f = PairFeatures(chosen=chosen, rejected=rejected, ids=ids, users=[name] * n_pairs)
        half = n_pairs // 2
        users[name] = (f.select(range(half)), f.select(range(half, n_pairs)))
        parts.append(users[name][0])
    return PairFeatures.concatenate(parts), users


def summary(rows: list[dict], group: list[str], k: int = 15) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["user"], r["method"], r["k"]): r for r in rows}
    ks = sorted({r["k"] for r in rows})
    lines = [f"| method | {' | '.join(group)} | mean |", "|---|" + "---|" * (len(group) + 1)]
    for m in methods:
        v = [cell[(u, m, k)]["mean"] for u in group]
        half = np.mean([cell[(u, m, k)]["mean"] - cell[(u, m, k)]["ci_low"] for u in group])
        lines.append(f"| {m} | " + " | ".join(f"{x:.3f}" for x in v) + f" | {np.mean(v):.3f} ± {half:.3f} |")
    lines += ["", "| k | " + " | ".join(map(str, ks)) + " |", "|---|" + "---|" * len(ks)]
    for m in methods:
        lines.append(
            f"| {m} | "
            + " | ".join(f"{np.mean([cell[(u, m, kk)]['mean'] for u in group]):.3f}" for kk in ks)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path)
    parser.add_argument("--candidate", default="minilm-mean-L6")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--choose", help="comma-separated candidates: each target's is chosen on its pool")
    parser.add_argument(
        "--domain-pool", action="store_true", help="pool = the DSP domain users only (no HH users, no WebGPT)"
    )
    parser.add_argument("--components", type=int, default=DECOMPOSE.n_components)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--methods", default=",".join(LOO_METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/loo"))
    args = parser.parse_args()
    if args.synthetic:
        pool, users = synthetic_users(args.seed)
        groups = {"simulated": list(users)}
    else:
        pool, users = (
            (None, None)
            if args.choose
            else real_users(args.features, args.candidate, args.seed, args.domain_pool)
        )
        groups = {"domain": list(DOMAINS), "helpful-harmless": ["helpful", "harmless"]}
        if args.domain_pool:
            del groups["helpful-harmless"]
    from dataclasses import replace

    start = time.perf_counter()
    options = dict(
        ks=KSHOT.ks,
        n_draws=args.draws,
        methods=args.methods.split(","),
        decompose=replace(DECOMPOSE, n_components=args.components),
        random_seed=args.seed,
    )
    if args.choose:
        if args.synthetic:
            parser.error("--choose needs --features (simulated users have one feature space)")
        candidates = {
            name: real_users(args.features, name, args.seed, args.domain_pool)
            for name in args.choose.split(",")
        }
        rows, choices = run_kshot_choosing(candidates, **options)
        default_features = candidates.get(args.candidate) or real_users(
            args.features, args.candidate, args.seed, args.domain_pool
        )
        default = run_kshot(*default_features, **{**options, "methods": ["user-bt"]})
        rows += [{**r, "method": "user-bt@default"} for r in default]
        print("\n### chosen on each target's pool (pool users' accuracy at 15 pairs per candidate)\n")
        for user, choice in choices.items():
            scores = ", ".join(f"{n} {v:.3f}" for n, v in choice.scores.items())
            print(f"- {user}: **{choice.name}** ({scores})")
    else:
        rows = run_kshot(pool, users, **options)
    adapters = {r["user"]: r["adapter"] for r in rows if r["method"] == "auto"}
    print("\n### auto: the adapter chosen on each target's pool\n")
    print(", ".join(f"{user}: {adapter}" for user, adapter in adapters.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "kshot.csv")
    (args.out / "kshot.json").write_text(json.dumps(rows, indent=1))
    for name, group in groups.items():
        sel = [r for r in rows if r["user"] in group]
        plot_kshot(sel, args.out / f"kshot-{name}.png", title=f"leave-one-user-out, {name} users")
        print(f"\n### {name} users — accuracy at k = 15 (mean ± mean 95 % half-width)\n")
        print(summary(sel, group))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
