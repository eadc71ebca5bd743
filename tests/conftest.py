"""Shared fixtures: an isolated cache, tiny random backbones built from configs, and the real data path."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip the test with a message saying what is missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (tests read ../shared/data beside the repo)")
    return path


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own PLURALRM_CACHE, so no state leaks between tests or from the user."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PLURALRM_CACHE", str(cache))
    return cache


def _train_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from pluralrm.data.synthetic import make_synthetic_preferences

    corpus = [r["text"] for r in make_synthetic_preferences(n_prompts=12, seed=1).responses]
    corpus += ["User: Assistant: System: Hello world, what is the capital of France? Paris."]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<eos>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="<eos>")


def _save_tiny(directory: Path, kind: str) -> Path:
    import torch
    from transformers import (
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
    )

    torch.manual_seed(0)
    tokenizer = _train_tokenizer()
    vocab = len(tokenizer)
    if kind == "gpt2":
        model = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=vocab,
                n_positions=256,
                n_embd=32,
                n_layer=2,
                n_head=2,
                eos_token_id=tokenizer.eos_token_id,
            )
        )
    elif kind == "llama":
        model = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=vocab,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=3,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=256,
                eos_token_id=tokenizer.eos_token_id,
            )
        )
        tokenizer.chat_template = CHAT_TEMPLATE
    else:
        model = BertModel(
            BertConfig(
                vocab_size=vocab,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                max_position_embeddings=256,
            )
        )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Directories of tiny random GPT-2, Llama (with a chat template) and BERT models."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {kind: _save_tiny(root / kind, kind) for kind in ("gpt2", "llama", "bert")}
