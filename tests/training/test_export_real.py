"""The real MiniLM and SmolLM2 exports in the field's loaders (slow: a short fine-tune of each, offline).

For each: plain transformers, with the saved folder's tokenizer and its defaults, equals ``pluralrm score``
(≤ 1e-4, fp32) on pairs whose texts are longer than the training length; TRL's ``RewardTrainer`` trains a
step from the folder on string and on conversational pairs; SmolLM2 meets OpenRLHF's reward-model contract,
MiniLM says it would not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.config import CustomizeConfig
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.training.customize import customize_reward_model
from tests.training.conftest import openrlhf_rewards, rule_pairs, trl_one_step

pytestmark = pytest.mark.slow

MAX_LENGTH = 48
CONFIG = CustomizeConfig(
    epochs=1,
    learning_rate=1e-4,
    batch_size=4,
    device="cpu",
    dtype="float32",
    save_steps=1000,
    max_length=MAX_LENGTH,
    validation_fraction=0.0,
)
LONG = "Question 7: " + " ".join(["Tell me, what is the capital of France and why?"] * 8)
TEST_PAIRS = [
    {"prompt": LONG, "chosen": "Paris is the capital of France.", "rejected": "no"},
    {
        "prompt": [
            {"role": "user", "content": "Question 1?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And the capital of France?"},
        ],
        "chosen": "The capital is Paris.",
        "rejected": "capital capital",
    },
    {"prompt": "Hello world?", "chosen": "Hello world, the answer is Paris.", "rejected": "what"},
]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("real-exports")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLURALRM_CACHE", str(root / "cache"))  # SmolLM2's converted copy, made once here
        return {
            base: customize_reward_model(rule_pairs(2), base=base, out_dir=root / base, config=CONFIG).out_dir
            for base in ("minilm", "smollm2")
        }


@pytest.mark.parametrize("base", ["minilm", "smollm2"])
def test_transformers_defaults_equal_pluralrm_score(exports, base, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = exports[base]
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(p) + "\n" for p in TEST_PAIRS))
    out = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(
        app, ["score", str(directory), str(pairs_file), "--out", str(out), "--no-cache", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    model = RewardModel.from_pretrained(directory)
    ours = np.array([[r["chosen_reward"], r["rejected_reward"]] for r in rows]).ravel()
    ours += model.metadata["score_bias"]  # pluralrm leaves a classifier's constant out

    featurizer = model.featurizer(device="cpu")
    texts = [featurizer.format(p["prompt"], p[side]) for p in TEST_PAIRS for side in ("chosen", "rejected")]
    tokenizer = AutoTokenizer.from_pretrained(directory)
    assert len(tokenizer(texts[0], add_special_tokens=False)["input_ids"]) > 2 * MAX_LENGTH
    hf = AutoModelForSequenceClassification.from_pretrained(directory, dtype=torch.float32).eval()
    with torch.no_grad():
        theirs = hf(**tokenizer(texts, truncation=True, padding=True, return_tensors="pt")).logits[:, 0]
    assert np.abs(theirs.numpy() - ours).max() <= 1e-4, (theirs, ours)
    if base == "smollm2":
        np.testing.assert_allclose(openrlhf_rewards(directory, texts, max_len=MAX_LENGTH), ours, atol=1e-4)


@pytest.mark.parametrize("base", ["minilm", "smollm2"])
def test_trl_trains_a_step_from_the_folder_on_string_and_conversational_pairs(exports, base, tmp_path):
    model = RewardModel.from_pretrained(exports[base])
    featurizer = model.featurizer(device="cpu")
    pairs = rule_pairs(1)[:2]
    conversational = [
        {
            "prompt": [{"role": "user", "content": p["prompt"]}],
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        for p in pairs
    ]
    strings = [
        {
            "chosen": featurizer.format(p["prompt"], p["chosen"]),
            "rejected": featurizer.format(p["prompt"], p["rejected"]),
        }
        for p in pairs
    ]
    for name, rows in (("conversational", conversational), ("string", strings)):
        trainer, loss, moved = trl_one_step(exports[base], rows, tmp_path / name)
        assert trainer.state.global_step == 1 and np.isfinite(loss) and moved > 0, (name, loss)
    loads = json.loads((exports[base] / "pluralrm_customize.json").read_text())["export"]["loads"]
    assert loads["openrlhf_reward_model"]["ok"] is (base == "smollm2")
