"""Small preference data with a learnable rule, for training tiny reward models in seconds."""

from __future__ import annotations

import pytest

GOOD = ["Paris is the capital of France.", "Hello world, the answer is Paris.", "The capital is Paris."]
BAD = ["no", "what", "capital capital"]


def rule_pairs(n_prompts: int = 12, *, subset: str | None = None) -> list[dict]:
    """Pairs whose chosen response is always a long sentence and the rejected one a short fragment."""
    pairs = []
    for i in range(n_prompts):
        for j, (good, bad) in enumerate(zip(GOOD, BAD, strict=True)):
            pair = {
                "prompt": f"Question {i}: what is the capital of France?",
                "chosen": good,
                "rejected": bad,
            }
            pair["id"] = f"{i}/{j}"
            if subset:
                pair["subset"] = subset
            pairs.append(pair)
    return pairs


@pytest.fixture
def pairs() -> list[dict]:
    return rule_pairs()


@pytest.fixture(scope="session")
def wordpiece_bert_dir(tmp_path_factory):
    """A tiny random BERT with a real WordPiece tokenizer, as MiniLM has: ``[CLS] … [SEP]``, no EOS, no chat
    template, ``model_max_length`` 512 (the shared tiny BERT's tokenizer has none of these)."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizer

    from pluralrm.data.synthetic import make_synthetic_preferences

    directory = tmp_path_factory.mktemp("wordpiece-bert")
    corpus = [r["text"] for r in make_synthetic_preferences(n_prompts=12, seed=1).responses]
    corpus += [
        " ".join(GOOD + BAD),
        "User: Assistant: System: Question what is the capital of France? 0 1 2 9",
    ]
    trainer = BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(corpus, vocab_size=300, min_frequency=1)
    trainer.save_model(str(directory))
    tokenizer = BertTokenizer.from_pretrained(directory, model_max_length=512)  # reads vocab.txt
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
