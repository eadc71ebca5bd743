"""Active pair selection (issue 23): labels a new user needs when the pair to ask is chosen, not drawn.

Leave-one-user-out, as ``pluralrm kshot --select``: for each target the pool (other users + general data)
is refitted without the target's pairs and test prompts, the feature layer is chosen on that pool
(:func:`pluralrm.adapt.choice.choose_features`, MiniLM layers 1–6) and the adapter too (``auto``); then
every rule of :mod:`pluralrm.adapt.active` asks the target k = 1…50 pairs one at a time from a seeded
subset of their adaptation pairs (labels revealed after each pick), and the adapted reward is scored on
the target's test pairs. Printed per user set, each rule next to ``random`` (same adapter, same candidate
subsets, so differences are paired):

* labels needed to reach 90 % and 95 % of the all-pairs per-user BT accuracy (``user-bt-all``: a BT head
  on all the user's adaptation pairs), from the mean curve over users; the ratio to random's;
* the gain over random at k = 5 with a 95 % interval over (user, draw) pairs;
* the worst k: the most negative mean difference from random over k = 1…50 with its 95 % interval (a rule
  is "more than noise below random" there if the interval's top is below 0).

Users: ``--features DIR`` (``benchmarks/real_features.py`` output) gives the four DSP domain users and the
HH helpful / harmless users (pool: the other users' adaptation halves and WebGPT, as
``benchmarks/personalize_loo.py``); or any user pair files: ``--pool FILE`` (repeat; NAME=FILE labels a
pool user) with ``--adapt NAME=FILE --test NAME=FILE`` per target (e.g. ``benchmarks/dsp_user_files.py``
output, or a population generator's users), featurized with MiniLM at layers 1–6 through the feature
cache, so a rerun reads vectors.

``--speed``: one pick among 10,000 candidate pairs (d = 384, 10 labelled pairs, 32 heads) per rule, median
of 20 calls, printed beside random (run with OMP_NUM_THREADS=2 for "two cores").

Usage::

    python benchmarks/real_features.py --backbone minilm --out out/features
    OMP_NUM_THREADS=1 python benchmarks/active_selection.py --features out/features --out out/active
    python benchmarks/active_selection.py --pool business=out/dsp-users/business.jsonl ... \
        --adapt academy=out/dsp-users/academy.jsonl --test academy=out/dsp-users/academy-test.jsonl
    OMP_NUM_THREADS=2 python benchmarks/active_selection.py --speed
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pluralrm.adapt.active import STRATEGIES, next_pairs
from pluralrm.adapt.choice import choose_features
from pluralrm.adapt.kshot import auto_adapter, seen_pool, user_bt_margins
from pluralrm.adapt.kshot_active import active_curves
from pluralrm.config import ACTIVE, ADAPT, DECOMPOSE
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.fitting import fit_pool
from pluralrm.rewards.math import pair_correctness

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the same users and pool as the leave-one-user-out report
from personalize_loo import DOMAINS, real_users

LAYERS = (1, 2, 3, 4, 5, 6)


def file_users(pool_items, adapt_items, test_items, layers=LAYERS):
    """Pool and targets from pair files, in every candidate layer: {layer name: (pool, users)}."""
    from pluralrm.backbone import FeatureCache
    from pluralrm.config import FEATURIZE
    from pluralrm.pool import labelled_features, named_input

    read = dict(featurize=replace(FEATURIZE, backbone="minilm", device="cpu"), cache=FeatureCache.default())

    def load(item, need_name):
        name, path = named_input(item)
        if need_name and name is None:
            sys.exit(f"{item!r}: expected NAME=PATH")
        return name, labelled_features(path, name, layers, **read)

    pool_parts = [load(item, False)[1] for item in pool_items]
    adapt = dict(load(item, True) for item in adapt_items)
    test = dict(load(item, True) for item in test_items)
    if adapt.keys() != test.keys():
        sys.exit(f"--adapt names {sorted(adapt)} and --test names {sorted(test)} differ")
    return {
        f"L{layer}": (
            PairFeatures.concatenate([p[layer] for p in pool_parts]),
            {name: (adapt[name][layer], test[name][layer]) for name in adapt},
        )
        for layer in layers
    }


def run_user(candidates, user, strategies, ks, args) -> dict:
    """One target: layer and adapter chosen on its seen pool, then every rule's curves."""
    decompose = replace(DECOMPOSE, n_components=args.components)
    pools = {name: seen_pool(pool, user, users[user][1]) for name, (pool, users) in candidates.items()}
    layer = choose_features(pools).name if len(pools) > 1 else next(iter(pools))
    seen = pools[layer]
    adapt, test = candidates[layer][1][user]
    model = fit_pool(seen, decompose, seed=args.seed).model
    adapter = args.adapter
    if adapter == "auto":
        adapter = auto_adapter(seen, config=ADAPT, decompose=decompose, seed=args.seed)
    ceiling = float(pair_correctness(user_bt_margins(adapt.differences, test, model, ADAPT.bt_alpha)).mean())
    curves = {
        s: active_curves(
            model,
            adapt,
            test,
            s,
            ks,
            n_draws=args.draws,
            adapter=adapter,
            candidates=args.candidates,
            seed=args.seed,
        )
        for s in strategies
    }
    return {"layer": layer, "adapter": adapter, "ceiling": ceiling, "curves": curves}


