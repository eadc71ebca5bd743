"""Preference pairs → the token ids a reward model is trained on, exactly as pluralrm will score them.

Training and scoring must read the same tokens, or a model learns one text and is judged on another. So
pairs are not handed to TRL as strings (it would add an EOS and apply its own template): each side is
rendered by :func:`pluralrm.backbone.formatting.format_conversation` and cut by
:func:`pluralrm.backbone.collate.tokenize_left_truncated` — the featurizer's own functions — and TRL
receives the ids (``chosen_ids`` / ``rejected_ids``, its pre-tokenized layout).

For customized imitation each chosen example also carries ``response_start``: the first token of the
response inside the (possibly left-truncated) chosen ids, so the language-modelling loss reads only the
response, never the prompt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pluralrm.backbone.collate import special_tokens_around, tokenize_left_truncated
from pluralrm.backbone.formatting import (
    chat_template_text,
    format_conversation,
    prompt_messages,
    render_plain,
    uses_chat_template,
)
from pluralrm.data.features import prompt_group
from pluralrm.data.records import Prompt
from pluralrm.data.splits import group_split

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def pairs_digest(pairs: Sequence[dict]) -> str:
    """sha256 of the pairs' prompt/chosen/rejected, in order: which data a model was trained on."""
    digest = hashlib.sha256()
    for pair in pairs:
        row = [pair["prompt"], pair["chosen"], pair["rejected"]]
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def validation_split(pairs: Sequence[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, validation) with whole prompts on one side; ``fraction`` 0 keeps every pair for training."""
    if fraction <= 0:
        return list(pairs), []
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    groups = [prompt_group(p["prompt"]) for p in pairs]
    if len(set(groups)) < 2:
        return list(pairs), []
    train, validation = group_split(groups, [1 - fraction, fraction], seed=seed)
    return [pairs[i] for i in train], [pairs[i] for i in validation]


def enrich(pairs: Sequence[dict], general: Sequence[dict], ratio: float, seed: int) -> list[dict]:
    """General-preference enrichment: ``pairs`` plus ``round(ratio × len(pairs))`` general pairs.

    The general pairs are drawn without replacement (with replacement only when more are asked for than
    exist) by a generator seeded from ``seed``, and shuffled in with the others by the trainer.
    """
    if ratio < 0:
        raise ValueError(f"enrichment ratio must be ≥ 0, got {ratio}")
    n_extra = round(ratio * len(pairs))
    if n_extra == 0:
        return list(pairs)
    if not general:
        raise ValueError("enrichment needs general pairs (pass --general FILE)")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(general), size=n_extra, replace=n_extra > len(general))
    return [*pairs, *(general[int(i)] for i in picks)]


def _prompt_prefix(prompt: Prompt, tokenizer: PreTrainedTokenizerBase, kind: str) -> str:
    """The text before the response in :func:`format_conversation`'s rendering."""
    messages = prompt_messages(prompt)
    if uses_chat_template(tokenizer, kind):
        return chat_template_text(tokenizer, messages, add_generation_prompt=True)
    # "…\nAssistant:" without the trailing space: BPE tokenizers glue that space to the response's first word.
    return render_plain([*messages, {"role": "assistant", "content": ""}]).rstrip()


def tokenize_pairs(
    pairs: Sequence[dict],
    tokenizer: PreTrainedTokenizerBase,
    kind: str,
    max_length: int,
    *,
    with_response_start: bool = False,
) -> list[dict]:
    """TRL pre-tokenized preference examples: ``chosen_ids``, ``rejected_ids``, ``length`` (what
    length-grouped batching sorts by) and, for imitation, ``response_start``.

    Raises ``ValueError`` when a text ends in the pad token: a ``ForSequenceClassification`` model reads
    the last token that is *not* padding, pluralrm's featurizer the last real one, and the two would differ.
    """
    if not pairs:  # no validation pairs (validation_fraction 0): tokenizers fail on an empty batch
        return []
    chosen = [format_conversation(p["prompt"], p["chosen"], tokenizer, kind) for p in pairs]
    rejected = [format_conversation(p["prompt"], p["rejected"], tokenizer, kind) for p in pairs]
    add_special = not uses_chat_template(tokenizer, kind)
    chosen_ids = tokenize_left_truncated(tokenizer, chosen, max_length, add_special_tokens=add_special)
    rejected_ids = tokenize_left_truncated(tokenizer, rejected, max_length, add_special_tokens=add_special)
    pad_id = tokenizer.pad_token_id
    for i, ids in enumerate([*chosen_ids, *rejected_ids]):
        if kind == "causal" and ids and ids[-1] == pad_id:
            side = "chosen" if i < len(pairs) else "rejected"
            raise ValueError(
                f"pair {i % len(pairs)}: the {side} text ends in the pad token {tokenizer.pad_token!r}; "
                "set the tokenizer's pad token to one that never ends a text"
            )
    examples = [
        {"chosen_ids": c, "rejected_ids": r, "length": len(c) + len(r)}
        for c, r in zip(chosen_ids, rejected_ids, strict=True)
    ]
    if with_response_start:
        starts = _response_starts(pairs, chosen, tokenizer, kind, max_length, add_special)
        for example, start in zip(examples, starts, strict=True):
            example["response_start"] = start
    return examples


def _response_starts(
    pairs: Sequence[dict],
    texts: list[str],
    tokenizer: PreTrainedTokenizerBase,
    kind: str,
    max_length: int,
    add_special: bool,
) -> list[int]:
    """Index of each chosen response's first token inside its left-truncated ids.

    Mirrors :func:`tokenize_left_truncated`: the content keeps its last ``room`` ids and the special tokens
    go around it, so the response starts ``len(prefix) - dropped`` ids into the content.
    """
    prefixes = [_prompt_prefix(p["prompt"], tokenizer, kind) for p in pairs]
    full = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    prefix_ids = tokenizer(prefixes, add_special_tokens=False, verbose=False)["input_ids"]
    lead, tail = special_tokens_around(tokenizer) if add_special else ([], [])
    room = max_length - len(lead) - len(tail)
    starts = []
    for text_ids, prefix in zip(full, prefix_ids, strict=True):
        dropped = max(0, len(text_ids) - room)
        starts.append(len(lead) + max(0, len(prefix) - dropped))
    return starts


__all__ = ["enrich", "pairs_digest", "tokenize_pairs", "validation_split"]
