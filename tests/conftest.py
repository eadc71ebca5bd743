"""Shared fixtures and helpers: an isolated cache, tiny random backbones built from configs, the real data
path, and small synthetic data that tests of several packages build on (plain functions, imported by name)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pluralrm.data.features import PairFeatures

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


# --- synthetic data shared by tests of several packages -------------------------------------------

# A feature namespace as featurize records it (tests compare models' and features' namespaces).
NAMESPACE = {
    "backbone": "dir:abc",
    "spec": {"pooling": "mean", "layer": 2, "normalize": False},
    "max_length": 128,
    "format_version": "1",
    "chat_template": False,
    "dtype": "float32",
}


def features(n=300, d=10, seed=0, namespace=NAMESPACE):
    """Pairs whose chosen side leans along a fixed direction, in a fixed feature namespace."""
    rng = np.random.default_rng(seed)
    chosen = rng.normal(size=(n, d)) + np.linspace(0.6, -0.3, d)
    rejected = rng.normal(size=(n, d))
    return PairFeatures(
        chosen=chosen.astype(np.float32),
        rejected=rejected.astype(np.float32),
        ids=[str(i) for i in range(n)],
        namespace=namespace,
        backbone_name="tiny",
    )


def low_rank_users(d=16, n=120, seed=0):
    """Four users whose directions share a rank-2 subspace: the pool (every user, test pairs included)
    and each user's (adaptation, test) halves, for the leave-one-user-out protocol."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, 2)))[0]
    out, parts = {}, []
    for u in range(4):
        w = 3 * basis @ rng.normal(size=2)
        D = rng.normal(size=(n, d))
        D = np.where((D @ w > 0)[:, None], D, -D)
        f = PairFeatures(
            chosen=D, rejected=np.zeros_like(D), ids=[f"{u}-{i}" for i in range(n)], users=[f"u{u}"] * n
        )
        out[f"u{u}"] = (f.select(range(n // 2)), f.select(range(n // 2, n)))
        parts.append(f)  # the whole user, test pairs included: run_kshot must drop them
    return PairFeatures.concatenate(parts), out


def shared_taste_pool(n_users: int = 4, n: int = 80, d: int = 24, seed: int = 0) -> PairFeatures:
    """Users who all want nearly the same thing: the pool's general head is the right prior for each."""
    rng = np.random.default_rng(seed)
    majority = rng.normal(size=d)
    parts = []
    for u in range(n_users):
        w = majority + 0.2 * rng.normal(size=d)
        D = rng.normal(size=(n, d))
        D = np.where((D @ w > 0)[:, None], D, -D)
        ids = [f"u{u}-{i}" for i in range(n)]
        parts.append(PairFeatures(chosen=D, rejected=np.zeros_like(D), ids=ids, users=[f"u{u}"] * n))
    return PairFeatures.concatenate(parts)


def wide_rows(n_prompts: int = 5, n: int = 4) -> list[dict]:
    """Rows of the wide format, with a conversation prompt among them and uneven response lengths."""
    rows = []
    for p in range(n_prompts):
        prompt = (
            [{"role": "system", "content": "Be kind."}, {"role": "user", "content": f"Question {p}?"}]
            if p == 0
            else f"What is {p} plus {p}?"
        )
        row = {"id": f"q{p}", "prompt": prompt}
        for i in range(1, n + 1):
            row[f"response_{i}"] = " ".join(["The answer is", str(2 * p), "indeed"] * i)
            row[f"response_{i}_model"] = f"gen{i % 2}"
        rows.append(row)
    return rows