def labels_to_reach(curve: np.ndarray, ks: list[int], target: float) -> int | None:
    hit = np.flatnonzero(curve >= target)
    return ks[int(hit[0])] if len(hit) else None


def report(
    name: str,
    results: dict,
    strategies,
    ks,
    by_user: bool = True,
    ceiling_name: str = "all-pairs per-user BT",
) -> str:
    users = list(results)
    ceiling = float(np.mean([results[u]["ceiling"] for u in users]))
    mean_curve = {
        s: np.mean([results[u]["curves"][s].mean(axis=0) for u in users], axis=0) for s in strategies
    }
    # paired differences from random, one value per (user, draw)
    diffs = {
        s: np.concatenate([results[u]["curves"][s] - results[u]["curves"]["random"] for u in users])
        for s in strategies
    }
    k5 = ks.index(5) if 5 in ks else None

    def fmt(v):
        return ">50" if v is None else str(v)

    chosen = ", ".join(
        f"{u}: " + ", ".join(str(v) for v in (results[u]["layer"], results[u]["adapter"]) if v)
        for u in users[:8]
    )
    chosen += ", …" if len(users) > 8 else ""
    lines = [
        f"\n### {name} users ({chosen})",
        f"{ceiling_name} accuracy (mean): {ceiling:.3f}; 90 % = {0.9 * ceiling:.3f}, "
        f"95 % = {0.95 * ceiling:.3f}\n",
        "| rule | k=1 | k=3 | k=5 | k=10 | k=20 | k=50 | labels to 90 % | to 95 % | k=5 − random (95 % CI) "
        "| worst k: − random (95 % CI) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rand90 = labels_to_reach(mean_curve["random"], ks, 0.9 * ceiling)
    rand95 = labels_to_reach(mean_curve["random"], ks, 0.95 * ceiling)
    for s in strategies:
        c = mean_curve[s]
        cells = [f"{c[ks.index(k)]:.3f}" if k in ks else "" for k in (1, 3, 5, 10, 20, 50)]
        r90 = labels_to_reach(c, ks, 0.9 * ceiling)
        r95 = labels_to_reach(c, ks, 0.95 * ceiling)
        ratio = lambda r, base, s=s: (  # noqa: E731
            f" ({r / base:.2f}×)" if r is not None and base is not None and s != "random" else ""
        )
        d = diffs[s]
        mean, half = d.mean(axis=0), 1.96 * d.std(axis=0, ddof=1) / np.sqrt(len(d))
        gain = f"{100 * mean[k5]:+.1f} ± {100 * half[k5]:.1f}" if k5 is not None and s != "random" else ""
        worst = int(np.argmin(mean))
        worst_cell = (
            f"k={ks[worst]}: {100 * mean[worst]:+.1f} ± {100 * half[worst]:.1f}"
            + (" **below**" if mean[worst] + half[worst] < 0 else "")
            if s != "random"
            else ""
        )
        lines.append(
            f"| {s} | {' | '.join(cells)} | {fmt(r90)}{ratio(r90, rand90)} | {fmt(r95)}{ratio(r95, rand95)} "
            f"| {gain} | {worst_cell} |"
        )
    if not by_user:
        return "\n".join(lines)
    per_user = ["", "| user | ceiling | " + " | ".join(f"{s} to 90 % / 95 %" for s in strategies) + " |"]
    per_user.append("|---|---|" + "---|" * len(strategies))
    for u in users:
        r = results[u]
        cells = []
        for s in strategies:
            c = r["curves"][s].mean(axis=0)
            reach = [fmt(labels_to_reach(c, ks, share * r["ceiling"])) for share in (0.9, 0.95)]
            cells.append(" / ".join(reach))
        per_user.append(f"| {u} | {r['ceiling']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines + per_user)


def from_kshot_csv(path: Path) -> tuple[dict, list[str], list[int]]:
    """Per-user curves from ``pluralrm kshot --select``'s ``kshot.csv`` (each user's mean over draws).

    The ceiling is each user's accuracy at the largest k (for the population's 50 adaptation pairs: the
    same adapter on all of them), so the intervals in :func:`report` are over users, not draws.
    """
    import csv

    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("select")]
    if not rows:
        sys.exit(f"{path}: no 'select' rows; run pluralrm kshot --select first")
    ks = sorted({int(r["k"]) for r in rows})
    strategies = list(dict.fromkeys(r["select"] for r in rows))
    cell = {(r["user"], r["select"], int(r["k"])): float(r["mean"]) for r in rows}
    users = list(dict.fromkeys(r["user"] for r in rows))
    results = {}
    for u in users:
        curves = {s: np.array([[cell[(u, s, k)] for k in ks]]) for s in strategies}
        first = next(r for r in rows if r["user"] == u)
        results[u] = {
            "layer": first.get("features", ""),
            "adapter": first["adapter"],
            "ceiling": float(curves["random"][0, -1]),
            "curves": curves,
        }
    return results, strategies, ks


def speed(repeats: int = 20) -> None:
    """One pick among 10,000 candidates per rule, beside random (median of ``repeats`` calls)."""
    from pluralrm.rewards.fitting import fit_pool

    rng = np.random.default_rng(0)
    d, n = 384, 10_000
    w = rng.normal(size=d)
    H = rng.normal(size=(4000, d))
    Dp = np.where((H @ w > 0)[:, None], H, -H)
    pool = PairFeatures(chosen=Dp, rejected=np.zeros_like(Dp), ids=[str(i) for i in range(len(Dp))])
    model = fit_pool(pool, replace(DECOMPOSE, n_components=32), seed=0).model
    X = rng.normal(size=(n, d)).astype(np.float32)
    labelled = Dp[:10]
    print(
        f"\n### one pick among {n:,} candidates (d = {d}, 10 labelled pairs, 32 heads), median of {repeats}\n"
    )
    print("| rule | map (ms) | bt (ms) |\n|---|---|---|")
    for s in STRATEGIES:
        cells = []
        for adapter in ("map", "bt"):
            times = []
            for r in range(repeats):
                start = time.perf_counter()
                next_pairs(model, X, labelled, strategy=s, seed=r, adapter=adapter)
                times.append(1000 * (time.perf_counter() - start))
            cells.append(f"{np.median(times):.1f}")
        print(f"| {s} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, help="benchmarks/real_features.py output (DSP + HH users)")
    parser.add_argument("--pool", action="append", default=[], help="pool pairs file (NAME=FILE: a user)")
    parser.add_argument("--adapt", action="append", default=[], help="NAME=FILE: a target's adaptation pairs")
    parser.add_argument("--test", action="append", default=[], help="NAME=FILE: the target's test pairs")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--adapter", default="auto", help="auto (chosen on each target's pool), map or bt")
    parser.add_argument("--max-k", type=int, default=50)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=ACTIVE.candidates)
    parser.add_argument("--components", type=int, default=DECOMPOSE.n_components)
    parser.add_argument("--users", help="comma-separated subset of the targets")
    parser.add_argument(
        "--domain-pool", action="store_true", help="--features: DSP users only, pool = the other DSP users"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", default="1,2,3,4,5,6", help="candidate MiniLM layers (chosen per target)")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument(
        "--kshot-csv", type=Path, help="summarize a pluralrm kshot --select run's kshot.csv (many users)"
    )
    parser.add_argument("--out", type=Path, default=Path("out/active"))
    args = parser.parse_args()
    if args.speed:
        speed()
        return
    if args.kshot_csv:
        results, strategies, ks = from_kshot_csv(args.kshot_csv)
        name = f"{args.kshot_csv.parent.name}: {len(results)}"
        ceiling = f"the same adapter on all {ks[-1]} pairs"
        print(report(name, results, strategies, ks, by_user=False, ceiling_name=ceiling))
        return
    strategies = args.strategies.split(",")
    if "random" not in strategies:
        strategies.insert(0, "random")
    ks = list(range(1, args.max_k + 1))
    layers = [int(x) for x in args.layers.split(",")]
    if args.features:
        candidates = {
            f"L{layer}": real_users(args.features, f"minilm-mean-L{layer}", args.seed, args.domain_pool)
            for layer in layers
        }
        groups = {"DSP domain": list(DOMAINS), "HH helpful/harmless": ["helpful", "harmless"]}
        if args.domain_pool:
            del groups["HH helpful/harmless"]
    elif args.adapt:
        candidates = file_users(args.pool, args.adapt, args.test, layers)
        groups = {"given": list(next(iter(candidates.values()))[1])}
    else:
        parser.error("give --features, or --pool/--adapt/--test pair files, or --speed")
    if args.users:
        keep = args.users.split(",")
        groups = {g: [u for u in us if u in keep] for g, us in groups.items()}
        groups = {g: us for g, us in groups.items() if us}
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, group in groups.items():
        results = {}
        for user in group:
            t = time.perf_counter()
            results[user] = run_user(candidates, user, strategies, ks, args)
            r = results[user]
            print(f"{user}: {r['layer']}, {r['adapter']}, {time.perf_counter() - t:.0f} s", file=sys.stderr)
        dump = {
            u: {
                **{k: v for k, v in r.items() if k != "curves"},
                "curves": {s: c.tolist() for s, c in r["curves"].items()},
            }
            for u, r in results.items()
        }
        (args.out / f"{name.split()[0].lower()}.json").write_text(json.dumps({"ks": ks, "users": dump}))
        print(report(name, results, strategies, ks))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
