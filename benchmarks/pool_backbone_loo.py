"""Does a backbone fine-tuned on the *pool's* users make a new user cheaper to learn? (issue 8, an experiment)

Issue 8 asks for personalization that beats a from-scratch Bradley–Terry head on a user the pool has never
seen. Every adapter measured so far works on *frozen* features; issue 9's runs showed that a backbone
fine-tuned on general pairs is a slightly better basis for a new user's few-shot head (+1 point at k = 15).
This experiment trains the backbone on the pool itself, leave-one-user-out: for each DSP domain user, MiniLM
is fine-tuned with **one reward head per pool member** (the general sets share head 0, each of the other three
domain users has its own) on a shared backbone — the pool's users never have to agree, they only have to be
told apart — and the target user's k-shot methods then run on that backbone's features. The target user's
pairs (and their test prompts' pairs) never reach the backbone or the pool.

Rows per target user, all leave-one-user-out (``pluralrm.adapt.kshot.run_kshot``, 20 draws of k pairs):
``drm-map``, ``lore-hyre``, ``user-bt`` (the bar) on frozen MiniLM and on the pool-trained backbone. The
split, limits and test pairs are ``benchmarks/customize_dsp.py``'s.

Usage::

    python benchmarks/pool_backbone_loo.py --out out/pool-backbone

An experiment, not a product feature: the multi-head trainer lives here, not in
``pluralrm.training.customize``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from customize_dsp import DOMAINS, GENERAL, load_splits
from customize_vs_personalize import METHODS, loo_features
from pluralrm.adapt.kshot import run_kshot
from pluralrm.atomic import write_json
from pluralrm.backbone import FeatureCache, Featurizer, load_backbone
from pluralrm.training.customize.data import tokenize_pairs
from pluralrm.training.customize.trainer import PreferenceCollator


class HeadCollator(PreferenceCollator):
    """The preference collator plus each pair's head index."""

    def torch_call(self, examples):
        heads = torch.tensor([example["head"] for example in examples], dtype=torch.long)
        output = super().torch_call([{k: v for k, v in ex.items() if k != "head"} for ex in examples])
        output["head"] = heads
        return output


def multi_head_trainer_class():
    from transformers import Trainer

    class MultiHeadTrainer(Trainer):
        """Bradley–Terry loss on the logit of each pair's own head (num_labels = number of pool members)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            heads = inputs.pop("head")
            outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            chosen, rejected = outputs.logits.chunk(2)
            index = heads.unsqueeze(1)
            margin = chosen.gather(1, index) - rejected.gather(1, index)
            loss = -torch.nn.functional.logsigmoid(margin).mean()
            return (loss, outputs) if return_outputs else loss

    return MultiHeadTrainer


def train_pool_backbone(groups: list[list[dict]], out: Path, args) -> float:
    """Fine-tune MiniLM with one head per group of pairs; save the model; return the seconds it took."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainingArguments, set_seed

    from pluralrm.backbone.device import resolve_dtype
    from pluralrm.backbone.loading import detect_kind, resolve_backbone

    source, _, _ = resolve_backbone(args.backbone)
    set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=len(groups))
    kind = detect_kind(model.config)
    examples = []
    for head, pairs in enumerate(groups):
        for example in tokenize_pairs(pairs, tokenizer, kind, args.max_length):
            examples.append({**example, "head": head})
    import datasets

    training = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        warmup_steps=0.05,
        per_device_train_batch_size=8,
        seed=0,
        data_seed=0,
        use_cpu=True,
        bf16=resolve_dtype(args.dtype, "cpu") == "bfloat16",  # the featurizer's and customize's policy
        remove_unused_columns=False,
        save_strategy="no",
        logging_steps=50,
        report_to=[],
        disable_tqdm=True,
    )
    trainer = multi_head_trainer_class()(
        model=model,
        args=training,
        data_collator=HeadCollator(pad_token_id=tokenizer.pad_token_id),
        train_dataset=datasets.Dataset.from_list(examples).shuffle(seed=0),
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return seconds


def kshot_rows(backbone: str, target: str, train: dict, test: dict, ks, draws, max_length) -> list[dict]:
    featurizer = Featurizer(
        load_backbone(backbone, dtype="float32"), max_length=max_length, cache=FeatureCache.default()
    )
    pool, users = loo_features(featurizer, train, test)
    # run_kshot leaves the target user's pairs out of the pool itself
    return run_kshot(pool, {target: users[target]}, ks=ks, n_draws=draws, methods=METHODS)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/pool-backbone"))
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--limit-domain-train", type=int, default=400)
    parser.add_argument("--limit-test", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument(
        "--dtype", default="auto", help="auto (bf16 where measured faster), float32, bfloat16"
    )
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--domains", default=",".join(DOMAINS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train, test = load_splits(None, args.limit_test, args.limit_domain_train)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    ks = [15, 100]
    for target in args.domains.split(","):
        key = f"pool-backbone/{target}"
        if key not in results:
            others = [d for d in DOMAINS if d != target]
            general = [p for g in GENERAL for p in train[g]]
            directory = args.out / "models" / target
            seconds = train_pool_backbone([general, *(train[d] for d in others)], directory, args)
            rows = kshot_rows(str(directory), target, train, test, ks, args.draws, args.max_length)
            results[key] = {"seconds": seconds, "rows": rows}
            write_json(path, results)
        if f"frozen/{target}" not in results:
            rows = kshot_rows(args.backbone, target, train, test, ks, args.draws, args.max_length)
            results[f"frozen/{target}"] = {"rows": rows}
            write_json(path, results)
    print_summary(results, ks, args.domains.split(","))


def print_summary(results: dict, ks: list[int], domains: list[str]) -> None:
    print("| features | method | k | " + " | ".join(domains) + " | mean |")
    print("|---|---|---|" + "---|" * (len(domains) + 1))
    for name in ("frozen", "pool-backbone"):
        for method in METHODS:
            for k in ks if method != "user-bt-all" else [ks[0]]:
                values = []
                for d in domains:
                    rows = results[f"{name}/{d}"]["rows"]
                    values += [r["mean"] for r in rows if r["method"] == method and r["k"] == k]
                shown = "all" if method == "user-bt-all" else k
                line = " | ".join(f"{v:.3f}" for v in values)
                print(f"| {name} | {method} | {shown} | {line} | {np.mean(values):.3f} |")


if __name__ == "__main__":
    main()
