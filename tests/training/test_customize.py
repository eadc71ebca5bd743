"""Reward-model fine-tuning on tiny random models: what it saves, how it scores, resumes and fails."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pluralrm.config import CustomizeConfig
from pluralrm.rewards.reward_model import RewardModel
from pluralrm.training.customize import customize_reward_model
from pluralrm.training.runs import NonFiniteLossError
from tests.training.conftest import rule_pairs

FAST = CustomizeConfig(
    epochs=2, learning_rate=5e-3, batch_size=4, device="cpu", dtype="float32", save_steps=1000
)
NEW_PROMPT = "Question 99: what is the capital of France?"


def transformers_scores(directory, texts_ids) -> list[float]:
    """Rewards as plain transformers computes them: AutoModelForSequenceClassification on the same ids."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    with torch.no_grad():
        return [model(input_ids=torch.tensor([ids])).logits.item() for ids in texts_ids]


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_saved_model_loads_in_plain_transformers_and_scores_like_pluralrm(tiny_model_dirs, tmp_path, kind):
    from transformers import AutoTokenizer

    from pluralrm.backbone.collate import tokenize_left_truncated
    from pluralrm.backbone.formatting import uses_chat_template

    out = tmp_path / "rm"
    result = customize_reward_model(rule_pairs(), base=str(tiny_model_dirs[kind]), out_dir=out, config=FAST)
    assert result.losses[-1] < result.losses[0] - 0.05, result.losses  # it learned something
    assert not (out / "checkpoints").exists()  # a finished run leaves only the model

    model = RewardModel.from_pretrained(out)
    responses = ["Paris is the capital of France.", "no", "The capital is Paris.", "capital capital"]
    ours = model.rewards([(NEW_PROMPT, r) for r in responses])
    featurizer = model.featurizer()
    tokenizer = AutoTokenizer.from_pretrained(out)
    templated = uses_chat_template(tokenizer, featurizer.backbone.kind)
    ids = tokenize_left_truncated(
        tokenizer,
        [featurizer.format(NEW_PROMPT, r) for r in responses],
        256,
        add_special_tokens=not templated,
    )
    theirs = np.array(transformers_scores(out, ids))
    # pluralrm leaves out the classifier's bias (recorded), which no comparison depends on.
    np.testing.assert_allclose(ours + model.metadata["score_bias"], theirs, atol=1e-5)
    assert ours[0] > ours[1] and ours[2] > ours[3]  # the rule holds on a prompt it never saw
    metadata = json.loads((out / "pluralrm_customize.json").read_text())
    assert metadata["scoring"]["pooling"] == ("pooler" if kind == "bert" else "last")
    assert metadata["stages"][0]["base_model"] == str(tiny_model_dirs[kind])
    assert metadata["namespace"] == featurizer.namespace(featurizer.spec)


def test_stage3_from_stage2_chains_stages_and_mixes_in_general_pairs(tiny_model_dirs, tmp_path):
    general = rule_pairs(8)
    stage2 = customize_reward_model(
        general, base=str(tiny_model_dirs["bert"]), out_dir=tmp_path / "general", config=FAST, stage="general"
    )
    domain = rule_pairs(6, subset="academy")
    config = CustomizeConfig(
        epochs=1, learning_rate=1e-3, batch_size=4, device="cpu", dtype="float32", enrichment=0.5
    )
    stage3 = customize_reward_model(
        domain, base=str(stage2.out_dir), out_dir=tmp_path / "academy", config=config, general=general
    )
    stages = stage3.metadata["stages"]
    assert [s["stage"] for s in stages] == ["general", "domain"]  # unnamed stage 3: "domain"
    assert stages[1]["base_model"] == str(tiny_model_dirs["bert"])  # the root of the chain
    n_train_domain = len(domain) - stage3.n_validation
    assert stages[1]["n_general_mixed_in"] == round(0.5 * n_train_domain)
    assert stage3.n_train == n_train_domain + round(0.5 * n_train_domain)


