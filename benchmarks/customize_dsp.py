"""The DSP experiment table: frozen features vs general RM fine-tuning vs customized RM fine-tuning.

Cheng et al. (2023), "Everyone Deserves A Reward": (1) base LM, (2) general RM fine-tuning (GRFT) on general
preferences (HH helpful + harmless, WebGPT), (3) customized RM fine-tuning (CRFT) on one domain user's pairs
(academy, business, entertainment, literature), from the base LM or from stage 2, optionally with
general-preference enrichment and customized imitation. Every model comes from
``pluralrm.training.customize`` and is
scored through ``RewardModel.from_pretrained(dir).rewards`` — the one scoring path.

Data (../shared/data; no train splits exist offline): every set's prompts are split 50/50 by prompt with
seed 0, the split of docs/reports/results.md's personalization tables, so ``user-bt-all`` is that baseline (a
Bradley–Terry head on frozen features of the user's whole training half). Test pairs' prompts are never
trained on, by any stage. Domain columns: each domain's model on that domain's test pairs; general columns:
the mean over the four domain models (stage-3 rows) or the one model (other rows).

Usage::

    python benchmarks/customize_dsp.py --backbone minilm --out out/customize-minilm
    python benchmarks/customize_dsp.py --backbone smollm2 --lora --domains academy --limit-train 300 \\
        --limit-test 200 --rows stage2,stage3-from-stage2,imitation --out out/customize-smollm2

Re-running skips every model already trained and every evaluation already written (``OUT/results.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pluralrm.atomic import write_json
from pluralrm.backbone import FeatureCache, Featurizer, load_backbone
from pluralrm.backbone.pairs import featurize_pairs
from pluralrm.config import CUSTOMIZE
from pluralrm.data import load_pairs
from pluralrm.data.features import prompt_group
from pluralrm.data.splits import group_split
from pluralrm.rewards import fit_general_head
from pluralrm.rewards.reward_model import RewardModel

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {
    "helpful": "dsp/helpful.test-dev.json.gz",
    "harmless": "dsp/harmless.test-dev.json.gz",
    "webgpt": "dsp/webgpt.test-dev.json.gz",
    "domain": "dsp/domain_specific_preference.test-dev.json.gz",
}
DOMAINS = ("academy", "business", "entertainment", "literature")
GENERAL = ("helpful", "harmless", "webgpt")
ROWS = (
    "frozen-general",
    "frozen-user-bt-all",
    "stage2",
    "stage3-from-base",
    "stage3-from-stage2",
    "enrichment",
    "imitation",
    "both",
    "probe",
    "probe-enrichment",
)


def halves(pairs: list[dict], seed: int = 0) -> tuple[list[dict], list[dict]]:
    train, test = group_split([prompt_group(p["prompt"]) for p in pairs], [0.5, 0.5], seed=seed)
    return [pairs[i] for i in train], [pairs[i] for i in test]


def subsample(pairs: list[dict], limit: int | None, seed: int = 0) -> list[dict]:
    """A seeded subset of whole prompts with about ``limit`` pairs (all of them when ``limit`` is None)."""
    if not limit or len(pairs) <= limit:
        return pairs
    groups = sorted({prompt_group(p["prompt"]) for p in pairs})
    order = np.random.default_rng(seed).permutation(len(groups))
    keep, count, per_group = set(), 0, len(pairs) / len(groups)
    for g in order:
        if count >= limit:
            break
        keep.add(groups[g])
        count += per_group
    return [p for p in pairs if prompt_group(p["prompt"]) in keep]


def load_splits(
    limit_train: int | None, limit_test: int | None, limit_domain_train: int | None = None
) -> tuple[dict, dict]:
    """train[name], test[name] for the general sets and each domain user."""
    missing = [str(SHARED / f) for f in FILES.values() if not (SHARED / f).exists()]
    if missing:
        raise SystemExit(
            f"skip: real data absent ({', '.join(missing)}); this benchmark reads ../shared/data"
        )
    train, test = {}, {}
    for name in GENERAL:
        a, b = halves(load_pairs(SHARED / FILES[name], skip_invalid=True).records)
        train[name], test[name] = subsample(a, limit_train), subsample(b, limit_test)
    domain_train, domain_test = halves(load_pairs(SHARED / FILES["domain"], skip_invalid=True).records)
    for d in DOMAINS:
        train[d] = subsample([p for p in domain_train if p["subset"] == d], limit_domain_train or limit_train)
        test[d] = subsample([p for p in domain_test if p["subset"] == d], limit_test)
    return train, test


def accuracy(model: RewardModel, pairs: list[dict]) -> float:
    """Share of pairs whose chosen response gets the higher reward (ties count as half)."""
    items = [(p["prompt"], p["chosen"]) for p in pairs] + [(p["prompt"], p["rejected"]) for p in pairs]
    rewards = model.rewards(items)
    margin = rewards[: len(pairs)] - rewards[len(pairs) :]
    return float(np.mean((margin > 0) + 0.5 * (margin == 0)))


def evaluate(model: RewardModel, test: dict, names: list[str]) -> dict[str, float]:
    return {name: accuracy(model, test[name]) for name in names}


def frozen_rows(backbone: str, train: dict, test: dict, max_length: int, domains: list[str]) -> dict:
    """Today's decompose general head, and a per-user BT head on each user's whole training half."""
    featurizer = Featurizer(
        load_backbone(backbone, dtype="float32"), max_length=max_length, cache=FeatureCache.default()
    )
    feats_train = {n: featurize_pairs(train[n], featurizer) for n in train}
    feats_test = {n: featurize_pairs(test[n], featurizer) for n in test}

    def acc(head, name):
        margin = head.decision_function(feats_test[name].differences)
        return float(np.mean((margin > 0) + 0.5 * (margin == 0)))

    D = np.concatenate([feats_train[n].differences for n in GENERAL])
    order = np.random.default_rng(0).permutation(len(D))
    cut = int(0.8 * len(D))
    general, _ = fit_general_head(D[order[:cut]], D[order[cut:]])
    rows = {"frozen-general": {n: acc(general, n) for n in [*domains, *GENERAL]}}
    per_user = {}
    for d in domains:
        Dd = feats_train[d].differences
        order = np.random.default_rng(0).permutation(len(Dd))
        cut = int(0.8 * len(Dd))
        head, _ = fit_general_head(Dd[order[:cut]], Dd[order[cut:]])
        per_user[d] = acc(head, d)
    rows["frozen-user-bt-all"] = per_user
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--out", type=Path, default=Path("out/customize-minilm"))
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--lora", action="store_true", help="LoRA instead of full fine-tuning")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument(
        "--limit-train", type=int, default=None, help="about this many pairs per training set"
    )
    parser.add_argument("--limit-domain-train", type=int, default=None, help="~pairs per domain user")
    parser.add_argument("--limit-test", type=int, default=None, help="about this many pairs per test set")
    parser.add_argument("--general-lr", type=float, default=3e-5)
    parser.add_argument("--domain-lr", type=float, default=1e-5)
    parser.add_argument("--general-epochs", type=int, default=2)
    parser.add_argument("--domain-epochs", type=int, default=2)
    parser.add_argument("--enrichment", type=float, default=1.0)
    parser.add_argument("--imitation", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from pluralrm.training.customize import customize_reward_model

    domains = args.domains.split(",")
    rows = args.rows.split(",")
    train, test = load_splits(args.limit_train, args.limit_test, args.limit_domain_train)
    general_train = [p for n in GENERAL for p in train[n]]
    sizes = {n: {"train": len(train[n]), "test": len(test[n])} for n in [*GENERAL, *domains]}
    print("pairs:", json.dumps(sizes))
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"models": {}}
    if results.get("sizes") not in (None, sizes):
        results.pop("frozen", None)  # the frozen heads were fitted on other training pairs
    results["sizes"] = sizes
    base = CUSTOMIZE.__class__(
        batch_size=args.batch_size,
        max_length=args.max_length,
        lora=args.lora,
        learning_rate=args.domain_lr,
        epochs=args.domain_epochs,
    )
    general_config = replace(base, learning_rate=args.general_lr, epochs=args.general_epochs)

    def trained(name: str, pairs: list[dict], start: str, config, general=()) -> Path:
        out = args.out / "models" / name
        if not (out / "pluralrm_customize.json").exists():
            t = time.perf_counter()
            result = customize_reward_model(
                pairs, base=start, out_dir=out, config=config, general=general, stage=name
            )
            results["models"].setdefault(name, {})["train"] = {
                "seconds": time.perf_counter() - t,
                "tokens_per_second": result.tokens_per_second,
                "n_train": result.n_train,
                "validation_accuracy": result.validation_accuracy,
                "steps": result.steps,
            }
            write_json(results_path, results)
        return out

    def scored(name: str, directory: Path, names: list[str]) -> dict:
        entry = results["models"].setdefault(name, {})
        todo = [n for n in names if n not in entry.get("accuracy", {})]
        if todo:
            model = RewardModel.from_pretrained(directory)
            model.featurizer(cache=FeatureCache.default())
            entry.setdefault("accuracy", {}).update(evaluate(model, test, todo))
            write_json(results_path, results)
        return entry["accuracy"]

    if {"frozen-general", "frozen-user-bt-all"} & set(rows) and "frozen" not in results:
        results["frozen"] = frozen_rows(args.backbone, train, test, args.max_length, domains)
        write_json(results_path, results)
    stage2 = None
    if (set(ROWS[2:]) - {"stage3-from-base"}) & set(rows):
        stage2 = trained("stage2", general_train, args.backbone, general_config)
        scored("stage2", stage2, [*domains, *GENERAL])
    variants = {
        "stage3-from-base": (args.backbone, base),
        "stage3-from-stage2": (stage2, base),
        "enrichment": (stage2, replace(base, enrichment=args.enrichment)),
        "imitation": (stage2, replace(base, imitation=args.imitation)),
        "both": (stage2, replace(base, enrichment=args.enrichment, imitation=args.imitation)),
        # LP-FT (--head-init probe): the head starts as a BT head on stage 2's frozen features
        "probe": (stage2, replace(base, head_init="probe")),
        "probe-enrichment": (stage2, replace(base, head_init="probe", enrichment=args.enrichment)),
    }
    for row, (start, config) in variants.items():
        if row not in rows:
            continue
        for d in domains:
            name = f"{row}-{d}"
            directory = trained(name, train[d], str(start), config, general=general_train)
            scored(name, directory, [d, *GENERAL])
    print_table(results, rows, domains)


def print_table(results: dict, rows: list[str], domains: list[str]) -> None:
    columns = [*domains, *GENERAL]
    print("| model | " + " | ".join(columns) + " | domain mean | general mean |")
    print("|---" * (len(columns) + 3) + "|")
    for row in rows:
        cells: dict[str, float] = {}
        if row.startswith("frozen"):
            cells = results.get("frozen", {}).get(row, {})
        elif row == "stage2":
            cells = results["models"].get("stage2", {}).get("accuracy", {})
        else:
            per = [results["models"].get(f"{row}-{d}", {}).get("accuracy", {}) for d in domains]
            cells = {d: acc.get(d) for d, acc in zip(domains, per, strict=True) if d in acc}
            for g in GENERAL:
                values = [acc[g] for acc in per if g in acc]
                if values:
                    cells[g] = float(np.mean(values))
        if not cells:
            continue
        dom = [cells[d] for d in domains if cells.get(d) is not None]
        gen = [cells[g] for g in GENERAL if cells.get(g) is not None]
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        line = " | ".join(fmt(cells.get(c)) for c in columns)
        means = f"{fmt(np.mean(dom) if dom else None)} | {fmt(np.mean(gen) if gen else None)}"
        print(f"| {row} | {line} | {means} |")


if __name__ == "__main__":
    main()
