"""Dialogue transcripts as plain text (HH-RLHF, WebGPT) <-> chat messages.

HH-RLHF stores each side of a comparison as one full transcript
``"\\n\\nHuman: …\\n\\nAssistant: …"``; the two transcripts share every turn but the final assistant
reply. WebGPT (as the DSP paper ships it) uses ``"## Human:\\n…\\n\\n## Assistant:\\n…"``. Parsing both
into TRL-style messages lets the rest of pluralrm see one shape: a prompt (list of messages) and a
response (string).
"""

from __future__ import annotations

import re

Message = dict[str, str]

_ROLE_BY_SPEAKER = {"Human": "user", "Assistant": "assistant"}
_SPEAKER_BY_ROLE = {v: k for k, v in _ROLE_BY_SPEAKER.items()}

# Each style: a regex that finds turn markers, and how to render one turn back.
_HH_MARKER = re.compile(r"\n\n(Human|Assistant):[ ]?")
_WEBGPT_MARKER = re.compile(r"(?:^|\n\n)## (Human|Assistant):\n")


class TranscriptError(ValueError):
    """A transcript that does not follow the expected turn structure."""


def transcript_style(text: str) -> str:
    """``"hh"`` or ``"webgpt"``, from the first turn marker of ``text``."""
    if text.startswith("## Human:") or text.startswith("## Assistant:"):
        return "webgpt"
    return "hh"


def parse_transcript(text: str) -> list[Message]:
    """Split a transcript into ``[{"role", "content"}, …]`` messages.

    Examples
    --------
    >>> parse_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    """
    marker = _WEBGPT_MARKER if transcript_style(text) == "webgpt" else _HH_MARKER
    pieces = marker.split(text)
    # re.split with one group gives [before, speaker1, content1, speaker2, content2, ...].
    before, rest = pieces[0], pieces[1:]
    if before.strip():
        raise TranscriptError(f"text before the first 'Human:'/'Assistant:' turn: {before[:60]!r}")
    if not rest:
        raise TranscriptError("no 'Human:'/'Assistant:' turns found")
    return [
        {"role": _ROLE_BY_SPEAKER[speaker], "content": content}
        for speaker, content in zip(rest[0::2], rest[1::2], strict=True)
    ]


def render_transcript(messages: list[Message], style: str = "hh") -> str:
    """Inverse of :func:`parse_transcript` (used by tests and by exporters)."""
    if style == "webgpt":
        return "\n\n".join(f"## {_SPEAKER_BY_ROLE[m['role']]}:\n{m['content']}" for m in messages)
    return "".join(f"\n\n{_SPEAKER_BY_ROLE[m['role']]}: {m['content']}" for m in messages)


def split_shared_prompt(chosen: list[Message], rejected: list[Message]) -> tuple[list[Message], str, str]:
    """Return ``(prompt_messages, chosen_reply, rejected_reply)`` for two transcripts of one comparison.

    Raises
    ------
    TranscriptError
        When either side does not end in an assistant reply, or the two dialogues differ before it.
    """
    for name, messages in (("chosen", chosen), ("rejected", rejected)):
        if len(messages) < 2 or messages[-1]["role"] != "assistant":
            raise TranscriptError(
                f"the {name} transcript does not end with an assistant reply after a prompt"
            )
    prompt_c, prompt_r = chosen[:-1], rejected[:-1]
    if prompt_c != prompt_r:
        turn = next(
            (i for i, (a, b) in enumerate(zip(prompt_c, prompt_r, strict=False)) if a != b),
            min(len(prompt_c), len(prompt_r)),
        )
        raise TranscriptError(
            f"chosen and rejected dialogues differ before the final reply (first at turn {turn + 1}); "
            "they are not one comparison"
        )
    return prompt_c, chosen[-1]["content"], rejected[-1]["content"]
