"""LoRA SFT of a policy (pluralrm.training.policy): it learns, it changes only what LoRA may change, the
merged directory is the adapter folded in, bad records are located, a killed run resumes, the CLI works."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from dataclasses import asdict, fields, replace
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.config import FINETUNE, FinetuneConfig
from pluralrm.data import DataValidationError
from pluralrm.training import policy as finetune
from pluralrm.training.policy import NonFiniteLossError, finetune_sft

ANSWER = "The capital is Paris."
QUESTIONS = [
    "What is the capital of France?",
    "Hello, what is the capital of France?",
    "Which city is the capital of France?",
    "Tell me the capital of France.",
]
# A high rate: the tiny random model's logits are near uniform, and LoRA has to move them in few steps.
CONFIG = replace(FINETUNE, epochs=8, learning_rate=2e-2, batch_size=4, device="cpu")
STEPS = 16  # 8 records / batch 4 × 8 epochs


def _records(n: int = 8) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]},
                {"role": "assistant", "content": ANSWER},
            ],
            "id": f"p{i}",
            "reward": 1.0,
        }
        for i in range(n)
    ]


def _write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Train on one thread: this tiny model's ops are too small to share, and two threads on two busy cores
    spend a step waiting for each other (1 s vs 0.1 s measured on the shared CI machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tiny_model_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    data = root / "best_of_n.jsonl"
    _write_jsonl(data, _records())
    with pytest.MonkeyPatch.context() as patch:  # keep the fingerprint memo out of the user's cache
        patch.setenv("PLURALRM_CACHE", str(root / "cache"))
        result = finetune_sft(data, model=str(tiny_model_dirs["llama"]), out_dir=root / "run", config=CONFIG)
    return SimpleNamespace(result=result, data=data, base_dir=tiny_model_dirs["llama"])


def _answer_loglik(model, tokenizer, question: str, answer: str) -> float:
    """log p(answer turn | question) under ``model``: the sum over the answer's tokens only."""
    prompt = [{"role": "user", "content": question}]
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(
        [*prompt, {"role": "assistant", "content": answer}], tokenize=False
    )
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full_text, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0]  # (T, vocab)
    logp = torch.log_softmax(logits[:-1].float(), dim=-1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    return float(logp[len(prompt_ids) - 1 :].sum())


def _load(directory):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(directory).eval()


def test_loss_drops_and_the_target_answer_becomes_likelier(trained):
    from transformers import AutoTokenizer

    result = trained.result
    assert result.steps == STEPS and len(result.losses) == STEPS
    assert all(math.isfinite(x) for x in result.losses)
    assert result.last_loss < result.first_loss - 0.2, result.losses
    tokenizer = AutoTokenizer.from_pretrained(trained.base_dir)
    base, tuned = _load(trained.base_dir), _load(result.merged_dir)
    for question in (QUESTIONS[0], "Do you know the capital of France?"):  # seen, and not seen in training
        before = _answer_loglik(base, tokenizer, question, ANSWER)
        after = _answer_loglik(tuned, tokenizer, question, ANSWER)
        assert after > before + 2.0, (question, before, after)


def test_only_the_answer_turn_is_trained_on(tiny_model_dirs, tmp_path):
    from transformers import AutoTokenizer

    from pluralrm.training.sft_data import load_sft_examples

    examples, _, _ = load_sft_examples(_records(2))
    trainer = finetune._make_trainer(
        examples,
        tiny_model_dirs["llama"],
        None,
        CONFIG,
        tmp_path / "checkpoints",
        "cpu",
        finetune._loss_watch(),
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["llama"])
    for example, row in zip(_records(2), trainer.train_dataset, strict=True):
        prompt = tokenizer.apply_chat_template(
            example["messages"][:1], tokenize=False, add_generation_prompt=True
        )
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        labels = row["labels"]
        assert labels[:n_prompt] == [-100] * n_prompt  # the question is context, not a target
        assert labels[n_prompt:] == row["input_ids"][n_prompt:]  # every answer token is a target
        assert len(labels) > n_prompt


def test_lora_changed_only_adapter_weights_and_merge_folds_them_in(trained):
    from peft import PeftModel

    base_state = {k: v.clone() for k, v in _load(trained.base_dir).state_dict().items()}
    adapted = PeftModel.from_pretrained(_load(trained.base_dir), trained.result.adapter_dir).eval()
    lora_b = {n: p for n, p in adapted.named_parameters() if "lora_B" in n}
    assert lora_b and all(p.abs().max() > 0 for p in lora_b.values())  # B starts at zero: these trained
    for name, param in adapted.base_model.model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(param, base_state[name.replace(".base_layer", "")]), name

    merged = _load(trained.result.merged_dir).state_dict()
    assert merged.keys() == base_state.keys()
    changed = {k for k in merged if not torch.equal(merged[k], base_state[k])}
    linear = {k for k in merged if k.endswith("proj.weight")}
    assert changed == linear  # q/k/v/o and the MLP of every block; embeddings, norms and lm_head untouched
    # W' = W + (alpha / r) B A for one layer, the maths of merge_and_unload
    layer = adapted.base_model.model.model.layers[1].self_attn.q_proj
    delta = (
        (CONFIG.lora_alpha / CONFIG.lora_r) * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    )
    key = "model.layers.1.self_attn.q_proj.weight"
    torch.testing.assert_close(merged[key], base_state[key] + delta, atol=1e-6, rtol=1e-5)

    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.inference_mode():
        torch.testing.assert_close(
            _load(trained.result.merged_dir)(ids).logits, adapted(ids).logits, atol=1e-5, rtol=1e-4
        )


def test_merged_directory_and_metadata(trained):
    from transformers import AutoTokenizer

    result = trained.result
    files = {p.name for p in result.merged_dir.iterdir()}
    assert (
        "model.safetensors" in files and "config.json" in files and not any(f.endswith(".bin") for f in files)
    )
    assert AutoTokenizer.from_pretrained(
        result.merged_dir
    ).chat_template  # the generator formats prompts with it
    assert not (result.out_dir / "checkpoints").exists()  # a finished run keeps no checkpoints
    meta = json.loads(result.metadata_path.read_text())
    assert meta["data_sha256"] == hashlib.sha256(trained.data.read_bytes()).hexdigest()
    assert meta["config"] == asdict(CONFIG)
    assert meta["base_model"] == str(trained.base_dir) and meta["base_fingerprint"].startswith("dir:")
    assert meta["train"]["first_loss"] == result.first_loss and meta["train"]["last_loss"] == result.last_loss
    assert meta["train"]["steps"] == STEPS and meta["n_records"] == 8
    assert set(meta["versions"]) == {"pluralrm", "torch", "transformers", "trl", "peft"}
    # tokens trained on: every record's prompt and answer (no padding), once per epoch
    tokenizer = AutoTokenizer.from_pretrained(trained.base_dir)
    token_counts = [
        len(
            tokenizer(tokenizer.apply_chat_template(r["messages"], tokenize=False), add_special_tokens=False)[
                "input_ids"
            ]
        )
        for r in _records()
    ]
    assert result.train_tokens == CONFIG.epochs * sum(token_counts)


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ({"prompt": "x", "response": "y"}, "messages", "non-empty list"),
        ({"messages": []}, "messages", "non-empty list"),
        ({"messages": [{"role": "user", "content": "q"}]}, "messages[0].role", "last turn"),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]},
            "messages[1].content",
            "empty",
        ),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 3}]},
            "messages[1].content",
            "string",
        ),
        ({"messages": [{"role": "assistant", "content": "a"}]}, "messages", "no prompt"),
        ({"messages": ["q", {"role": "assistant", "content": "a"}]}, "messages[0]", "object"),
        ([1, 2], None, "JSON object"),
    ],
)
def test_a_bad_record_is_located_before_any_model_loads(tmp_path, line, field, reason):
    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps(_records(1)[0]) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(DataValidationError) as caught:
        finetune_sft(data, model="no-such-model-needed", out_dir=tmp_path / "run")
    error = caught.value
    assert error.location.source == str(data) and error.location.line == 2
    assert error.field == field and reason in error.reason


