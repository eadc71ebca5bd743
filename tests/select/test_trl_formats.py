"""Every export is read as is by `datasets` and trained on by TRL's own trainers (one step, tiny model)."""

from __future__ import annotations

import pytest

from pluralrm.atomic import write_jsonl
from pluralrm.select import best_of_n, best_vs_random, best_vs_worst, per_user_best_of_n, top_k_per_prompt

RECORDS = [
    {
        "id": f"q{p}",
        "prompt": f"What is {p} plus {p}?",
        "responses": [f"It is {2 * p}.", f"Maybe {p}.", "No idea.", ""],
        "rewards": [2.0, 0.5, -1.0, -3.0],
    }
    for p in range(6)
]


def _dataset(tmp_path, name, rows):
    from datasets import load_dataset

    path = tmp_path / f"{name}.jsonl"
    write_jsonl(path, rows)
    return load_dataset("json", data_files=str(path), split="train")


def _args(config_class, tmp_path, **extra):
    return config_class(
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        per_device_train_batch_size=2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        **extra,
    )


def _train_one_step(trainer_class, config_class, dataset, directory, tmp_path):
    """One optimizer step of a TRL trainer on ``dataset`` with the tiny model in ``directory``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trainer = trainer_class(
        model=AutoModelForCausalLM.from_pretrained(directory),
        args=_args(config_class, tmp_path, max_length=64),
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(directory),
    )
    return trainer.train()


@pytest.mark.parametrize(
    "make_rows",
    [
        lambda: best_of_n(RECORDS).rows,
        lambda: top_k_per_prompt(RECORDS, k=2).rows,
        lambda: per_user_best_of_n(RECORDS, {"u": [r["rewards"][::-1] for r in RECORDS]}).rows,
    ],
    ids=["best-of-n", "top-k", "per-user"],
)
def test_sft_exports_train_with_trl_sft(tmp_path, tiny_model_dirs, make_rows):
    from trl import SFTConfig, SFTTrainer

    dataset = _dataset(tmp_path, "sft", make_rows())
    assert dataset[0]["messages"][-1]["role"] == "assistant"
    result = _train_one_step(SFTTrainer, SFTConfig, dataset, tiny_model_dirs["llama"], tmp_path)
    assert result.global_step == 1 and result.training_loss > 0


@pytest.mark.parametrize(
    "make_rows",
    [lambda: best_vs_worst(RECORDS).rows, lambda: best_vs_random(RECORDS, seed=1).rows],
    ids=["best-vs-worst", "best-vs-random"],
)
def test_pair_exports_train_with_trl_dpo(tmp_path, tiny_model_dirs, make_rows):
    from trl import DPOConfig, DPOTrainer

    dataset = _dataset(tmp_path, "dpo", make_rows())
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    result = _train_one_step(DPOTrainer, DPOConfig, dataset, tiny_model_dirs["llama"], tmp_path)
    # Before any update the policy equals the reference, so the DPO loss is log 2.
    assert result.global_step == 1 and result.training_loss == pytest.approx(0.6931, abs=1e-3)
