"""Personalized best-of-N (issue 10): each user's true reward of *their* pick vs the general head's pick.

Two kinds of users, both judged on test queries whose responses no fit has seen:

* **DSP domain users (real, leave-one-user-out)**: 5 responses per query (academy, business, entertainment,
  literature, normal); the user of domain D wants the D response. For each target user the general head and
  the PCA heads are fitted on a pool without any of that user's pairs: the other three domain users'
  pairs on the adaptation queries plus general data (HH helpful, WebGPT). The user's k labelled pairs come
  from their adaptation queries.
* **simulated users (in the heads' span by construction — flattering to the heads)**: Dirichlet mixtures of
  the first heads of a model fitted on the whole pool (PersonalLLM's recipe with PCA heads in place of
  reward models), on the same 5-response test queries and, with ``--wide``, on a generated wide file
  (e.g. SmolLM2 samples, ``pluralrm generate``), split by prompt into adaptation and test halves.

Usage::

    python benchmarks/personalized_bon.py --out out/personalized-bon
    python benchmarks/personalized_bon.py --wide out/generated.jsonl --out out/personalized-bon
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pluralrm.backbone import FeatureCache, FeatureSpec, Featurizer, load_backbone
from pluralrm.backbone.pairs import featurize_pairs
from pluralrm.data import DSP_DOMAINS, load_pairs, load_ranked
from pluralrm.evaluate.many.personal import mixture_users, summarize, user_rows
from pluralrm.evaluate.tables import write_csv
from pluralrm.rewards.decomposed import DecomposedRewardModel
from pluralrm.rewards.linear_head import LinearRewardHead
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.select import featurize_ranked

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DOMAIN_FILE = SHARED / "dsp/domain_specific_preference.test-dev.json.gz"
GENERAL_FILES = [SHARED / "dsp/helpful.test-dev.json.gz", SHARED / "dsp/webgpt.test-dev.json.gz"]


def domain_pairs(H: list[np.ndarray], domain_index: int) -> np.ndarray:
    """The domain user's pairs: their response over each of the other four, per query."""
    return np.concatenate([np.delete(h[domain_index] - h, domain_index, axis=0) for h in H])


def pool_model(D_pool: np.ndarray, namespace: dict, backbone: str, n_heads: int, alpha: float) -> RewardModel:
    return RewardModel(
        namespace=namespace,
        backbone_name=backbone,
        general=LinearRewardHead(alpha=alpha).fit(D_pool),
        decomposed=DecomposedRewardModel(n_components=n_heads).fit(D_pool),
    )


def split_half(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}\n| method | k | gain (min–max user) | top-1 | picks differ from general |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['k']} | {r['gain']:.3f} ({r['gain_min_user']:.2f}–"
            f"{r['gain_max_user']:.2f}) | {r['top1']:.3f} | {r['differs']:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--wide", type=Path, help="A generated wide file for the simulated users.")
    parser.add_argument("--ks", default="0,5,15,50")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=1e-2, help="L2 of the general and user-BT heads")
    parser.add_argument("--sim-users", type=int, default=20)
    parser.add_argument("--sim-heads", type=int, default=8)
    parser.add_argument("--concentration", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DOMAIN_FILE.exists():
        raise SystemExit(f"real data not available: {DOMAIN_FILE} is absent")
    ks = tuple(int(k) for k in args.ks.split(","))
    start = time.perf_counter()
    backbone = load_backbone(args.backbone, dtype=args.dtype)
    featurizer = Featurizer(backbone, cache=FeatureCache.default(), show_progress=True)
    spec: FeatureSpec = featurizer.spec
    namespace = featurizer.namespace(spec)

    loaded = load_ranked(DOMAIN_FILE, format="dsp-domain", skip_invalid=True)  # one query has no "normal"
    print(loaded.report.summary())
    queries = loaded.records
    H_queries = featurize_ranked(queries, featurizer)
    general = [
        featurize_pairs(load_pairs(path, skip_invalid=True).records, featurizer).differences
        for path in GENERAL_FILES
    ]
    D_general = np.concatenate(general)
    adapt, test = split_half(len(queries), args.seed)
    pick = lambda H, idx: [H[i] for i in idx]  # noqa: E731
    onehot = lambda d, idx: [np.eye(5)[d] for _ in idx]  # noqa: E731

    rows: list[dict] = []
    for d, domain in enumerate(DSP_DOMAINS):
        others = [domain_pairs(pick(H_queries, adapt), o) for o in range(len(DSP_DOMAINS)) if o != d]
        model = pool_model(
            np.concatenate([*others, D_general]), namespace, args.backbone, args.heads, args.alpha
        )
        rows += user_rows(
            domain,
            model,
            (pick(H_queries, adapt), onehot(d, adapt)),
            (pick(H_queries, test), onehot(d, test)),
            ks=ks,
            n_draws=args.draws,
            seed=args.seed,
            user_bt_alpha=args.alpha,
        )
    dsp_summary = summarize(rows)
    print_table("DSP domain users (leave-one-user-out), 5 responses per test query", dsp_summary)

    all_domain = [domain_pairs(pick(H_queries, adapt), o) for o in range(len(DSP_DOMAINS))]
    full_model = pool_model(
        np.concatenate([*all_domain, D_general]), namespace, args.backbone, args.heads, args.alpha
    )
    wide_sets = {"dsp-5": (pick(H_queries, adapt), pick(H_queries, test))}
    if args.wide:
        records = load_ranked(args.wide).records
        H_wide = featurize_ranked(records, featurizer)
        wide_adapt, wide_test = split_half(len(records), args.seed)
        wide_sets[f"generated-{len(records[0]['responses'])}"] = (
            pick(H_wide, wide_adapt),
            pick(H_wide, wide_test),
        )
    simulated: dict[str, list[dict]] = {}
    for name, (H_adapt, H_test) in wide_sets.items():
        users = mixture_users(
            full_model,
            np.concatenate(H_adapt),
            n_users=args.sim_users,
            n_heads=args.sim_heads,
            concentration=args.concentration,
            seed=args.seed,
        )
        sim_rows = []
        for user, w in users.items():
            sim_rows += user_rows(
                user,
                full_model,
                (H_adapt, [h @ w for h in H_adapt]),
                (H_test, [h @ w for h in H_test]),
                ks=ks,
                n_draws=args.draws,
                seed=args.seed,
                user_bt_alpha=args.alpha,
            )
        simulated[name] = summarize(sim_rows)
        print_table(f"simulated mixture users on {name} ({len(users)} users)", simulated[name])
        rows += [dict(r, set=name) for r in sim_rows]

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "personalized_bon_rows.csv")
    summary = {
        "dsp_users_loo": dsp_summary,
        "simulated": simulated,
        "args": {k: str(v) for k, v in vars(args).items()},
        "namespace": namespace,
        "seconds": round(time.perf_counter() - start, 1),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {args.out}/ in {summary['seconds']} s")


if __name__ == "__main__":
    main()
