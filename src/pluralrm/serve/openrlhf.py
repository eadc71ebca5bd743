"""OpenRLHF's remote-reward queries → the (prompt, response) conversations pluralrm scores.

OpenRLHF's PPO workers post ``{"query": [...], "prompts": [...], "labels": [...]}``, one sample per request
(``SingleTurnAgentExecutor._fetch_rewards_via_http`` in ``openrlhf/utils/agent.py``): ``prompts[i]`` is the
prompt as the policy saw it — rendered by the policy's chat template with the generation prompt
(``openrlhf/datasets/prompts_dataset.py::preprocess_data``) — and ``query[i]`` is that prompt followed by the
generated response, decoded with the special tokens kept. The heads were fitted on the *backbone's*
rendering of (prompt, response), so a query is scored as is only when nothing better can be done: when its
prompt is sent and the query starts with it, the response is the rest (without end-of-turn markers and
surrounding whitespace), the prompt is read back into messages when it is in a chat markup this module
knows (ChatML, Llama 3, Phi-3, Gemma, HH-RLHF's ``Human:``/``Assistant:``, pluralrm's own
``User:``/``Assistant:``) and is otherwise one user turn, as any string prompt is in pluralrm, and the pair
is rendered as ``pluralrm score`` renders it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pluralrm.data.transcripts import Message

# Markers a decoded response may end with (the policy's EOS or end-of-turn token, padding left by a decoder).
END_MARKERS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<|end|>",
    "<end_of_turn>",
    "<eos>",
    "</s>",
)
# Tokens a template may put before the first turn.
_LEADING = ("<|begin_of_text|>", "<s>", "<bos>")


@dataclass(frozen=True)
class _Markup:
    """One chat markup: the regex of a whole turn (role, content) and the generation prompts that may end a
    prompt rendered with ``add_generation_prompt=True``."""

    turn: re.Pattern[str]
    generation_prompts: tuple[str, ...]
    roles: dict[str, str]


_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
_MARKUPS = (
    _Markup(  # ChatML: Qwen, SmolLM2, …
        re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)<\|im_end\|>\n?", re.S),
        ("<|im_start|>assistant\n",),
        _ROLES,
    ),
    _Markup(  # Llama 3
        re.compile(
            r"<\|start_header_id\|>(system|user|assistant)<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>", re.S
        ),
        ("<|start_header_id|>assistant<|end_header_id|>\n\n",),
        _ROLES,
    ),
    _Markup(  # Phi-3
        re.compile(r"<\|(system|user|assistant)\|>\n?(.*?)<\|end\|>\n?", re.S),
        ("<|assistant|>\n", "<|assistant|>"),
        _ROLES,
    ),
    _Markup(  # Gemma
        re.compile(r"<start_of_turn>(user|model)\n(.*?)<end_of_turn>\n?", re.S),
        ("<start_of_turn>model\n",),
        {"user": "user", "model": "assistant"},
    ),
    _Markup(  # pluralrm's plain rendering of encoders and template-less LMs
        re.compile(r"(System|User|Assistant): (.*?)\n(?=(?:System|User|Assistant):)", re.S),
        ("Assistant:",),
        {"System": "system", "User": "user", "Assistant": "assistant"},
    ),
    _Markup(  # HH-RLHF transcripts
        re.compile(r"\n\n(Human|Assistant): ?(.*?)(?=\n\n(?:Human|Assistant):)", re.S),
        ("\n\nAssistant:",),
        {"Human": "user", "Assistant": "assistant"},
    ),
)


def parse_chat_markup(prompt: str) -> list[Message] | None:
    """The messages of a prompt rendered by a known chat template, else None.

    The whole prompt must be turns of one markup, optionally followed by that markup's generation prompt
    (a system message the template inserted by itself is a turn like any other).

    Examples
    --------
    >>> parse_chat_markup("<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n")
    [{'role': 'user', 'content': 'Hi'}]
    >>> parse_chat_markup("User: Hi\\nAssistant:")
    [{'role': 'user', 'content': 'Hi'}]
    >>> parse_chat_markup("How do I bake bread?") is None
    True
    """
    text = prompt
    for token in _LEADING:
        text = text.removeprefix(token)
    for markup in _MARKUPS:
        body = text.rstrip(" ") if markup.generation_prompts[0].endswith(":") else text
        messages: list[Message] = []
        position = 0
        while (match := markup.turn.match(body, position)) is not None and match.end() > position:
            messages.append({"role": markup.roles[match.group(1)], "content": match.group(2)})
            position = match.end()
        if messages and body[position:] in ("", *markup.generation_prompts):
            return messages
    return None


def strip_end_markers(response: str) -> str:
    """A decoded response without trailing end-of-turn/EOS markers and surrounding whitespace.

    >>> strip_end_markers(" Paris.<|im_end|>\\n")
    'Paris.'
    """
    text = response.strip()
    while True:
        for marker in END_MARKERS:
            if text.endswith(marker):
                text = text[: -len(marker)].rstrip()
                break
        else:
            return text.strip()


def conversation_of(query: str, prompt: Any) -> tuple[Any, str] | None:
    """``(prompt, response)`` as pluralrm would score them, or None to score ``query`` as sent.

    None when no prompt string was sent or the query does not start with it (nothing tells where the
    response begins).
    """
    if not isinstance(prompt, str) or not prompt or not query.startswith(prompt):
        return None
    response = strip_end_markers(query[len(prompt) :])
    messages = parse_chat_markup(prompt)
    return (messages if messages is not None else prompt.strip()), response


def openrlhf_texts(
    format_pair: Any, queries: Sequence[str], prompts: Sequence[Any] | None
) -> tuple[list[str], list[float]]:
    """The texts to featurize for OpenRLHF's queries, and per query 1.0 where it was re-rendered by pluralrm
    (``format_pair(prompt, response)``: the featurizer's ``format``) or 0.0 where it is scored as sent."""
    if prompts is not None and len(prompts) != len(queries):
        raise ValueError(f"prompts: {len(prompts)} items for {len(queries)} queries")
    texts, rendered = [], []
    for i, query in enumerate(queries):
        pair = conversation_of(query, prompts[i]) if prompts is not None else None
        texts.append(query if pair is None else format_pair(*pair))
        rendered.append(0.0 if pair is None else 1.0)
    return texts, rendered


__all__ = ["END_MARKERS", "conversation_of", "openrlhf_texts", "parse_chat_markup", "strip_end_markers"]
