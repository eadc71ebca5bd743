"""Small preference data with a learnable rule, for training tiny reward models in seconds."""

from __future__ import annotations

import numpy as np
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


def trl_one_step(directory, rows, output_dir):
    """One step of TRL's own RewardTrainer on a saved folder: (trainer, loss, largest embedding change)."""
    import datasets
    from trl import RewardConfig, RewardTrainer

    args = RewardConfig(
        output_dir=str(output_dir),
        max_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        report_to="none",
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    trainer = RewardTrainer(model=str(directory), args=args, train_dataset=datasets.Dataset.from_list(rows))
    before = trainer.model.get_input_embeddings().weight.detach().clone()
    loss = trainer.train().training_loss
    moved = (trainer.model.get_input_embeddings().weight.detach() - before).abs().max().item()
    return trainer, loss, moved


def openrlhf_rewards(directory, texts: list[str], max_len: int) -> np.ndarray:
    """OpenRLHF's reward model on ``texts``, as its code computes it (not imported: it needs DeepSpeed).

    Checked against OpenRLHF commit 3c3be62 (2026-08-13): ``openrlhf/models/model.py::_get_reward_model``
    (base model from ``AutoModel``, ``nn.Linear(hidden, 1, bias=False)`` named ``score`` read from the
    checkpoint, position ids from the mask's cumsum, the value at the last real token), tokenized as
    ``openrlhf/cli/serve_rm.py::RewardModelProxy.tokenize_fn`` does with ``get_tokenizer(..., "left")``:
    left padding, ``add_special_tokens=False``, ``max_length=--data.max_len``, ``truncation=True``.
    """
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    base = AutoModel.from_pretrained(directory).eval()
    state = load_file(str(directory / "model.safetensors"))
    assert "score.weight" in state and "score.bias" not in state  # what OpenRLHF's value head loads
    head = torch.nn.Linear(base.config.hidden_size, 1, bias=False)
    head.weight.data.copy_(state["score.weight"])
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(
        texts,
        return_tensors="pt",
        add_special_tokens=False,
        max_length=max_len,
        padding=True,
        truncation=True,
    )
    mask = batch["attention_mask"]
    position_ids = mask.long().cumsum(-1) - 1
    position_ids.masked_fill_(mask == 0, 1)
    with torch.no_grad():
        hidden = base(batch["input_ids"], attention_mask=mask, position_ids=position_ids)["last_hidden_state"]
        values = head(hidden).squeeze(-1)
    eos_indices = mask.size(1) - 1 - mask.long().fliplr().argmax(dim=1, keepdim=True)
    return values.gather(dim=1, index=eos_indices).squeeze(1).numpy()
