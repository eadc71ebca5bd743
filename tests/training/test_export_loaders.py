"""A customize export read unchanged by the field's loaders, each scoring it as pluralrm does.

Tiny random models built from configs: a WordPiece BERT (``[CLS] … [SEP]``, no EOS, no chat template, like
MiniLM), a Llama with a chat template and a GPT-2 without one. For each export: plain transformers with the
saved tokenizer's own defaults gives pluralrm's rewards on texts longer than the training length; TRL's
``RewardTrainer`` trains a step from the folder on string and on conversational pairs, tokenizing the
conversational ones exactly as pluralrm does; OpenRLHF's reward-model contract holds for causal exports and
the BERT export says it would not.
"""

from __future__ import annotations

import json
import logging
import os
import stat

import numpy as np
import pytest
import torch

from pluralrm.config import CustomizeConfig
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.training.customize import customize_reward_model
from tests.training.conftest import openrlhf_rewards, rule_pairs, trl_one_step

MAX_LENGTH = 24  # shorter than LONG_PROMPT's rendering, so every loader must cut it as pluralrm does
FAST = CustomizeConfig(
    epochs=1,
    learning_rate=5e-3,
    batch_size=4,
    device="cpu",
    dtype="float32",
    save_steps=1000,
    max_length=MAX_LENGTH,
)
LONG_PROMPT = "Question 7: " + " ".join(["what is the capital of France?"] * 6)
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Question 1?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "what is the capital of France?"},
]
CASES = [
    (LONG_PROMPT, "Paris is the capital of France."),
    ("Question 99: what is the capital of France?", "no"),
    (CONVERSATION, "The capital is Paris."),
    ("Hello world?", "capital capital"),
]


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny_model_dirs, wordpiece_bert_dir):
    """One customize export per kind of base, made under umask 022."""
    root = tmp_path_factory.mktemp("exports")
    bases = {"bert": wordpiece_bert_dir, "llama": tiny_model_dirs["llama"], "gpt2": tiny_model_dirs["gpt2"]}
    old = os.umask(0o022)
    try:
        return {
            name: customize_reward_model(
                rule_pairs(4), base=str(base), out_dir=root / name, config=FAST
            ).out_dir
            for name, base in bases.items()
        }
    finally:
        os.umask(old)


def pluralrm_rewards(directory) -> tuple[np.ndarray, RewardModel]:
    model = RewardModel.from_pretrained(directory)
    return model.rewards(CASES) + model.metadata["score_bias"], model


def pluralrm_ids(model: RewardModel, prompt, response) -> list[int]:
    """The token ids pluralrm renders for one (prompt, response), before its cut to the last MAX_LENGTH."""
    from pluralrm.backbone.collate import tokenize_left_truncated
    from pluralrm.backbone.formatting import uses_chat_template

    featurizer = model.featurizer()
    tokenizer, kind = featurizer.backbone.tokenizer, featurizer.backbone.kind
    text = featurizer.format(prompt, response)
    add_special = not uses_chat_template(tokenizer, kind)
    (ids,) = tokenize_left_truncated(tokenizer, [text], 1 << 20, add_special_tokens=add_special)
    return ids


@pytest.mark.parametrize("kind", ["bert", "llama", "gpt2"])
def test_plain_transformers_with_the_saved_tokenizer_defaults_scores_like_pluralrm(exports, kind):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ours, model = pluralrm_rewards(exports[kind])
    featurizer = model.featurizer()
    texts = [featurizer.format(prompt, response) for prompt, response in CASES]
    tokenizer = AutoTokenizer.from_pretrained(exports[kind])
    assert (tokenizer.truncation_side, tokenizer.model_max_length) == ("left", MAX_LENGTH)
    assert len(tokenizer(texts[0], add_special_tokens=False)["input_ids"]) > MAX_LENGTH  # it must be cut
    hf = AutoModelForSequenceClassification.from_pretrained(exports[kind]).eval()
    with torch.no_grad():
        batch = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")  # the defaults
        theirs = hf(**batch).logits[:, 0].numpy()
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    assert np.ptp(ours) > 1e-4  # distinct rewards (10× the tolerance), so equality means something


