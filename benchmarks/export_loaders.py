"""A ``pluralrm customize`` export in the field's loaders, on real pairs: how far they score from pluralrm.

Fine-tunes a short run on real HH-RLHF pairs (the DSP helpful set; multi-turn, often longer than the
training length), then on held-out pairs compares ``pluralrm score``'s rewards (``RewardModel.rewards``, the
one scoring path, plus the recorded classifier bias) with plain transformers — the folder's own
``AutoModelForSequenceClassification`` and ``AutoTokenizer`` and the tokenizer's defaults
(``truncation=True``) — and, for what was fixed, with the base tokenizer's settings (right truncation at its
own ``model_max_length``). Then TRL's ``RewardTrainer`` trains one step from the folder on string pairs and
on conversational pairs. fp32 on CPU.

Usage::

    python benchmarks/export_loaders.py --backbone minilm
    python benchmarks/export_loaders.py --backbone smollm2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_pairs(n_train: int, n_test: int) -> tuple[list[dict], list[dict]]:
    from pluralrm.data import load_pairs

    path = SHARED / "dsp" / "helpful.test-dev.json.gz"
    if not path.exists():
        raise SystemExit(f"{path} is absent (the benchmark reads ../shared/data)")
    records = load_pairs(path, skip_invalid=True).records
    return records[:n_train], records[n_train : n_train + n_test]


def transformers_rewards(
    directory: Path, texts: list[str], *, base_settings: dict | None = None
) -> np.ndarray:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    for key, value in (base_settings or {}).items():
        setattr(tokenizer, key, value)
    model = AutoModelForSequenceClassification.from_pretrained(directory, dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), 8):
            batch = tokenizer(texts[start : start + 8], truncation=True, padding=True, return_tensors="pt")
            out.append(model(**batch).logits[:, 0].numpy())
    return np.concatenate(out)


def trl_step(directory: Path, rows: list[dict]) -> float:
    import datasets
    from trl import RewardConfig, RewardTrainer

    with tempfile.TemporaryDirectory() as tmp:
        args = RewardConfig(
            output_dir=tmp,
            max_steps=1,
            per_device_train_batch_size=2,
            learning_rate=1e-5,
            report_to="none",
            use_cpu=True,
            bf16=False,
            save_strategy="no",
            seed=0,
        )
        trainer = RewardTrainer(
            model=str(directory), args=args, train_dataset=datasets.Dataset.from_list(rows)
        )
        return float(trainer.train().training_loss)


def main() -> None:
    from transformers import AutoTokenizer

    from pluralrm.backbone.loading import _resolve
    from pluralrm.config import CustomizeConfig
    from pluralrm.rewards.reward_model import RewardModel
    from pluralrm.training.customize import customize_reward_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--train", type=int, default=16)
    parser.add_argument("--test", type=int, default=48)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    train, test = real_pairs(args.train, args.test)
    base = AutoTokenizer.from_pretrained(_resolve(args.backbone)[0])
    config = CustomizeConfig(
        epochs=1,
        learning_rate=2e-5,
        batch_size=4,
        max_length=args.max_length,
        validation_fraction=0.0,
        device="cpu",
        dtype="float32",
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = customize_reward_model(
            train, base=args.backbone, out_dir=Path(tmp) / "rm", config=config
        ).out_dir
        exported = json.loads((out / "pluralrm_customize.json").read_text())["export"]
        model = RewardModel.from_pretrained(out)
        featurizer = model.featurizer(device="cpu")
        sides = [(p["prompt"], p[side]) for p in test for side in ("chosen", "rejected")]
        ours = model.rewards(sides) + model.metadata["score_bias"]
        texts = [featurizer.format(prompt, response) for prompt, response in sides]
        tokenizer = AutoTokenizer.from_pretrained(out)
        longer = sum(
            len(tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"]) > args.max_length
            for t in texts
        )
        theirs = transformers_rewards(out, texts)
        before = transformers_rewards(
            out,
            texts,
            base_settings={
                "truncation_side": base.truncation_side,
                "model_max_length": base.model_max_length,
            },
        )
        strings = [
            {
                "chosen": featurizer.format(p["prompt"], p["chosen"]),
                "rejected": featurizer.format(p["prompt"], p["rejected"]),
            }
            for p in train[:2]
        ]
        messages = [
            {
                "prompt": p["prompt"]
                if isinstance(p["prompt"], list)
                else [{"role": "user", "content": p["prompt"]}],
                "chosen": [{"role": "assistant", "content": p["chosen"]}],
                "rejected": [{"role": "assistant", "content": p["rejected"]}],
            }
            for p in train[:2]
        ]
        string_loss, conversational_loss = trl_step(out, strings), trl_step(out, messages)

    print(f"backbone {args.backbone}: {len(texts)} texts, {longer} longer than {args.max_length} tokens")
    print(f"  saved tokenizer: {json.dumps(exported['tokenizer'])}")
    print(f"  loads: {json.dumps({k: v['ok'] for k, v in exported['loads'].items()})}")
    print(f"  max |transformers (saved tokenizer defaults) - pluralrm| = {np.abs(theirs - ours).max():.2e}")
    print(
        f"  max |transformers (base tokenizer's truncation_side={base.truncation_side!r}, "
        f"model_max_length={base.model_max_length}) - pluralrm| = {np.abs(before - ours).max():.2e}"
    )
    print(
        f"  TRL RewardTrainer, one step from the folder: string pairs loss {string_loss:.4f}, "
        f"conversational pairs loss {conversational_loss:.4f}"
    )


if __name__ == "__main__":
    main()
