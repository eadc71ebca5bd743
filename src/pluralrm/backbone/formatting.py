"""Turn a (prompt, response) into the exact text a backbone reads.

A causal LM with a chat template sees the conversation the way it was trained on it (system/user/
assistant markers), so its last-token state summarises "this response to this prompt". Encoders and
models without a template read a plain "User:/Assistant:" rendering.
"""

from __future__ import annotations

from typing import Any

from pluralrm.data.records import Prompt
from pluralrm.data.transcripts import Message

# Bumped whenever the rendering changes, because cached features depend on it.
FORMAT_VERSION = "1"

_PLAIN_ROLE = {"system": "System", "user": "User", "assistant": "Assistant"}


def prompt_messages(prompt: Prompt) -> list[Message]:
    """A prompt as a message list (a plain string is one user turn)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return list(prompt)


def render_plain(messages: list[Message]) -> str:
    return "\n".join(f"{_PLAIN_ROLE[m['role']]}: {m['content']}" for m in messages)


def uses_chat_template(tokenizer: Any, kind: str) -> bool:
    return kind == "causal" and bool(getattr(tokenizer, "chat_template", None))


def format_conversation(prompt: Prompt, response: str, tokenizer: Any, kind: str) -> str:
    """The text whose features represent ``response`` to ``prompt``.

    Examples
    --------
    >>> format_conversation("Hi?", "Hello.", tokenizer=None, kind="encoder")
    'User: Hi?\\nAssistant: Hello.'
    """
    messages = [*prompt_messages(prompt), {"role": "assistant", "content": response}]
    if uses_chat_template(tokenizer, kind):
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return render_plain(messages)