@pytest.mark.parametrize("kind", ["bert", "llama", "gpt2"])
def test_the_chat_template_gives_pluralrms_token_ids(exports, kind):
    from transformers import AutoTokenizer

    _, model = pluralrm_rewards(exports[kind])
    tokenizer = AutoTokenizer.from_pretrained(exports[kind])
    metadata = json.loads((exports[kind] / "pluralrm_customize.json").read_text())["export"]
    assert metadata["tokenizer"]["chat_template"] == ("base" if kind == "llama" else "pluralrm-plain")
    for prompt, response in CASES:  # uncut (left truncation would cut a template's own [CLS])
        messages = ([{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt) + [
            {"role": "assistant", "content": response}
        ]
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        assert list(ids) == pluralrm_ids(model, prompt, response)
    if kind == "bert":
        assert tokenizer.eos_token == "[SEP]" and tokenizer.decode(ids[:1]) == "[CLS]"


@pytest.mark.parametrize("kind", ["bert", "llama", "gpt2"])
def test_trl_reward_trainer_trains_a_step_on_string_and_conversational_pairs(exports, kind, tmp_path):
    _, model = pluralrm_rewards(exports[kind])
    featurizer = model.featurizer()
    pairs = rule_pairs(1)[:2]
    conversational = [
        {
            "prompt": [{"role": "user", "content": p["prompt"]}],
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        for p in pairs
    ]
    trainer, loss, moved = trl_one_step(exports[kind], conversational, tmp_path / "conv")
    assert trainer.state.global_step == 1 and np.isfinite(loss) and moved > 0
    # TRL tokenized each conversation exactly as pluralrm scores it.
    assert trainer.train_dataset[0]["chosen_ids"] == pluralrm_ids(
        model, pairs[0]["prompt"], pairs[0]["chosen"]
    )

    strings = [
        {
            "chosen": featurizer.format(p["prompt"], p["chosen"]),
            "rejected": featurizer.format(p["prompt"], p["rejected"]),
        }
        for p in pairs
    ]
    trainer, loss, moved = trl_one_step(exports[kind], strings, tmp_path / "str")
    assert trainer.state.global_step == 1 and np.isfinite(loss) and moved > 0
    eos = trainer.processing_class.eos_token_id
    ours = pluralrm_ids(model, pairs[0]["prompt"], pairs[0]["chosen"])
    if (
        kind == "bert"
    ):  # TRL appends eos_token ([SEP]) to the text; the tokenizer adds [CLS] … [SEP] around it
        assert trainer.train_dataset[0]["chosen_ids"] == [*ours[:-1], eos, ours[-1]]
    else:
        assert trainer.train_dataset[0]["chosen_ids"] == [*ours, eos]


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_a_causal_export_meets_openrlhfs_reward_model_contract(exports, kind):
    ours, model = pluralrm_rewards(exports[kind])
    featurizer = model.featurizer()
    texts = [featurizer.format(prompt, response) for prompt, response in CASES]
    theirs = openrlhf_rewards(exports[kind], texts, max_len=MAX_LENGTH)
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    loads = json.loads((exports[kind] / "pluralrm_customize.json").read_text())["export"]["loads"]
    assert all(verdict["ok"] for verdict in loads.values()), loads


def test_a_bert_export_warns_that_openrlhf_would_serve_a_random_head(
    tiny_model_dirs, wordpiece_bert_dir, tmp_path, caplog
):
    with caplog.at_level(logging.WARNING, logger="pluralrm.training.customize.portable"):
        out = customize_reward_model(
            rule_pairs(2), base=str(wordpiece_bert_dir), out_dir=tmp_path / "rm", config=FAST
        )
    loads = json.loads((out.out_dir / "pluralrm_customize.json").read_text())["export"]["loads"]
    assert loads["openrlhf_reward_model"]["ok"] is False
    assert [n for n, v in loads.items() if v["ok"]] == [
        "transformers",
        "trl_reward_trainer_string_pairs",
        "trl_reward_trainer_conversational_pairs",
    ]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "OpenRLHF's reward model" in warning and "randomly initialised" in warning
    assert "pluralrm serve" in warning and "--reward.remote_url" in warning


def test_a_template_that_would_change_the_tokens_is_not_saved(tiny_model_dirs, monkeypatch):
    from transformers import AutoTokenizer

    from pluralrm.training.customize import portable

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["gpt2"])
    monkeypatch.setattr(portable, "plain_chat_template", lambda lead, tail: "{{ messages[0]['content'] }}")
    saved, record = portable.export_tokenizer(tokenizer, "causal", 64)
    assert saved.chat_template is None and record["chat_template"] is None
    assert record["notes"] == [
        "no chat template saved: apply_chat_template gives other token ids than pluralrm's rendering"
    ]
    loads = portable.loaders("causal", "last", record)
    assert loads["trl_reward_trainer_conversational_pairs"] == {
        "ok": False,
        "why": "no chat template (see export.tokenizer.notes in pluralrm_customize.json)",
    }
    assert tokenizer.truncation_side == "right" and not tokenizer.chat_template  # the caller's is untouched
    no_eos = portable.loaders("causal", "last", {**record, "eos_token": None})[
        "trl_reward_trainer_string_pairs"
    ]
    assert no_eos == {"ok": False, "why": "the tokenizer has no EOS token, which TRL appends to string pairs"}


def test_every_file_of_an_export_is_readable_by_others(exports):
    for directory in exports.values():
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}
        assert set(modes.values()) == {0o644}, modes
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755


def test_rank_scores_a_wide_file_with_a_customized_reward_model(exports, tmp_path):
    from typer.testing import CliRunner

    from pluralrm.atomic import write_jsonl
    from pluralrm.cli import app
    from pluralrm.data import load_ranked

    rows = [{"id": "q0", "prompt": CASES[0][0], "response_1": CASES[0][1], "response_2": "no", "tag": "x"}]
    write_jsonl(tmp_path / "wide.jsonl", rows)
    out = tmp_path / "rewarded.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "rank",
            str(tmp_path / "wide.jsonl"),
            "--model",
            str(exports["llama"]),
            "--out",
            str(out),
            "--no-cache",
        ],
    )
    assert result.exit_code == 0, result.output
    model = RewardModel.from_pretrained(exports["llama"])
    record = load_ranked(out).records[0]
    np.testing.assert_allclose(
        record["rewards"], model.rewards([(CASES[0][0], CASES[0][1]), (CASES[0][0], "no")]), atol=1e-5
    )
    assert record["other_columns"] == {"tag": "x"}
