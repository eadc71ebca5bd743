"""Scoring routes: ``POST /v1/score`` (prompt + responses or pairs) and OpenRLHF's ``POST /get_reward``.

Both end in the one scoring path, ``RewardModel.rewards(H, user=…, head=…)``, on features from the
server's :class:`~pluralrm.serve.batching.FeatureService`; a reward served here equals ``pluralrm score``'s
for the same texts.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException, status

from pluralrm.adapt.profiles import ProfileMismatchError
from pluralrm.serve.schemas import (
    OpenRLHFRequest,
    OpenRLHFResponse,
    ScoreRequest,
    ScoreResponse,
    plain_prompt,
)
from pluralrm.serve.state import Caller, ServerState, State, require_scoring

router = APIRouter()


async def _rewards(
    state: ServerState, texts: list[str], *, user: str | None, head: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Features and rewards of formatted texts under a user's profile, a head, or the general head."""
    profile = state.profile(user) if user is not None else None
    try:  # the model's own check, before any text is featurized: a head or a reward it does not have
        state.model.reward_vector(user=profile, head=head)
    except ProfileMismatchError:
        raise
    except (KeyError, ValueError) as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error.args[0])) from None
    assert state.service is not None
    H = await state.service.features(texts)
    rewards = state.model.rewards(H, user=profile, head=head)
    state.metrics.scored.inc(len(texts))
    return H, rewards


@router.post("/v1/score", response_model=ScoreResponse, response_model_exclude_none=True)
async def score(
    body: ScoreRequest,
    state: State,
    who: Caller,
) -> ScoreResponse:
    """Rewards of responses to one prompt (or chosen − rejected margins of pairs), under the general head,
    one head (``head``) or a user's profile (``user``, with that user's token)."""
    require_scoring(state, who, body.user)
    prompt = plain_prompt(body.prompt)
    if body.pairs is not None:
        responses = [p.chosen for p in body.pairs] + [p.rejected for p in body.pairs]
        field = "pairs"
    else:
        responses = list(body.responses or [])
        field = "responses"
    state.check_texts(field, responses)
    state.check_texts("prompt", [prompt] if isinstance(prompt, str) else [m["content"] for m in prompt])
    assert state.featurizer is not None  # set at startup
    texts = [state.featurizer.format(prompt, r) for r in responses]
    H, rewards = await _rewards(state, texts, user=body.user, head=body.head)
    name = f"user:{body.user}" if body.user is not None else (body.head or "general")
    out = ScoreResponse(reward=name)
    if body.pairs is not None:
        n = len(body.pairs)
        out.chosen_rewards = rewards[:n].tolist()
        out.rejected_rewards = rewards[n:].tolist()
        out.margins = (rewards[:n] - rewards[n:]).tolist()
    else:
        out.rewards = rewards.tolist()
    if body.return_heads:
        out.head_scores = {name: s.tolist() for name, s in state.model.head_scores(H).items()}
    return out


@router.post("/get_reward", response_model=OpenRLHFResponse)
async def get_reward(
    body: OpenRLHFRequest,
    state: State,
    who: Caller,
) -> OpenRLHFResponse:
    """OpenRLHF's remote reward API: ``query`` holds full prompt+response texts, already chat-templated by
    the trainer, and is featurized as is (as OpenRLHF's own reward server does); ``prompts`` and
    ``labels`` are accepted and not used; ``user`` (an extension) scores with that user's profile."""
    require_scoring(state, who, body.user)
    state.check_texts("query", body.query)
    _, rewards = await _rewards(state, list(body.query), user=body.user, head=None)
    values = rewards.tolist()
    return OpenRLHFResponse(rewards=values, scores=values, extra_logs={})
