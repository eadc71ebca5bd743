"""Scoring routes: ``POST /v1/score`` (prompt + responses or pairs), OpenRLHF's ``POST /get_reward`` and its
per-user twin ``POST /v1/users/{user}/get_reward``.

Both end in the one scoring path, ``RewardModel.rewards(H, user=…, head=…)``, on features from the
server's :class:`~pluralrm.serve.batching.FeatureService`; a reward served here equals ``pluralrm score``'s
for the same texts.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Path, status

from pluralrm.adapt.profiles import ProfileMismatchError
from pluralrm.serve.openrlhf import openrlhf_texts
from pluralrm.serve.schemas import (
    USER_NAME,
    OpenRLHFRequest,
    OpenRLHFResponse,
    ScoreRequest,
    ScoreResponse,
    plain_prompt,
)
from pluralrm.serve.state import Caller, OpenRLHFCaller, ServerState, State, require_scoring
from pluralrm.web.tokens import Principal

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
        out.best = int(np.argmax(rewards)) if len(rewards) else None
    if body.return_heads:
        out.head_scores = {name: s.tolist() for name, s in state.model.head_scores(H).items()}
    return out


@router.post("/get_reward", response_model=OpenRLHFResponse)
async def get_reward(body: OpenRLHFRequest, state: State, who: OpenRLHFCaller) -> OpenRLHFResponse:
    """OpenRLHF's remote reward API (``--reward.remote_url http://HOST:PORT/get_reward``): the general reward,
    or with ``user`` in the body (an extension) that user's. Each query whose prompt is sent is scored as
    pluralrm renders the conversation (:mod:`pluralrm.serve.openrlhf`), else as sent."""
    return await _openrlhf_rewards(state, who, body, body.user)


@router.post("/v1/users/{user}/get_reward", response_model=OpenRLHFResponse)
async def get_user_reward(
    user: Annotated[str, Path(pattern=USER_NAME, description="User name.")],
    body: OpenRLHFRequest,
    state: State,
    who: OpenRLHFCaller,
) -> OpenRLHFResponse:
    """OpenRLHF's remote reward API for one user's personal reward. OpenRLHF's client sends no headers, so
    put the user's token in the URL: ``--reward.remote_url http://USER:TOKEN@HOST:PORT/v1/users/USER/get_reward``
    (HTTP Basic); a bearer token works too."""
    if body.user is not None and body.user != user:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"user: {body.user!r} in the body, {user!r} in the path"
        )
    return await _openrlhf_rewards(state, who, body, user)


async def _openrlhf_rewards(
    state: ServerState, who: Principal | None, body: OpenRLHFRequest, user: str | None
) -> OpenRLHFResponse:
    require_scoring(state, who, user)
    state.check_texts("query", body.query)
    if body.prompts is not None:
        state.check_texts("prompts", [p for p in body.prompts if isinstance(p, str)])
    assert state.featurizer is not None  # set at startup
    try:
        texts, rendered = openrlhf_texts(state.featurizer.format, body.query, body.prompts)
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    _, rewards = await _rewards(state, texts, user=user, head=None)
    values = rewards.tolist()
    return OpenRLHFResponse(rewards=values, scores=values, extra_logs={"pluralrm_rendered": rendered})