def test_in_memory_records_are_located_by_index(tmp_path):
    records = [*_records(2), {"messages": [{"role": "user", "content": "q"}]}]
    with pytest.raises(DataValidationError, match=r"record 2 \(0-based\), field 'messages\[0\].role'"):
        finetune_sft(records, model="unused", out_dir=tmp_path / "run")


def test_a_non_finite_loss_stops_the_run(tiny_model_dirs, tmp_path):
    config = replace(CONFIG, epochs=1, learning_rate=1e30)  # the first update blows the weights up
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 2"):
        finetune_sft(_records(), model=str(tiny_model_dirs["llama"]), out_dir=tmp_path / "run", config=config)
    watch = finetune._loss_watch()
    state = SimpleNamespace(global_step=3, max_steps=9)
    watch.on_log(None, state, None, logs={"loss": 1.5, "num_tokens": 120})
    assert watch.tokens == 120
    with pytest.raises(NonFiniteLossError, match="inf at step 3"):
        watch.on_log(None, state, None, logs={"loss": float("inf")})


def test_a_killed_run_resumes_from_its_last_checkpoint(trained, tmp_path, monkeypatch):
    config = replace(CONFIG, save_steps=2)  # same training as the fixture's, checkpoints every 2 steps
    make_watch = finetune._loss_watch

    def dies_at_step_3():
        watch = make_watch()
        on_log = watch.on_log

        def on_log_then_die(args, state, control, logs=None, **kwargs):
            on_log(args, state, control, logs=logs, **kwargs)
            if state.global_step == 3:
                raise KeyboardInterrupt  # killed after step 3 was taken, before its checkpoint

        watch.on_log = on_log_then_die
        return watch

    monkeypatch.setattr(finetune, "_loss_watch", dies_at_step_3)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        finetune_sft(trained.data, model=str(trained.base_dir), out_dir=out, config=config)
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2"]
    with pytest.raises(ValueError, match="different run"):
        finetune_sft(trained.data, model=str(trained.base_dir), out_dir=out, config=replace(config, seed=1))

    monkeypatch.setattr(finetune, "_loss_watch", make_watch)
    result = finetune_sft(trained.data, model=str(trained.base_dir), out_dir=out, config=config)
    assert result.resumed_from == "checkpoint-2"
    assert result.steps == STEPS and len(result.losses) == STEPS
    # data order, dropout and optimizer state come back with the checkpoint: the same run as unbroken
    assert result.losses == pytest.approx(trained.result.losses, abs=1e-4)


def test_cli_sft_end_to_end(tiny_model_dirs, tmp_path):
    data = tmp_path / "best_of_n.jsonl"
    _write_jsonl(data, _records(4))
    out = tmp_path / "run"
    runner = CliRunner()
    args = ["sft", str(data), "--model", str(tiny_model_dirs["llama"]), "--out", str(out)]
    result = runner.invoke(app, [*args, "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "4 records, 1 steps" in result.output and "merged" in result.output
    assert (out / "merged" / "model.safetensors").exists()
    assert json.loads((out / "pluralrm_sft.json").read_text())["config"]["epochs"] == 1

    data.write_text(data.read_text() + '{"messages": [{"role": "user", "content": "q"}]}\n')
    result = runner.invoke(app, [*args, "--epochs", "1"])
    assert result.exit_code == 2 and "line 5" in result.output and "messages[0].role" in result.output


def test_defaults_come_from_the_config():
    assert inspect.signature(finetune_sft).parameters["config"].default is FINETUNE
    assert all(f.metadata.get("help") for f in fields(FinetuneConfig))
    assert (FINETUNE.lora_r, FINETUNE.lora_alpha, FINETUNE.lora_dropout) == (16, 32, 0.05)
