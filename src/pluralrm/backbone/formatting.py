"""Turn a (prompt, response) into the exact text a backbone reads.

A causal LM with a chat template sees the conversation the way it was trained on it (system/user/
assistant markers), so its last-token state summarises "this response to this prompt". Encoders and
models without a template read a plain "User:/Assistant:" rendering.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pluralrm.data.records import Prompt
from pluralrm.data.transcripts import Message

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

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


def plain_chat_template(lead: str = "", tail: str = "") -> str:
    r"""A Jinja chat template that renders messages exactly as :func:`render_plain` does.

    Saved with an exported reward model whose base has no chat template (BERT-style encoders), so that
    TRL's conversational pairs are rendered the way pluralrm renders them. ``lead`` and ``tail`` are the
    texts of the special tokens the tokenizer puts around one sequence (BERT's ``[CLS]`` / ``[SEP]``):
    ``apply_chat_template(..., tokenize=True)`` adds no special tokens of its own, so the template must.
    With ``add_generation_prompt`` it ends in ``"\nAssistant:"``, where the response would start.

    Examples
    --------
    >>> import jinja2
    >>> messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
    ...             {"role": "assistant", "content": "Hello."}]
    >>> jinja2.Template(plain_chat_template("[CLS]", "[SEP]")).render(messages=messages)
    '[CLS]System: Be brief.\nUser: Hi?\nAssistant: Hello.[SEP]'
    >>> render_plain(messages)
    'System: Be brief.\nUser: Hi?\nAssistant: Hello.'
    """
    roles = "{" + ", ".join(f'"{role}": "{name}"' for role, name in _PLAIN_ROLE.items()) + "}"
    quoted_lead, quoted_tail = json.dumps(lead), json.dumps(tail)
    return (
        f"{{{{ {quoted_lead} }}}}"
        "{% for message in messages %}"
        '{% if not loop.first %}{{ "\\n" }}{% endif %}'
        f'{{{{ {roles}[message["role"]] }}}}: {{{{ message["content"] }}}}'
        "{% endfor %}"
        f'{{% if add_generation_prompt %}}{{{{ "\\nAssistant:" }}}}'
        f"{{% else %}}{{{{ {quoted_tail} }}}}{{% endif %}}"
    )


def uses_chat_template(tokenizer: PreTrainedTokenizerBase, kind: str) -> bool:
    return kind == "causal" and bool(getattr(tokenizer, "chat_template", None))


def chat_template_text(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], *, add_generation_prompt: bool = False
) -> str:
    """The tokenizer's chat template applied to ``messages``, as text (not token ids)."""
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    if not isinstance(text, str):  # transformers' signature covers every tokenize= at once
        raise TypeError(f"the chat template rendered {type(text).__name__}, not text")
    return text


def format_conversation(prompt: Prompt, response: str, tokenizer: PreTrainedTokenizerBase, kind: str) -> str:
    """The text whose features represent ``response`` to ``prompt``.

    Examples
    --------
    >>> format_conversation("Hi?", "Hello.", tokenizer=None, kind="encoder")
    'User: Hi?\\nAssistant: Hello.'
    """
    messages = [*prompt_messages(prompt), {"role": "assistant", "content": response}]
    if uses_chat_template(tokenizer, kind):
        return chat_template_text(tokenizer, messages)
    return render_plain(messages)
