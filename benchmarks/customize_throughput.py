"""Training throughput of ``pluralrm customize`` (TRL's RewardTrainer) against a plain PyTorch loop.

Same model (the same initial weights), same batches in the same order (TRL's collator, sequential sampling),
same AdamW and learning rate, same Bradley–Terry loss, in one process; the two run alternately, twice each,
so that machine load hits both. Reported: tokens/s (non-padding tokens, as TRL counts them) and the
trainer's overhead, ``1 - trainer / plain``. The issue's bar: say where it is above 10 %.

Usage::

    python benchmarks/customize_throughput.py --backbone minilm --steps 30
"""

from __future__ import annotations

import argparse
import copy
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from pluralrm.config import CUSTOMIZE
from pluralrm.training.customize.data import tokenize_pairs

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def training_pairs(n: int) -> list[dict]:
    path = SHARED / "dsp" / "domain_specific_preference.test-dev.json.gz"
    if path.exists():
        from pluralrm.data import load_pairs

        return load_pairs(path, skip_invalid=True).records[:n]
    print(f"{path} is absent: using the built-in synthetic pairs (shorter texts)")
    from pluralrm.data.synthetic import make_synthetic_preferences

    return make_synthetic_preferences().pairs[:n]


def run_trainer(model, tokenizer, examples, config, steps: int) -> tuple[float, int]:
    """Seconds and tokens of ``steps`` optimizer steps of the customize trainer."""
    import datasets
    from transformers import PrinterCallback

    from pluralrm.training.customize.train import _reward_args
    from pluralrm.training.customize.trainer import CustomizeTrainer, PreferenceCollator

    with tempfile.TemporaryDirectory() as tmp:
        args = _reward_args(config, Path(tmp), "cpu", "float32", validate=False)
        args = replace(args, max_steps=steps, train_sampling_strategy="sequential", save_strategy="no")
        trainer = CustomizeTrainer(
            model=model,
            args=args,
            data_collator=PreferenceCollator(pad_token_id=tokenizer.pad_token_id),
            train_dataset=datasets.Dataset.from_list(examples),
            processing_class=tokenizer,
        )
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        return seconds, int(trainer._total_train_tokens)


def run_plain(model, tokenizer, examples, config, steps: int) -> tuple[float, int]:
    """The same steps as a hand-written loop: collate, forward both sides, BT loss, backward, AdamW."""
    from transformers import get_linear_schedule_with_warmup
    from trl.trainer.utils import disable_dropout_in_model

    from pluralrm.training.customize.trainer import PreferenceCollator

    disable_dropout_in_model(model)  # what RewardTrainer does by default (disable_dropout=True)
    collate = PreferenceCollator(pad_token_id=tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.05 * steps) + 1, steps)
    model.train()
    tokens = 0
    start = time.perf_counter()
    for step in range(steps):
        batch = collate(examples[step * config.batch_size : (step + 1) * config.batch_size])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(
            -1
        )
        chosen, rejected = logits.chunk(2)
        loss = -torch.nn.functional.logsigmoid(chosen - rejected).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        tokens += int(batch["attention_mask"].sum())
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from transformers import AutoTokenizer

    from pluralrm.backbone.loading import detect_kind, resolve_backbone
    from pluralrm.training.customize.train import _load_model

    config = replace(CUSTOMIZE, batch_size=args.batch_size, max_length=args.max_length, learning_rate=2e-5)
    source, _, revision = resolve_backbone(args.backbone)
    initial, tokenizer = _load_model(source, revision, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    kind = detect_kind(initial.config)
    examples = tokenize_pairs(training_pairs(args.steps * args.batch_size), tokenizer, kind, args.max_length)
    torch.set_num_threads(torch.get_num_threads())
    rows = {"trainer": [], "plain": []}
    for _ in range(args.repeats):
        for name, run in (("trainer", run_trainer), ("plain", run_plain)):
            seconds, tokens = run(copy.deepcopy(initial), tokenizer, examples, config, args.steps)
            rows[name].append(tokens / seconds)
            print(f"{name:8s} {seconds:6.1f} s  {tokens:,} tokens  {tokens / seconds:8,.0f} tokens/s")
    trainer, plain = max(rows["trainer"]), max(rows["plain"])
    print(
        f"\nbest of {args.repeats}: trainer {trainer:,.0f} tokens/s, plain loop {plain:,.0f} tokens/s, "
        f"ratio {trainer / plain:.3f} (trainer overhead {100 * (1 - trainer / plain):+.1f} %)"
    )


if __name__ == "__main__":
    main()