def test_without_validation_pairs_every_pair_is_trained_on(tiny_model_dirs, tmp_path):
    # validation_fraction 0 (a user with 15 labelled pairs) used to crash on the empty validation set
    config = CustomizeConfig(**{**FAST.__dict__, "validation_fraction": 0.0})
    pairs = rule_pairs(6)
    result = customize_reward_model(
        pairs, base=str(tiny_model_dirs["bert"]), out_dir=tmp_path / "all", config=config
    )
    assert (result.n_train, result.n_validation, result.validation_accuracy) == (len(pairs), 0, None)
    assert result.metadata["stages"][-1]["validation_accuracy"] is None


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_probe_head_init_starts_a_disagreeing_user_where_a_linear_probe_would(
    tiny_model_dirs, tmp_path, kind
):
    general = customize_reward_model(
        rule_pairs(8), base=str(tiny_model_dirs[kind]), out_dir=tmp_path / "general", config=FAST
    )
    # A user who prefers exactly what the general RM rejects; a learning rate of ~0 leaves the weights as
    # they start, so the saved model shows where each initialization puts the head.
    flipped = [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} for p in rule_pairs(8)]
    still = {**FAST.__dict__, "epochs": 1, "learning_rate": 1e-12}
    runs = {
        init: customize_reward_model(
            flipped,
            base=str(general.out_dir),
            out_dir=tmp_path / init,
            config=CustomizeConfig(**{**still, "head_init": init}),
        )
        for init in ("keep", "probe")
    }
    unseen = [{**p, "prompt": f"Another question {i}?"} for i, p in enumerate(flipped[:6])]

    def accuracy(out) -> float:
        model = RewardModel.from_pretrained(out)
        chosen = model.rewards([(p["prompt"], p["chosen"]) for p in unseen])
        rejected = model.rewards([(p["prompt"], p["rejected"]) for p in unseen])
        return float(np.mean(chosen > rejected))

    assert accuracy(runs["keep"].out_dir) == 0.0  # the general head ranks this user's choices last
    record = runs["probe"].metadata["stages"][-1]["head_init"]
    assert record["kind"] == "probe" and record["train_accuracy"] == 1.0
    # pluralrm's scoring path (its own forward pass, through the featurizer) agrees with the probe
    assert accuracy(runs["probe"].out_dir) == 1.0
    assert runs["keep"].metadata["stages"][-1]["head_init"] == {"kind": "keep"}


def test_unknown_head_init_is_refused(tiny_model_dirs, tmp_path):
    with pytest.raises(ValueError, match="head_init must be one of keep, probe"):
        customize_reward_model(
            rule_pairs(),
            base=str(tiny_model_dirs["bert"]),
            out_dir=tmp_path / "x",
            config=CustomizeConfig(head_init="lp-ft", device="cpu"),
        )


def test_imitation_adds_the_language_modelling_loss_of_the_chosen_response(tiny_model_dirs, tmp_path):
    plain = CustomizeConfig(epochs=1, learning_rate=1e-9, batch_size=4, device="cpu", dtype="float32")
    base = str(tiny_model_dirs["llama"])
    without = customize_reward_model(rule_pairs(), base=base, out_dir=tmp_path / "a", config=plain)
    imitating = customize_reward_model(
        rule_pairs(),
        base=base,
        out_dir=tmp_path / "b",
        config=CustomizeConfig(**{**plain.__dict__, "imitation": 2.0}),
    )
    # Same seed and data: step 1's Bradley–Terry loss is identical, so the difference is 2 × the LM loss,
    # which for a random model over a 400-token vocabulary is near ln(400) ≈ 6.
    extra = (imitating.losses[0] - without.losses[0]) / 2.0
    assert 4.0 < extra < 8.0, extra


def test_imitation_needs_a_causal_lm(tiny_model_dirs, tmp_path):
    config = CustomizeConfig(imitation=0.5, device="cpu", dtype="float32")
    with pytest.raises(ValueError, match="imitation needs a causal LM"):
        customize_reward_model(
            rule_pairs(), base=str(tiny_model_dirs["bert"]), out_dir=tmp_path / "x", config=config
        )


def test_refuses_to_overwrite_another_model(tiny_model_dirs, tmp_path):
    with pytest.raises(ValueError, match="holds another model"):
        customize_reward_model(
            rule_pairs(), base=str(tiny_model_dirs["bert"]), out_dir=tiny_model_dirs["gpt2"], config=FAST
        )


