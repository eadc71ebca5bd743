"""What an exported reward model's tokenizer says, so the field's own loaders score it as pluralrm does.

pluralrm scores a (prompt, response) rendered by :func:`~pluralrm.backbone.formatting.format_conversation`
and cut to its *last* ``max_length`` tokens. A folder read by plain transformers, TRL or OpenRLHF gets none
of that from pluralrm's metadata file; it gets what the tokenizer files say. So before saving:

* ``truncation_side = "left"`` and ``model_max_length = max_length``: ``tokenizer(texts, truncation=True)``
  (transformers' default length) and OpenRLHF's reward server then keep the same tokens pluralrm keeps;
* an end-of-sequence token where the base has none (BERT: its ``[SEP]``): TRL's ``RewardTrainer`` appends
  ``eos_token`` to string pairs and fails without one;
* a chat template where the base has none, rendering conversations as pluralrm does
  (:func:`~pluralrm.backbone.formatting.plain_chat_template`): TRL's conversational pairs need one. It is
  kept only if it gives, on probe conversations, the very token ids pluralrm trained on — both through
  ``apply_chat_template(tokenize=True)`` (TRL's path) and through pluralrm's own rendering of the saved
  tokenizer (a causal base with a template is rendered with it) — and left out with a note otherwise.

:func:`loaders` says which of the field's loaders read the folder as pluralrm scores it: OpenRLHF's
reward model class puts a ``score`` head on the last real token's final hidden state, which is what a
causal export is; a BERT-style export's ``classifier`` reads the pooler output of ``[CLS]``, so OpenRLHF
would load the backbone and a *randomly initialised* ``score`` head — the export warns and names the route
that works (``pluralrm serve`` behind OpenRLHF's ``--reward.remote_url``).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from pluralrm.backbone.collate import special_tokens_around, tokenize_left_truncated
from pluralrm.backbone.formatting import (
    format_conversation,
    plain_chat_template,
    prompt_messages,
    uses_chat_template,
)
from pluralrm.data.records import Prompt

logger = logging.getLogger(__name__)

# Conversations a saved chat template must tokenize exactly as pluralrm does (one turn, several, a system).
PROBES: tuple[tuple[Prompt, str], ...] = (
    ("What is the capital of France?", "Paris."),
    (
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Plan a trip to Lisbon."},
            {"role": "assistant", "content": "How many days?"},
            {"role": "user", "content": "Two, in May."},
        ],
        "Day 1: Alfama and the castle; day 2: Belém.",
    ),
)
OPENRLHF_ROUTE = (
    "serve it with `pluralrm serve DIR` and pass OpenRLHF --reward.remote_url http://HOST:PORT/get_reward"
)


def export_tokenizer(tokenizer: Any, kind: str, max_length: int) -> tuple[Any, dict]:
    """A copy of ``tokenizer`` set up for export, and the record of what was set (for the metadata).

    ``kind`` is the backbone's (``"causal"`` / ``"encoder"``); ``max_length`` the token budget the model
    was trained and is scored with.
    """
    expected = [_pluralrm_ids(tokenizer, kind, prompt, response) for prompt, response in PROBES]
    saved = copy.deepcopy(tokenizer)
    saved.truncation_side = "left"
    saved.model_max_length = max_length
    # save_pretrained writes only the settings a tokenizer was constructed with (init_kwargs) besides
    # model_max_length; an attribute set afterwards would be lost on the way to tokenizer_config.json.
    saved.init_kwargs["truncation_side"] = "left"
    record: dict[str, Any] = {"truncation_side": "left", "model_max_length": max_length, "notes": []}
    if saved.eos_token is None and getattr(saved, "sep_token", None) is not None:
        saved.eos_token = saved.sep_token
        record["notes"].append(
            f"eos_token set to {saved.sep_token!r} (the base has none; TRL appends eos_token to string "
            "pairs, which here adds a second separator to what pluralrm scores)"
        )
    record["eos_token"] = saved.eos_token
    lead, tail = _special_token_texts(saved)
    plain = plain_chat_template(lead, tail)
    if saved.chat_template:
        record["chat_template"] = "pluralrm-plain" if saved.chat_template == plain else "base"
    else:
        saved.chat_template = plain
        mismatch = _first_mismatch(saved, kind, expected)
        if mismatch is None:
            record["chat_template"] = "pluralrm-plain"
        else:
            saved.chat_template = None
            record["chat_template"] = None
            record["notes"].append(f"no chat template saved: {mismatch}")
    return saved, record


def align_eos(directory: Path, tokenizer: Any) -> None:
    """Record an EOS the tokenizer was given in the model's ``config.json`` too, so that loaders which
    check the two agree (TRL's trainer does, and rewrites the config with a message otherwise)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(directory)
    if getattr(config, "eos_token_id", None) is None and tokenizer.eos_token_id is not None:
        config.eos_token_id = tokenizer.eos_token_id
        config.save_pretrained(directory)


def loaders(kind: str, pooling: str, tokenizer_record: dict) -> dict[str, dict[str, Any]]:
    """Which of the field's loaders read the folder as pluralrm scores it, and why not where not."""
    trl_conversational: dict[str, Any] = {"ok": tokenizer_record.get("chat_template") is not None}
    if not trl_conversational["ok"]:
        trl_conversational["why"] = "no chat template (see export.tokenizer.notes in pluralrm_customize.json)"
    openrlhf: dict[str, Any] = {"ok": kind == "causal" and pooling == "last"}
    if not openrlhf["ok"]:
        openrlhf["why"] = (
            "OpenRLHF's reward model reads a `score` head on the last token's final hidden state; this "
            "BERT-style model's `classifier` reads the [CLS] pooler output, so OpenRLHF would serve a "
            f"randomly initialised head; {OPENRLHF_ROUTE}"
        )
    trl_strings: dict[str, Any] = {"ok": tokenizer_record.get("eos_token") is not None}
    if not trl_strings["ok"]:
        trl_strings["why"] = "the tokenizer has no EOS token, which TRL appends to string pairs"
    return {
        "transformers": {"ok": True},
        "trl_reward_trainer_string_pairs": trl_strings,
        "trl_reward_trainer_conversational_pairs": trl_conversational,
        "openrlhf_reward_model": openrlhf,
    }


LOADER_NAMES = {
    "transformers": "transformers' AutoModelForSequenceClassification",
    "trl_reward_trainer_string_pairs": "TRL's RewardTrainer on string pairs",
    "trl_reward_trainer_conversational_pairs": "TRL's RewardTrainer on conversational pairs",
    "openrlhf_reward_model": "OpenRLHF's reward model (serve_rm.py, PPO)",
}


def describe(loads: dict[str, dict[str, Any]]) -> str:
    """One line: where the export loads as pluralrm scores it, and where not (for the command line)."""
    yes = [LOADER_NAMES.get(name, name) for name, verdict in loads.items() if verdict["ok"]]
    no = [LOADER_NAMES.get(name, name) for name, verdict in loads.items() if not verdict["ok"]]
    return "loads as pluralrm scores it in " + ", ".join(yes) + (f"; not in {', '.join(no)}" if no else "")


def warn_where_not_loadable(out_dir: Path, loads: dict[str, dict[str, Any]]) -> None:
    """One warning per loader that would not score the export as pluralrm does."""
    for name, verdict in loads.items():
        if not verdict["ok"]:
            logger.warning(
                "%s: will not load as pluralrm scores it in %s: %s",
                out_dir,
                LOADER_NAMES.get(name, name),
                verdict["why"],
            )


def _pluralrm_ids(tokenizer: Any, kind: str, prompt: Any, response: str) -> list[int]:
    """The ids pluralrm's featurizer (and its training) reads for one (prompt, response), uncut."""
    text = format_conversation(prompt, response, tokenizer, kind)
    add_special = not uses_chat_template(tokenizer, kind)
    return tokenize_left_truncated(tokenizer, [text], 1 << 20, add_special_tokens=add_special)[0]


def _special_token_texts(tokenizer: Any) -> tuple[str, str]:
    lead, tail = special_tokens_around(tokenizer)
    return "".join(tokenizer.convert_ids_to_tokens(lead)), "".join(tokenizer.convert_ids_to_tokens(tail))


def _first_mismatch(tokenizer: Any, kind: str, expected: list[list[int]]) -> str | None:
    """Why the tokenizer's chat template does not reproduce ``expected`` on the probes (None if it does)."""
    for (prompt, response), ids in zip(PROBES, expected, strict=True):
        messages = [*prompt_messages(prompt), {"role": "assistant", "content": response}]
        trl = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, tokenizer_kwargs={"verbose": False}
        )["input_ids"]
        if list(trl) != ids:
            return "apply_chat_template gives other token ids than pluralrm's rendering"
        if _pluralrm_ids(tokenizer, kind, prompt, response) != ids:
            return "with a template pluralrm would render this causal base's texts differently"
    return None


__all__ = [
    "LOADER_NAMES",
    "PROBES",
    "align_eos",
    "describe",
    "export_tokenizer",
    "loaders",
    "warn_where_not_loadable",
]
