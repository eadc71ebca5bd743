"""What both generators share: the sampling parameters, a completion, and per-prompt seeds.

A prompt's samples are seeded from (run seed, prompt id) rather than from a position in the run, so a
prompt gets the same N responses whether it is generated first or last, alone or after a resume.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Protocol

from pluralrm.backbone.formatting import prompt_messages
from pluralrm.config import GENERATE
from pluralrm.data.records import Prompt
from pluralrm.data.transcripts import Message

Finish = Literal["stop", "length"]


class SamplingSettings(Protocol):
    """What names a way of sampling: a generate config, or a collection stage's generator setting."""

    @property
    def n(self) -> int: ...
    @property
    def temperature(self) -> float: ...
    @property
    def top_p(self) -> float: ...
    @property
    def max_new_tokens(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def system_prompt(self) -> str | None: ...


@dataclass(frozen=True)
class SamplingParams:
    """Everything that decides what a model answers; a resumed run must use the same values.

    ``temperature == 0`` means greedy decoding (one deterministic answer, repeated N times locally).
    """

    n: int = GENERATE.n
    temperature: float = GENERATE.temperature
    top_p: float = GENERATE.top_p
    max_new_tokens: int = GENERATE.max_new_tokens
    seed: int = GENERATE.seed
    system_prompt: str | None = GENERATE.system_prompt

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")

    @classmethod
    def from_config(cls, config: SamplingSettings) -> SamplingParams:
        """The sampling part of ``config`` (a generate config, a collection stage's generator setting)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Completion:
    """One response: its text (stripped), why it ended, the model that wrote it and its length in tokens.

    ``finish`` is ``"length"`` when the response hit ``max_new_tokens`` (it was cut), else ``"stop"``.
    ``tokens`` is None when an endpoint does not report usage.
    """

    text: str
    finish: Finish
    model: str
    tokens: int | None = None


class Generator(Protocol):
    """Anything that answers one prompt with ``params.n`` completions (local LM, endpoint, test fake)."""

    backend: str
    model: str

    def complete(self, messages: list[Message], params: SamplingParams, seed: int) -> list[Completion]: ...


def prompt_seed(seed: int, prompt_id: str) -> int:
    """A 31-bit seed from the run seed and a prompt id (31 bits: every server accepts it).

    Examples
    --------
    >>> prompt_seed(0, "a") == prompt_seed(0, "a") != prompt_seed(1, "a")
    True
    """
    digest = hashlib.sha256(f"{seed}\x00{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


def conversation(prompt: Prompt, system_prompt: str | None) -> list[Message]:
    """The messages sent to the model: the prompt, after ``system_prompt`` unless it has its own.

    Examples
    --------
    >>> conversation("Hi?", "Be brief.")
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi?'}]
    """
    messages = prompt_messages(prompt)
    if system_prompt is not None and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return messages
