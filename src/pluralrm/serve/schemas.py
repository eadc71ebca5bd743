"""Request and response bodies of the reward server (pydantic; they make the OpenAPI page at ``/docs``).

Size limits (texts per request, characters per text) are checked in the routes against the app's
:class:`pluralrm.config.ServeConfig`, so one server's limits are set in one place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

USER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


Prompt = str | list[Message]


def plain_prompt(prompt: Prompt) -> str | list[dict[str, str]]:
    """A prompt as the scoring path takes it: a string, or a list of role/content dicts."""
    return prompt if isinstance(prompt, str) else [{"role": m.role, "content": m.content} for m in prompt]


class Pair(BaseModel):
    chosen: str
    rejected: str


class ScoreRequest(BaseModel):
    """Score responses to one prompt, or pairs of responses to it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"prompt": "How do I boil an egg?", "responses": ["Boil it 8 min.", "No."]}]
        }
    )

    prompt: Prompt
    responses: list[str] | None = None
    pairs: list[Pair] | None = None
    user: str | None = Field(default=None, description="Score with this user's profile (needs their token).")
    head: str | None = Field(default=None, description="'general' (default) or 'pcJ'.")
    return_heads: bool = Field(default=False, description="Also return every head's score of each response.")

    @model_validator(mode="after")
    def _one_kind(self) -> ScoreRequest:
        if (self.responses is None) == (self.pairs is None):
            raise ValueError("give exactly one of 'responses' or 'pairs'")
        if self.user is not None and self.head is not None:
            raise ValueError("give either 'user' or 'head', not both")
        return self


class ScoreResponse(BaseModel):
    reward: str = Field(description="Which reward scored: 'general', 'pcJ' or 'user:NAME'.")
    rewards: list[float] | None = None
    best: int | None = Field(
        default=None, description="Best-of-N: the index of the highest reward in 'responses' (first on ties)."
    )
    chosen_rewards: list[float] | None = None
    rejected_rewards: list[float] | None = None
    margins: list[float] | None = Field(default=None, description="chosen − rejected, per pair.")
    head_scores: dict[str, list[float]] | None = None


class OpenRLHFRequest(BaseModel):
    """What OpenRLHF's remote reward client posts: full (chat-templated) prompt+response texts, and the
    prompts they start with."""

    model_config = ConfigDict(extra="allow")

    query: list[str] = Field(description="Prompt + response texts, as the trainer decoded them.")
    prompts: list[Any] | None = Field(
        default=None,
        description="The prompt each query starts with; if sent, the pair is scored as pluralrm renders it.",
    )
    labels: list[Any] | None = Field(default=None, description="Accepted and not used.")
    user: str | None = Field(default=None, description="Score with this user's profile (needs their token).")


class OpenRLHFResponse(BaseModel):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]


class ComparisonIn(BaseModel):
    prompt: Prompt
    chosen: str
    rejected: str


class ComparisonsRequest(BaseModel):
    pairs: list[ComparisonIn] = Field(min_length=1)


class ProfileOut(BaseModel):
    user: str
    method: str
    n_pairs: int
    weights: list[float]
    has_full_part: bool
    created_at: float
    updated_at: float


class ComparisonsResponse(BaseModel):
    ids: list[int] = Field(description="Ids of the stored pairs, in the order posted.")
    profile: ProfileOut


class StoredComparisonOut(BaseModel):
    id: int
    prompt: Any
    chosen: str
    rejected: str
    created_at: float


class NewUser(BaseModel):
    user: str = Field(pattern=USER_NAME)


class TokenOut(BaseModel):
    user: str
    token: str = Field(description="Shown once; only its hash is stored.")
