"""Fine-tune per domain, or personalize frozen heads? CRFT against DRM + adapter, per DSP domain user.

For each domain user and k labelled pairs (15, 100, all of the ~400 training pairs of
``benchmarks/customize_dsp.py``'s split and limits):

* **DRM + adapter on frozen MiniLM** — leave-one-user-out (``pluralrm.adapt.kshot.run_kshot``): heads,
  general head and priors fitted on the other three users' and the general pairs; the user adapts from k pairs
  (``drm-map``, the default adapter, and ``lore-hyre``, the best on new users in
  docs/reports/personalization.md),
  against ``user-bt`` (a BT head on the same k pairs) and ``user-bt-all``;
* **the same on the stage-2 backbone** (features of the GRFT model: is a fine-tuned backbone a better basis?);
* **CRFT**: stage 3 from stage 2 on k pairs of the user (k = all: the table's ``stage3-from-stage2`` model),
  and the same with ``--head-init probe`` (k = all: the table's ``probe`` model).
  Small k get more epochs (``min(4, ceil(400 / k))``): the k = 100 run sees as many pairs as k = all.

CPU seconds: CRFT = its training time; DRM = featurizing the user's k pairs (measured per pair) plus the
adapter's fit (``run_kshot`` time per fit, which also includes refitting the pool model for that user, so
an upper bound). Accuracies are means over 5 draws of k pairs for the adapters, one draw for CRFT.

Usage (after customize_dsp.py has written OUT/models/stage2 and the stage3-from-stage2 models)::

    python benchmarks/customize_vs_personalize.py --table-out out/customize-minilm --out out/customize-vs
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from customize_dsp import DOMAINS, GENERAL, accuracy, load_splits
from pluralrm.adapt.kshot import run_kshot
from pluralrm.atomic import write_json
from pluralrm.backbone import FeatureCache, Featurizer, load_backbone
from pluralrm.backbone.pairs import featurize_pairs
from pluralrm.config import CUSTOMIZE
from pluralrm.data.features import PairFeatures
from pluralrm.rewards.reward_model import RewardModel

METHODS = ["drm-map", "lore-hyre", "user-bt", "user-bt-all"]


def labelled(features: PairFeatures, user: str | None) -> PairFeatures:
    return replace(features, users=[user] * len(features))


def loo_features(featurizer: Featurizer, train: dict, test: dict) -> tuple[PairFeatures, dict]:
    """The k-shot pool (every domain user's and the general training pairs; ``run_kshot`` leaves each target
    user's own pairs out of it) and each domain user's (train, test) features."""
    users = {
        d: (
            labelled(featurize_pairs(train[d], featurizer), d),
            labelled(featurize_pairs(test[d], featurizer), d),
        )
        for d in DOMAINS
    }
    general = [labelled(featurize_pairs(train[g], featurizer), None) for g in GENERAL]
    return PairFeatures.concatenate([users[d][0] for d in DOMAINS] + general), users


def drm_rows(backbone: str, train: dict, test: dict, ks: list[int], draws: int, max_length: int) -> dict:
    """Leave-one-user-out k-shot accuracies of the adapters on features of ``backbone``."""
    backbone_model = load_backbone(backbone, dtype="float32")
    # Cost of featurizing a user's pairs, timed without the cache on 50 pairs; the data itself comes from
    # the cache (the table's frozen features are reused).
    timing = Featurizer(backbone_model, max_length=max_length, cache=None)
    sample = train[DOMAINS[0]][:50]
    start = time.perf_counter()
    featurize_pairs(sample, timing)
    seconds_per_pair = (time.perf_counter() - start) / len(sample)
    featurizer = Featurizer(backbone_model, max_length=max_length, cache=FeatureCache.default())
    pool, users = loo_features(featurizer, train, test)
    start = time.perf_counter()
    rows = run_kshot(pool, users, ks=ks, n_draws=draws, methods=METHODS)
    fits = len(DOMAINS) * len(ks) * draws * len(METHODS)
    return {
        "rows": rows,
        "featurize_seconds_per_pair": seconds_per_pair,
        "seconds_per_fit": (time.perf_counter() - start) / fits,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--table-out", type=Path, default=Path("out/customize-minilm"))
    parser.add_argument("--out", type=Path, default=Path("out/customize-vs"))
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--limit-domain-train", type=int, default=400)
    parser.add_argument("--limit-test", type=int, default=400)
    parser.add_argument("--domain-lr", type=float, default=2e-5)
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from pluralrm.training.customize import customize_reward_model

    train, test = load_splits(args.limit_train, args.limit_test, args.limit_domain_train)
    stage2 = args.table_out / "models" / "stage2"
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    ks = [15, 100]
    for name, backbone in (("frozen", args.backbone), ("stage2-backbone", str(stage2))):
        if name not in results:
            results[name] = drm_rows(backbone, train, test, ks, args.draws, args.max_length)
            write_json(path, results)
    table = json.loads((args.table_out / "results.json").read_text())
    for variant, head_init, row in (("crft", "keep", "stage3-from-stage2"), ("crft-probe", "probe", "probe")):
        crft = results.setdefault(variant, {})
        for d in DOMAINS:
            for k in [*ks, "all"]:
                key = f"{d}/{k}"
                if key in crft:
                    continue
                if k == "all":
                    entry = table["models"].get(f"{row}-{d}")
                    if entry is None:
                        continue  # customize_dsp.py has not trained this row
                    crft[key] = {"accuracy": entry["accuracy"][d], "seconds": entry["train"]["seconds"]}
                else:
                    picks = np.random.default_rng(0).choice(len(train[d]), size=k, replace=False)
                    pairs = [train[d][int(i)] for i in picks]
                    config = replace(
                        CUSTOMIZE,
                        learning_rate=args.domain_lr,
                        epochs=min(4, math.ceil(400 / k)),
                        batch_size=8,
                        max_length=args.max_length,
                        validation_fraction=0.0,
                        head_init=head_init,
                    )
                    out = args.out / "models" / f"{variant}-{d}-{k}"
                    start = time.perf_counter()
                    customize_reward_model(
                        pairs, base=str(stage2), out_dir=out, config=config, stage=f"{d}-{k}"
                    )
                    seconds = time.perf_counter() - start
                    crft[key] = {
                        "accuracy": accuracy(RewardModel.from_pretrained(out), test[d]),
                        "seconds": seconds,
                    }
                write_json(path, results)
    print_summary(results, ks)


def print_summary(results: dict, ks: list[int]) -> None:
    print("| method | k | " + " | ".join(DOMAINS) + " | mean | CPU s per user (approx.) |")
    print("|---|---|" + "---|" * (len(DOMAINS) + 2))
    for name in ("frozen", "stage2-backbone"):
        part = results[name]
        cell = {(r["user"], r["method"], r["k"]): r["mean"] for r in part["rows"]}
        for method in METHODS:
            for k in ks if method != "user-bt-all" else [ks[0]]:
                values = [cell[(d, method, k)] for d in DOMAINS]
                shown_k = "all" if method == "user-bt-all" else k
                n = 400 if method == "user-bt-all" else k
                cost = n * part["featurize_seconds_per_pair"] + part["seconds_per_fit"]
                line = " | ".join(f"{v:.3f}" for v in values)
                print(f"| {name} {method} | {shown_k} | {line} | {np.mean(values):.3f} | {cost:.1f} |")
    for variant, label in (("crft", "CRFT from stage 2"), ("crft-probe", "CRFT from stage 2, probe head")):
        for k in [*ks, "all"]:
            cells = [results.get(variant, {}).get(f"{d}/{k}") for d in DOMAINS]
            if None in cells:
                continue
            values = [c["accuracy"] for c in cells]
            seconds = np.mean([c["seconds"] for c in cells])
            line = " | ".join(f"{v:.3f}" for v in values)
            print(f"| {label} | {k} | {line} | {np.mean(values):.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
