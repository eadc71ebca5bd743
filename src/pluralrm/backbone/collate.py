"""Texts → token ids → right-padded batches, without touching the shared tokenizer.

Left truncation (keep the *end* of a text, where the response is) is done by slicing ids, not by setting
``tokenizer.truncation_side``: a tokenizer is shared by every thread of a server, and flipping its state
per call would race. For tokenizers that add special tokens (BERT's ``[CLS] … [SEP]``), the content is
sliced first and the special tokens added around it, which is what the tokenizer's own left truncation
produces (a test compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def tokenize_left_truncated(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, *, add_special_tokens: bool
) -> list[list[int]]:
    """Token ids of each text, keeping its last ``max_length`` ids (special tokens included)."""
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    prefix, suffix = special_tokens_around(tokenizer) if add_special_tokens else ([], [])
    room = max_length - len(prefix) - len(suffix)
    if room <= 0:
        raise ValueError(f"max_length {max_length} leaves no room for text besides the special tokens")
    return [prefix + (ids[-room:] if len(ids) > room else ids) + suffix for ids in encoded]


def special_tokens_around(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one sequence (BERT: ``[CLS]`` / ``[SEP]``).

    Read off a probe text encoded with and without special tokens, so any post-processor works.
    """
    probe = "a"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return list(full[:start]), list(full[start + len(bare) :])
    raise ValueError(f"cannot locate the text inside {type(tokenizer).__name__}'s special tokens")


def pad_right(ids: Sequence[Sequence[int]], pad_id: int, device: str = "cpu"):
    """``(input_ids, attention_mask)`` of shape (batch, longest), right-padded, on ``device``.

    Right padding keeps a causal model's real tokens and position ids exactly as in an unpadded pass, so
    features do not depend on the batch they were computed in.
    """
    import torch

    width = max(len(seq) for seq in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        attention_mask[row, : len(seq)] = 1
    return input_ids.to(device), attention_mask.to(device)


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (fail fast on memory).

    A batch closes at ``batch_size`` texts or when its padded size (longest × count) would pass
    ``max_batch_tokens``.

    Examples
    --------
    >>> length_sorted_batches([3, 10, 4, 9], batch_size=8, max_batch_tokens=20)
    [[1, 3], [2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) >= batch_size or longest * (len(current) + 1) > max_batch_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