def test_a_killed_run_resumes_to_the_same_model(tiny_model_dirs, tmp_path):
    from transformers import TrainerCallback

    config = CustomizeConfig(
        epochs=1, learning_rate=5e-3, batch_size=4, device="cpu", dtype="float32", save_steps=2
    )
    base = str(tiny_model_dirs["bert"])

    class Killed(Exception):
        pass

    class KillAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Killed

    with pytest.raises(Killed):
        customize_reward_model(
            rule_pairs(), base=base, out_dir=tmp_path / "resumed", config=config, callbacks=[KillAtStep3()]
        )
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-2").is_dir()
    resumed = customize_reward_model(rule_pairs(), base=base, out_dir=tmp_path / "resumed", config=config)
    straight = customize_reward_model(rule_pairs(), base=base, out_dir=tmp_path / "straight", config=config)
    assert resumed.resumed_from == "checkpoint-2"
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-5)
    items = [(NEW_PROMPT, "Paris is the capital of France."), (NEW_PROMPT, "no")]
    np.testing.assert_allclose(
        RewardModel.from_pretrained(tmp_path / "resumed").rewards(items),
        RewardModel.from_pretrained(tmp_path / "straight").rewards(items),
        atol=1e-5,
    )
    # Checkpoints of this run do not resume a run with other settings.
    with pytest.raises(Killed):
        customize_reward_model(
            rule_pairs(), base=base, out_dir=tmp_path / "other", config=config, callbacks=[KillAtStep3()]
        )
    with pytest.raises(ValueError, match="different run"):
        other = CustomizeConfig(**{**config.__dict__, "learning_rate": 1e-4})
        customize_reward_model(rule_pairs(), base=base, out_dir=tmp_path / "other", config=other)


def test_non_finite_loss_stops_the_run(tiny_model_dirs, tmp_path, monkeypatch):
    from pluralrm.training.customize.trainer import CustomizeTrainer

    original = CustomizeTrainer.compute_loss

    def nan_from_step_2(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = original(self, model, inputs, return_outputs, num_items_in_batch)
        return loss * float("nan") if self.state.global_step >= 1 else loss

    monkeypatch.setattr(CustomizeTrainer, "compute_loss", nan_from_step_2)
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 2"):
        customize_reward_model(
            rule_pairs(), base=str(tiny_model_dirs["bert"]), out_dir=tmp_path / "nan", config=FAST
        )
    assert not (tmp_path / "nan" / "config.json").exists()  # no model was saved


def test_bf16_mixed_precision_and_activation_checkpointing_keep_fp32_weights(tiny_model_dirs, tmp_path):
    from safetensors import safe_open

    config = CustomizeConfig(
        epochs=1,
        learning_rate=5e-3,
        batch_size=4,
        device="cpu",
        dtype="bfloat16",
        gradient_checkpointing=True,
    )
    result = customize_reward_model(
        rule_pairs(), base=str(tiny_model_dirs["llama"]), out_dir=tmp_path / "bf16", config=config
    )
    assert result.metadata["stages"][0]["dtype"] == "bfloat16"
    with safe_open(str(tmp_path / "bf16" / "model.safetensors"), "pt") as handle:
        assert handle.get_tensor("score.weight").dtype == torch.float32  # master weights stay fp32
    # Scoring reads fp32 features of the saved weights, whatever precision trained them.
    assert RewardModel.from_pretrained(tmp_path / "bf16").namespace["dtype"] == "float32"


def test_lora_with_imitation_saves_a_merged_plain_model(tiny_model_dirs, tmp_path):
    config = CustomizeConfig(
        epochs=2, learning_rate=5e-3, batch_size=4, device="cpu", dtype="float32", lora=True, imitation=0.1
    )
    result = customize_reward_model(
        rule_pairs(), base=str(tiny_model_dirs["llama"]), out_dir=tmp_path / "lora", config=config
    )
    files = {p.name for p in (tmp_path / "lora").iterdir()}
    assert "adapter_config.json" not in files and "model.safetensors" in files  # merged: loads without peft
    assert result.metadata["stages"][0]["lora_target_modules"] == "all-linear"
    model = RewardModel.from_pretrained(tmp_path / "lora")
    good, bad = model.rewards([(NEW_PROMPT, "Paris is the capital of France."), (NEW_PROMPT, "no")])
    assert good > bad
